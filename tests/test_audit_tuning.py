"""Lines a mutation audit of the tuning modes found unguarded: LoRA's scaling (alpha / rank), its
zero-initialised B, its dropout, the default of `layers`, an adapter's placement on one block
alone, its refusal of a layer it cannot follow, and its defaults (GELU, init std 1e-3) (each test
names the mutation it kills), and LoRA settings that cannot train, now refused at composition."""

from __future__ import annotations

import re

import pytest
import torch
from compose import compose_run

from layerft.adapters import (
    AdapterConfig,
    AdapterPlacement,
    BottleneckAdapter,
    Nonlinearity,
    add_adapters,
)
from layerft.errors import LayerftError
from layerft.heads import TaskModel, encoder_layers
from layerft.stage_models import build_target_model
from layerft.tiny_model import TinyConfig, build_tiny_backbone
from layerft.tuning_mode import (
    LayerScope,
    LoraSettings,
    TuningMethod,
    TuningModeConfig,
    adapted_layers,
)

TINY = ("model=tiny", "tracker=none", "injection_task=none")


def build(mode: str, *extra: str) -> TaskModel:
    model, _ = build_target_model(compose_run(*TINY, f"tuning_mode={mode}", *extra), None)
    return model


def lora_query(model: TaskModel, layer: int) -> torch.nn.Module:
    """The peft LoRA layer that wraps encoder layer `layer`'s attention query projection."""
    suffix = f"encoder.layer.{layer}.attention.self.query"
    return next(m for n, m in model.backbone.named_modules() if n.endswith(suffix))


def tiny_layers(num_layers: int = 2) -> torch.nn.ModuleList:
    config = TinyConfig(hidden_size=8, num_layers=num_layers, num_heads=2, intermediate_size=16)
    return encoder_layers(build_tiny_backbone(config, vocab_size=20))


# --- LoRA ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "scaling"),
    [((), 16.0 / 8), (("tuning_mode.lora.rank=4", "tuning_mode.lora.alpha=2"), 2.0 / 4)],
)
def test_lora_adds_its_update_scaled_by_alpha_over_rank(extra, scaling) -> None:
    """Kills `lora_alpha=cfg.lora.alpha` -> `cfg.lora.rank` (an update scaled by 1, whatever alpha
    says) and LoraSettings' alpha default 16 -> 8 (lora.yaml documents rank 8, alpha 16)."""
    torch.manual_seed(0)
    query = lora_query(build("lora", *extra).eval(), 3)
    a, b = query.lora_A["default"].weight, query.lora_B["default"].weight
    with torch.no_grad():
        b.normal_()
        x = torch.randn(2, 5, a.shape[1])
        update = query(x) - query.base_layer(x)
        torch.testing.assert_close(update, scaling * x @ a.T @ b.T, rtol=1e-4, atol=1e-5)


def test_lora_starts_as_the_pretrained_model() -> None:
    """Kills LoRA initialised with a random B (`init_lora_weights=False`): stage 2 then starts from
    a perturbed backbone, not the pre-trained (and transplanted) weights."""
    torch.manual_seed(0)
    model = build("lora").eval()
    for name, param in model.named_parameters():
        if "lora_B" in name:
            assert not param.any(), name
    inputs = {"input_ids": torch.randint(5, 200, (2, 9))}
    with torch.no_grad():
        adapted = model.backbone(**inputs).last_hidden_state
        with model.backbone.disable_adapter():
            plain = model.backbone(**inputs).last_hidden_state
    assert torch.equal(adapted, plain)


def test_lora_dropout_follows_its_setting() -> None:
    """Kills `lora_dropout=cfg.lora.dropout` -> 0.0 and LoraSettings' dropout default 0.1 -> 0.0."""

    def rate(*extra: str) -> float:  # peft puts an Identity where the dropout is 0
        return getattr(lora_query(build("lora", *extra), 2).lora_dropout["default"], "p", 0.0)

    assert rate() == 0.1
    assert rate("tuning_mode.lora.dropout=0.3") == 0.3


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("tuning_mode.lora.alpha=0", "tuning_mode.lora.alpha must be > 0, got 0.0"),
        ("tuning_mode.lora.dropout=1.5", "tuning_mode.lora.dropout must be in [0, 1), got 1.5"),
        ("tuning_mode.lora.dropout=-0.1", "tuning_mode.lora.dropout must be in [0, 1), got -0.1"),
    ],
)
def test_lora_settings_that_cannot_train_are_refused_at_composition(override, message) -> None:
    """A bug this audit fixed: LoraSettings checked rank and target_modules only. `dropout=1.5`
    composed, trained stage 1, then peft refused it when stage 2 was built; `alpha=0` scaled every
    LoRA update to zero, so the matrices never moved and the run trained its head alone."""
    with pytest.raises(LayerftError, match=f"^{re.escape(message)}"):
        compose_run(*TINY, "tuning_mode=lora", override)
    assert LoraSettings(alpha=0.5, dropout=0.0).dropout == 0.0  # the bounds' other sides pass


def test_a_mode_that_reads_layers_adapts_every_layer_unless_told_otherwise() -> None:
    """Kills TuningModeConfig's `layers` default all -> top: an option of a method that reads
    `layers` and does not set it (top_adapter and layerwise_adapter both do) adapted one layer."""
    cfg = TuningModeConfig(name="mine", method=TuningMethod.adapter)
    assert cfg.layers == LayerScope.all
    assert adapted_layers(cfg, 4, frozen={0}) == [1, 2, 3]


# --- adapters ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("placement", "attention", "ffn"),
    [
        (AdapterPlacement.attention, True, False),
        (AdapterPlacement.ffn, False, True),
        (AdapterPlacement.both, True, True),
    ],
)
def test_an_adapter_goes_after_the_block_its_placement_names(placement, attention, ffn) -> None:
    """Kills the attention placement putting its adapter after the feed-forward output and the
    ffn placement putting it after the attention output (both blocks output the hidden size, so
    parameter counts cannot tell)."""
    layers = tiny_layers()
    added = add_adapters(layers, [1], AdapterConfig(bottleneck=2, placement=placement))
    assert len(added) == attention + ffn
    assert hasattr(layers[1].attention.output, "adapter") == attention
    assert hasattr(layers[1].output, "adapter") == ffn
    assert not hasattr(layers[0].attention.output, "adapter")
    assert not hasattr(layers[0].output, "adapter")
    # The adapter is in the forward pass of its own block: its up-projection's bias shifts it.
    block = layers[1].attention.output if attention else layers[1].output
    with torch.no_grad():
        block.adapter.up.weight.zero_()
        block.adapter.up.bias.fill_(1.0)
    x = torch.randn(1, 3, 8)
    assert torch.equal(block.dropout.eval()(x), x + 1.0)


def test_adapters_refuse_a_layer_they_cannot_follow() -> None:
    """Kills `not isinstance(dense) or not isinstance(dropout)` -> `and`: a block with a dense
    projection but no dropout got an adapter that no hook ever applied (a silent no-op)."""
    layers = tiny_layers()
    layers[1].output.dropout = torch.nn.Identity()
    message = (
        "^BertLayer has no attention.output / output block with a dense projection and a "
        "dropout; adapters support BERT-, RoBERTa- and XLM-R-style layers$"
    )
    with pytest.raises(LayerftError, match=message):
        add_adapters(layers, [1], AdapterConfig(bottleneck=2, placement=AdapterPlacement.ffn))
    # Only the blocks the placement names are checked.
    added = add_adapters(
        layers, [1], AdapterConfig(bottleneck=2, placement=AdapterPlacement.attention)
    )
    assert len(added) == 1


def test_an_adapters_nonlinearity_defaults_to_gelu_and_each_name_maps_to_its_own() -> None:
    """Kills AdapterConfig's nonlinearity default gelu -> relu and `tanh` mapped to another
    activation (Houlsby et al. and adapter-bert use GELU)."""
    assert isinstance(BottleneckAdapter(8, AdapterConfig(bottleneck=2)).act, torch.nn.GELU)
    for name, kind in (("gelu", torch.nn.GELU), ("relu", torch.nn.ReLU), ("tanh", torch.nn.Tanh)):
        cfg = AdapterConfig(bottleneck=2, nonlinearity=Nonlinearity(name))
        assert type(BottleneckAdapter(8, cfg).act) is kind, name


def test_an_adapters_weights_default_to_an_init_std_of_1e_3() -> None:
    """Kills AdapterConfig's init_std default 1e-3 -> 1e-2: adapters that start further from the
    identity than Houlsby's near-zero initialisation."""
    torch.manual_seed(0)
    adapter = BottleneckAdapter(256, AdapterConfig(bottleneck=64))
    for linear in (adapter.down, adapter.up):
        assert linear.weight.std().item() == pytest.approx(1e-3, rel=0.05)
        assert not linear.bias.any()
