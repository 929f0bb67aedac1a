"""The root config schema and its registration: one schema per config group, defaults live there."""

from __future__ import annotations

import copy
import difflib
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf
from omegaconf.errors import MissingMandatoryValue, OmegaConfBaseException

from layerft.errors import LayerftError, first_line
from layerft.layer_split import LayerSplitConfig
from layerft.lr_schedule import ScheduleConfig
from layerft.model import ModelConfig
from layerft.task import TaskConfig
from layerft.tracker import TrackerConfig
from layerft.trainer_config import TrainerConfig
from layerft.tuning_mode import TuningModeConfig


@dataclass
class RunConfig:
    """One combination: backbone, optional stage-1 task, stage-2 task, split, mode, schedules."""

    model: ModelConfig = MISSING
    injection_task: TaskConfig | None = None
    target_task: TaskConfig = MISSING
    layer_split: LayerSplitConfig = MISSING
    tuning_mode: TuningModeConfig = MISSING
    lr_schedule: ScheduleConfig = MISSING  # stage 2
    injection_lr_schedule: ScheduleConfig = MISSING  # stage 1
    tracker: TrackerConfig = MISSING
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    seed: int = 42
    cache_dir: str = "~/.cache/layerft"
    # Store each stage-1 result under <cache_dir>/stage1/ and reuse it in every run that needs the
    # same one (layerft/stage1.py); false: train stage 1 in each run and keep it in memory only.
    reuse_stage1: bool = True
    # Redo a run whose finished result exists (sweep.py --force); false: skip it.
    force_rerun: bool = False

    def __post_init__(self) -> None:
        if not 0 <= self.seed < 2**32:  # numpy's range, which transformers.set_seed feeds
            raise LayerftError(f"seed must be in [0, 2**32), got {self.seed}")
        if not self.cache_dir.strip():  # read as the folder the run started in
            raise LayerftError("cache_dir is empty; give a folder (default ~/.cache/layerft)")


GROUP_SCHEMAS = {
    "model": ModelConfig,
    "injection_task": TaskConfig,
    "target_task": TaskConfig,
    "layer_split": LayerSplitConfig,
    "tuning_mode": TuningModeConfig,
    "lr_schedule": ScheduleConfig,
    "tracker": TrackerConfig,
}
# Root keys filled by a group's option, and that group (stage 1's schedule is an lr_schedule option).
GROUP_OF_KEY = {**{group: group for group in GROUP_SCHEMAS}, "injection_lr_schedule": "lr_schedule"}


def register_configs() -> None:
    """Store the root schema and each group's `base_<group>` schema that option files extend."""
    store = ConfigStore.instance()
    store.store(name="base_config", node=RunConfig)
    for group, schema in GROUP_SCHEMAS.items():
        store.store(name=f"base_{group}", node=schema)


def drop_disabled_stages(cfg: DictConfig) -> DictConfig:
    """`cfg`, or a copy of it where a disabled injection task (`none`) becomes null (callers read
    the result only; copying takes tens of ms and a sweep plans hundreds of configs)."""
    if cfg.injection_task is None or cfg.injection_task.enabled:
        return cfg
    plain = copy.deepcopy(cfg)
    plain.injection_task = None
    return plain


def resolve_config(cfg: DictConfig) -> dict[str, Any]:
    """The composed config as plain data, a disabled stage 1 as null: what is hashed and tracked."""
    resolved = OmegaConf.to_container(drop_disabled_stages(cfg), resolve=True)
    assert isinstance(resolved, dict)
    return resolved


def data_files(run_cfg: RunConfig) -> dict[str, Path]:
    """Each local data file the run reads, by `<group>.<split>` (TaskConfig.local_files)."""
    files = run_cfg.target_task.local_files("target_task")
    if run_cfg.injection_task is not None:
        files |= run_cfg.injection_task.local_files("injection_task")
    return files


def check_data_files(run_cfg: RunConfig) -> None:
    """Fail on a local data file that is unset or missing, the target task's first (the order the
    run reads them in: load_stage_data)."""
    run_cfg.target_task.check_files("target_task")
    if run_cfg.injection_task is not None:
        run_cfg.injection_task.check_files("injection_task")


def check_option_names(cfg: DictConfig, choices: Mapping[str, Any]) -> None:
    """Each chosen option's `name` is its file's: messages, stage-1 keys and results name an option
    by it, so a copied YAML that kept the original's name would be reported as the original."""
    for group, choice in choices.items():
        key = str(group).split("@")[-1]
        node = cfg.get(key) if key in GROUP_OF_KEY else None
        if choice is None or not isinstance(node, DictConfig) or "name" not in node:
            continue
        option = str(choice).split("/")[-1]
        if str(node.name) != option:
            raise LayerftError(
                f"{key}={choice}: its file sets name: {node.name}; an option's name must be its "
                f"file's ({option}), as messages and results name it by that"
            )


def check_known_keys(node: DictConfig, key: str = "") -> None:
    """Fail on a key that no schema declares (Hydra's `+key=value` adds it past struct mode)."""
    schema = OmegaConf.get_type(node)
    if not is_dataclass(schema):
        return  # a plain dict field (data_files, release_rename, ...): its keys are free
    known = [f.name for f in fields(schema)]
    parent = f"{key}." if key else ""
    for name, child in node.items_ex(resolve=False):
        if name not in known:
            close = difflib.get_close_matches(str(name), known, n=1)
            hint = f"; did you mean '{parent}{close[0]}'?" if close else ""
            raise LayerftError(f"unknown config key '{parent}{name}'{hint}")
        if isinstance(child, DictConfig):
            check_known_keys(child, f"{parent}{name}")


def to_run_config(cfg: DictConfig) -> RunConfig:
    """Validate the composed config into typed objects (runs each schema's `__post_init__` checks)."""
    check_known_keys(cfg)
    plain = drop_disabled_stages(cfg)
    check_finite(plain)
    try:
        run_cfg = _to_object(plain)
    except OmegaConfBaseException as err:  # its first line seldom names the key; `full_key` does
        first, key = first_line(err), err.full_key
        raise LayerftError(f"{key}: {first}" if key and key not in first else first) from err
    assert isinstance(run_cfg, RunConfig)
    return run_cfg


FLOAT32_MAX = 3.4028234663852886e38


def check_finite(cfg: DictConfig) -> None:
    """No setting is NaN, and no single number infinite: a schema check such as `lr > 0` is false
    for NaN without failing, so NaN would pass every check and surface later as a crash or as a
    NaN loss blamed on the learning rate (and `max_grad_norm=nan` would silently turn clipping
    off); `epochs=inf` crashed. In a list an infinity is a bound (`regression.score_range`).
    Nor past float32's largest number: training computes in float32 (or bfloat16, as wide), where
    `lora.alpha=1e308` is infinite and the NaN loss it causes was blamed on the learning rate."""
    try:
        plain = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=False)
    except OmegaConfBaseException:
        return  # an interpolation that does not resolve: _to_object reports it at its key

    def walk(value: Any, key: str, option: str = "", in_list: bool = False) -> None:
        if isinstance(value, float) and (math.isnan(value) or not in_list):
            # worded and placed as the schema checks' messages (_to_object)
            where = f" ({option})" if option else ""
            if not math.isfinite(value):
                raise LayerftError(f"{key} must be a finite number, got {value}{where}")
            if abs(value) > FLOAT32_MAX:
                raise LayerftError(
                    f"{key} must be at most {FLOAT32_MAX:.4g} in size (float32's largest number; "
                    f"training computes in float32, where it is infinite), got {value:g}{where}"
                )
        if isinstance(value, dict):
            if key in GROUP_OF_KEY and "name" in value:
                option = f"{key}={value['name']}"
            for name, child in value.items():
                walk(child, f"{key}.{name}" if key else str(name), option)
        elif isinstance(value, list):
            for index, child in enumerate(value):
                walk(child, f"{key}[{index}]", option, in_list=True)

    walk(plain, "")


def _to_object(node: DictConfig, key: str = "", option: str = "") -> Any:
    """`node` as its schema's object, typed nodes under it first, so that a failing schema check
    is reported at the innermost failing node's full key (`option`: the group choice it sits in)."""
    for name, child in node.items_ex(resolve=False):
        if isinstance(child, DictConfig) and is_dataclass(OmegaConf.get_type(child)):
            full = f"{key}.{name}" if key else str(name)
            _to_object(child, full, f"{full}={child.name}" if full in GROUP_OF_KEY else option)
    try:
        return OmegaConf.to_object(node)
    except LayerftError as err:
        raise LayerftError(_at_key(str(err), key, OmegaConf.get_type(node), option)) from err
    except MissingMandatoryValue as err:  # "... has missing mandatory value: kind", no key
        missing = re.search(r"missing mandatory value: (\w+)", str(err))
        if missing is None:
            raise
        where = f" ({option}: set it in its file)" if option else ""
        dotted = f"{key}.{missing.group(1)}" if key else missing.group(1)
        raise LayerftError(f"{dotted} is not set{where}") from err


def _at_key(message: str, key: str, schema: Any, option: str) -> str:
    """A schema check's message reworded to start with the config key it is about.

    Schema checks say `<label>: <field> <problem>` (the label is the schema's own, e.g.
    `task 'snli'`); the result is `<key>.<field> <problem> (<option>)`, or `<key>: <problem>`
    when the problem does not start with one of the schema's fields.
    """
    problem = message.split(": ", 1)[-1]
    first = re.match(r"\w+", problem)
    if first and first.group() in {f.name for f in fields(schema)}:
        located = f"{key}.{problem}" if key else problem
    else:
        located = f"{key}: {problem}"
    return f"{located} ({option})" if option else located
