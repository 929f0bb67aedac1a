"""KLUE-RE: micro F1 without no_relation, and the mean per-class PR-curve area, as KLUE scores them.

Serves the `injection_task` and `target_task` config groups (`metrics: [klue_re]`).
"""

import numpy as np

from layerft.metrics.klue import re_auprc, re_micro_f1
from layerft.metrics.module import build_metric

_DESCRIPTION = """
KLUE-RE's official scores, as KLUE-baseline's klue_baseline/metrics/functional.py computes them
(klue_re_micro_f1, klue_re_auprc):
- re_micro_f1: sklearn's f1_score(average="micro", labels=every label but no_relation).
  True positives are correct relation predictions; a relation predicted for a no_relation pair
  is a false positive and no_relation predicted for a relation a false negative; correct
  no_relation predictions count for nothing.
- auprc: for every class c (no_relation included), one-vs-rest: sklearn's
  precision_recall_curve(y == c, probabilities[:, c]), then auc(recall, precision) - the
  trapezoidal area under the curve, not average_precision_score's step sum - and the unweighted
  mean over the classes. KLUE hard-codes 30 classes; here the class count is the width of
  `probabilities`.
Both are higher-is-better. KLUE reports x100; these are in [0, 1].
Deviations: a class with no gold example gets area 0.5 here, as sklearn >= 1.1 gives (recall
set to 1); KLUE's pinned sklearn 0.24.1 gave NaN, which strict JSON cannot hold. With no
relation on either side re_micro_f1 is 0.0 (sklearn's zero_division default); on no input both
are 0.0.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (list of int): predicted label ids, one per entity pair.
    references (list of int): gold label ids.
    probabilities (list of list of float): per-class probabilities (softmax), one row per pair;
        needed for auprc.
    no_relation_id (int): the id of no_relation, default 0 (as KLUE-RE's label list).
Returns:
    re_micro_f1, auprc (float): in [0, 1].
"""


def _compute(
    predictions: list[int],
    references: list[int],
    probabilities: list[list[float]],
    no_relation_id: int = 0,
) -> dict[str, float]:
    """KLUE-RE micro F1 (no_relation excluded) and AUPRC, numpy only."""
    y_pred = np.asarray(predictions, dtype=np.int64)
    y_true = np.asarray(references, dtype=np.int64)
    probs = np.asarray(probabilities, dtype=np.float64)
    if y_true.size == 0:
        return {"re_micro_f1": 0.0, "auprc": 0.0}
    if probs.ndim != 2 or probs.shape[0] != y_true.size:
        raise ValueError(
            f"klue_re: probabilities must be one row per example ({y_true.size} rows), "
            f"got shape {probs.shape}"
        )
    if y_true.min() < 0 or y_true.max() >= probs.shape[1]:
        raise ValueError(f"klue_re: reference ids must lie in [0, {probs.shape[1]})")
    return {
        "re_micro_f1": re_micro_f1(y_pred, y_true, no_relation_id),
        "auprc": re_auprc(probs, y_true),
    }


KlueRe = build_metric("klue_re", _DESCRIPTION, _KWARGS_DESCRIPTION, _compute)
