"""benchmarks/throughput.py end to end on the CPU, with the options benchmarks/gpu/run.sh passes:
a GPU session's minutes are too few to find a broken script there."""

from __future__ import annotations

import json
import re
import statistics
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, script_env

PIPELINES = [
    "layerft",
    "plain Trainer",
    "raw loop",
    "layerft, blocking copies",
    "layerft, workers0",
]
STEPS = 7  # the fewest --profile takes: its profiler records steps 5 to n-2


@pytest.mark.slow
def test_throughput_script_reports_every_pipeline_and_consistent_figures(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    result = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "throughput.py"), "--batch-sizes", "2", "4",
         "--repeats", "1", "--steps", str(STEPS), "--pad-to", "16", "--precision", "bf16",
         "--blocking-copies", "--variant", "workers0=trainer.dataloader_workers=0",
         "--json", str(out), "--profile", str(tmp_path / "profile.txt"), "--budget", "600",
         "--", "model=tiny", "target_task=demo_sentiment",
         "target_task.generator_sizes.train=28", "target_task.generator_sizes.validation=8",
         "target_task.max_length=16", f"cache_dir={tmp_path / 'cache'}"],
        cwd=tmp_path, env=script_env(tmp_path), capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["device"] == "CPU"
    assert list(report["runs"]) == ["2", "4"]
    rows = re.findall(r"^\| (\d+ \| [^|]+) \| ([\d,.]+) \| ([\d.]+)x \|", result.stdout, re.M)
    table = {row: (speed, ratio) for row, speed, ratio in rows}
    for batch, results in report["runs"].items():
        assert list(results) == PIPELINES, batch
        assert {name: r["error"] for name, r in results.items() if "error" in r} == {}, batch
        plain = statistics.median(r["samples_per_second"] for r in results["plain Trainer"]["runs"])
        for name, result_ in results.items():
            (run,) = result_["runs"]
            assert run["samples_per_second"] > 0, (batch, name)
            # The step split adds up to the training time its samples/s counts.
            runtime = STEPS * int(batch) / run["samples_per_second"]
            split = run["first_step_s"] + run["later_step_ms"] * (STEPS - 2) / 1000
            assert split + run["last_step_s"] == pytest.approx(runtime, rel=1e-9), (batch, name)
            # The printed median and its ratio to the plain Trainer, from the JSON's figures.
            speed, ratio = table[f"{batch} | {name}"]
            assert speed == f"{run['samples_per_second']:,.1f}", (batch, name)
            assert ratio == f"{run['samples_per_second'] / plain:.2f}", (batch, name)
            assert result_["profile"]["steps"] == STEPS - 6, (batch, name)
    assert (tmp_path / "profile.txt").read_text().count("==== ") == 2 * len(PIPELINES)
