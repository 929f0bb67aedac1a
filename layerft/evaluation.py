"""Turn a task's metric names into a Trainer `compute_metrics` over the packaged evaluate modules."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType

import numpy as np
from transformers import EvalPrediction

from layerft.errors import LayerftError
from layerft.metrics import load_metric
from layerft.task import TaskConfig, TaskKind

# What each metric reads: flat label ids (either kind) or per-sentence tag strings (tagging only).
FLAT, TAG_SEQUENCES = "flat", "tag_sequences"
METRIC_INPUTS: Mapping[str, str] = MappingProxyType(
    {"accuracy": FLAT, "macro_f1": FLAT, "token_f1": TAG_SEQUENCES}
)
METRIC_KEYS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "accuracy": ("accuracy",),
        "macro_f1": ("macro_f1",),
        "token_f1": ("token_f1", "token_accuracy", "token_macro_f1"),
    }
)


def check_task_metrics(task: TaskConfig, group: str) -> None:
    """Fail before training on a metric the kind cannot feed, or a best_metric no metric returns."""
    for name in task.metrics:
        if name not in METRIC_INPUTS:
            raise LayerftError(
                f"{group}.metrics: unknown metric '{name}'; use {', '.join(METRIC_INPUTS)}"
            )
        if METRIC_INPUTS[name] == TAG_SEQUENCES and task.kind != TaskKind.token_tagging:
            raise LayerftError(f"{group}.metrics: '{name}' needs a token_tagging task")
    keys = [key for name in task.metrics for key in METRIC_KEYS[name]]
    if task.best_metric not in keys:
        raise LayerftError(
            f"{group}.best_metric '{task.best_metric}' is not one of {', '.join(keys)}"
        )


def build_compute_metrics(task: TaskConfig) -> Callable[[EvalPrediction], dict[str, float]]:
    """compute_metrics for the Trainer: argmax the logits, drop ignored positions, run each metric."""
    modules = {name: load_metric(name) for name in task.metrics}

    def compute(prediction: EvalPrediction) -> dict[str, float]:
        logits = (
            prediction.predictions[0]
            if isinstance(prediction.predictions, tuple)
            else prediction.predictions
        )
        predicted = np.asarray(logits).argmax(-1)
        labels = np.asarray(prediction.label_ids)
        keep = labels != -100  # (batch,) or (batch, seq)
        results: dict[str, float] = {}
        for name, module in modules.items():
            if METRIC_INPUTS[name] == FLAT:
                inputs = {
                    "predictions": predicted[keep].tolist(),
                    "references": labels[keep].tolist(),
                }
            else:
                names = np.asarray(task.label_names)
                inputs = {
                    "predictions": [
                        names[p[k]].tolist() for p, k in zip(predicted, keep, strict=True)
                    ],
                    "references": [names[r[k]].tolist() for r, k in zip(labels, keep, strict=True)],
                }
            results.update(module.compute(**inputs))
        return {key: float(value) for key, value in results.items()}

    return compute
