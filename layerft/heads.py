"""Task heads, one per task kind, and the backbone+head module both stages train.

Heads are layerft's own (not `AutoModelFor...`) so that every backbone gets the same fresh head,
the encoder can be cut at the layer split, and parameters group cleanly into parts.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType

import torch
from torch import nn
from transformers import PreTrainedModel
from transformers.modeling_outputs import SequenceClassifierOutput

from layerft.errors import LayerftError
from layerft.task import TaskKind


class SequenceClassificationHead(nn.Module):
    """Dense+tanh on the first token, then a linear classifier (the RoBERTa/BERT-pooler shape)."""

    def __init__(self, hidden_size: int, num_labels: int, dropout: float) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.dense = nn.Linear(hidden_size, hidden_size)
        self.classifier = nn.Linear(hidden_size, num_labels)

    def forward(
        self, hidden: torch.Tensor, labels: torch.Tensor | None
    ) -> SequenceClassifierOutput:
        x = self.dropout(hidden[:, 0])  # (batch, hidden): the [CLS]/<s> token
        logits = self.classifier(self.dropout(torch.tanh(self.dense(x))))  # (batch, labels)
        loss = None if labels is None else nn.functional.cross_entropy(logits, labels)
        return SequenceClassifierOutput(loss=loss, logits=logits)


class TokenTaggingHead(nn.Module):
    """A linear tag classifier on every token; labels of -100 (non-first subwords) are ignored."""

    def __init__(self, hidden_size: int, num_labels: int, dropout: float) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(hidden_size, num_labels)

    def forward(
        self, hidden: torch.Tensor, labels: torch.Tensor | None
    ) -> SequenceClassifierOutput:
        logits = self.classifier(self.dropout(hidden))  # (batch, seq, labels)
        loss = None
        if labels is not None:
            loss = nn.functional.cross_entropy(
                logits.flatten(0, 1), labels.flatten(), ignore_index=-100
            )
        return SequenceClassifierOutput(loss=loss, logits=logits)


HEAD_BUILDERS: Mapping[TaskKind, Callable[[int, int, float], nn.Module]] = MappingProxyType(
    {
        TaskKind.sequence_classification: SequenceClassificationHead,
        TaskKind.token_tagging: TokenTaggingHead,
    }
)


class TaskModel(nn.Module):
    """An encoder and a task head; forward returns loss and logits like a transformers model."""

    def __init__(self, backbone: PreTrainedModel, head: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
    ) -> SequenceClassifierOutput:
        hidden = self.backbone(
            input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
        ).last_hidden_state  # (batch, seq, hidden)
        return self.head(hidden, labels)


def build_task_model(
    backbone: PreTrainedModel, kind: TaskKind, num_labels: int, dropout: float
) -> TaskModel:
    """Put a fresh head for `kind` on `backbone`."""
    return TaskModel(
        backbone, HEAD_BUILDERS[kind](backbone.config.hidden_size, num_labels, dropout)
    )


def encoder_layers(backbone: nn.Module) -> nn.ModuleList:
    """The encoder's layer list, bottom first (BERT, RoBERTa and XLM-R all keep `encoder.layer`)."""
    layers = getattr(getattr(backbone, "encoder", None), "layer", None)
    if not isinstance(layers, nn.ModuleList):
        raise LayerftError(
            f"backbone {type(backbone).__name__} has no encoder.layer list; layerft supports "
            "BERT-, RoBERTa- and XLM-R-style encoders"
        )
    return layers


def truncate_encoder(backbone: PreTrainedModel, num_layers: int) -> None:
    """Keep only the lowest `num_layers` layers, so a head on the split skips the layers above."""
    layers = encoder_layers(backbone)
    backbone.encoder.layer = nn.ModuleList(list(layers)[:num_layers])
    backbone.config.num_hidden_layers = num_layers
