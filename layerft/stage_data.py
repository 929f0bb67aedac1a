"""Both stages' data for a run, read, checked and tokenized before any training: the model's
limits checked against each task first (its positions, its tokenizer, the text's room), so bad
data or a model that cannot take it costs no stage-1 run and no tracker run.

Serves the root config (`RunConfig`) for `layerft/run.py`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from layerft.config import RunConfig
from layerft.data import TaskData, load_task_data
from layerft.model import load_tokenizer
from layerft.model_limits import (
    backbone_config,
    check_max_length,
    check_mode_fits_split,
    check_room_for_text,
    check_tokenizer_fits,
    encoder_depth,
    warn_unrun_code,
    warn_wide_mode,
)
from layerft.part_decay import check_part_weight_decay
from layerft.task import TaskConfig


@dataclass(frozen=True)
class StageData:
    """Both stages' checked, tokenized data (no stage-1 data without an injection task)."""

    target: TaskData
    injection: TaskData | None


def load_stage_data(cfg: RunConfig) -> StageData:
    """Both tasks' data, read and checked first: bad data costs no stage-1 run and no tracker run
    (nor does a tuning mode that the split leaves no layer to adapt)."""
    cache_dir = Path(cfg.cache_dir).expanduser()
    config = backbone_config(cfg.model, cache_dir)  # read once for the checks (None: tiny)
    check_mode_fits_split(cfg, config)
    check_part_weight_decay(cfg, encoder_depth(cfg.model, config))  # else stage 2 fails late
    warn_wide_mode(cfg, config)
    both = ((cfg.target_task, "target_task"), (cfg.injection_task, "injection_task"))
    tasks = [(task, group) for task, group in both if task is not None]
    for task, group in tasks:
        check_max_length(cfg.model, task, group, config, cfg.trainer)
    tokenizer = load_tokenizer(cfg.model, cache_dir)
    check_tokenizer_fits(cfg.model, tokenizer, config, cache_dir)
    warn_unrun_code(cfg.model, config)
    for task, group in tasks:
        check_room_for_text(tokenizer, task, group)
    cache = cache_dir / "tokenized"
    target = _load(cfg, cfg.target_task, "target_task", tokenizer, cache)
    if cfg.injection_task is None:
        return StageData(target, None)
    return StageData(target, _load(cfg, cfg.injection_task, "injection_task", tokenizer, cache))


def _load(cfg: RunConfig, task: TaskConfig, group: str, tokenizer: Any, cache: Path) -> TaskData:
    return load_task_data(
        task, group, tokenizer, cache, cfg.trainer.resolved_pad_multiple(), seed=cfg.seed
    )
