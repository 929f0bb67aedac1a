"""What a run's `metrics.json` (and a failed job's `failed.json`) says about the run besides its
metrics: its fingerprints, choices, seed, overrides, data files' digests, the results version and
fingerprint scheme of the layerft that wrote it; and an earlier scheme's record keyed as this one
keys it (from the config kept beside it).

Serves no config group: `layerft/results.py` writes and finds these records.
"""

from __future__ import annotations

import copy
import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from layerft.file_io import file_sha256
from layerft.fingerprint import (
    AT_DEFAULT_WHEN_UNREAD,
    DATA_PATH_KEYS,
    FINGERPRINT_SCHEME,
    config_fingerprint,
    earlier_fingerprints,
    respell_data_paths,
    seedless_fingerprint,
    spelled_as_read,
    unhashed_settings,
)
from layerft.unread_keys import unread_prefix

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


def _respelt_path(override: str) -> bool:
    """Whether an earlier scheme's record with this override may be keyed otherwise by scheme 4:
    it sets a task's data path (or all of `data_files`) other than as it is read (spelled_as_read)."""
    key, _, value = override.partition("=")
    stage, _, rest = key.lstrip("+~").partition(".")
    if stage not in ("injection_task", "target_task") or rest.split(".")[0] not in DATA_PATH_KEYS:
        return False
    value = value.strip("'\" ")
    return rest == "data_files" or (bool(value) and spelled_as_read(value) != value)


def migrated_fingerprints(
    run_dir: Path, record: dict[str, Any]
) -> tuple[str, str, tuple[str, ...]] | None:
    """This scheme's fingerprint, seedless fingerprint and unread settings (RunRecord.unread) of a
    record an earlier scheme wrote, from the config kept beside it (KEPT_CONFIG): a baseline
    recorded under one split is then found under any, and a full fine-tuning run recorded with
    LoRA's rank set is the one without. Only for the records whose fingerprint may have changed:
    of a run without stage 1 (scheme 1), with an override under a key that may be unread
    (_may_key_otherwise, scheme 2), or with a data path spelled otherwise than as it is read
    (_respelt_path, scheme 3; or, for a record of local data, in its kept config: _spelt_otherwise).
    None where the record needs none, has no such config, or that config is not the record's (it
    hashes to another fingerprint under the record's scheme: edited, or a torchrun's)."""
    scheme = fingerprint_scheme(record)
    choices = record.get(f"{RUN_PREFIX}choices")
    overrides = record.get(f"{RUN_PREFIX}overrides")
    if scheme >= FINGERPRINT_SCHEME or FINGERPRINT_KEY not in record:
        return None
    if not isinstance(choices, dict) or not isinstance(overrides, list):
        return None
    baseline = scheme < 2 and choices.get("injection_task") == "none"
    unread = scheme < 3 and any(_may_key_otherwise(str(o).partition("=")[0]) for o in overrides)
    respelt = scheme < 4 and any(_respelt_path(str(o)) for o in overrides)
    local = scheme < 4 and bool(record.get(DATA_PATHS_KEY))  # an option's YAML may spell a path
    if not (baseline or unread or respelt or local):
        return None
    kept = run_dir / KEPT_CONFIG
    try:
        stat = kept.stat()
    except OSError:
        return None
    if not (baseline or unread or respelt) and not _spelt_otherwise(
        kept, stat.st_size, stat.st_mtime_ns
    ):
        return None
    keyed = _kept_config_keys(kept, stat.st_size, stat.st_mtime_ns, scheme)
    if keyed is None or keyed[0] != record[FINGERPRINT_KEY]:
        return None
    return keyed[1:]


_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's where PyYAML has it


@functools.cache  # read as YAML only (~2 ms), before the config is resolved (~30 ms)
def _spelt_otherwise(path: Path, size: int, mtime_ns: int) -> bool:
    """Whether a kept config names a task's data path otherwise than as read (spelled_as_read)."""
    try:
        config = yaml.load(path.read_text(encoding="utf-8"), Loader=_YAML_LOADER)
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return False
    for stage in ("injection_task", "target_task"):
        task = config.get(stage) if isinstance(config, dict) else None
        if isinstance(task, dict):  # as scheme 4's result_config respells it
            respelt = copy.deepcopy(task)
            respell_data_paths(respelt)
            if respelt != task:
                return True
    return False


@functools.cache  # the plan, each job's lookup and the table meet the same records (~30 ms each)
def _kept_config_keys(
    path: Path, size: int, mtime_ns: int, scheme: int
) -> tuple[str, str, str, tuple[str, ...]] | None:
    """A kept config's fingerprint under `scheme`, then this scheme's fingerprint, seedless
    fingerprint and unread settings; None if this layerft cannot read it."""
    from omegaconf import OmegaConf

    from layerft.config import resolve_config  # here: it imports torch (this module does not)

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
