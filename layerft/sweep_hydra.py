"""Hydra's config repository as sweep.py reads it: conf/ and the search path of the command line
(`hydra.searchpath=[file://<dir>]`, `[pkg://<package>]`), for the grids it holds (`find_grid`)
and the options a `glob()` sweep lists. Hydra 1.3 composes a config with that search path but lists
group options without it (hydra issue #1942): `searched_loader` lists them as they compose.

Serves the `sweep` config group (conf/sweep/<grid>.yaml), as `layerft/sweep_grid.py` does.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from pathlib import Path

from hydra import initialize_config_dir
from hydra.core.config_loader import ConfigLoader
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import ConfigCompositionException
from hydra.plugins.config_source import ConfigResult, ConfigSource

from hydra_plugins.layerft_launcher.skipping_sweeper import SEARCHPATH, searched_loader
from layerft.config_errors import CONF
from layerft.errors import LayerftError

GRID_GROUP = "sweep"


def searchpath(overrides: Sequence[str]) -> list[str]:
    """The folders a `hydra.searchpath` override adds ([] without one: conf/config.yaml sets none)."""
    for override in OverridesParser.create().parse_overrides(list(overrides)):
        if override.get_key_element() == "hydra.searchpath":
            value = override.value()
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                # Hydra's words, which composing would raise after a "no grid" of ours
                raise ConfigCompositionException(
                    f"hydra.searchpath must be a list of strings. Got: {value}"
                )
            return value
    return []


@contextlib.contextmanager
def hydra_loader(overrides: Sequence[str]) -> Iterator[ConfigLoader]:
    """A fresh Hydra on conf/ (cleared after), and its config loader with the search path of
    `overrides`."""
    folders = searchpath(overrides)
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
            yield searched_loader(GlobalHydra.instance().config_loader(), folders)
    finally:
        GlobalHydra.instance().clear()


def grid_names(overrides: Sequence[str] = ()) -> list[str]:
    """The grids Hydra finds with the search path of `overrides`."""
    with hydra_loader(overrides) as loader:
        return sorted(loader.get_group_options(GRID_GROUP))


def grid_folder(source: ConfigSource) -> str:
    """The grid folder of a source of the search path, as messages name it."""
    if source.scheme() == "file":
        return str(Path(source.path) / GRID_GROUP)
    return f"{source.scheme()}://{source.path}/{GRID_GROUP}"


def find_grid(grid: str, overrides: Sequence[str]) -> tuple[str, ConfigResult]:
    """The grid's file (as messages name it) and its content, as Hydra loads `sweep=<grid>`: from
    the first folder of the search path that holds it, a `pkg://` one too."""
    with hydra_loader(overrides) as loader:
        sources = loader.get_sources()
        path = f"{GRID_GROUP}/{grid}"
        holder = next((source for source in sources if source.is_config(path)), None)
        if holder is not None:
            name = f"{grid_folder(holder)}/{grid}.yaml"
            try:
                return name, holder.load_config(path)
            except ValueError as err:  # its header: `# @package` without one name, or with two
                raise LayerftError(f"{name}: {err}") from None
        names = sorted(loader.get_group_options(GRID_GROUP))
    # conf/ and the command line's folders (Hydra's own hold no grid)
    folders = [grid_folder(s) for s in sources if s.provider in {"main", SEARCHPATH}]
    raise LayerftError(f"no grid '{grid}' in {', '.join(folders)}; grids: {', '.join(names)}")
