"""How two resolved configs differ in what their fingerprints hash (`config_differences`): what a
refused run folder says when it holds another config's result (`layerft/run_folder.py`).

Serves no config group; `layerft/fingerprint.py` decides what is hashed (`result_config`).
"""

from __future__ import annotations

import json
from enum import Enum
from typing import Any

from layerft.fingerprint import STAGE1_ONLY_GROUPS, result_config


def config_differences(stored: dict[str, Any], resolved: dict[str, Any], limit: int = 4) -> str:
    """`key: stored value -> this value` for the first `limit` dotted keys where two resolved
    configs differ in what their fingerprints hash ("absent" for a key only one has)."""
    old, new = result_config(stored), result_config(resolved)
    for stage in ("injection_task", "target_task"):  # a stage switched on or off: one entry
        if (old[stage] is None) != (new[stage] is None):
            old[stage], new[stage] = (_stage_name(c[stage]) for c in (old, new))
            for group in STAGE1_ONLY_GROUPS if stage == "injection_task" else ():
                old.pop(group, None), new.pop(group, None)
    old, new = _dotted(old), _dotted(new)
    keys = sorted(k for k in old.keys() | new.keys() if old.get(k, _ABSENT) != new.get(k, _ABSENT))
    shown = [
        f"{k}: {_spelled(old.get(k, _ABSENT))} -> {_spelled(new.get(k, _ABSENT))}"
        for k in keys[:limit]
    ]
    return "; ".join(shown) + (f"; and {len(keys) - limit} more" if len(keys) > limit else "")


_ABSENT = "absent"


def _stage_name(task: dict[str, Any] | None) -> str:
    """A stage's task by its option's name; none as the command line chooses it
    (`injection_task=none`), not the config's null."""
    return "none" if task is None else str(task["name"])


def _spelled(value: Any) -> str:
    """A config value as the command line writes it (null, true)."""
    return json.dumps(value) if value is None or isinstance(value, bool) else str(value)


def _dotted(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """A nested config as `a.b.c` -> leaf value (a list is a leaf; an enum, its name)."""
    flat: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, dict) and value:
            flat |= _dotted(value, f"{prefix}{key}.")
        else:  # an enum as its YAML spells it: a kept config reads back as plain names
            flat[f"{prefix}{key}"] = value.name if isinstance(value, Enum) else value
    return flat
