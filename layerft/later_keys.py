"""Config keys added after results were stored, each with the value that means what its absence
did (the behaviour before it). At that value a key keys nothing: neither a finished result
(`layerft/fingerprint.py`) nor a stored stage 1 (`layerft/stage1_key.py`), so the results it does not
change keep their keys, and a grid run before the key existed is still done.

Adding a key to the config (a schema field; a task kind's, schedule shape's or tuning method's
settings) without a line here gives every config a new key: each stored result becomes "another
config" and each stored stage 1 is trained again. A key that changes what runs measure at every
value has no such value; it takes a new results version instead (`layerft/run_record.py`).

Serves no config group.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

# `<node>.<key>`: a dotted path from the root config, where `task.` stands for both stages' tasks
# and `schedule.` for both schedules. A node a dropped key leaves empty is dropped too (a kind's
# new settings node, with its defaults, keys nothing).
LATER_KEYS: Mapping[str, Any] = MappingProxyType(
    {
        "task.tagging.words_column": None,  # klue_ner read its characters as words before
    }
)
ALIASES: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "task": ("injection_task", "target_task"),
        "schedule": ("lr_schedule", "injection_lr_schedule"),
    }
)


def without_later_keys(node: dict[str, Any], at: str) -> dict[str, Any]:
    """`node`, the plain config at dotted path `at` of the root config ("" for the root itself;
    or an alias, `task` for a task of either stage), without the LATER_KEYS under it that hold
    their old values. Changed in place, and returned."""
    for dotted, old in LATER_KEYS.items():
        for path in _spellings(dotted):
            if not at:
                _drop(node, path.split("."), old)
            elif path.startswith(f"{at}."):
                _drop(node, path[len(at) + 1 :].split("."), old)
    return node


def _spellings(dotted: str) -> set[str]:
    """The key as written, and as each node its alias stands for."""
    head, _, rest = dotted.partition(".")
    return {dotted, *(f"{node}.{rest}" for node in ALIASES.get(head, ()))}


def _drop(node: Any, path: list[str], old: Any) -> bool:
    """Delete `path` from `node` if it holds `old`, then each node that left empty; whether it
    deleted anything."""
    if not isinstance(node, dict) or path[0] not in node:
        return False
    if len(path) == 1:
        if node[path[0]] != old:
            return False
        del node[path[0]]
        return True
    child = node[path[0]]
    if not _drop(child, path[1:], old):
        return False
    if child == {}:
        del node[path[0]]
    return True
