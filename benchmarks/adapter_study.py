"""Run the adapter-study grid (conf/sweep/adapter_study.yaml) and print a Markdown table of its results.

Each tuning mode of the grid, at each of its learning rates unless one is named, runs in its own
process (`-m sweep=adapter_study tuning_mode=<mode> target_task.lr=<rate>`), so peak memory is not
inflated by what an earlier job left in the allocator.

    python benchmarks/adapter_study.py --sweep-dir multirun_outputs/adapter_study \
        -- model=minilm target_task=snli seed=42 target_task.lr=5e-5 \
           target_task.data_files.train=../shared/data/snli/train.jsonl \
           target_task.data_files.validation=../shared/data/snli/validation.jsonl

Everything after `--` is passed to `train.py -m sweep=adapter_study` (the grid also sweeps three
tasks, three learning rates and three seeds: name one of each, e.g. `target_task.lr=5e-5`, to
measure the five modes once; with the grid's rates each row pairs with full fine-tuning at its own). Finished jobs in the sweep
directory are not rerun. With `--table-only` it only reads an existing sweep directory. The table
is `layerft.aggregate`'s (results.csv, results.md and plots in the sweep directory), with the
speed and memory metrics below as extra columns.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from layerft.aggregate import aggregate  # noqa: E402

# Besides the dev scores, run time and trainable parameters that every sweep table has.
EXTRA_METRICS = (
    "target/train_samples_per_second",
    "target/peak_rss_mb",
    "target/train_rss_growth_mb",
    "target/peak_cuda_mb",  # on a GPU only; a metric no job has gets no column
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sweep-dir", type=Path, default=REPO / "multirun_outputs" / "adapter_study"
    )
    parser.add_argument("--table-only", action="store_true")
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    if not args.table_only:
        params = yaml.safe_load((REPO / "conf" / "sweep" / "adapter_study.yaml").read_text())
        params = params["hydra"]["sweeper"]["params"]
        named = any(o.lstrip("+~").startswith("target_task.lr=") for o in args.overrides)
        rates = [None] if named else str(params["target_task.lr"]).split(",")
        for mode in params["tuning_mode"].split(","):
            for rate in rates:  # each in a process of its own, as each mode
                lr, folder = (
                    ([], mode) if rate is None else ([f"target_task.lr={rate}"], f"{mode}-lr{rate}")
                )
                command = [sys.executable, str(REPO / "train.py"), "-m", "sweep=adapter_study",
                           f"tuning_mode={mode}", *lr, "tracker=none",
                           f"hydra.sweep.dir={args.sweep_dir / folder}", *args.overrides]  # fmt: skip
                subprocess.run(command, check=True)
    # full fine-tuning (at each rate) is the reference every parameter-efficient mode is compared with
    result = aggregate(
        args.sweep_dir, baseline={"tuning_mode": "full"}, extra_metrics=EXTRA_METRICS
    )
    print(result.markdown)


if __name__ == "__main__":
    main()
