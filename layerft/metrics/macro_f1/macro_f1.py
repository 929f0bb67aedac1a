"""Macro F1: unweighted mean of per-class F1, matching sklearn's f1_score(average="macro")."""

import datasets
import evaluate
import numpy as np

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


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class MacroF1(evaluate.Metric):
    """Macro-averaged F1 over flat integer labels, numpy only."""

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
        """Return {"macro_f1": mean per-class F1}."""
        y_pred = np.asarray(predictions, dtype=np.int64)
        y_true = np.asarray(references, dtype=np.int64)
        return {"macro_f1": macro_f1(y_true, y_pred)}
