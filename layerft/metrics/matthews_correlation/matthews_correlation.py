"""Matthews correlation: GLUE's CoLA metric."""

import datasets
import evaluate
import numpy as np

from layerft.metrics.glue import matthews_correlation

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


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class MatthewsCorrelation(evaluate.Metric):
    """Matthews correlation over flat integer labels, numpy only."""

    def _info(self) -> evaluate.MetricInfo:
        """Describe the metric and its input features."""
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"predictions": datasets.Value("int64"), "references": datasets.Value("int64")}
            ),
        )

    def _compute(self, predictions: list[int], references: list[int]) -> dict[str, float]:
        """Return {"matthews_correlation"}."""
        y_pred = np.asarray(predictions, dtype=np.int64)
        y_true = np.asarray(references, dtype=np.int64)
        return {"matthews_correlation": matthews_correlation(y_true, y_pred)}
