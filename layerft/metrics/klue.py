"""KLUE's official task metrics, as klue_baseline/metrics computes them, in numpy and the stdlib.

Each function mirrors one function of KLUE-baseline's klue_baseline/metrics/functional.py (or
utils.py), quirks included, but returns a fraction in [0, 1] where KLUE multiplies by 100. The
metric modules under layerft/metrics/klue_*/ wrap these and document the definitions.

Serves no config group: a task's `metrics` name the metric modules that wrap these.
"""

from __future__ import annotations

import re
import string
from collections.abc import Sequence
from difflib import SequenceMatcher

import numpy as np

from layerft.metrics.scores import macro_f1

# KLUE-NER's label list (klue_baseline/data/klue_ner.py, KlueNERProcessor.get_labels): KLUE's
# character macro F1 averages over all of these, "O" and labels absent from the data included.
KLUE_NER_LABELS: tuple[str, ...] = (
    "B-PS", "I-PS", "B-LC", "I-LC", "B-OG", "I-OG",
    "B-DT", "I-DT", "B-TI", "I-TI", "B-QT", "I-QT", "O",
)  # fmt: skip

# KLUE-DP relation ids at or above 15 (VP_CMP onwards in get_dep_labels()) are the rare types
# that KLUE's LAS merges into one "others" class.
KLUE_DP_OTHERS_RELATION_ID = 15
# KLUE's sentinels (negative so they never collide with a relation id): the merged rare types,
# and the relation a prediction gets when its head is wrong.
_DP_OTHERS = -3
_DP_WRONG_HEAD = -2
# KLUE pads head and relation ids with -1; those positions are not eojeols and are dropped.
_DP_PADDING = -1

# KLUE-MRC's normaliser pattern, its misplaced "]" kept: the class ends after "〉", so "()‘’" is a
# literal suffix and the pattern only fires on a quote or bracket followed by exactly "()‘’".
_MRC_PATTERN = re.compile(r"""['"《》<>〈〉]\(\)‘’""")
_ASCII_PUNCTUATION = frozenset(string.punctuation)


def _f1_from_counts(
    tp: np.ndarray, n_true: np.ndarray, n_pred: np.ndarray, zero_division: float
) -> np.ndarray:
    """Per-class F1 = 2tp / (n_true + n_pred), `zero_division` where a class is never seen."""
    denom = n_true + n_pred
    # 2PR / (P + R) simplifies to this whenever tp > 0, and both are 0 when tp = 0 < denom.
    out = np.full(denom.shape, zero_division, dtype=np.float64)
    return np.divide(2 * tp, denom, out=out, where=denom > 0)


# --- KLUE-STS: klue_sts_f1 (klue_sts_pearsonr is scores.pearson_r) --------------------------------


def sts_binary_f1(predictions: np.ndarray, references: np.ndarray, threshold: float) -> float:
    """F1 of the positive class after thresholding both sides at `threshold` (>=, as KLUE)."""
    pred_pos = predictions >= threshold
    true_pos = references >= threshold
    tp = np.sum(pred_pos & true_pos)
    denom = np.sum(pred_pos) + np.sum(true_pos)
    # No positive on either side: sklearn's binary f1_score warns and returns 0.
    return float(2 * tp / denom) if denom else 0.0


# --- KLUE-DP: klue_dp_{uas,las}_{macro,micro}_f1 ------------------------------------------------


def dp_attachment_scores(
    pred_heads: np.ndarray,
    pred_relations: np.ndarray,
    gold_heads: np.ndarray,
    gold_relations: np.ndarray,
    average: str = "macro",
    others_relation_id: int | None = KLUE_DP_OTHERS_RELATION_ID,
) -> tuple[float, float]:
    """(UAS, LAS) as KLUE: F1 over head ids, and over relations with a wrong head's relation voided."""
    if average not in ("macro", "micro"):
        raise ValueError(f"klue_dp: average must be 'macro' or 'micro', got {average!r}")
    keep = gold_heads != _DP_PADDING
    pred_heads, gold_heads = pred_heads[keep], gold_heads[keep]
    pred_relations, gold_relations = pred_relations[keep], gold_relations[keep]
    if gold_heads.size == 0:
        return 0.0, 0.0
    if np.any(pred_relations < 0) or np.any(gold_relations < 0):
        raise ValueError("klue_dp: relation ids must be >= 0 outside padding (gold head -1)")
    if others_relation_id is not None:
        pred_relations = np.where(pred_relations >= others_relation_id, _DP_OTHERS, pred_relations)
        gold_relations = np.where(gold_relations >= others_relation_id, _DP_OTHERS, gold_relations)
    # A relation only counts on the right head: KLUE overwrites it with a class no gold has.
    pred_relations = np.where(pred_heads == gold_heads, pred_relations, _DP_WRONG_HEAD)
    if average == "micro":
        # Micro F1 over all classes of a single-label task is plain accuracy.
        uas = float(np.mean(pred_heads == gold_heads))
        return uas, float(np.mean(pred_relations == gold_relations))
    # sklearn's default labels: the union of gold and predicted values. Head positions are the
    # classes of UAS, and the wrong-head class joins LAS's average with F1 0.
    return macro_f1(gold_heads, pred_heads), macro_f1(gold_relations, pred_relations)


# --- KLUE-NER: klue_ner_entity_macro_f1, klue_ner_char_macro_f1 ---------------------------------


def _split_tag(tag: str) -> tuple[str, str]:
    """(prefix, entity type) of an IOB2 tag, read as seqeval does: "B-PS" -> ("B", "PS")."""
    if not tag or tag[0] not in "BIO":
        raise ValueError(f"klue_ner: invalid IOB2 tag {tag!r}; allowed prefixes are B, I, O")
    return tag[0], tag[1:].strip("-") or "_"


def iob2_entities(tags: Sequence[str]) -> list[tuple[str, int, int]]:
    """(type, start, end) spans of one sentence as seqeval's strict IOB2 mode reads them."""
    entities = []
    start, kind = -1, ""
    # A trailing "O" closes an entity that runs to the end of the sentence.
    for i, tag in enumerate([*tags, "O"]):
        prefix, name = _split_tag(tag)
        if start >= 0 and not (prefix == "I" and name == kind):
            entities.append((kind, start, i))
            start = -1
        # Strict mode: only B- opens an entity; a stray I- (after O or another type) is dropped.
        if prefix == "B":
            start, kind = i, name
    return entities


def ner_entity_macro_f1(
    predictions: Sequence[Sequence[str]], references: Sequence[Sequence[str]]
) -> float:
    """Entity-level F1 per type, averaged over the types seen on either side (seqeval macro)."""
    true = {(s, *e) for s, tags in enumerate(references) for e in iob2_entities(tags)}
    pred = {(s, *e) for s, tags in enumerate(predictions) for e in iob2_entities(tags)}
    types = sorted({e[1] for e in true | pred})
    if not types:
        return 0.0
    tp = np.array([sum(e[1] == t for e in true & pred) for t in types])
    n_true = np.array([sum(e[1] == t for e in true) for t in types])
    n_pred = np.array([sum(e[1] == t for e in pred) for t in types])
    return float(np.mean(_f1_from_counts(tp, n_true, n_pred, zero_division=0.0)))


def ner_char_macro_f1(y_pred: np.ndarray, y_true: np.ndarray, labels: Sequence[str]) -> float:
    """Per-character F1 per label, averaged over all `labels`; a label never seen scores 1."""
    unknown = (set(y_pred.tolist()) | set(y_true.tolist())) - set(labels)
    if unknown:
        raise ValueError(f"klue_ner: tags {sorted(unknown)} are not in the label list")
    tp = np.array([np.sum((y_true == lab) & (y_pred == lab)) for lab in labels])
    n_true = np.array([np.sum(y_true == lab) for lab in labels])
    n_pred = np.array([np.sum(y_pred == lab) for lab in labels])
    # KLUE passes zero_division=True: a label absent from both sides counts as a perfect 1.
    return float(np.mean(_f1_from_counts(tp, n_true, n_pred, zero_division=1.0)))


# --- KLUE-RE: klue_re_micro_f1, klue_re_auprc ---------------------------------------------------


def re_micro_f1(y_pred: np.ndarray, y_true: np.ndarray, no_relation_id: int) -> float:
    """Micro F1 over every label but no_relation (sklearn's f1_score with that label left out)."""
    pred_in = y_pred != no_relation_id
    true_in = y_true != no_relation_id
    tp = np.sum((y_pred == y_true) & true_in)
    denom = np.sum(pred_in) + np.sum(true_in)
    # Predicting a relation for a no_relation pair is a false positive, and predicting
    # no_relation for a relation a false negative: both sit in this denominator.
    return float(2 * tp / denom) if denom else 0.0


def pr_curve_area(y_true: np.ndarray, y_score: np.ndarray) -> float:
    """Trapezoidal area under sklearn's precision_recall_curve (its auc(recall, precision))."""
    order = np.argsort(y_score, kind="mergesort")[::-1]
    score, hit = y_score[order], y_true[order].astype(np.int64)
    # One point per distinct score: tied scores share one threshold, as in sklearn.
    last = np.r_[np.flatnonzero(np.diff(score)), score.size - 1]
    tps = np.cumsum(hit)[last]
    fps = last + 1 - tps
    precision = tps / (tps + fps)
    # sklearn >= 1.1 sets recall to 1 when the class has no positive (KLUE's 0.24.1 gave NaN).
    recall = tps / tps[-1] if tps[-1] else np.ones(tps.size)
    # Lowest threshold first, closed at (recall 0, precision 1): recall falls along the curve.
    precision = np.r_[precision[::-1], 1.0]
    recall = np.r_[recall[::-1], 0.0]
    return float(np.sum((recall[:-1] - recall[1:]) * (precision[:-1] + precision[1:]) / 2))


def re_auprc(probabilities: np.ndarray, y_true: np.ndarray) -> float:
    """Mean over every class (no_relation included) of its one-vs-rest PR-curve area."""
    n_classes = probabilities.shape[1]
    areas = [pr_curve_area(y_true == c, probabilities[:, c]) for c in range(n_classes)]
    return float(np.mean(areas))


# --- KLUE-MRC: klue_mrc_em, klue_mrc_rouge_w ----------------------------------------------------


def normalize_mrc_answer(text: str) -> str:
    """KLUE's normalize_answer_for_klue_mrc: lower-case, drop ASCII punctuation, squeeze spaces."""
    text = _MRC_PATTERN.sub(" ", text.lower())
    # Only ASCII punctuation goes: 《》, 〈〉 and curly quotes stay part of the answer.
    text = "".join(c for c in text if c not in _ASCII_PUNCTUATION)
    return " ".join(text.split())


def mrc_rouge_w(prediction: str, gold: str) -> float:
    """KLUE's "ROUGE-W": F1 of the longest common substring's length, in characters."""
    if gold == "":
        return float(prediction == gold)
    # difflib as KLUE calls it (autojunk on), so long answers match KLUE's heuristic exactly.
    matcher = SequenceMatcher(None, prediction, gold)
    common = matcher.find_longest_match(0, len(prediction), 0, len(gold)).size
    if common == 0:
        return 0.0
    precision = common / len(prediction)
    recall = common / len(gold)
    return 2 * precision * recall / (precision + recall)


def mrc_scores(
    predictions: Sequence[str], references: Sequence[Sequence[str]]
) -> tuple[float, float]:
    """Mean over questions of the best EM and ROUGE-W against any gold answer."""
    if not predictions:
        return 0.0, 0.0
    exact, rouge = [], []
    for prediction, golds in zip(predictions, references, strict=True):
        pred = normalize_mrc_answer(prediction)
        # An unanswerable question has no gold answer: only an empty prediction is right.
        gold_texts = [normalize_mrc_answer(g) for g in golds] or [""]
        exact.append(max(float(pred == g) for g in gold_texts))
        rouge.append(max(mrc_rouge_w(pred, g) for g in gold_texts))
    return float(np.mean(exact)), float(np.mean(rouge))
