"""GLUE's official task metrics, in numpy: the definitions the GLUE benchmark scores with.

GLUE (Wang et al., 2019, "GLUE: A Multi-Task Benchmark and Analysis Platform for Natural Language
Understanding", Table 1 and section 3) reports Matthews correlation for CoLA, F1 and accuracy for
MRPC and QQP, Pearson and Spearman correlation for STS-B, and accuracy elsewhere; its baseline code
(nyu-mll/GLUE-baselines) and Hugging Face's `glue` metric compute them with sklearn's
matthews_corrcoef and f1_score (binary: the positive class, id 1) and scipy's pearsonr and
spearmanr. The metric modules under layerft/metrics/ wrap these functions.

Serves no config group: a task's `metrics` name the metric modules that wrap these.
"""

from __future__ import annotations

import math

import numpy as np

from layerft.metrics.scores import pearson_r


def matthews_correlation(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Matthews correlation over any number of classes, as sklearn's matthews_corrcoef.

    From the confusion matrix C (Gorodkin's multi-class form, which is the phi coefficient for two
    classes): (c * s - t . p) / sqrt((s^2 - p . p) (s^2 - t . t)), with c the correct count, s the
    total, t and p the per-class true and predicted counts. 0.0 where it is undefined (one class on
    either side, or no input), as sklearn returns.
    """
    labels, inverse = np.unique(np.concatenate([y_true, y_pred]), return_inverse=True)
    if labels.size == 0:
        return 0.0
    true_idx, pred_idx = inverse[: y_true.size], inverse[y_true.size :]
    t = np.bincount(true_idx, minlength=labels.size).astype(np.float64)
    p = np.bincount(pred_idx, minlength=labels.size).astype(np.float64)
    c = float(np.sum(true_idx == pred_idx))
    s = float(y_true.size)
    cov_pred = s * s - np.dot(p, p)
    cov_true = s * s - np.dot(t, t)
    if cov_pred * cov_true == 0:
        return 0.0
    return float((c * s - np.dot(t, p)) / np.sqrt(cov_pred * cov_true))


def binary_f1(y_true: np.ndarray, y_pred: np.ndarray, positive: int = 1) -> float:
    """F1 of the positive class, as sklearn's f1_score(average="binary"); 0.0 with no positive
    on either side (sklearn's zero_division default)."""
    tp = np.sum((y_pred == positive) & (y_true == positive))
    denom = np.sum(y_pred == positive) + np.sum(y_true == positive)
    return float(2 * tp / denom) if denom else 0.0


def _average_ranks(x: np.ndarray) -> np.ndarray:
    """1-based ranks, ties sharing their mean rank (scipy.stats.rankdata's 'average')."""
    order = np.argsort(x, kind="mergesort")
    ranks = np.empty(x.size, dtype=np.float64)
    ranks[order] = np.arange(1, x.size + 1)
    values, inverse = np.unique(x, return_inverse=True)
    sums = np.bincount(inverse, weights=ranks, minlength=values.size)
    counts = np.bincount(inverse, minlength=values.size)
    return (sums / counts)[inverse]


def pearson_spearman(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Pearson's r and Spearman's rho (Pearson's r of the average ranks), as scipy's pearsonr and
    spearmanr; each 0.0 where scipy gives NaN for want of data (fewer than 2 examples, a constant
    side), and NaN, as scipy's, for a NaN score: ranking would have placed it as a number."""
    if x.size < 2:
        return 0.0, 0.0
    if np.isnan(x).any() or np.isnan(y).any():
        return math.nan, math.nan
    return pearson_r(x, y), pearson_r(_average_ranks(x), _average_ranks(y))
