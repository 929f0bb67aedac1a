"""How long `sweep.py <grid> --dry-run` takes to plan a grid: wall seconds per command.

Usage: python benchmarks/sweep_plan.py [--repeats 5] TREE [TREE ...]

Each TREE is a checkout of layerft (this one: `.`; another commit: `git worktree add /tmp/old
<commit>`). The commands run from each tree in turn, interleaved, `repeats` times, each with a
fresh `--dir` (nothing done); prints the median per command and tree. A sweep plans the same way
before its first job starts.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from config_errors import compare  # benchmarks/, this script's folder

COMMANDS = {
    "demo (12 combinations)": ["demo"],
    "klue_paper (36)": ["klue_paper"],
    "adapter_study (135)": ["adapter_study"],
    "demo, 5 seeds x 3 rates (60)": ["demo", "seed=1,2,3,4,5", "target_task.lr=1e-5,3e-5,1e-4"],
}


def seconds(tree: Path, args: list[str]) -> float:
    """Wall time of one dry run in `tree`, checked to have listed its plan."""
    env = {**os.environ, "PYTHONPATH": str(tree), "HF_HUB_OFFLINE": "1"}
    with tempfile.TemporaryDirectory() as folder:
        command = [sys.executable, "sweep.py", *args, "--dry-run", "--dir", folder]
        start = time.perf_counter()
        done = subprocess.run(command, cwd=tree, env=env, capture_output=True, text=True)
        elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{tree}: {' '.join(args)} exited {done.returncode}: {done.stderr[-500:]}")
    return elapsed


if __name__ == "__main__":
    compare(COMMANDS, seconds, __doc__)
