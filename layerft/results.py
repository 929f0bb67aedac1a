"""The run directory's record: `metrics.json`, written atomically, and the check that lets a rerun
skip a finished run and never overwrite another config's result.

Serves no config group; `RESULT_NEUTRAL_KEYS` names the config keys a finished result ignores.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import os
import tempfile
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from layerft.errors import LayerftError, error_line, traceback_wanted
from layerft.fingerprint import (
    AT_DEFAULT_WHEN_UNREAD,
    FINGERPRINT_SCHEME,
    config_fingerprint,
    earlier_fingerprints,
    seedless_fingerprint,
    unhashed_settings,
    unread_prefix,
)

log = logging.getLogger(__name__)

METRICS_FILE = "metrics.json"
HISTORY_FILE = (
    "history.jsonl"  # one line per tracker log call: {"step": n, "<stage>/<name>": x, ...}
)
FAILED_FILE = (
    "failed.json"  # a job that failed in a sweep: its record's `run/*` entries + the error
)
FINGERPRINT_KEY = "run/config_fingerprint"
DATA_FILES_KEY = "run/data_files"  # `<group>.<split>` -> sha256 of the file it read
DATA_PATHS_KEY = "run/data_paths"  # `<group>.<split>` -> that file's resolved path
# The same without the seed: equal across the seeds of one config, so a sweep table can tell a row
# of seeds from a row whose seeds ran different configs (a YAML default changed between them).
SEEDLESS_FINGERPRINT_KEY = "run/seedless_fingerprint"
RUN_PREFIX = "run/"  # metrics.json keys that describe the run; every other key is a float metric

# What a run measures depends on layerft's code as well as on its config. A change that alters
# some config's results (a fixed bug, another default in code) bumps RESULTS_VERSION and says what
# changed in RESULTS_CHANGES. A finished result of an older version is still reused (a resumed
# sweep never redoes finished work unasked), but called older wherever it is reused or tabled.
RESULTS_VERSION = 2
RESULTS_CHANGES = {
    2: "adapters sit after their block's dropout; layer_split.stage2.policy=scale reaches the "
    "adapters and LoRA of injected layers; korean_morph reads each text once; BERT checkpoints' "
    "pooler starts sentence heads (model.pretrained_pooler); the parser's scorers start in "
    "KLUE-baseline's ranges; a bf16 regression loss keeps the gold scores exact; klue_ner reads "
    "words (tagging.words_column)",
}
RESULTS_VERSION_KEY = "run/results_version"  # absent from the records of version 1
FINGERPRINT_SCHEME_KEY = "run/fingerprint_scheme"  # absent from the records of scheme 1
UNREAD_KEY = "run/unread_settings"  # RunRecord.unread (absent before scheme 3)


@dataclass(frozen=True)
class RunRecord:
    """What `metrics.json` says about its run besides the metrics, so readers need no `.hydra/`."""

    fingerprint: str
    seedless_fingerprint: str  # of the config without its seed
    choices: dict[str, str]  # config group -> option
    seed: int
    overrides: list[str]  # the command line's task overrides
    selection_metric: str  # the metrics.json key that picks the best dev checkpoint
    higher_is_better: bool  # for selection_metric
    sweep: str | None = None  # the sweep's name (None for a single run)
    # `<group>.<split>` -> sha256 of the local data file it read, and that file's resolved path
    data_files: dict[str, str] = field(default_factory=dict)
    data_paths: dict[str, str] = field(default_factory=dict)
    # What earlier fingerprint schemes called this config: their records of it are its result.
    earlier_fingerprints: tuple[str, ...] = ()
    # The settings it never reads that its fingerprint does not tell apart (unhashed_settings):
    # a sweep table names it without them.
    unread: tuple[str, ...] = ()

    @classmethod
    def of(
        cls,
        resolved: dict[str, Any],
        choices: dict[str, str],
        overrides: list[str],
        selection: tuple[str, bool],
        sweep: str | None = None,
        data_files: dict[str, Path] | None = None,
    ) -> RunRecord:
        """The record of a run of this resolved config; `selection`: (metric key, higher is better);
        `data_files`: `<group>.<split>` -> the local file it reads (config.data_files)."""
        fingerprint, seedless = config_fingerprint(resolved), seedless_fingerprint(resolved)
        seed = int(resolved["seed"])
        files = {split: path.resolve() for split, path in (data_files or {}).items()}
        return cls(
            fingerprint, seedless, dict(choices), seed, overrides, *selection, sweep,
            {split: file_sha256(path) for split, path in files.items()},
            {split: str(path) for split, path in files.items()},
            earlier_fingerprints(resolved), unhashed_settings(resolved),
        )  # fmt: skip

    @property
    def fingerprints(self) -> tuple[str, ...]:
        """Every fingerprint a record of this config may hold: this scheme's first."""
        return (self.fingerprint, *self.earlier_fingerprints)

    def entries(self) -> dict[str, Any]:
        """The `run/*` entries of `metrics.json` (and of `failed.json`)."""
        return {
            FINGERPRINT_KEY: self.fingerprint,
            SEEDLESS_FINGERPRINT_KEY: self.seedless_fingerprint,
            f"{RUN_PREFIX}choices": dict(self.choices),
            f"{RUN_PREFIX}seed": self.seed,
            f"{RUN_PREFIX}overrides": list(self.overrides),
            f"{RUN_PREFIX}selection_metric": self.selection_metric,
            f"{RUN_PREFIX}higher_is_better": self.higher_is_better,
            f"{RUN_PREFIX}sweep": self.sweep,
            DATA_FILES_KEY: dict(self.data_files),
            DATA_PATHS_KEY: dict(self.data_paths),
            RESULTS_VERSION_KEY: RESULTS_VERSION,
            FINGERPRINT_SCHEME_KEY: FINGERPRINT_SCHEME,
            UNREAD_KEY: list(self.unread),
        }


def fingerprint_scheme(record: dict[str, Any]) -> int:
    """The fingerprint scheme of the layerft that wrote a record (1: before schemes were recorded)."""
    return int(record.get(FINGERPRINT_SCHEME_KEY, 1))


# run_folder.keep_hydra_files' copy of a finished run's composed config (under Hydra's default output_subdir)
KEPT_CONFIG = Path(".hydra", "finished", "config.yaml")


# The keys that decide whether an AT_DEFAULT_WHEN_UNREAD key is read (unread_settings).
_READ_SWITCHES = ("tuning_mode.method", "lr_schedule.scaling", "injection_lr_schedule.scaling",
                  "layer_split.stage2.policy")  # fmt: skip


def _may_key_otherwise(override_key: str) -> bool:
    """Whether a scheme-2 record with an override of this key may be keyed otherwise by scheme 3:
    the key is (at, under or a node above) an AT_DEFAULT_WHEN_UNREAD key, or decides one is read."""
    key = override_key.lstrip("+~").split("@")[-1]
    if key in _READ_SWITCHES or unread_prefix(key, AT_DEFAULT_WHEN_UNREAD):
        return True
    return "." in key and any(u.startswith(key + ".") for u in AT_DEFAULT_WHEN_UNREAD)


def migrated_fingerprints(
    run_dir: Path, record: dict[str, Any]
) -> tuple[str, str, tuple[str, ...]] | None:
    """This scheme's fingerprint, seedless fingerprint and unread settings (RunRecord.unread) of a
    record an earlier scheme wrote, from the config kept beside it (KEPT_CONFIG): a baseline
    recorded under one split is then found under any, and a full fine-tuning run recorded with
    LoRA's rank set is the one without. Only for the records whose fingerprint may have changed:
    of a run without stage 1 (scheme 1), or with an override under a key that may be unread
    (_may_key_otherwise, scheme 2). None where the record needs none, has no such config, or that
    config is not the record's (it hashes to another fingerprint under the record's scheme:
    edited, or a torchrun's)."""
    scheme = fingerprint_scheme(record)
    choices = record.get(f"{RUN_PREFIX}choices")
    overrides = record.get(f"{RUN_PREFIX}overrides")
    if scheme >= FINGERPRINT_SCHEME or FINGERPRINT_KEY not in record:
        return None
    if not isinstance(choices, dict) or not isinstance(overrides, list):
        return None
    baseline = scheme < 2 and choices.get("injection_task") == "none"
    if not baseline and not any(_may_key_otherwise(str(o).partition("=")[0]) for o in overrides):
        return None
    kept = run_dir / KEPT_CONFIG
    try:
        stat = kept.stat()
    except OSError:
        return None
    keyed = _kept_config_keys(kept, stat.st_size, stat.st_mtime_ns, scheme)
    if keyed is None or keyed[0] != record[FINGERPRINT_KEY]:
        return None
    return keyed[1:]


@functools.cache  # the plan, each job's lookup and the table meet the same records (~30 ms each)
def _kept_config_keys(
    path: Path, size: int, mtime_ns: int, scheme: int
) -> tuple[str, str, str, tuple[str, ...]] | None:
    """A kept config's fingerprint under `scheme`, then this scheme's fingerprint, seedless
    fingerprint and unread settings; None if this layerft cannot read it."""
    from omegaconf import OmegaConf

    from layerft.config import resolve_config  # here: it imports torch (results.py does not)

    try:
        resolved = resolve_config(OmegaConf.load(path))
        return (
            config_fingerprint(resolved, scheme),
            config_fingerprint(resolved),
            seedless_fingerprint(resolved),
            unhashed_settings(resolved),
        )
    except Exception:  # noqa: BLE001 - a config this layerft cannot read: no migration
        return None


def results_version(record: dict[str, Any]) -> int:
    """The results version of the layerft that wrote a record (1: before versions were recorded)."""
    return int(record.get(RESULTS_VERSION_KEY, 1))


def older_results(version: int) -> str:
    """What an older result is, for a message: its version and what changed since."""
    changes = "; ".join(RESULTS_CHANGES[v] for v in range(version + 1, RESULTS_VERSION + 1))
    return f"results version {version}, now {RESULTS_VERSION}; changed since: {changes}"


def file_sha256(path: Path) -> str:
    """The sha256 of a file's bytes: what a result records of each data file it read."""
    stat = path.stat()
    return _file_sha256(path.resolve(), stat.st_size, stat.st_mtime_ns)


@functools.cache  # a sweep's plan and its table ask for the same files once per job
def _file_sha256(path: Path, size: int, mtime_ns: int) -> str:
    with path.open("rb") as stream:
        return hashlib.file_digest(stream, "sha256").hexdigest()


def file_error(action: str, path: Path | str, err: OSError) -> LayerftError:
    """One line naming the path and the system's reason (read-only, no space, not a directory...)."""
    return LayerftError(f"cannot {action} {path}: {err.strerror or err}")


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    """`data` as strict JSON (NaN refused), written with `write_atomic`."""
    text = json.dumps(data, indent=2, sort_keys=True, allow_nan=False)
    write_atomic(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def write_atomic(path: Path, write: Callable[[Path], Any]) -> None:
    """`write` into a temporary file in the same folder, then rename it to `path`: readers see all
    of the file or none, and a failed write (read-only, full disk) leaves an earlier file as it was.
    """
    write_all_atomic({path: write})


def write_all_atomic(files: dict[Path, Callable[[Path], Any]]) -> None:
    """`write_atomic` for files that must agree (a results table and its report): all are written
    before any is renamed, so a kill or failure while writing leaves the earlier set whole."""
    staged: list[tuple[Path, Path]] = []
    path = None
    try:
        for path, write in files.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
            os.close(fd)
            staged.append((Path(name), path))
            write(Path(name))
            sync_to_disk(Path(name))
            Path(name).chmod(0o644)  # mkstemp makes it private; results are for everyone to read
        for tmp, path in staged:
            os.replace(tmp, path)
    except BaseException as err:
        for tmp, _ in staged:
            tmp.unlink(missing_ok=True)
        if isinstance(err, OSError) and path is not None:
            raise file_error("write", path, err) from err
        raise


def sync_to_disk(path: Path) -> None:
    """Flush a written file to disk: done before the rename that publishes it, so that after a
    crash the published name never holds blocks the disk did not yet have (zeros, on ext4)."""
    with path.open("rb") as handle:
        os.fsync(handle.fileno())


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
    run_dir: Path,
    metrics: dict[str, float],
    record: RunRecord,
    extra: dict[str, Any] | None = None,
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
    that is no result at all (not a JSON object: damaged, as layerft writes it atomically) is set
    aside as `metrics.json.corrupt` with a warning, and the run is redone.
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
    if not isinstance(data, dict):
        kept = path.with_name(f"{METRICS_FILE}.corrupt")
        with contextlib.suppress(FileNotFoundError):  # another process of the run moved it
            os.replace(path, kept)
        problem = f"not JSON ({data})" if isinstance(data, Exception) else "not a JSON object"
        log.warning("%s is %s: kept as %s; the run is redone", path, problem, kept.name)
        return None
    assert not isinstance(fingerprints, str), "a tuple of fingerprints, not one"
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


def _of_config(run_dir: Path, record: dict[str, Any], fingerprints: tuple[str, ...]) -> bool:
    """Whether a record in `run_dir` is of the config with these fingerprints (RunRecord's), also
    as this scheme keys a record of an earlier one (migrated_fingerprints)."""
    if record.get(FINGERPRINT_KEY) in fingerprints:
        return True
    migrated = migrated_fingerprints(run_dir, record)
    return migrated is not None and migrated[0] in fingerprints


def read_record(run_dir: Path) -> dict[str, Any]:
    """The finished result's record in `run_dir` (its metrics.json)."""
    return json.loads((run_dir / METRICS_FILE).read_text(encoding="utf-8"))


def changed_data(record: dict[str, Any], data_files: dict[str, str]) -> list[str]:
    """The splits whose data file differs from the one a finished result's `record` was computed
    on (a file now missing, or a result written before files were recorded, is not compared)."""
    stored = record.get(DATA_FILES_KEY)
    if not isinstance(stored, dict):
        return []
    return sorted(k for k, digest in data_files.items() if stored.get(k, digest) != digest)


def changed_since(record: dict[str, Any]) -> list[str]:
    """The splits of a finished result's record (its metrics.json) whose file, at the path the run
    read, now holds other bytes: what a table reads without the config. A file now missing, or a
    result written before paths were recorded, is not compared."""
    digests, paths = record.get(DATA_FILES_KEY), record.get(DATA_PATHS_KEY)
    if not isinstance(digests, dict) or not isinstance(paths, dict):
        return []
    changed = []
    for split, path in paths.items():
        file = Path(str(path))
        try:
            if file.is_file() and file_sha256(file) != digests.get(split):
                changed.append(split)
        except OSError:  # unreadable now: not compared, as a missing file
            continue
    return sorted(changed)


def record_failure(run_dir: Path, entries: dict[str, Any], err: BaseException) -> None:
    """`failed.json`: the job's record and its error's first line. The log gets the line, and the
    traceback unless the error is a user error (LayerftError; LAYERFT_TRACEBACK=1 shows it too).

    A failed.json that cannot be written (the same read-only or full disk that failed the job) is
    logged, not raised: the sweep goes on and reports the job as not run."""
    first = (str(err).strip().splitlines() or [""])[0]
    user_error = isinstance(err, LayerftError) and not traceback_wanted()
    trace = "" if user_error else "\n" + "".join(traceback.format_exception(err)).rstrip()
    log.error("job failed (%s): %s%s", run_dir, first, trace)
    try:
        write_json_atomic(
            run_dir / FAILED_FILE,
            {
                **entries,
                "run/error": error_line(err),
                "run/error_type": type(err).__name__,
            },
        )
    except LayerftError as write_err:
        log.error("the failure is not recorded (%s); the job counts as not run", write_err)


@contextlib.contextmanager
def run_dir_errors(run_dir: Path) -> Iterator[None]:
    """Turn a failed file operation under `run_dir` (checkpoints, tracker files) into one error line."""
    try:
        yield
    except OSError as err:
        inside = isinstance(err.filename, str) and Path(err.filename).is_relative_to(run_dir)
        if not inside:
            raise
        raise file_error("write", err.filename, err) from err
