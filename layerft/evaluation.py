"""A task's `compute_metrics` for the Trainer: the kind turns dev predictions into metric inputs,
the packaged `evaluate` modules score them.

Serves the `injection_task` and `target_task` config groups: a task's `metrics`, fed by its `kind`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from datasets import Dataset
from transformers import EvalPrediction

from layerft.errors import LayerftError
from layerft.kinds import kind_of
from layerft.kinds.base import Record
from layerft.metrics import PREDICTED_CLASSES, MetricInput, load_metric, metric_spec
from layerft.task import TaskConfig


class DevScorer:
    """compute_metrics over the dev `features` (in order) made from the normalised dev `rows`;
    `last` keeps the predictions and references of the last call, as its best metric reads them
    (what layerft/predictions.py writes of the best checkpoint), and `sources`, where each row
    was in its split (`records.source_of`)."""

    def __init__(
        self,
        task: TaskConfig,
        features: Dataset,
        rows: list[Record],
        sources: Sequence[dict[str, Any]] = (),
    ) -> None:
        self.task, self.features, self.rows, self.kind = task, features, rows, kind_of(task)
        self.sources = sources
        self.modules = {name: (load_metric(name), metric_spec(name)) for name in task.metrics}
        self.last: dict[str, Any] = {}

    def __call__(self, prediction: EvalPrediction) -> dict[str, float]:
        task = self.task
        inputs = self.kind.metric_inputs(task, prediction, self.features, self.rows)
        results: dict[str, float] = {}
        for name, (module, spec) in self.modules.items():
            returned = module.compute(**inputs[spec.reads])
            check_returned_keys(name, spec.keys, returned)
            results.update(returned)
            if task.best_metric in returned:
                self.last = {"input": spec.reads, **inputs[spec.reads]}
        if MetricInput.class_ids in inputs:  # one class: no more than the majority label learned
            results[PREDICTED_CLASSES] = len(set(inputs[MetricInput.class_ids]["predictions"]))
        if task.best_metric not in results:
            raise LayerftError(
                f"task '{task.name}': best_metric '{task.best_metric}' was not returned by its "
                f"metrics this time (they returned {', '.join(results)})"
            )
        return {key: float(value) for key, value in results.items()}


def build_compute_metrics(
    task: TaskConfig,
    features: Dataset,
    rows: list[Record],
    sources: Sequence[dict[str, Any]] = (),
) -> DevScorer:
    """The Trainer's compute_metrics for `task` over these dev features and rows (DevScorer)."""
    return DevScorer(task, features, rows, sources)


def check_returned_keys(name: str, declared: tuple[str, ...], returned: Mapping[str, Any]) -> None:
    """A metric module returns only keys its registry entry declares (results merge by key, so an
    undeclared one could overwrite another metric's value)."""
    undeclared = sorted(set(returned) - set(declared))
    if undeclared:
        raise LayerftError(
            f"metric '{name}' returned {', '.join(undeclared)}, which its registry entry in "
            f"layerft/metrics/__init__.py does not declare (declared: {', '.join(declared)})"
        )
