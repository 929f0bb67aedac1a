"""A task's `compute_metrics` for the Trainer: the kind turns dev predictions into metric inputs,
the packaged `evaluate` modules score them."""

from __future__ import annotations

from collections.abc import Callable

from datasets import Dataset
from transformers import EvalPrediction

from layerft.kinds import kind_of
from layerft.kinds.base import Record
from layerft.metrics import load_metric, metric_spec
from layerft.task import TaskConfig


def build_compute_metrics(
    task: TaskConfig, features: Dataset, rows: list[Record]
) -> Callable[[EvalPrediction], dict[str, float]]:
    """compute_metrics over the dev `features` (in order) made from the normalised dev `rows`."""
    kind = kind_of(task)
    modules = {name: (load_metric(name), metric_spec(name).reads) for name in task.metrics}

    def compute(prediction: EvalPrediction) -> dict[str, float]:
        inputs = kind.metric_inputs(task, prediction, features, rows)
        results: dict[str, float] = {}
        for module, reads in modules.values():
            results.update(module.compute(**inputs[reads]))
        return {key: float(value) for key, value in results.items()}

    return compute
