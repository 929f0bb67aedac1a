"""This process's place in a torchrun / accelerate launch (one process without one).

Serves no config group: `layerft/run.py`, `layerft/phase.py` and the modules that record or key a
run ask it.
"""

from __future__ import annotations

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
