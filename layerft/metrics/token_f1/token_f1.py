"""Token-level F1, accuracy and macro F1 for sequence tagging over aligned tag strings.

Serves the `injection_task` and `target_task` config groups (`metrics: [token_f1]`).
"""

import numpy as np

from layerft.metrics.module import build_metric
from layerft.metrics.scores import macro_f1

_DESCRIPTION = """
Token-level scores for tagging (NER, POS, ...), computed on aligned per-sentence tag sequences:
- token_f1: micro F1 over tokens whose tag is not the outside tag. Precision = correct
  non-outside predictions / non-outside predictions; recall = correct non-outside predictions /
  non-outside references. With outside_tag=None (or a tagset without it) this equals accuracy.
- token_accuracy: correct tokens / all tokens.
- token_macro_f1: unweighted mean of per-tag F1 over every tag (the outside tag included) present
  in the references or predictions, as sklearn's f1_score(average="macro").
These are token scores, not entity (span) scores such as seqeval's.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (list of list of str): predicted tags, one list per sentence.
    references (list of list of str): gold tags, one list per sentence, same lengths.
    outside_tag (str or None): the tag that marks "no entity"; default "O".
Returns:
    token_f1, token_accuracy, token_macro_f1 (float): each in [0, 1]; 0.0 on no tokens.
"""


def _flatten(predictions: list[list[str]], references: list[list[str]]) -> tuple[list, list]:
    """Concatenate aligned sentences into flat tag lists, failing on a length mismatch."""
    if len(predictions) != len(references):
        raise ValueError(
            f"token_f1: {len(predictions)} predicted sentences but {len(references)} references"
        )
    flat_pred: list[str] = []
    flat_true: list[str] = []
    for i, (pred, true) in enumerate(zip(predictions, references, strict=True)):
        if len(pred) != len(true):
            raise ValueError(
                f"token_f1: sentence {i} has {len(pred)} predicted tags but {len(true)} reference "
                "tags; align predictions to the reference tokens first"
            )
        flat_pred.extend(pred)
        flat_true.extend(true)
    return flat_pred, flat_true


def _compute(
    predictions: list[list[str]],
    references: list[list[str]],
    outside_tag: str | None = "O",
) -> dict[str, float]:
    """Token-level tagging scores over aligned tag strings, numpy only."""
    flat_pred, flat_true = _flatten(predictions, references)
    y_pred = np.asarray(flat_pred, dtype=object)
    y_true = np.asarray(flat_true, dtype=object)
    if y_true.size == 0:
        return {"token_f1": 0.0, "token_accuracy": 0.0, "token_macro_f1": 0.0}
    correct = y_pred == y_true
    pred_in = y_pred != outside_tag if outside_tag is not None else np.ones_like(correct)
    true_in = y_true != outside_tag if outside_tag is not None else np.ones_like(correct)
    n_correct_in = int(np.sum(correct & pred_in))
    n_in = int(np.sum(pred_in)) + int(np.sum(true_in))
    # 2PR / (P + R) with P = c / n_pred, R = c / n_true simplifies to 2c / (n_pred + n_true);
    # no non-outside tags on either side means nothing to find: 0.0, as zero_division=0.
    token_f1 = 2 * n_correct_in / n_in if n_in else 0.0
    return {
        "token_f1": float(token_f1),
        "token_accuracy": float(np.mean(correct)),
        "token_macro_f1": macro_f1(y_true, y_pred),
    }


TokenF1 = build_metric("token_f1", _DESCRIPTION, _KWARGS_DESCRIPTION, _compute)
