"""The `lr_schedule` config group: schedule shape, warmup, and the optimizer's parameter groups."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum

import torch
from omegaconf import MISSING
from torch import nn

from layerft.errors import LayerftError


class ScheduleShape(str, Enum):
    linear = "linear"
    cosine = "cosine"
    constant = "constant"


# The transformers scheduler behind each shape; all warm up linearly first.
HF_SCHEDULER_TYPES: Mapping[ScheduleShape, str] = {
    ScheduleShape.linear: "linear",
    ScheduleShape.cosine: "cosine",
    ScheduleShape.constant: "constant_with_warmup",
}


@dataclass
class ScheduleConfig:
    """Schema of one schedule option."""

    name: str = MISSING
    shape: ScheduleShape = MISSING
    warmup_ratio: float = 0.1

    def __post_init__(self) -> None:
        # transformers reads warmup >= 1 as a step count, so a ratio must stay below 1.
        if not 0 <= self.warmup_ratio < 1:
            raise LayerftError(
                f"lr_schedule '{self.name}': warmup_ratio must be in [0, 1), got {self.warmup_ratio}"
            )


def no_decay_parameter_ids(model: nn.Module) -> set[int]:
    """Biases and LayerNorm weights, which weight decay should not shrink (found by module type)."""
    ids = {id(p) for name, p in model.named_parameters() if name.endswith("bias")}
    for module in model.modules():
        if isinstance(module, nn.LayerNorm):
            ids.update(id(p) for p in module.parameters())
    return ids


def build_optimizer(
    model: nn.Module,
    parts_of: dict[str, str],
    lr: float,
    weight_decay: float,
    lr_multipliers: Mapping[str, float],
) -> torch.optim.AdamW:
    """AdamW over trainable parameters only, one group per (part multiplier, decay or not)."""
    no_decay = no_decay_parameter_ids(model)
    groups: dict[tuple[float, bool], list[nn.Parameter]] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        key = (lr_multipliers.get(parts_of[name], 1.0), id(param) in no_decay)
        groups.setdefault(key, []).append(param)
    if not groups:
        raise LayerftError("nothing to train: the tuning mode and layer split froze every parameter")
    return torch.optim.AdamW(
        [
            {"params": params, "lr": lr * mult, "weight_decay": 0.0 if skip else weight_decay}
            for (mult, skip), params in sorted(groups.items())
        ],
        lr=lr,
    )
