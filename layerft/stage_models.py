"""Each stage's model, built from the run config: stage 1's shaped for the split with only its
stage-1 parts trainable; stage 2's on a fresh backbone with the injected weights transplanted, the
tuning mode and the split's policy applied. `layerft/run.py` trains them.

Serves the root config (`RunConfig`), as run.py does: the model, task, split, tuning-mode and
schedule groups meet here."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

import transformers

from layerft.config import RunConfig
from layerft.heads import TaskModel, build_task_model, encoder_layers
from layerft.layer_split import (
    InjectedWeights,
    apply_injected_policy,
    frozen_injected_layers,
    injected_parts,
    prepare_injection_model,
    resolve_num_lower,
    transplant,
)
from layerft.lr_schedule import (
    PartScaling,
    ScheduleConfig,
    combine_multipliers,
    part_lr_multipliers,
)
from layerft.model import load_backbone
from layerft.parts import bottom_up, parameter_parts, set_trainable
from layerft.task import TaskConfig
from layerft.tuning_mode import apply_tuning_mode
from layerft.unread_keys import reads_pooler

log = logging.getLogger(__name__)


def seed_everything(seed: int) -> None:
    """Where the run's seed reaches torch, numpy and random before each model is built. The same
    seed also goes to the Trainer (which seeds them again before training: dropout, the sampler)
    and to `max_*_samples`' own `random.Random` (`layerft/data.py`); nothing else draws."""
    transformers.set_seed(seed)


def fresh_model(cfg: RunConfig, task: TaskConfig) -> TaskModel:
    """A backbone and `task`'s head, built after seeding: the same seed, the same initial weights."""
    seed_everything(cfg.seed)
    pooler = cfg.model.pretrained_pooler and reads_pooler([task.kind.value])  # else not loaded
    backbone = load_backbone(cfg.model, Path(cfg.cache_dir).expanduser(), pooler=pooler)
    return build_task_model(backbone, task)


def build_injection_model(cfg: RunConfig) -> tuple[TaskModel, int]:
    """The stage-1 model, shaped for the split, with only its stage-1 parts trainable."""
    assert cfg.injection_task is not None
    model = fresh_model(cfg, cfg.injection_task)
    split = cfg.layer_split.stage1
    num_lower = resolve_num_lower(split, len(encoder_layers(model.backbone)))
    set_trainable(model, prepare_injection_model(model, split, num_lower))
    return model, num_lower


def build_target_model(
    cfg: RunConfig, injected: InjectedWeights | None
) -> tuple[TaskModel, dict[str, float]]:
    """The stage-2 model (injected weights transplanted, tuning mode, the split's policy on top)
    and its per-part lr multipliers (the schedule's times the split's)."""
    model = fresh_model(cfg, cfg.target_task)
    depth = len(encoder_layers(model.backbone))
    parts: list[str] = []  # the injected ones
    policy: dict[str, float] = {}  # the split's multipliers on them
    if injected is None:
        apply_tuning_mode(model, cfg.tuning_mode, frozen_layers=set())
    else:
        split = cfg.layer_split.stage2
        transplant(model, injected, split)
        frozen = frozen_injected_layers(split, len(injected.layers))
        apply_tuning_mode(model, cfg.tuning_mode, frozen)
        parts = injected_parts(split, injected)
        policy = apply_injected_policy(model, split, parts)
    scales = part_lr_multipliers(cfg.lr_schedule, depth, parts)
    warn_if_inert(model, cfg.lr_schedule, scales, cfg.tuning_mode.name)
    return model, combine_multipliers(scales, policy)


def warn_if_inert(
    model: TaskModel, schedule: ScheduleConfig, scales: Mapping[str, float], mode: str
) -> None:
    """A warning when a scaling other than uniform leaves every part stage 2 trains at 1
    (`layerwise_decay` under LoRA: adapters and head at the full lr), so that the run trains as
    under `uniform`, and a grid crossing the two trains it twice."""
    names = parameter_parts(model)
    trained = {names[n]: 1 for n, p in model.named_parameters() if p.requires_grad}
    if schedule.scaling != PartScaling.uniform and all(scales.get(p, 1) == 1 for p in trained):
        log.warning(
            "target: lr_schedule=%s scales no part that tuning_mode=%s trains (%s): the run "
            "trains as under a uniform schedule",
            schedule.name, mode, ", ".join(bottom_up(trained)),
        )  # fmt: skip
