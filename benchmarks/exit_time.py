"""How long a layerft process takes to end once its work is done, with and without
`processes.quick_exit` (the interpreter's final garbage collections skipped).

Two measurements, interleaved, medians:
- `imports`: a fresh interpreter imports what a run imports (layerft.run: torch, transformers,
  datasets, the Trainer), notes the time, and exits, plainly or after quick_exit().
- `train.py` (with --repos): `python train.py model=tiny injection_task=none
  target_task.epochs=1` (64 training and 32 dev examples) in each checkout given (e.g. one
  before quick_exit and one after): the whole run's wall time and the time from its `results:`
  line to the process's end.

python benchmarks/exit_time.py --repeats 5 [--repos OLD_CHECKOUT NEW_CHECKOUT]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

IMPORTS = """
import sys, time
import layerft.run
from transformers import Trainer
if sys.argv[1] == "quick":
    from layerft.processes import quick_exit
    quick_exit()
print(time.time(), flush=True)
"""


def exit_after_imports(mode: str) -> float:
    """Seconds from the imports' end to the end of the process."""
    proc = subprocess.run(
        [sys.executable, "-c", IMPORTS, mode], capture_output=True, text=True, check=True
    )
    ended = time.time()
    return ended - float(proc.stdout.strip().splitlines()[-1])


def train_run(repo: Path) -> tuple[float, float]:
    """A tiny train.py run in `repo`: its wall time and the seconds from its results line to its
    end."""
    with tempfile.TemporaryDirectory() as folder:
        args = [sys.executable, str(repo / "train.py"), "model=tiny", "injection_task=none",
                "target_task.epochs=1", "target_task.generator_sizes.train=64",
                "target_task.generator_sizes.validation=32", f"hydra.run.dir={folder}/run",
                f"cache_dir={folder}/cache"]  # fmt: skip
        env = dict(os.environ, PYTHONPATH=str(repo), HF_HUB_OFFLINE="1")
        start = time.time()
        proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
        assert proc.stdout is not None
        results_at = None
        for line in proc.stdout:
            if "results: " in line:
                results_at = time.time()
        assert proc.wait() == 0 and results_at is not None
        ended = time.time()
        return ended - start, ended - results_at


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--repos", nargs="*", type=Path, default=[])
    args = parser.parse_args()
    imports: dict[str, list[float]] = {"plain": [], "quick": []}
    runs: dict[Path, list[tuple[float, float]]] = {repo: [] for repo in args.repos}
    for _ in range(args.repeats):
        for mode in imports:
            imports[mode].append(exit_after_imports(mode))
        for repo in runs:
            runs[repo].append(train_run(repo))
    for mode, seconds in imports.items():
        print(f"imports, exit {mode}: median {statistics.median(seconds):.2f} s "
              f"({', '.join(f'{s:.2f}' for s in seconds)})")  # fmt: skip
    for repo, measured in runs.items():
        walls, exits = zip(*measured, strict=True)
        print(f"train.py in {repo}: wall median {statistics.median(walls):.2f} s "
              f"({', '.join(f'{s:.2f}' for s in walls)}), results line to exit median "
              f"{statistics.median(exits):.2f} s ({', '.join(f'{s:.2f}' for s in exits)})")  # fmt: skip


if __name__ == "__main__":
    main()
