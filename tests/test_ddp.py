"""train.py under torchrun: two CPU processes (gloo) train one run; only the first one records it."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from conftest import SHRINK, assert_counts_of, dev_examples, run_train


@pytest.mark.slow
def test_two_process_ddp_run_writes_one_record(tmp_path) -> None:
    # --standalone: a free port of its own, so two test runs on one host do not collide
    launcher = ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    proc = run_train(
        [*SHRINK, "tracker=wandb", "tracker.mode=offline"], tmp_path, launcher=launcher
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (
        proc.stdout.splitlines().count(f"results: {tmp_path}/run/metrics.json") == 1
    )  # rank 0 only
    assert proc.stdout.count("layerft.run][INFO] - results: ") == 1
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    log = (tmp_path / "run" / "train.log").read_text()
    assert_counts_of(metrics["target/eval_accuracy"], dev_examples(log, "target_task"))
    # One W&B run, opened by rank 0 alone.
    assert len(list((tmp_path / "run" / "wandb").glob("offline-run-*"))) == 1
    # 64 examples over 2 processes x batch 32: one optimizer step per epoch in each stage, and that
    # step is the whole epoch only if each process trained on its own half (real DDP; without it
    # each process would read the same first batch and stop at epoch 0.5).
    assert re.search(
        r"target step 1: train_runtime=.*, epoch=1 \(the Trainer.s times\)$", log, re.MULTILINE
    )
    assert re.search(
        r"injection step 1: train_runtime=.*, epoch=1 \(the Trainer.s times\)$", log, re.MULTILINE
    )


@pytest.mark.slow
def test_two_processes_score_dev_as_one_does(tmp_path) -> None:
    # Dev predictions are gathered from both processes' shards: a span task maps each feature back
    # to its question by position, so any reordering or a duplicate would change the scores.
    squad = Path(__file__).resolve().parent / "data" / "squad"
    args = ["model=tiny", "tracker=none", "injection_task=none", "target_task=squad_v2",
            f"target_task.data_dir={squad}", "target_task.epochs=0"]  # fmt: skip
    launcher = ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    scores = []
    for name, prefix in (("one", []), ("two", launcher)):
        proc = run_train([*args, f"hydra.run.dir={tmp_path / name}"], tmp_path, launcher=prefix)
        assert proc.returncode == 0, proc.stderr[-3000:]
        metrics = json.loads((tmp_path / name / "metrics.json").read_text())
        scores.append({k: v for k, v in metrics.items() if k.startswith("target/eval_squad_v2")})
    assert len(scores[0]) == 10 and scores[1] == scores[0]
