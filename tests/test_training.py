"""Training trains: the phase runner learns an easy task, reports its best dev evaluation, runs each
stage on its own schedule, transplants exactly, and stops on a non-finite loss.

Each test runs the real stages in-process (`train_stages`, the body of `train.py`) on model=tiny,
recording every log the phase runner sends to the tracker.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import torch
from compose import compose_run
from easy_data import CHANCE, keyword_task

from layerft.errors import LayerftError
from layerft.run import train_stages
from layerft.stage_data import load_stage_data

Logs = list[tuple[int, dict[str, float]]]

# The keyword task at a learning rate the tiny model learns it with in 5 epochs (~3 s): 125
# steps, dev evaluated every 6 (4 times an epoch) and at the last step.
LEARNS = ("injection_task=none", "target_task.epochs=5", "target_task.lr=5e-3",
          "target_task.batch_size=16")  # fmt: skip
# Stage 1 alone, shrunk: demo_pos tagging for 3 epochs, then a stage 2 that only evaluates.
TAGGING = (
    "injection_task.generator_sizes.train=300", "injection_task.generator_sizes.validation=100",
    "injection_task.epochs=3", "injection_task.lr=3e-3", "injection_task.batch_size=16",
    "target_task.generator_sizes.train=32", "target_task.generator_sizes.validation=32",
    "target_task.epochs=0",
)  # fmt: skip


def train(tmp_path: Path, *overrides: str) -> tuple[dict[str, float], Logs]:
    """Run both stages of model=tiny with `overrides`; the metrics and every (step, log) sent."""
    cfg = compose_run("model=tiny", "tracker=none", f"cache_dir={tmp_path / 'cache'}", *overrides)
    logs: Logs = []
    data = load_stage_data(cfg)
    metrics, _ = train_stages(cfg, data, tmp_path / "run", lambda n, step: logs.append((step, n)))
    return metrics, logs


def series(logs: Logs, key: str) -> list[tuple[int, float]]:
    """Every (step, value) logged under `key`, in order."""
    return [(step, numbers[key]) for step, numbers in logs if key in numbers]


@pytest.fixture(scope="module")
def keyword(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    return keyword_task(tmp_path_factory.mktemp("keyword"))


# --- it learns --------------------------------------------------------------------------------


def test_target_stage_learns_the_keyword_task_and_a_zero_lr_does_not(tmp_path, keyword) -> None:
    # Dev scored once an epoch, not 4 times: the 21 evaluations and saves cost ~40% of the runs.
    once = "target_task.evals_per_epoch=1"
    learned, _ = train(tmp_path / "a", *keyword, *LEARNS, once)
    frozen, _ = train(tmp_path / "b", *keyword, *LEARNS, once, "target_task.lr=1e-9")
    # Measured: 0.755 at lr 5e-3 (0.83 scored 4 times an epoch) and 0.255 at lr 1e-9; chance 0.25.
    assert learned["target/eval_accuracy"] >= 0.6
    assert frozen["target/eval_accuracy"] <= CHANCE + 0.1


def test_injection_stage_learns_tagging_and_a_zero_lr_does_not(tmp_path) -> None:
    once = "injection_task.evals_per_epoch=1"  # as above: fewer evaluations and saves
    learned, _ = train(tmp_path / "a", *TAGGING, once)
    frozen, _ = train(tmp_path / "b", *TAGGING, once, "injection_task.lr=1e-9")
    # Measured: 0.53 at lr 3e-3 (0.54 scored 4 times an epoch) and 0.08 at lr 1e-9 (14 tags).
    assert learned["injection/eval_token_f1"] >= 0.4
    assert frozen["injection/eval_token_f1"] <= 0.15


def test_group_by_length_leaves_the_dev_order_and_its_scores_alone(tmp_path) -> None:
    # transformers sorts dev sets by length under group_by_length too: tagging's predictions were
    # paired with other sentences (a ValueError), span extraction's silently with other contexts.
    only_eval = (
        "injection_task.generator_sizes.train=32", "injection_task.generator_sizes.validation=100",
        "injection_task.epochs=0", "target_task.generator_sizes.train=32",
        "target_task.generator_sizes.validation=32", "target_task.epochs=0",
    )  # fmt: skip
    plain, _ = train(tmp_path / "a", *only_eval)
    grouped, _ = train(tmp_path / "b", *only_eval, "trainer.group_by_length=true")
    scores = [
        k for k in plain if "/eval_" in k and not any(m in k for m in ("runtime", "per_second"))
    ]
    assert "injection/eval_token_f1" in scores
    assert {k: grouped[k] for k in scores} == {k: plain[k] for k in scores}


# --- what it reports --------------------------------------------------------------------------


def test_reported_score_is_the_best_dev_evaluation_not_the_last(tmp_path, keyword) -> None:
    # A high constant rate makes dev accuracy rise and fall. Measured, with 1 and 2 torch threads
    # (their sums differ in the last digits): 0.66 at the 5th of 9 evaluations, 0.63 at the last.
    metrics, logs = train(tmp_path, *keyword, *LEARNS, "target_task.epochs=2",
                          "target_task.lr=1e-2", "lr_schedule=constant")  # fmt: skip
    evals = series(logs, "target/eval_accuracy")  # the final re-scoring of the best is not logged
    assert len(evals) == 9
    best_step, best = max(evals, key=lambda e: (e[1], -e[0]))  # the first of equal bests
    assert best_step != evals[-1][0], "precondition: the best evaluation is not the last one"
    assert metrics["target/eval_accuracy"] == best > evals[-1][1]
    epochs = dict(series(logs, "target/epoch"))
    assert metrics["target/best_step"] == best_step  # which checkpoint the dev metrics are of
    assert metrics["target/best_epoch"] == pytest.approx(epochs[best_step])
    losses = dict(series(logs, "target/eval_loss"))
    assert metrics["target/eval_loss"] == pytest.approx(losses[best_step], rel=1e-6)


@pytest.mark.slow
def test_paused_seconds_are_the_evaluations_and_saves_made_while_training(tmp_path) -> None:
    # A large dev set, evaluated once an epoch: the final evaluation (after train(), so not part
    # of its runtime) then takes far longer than the few saves of the tiny model.
    files = keyword_task(tmp_path / "data", validation=3000)
    metrics, logs = train(tmp_path, *files, *LEARNS, "target_task.evals_per_epoch=1")
    runtimes = [value for _, value in series(logs, "target/eval_runtime")]
    assert len(runtimes) == 5  # after each of 5 epochs; the final evaluation of the best is not
    inside, final = sum(runtimes), metrics["target/eval_runtime"]  # logged, but is the result's
    assert inside <= metrics["target/train_paused_seconds"] < inside + final / 2


def test_each_stage_runs_its_own_schedule(tmp_path) -> None:
    metrics, logs = train(
        # Stage 1 of 3 steps an epoch, not 19: dev is scored and saved at every step here.
        tmp_path, *TAGGING, "injection_task.generator_sizes.train=48",
        "injection_task.generator_sizes.validation=32", "injection_task.evals_per_epoch=100",
        "target_task.epochs=2",
        "target_task.evals_per_epoch=100", "target_task.lr=1e-3", "target_task.batch_size=16",
        "lr_schedule@injection_lr_schedule=discriminative", "injection_lr_schedule.shape=constant",
        "injection_lr_schedule.warmup_ratio=0", "lr_schedule=linear", "lr_schedule.warmup_ratio=0.25",
    )  # fmt: skip
    # Logged every step: the task's rate as scheduled at that step, whatever the parts' multipliers
    # (the Trainer's own is the first optimizer group's: stage 1's embeddings at 0.1x).
    stage1 = series(logs, "injection/learning_rate")
    assert len(stage1) == 9 and {lr for _, lr in stage1} == {3e-3}  # 3 steps x 3 epochs
    assert metrics["injection/lr/embeddings"] == pytest.approx(3e-4)
    stage2 = [lr for _, lr in series(logs, "target/learning_rate")]
    assert len(stage2) == 4  # 2 steps x 2 epochs: warmup of one step, then linear decay
    assert stage2 == pytest.approx([0.0, 1e-3, 1e-3 * 2 / 3, 1e-3 / 3])
    assert metrics["target/lr/head"] == 1e-3 and metrics["injection/lr/head"] == 3e-3


@pytest.mark.parametrize("warmup", [0.1, 0.0])
def test_a_best_checkpoint_after_one_step_at_lr_0_is_called_the_model_as_given(
    tmp_path, caplog, warmup
) -> None:
    # 2 steps, dev after each, a rate that changes nothing: the first of equal bests is step 1
    metrics, _ = train(
        tmp_path, "injection_task=none", "target_task.generator_sizes.train=32",
        "target_task.batch_size=16", "target_task.epochs=1", "target_task.lr=1e-12",
        f"lr_schedule.warmup_ratio={warmup}",
    )  # fmt: skip
    assert metrics["target/best_step"] == 1
    warned = [
        r.getMessage() for r in caplog.records if "taken after a step at lr 0" in r.getMessage()
    ]
    if warmup:  # step 1 ran at lr 0
        assert warned == [
            "target: the best dev checkpoint is step 1, taken after a step at lr 0 (warmup starts "
            "from 0): the model as given; no later one beat it"
        ]
    else:  # step 1 trained (a little)
        assert warned == []
    # Recorded, so that the table notes the row (sweep_notes.FLAGS)
    assert metrics["target/best_untrained"] == (1.0 if warmup else 0.0)


def test_epochs_zero_only_evaluates_the_model_it_was_given(tmp_path) -> None:
    metrics, logs = train(tmp_path, *TAGGING)
    assert not series(logs, "target/loss") and not series(logs, "target/learning_rate")
    assert metrics["target/train_runtime"] == 0.0
    assert metrics["target/best_step"] == 0.0  # the model as given
    assert "target/train_loss" not in metrics
    assert "target/eval_model_preparation_time" not in metrics  # no dev metric
    assert len(series(logs, "target/eval_accuracy")) == 1


# --- transplant -------------------------------------------------------------------------------


def deterministic(metrics: dict[str, Any], stage: str) -> dict[str, float]:
    measured = ("runtime", "per_second", "_seconds", "peak_", "_rss_")
    return {
        k: v
        for k, v in metrics.items()
        if k.startswith(stage) and not any(m in k for m in measured)
    }


@pytest.mark.slow
def test_transplant_of_untrained_layers_changes_nothing_and_of_trained_ones_does(
    tmp_path, keyword
) -> None:
    stage2 = (*keyword, *LEARNS[1:], "layer_split.stage2.policy=train")
    stage1 = (
        "injection_task.generator_sizes.train=64",
        "injection_task.generator_sizes.validation=32",
    )
    baseline, _ = train(tmp_path / "none", *stage2, "injection_task=none")
    identity, _ = train(tmp_path / "zero", *stage2, *stage1, "injection_task.epochs=0")
    injected, _ = train(tmp_path / "one", *stage2, *stage1, "injection_task.epochs=1",
                        "injection_task.lr=1e-2")  # fmt: skip
    assert identity["injection/train_runtime"] == 0.0
    assert deterministic(identity, "target/") == deterministic(baseline, "target/")
    assert identity["target/eval_loss"] != injected["target/eval_loss"]
    assert deterministic(injected, "target/") != deterministic(baseline, "target/")


# --- failures ---------------------------------------------------------------------------------


@pytest.mark.slow
def test_dataloader_workers_change_no_number(tmp_path) -> None:
    # trainer.dataloader_workers is result-neutral (left out of the result and stage-1 keys): with
    # workers, several evaluations and epochs per stage must leave the random stream as without.
    shrink = (
        "injection_task.generator_sizes.train=96", "injection_task.generator_sizes.validation=32",
        "target_task.generator_sizes.train=96", "target_task.generator_sizes.validation=32",
        "injection_task.epochs=2", "target_task.epochs=2", "injection_task.batch_size=16",
        "target_task.batch_size=16",
    )  # fmt: skip
    without, logs_without = train(tmp_path / "a", *shrink)
    with_workers, logs_with = train(tmp_path / "b", *shrink, "trainer.dataloader_workers=2")
    measured = ("runtime", "per_second", "_seconds", "peak_", "_rss_")
    assert {k: v for k, v in with_workers.items() if not any(m in k for m in measured)} == {
        k: v for k, v in without.items() if not any(m in k for m in measured)
    }
    for key in ("injection/loss", "target/loss"):
        losses = [v for _, v in series(logs_without, key)]
        assert len(losses) >= 4 and [v for _, v in series(logs_with, key)] == losses, key


@pytest.mark.slow
@pytest.mark.parametrize(("mode", "passed"), [("default", "default"),
                                              ("reduce_overhead", "reduce-overhead")])  # fmt: skip
def test_compile_compiles_each_stages_encoder_in_the_mode_asked(
    tmp_path, monkeypatch, mode: str, passed: str
) -> None:
    # CUDA graphs (reduce-overhead) only run on a GPU: here, that the mode reaches torch.compile
    # for each stage's encoder, and that nothing is compiled without trainer.compile.
    calls: list[tuple[str, str]] = []
    monkeypatch.setattr(
        torch.nn.Module,
        "compile",
        lambda self, **kw: calls.append((type(self).__name__, kw["mode"])),
    )
    shrink = (*TAGGING[:2], "injection_task.epochs=1", *TAGGING[5:7], "target_task.epochs=1")
    train(tmp_path / "eager", *shrink)
    assert calls == []
    train(tmp_path / "compiled", *shrink, "trainer.compile=true", f"trainer.compile_mode={mode}")
    assert calls == [("BertModel", passed)] * 2  # stage 1's encoder, then stage 2's


def test_non_finite_loss_stops_the_stage_at_its_step(tmp_path, keyword) -> None:
    with pytest.raises(LayerftError) as caught:
        train(tmp_path, *keyword, *LEARNS, "target_task.lr=1e30", "target_task.max_grad_norm=0")
    message = str(caught.value)
    assert message.startswith("target stage: training loss is nan at step ")
    step = int(message.split("at step ")[1].split(";")[0])
    assert 2 <= step <= 4  # warmup: step 1 has lr 0; the first update makes the weights inf
    assert "target_task.lr=1e+30" in message
    assert "or clip gradients: target_task.max_grad_norm is 0 (off); 1.0 is usual" in message


def test_weights_broken_by_the_last_update_stop_the_stage_at_the_dev_evaluation(tmp_path) -> None:
    # Two steps: step 1 runs at lr 0 (warmup), step 2's update makes the weights inf; no training
    # loss is computed on them, but the dev evaluation after step 2 is.
    with pytest.raises(LayerftError, match=r"^target stage: dev loss is nan after step 2: "):
        train(tmp_path, "injection_task=none", "target_task.generator_sizes.train=64",
              "target_task.generator_sizes.validation=32", "target_task.epochs=1",
              "target_task.lr=1e30", "target_task.max_grad_norm=0")  # fmt: skip


@pytest.mark.parametrize(
    ("hook", "extra"),
    [
        ("training_step", ()),  # of 125 steps
        ("prediction_step", ("target_task.epochs=0", "target_task.batch_size=4")),  # of 50 batches
    ],
)
def test_a_ctrl_c_python_lost_stops_at_the_next_step_or_dev_batch(
    tmp_path, monkeypatch, hook: str, extra: tuple[str, ...]
) -> None:
    # Python drops a KeyboardInterrupt raised inside a garbage collector's callback; the handler
    # has remembered it, and the next training step or dev batch stops the run.
    from layerft import interrupts, phase_trainer

    calls: list[int] = []
    original = getattr(phase_trainer.PhaseTrainer, hook)

    def then_lost_ctrl_c(self, *args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        output = original(self, *args, **kwargs)
        monkeypatch.setattr(interrupts, "_pressed", True)  # in train.py or a sweep:
        monkeypatch.setattr(interrupts, "_remembering", True)  # remembered_interrupts is on
        return output

    monkeypatch.setattr(phase_trainer.PhaseTrainer, hook, then_lost_ctrl_c)
    with pytest.raises(KeyboardInterrupt):
        train(tmp_path, *LEARNS, *extra)
    assert len(calls) == 1


def test_fp16_on_a_machine_without_a_gpu_is_refused(tmp_path) -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU: fp16 is honoured")
    with pytest.raises(LayerftError, match=r"^trainer.precision=fp16 needs a CUDA GPU"):
        train(tmp_path, "injection_task=none", "target_task.generator_sizes.train=32",
              "target_task.generator_sizes.validation=32", "trainer.precision=fp16")  # fmt: skip


def test_bf16_on_a_machine_without_a_gpu_trains_with_cpu_autocast(tmp_path) -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU: bf16 runs there")
    metrics, _ = train(tmp_path, "injection_task=none", "target_task.generator_sizes.train=32",
                       "target_task.generator_sizes.validation=32", "target_task.epochs=1",
                       "trainer.precision=bf16")  # fmt: skip
    assert metrics["target/train_loss"] > 0 and metrics["target/eval_loss"] > 0


def test_merged_optimizer_groups_cover_every_trainable_parameter_once(tmp_path) -> None:
    from layerft.lr_schedule import build_optimizer
    from layerft.parts import parameter_parts
    from layerft.stage_models import build_target_model

    cfg = compose_run("model=tiny", "injection_task=none", "lr_schedule=layerwise_decay")
    model, multipliers = build_target_model(cfg, None)
    optimizer = build_optimizer(model, parameter_parts(model), 1e-3, 0.01, multipliers)
    keys = [(g["lr"], g["weight_decay"]) for g in optimizer.param_groups]
    # layer-wise decay: embeddings, 4 layers and the head at 6 rates, each with and without decay.
    assert len(keys) == len(set(keys)) == 12
    grouped = [id(p) for g in optimizer.param_groups for p in g["params"]]
    assert sorted(grouped) == sorted(id(p) for p in model.parameters() if p.requires_grad)
    uniform = compose_run("model=tiny", "injection_task=none")
    model, multipliers = build_target_model(uniform, None)
    optimizer = build_optimizer(model, parameter_parts(model), 1e-3, 0.01, multipliers)
    assert len(optimizer.param_groups) == 2  # decay and no decay, whatever the number of parts
    assert math.isclose(optimizer.param_groups[0]["lr"], 1e-3)


@pytest.mark.slow
def test_compiled_encoder_computes_the_same_losses_and_updates_as_eager() -> None:
    import torch

    from layerft.lr_schedule import build_optimizer
    from layerft.parts import parameter_parts
    from layerft.stage_models import build_target_model

    cfg = compose_run("model=tiny", "injection_task=none")
    eager, _ = build_target_model(cfg, None)
    compiled, _ = build_target_model(cfg, None)
    compiled.backbone.compile()  # what trainer.compile=true does, in place
    generator = torch.Generator().manual_seed(0)
    batches = [
        {
            "input_ids": torch.randint(5, 100, (8, 24), generator=generator),
            "attention_mask": torch.ones(8, 24, dtype=torch.long),
            "labels": torch.randint(0, 2, (8,), generator=generator),
        }
        for _ in range(3)
    ]
    losses = {}
    for name, model in (("eager", eager), ("compiled", compiled)):
        model.eval()  # no dropout: eager and compiled code draw different random masks
        optimizer = build_optimizer(model, parameter_parts(model), 1e-3, 0.0, {}, fused=True)
        losses[name] = []
        for batch in batches:
            loss = model(**batch).loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
            losses[name].append(loss.item())
    assert losses["compiled"] == pytest.approx(losses["eager"], rel=1e-4)
    assert losses["eager"][0] != losses["eager"][-1]  # the steps changed the weights
    for (name, a), b in zip(eager.named_parameters(), compiled.parameters(), strict=True):
        assert torch.allclose(a, b, rtol=1e-3, atol=1e-5), name
