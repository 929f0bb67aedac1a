"""The `layer_split` config group: which layers are "lower", how stage 1 reads them, what stage 2 does with them."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import Enum
from fractions import Fraction

import torch
from omegaconf import MISSING

from layerft.errors import LayerftError
from layerft.heads import TaskModel, encoder_layers, truncate_encoder
from layerft.parts import EMBEDDINGS, HEAD, freeze_parts, layer_adapters, layer_part


class HeadPlacement(str, Enum):
    top = "top"  # on the whole stack, layers above the split frozen (the paper)
    split = "split"  # on the last injected layer; layers above are dropped in stage 1


class InjectedPolicy(str, Enum):
    freeze = "freeze"
    train = "train"
    scale = "scale"  # train with lr x stage2.lr_multiplier


@dataclass
class Stage1Split:
    """What stage 1 trains: everything its result (the injected weights) depends on from the split.

    Set exactly one of `num_lower` and `fraction`.
    """

    num_lower: int | None = None
    fraction: float | None = None
    head: HeadPlacement = HeadPlacement.top
    train_embeddings: bool = True

    def __post_init__(self) -> None:
        if (self.num_lower is None) == (self.fraction is None):
            raise LayerftError(
                "layer_split: set exactly one of num_lower, fraction (got num_lower="
                f"{self.num_lower}, fraction={self.fraction}; to use a fraction, add "
                "layer_split.stage1.num_lower=null)"
            )
        if self.num_lower is not None and self.num_lower < 1:
            raise LayerftError(f"layer_split: num_lower must be >= 1, got {self.num_lower}")
        if self.fraction is not None and not 0 < self.fraction <= 1:
            raise LayerftError(f"layer_split: fraction must be in (0, 1], got {self.fraction}")


@dataclass
class Stage2Split:
    """What stage 2 does with the injected weights; no part of it changes stage 1's result."""

    policy: InjectedPolicy = InjectedPolicy.freeze
    lr_multiplier: float = 1.0  # for policy=scale
    transplant_embeddings: bool = False

    def __post_init__(self) -> None:
        if self.lr_multiplier <= 0:
            raise LayerftError(f"layer_split: lr_multiplier must be > 0, got {self.lr_multiplier}")


@dataclass
class LayerSplitConfig:
    """Schema of one split option: the stage-1 part (the key of a stored stage-1 result) and the
    stage-2 part."""

    name: str = MISSING
    stage1: Stage1Split = MISSING
    stage2: Stage2Split = field(default_factory=Stage2Split)


def resolve_num_lower(cfg: Stage1Split, depth: int) -> int:
    """How many lower layers the split takes on a `depth`-layer encoder (fractions round half up, min 1)."""
    if cfg.num_lower is not None:
        if cfg.num_lower > depth:
            raise LayerftError(
                f"layer_split.stage1.num_lower={cfg.num_lower} exceeds the model's {depth} layers"
            )
        return cfg.num_lower
    assert cfg.fraction is not None
    # Half up on the decimal the user wrote (0.58 of 25 is 14.5 -> 15; as floats it is 14.4999...).
    exact = Fraction(repr(float(cfg.fraction))) * depth
    return max(1, min(depth, math.floor(exact + Fraction(1, 2))))


def injected_parts(cfg: Stage2Split, injected: InjectedWeights) -> list[str]:
    """Parts that stage 2 receives from stage 1: its lower layers, and the embeddings if stage 1
    trained them and the split transplants them (else they are pre-trained, not injected)."""
    parts = [layer_part(i) for i in range(len(injected.layers))]
    taken = cfg.transplant_embeddings and injected.embeddings is not None
    return [EMBEDDINGS, *parts] if taken else parts


def prepare_injection_model(model: TaskModel, cfg: Stage1Split, num_lower: int) -> list[str]:
    """Shape the stage-1 model for the split and return the parts stage 1 trains."""
    if cfg.head == HeadPlacement.split:
        truncate_encoder(model.backbone, num_lower)
    trained = [layer_part(i) for i in range(num_lower)] + [HEAD]
    return [EMBEDDINGS, *trained] if cfg.train_embeddings else trained


@dataclass
class InjectedWeights:
    """What stage 1 hands to stage 2: copies of the lower layers and of the embeddings (stage 2's
    `transplant_embeddings` decides whether it takes the latter)."""

    layers: list[dict[str, torch.Tensor]]
    embeddings: dict[str, torch.Tensor] | None  # None: stage 1 left them as pre-trained

    def flat(self) -> dict[str, torch.Tensor]:
        """The weights under the names a stored stage 1's weights file holds them by:
        `layer.<i>.<name>` and `embeddings.<name>`."""
        tensors = {
            f"layer.{i}.{name}": tensor.contiguous()
            for i, state in enumerate(self.layers)
            for name, tensor in state.items()
        }
        for name, tensor in (self.embeddings or {}).items():
            tensors[f"embeddings.{name}"] = tensor.contiguous()
        return tensors

    @classmethod
    def from_flat(cls, tensors: dict[str, torch.Tensor], num_lower: int) -> InjectedWeights:
        """The weights `flat()` named, of `num_lower` layers."""
        layers: list[dict[str, torch.Tensor]] = [{} for _ in range(num_lower)]
        embeddings: dict[str, torch.Tensor] = {}
        for name, tensor in tensors.items():
            part, rest = name.split(".", 1)
            if part == "embeddings":
                embeddings[rest] = tensor
            else:
                index, param = rest.split(".", 1)
                layers[int(index)][param] = tensor
        return cls(layers=layers, embeddings=embeddings or None)


def extract_injected(model: TaskModel, cfg: Stage1Split, num_lower: int) -> InjectedWeights:
    """Copy the injected weights out of a trained stage-1 model (the embeddings if it trained them)."""
    layers = encoder_layers(model.backbone)
    copies = [
        {k: v.detach().clone() for k, v in layers[i].state_dict().items()} for i in range(num_lower)
    ]
    embeddings = None
    if cfg.train_embeddings:
        embeddings = {
            k: v.detach().clone() for k, v in model.backbone.embeddings.state_dict().items()
        }
    return InjectedWeights(layers=copies, embeddings=embeddings)


def transplant(model: TaskModel, injected: InjectedWeights, cfg: Stage2Split) -> None:
    """Load the injected weights into a fresh model's lower layers, and its embeddings if the
    split transplants them (strict: shapes and names must match)."""
    layers = encoder_layers(model.backbone)
    for i, state in enumerate(injected.layers):
        layers[i].load_state_dict(state, strict=True)
    if cfg.transplant_embeddings and injected.embeddings is not None:  # None: pre-trained as is
        model.backbone.embeddings.load_state_dict(injected.embeddings, strict=True)


def frozen_injected_layers(cfg: Stage2Split, num_injected: int) -> set[int]:
    """Indices of the layers stage 2 must leave frozen (tuning modes add nothing to them), of the
    `num_injected` lower layers it receives."""
    if cfg.policy == InjectedPolicy.freeze:
        return set(range(num_injected))
    return set()


def apply_injected_policy(model: TaskModel, cfg: Stage2Split, parts: list[str]) -> dict[str, float]:
    """Apply stage 2's policy to the injected parts after the tuning mode; return lr multipliers.

    `freeze` wins over any tuning mode; `train` and `scale` leave the parts as the mode set them,
    and `scale` slows the adapters or LoRA matrices a mode put inside them too.
    """
    if cfg.policy == InjectedPolicy.freeze:
        freeze_parts(model, parts)
        return {}
    if cfg.policy == InjectedPolicy.scale:  # with what a tuning mode added to those layers
        return dict.fromkeys([*parts, *map(layer_adapters, parts)], cfg.lr_multiplier)
    return {}
