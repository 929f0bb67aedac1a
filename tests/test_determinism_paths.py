"""The same config and seed give the same numbers on a CPU whichever way the run is reached: a job
of sweep.py and train.py alone, the result-neutral display and checkpoint settings, a sweep stopped
by SIGTERM in a job's stage 2 and resumed, and each tuning mode run twice (a determinism review;
test_train_cli.py, test_sweep.py and test_training.py pin down the same command twice, a reused
stage 1, loader workers and kill -9 in stage 1)."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import pytest
from conftest import SHRINK, run_sweep, run_train, script_env, sweep_command
from test_sweep import TINY_GRID as GRID
from test_sweep import deterministic as _numbers

TWO_EPOCHS = ["target_task.epochs=2", "target_task.lr=2e-3", "injection_task.lr=2e-3"]


def assert_same_numbers(first: Path, second: Path) -> None:
    """metrics.json's numbers, every logged value of history.jsonl (in order) and
    dev_predictions.jsonl byte for byte."""
    metrics = [json.loads((run / "metrics.json").read_text()) for run in (first, second)]
    assert _numbers(metrics[1]) == _numbers(metrics[0]), (first, second)
    assert {"target/eval_loss", "target/train_loss"} <= set(_numbers(metrics[0]))
    histories = [
        [_numbers(json.loads(line)) for line in (run / "history.jsonl").read_text().splitlines()]
        for run in (first, second)
    ]
    assert histories[1] == histories[0], (first, second)
    predictions = [(run / "dev_predictions.jsonl").read_bytes() for run in (first, second)]
    assert predictions[0] and predictions[1] == predictions[0], (first, second)


def _train(tmp_path: Path, name: str, *args: str) -> Path:
    run = tmp_path / name
    done = run_train(
        [*SHRINK, *args, f"cache_dir={run / 'cache'}", f"hydra.run.dir={run / 'run'}"], run
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return run / "run"


@pytest.mark.slow
def test_a_sweep_job_computes_what_train_py_computes_for_its_combination(tmp_path) -> None:
    # lora's job reuses the stage 1 full's job stored, in the same process; train.py trains its own.
    combination = ["injection_task=demo_pos", "seed=1"]
    sweep_dir = tmp_path / "sweep"
    done = run_sweep(
        ["demo", *GRID, *TWO_EPOCHS, *combination, "tuning_mode=full,lora",
         f"cache_dir={tmp_path / 'sweep_cache'}", "--dir", str(sweep_dir)],
        tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    for mode in ("full", "lora"):
        alone = _train(tmp_path, mode, *TWO_EPOCHS, *combination, f"tuning_mode={mode}")
        assert_same_numbers(sweep_dir / f"injection_task=demo_pos,seed=1,tuning_mode={mode}", alone)


@pytest.mark.slow
def test_progress_bar_and_kept_checkpoints_change_no_number(tmp_path) -> None:
    # Both are RESULT_NEUTRAL_KEYS: a bar adds a callback, kept checkpoints stay on disk.
    plain = _train(tmp_path, "plain", *TWO_EPOCHS, "trainer.progress_bar=false")
    shown = _train(
        tmp_path, "shown", *TWO_EPOCHS, "trainer.progress_bar=true", "trainer.keep_checkpoints=true"
    )
    assert (shown / "checkpoints").is_dir() and not (plain / "checkpoints").exists()
    assert_same_numbers(plain, shown)


@pytest.mark.slow
def test_a_sweep_stopped_by_sigterm_in_stage2_resumes_to_the_uninterrupted_numbers(
    tmp_path,
) -> None:
    # The stopped job had stored its stage 1: the resumed job reuses it, lora's job reuses it too.
    grid = [*GRID, "target_task.generator_sizes.train=256", "target_task.epochs=2",
            "injection_task=demo_pos", "seed=1", "tuning_mode=full,lora"]  # fmt: skip
    stopped = tmp_path / "stopped"
    args = ["demo", *grid, f"cache_dir={stopped / 'cache'}", "--dir", str(stopped / "sweep")]
    stopped.mkdir()
    process = subprocess.Popen(
        sweep_command(args), cwd=stopped, env=script_env(stopped),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    first = stopped / "sweep" / "injection_task=demo_pos,seed=1,tuning_mode=full"
    partial = first / "history.jsonl.partial"
    deadline = time.monotonic() + 300
    while not partial.exists() or '"target/' not in partial.read_text():
        assert process.poll() is None and time.monotonic() < deadline, "stage 2 never started"
        time.sleep(0.02)
    process.send_signal(signal.SIGTERM)  # in the middle of the first job's stage 2
    assert process.wait(timeout=120) == 143
    assert not (first / "metrics.json").exists()

    resumed = run_sweep(args, stopped)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    assert "sweep: 2 finished, 0 failed, 0 not run" in resumed.stdout + resumed.stderr
    record = json.loads((first / "metrics.json").read_text())
    assert record["run/stage1"]["status"] == "reused"

    whole = tmp_path / "whole"
    done = run_sweep(
        ["demo", *grid, f"cache_dir={whole / 'cache'}", "--dir", str(whole / "sweep")], whole
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    for mode in ("full", "lora"):
        name = f"injection_task=demo_pos,seed=1,tuning_mode={mode}"
        assert_same_numbers(whole / "sweep" / name, stopped / "sweep" / name)


@pytest.mark.slow
def test_each_tuning_mode_gives_the_same_numbers_twice(tmp_path) -> None:
    # Adapters, LoRA and the heads are initialised from the run's seed (fresh_model seeds first).
    modes = ["lora", "layerwise_adapter", "top_adapter", "bitfit", "frozen"]
    runs = []
    for name in ("first", "second"):
        folder = tmp_path / name
        done = run_train(
            ["-m", *SHRINK, *TWO_EPOCHS, f"tuning_mode={','.join(modes)}",
             f"cache_dir={folder / 'cache'}", f"hydra.sweep.dir={folder / 'sweep'}"],
            folder,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-3000:]
        runs.append(
            {
                json.loads((job / "metrics.json").read_text())["run/choices"]["tuning_mode"]: job
                for job in (folder / "sweep").iterdir()
                if (job / "metrics.json").exists()
            }
        )
    assert sorted(runs[0]) == sorted(runs[1]) == sorted(modes)
    for mode in modes:
        assert_same_numbers(runs[0][mode], runs[1][mode])
