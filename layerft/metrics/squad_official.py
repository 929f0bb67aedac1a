"""SQuAD's official scores (evaluate-v1.1.py, evaluate-v2.0.py), as fractions in [0, 1].

Each function follows the official scripts line for line in what it counts, quirks included
(they differ between versions: see `f1_v1` and `f1_v2`); the scripts print x100, these return
fractions like layerft's other metrics. The modules under layerft/metrics/squad*/ wrap them.
Sources: evaluate-v2.0.py of rajpurkar/SQuAD-explorer; evaluate-v1.1.py as vendored in
huggingface/evaluate (metrics/squad/compute_score.py).

Serves no config group: a task's `metrics` name the metric modules that wrap these.
"""

from __future__ import annotations

import re
import string
import sys
from collections import Counter
from collections.abc import Sequence

_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_PUNCTUATION = frozenset(string.punctuation)


def normalize_answer(text: str) -> str:
    """Lower-case, drop ASCII punctuation, then the articles a/an/the, then squeeze whitespace."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def exact(gold: str, prediction: str) -> int:
    """1 if both normalise to the same string (both scripts)."""
    return int(normalize_answer(gold) == normalize_answer(prediction))


def _overlap_f1(gold_tokens: list[str], pred_tokens: list[str]) -> float:
    """Bag-of-tokens F1; 0 without a common token."""
    same = sum((Counter(gold_tokens) & Counter(pred_tokens)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pred_tokens), same / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def f1_v1(gold: str, prediction: str) -> float:
    """v1.1's F1: no common token scores 0, even when both sides normalise to nothing."""
    return _overlap_f1(normalize_answer(gold).split(), normalize_answer(prediction).split())


def f1_v2(gold: str, prediction: str) -> float:
    """v2.0's F1: if either side has no tokens, 1 when both have none, else 0."""
    gold_tokens, pred_tokens = normalize_answer(gold).split(), normalize_answer(prediction).split()
    if not gold_tokens or not pred_tokens:
        return float(gold_tokens == pred_tokens)
    return _overlap_f1(gold_tokens, pred_tokens)


def _check_lengths(metric: str, predictions: Sequence, references: Sequence) -> None:
    if len(predictions) != len(references):
        raise ValueError(
            f"{metric}: {len(predictions)} predictions but {len(references)} questions"
        )


def v1_scores(predictions: Sequence[str], references: Sequence[Sequence[str]]) -> dict[str, float]:
    """{"exact_match", "f1"}: means over questions of the best score over each one's gold texts.

    As evaluate-v1.1.py (compute_score): gold texts are taken as they are; a question without
    gold texts ([]) is scored against [""] (v1.1 has none; the span kind sends [""] for them).
    """
    _check_lengths("squad", predictions, references)
    if not predictions:
        return {"exact_match": 0.0, "f1": 0.0}
    em = f1 = 0.0
    for prediction, golds in zip(predictions, references, strict=True):
        golds = list(golds) or [""]
        em += max(exact(gold, prediction) for gold in golds)
        f1 += max(f1_v1(gold, prediction) for gold in golds)
    return {"exact_match": em / len(predictions), "f1": f1 / len(predictions)}


def _best_threshold(
    predictions: Sequence[str],
    scores: list[float],
    null_diffs: Sequence[float],
    has_answer: list[bool],
) -> tuple[float, float]:
    """(best score, its threshold) over "answer "" when null_diff > threshold" (find_best_thresh).

    Starts from every question answered "" (each unanswerable one right) and, in increasing
    null_diff, gives each question its prediction back: an answerable one gains its score, an
    unanswerable one loses 1 if its prediction is not "". Ties are walked in question order.
    """
    current = best = float(sum(not h for h in has_answer))
    threshold = 0.0
    for i in sorted(range(len(scores)), key=lambda i: null_diffs[i]):
        if has_answer[i]:
            current += scores[i]
        elif predictions[i]:
            current -= 1
        if current > best:
            best, threshold = current, null_diffs[i]
    # A question without any span candidate has null_diff inf; metrics.json must stay finite.
    return best / len(scores), min(float(threshold), sys.float_info.max)


def v2_scores(
    predictions: Sequence[str],
    references: Sequence[Sequence[str]],
    null_score_diffs: Sequence[float] | None = None,
) -> dict[str, float]:
    """evaluate-v2.0.py's eval dict without the counts: exact, f1, HasAns_*, NoAns_*, best_*.

    A question is answerable when it has a non-empty gold text; its gold texts are those that
    normalise to something ([""] if none do), so an unanswerable question is right only with an
    empty prediction. HasAns_* / NoAns_* are left out when the dev set has no question of that
    kind, as the script does. best_* (with `null_score_diffs`, the script's na_probs): the best
    scores any threshold on them would give, and that threshold.
    """
    _check_lengths("squad_v2", predictions, references)
    if null_score_diffs is not None:
        _check_lengths("squad_v2 null_score_diffs", null_score_diffs, references)
    if not predictions:
        return {"exact": 0.0, "f1": 0.0}
    has_answer = [any(gold for gold in golds) for golds in references]
    exact_raw, f1_raw = [], []
    for prediction, golds in zip(predictions, references, strict=True):
        golds = [gold for gold in golds if normalize_answer(gold)] or [""]
        exact_raw.append(float(max(exact(gold, prediction) for gold in golds)))
        f1_raw.append(max(f1_v2(gold, prediction) for gold in golds))
    result = {"exact": sum(exact_raw) / len(exact_raw), "f1": sum(f1_raw) / len(f1_raw)}
    for prefix, wanted in (("HasAns", True), ("NoAns", False)):
        subset = [i for i, h in enumerate(has_answer) if h == wanted]
        if subset:
            result[f"{prefix}_exact"] = sum(exact_raw[i] for i in subset) / len(subset)
            result[f"{prefix}_f1"] = sum(f1_raw[i] for i in subset) / len(subset)
    if null_score_diffs is not None:
        for name, raw in (("exact", exact_raw), ("f1", f1_raw)):
            best, threshold = _best_threshold(predictions, raw, null_score_diffs, has_answer)
            result[f"best_{name}"], result[f"best_{name}_thresh"] = best, threshold
    return result
