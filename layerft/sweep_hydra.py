"""Hydra as sweep.py plans a grid with it: the config repository, conf/ and the search path of the
command line (`hydra.searchpath=[file://<dir>]`, `[pkg://<package>]`), for the grids it holds
(`find_grid`) and the options a `glob()` sweep lists (Hydra 1.3 composes a config with that search
path but lists group options without it, hydra issue #1942: `searched_loader` lists them as they
compose); the hydra settings each job is launched with (`launch_overrides`); and each job's
`hydra` node as its launch sets it, for a `${hydra:...}` value in its config (`job_hydra_config`).

Serves the `sweep` config group (conf/sweep/<grid>.yaml), as `layerft/sweep_grid.py` does.
"""

from __future__ import annotations

import contextlib
import difflib
import os
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from hydra import compose, initialize_config_dir
from hydra.core.config_loader import ConfigLoader
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from hydra.errors import ConfigCompositionException
from hydra.plugins.config_source import ConfigResult, ConfigSource
from omegaconf import DictConfig, OmegaConf, read_write

from hydra_plugins.layerft_launcher.skipping_sweeper import SEARCHPATH, searched_loader
from layerft.config_errors import CONF, CONFIG_ERRORS
from layerft.config_overrides import quoted_value
from layerft.errors import LayerftError

GRID_GROUP = "sweep"
HYDRA_VALUE = re.compile(r"\$\{hydra:([^${}]*)\}")  # `${hydra:<key>}` in a config value
# What a job's `hydra` node holds only once the sweeper launches it (after sweep.py planned it),
# by why: a `${hydra:...}` value reading it is refused.
UNPLANNED = {
    "job.num": "its number in the launch, which finished jobs left out change",
    "job.id": "its number in the launch, which finished jobs left out change",
    "overrides": "the overrides as the sweeper lists them (--force adds one)",
    "sweeper": "sweep.py's sweeper, set up with the jobs it leaves out",
    "runtime.choices.hydra/sweeper": "sweep.py's sweeper, set up with the jobs it leaves out",
}
LAUNCH_TIME = "the time of its launch"  # a `${now:...}` setting (hydra.run.dir's)


def split_overrides(overrides: Sequence[str]) -> tuple[list[Override], list[Override]]:
    """Parsed command-line overrides, and those of them that are fixed (not swept)."""
    parsed = OverridesParser.create().parse_overrides(list(overrides))
    return parsed, [o for o in parsed if not o.is_sweep_override()]


def swept_params(grid: str, params: Mapping[Any, Any], overrides: Sequence[str]) -> dict[str, str]:
    """A grid's sweeper params (key -> comma list). Refuses an override of a key it sweeps spelled
    otherwise (`++seed=1`): Hydra's sweeper would cross the two (each job ran seed 1, in folders
    named seed=2, seed=3), where plain `seed=1` narrows the grid."""
    spelled_as = {str(key).lstrip("+~"): str(key) for key in params}
    for override in split_overrides(overrides)[0]:
        key = override.get_key_element()  # (a deletion is check_overrides' to refuse)
        if not override.is_delete() and (swept := spelled_as.get(key.lstrip("+~"), key)) != key:
            raise LayerftError(
                f"{override.input_line}: grid {grid} sweeps {swept}; narrow it with {swept}=..."
            )
    return {str(k): str(v) for k, v in params.items()}


def searchpath(overrides: Sequence[str]) -> list[str]:
    """The folders a `hydra.searchpath` override adds ([] without one: conf/config.yaml sets none)."""
    for override in split_overrides(overrides)[0]:
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
    folders = [grid_folder(s) + ("" if s.available() else f" ({s.path}: not found)")
               for s in sources if s.provider in {"main", SEARCHPATH}]  # fmt: skip
    close = difflib.get_close_matches(grid, names, n=1)
    hint = f"did you mean '{close[0]}'? " if close else ""
    raise LayerftError(f"no grid '{grid}' in {', '.join(folders)}; {hint}grids: {', '.join(names)}")


def launch_overrides(sweep_dir: Path, overrides: Sequence[str], swept: Iterable[str]) -> list[str]:
    """The hydra settings sweep.py launches each job of a grid with, and plans it with: the sweep
    folder, and one folder per job named after its swept settings."""
    _, fixed = split_overrides(overrides)
    # Hydra matches an override's key alone (key_or_group, not `++key`) against exclude_keys
    excluded = sorted({"sweep", "force_rerun", *(o.key_or_group for o in fixed)} - set(swept))
    return [
        f"hydra.sweep.dir={quoted_value(str(sweep_dir))}",  # --dir /data/a=b,c (데이터)
        "hydra.job.name=sweep",  # each job's log is sweep.log, whichever module calls Hydra
        "hydra.sweep.subdir='${layerft_dirname:${hydra.job.override_dirname}}'",
        f"hydra.job.config.override_dirname.exclude_keys=[{','.join(excluded)}]",
        "~hydra.callbacks.failed_jobs",  # train.py's summary; sweep.py prints its own
    ]


def hydra_reads(cfg: DictConfig) -> list[tuple[str, str]]:
    """Each `${hydra:<key>}` value of a config: (its config key, the hydra key it reads)."""
    found: list[tuple[str, str]] = []

    def walk(node: Any, path: str) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                walk(value, f"{path}.{key}" if path else str(key))
        elif isinstance(node, list):
            for index, value in enumerate(node):
                walk(value, f"{path}[{index}]")
        elif isinstance(node, str):
            found.extend((path, key.strip()) for key in HYDRA_VALUE.findall(node))

    walk(OmegaConf.to_container(cfg, resolve=False), "")
    return found


def overlaps(key: str, known: str) -> bool:
    """Whether setting `key` sets `known`: the key itself, one under it, or a node above it
    (`hydra.sweep={...}` set whole)."""
    return key == known or key.startswith(f"{known}.") or known.startswith(f"{key}.")


def unplanned(hydra: DictConfig, key: str) -> str | None:
    """Why a `hydra` node's key is set only when its job is launched (None: sweep.py plans it)."""
    for known, why in UNPLANNED.items():
        if overlaps(key, known):
            return why
    node: Any = OmegaConf.to_container(hydra, resolve=False)
    for part in key.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return LAUNCH_TIME if "${now:" in str(node) else None


@contextlib.contextmanager
def job_hydra_config(cfg: DictConfig, job: Sequence[str], launch: Sequence[str]) -> Iterator[None]:
    """While a job's config `cfg` (composed from the overrides `job`) is planned: Hydra's config
    as its launch sets it (`launch` is launch_overrides'), so that a `${hydra:...}` value resolves
    as in the job (composed again, with its `hydra` node, only for such a config). A value of
    what only the launch sets (its job number) is refused, naming the key, not mis-planned."""
    reads = hydra_reads(cfg)
    if not reads:
        yield
        return
    overrides = [*launch, "hydra.mode=MULTIRUN", *job]  # `-m` adds the mode
    full = compose("config", overrides=overrides, return_hydra_config=True)
    for path, key in reads:
        if why := unplanned(full.hydra, key):
            raise LayerftError(
                f"{path}: ${{hydra:{key}}} is set only when the job is launched ({why}), after "
                "sweep.py plans it; give it another value"
            )
    with hydra_config_set(full):
        yield


@contextlib.contextmanager
def hydra_config_set(full: DictConfig) -> Iterator[None]:
    """Hydra's config set to `full` (composed with its `hydra` node) as Hydra's run_job sets a
    job's, its output_dir the job folder: a `${hydra:...}` value resolves as in that job."""
    held = HydraConfig.instance().cfg
    try:
        HydraConfig.instance().set_config(full)  # as run_job: the folder (`hydra.sweep.subdir`
        folder = [str(OmegaConf.select(full, f"hydra.sweep.{k}")) for k in ("dir", "subdir")]
        with read_write(full.hydra.runtime):  # may read `${hydra:...}`), then the rest
            full.hydra.runtime.output_dir = os.path.abspath(os.path.join(*folder))
        HydraConfig.instance().set_config(full)
        yield
    finally:
        HydraConfig.instance().cfg = held


def grid_param_error(err: Exception, grid: str, overrides: Sequence[str]) -> LayerftError | None:
    """Hydra's error about the grid's file as one line naming that file where it is: a value in it,
    or an override its params give (not the command line: `<file>: hydra.sweeper.params: unknown
    config key 'tuning_mod'; did you mean 'tuning_mode'?`). None for any other error."""
    from layerft.config_errors import composition_error_line, option_file

    found = re.match(r"Could not override '([^']+)'", str(err))
    line = composition_error_line(err)
    in_file = option_file(f"{GRID_GROUP}/{grid}") + ": "
    if line is not None and line.startswith(in_file):  # a value in the file, named as an option's
        return LayerftError(f"{find_grid(grid, overrides)[0]}: {line[len(in_file) :]}")
    if found is None or line is None:
        return None
    path, loaded = find_grid(grid, overrides)
    params = OmegaConf.select(loaded.config, "hydra.sweeper.params", default=None) or {}
    given = {override.split("=", 1)[0] for override in overrides}
    if found.group(1) not in params or found.group(1) in given:
        return None
    return LayerftError(f"{path}: hydra.sweeper.params: {line}")


@contextlib.contextmanager
def named_in_grid(grid: str, overrides: Sequence[str]) -> Iterator[None]:
    """Around composing the grid: Hydra's error about its file as one line naming that file where
    it is (grid_param_error); any other as it is."""
    try:
        yield
    except CONFIG_ERRORS as err:
        if (in_grid := grid_param_error(err, grid, overrides)) is None:
            raise
        raise in_grid from err
