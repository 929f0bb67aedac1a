"""Accuracy: the fraction of predicted class ids equal to the reference ids.

Serves the `injection_task` and `target_task` config groups (`metrics: [accuracy]`).
"""

import numpy as np

from layerft.metrics.module import build_metric

_DESCRIPTION = "Accuracy: the fraction of predictions equal to their reference (0.0 on no input)."

_KWARGS_DESCRIPTION = """
Args:
    predictions (list of int): predicted class ids, one per example.
    references (list of int): gold class ids, one per example.
Returns:
    accuracy (float): correct / total, in [0, 1]; 0.0 when there are no examples.
"""


def _compute(predictions: list[int], references: list[int]) -> dict[str, float]:
    """Accuracy over flat integer labels, numpy only."""
    y_pred = np.asarray(predictions, dtype=np.int64)
    y_true = np.asarray(references, dtype=np.int64)
    if y_true.size == 0:
        return {"accuracy": 0.0}
    return {"accuracy": float(np.mean(y_pred == y_true))}


Accuracy = build_metric("accuracy", _DESCRIPTION, _KWARGS_DESCRIPTION, _compute)
