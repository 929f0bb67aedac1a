"""How a resolved config hashes into its fingerprint, the key of a finished result: which
settings key it (not the result-neutral ones, nor the ones its choices never read), by scheme.

Serves no config group; `RESULT_NEUTRAL_KEYS` names the config keys a finished result ignores.
`layerft/run_record.py` records the fingerprints in `metrics.json` (RunRecord), and
`layerft/results.py` finds a result by them. Which settings a config's choices never read is
`unread_settings` (`layerft/unread_keys.py`).
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from layerft.later_keys import without_later_keys
from layerft.processes import world_size
from layerft.unread_keys import (
    STAGE1_NODES,
    TASK_GROUPS,
    other_kinds_setting,
    other_kinds_settings,
    reads_pooler,
    unread_settings,
)

# How a config is hashed into its fingerprint. Scheme 2: a run without stage 1 hashes neither the
# layer split nor the stage-1 schedule (STAGE1_ONLY_GROUPS), which it never reads, so a grid that
# crosses injection_task=none with layer_split trains its baseline once, not once per split.
# Scheme 3: the other settings its choices never read (unread_settings: LoRA's under
# tuning_mode=full, layer_decay under a uniform schedule...) hash at their schema defaults
# (AT_DEFAULT_WHEN_UNREAD), so a grid crossing tuning_mode=full,lora with tuning_mode.lora.rank=4,8
# trains full fine-tuning once. A config that leaves them at their defaults, as every shipped
# option does, keeps its scheme-2 fingerprint. A record of an earlier scheme is still found by the
# fingerprint that scheme gives its config (RunRecord.earlier_fingerprints): no finished result is
# redone or turned into "another config".
# Scheme 4: a task's data paths (`data_dir`, `data_files.*`) hash as pathlib spells them
# (DATA_PATH_KEYS, `spelled_as_read`), so `./data/train.jsonl`, `data//train.jsonl` and
# `data/train.jsonl`, which open the same file, key one result; a path already spelled so (as every
# shipped option and most command lines give it) keeps its scheme-3 fingerprint.
# Scheme 5: a task's settings of other kinds (`target_task.spans.` under a classification task)
# hash at their schema defaults (kind_settings_as_read), so a grid crossing tasks of two kinds with
# one kind's setting trains the other's tasks once; a task leaving them at their defaults, as every
# shipped option does, keeps its scheme-4 fingerprint.
FINGERPRINT_SCHEME = 5
STAGE1_ONLY_GROUPS = ("layer_split", "injection_lr_schedule")
# The unread keys that hash at their defaults from scheme 3 (a key ending in "." is a node).
# Scheme 3 is this list and unread_settings (layerft/unread_keys.py) as they are: extending either
# changes the fingerprints of stored scheme-3 records, so it is a new scheme (its records then
# found by earlier_fingerprints, which would need this list as scheme 3 had it). Not
# `layer_split.stage2.policy` under tuning_mode=frozen: shipped splits set it, so hashing it at
# its default would change those configs' fingerprints. `model.pretrained_pooler` is left out
# where unread (drop_unread_pooler), and STAGE1_ONLY_GROUPS without stage 1 (scheme 2).
AT_DEFAULT_WHEN_UNREAD = (
    "tuning_mode.lora.",
    "tuning_mode.adapter.",
    "tuning_mode.layers",
    "lr_schedule.multipliers.",
    "lr_schedule.layer_decay",
    "injection_lr_schedule.multipliers.",
    "injection_lr_schedule.layer_decay",
    "layer_split.stage2.lr_multiplier",
)

# Resolved-config keys (dotted paths) that decide where a run writes or how it reports, never
# what it measures: a rerun that differs only in these reuses the finished result. `hydra.*` is
# never part of the resolved config. Data file paths are not here: other files, other results.
RESULT_NEUTRAL_KEYS = (
    "tracker",  # where metrics are sent (and whether)
    "cache_dir",  # where tokenized data and stage-1 results are cached
    "reuse_stage1",  # whether a stored stage-1 result is reused (it is the same result)
    "force_rerun",  # whether a finished result is redone (the same config, the same result)
    "trainer.keep_checkpoints",  # whether checkpoints stay on disk after the run
    "trainer.progress_bar",
    "trainer.dataloader_workers",  # workers only collate; the sampler runs in the main process
)


# Settings that only choose, for a kind of record, between stopping the run and dropping or
# keeping the record. A run that finished under the stopping choice met no such record, so the
# other choice gives it the same result: they key neither a finished result nor a stored stage 1
# (which its data's content keys anyway), and adding them changed no stored key.
RECORD_CHOICE_KEYS = ("unlabelled_values", "drop_blank_texts", "spans.unanswerable")


def keyed_task(task: dict[str, Any]) -> dict[str, Any]:
    """A plain task config (a copy) as it keys results and stored stage 1s: without
    RECORD_CHOICE_KEYS, nor keys added later at their old meaning (later_keys.LATER_KEYS)."""
    return without_later_keys(_without(task, RECORD_CHOICE_KEYS), "task")


def result_config(resolved: dict[str, Any], scheme: int = FINGERPRINT_SCHEME) -> dict[str, Any]:
    """The resolved config without RESULT_NEUTRAL_KEYS (a KeyError if one of them is not in it),
    without each task's RECORD_CHOICE_KEYS, without `model.pretrained_pooler` where no head reads
    it, (from fingerprint `scheme` 2) without STAGE1_ONLY_GROUPS where there is no stage 1, (from
    scheme 3) with the AT_DEFAULT_WHEN_UNREAD keys its choices never read at their defaults, (from
    scheme 4) with its data paths spelled as read (`spelled_as_read`), (from scheme 5) with each
    task's settings of other kinds at their defaults, and without the keys added later at their
    old meaning (later_keys.LATER_KEYS)."""
    kept = _without(resolved, RESULT_NEUTRAL_KEYS)
    if scheme >= 3:
        for key, _ in unread_settings(resolved):
            if key in AT_DEFAULT_WHEN_UNREAD:
                _set_dotted(kept, key.rstrip("."), schema_default(key.rstrip(".")))
    if kept["injection_task"] is None and scheme >= 2:
        for group in STAGE1_ONLY_GROUPS:
            del kept[group]
    kinds = []
    for stage in TASK_GROUPS:
        if kept[stage] is not None:  # a disabled stage 1 is null
            if scheme >= 5:
                kind_settings_as_read(kept[stage], stage)
            kept[stage] = keyed_task(kept[stage])
            kinds.append(kept[stage]["kind"])
            if scheme >= 4:
                respell_data_paths(kept[stage])
    drop_unread_pooler(kept["model"], kinds)
    return without_later_keys(kept, "")


# Unread settings result_config leaves out otherwise: the stage-1 keys of a run without stage 1
# (scheme 2: its injection task is null, the groups deleted), and the pooler (drop_unread_pooler).
_LEFT_OUT_WHEN_UNREAD = (*STAGE1_NODES, "model.pretrained_pooler")


# A task's keys that name local data (relative paths are read from the directory train.py runs in).
DATA_PATH_KEYS = ("data_dir", "data_files")


def spelled_as_read(path: str) -> str:
    """A data path as pathlib spells it (`./data//x.jsonl/` -> `data/x.jsonl`): the file a run opens
    is `Path(path)`, so two paths spelled alike here are one file. Lexical, so `~` and `..` stay
    (`a/../b` is not `b` where `a` is a link), and so does the difference between a relative and
    an absolute path to one file: a relative path keys the same data wherever the project moves."""
    return os.fspath(Path(path))


def respell_data_paths(task: dict[str, Any]) -> None:
    """Spell a plain task config's data paths as read (`spelled_as_read`), in place."""
    if task.get("data_dir"):
        task["data_dir"] = spelled_as_read(task["data_dir"])
    files = task.get("data_files") or {}
    for split, path in files.items():
        if path:
            files[split] = spelled_as_read(path)


def unhashed_settings(resolved: dict[str, Any]) -> tuple[str, ...]:
    """The unread settings (unread_settings) that the fingerprint does not tell apart: those it
    hashes at their defaults (AT_DEFAULT_WHEN_UNREAD) or leaves out; not, say, the layer split's
    policy under tuning_mode=frozen, nor a key unread_settings lists only to warn about."""
    kept = (*AT_DEFAULT_WHEN_UNREAD, *_LEFT_OUT_WHEN_UNREAD)
    return tuple(
        key for key, _ in unread_settings(resolved) if key in kept or other_kinds_setting(key)
    )


def kind_settings_as_read(task: dict[str, Any], group: str) -> None:
    """A plain task config of `group` with the settings of kinds other than its own at their
    schema defaults (from fingerprint scheme 5, and in a stage-1 key), in place."""
    for key, _ in other_kinds_settings(group, task["kind"]):
        task[key.rstrip(".").split(".")[-1]] = schema_default(key.rstrip("."))


@functools.cache
def _schema_defaults() -> dict[str, Any]:
    """The groups' schema defaults as a resolved config holds them (AT_DEFAULT_WHEN_UNREAD; a
    task's kind settings)."""
    from omegaconf import OmegaConf

    from layerft.config import GROUP_OF_KEY, GROUP_SCHEMAS  # here: the schemas import torch

    return {
        key: OmegaConf.to_container(OmegaConf.structured(GROUP_SCHEMAS[group]), resolve=False)
        for key, group in GROUP_OF_KEY.items()
    }


def schema_default(dotted: str) -> Any:
    """A copy of the schema default of `dotted` (`injection_lr_schedule.layer_decay`), as a
    resolved config holds it."""
    node = _schema_defaults()
    for key in dotted.split("."):
        node = node[key]
    return copy.deepcopy(node)


def _set_dotted(config: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    for key in parents:
        config = config[key]
    config[leaf] = value


def drop_unread_pooler(model: dict[str, Any], kinds: list[str]) -> None:
    """Remove `pretrained_pooler` from a plain model config unless it is set and one of the task
    `kinds` has a sentence head, the only heads it changes. It came later than the other model
    keys: a result it does not change keeps the key it had (absent from older configs)."""
    if model.get("pretrained_pooler") and reads_pooler(kinds):
        return
    model.pop("pretrained_pooler", None)


def _without(config: dict[str, Any], dotted_keys: tuple[str, ...]) -> dict[str, Any]:
    """A copy of `config` without the keys at `dotted_keys` (a KeyError if one is not in it)."""
    kept = copy.deepcopy(config)
    for dotted in dotted_keys:
        *parents, leaf = dotted.split(".")
        node = kept
        for key in parents:
            node = node[key]
        del node[leaf]
    return kept


def config_fingerprint(resolved: dict[str, Any], scheme: int = FINGERPRINT_SCHEME) -> str:
    """A stable hash of what a run's metrics depend on: the resolved config minus neutral keys,
    and the number of processes when there are several (the global batch is batch_size times it;
    one process adds nothing, so single-process fingerprints stay as they were)."""
    return _fingerprint(result_config(resolved, scheme))


def earlier_fingerprints(resolved: dict[str, Any]) -> tuple[str, ...]:
    """The fingerprints earlier schemes gave this config where they differ from this scheme's:
    a record they wrote is this config's result."""
    current = config_fingerprint(resolved)
    earlier = (config_fingerprint(resolved, scheme) for scheme in range(1, FINGERPRINT_SCHEME))
    return tuple(dict.fromkeys(f for f in earlier if f != current))


def seedless_fingerprint(resolved: dict[str, Any], scheme: int = FINGERPRINT_SCHEME) -> str:
    """`config_fingerprint` of the config without its seed: one value for all seeds of a config."""
    kept = result_config(resolved, scheme)
    del kept["seed"]
    return _fingerprint(kept)


def _fingerprint(kept: dict[str, Any]) -> str:
    if world_size() > 1:
        kept["world_size"] = world_size()
    text = json.dumps(kept, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
