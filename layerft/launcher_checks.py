"""The multirun launcher checked against this machine before a job starts: `hydra/launcher=slurm`
off a SLURM cluster, local_parallel's `gpus` naming a GPU that is not here. Each stopped only at
the launch (submitit's traceback, every job NOT RUN) or not at all (a job pinned to a GPU torch
cannot see trained on the CPU and exited 0).

Serves `hydra.launcher` as composed: sweep.py's plan calls `check_launcher_here` (a dry run that
passes is a run that starts), and `train.py -m` runs `LauncherChecks` as one of conf/config.yaml's
`hydra.callbacks`, before Hydra builds the launcher.
"""

from __future__ import annotations

import os
import shutil
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from layerft.errors import LayerftError, user_errors_exit

SLURM_LAUNCHER = "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher"
LOCAL_PARALLEL = "hydra_plugins.layerft_launcher.local_parallel.LocalParallelLauncher"


def check_launcher_here(launcher: DictConfig) -> None:
    """Refuse a `hydra.launcher` this machine cannot run as configured."""
    target = launcher.get("_target_")
    if target == SLURM_LAUNCHER and shutil.which("srun") is None:
        raise LayerftError(
            "hydra/launcher=slurm: no SLURM here (`srun` is not on the PATH); run the sweep on "
            "the cluster's login node, or hydra/launcher=submitit_local to run its jobs here"
        )
    if target == LOCAL_PARALLEL and launcher.get("gpus"):
        check_gpus_here([str(gpu) for gpu in launcher.gpus])


def check_gpus_here(gpus: list[str]) -> None:
    """local_parallel's `gpus` are ids CUDA_VISIBLE_DEVICES takes: without a mask of this process's
    own, torch's GPU count is the machine's, and an id at or past it pins a job to no GPU (CUDA
    hides them all: the job trains on the CPU). Under a mask the ids are the mask's to know."""
    if "CUDA_VISIBLE_DEVICES" in os.environ:
        return
    import torch  # here: sweep.py's plan and Hydra's callbacks load this module on every run

    count = torch.cuda.device_count()
    absent = [gpu for gpu in gpus if gpu.strip().isdecimal() and int(gpu) >= count]
    if not absent:
        return
    here = f"GPUs 0-{count - 1}" if count > 1 else "GPU 0" if count else "no GPU"
    raise LayerftError(
        f"hydra.launcher.gpus lists GPU {absent[0]}, but torch sees {here} on this machine: "
        "a job pinned to it would train on the CPU; list the GPUs that are here, or gpus=[] "
        "(or leave gpus out) to not pin"
    )


class LauncherChecks(Callback):
    """A Hydra callback: `check_launcher_here` when a multirun starts, before its launcher is
    built or its sweep folder written. Its refusal exits here (one line, exit 2): Hydra turns a
    callback's exception into a warning and goes on."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        with user_errors_exit():
            check_launcher_here(config.hydra.launcher)
