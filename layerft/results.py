"""The run directory's record: `metrics.json`, written atomically, and the check that lets a rerun
skip a finished run and never overwrite another config's result.

Serves no config group; `RESULT_NEUTRAL_KEYS` names the config keys a finished result ignores.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import hashlib
import json
import logging
import os
import tempfile
import traceback
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from layerft.errors import LayerftError, error_line, traceback_wanted
from layerft.processes import world_size

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
FINGERPRINT_SCHEME = 3
FINGERPRINT_SCHEME_KEY = "run/fingerprint_scheme"  # absent from the records of scheme 1
STAGE1_ONLY_GROUPS = ("layer_split", "injection_lr_schedule")
UNREAD_KEY = "run/unread_settings"  # RunRecord.unread (absent before scheme 3)
# The unread keys that hash at their defaults from scheme 3 (a key ending in "." is a node).
# Scheme 3 is this list and unread_settings as they are: extending either changes the
# fingerprints of stored scheme-3 records, so it is a new scheme (its records then found by
# earlier_fingerprints, which would need this list as scheme 3 had it). Not
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


# Task keys added after results were stored, with the value that means what their absence did:
# at that value they key nothing, so the results they do not change keep their keys.
LATER_TASK_KEYS = {"tagging.words_column": None}


def keyed_task(task: dict[str, Any]) -> dict[str, Any]:
    """A plain task config (a copy) as it keys results and stored stage 1s: without
    RECORD_CHOICE_KEYS, nor LATER_TASK_KEYS at their old meaning."""
    kept = _without(task, RECORD_CHOICE_KEYS)
    for dotted, old in LATER_TASK_KEYS.items():
        *parents, leaf = dotted.split(".")
        node = kept
        for key in parents:
            node = node.get(key) or {}
        if leaf in node and node[leaf] == old:
            del node[leaf]
    return kept


def result_config(resolved: dict[str, Any], scheme: int = FINGERPRINT_SCHEME) -> dict[str, Any]:
    """The resolved config without RESULT_NEUTRAL_KEYS (a KeyError if one of them is not in it),
    without each task's RECORD_CHOICE_KEYS, without `model.pretrained_pooler` where no head reads
    it, (from fingerprint `scheme` 2) without STAGE1_ONLY_GROUPS where there is no stage 1, and
    (from scheme 3) with the AT_DEFAULT_WHEN_UNREAD keys its choices never read at their defaults."""
    kept = _without(resolved, RESULT_NEUTRAL_KEYS)
    if scheme >= 3:
        for key, _ in unread_settings(resolved):
            if key in AT_DEFAULT_WHEN_UNREAD:
                _set_dotted(kept, key.rstrip("."), schema_default(key.rstrip(".")))
    if kept["injection_task"] is None and scheme >= 2:
        for group in STAGE1_ONLY_GROUPS:
            del kept[group]
    kinds = []
    for stage in ("injection_task", "target_task"):
        if kept[stage] is not None:  # a disabled stage 1 is null
            kept[stage] = keyed_task(kept[stage])
            kinds.append(kept[stage]["kind"])
    drop_unread_pooler(kept["model"], kinds)
    return kept


# The nodes a run without stage 1 never reads (its injection task is null).
_STAGE1_NODES = ("injection_task.", "injection_lr_schedule.", "layer_split.")


def unread_settings(resolved: dict[str, Any]) -> list[tuple[str, str]]:
    """The keys of a config (resolved, or a RunConfig as a dict) that its choices never read, each
    with the choice that ignores it: settings of another method, scaling or policy (allowed, so
    that one grid can mix them, but inert here). A key ending in "." stands for every key under it.
    """
    # Here: they import torch (results.py does not).
    from layerft.lr_schedule import unread_by_scaling
    from layerft.tuning_mode import TuningMethod

    mode, split = resolved["tuning_mode"], resolved["layer_split"]
    method, policy = TuningMethod(mode["method"]), _text(split["stage2"]["policy"])
    unread = []
    if resolved["injection_task"] is None:
        for prefix in _STAGE1_NODES:
            unread.append((prefix, "injection_task=none: no stage 1"))
    elif method == TuningMethod.frozen:  # the injected layers are frozen whatever the policy
        for key in ("layer_split.stage2.policy", "layer_split.stage2.lr_multiplier"):
            unread.append((key, "tuning_mode=frozen trains the head alone"))
    if method != TuningMethod.lora:
        unread.append(("tuning_mode.lora.", f"tuning_mode={mode['name']} adds no LoRA"))
    if method != TuningMethod.adapter:
        unread.append(("tuning_mode.adapter.", f"tuning_mode={mode['name']} adds no adapter"))
    if not method.adds_modules:
        unread.append(("tuning_mode.layers", f"tuning_mode={mode['name']} adds no modules"))
    for group in ("lr_schedule", "injection_lr_schedule"):
        schedule = resolved[group]
        scaling = _text(schedule["scaling"])
        why = f"{group}={schedule['name']} scales by {scaling}"
        for key in unread_by_scaling(scaling):  # multipliers is a node: "." stands for its keys
            unread.append((f"{group}.{key}" + ("." if key == "multipliers" else ""), why))
    if policy != "scale" and method != TuningMethod.frozen:
        unread.append(("layer_split.stage2.lr_multiplier", f"layer_split.stage2.policy={policy}"))
    tasks = (resolved["injection_task"], resolved["target_task"])
    kinds = list(dict.fromkeys(_text(task["kind"]) for task in tasks if task is not None))
    if not reads_pooler(kinds):
        unread.append(("model.pretrained_pooler", f"{' and '.join(kinds)} heads read no pooler"))
    return unread


# Unread settings result_config leaves out otherwise: the stage-1 keys of a run without stage 1
# (scheme 2: its injection task is null, the groups deleted), and the pooler (drop_unread_pooler).
_LEFT_OUT_WHEN_UNREAD = (*_STAGE1_NODES, "model.pretrained_pooler")


def unhashed_settings(resolved: dict[str, Any]) -> tuple[str, ...]:
    """The unread settings (unread_settings) that the fingerprint does not tell apart: those it
    hashes at their defaults (AT_DEFAULT_WHEN_UNREAD) or leaves out; not, say, the layer split's
    policy under tuning_mode=frozen, nor a key unread_settings lists only to warn about."""
    kept = (*AT_DEFAULT_WHEN_UNREAD, *_LEFT_OUT_WHEN_UNREAD)
    return tuple(key for key, _ in unread_settings(resolved) if key in kept)


def unread_prefix(key: str, unread: Iterable[str]) -> bool:
    """Whether a dotted `key` is one of the `unread` keys or under one ending in "." (a node),
    or is such a node below a group (`tuning_mode.lora={rank:4}`; not `injection_task=none`, a
    choice of the group whose keys are unread)."""
    return any(
        key == u or (u.endswith(".") and (key.startswith(u) or key == u[:-1] and "." in key))
        for u in unread
    )


def _text(value: Any) -> str:
    """An enum member's value, or the text itself (resolved configs hold members)."""
    return str(getattr(value, "value", value))


@functools.cache
def _schema_defaults() -> dict[str, Any]:
    """The groups' schema defaults as a resolved config holds them (AT_DEFAULT_WHEN_UNREAD)."""
    from omegaconf import OmegaConf

    from layerft.layer_split import LayerSplitConfig  # here: they import torch
    from layerft.lr_schedule import ScheduleConfig
    from layerft.tuning_mode import TuningModeConfig

    schemas = {"tuning_mode": TuningModeConfig, "lr_schedule": ScheduleConfig,
               "injection_lr_schedule": ScheduleConfig, "layer_split": LayerSplitConfig}  # fmt: skip
    return {group: OmegaConf.to_container(OmegaConf.structured(schema), resolve=False)
            for group, schema in schemas.items()}  # fmt: skip


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


def reads_pooler(kinds: list[str]) -> bool:
    """Whether a head of one of these task kinds starts from a pre-trained pooler when given one."""
    from layerft.kinds import KINDS, TaskKind  # here: it imports torch (results.py does not)

    return any(KINDS[TaskKind(kind)].start_from_pooler is not None for kind in kinds)


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


def config_differences(stored: dict[str, Any], resolved: dict[str, Any], limit: int = 4) -> str:
    """`key: stored value -> this value` for the first `limit` dotted keys where two resolved
    configs differ in what their fingerprints hash ("absent" for a key only one has)."""
    old, new = result_config(stored), result_config(resolved)
    for stage in ("injection_task", "target_task"):  # a stage switched on or off: one entry
        if (old[stage] is None) != (new[stage] is None):
            old[stage], new[stage] = (_stage_name(c[stage]) for c in (old, new))
            for group in STAGE1_ONLY_GROUPS if stage == "injection_task" else ():
                old.pop(group, None), new.pop(group, None)
    old, new = _dotted(old), _dotted(new)
    keys = sorted(k for k in old.keys() | new.keys() if old.get(k, _ABSENT) != new.get(k, _ABSENT))
    shown = [
        f"{k}: {_spelled(old.get(k, _ABSENT))} -> {_spelled(new.get(k, _ABSENT))}"
        for k in keys[:limit]
    ]
    return "; ".join(shown) + (f"; and {len(keys) - limit} more" if len(keys) > limit else "")


_ABSENT = "absent"


def _stage_name(task: dict[str, Any] | None) -> str | None:
    return None if task is None else str(task["name"])


def _spelled(value: Any) -> str:
    """A config value as the command line writes it (null, true)."""
    return json.dumps(value) if value is None or isinstance(value, bool) else str(value)


def _dotted(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """A nested config as `a.b.c` -> leaf value (a list is a leaf)."""
    flat: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, dict) and value:
            flat |= _dotted(value, f"{prefix}{key}.")
        else:
            flat[f"{prefix}{key}"] = value
    return flat


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


# run.keep_hydra_files' copy of a finished run's composed config (under Hydra's default output_subdir)
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
