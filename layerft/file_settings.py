"""The keys a run's grid or experiment file sets itself (`target_task.epochs: 1` beside its
`defaults` and `hydra` nodes): a setting of the run that neither its group choices nor its
command line name, so a sweep table lists them apart (results.md's "Set by the grid or
experiment file").

Serves the `sweep` and `experiment` config groups (`@package _global_` option files);
`layerft/hydra_job.py` records them with each result (`run/file_settings`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hydra.plugins.config_source import ConfigResult
from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from layerft.config_overrides import override_key
from layerft.credentials import MASK, names_credential

if TYPE_CHECKING:
    from layerft.sweep_job import Job

GLOBAL_GROUPS = ("experiment", "sweep")  # their option files may set any key of the config


def file_settings(cfg: DictConfig, hydra: DictConfig) -> dict[str, str]:
    """`key` -> its value in `cfg`, for each key the chosen grid and experiment files set outside
    their `defaults` and `hydra` nodes and the command line does not override (an override is
    a setting of its own; a credential's value masked). Empty where no such file is chosen."""
    overridden = {override_key(o) for o in hydra.overrides.task}
    settings: dict[str, str] = {}
    for group in GLOBAL_GROUPS:
        option = hydra.runtime.choices.get(group)
        found = option and _option_file(hydra.runtime.config_sources, f"{group}/{option}")
        if not found or found.header.get("package") != "_global_":  # its keys sit elsewhere
            continue
        for key in _leaf_keys(found.config):
            if key in overridden:
                continue
            try:  # a value that does not resolve fails the run, which records why; not this
                value = setting_text(OmegaConf.select(cfg, key, default=None))
            except OmegaConfBaseException:
                continue
            if names_credential(key.rsplit(".", 1)[-1]):
                value = MASK
            settings[key] = value
    return settings


def setting_text(value: Any) -> str:
    """A config value as a command line would spell it (`true`, `null`, `[1,2]`, `{a:1}`)."""
    if isinstance(value, ListConfig | DictConfig):
        value = OmegaConf.to_container(value, resolve=True, enum_to_str=True)
    if isinstance(value, Enum):  # a schema's choice, as Hydra reads it
        return value.name
    if isinstance(value, bool) or value is None or isinstance(value, list | dict):
        return json.dumps(value, separators=(",", ":"), default=str)
    return str(value)


def shadowed_options(hydra: DictConfig) -> list[str]:
    """One line per chosen option that a folder of the search path holds a file of but another
    folder's, earlier on the path (conf/, a shipped one), is read instead: Hydra says nothing."""
    unique: dict[Path, Path] = {}  # one folder named twice (conf and /abs/conf) is one
    for source in hydra.runtime.config_sources:
        if source.schema == "file":
            unique.setdefault(Path(source.path).resolve(), Path(source.path))
    folders = list(unique.values())
    lines = []
    for group, option in hydra.runtime.choices.items():
        group = str(group).split("@")[0]  # lr_schedule@injection_lr_schedule: lr_schedule's
        if option is None or group.startswith("hydra/"):
            continue
        found = [folder / group / f"{option}.yaml" for folder in folders]
        read, *unread = [path for path in found if path.is_file()] or [None]
        lines += [f"{path} is not read: {group}={option} reads {read} (earlier on the search path); give yours a name of its own" for path in unread]  # fmt: skip
    return lines


def _option_file(sources: Any, name: str) -> ConfigResult | None:
    """`<group>/<option>` as Hydra reads it (its header parsed) from the first of the run's config
    sources that holds it, in search-path order: a file folder, a package or a structured config."""
    from hydra._internal.sources_registry import SourcesRegistry
    from hydra.core.plugins import Plugins

    Plugins.instance()  # registers the kinds of source
    for entry in sources:
        kind = SourcesRegistry.instance().resolve(entry.schema)
        source = kind(provider=entry.provider, path=f"{entry.schema}://{entry.path}")
        if source.is_config(name):
            return source.load_config(name)
    return None


def _leaf_keys(node: DictConfig, prefix: str = "") -> Iterator[str]:
    """The dotted keys of a file's values, less its `defaults` list and `hydra` node."""
    for key, value in node.items_ex(resolve=False):
        if not prefix and key in ("defaults", "hydra"):
            continue
        if isinstance(value, DictConfig) and len(value):
            yield from _leaf_keys(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}"


def file_settings_lines(jobs: list[Job]) -> list[str]:
    """results.md's lines on the keys the jobs' grid or experiment files set (Job.file_settings):
    those every job sets alike, then those set in some jobs or to other values (rows do not tell
    these apart unless a varied choice does), and how many records do not say."""
    said = [job.file_settings for job in jobs if job.file_settings is not None]
    values: dict[str, list[str]] = {}
    for settings in said:
        for key, value in settings.items():
            values.setdefault(key, []).append(value)
    same = {k: v[0] for k, v in values.items() if len(v) == len(said) and len(set(v)) == 1}
    lines = []
    if same:
        cells = ", ".join(f"`{k}={v}`" for k, v in same.items())
        which = "every job" if len(said) == len(jobs) else "every job that records them"
        lines.append(f"Set by the grid or experiment file in {which}: {cells}.")
    if differ := {k: v for k, v in values.items() if k not in same}:
        cells = ", ".join(
            f"`{k}` ({', '.join(sorted(set(v)))}{'; not by the file in some' if len(v) < len(said) else ''})"
            for k, v in differ.items()
        )
        lines.append(
            f"Set by the grid or experiment file in some jobs, or to other values: {cells}."
        )
    if values and len(said) < len(jobs):
        older = len(jobs) - len(said)
        which = (
            "1 result by an older layerft does"
            if older == 1
            else f"{older} results by an older layerft do"
        )
        lines.append(f"{which} not record what their grid or experiment file set.")
    return lines
