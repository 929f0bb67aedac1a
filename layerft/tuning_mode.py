"""The `tuning_mode` config group: which parts of the stage-2 model train, and what modules a mode adds.

Modes add nothing to a layer the layer split freezes (adapters and LoRA go only into the other
layers), and the split's policy is applied after the mode (`layer_split.apply_injected_policy`:
freeze wins over a mode that trains every weight or bias), so frozen injected layers stay frozen.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from types import MappingProxyType

from omegaconf import MISSING
from torch import nn

from layerft.adapters import AdapterConfig, add_adapters, layernorm_parameters
from layerft.errors import LayerftError, first_line
from layerft.heads import TaskModel, encoder_layers
from layerft.parts import ADAPTERS, HEAD, parameter_parts, set_trainable


class TuningMethod(str, Enum):
    full = "full"
    frozen = "frozen"  # head only
    adapter = "adapter"  # Houlsby bottleneck adapters (+ head, + LayerNorms if chosen)
    lora = "lora"  # peft LoRA (+ head)
    bitfit = "bitfit"  # biases (+ head)

    @property
    def reads_layers(self) -> bool:
        """Whether the method reads `tuning_mode.layers` (its entry in TUNING_METHODS says)."""
        return TUNING_METHODS[self].reads_layers

    @property
    def settings(self) -> frozenset[str]:
        """The settings nodes of TuningModeConfig it reads (`lora`, `adapter`; its entry says)."""
        return TUNING_METHODS[self].settings


class LayerScope(str, Enum):
    all = "all"  # every encoder layer
    top = "top"  # the last encoder layer only


@dataclass
class LoraSettings:
    """LoRA through peft; `target_modules` are module names inside each encoder layer."""

    rank: int = 8
    alpha: float = 16.0
    dropout: float = 0.1
    target_modules: list[str] = field(default_factory=lambda: ["query", "value"])

    def __post_init__(self) -> None:
        if self.rank < 1:
            raise LayerftError(f"tuning_mode.lora: rank must be >= 1, got {self.rank}")
        if self.alpha <= 0:  # alpha 0 scales every update to nothing: LoRA would never train
            raise LayerftError(f"tuning_mode.lora: alpha must be > 0, got {self.alpha}")
        if not 0 <= self.dropout < 1:  # else peft refused it at stage 2, after stage 1 trained
            raise LayerftError(f"tuning_mode.lora: dropout must be in [0, 1), got {self.dropout}")
        if not self.target_modules:
            raise LayerftError("tuning_mode.lora: target_modules must name at least one module")


@dataclass
class TuningModeConfig:
    """Schema of one tuning mode option."""

    name: str = MISSING
    method: TuningMethod = MISSING
    layers: LayerScope = LayerScope.all  # where adapter / lora modules go
    adapter: AdapterConfig = field(default_factory=AdapterConfig)
    lora: LoraSettings = field(default_factory=LoraSettings)

    def scale_setting(self) -> str:
        """The setting scaling what the mode's modules add to a layer's output, as an error about
        a non-finite loss names it ("" for a mode that adds none)."""
        if self.method == TuningMethod.lora:
            alpha, rank = self.lora.alpha, self.lora.rank
            return f"tuning_mode.lora.alpha={alpha:g} (LoRA's output is scaled by alpha / rank = {alpha / rank:g})"
        if self.method == TuningMethod.adapter:
            return f"tuning_mode.adapter.init_std={self.adapter.init_std:g} (the adapters' initial weights' std)"
        return ""

    def init_setting(self) -> str:
        """The mode's setting that the model as built already depends on, as an error about a
        non-finite loss before any update names it: none for LoRA, whose B matrices start at zero
        (peft's default), so it adds nothing there whatever its alpha."""
        return self.scale_setting() if self.method == TuningMethod.adapter else ""


def _layer_indices(model: TaskModel, cfg: TuningModeConfig, frozen: set[int]) -> list[int]:
    if not cfg.method.reads_layers:  # else a grid over `layers` would merge its runs as one
        raise LayerftError(
            f"layerft/tuning_mode.py: method {cfg.method.value} reads tuning_mode.layers; set "
            "reads_layers=True in its TUNING_METHODS entry"
        )
    return adapted_layers(cfg, len(encoder_layers(model.backbone)), frozen)


def adapted_layers(cfg: TuningModeConfig, depth: int, frozen: set[int]) -> list[int]:
    """The layers an adapter or LoRA mode adds modules to on a `depth`-layer encoder: its `layers`
    minus those the split freezes (an error when none is left)."""
    wanted = [depth - 1] if cfg.layers == LayerScope.top else list(range(depth))
    indices = [i for i in wanted if i not in frozen]
    if not indices:
        raise LayerftError(
            f"tuning_mode={cfg.name}: every layer it would adapt ({wanted}) is frozen by the layer "
            "split; choose another layer_split.stage2.policy or tuning mode"
        )
    return indices


def _full(model: TaskModel, cfg: TuningModeConfig, frozen: set[int]) -> None:
    set_trainable(model, set(parameter_parts(model).values()))


def _frozen(model: TaskModel, cfg: TuningModeConfig, frozen: set[int]) -> None:
    set_trainable(model, [HEAD])


def _adapter(model: TaskModel, cfg: TuningModeConfig, frozen: set[int]) -> None:
    layers = encoder_layers(model.backbone)
    indices = _layer_indices(model, cfg, frozen)
    add_adapters(layers, indices, cfg.adapter)
    set_trainable(model, [ADAPTERS, HEAD])
    if cfg.adapter.train_layernorm:
        for param in layernorm_parameters(layers, indices):
            param.requires_grad_(True)


def _lora(model: TaskModel, cfg: TuningModeConfig, frozen: set[int]) -> None:
    # Here, not above: peft takes seconds to import, and composing a config imports this module.
    from peft import LoraConfig as PeftLoraConfig
    from peft import get_peft_model

    config = PeftLoraConfig(
        r=cfg.lora.rank,
        lora_alpha=cfg.lora.alpha,
        lora_dropout=cfg.lora.dropout,
        target_modules=list(cfg.lora.target_modules),
        layers_to_transform=_layer_indices(model, cfg, frozen),
        layers_pattern="layer",
    )
    try:
        model.backbone = get_peft_model(model.backbone, config)
    except ValueError as err:  # peft: target modules not found in the base model
        raise LayerftError(f"tuning_mode.lora: {first_line(err)}") from err
    set_trainable(model, [ADAPTERS, HEAD])


def _bitfit(model: TaskModel, cfg: TuningModeConfig, frozen: set[int]) -> None:
    set_trainable(model, [HEAD])
    biases = [
        m.bias
        for m in model.backbone.modules()
        if isinstance(getattr(m, "bias", None), nn.Parameter)
    ]
    for bias in biases:
        bias.requires_grad_(True)


@dataclass(frozen=True)
class Method:
    """A tuning method: the function that adds its modules and sets which parameters train,
    whether that reads `tuning_mode.layers` (through `adapted_layers`), and which settings nodes
    (SETTINGS_NODES) it reads. A method that does not read `layers` is one run whatever `layers`
    says: a grid over it trains once, and the split is not checked against it; a node it does not
    read is an unread setting (`layerft/unread_keys.py`): warned about, and no part of the result
    key, so a grid over `lora.rank` trains it once."""

    apply: Callable[[TaskModel, TuningModeConfig, set[int]], None]
    reads_layers: bool = False
    settings: frozenset[str] = frozenset()


# TuningModeConfig's per-method settings nodes, each with what it configures (as warnings say).
# A new node is also a line in LATER_KEYS and in AT_DEFAULT_WHEN_UNREAD (README: "A key added
# to the config", "Schedules").
SETTINGS_NODES: Mapping[str, str] = MappingProxyType({"lora": "LoRA", "adapter": "adapter"})


TUNING_METHODS: Mapping[TuningMethod, Method] = MappingProxyType(
    {
        TuningMethod.full: Method(_full),
        TuningMethod.frozen: Method(_frozen),
        TuningMethod.adapter: Method(_adapter, reads_layers=True, settings=frozenset({"adapter"})),
        TuningMethod.lora: Method(_lora, reads_layers=True, settings=frozenset({"lora"})),
        TuningMethod.bitfit: Method(_bitfit),
    }
)
# A new method without its function here would pass config validation and fail after stage 1.
if set(TUNING_METHODS) != set(TuningMethod):
    raise LayerftError(
        "layerft/tuning_mode.py: TUNING_METHODS has no entry for method(s) "
        + ", ".join(sorted(m.value for m in set(TuningMethod) - set(TUNING_METHODS)))
        + "; add its Method: the function that sets which parameters train, whether it "
        "reads tuning_mode.layers, and the settings nodes (lora, adapter) it reads"
    )
if unknown := {n for m in TUNING_METHODS.values() for n in m.settings} - set(SETTINGS_NODES):
    raise LayerftError(
        f"layerft/tuning_mode.py: a TUNING_METHODS entry reads settings {sorted(unknown)}, which "
        f"are not in SETTINGS_NODES ({', '.join(SETTINGS_NODES)}); add a new node there and as a "
        "field of TuningModeConfig"
    )


def apply_tuning_mode(model: TaskModel, cfg: TuningModeConfig, frozen_layers: set[int]) -> None:
    """Add the mode's modules (outside `frozen_layers`) and set which parameters train."""
    TUNING_METHODS[cfg.method].apply(model, cfg, frozen_layers)
