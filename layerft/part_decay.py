"""Each part's lr x weight_decay in both stages, checked before either trains: build_optimizer
refuses such a part only as its stage starts, so a two-stage run trained stage 1 fully and then
failed, and a sweep's plan passed it.

Serves the root config (`RunConfig`): the tasks, lr schedules, layer split and tuning mode meet
here, as `layerft/stage_models.py` and `layerft/run.py` scale each stage's parts;
`layerft/stage_data.py` checks a run with it, `layerft/model_limits.py` a sweep's plan."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from layerft.layer_split import HeadPlacement, InjectedPolicy, resolve_num_lower
from layerft.lr_schedule import combine_multipliers, part_lr_multipliers
from layerft.parts import ADAPTERS, EMBEDDINGS, HEAD, layer_adapters, layer_part
from layerft.task import TaskConfig
from layerft.task_names import check_part_decay
from layerft.tuning_mode import TuningMethod, adapted_layers

if TYPE_CHECKING:
    from layerft.config import RunConfig


def check_part_weight_decay(cfg: RunConfig, depth: int) -> None:
    """Refuse what build_optimizer would, for either stage, on a `depth`-layer encoder: a part
    whose lr (the task's times its multiplier) times weight_decay is >= 1."""
    for group, task, multipliers in stage_multipliers(cfg, depth):
        for part, multiplier in multipliers.items():
            check_part_decay(part, task.lr * multiplier, task.weight_decay, task.lr, f"{group}.")


def stage_multipliers(
    cfg: RunConfig, depth: int
) -> Iterator[tuple[str, TaskConfig, dict[str, float]]]:
    """Each stage's group, task, and the lr multiplier of every part it trains with weight decay
    (not one with biases and LayerNorms alone, as bitfit trains)."""
    injected: list[str] = []
    if cfg.injection_task is not None:
        split = cfg.layer_split.stage1
        num_lower = resolve_num_lower(split, depth)
        injected = [layer_part(i) for i in range(num_lower)]
        # the stage-1 model's depth, as run_injection reads it: a split head truncates the encoder
        built = num_lower if split.head == HeadPlacement.split else depth
        scales = part_lr_multipliers(cfg.injection_lr_schedule, built, injected)
        trained = [EMBEDDINGS, *injected, HEAD] if split.train_embeddings else [*injected, HEAD]
        yield "injection_task", cfg.injection_task, {p: scales.get(p, 1.0) for p in trained}
    yield "target_task", cfg.target_task, _target_multipliers(cfg, depth, injected)


def _target_multipliers(cfg: RunConfig, depth: int, layers: list[str]) -> dict[str, float]:
    """Stage 2's parts as build_target_model scales them (`layers`: the injected ones), and
    build_optimizer an adapter inside a layer the split scales."""
    split = cfg.layer_split.stage2
    injected = list(layers)
    if layers and split.transplant_embeddings and cfg.layer_split.stage1.train_embeddings:
        injected = [EMBEDDINGS, *layers]
    policy = {}
    if split.policy == InjectedPolicy.scale:
        policy = dict.fromkeys([*injected, *map(layer_adapters, injected)], split.lr_multiplier)
    multipliers = combine_multipliers(part_lr_multipliers(cfg.lr_schedule, depth, injected), policy)
    frozen = set(injected) if split.policy == InjectedPolicy.freeze else set()
    trained: dict[str, float] = {}  # bottom up, as build_optimizer meets them
    method = cfg.tuning_mode.method
    if method == TuningMethod.full:
        for part in [EMBEDDINGS, *(layer_part(i) for i in range(depth))]:
            if part not in frozen:
                trained[part] = multipliers.get(part, 1.0)
    elif method in (TuningMethod.adapter, TuningMethod.lora):
        frozen_layers = {i for i in range(len(layers)) if layer_part(i) in frozen}
        for i in adapted_layers(cfg.tuning_mode, depth, frozen_layers):
            key, multiplier = layer_adapters(layer_part(i)), multipliers.get(ADAPTERS, 1.0)
            if key in multipliers:  # as build_optimizer names and scales it
                trained[key] = multiplier * multipliers[key]
            else:
                trained[ADAPTERS] = multiplier
    return {**trained, HEAD: multipliers.get(HEAD, 1.0)}  # every tuning mode trains the head
