"""Accuracy: the fraction of predicted class ids equal to the reference ids."""

import datasets
import evaluate
import numpy as np

_DESCRIPTION = "Accuracy: the fraction of predictions equal to their reference (0.0 on no input)."

_KWARGS_DESCRIPTION = """
Args:
    predictions (list of int): predicted class ids, one per example.
    references (list of int): gold class ids, one per example.
Returns:
    accuracy (float): correct / total, in [0, 1]; 0.0 when there are no examples.
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class Accuracy(evaluate.Metric):
    """Accuracy over flat integer labels, numpy only."""

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
        """Return {"accuracy": correct / total}."""
        y_pred = np.asarray(predictions, dtype=np.int64)
        y_true = np.asarray(references, dtype=np.int64)
        if y_true.size == 0:
            return {"accuracy": 0.0}
        return {"accuracy": float(np.mean(y_pred == y_true))}
