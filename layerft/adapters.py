"""Houlsby-style bottleneck adapters, layerft's own (the `adapters` package pins an old transformers).

An adapter is added to the output sub-block of attention and/or feed-forward of chosen encoder
layers, where Houlsby's adapter-bert puts it: after the block's projection and its dropout, before
the residual LayerNorm. It is applied by a forward hook on the block's dropout: the pre-trained
parameter names stay as they were, so checkpoints, transplants and part selection are unaffected.

Serves the `tuning_mode` config group (its `adapter` settings, `AdapterConfig`):
`layerft/tuning_mode.py` adds the adapters.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum

import torch
from torch import nn

from layerft.errors import LayerftError


class AdapterPlacement(str, Enum):
    attention = "attention"  # after the attention output projection
    ffn = "ffn"  # after the feed-forward output projection
    both = "both"  # Houlsby et al. (2019)


class Nonlinearity(str, Enum):
    gelu = "gelu"
    relu = "relu"
    tanh = "tanh"


ACTIVATIONS = {Nonlinearity.gelu: nn.GELU, Nonlinearity.relu: nn.ReLU, Nonlinearity.tanh: nn.Tanh}


@dataclass
class AdapterConfig:
    """Size, placement and training of the adapters: `bottleneck` (a width) when set, else
    hidden size / `reduction_factor`."""

    bottleneck: int | None = None
    reduction_factor: float = 16.0
    placement: AdapterPlacement = AdapterPlacement.both
    nonlinearity: Nonlinearity = Nonlinearity.gelu
    train_layernorm: bool = True
    init_std: float = 1e-3

    def __post_init__(self) -> None:
        if self.bottleneck is not None and self.bottleneck < 1:
            raise LayerftError(f"adapter: bottleneck must be >= 1 or null, got {self.bottleneck}")
        if self.reduction_factor < 1:  # (1e-308 overflowed int() building the model)
            raise LayerftError(
                "adapter: reduction_factor must be >= 1 (the width is hidden size / factor; "
                f"tuning_mode.adapter.bottleneck sets any width), got {self.reduction_factor}"
            )
        if self.init_std < 0:  # torch's RuntimeError building the model, after stage 1
            raise LayerftError(f"adapter: init_std must be >= 0, got {self.init_std}")

    def width(self, hidden_size: int) -> int:
        """The bottleneck width for a model of `hidden_size`."""
        if self.bottleneck is not None:
            return self.bottleneck
        return max(1, int(hidden_size / self.reduction_factor))


class BottleneckAdapter(nn.Module):
    """x + up(act(down(x))), near the identity at initialisation (small weights, zero biases)."""

    def __init__(self, hidden_size: int, cfg: AdapterConfig) -> None:
        super().__init__()
        width = cfg.width(hidden_size)
        self.down = nn.Linear(hidden_size, width)
        self.act = ACTIVATIONS[cfg.nonlinearity]()
        self.up = nn.Linear(width, hidden_size)
        for linear in (self.down, self.up):
            nn.init.normal_(linear.weight, std=cfg.init_std)
            nn.init.zeros_(linear.bias)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return hidden + self.up(self.act(self.down(hidden)))  # (batch, seq, hidden)


def _output_blocks(layer: nn.Module, placement: AdapterPlacement) -> list[nn.Module]:
    """The sub-blocks whose `dense` + `dropout` output an adapter follows (BERT/RoBERTa/XLM-R)."""
    blocks = []
    if placement in (AdapterPlacement.attention, AdapterPlacement.both):
        blocks.append(getattr(getattr(layer, "attention", None), "output", None))
    if placement in (AdapterPlacement.ffn, AdapterPlacement.both):
        blocks.append(getattr(layer, "output", None))
    for block in blocks:
        if not isinstance(getattr(block, "dense", None), nn.Linear) or not isinstance(
            getattr(block, "dropout", None), nn.Dropout
        ):
            raise LayerftError(
                f"{type(layer).__name__} has no attention.output / output block with a dense "
                "projection and a dropout; adapters support BERT-, RoBERTa- and XLM-R-style layers"
            )
    return blocks


class _ApplyAdapter:
    """A forward hook that passes a module's output through `adapter`."""

    def __init__(self, adapter: BottleneckAdapter) -> None:
        self.adapter = adapter

    def __call__(
        self, module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor
    ) -> torch.Tensor:
        return self.adapter(output)


def add_adapters(
    layers: nn.ModuleList, indices: Iterable[int], cfg: AdapterConfig
) -> list[BottleneckAdapter]:
    """Add an adapter after the chosen projections of each layer in `indices`; return them."""
    added = []
    for i in indices:
        for block in _output_blocks(layers[i], cfg.placement):
            adapter = BottleneckAdapter(block.dense.out_features, cfg)
            # Registered on the block (so it is saved and moved with it), applied by a hook on
            # its dropout: the block then computes LayerNorm(adapter(dropout(dense(x))) + residual).
            block.adapter = adapter
            block.dropout.register_forward_hook(_ApplyAdapter(adapter))
            added.append(adapter)
    return added


def layernorm_parameters(layers: nn.ModuleList, indices: Iterable[int]) -> list[nn.Parameter]:
    """The LayerNorm parameters of the given layers (Houlsby adapters train them too)."""
    return [
        p
        for i in indices
        for module in layers[i].modules()
        if isinstance(module, nn.LayerNorm)
        for p in module.parameters()
    ]
