"""Reading a sweep's job records: every `metrics.json` / `failed.json` under a folder, one job per
config, and the settings each job ran with (named and compared as `layerft/sweep_settings.py`
says: numbers by value as Hydra reads them, `1e-4` is `0.0001`, everything else as text).

Serves no config group: `layerft/sweep_table.py` folds these jobs into rows. It reads only what each
run writes, never a tracker, and of `.hydra/` (whose presence marks a started job) only the config
layerft keeps of a finished run, for a record an earlier fingerprint scheme wrote
(run_record.migrated_fingerprints).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from layerft.errors import LayerftError
from layerft.file_io import file_error
from layerft.results import FAILED_FILE, METRICS_FILE, changed_since
from layerft.run_record import (
    FINGERPRINT_KEY,
    RESULTS_VERSION,
    RUN_PREFIX,
    SEEDLESS_FINGERPRINT_KEY,
    UNREAD_KEY,
    fingerprint_scheme,
    migrated_fingerprints,
    results_version,
)
from layerft.sweep_settings import job_settings, same_settings_per_config, same_spelling

log = logging.getLogger(__name__)

UNVALIDATED = "(unvalidated)"  # a fingerprint's place in a failure before its config validated
HYDRA_SUBDIR = ".hydra"  # Hydra's `output_subdir`, written into a job's folder before it starts


@dataclass(frozen=True)
class Job:
    """One job of a sweep as its record says: finished (metrics) or failed (error)."""

    run_dir: Path
    mtime: float  # of its record file: of two runs of one config, the newer wins
    fingerprint: str
    seedless_fingerprint: str | None  # None in a record written before it existed
    settings: dict[str, str]  # choices merged with overrides, minus seed and result-neutral keys;
    # from read_jobs, a number in one spelling throughout the sweep (`same_spelling`)
    seed: int
    selection_metric: str
    higher_is_better: bool
    metrics: dict[str, float]  # empty when failed
    error: str | None = None  # "<type>: <message>" when failed
    later_attempt: bool = False  # a failure newer than the result its folder keeps
    # A finished job's splits whose data file holds other bytes now (results.changed_since): its
    # result is on other data, left out of the table.
    changed_data: tuple[str, ...] = ()
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
    # (run_record.migrated_fingerprints). Its seedless fingerprint is left out (None), and another
    # such record of its settings and seed is the same run, not another config.
    unread_in_fingerprint: bool = False
    # The settings it never read that its fingerprint does not tell apart (RunRecord.unread; none
    # in a record written before fingerprint scheme 3): not in `settings`, and no setting of its row.
    unread: tuple[str, ...] = ()

    @property
    def older(self) -> bool:
        """Whether an older layerft computed it (run_record.RESULTS_VERSION)."""
        return self.results_version < RESULTS_VERSION


def read_jobs(sweep_dir: Path) -> list[Job]:
    """Every job under `sweep_dir` at any depth, one per config and per (settings, seed): a finished
    record before a failed one, then the newer. A result on data changed since (`changed_data`)
    is listed too, and keeps no (settings, seed) from another job; so is a record of another
    config that lost its (settings, seed) to the one kept (`replaced_by`)."""
    if not sweep_dir.is_dir():
        raise LayerftError(f"no sweep folder {sweep_dir}")
    dirs = sorted({p.parent for name in (METRICS_FILE, FAILED_FILE) for p in sweep_dir.rglob(name)})
    if not dirs:
        raise LayerftError(f"no job in {sweep_dir}: no {METRICS_FILE} or {FAILED_FILE} under it")
    records = _latest([read_job(d) for d in dirs], lambda job: job.fingerprint)
    records = [_with_later_error(job) if job.changed_data else job for job in records]
    stale = {job.run_dir for job in records if job.changed_data}
    # A failure newer than the result beside it (a failed --force rerun, or another config refused
    # in that folder) is listed too: the table keeps the earlier result, the failure is not hidden.
    reruns = [
        job
        for d in dirs
        if d not in stale and _failed_after_finishing(d) and (job := _later_failure(d))
    ]
    # Superseded records go first, so that no spelling only they used names a row.
    jobs = same_spelling([*records, *reruns])
    records, reruns = jobs[: len(records)], jobs[len(records) :]
    current = same_settings_per_config([job for job in records if not job.changed_data])

    def slot(job: Job) -> tuple[SettingsKey, int]:  # a row and a seed
        return settings_key(job.settings), job.seed

    kept = _latest(current, slot)
    winners = {slot(job): job for job in kept}
    replaced = []  # another config's record won its row and seed: listed, never silently dropped
    for job in current:
        winner = winners[slot(job)]
        if winner is not job and not same_run(winner, job):
            replaced.append(replace(job, replaced_by=winner.run_dir))
    on_other_data = [job for job in records if job.changed_data]
    listed = [*kept, *on_other_data, *reruns, *replaced]
    return sorted(listed, key=lambda j: (j.run_dir, j.error is not None))


def unfinished_dirs(sweep_dir: Path) -> list[Path]:
    """Job folders Hydra started that hold no record: killed, or still running in a live sweep."""
    records = (METRICS_FILE, FAILED_FILE)
    return sorted(
        path.parent
        for path in sweep_dir.rglob(HYDRA_SUBDIR)
        if path.is_dir() and not any((path.parent / name).exists() for name in records)
    )


def _later_failure(run_dir: Path) -> Job | None:
    """The failure recorded after the result in `run_dir`: a later attempt of that result's
    config, or another config's own failure (refused there, as that result is not its own)."""
    job = _failure_beside_result(run_dir)
    if job is None or not _attempt_of(read_job(run_dir, METRICS_FILE), job):
        return job
    error = f"{job.error} (a later attempt; the earlier result is kept)"
    return replace(job, error=error, later_attempt=True)


def _attempt_of(result: Job, failure: Job) -> bool:
    """Whether `failure` was an attempt at `result`'s config: the same one, or, for a failure
    before its config validated (no fingerprint), the same settings and seed."""
    if failure.fingerprint.startswith(UNVALIDATED):
        return (settings_key(failure.settings), failure.seed) == (
            settings_key(result.settings),
            result.seed,
        )
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


SettingsKey = tuple[tuple[str, str], ...]


def same_run(one: Job, other: Job) -> bool:
    """Whether two records of one row and seed are one config's (a newer record of it wins)."""
    return one.fingerprint == other.fingerprint or (
        one.unread_in_fingerprint and other.unread_in_fingerprint
    )


def settings_key(settings: dict[str, str]) -> SettingsKey:
    """The settings as a hashable key, whatever their order: a combination's identity."""
    return tuple(sorted(settings.items()))


def _latest(jobs: list[Job], same: Callable[[Job], Any]) -> list[Job]:
    kept: dict[Any, Job] = {}
    for job in sorted(jobs, key=lambda j: (j.error is None, j.mtime)):
        old = kept.get(same(job))
        if old is not None and same_run(old, job):
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
    except (KeyError, TypeError, ValueError) as err:
        raise LayerftError(f"corrupt run record {path}: {err}") from None


def _job(run_dir: Path, path: Path, data: Any) -> Job:
    if not isinstance(data, dict):
        raise TypeError("not a JSON object")
    run = {key: data[RUN_PREFIX + key] for key in ("choices", "seed", "overrides")}
    finished = path.name == METRICS_FILE
    if finished or FINGERPRINT_KEY in data:
        run |= {key: data[RUN_PREFIX + key] for key in ("selection_metric", "higher_is_better")}
    else:  # failed before its config validated: no fingerprint, no selection metric
        run |= {"selection_metric": "", "higher_is_better": True}
    metrics = {k: v for k, v in data.items() if not k.startswith(RUN_PREFIX)}
    bad = [k for k, v in metrics.items() if isinstance(v, bool) or not isinstance(v, int | float)]
    if bad:
        raise ValueError(f"{bad[0]} is not a number")
    error, kind = str(data.get("run/error", "(no message)")), data.get("run/error_type")
    if kind and not error.startswith(f"{kind}:"):  # sweep.py writes "<type>: <first line>"
        error = f"{kind}: {error}"
    fingerprint, seedless = data.get(FINGERPRINT_KEY), data.get(SEEDLESS_FINGERPRINT_KEY)
    unread = tuple(data.get(UNREAD_KEY, ()))
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
        results_version=results_version(data),
        unread_in_fingerprint=unread_keyed,
        unread=unread,
    )
