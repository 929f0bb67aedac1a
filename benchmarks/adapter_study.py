"""Run the adapter-study grid (grid=adapter_study) and print a Markdown table of its results.

Each tuning mode of the grid runs in its own process (`-m grid=adapter_study tuning_mode=<mode>`),
so peak memory is not inflated by what an earlier job left in the allocator.

    python benchmarks/adapter_study.py --sweep-dir multirun_outputs/adapter_study \
        -- model=minilm target_task.data_files.train=../shared/data/snli/train.jsonl \
           target_task.data_files.validation=../shared/data/snli/validation.jsonl

Everything after `--` is passed to `train.py -m grid=adapter_study`. Finished jobs in the sweep
directory are not rerun. With `--table-only` it only reads an existing sweep directory.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
COLUMNS = (
    ("tuning mode", None),
    ("trainable params", "target/trainable_params"),
    ("of total", None),
    ("train samples/s", "target/train_samples_per_second"),
    ("train time (s)", "target/train_runtime"),
    ("peak RSS (MiB)", "target/peak_rss_mb"),
    ("RSS growth in training (MiB)", "target/train_rss_growth_mb"),
    ("peak CUDA (MiB)", "target/peak_cuda_mb"),
    ("dev accuracy", "target/eval_accuracy"),
)


def read_jobs(sweep_dir: Path) -> list[tuple[str, dict[str, float]]]:
    """(tuning mode, metrics) for every finished job of the sweep, in job order."""
    jobs = []
    for metrics_path in sorted(sweep_dir.glob("*/*/metrics.json"), key=lambda p: p.stat().st_mtime):
        metrics = json.loads(metrics_path.read_text())  # it records its own group choices
        jobs.append((metrics["run/choices"]["tuning_mode"], metrics))
    return jobs


def table(jobs: list[tuple[str, dict[str, float]]]) -> str:
    """A Markdown table, one row per tuning mode."""
    shown = [(name, key) for name, key in COLUMNS if key is None or any(key in m for _, m in jobs)]
    lines = ["| " + " | ".join(name for name, _ in shown) + " |", "|" + "---|" * len(shown)]
    for mode, metrics in jobs:
        cells = []
        for name, key in shown:
            if name == "tuning mode":
                cells.append(mode)
            elif name == "of total":
                share = metrics["target/trainable_params"] / metrics["target/total_params"]
                cells.append(f"{100 * share:.2f}%")
            elif key == "target/trainable_params":
                cells.append(f"{int(metrics[key]):,}")
            else:
                cells.append(f"{metrics[key]:.3f}" if "accuracy" in key else f"{metrics[key]:.1f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sweep-dir", type=Path, default=REPO / "multirun_outputs" / "adapter_study"
    )
    parser.add_argument("--table-only", action="store_true")
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    if not args.table_only:
        grid = yaml.safe_load((REPO / "conf" / "grid" / "adapter_study.yaml").read_text())
        for mode in grid["hydra"]["sweeper"]["params"]["tuning_mode"].split(","):
            command = [sys.executable, str(REPO / "train.py"), "-m", "grid=adapter_study",
                       f"tuning_mode={mode}", "tracker=none", f"hydra.sweep.dir={args.sweep_dir / mode}",
                       *args.overrides]  # fmt: skip
            subprocess.run(command, check=True)
    print(table(read_jobs(args.sweep_dir)))


if __name__ == "__main__":
    main()
