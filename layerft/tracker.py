"""The `tracker` config group: one Weights & Biases run per train.py run, or none.

Credentials never pass through here: W&B reads its key from its own environment or netrc, and
only the composed config (which has no credential keys) is sent.
"""

from __future__ import annotations

import logging
import netrc
import os
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, Protocol

from omegaconf import MISSING

log = logging.getLogger(__name__)


class TrackerBackend(str, Enum):
    none = "none"
    wandb = "wandb"


class TrackerMode(str, Enum):
    auto = "auto"  # online with credentials, offline (files to `wandb sync` later) without
    online = "online"
    offline = "offline"


@dataclass
class TrackerConfig:
    """Schema of one tracker option."""

    name: str = MISSING
    backend: TrackerBackend = MISSING
    project: str = "layerft"
    entity: str | None = None
    mode: TrackerMode = TrackerMode.auto
    group: str | None = None
    tags: list[str] = field(default_factory=list)


class Tracker(Protocol):
    def log(self, metrics: dict[str, float], step: int) -> None: ...
    def summarize(self, metrics: dict[str, float]) -> None: ...
    def finish(self, failed: bool) -> None: ...


class NoTracker:
    """tracker=none: files only."""

    def log(self, metrics: dict[str, float], step: int) -> None:
        pass

    def summarize(self, metrics: dict[str, float]) -> None:
        pass

    def finish(self, failed: bool) -> None:
        pass


class WandbTracker:
    """A W&B run whose per-stage metrics each follow their own step axis (`<stage>/step`)."""

    def __init__(self, run: Any) -> None:
        self.run = run
        self.stages: set[str] = set()

    def log(self, metrics: dict[str, float], step: int) -> None:
        for stage in {key.split("/")[0] for key in metrics} - self.stages:
            self.run.define_metric(f"{stage}/step")
            self.run.define_metric(f"{stage}/*", step_metric=f"{stage}/step")
            self.stages.add(stage)
        for stage in {key.split("/")[0] for key in metrics}:
            metrics = {**metrics, f"{stage}/step": step}
        self.run.log(metrics)

    def summarize(self, metrics: dict[str, float]) -> None:
        self.run.summary.update(metrics)

    def finish(self, failed: bool) -> None:
        self.run.finish(exit_code=1 if failed else 0)


def has_wandb_credentials() -> bool:
    """Whether W&B could log in without asking: a key in the environment or in ~/.netrc."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        hosts = netrc.netrc().hosts
    except (FileNotFoundError, netrc.NetrcParseError):
        return False
    return any("wandb" in host for host in hosts)


def resolve_mode(cfg: TrackerConfig) -> str:
    """The W&B mode to use; WANDB_MODE in the environment wins over `auto`."""
    if cfg.mode != TrackerMode.auto:
        return cfg.mode.value
    if os.environ.get("WANDB_MODE"):
        return os.environ["WANDB_MODE"]
    return "online" if has_wandb_credentials() else "offline"


def start_tracker(
    cfg: TrackerConfig,
    run_dir: Path,
    config: dict[str, Any],
    choices: dict[str, str],
    name: str,
    group: str | None,
) -> Tracker:
    """Open the run (config, choices as `choice/<group>` keys and tags) or return a no-op tracker."""
    if cfg.backend == TrackerBackend.none:
        return NoTracker()
    import wandb  # only a W&B run pays for importing it

    mode = resolve_mode(cfg)
    run = wandb.init(
        project=cfg.project,
        entity=cfg.entity,
        mode=mode,
        dir=str(run_dir),
        name=name,
        group=cfg.group or group,
        tags=[*cfg.tags, *(f"{g}:{o}"[:64] for g, o in sorted(choices.items()))],
        config={**config, **{f"choice/{g}": o for g, o in choices.items()}},
        reinit="finish_previous",
        settings=wandb.Settings(console="off", x_disable_stats=True, silent=True),
    )
    log.info("W&B run %s (%s) in %s", run.id, mode, run.dir)
    return WandbTracker(run)
