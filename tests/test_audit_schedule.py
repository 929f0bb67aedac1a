"""Audit of lr_schedule: warmup rounding and the bounds of a schedule's settings, behaviours
test_lr_schedule.py and test_config.py left unguarded (each test names the mistake it catches)."""

from __future__ import annotations

import math

import pytest

from layerft.errors import LayerftError
from layerft.lr_schedule import (
    PartMultipliers,
    PartScaling,
    ScheduleConfig,
    ScheduleShape,
    part_lr_multipliers,
    warmup_steps,
)


def schedule(**fields) -> ScheduleConfig:
    return ScheduleConfig(name="audit", shape=ScheduleShape.linear, **fields)


@pytest.mark.parametrize(
    ("ratio", "steps", "expected"),
    [(0.25, 10, 3), (0.05, 10, 1), (0.01, 150, 2), (0.07, 100, 7), (0.0, 10, 0)],
)
def test_warmup_steps_round_a_fractional_step_up(ratio, steps, expected) -> None:
    # Kills: truncating `warmup_ratio * steps` (0.05 of 10 steps was no warmup at all).
    assert expected == math.ceil(round(ratio * steps, 9))  # the hand count, independent of the code
    assert warmup_steps(schedule(warmup_ratio=ratio), steps) == expected


def test_a_warmup_over_every_step_is_refused() -> None:
    # Kills: `warmup_ratio < 1` -> `<= 1` (README/config: in [0, 1); warmup would never end).
    with pytest.raises(LayerftError, match=r"warmup_ratio must be in \[0, 1\), got 1.0"):
        schedule(warmup_ratio=1.0)
    assert schedule(warmup_ratio=0.99).warmup_ratio == 0.99


def test_a_layer_decay_of_one_is_allowed_and_scales_nothing() -> None:
    # Kills: `layer_decay <= 1` -> `< 1`: decay 1 (no decay, every part at the task's lr) is in
    # (0, 1], the bound the error message states.
    cfg = schedule(scaling=PartScaling.layerwise_decay, layer_decay=1.0)
    assert set(part_lr_multipliers(cfg, 4, injected=[]).values()) == {1.0}
    with pytest.raises(LayerftError, match=r"layer_decay must be in \(0, 1\], got 1.5"):
        schedule(layer_decay=1.5)


@pytest.mark.parametrize("part", ["embeddings", "injected", "encoder", "adapters", "head"])
def test_a_zero_multiplier_is_refused(part) -> None:
    # Kills: `value <= 0` -> `value < 0`: a part at lr 0 would silently never train (freezing is
    # the layer split's and the tuning mode's job).
    with pytest.raises(LayerftError, match=f"multipliers.{part} must be > 0, got 0.0"):
        schedule(multipliers=PartMultipliers(**{part: 0.0}))
