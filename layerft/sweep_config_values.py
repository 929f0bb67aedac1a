"""What a job's composed config holds at a setting's key: a row that spells out
`target_task.lr=5e-5` and a baseline row that leaves it at its option's 5e-5 are paired.

Serves no config group: `layerft/sweep_table.py` pairs rows with it. Read from the job folder's
Hydra files (`.hydra/finished/`, which a skipped rerun cannot rewrite, else `.hydra/`), so
`sweep.py aggregate` still needs no config.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException
from yaml import YAMLError

from layerft.sweep_settings import setting_value

if TYPE_CHECKING:
    from layerft.sweep_records import Job

HYDRA_FILES = (Path(".hydra") / "finished" / "config.yaml", Path(".hydra") / "config.yaml")


def holds(jobs: list[Job], settings: dict[str, str]) -> bool:
    """Whether the jobs' configs hold each setting's value: at least one job's config is readable,
    and each readable one holds every value (`5e-05` holds `5e-5`)."""
    if not settings:
        return True
    # Read only for a row no row pairs with exactly, and only its candidates: few files.
    configs = [config for job in jobs if (config := _config(job.run_dir)) is not None]
    return bool(configs) and all(
        _text(config, key) is not None and setting_value(_text(config, key)) == setting_value(text)
        for config in configs
        for key, text in settings.items()
    )


def _config(run_dir: Path) -> DictConfig | None:
    for name in HYDRA_FILES:
        try:
            config = OmegaConf.load(run_dir / name)
        except FileNotFoundError:
            continue
        except (OSError, YAMLError, OmegaConfBaseException):
            return None
        return config if isinstance(config, DictConfig) else None
    return None


def _text(config: DictConfig, key: str) -> str | None:
    """The value at `key` as an override would spell it, or None (none there, not resolvable, or a
    list or mapping, which no row pairs on)."""
    try:
        value = OmegaConf.select(config, key, throw_on_resolution_failure=False)
    except OmegaConfBaseException:
        return None
    if isinstance(value, bool):
        return str(value).lower()
    return None if value is None or not isinstance(value, int | float | str) else str(value)
