"""A `train.py` grid over every tuning mode and per-part schedule on model=tiny completes and reports its counts."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from conftest import SHRINK, assert_counts_of, dev_examples, run_train

# Every shipped option, so a new mode is run here too (a hard-coded list had left it out).
MODES = tuple(sorted(p.stem for p in (Path(__file__).parents[1] / "conf" / "tuning_mode").glob("*.yaml")))  # fmt: skip


def test_every_tuning_mode_runs_and_reports_parameter_counts(tmp_path: Path) -> None:
    proc = run_train(
        ["-m", *SHRINK, f"tuning_mode={','.join(MODES)}", "lr_schedule=discriminative"], tmp_path
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Warning" not in proc.stderr, proc.stderr[-2000:]  # upstream deprecations (peft's)
    results, dev = {}, {}
    for job in sorted((tmp_path / "sweep").glob("*/metrics.json")):
        overrides = yaml.safe_load((job.parent / ".hydra" / "overrides.yaml").read_text())
        mode = next(o.split("=")[1] for o in overrides if o.startswith("tuning_mode="))
        results[mode] = json.loads(job.read_text())
        dev[mode] = dev_examples((job.parent / "train.log").read_text(), "target_task")
    assert set(results) == set(MODES) >= {"full", "frozen", "top_adapter", "layerwise_adapter", "lora", "bitfit"}  # fmt: skip
    for mode, metrics in results.items():
        parts = {k: v for k, v in metrics.items() if k.startswith("target/trainable_params/")}
        assert sum(parts.values()) == metrics["target/trainable_params"], mode
        assert metrics["target/trainable_params/layer.0"] == 0, (
            mode
        )  # lower1: frozen injected layer
        assert_counts_of(metrics["target/eval_accuracy"], dev[mode])
        assert metrics["target/train_samples_per_second"] > 0 and metrics["target/peak_rss_mb"] > 0
    full = results["full"]["target/trainable_params"]
    for mode in ("top_adapter", "layerwise_adapter", "lora"):
        assert results[mode]["target/trainable_params/adapters"] > 0, mode
        assert results[mode]["target/trainable_params"] < full / 10, mode
        assert results[mode]["target/total_params"] > results["full"]["target/total_params"], mode
    assert (
        results["frozen"]["target/trainable_params"]
        == results["frozen"]["target/trainable_params/head"]
    )
    assert results["bitfit"]["target/trainable_params/adapters"] == 0
    assert (
        0
        < results["bitfit"]["target/trainable_params/layer.1"]
        < results["full"]["target/trainable_params/layer.1"]
    )
    # Same stage 1 in every job of the grid: stage-2 settings do not change it.
    assert len({r["injection/eval_loss"] for r in results.values()}) == 1
