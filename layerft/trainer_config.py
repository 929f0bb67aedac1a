"""The `trainer` settings of the root config: the phase runner's (`layerft/phase.py`) options shared by
both stages. Apart from the runner, so that composing a config imports no transformers Trainer."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from enum import Enum

import torch

from layerft.errors import LayerftError
from layerft.processes import check_torchrun_env

# Set by hydra/launcher=local_parallel in its jobs' environment: how many run side by side.
JOBS_PER_NODE = "LAYERFT_JOBS_PER_NODE"
# More data-loader workers than this per CPU only wait for a core; a typo's 100000 forked until
# the run hung.
WORKERS_PER_CPU = 4


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity where the OS has one, else every CPU)."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return cpus or 1


def _count_from_env(name: str) -> int:
    """A process count from the environment variable `name`: 1 when unset, empty or not >= 1."""
    value = os.environ.get(name, "")
    return int(value) if value.isdigit() and int(value) >= 1 else 1


class Precision(str, Enum):
    fp32 = "fp32"
    bf16 = "bf16"
    fp16 = "fp16"


class CompileMode(str, Enum):
    default = "default"
    reduce_overhead = "reduce-overhead"  # CUDA graphs: fewer launches for small batches
    max_autotune = "max-autotune"


@dataclass
class TrainerConfig:
    """Settings of the phase runner shared by both stages."""

    precision: Precision = Precision.fp32
    group_by_length: bool = False  # measured slower on an H100 with short inputs; see BENCHMARKS.md
    keep_checkpoints: bool = False
    # null: a progress bar per stage when stderr is a terminal; log lines only otherwise.
    progress_bar: bool | None = None
    # null: up to 4 per process on a GPU (measured faster there, BENCHMARKS.md), none on a CPU,
    # where a worker takes a core from the arithmetic.
    dataloader_workers: int | None = None
    # Batches are padded to the longest example, rounded up to this multiple; null: 8 on a GPU
    # (few distinct shapes for its kernels to tune for), none on a CPU (every token costs).
    pad_to_multiple_of: int | None = None
    compile: bool = False  # torch.compile the encoder
    compile_mode: CompileMode = CompileMode.default

    def __post_init__(self) -> None:
        if self.dataloader_workers is not None and self.dataloader_workers < 0:
            raise LayerftError(
                f"trainer: dataloader_workers must be >= 0, got {self.dataloader_workers}"
            )
        if self.pad_to_multiple_of is not None and self.pad_to_multiple_of < 1:
            raise LayerftError(
                f"trainer: pad_to_multiple_of must be >= 1 or null, got {self.pad_to_multiple_of}"
            )

    def check_device(self) -> None:
        """Fail on a setting this machine cannot honour (the Trainer would ignore it silently, or
        hang on it), or a torchrun environment torch.distributed cannot start from."""
        check_torchrun_env()
        most = WORKERS_PER_CPU * usable_cpus()
        if self.dataloader_workers is not None and self.dataloader_workers > most:
            raise LayerftError(
                f"trainer.dataloader_workers={self.dataloader_workers}: each is a process of its "
                f"own, more than {WORKERS_PER_CPU} per CPU this process may use "
                f"({usable_cpus()}); use at most {most}"
            )
        if self.precision == Precision.fp16 and not torch.cuda.is_available():
            raise LayerftError(
                "trainer.precision=fp16 needs a CUDA GPU; on a CPU use bf16 (autocast) or fp32"
            )

    def resolved_pad_multiple(self) -> int | None:
        """The padding multiple to use on this machine."""
        if self.pad_to_multiple_of is not None:
            return self.pad_to_multiple_of
        return 8 if torch.cuda.is_available() else None

    def resolved_dataloader_workers(self) -> int:
        """The data-loader workers of each process on this machine."""
        if self.dataloader_workers is not None:
            return self.dataloader_workers
        if not torch.cuda.is_available():
            return 0
        # The CPUs this process may use, shared with the other processes of its node (torchrun's,
        # or the jobs hydra/launcher=local_parallel runs side by side); one of each process's
        # stays with the training loop, which launches the GPU's kernels.
        sharing = _count_from_env("LOCAL_WORLD_SIZE") * _count_from_env(JOBS_PER_NODE)
        return max(0, min(4, usable_cpus() // sharing - 1))

    def resolved_progress_bar(self) -> bool:
        """Whether to draw the Trainer's progress bar."""
        if self.progress_bar is not None:
            return self.progress_bar
        return sys.stderr.isatty()
