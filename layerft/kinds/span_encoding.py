"""Extractive question answering's encoding: a record's gold answers, its question cut to
`spans.max_query_length` tokens, and each window of its context with that window's answer tokens.

The kind's encoder (`layerft/kinds/span_extraction.py`) puts the question first and the context
second, and cuts a long context into windows that start every `spans.doc_stride` context tokens
(the SQuAD processor's meaning of doc_stride: run_qa.py's is the overlap instead); a window trains
on its first gold answer, or on [CLS] when the question is unanswerable or that answer is not
wholly inside the window.

Serves the `span_extraction` task kind.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from layerft.errors import LayerftError
from layerft.kinds.span_decoding import CLS

if TYPE_CHECKING:
    from transformers import BatchEncoding, PreTrainedTokenizerFast

MODEL_INPUTS = frozenset({"input_ids", "token_type_ids", "attention_mask"})


def answer_lists(answers: Any, where: str, column: str) -> tuple[list[Any], list[Any]]:
    """Texts and starts of [{"text", "answer_start"}] (release) or {"text": [], ...} (SQuAD hub)."""
    if answers is None:  # SQuAD v2.0 and KLUE-MRC write [] (the hub: empty lists), never null
        raise LayerftError(
            f"{where}: column '{column}' is null; an unanswerable question has no answers: [] "
            "(the hub's layout: empty text and answer_start lists)"
        )
    if isinstance(answers, dict) and {"text", "answer_start"} <= answers.keys():
        texts, starts = answers["text"], answers["answer_start"]
        if isinstance(texts, list) and isinstance(starts, list) and len(texts) == len(starts):
            return texts, starts
    if isinstance(answers, list) and all(
        isinstance(a, dict) and {"text", "answer_start"} <= a.keys() for a in answers
    ):
        return [a["text"] for a in answers], [a["answer_start"] for a in answers]
    raise LayerftError(
        f"{where}: column '{column}' must be a list of {{text, answer_start}} answers, "
        f"got {str(answers)[:80]}"
    )


def cut_questions(
    tokenizer: PreTrainedTokenizerFast, questions: list[str], limit: int
) -> list[str]:
    """Each question cut after its `limit`-th token (SQuAD's max_query_length)."""
    # Leading spaces would only take room in the window (run_qa strips them too).
    questions = [q.lstrip() for q in questions]
    offsets = tokenizer(questions, add_special_tokens=False, return_offsets_mapping=True)
    return [
        q if len(o) <= limit else q[: o[limit - 1][1]]
        for q, o in zip(questions, offsets["offset_mapping"], strict=True)
    ]


def answer_tokens(
    offsets: Sequence[Sequence[int] | None], start_char: int, end_char: int
) -> tuple[int, int]:
    """Token positions of the answer [start_char, end_char) in a window; [CLS] when not inside it.

    `offsets` holds each position's character span in the context, None outside the context.
    """
    context = [p for p, o in enumerate(offsets) if o is not None]
    first, last = context[0], context[-1]
    if not (offsets[first][0] <= start_char and offsets[last][1] >= end_char):
        return CLS, CLS
    # The first token that ends after the answer starts, the last one that starts before it ends.
    start = next(p for p in context if offsets[p][1] > start_char)
    end = next(p for p in reversed(context) if offsets[p][0] < end_char)
    return start, end


def window_features(
    encoded: BatchEncoding, j: int, texts: list[str], starts: list[int], row_index: int
) -> dict[str, Any]:
    """Window `j` of `encoded`: model inputs, the first answer's token span, record, offsets."""
    in_context = [sequence == 1 for sequence in encoded.sequence_ids(j)]
    offsets = [
        tuple(offset) if inside else None
        for offset, inside in zip(encoded["offset_mapping"][j], in_context, strict=True)
    ]
    start = end = CLS
    if texts:
        start, end = answer_tokens(offsets, starts[0], starts[0] + len(texts[0]))
    inputs = {k: v[j] for k, v in encoded.items() if k in MODEL_INPUTS}
    return inputs | {
        "start_positions": start,
        "end_positions": end,
        "example_index": row_index,
        "offset_mapping": offsets,
    }
