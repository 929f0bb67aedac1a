"""The arithmetic behind the packaged metric modules and the checks that align their inputs, shared
by them (they import it by package) and by the official definitions in klue.py, glue.py and
conll.py.

Serves no config group: the metric modules and klue.py, glue.py and conll.py import it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def macro_f1(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Mean per-class F1 over the union of labels in y_true and y_pred; 0.0 on empty input.

    sklearn's f1_score(average="macro") with its default zero_division, the metric KLUE reports
    for YNAT.
    """
    labels, inverse = np.unique(np.concatenate([y_true, y_pred]), return_inverse=True)
    if labels.size == 0:
        return 0.0
    true_idx, pred_idx = inverse[: y_true.size], inverse[y_true.size :]
    n_true = np.bincount(true_idx, minlength=labels.size)
    n_pred = np.bincount(pred_idx, minlength=labels.size)
    tp = np.bincount(true_idx[true_idx == pred_idx], minlength=labels.size)
    # F1 = 2tp / (2tp + fp + fn) = 2tp / (n_true + n_pred); the denominator is > 0 for every
    # label in the union, so zero_division never triggers here.
    return float(np.mean(2 * tp / (n_true + n_pred)))


def pearson_r(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson's r as scipy.stats.pearsonr; 0.0 (scipy: NaN or an error) when it is undefined."""
    if x.size < 2:
        return 0.0
    dx = x - x.mean()
    dy = y - y.mean()
    norm = np.linalg.norm(dx) * np.linalg.norm(dy)
    # A constant side has no linear association to measure; NaN would break metrics.json.
    if norm == 0:
        return 0.0
    # Clipped as scipy does: rounding can push |r| a hair past 1.
    return float(np.clip(np.dot(dx, dy) / norm, -1.0, 1.0))


def flatten_aligned(
    metric: str, what: str, predictions: Sequence[Sequence], references: Sequence[Sequence]
) -> tuple[list, list]:
    """Concatenate aligned per-sentence lists, failing on a count or length mismatch."""
    if len(predictions) != len(references):
        raise ValueError(
            f"{metric}: {len(predictions)} predicted sentences but {len(references)} references"
        )
    flat_pred: list = []
    flat_true: list = []
    for i, (pred, true) in enumerate(zip(predictions, references, strict=True)):
        if len(pred) != len(true):
            raise ValueError(
                f"{metric}: sentence {i} has {len(pred)} predicted {what} but {len(true)} "
                f"reference {what}; align predictions to the reference units first"
            )
        flat_pred.extend(pred)
        flat_true.extend(true)
    return flat_pred, flat_true


def flatten_arcs(
    metric: str,
    predictions: Sequence[Sequence[int]],
    references: Sequence[Sequence[int]],
    predicted_relations: Sequence[Sequence[int]],
    reference_relations: Sequence[Sequence[int]],
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Predicted heads, predicted relations, gold heads, gold relations: each flat, int64; fails
    unless each prediction aligns with its gold side and every gold head has one relation."""
    pred_heads, gold_heads = flatten_aligned(metric, "heads", predictions, references)
    pred_rels, gold_rels = flatten_aligned(
        metric, "relations", predicted_relations, reference_relations
    )
    # Heads and relations are each aligned pred-to-gold; tie the two gold sides together.
    if [len(r) for r in reference_relations] != [len(h) for h in references]:
        raise ValueError(f"{metric}: reference_relations must hold one relation per gold head")
    return tuple(  # type: ignore[return-value]
        np.asarray(values, dtype=np.int64)
        for values in (pred_heads, pred_rels, gold_heads, gold_rels)
    )
