"""How long a bad config takes to be reported: wall seconds from the command to its one-line error.

Usage: python benchmarks/config_errors.py [--repeats 5] TREE [TREE ...]

Each TREE is a checkout of layerft (this one: `.`; another commit: `git worktree add /tmp/old
<commit>`). The commands run from each tree in turn, interleaved, `repeats` times; prints the
median per command and tree. Every command must exit 2 (bad input) with `error:` on stderr.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

COMMANDS = {
    "train.py, misspelt key": ["train.py", "target_task.lrr=1"],
    "train.py, bad value": ["train.py", "seed=-1"],
    "sweep.py --dry-run, misspelt key": ["sweep.py", "demo", "target_task.lrr=1", "--dry-run"],
    "train.py, missing data file": [
        "train.py",
        "target_task=snli",
        "target_task.data_files.train=/no/train.jsonl",
        "target_task.data_files.validation=/no/dev.jsonl",
    ],
}


def seconds(tree: Path, args: list[str]) -> float:
    """Wall time of one command run in `tree`, checked to be a one-line bad-input error."""
    env = {**os.environ, "PYTHONPATH": str(tree), "HF_HUB_OFFLINE": "1"}
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, *args], cwd=tree, env=env, capture_output=True, text=True, check=False
    )
    elapsed = time.perf_counter() - start
    if done.returncode != 2 or "error:" not in done.stderr:
        raise SystemExit(f"{tree}: {' '.join(args)} exited {done.returncode}: {done.stderr[-500:]}")
    return elapsed


def compare(
    commands: dict[str, list[str]], seconds: Callable[[Path, list[str]], float], doc: str
) -> None:
    """Parse `[--repeats N] TREE [TREE ...]`, time each command in each tree with `seconds`,
    interleaved, and print the medians as a Markdown table (benchmarks/sweep_plan.py uses it too)."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("trees", nargs="+", type=Path)
    args = parser.parse_args()
    times: dict[tuple[str, Path], list[float]] = {}
    for _ in range(args.repeats):
        for name, command in commands.items():
            for tree in args.trees:
                times.setdefault((name, tree), []).append(seconds(tree.resolve(), command))
    print(f"median wall seconds over {args.repeats} interleaved repeats")
    print("| command | " + " | ".join(str(t) for t in args.trees) + " |")
    print("|---|" + "---|" * len(args.trees))
    for name in commands:
        cells = [f"{statistics.median(times[name, t]):.1f}" for t in args.trees]
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    compare(COMMANDS, seconds, __doc__)
