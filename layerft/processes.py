"""This process's place in a torchrun / accelerate launch (one process without one), and its exit.

Serves no config group: `layerft/run.py`, `layerft/phase.py` and the modules that record or key a
run ask it; train.py, sweep.py and the `local_parallel` launcher's job processes call
`quick_exit` as they start.
"""

from __future__ import annotations

import atexit
import gc
import os


def rank() -> int:
    """This process's rank among all processes (0 without torchrun)."""
    return int(os.environ.get("RANK", "0"))


def world_size() -> int:
    """How many processes train together (1 without torchrun); `batch_size` is per process, so
    this sets the global batch and the number of optimizer steps."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def is_main_process() -> bool:
    """Under torchrun every process runs train.py; only the first one records (files, tracker)."""
    return rank() == 0


def quick_exit() -> None:
    """Have this process's exit skip the interpreter's final garbage collections: they went over
    every object of torch, transformers and datasets and took 3-5 s at the end of each train.py,
    sweep.py and local_parallel job on a 2-core machine (0.2-0.6 s without them; BENCHMARKS.md,
    "Exiting"). `gc.freeze` at exit, after the atexit hooks registered later (the tracker's, the
    data loaders'); nothing of layerft's waits for a collection: results are written, synced and
    renamed before, and the log files are closed by logging's own hook."""
    atexit.register(gc.freeze)
