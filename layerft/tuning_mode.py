"""The `tuning_mode` config group: which parts of the stage-2 model train."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from types import MappingProxyType

from omegaconf import MISSING

from layerft.heads import TaskModel
from layerft.parts import HEAD, parameter_parts, set_trainable


class TuningMethod(str, Enum):
    full = "full"
    frozen = "frozen"


@dataclass
class TuningModeConfig:
    """Schema of one tuning mode option."""

    name: str = MISSING
    method: TuningMethod = MISSING


def _train_everything(model: TaskModel, cfg: TuningModeConfig) -> None:
    set_trainable(model, set(parameter_parts(model).values()))


def _train_head_only(model: TaskModel, cfg: TuningModeConfig) -> None:
    set_trainable(model, [HEAD])


TUNING_METHODS: Mapping[TuningMethod, Callable[[TaskModel, TuningModeConfig], None]] = (
    MappingProxyType({TuningMethod.full: _train_everything, TuningMethod.frozen: _train_head_only})
)


def apply_tuning_mode(model: TaskModel, cfg: TuningModeConfig) -> None:
    """Set which parameters of the stage-2 model train (and add modules a method needs)."""
    TUNING_METHODS[cfg.method](model, cfg)
