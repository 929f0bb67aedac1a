"""Extractive question answering (KLUE-MRC, SQuAD 2.0): an answer span of the context, or none.

The recipe is KLUE-baseline's (klue_baseline/data/klue_mrc.py feeds transformers' SQuAD processor;
models/machine_reading_comprehension.py decodes with `compute_predictions_logits`,
version_2_with_negative, null_score_diff_threshold 0), written for a fast tokenizer's offsets as
transformers' run_qa.py / utils_qa.py do: windows are `layerft/kinds/span_encoding.py`, decoding
`layerft/kinds/span_decoding.py` (with its deviations from KLUE's). A deviation here: padding
positions are masked out of the loss, so it does not depend on how a batch is padded. Serves the
`injection_task` and `target_task` config groups (`kind: span_extraction`).
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from layerft.errors import LayerftError, shown
from layerft.kinds.base import (
    Batch,
    DropKeysCollator,
    HeadOutput,
    Kind,
    MetricInputs,
    Record,
    TaskKind,
    field_of,
    head_output,
    run_encoder,
    text_of,
)
from layerft.kinds.span_decoding import scored_answers
from layerft.kinds.span_encoding import answer_lists, cut_questions, window_features
from layerft.metrics import MetricInput

if TYPE_CHECKING:
    from datasets import Dataset
    from transformers import EvalPrediction, PreTrainedTokenizerFast

    from layerft.task import TaskConfig

# The most special tokens a question-context pair gets (RoBERTa's <s> q </s></s> c </s>).
MAX_PAIR_SPECIAL_TOKENS = 4


@dataclass
class SpanConfig:
    """`<task>.spans`: windows over long contexts, and how answers are read back (KLUE's values)."""

    doc_stride: int = 128  # context tokens between the starts of consecutive windows
    max_query_length: int = 64  # question tokens kept
    max_answer_length: int = 30  # tokens of a predicted answer at most
    n_best: int = 20  # start and end candidates per window
    null_score_threshold: float = 0.0  # "" when null score - best span score exceeds this
    # Whether the task has unanswerable questions (records without answers); when false such a
    # record stops the run (a v2.0 file given as SQuAD v1.1 would train on "no answer").
    unanswerable: bool = False


def check(task: TaskConfig, where: str) -> None:
    """Question and context columns, no label set, span settings that leave no gaps."""
    if len(task.text_columns) != 2:
        raise LayerftError(
            f"{where}: text_columns must name the question and the context column, got "
            f"{list(task.text_columns)}"
        )
    if task.label_names:
        raise LayerftError(f"{where}: label_names must be empty for span extraction (spans)")
    spans = task.spans
    for key in ("doc_stride", "max_query_length", "max_answer_length", "n_best"):
        if getattr(spans, key) < 1:
            raise LayerftError(f"{where}: spans.{key} must be >= 1, got {getattr(spans, key)}")
    if not math.isfinite(spans.null_score_threshold):
        raise LayerftError(
            f"{where}: spans.null_score_threshold must be finite, got {spans.null_score_threshold}"
        )
    room = task.max_length - spans.max_query_length - MAX_PAIR_SPECIAL_TOKENS
    if room < 1:
        raise LayerftError(
            f"{where}: spans.max_query_length={spans.max_query_length} leaves no context tokens "
            f"in max_length={task.max_length}"
        )
    if spans.doc_stride > room:
        # A larger step would skip context tokens between windows.
        raise LayerftError(
            f"{where}: spans.doc_stride={spans.doc_stride} must be <= max_length - "
            f"spans.max_query_length - {MAX_PAIR_SPECIAL_TOKENS} = {room}"
        )


def normalise(task: TaskConfig, group: str, record: Record, where: str) -> Record:
    """{"question", "context", "answer_texts", "answer_starts"}; no answers: unanswerable."""
    question_column, context_column = task.text_columns
    answers = field_of(record, task.label_column, where)
    # SQuAD has a few one-space questions (readers_squad reads them too).
    question = text_of(record, question_column, where, blank_ok=True)
    context = text_of(record, context_column, where)
    texts, starts = answer_lists(answers, where, task.label_column)
    if not texts and not task.spans.unanswerable:
        raise LayerftError(
            f"{where}: has no answers, and this task has no unanswerable questions "
            "(spans.unanswerable: false; a SQuAD v2.0 file? use target_task=squad_v2)"
        )
    for text, start in zip(texts, starts, strict=True):
        if not (isinstance(text, str) and text.strip() and type(start) is int):
            raise LayerftError(
                f"{where}: an answer needs a non-blank text and an integer answer_start, got "
                f"{shown(text)} at {shown(start)}"
            )
        found = context[start : start + len(text)] if start >= 0 else None
        if found != text:
            raise LayerftError(
                f"{where}: answer {shown(text)} does not match {context_column}[{start}:"
                f"{start + len(text)}] ({shown(found)})"
            )
    if record.get("is_impossible") is True and texts:
        raise LayerftError(f"{where}: is_impossible is true but it has {len(texts)} answers")
    return {
        "question": question,
        "context": context,
        "answer_texts": texts,
        "answer_starts": starts,
    }


def encoder(task: TaskConfig, tokenizer: PreTrainedTokenizerFast):  # noqa: ANN201 - see Kind
    """Question-context pairs -> windows with start/end positions, record index and offsets."""
    if tokenizer.padding_side != "right":
        raise LayerftError(
            f"task '{task.name}': span extraction needs a tokenizer that pads on the right "
            "([CLS] at position 0 marks 'no answer')"
        )
    spans = task.spans
    specials = tokenizer.num_special_tokens_to_add(pair=True)

    def encode(batch: Batch) -> Batch:
        questions = cut_questions(tokenizer, batch["question"], spans.max_query_length)
        # The overlap that makes windows start every doc_stride tokens depends on the question's
        # length, and the tokenizer takes one overlap per call: one call per question length.
        by_length: dict[int, list[int]] = defaultdict(list)
        for i, ids in enumerate(tokenizer(questions, add_special_tokens=False)["input_ids"]):
            by_length[len(ids)].append(i)
        windows: list[list[dict[str, Any]]] = [[] for _ in questions]
        for length, rows in by_length.items():
            window = task.max_length - specials - length
            encoded = tokenizer(
                [questions[i] for i in rows],
                [batch["context"][i] for i in rows],
                truncation="only_second",
                max_length=task.max_length,
                stride=max(0, window - spans.doc_stride),  # 0 only if a re-cut question grew
                return_overflowing_tokens=True,
                return_offsets_mapping=True,
            )
            for j, i in enumerate(rows[r] for r in encoded["overflow_to_sample_mapping"]):
                answer = batch["answer_texts"][i], batch["answer_starts"][i]
                windows[i].append(window_features(encoded, j, *answer, batch["row_index"][i]))
        features = [f for record_windows in windows for f in record_windows]  # record order
        return {key: [f[key] for f in features] for key in features[0]}

    return encode


def collator(
    tokenizer: PreTrainedTokenizerFast, pad_to_multiple_of: int | None
) -> DropKeysCollator:
    """Pad input ids per batch; record index and offsets are for decoding only."""
    from transformers import DataCollatorWithPadding  # here: a config needs none of transformers

    return DropKeysCollator(
        DataCollatorWithPadding(tokenizer, pad_to_multiple_of=pad_to_multiple_of),
        drop=frozenset({"length", "example_index", "offset_mapping"}),
    )


class SpanHead(nn.Module):
    """A linear start and end score on every token (BERT's QA head); loss: mean of both CEs."""

    def __init__(self, hidden_size: int, dropout: float) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.scorer = nn.Linear(hidden_size, 2)

    def forward(
        self,
        backbone: nn.Module,
        start_positions: torch.Tensor | None = None,
        end_positions: torch.Tensor | None = None,
        **inputs: torch.Tensor,
    ) -> HeadOutput:
        logits = self.scorer(self.dropout(run_encoder(backbone, **inputs)))  # (batch, seq, 2)
        mask = inputs.get("attention_mask")
        if mask is not None:  # padding is never an answer, whatever the batch is padded to
            logits = logits.masked_fill(mask.unsqueeze(-1) == 0, torch.finfo(logits.dtype).min)
        start, end = logits.unbind(-1)  # (batch, seq) each
        loss = None
        if start_positions is not None and end_positions is not None:
            loss = (
                nn.functional.cross_entropy(start, start_positions)
                + nn.functional.cross_entropy(end, end_positions)
            ) / 2
        return head_output(loss, start_logits=start, end_logits=end)


def metric_inputs(
    task: TaskConfig, prediction: EvalPrediction, features: Dataset, rows: list[Record]
) -> MetricInputs:
    """Answer texts decoded over each record's windows, against its gold texts ([""]: none)."""
    start_logits, end_logits = prediction.predictions[:2]
    if len(start_logits) != len(features):
        raise LayerftError(
            f"task '{task.name}': {len(start_logits)} predictions for {len(features)} dev windows"
        )
    scored = scored_answers(
        np.asarray(start_logits),
        np.asarray(end_logits),
        features["example_index"],
        features["offset_mapping"],
        [row["context"] for row in rows],
        task.spans,
    )
    answers = {
        "predictions": [text for text, _ in scored],
        "references": [row["answer_texts"] or [""] for row in rows],
    }
    return {
        MetricInput.answers: answers,
        MetricInput.scored_answers: answers | {"null_score_diffs": [diff for _, diff in scored]},
    }


KIND = Kind(
    name=TaskKind.span_extraction,
    provides=frozenset({MetricInput.answers, MetricInput.scored_answers}),
    label_keys=("start_positions", "end_positions"),
    settings=frozenset({"spans"}),
    check=check,
    normalise=normalise,
    encoder=encoder,
    collator=collator,
    build_head=lambda hidden_size, task: SpanHead(hidden_size, task.head_dropout),
    metric_inputs=metric_inputs,
)
