"""The hints of a config error's line (`layerft/config_errors.py`): a close choice, the key
another node has, the folders a search path looked in, how to quote an override.

Serves every config group: Hydra composes them all.
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path

from omegaconf import DictConfig, OmegaConf


def unquoted_letters_hint(override: str) -> str | None:
    """How to write an override whose value has letters outside ASCII, which Hydra's grammar reads
    only quoted (`target_task.label_column=감정` -> `target_task.label_column='감정'`, a flat
    list's items each); a key of such letters cannot be written at all. None where quoting would
    not help (quotes, braces or nested brackets already there: Hydra's own message then)."""
    key, _, value = override.partition("=")
    if not key.lstrip("+~").isascii():
        return (
            "Hydra's override grammar takes no letters outside ASCII in a key: set it in a YAML "
            "file (an experiment, or an option of your own)"
        )
    if any(mark in value for mark in "'\"{}") or value.count("[") > 1 or value.count("]") > 1:
        return None
    if value.startswith("[") and value.endswith("]"):
        quoted = "[" + ",".join(f"'{item.strip()}'" for item in value[1:-1].split(",")) + "]"
    elif "[" in value or "]" in value:
        return None
    else:
        quoted = f"'{value}'"
    return (
        "Hydra's override grammar reads letters outside ASCII only quoted: write it "
        f'"{key}={quoted}"'
    )


def searched_folders(message: str, group: str) -> str:
    """`; looked in <folder>/<group>, ...` from Hydra's text where its search path holds folders
    beyond conf/ (hydra.searchpath, --config-dir): one missing, or without the group's folder, is
    the likely fault; '' without such folders."""
    paths = re.findall(r"^\tprovider=(.+?), path=file://(.+)$", message, re.M)
    if all(provider == "main" for provider, _ in paths):
        return ""
    named = []
    for _, path in paths:
        folder = Path(path)
        if not folder.is_dir():
            named.append(f"{folder / group} ({folder}: not found)")
        else:
            named.append(
                f"{folder / group}" + ("" if (folder / group).is_dir() else " (not found)")
            )
    return f"; looked in {', '.join(named)}"


def keys_named(node: object, name: str) -> list[str]:
    """The dotted keys of the config `node` belongs to whose last part is `name` (at most 3)."""
    if not isinstance(node, DictConfig):
        return []
    root = node._get_root()
    found: list[str] = []

    def walk(branch: DictConfig, prefix: str) -> None:
        for key, value in branch.items_ex(resolve=False):
            if str(key) == name:
                found.append(f"{prefix}{key}")
            elif isinstance(value, DictConfig) and key != "hydra" and _holds_keys(value):
                walk(value, f"{prefix}{key}.")

    walk(root, "")
    return found[:3]


def _holds_keys(node: DictConfig) -> bool:
    """Whether `node` can be walked: neither null nor missing (`~tracker` leaves `???`)."""
    return not (node._is_none() or node._is_missing())


def groups_of(schema: str) -> list[str]:
    """The root config's groups whose schema is the dataclass named `schema` (`TaskConfig`: both
    tasks), or the schema's name where none is."""
    import dataclasses

    from layerft.config import RunConfig  # here: the schemas import config_errors, and so this

    fields = dataclasses.fields(RunConfig)
    return [f.name for f in fields if str(f.type).split(" |")[0] == schema] or [schema]


def known_mapping(node: object) -> bool:
    """Whether a config node is a plain mapping (`release_rename`, `data_files`), not a schema."""
    return isinstance(node, DictConfig) and OmegaConf.get_type(node) is dict


def choice_hint(reason: str) -> str:
    """`; did you mean '<choice>'?` for an enum key's invalid value close to one of its choices."""
    invalid = re.match(r"Invalid value '(.*)', expected one of \[(.*)\]", reason)
    if invalid is None:
        return ""
    close = difflib.get_close_matches(invalid.group(1), invalid.group(2).split(", "), n=1)
    return f"; did you mean '{close[0]}'?" if close else ""
