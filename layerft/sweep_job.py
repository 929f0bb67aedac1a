"""One job of a sweep as its record says (`Job`): reading one run folder's `metrics.json` or
`failed.json` (`read_job`), and what names its row and tells two configs apart (`settings_key`,
`same_run`). `layerft/sweep_records.py` reads every job under a sweep folder with these.

Serves no config group. It reads only what the run wrote, and, for a record an earlier
fingerprint scheme wrote, the config layerft keeps beside it (record_migration.migrated_fingerprints).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from layerft.data_changes import changed_since
from layerft.errors import LayerftError
from layerft.file_io import file_error
from layerft.model_files import model_changed_since, on_other
from layerft.record_migration import migrated_fingerprints
from layerft.results import FAILED_FILE, METRICS_FILE
from layerft.run_record import (
    CPU_THREADS_KEY,
    DEVICE_KEY,
    ERROR_KEY,
    ERROR_TYPE_KEY,
    FILE_SETTINGS_KEY,
    FINGERPRINT_KEY,
    RESULTS_VERSION,
    RUN_PREFIX,
    SEEDLESS_FINGERPRINT_KEY,
    UNREAD_KEY,
    fingerprint_scheme,
    record_problem,
    results_version,
)
from layerft.sweep_settings import job_settings

UNVALIDATED = "(unvalidated)"  # a fingerprint's place in a failure before its config validated


@dataclass(frozen=True)
class Job:
    """One job of a sweep as its record says: finished (metrics) or failed (error)."""

    run_dir: Path
    mtime: float  # of its record file: of two runs of one config, the newer wins
    fingerprint: str
    seedless_fingerprint: str | None  # None in a record written before it existed
    settings: dict[str, str]  # choices merged with overrides, minus seed and result-neutral keys;
    # from read_sweep, a number in one spelling throughout the sweep (`same_spelling`)
    seed: int
    selection_metric: str
    higher_is_better: bool
    metrics: dict[str, float]  # empty when failed
    error: str | None = None  # "<type>: <message>" when failed
    later_attempt: bool = False  # a failure newer than the result its folder keeps
    # A finished job's splits whose data file holds other bytes now (data_changes.changed_since), and
    # the paths of its model files that do (model_files.model_changed_since): its result is on
    # other data or model files, left out of the table.
    changed_data: tuple[str, ...] = ()
    changed_model: tuple[str, ...] = ()
    # Of such a result: the error of a later attempt in its folder (refused on that data, or a
    # failed --force rerun); one job, shown once, beside the result it could not replace.
    later_error: str | None = None
    # A record the table leaves out for another config's record of the same settings and seed
    # (a default changed between them): the folder of the one it keeps.
    replaced_by: Path | None = None
    # The results version of the layerft that wrote the record (run_record.RESULTS_VERSION).
    results_version: int = RESULTS_VERSION
    # A run without stage 1 recorded by fingerprint scheme 1 (fingerprint.FINGERPRINT_SCHEME): its
    # fingerprints hash the layer split and stage-1 schedule it never read, so they tell it apart
    # from the same run under another split, and no config kept beside it gave this scheme's
    # (record_migration.migrated_fingerprints). Its seedless fingerprint is left out (None), and another
    # such record of its settings and seed is the same run, not another config.
    unread_in_fingerprint: bool = False
    # The settings it never read that its fingerprint does not tell apart (RunRecord.unread; none
    # in a record written before fingerprint scheme 3): not in `settings`, and no setting of its row.
    unread: tuple[str, ...] = ()
    # The keys its grid or experiment file set, with their values (RunRecord.file_settings; None:
    # an older record, which does not say): not in `settings`, which name what was chosen.
    file_settings: dict[str, str] | None = None
    # torch's CPU threads a finished job computed at (run_record.CPU_THREADS_KEY; None: on a GPU, or
    # an older record): a job at another count than its baseline's pair differs in float sums' order
    # and, with stage 1, started from another stored stage 1 (sweep_notes).
    cpu_threads: int | None = None
    # What a finished job trained on (run_record.DEVICE_KEY; None: an older record, whose CPU
    # threads say no more: a Mac's MPS run and a torchrun one recorded them too).
    device: str | None = None

    @property
    def changed(self) -> tuple[str, ...]:
        """The splits and model files that hold other bytes now than its result was computed on."""
        return (*self.changed_data, *self.changed_model)

    @property
    def older(self) -> bool:
        """Whether an older layerft computed it (run_record.RESULTS_VERSION)."""
        return self.results_version < RESULTS_VERSION


SettingsKey = tuple[tuple[str, str], ...]


def same_run(one: Job, other: Job) -> bool:
    """Whether two records of one row and seed are one config's (a newer record of it wins)."""
    return one.fingerprint == other.fingerprint or (
        one.unread_in_fingerprint and other.unread_in_fingerprint
    )


def changed_files(jobs: list[Job], files: bool = False) -> str:
    """What changed under these results (model_files.on_other): data, model files, or both."""
    return on_other(
        [j for j in jobs if j.changed_data], [j for j in jobs if j.changed_model], files
    )


def settings_key(settings: dict[str, str]) -> SettingsKey:
    """The settings as a hashable key, whatever their order: a combination's identity."""
    return tuple(sorted(settings.items()))


def read_job(run_dir: Path, name: str | None = None) -> Job:
    """The job in `run_dir` as its `name` file records it; by default its `metrics.json` if it
    finished, else its `failed.json`."""
    path = run_dir / (name or METRICS_FILE)
    if name is None and not path.exists():
        path = run_dir / FAILED_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise file_error("read", path, err) from err
    except json.JSONDecodeError as err:
        raise LayerftError(f"corrupt run record {path}: not JSON ({err})") from None
    try:
        return _job(run_dir, path, data)
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        raise LayerftError(f"corrupt run record {path}: {err}") from None


def _job(run_dir: Path, path: Path, data: Any) -> Job:
    finished = path.name == METRICS_FILE
    if not isinstance(data, dict):
        raise TypeError("not a JSON object")
    run = {key: data[RUN_PREFIX + key] for key in ("choices", "seed", "overrides")}
    if finished or FINGERPRINT_KEY in data:
        run |= {key: data[RUN_PREFIX + key] for key in ("selection_metric", "higher_is_better")}
    else:  # failed before its config validated: no fingerprint, no selection metric
        run |= {"selection_metric": "", "higher_is_better": True}
    if (problem := record_problem(data, finished)) is not None:
        raise ValueError(problem)
    metrics = {k: v for k, v in data.items() if not k.startswith(RUN_PREFIX)}
    error, kind = str(data.get(ERROR_KEY, "(no message)")), data.get(ERROR_TYPE_KEY)
    # error_line writes "<type>: <first line>", or the type alone for an error without a message
    if kind and error != kind and not error.startswith(f"{kind}:"):
        error = f"{kind}: {error}"
    fingerprint, seedless = data.get(FINGERPRINT_KEY), data.get(SEEDLESS_FINGERPRINT_KEY)
    unread = tuple(data.get(UNREAD_KEY, ()))
    if not isinstance(file_settings := data.get(FILE_SETTINGS_KEY), dict | None):
        raise TypeError(f"{FILE_SETTINGS_KEY} is not a JSON object")
    threads = data.get(CPU_THREADS_KEY)
    if threads is not None and (type(threads) is not int or threads < 1):
        raise TypeError(f"{CPU_THREADS_KEY} is not a positive whole number")
    device = data.get(DEVICE_KEY)
    if device is not None and (not isinstance(device, str) or not device.strip()):
        raise TypeError(f"{DEVICE_KEY} is not a device's name")
    if (migrated := migrated_fingerprints(run_dir, data)) is not None:
        # as this scheme keys it, from the config kept beside it
        fingerprint, seedless, unread = migrated
    # Else a record of scheme 1 without stage 1 keys settings it never read (Job's field).
    unread_keyed = migrated is None and fingerprint_scheme(data) < 2 and fingerprint is not None
    unread_keyed = unread_keyed and run["choices"].get("injection_task") == "none"
    return Job(
        run_dir,
        path.stat().st_mtime,
        str(fingerprint) if fingerprint is not None else f"{UNVALIDATED} {run_dir}",
        None if seedless is None or unread_keyed else str(seedless),
        job_settings(run["choices"], run["overrides"], unread),
        int(run["seed"]),
        str(run["selection_metric"]),
        bool(run["higher_is_better"]),
        {k: float(v) for k, v in metrics.items()} if finished else {},
        None if finished else error,
        changed_data=tuple(changed_since(data)) if finished else (),
        changed_model=tuple(model_changed_since(data)) if finished else (),
        results_version=results_version(data),
        unread_in_fingerprint=unread_keyed,
        unread=unread,
        file_settings=None
        if file_settings is None
        else {str(k): str(v) for k, v in file_settings.items()},
        cpu_threads=threads if finished else None,
        device=device if finished else None,
    )
