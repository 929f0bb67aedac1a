"""The run directory's files: `metrics.json` (the run's record and its metrics), `history.jsonl`
and a failed job's `failed.json`, written atomically; the check that lets a rerun skip a
finished run and never overwrite another config's result; and a sweep folder's records by
fingerprint (`job_records`), where a job finds its config finished in another job folder
(`layerft/run_folder.py`).

Serves no config group; `layerft/run_record.py` says what a record holds besides the metrics,
`layerft/fingerprint.py` which config keys a finished result ignores.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import os
import traceback
from pathlib import Path
from typing import Any

from layerft.credentials import without_secrets
from layerft.errors import LayerftError, error_line, first_line, traceback_wanted
from layerft.file_io import file_error, mtime_or_zero, sync_to_disk, write_json_atomic
from layerft.record_migration import migrated_fingerprints
from layerft.run_record import (
    ERROR_KEY,
    ERROR_TYPE_KEY,
    FINGERPRINT_KEY,
    RESULTS_VERSION,
    RUN_PREFIX,
    RunRecord,
    older_results,
    record_problem,
    results_version,
)

log = logging.getLogger(__name__)

METRICS_FILE = "metrics.json"
# One line per tracker log call: {"step": n, "<stage>/<name>": x, ...}
HISTORY_FILE = "history.jsonl"
# A job that failed in a sweep: its record's `run/*` entries + the error
FAILED_FILE = "failed.json"
# How the refusal to report a result computed on data changed since names it (run_folder.
# check_same_data); a failed.json holding it is stale once that data is back (sweep_records).
ON_OTHER_DATA = "is this config's result on other data"
# A run folder's subfolder of the stages' checkpoints (`<stage>/checkpoint-<step>`).
CHECKPOINTS_DIR = "checkpoints"
# `<stage>/best_untrained`: 1.0 where the best dev checkpoint is step 1, taken at lr 0 (warmup
# starts from 0): the model as given, which no trained checkpoint beat
BEST_UNTRAINED = "best_untrained"


def metrics_stamp(job_dir: Path) -> tuple[int, int] | None:
    """Which metrics.json a job folder holds (inode, modification time), None for none: a result
    written since is another file (written whole, then renamed into place). No clock is compared,
    so a file server's clock ahead of this host's cannot pass an older result for a new one."""
    try:
        stat = (job_dir / METRICS_FILE).stat()
    except OSError:
        return None
    return stat.st_ino, stat.st_mtime_ns


class HistoryFile:
    """`history.jsonl` in the run directory: every logged step's metrics, one JSON line each
    (dev curves for plots). Each attempt writes `history.jsonl.partial` as it goes, started
    afresh, and `publish` puts it in place when the run finishes: a finished run's history stays
    whole while a forced rerun of it is killed or fails."""

    def __init__(self, run_dir: Path) -> None:
        self.final = run_dir / HISTORY_FILE
        self.path = run_dir / f"{HISTORY_FILE}.partial"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text("", encoding="utf-8")

    def log(self, metrics: dict[str, float], step: int) -> None:
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps({"step": step, **metrics}, allow_nan=True) + "\n")

    def publish(self) -> None:
        sync_to_disk(self.path)
        os.replace(self.path, self.final)


def read_history(run_dir: Path) -> list[dict[str, float]]:
    """The lines of a run's `history.jsonl` (none if it has no such file)."""
    path = run_dir / HISTORY_FILE
    if not path.exists():
        return []
    return [
        json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()
    ]


def write_metrics(
    run_dir: Path, metrics: dict[str, float], record: RunRecord, extra: dict[str, Any] | None = None
) -> Path:
    """Write `metrics.json`: flat `<stage>/<name>` metrics beside the record's `run/*` entries
    (and `extra` ones: `run/stage1`, where stage 1 came from)."""
    path = run_dir / METRICS_FILE
    write_json_atomic(path, {**metrics, **record.entries(), **(extra or {})})
    return path


def read_finished(
    run_dir: Path, fingerprints: tuple[str, ...], new_folder: str
) -> dict[str, float] | None:
    """The metrics of a finished run of this config (one of its `fingerprints`: RunRecord's) in
    `run_dir`, or None if there is none.

    Another config's result there is never overwritten: that is a LayerftError telling the user to
    pick a new folder as `new_folder` says (`hydra.run.dir=<new folder>`, ...). A file
    that is no result at all (not a JSON object, or an empty one: damaged, as layerft writes it
    atomically) is set aside as `metrics.json.corrupt[.N]` with a warning, and the run is redone.
    """
    path = run_dir / METRICS_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except OSError as err:
        raise file_error("read", path, err) from err
    except json.JSONDecodeError as err:
        data = err
    if not isinstance(data, dict) or not data:  # one holding metrics is someone's: refused
        problem = (
            f"not JSON ({data})" if isinstance(data, Exception)
            else "not a JSON object" if not isinstance(data, dict)
            else "not a result (an empty JSON object)"
        )  # fmt: skip
        return _set_aside(path, problem)
    assert not isinstance(fingerprints, str), "a tuple of fingerprints, not one"
    if (problem := record_problem(data, finished=True)) is not None:
        if data.get(FINGERPRINT_KEY) in fingerprints:  # this config's own, damaged: redone
            return _set_aside(path, f"a damaged run record ({problem})")
        raise LayerftError(
            f"{path} is a damaged run record ({problem}) that is not this config's, which is never "
            f"overwritten: run this one in a new folder ({new_folder}) or delete {path} to redo it"
        )
    if not _of_config(run_dir, data, fingerprints):
        raise LayerftError(
            f"{run_dir} holds the result of another config ({path}), which is never overwritten; "
            f"run this one in a new folder ({new_folder}) or delete {path} to redo it"
        )
    if (version := results_version(data)) < RESULTS_VERSION:
        log.warning(
            "%s was computed by an older layerft (%s): reused as it is; force_rerun=true "
            "(sweep.py --force) reruns it",
            path,
            older_results(version),
        )
    return {key: value for key, value in data.items() if not key.startswith(RUN_PREFIX)}


def _set_aside(path: Path, problem: str) -> None:
    """Set a damaged metrics.json aside as `metrics.json.corrupt` (`.corrupt.1`, ... where one is
    there already: every damaged copy is kept), warned about: the run is redone."""
    names = (f"{METRICS_FILE}.corrupt" + (f".{n}" if n else "") for n in itertools.count())
    kept = next(p for p in map(path.with_name, names) if not (p.exists() or p.is_symlink()))
    with contextlib.suppress(FileNotFoundError):  # another process set it aside, and says so
        os.replace(path, kept)
        log.warning("%s is %s: kept as %s; the run is redone", path, problem, kept.name)


def check_still_ours(run_dir: Path, record: RunRecord, hint: str) -> None:
    """Before a trained run writes its result in `run_dir`: another config's result that
    appeared there while it trained (a second train.py given the same folder that finished
    first, where the folder could not be locked: run_claim) is never overwritten; this run's
    result is not written. A result of this config, none, or an unreadable one: nothing said."""
    path = run_dir / METRICS_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    if not isinstance(data, dict) or not data or data.get(FINGERPRINT_KEY) in record.fingerprints:
        return  # no one's result, or this config's own (a damaged one: read_finished's to set aside)
    if record_problem(data, True) or not _of_config(run_dir, data, record.fingerprints):
        raise LayerftError(
            f"{run_dir} came to hold the result of another config ({path}) while this run "
            f"trained: it is kept, and this run's result is not written; run this one in a new "
            f"folder ({hint})"
        )


def _of_config(run_dir: Path, record: dict[str, Any], fingerprints: tuple[str, ...]) -> bool:
    """Whether a record in `run_dir` is of the config with these fingerprints (RunRecord's), also
    as this scheme keys a record of an earlier one (migrated_fingerprints)."""
    if record.get(FINGERPRINT_KEY) in fingerprints:
        return True
    migrated = migrated_fingerprints(run_dir, record)
    return migrated is not None and migrated[0] in fingerprints


def read_failure(run_dir: Path) -> dict[str, Any] | None:
    """The record a failed job left in `run_dir` (its failed.json), or None when it is gone (a
    later run or sweep removed it) or unreadable."""
    try:
        failure = json.loads((run_dir / FAILED_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return failure if isinstance(failure, dict) else None


def read_record(run_dir: Path) -> dict[str, Any]:
    """The finished result's record in `run_dir` (its metrics.json)."""
    return json.loads((run_dir / METRICS_FILE).read_text(encoding="utf-8"))


def record_failure(run_dir: Path, entries: dict[str, Any], err: BaseException) -> None:
    """`failed.json`: the job's record and its error's first line. The log gets the line, and the
    traceback unless the error is a user error (LayerftError; LAYERFT_TRACEBACK=1 shows it too).

    A failed.json that cannot be written (the same read-only or full disk that failed the job) is
    logged, not raised: the sweep goes on and reports the job as not run."""
    first = first_line(err)
    user_error = isinstance(err, LayerftError) and not traceback_wanted()
    trace = "" if user_error else "\n" + "".join(traceback.format_exception(err)).rstrip()
    # masked as the W&B run's `run/error` is, should a library have echoed a key into the error
    log.error("job failed (%s): %s", run_dir, without_secrets(first + trace))
    try:
        write_json_atomic(
            run_dir / FAILED_FILE,
            {
                **entries,
                ERROR_KEY: without_secrets(error_line(err)),
                ERROR_TYPE_KEY: type(err).__name__,
            },
        )
    except LayerftError as write_err:
        log.error("the failure is not recorded (%s); the job counts as not run", write_err)


def job_records(sweep_dir: Path, name: str) -> dict[str, Path]:
    """fingerprint -> job folder, for every `name` file (metrics.json, failed.json) in the sweep."""
    found: dict[str, Path] = {}
    for path in sorted(sweep_dir.glob(f"*/{name}"), key=mtime_or_zero):
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
            fingerprint = record.get(FINGERPRINT_KEY)
        except (OSError, ValueError, AttributeError):
            continue  # a corrupt file counts as not finished; the job reruns and replaces it
        if record_problem(record, finished=name == METRICS_FILE) is not None:
            continue  # damaged: not finished; its config's rerun sets it aside (read_finished)
        if isinstance(fingerprint, str):
            found[fingerprint] = path.parent
            if (migrated := migrated_fingerprints(path.parent, record)) is not None:
                found[migrated[0]] = path.parent  # an earlier scheme's record, as this one keys it
    return found
