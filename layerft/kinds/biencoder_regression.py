"""Sentence-pair similarity from a bi-encoder (SBERT): each sentence encoded alone and mean-pooled,
the pair scored by the cosine of the two vectors, trained to match the gold score (rescaled).

Serves the `injection_task` and `target_task` config groups (`kind: biencoder_regression`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from layerft.errors import LayerftError
from layerft.kinds import sequence_regression as regression
from layerft.kinds.base import Batch, HeadOutput, Kind, TaskKind, head_output, run_encoder
from layerft.metrics import MetricInput

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerFast

    from layerft.task import TaskConfig

SECOND = "_b"  # suffix of the second sentence's features (input_ids_b, attention_mask_b, ...)


@dataclass
class BiencoderConfig:
    """Bi-encoder settings: the gold score range mapped onto cosine similarity [0, 1]."""

    score_max: float = 5.0  # KLUE-STS and STS-B scores run 0-5; cosine targets are score / max


def check(task: TaskConfig, where: str) -> None:
    """Exactly two texts and a number as the label."""
    if len(task.text_columns) != 2:
        raise LayerftError(f"{where}: text_columns must name 2 columns, got {task.text_columns}")
    regression.check(task, where)
    if task.biencoder.score_max <= 0:
        raise LayerftError(
            f"{where}: biencoder.score_max must be > 0, got {task.biencoder.score_max}"
        )
    span = task.regression.score_range
    if span is not None and span[1] > task.biencoder.score_max:
        raise LayerftError(
            f"{where}: regression.score_range ends at {span[1]:g}, above biencoder.score_max "
            f"{task.biencoder.score_max:g} (cosine targets are score / score_max, at most 1)"
        )


def encoder(task: TaskConfig, tokenizer: PreTrainedTokenizerFast):  # noqa: ANN201 - see Kind
    """Each sentence tokenized on its own; the second one's features carry the `_b` suffix."""

    def encode(batch: Batch) -> Batch:
        first = tokenizer(batch["text_a"], truncation=True, max_length=task.max_length)
        second = tokenizer(batch["text_b"], truncation=True, max_length=task.max_length)
        encoded = dict(first) | {f"{key}{SECOND}": value for key, value in second.items()}
        encoded["labels"] = batch["label"]
        return encoded

    return encode


@dataclass
class PairCollator:
    """Pads each sentence's features to its own longest in the batch; drops `length`."""

    tokenizer: PreTrainedTokenizerFast
    pad_to_multiple_of: int | None

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        def pad(keys: list[str], suffix: str) -> dict[str, torch.Tensor]:
            padded = self.tokenizer.pad(
                [{key: f[f"{key}{suffix}"] for key in keys} for f in features],
                pad_to_multiple_of=self.pad_to_multiple_of,
                return_tensors="pt",
            )
            return {f"{key}{suffix}": value for key, value in padded.items()}

        keys = [k for k in features[0] if f"{k}{SECOND}" in features[0]]
        batch = pad(keys, "") | pad(keys, SECOND)
        batch["labels"] = torch.tensor([f["labels"] for f in features], dtype=torch.float32)
        return batch


def mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(batch, seq, hidden) averaged over unmasked tokens -> (batch, hidden)."""
    weights = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)


class BiencoderHead(nn.Module):
    """No parameters of its own: cosine of the mean-pooled sentences, times score_max."""

    def __init__(self, score_max: float) -> None:
        super().__init__()
        self.score_max = score_max

    def embed(self, backbone: nn.Module, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """One sentence's mean-pooled last hidden states, (batch, hidden)."""
        return mean_pool(run_encoder(backbone, **inputs), inputs["attention_mask"])

    def forward(
        self, backbone: nn.Module, labels: torch.Tensor | None = None, **inputs: torch.Tensor
    ) -> HeadOutput:
        first = {k: v for k, v in inputs.items() if not k.endswith(SECOND)}
        second = {k.removesuffix(SECOND): v for k, v in inputs.items() if k.endswith(SECOND)}
        cosine = nn.functional.cosine_similarity(
            self.embed(backbone, first), self.embed(backbone, second), dim=-1
        )  # (batch,)
        loss = None
        if labels is not None:  # SBERT's CosineSimilarityLoss: MSE to the score rescaled to [0, 1]
            loss = nn.functional.mse_loss(cosine, labels.to(cosine.dtype) / self.score_max)
        return head_output(loss, scores=cosine * self.score_max)


KIND = Kind(
    name=TaskKind.biencoder_regression,
    provides=frozenset({MetricInput.scores}),
    label_keys=("labels",),
    settings=frozenset({"biencoder", "regression"}),
    check=check,
    normalise=regression.normalise,
    encoder=encoder,
    collator=PairCollator,
    build_head=lambda hidden_size, task: BiencoderHead(task.biencoder.score_max),
    metric_inputs=regression.metric_inputs,
)
