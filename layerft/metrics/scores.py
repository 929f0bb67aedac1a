"""The arithmetic behind the packaged metric modules, shared by them (they import it by package)."""

from __future__ import annotations

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
