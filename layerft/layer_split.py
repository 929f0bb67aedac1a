"""The `layer_split` config group: which layers are "lower", how stage 1 reads them, what stage 2 does with them."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import torch
from omegaconf import MISSING

from layerft.errors import LayerftError
from layerft.heads import TaskModel, encoder_layers, truncate_encoder
from layerft.parts import EMBEDDINGS, HEAD, freeze_parts, layer_part


class HeadPlacement(str, Enum):
    top = "top"  # on the whole stack, layers above the split frozen (the paper)
    split = "split"  # on the last injected layer; layers above are dropped in stage 1


class InjectedPolicy(str, Enum):
    freeze = "freeze"
    train = "train"
    scale = "scale"  # train with lr x stage2_lr_multiplier


@dataclass
class LayerSplitConfig:
    """Schema of one split option; set exactly one of `num_lower` and `fraction`."""

    name: str = MISSING
    num_lower: int | None = None
    fraction: float | None = None
    stage1_head: HeadPlacement = HeadPlacement.top
    stage1_train_embeddings: bool = True
    stage2_policy: InjectedPolicy = InjectedPolicy.freeze
    stage2_lr_multiplier: float = 1.0
    transplant_embeddings: bool = False

    def __post_init__(self) -> None:
        where = f"layer_split '{self.name}'"
        if (self.num_lower is None) == (self.fraction is None):
            raise LayerftError(
                f"{where}: set exactly one of layer_split.num_lower, layer_split.fraction"
            )
        if self.num_lower is not None and self.num_lower < 1:
            raise LayerftError(f"{where}: num_lower must be >= 1, got {self.num_lower}")
        if self.fraction is not None and not 0 < self.fraction <= 1:
            raise LayerftError(f"{where}: fraction must be in (0, 1], got {self.fraction}")
        if self.stage2_lr_multiplier <= 0:
            raise LayerftError(
                f"{where}: stage2_lr_multiplier must be > 0, got {self.stage2_lr_multiplier}"
            )


def resolve_num_lower(cfg: LayerSplitConfig, depth: int) -> int:
    """How many lower layers the split takes on a `depth`-layer encoder (fractions round half up, min 1)."""
    if cfg.num_lower is not None:
        if cfg.num_lower > depth:
            raise LayerftError(
                f"layer_split.num_lower={cfg.num_lower} exceeds the model's {depth} layers"
            )
        return cfg.num_lower
    assert cfg.fraction is not None
    return max(1, min(depth, int(cfg.fraction * depth + 0.5)))


def injected_parts(cfg: LayerSplitConfig, num_lower: int) -> list[str]:
    """Parts that stage 2 receives from stage 1."""
    parts = [layer_part(i) for i in range(num_lower)]
    return [EMBEDDINGS, *parts] if cfg.transplant_embeddings else parts


def prepare_injection_model(model: TaskModel, cfg: LayerSplitConfig, num_lower: int) -> list[str]:
    """Shape the stage-1 model for the split and return the parts stage 1 trains."""
    if cfg.stage1_head == HeadPlacement.split:
        truncate_encoder(model.backbone, num_lower)
    trained = [layer_part(i) for i in range(num_lower)] + [HEAD]
    return [EMBEDDINGS, *trained] if cfg.stage1_train_embeddings else trained


@dataclass
class InjectedWeights:
    """What stage 1 hands to stage 2: copies of the lower layers (and embeddings if transplanted)."""

    layers: list[dict[str, torch.Tensor]]
    embeddings: dict[str, torch.Tensor] | None


def extract_injected(model: TaskModel, cfg: LayerSplitConfig, num_lower: int) -> InjectedWeights:
    """Copy the injected weights out of a trained stage-1 model."""
    layers = encoder_layers(model.backbone)
    copies = [
        {k: v.detach().clone() for k, v in layers[i].state_dict().items()} for i in range(num_lower)
    ]
    embeddings = None
    if cfg.transplant_embeddings:
        embeddings = {
            k: v.detach().clone() for k, v in model.backbone.embeddings.state_dict().items()
        }
    return InjectedWeights(layers=copies, embeddings=embeddings)


def transplant(model: TaskModel, injected: InjectedWeights) -> None:
    """Load the injected weights into a fresh model's lower layers (strict: shapes and names must match)."""
    layers = encoder_layers(model.backbone)
    for i, state in enumerate(injected.layers):
        layers[i].load_state_dict(state, strict=True)
    if injected.embeddings is not None:
        model.backbone.embeddings.load_state_dict(injected.embeddings, strict=True)


def frozen_injected_layers(cfg: LayerSplitConfig, injected: InjectedWeights) -> set[int]:
    """Indices of the layers stage 2 must leave frozen (tuning modes add nothing to them)."""
    if cfg.stage2_policy == InjectedPolicy.freeze:
        return set(range(len(injected.layers)))
    return set()


def apply_injected_policy(
    model: TaskModel, cfg: LayerSplitConfig, parts: list[str]
) -> dict[str, float]:
    """Apply stage 2's policy to the injected parts after the tuning mode; return lr multipliers.

    `freeze` wins over any tuning mode; `train` and `scale` leave the parts as the mode set them.
    """
    if cfg.stage2_policy == InjectedPolicy.freeze:
        freeze_parts(model, parts)
        return {}
    if cfg.stage2_policy == InjectedPolicy.scale:
        return dict.fromkeys(parts, cfg.stage2_lr_multiplier)
    return {}
