"""Extractive question answering's decoding: each record's answer text, or none, from the start and
end logits of its windows, as KLUE-baseline's `compute_predictions_logits` (version_2_with_negative)
and transformers' utils_qa.py pick it.

A span (a, b) scores start[a] + end[b] over the n-best starts and ends of each window, in the
context, b >= a, at most `spans.max_answer_length` tokens, starting at a token that has its most
context in that window; "" wins when the smallest [CLS] score start[0] + end[0] over the windows
beats the best span by more than `spans.null_score_threshold`; that difference (null minus best
span score) goes to the metrics too (SQuAD 2.0's best threshold). Deviations: the n-best are taken
among context tokens (KLUE takes them over every position, padding included, then drops the ones
outside the context); the answer is the context's text between the span's character offsets (KLUE
maps tokens back to whitespace words).

Serves the `span_extraction` task kind.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from layerft.kinds.span_extraction import SpanConfig

CLS = 0  # [CLS] / <s> position: the "no answer" span (right padding, question first)


def max_context_owner(lengths: list[int], stride: int) -> np.ndarray:
    """For each context token of a record, the window where it has the most context.

    Window k holds context tokens k*stride .. k*stride + lengths[k] - 1; a token's context there
    is min(tokens left, tokens right) + 0.01 * window length; ties go to the earlier window
    (the SQuAD processor's _new_check_is_max_context).
    """
    total = max(k * stride + n for k, n in enumerate(lengths))
    best = np.full(total, -np.inf)
    owner = np.zeros(total, dtype=int)
    for k, n in enumerate(lengths):
        i = np.arange(n)
        score = np.minimum(i, n - 1 - i) + 0.01 * n
        tokens = k * stride + i
        better = score > best[tokens]
        best[tokens[better]] = score[better]
        owner[tokens[better]] = k
    return owner


def scored_answer(
    starts: list[np.ndarray],
    ends: list[np.ndarray],
    offsets: list[Sequence[Sequence[int] | None]],
    context: str,
    spans: SpanConfig,
) -> tuple[str, float]:
    """One record's answer text ("" for none) from the (seq,) logits of its windows, in order, and
    its null score minus best span score (inf: no span candidate)."""
    null = math.inf
    best_score, best_chars = -math.inf, None
    positions = [np.array([p for p, o in enumerate(offs) if o is not None]) for offs in offsets]
    owner = max_context_owner([len(p) for p in positions], spans.doc_stride)
    windows = zip(starts, ends, offsets, positions, strict=True)
    for k, (start, end, offs, context_at) in enumerate(windows):
        null = min(null, float(start[CLS] + end[CLS]))
        a = context_at[np.argsort(-start[context_at], kind="stable")[: spans.n_best]]
        b = context_at[np.argsort(-end[context_at], kind="stable")[: spans.n_best]]
        a = a[owner[k * spans.doc_stride + a - context_at[0]] == k]
        score = start[a][:, None] + end[b][None, :]  # (starts, ends)
        length = b[None, :] - a[:, None] + 1
        score[(length < 1) | (length > spans.max_answer_length)] = -np.inf
        if score.size and score.max() > best_score:
            s, e = np.unravel_index(np.argmax(score), score.shape)
            best_score, best_chars = float(score[s, e]), (offs[a[s]][0], offs[b[e]][1])
    if best_chars is None or null - best_score > spans.null_score_threshold:
        return "", null - best_score
    return context[best_chars[0] : best_chars[1]], null - best_score


def scored_answers(
    start_logits: np.ndarray,
    end_logits: np.ndarray,
    example_index: Sequence[int],
    offsets: Sequence[Sequence[Sequence[int] | None]],
    contexts: Sequence[str],
    spans: SpanConfig,
) -> list[tuple[str, float]]:
    """Each record's answer from its windows' (features, seq) logits, padded with anything, and its
    null score minus best span score (scored_answer)."""
    windows: list[list[int]] = [[] for _ in contexts]
    for feature, record in enumerate(example_index):
        windows[record].append(feature)
    # A feature's logits beyond its own length are padding (of its batch, or -100 between batches).
    return [
        scored_answer(
            [start_logits[f, : len(offsets[f])] for f in features],
            [end_logits[f, : len(offsets[f])] for f in features],
            [offsets[f] for f in features],
            context,
            spans,
        )
        for features, context in zip(windows, contexts, strict=True)
    ]
