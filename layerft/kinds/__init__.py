"""The task-kind registry: `TaskKind` -> the module-level `KIND` of `layerft/kinds/<kind>.py`.

Adding a kind is one module defining `KIND = Kind(...)`, its `TaskKind` member, its import and
registry line here (README.md, "A new kind", lists the rest); everything else in layerft looks the
kind up once through `kind_of`.

Serves the `injection_task` and `target_task` config groups: a task's `kind` names its entry here.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING

from layerft.errors import LayerftError
from layerft.kinds import (
    biencoder_regression,
    dependency_parsing,
    relation_classification,
    sequence_classification,
    sequence_regression,
    span_extraction,
    token_tagging,
)
from layerft.kinds.base import Kind, TaskKind

if TYPE_CHECKING:
    from layerft.task import TaskConfig

__all__ = ["KINDS", "Kind", "TaskKind", "kind_of"]


def _registry(*kinds: Kind) -> Mapping[TaskKind, Kind]:
    """Every TaskKind exactly once."""
    registry: dict[TaskKind, Kind] = {}
    for kind in kinds:
        if kind.name in registry:
            raise LayerftError(f"task kind '{kind.name.value}' is registered twice")
        registry[kind.name] = kind
    missing = [k.value for k in TaskKind if k not in registry]
    if missing:
        raise LayerftError(f"task kinds without a module: {', '.join(missing)}")
    return MappingProxyType(registry)


KINDS: Mapping[TaskKind, Kind] = _registry(
    sequence_classification.KIND,
    sequence_regression.KIND,
    biencoder_regression.KIND,
    relation_classification.KIND,
    token_tagging.KIND,
    span_extraction.KIND,
    dependency_parsing.KIND,
)


def kind_of(task: TaskConfig) -> Kind:
    """The kind module of `task`."""
    return KINDS[task.kind]
