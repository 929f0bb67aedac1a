"""Where `hydra/launcher=local_parallel` runs its jobs: how many at once (`hydra.launcher.n_jobs`,
else one per GPU), each on a GPU no running job holds (`run_pooled`)."""

from __future__ import annotations

import os
import queue
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

from hydra_plugins.layerft_launcher.config import LocalParallelConf
from layerft.errors import LayerftError

R = TypeVar("R")
BASIC_LAUNCHER = "hydra._internal.core_plugins.basic_launcher.BasicLauncher"  # jobs in this process


def job_cpu_threads(launcher: Any) -> int | str | None:
    """The torch threads the jobs of a multirun with this `hydra.launcher` node train at on a CPU
    (`Stage1Key.cpu_threads`; None on a GPU), as the sweep's plan looks up their stored stage 1:
    this process's for Hydra's basic launcher, which runs them here, local_parallel's share of
    the CPUs, and ANY_THREADS for a launcher whose jobs run elsewhere (submitit's)."""
    from layerft.processes import cpu_threads
    from layerft.stage1_store import ANY_THREADS

    target, here = launcher.get("_target_"), cpu_threads()
    if target == LocalParallelConf._target_ and here is not None:
        from hydra_plugins.layerft_launcher.local_parallel import child_env  # it imports this

        slots, _ = planned_slots(launcher.n_jobs, launcher.gpus)
        return int(child_env(None, slots)["OMP_NUM_THREADS"])
    return here if target in (BASIC_LAUNCHER, LocalParallelConf._target_) else ANY_THREADS


def visible_gpus() -> list[str]:
    """This process's GPUs as CUDA_VISIBLE_DEVICES entries: its own mask if set, else 0..count-1."""
    mask = os.environ.get("CUDA_VISIBLE_DEVICES")
    if mask is None:
        import torch  # only here: Hydra imports this module whenever it scans plugins

        return [str(i) for i in range(torch.cuda.device_count())]
    gpus = []
    for entry in mask.split(","):
        if not entry.strip() or entry.strip().startswith("-"):
            break  # CUDA ignores the mask from its first invalid entry on
        gpus.append(entry.strip())
    return gpus


def plan_slots(n_jobs: int | None, gpus: Sequence[str]) -> int:
    """How many jobs run at once: `n_jobs`, or one per GPU, or 1 without GPUs; checked against `gpus`."""
    if negative := [gpu for gpu in gpus if gpu.strip().startswith("-")]:
        raise LayerftError(
            f"hydra.launcher.gpus lists {negative[0]}, no GPU: CUDA would hide every GPU from "
            "its jobs; list GPU indices >= 0, or gpus=[] to not pin"
        )
    if len(set(gpus)) != len(gpus):
        raise LayerftError(f"hydra.launcher.gpus lists a GPU twice: {list(gpus)}")
    if n_jobs is None:
        return max(1, len(gpus))
    if n_jobs < 1:
        raise LayerftError(f"hydra.launcher.n_jobs must be at least 1, got {n_jobs}")
    if gpus and n_jobs > len(gpus):
        raise LayerftError(
            f"hydra.launcher.n_jobs={n_jobs} but only {len(gpus)} GPUs ({','.join(gpus)}): a job "
            "never shares a GPU; lower n_jobs, list more hydra.launcher.gpus, or gpus=[] to not pin"
        )
    return n_jobs


def planned_slots(n_jobs: int | None, gpus: Sequence[int | str] | None) -> tuple[int, list[str]]:
    """The slot plan of `hydra.launcher.n_jobs` and `.gpus` (null: visible_gpus()): how many jobs
    run at once (plan_slots, which refuses an impossible plan) and the GPUs they are pinned to."""
    pinned = visible_gpus() if gpus is None else [str(gpu) for gpu in gpus]
    return plan_slots(n_jobs, pinned), pinned


def run_pooled(
    jobs: Sequence[Callable[[str | None], R]],
    n_jobs: int,
    gpus: Sequence[str],
    on_abort: Callable[[], None] = lambda: None,
) -> list[R]:
    """Call each job with a GPU no running job holds (None when `gpus` is empty), `n_jobs` at a
    time; results in job order. On an error or Ctrl-C, jobs not started are dropped and
    `on_abort` runs (to stop the running ones) before waiting for them."""
    free: queue.SimpleQueue[str] = queue.SimpleQueue()
    for gpu in gpus:
        free.put(gpu)

    def run(job: Callable[[str | None], R]) -> R:
        if not gpus:
            return job(None)
        # Never waits while n_jobs <= len(gpus); a GPU comes back only when its job has ended.
        gpu = free.get()
        try:
            return job(gpu)
        finally:
            free.put(gpu)

    with ThreadPoolExecutor(max_workers=n_jobs, thread_name_prefix="local_parallel") as pool:
        futures: list[Future[R]] = []
        try:  # a Ctrl-C while the jobs are submitted too: those submitted are stopped
            for job in jobs:
                futures.append(pool.submit(run, job))
            return [future.result() for future in futures]
        except BaseException:
            for future in futures:
                future.cancel()
            on_abort()
            raise
