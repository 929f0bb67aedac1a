"""Macro F1: unweighted mean of per-class F1, matching sklearn's f1_score(average="macro").

Serves the `injection_task` and `target_task` config groups (`metrics: [macro_f1]`).
"""

import numpy as np

from layerft.metrics.module import build_metric
from layerft.metrics.scores import macro_f1

_DESCRIPTION = """
Macro F1: the unweighted mean of per-class F1 over every class present in the references or the
predictions; a class with no true positives scores 0 (sklearn's zero_division default). This is
sklearn's f1_score(average="macro"), the metric KLUE reports for YNAT.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (list of int): predicted class ids, one per example.
    references (list of int): gold class ids, one per example.
Returns:
    macro_f1 (float): in [0, 1]; 0.0 when there are no examples.
"""


def _compute(predictions: list[int], references: list[int]) -> dict[str, float]:
    """Macro-averaged F1 over flat integer labels, numpy only."""
    y_pred = np.asarray(predictions, dtype=np.int64)
    y_true = np.asarray(references, dtype=np.int64)
    return {"macro_f1": macro_f1(y_true, y_pred)}


MacroF1 = build_metric("macro_f1", _DESCRIPTION, _KWARGS_DESCRIPTION, _compute)
