"""Lines a second mutation audit of the training core found unguarded: the phase trainer's
arguments and callbacks, a trained phase's memory and parameter counts and logging cadence, the
step a non-finite loss names, an infinite dev score, Korean label names in dev predictions, stage
1's metrics.json entry, a stop's first signal and the handlers a nested context leaves, a cached
entry of several features a record, the run's seed in capped dev data, and a max_length past the
model's positions (each test names what it pins)."""

from __future__ import annotations

import contextlib
import logging
import os
import random
import signal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch
from compose import compose_run
from datasets import Dataset
from test_audit_training import TARGET_ONLY, _train_target  # model=tiny, the target stage alone
from transformers import Trainer

from layerft import interrupts, phase, predictions, tokenized
from layerft.callbacks import ForwardLogs, GuardCheckpoints, PauseClock
from layerft.errors import LayerftError
from layerft.metrics import MetricInput
from layerft.phase_trainer import PhaseSteps, PhaseTrainer, build_phase_trainer, training_arguments
from layerft.speed import NonFiniteLossGuard
from layerft.stage1 import Stage1Outcome
from layerft.stage1_store import Stage1Result
from layerft.stage_data import load_stage_data
from layerft.stage_models import build_target_model


def _phase_trainer(
    folder: Path, *overrides: str, stage: str = "target", first_lr: float = 1.0
) -> Any:
    """The target task's PhaseTrainer as run_phase builds it for `stage`, not trained (its
    schedule's first step at `first_lr` times the task's lr, every later one at 1 times)."""
    cfg = compose_run(*TARGET_ONLY, f"cache_dir={folder / 'cache'}", *overrides)
    data, task = load_stage_data(cfg).target, cfg.target_task
    model, _ = build_target_model(cfg, None)
    steps = PhaseSteps.of(len(data.train), task, 1, "target")
    args = training_arguments(task, cfg.trainer, cfg.seed, folder / "checkpoints", steps)
    optimizer = torch.optim.SGD(model.parameters(), lr=task.lr)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0 if step else first_lr)
    forward = ForwardLogs(stage, lambda numbers, step: None, task.lr)
    return build_phase_trainer(
        stage, model, args, data, task, (optimizer, scheduler), forward, PauseClock()
    )


# --- the phase trainer --------------------------------------------------------------------------


@pytest.mark.parametrize(("first_lr", "unchanged"), [(0.0, 2), (1.0, 1)])
def test_a_first_step_at_lr_0_leaves_step_2s_loss_the_model_as_builts(
    tmp_path: Path, first_lr: float, unchanged: int
) -> None:
    """Warmup's first step runs at lr 0: a NaN at step 2 is still the model as built's, not the
    learning rate's. Mutation: `unchanged_steps` not set from the schedule's first lr."""
    trainer = _phase_trainer(tmp_path, first_lr=first_lr)
    assert trainer.guard.unchanged_steps == unchanged


@pytest.mark.parametrize("bar", [False, True])
def test_the_phase_trainer_keeps_one_checkpoint_seeds_its_data_and_labels_its_one_bar(
    tmp_path: Path, bar: bool
) -> None:
    # trainer.progress_bar=true: the stage's labelled bar in place of the Trainer's; false: no bar,
    # and no raw dict printed per log either (ForwardLogs writes log lines).
    trainer = _phase_trainer(
        tmp_path, "seed=7", "trainer.group_by_length=true", f"trainer.progress_bar={bar}".lower()
    )
    names = [type(c).__name__ for c in trainer.callback_handler.callbacks]
    assert names == [
        "DefaultFlowCallback", "ForwardLogs", "PauseClock", "GuardCheckpoints", "StopOnInterrupt",
        *(["StageProgress"] if bar else []),
    ]  # fmt: skip
    args = trainer.args
    shown = (args.disable_tqdm, args.save_total_limit, args.seed, args.data_seed)
    assert shown == (not bar, 1, 7, 7)
    # trainer.group_by_length: batches of similar lengths
    assert args.train_sampling_strategy == "group_by_length"


def test_the_phase_trainer_draws_random_batches_unless_grouped_by_length(tmp_path: Path) -> None:
    trainer = _phase_trainer(tmp_path)
    assert trainer.args.train_sampling_strategy == "random"


# --- a trained phase's metrics ------------------------------------------------------------------


@pytest.fixture(scope="module")
def once(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, float], list[Any], Path]:
    # one dev evaluation an epoch: at step 3, the last
    return _train_target(
        tmp_path_factory.mktemp("once"), "target_task.epochs=1", "target_task.evals_per_epoch=1"
    )


def test_a_trained_phase_logs_its_training_loss_at_each_evaluation_only(once) -> None:
    _, logs, _ = once
    assert [step for step, numbers in logs if "target/loss" in numbers] == [3]
    assert [step for step, numbers in logs if "target/eval_loss" in numbers] == [3]


# model=tiny: a 4-layer BERT of width 32 (8,544 parameters a layer) and a sentence head
COUNTS = {"total_params": 418818.0, "trainable_params": 418818.0,
          "trainable_params/embeddings": 383520.0, "trainable_params/layer.0": 8544.0,
          "trainable_params/layer.1": 8544.0, "trainable_params/layer.2": 8544.0,
          "trainable_params/layer.3": 8544.0, "trainable_params/adapters": 0.0,
          "trainable_params/head": 1122.0}  # fmt: skip


def test_a_trained_phase_reports_its_parameter_counts_and_memory(once) -> None:
    metrics, _, _ = once
    counts = {k.removeprefix("target/"): v for k, v in metrics.items() if "_params" in k}
    assert counts == COUNTS
    assert all(type(v) is float for v in counts.values())
    memory = {k: v for k, v in metrics.items() if k.endswith("_mb")}
    assert set(memory) == {"target/peak_rss_mb", "target/train_rss_growth_mb"}
    assert metrics["target/peak_rss_mb"] > 0 and metrics["target/train_rss_growth_mb"] >= 0


# --- the checks on the loss and on dev scores ---------------------------------------------------


def test_a_non_finite_training_loss_names_the_step_that_computed_it(tmp_path: Path) -> None:
    # 64 examples at batch 16, one evaluation an epoch (after step 4): step 1 runs at lr 0
    # (warmup), step 2's update makes the weights inf, so step 3's loss is the first not finite.
    with pytest.raises(LayerftError) as caught:
        _train_target(
            tmp_path, "target_task.generator_sizes.train=64", "target_task.epochs=1",
            "target_task.evals_per_epoch=1", "target_task.lr=1e30", "target_task.max_grad_norm=0",
        )  # fmt: skip
    assert str(caught.value).startswith("target stage: training loss is nan at step 3; stopped (")


def test_the_guard_reads_whether_fp16_skipped_a_step_from_the_trainers_accelerator(
    tmp_path: Path,
) -> None:
    """The hooks' `optimizer` is the raw AdamW, which never says a step was skipped. Mutation:
    `step_was_skipped` left at its default (every skip unseen)."""
    trainer = _phase_trainer(tmp_path)
    checks = next(c for c in trainer.callback_handler.callbacks if isinstance(c, GuardCheckpoints))
    assert checks.step_was_skipped() is False
    trainer.accelerator._optimizers = [SimpleNamespace(step_was_skipped=True)]
    assert checks.step_was_skipped() is True


def test_an_infinite_gradient_norm_between_two_logs_stops_at_its_step(tmp_path: Path) -> None:
    """4 steps, logged at step 4 only: step 2's gradients (finite, 1e30 times too large) square
    to an infinite norm, clipping zeroes them, and the loss stays finite; only the logged norm
    was checked, so the phase finished. Mutation: no per-step check in `_get_grad_norm`."""
    trainer = _phase_trainer(
        tmp_path, "target_task.generator_sizes.train=64", "target_task.epochs=1",
        "target_task.evals_per_epoch=1", "target_task.max_grad_norm=1.0",
    )  # fmt: skip
    weight = [p for p in trainer.model.parameters() if p.requires_grad][-1]  # the head's
    weight.register_hook(lambda grad: grad * 1e30 if trainer.state.global_step == 1 else grad)
    with pytest.raises(LayerftError) as caught:
        trainer.train()
    assert str(caught.value).startswith(
        "target stage: gradient norm is inf at step 2: clipping turns the gradient into zeros or "
        "NaN; stopped (lower target_task.lr="
    ), caught.value


@pytest.mark.parametrize(
    ("fp16", "max_grad_norm", "why"),
    [
        (True, 1.0, None),  # fp16's scaler skips the step (GuardCheckpoints counts the skips)
        (False, 1.0, "clipping turns the gradient into zeros or NaN"),
        (False, 0.0, "unclipped, AdamW turns its update into zeros or NaN"),
    ],
)
def test_each_steps_gradient_norm_is_checked_but_fp16s(
    monkeypatch, fp16, max_grad_norm, why
) -> None:
    """Mutations: fp16's norm checked too (a skipped step stopped the phase), `> 0` -> `>= 0`."""
    inf = torch.tensor(float("inf"))
    monkeypatch.setattr(Trainer, "_get_grad_norm", lambda self, model, grad_norm=None: inf)
    trainer = PhaseTrainer.__new__(PhaseTrainer)  # the hook alone: no model, no data
    trainer.args = SimpleNamespace(fp16=fp16, max_grad_norm=max_grad_norm)
    trainer.state = SimpleNamespace(global_step=4)
    trainer.guard = NonFiniteLossGuard("target", "x")
    if why is None:
        assert trainer._get_grad_norm(None) is inf
        return
    with pytest.raises(LayerftError) as caught:
        trainer._get_grad_norm(None)
    assert str(caught.value) == f"target stage: gradient norm is inf at step 5: {why}; stopped (x)"


@pytest.mark.parametrize("value", [float("inf"), float("-inf"), float("nan")])
def test_a_dev_score_that_is_not_finite_stops_the_phase(value: float) -> None:
    best = {"eval_loss": 0.5, "eval_mse": value, "epoch": 1.0}
    with pytest.raises(LayerftError) as caught:
        phase._dev_scores("target", best)
    assert str(caught.value) == f"target stage: dev eval_mse is {value} for the best checkpoint"
    assert phase._dev_scores("target", {"eval_loss": 0.5, "epoch": 1.0}) == {"eval_loss": 0.5}


# --- dev predictions ----------------------------------------------------------------------------


def test_dev_predictions_write_korean_label_names_as_they_read(tmp_path: Path) -> None:
    # klue_ynat's topics are Korean: the file is for reading by hand, so no \uXXXX escapes
    task = compose_run("model=tiny", "target_task=klue_ynat").target_task
    last = {"input": MetricInput.class_ids, "predictions": [1], "references": [0]}
    scorer = SimpleNamespace(last=last, sources=[{"record": 1, "id": "ynat-v1_dev_00000"}])
    predictions.write_partial(tmp_path, task, {"validation": scorer})
    text = (tmp_path / f"{predictions.PREDICTIONS_FILE}.partial").read_text(encoding="utf-8")
    assert text == (
        '{"split": "validation", "index": 0, "record": 1, "id": "ynat-v1_dev_00000", '
        '"prediction": "경제", "reference": "IT과학"}\n'
    )


# --- stage 1's outcome --------------------------------------------------------------------------


def _stored(path: Path, trained_by: Path) -> Stage1Result:
    return Stage1Result(None, {}, [], path, str(trained_by))  # type: ignore[arg-type]


def test_a_reused_stage1_names_its_entry_by_key_and_is_its_trainers_own(tmp_path: Path) -> None:
    # a forced rerun in the folder of the run that stored it replaces that run's tracker record
    store = tmp_path / "stage1" / "0123abcd"
    here, other = tmp_path / "runs" / "a", tmp_path / "runs" / "b"
    reused = Stage1Outcome(_stored(store, here), trained=False)
    assert reused.entry() == {
        "status": "reused", "key": "0123abcd", "path": str(store), "trained_by": str(here)
    }  # fmt: skip
    assert reused.produced_in(here / ".") and not reused.produced_in(other)
    assert Stage1Outcome(_stored(store, other), trained=True).entry()["status"] == "trained"
    # reuse_stage1=false: kept in memory, no key or path to name
    kept = Stage1Result(None, {}, [], here, str(here), stored=False)  # type: ignore[arg-type]
    assert Stage1Outcome(kept, trained=True).entry() == {"status": "trained", "stored": False}


# --- stops ----------------------------------------------------------------------------------------


def test_a_ctrl_c_during_a_sigterms_stop_keeps_the_sigterms_line_and_code(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # scancel's SIGTERM, then a Ctrl-C while the run unwinds: the first stop is what ended it
    monkeypatch.setattr(interrupts, "traceback_wanted", lambda: True)  # SIGCHLD left alone
    for name in ("_pressed", "_received"):  # as they were, for the tests after this one
        monkeypatch.setattr(interrupts, name, getattr(interrupts, name))
    previous = (
        signal.signal(signal.SIGINT, signal.default_int_handler),
        signal.signal(signal.SIGTERM, signal.SIG_DFL),
    )
    try:
        with pytest.raises(SystemExit) as ended, interrupts.interrupted_exit():
            with contextlib.suppress(KeyboardInterrupt):
                os.kill(os.getpid(), signal.SIGTERM)
            os.kill(os.getpid(), signal.SIGINT)
    finally:
        signal.signal(signal.SIGINT, previous[0])
        signal.signal(signal.SIGTERM, previous[1])
    assert ended.value.code == 143
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last == "error: terminated (SIGTERM); finished results are kept"


def test_an_inner_remembered_context_keeps_the_outers_ctrl_c_whatever_the_handlers() -> None:
    # something within the outer one (a library) set SIGTERM back to its default: the inner
    # context still installs nothing and forgets nothing
    previous = (
        signal.signal(signal.SIGINT, signal.default_int_handler),
        signal.signal(signal.SIGTERM, signal.SIG_DFL),
    )
    try:
        with interrupts.remembered_interrupts():
            with contextlib.suppress(KeyboardInterrupt):  # a Ctrl-C Python lost
                signal.getsignal(signal.SIGINT)(signal.SIGINT, None)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            with interrupts.remembered_interrupts():
                assert interrupts.interrupted()
            assert interrupts.interrupted()
        assert not interrupts.interrupted()
    finally:
        signal.signal(signal.SIGINT, previous[0])
        signal.signal(signal.SIGTERM, previous[1])


def test_a_child_handler_set_since_a_stop_is_not_replaced_by_the_one_it_set_aside(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # a stop set torch's SIGCHLD handler aside; the caller installed its own since: it stays
    def torchs(signum: int, frame: Any) -> None: ...

    def callers(signum: int, frame: Any) -> None: ...

    monkeypatch.setattr(interrupts, "_child_handler", torchs)
    previous = (
        signal.signal(signal.SIGINT, signal.default_int_handler),
        signal.signal(signal.SIGCHLD, callers),
    )
    try:
        with interrupts.remembered_interrupts():
            assert signal.getsignal(signal.SIGCHLD) is callers
        assert interrupts._child_handler is None
    finally:
        signal.signal(signal.SIGINT, previous[0])
        signal.signal(signal.SIGCHLD, previous[1])


# --- the tokenized-data cache -------------------------------------------------------------------


def test_a_cached_entry_of_several_features_a_record_is_read_back_not_rebuilt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # context windows: a kind may make several features of one record, each pointing back at it
    # by example_index; 2 records in 3 features is a whole entry
    calls: list[int] = []

    def windows(task: Any, tokenizer: Any) -> Any:
        def encode(batch: Any, indices: list[int]) -> Any:
            calls.append(len(indices))
            return {"input_ids": [[1, 2], [3, 4], [5, 6]], "example_index": [0, 0, 1]}

        return encode

    monkeypatch.setattr(tokenized, "_encoder", windows)
    task = compose_run("model=tiny", "target_task=demo_sentiment").target_task
    records = Dataset.from_list([{"text_a": "a b c", "label": 1}, {"text_a": "d e", "label": 0}])
    first = tokenized.tokenize(records, task, None, tmp_path, key="k")  # type: ignore[arg-type]
    with caplog.at_level(logging.WARNING, logger="layerft.tokenized"):
        second = tokenized.tokenize(records, task, None, tmp_path, key="k")  # type: ignore[arg-type]
    assert calls == [2] and caplog.records == []
    assert second["example_index"] == first["example_index"] == [0, 0, 1]


# --- a stage's data -----------------------------------------------------------------------------


def test_the_runs_seed_picks_the_dev_records_a_cap_keeps(tmp_path: Path) -> None:
    # max_eval_samples=4 of 16 dev records: seed 3's draw, in file order (records numbered from 1)
    cfg = compose_run(
        *TARGET_ONLY, f"cache_dir={tmp_path}", "seed=3", "target_task.max_eval_samples=4"
    )
    kept = [source["record"] for source in load_stage_data(cfg).target.validation_sources]
    drawn = {seed: [n + 1 for n in sorted(random.Random(seed).sample(range(16), 4))]
             for seed in (3, 0)}  # fmt: skip
    assert kept == drawn[3] != drawn[0]


@pytest.mark.parametrize("group", ["target_task", "injection_task"])
def test_a_max_length_beyond_the_models_positions_stops_before_data_loads(
    tmp_path: Path, group: str
) -> None:
    cfg = compose_run("model=tiny", f"cache_dir={tmp_path}", f"{group}.max_length=600")
    with pytest.raises(LayerftError) as caught:
        load_stage_data(cfg)
    assert str(caught.value) == (
        f"{group}.max_length=600 exceeds the model's 512 positions (model 'tiny')"
    )
    assert not (tmp_path / "tokenized").exists()
