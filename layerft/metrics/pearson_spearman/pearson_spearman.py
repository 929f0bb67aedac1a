"""Pearson and Spearman correlation: GLUE's STS-B metrics.

Serves the `injection_task` and `target_task` config groups (`metrics: [pearson_spearman]`).
"""

import numpy as np

from layerft.metrics.glue import pearson_spearman
from layerft.metrics.module import build_metric

_DESCRIPTION = """
Pearson's r and Spearman's rho between predicted and gold similarity scores: GLUE's official
STS-B metrics (Wang et al., 2019; the GLUE baselines and Hugging Face's glue metric use scipy's
pearsonr and spearmanr, which these equal: Spearman is Pearson's r of the ranks, ties given their
average rank). Both in [-1, 1], higher is better; GLUE reports x100. Deviation forced by strict
JSON: where scipy gives NaN (fewer than 2 examples, a constant side) these are 0.0.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (list of float): predicted scores, one per sentence pair.
    references (list of float): gold scores, same length.
Returns:
    pearson (float), spearman (float): in [-1, 1].
"""


def _compute(predictions: list[float], references: list[float]) -> dict[str, float]:
    """Pearson and Spearman correlation, numpy only."""
    y_pred = np.asarray(predictions, dtype=np.float64)
    y_true = np.asarray(references, dtype=np.float64)
    pearson, spearman = pearson_spearman(y_pred, y_true)
    return {"pearson": pearson, "spearman": spearman}


PearsonSpearman = build_metric("pearson_spearman", _DESCRIPTION, _KWARGS_DESCRIPTION, _compute)
