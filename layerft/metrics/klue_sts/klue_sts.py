"""KLUE-STS: Pearson's r and binary F1 (both sides thresholded at 3.0), as KLUE scores them.

Serves the `injection_task` and `target_task` config groups (`metrics: [klue_sts]`).
"""

import numpy as np

from layerft.metrics.klue import sts_binary_f1
from layerft.metrics.module import build_metric
from layerft.metrics.scores import pearson_r

_DESCRIPTION = """
KLUE-STS's two official scores, as KLUE-baseline's klue_baseline/metrics/functional.py computes
them (klue_sts_pearsonr, klue_sts_f1), on real-valued similarity scores in [0, 5]:
- pearsonr: Pearson's r between predicted and gold scores (KLUE: scipy.stats.pearsonr).
- f1: binary F1 of the "similar" class after thresholding both predictions and gold scores with
  score >= 3.0 -> 1, else 0 (KLUE: np.where(x >= 3, 1, 0), then sklearn's
  f1_score(average="binary")). A score of exactly 3.0 is positive on both sides.
Both are higher-is-better. KLUE reports x100; these are fractions (pearsonr in [-1, 1], f1 in
[0, 1]). Deviations, forced by strict JSON: where r is undefined (fewer than 2 examples, or a
constant side) KLUE gets NaN or an error, here pearsonr is 0.0; with no positive on either side
f1 is 0.0, as sklearn's zero_division default gives.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (list of float): predicted similarity scores, one per sentence pair.
    references (list of float): gold real-valued scores (KLUE's "real-label"), same length.
    threshold (float): the positive cut-off for f1 on both sides, default 3.0 (>=).
Returns:
    pearsonr (float): in [-1, 1]; f1 (float): in [0, 1]. Both 0.0 on no input.
"""


def _compute(
    predictions: list[float], references: list[float], threshold: float = 3.0
) -> dict[str, float]:
    """KLUE-STS Pearson's r and thresholded F1, numpy only."""
    y_pred = np.asarray(predictions, dtype=np.float64)
    y_true = np.asarray(references, dtype=np.float64)
    return {
        "pearsonr": pearson_r(y_pred, y_true),
        "f1": sts_binary_f1(y_pred, y_true, threshold),
    }


KlueSts = build_metric("klue_sts", _DESCRIPTION, _KWARGS_DESCRIPTION, _compute)
