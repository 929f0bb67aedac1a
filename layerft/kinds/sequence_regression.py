"""Sentence-pair regression (STS): a real-valued score per pair from a cross-encoder.

Serves the `injection_task` and `target_task` config groups (`kind: sequence_regression`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from layerft.errors import LayerftError, quoted
from layerft.kinds import sequence_classification as classification
from layerft.kinds.base import (
    HeadOutput,
    Kind,
    MetricInputs,
    Record,
    TaskKind,
    field_of,
    head_output,
    logits_of,
    run_encoder,
)
from layerft.metrics import MetricInput
from layerft.text_files import NUMBER, finite_number

if TYPE_CHECKING:
    from datasets import Dataset
    from transformers import EvalPrediction

    from layerft.task import TaskConfig


@dataclass
class RegressionConfig:
    """Settings of both regression kinds (cross- and bi-encoder)."""

    # [low, high]: a gold score outside it is an error naming the record (KLUE-STS and STS-B
    # scores run 0-5, and KLUE's F1 thresholds them at 3); null: any finite number.
    score_range: list[float] | None = None


def check(task: TaskConfig, where: str) -> None:
    """Texts, no label set (the label is a number), a well-formed score range."""
    classification.check_text_columns(task, where)
    if task.label_names:
        raise LayerftError(f"{where}: label_names must be empty for a regression task (scores)")
    span = task.regression.score_range
    if span is not None and (len(span) != 2 or not span[0] < span[1]):
        raise LayerftError(
            f"{where}: regression.score_range must be [low, high] with low < high, got {span}"
        )


def score_of(record: Record, column: str, where: str) -> float | None:
    """The record's gold score as a float; None marks an unlabelled record."""
    value = field_of(record, column, where)
    if value is None:
        return None
    if not finite_number(value):
        raise LayerftError(
            f"{where}: column '{column}' is not a finite number: {quoted(value)}{_as_text(value)}"
        )
    return float(value)


def _as_text(value: object) -> str:
    """Why a number may arrive as text: a .csv/.tsv column is read as text whole when half its
    cells or more are not numbers (by the reader's rule, NUMBER), and then its first record is
    named, not the bad cells."""
    if not (isinstance(value, str) and NUMBER.fullmatch(value)):
        return ""
    return (
        " (a number written as text: in a .csv or .tsv file the column is read as text when half "
        "or more of its cells are not numbers; look for those)"
    )


def normalise(task: TaskConfig, group: str, record: Record, where: str) -> Record | None:
    """{"text_a", "text_b"?, "label": float}."""
    score = score_of(record, task.label_column, where)
    if score is None:
        return None
    span = task.regression.score_range
    if span is not None and not span[0] <= score <= span[1]:
        raise LayerftError(
            f"{where}: column '{task.label_column}' score {score:g} is outside "
            f"regression.score_range [{span[0]:g}, {span[1]:g}]"
        )
    found = classification.texts(task, group, record, where)
    return None if found is None else {"label": score} | found


class RegressionHead(nn.Module):
    """The classification head's shape with one output, trained with mean squared error."""

    def __init__(self, hidden_size: int, dropout: float) -> None:
        super().__init__()
        self.head = classification.ClassificationHead(hidden_size, 1, dropout)

    def forward(
        self, backbone: nn.Module, labels: torch.Tensor | None = None, **inputs: torch.Tensor
    ) -> HeadOutput:
        scores = self.head.scores(run_encoder(backbone, **inputs)).squeeze(-1)  # (batch,)
        # in float32: under bf16 autocast the scores are bf16, and gold scores must not round to it
        loss = None if labels is None else nn.functional.mse_loss(scores.float(), labels.float())
        return head_output(loss, scores=scores)


def metric_inputs(
    task: TaskConfig, prediction: EvalPrediction, features: Dataset, rows: list[Record]
) -> MetricInputs:
    """Predicted scores against the gold ones."""
    return {
        MetricInput.scores: {
            "predictions": np.asarray(logits_of(prediction), dtype=float).tolist(),
            "references": np.asarray(prediction.label_ids, dtype=float).tolist(),
        }
    }


KIND = Kind(
    name=TaskKind.sequence_regression,
    provides=frozenset({MetricInput.scores}),
    label_keys=("labels",),
    settings=frozenset({"regression"}),
    check=check,
    normalise=normalise,
    encoder=classification.encoder,
    collator=classification.collator,
    build_head=lambda hidden_size, task: RegressionHead(hidden_size, task.head_dropout),
    metric_inputs=metric_inputs,
    check_encoded=classification.check_encoded,
    start_from_pooler=lambda head, pooler: head.head.start_from(pooler),
)
