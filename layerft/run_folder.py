"""A run's folder as the record of its config: the finished result found there or in another job
folder of the multirun (never another config's overwritten), the multirun's lock while a config
trains, and the Hydra files kept beside a finished result.

Serves no config group: `layerft/run.py` asks `previous_result` before it trains, and trains
inside `config_lock`.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from omegaconf import OmegaConf

from layerft.config import resolve_config
from layerft.config_differences import config_differences
from layerft.data_changes import changed_data
from layerft.errors import LayerftError
from layerft.file_lock import lock_unless_done
from layerft.forced_rerun import remove_dead_rerun
from layerft.hub_data import changed_hub_data
from layerft.model_files import ON_OTHER_MODEL, changed_model_files, changed_snapshot
from layerft.processes import is_main_process, world_size
from layerft.results import (
    METRICS_FILE,
    ON_OTHER_DATA,
    job_records,
    read_finished,
    read_record,
)
from layerft.run_record import RunRecord

log = logging.getLogger(__name__)


LOCKS_DIR = ".locks"  # in a multirun's folder: a lock per config fingerprint, held while trained
RUN_LOCK = ".run.lock"  # in a run folder while a run trains there (run_claim; left by a kill -9)


Result = tuple[dict[str, float], Path]  # a run's metrics and the folder holding them


@contextlib.contextmanager
def config_lock(
    sweep_dir: str | None, record: RunRecord, finished: Callable[[], Result | None]
) -> Iterator[Result | None]:
    """Hold the multirun's lock on this config while this job trains it, unless another job that
    holds it produces the config's result first (`finished()` looks for it, every few seconds
    while waiting and once after taking the lock): then that result is yielded, else None. Jobs
    of one grid that are one config (a baseline crossed with layer splits, settings it never
    reads) then train it once, also when a parallel launcher starts them together, as they would
    one after another; the waiting job holds its launcher slot meanwhile.

    No lock outside a multirun, nor under torchrun: its processes must train together, and one
    waiting for the lock would stall the others in their first collective. A file system without
    locks, or a lock file this job cannot open: one warning, and the job trains unlocked. On NFS
    mounted with node-local locks (`local_lock=flock`), jobs on two nodes do not see each other's.
    """
    if sweep_dir is None or world_size() > 1:
        yield None
        return

    def waiting(holder: str) -> None:
        log.info("this config is being trained by %s; waiting for its result", holder or "a job")

    def unlockable(reason: str) -> None:
        log.warning("%s: a repeat of this config started beside this job may train it too", reason)

    path = Path(sweep_dir) / LOCKS_DIR / f"{record.fingerprint}.lock"
    with lock_unless_done(path, finished, waiting, unlockable) as served:
        yield served


def previous_result(
    run_dir: Path, record: RunRecord, sweep_dir: str | None, resolved: dict[str, Any] | None = None
) -> tuple[dict[str, float], Path] | None:
    """The finished metrics of this config and their folder: here or a sibling job folder of the
    sweep.

    A folder holding another config's result is refused only when this config's result is found
    nowhere in the sweep (`train.py -m` numbers its job folders, so a narrowed grid's job 0 may
    land in the folder of another finished job)."""
    hint = new_folder_hint(sweep_dir)
    try:
        finished = read_finished(run_dir, record.fingerprints, hint)
    except LayerftError as refused:
        if is_main_process():  # Hydra rewrote them for this job; the folder keeps its own
            restore_hydra_files(hydra_record(run_dir))
        if sweep_dir is None or (elsewhere := found_elsewhere(sweep_dir, record, run_dir)) is None:
            # the kept config stays beside it
            raise explained(refused, run_dir, resolved) from refused
        return read_result(elsewhere, record, hint)
    if finished is not None:
        if is_main_process():
            remove_dead_rerun(run_dir)  # first: it puts back the kept copy a dead rerun overwrote
            restore_hydra_files(hydra_record(run_dir))  # this launch rewrote them
        check_same_data(run_dir, record, hint)
        log.info("already finished, not rerun: %s", run_dir / METRICS_FILE)
        return finished, run_dir
    if sweep_dir is None or (elsewhere := found_elsewhere(sweep_dir, record, run_dir)) is None:
        return None
    remove_if_only_hydra_files(run_dir)
    return read_result(elsewhere, record, hint)


def explained(
    refused: LayerftError, run_dir: Path, resolved: dict[str, Any] | None
) -> LayerftError:
    """A refusal to overwrite another config's result, with the keys where this config differs
    from it (`differences_from_result`)."""
    record = hydra_record(run_dir)
    differences = None if resolved is None else differences_from_result(record, resolved)
    if not differences:
        return refused
    return LayerftError(f"{refused} (it differs in {differences})")


def differences_from_result(record: Path | None, resolved: dict[str, Any]) -> str | None:
    """The keys where the config `resolved` differs from the one whose result a job folder holds,
    read from the copy of its Hydra config kept in `record` (its `.hydra/`); None without that
    copy, or where they differ in nothing the config holds (the process count under torchrun,
    an older layerft)."""
    kept = record / "finished" / "config.yaml" if record is not None else None
    if kept is None or not kept.is_file():
        return None
    try:
        return config_differences(resolve_config(OmegaConf.load(kept)), resolved) or None
    except Exception:  # noqa: BLE001 - an unreadable or older config only loses the detail
        return None


def read_result(folder: Path, record: RunRecord, hint: str) -> tuple[dict[str, float], Path] | None:
    """The finished metrics of `record`'s config in `folder`, with the folder."""
    finished = read_finished(folder, record.fingerprints, hint)
    if finished is None:
        return None
    check_same_data(folder, record, hint)
    return finished, folder


def check_same_data(folder: Path, record: RunRecord, hint: str) -> None:
    """A finished result of this config computed on other data or model files (a data file or
    the model's folder edited or replaced in place since) is neither reported as this run's nor
    overwritten: an error saying so."""
    stored = read_record(folder)
    redo = f"replace it with force_rerun=true (sweep.py --force), or run in a new folder ({hint})"
    if changed := changed_data(stored, record.data_files):
        raise LayerftError(
            f"{folder / METRICS_FILE} {ON_OTHER_DATA}: the file of "
            f"{', '.join(changed)} changed since (its bytes' sha256); {redo}"
        )
    if changed := changed_hub_data(stored):
        raise LayerftError(
            f"{folder / METRICS_FILE} {ON_OTHER_DATA}: the Hugging Face cache serves "
            f"{changed[0]}; {redo}"
        )
    if changed := changed_model_files(stored, record.model_folder, record.model_files):
        raise LayerftError(
            f"{folder / METRICS_FILE} {ON_OTHER_MODEL}: {', '.join(changed)} changed since (its "
            f"bytes' sha256); {redo}"
        )
    if changed := changed_snapshot(stored):
        raise LayerftError(
            f"{folder / METRICS_FILE} {ON_OTHER_MODEL}: the Hugging Face cache serves "
            f"{changed[0]}; {redo}"
        )


def found_elsewhere(sweep_dir: str, record: RunRecord, run_dir: Path) -> Path | None:
    """Another job folder of the sweep holding this config's finished result (logged), or None."""
    records = job_records(Path(sweep_dir), METRICS_FILE)
    for folder in (records.get(fingerprint) for fingerprint in record.fingerprints):
        if folder is not None and folder.resolve() != run_dir.resolve():
            log.info("already finished in %s, not rerun", folder / METRICS_FILE)
            if is_main_process():
                hydra = hydra_record(run_dir)  # the subfolder's name, as in every job folder
                tidy_finished(folder, folder / hydra.name if hydra is not None else None)
            return folder
    return None


def new_folder_hint(sweep_dir: str | None) -> str:
    """How to pick another folder for this run (named in a refusal to overwrite)."""
    if sweep_dir is None:
        return "hydra.run.dir=<new folder>"
    return "sweep.py ... --dir <new folder>, or hydra.sweep.dir=<new folder> with train.py -m"


def hydra_record(run_dir: Path) -> Path | None:
    """Where Hydra wrote this job's config (`hydra.output_subdir`); None outside Hydra or when off."""
    if not HydraConfig.initialized() or HydraConfig.get().output_subdir is None:
        return None
    return run_dir / HydraConfig.get().output_subdir


def keep_hydra_files(run_dir: Path) -> None:
    """Copy the finished run's `.hydra/*.yaml` into `.hydra/finished/` (written, then renamed).

    Hydra rewrites them for every launch before the job starts, so a skipped rerun (same config,
    but result-neutral settings such as the tracker changed) would leave `.hydra/config.yaml`
    describing a run that never happened here; `restore_hydra_files` puts these back."""
    record = hydra_record(run_dir)
    if record is None or not record.is_dir():
        return
    try:
        tmp = Path(tempfile.mkdtemp(dir=record, prefix=".finished."))
        for path in record.glob("*.yaml"):
            shutil.copy2(path, tmp / path.name)
        shutil.rmtree(record / "finished", ignore_errors=True)
        tmp.rename(record / "finished")
    except OSError as err:  # the results are written; only this copy of the config is missing
        log.warning("could not keep a copy of %s (%s)", record, err)


def restore_hydra_files(record: Path | None) -> None:
    """Put back the `.hydra/*.yaml` (in `record`, a run folder's Hydra subfolder) of the run that
    wrote the folder's metrics."""
    kept = record / "finished" if record is not None else None
    if kept is None or not kept.is_dir():
        return  # finished before layerft kept a copy, or outside Hydra
    try:
        for path in kept.glob("*.yaml"):
            shutil.copy2(path, record / path.name)
    except OSError as err:
        log.warning("could not restore %s from %s (%s)", record, kept, err)


def tidy_finished(folder: Path, record: Path | None, any_host: bool = False) -> bool:
    """Remove what a dead forced rerun left beside the finished result in `folder`, and put back
    the result's Hydra files (in `record`, its Hydra subfolder) that the rerun's launch rewrote;
    whether there was a dead attempt (`any_host`: as remove_dead_rerun)."""
    dead = remove_dead_rerun(folder, any_host)
    if dead:
        restore_hydra_files(record)
    return dead


def remove_if_only_hydra_files(run_dir: Path) -> None:
    """Remove a job folder Hydra made for a combination already finished elsewhere (it holds
    only `.hydra/`, the job's log and maybe the lock a killed run left)."""
    entries = list(run_dir.iterdir()) if run_dir.is_dir() else []
    if entries and all(e.name in (".hydra", RUN_LOCK) or e.suffix == ".log" for e in entries):
        shutil.rmtree(run_dir, ignore_errors=True)
