"""Which parameters train in each stage, for every layer_split x tuning_mode, and the transplant itself."""

from __future__ import annotations

import pytest
import torch
from compose import compose_run

from layerft.layer_split import (
    InjectedWeights,
    Stage1Split,
    extract_injected,
    injected_parts,
    resolve_num_lower,
)
from layerft.parts import count_parameters, layer_part, parameter_parts
from layerft.stage_models import build_injection_model, build_target_model

TINY = ("model=tiny", "tracker=none")
ALL_PARTS = {"embeddings", "layer.0", "layer.1", "layer.2", "layer.3", "head"}


def trainable_parts(model: torch.nn.Module) -> set[str]:
    parts = parameter_parts(model)
    return {parts[n] for n, p in model.named_parameters() if p.requires_grad}


def assert_exact_trainable(model: torch.nn.Module, parts: set[str]) -> None:
    """Trainable names are exactly the parameters of `parts`, and the counts agree."""
    parts_of = parameter_parts(model)
    expected = {n for n, part in parts_of.items() if part in parts}
    actual = {n for n, p in model.named_parameters() if p.requires_grad}
    assert actual == expected
    counts = count_parameters(model, parts_of)
    assert counts["trainable_params"] == sum(
        p.numel() for n, p in model.named_parameters() if n in expected
    )
    assert counts["trainable_params"] == sum(
        v for k, v in counts.items() if k.startswith("trainable_params/")
    )


@pytest.mark.parametrize(
    ("split", "extra", "num_lower", "stage1_parts", "layers_kept"),
    [
        ("lower1", (), 1, {"embeddings", "layer.0", "head"}, 4),
        ("lower_quarter", (), 1, {"embeddings", "layer.0", "head"}, 4),  # 0.25 * 4 layers
        ("lower_half", (), 2, {"embeddings", "layer.0", "layer.1", "head"}, 4),
        ("all", (), 4, ALL_PARTS, 4),
        ("lower_half", ("layer_split.stage1.head=split",), 2, {"embeddings", "layer.0", "layer.1", "head"}, 2),
        ("lower1", ("layer_split.stage1.train_embeddings=false",), 1, {"layer.0", "head"}, 4),
    ],
)  # fmt: skip
def test_stage1_trainable_parts(split, extra, num_lower, stage1_parts, layers_kept) -> None:
    cfg = compose_run(*TINY, f"layer_split={split}", *extra)
    model, n = build_injection_model(cfg)
    assert n == num_lower
    assert len(model.backbone.encoder.layer) == layers_kept  # a head on the split drops the rest
    assert_exact_trainable(model, stage1_parts)


# Stage 2, with an injection: the tuning mode decides, then the split's policy on injected parts
# (freeze wins over every mode; train and scale leave the mode's choice).
STAGE2_CASES = [
    ("lower1", "full", (), ALL_PARTS - {"layer.0"}, {}),
    ("lower_quarter", "full", (), ALL_PARTS - {"layer.0"}, {}),
    ("lower_half", "full", (), ALL_PARTS - {"layer.0", "layer.1"}, {}),
    ("all", "full", (), ALL_PARTS, {}),
    ("lower1", "frozen", (), {"head"}, {}),
    ("lower_half", "frozen", (), {"head"}, {}),
    ("all", "frozen", (), {"head"}, {}),
    ("lower1", "full", ("layer_split.stage2.policy=train",), ALL_PARTS, {}),
    ("lower1", "frozen", ("layer_split.stage2.policy=train",), {"head"}, {}),
    ("lower_half", "full", ("layer_split.stage2.policy=scale", "layer_split.stage2.lr_multiplier=0.1"),
     ALL_PARTS, {"layer.0": 0.1, "layer.1": 0.1, "layer.0.adapters": 0.1, "layer.1.adapters": 0.1}),
    ("lower1", "full", ("layer_split.stage2.transplant_embeddings=true",), ALL_PARTS - {"embeddings", "layer.0"}, {}),
]  # fmt: skip


@pytest.mark.parametrize(("split", "mode", "extra", "parts", "multipliers"), STAGE2_CASES)
def test_stage2_trainable_parts(split, mode, extra, parts, multipliers) -> None:
    cfg = compose_run(*TINY, f"layer_split={split}", f"tuning_mode={mode}", *extra)
    stage1, n = build_injection_model(cfg)
    model, lr_multipliers = build_target_model(
        cfg, extract_injected(stage1, cfg.layer_split.stage1, n)
    )
    assert_exact_trainable(model, parts)
    assert lr_multipliers == multipliers


@pytest.mark.parametrize(("mode", "parts"), [("full", ALL_PARTS), ("frozen", {"head"})])
def test_stage2_without_injection_ignores_the_split(mode: str, parts: set[str]) -> None:
    cfg = compose_run(*TINY, "injection_task=none", f"tuning_mode={mode}")
    model, lr_multipliers = build_target_model(cfg, None)
    assert_exact_trainable(model, parts)
    assert lr_multipliers == {}


def test_layers_are_selected_by_index_not_substring() -> None:
    # With 12 layers, "layer.1" as a substring would also catch layer.10 and layer.11.
    cfg = compose_run(*TINY, "model.tiny.num_layers=12", "layer_split=lower1")
    stage1, n = build_injection_model(cfg)
    model, _ = build_target_model(cfg, extract_injected(stage1, cfg.layer_split.stage1, n))
    trained = trainable_parts(model)
    assert "layer.0" not in trained
    assert {"layer.1", "layer.10", "layer.11"} <= trained
    stage1_trained = trainable_parts(stage1)
    assert stage1_trained == {"embeddings", "layer.0", "head"}


def test_injected_layers_are_transplanted_and_nothing_else() -> None:
    cfg = compose_run(*TINY, "layer_split=lower_half")
    stage1, n = build_injection_model(cfg)
    with torch.no_grad():  # stand-in for stage-1 training: move every trainable weight
        for p in stage1.parameters():
            if p.requires_grad:
                p.add_(torch.randn_like(p))
    injected = extract_injected(stage1, cfg.layer_split.stage1, n)
    model, _ = build_target_model(cfg, injected)
    pretrained, _ = build_target_model(cfg, None)
    for i in range(4):
        for (name, got), (_, trained), (_, original) in zip(
            model.backbone.encoder.layer[i].state_dict().items(),
            stage1.backbone.encoder.layer[i].state_dict().items(),
            pretrained.backbone.encoder.layer[i].state_dict().items(),
            strict=True,
        ):
            expected = trained if i < n else original
            assert torch.equal(got, expected), (i, name)
    # Embeddings are not transplanted by default: they stay the pre-trained ones.
    for (name, got), (_, original) in zip(
        model.backbone.embeddings.state_dict().items(),
        pretrained.backbone.embeddings.state_dict().items(),
        strict=True,
    ):
        assert torch.equal(got, original), name
    assert not torch.equal(
        stage1.backbone.embeddings.word_embeddings.weight,
        model.backbone.embeddings.word_embeddings.weight,
    )


def test_transplanted_embeddings_when_asked() -> None:
    cfg = compose_run(*TINY, "layer_split.stage2.transplant_embeddings=true")
    stage1, n = build_injection_model(cfg)
    with torch.no_grad():
        stage1.backbone.embeddings.word_embeddings.weight.add_(1.0)
    injected: InjectedWeights = extract_injected(stage1, cfg.layer_split.stage1, n)
    model, _ = build_target_model(cfg, injected)
    assert torch.equal(
        model.backbone.embeddings.word_embeddings.weight,
        stage1.backbone.embeddings.word_embeddings.weight,
    )


def test_embeddings_stage1_left_pretrained_are_not_treated_as_injected() -> None:
    # transplant_embeddings with a stage 1 that did not train them: nothing to take, so the
    # injected-layer policy (freeze here) must not freeze the pre-trained embeddings.
    cfg = compose_run(
        *TINY, "layer_split.stage1.train_embeddings=false",
        "layer_split.stage2.transplant_embeddings=true", "layer_split.stage2.policy=freeze",
    )  # fmt: skip
    stage1, n = build_injection_model(cfg)
    injected = extract_injected(stage1, cfg.layer_split.stage1, n)
    assert injected.embeddings is None
    assert injected_parts(cfg.layer_split.stage2, injected) == [layer_part(i) for i in range(n)]
    model, _ = build_target_model(cfg, injected)
    assert all(p.requires_grad for p in model.backbone.embeddings.parameters())


@pytest.mark.parametrize(
    ("fraction", "depth", "lower"), [(0.58, 25, 15), (0.5, 5, 3), (0.5, 4, 2), (0.01, 12, 1)]
)
def test_a_fraction_of_the_depth_rounds_half_up_as_written(fraction, depth, lower) -> None:
    # 0.58 * 25 is 14.5 as written, 14.499999999999998 as floats.
    assert resolve_num_lower(Stage1Split(fraction=fraction), depth) == lower


def test_split_larger_than_model_fails_clearly() -> None:
    from layerft.errors import LayerftError

    cfg = compose_run(*TINY, "layer_split=lower1", "layer_split.stage1.num_lower=9")
    with pytest.raises(LayerftError, match="num_lower=9 exceeds the model's 4 layers"):
        build_injection_model(cfg)


def test_a_split_of_every_layer_is_the_depth_and_one_more_fails() -> None:
    from layerft.errors import LayerftError

    assert resolve_num_lower(Stage1Split(num_lower=4), 4) == 4
    with pytest.raises(LayerftError, match="num_lower=5 exceeds the model's 4 layers"):
        resolve_num_lower(Stage1Split(num_lower=5), 4)


def test_injected_weights_are_copies_the_stage1_model_cannot_change() -> None:
    cfg = compose_run(*TINY, "layer_split.stage1.train_embeddings=true")
    stage1, n = build_injection_model(cfg)
    injected = extract_injected(stage1, cfg.layer_split.stage1, n)
    before = [{k: v.clone() for k, v in layer.items()} for layer in injected.layers]
    assert injected.embeddings is not None
    embeddings = {k: v.clone() for k, v in injected.embeddings.items()}
    with torch.no_grad():
        for p in stage1.parameters():
            p.add_(1.0)
    for mine, kept in zip(injected.layers, before, strict=True):
        assert all(torch.equal(mine[k], kept[k]) for k in kept)
    assert all(torch.equal(injected.embeddings[k], v) for k, v in embeddings.items())


def test_a_part_no_parameter_belongs_to_is_refused() -> None:
    from layerft.errors import LayerftError
    from layerft.parts import set_trainable

    model, _ = build_target_model(compose_run(*TINY, "injection_task=none"), None)
    with pytest.raises(LayerftError, match=r"no parameter belongs to part\(s\) \['layer.9'\]"):
        set_trainable(model, ["head", "layer.9"])


def test_per_part_counts_list_the_layers_in_their_order() -> None:
    cfg = compose_run(*TINY, "injection_task=none", "model.tiny.num_layers=12")
    model, _ = build_target_model(cfg, None)
    counts = count_parameters(model, parameter_parts(model))
    layers = [k.split("/")[1] for k in counts if k.startswith("trainable_params/layer.")]
    assert layers == [f"layer.{i}" for i in range(12)]
