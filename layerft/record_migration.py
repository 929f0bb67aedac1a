"""An earlier fingerprint scheme's record keyed as this one keys it, from the config layerft kept
beside it (`KEPT_CONFIG`): a baseline recorded under one split is found under any, a data path
spelt otherwise is the one as read, a classification run with a span setting is the one without.

Serves no config group: `layerft/results.py` and `layerft/sweep_job.py` read records through here;
`layerft/run_record.py` says what a record holds.
"""

from __future__ import annotations

import copy
import functools
from pathlib import Path
from typing import Any

import yaml

from layerft.config_overrides import override_key
from layerft.fingerprint import (
    AT_DEFAULT_WHEN_UNREAD,
    DATA_PATH_KEYS,
    FINGERPRINT_SCHEME,
    config_fingerprint,
    respell_data_paths,
    seedless_fingerprint,
    spelled_as_read,
    unhashed_settings,
)
from layerft.run_record import (
    DATA_PATHS_KEY,
    FINGERPRINT_KEY,
    RUN_PREFIX,
    fingerprint_scheme,
)
from layerft.unread_keys import kind_settings_keys, unread_prefix

# run_folder.keep_hydra_files' copy of a finished run's composed config (under Hydra's default output_subdir)
KEPT_CONFIG = Path(".hydra", "finished", "config.yaml")


# The keys that decide whether an AT_DEFAULT_WHEN_UNREAD key is read (unread_settings).
_READ_SWITCHES = ("tuning_mode.method", "lr_schedule.scaling", "injection_lr_schedule.scaling",
                  "layer_split.stage2.policy")  # fmt: skip


def _may_key_otherwise(key: str) -> bool:
    """Whether a scheme-2 record with an override of `key` may be keyed otherwise by scheme 3: the
    key is (at, under or a node above) an AT_DEFAULT_WHEN_UNREAD key, or decides one is read."""
    if key in _READ_SWITCHES or unread_prefix(key, AT_DEFAULT_WHEN_UNREAD):
        return True
    return "." in key and any(u.startswith(key + ".") for u in AT_DEFAULT_WHEN_UNREAD)


def _kind_setting(key: str) -> bool:
    """Whether an earlier scheme's record with an override of `key` may be keyed otherwise by
    scheme 5: the key is (at or under) a task's node of kind settings, which its kind may not read."""
    return unread_prefix(key, kind_settings_keys())


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
    (_respelt_path, scheme 3; or, for a record of local data, in its kept config: _spelt_otherwise),
    or with an override of a task's kind settings (_kind_setting, scheme 4).
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
    unread = scheme < 3 and any(_may_key_otherwise(override_key(str(o))) for o in overrides)
    respelt = scheme < 4 and any(_respelt_path(str(o)) for o in overrides)
    local = scheme < 4 and bool(record.get(DATA_PATHS_KEY))  # an option's YAML may spell a path
    kind = scheme < 5 and any(_kind_setting(override_key(str(o))) for o in overrides)
    unread = unread or kind
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
