"""Sentence and sentence-pair classification (NLI, topic, sentiment): a label per text or pair.

Serves the `injection_task` and `target_task` config groups (`kind: sequence_classification`).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from layerft.errors import LayerftError, quoted
from layerft.kinds.base import (
    Batch,
    DropKeysCollator,
    HeadOutput,
    Kind,
    MetricInputs,
    Record,
    TaskKind,
    blank,
    blank_kind,
    field_of,
    head_output,
    logits_of,
    run_encoder,
    text_of,
)
from layerft.kinds.labels import (
    check_label_names,
    check_label_unread,
    integer_text,
    label_id,
    nfc,
    whole_number,
)
from layerft.metrics import MetricInput

if TYPE_CHECKING:
    from datasets import Dataset
    from transformers import EvalPrediction, PreTrainedTokenizerFast

    from layerft.task import TaskConfig

log = logging.getLogger(__name__)


def check_text_columns(task: TaskConfig, where: str) -> None:
    """One text column, or two for a pair; not the label's (the model would read the answer)."""
    if not 1 <= len(task.text_columns) <= 2:
        raise LayerftError(
            f"{where}: text_columns must name 1 or 2 columns, got {task.text_columns}"
        )
    check_label_unread(task, where)


def check(task: TaskConfig, where: str) -> None:
    """Texts and at least two labels, none of which marks an unlabelled record."""
    check_text_columns(task, where)
    check_label_names(task, where)
    shared = sorted(set(task.unlabelled_values) & set(task.label_names))
    if shared:
        raise LayerftError(f"{where}: unlabelled_values {shared} are also label_names")


def texts(task: TaskConfig, group: str, record: Record, where: str) -> Record | None:
    """The record's one or two texts as text_a / text_b; a blank one stops the run, or marks a
    record to drop when the task says its published data has some (`drop_blank_texts`)."""
    found = {
        key: text_of(record, column, where, blank_ok=True)
        for key, column in zip(("text_a", "text_b"), task.text_columns, strict=False)
    }
    blanks = [(c, t) for c, t in zip(task.text_columns, found.values(), strict=False) if blank(t)]
    if blanks and not task.drop_blank_texts:
        column, text = blanks[0]
        raise LayerftError(
            f"{where}: column '{column}' is {blank_kind(text)}; fix or remove the record, or set "
            f"{group}.drop_blank_texts=true to drop and count such records"
        )
    return None if blanks else found


def normalise(task: TaskConfig, group: str, record: Record, where: str) -> Record | None:
    """{"text_a", "text_b"?, "label"}; a missing label (None, a value in unlabelled_values, or -1
    unless it is a label name) marks an unlabelled record. -1.0 is -1, as 2.0 is 2 (pandas writes
    an integer column holding a null as floats), but a bool is never -1 or an index. An integer
    label is in unlabelled_values (strings) as its text: a JSON or CSV 99 is `[99]`'s "99"."""
    label = field_of(record, task.label_column, where)
    integer = whole_number(label)
    if (
        label is None
        or label in task.unlabelled_values
        or (isinstance(label, str) and nfc(label) in map(nfc, task.unlabelled_values))
        or (integer is not None and str(integer) in task.unlabelled_values)
        or (integer == -1 and not _names_minus_one(task, label))
    ):
        return None
    found = texts(task, group, record, where)
    return None if found is None else {"label": label_id(label, task, group, where)} | found


def _names_minus_one(task: TaskConfig, label: object) -> bool:
    """Whether a -1 label is a class (`-1` or `-01` among label_names), not SNLI's unlabelled."""
    return str(label) in task.label_names or any(integer_text(n) == -1 for n in task.label_names)


def encode_texts(task: TaskConfig, tokenizer: PreTrainedTokenizerFast, batch: Batch) -> Batch:
    """Tokenize text_a (and text_b as the pair's second segment), truncated to max_length."""
    segments = [batch["text_a"]] + ([batch["text_b"]] if "text_b" in batch else [])
    return tokenizer(*segments, truncation=True, max_length=task.max_length)


def encoder(task: TaskConfig, tokenizer: PreTrainedTokenizerFast):  # noqa: ANN201 - see Kind
    """Texts -> input ids, the label id as `labels`."""

    def encode(batch: Batch) -> Batch:
        encoded = encode_texts(task, tokenizer, batch)
        encoded["labels"] = batch["label"]
        return encoded

    return encode


def check_encoded(task: TaskConfig, group: str, rows: list[Record], features: Dataset) -> None:
    """Warns about training texts cut at max_length (tagging kinds count their cut words)."""
    cut = [i for i, ids in enumerate(features["input_ids"]) if len(ids) >= task.max_length]
    if cut:
        log.warning(
            "%s '%s': %d of %d training examples (%.1f%%) fill max_length=%d tokens, so were likely cut "
            "(first: %s); raise %s.max_length to keep more of them",
            group, task.name, len(cut), len(rows), 100 * len(cut) / len(rows), task.max_length,
            quoted(rows[cut[0]]["text_a"], 50), group,
        )  # fmt: skip


def collator(
    tokenizer: PreTrainedTokenizerFast, pad_to_multiple_of: int | None
) -> DropKeysCollator:
    """Pad input ids per batch."""
    from transformers import DataCollatorWithPadding  # here: a config needs none of transformers

    return DropKeysCollator(
        DataCollatorWithPadding(tokenizer, pad_to_multiple_of=pad_to_multiple_of)
    )


class ClassificationHead(nn.Module):
    """Dense+tanh on the first token, then a linear classifier: fresh, RoBERTa's head (dropout
    before the dense layer and after); from a pre-trained pooler, BERT's (dropout after only)."""

    def __init__(self, hidden_size: int, num_labels: int, dropout: float) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.dense = nn.Linear(hidden_size, hidden_size)
        self.classifier = nn.Linear(hidden_size, num_labels)
        self.dropout_first = True

    def start_from(self, pooler: nn.Linear) -> None:
        """Use a checkpoint's pooler dense layer, as BertForSequenceClassification does."""
        self.dense = pooler
        self.dropout_first = False

    def scores(self, hidden: torch.Tensor) -> torch.Tensor:
        """(batch, seq, hidden) -> (batch, labels) from the [CLS]/<s> token."""
        x = self.dropout(hidden[:, 0]) if self.dropout_first else hidden[:, 0]
        return self.classifier(self.dropout(torch.tanh(self.dense(x))))

    def forward(
        self, backbone: nn.Module, labels: torch.Tensor | None = None, **inputs: torch.Tensor
    ) -> HeadOutput:
        logits = self.scores(run_encoder(backbone, **inputs))
        loss = None if labels is None else nn.functional.cross_entropy(logits, labels)
        return head_output(loss, logits=logits)


def build_head(hidden_size: int, task: TaskConfig) -> nn.Module:
    """A fresh classification head."""
    return ClassificationHead(hidden_size, len(task.label_names), task.head_dropout)


def metric_inputs(
    task: TaskConfig, prediction: EvalPrediction, features: Dataset, rows: list[Record]
) -> MetricInputs:
    """Argmax label ids against the gold ones."""
    predicted = np.asarray(logits_of(prediction)).argmax(-1)
    return {
        MetricInput.class_ids: {
            "predictions": predicted.tolist(),
            "references": np.asarray(prediction.label_ids).tolist(),
        }
    }


def check_coverage(
    task: TaskConfig, group: str, train: list[Record], validation: list[Record]
) -> None:
    """Warn when training has no example of a class that dev scores (a sorted file, a small cap)."""
    missing = {r["label"] for r in validation} - {r["label"] for r in train}
    if missing:
        names = ", ".join(task.label_names[i] for i in sorted(missing))
        log.warning(
            "%s train: no examples of %s, which validation has (%d training examples)",
            group, names, len(train),
        )  # fmt: skip


KIND = Kind(
    name=TaskKind.sequence_classification,
    provides=frozenset({MetricInput.class_ids}),
    label_keys=("labels",),
    settings=frozenset(),
    check=check,
    normalise=normalise,
    encoder=encoder,
    collator=collator,
    build_head=build_head,
    metric_inputs=metric_inputs,
    check_coverage=check_coverage,
    check_encoded=check_encoded,
    start_from_pooler=lambda head, pooler: head.start_from(pooler),
)
