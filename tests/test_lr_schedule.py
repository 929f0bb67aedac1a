"""Learning rates per parameter group at chosen steps, against hand computation."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import pytest
import torch
from compose import CONF, compose_run
from conftest import assert_a_new_member_stops_the_import
from torch import nn

from layerft import lr_schedule
from layerft.errors import LayerftError
from layerft.heads import encoder_layers
from layerft.layer_split import extract_injected
from layerft.lr_schedule import (
    ScheduleConfig,
    ScheduleShape,
    build_optimizer,
    build_scheduler,
    part_learning_rates,
    part_lr_multipliers,
    total_steps,
)
from layerft.part_decay import check_part_weight_decay, stage_multipliers
from layerft.parts import layer_part, parameter_parts
from layerft.stage_data import load_stage_data
from layerft.stage_models import build_injection_model, build_target_model
from layerft.task_names import check_part_decay

LR = 1e-3
STEPS, WARMUP = 10, 2  # warmup_ratio 0.2 of 10 steps


def group_lrs(*overrides: str, at: list[int]) -> dict[int, dict[str, float]]:
    """{step: {group name: lr}} for a stage-2 model of the tiny config."""
    cfg = compose_run("model=tiny", "tracker=none", "lr_schedule.warmup_ratio=0.2", *overrides)
    stage1, n = build_injection_model(cfg)
    model, multipliers = build_target_model(
        cfg, extract_injected(stage1, cfg.layer_split.stage1, n)
    )
    optimizer = build_optimizer(model, parameter_parts(model), LR, 0.01, multipliers)
    scheduler = build_scheduler(cfg.lr_schedule, optimizer, STEPS)
    seen = {}
    for step in range(STEPS + 1):
        if step in at:
            seen[step] = part_learning_rates(optimizer)
        optimizer.step()
        scheduler.step()
    return seen


def linear(step: int) -> float:
    return step / WARMUP if step < WARMUP else (STEPS - step) / (STEPS - WARMUP)


def cosine(step: int) -> float:
    if step < WARMUP:
        return step / WARMUP
    return 0.5 * (1 + math.cos(math.pi * (step - WARMUP) / (STEPS - WARMUP)))


def constant(step: int) -> float:
    return min(1.0, step / WARMUP)


@pytest.mark.parametrize(
    ("schedule", "curve"), [("linear", linear), ("cosine", cosine), ("constant", constant)]
)
def test_shapes_scale_every_group_alike(schedule, curve) -> None:
    steps = [0, 1, 2, 5, 6, 9]
    seen = group_lrs(f"lr_schedule={schedule}", "tuning_mode=full", at=steps)
    for step in steps:
        assert list(seen[step].values()) == pytest.approx([LR * curve(step)] * len(seen[step])), (
            step
        )
    # hand values: linear at 6 = (10-6)/(10-2) = 0.5; cosine at 6 = (1+cos(pi/2))/2 = 0.5
    assert seen[6]["head"] == pytest.approx(LR * 0.5 if schedule != "constant" else LR)
    assert seen[1]["head"] == pytest.approx(LR * 0.5)


def test_discriminative_multipliers_per_part() -> None:
    seen = group_lrs("lr_schedule=discriminative", "layer_split.stage2.policy=train", at=[2, 6])
    # injected layer 0: 0.1, other layers 0.5, embeddings 0.1, head 1 (yaml); step 2 is the peak.
    expected = {
        "embeddings": 0.1,
        "layer.0": 0.1,
        "layer.1": 0.5,
        "layer.2": 0.5,
        "layer.3": 0.5,
        "head": 1.0,
    }
    for name, lr in seen[2].items():
        assert lr == pytest.approx(LR * expected[name.split("/")[0]]), name
    assert seen[6]["layer.1"] == pytest.approx(LR * 0.5 * 0.5)
    assert {name.split("/")[0] for name in seen[2]} == set(expected)


def test_discriminative_adapters_and_split_multiplier_combine() -> None:
    seen = group_lrs(
        "lr_schedule=discriminative", "tuning_mode=layerwise_adapter",
        "layer_split.stage2.policy=scale", "layer_split.stage2.lr_multiplier=0.5", at=[2],
    )  # fmt: skip
    # adapters 1.0, those in the injected layer 0 x split's 0.5; layer 0 (LayerNorms) injected
    # 0.1 x split's 0.5; other LayerNorms 0.5.
    assert seen[2]["adapters"] == pytest.approx(LR)
    assert seen[2]["layer.0.adapters"] == pytest.approx(LR * 0.5)
    assert seen[2]["layer.0/no_decay"] == pytest.approx(LR * 0.1 * 0.5)
    assert seen[2]["layer.2/no_decay"] == pytest.approx(LR * 0.5)
    # The two multiply: at adapters' 1.0 a split's multiplier alone gives the same rate.
    seen = group_lrs(
        "lr_schedule=discriminative", "lr_schedule.multipliers.adapters=3",
        "tuning_mode=layerwise_adapter", "layer_split.stage2.policy=scale",
        "layer_split.stage2.lr_multiplier=0.5", at=[2],
    )  # fmt: skip
    assert seen[2]["adapters"] == pytest.approx(LR * 3)
    assert seen[2]["layer.0.adapters"] == pytest.approx(LR * 3 * 0.5)


def test_layerwise_decay() -> None:
    seen = group_lrs("lr_schedule=layerwise_decay", "layer_split.stage2.policy=train", at=[2, 6])
    d, layers = 0.8, 4
    expected = {f"layer.{i}": d ** (layers - i) for i in range(layers)}
    expected.update({"embeddings": d ** (layers + 1), "head": 1.0})
    for name, lr in seen[2].items():
        assert lr == pytest.approx(LR * expected[name.split("/")[0]]), name
    assert seen[6]["layer.3"] == pytest.approx(LR * 0.8 * 0.5)
    assert seen[2]["layer.0"] == pytest.approx(LR * 0.4096)


def test_split_scale_policy_alone() -> None:
    seen = group_lrs(
        "layer_split.stage2.policy=scale", "layer_split.stage2.lr_multiplier=0.25", at=[2]
    )
    assert seen[2]["layer.0"] == pytest.approx(LR * 0.25)
    assert seen[2]["layer.1"] == pytest.approx(LR)


@pytest.mark.parametrize("mode", ["lora", "layerwise_adapter"])
def test_split_scale_policy_slows_what_a_mode_added_to_the_injected_layers(mode) -> None:
    """Under LoRA the injected layer's only trainable weights are its LoRA matrices: `scale` was a
    silent no-op when they trained at the full lr."""
    seen = group_lrs(
        f"tuning_mode={mode}", "layer_split=lower_half",
        "layer_split.stage2.policy=scale", "layer_split.stage2.lr_multiplier=0.25", at=[2],
    )  # fmt: skip
    assert seen[2]["layer.0.adapters"] == pytest.approx(LR * 0.25)
    assert seen[2]["layer.1.adapters"] == pytest.approx(LR * 0.25)
    assert seen[2]["adapters"] == pytest.approx(LR)  # layers 2 and 3
    assert "layer.2.adapters" not in seen[2]


def test_weight_decay_off_for_biases_and_layernorm_and_frozen_parameters_left_out() -> None:
    cfg = compose_run("model=tiny", "tracker=none")
    stage1, n = build_injection_model(cfg)
    model, multipliers = build_target_model(
        cfg, extract_injected(stage1, cfg.layer_split.stage1, n)
    )
    optimizer = build_optimizer(model, parameter_parts(model), LR, 0.01, multipliers)
    names = {id(p): name for name, p in model.named_parameters()}
    in_optimizer = set()
    for group in optimizer.param_groups:
        for param in group["params"]:
            name = names[id(param)]
            in_optimizer.add(name)
            no_decay = name.endswith("bias") or "LayerNorm" in name
            assert group["weight_decay"] == (0.0 if no_decay else 0.01), name
    assert in_optimizer == {n for n, p in model.named_parameters() if p.requires_grad}
    assert not [n for n in in_optimizer if n.startswith("backbone.encoder.layer.0.")]


def test_stage1_schedule_is_its_own() -> None:
    cfg = compose_run(
        "model=tiny", "lr_schedule=constant", "lr_schedule@injection_lr_schedule=cosine"
    )
    assert (cfg.injection_lr_schedule.shape.value, cfg.lr_schedule.shape.value) == (
        "cosine",
        "constant",
    )


def test_total_steps() -> None:
    assert total_steps(100, 32, 3) == 12  # 4 batches per epoch
    assert total_steps(100, 32, 0.5) == 2
    assert total_steps(100, 32, 1, world_size=2) == 2
    assert total_steps(100, 32, 0) == 0  # a stage that only evaluates
    # Fractions as written, not as float products: 1.1 x 100 is 110.00000000000001.
    assert total_steps(1000, 10, 1.1) == 110
    assert total_steps(1000, 10, 1.15) == 115
    assert total_steps(1000, 10, 1.155) == 116


def test_warmup_steps_round_the_ratio_as_written() -> None:
    model = nn.Linear(2, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    cfg = ScheduleConfig(name="constant", shape=ScheduleShape.constant, warmup_ratio=0.07)
    scheduler = build_scheduler(cfg, optimizer, 100)  # 0.07 * 100 == 7.000000000000001 in floats
    rates = []
    for _ in range(9):
        rates.append(scheduler.get_last_lr()[0])
        optimizer.step()
        scheduler.step()
    assert rates == pytest.approx([i / 7 for i in range(8)] + [1])  # 7 warmup steps, then the peak


def test_a_shape_without_a_transformers_scheduler_stops_the_import(monkeypatch) -> None:
    # It passed config validation and died with a KeyError once training started. The new
    # shape is one no user would add (a user adding `polynomial` saw this test fail).
    member, added = '    constant = "constant"\n', '    zigzag = "zigzag"\n'
    message = (
        "layerft/lr_schedule.py: HF_SCHEDULER_TYPES has no entry for shape(s) zigzag; add the "
        "transformers scheduler (get_scheduler's name) behind each"
    )
    assert_a_new_member_stops_the_import(lr_schedule, member, added, message, monkeypatch)


def test_a_parts_lr_whose_weight_decay_would_flip_its_weights_is_refused() -> None:
    """The config checks the task's lr x weight_decay < 1; a part's multiplier (the head's 10
    under discriminative scaling) could still make AdamW's decoupled decay, w *= 1 - lr x wd,
    zero or flip that part's weights each step. Mutation: the per-group check dropped."""
    cfg = compose_run("model=tiny", "tracker=none", "injection_task=none")
    model, _ = build_target_model(cfg, None)
    parts = parameter_parts(model)
    build_optimizer(model, parts, 0.01, 9.0, {"head": 10.0})  # 0.1 x 9 < 1
    with pytest.raises(LayerftError) as caught:
        build_optimizer(model, parts, 0.01, 10.0, {"head": 10.0})
    assert str(caught.value).startswith("weight_decay=10 at head's lr 0.1 (the task's lr 0.01 ")


def _stage_models(cfg: Any) -> Iterator[tuple[str, Any, nn.Module, dict[str, float]]]:
    """Each stage's group, task, model and part lr multipliers, built as run.py builds them."""
    injected = None
    if cfg.injection_task is not None:
        model, num_lower = build_injection_model(cfg)
        lower = [layer_part(i) for i in range(num_lower)]
        depth = len(encoder_layers(model.backbone))
        scales = part_lr_multipliers(cfg.injection_lr_schedule, depth, lower)
        yield "injection_task", cfg.injection_task, model, scales
        injected = extract_injected(model, cfg.layer_split.stage1, num_lower)
    model, multipliers = build_target_model(cfg, injected)
    yield "target_task", cfg.target_task, model, multipliers


def _optimizer_refusals(cfg: Any) -> list[str]:
    """What build_optimizer says of each stage's model ("": none)."""
    said = []
    for group, task, model, multipliers in _stage_models(cfg):
        try:
            build_optimizer(model, parameter_parts(model), task.lr, task.weight_decay, multipliers)
            said.append("")
        except LayerftError as err:
            said.append(f"{group}.{err}")
    return said


def _early_refusals(cfg: Any) -> list[str]:
    """What check_part_weight_decay says of each stage, from the config and the depth alone."""
    said = []
    for group, task, multipliers in stage_multipliers(cfg, cfg.model.tiny.num_layers):
        try:
            for part, multiplier in multipliers.items():
                check_part_decay(
                    part, task.lr * multiplier, task.weight_decay, task.lr, f"{group}."
                )
            said.append("")
        except LayerftError as err:
            said.append(str(err))
    return said


DECAYS = ["target_task.weight_decay=1", "injection_task.weight_decay=1"]


@pytest.mark.parametrize(
    ("overrides", "refused"),
    [
        (["injection_task=none", "lr_schedule=discriminative", "lr_schedule.multipliers.head=1e5"],
         ["target_task.weight_decay=1 at head's lr 5 "]),
        (["lr_schedule@injection_lr_schedule=discriminative",
          "injection_lr_schedule.multipliers.injected=1e5"],
         ["injection_task.weight_decay=1 at layer.0's lr 5 ", ""]),
        (["lr_schedule@injection_lr_schedule=discriminative",  # stage 1 trains no upper layer
          "injection_lr_schedule.multipliers.encoder=1e5"], ["", ""]),
        (["layer_split=lower_half", "layer_split.stage2.policy=scale",  # 0.8**3 x 4e4 x 5e-5 > 1 > 0.8**4 x ...
          "layer_split.stage2.lr_multiplier=4e4", "lr_schedule=layerwise_decay"],
         ["", "target_task.weight_decay=1 at layer.1's lr 1.024 "]),
        (["tuning_mode=lora", "lr_schedule=discriminative", "lr_schedule.multipliers.adapters=1e5"],
         ["", "target_task.weight_decay=1 at adapters's lr 5 "]),
        (["lr_schedule=discriminative", "lr_schedule.multipliers.adapters=1e5"], ["", ""]),  # none
        (["lr_schedule=discriminative", "lr_schedule.multipliers.injected=1e5"],  # lower1 freezes
         ["", ""]),
        (["tuning_mode=bitfit", "lr_schedule=discriminative", "lr_schedule.multipliers.encoder=1e5"],
         ["", ""]),  # biases: no weight decay
        (["tuning_mode=lora", "layer_split.stage2.policy=scale", "layer_split.stage2.lr_multiplier=1e5"],
         ["", "target_task.weight_decay=1 at layer.0.adapters's lr 5 "]),
    ],
)  # fmt: skip
def test_both_stages_part_weight_decay_is_refused_before_either_trains(
    tmp_path, overrides: list[str], refused: list[str]
) -> None:
    """build_optimizer refused a part's lr x weight_decay >= 1 only as its stage began: stage 2's
    after stage 1 had trained. The early check reads the config (and the model's depth) and says
    what build_optimizer would of each stage, no more: parts a stage does not train, or trains
    without decay, pass. Mutations: a stage left out, the policy's scale dropped, the depth off
    by one, every part counted as trained, frozen injected layers counted, adapters not scaled
    with their layer."""
    cfg = compose_run("model=tiny", "tracker=none", f"cache_dir={tmp_path}", *overrides, *DECAYS)
    early = _early_refusals(cfg)
    assert early == _optimizer_refusals(cfg)
    assert [said[: len(start)] for said, start in zip(early, refused, strict=True)] == refused
    if any(refused):
        with pytest.raises(LayerftError) as caught:
            check_part_weight_decay(cfg, cfg.model.tiny.num_layers)
        assert str(caught.value) == next(said for said in early if said)
    else:
        check_part_weight_decay(cfg, cfg.model.tiny.num_layers)


def test_a_run_refuses_stage_2s_part_weight_decay_before_loading_data(tmp_path) -> None:
    """The run's early checks (before data loads, long before stage 1 trains) include it; the
    data file named does not exist, so reaching the data fails differently. Mutation: no call."""
    cfg = compose_run(
        "model=tiny", "tracker=none", f"cache_dir={tmp_path}", "lr_schedule=discriminative",
        "lr_schedule.multipliers.head=1e5", "target_task.weight_decay=1",
        "injection_task.data_files.train=/no/such.jsonl",
    )  # fmt: skip
    with pytest.raises(LayerftError) as caught:
        load_stage_data(cfg)
    assert str(caught.value).startswith("target_task.weight_decay=1 at head's lr 5 (the task's")


def test_a_scaling_without_its_entry_stops_the_import(monkeypatch) -> None:
    # part_lr_multipliers fell through to `return {}`: a new PartScaling member without its branch
    # passed config validation and trained every part at the task's lr (an extension audit).
    member = '    layerwise_decay = "layerwise_decay"  # decay ** (depth from the top); head and adapters at 1\n'  # fmt: skip
    added = '    zigzag = "zigzag"\n'
    message = (
        "layerft/lr_schedule.py: PART_SCALINGS has no entry for scaling(s) zigzag; add its "
        "Scaling: the function giving each part's lr multiplier, and the keys it reads"
    )
    assert_a_new_member_stops_the_import(lr_schedule, member, added, message, monkeypatch)


def test_the_keys_a_scaling_reads_are_its_registry_entrys_word(monkeypatch) -> None:
    # Hard-coded readers decided it: a new scaling reading `layer_decay` had it unread, hashed at
    # its default (a grid over it one run), and warned about as changing nothing.
    from layerft.lr_schedule import PART_SCALINGS, PartScaling, Scaling, unread_schedule_keys

    def unread(scaling: str) -> set[str]:
        return set(unread_schedule_keys({"scaling": scaling}))

    assert unread("uniform") == {"multipliers", "layer_decay"}
    assert unread("layerwise_decay") == {"multipliers"}
    assert unread("discriminative") == {"layer_decay"}
    both = Scaling(PART_SCALINGS[PartScaling.discriminative].multipliers, reads=("multipliers", "layer_decay"))  # fmt: skip
    monkeypatch.setattr(lr_schedule, "PART_SCALINGS", {**PART_SCALINGS, PartScaling.discriminative: both})  # fmt: skip
    assert unread("discriminative") == set()
    assert unread("uniform") == {"multipliers", "layer_decay"}


def test_the_logged_lr_per_part_reads_bottom_up() -> None:
    # Logged in optimizer-group order, LLRD's rates read "layer.0=1.64e-05, layer.0.adapters=...,
    # layer.1=..., adapters=..., head=..., layer.2=..., layer.3=..." (an extension audit).
    from layerft.parts import bottom_up

    seen = {"layer.0": 1, "layer.0.adapters": 2, "layer.1": 3, "adapters": 4, "head": 5}
    seen |= {"layer.2": 6, "layer.10": 7, "embeddings": 8, "other": 9}
    assert list(bottom_up(seen)) == [
        "embeddings", "layer.0", "layer.0.adapters", "layer.1", "layer.2", "layer.10",
        "adapters", "head", "other",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("overrides", "warned"),
    [
        (("tuning_mode=lora", "lr_schedule=layerwise_decay"), "lora trains (adapters, head)"),
        (("tuning_mode=frozen", "lr_schedule=discriminative"), "frozen trains (head)"),
        (
            (
                "tuning_mode=lora",
                "lr_schedule=discriminative",
                "lr_schedule.multipliers.adapters=2",
            ),
            "",
        ),  # fmt: skip
        (("tuning_mode=bitfit", "lr_schedule=layerwise_decay"), ""),
        (("tuning_mode=lora", "lr_schedule=linear"), ""),
    ],
)
def test_a_scaling_that_scales_no_trained_part_is_warned_about(overrides, warned, caplog) -> None:
    # A grid of tuning_mode=full,bitfit,lora x lr_schedule=linear,layerwise_decay trained LoRA
    # twice to the same score, without a word: LLRD leaves adapters and head at the full lr.
    cfg = compose_run("model=tiny", "tracker=none", "injection_task=none", *overrides)
    with caplog.at_level("WARNING", logger="layerft.stage_models"):
        build_target_model(cfg, None)
    messages = [r.getMessage() for r in caplog.records if r.name == "layerft.stage_models"]
    if not warned:
        assert messages == []
    else:
        name = cfg.lr_schedule.name
        assert messages == [
            f"target: lr_schedule={name} scales no part that tuning_mode={warned}: the run "
            "trains as under a uniform schedule"
        ]


def _optimizer_decayed(cfg: Any) -> list[dict[str, float]]:
    """Each stage's decayed parts and their lr multipliers, as build_optimizer groups them."""
    stages = []
    for _, task, model, multipliers in _stage_models(cfg):
        parts = parameter_parts(model)
        optimizer = build_optimizer(model, parts, task.lr, task.weight_decay, multipliers)
        stages.append(
            {
                part: group["lr"] / task.lr
                for group in optimizer.param_groups
                for part in group["parts"]
                if group["weight_decay"] > 0
            }
        )
    return stages


DISCRIMINATIVE = [
    "lr_schedule=discriminative",
    "lr_schedule.multipliers.adapters=3",
    "lr_schedule@injection_lr_schedule=discriminative",
]
DECAYING = ["lr_schedule=layerwise_decay", "lr_schedule@injection_lr_schedule=layerwise_decay"]


# Every tuning mode conf/ has: a new one enters this comparison by its file alone.
@pytest.mark.parametrize(
    "mode", sorted(path.stem for path in (CONF / "tuning_mode").glob("*.yaml"))
)
@pytest.mark.parametrize(
    "split",
    [
        ["injection_task=none", *DISCRIMINATIVE],
        ["layer_split=lower1", "layer_split.stage2.policy=freeze", *DECAYING],
        ["layer_split=lower_half", "layer_split.stage2.policy=scale", "layer_split.stage1.head=split",
         *DECAYING],
        ["layer_split=lower_half", "layer_split.stage2.policy=scale",
         "layer_split.stage1.train_embeddings=true", *DISCRIMINATIVE],
        # transplanting stage 1's embeddings, untrained there: the pre-trained ones, not scaled
        ["layer_split=lower_half", "layer_split.stage2.policy=scale",
         "layer_split.stage1.train_embeddings=false", "layer_split.stage2.transplant_embeddings=true",
         *DISCRIMINATIVE],
        ["layer_split=all", "layer_split.stage2.policy=train", "layer_split.stage1.head=split",
         *DECAYING],
    ],
)  # fmt: skip
def test_the_early_check_sees_the_decayed_parts_the_optimizer_builds(
    tmp_path, mode: str, split: list[str]
) -> None:
    """part_decay re-derives from the config which parts each stage trains with weight decay and
    at what multiplier; over every tuning mode, split shape, stage-2 policy and scaling it must
    name exactly the optimizer's decayed groups, or a refusal would be missed or made up."""
    cfg = compose_run(
        "model=tiny", "tracker=none", f"cache_dir={tmp_path}", f"tuning_mode={mode}", *split,
        "layer_split.stage2.lr_multiplier=0.3", "target_task.weight_decay=0.01",
        "injection_task.weight_decay=0.01",
    )  # fmt: skip
    early = [m for _, _, m in stage_multipliers(cfg, cfg.model.tiny.num_layers)]
    built = _optimizer_decayed(cfg)
    assert [sorted(m) for m in early] == [sorted(m) for m in built]
    for said, made in zip(early, built, strict=True):
        assert said == pytest.approx(made)
