"""What a run's `metrics.json` (and a failed job's `failed.json`) says about the run besides its
metrics: its fingerprints, choices, seed, overrides, data and model files' digests, the results
version and fingerprint scheme of the layerft that wrote it (`layerft/record_migration.py` keys an
earlier scheme's record as this one does).

Serves no config group: `layerft/results.py` writes and finds these records.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from layerft.file_io import file_sha256
from layerft.fingerprint import (
    FINGERPRINT_SCHEME,
    config_fingerprint,
    earlier_fingerprints,
    seedless_fingerprint,
    unhashed_settings,
)
from layerft.metrics import RANGE_SLACK, metric_range
from layerft.model_files import model_entries, model_file_digests

FINGERPRINT_KEY = "run/config_fingerprint"
DATA_FILES_KEY = "run/data_files"  # `<group>.<split>` -> sha256 of the file it read
DATA_PATHS_KEY = "run/data_paths"  # `<group>.<split>` -> that file's resolved path
# `<group>` -> {"hub_id", "commit"}: the snapshot of a hub data set the local cache served
DATA_COMMITS_KEY = "run/data_commits"

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
FILE_SETTINGS_KEY = "run/file_settings"  # RunRecord.file_settings (absent from older records)
# torch's threads a run on a CPU computed at (processes.cpu_threads; absent on a GPU and from older
# records): float sums' order, so a run at another count gives other numbers
CPU_THREADS_KEY = "run/cpu_threads"
# What it trained on (processes.device_name; absent from older records): bf16 kernels, padding to
# multiples of 8 and float sums differ between a CPU and a GPU, and between GPU models
DEVICE_KEY = "run/device"
# A failed job's failed.json: its error's type and first line (errors.error_line), and its type.
ERROR_KEY = "run/error"
ERROR_TYPE_KEY = "run/error_type"


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
    # The local folder the model was read from (resolved; None: a hub id or tiny) and the sha256
    # of each of its files that define the model, by name (model_files.IDENTITY_FILES)
    model_folder: str | None = None
    model_files: dict[str, str] = field(default_factory=dict)
    # The keys its grid or experiment file sets itself, with their values (file_settings)
    file_settings: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(
        cls,
        resolved: dict[str, Any],
        choices: dict[str, str],
        overrides: list[str],
        selection: tuple[str, bool],
        sweep: str | None = None,
        data_files: dict[str, Path] | None = None,
        model_folder: Path | None = None,
        file_settings: dict[str, str] | None = None,
    ) -> RunRecord:
        """The record of a run of this resolved config; `selection`: (metric key, higher is better);
        `data_files`: `<group>.<split>` -> the local file it reads (config.data_files);
        `model_folder`: the local folder its model is read from (model_files.model_folder);
        `file_settings`: the keys its grid or experiment file sets (file_settings.file_settings)."""
        fingerprint, seedless = config_fingerprint(resolved), seedless_fingerprint(resolved)
        seed = int(resolved["seed"])
        files = {split: path.resolve() for split, path in (data_files or {}).items()}
        return cls(
            fingerprint, seedless, dict(choices), seed, overrides, *selection, sweep,
            {split: file_sha256(path) for split, path in files.items()},
            {split: str(path) for split, path in files.items()},
            earlier_fingerprints(resolved), unhashed_settings(resolved),
            None if model_folder is None else str(model_folder), model_file_digests(model_folder),
            dict(file_settings or {}),
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
            **model_entries(self.model_folder, self.model_files),
            FILE_SETTINGS_KEY: dict(self.file_settings),
        }


def _whole(value: Any) -> bool:
    return type(value) is int and value >= 0


# A record's `run/*` entries layerft reads back, each with the test its value passes as written.
_RECORD_SHAPES: dict[str, tuple[str, Any]] = {
    FINGERPRINT_KEY: ("a fingerprint", lambda v: isinstance(v, str) and bool(v)),
    f"{RUN_PREFIX}choices": (
        "a JSON object of options",
        lambda v: isinstance(v, dict) and all(isinstance(o, str | None) for o in v.values()),
    ),
    f"{RUN_PREFIX}overrides": (
        "a list of overrides",
        lambda v: isinstance(v, list) and all(isinstance(o, str) for o in v),
    ),
    f"{RUN_PREFIX}seed": ("a whole number", _whole),
    # '' in a failure before its config was checked; a result's is in its metrics (below)
    f"{RUN_PREFIX}selection_metric": ("a metric's name", lambda v: isinstance(v, str)),
    f"{RUN_PREFIX}higher_is_better": ("true or false", lambda v: isinstance(v, bool)),
    RESULTS_VERSION_KEY: ("a whole number", lambda v: _whole(v) and v >= 1),
    FINGERPRINT_SCHEME_KEY: ("a whole number", lambda v: _whole(v) and v >= 1),
    UNREAD_KEY: ("a list of keys", lambda v: isinstance(v, list)),
}


def record_problem(record: Any, finished: bool) -> str | None:
    """What makes a `metrics.json` (`finished`) or `failed.json` no record layerft wrote (a hand
    edit, a copy cut short, another tool's file), or None: a `run/*` entry of another type, a
    metric that is no finite number (layerft writes none: json's NaN and Infinity are refused) or
    lies outside the range its metric declares (metrics.metric_range), a result without its
    fingerprint or its selection metric."""
    if not isinstance(record, dict):
        return "not a JSON object"
    for key, (shape, passes) in _RECORD_SHAPES.items():
        if key in record and not passes(record[key]):
            return f"{key} is {record[key]!r}, not {shape}"
    for key, value in record.items():
        if key.startswith(RUN_PREFIX):
            continue
        if isinstance(value, bool) or not isinstance(value, int | float):
            return f"{key} is not a number"
        if not math.isfinite(value):
            return f"{key} is not a finite number ({value}: layerft writes no such score)"
        bounds = metric_range(key)
        if bounds is not None and not bounds[0] - RANGE_SLACK <= value <= bounds[1] + RANGE_SLACK:
            return f"{key} is {value}, outside its metric's range [{bounds[0]}, {bounds[1]}]"
    if finished and FINGERPRINT_KEY not in record:
        return f"it has no {FINGERPRINT_KEY}"
    metric = record.get(f"{RUN_PREFIX}selection_metric")
    if finished and isinstance(metric, str) and metric not in record:
        return f"it has no score of its selection metric {metric}"
    return None


def fingerprint_scheme(record: dict[str, Any]) -> int:
    """The fingerprint scheme of the layerft that wrote a record (1: before schemes were recorded)."""
    return int(record.get(FINGERPRINT_SCHEME_KEY, 1))


def results_version(record: dict[str, Any]) -> int:
    """The results version of the layerft that wrote a record (1: before versions were recorded)."""
    return int(record.get(RESULTS_VERSION_KEY, 1))


def older_results(version: int) -> str:
    """What an older result is, for a message: its version and what changed since."""
    changes = "; ".join(RESULTS_CHANGES[v] for v in range(version + 1, RESULTS_VERSION + 1))
    return f"results version {version}, now {RESULTS_VERSION}; changed since: {changes}"
