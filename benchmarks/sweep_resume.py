"""How long `sweep.py <grid>` takes when every combination is already finished (a resumed or
repeated sweep): wall seconds per command.

Usage: python benchmarks/sweep_resume.py [--repeats 3] TREE [TREE ...]

Each TREE is a checkout of layerft (this one: `.`; another commit: `git worktree add /tmp/old
<commit>`). Each tree first runs each grid once on `model=tiny` into its own folder (not timed);
then the same command is timed again in each tree in turn, interleaved, `repeats` times, and the
median printed. Each timed run is checked to have finished every job and written its tables.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from config_errors import compare  # benchmarks/, this script's folder

TINY = [
    "model=tiny",
    "tracker=none",
    "injection_task.generator_sizes.train=64",
    "injection_task.generator_sizes.validation=32",
    "target_task.generator_sizes.train=64",
    "target_task.generator_sizes.validation=32",
    "injection_task.epochs=1",
    "target_task.epochs=1",
]
COMMANDS = {
    "demo on model=tiny (12 finished)": ["demo", *TINY],
    "demo on model=tiny, 6 seeds (24 finished)": ["demo", *TINY, "seed=1,2,3,4,5,6"],
}
SCRATCH = Path(tempfile.mkdtemp(prefix="sweep_resume-"))


def sweep(tree: Path, args: list[str], folder: Path) -> float:
    """Wall time of `sweep.py args` in `tree`, into `folder`."""
    env = {**os.environ, "PYTHONPATH": str(tree), "HF_HUB_OFFLINE": "1"}
    command = [sys.executable, "sweep.py", *args, f"cache_dir={folder / 'cache'}", "--dir", folder]
    start = time.perf_counter()
    done = subprocess.run(command, cwd=tree, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode != 0 or " 0 failed, 0 not run" not in done.stdout:
        raise SystemExit(f"{tree}: {' '.join(args)} exited {done.returncode}: {done.stderr[-500:]}")
    return elapsed


def seconds(tree: Path, args: list[str]) -> float:
    """Wall time of rerunning a finished sweep (run once first, untimed), in a folder of its own
    for this tree and these args."""
    folder = SCRATCH / f"{abs(hash((str(tree), *args)))}"
    if not folder.exists():
        sweep(tree, args, folder)
    return sweep(tree, args, folder)


if __name__ == "__main__":
    compare(COMMANDS, seconds, __doc__)
