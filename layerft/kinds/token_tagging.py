"""Token tagging (POS, NER, morphology): a tag per word, read from the word's first subword."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn
from transformers import DataCollatorForTokenClassification

from layerft.errors import LayerftError
from layerft.kinds.base import (
    Batch,
    DropKeysCollator,
    HeadOutput,
    Kind,
    MetricInputs,
    Record,
    TaskKind,
    check_label_names,
    field_of,
    head_output,
    label_id,
    list_of,
    logits_of,
    run_encoder,
    text_of,
)
from layerft.metrics import MetricInput
from layerft.morph import silver_morphemes

if TYPE_CHECKING:
    from datasets import Dataset
    from transformers import EvalPrediction, PreTrainedTokenizerFast

    from layerft.task import TaskConfig


class SilverTagger(str, Enum):
    kiwi = "kiwi"  # Kiwi's morphemes and POS tags (kiwipiepy, the `korean` extra)


@dataclass
class TaggingConfig:
    """Tagging settings: gold tags from the data, or silver ones from an analyser."""

    # Set: tokens and tags come from this analyser run over text_columns[0] of each record, so
    # any Korean corpus (a target task's own) can be the injection corpus.
    silver: SilverTagger | None = None


def check(task: TaskConfig, where: str) -> None:
    """A tag set; one text column when tags are silver."""
    check_label_names(task, where)
    if task.tagging.silver is not None and len(task.text_columns) != 1:
        raise LayerftError(
            f"{where}: text_columns must name the 1 column the silver tagger reads, got "
            f"{task.text_columns}"
        )


def normalise(task: TaskConfig, group: str, record: Record, where: str) -> Record:
    """{"tokens": [str], "tags": [tag id]}, one tag per token."""
    if task.tagging.silver is not None:
        tokens, tags = silver_morphemes([text_of(record, task.text_columns[0], where)])[0]
    else:
        tokens = list_of(record, task.tokens_column, str, where)
        tags = field_of(record, task.tags_column, where)
    if not isinstance(tags, list) or len(tokens) != len(tags):
        raise LayerftError(
            f"{where}: '{task.tokens_column}' and '{task.tags_column}' must be lists of equal length"
        )
    return {
        "tokens": tokens,
        "tags": [label_id(t, task, group, where) for t in tags],
    }


def word_labels(word_ids: list[int | None], tags: list[int]) -> list[int]:
    """Each word's tag on its first subword; -100 (ignored) on the rest and on special tokens."""
    labels, previous = [], None
    for word in word_ids:
        labels.append(-100 if word is None or word == previous else tags[word])
        previous = word
    return labels


def encoder(task: TaskConfig, tokenizer: PreTrainedTokenizerFast):  # noqa: ANN201 - see Kind
    """Pre-split words -> subword ids, tags aligned to first subwords as `labels`."""

    def encode(batch: Batch) -> Batch:
        encoded = tokenizer(
            batch["tokens"], is_split_into_words=True, truncation=True, max_length=task.max_length
        )
        encoded["labels"] = [
            word_labels(encoded.word_ids(i), tags) for i, tags in enumerate(batch["tags"])
        ]
        return encoded

    return encode


def collator(
    tokenizer: PreTrainedTokenizerFast, pad_to_multiple_of: int | None
) -> DropKeysCollator:
    """Pad input ids, and labels with -100."""
    return DropKeysCollator(
        DataCollatorForTokenClassification(tokenizer, pad_to_multiple_of=pad_to_multiple_of)
    )


class TaggingHead(nn.Module):
    """A linear tag classifier on every token; labels of -100 (non-first subwords) are ignored."""

    def __init__(self, hidden_size: int, num_labels: int, dropout: float) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(hidden_size, num_labels)

    def forward(
        self, backbone: nn.Module, labels: torch.Tensor | None = None, **inputs: torch.Tensor
    ) -> HeadOutput:
        logits = self.classifier(
            self.dropout(run_encoder(backbone, **inputs))
        )  # (batch, seq, tags)
        loss = None
        if labels is not None:
            loss = nn.functional.cross_entropy(
                logits.flatten(0, 1), labels.flatten(), ignore_index=-100
            )
        return head_output(loss, logits=logits)


def build_head(hidden_size: int, task: TaskConfig) -> nn.Module:
    """A fresh tagging head."""
    return TaggingHead(hidden_size, len(task.label_names), task.head_dropout)


def metric_inputs(
    task: TaskConfig, prediction: EvalPrediction, features: Dataset, rows: list[Record]
) -> MetricInputs:
    """Argmax tags at the scored positions: flat ids, and tag strings per sentence."""
    predicted = np.asarray(logits_of(prediction)).argmax(-1)  # (batch, seq)
    labels = np.asarray(prediction.label_ids)
    keep = labels != -100
    names = np.asarray(task.label_names)
    return {
        MetricInput.class_ids: {
            "predictions": predicted[keep].tolist(),
            "references": labels[keep].tolist(),
        },
        MetricInput.tag_sequences: {
            "predictions": [names[p[k]].tolist() for p, k in zip(predicted, keep, strict=True)],
            "references": [names[r[k]].tolist() for r, k in zip(labels, keep, strict=True)],
        },
    }


KIND = Kind(
    name=TaskKind.token_tagging,
    provides=frozenset({MetricInput.class_ids, MetricInput.tag_sequences}),
    label_keys=("labels",),
    check=check,
    normalise=normalise,
    encoder=encoder,
    collator=collator,
    build_head=build_head,
    metric_inputs=metric_inputs,
)
