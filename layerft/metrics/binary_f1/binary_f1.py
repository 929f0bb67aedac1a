"""F1 of the positive class: GLUE's MRPC and QQP metric (beside accuracy).

Serves the `injection_task` and `target_task` config groups (`metrics: [binary_f1]`).
"""

import numpy as np

from layerft.metrics.glue import binary_f1
from layerft.metrics.module import build_metric

_DESCRIPTION = """
F1 of the positive class (id 1: MRPC's "equivalent", QQP's "duplicate"), 2 TP / (2 TP + FP + FN):
GLUE's official MRPC and QQP metric together with accuracy (Wang et al., 2019; the GLUE baselines
and Hugging Face's glue metric use sklearn's f1_score with its default average="binary", which this
equals). In [0, 1]; 0.0 with no positive on either side (sklearn's zero_division default). GLUE
reports x100. The key is binary_f1, not f1: klue_sts already returns an f1.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (list of int): predicted class ids (0 or 1), one per example.
    references (list of int): gold class ids (0 or 1), one per example.
Returns:
    binary_f1 (float): in [0, 1].
"""


def _compute(predictions: list[int], references: list[int]) -> dict[str, float]:
    """Positive-class F1 over flat integer labels, numpy only."""
    y_pred = np.asarray(predictions, dtype=np.int64)
    y_true = np.asarray(references, dtype=np.int64)
    return {"binary_f1": binary_f1(y_true, y_pred)}


BinaryF1 = build_metric("binary_f1", _DESCRIPTION, _KWARGS_DESCRIPTION, _compute)
