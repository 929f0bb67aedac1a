"""Compose the real config tree the way train.py does (shared by tests)."""

from __future__ import annotations

from pathlib import Path

from hydra import compose, initialize_config_dir

from layerft.config import RunConfig, register_configs, to_run_config

CONF = Path(__file__).resolve().parents[1] / "conf"
register_configs()


def compose_run(*overrides: str) -> RunConfig:
    """The validated RunConfig for these command-line overrides."""
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return to_run_config(compose("config", overrides=list(overrides)))
