"""Command-line overrides a fuzzing pass (285 of them) found mishandled: each is one `error:` line
naming the key at fault and exit 2, before anything trains, or a warning naming it."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from compose import compose_run
from conftest import SHRINK, run_sweep, run_train

from layerft.errors import LayerftError


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error: ")]


def assert_refused(proc: subprocess.CompletedProcess[str], key: str) -> None:
    """Exit 2 with a single `error:` line (and nothing else on stderr) that names `key`."""
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert error_lines(proc.stderr) == [proc.stderr.strip()], proc.stderr[-2000:]
    assert key in proc.stderr, proc.stderr[-2000:]


def test_a_padding_multiple_past_the_models_positions_is_refused(tmp_path: Path) -> None:
    """It padded every batch past the model's 512 positions: a RuntimeError traceback from the
    position embeddings, after stage 1 ran."""
    proc = run_train([*SHRINK, "trainer.pad_to_multiple_of=1000"], tmp_path)
    assert_refused(proc, "trainer.pad_to_multiple_of")


@pytest.mark.parametrize("size", ["-1", "0"])
def test_a_generated_split_of_no_examples_names_its_size_key(tmp_path: Path, size: str) -> None:
    """A generated split's size below 1 was not checked: the error blamed the data
    ('demo_sentiment:train has no labelled records'), not target_task.generator_sizes.train."""
    proc = run_train([*SHRINK, f"target_task.generator_sizes.train={size}"], tmp_path)
    assert_refused(proc, "target_task.generator_sizes.train")


def test_an_empty_list_of_metrics_is_blamed_on_metrics(tmp_path: Path) -> None:
    """target_task.metrics=[] was blamed on best_metric ('is not one of  (the default ...)'), not
    on the empty list of metrics."""
    proc = run_train([*SHRINK, "target_task.metrics=[]"], tmp_path)
    assert_refused(proc, "target_task.metrics")
    assert "best_metric" not in proc.stderr, proc.stderr


def test_a_text_column_named_twice_is_refused(tmp_path: Path) -> None:
    """text_columns=[text,text] trained a pair task on each text paired with itself, exit 0 and
    no word (label_names and extra_eval_splits refuse duplicates)."""
    proc = run_train([*SHRINK, "target_task.text_columns=[text,text]"], tmp_path)
    assert_refused(proc, "target_task.text_columns")


def test_an_empty_cache_dir_is_refused(tmp_path: Path) -> None:
    """cache_dir='' was read as the folder the run started in: stage1/ and tokenized/ landed there
    (a checkout, when run from one), exit 0 and no word."""
    proc = run_train([*SHRINK, "cache_dir=''"], tmp_path)
    assert_refused(proc, "cache_dir")
    assert not (tmp_path / "stage1").exists() and not (tmp_path / "tokenized").exists()


@pytest.mark.parametrize(
    ("mode", "key"),
    [("lora", "tuning_mode.lora.rank"), ("layerwise_adapter", "tuning_mode.adapter.bottleneck")],
)
def test_a_width_past_the_layers_is_refused_or_warned(tmp_path: Path, mode: str, key: str) -> None:
    """A LoRA rank or an adapter bottleneck wider than the layers (64 on tiny's 32; 100000 took
    51 s) is no low-rank update nor a bottleneck: it ran, exit 0, with no word of it."""
    proc = run_train([*SHRINK, f"tuning_mode={mode}", f"{key}=64"], tmp_path)
    assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
    # A refusal (exit 2) or a warning: either names the key.
    said = [
        line
        for line in (proc.stderr + proc.stdout).splitlines()
        if key in line and (line.startswith("error: ") or "WARNING" in line)
    ]
    assert said, proc.stderr[-2000:]


@pytest.mark.parametrize(
    ("value", "crash"),
    [
        ("tuning_mode.adapter.init_std=-1", "RuntimeError: normal expects std >= 0.0"),
        ("tuning_mode.adapter.reduction_factor=1e-308", "OverflowError: cannot convert float"),
    ],
)
def test_adapter_settings_torch_cannot_build_are_refused(tmp_path: Path, value, crash) -> None:
    """adapter.init_std was never checked (a negative one is torch's RuntimeError) and
    reduction_factor only for > 0 (hidden / 1e-308 is inf: int() raises OverflowError); both
    a traceback, exit 1, after stage 1 ran."""
    proc = run_train([*SHRINK, "tuning_mode=layerwise_adapter", value], tmp_path)
    assert crash not in proc.stderr, proc.stderr[-2000:]
    assert_refused(proc, value.split("=")[0])


# Enough steps past the warmup (whose first step is at lr 0) for a setting to reach the weights.
STEPS = [
    "target_task.generator_sizes.train=128",
    "target_task.batch_size=8",
    "target_task.epochs=2",
]


@pytest.mark.parametrize(
    "args",
    [
        ["tuning_mode=lora", "tuning_mode.lora.alpha=1e308"],
        ["tuning_mode=layerwise_adapter", "tuning_mode.adapter.init_std=1e308"],
        [*STEPS, "target_task.weight_decay=1e308"],
        [*STEPS, "target_task.weight_decay=1e5"],  # in float32, but 1 - lr x 1e5 flips each weight
    ],
)
def test_an_overflowing_setting_is_blamed_on_its_key(tmp_path: Path, args: list[str]) -> None:
    """A finite but overflowing lora.alpha, adapter.init_std or weight_decay passed the config
    check: stage 2's NaN loss was blamed on target_task.lr (at its default 5e-05) and
    max_grad_norm, never on the key set."""
    proc = run_train([*SHRINK, *args], tmp_path)
    assert "loss is nan" not in proc.stderr, proc.stderr[-2000:]
    assert_refused(proc, args[-1].split("=")[0])


@pytest.mark.parametrize(
    ("value", "crash"),
    [
        ("tracker.tags=['']", "Tag at index 0 is empty"),
        ("tracker.tags=['" + "x" * 65 + "']", "Tags must be between 1 and 64 characters"),
        ("tracker.project='a/b'", "Invalid project name 'a/b'"),
    ],
)
def test_names_wandb_refuses_are_refused_first(tmp_path: Path, value: str, crash: str) -> None:
    """A W&B tag that is empty or past 64 characters, or a project name with '/', passed the
    config check; wandb.init refused it with a traceback (pydantic's ValidationError, wandb's
    UsageError), exit 1, after stage 1."""
    proc = run_train([*SHRINK, "tracker=wandb", "tracker.mode=offline", value], tmp_path)
    assert crash not in proc.stderr or "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert_refused(proc, value.split("=")[0])


def test_a_nan_loss_of_the_model_as_built_names_the_modes_setting(tmp_path: Path) -> None:
    """adapter.init_std=1e30 (in float32) gives a NaN loss at step 1, before any update: it was
    blamed on target_task.lr and max_grad_norm."""
    args = [
        "injection_task=none",
        "tuning_mode=layerwise_adapter",
        "tuning_mode.adapter.init_std=1e30",
    ]
    proc = run_train([*SHRINK, *args], tmp_path)
    assert proc.returncode != 0, proc.stderr[-2000:]
    error = error_lines(proc.stderr)
    assert len(error) == 1 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert "at step 1, before any update" in error[0] and "init_std=1e+30" in error[0], error
    assert "lower target_task.lr" not in error[0], error


def test_a_lora_alpha_that_leaves_no_update_stops_the_run_naming_it(tmp_path: Path) -> None:
    """lora.alpha=1e30 (in float32) gave grad_norm=inf at every step: clipping zeroed each
    gradient, the loss stayed finite and the run exited 0 having learned nothing."""
    args = ["injection_task=none", *STEPS, "tuning_mode=lora", "tuning_mode.lora.alpha=1e30"]
    proc = run_train([*SHRINK, *args], tmp_path)
    error = error_lines(proc.stderr)
    assert proc.returncode != 0 and len(error) == 1, proc.stderr[-2000:]
    assert "gradient norm is inf" in error[0] and "tuning_mode.lora.alpha=1e+30" in error[0], error


@pytest.mark.parametrize("epochs", ["1e308", "1e12"])
def test_an_epoch_count_no_run_can_finish_is_refused(tmp_path: Path, epochs: str) -> None:
    """target_task.epochs=1e308 passed (only < 0 was refused): a warmup of 1e307 steps kept the
    lr near 1e-309 and the run never ended (still training at step 537 after 120 s), no word."""
    proc = run_train([*SHRINK, f"target_task.epochs={epochs}"], tmp_path, timeout=45)
    assert_refused(proc, "target_task.epochs")


def test_a_phase_of_more_steps_than_a_run_can_finish_is_refused() -> None:
    """Epochs under the bound can still make too many steps once the data's size is known."""
    from layerft.phase_trainer import PhaseSteps

    task = compose_run("model=tiny", "target_task.epochs=1e8", "target_task.batch_size=32")
    assert PhaseSteps.of(320, task.target_task, 1, "target").num_steps == 10**9  # the bound
    with pytest.raises(LayerftError, match=r"^target_task\.epochs=1e\+08 over 352 examples, 32"):
        PhaseSteps.of(352, task.target_task, 1, "target")  # 11 steps an epoch


def test_a_generated_size_for_a_split_never_made_is_refused_or_warned(tmp_path: Path) -> None:
    """+target_task.generator_sizes.test=5 adds a size for a split a generated task never makes:
    it was unread, exit 0, with none of the 'changes nothing' warnings other unread keys get."""
    proc = run_train([*SHRINK, "+target_task.generator_sizes.test=5"], tmp_path)
    said = [
        line
        for line in (proc.stderr + proc.stdout).splitlines()
        if "generator_sizes.test" in line and (line.startswith("error: ") or "WARNING" in line)
    ]
    assert said, proc.stderr[-2000:]


@pytest.mark.parametrize(
    "value",
    [
        "target_task.generator_sizes.train=-1",
        "layer_split.stage1.num_lower=100",  # more injected layers than tiny's 4
    ],
)
def test_a_dry_run_refuses_a_value_every_job_would_fail_on(tmp_path: Path, value: str) -> None:
    """sweep.py --dry-run planned all 12 jobs of the demo grid (exit 0) with a value each job then
    refuses."""
    proc = run_sweep(["demo", "model=tiny", "tracker=none", value, "--dry-run"], tmp_path)
    assert_refused(proc, value.split("=")[0])
