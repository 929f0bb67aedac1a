"""Relation classification between two marked entities of a sentence (KLUE-RE).

Entities are marked with typed punctuation markers (Zhou & Chen 2021, "An Improved Baseline for
Sentence-level Relation Extraction"): `@ * PER * subject @` and `# ^ ORG ^ object #`. Unlike
KLUE-baseline's added `<subj>`/`<obj>` tokens they need no new vocabulary, so the embeddings of
the two stages stay the pre-trained model's and transplants stay exact. The head classifies the
concatenated hidden states of the two opening markers.

Serves the `injection_task` and `target_task` config groups (`kind: relation_classification`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from layerft.errors import LayerftError, quoted, shown
from layerft.kinds import sequence_classification as classification
from layerft.kinds.base import (
    Batch,
    HeadOutput,
    Kind,
    MetricInputs,
    Record,
    TaskKind,
    field_of,
    head_output,
    logits_of,
    run_encoder,
    text_of,
)
from layerft.kinds.labels import check_label_names, check_label_unread, label_id
from layerft.metrics import MetricInput

if TYPE_CHECKING:
    from datasets import Dataset
    from transformers import EvalPrediction, PreTrainedTokenizerFast

    from layerft.task import TaskConfig

log = logging.getLogger(__name__)


@dataclass
class RelationConfig:
    """Relation settings: which label means "no relation" (left out of KLUE's micro F1)."""

    no_relation: str = "no_relation"
    entity_columns: list[str] = field(default_factory=lambda: ["subject", "object"])


def check(task: TaskConfig, where: str) -> None:
    """Labels, a no-relation label among them, two entity columns."""
    check_label_names(task, where)
    check_label_unread(task, where)
    if task.relation.no_relation not in task.label_names:
        raise LayerftError(
            f"{where}: relation.no_relation '{task.relation.no_relation}' is not in label_names"
        )
    if len(task.relation.entity_columns) != 2:
        raise LayerftError(
            f"{where}: relation.entity_columns must name 2 columns (subject, object), got "
            f"{list(task.relation.entity_columns)}"
        )


def _entity(record: Record, column: str, sentence: str, where: str) -> dict[str, Any]:
    """A checked {word, start, end (inclusive), type} entity of `sentence`."""
    entity = field_of(record, column, where)
    keys = ("word", "start", "end", "type")
    if not isinstance(entity, dict) or any(key not in entity for key in keys):
        raise LayerftError(f"{where}: '{column}' must be an object with {', '.join(keys)}")
    start, end = entity["start"], entity["end"]
    if not (isinstance(start, int) and isinstance(end, int) and 0 <= start <= end < len(sentence)):
        raise LayerftError(f"{where}: '{column}' span {start}..{end} is outside the sentence")
    if sentence[start : end + 1] != entity["word"]:
        raise LayerftError(
            f"{where}: '{column}' word {shown(entity['word'])} is not sentence[{start}:{end}+1] "
            f"({shown(sentence[start : end + 1])})"
        )
    return entity


def mark(sentence: str, subject: dict[str, Any], obj: dict[str, Any]) -> tuple[str, int, int]:
    """The sentence with typed markers around both entities, and where each opening marker sits."""
    marks = {
        "subject": (f"@ * {subject['type']} * ", " @"),
        "object": (f"# ^ {obj['type']} ^ ", " #"),
    }
    pieces, opening, position = [], {}, 0
    for name, entity in sorted(
        (("subject", subject), ("object", obj)), key=lambda item: item[1]["start"]
    ):
        if entity["start"] < position:
            raise LayerftError("overlapping subject and object")
        pieces.append(sentence[position : entity["start"]])
        opening[name] = sum(map(len, pieces))
        before, after = marks[name]
        pieces += [before, sentence[entity["start"] : entity["end"] + 1], after]
        position = entity["end"] + 1
    pieces.append(sentence[position:])
    return "".join(pieces), opening["subject"], opening["object"]


def normalise(task: TaskConfig, group: str, record: Record, where: str) -> Record | None:
    """{"text": marked sentence, "subject_char", "object_char": marker offsets, "label"}."""
    label = field_of(record, task.label_column, where)
    if label is None:
        return None
    sentence = text_of(record, task.text_columns[0], where)
    subject_column, object_column = task.relation.entity_columns
    subject = _entity(record, subject_column, sentence, where)
    obj = _entity(record, object_column, sentence, where)
    try:
        text, subject_char, object_char = mark(sentence, subject, obj)
    except LayerftError as err:
        raise LayerftError(f"{where}: {err}") from None
    return {
        "text": text,
        "subject_char": subject_char,
        "object_char": object_char,
        "label": label_id(label, task, group, where),
    }


def encoder(task: TaskConfig, tokenizer: PreTrainedTokenizerFast):  # noqa: ANN201 - see Kind
    """Marked sentence -> input ids, the token positions of both opening markers, `labels`."""

    def encode(batch: Batch) -> Batch:
        encoded = tokenizer(batch["text"], truncation=True, max_length=task.max_length)
        positions = {"subject_index": [], "object_index": []}
        for i, chars in enumerate(zip(batch["subject_char"], batch["object_char"], strict=True)):
            for key, char in zip(positions, chars, strict=True):
                token = encoded.char_to_token(i, char)
                positions[key].append(0 if token is None else token)  # cut off: read [CLS]
        return dict(encoded) | positions | {"labels": batch["label"]}

    return encode


def check_encoded(task: TaskConfig, group: str, rows: list[Record], features: Dataset) -> None:
    """Warns, once per split as it loads, about training examples whose subject or object marker
    max_length cut off: the head reads [CLS] in its place (a marker is never at position 0)."""
    cut = [
        i
        for i, (subject, obj) in enumerate(
            zip(features["subject_index"], features["object_index"], strict=True)
        )
        if 0 in (subject, obj)
    ]
    if cut:
        log.warning(
            "%s '%s': %d of %d training examples have an entity marker past max_length=%d, read "
            "as [CLS] (first: %s); raise %s.max_length to keep them",
            group, task.name, len(cut), len(rows), task.max_length,
            quoted(rows[cut[0]]["text"], 50), group,
        )  # fmt: skip


class MarkerHead(nn.Module):
    """[h(subject marker); h(object marker)] -> dense+tanh -> relation logits."""

    def __init__(self, hidden_size: int, num_labels: int, dropout: float) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.dense = nn.Linear(2 * hidden_size, hidden_size)
        self.classifier = nn.Linear(hidden_size, num_labels)

    def forward(
        self,
        backbone: nn.Module,
        subject_index: torch.Tensor,
        object_index: torch.Tensor,
        labels: torch.Tensor | None = None,
        **inputs: torch.Tensor,
    ) -> HeadOutput:
        hidden = run_encoder(backbone, **inputs)  # (batch, seq, hidden)
        rows = torch.arange(hidden.size(0), device=hidden.device)
        pair = torch.cat([hidden[rows, subject_index], hidden[rows, object_index]], -1)
        logits = self.classifier(self.dropout(torch.tanh(self.dense(self.dropout(pair)))))
        loss = None if labels is None else nn.functional.cross_entropy(logits, labels)
        return head_output(loss, logits=logits)


def metric_inputs(
    task: TaskConfig, prediction: EvalPrediction, features: Dataset, rows: list[Record]
) -> MetricInputs:
    """Argmax ids, and class probabilities for KLUE's AUPRC."""
    logits = torch.as_tensor(np.asarray(logits_of(prediction), dtype=np.float32))
    predicted = logits.argmax(-1).tolist()
    references = np.asarray(prediction.label_ids).tolist()
    return {
        MetricInput.class_ids: {"predictions": predicted, "references": references},
        MetricInput.class_probabilities: {
            "predictions": predicted,
            "references": references,
            "probabilities": logits.softmax(-1).tolist(),
            "no_relation_id": task.label_names.index(task.relation.no_relation),
        },
    }


KIND = Kind(
    name=TaskKind.relation_classification,
    provides=frozenset({MetricInput.class_ids, MetricInput.class_probabilities}),
    label_keys=("labels",),
    settings=frozenset({"relation"}),
    check=check,
    normalise=normalise,
    encoder=encoder,
    collator=classification.collator,  # marker positions are one number per example
    build_head=lambda hidden, task: MarkerHead(hidden, len(task.label_names), task.head_dropout),
    metric_inputs=metric_inputs,
    check_encoded=check_encoded,
)
