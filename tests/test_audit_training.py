"""Lines a mutation audit of the training core found unguarded: the tracker run a run opens and its
name, the phase's steps, speed, callbacks and reported metrics, dev scores and predictions, and the
tokenized-data cache's atomic write (each test names what it pins)."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import torch
import wandb
from compose import compose_config, compose_run
from datasets import Dataset
from transformers import EvalPrediction

from layerft import callbacks, predictions, tokenized
from layerft.callbacks import ForwardLogs, GuardCheckpoints, PauseClock
from layerft.config import resolve_config, to_run_config
from layerft.errors import LayerftError
from layerft.evaluation import build_compute_metrics
from layerft.metrics import MetricInput
from layerft.model import load_tokenizer
from layerft.phase_trainer import PhaseSteps, _loss_guard, phase_speed
from layerft.run import train_stages
from layerft.run_record import RunRecord
from layerft.run_tracker import MAX_RUN_NAME, open_tracker, run_name, tracked_config
from layerft.stage_data import load_stage_data
from layerft.tokenized import tokenize

# --- the tracker run ----------------------------------------------------------------------------


@pytest.mark.parametrize("keep_earlier", [False, True])
def test_open_tracker_names_both_stages_and_removes_an_earlier_attempts_runs_unless_told(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, keep_earlier: bool
) -> None:
    # A two-stage run is an "injection+target" job whose tracker keeps each stage's selection
    # metric; the W&B runs an unfinished attempt left go first, unless a finished result's rerun
    # keeps them until it finishes.
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(wandb, "init", lambda **kwargs: calls.append(kwargs) or SimpleNamespace(
        id="abc", dir=str(tmp_path), define_metric=lambda *a, **k: None
    ))  # fmt: skip
    stale = tmp_path / "wandb" / "offline-run-20240101_000000-old"
    stale.mkdir(parents=True)
    overrides = ["injection_task=demo_pos", "tracker=wandb", "tracker.mode=offline", "model=tiny"]
    composed = compose_config(*overrides)
    cfg, resolved = to_run_config(composed), resolve_config(composed)
    choices = {"injection_task": "demo_pos", "target_task": "demo_sentiment",
               "layer_split": "lower_half", "tuning_mode": "full", "model": "tiny",
               "tracker": "wandb"}  # fmt: skip
    record = RunRecord.of(resolved, choices, overrides, ("target/eval_accuracy", True))
    opened = open_tracker(cfg, tmp_path, resolved, record, keep_earlier=keep_earlier)
    [init] = calls
    assert init["job_type"] == "injection+target"
    assert opened.selection == {"target/eval_accuracy": True, "injection/eval_token_f1": True}
    assert stale.is_dir() == keep_earlier


def test_the_tracked_config_drops_a_neutral_key_that_is_null_and_keeps_an_unread_null() -> None:
    # trainer.progress_bar is null by default (auto): it goes like any result-neutral key; an
    # unread key whose value is null (a disabled stage 1) stays as it is.
    resolved = {
        "trainer": {"progress_bar": None, "dataloader_workers": 0, "precision": "fp32"},
        "cache_dir": "~/.cache",
        "injection_task": None,
        "layer_split": {"stage1": None, "stage2": {"policy": "freeze"}},
    }
    tracked = tracked_config(resolved, ("layer_split.stage1", "layer_split.stage2.policy"))
    assert tracked == {
        "trainer": {"precision": "fp32"},
        "injection_task": None,
        "layer_split": {"stage1": None, "stage2": {}},
    }
    assert resolved["trainer"]["progress_bar"] is None  # the caller's config is left alone


def _record(choices: dict[str, str], *overrides: str) -> RunRecord:
    return RunRecord("f", "g", choices, 1, ["seed=1", *overrides], "target/eval_accuracy", True)


CHOICES = {"injection_task": "demo_pos", "target_task": "ag_news", "layer_split": "lower1",
           "tuning_mode": "full", "model": "tiny"}  # fmt: skip


def test_a_run_name_of_exactly_128_characters_is_kept_whole() -> None:
    head = "demo_pos ag_news lower1 full "
    path = "target_task.data_files.a=/"
    room = MAX_RUN_NAME - len(head) - len(path) - len(" s1")
    name = run_name(_record(CHOICES, path + "x" * room))
    assert name == head + path + "x" * room + " s1" and len(name) == MAX_RUN_NAME
    # one character more: the setting is counted instead
    assert run_name(_record(CHOICES, path + "x" * (room + 1))) == head + "+1 more s1"


def test_a_run_name_whose_choices_alone_are_too_long_is_cut_to_128_keeping_the_seed() -> None:
    long_task = "t" * 150
    name = run_name(_record({**CHOICES, "target_task": long_task}))
    assert name == ("demo_pos " + long_task)[: MAX_RUN_NAME - 3] + " s1"
    assert len(name) == MAX_RUN_NAME


# --- the phase's steps, speed and callbacks -----------------------------------------------------


def test_phase_steps_count_batches_over_every_process() -> None:
    # 40 examples at batch 16 in each of 2 processes: 32 a step, 2 steps an epoch (the second
    # short), one evaluation a step when 4 are asked of a 2-step epoch.
    task = SimpleNamespace(batch_size=16, epochs=1.5, evals_per_epoch=4)
    assert PhaseSteps.of(40, task, world=2, stage="target") == PhaseSteps(
        num_examples=40, global_batch=32, steps_per_epoch=2, num_steps=3, eval_steps=1
    )
    assert PhaseSteps.of(
        40, SimpleNamespace(batch_size=4, epochs=1, evals_per_epoch=2), 1, "target"
    ) == (
        PhaseSteps(num_examples=40, global_batch=4, steps_per_epoch=10, num_steps=10, eval_steps=5)
    )


def test_phase_speed_counts_the_examples_seen_and_real_tokens_over_training_time_alone() -> None:
    # 5 steps of 16 over 40 examples (3 steps an epoch, the third of 8): one epoch and 2 steps,
    # 40 + 32 examples; 12 s of train() of which 2 s were evaluations and saves.
    steps = PhaseSteps(num_examples=40, global_batch=16, steps_per_epoch=3, num_steps=5,
                       eval_steps=1)  # fmt: skip
    trainer = SimpleNamespace(
        state=SimpleNamespace(global_step=5), tokens=SimpleNamespace(totals=lambda: (500, 800))
    )
    speed = phase_speed(trainer, {"train_runtime": 12.0, "train_loss": 0.25}, 2.0, steps, 10, 1)
    assert speed == {
        "train_loss": 0.25,
        "train_runtime": 10.0,
        "train_paused_seconds": 2.0,
        "train_samples_per_second": 7.2,
        "train_tokens_per_second": 50.0,
    }


@pytest.mark.parametrize(
    ("norm", "hint"),
    [
        (0.0, "lower target_task.lr=0.001, or clip gradients: target_task.max_grad_norm is 0 "
              "(off); 1.0 is usual"),
        (1.0, "lower target_task.lr=0.001, or target_task.max_grad_norm=1 (the norm gradients "
              "are clipped to)"),
    ],
)  # fmt: skip
def test_the_loss_guards_hint_names_clipping_as_the_task_sets_it(norm: float, hint: str) -> None:
    assert _loss_guard("target", SimpleNamespace(max_grad_norm=norm, lr=1e-3)).hint == hint


def test_a_non_finite_loss_before_any_update_is_not_blamed_on_the_learning_rate() -> None:
    """Step 1's loss, and a dev loss before training, are the weights as built: a NaN there (an
    adapter init_std of 1e30) was blamed on lr and max_grad_norm, which had not acted yet.
    Mutations: `step <= unchanged_steps` -> `step <= 2`, the unchanged hint unused, the mode's
    scale unnamed."""
    scale = "tuning_mode.adapter.init_std=1e+30 (the adapters' initial weights' std)"
    guard = _loss_guard("target", SimpleNamespace(max_grad_norm=1.0, lr=1e-3), scale, scale)
    nan = torch.tensor(float("nan"))
    with pytest.raises(LayerftError) as first:
        guard.record(nan, 1)
    assert str(first.value) == (
        "target stage: training loss is nan at step 1, before any update; stopped (not "
        f"target_task.lr: the model as built gives it; check {scale})"
    )
    with pytest.raises(LayerftError) as later:
        guard.record(nan, 2)
    assert str(later.value) == (
        "target stage: training loss is nan at step 2; stopped (lower target_task.lr=0.001, or "
        f"target_task.max_grad_norm=1 (the norm gradients are clipped to), or {scale})"
    )
    with pytest.raises(LayerftError, match=r"^target stage: dev loss is nan before any update; "):
        guard.check_dev_loss(float("nan"), 0)
    with pytest.raises(LayerftError, match=r"^target stage: dev loss is nan after step 1: "):
        guard.check_dev_loss(float("nan"), 1)
    guard.unchanged_steps = 2  # step 1 ran at lr 0 (warmup's start): step 2's loss is unchanged
    with pytest.raises(LayerftError) as warmup:
        guard.record(nan, 2)
    assert str(warmup.value) == (
        "target stage: training loss is nan at step 2, before any update (step 1 ran at lr 0, "
        f"warmup's start); stopped (not target_task.lr: the model as built gives it; check {scale})"
    )
    with pytest.raises(
        LayerftError, match=r"^target stage: dev loss is nan before any update \(step 1 ran"
    ):
        guard.check_dev_loss(float("nan"), 1)
    with pytest.raises(LayerftError, match=r"^target stage: training loss is nan at step 3; "):
        guard.record(nan, 3)


def test_an_infinite_gradient_norm_stops_the_stage() -> None:
    """lora.alpha=1e30 gave grad_norm=inf at every step: clipping zeroed each gradient, the loss
    stayed finite and the run ended with results that learned nothing, no error. (Every step's
    norm comes here through PhaseTrainer._get_grad_norm, which leaves fp16's to its loss scaler:
    test_audit_training2.) Mutation: no check."""
    guard = _loss_guard("target", SimpleNamespace(max_grad_norm=1.0, lr=1e-3), "x.alpha=1e+30")
    with pytest.raises(LayerftError) as caught:
        guard.record_grad_norm(torch.tensor(float("inf")), 4, clipped=True)
    assert str(caught.value) == (
        "target stage: gradient norm is inf at step 4: clipping turns the gradient into zeros or "
        "NaN; stopped (lower target_task.lr=0.001, or target_task.max_grad_norm=1 (the norm "
        "gradients are clipped to), or x.alpha=1e+30)"
    )
    guard.record_grad_norm(torch.tensor(3.5), 5, clipped=True)  # finite


def _fp16_steps(skips: list[bool], max_steps: int = 100, fp16: bool = True) -> None:
    """Optimizer steps 1.. under fp16, each skipped by the loss scaler or not, as the Trainer
    ends them (fp16 needs CUDA: torch's GradScaler cannot run here, so its verdict is faked)."""
    guard = _loss_guard("target", SimpleNamespace(max_grad_norm=1.0, lr=1e-3))
    checks, verdicts = GuardCheckpoints(guard), iter(skips)
    checks.step_was_skipped = lambda: next(verdicts)
    args = SimpleNamespace(fp16=fp16, max_grad_norm=1.0)
    control = SimpleNamespace(should_log=False, should_evaluate=False, should_save=False)
    for step in range(1, len(skips) + 1):
        checks.on_step_end(args, SimpleNamespace(global_step=step, max_steps=max_steps), control)


FP16_HINT = (
    "(infinite or NaN gradients at every scale), the weights unchanged since; stopped (use "
    "trainer.precision=bf16 or fp32, or lower target_task.lr=0.001, or target_task.max_grad_norm=1 "
    "(the norm gradients are clipped to))"
)


def test_fp16_stops_after_32_skipped_steps_in_a_row() -> None:
    """Every step overflowing under fp16 trained nothing, and the phase finished without a word.
    Mutations: no count, `>=` -> `>`, the count not reset by a step taken."""
    _fp16_steps([False] + [True] * 31 + [False] + [True] * 31)  # 31 in a row: a scaler's start
    _fp16_steps([True] * 40, fp16=False)  # not counted without fp16
    with pytest.raises(LayerftError) as caught:
        _fp16_steps([False] * 3 + [True] * 32 + [False])
    assert (
        str(caught.value) == f"target stage: fp16's loss scaler skipped steps 4 to 35 {FP16_HINT}"
    )


def test_fp16_stops_at_the_end_of_a_phase_whose_every_step_was_skipped() -> None:
    """A phase shorter than 32 steps, all skipped. Mutation: no end-of-phase rule."""
    _fp16_steps([True, False, True], max_steps=3)  # one update: it trained
    with pytest.raises(LayerftError) as caught:
        _fp16_steps([True] * 3, max_steps=3)
    assert str(caught.value) == (
        "target stage: fp16's loss scaler skipped steps 1 to 3 (gradients overflowing at each scale "
        "tried; it starts at 2**16 and halves at each skip, so a phase this short may end before "
        "a scale that fits), the weights unchanged since; stopped (use trainer.precision=bf16 or fp32, or "
        "lower target_task.lr=0.001, or target_task.max_grad_norm=1 (the norm gradients are "
        "clipped to))"
    )


def test_an_infinite_gradient_norm_unclipped_is_not_blamed_on_clipping() -> None:
    """With max_grad_norm=0 the Trainer still logs the norm, and lora.alpha=1e30 trained nothing
    as well (AdamW's second moment overflows); the stop had said clipping zeroed the gradient."""
    guard = _loss_guard("target", SimpleNamespace(max_grad_norm=0, lr=1e-3), "x.alpha=1e+30")
    with pytest.raises(LayerftError) as caught:
        guard.record_grad_norm(torch.tensor(float("inf")), 4, clipped=False)
    assert str(caught.value).startswith(
        "target stage: gradient norm is inf at step 4: unclipped, AdamW turns its update into "
        "zeros or NaN; stopped"
    ), caught.value


@pytest.mark.parametrize(
    ("mode", "scale"),
    [
        ("lora", "tuning_mode.lora.alpha=16 (LoRA's output is scaled by alpha / rank = 2)"),
        ("layerwise_adapter", "tuning_mode.adapter.init_std=0.001 (the adapters' initial weights' std)"),
        ("full", ""),
    ],
)  # fmt: skip
def test_a_tuning_mode_names_the_setting_scaling_its_modules(mode: str, scale: str) -> None:
    assert compose_run("model=tiny", f"tuning_mode={mode}").tuning_mode.scale_setting() == scale


@pytest.mark.parametrize(
    ("mode", "checked"),
    [
        ("lora", "its weights"),  # not lora.alpha: peft starts B at zero, LoRA adds nothing yet
        ("layerwise_adapter", "tuning_mode.adapter.init_std=0.001 (the adapters' initial weights' std)"),
        ("full", "its weights"),
    ],
)  # fmt: skip
def test_a_nan_before_any_update_names_only_a_setting_the_built_model_depends_on(
    mode: str, checked: str
) -> None:
    """A LoRA model as built is its backbone (B = 0), whatever alpha: step 1's NaN named
    tuning_mode.lora.alpha, which changes nothing there. Later NaNs still name it."""
    cfg = compose_run("model=tiny", f"tuning_mode={mode}")
    modes = (cfg.tuning_mode.scale_setting(), cfg.tuning_mode.init_setting())
    guard = _loss_guard("target", SimpleNamespace(max_grad_norm=1.0, lr=1e-3), *modes)
    nan = torch.tensor(float("nan"))
    with pytest.raises(LayerftError) as first:
        guard.record(nan, 1)
    assert str(first.value).endswith(f"the model as built gives it; check {checked})")
    with pytest.raises(LayerftError) as later:
        guard.record(nan, 2)
    assert str(later.value).endswith(f", or {modes[0]})" if modes[0] else "clipped to))")


def _state(**kwargs: Any) -> SimpleNamespace:
    """A TrainerState stand-in: rank 0, step 4 of 10, best at 2 (`kwargs` set or replace)."""
    return SimpleNamespace(**{"is_world_process_zero": True, "global_step": 4,
                              "best_global_step": 2, "max_steps": 10, **kwargs})  # fmt: skip


def test_forward_logs_send_every_number_with_the_tasks_scheduled_lr() -> None:
    sent: list[tuple[dict[str, float], int]] = []
    forward = ForwardLogs("target", lambda numbers, step: sent.append((numbers, step)), 1e-3)
    # the first optimizer group is the embeddings' at 0.1x: its rate scaled back to the task's
    scheduler = SimpleNamespace(base_lrs=[1e-4])
    logs = {"loss": 0.5, "learning_rate": 5e-5, "epoch": 1, "grad_norm": 2, "note": "text"}
    forward.on_log(None, _state(), None, logs=logs, lr_scheduler=scheduler)
    assert sent == [({"target/loss": 0.5, "target/learning_rate": pytest.approx(5e-4),
                      "target/epoch": 1.0, "target/grad_norm": 2.0}, 4)]  # fmt: skip
    assert type(sent[0][0]["target/epoch"]) is float
    # a group at lr 0 cannot be scaled: its rate as logged
    forward.on_log(None, _state(), None, logs={"learning_rate": 0.0},
                   lr_scheduler=SimpleNamespace(base_lrs=[0.0]))  # fmt: skip
    assert sent[-1] == ({"target/learning_rate": 0.0}, 4)
    # train()'s closing times include its evaluations: logged, never sent
    forward.on_log(None, _state(), None, logs={"train_runtime": 9.0, "epoch": 1.0})
    assert len(sent) == 2


def test_forward_logs_of_the_best_checkpoints_rescoring_drop_the_epoch(caplog) -> None:
    sent: list[Any] = []
    forward = ForwardLogs("target", lambda numbers, step: sent.append(numbers), 1e-3)
    forward.train_done = True
    with caplog.at_level(logging.INFO, logger="layerft.callbacks"):
        forward.on_log(None, _state(), None, logs={"eval_loss": 0.25, "epoch": 3.0})
    assert sent == []
    assert caplog.messages == ["target best checkpoint (step 2): eval_loss=0.25"]


def test_the_pause_clock_adds_each_evaluation_and_the_save_after_it(monkeypatch) -> None:
    now = iter([10.0, 12.5, 30.0])
    monkeypatch.setattr(callbacks.time, "perf_counter", lambda: next(now))
    clock = PauseClock()
    clock.on_evaluate(None, None, None, metrics={"eval_runtime": 1.5})  # ends at 10.0
    clock.on_save(None, None, None)  # at 12.5: 2.5 s of saving
    assert clock.seconds == 4.0
    clock.on_save(None, None, None)  # a save after no new evaluation adds nothing
    assert clock.seconds == 4.0


def test_loss_checks_are_settled_at_the_last_step_even_when_nothing_logs() -> None:
    drained: list[int] = []
    guard = SimpleNamespace(drain=lambda: drained.append(1))
    control = SimpleNamespace(should_log=False, should_evaluate=False, should_save=False)
    checks = GuardCheckpoints(guard)
    args = SimpleNamespace(fp16=False)  # no skipped steps to count
    checks.on_step_end(args, _state(), control)
    assert drained == []
    checks.on_step_end(args, SimpleNamespace(global_step=10, max_steps=10), control)
    assert drained == [1]


# --- a trained phase's metrics ------------------------------------------------------------------

# Target stage alone on model=tiny: 40 examples at batch 16 (3 steps, the last of 8), dev after
# each step; and the same stage with no training.
TARGET_ONLY = ("model=tiny", "tracker=none", "injection_task=none",
               "target_task.generator_sizes.train=40", "target_task.generator_sizes.validation=16",
               "target_task.batch_size=16", "target_task.evals_per_epoch=3")  # fmt: skip


def _train_target(folder: Path, *overrides: str) -> tuple[dict[str, float], list[Any], Path]:
    cfg = compose_run(*TARGET_ONLY, f"cache_dir={folder / 'cache'}", *overrides)
    logs: list[Any] = []
    run_dir = folder / "run"
    run_dir.mkdir(parents=True)
    metrics, _ = train_stages(
        cfg, load_stage_data(cfg), run_dir, lambda n, step: logs.append((step, n))
    )
    return metrics, logs, run_dir


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, float], list[Any], Path]:
    return _train_target(tmp_path_factory.mktemp("trained"), "target_task.epochs=1")


def test_a_trained_phase_reports_each_parts_peak_lr_once_by_part(trained) -> None:
    metrics, _, _ = trained
    # `head` and `head/no_decay` are one part (its biases and norms train without decay)
    assert {k: v for k, v in metrics.items() if "/lr/" in k} == {
        "target/lr/embeddings": 5e-5, "target/lr/layer.0": 5e-5, "target/lr/layer.1": 5e-5,
        "target/lr/layer.2": 5e-5, "target/lr/layer.3": 5e-5, "target/lr/head": 5e-5,
    }  # fmt: skip


def test_a_trained_phase_reports_no_epoch_as_a_dev_score_and_leaves_no_checkpoints(
    trained,
) -> None:
    metrics, logs, run_dir = trained
    assert "target/eval_epoch" not in metrics and metrics["target/best_step"] in (1.0, 2.0, 3.0)
    assert metrics["target/best_epoch"] == metrics["target/best_step"] / 3
    assert not (run_dir / "checkpoints").exists()  # the stage's folder and the one above it
    # its speed closes the dev curve at the last step
    [(step, speed)] = [(s, n) for s, n in logs if "target/train_samples_per_second" in n]
    assert (
        step == 3
        and speed["target/train_samples_per_second"] == (metrics["target/train_samples_per_second"])
    )


def test_an_untrained_phase_reports_its_best_step_and_epoch_as_zero(tmp_path: Path) -> None:
    metrics, _, _ = _train_target(tmp_path, "target_task.epochs=0")
    assert {
        k: metrics[f"target/{k}"]
        for k in ("train_runtime", "train_paused_seconds", "best_step", "best_epoch")
    } == dict.fromkeys(  # fmt: skip
        ("train_runtime", "train_paused_seconds", "best_step", "best_epoch"), 0.0
    )


# --- the tokenized-data cache -------------------------------------------------------------------


def _sentiment() -> tuple[Any, Any, Dataset]:
    task = compose_run("model=tiny", "target_task=demo_sentiment").target_task
    records = Dataset.from_list([{"text_a": "a b c", "label": 1}, {"text_a": "d e", "label": 0}])
    return task, load_tokenizer(compose_run("model=tiny").model), records


def test_a_tokenized_entry_is_renamed_into_place_leaving_no_temporary_folder(
    tmp_path: Path,
) -> None:
    task, tokenizer, records = _sentiment()
    encoded = tokenize(records, task, tokenizer, tmp_path / "tokenized", key="k")
    assert [p.name for p in (tmp_path / "tokenized").iterdir()] == ["k.arrow"]
    assert encoded["length"] == [5, 4]  # [CLS] a b c [SEP], [CLS] d e [SEP]


def test_a_failed_tokenized_write_leaves_nothing_in_the_cache(tmp_path: Path, monkeypatch) -> None:
    def full_disk(task: Any, tokenizer: Any) -> Any:
        def encode(batch: Any, indices: list[int]) -> Any:
            raise OSError(28, "No space left on device")

        return encode

    monkeypatch.setattr(tokenized, "_encoder", full_disk)
    task, tokenizer, records = _sentiment()
    cache = tmp_path / "tokenized"
    with pytest.raises(LayerftError) as caught:
        tokenize(records, task, tokenizer, cache, key="k")
    assert str(caught.value) == (
        f"cannot write tokenized data into cache_dir folder {cache} (No space left on device); "
        "set cache_dir=<a writable folder>"
    )
    assert list(cache.iterdir()) == []


# --- dev scores ---------------------------------------------------------------------------------


def test_dev_scores_are_plain_floats_the_predicted_classes_count_too() -> None:
    # ForwardLogs sends only int and float values to the tracker (a numpy float32 is neither)
    task = compose_run("model=tiny", "target_task=demo_sentiment").target_task
    scorer = build_compute_metrics(task, Dataset.from_list([{"x": 0}] * 4), [])
    logits = np.array([[0.9, 0.1], [0.2, 0.8], [0.3, 0.7], [0.6, 0.4]], dtype=np.float32)
    scores = scorer(EvalPrediction(predictions=logits, label_ids=np.array([0, 1, 0, 0])))
    # macro F1: class 0 at P 1, R 2/3 (0.8), class 1 at P 1/2, R 1 (2/3)
    assert scores == {"accuracy": 0.75, "macro_f1": (0.8 + 2 / 3) / 2, "predicted_classes": 2.0}
    assert {type(v) for v in scores.values()} == {float}


def test_dev_predictions_of_a_probability_metric_name_the_classes(tmp_path: Path) -> None:
    # klue_re's best metric reads class probabilities: its items are still classes by name
    task = compose_run("model=tiny", "target_task=klue_re").target_task
    last = {"input": MetricInput.class_probabilities, "predictions": [0, 2], "references": [1, 0],
            "probabilities": [[0.5, 0.2, 0.3], [0.1, 0.1, 0.8]]}  # fmt: skip
    scorer = SimpleNamespace(last=last, sources=[{"record": 1}, {"record": 2}])
    predictions.write_partial(tmp_path, task, {"validation": scorer})
    text = (tmp_path / f"{predictions.PREDICTIONS_FILE}.partial").read_text(encoding="utf-8")
    names = task.label_names
    assert [json.loads(line) for line in text.splitlines()] == [
        {"split": "validation", "index": 0, "record": 1, "prediction": names[0],
         "reference": names[1]},
        {"split": "validation", "index": 1, "record": 2, "prediction": names[2],
         "reference": names[0]},
    ]  # fmt: skip
