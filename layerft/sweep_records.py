"""Reading a sweep's job records: every `metrics.json` / `failed.json` under a folder, one job per
config (each read by `layerft/sweep_job.py`), and the settings each job ran with (named and compared as `layerft/sweep_settings.py`
says: numbers by value as Hydra reads them, `1e-4` is `0.0001`, everything else as text).

Serves no config group: `layerft/sweep_table.py` folds these jobs into rows. It reads only what each
run writes, never a tracker, and of `.hydra/` (whose presence marks a started job) only the config
layerft keeps of a finished run, for a record an earlier fingerprint scheme wrote
(record_migration.migrated_fingerprints).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from layerft.data_changes import changed_since
from layerft.errors import LayerftError
from layerft.model_files import (
    MODEL_COMMIT_KEY,
    MODEL_FILES_KEY,
    MODEL_FOLDER_KEY,
    MODEL_REF_KEY,
    ON_OTHER_MODEL,
    model_changed_since,
)
from layerft.results import FAILED_FILE, METRICS_FILE, ON_OTHER_DATA, read_failure
from layerft.run_record import DATA_FILES_KEY, DATA_PATHS_KEY, FINGERPRINT_KEY
from layerft.sweep_job import UNVALIDATED, Job, SettingsKey, read_job, same_run, settings_key
from layerft.sweep_settings import same_settings_per_config, same_spelling

log = logging.getLogger(__name__)

HYDRA_SUBDIR = ".hydra"  # Hydra's `output_subdir`, written into a job's folder before it starts


def read_sweep(
    sweep_dir: Path, duplicates: list[Job] | None = None
) -> tuple[list[Job], list[Path]]:
    """Every job under `sweep_dir` at any depth, one per config and per (settings, seed): a finished
    record before a failed one, then the newer. A result on data changed since (`changed_data`)
    is listed too, and keeps no (settings, seed) from another job; so is a record of another
    config that lost its (settings, seed) to the one kept (`replaced_by`). So is a result on model
    files changed since, as one on changed data (`Job.changed`). Then the folders whose record
    cannot be read (warned about; unfinished_dirs lists them). `duplicates` gets the results left
    out as another result of the same run (a sweep folder copied into the one read, say)."""
    if not sweep_dir.is_dir():
        raise LayerftError(f"no sweep folder {sweep_dir}")
    dirs = record_dirs(sweep_dir)
    if not dirs:
        raise LayerftError(f"no job in {sweep_dir}: no {METRICS_FILE} or {FAILED_FILE} under it")
    readable = {d: job for d in dirs if (job := _readable_job(d))}
    duplicates = [] if duplicates is None else duplicates
    records = _latest(list(readable.values()), lambda job: job.fingerprint, duplicates)
    records = [_with_later_error(job) if job.changed else job for job in records]
    stale = {job.run_dir for job in records if job.changed}
    # A failure newer than the result beside it (a failed --force rerun, or another config refused
    # in that folder) is listed too: the table keeps the earlier result, the failure is not hidden.
    reruns = [
        job
        for d in dirs
        if d in readable
        and d not in stale
        and _failed_after_finishing(d)
        and (job := _later_failure(d))
    ]
    # Another config refused in a result's folder (train.py -m given that folder) is listed only
    # while that config has no record of its own: finished or failed elsewhere, the refusal is old.
    recorded = {job.fingerprint for job in records}
    reruns = [job for job in reruns if job.later_attempt or job.fingerprint not in recorded]
    # Superseded records go first, so that no spelling only they used names a row.
    jobs = same_spelling([*records, *reruns])
    records, reruns = jobs[: len(records)], jobs[len(records) :]
    current = same_settings_per_config([job for job in records if not job.changed])

    def slot(job: Job) -> tuple[SettingsKey, int]:  # a row and a seed
        return settings_key(job.settings), job.seed

    kept = _latest(current, slot, duplicates)
    winners = {slot(job): job for job in kept}
    replaced = []  # another config's record won its row and seed: listed, never silently dropped
    for job in current:
        winner = winners[slot(job)]
        if winner is not job and not same_run(winner, job):
            replaced.append(replace(job, replaced_by=winner.run_dir))
    on_other_data = [job for job in records if job.changed]
    listed = [*kept, *on_other_data, *reruns, *replaced]
    damaged = [d for d in dirs if d not in readable]
    return sorted(listed, key=lambda j: (j.run_dir, j.error is not None)), damaged


def unfinished_dirs(sweep_dir: Path, damaged: Sequence[Path] = ()) -> list[Path]:
    """Job folders Hydra started that hold no record (killed, or still running in a live sweep),
    and the `damaged` ones, whose record cannot be read (read_sweep's: its grid's rerun redoes it,
    as results.first_finished does)."""
    started = {path.parent for path in sweep_dir.rglob(HYDRA_SUBDIR) if is_unfinished(path.parent)}
    return sorted(started | set(damaged))


def record_dirs(sweep_dir: Path) -> list[Path]:
    """The folders under `sweep_dir` that hold a record (metrics.json, failed.json); a job folder
    linked into it too (`*/` follows a link, rglob's `**/` none; as results.job_records finds it)."""
    names = (METRICS_FILE, FAILED_FILE)  # each once: a folder, not a link to it, where both are
    found = {p.parent for n in names for at in ("*/", "**/") for p in sweep_dir.glob(at + n)}
    return sorted({d.resolve(): d for d in sorted(found, key=Path.is_symlink)[::-1]}.values())


def _readable_job(run_dir: Path) -> Job | None:
    """The job a folder's record says, or None, warned about, when the record cannot be read: the
    others are still tabled (it is listed as unfinished)."""
    try:
        return read_job(run_dir)
    except LayerftError as err:
        log.warning("%s; left out of the table, listed as unfinished (%s)", err, _redo(run_dir))
        return None


def _redo(run_dir: Path) -> str:
    """How an unreadable record's job is redone: a rerun sets aside what is no JSON object or an
    empty one, and a damaged record of its own config (results.read_finished); any other a rerun
    takes for another config's result (never overwritten)."""
    try:
        record = json.loads((run_dir / METRICS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        record = None
    if not isinstance(record, dict) or not record:
        return "a rerun redoes it"
    if isinstance(record.get(FINGERPRINT_KEY), str):  # results.read_finished
        return "a rerun of its config sets it aside and redoes it"
    return "delete it to redo it"


def is_unfinished(folder: Path) -> bool:
    """Whether Hydra started a job in `folder` that wrote no record (metrics.json, failed.json)."""
    return (folder / HYDRA_SUBDIR).is_dir() and not holds_record(folder)


def holds_record(folder: Path) -> bool:
    """Whether a job folder holds a result or a failure."""
    return any((folder / name).exists() for name in (METRICS_FILE, FAILED_FILE))


def _later_failure(run_dir: Path) -> Job | None:
    """The failure recorded after the result in `run_dir`: a later attempt of that result's
    config, or another config's own failure (refused there, as that result is not its own).
    None for an attempt refused because a data or model file had changed since the result, when
    the files it read hold the result's bytes again: that refusal is stale, the result is current."""
    job = _failure_beside_result(run_dir)
    if job is None:
        return None
    result = read_job(run_dir, METRICS_FILE)
    if not _attempt_of(result, job):
        return job
    refused = any(reason in (job.error or "") for reason in (ON_OTHER_DATA, ON_OTHER_MODEL))
    if refused and _back_on_its_data(run_dir):
        return None
    error = f"{job.error} (a later attempt; the earlier result is kept)"
    return replace(job, error=error, later_attempt=True)


def _back_on_its_data(run_dir: Path) -> bool:
    """Whether the data and model files a refused attempt read (the paths in its failed.json,
    which another working directory may resolve elsewhere than the result's) hold its result's
    bytes again."""
    try:
        result = json.loads((run_dir / METRICS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    failure = read_failure(run_dir)
    paths = failure.get(DATA_PATHS_KEY) if failure is not None else None
    if not isinstance(paths, dict) or not isinstance(result, dict):
        return False
    data = {DATA_FILES_KEY: result.get(DATA_FILES_KEY), DATA_PATHS_KEY: paths}
    folder = failure.get(MODEL_FOLDER_KEY)  # as the refused attempt read it, as its data paths
    model = {MODEL_FILES_KEY: result.get(MODEL_FILES_KEY), MODEL_FOLDER_KEY: folder}
    model |= {key: result.get(key) for key in (MODEL_COMMIT_KEY, MODEL_REF_KEY)}  # a hub model's
    return not changed_since(data) and not model_changed_since(model)


def _attempt_of(result: Job, failure: Job) -> bool:
    """Whether `failure` was an attempt at `result`'s config: the same one, or, for a failure
    before its config validated (no fingerprint), the same settings and seed."""
    if failure.fingerprint.startswith(UNVALIDATED):
        same_row = settings_key(failure.settings) == settings_key(result.settings)
        return same_row and failure.seed == result.seed
    return same_run(result, failure)


def _with_later_error(job: Job) -> Job:
    """A result on changed data with the error of a later attempt in its folder, if any."""
    if not _failed_after_finishing(job.run_dir):
        return job
    failure = _failure_beside_result(job.run_dir)
    return replace(job, later_error=failure.error if failure else None)


def _failure_beside_result(run_dir: Path) -> Job | None:
    """The failed.json recorded after the result in `run_dir`; None (warned) if it cannot be read:
    the job is finished and never reruns, so a damaged failed.json beside its result would
    otherwise stop every later aggregation of the folder."""
    try:
        return read_job(run_dir, FAILED_FILE)
    except LayerftError as err:
        log.warning("%s; ignored, the result beside it stands", err)
        return None


def _failed_after_finishing(run_dir: Path) -> bool:
    finished, failed = run_dir / METRICS_FILE, run_dir / FAILED_FILE
    return (
        finished.exists() and failed.exists() and failed.stat().st_mtime > finished.stat().st_mtime
    )


def _latest(jobs: list[Job], same: Callable[[Job], Any], duplicates: list[Job]) -> list[Job]:
    kept: dict[Any, Job] = {}
    for job in sorted(jobs, key=lambda j: (j.error is None, j.mtime)):
        old = kept.get(same(job))
        if old is not None and same_run(old, job):
            duplicates += [old] if old.error is None else []  # a failure before it is no result
            metric = job.selection_metric
            ours, theirs = old.metrics.get(metric), job.metrics.get(metric)
            # two results (a rerun on a GPU, or a copied folder): which one counts is said; a
            # failure has no score to differ by, and the result beside it wins however old
            if old.error is None and _differ(ours, theirs):
                log.warning(
                    "%s and %s are records of the same run with %s %s and %s; the table keeps "
                    "the newer, %s", old.run_dir, job.run_dir, metric, ours, theirs, job.run_dir,
                )  # fmt: skip
            else:
                log.info("%s: a newer record of the same run wins over it", old.run_dir)
        elif old is not None:  # e.g. `x=1` and `x=1.0` on a str field: two configs, one row
            log.warning(
                "%s and %s have the same settings and seed but different configs; the table "
                "keeps only the second (finished before failed, then newer)",
                old.run_dir,
                job.run_dir,
            )
        kept[same(job)] = job
    return sorted(kept.values(), key=lambda j: j.run_dir)


def _differ(one: float | None, other: float | None) -> bool:
    """Whether two records' scores differ (NaN is NaN's equal here: a copy of the same record)."""
    both_nan = one is not None and other is not None and math.isnan(one) and math.isnan(other)
    return one != other and not both_nan
