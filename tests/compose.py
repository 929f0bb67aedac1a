"""Compose the real config tree the way train.py does (shared by tests)."""

from __future__ import annotations

from pathlib import Path

from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from layerft.config import RunConfig, register_configs, to_run_config

CONF = Path(__file__).resolve().parents[1] / "conf"
register_configs()


def compose_config(*overrides: str) -> DictConfig:
    """The composed config (as train.py's task function receives it) for these overrides."""
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose("config", overrides=list(overrides))


def compose_run(*overrides: str) -> RunConfig:
    """The validated RunConfig for these command-line overrides."""
    return to_run_config(compose_config(*overrides))
