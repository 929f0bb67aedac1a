"""How torch's CPU threads fare when other work shares the cores: `target/train_runtime` of one
small run at each OMP_NUM_THREADS, with `--busy` processes spinning beside it the whole time.

Usage: python benchmarks/threads_under_load.py [--busy 1] [--settings 1 2 2:PASSIVE] [--repeats 2]

A setting is OMP_NUM_THREADS, optionally with OMP_WAIT_POLICY after a colon (unset: the OpenMP
runtime's default, whose idle threads spin before they sleep).

The run: `model=tiny`, stage 2 only, the shared NSMC sample (300 train / 100 dev reviews), one
epoch. Repeats are interleaved across thread counts; each figure is the Trainer's training time
as metrics.json reports it (its dev evaluations taken out) and the command's wall time.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
NSMC = REPO.parent / "shared" / "data" / "nsmc"
RUN = [
    "model=tiny",
    "injection_task=none",
    "target_task=nsmc",
    f"target_task.data_files.train={NSMC / 'train.jsonl'}",
    f"target_task.data_files.validation={NSMC / 'test.jsonl'}",
    "target_task.epochs=1",
    "tracker=none",
]


def spin() -> None:
    """Keep one core busy until killed."""
    while True:
        pass


def timed_run(setting: str, folder: Path) -> tuple[float, float]:
    """(train_runtime, wall seconds) of the run at `setting` (threads[:wait policy])."""
    threads, _, policy = setting.partition(":")
    env = {**os.environ, "OMP_NUM_THREADS": threads, "HF_HUB_OFFLINE": "1"}
    env.pop("OMP_WAIT_POLICY", None)
    if policy:
        env["OMP_WAIT_POLICY"] = policy
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, str(REPO / "train.py"), *RUN, f"hydra.run.dir={folder}"],
        env=env, check=True, capture_output=True,
    )  # fmt: skip
    wall = time.perf_counter() - started
    metrics = json.loads((folder / "metrics.json").read_text())
    return metrics["target/train_runtime"], wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--busy", type=int, default=1, help="spinning processes beside the run")
    parser.add_argument("--settings", nargs="+", default=["1", "2", "2:PASSIVE"])
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    spinners = [multiprocessing.Process(target=spin, daemon=True) for _ in range(args.busy)]
    for process in spinners:
        process.start()
    figures: dict[str, list[tuple[float, float]]] = {s: [] for s in args.settings}
    try:
        with tempfile.TemporaryDirectory() as scratch:
            for repeat in range(args.repeats):
                for i, setting in enumerate(args.settings):
                    figures[setting].append(timed_run(setting, Path(scratch) / f"{i}-{repeat}"))
    finally:
        for process in spinners:
            process.kill()
    print(f"{os.cpu_count()} cores, {args.busy} spinning process(es) beside the run")
    print(
        "| OMP_NUM_THREADS | OMP_WAIT_POLICY | train_runtime, s (median; runs) | wall, s (median) |"
    )
    print("|---|---|---|---|")
    for setting, runs in figures.items():
        threads, _, policy = setting.partition(":")
        train = [f"{t:.2f}" for t, _ in runs]
        median_train = statistics.median(t for t, _ in runs)
        median_wall = statistics.median(w for _, w in runs)
        print(
            f"| {threads} | {policy or 'unset'} | {median_train:.2f} ({', '.join(train)}) "
            f"| {median_wall:.1f} |"
        )


if __name__ == "__main__":
    main()
