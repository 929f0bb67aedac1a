"""Named parts of a TaskModel (embeddings, layer.<i>, adapters, head), selected by module and index, never by substring.

Serves no config group: `layerft/layer_split.py`, `layerft/tuning_mode.py` and
`layerft/lr_schedule.py` select parameters by these parts.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import TypeVar

from torch import nn

from layerft.adapters import BottleneckAdapter
from layerft.errors import LayerftError
from layerft.heads import TaskModel, encoder_layers

EMBEDDINGS = "embeddings"
ADAPTERS = "adapters"  # Houlsby adapters and LoRA matrices, wherever they sit
HEAD = "head"
OTHER = "other"
T = TypeVar("T")


def layer_part(index: int) -> str:
    """The part name of encoder layer `index` (0 is the lowest)."""
    return f"layer.{index}"


def parameter_parts(model: TaskModel) -> dict[str, str]:
    """Map every parameter name to its part; anything outside embeddings, layers and head is `other`."""
    owner: dict[int, str] = {}
    for part, module in part_modules(model).items():
        for param in module.parameters():
            owner[id(param)] = part
    for param in adapter_parameters(model):  # added inside layers, but a part of their own
        owner[id(param)] = ADAPTERS
    return {name: owner.get(id(p), OTHER) for name, p in model.named_parameters()}


def adapter_parameters(model: nn.Module) -> list[nn.Parameter]:
    """Parameters of layerft adapters and of peft tuner layers (LoRA A/B), found by module type."""
    # Here, not above: peft takes seconds to import, and composing a config imports this module.
    from peft.tuners.tuners_utils import BaseTunerLayer

    params: list[nn.Parameter] = []
    for module in model.modules():
        if isinstance(module, BottleneckAdapter):
            params.extend(module.parameters())
        elif isinstance(module, BaseTunerLayer):
            for name in module.adapter_layer_names:
                params.extend(getattr(module, name).parameters())
    return params


def layer_adapters(part: str) -> str:
    """The lr-multiplier key of the adapters and LoRA matrices inside layer part `part`
    (`layer.0.adapters`): a split that scales an injected layer scales what a mode added to it."""
    return f"{part}.{ADAPTERS}"


def adapter_layers(model: TaskModel) -> dict[int, str]:
    """id(parameter) -> `layer_adapters` key, for adapter parameters inside an encoder layer."""
    return {
        id(param): layer_adapters(layer_part(i))
        for i, layer in enumerate(encoder_layers(model.backbone))
        for param in adapter_parameters(layer)
    }


def part_modules(model: TaskModel) -> dict[str, nn.Module]:
    """The module behind each part, bottom to top."""
    modules: dict[str, nn.Module] = {EMBEDDINGS: model.backbone.embeddings}
    for i, layer in enumerate(encoder_layers(model.backbone)):
        modules[layer_part(i)] = layer
    modules[HEAD] = model.head
    return modules


def set_trainable(model: TaskModel, parts: Iterable[str]) -> None:
    """Train exactly the parameters of `parts`; fail on a part that matches no parameter."""
    wanted = set(parts)
    parts_of = parameter_parts(model)
    found = Counter(parts_of.values())
    missing = sorted(p for p in wanted if found[p] == 0)
    if missing:
        raise LayerftError(f"no parameter belongs to part(s) {missing}; parts are {sorted(found)}")
    for name, param in model.named_parameters():
        param.requires_grad_(parts_of[name] in wanted)


def freeze_parts(model: TaskModel, parts: Iterable[str]) -> None:
    """Freeze every parameter of `parts`, whatever trained them before."""
    frozen = set(parts)
    parts_of = parameter_parts(model)
    for name, param in model.named_parameters():
        if parts_of[name] in frozen:
            param.requires_grad_(False)


def count_parameters(model: nn.Module, parts_of: dict[str, str]) -> dict[str, int]:
    """Total and trainable parameter counts, overall and per part (`trainable_params/<part>`)."""
    counts: dict[str, int] = {"total_params": 0, "trainable_params": 0}
    per_part: Counter[str] = Counter()
    for name, param in model.named_parameters():
        counts["total_params"] += param.numel()
        if param.requires_grad:
            counts["trainable_params"] += param.numel()
            per_part[parts_of.get(name, OTHER)] += param.numel()
    # Every run reports the same part keys (adapters 0 when a mode adds none), bottom to top.
    present = dict.fromkeys([EMBEDDINGS, ADAPTERS, HEAD, *parts_of.values()])
    for part in bottom_up(present):
        counts[f"trainable_params/{part}"] = per_part[part]
    return counts


def bottom_up(values: Mapping[str, T]) -> dict[str, T]:
    """`values` keyed by part (`layer.0.adapters` too) in the order parts are counted: embeddings,
    the layers bottom up (each layer's scaled adapters after it), adapters, head, other."""

    def rank(part: str) -> tuple[int, int, str]:
        base = part.removesuffix(f".{ADAPTERS}")
        if base.startswith("layer.") and base[6:].isdigit():
            return (1, int(base[6:]), part)
        return ({EMBEDDINGS: 0, ADAPTERS: 2, HEAD: 3}.get(base, 4), 0, part)

    return dict(sorted(values.items(), key=lambda item: rank(item[0])))
