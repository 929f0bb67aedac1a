"""CoNLL scores in the stdlib and numpy: conlleval's chunk F1 and the CoNLL 2018 UD UAS / LAS.

The metric modules layerft/metrics/conlleval/ and layerft/metrics/ud_attachment/ wrap these and
document the definitions and their sources.

Serves no config group: a task's `metrics` name the metric modules that wrap these.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from layerft.metrics.scores import flatten_aligned

Chunk = tuple[int, int, int, str]  # (sentence, first token, last token, type)


def _split(tag: str) -> tuple[str, str]:
    """conlleval's split of a tag at its first '-': 'B-NP' -> ('B', 'NP'), 'O' -> ('O', '')."""
    prefix, _, kind = tag.partition("-")
    return prefix, kind


def _ends(previous: str, previous_kind: str, tag: str, kind: str) -> bool:
    """conlleval's endOfChunk: whether a chunk ends between the previous token and this one."""
    if previous in ("B", "I") and tag in ("B", "O"):
        return True
    if previous == "E" and tag in ("E", "I", "O"):
        return True
    return previous not in ("O", ".") and previous_kind != kind


def _starts(previous: str, previous_kind: str, tag: str, kind: str) -> bool:
    """conlleval's startOfChunk: whether a chunk starts at this token."""
    if tag == "B" and previous in ("B", "I", "O"):
        return True
    if previous == "O" and tag in ("I", "E"):
        return True
    if previous == "E" and tag in ("E", "I"):
        return True
    return tag not in ("O", ".") and previous_kind != kind


def chunks(sentences: Sequence[Sequence[str]]) -> set[Chunk]:
    """Every chunk of every sentence, as conlleval delimits them (IOB1, IOB2 and IOE tags).

    A sentence boundary closes an open chunk, as conlleval's blank line (read as tag 'O') does.
    """
    found: set[Chunk] = set()
    for number, tags in enumerate(sentences):
        previous, previous_kind, start = "O", "", None
        for position, tag in enumerate([*tags, "O"]):
            prefix, kind = _split(tag)
            if start is not None and _ends(previous, previous_kind, prefix, kind):
                found.add((number, start, position - 1, previous_kind))
                start = None
            if _starts(previous, previous_kind, prefix, kind):
                start = position
            previous, previous_kind = prefix, kind
    return found


def chunk_scores(
    predictions: Sequence[Sequence[str]], references: Sequence[Sequence[str]]
) -> dict[str, float]:
    """conlleval's overall precision, recall and F1 (FB1) of chunks, as fractions in [0, 1]."""
    flatten_aligned("conlleval", "tags", predictions, references)  # checks the alignment
    guessed, gold = chunks(predictions), chunks(references)
    correct = len(guessed & gold)
    precision = correct / len(guessed) if guessed else 0.0
    recall = correct / len(gold) if gold else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}


def attachment_scores(
    pred_heads: np.ndarray,
    pred_relations: np.ndarray,
    gold_heads: np.ndarray,
    gold_relations: np.ndarray,
    unattached: int = 0,
) -> tuple[float, float]:
    """(UAS, LAS) over all words: the fraction with the gold head, and with gold head and relation.

    With gold tokenisation every word is aligned, so CoNLL 2018's precision, recall and F1 all
    equal these accuracies. `unattached` more gold words got no head (cut by max_length): they
    count in the denominators as wrong, as the script counts every gold word.
    """
    total = gold_heads.size + unattached
    if total == 0:
        return 0.0, 0.0
    heads = pred_heads == gold_heads
    correct = heads & (pred_relations == gold_relations)
    return float(heads.sum() / total), float(correct.sum() / total)
