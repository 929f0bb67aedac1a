"""Matthews correlation: GLUE's CoLA metric.

Serves the `injection_task` and `target_task` config groups (`metrics: [matthews_correlation]`).
"""

import numpy as np

from layerft.metrics.glue import matthews_correlation
from layerft.metrics.module import build_metric

_DESCRIPTION = """
Matthews correlation coefficient between predicted and gold class ids: GLUE's official CoLA
metric (Wang et al., 2019; the GLUE baselines and Hugging Face's glue metric use sklearn's
matthews_corrcoef, which this equals, the multi-class form included). In [-1, 1]; 0.0 where it is
undefined (one class on either side, or no input), as sklearn returns. GLUE reports x100.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (list of int): predicted class ids, one per example.
    references (list of int): gold class ids, one per example.
Returns:
    matthews_correlation (float): in [-1, 1].
"""


def _compute(predictions: list[int], references: list[int]) -> dict[str, float]:
    """Matthews correlation over flat integer labels, numpy only."""
    y_pred = np.asarray(predictions, dtype=np.int64)
    y_true = np.asarray(references, dtype=np.int64)
    return {"matthews_correlation": matthews_correlation(y_true, y_pred)}


MatthewsCorrelation = build_metric(
    "matthews_correlation", _DESCRIPTION, _KWARGS_DESCRIPTION, _compute
)
