"""Command-line overrides Hydra takes but a run would misread, refused before anything runs; serves
the root config (`layerft/config.py`) for train.py, multirun jobs and sweep.py's plan."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from omegaconf import BooleanNode, DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from layerft.config import GROUP_OF_KEY, RunConfig
from layerft.config_errors import has_none_option
from layerft.credential_overrides import app_overrides
from layerft.errors import LayerftError


def override_key(override: str) -> str:
    """The key a command-line override sets: without its `+`, `++` or `~`, its value, and a
    group's `@package` prefix (`lr_schedule@injection_lr_schedule=cosine` sets
    injection_lr_schedule)."""
    return override.lstrip("+~").split("=", 1)[0].split("@")[-1]


# The root's settings that are no group (a deleted group is check_group_override's to refuse).
ROOT_SETTINGS = frozenset(f.name for f in dataclasses.fields(RunConfig)) - set(GROUP_OF_KEY)


def deletion_error(arguments: Sequence[str]) -> str | None:
    """The error for a command-line deletion of a setting every run reads (`~seed`, `~trainer`), or
    None. Checked before Hydra composes anything, as credentials are: Hydra takes such a deletion,
    and the run crashed reading the key (a grid sweeping it, on Hydra's `Key 'seed' not in
    'RunConfig'`)."""
    for argument in app_overrides(arguments):
        key = override_key(argument)
        if argument.startswith("~") and key in ROOT_SETTINGS:
            setting = f"{key}.<key>=<value>" if key == "trainer" else f"{key}=<value>"
            return (
                f"{argument}: every run reads {key}, so it cannot be deleted; set {setting} instead"
            )
    return None


def quoted_value(text: str) -> str:
    """`text` as a Hydra override's value that reads back as `text` whatever it holds (`=`, `,`,
    brackets, quotes, spaces, non-ASCII, `${...}`): single-quoted, its quotes escaped, the
    backslashes before one, before a `${` or at the end doubled, each `${` escaped."""
    escaped = re.sub(r"(\\+)(?='|$|\$\{)", lambda run: run[1] * 2, text)
    return "'" + escaped.replace("'", "\\'").replace("${", "\\${") + "'"


def check_overrides(cfg: DictConfig, overrides: Sequence[str]) -> None:
    """Fail on a command-line override Hydra takes but a run would misread: an on/off key set to a
    number other than 0 or 1 (OmegaConf reads any other number as true: `trainer.keep_checkpoints=2`
    would keep every checkpoint, not two), and a group given a list or deleted (`tuning_mode=[a,b]`
    merges both files into one run, `~injection_task` drops the choice its results are named by)."""
    for override in OverridesParser.create().parse_overrides(list(overrides)):
        if override.is_sweep_override():
            continue
        check_group_override(override)
        group, _, leaf = override.key_or_group.rpartition(".")
        if leaf == "name" and group in GROUP_OF_KEY:  # as check_option_names, named for the line
            raise LayerftError(
                f"{override.input_line}: an option's name is its file's (messages, stage-1 keys "
                f"and results name it by that); choose another with {chosen_as(group)}=<option>"
            )
        value = override.value()
        if override.is_delete() or isinstance(value, bool) or not isinstance(value, int):
            continue
        if value in (0, 1):
            continue
        key = override.key_or_group
        parent, _, name = key.rpartition(".")
        try:
            node = OmegaConf.select(cfg, parent) if parent else cfg
        except OmegaConfBaseException:
            continue  # not a config key (a Hydra group@package): Hydra itself checked it
        if isinstance(node, DictConfig) and isinstance(node._get_node(name), BooleanNode):
            raise LayerftError(f"{key} is true or false, got {value}")


def chosen_as(key: str) -> str:
    """How the command line chooses the option of a group's node: `lr_schedule@injection_lr_schedule`."""
    return key if GROUP_OF_KEY[key] == key else f"{GROUP_OF_KEY[key]}@{key}"


def check_group_override(override: Override) -> None:
    """A run's group (`tuning_mode`, `lr_schedule@injection_lr_schedule`) takes one option."""
    key = override.package or override.key_or_group
    if key not in GROUP_OF_KEY:
        return
    if override.is_delete():  # `~injection_lr_schedule` too, the node's key without its group
        hint = f"; {key}=none runs without one" if has_none_option(GROUP_OF_KEY[key]) else ""
        raise LayerftError(
            f"{override.input_line}: a run keeps its {key} option (results and tables are named "
            f"by it), so it cannot be deleted{hint}"
        )
    if override.key_or_group != GROUP_OF_KEY[key]:  # a value for the node, not an option
        return
    if isinstance(override.value(), list):
        options = ",".join(str(v) for v in override.value())
        spelt = override.get_key_element().lstrip("+")
        raise LayerftError(
            f"{override.input_line}: {key} takes one option (a list merges them into one "
            f"config); {spelt}={options} sweeps them (with -m, or in sweep.py)"
        )
