"""The `lr_schedule` config group: schedule shape and warmup, per-part learning rates, the optimizer.

Per-part rates are multipliers of the task's `lr`, built explicitly per part (embeddings,
layer.<i>, adapters, head); the scheduler then scales every group by the same curve.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from fractions import Fraction
from types import MappingProxyType
from typing import Any

import torch
from omegaconf import MISSING
from torch import nn

from layerft.errors import LayerftError
from layerft.parts import ADAPTERS, EMBEDDINGS, HEAD, adapter_layers, layer_part
from layerft.task_names import check_part_decay


class ScheduleShape(str, Enum):
    linear = "linear"
    cosine = "cosine"
    constant = "constant"


class PartScaling(str, Enum):
    uniform = "uniform"  # every part at the task's lr
    discriminative = "discriminative"  # a multiplier per kind of part
    layerwise_decay = "layerwise_decay"  # decay ** (depth from the top); head and adapters at 1


# The transformers scheduler behind each shape; all warm up linearly first.
HF_SCHEDULER_TYPES: Mapping[ScheduleShape, str] = MappingProxyType(
    {
        ScheduleShape.linear: "linear",
        ScheduleShape.cosine: "cosine",
        ScheduleShape.constant: "constant_with_warmup",
    }
)
# A new shape without its scheduler here would pass config validation and fail once training starts.
if set(HF_SCHEDULER_TYPES) != set(ScheduleShape):
    raise LayerftError(
        "layerft/lr_schedule.py: HF_SCHEDULER_TYPES has no entry for shape(s) "
        + ", ".join(sorted(s.value for s in set(ScheduleShape) - set(HF_SCHEDULER_TYPES)))
        + "; add the transformers scheduler (get_scheduler's name) behind each"
    )


@dataclass
class PartMultipliers:
    """lr multipliers for `discriminative`: new parts fast, pre-trained parts slow."""

    embeddings: float = 1.0
    injected: float = 1.0  # the layers stage 1 trained
    encoder: float = 1.0  # every other encoder layer
    adapters: float = 1.0
    head: float = 1.0


@dataclass
class ScheduleConfig:
    """Schema of one schedule option."""

    name: str = MISSING
    shape: ScheduleShape = MISSING
    warmup_ratio: float = 0.1
    scaling: PartScaling = PartScaling.uniform
    multipliers: PartMultipliers = field(default_factory=PartMultipliers)
    layer_decay: float = 0.9

    def __post_init__(self) -> None:
        where = f"lr_schedule '{self.name}'"
        if not 0 <= self.warmup_ratio < 1:
            raise LayerftError(f"{where}: warmup_ratio must be in [0, 1), got {self.warmup_ratio}")
        if not 0 < self.layer_decay <= 1:
            raise LayerftError(f"{where}: layer_decay must be in (0, 1], got {self.layer_decay}")
        for part, value in vars(self.multipliers).items():
            if value <= 0:
                raise LayerftError(f"{where}: multipliers.{part} must be > 0, got {value}")


def _discriminative(cfg: ScheduleConfig, layers: list[str], injected: set[str]) -> dict[str, float]:
    m = cfg.multipliers
    scales = {EMBEDDINGS: m.embeddings, ADAPTERS: m.adapters, HEAD: m.head}
    return {**scales, **{p: m.injected if p in injected else m.encoder for p in layers}}


def _layerwise_decay(
    cfg: ScheduleConfig, layers: list[str], injected: set[str]
) -> dict[str, float]:
    # The top layer is one step below the head; the embeddings one below layer 0.
    scales = {p: cfg.layer_decay ** (len(layers) - i) for i, p in enumerate(layers)}
    return {**scales, EMBEDDINGS: cfg.layer_decay ** (len(layers) + 1)}


@dataclass(frozen=True)
class Scaling:
    """A part scaling: each part's lr multiplier (from the schedule, the `layer.<i>` parts bottom
    up, the injected ones; a part left out gets 1) and the ScheduleConfig keys it reads: unread
    under other scalings (`unread_schedule_keys`; a new key: README, "A key added to the config")."""

    multipliers: Callable[[ScheduleConfig, list[str], set[str]], dict[str, float]]
    reads: tuple[str, ...] = ()


PART_SCALINGS: Mapping[PartScaling, Scaling] = MappingProxyType(
    {
        PartScaling.uniform: Scaling(lambda cfg, layers, injected: {}),
        PartScaling.discriminative: Scaling(_discriminative, reads=("multipliers",)),
        PartScaling.layerwise_decay: Scaling(_layerwise_decay, reads=("layer_decay",)),
    }
)
# A new scaling without its entry here would pass config validation and train at uniform rates.
if set(PART_SCALINGS) != set(PartScaling):
    raise LayerftError(
        "layerft/lr_schedule.py: PART_SCALINGS has no entry for scaling(s) "
        + ", ".join(sorted(s.value for s in set(PartScaling) - set(PART_SCALINGS)))
        + "; add its Scaling: the function giving each part's lr multiplier, and the keys it reads"
    )


def unread_schedule_keys(schedule: Mapping[str, Any]) -> dict[str, str]:
    """The ScheduleConfig fields a schedule (resolved, as a dict) never reads, each with why: the
    keys other scalings read (`multipliers`, `layer_decay`: their PART_SCALINGS entries) that its
    own does not. The one list both the result key (`unread_settings`) and the stage-1 key
    (`Stage1Key`) read: a shape's own parameter that other shapes ignore is added here."""
    scaling = PartScaling(schedule["scaling"])
    own = PART_SCALINGS[scaling].reads
    keys = dict.fromkeys(key for entry in PART_SCALINGS.values() for key in entry.reads)
    return {key: f"scales by {scaling.value}" for key in keys if key not in own}


def part_lr_multipliers(
    cfg: ScheduleConfig, num_layers: int, injected: Iterable[str]
) -> dict[str, float]:
    """The lr multiplier of each part under the schedule's scaling (parts not listed get 1)."""
    layers = [layer_part(i) for i in range(num_layers)]
    return PART_SCALINGS[cfg.scaling].multipliers(cfg, layers, set(injected))


def combine_multipliers(*multipliers: Mapping[str, float]) -> dict[str, float]:
    """Multiply per-part multipliers together (a part missing from one counts as 1 there)."""
    combined: dict[str, float] = {}
    for mapping in multipliers:
        for part, value in mapping.items():
            combined[part] = combined.get(part, 1.0) * value
    return combined


def no_decay_parameter_ids(model: nn.Module) -> set[int]:
    """Biases and LayerNorm weights, which weight decay should not shrink (found by module type)."""
    ids = {id(p) for name, p in model.named_parameters() if name.endswith("bias")}
    for module in model.modules():
        if isinstance(module, nn.LayerNorm):
            ids.update(id(p) for p in module.parameters())
    return ids


def build_optimizer(
    model: nn.Module,
    parts_of: Mapping[str, str],
    lr: float,
    weight_decay: float,
    lr_multipliers: Mapping[str, float],
    fused: bool = False,
) -> torch.optim.AdamW:
    """AdamW over trainable parameters only, one group per distinct (lr, weight decay).

    Each group lists the parts it serves under `parts` (`layer.3`, `head/no_decay`, ...): biases
    and LayerNorm weights get no weight decay. Merging parts that share hyperparameters keeps the
    optimizer to a few groups (one kernel launch set each), whatever the number of parts.
    """
    no_decay = no_decay_parameter_ids(model)
    # Adapters inside a layer the split scales (`layer.0.adapters`) get that multiplier too.
    scaled = {}
    if any(key.endswith(f".{ADAPTERS}") for key in lr_multipliers):
        scaled = {p: key for p, key in adapter_layers(model).items() if key in lr_multipliers}
    groups: dict[tuple[float, float], dict[str, Any]] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        part = parts_of[name]
        multiplier = lr_multipliers.get(part, 1.0)
        if id(param) in scaled:
            part = scaled[id(param)]
            multiplier *= lr_multipliers[part]
        decays = id(param) not in no_decay
        key = (lr * multiplier, weight_decay if decays else 0.0)
        group = groups.setdefault(
            key, {"params": [], "parts": [], "lr": key[0], "weight_decay": key[1]}
        )
        group["params"].append(param)
        label = part if decays else f"{part}/no_decay"
        if label not in group["parts"]:
            group["parts"].append(label)
    if not groups:
        raise LayerftError(
            "nothing to train: the tuning mode and layer split froze every parameter"
        )
    for (part_lr, decay), group in groups.items():  # the config checked the task's lr alone
        check_part_decay(group["parts"][0], part_lr, decay, lr)
    return torch.optim.AdamW(list(groups.values()), lr=lr, fused=fused)


def part_learning_rates(optimizer: torch.optim.Optimizer) -> dict[str, float]:
    """The current learning rate of every part (`layer.3`, `head/no_decay`, ...) in `optimizer`."""
    return {part: group["lr"] for group in optimizer.param_groups for part in group["parts"]}


def ceil_of_product(share: float, count: int) -> int:
    """`share * count` rounded up, with `share` read as the decimal it prints as: 1.1 epochs of 100
    steps are 110 steps, and a warmup ratio of 0.1 of 30 steps is 3 (the float products,
    110.00000000000001 and 3.0000000000000004, would round up to one more)."""
    return math.ceil(Fraction(repr(float(share))) * count)


def total_steps(num_examples: int, batch_size: int, epochs: float, world_size: int = 1) -> int:
    """Optimizer steps of a run: batches per epoch (over all processes) times epochs, rounded up."""
    return ceil_of_product(epochs, math.ceil(num_examples / (batch_size * world_size)))


def warmup_steps(cfg: ScheduleConfig, num_steps: int) -> int:
    """The steps of linear warmup from lr 0: `warmup_ratio` of `num_steps`, rounded up."""
    return ceil_of_product(cfg.warmup_ratio, num_steps)


def build_scheduler(
    cfg: ScheduleConfig, optimizer: torch.optim.Optimizer, num_steps: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warmup over `warmup_ratio` of the steps, then the shape; scales every group alike."""
    # Here, not above: importing it loads transformers' Trainer stack (seconds), and composing a
    # config imports this module.
    from transformers import get_scheduler

    return get_scheduler(
        HF_SCHEDULER_TYPES[cfg.shape],
        optimizer,
        num_warmup_steps=warmup_steps(cfg, num_steps),
        num_training_steps=num_steps,
    )
