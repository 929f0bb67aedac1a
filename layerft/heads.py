"""The backbone+head module both stages train, and access to the encoder's layers.

Heads are layerft's own (one per task kind, in `layerft/kinds/`), not `AutoModelFor...`, so that
every backbone gets the same fresh head, the encoder can be cut at the layer split, and
parameters group cleanly into parts.

Serves the `injection_task` and `target_task` config groups: a task's `kind` gives its head
(`build_task_model`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from layerft.errors import LayerftError
from layerft.kinds import kind_of
from layerft.kinds.base import HeadOutput
from layerft.task import TaskConfig

if TYPE_CHECKING:
    from transformers import PreTrainedModel


class TaskModel(nn.Module):
    """An encoder and a task head; forward returns loss and predictions like a transformers model.

    The head runs the encoder itself (`head(backbone, **batch)`): a bi-encoder runs it twice, a
    parser reads word positions from the batch.
    """

    # The Trainer would pass `num_items_in_batch` to a forward with **kwargs; heads average
    # their own losses.
    accepts_loss_kwargs = False

    def __init__(self, backbone: PreTrainedModel, head: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head

    def forward(self, **batch: torch.Tensor) -> HeadOutput:
        return self.head(self.backbone, **batch)


def build_task_model(backbone: PreTrainedModel, task: TaskConfig) -> TaskModel:
    """Put a fresh head for `task`'s kind on `backbone`. A backbone loaded with its pooler
    (`model.pretrained_pooler`) gives it to a sentence head and keeps none: the head owns it."""
    kind = kind_of(task)
    pooler, backbone.pooler = getattr(backbone, "pooler", None), None
    head = kind.build_head(backbone.config.hidden_size, task)
    if pooler is not None and kind.start_from_pooler is not None:
        kind.start_from_pooler(head, pooler.dense)
    return TaskModel(backbone, head)


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
