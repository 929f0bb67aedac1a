"""Errors Hydra and OmegaConf raise while composing the config, as one line each: an unknown key
or option (with the closest name), a value of the wrong type or outside an enum's choices (in an
override or in an option's file), a key set inside a null node, a YAML file that does not parse, an
output folder Hydra cannot create; `config_errors_exit` turns them into exit code 2.

Serves the root config as Hydra composes it: train.py and sweep.py (through `layerft/sweep_launch.py`,
`sweep_grid.py`, `sweep_compose.py` and `sweep_tracker.py`, which compose it too);
`layerft/config.py` holds the schemas.
"""

from __future__ import annotations

import contextlib
import difflib
import itertools
import os
import re
import sys
import traceback
from collections.abc import Iterator
from pathlib import Path

import yaml
from hydra.errors import HydraException, OverrideParseException
from omegaconf import DictConfig
from omegaconf.errors import ConfigAttributeError, ConfigKeyError, OmegaConfBaseException

from layerft.config_hints import (
    choice_hint,
    groups_of,
    keys_named,
    known_mapping,
    searched_folders,
    unquoted_letters_hint,
)
from layerft.errors import first_line, hydra_raises, traceback_wanted

# What composing the config raises for bad input: an override, a group option, a file's YAML.
CONFIG_ERRORS = (HydraException, OmegaConfBaseException, yaml.YAMLError)
CONF = Path(__file__).resolve().parents[1] / "conf"  # the shipped options (and grids)


def config_error_line(err: Exception) -> str:
    """One line for an error Hydra or OmegaConf raises while composing the config: the override at
    fault and what it takes, without the schema's type lines and Hydra's search path."""
    if isinstance(err, yaml.YAMLError):
        return yaml_error_line(err)
    non_ascii = isinstance(err, OverrideParseException) and not err.override.isascii()
    if non_ascii and (hint := unquoted_letters_hint(err.override)) is not None:
        return f"{err.override}: {hint}"
    message = str(err)
    missing = re.search(r"Could not find '(.+)/([^/']+)'", message)
    if missing:  # an unknown group option; Hydra lists the group's options, one per line
        group, option = missing.groups()
        options = re.findall(r"^\t(\S+)$", message.split("Config search path")[0], re.M)
        close = difflib.get_close_matches(option, options, n=1)
        hint = f"did you mean '{close[0]}'? " if close else ""
        looked = searched_folders(message, group)
        return f"{group}={option}: no such option; {hint}options: {', '.join(options)}{looked}"
    chosen_as_value = re.search(
        r"Merge error: str is not a subclass of (\w+)\. value: (\S+)", message
    )
    if chosen_as_value:  # `model: tiny` in a grid or experiment file: a group's option as a value
        schema, option = chosen_as_value.groups()
        where = re.match(r"In '([^']+)':", message)
        groups = groups_of(schema)
        group = groups[0] if len(groups) == 1 else "<group>"
        return (
            f"{option_file(where.group(1)) + ': ' if where else ''}'{option}' is set as the value "
            f"of a config group ({' or '.join(groups)}); choose the option in the file's defaults "
            f"list instead: `- override /{group}: {option}`"
        )
    # An override's error is the cause; a key in an option's file, the context of Hydra's "In
    # '<group>/<option>': ..." (the option named, as the file to fix).
    cause = err.__cause__ or err.__context__
    if isinstance(cause, (ConfigAttributeError, ConfigKeyError)) and cause.full_key:
        known = list(cause.parent_node) if isinstance(cause.parent_node, DictConfig) else []
        parent, _, name = cause.full_key.rpartition(".")
        close = difflib.get_close_matches(name, [str(k) for k in known], n=1)
        hint = f"; did you mean '{parent + '.' if parent else ''}{close[0]}'?" if close else ""
        if not close and known_mapping(cause.parent_node):  # a mapping's keys are the user's
            hint = f"; a new key of {parent} is added with '+{cause.full_key}=...'"
        elif not close and (elsewhere := keys_named(cause.parent_node, name)):
            hint = f"; did you mean {' or '.join(map(repr, elsewhere))}?"  # another node's
        where = re.match(r"In '([^']+)':", message)
        option = f"{option_file(where.group(1))}: " if where and err.__cause__ is None else ""
        return f"{option}unknown config key '{cause.full_key}'{hint}"
    if isinstance(cause, OmegaConfBaseException):  # why it failed: the cause's first line
        why = first_line(cause) + choice_hint(str(cause))
        where = re.match(r"In '([^']+)':", message)
        if where and err.__cause__ is None and getattr(cause, "full_key", None):
            # A value in an option's file; Hydra's text repeats the cause with its type lines.
            return f"{option_file(where.group(1))}: {cause.full_key}: {why}"
        message = f"{message}: {why}"
    text = " ".join(line.strip() for line in message.splitlines() if line.strip())
    return text or type(err).__name__


def option_file(option: str) -> str:
    """An option's file (`<group>/<option>`) as a message names it: `conf/<group>/<option>.yaml`
    where this checkout's conf/ holds it, else as a config folder on hydra.searchpath holds it."""
    shipped = f"conf/{option}.yaml"
    return shipped if (CONF / f"{option}.yaml").is_file() else f"{option}.yaml"


@contextlib.contextmanager
def config_errors_exit() -> Iterator[None]:
    """Around `@hydra.main`: an error Hydra finds while composing the config (an unknown key or
    option, a value of the wrong type) is one line on stderr and exit code 2, as other bad input.

    Hydra prints these over several lines and exits 1 itself unless HYDRA_FULL_ERROR is set, so it
    is set meanwhile; a user who set it gets Hydra's own report.
    """
    with hydra_raises() as user_set:
        try:
            yield
        except (*CONFIG_ERRORS, AssertionError, ValueError, OSError) as err:
            if isinstance(err, (*CONFIG_ERRORS, AssertionError, ValueError)):  # Hydra's missing
                line = composition_error_line(err)  # config is an OSError too
            else:
                line = output_folder_error_line(err)
            if user_set or line is None:
                raise
            if traceback_wanted():
                traceback.print_exc()
            print(f"error: {line}", file=sys.stderr)
            raise SystemExit(2) from None


def output_folder_error_line(err: OSError) -> str | None:
    """The line for an output folder Hydra itself could not create (`mkdir` called from Hydra's
    code: its run or sweep folder under a file, or where the user may not write), or None for any
    other OSError (one a run raised, which reports its own, or Hydra's for another reason)."""
    frames, tb = [], err.__traceback__
    while tb is not None:
        frames.append(tb.tb_frame.f_code)
        tb = tb.tb_next
    for caller, callee in itertools.pairwise(frames):
        if callee.co_name == "mkdir" and callee.co_filename.endswith("pathlib.py"):
            if f"{os.sep}hydra{os.sep}" in caller.co_filename and err.filename is not None:
                return (
                    f"{err.filename}: cannot create this output folder ({err.strerror}); set "
                    "hydra.run.dir (hydra.sweep.dir with -m) to a folder that can be created"
                )
            return None
    return None


def composition_error_line(err: Exception) -> str | None:
    """config_error_line, Hydra's ValueErrors for bad input (hydra_value_error_line), and the one
    AssertionError composing raises for bad input: OmegaConf's,
    for an override setting a key inside a null node (`model.tiny.hidden_size=8` on a model whose
    `tiny` is null), which Hydra lets escape bare. None for any other assertion (a bug)."""
    if isinstance(err, ValueError) and not isinstance(err, CONFIG_ERRORS):
        return log_file_error_line(err) or hydra_value_error_line(err)
    if not isinstance(err, AssertionError):
        return config_error_line(err)
    if "Unexpected type for root" not in str(err):
        return None
    tb, line = err.__traceback__, None
    while tb is not None:  # the override Hydra was applying
        if tb.tb_frame.f_code.co_name == "_apply_overrides_to_config":
            line = getattr(tb.tb_frame.f_locals.get("override"), "input_line", None)
        tb = tb.tb_next
    if line is None:
        return None
    key = line.split("=", 1)[0].lstrip("+~")
    return (
        f"{line}: a node above '{key}' is null in this config, so it has no keys to set; set "
        f"the node whole (e.g. {key.rsplit('.', 1)[0]}={{...}}) or choose an option that fills it"
    )


def log_file_error_line(err: BaseException) -> str | None:
    """The line for a log file Hydra's job logging could not open (train.log or sweep.log in a
    folder it may not write, or a folder in its place): logging's ValueError names only its
    handler, the OSError behind it the file."""
    cause = err.__cause__
    if not str(err).startswith("Unable to configure handler") or not isinstance(cause, OSError):
        return None
    return f"cannot write {cause.filename}: {cause.strerror or cause}" if cause.filename else None


def has_none_option(group: str) -> bool:
    """Whether a shipped group offers `none`, a run without one (`injection_task=none`)."""
    return (CONF / group / "none.yaml").is_file()


def hydra_value_error_line(err: ValueError) -> str | None:
    """The line for a ValueError Hydra raises itself on bad input (`experiment=null`, `-m` with
    `--cfg`, a missing `--experimental-rerun` file), or None for one raised elsewhere (a bug)."""
    tb = err.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    if tb is None or f"{os.sep}hydra{os.sep}" not in tb.tb_frame.f_code.co_filename:
        return None
    override = getattr(tb.tb_frame.f_locals.get("override"), "input_line", None)
    if override is not None and "must be a string" in str(err):
        from layerft.config import GROUP_OF_KEY  # here: it imports the schemas (torch)

        spelt = override.lstrip("+~").split("=", 1)[0]  # `lr_schedule@injection_lr_schedule`
        group, _, package = spelt.partition("@")
        if has_none_option(group):
            hint = f"{spelt}=none chooses none"
        elif (package or group) in GROUP_OF_KEY:  # `~model` is refused: a run needs one
            hint = f"a run needs one: {spelt}=<option>"
        else:
            hint = f"~{spelt} chooses none"
        return f"{override}: a config group takes an option's name; {hint}"
    return str(err).splitlines()[0] if str(err) else None


def yaml_error_line(err: yaml.YAMLError) -> str:
    """`file:line:column: not valid YAML: ...` for a config file YAML cannot parse."""
    mark = getattr(err, "problem_mark", None)
    where = f"{mark.name}:{mark.line + 1}:{mark.column + 1}" if mark else "a config file"
    reason = ": ".join(
        str(part) for part in (getattr(err, "context", None), getattr(err, "problem", None)) if part
    )
    return f"{where}: not valid YAML ({reason or type(err).__name__}); fix the file"
