"""The settings a config's choices never read (`unread_settings`): another tuning method's, another
scaling's or policy's, stage 1's without stage 1, a pooler no head reads, another task kind's. A
run warns about them when set (`layerft/hydra_job.py`), sweep tables leave them out of a row's settings, and
`layerft/fingerprint.py` hashes some at their defaults: fingerprint scheme 3 is its
AT_DEFAULT_WHEN_UNREAD list and unread_settings as they are, so extending unread_settings changes
the fingerprints of stored scheme-3 records and is a new scheme (see there).

Serves no config group. Like `layerft/fingerprint.py`, it imports no torch at import time.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from typing import Any

# The nodes a run without stage 1 never reads (its injection task is null).
STAGE1_NODES = ("injection_task.", "injection_lr_schedule.", "layer_split.")
TASK_GROUPS = ("injection_task", "target_task")


def unread_settings(resolved: dict[str, Any]) -> list[tuple[str, str]]:
    """The keys of a config (resolved, or a RunConfig as a dict) that its choices never read, each
    with the choice that ignores it: settings of another method, scaling or policy (allowed, so
    that one grid can mix them, but inert here). A key ending in "." stands for every key under it.
    """
    # Here: they import torch (this module does not).
    from layerft.layer_split import InjectedPolicy
    from layerft.lr_schedule import unread_schedule_keys
    from layerft.tuning_mode import SETTINGS_NODES, TuningMethod

    mode, split = resolved["tuning_mode"], resolved["layer_split"]
    method, policy = TuningMethod(mode["method"]), InjectedPolicy(_text(split["stage2"]["policy"]))
    unread = []
    if resolved["injection_task"] is None:
        for prefix in STAGE1_NODES:
            unread.append((prefix, "injection_task=none: no stage 1"))
    elif method == TuningMethod.frozen:  # the injected layers are frozen whatever the policy
        for key in ("layer_split.stage2.policy", "layer_split.stage2.lr_multiplier"):
            unread.append((key, "tuning_mode=frozen trains the head alone"))
    for node, what in SETTINGS_NODES.items():  # each method's entry names the nodes it reads
        if node not in method.settings:
            unread.append((f"tuning_mode.{node}.", f"tuning_mode={mode['name']} adds no {what}"))
    if not method.reads_layers:
        unread.append(("tuning_mode.layers", f"tuning_mode={mode['name']} chooses no layers"))
    for group in ("lr_schedule", "injection_lr_schedule"):
        schedule = resolved[group]
        # "." stands for a node's keys; a key absent from a config kept before it was added: ""
        for key, why in unread_schedule_keys(schedule).items():
            node = "." if isinstance(schedule.get(key), Mapping) else ""
            unread.append((f"{group}.{key}{node}", f"{group}={schedule['name']} {why}"))
    if policy != InjectedPolicy.scale and method != TuningMethod.frozen:
        unread.append(
            ("layer_split.stage2.lr_multiplier", f"layer_split.stage2.policy={policy.value}")
        )
    tasks = (resolved["injection_task"], resolved["target_task"])
    kinds = list(dict.fromkeys(_text(task["kind"]) for task in tasks if task is not None))
    if not reads_pooler(kinds):
        unread.append(("model.pretrained_pooler", f"{' and '.join(kinds)} heads read no pooler"))
    for group, task in zip(TASK_GROUPS, tasks, strict=True):
        if task is not None:
            unread += other_kinds_settings(group, task["kind"])
    return unread


def other_kinds_settings(group: str, kind: Any) -> list[tuple[str, str]]:
    """The nodes of a task's config that other kinds read (`target_task.spans.` under a sentence
    classification task), each with why it is unread; `kind` a TaskKind or its value."""
    from layerft.kinds import KINDS, TaskKind  # here: it imports torch (this module does not)

    kind = _text(kind)
    read = KINDS[TaskKind(kind)].settings
    return [
        (f"{group}.{node}.", f"{group}.kind={kind} reads no {node} settings")
        for node in _kind_settings_nodes()
        if node not in read
    ]


@functools.cache
def _kind_settings_nodes() -> tuple[str, ...]:
    """The task config's nodes of kind settings (`spans`, `parsing`, ...): those any kind reads."""
    from layerft.kinds import KINDS  # here: it imports torch (this module does not)

    return tuple(sorted({node for kind in KINDS.values() for node in kind.settings}))


def kind_settings_keys() -> tuple[str, ...]:
    """Every task's nodes of kind settings as unread keys name them (`target_task.spans.`)."""
    return tuple(f"{group}.{node}." for group in TASK_GROUPS for node in _kind_settings_nodes())


def unread_prefix(key: str, unread: Iterable[str]) -> bool:
    """Whether a dotted `key` is one of the `unread` keys or under one ending in "." (a node),
    or is such a node below a group (`tuning_mode.lora={rank:4}`; not `injection_task=none`, a
    choice of the group whose keys are unread)."""
    return any(
        key == u or (u.endswith(".") and (key.startswith(u) or key == u[:-1] and "." in key))
        for u in unread
    )


def _text(value: Any) -> str:
    """An enum member's value, or the text itself (resolved configs hold members)."""
    return str(getattr(value, "value", value))


def reads_pooler(kinds: list[str]) -> bool:
    """Whether a head of one of these task kinds starts from a pre-trained pooler when given one."""
    from layerft.kinds import KINDS, TaskKind  # here: it imports torch (this module does not)

    return any(KINDS[TaskKind(kind)].start_from_pooler is not None for kind in kinds)


def other_kinds_setting(key: str) -> bool:
    """Whether an unread key is a task's node of another kind's settings (`target_task.spans.`)."""
    return key in kind_settings_keys()
