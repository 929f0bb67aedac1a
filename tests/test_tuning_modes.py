"""Tuning modes: the exact trainable set per mode and split policy, adapters, LoRA, BitFit."""

from __future__ import annotations

import pytest
import torch
from compose import compose_config, compose_run
from conftest import assert_a_new_member_stops_the_import

from layerft import tuning_mode
from layerft.adapters import AdapterConfig, BottleneckAdapter
from layerft.config import resolve_config
from layerft.errors import LayerftError
from layerft.layer_split import extract_injected
from layerft.model_limits import check_mode_fits_split
from layerft.parts import count_parameters, parameter_parts
from layerft.stage_data import load_stage_data
from layerft.stage_models import build_injection_model, build_target_model
from layerft.tuning_mode import TuningMethod
from layerft.unread_keys import unread_settings

TINY = ("model=tiny", "tracker=none")
H, FF, L = 32, 64, 4  # tiny: hidden, feed-forward, layers
LN = 2 * H  # one LayerNorm: weight + bias
ADAPTER = (H * 2 + 2) + (2 * H + H)  # down (H->2) + up (2->H): reduction 16 -> width 2
LORA = 8 * H + H * 8  # one rank-8 LoRA pair on an HxH projection
HEAD = (H * H + H) + (H * 2 + 2)  # dense + classifier for 2 labels


def build(mode: str, *extra: str, inject: bool = True):
    cfg = compose_run(
        *TINY, f"tuning_mode={mode}", *extra, *(() if inject else ("injection_task=none",))
    )
    injected = None
    if inject:
        stage1, n = build_injection_model(cfg)
        injected = extract_injected(stage1, cfg.layer_split.stage1, n)
    model, _ = build_target_model(cfg, injected)
    return model


def trainable(model: torch.nn.Module) -> dict[str, int]:
    parts = parameter_parts(model)
    counts = count_parameters(model, parts)
    return {
        k.split("/")[1]: v for k, v in counts.items() if k.startswith("trainable_params/") and v
    }


def layer_bias_count() -> int:
    # q, k, v, attention out (H each), LayerNorm x2 (H each), intermediate (FF), output (H)
    return 4 * H + 2 * H + FF + H


# mode, extra overrides, injection?, exact trainable parameter count per part.
CASES = [
    # lower1 + freeze (default): layer 0 stays frozen whatever the mode, and gets no modules.
    ("top_adapter", (), True, {"layer.3": 2 * LN, "adapters": 2 * ADAPTER, "head": HEAD}),
    ("layerwise_adapter", (), True, {**{f"layer.{i}": 2 * LN for i in (1, 2, 3)}, "adapters": 3 * 2 * ADAPTER, "head": HEAD}),
    ("lora", (), True, {"adapters": 3 * 2 * LORA, "head": HEAD}),
    ("bitfit", (), True, {"embeddings": H, **{f"layer.{i}": layer_bias_count() for i in (1, 2, 3)}, "head": HEAD}),
    # train policy: injected layer 0 is treated like the others.
    ("layerwise_adapter", ("layer_split.stage2.policy=train",), True,
     {**{f"layer.{i}": 2 * LN for i in range(L)}, "adapters": L * 2 * ADAPTER, "head": HEAD}),
    ("lora", ("layer_split.stage2.policy=scale",), True, {"adapters": L * 2 * LORA, "head": HEAD}),
    ("bitfit", ("layer_split.stage2.policy=train",), True,
     {"embeddings": H, **{f"layer.{i}": layer_bias_count() for i in range(L)}, "head": HEAD}),
    # lower_half + freeze: layers 0 and 1 untouched.
    ("layerwise_adapter", ("layer_split=lower_half",), True,
     {"layer.2": 2 * LN, "layer.3": 2 * LN, "adapters": 2 * 2 * ADAPTER, "head": HEAD}),
    # No injection: the split does not apply.
    ("layerwise_adapter", (), False, {**{f"layer.{i}": 2 * LN for i in range(L)}, "adapters": L * 2 * ADAPTER, "head": HEAD}),
    ("top_adapter", ("tuning_mode.adapter.train_layernorm=false", "tuning_mode.adapter.placement=ffn"), False,
     {"adapters": ADAPTER, "head": HEAD}),
    ("top_adapter", ("tuning_mode.adapter.bottleneck=4",), False,
     {"layer.3": 2 * LN, "adapters": 2 * ((H * 4 + 4) + (4 * H + H)), "head": HEAD}),
    ("lora", ("tuning_mode.lora.rank=2", "tuning_mode.lora.target_modules=[query,key,value]"), False,
     {"adapters": L * 3 * (2 * H + H * 2), "head": HEAD}),
]  # fmt: skip


@pytest.mark.parametrize(("mode", "extra", "inject", "expected"), CASES)
def test_trainable_parameters_per_part(mode, extra, inject, expected) -> None:
    model = build(mode, *extra, inject=inject)
    assert trainable(model) == expected
    names = {n for n, p in model.named_parameters() if p.requires_grad}
    assert sum(p.numel() for n, p in model.named_parameters() if n in names) == sum(
        expected.values()
    )


def test_exact_trainable_names_for_top_adapter() -> None:
    names = sorted(n for n, p in build("top_adapter").named_parameters() if p.requires_grad)
    layer = "backbone.encoder.layer.3."
    expected = [f"{layer}{block}.adapter.{lin}.{w}" for block in ("attention.output", "output")
                for lin in ("down", "up") for w in ("bias", "weight")]  # fmt: skip
    expected += [
        f"{layer}{block}.LayerNorm.{w}"
        for block in ("attention.output", "output")
        for w in ("bias", "weight")
    ]
    expected += [f"head.{m}.{w}" for m in ("classifier", "dense") for w in ("bias", "weight")]
    assert names == sorted(expected)


def test_bitfit_trains_only_biases_in_the_encoder() -> None:
    model = build("bitfit", inject=False)
    for name, param in model.named_parameters():
        if not name.startswith("head."):
            assert param.requires_grad == name.endswith(".bias"), name


def test_top_adapter_cannot_hide_in_a_frozen_layer(tmp_path) -> None:
    split = ("layer_split=all", "layer_split.stage2.policy=freeze")
    with pytest.raises(LayerftError, match="frozen by the layer split"):
        build("top_adapter", *split)
    # Found before any data loads, not after stage 1 trained (on klue_dp, hours).
    for mode, extra in (
        ("top_adapter", split),
        ("lora", ("layer_split.stage1.num_lower=4", split[1])),
    ):
        cfg = compose_run(*TINY, f"tuning_mode={mode}", *extra, f"cache_dir={tmp_path}")
        with pytest.raises(LayerftError, match="frozen by the layer split"):
            load_stage_data(cfg)
    fits = compose_run(*TINY, "tuning_mode=lora", "layer_split.stage1.num_lower=3", split[1])
    check_mode_fits_split(fits, None)  # layer 3 is left to adapt (tiny: no config to read)


def test_adapter_is_near_identity_at_initialisation() -> None:
    torch.manual_seed(0)
    plain = build("full", inject=False).eval()
    adapted = build("layerwise_adapter", inject=False).eval()
    inputs = {
        "input_ids": torch.randint(5, 200, (3, 12)),
        "attention_mask": torch.ones(3, 12, dtype=torch.long),
    }
    with torch.no_grad():
        a = plain.backbone(**inputs).last_hidden_state
        b = adapted.backbone(**inputs).last_hidden_state
    assert (a - b).abs().max().item() < 1e-3
    assert (a - b).abs().max().item() > 0  # the adapters are really in the forward pass


def test_adapter_follows_the_blocks_dropout_as_in_houlsbys_code() -> None:
    """adapter-bert: LayerNorm(adapter(dropout(dense(x))) + x); the adapter sat before the dropout."""
    torch.manual_seed(0)
    model = build("top_adapter", inject=False).train()
    block = model.backbone.encoder.layer[3].output
    seen: dict[str, torch.Tensor] = {}
    block.dense.register_forward_hook(lambda m, i, out: seen.update(dense=out))
    block.adapter.register_forward_pre_hook(lambda m, args: seen.update(adapter=args[0]))
    block.dropout.p = 0.5
    model.backbone(input_ids=torch.randint(5, 200, (2, 12)))
    dropped = seen["adapter"] == 0
    assert 0.4 < dropped.float().mean().item() < 0.6  # the adapter reads the dropout's output
    kept = seen["dense"][~dropped] * 2  # inverted dropout scales what it keeps by 1 / (1 - p)
    torch.testing.assert_close(seen["adapter"][~dropped], kept)


def test_adapter_module_shape_and_residual() -> None:
    adapter = BottleneckAdapter(8, AdapterConfig(bottleneck=None, reduction_factor=4))
    assert adapter.down.out_features == 2 and adapter.up.in_features == 2
    torch.nn.init.zeros_(adapter.up.weight)
    x = torch.randn(2, 3, 8)
    assert torch.equal(adapter(x), x)


def test_only_adapters_and_head_move_when_training() -> None:
    torch.manual_seed(0)
    model = build("layerwise_adapter", "tuning_mode.adapter.train_layernorm=false", inject=False)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    # Learnable toy set: label = whether token 7 occurs.
    ids = torch.randint(10, 60, (32, 10))
    labels = torch.arange(32) % 2
    ids[labels == 1, 3] = 7
    model.train()
    losses = []
    for _ in range(30):
        out = model(input_ids=ids, attention_mask=torch.ones_like(ids), labels=labels)
        optimizer.zero_grad()
        out.loss.backward()
        optimizer.step()
        losses.append(out.loss.item())
    assert losses[-1] < losses[0] * 0.7
    parts = parameter_parts(model)
    for name, param in model.named_parameters():
        moved = not torch.equal(param, before[name])
        assert moved == (parts[name] in {"adapters", "head"}), name


def test_lora_follows_its_config_and_merges() -> None:
    model = build("lora", "tuning_mode.lora.rank=4", inject=True).eval()
    lora_names = [n for n, p in model.named_parameters() if p.requires_grad and "lora_" in n]
    layers = sorted({int(n.split("encoder.layer.")[1].split(".")[0]) for n in lora_names})
    assert layers == [1, 2, 3]  # layers_to_transform left out the frozen injected layer 0
    assert {n.split(".")[-4] for n in lora_names} == {"query", "value"}
    with torch.no_grad():  # make LoRA non-trivial (B starts at zero)
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.normal_()
    inputs = {"input_ids": torch.randint(5, 200, (2, 9))}
    with torch.no_grad():
        before = model(**inputs).logits
        model.backbone = model.backbone.merge_and_unload()
        after = model(**inputs).logits
    assert not [n for n, _ in model.named_parameters() if "lora_" in n]
    torch.testing.assert_close(before, after, rtol=1e-4, atol=1e-5)


def test_lora_adapter_saves_as_safetensors(tmp_path) -> None:
    model = build("lora", inject=False)
    model.backbone.save_pretrained(tmp_path)
    assert (tmp_path / "adapter_model.safetensors").is_file()
    assert (tmp_path / "adapter_config.json").is_file()


def test_unknown_lora_target_fails_clearly() -> None:
    with pytest.raises(LayerftError, match="tuning_mode.lora"):
        build("lora", "tuning_mode.lora.target_modules=[qkv_proj]", inject=False)


def test_a_method_without_its_function_stops_the_import(monkeypatch) -> None:
    # It passed config validation, trained stage 1, then died with a KeyError (extension audit).
    # The method is one no user would add (a natural one, once added, would fail this test).
    member, added = '    bitfit = "bitfit"  # biases (+ head)\n', '    zigzag = "zigzag"\n'
    message = (
        "layerft/tuning_mode.py: TUNING_METHODS has no entry for method(s) zigzag; add its "
        "Method: the function that sets which parameters train, whether it reads "
        "tuning_mode.layers, and the settings nodes (lora, adapter) it reads"
    )
    assert_a_new_member_stops_the_import(tuning_mode, member, added, message, monkeypatch)


def test_whether_a_method_reads_layers_is_its_registry_entrys_word(monkeypatch) -> None:
    # A hard-coded (adapter, lora) decided it: a new method honouring `layers` had `layers=all,top`
    # merged into one run of a grid, and train.py warned that `layers=top` changed nothing.
    def keys(mode: str) -> set[str]:
        return {key for key, _ in unread_settings(resolve_config(compose_config(*TINY, mode)))}

    assert "tuning_mode.layers" in keys("tuning_mode=bitfit")
    assert "tuning_mode.layers" not in keys("tuning_mode=lora")
    entries = dict(tuning_mode.TUNING_METHODS)
    top_bitfit = tuning_mode.Method(tuning_mode._bitfit, reads_layers=True)
    monkeypatch.setattr(tuning_mode, "TUNING_METHODS", {**entries, TuningMethod.bitfit: top_bitfit})
    assert "tuning_mode.layers" not in keys("tuning_mode=bitfit")
    # A method that reads `layers` while its entry says it does not stops at the first model.
    monkeypatch.setattr(
        tuning_mode,
        "TUNING_METHODS",
        entries | {TuningMethod.lora: tuning_mode.Method(tuning_mode._lora)},
    )
    with pytest.raises(
        LayerftError,
        match="^layerft/tuning_mode.py: method lora reads tuning_mode.layers; set reads_layers=True in its TUNING_METHODS entry$",
    ):
        build("lora", inject=False)


def test_the_settings_a_method_reads_are_its_registry_entrys_word(monkeypatch) -> None:
    # unread_keys hard-coded lora's node to method lora (adapter's to adapter): a new method that
    # reads `tuning_mode.lora` had it unread, hashed at its defaults, so a grid over lora.rank was
    # one run of it, and train.py warned that lora.rank=4 changed nothing (an extension audit).
    def keys(*overrides: str) -> set[str]:
        return {k for k, _ in unread_settings(resolve_config(compose_config(*TINY, *overrides)))}

    assert {"tuning_mode.lora.", "tuning_mode.adapter."} <= keys("tuning_mode=bitfit")
    assert "tuning_mode.lora." not in keys("tuning_mode=lora")
    assert "tuning_mode.adapter." in keys("tuning_mode=lora")
    entries = dict(tuning_mode.TUNING_METHODS)
    lora_bitfit = tuning_mode.Method(tuning_mode._bitfit, settings=frozenset({"lora"}))
    monkeypatch.setattr(tuning_mode, "TUNING_METHODS", {**entries, TuningMethod.bitfit: lora_bitfit})  # fmt: skip
    unread = keys("tuning_mode=bitfit", "tuning_mode.lora.rank=4")
    assert "tuning_mode.lora." not in unread and "tuning_mode.adapter." in unread
