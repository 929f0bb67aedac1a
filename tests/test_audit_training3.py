"""Lines a third mutation audit of the training core found unguarded: the Trainer's arguments as
configured, the phase trainer's stage and dev sources, tokens counted and MFU on a known GPU, the
callbacks' rank, lr, pause and progress-bar lines, the loss checks before each log, evaluation or
save, the dev scorer's sources and key checks, and peak memory as the kernel reports it or as
sampled (each test names the mutation it kills)."""

from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import torch
from compose import compose_run
from datasets import Dataset
from test_audit_training import (  # noqa: F401 - trained: a fixture, trained once here
    TARGET_ONLY,
    _state,
    trained,
)
from test_audit_training2 import _phase_trainer
from transformers import EvalPrediction

from layerft import callbacks, memory, phase_trainer
from layerft.callbacks import ForwardLogs, GuardCheckpoints, PauseClock, StageProgress
from layerft.errors import LayerftError
from layerft.evaluation import build_compute_metrics
from layerft.memory import PeakMemory
from layerft.metrics import metric_spec
from layerft.phase_trainer import PhaseSteps, phase_speed, training_arguments
from layerft.stage_data import load_stage_data

MIB = 2**20

# --- the Trainer's arguments --------------------------------------------------------------------


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_the_trainers_arguments_are_the_tasks_and_the_runs_settings(
    monkeypatch: pytest.MonkeyPatch, precision: str
) -> None:
    """Mutations: each argument dropped (the Trainer's default: eval batch 8, max_grad_norm 1.0,
    lr 5e-5, best metric eval_loss, no label names, data_seed None, ...) or changed (eval batch of
    the train batch, save/log cadence apart from evaluations, optimizer state saved, nan/inf filter
    on, reporting to every integration, persistent workers, unused columns removed, bf16/fp16
    off)."""
    cfg = compose_run(
        "model=tiny", "injection_task=none", f"trainer.precision={precision}",
        "trainer.dataloader_workers=2", "target_task.batch_size=8", "target_task.lr=3e-4",
        "target_task.max_grad_norm=0.5",
    )  # fmt: skip
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    # The arguments as given: TrainingArguments itself would refuse fp16 without a GPU.
    monkeypatch.setattr(phase_trainer, "TrainingArguments", dict)
    # 40 examples at batch 8: 5 steps an epoch, 2 epochs, an evaluation every 2 steps
    steps = PhaseSteps(num_examples=40, global_batch=8, steps_per_epoch=5, num_steps=10,
                       eval_steps=2)  # fmt: skip
    args = training_arguments(cfg.target_task, cfg.trainer, 5, Path("/x/checkpoints"), steps)
    for device_dependent in ("dataloader_pin_memory", "accelerator_config", "use_cpu"):
        args.pop(device_dependent)  # tests/test_config.py and test_processes.py pin these
    assert args == {
        "output_dir": "/x/checkpoints", "max_steps": 10, "per_device_train_batch_size": 8,
        "per_device_eval_batch_size": 16, "learning_rate": 3e-4, "max_grad_norm": 0.5,
        "eval_strategy": "steps", "eval_steps": 2, "save_strategy": "steps", "save_steps": 2,
        "save_total_limit": 1, "save_only_model": True, "load_best_model_at_end": True,
        "metric_for_best_model": "accuracy", "greater_is_better": True,
        "label_names": ["labels"], "logging_steps": 2, "logging_nan_inf_filter": False,
        "report_to": "none", "seed": 5, "data_seed": 5, "bf16": precision == "bf16",
        "fp16": precision == "fp16", "train_sampling_strategy": "random",
        "dataloader_num_workers": 2, "dataloader_persistent_workers": False,
        "disable_tqdm": True, "remove_unused_columns": False,
    }  # fmt: skip


# --- the phase trainer --------------------------------------------------------------------------


def test_the_phase_trainer_names_its_stage_and_scores_with_the_dev_records_sources(
    tmp_path: Path,
) -> None:
    """Mutations: StageProgress labelled "target" whatever the stage; build_compute_metrics
    without data.validation_sources (dev predictions then name no record)."""
    trainer = _phase_trainer(tmp_path, "trainer.progress_bar=true", stage="injection")
    [bar] = [c for c in trainer.callback_handler.callbacks if isinstance(c, StageProgress)]
    assert bar.stage == "injection" and trainer.guard.stage == "injection"
    # 16 dev records, numbered from 1 in file order
    assert [s["record"] for s in trainer.compute_metrics.sources] == list(range(1, 17))


def test_a_trained_phase_counts_the_real_tokens_and_examples_it_trained_on(
    trained,  # noqa: F811 - the fixture imported above
    tmp_path: Path,
) -> None:
    """Mutation: PhaseTrainer.training_step without `self.tokens.count(inputs)` (0 tokens/s)."""
    metrics, _, _ = trained
    cfg = compose_run(*TARGET_ONLY, f"cache_dir={tmp_path}")
    # one epoch of the 40 training examples, each once: its real tokens are their lengths
    real = sum(load_stage_data(cfg).target.train["length"])
    runtime = metrics["target/train_runtime"]
    assert metrics["target/train_tokens_per_second"] * runtime == pytest.approx(real, rel=1e-9)
    assert metrics["target/train_samples_per_second"] * runtime == pytest.approx(40, rel=1e-9)


def test_phase_speed_reports_mfu_on_a_gpu_it_knows(monkeypatch: pytest.MonkeyPatch) -> None:
    """Mutations: `peak is not None` inverted, real tokens for padded ones, the world left out,
    the peak in FLOP/s rather than TFLOP/s."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda: "NVIDIA H100 80GB HBM3")
    steps = PhaseSteps(num_examples=40, global_batch=16, steps_per_epoch=3, num_steps=5,
                       eval_steps=1)  # fmt: skip
    trainer = SimpleNamespace(
        state=SimpleNamespace(global_step=5), tokens=SimpleNamespace(totals=lambda: (500, 800))
    )
    speed = phase_speed(trainer, {"train_runtime": 12.0, "train_loss": 0.25}, 2.0, steps, 10, 2)
    # 6 FLOPs per parameter per padded token: 6 * 10 * 800 over 10 s, against 2 H100s (SXM:
    # 989 TFLOP/s each)
    assert speed["mfu"] * 989e12 * 2 == pytest.approx(6 * 10 * 800 / 10)  # mfu is about 2e-12
    assert speed["mfu_peak_tflops"] == pytest.approx(989.0)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda: "a GPU layerft does not know")
    speed = phase_speed(trainer, {"train_runtime": 12.0, "train_loss": 0.25}, 2.0, steps, 10, 2)
    assert "mfu" not in speed and "mfu_peak_tflops" not in speed


# --- the callbacks ------------------------------------------------------------------------------


def test_forward_logs_send_nothing_from_another_process_or_for_no_logs() -> None:
    """Mutations: `not state.is_world_process_zero` dropped (every process sends the same
    numbers); `not logs` dropped (an empty record sent)."""
    sent: list[Any] = []
    forward = ForwardLogs("target", lambda numbers, step: sent.append((numbers, step)), 1e-3)
    forward.on_log(None, _state(is_world_process_zero=False), None, logs={"loss": 0.5})
    forward.on_log(None, _state(), None, logs={})
    assert sent == []


def test_forward_logs_scale_the_first_groups_lr_back_to_the_tasks() -> None:
    """Mutation: `base_lrs[0]` -> `base_lrs[-1]`. The Trainer logs group 0's rate (the embeddings'
    1e-4 at 0.1x of the task's 1e-3): 5e-5 logged is half way, so the task's 5e-4; the head's
    base 1e-3 would give 5e-5."""
    sent: list[Any] = []
    forward = ForwardLogs("target", lambda numbers, step: sent.append(numbers), 1e-3)
    scheduler = SimpleNamespace(base_lrs=[1e-4, 1e-3])
    forward.on_log(None, _state(), None, logs={"learning_rate": 5e-5}, lr_scheduler=scheduler)
    assert sent == [{"target/learning_rate": pytest.approx(5e-4)}]


def test_the_pause_clock_adds_up_every_evaluation(monkeypatch: pytest.MonkeyPatch) -> None:
    """Mutation: `self.seconds +=` -> `=` in on_evaluate (only the last evaluation counted)."""
    now = iter([10.0, 12.5, 20.0, 21.0])
    monkeypatch.setattr(callbacks.time, "perf_counter", lambda: next(now))
    clock = PauseClock()
    clock.on_evaluate(None, None, None, metrics={"eval_runtime": 1.5})  # ends at 10.0
    clock.on_save(None, None, None)  # 2.5 s
    clock.on_evaluate(None, None, None, metrics={"eval_runtime": 0.5})  # ends at 20.0
    clock.on_save(None, None, None)  # 1.0 s
    assert clock.seconds == 1.5 + 2.5 + 0.5 + 1.0


def test_the_stage_bar_is_labelled_and_prints_no_log_dicts(capsys: pytest.CaptureFixture) -> None:
    """Mutations: set_description(stage) dropped; StageProgress.on_log printing the Trainer's raw
    dict above the bar; `training_bar is not None` dropped (another process has no bar)."""
    progress = StageProgress("injection")
    progress.on_train_begin(None, _state(max_steps=3), None)
    try:
        assert progress.training_bar.desc == "injection: "  # tqdm shows "injection:  33%|..."
        progress.on_log(None, _state(), None, logs={"loss": 0.5})
    finally:
        progress.training_bar.close()
    shown = capsys.readouterr()
    assert "loss" not in shown.out + shown.err
    other = StageProgress("injection")
    other.on_train_begin(None, _state(is_world_process_zero=False, max_steps=3), None)
    assert other.training_bar is None


@pytest.mark.parametrize("flag", ["should_log", "should_evaluate", "should_save"])
def test_loss_checks_are_settled_before_each_log_evaluation_or_save(flag: str) -> None:
    """Mutations: each of should_log, should_evaluate, should_save dropped from on_step_end's
    condition (a non-finite loss could then reach that log, dev score or checkpoint)."""
    drained: list[int] = []
    control = SimpleNamespace(should_log=False, should_evaluate=False, should_save=False)
    setattr(control, flag, True)
    GuardCheckpoints(SimpleNamespace(drain=lambda: drained.append(1))).on_step_end(
        SimpleNamespace(fp16=False), _state(), control
    )
    assert drained == [1]


# --- dev scores ---------------------------------------------------------------------------------


def _sentiment_scorer(sources: Any = ()) -> Any:
    task = compose_run("model=tiny", "target_task=demo_sentiment").target_task
    return build_compute_metrics(task, Dataset.from_list([{"x": 0}] * 2), [], sources)


LOGITS = EvalPrediction(predictions=np.array([[0.9, 0.1], [0.2, 0.8]]), label_ids=np.array([0, 0]))


def test_the_dev_scorer_keeps_the_sources_it_is_given() -> None:
    """Mutations: build_compute_metrics or DevScorer dropping `sources` (dev predictions then
    name no record or id)."""
    sources = [{"record": 3, "id": "a"}, {"record": 7, "id": "b"}]
    assert _sentiment_scorer(sources).sources == sources


def test_a_metric_returning_an_undeclared_key_is_refused_by_name() -> None:
    """Mutations: check_returned_keys not called (accuracy's module returning macro_f1 would
    overwrite macro_f1's score); its difference taken the wrong way round; the declared keys
    left out of the message."""
    scorer = _sentiment_scorer()
    rogue = SimpleNamespace(compute=lambda **kwargs: {"accuracy": 1.0, "macro_f1": 0.0})
    scorer.modules = {"accuracy": (rogue, metric_spec("accuracy"))}
    with pytest.raises(LayerftError) as caught:
        scorer(LOGITS)
    assert str(caught.value) == (
        "metric 'accuracy' returned macro_f1, which its registry entry in "
        "layerft/metrics/__init__.py does not declare (declared: accuracy)"
    )


def test_a_best_metric_its_metrics_did_not_return_is_refused_naming_what_they_did() -> None:
    """Mutations: the best_metric check dropped (a KeyError later, or the best checkpoint picked
    by nothing); the returned keys left out of the message."""
    scorer = _sentiment_scorer()
    scorer.modules = {"macro_f1": scorer.modules["macro_f1"]}  # accuracy not computed
    with pytest.raises(LayerftError) as caught:
        scorer(LOGITS)
    assert str(caught.value) == (
        "task 'demo_sentiment': best_metric 'accuracy' was not returned by its metrics this time "
        "(they returned macro_f1, predicted_classes)"
    )


# --- peak memory --------------------------------------------------------------------------------


def test_no_resettable_peak_where_clear_refs_is_refused_or_vmhwm_absent(
    tmp_path: Path, monkeypatch
) -> None:
    """Mutations: `except OSError: return False` -> True; `kernel_peak_rss() is not None` ->
    True (the phase then reads no peak and never samples one)."""
    monkeypatch.setattr(memory, "_CLEAR_REFS", tmp_path / "no" / "clear_refs")
    assert memory.reset_peak_rss() is False
    monkeypatch.setattr(memory, "_CLEAR_REFS", tmp_path / "clear_refs")
    monkeypatch.setattr(memory, "_STATUS", tmp_path / "status")
    (tmp_path / "status").write_text("Name:\tpython\n")  # a kernel without VmHWM
    assert memory.reset_peak_rss() is False


def test_peak_memory_is_reported_in_mebibytes() -> None:
    """Mutations: `/ 2**20` -> `/ 1e6` in peak_rss_mb and in train_rss_growth_mb."""
    peak = PeakMemory()
    peak.peak_rss, peak.start_rss = 300 * MIB, 100 * MIB
    assert peak.metrics() == {"peak_rss_mb": 300.0, "train_rss_growth_mb": 200.0}


def test_the_cuda_peak_is_the_phases_own(monkeypatch: pytest.MonkeyPatch) -> None:
    """Mutations: reset_peak_memory_stats dropped on entry (an earlier stage's peak reported);
    max_memory_allocated -> memory_allocated (what is held at the end, not the peak)."""
    resets: list[int] = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "reset_peak_memory_stats", lambda: resets.append(1))
    monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda: 96 * MIB)
    monkeypatch.setattr(torch.cuda, "memory_allocated", lambda: 32 * MIB)
    with PeakMemory() as peak:
        assert resets == [1]
    assert peak.metrics()["peak_cuda_mb"] == 96.0


def test_a_sampled_peak_is_the_largest_sample_not_the_last(monkeypatch: pytest.MonkeyPatch) -> None:
    """Mutation: `_sample` keeps the latest RSS instead of `max(self.peak_rss, ...)`."""
    monkeypatch.setattr(memory, "reset_peak_rss", lambda: False)
    # RSS read on entry (100 MiB), then by the sampler: 300 MiB once, 150 MiB from then on
    readings = iter([100 * MIB, 300 * MIB])
    calls: list[int] = []

    def memory_info() -> SimpleNamespace:
        calls.append(1)
        return SimpleNamespace(rss=next(readings, 150 * MIB))

    peak = PeakMemory(interval=0.001)
    peak._process = SimpleNamespace(memory_info=memory_info)
    with peak:
        while len(calls) < 4:  # a few samples after the 300 MiB one
            time.sleep(0.001)
    assert peak.metrics() == {"peak_rss_mb": 300.0, "train_rss_growth_mb": 200.0}
