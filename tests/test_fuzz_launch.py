"""Launcher settings and the environment a run reads, fuzzed: each bad one is one line and exit 2
before a job trains (`hydra.launcher.gpus`, `trainer.dataloader_workers`, torchrun's variables,
WANDB_MODE, OMP_NUM_THREADS under local_parallel, hydra/launcher=slurm off a cluster)."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import pytest
import torch
from conftest import SHRINK, run_sweep, run_train
from omegaconf import OmegaConf

from hydra_plugins.layerft_launcher.gpu_slots import plan_slots
from hydra_plugins.layerft_launcher.local_parallel import child_env
from layerft import launcher_checks, trainer_config
from layerft.errors import LayerftError
from layerft.tracker import TrackerBackend, TrackerConfig
from layerft.trainer_config import TrainerConfig

HAS_SUBMITIT = importlib.util.find_spec("hydra_plugins.hydra_submitit_launcher") is not None
NO_SLURM_HERE = HAS_SUBMITIT and shutil.which("srun") is None
SLURM_LAUNCHER = "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher"
DRY_RUN = ["demo", "model=tiny", "tracker=none", "seed=1", "tuning_mode=full", "--dry-run"]

TORCHRUN = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


@pytest.fixture
def no_torchrun(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in TORCHRUN:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"LOCAL_RANK": "1"}, "LOCAL_RANK is set but not RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT"),
        ({"WORLD_SIZE": "2"}, "WORLD_SIZE is set but not RANK, MASTER_ADDR, MASTER_PORT"),
        ({"RANK": "3", "WORLD_SIZE": "2", "MASTER_ADDR": "h", "MASTER_PORT": "1"},
         "RANK=3 is not below WORLD_SIZE=2"),
        ({"RANK": "1"}, "RANK=1 is not below WORLD_SIZE=1"),
        ({"RANK": "x"}, "RANK='x' is no process number"),
        ({"RANK": "0", "WORLD_SIZE": "2", "LOCAL_RANK": "2", "LOCAL_WORLD_SIZE": "2",
          "MASTER_ADDR": "h", "MASTER_PORT": "1"}, "LOCAL_RANK=2 is not below LOCAL_WORLD_SIZE=2"),
    ],
)  # fmt: skip
def test_torchrun_variables_no_torchrun_sets_are_refused(no_torchrun, env, message) -> None:
    # torch.distributed raised a ValueError traceback (exit 1) as the first stage began.
    for name, value in env.items():
        no_torchrun.setenv(name, value)
    with pytest.raises(LayerftError, match=message.replace("(", r"\(")):
        TrainerConfig().check_device()


@pytest.mark.parametrize(
    "env",
    [{}, {"RANK": "0", "WORLD_SIZE": "1"},
     {"RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "2",
      "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29500"}],
)  # fmt: skip
def test_torchrun_variables_as_torchrun_sets_them_pass(no_torchrun, env) -> None:
    for name, value in env.items():
        no_torchrun.setenv(name, value)
    TrainerConfig().check_device()


def test_a_local_rank_left_set_stops_train_py_with_one_line(tmp_path: Path) -> None:
    proc = run_train(list(SHRINK), tmp_path, {"LOCAL_RANK": "1"}, timeout=120)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert proc.stderr.strip().splitlines()[-1].startswith("error: LOCAL_RANK is set but not RANK")
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "run" / "metrics.json").exists()


def test_dataloader_workers_past_four_per_cpu_are_refused(monkeypatch) -> None:
    # trainer.dataloader_workers=100000 forked worker after worker: the run hung, never trained.
    monkeypatch.setattr(trainer_config, "usable_cpus", lambda: 2)
    TrainerConfig(dataloader_workers=8).check_device()
    with pytest.raises(LayerftError, match=r"dataloader_workers=100000: .*use at most 8"):
        TrainerConfig(dataloader_workers=100000).check_device()


def test_a_negative_gpu_is_refused() -> None:
    # CUDA_VISIBLE_DEVICES=-1 hides every GPU: the job trained on the CPU, exit 0.
    with pytest.raises(LayerftError, match="hydra.launcher.gpus lists -1, no GPU"):
        plan_slots(None, ["0", "-1"])


def test_a_sweep_dry_run_refuses_a_negative_gpu(tmp_path: Path) -> None:
    args = [*DRY_RUN, "hydra/launcher=local_parallel", "hydra.launcher.gpus=[-1]", "--dir", "out"]
    proc = run_sweep(args, tmp_path, timeout=120)
    assert proc.returncode == 2, proc.stdout[-1000:] + proc.stderr[-2000:]
    assert proc.stderr.strip().splitlines()[-1].startswith("error: hydra.launcher.gpus lists -1")


@pytest.mark.parametrize("mode", ["garbage", "Offline"])
def test_a_wandb_mode_wandb_refuses_is_refused_as_the_config_is_built(monkeypatch, mode) -> None:
    # wandb.init raised pydantic's traceback (exit 1) after stage 1's data was loaded, whatever
    # tracker.mode said.
    monkeypatch.setenv("WANDB_MODE", mode)
    with pytest.raises(LayerftError, match=f"WANDB_MODE='{mode}' is no W&B mode"):
        TrackerConfig(name="wandb", backend=TrackerBackend.wandb, mode="offline")
    TrackerConfig(name="none", backend=TrackerBackend.none)  # tracker=none never reads it


@pytest.mark.parametrize("threads", ["garbage", "0", "00", "-2", ""])
def test_omp_num_threads_no_count_is_refused_under_local_parallel(monkeypatch, threads) -> None:
    # sweep.py's plan raised int()'s ValueError traceback; at 0 it planned for threads no job had.
    monkeypatch.setenv("OMP_NUM_THREADS", threads)
    with pytest.raises(LayerftError, match="OMP_NUM_THREADS=.* is no thread count"):
        child_env(None, 2)
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert child_env(None, 2)["OMP_NUM_THREADS"] == "3"


def test_slurm_off_a_cluster_is_refused(monkeypatch) -> None:
    # sweep.py's dry run passed; the sweep then stopped on submitit's `Could not detect "srun"`,
    # exit 1, every job NOT RUN.
    monkeypatch.setattr(launcher_checks.shutil, "which", lambda name: None)
    with pytest.raises(LayerftError, match="hydra/launcher=slurm: no SLURM here"):
        launcher_checks.check_launcher_here(OmegaConf.create({"_target_": SLURM_LAUNCHER}))
    launcher_checks.check_launcher_here(
        OmegaConf.create({"_target_": "elsewhere.SubmititLocalLauncher"})
    )


@pytest.mark.skipif(not NO_SLURM_HERE, reason="needs submitit installed and no srun on the PATH")
@pytest.mark.parametrize("dry_run", [True, False])
def test_a_slurm_sweep_off_a_cluster_is_one_line_and_exit_2(tmp_path: Path, dry_run) -> None:
    args = [*(DRY_RUN if dry_run else DRY_RUN[:-1]), "hydra/launcher=slurm", "--dir", "out"]
    proc = run_sweep(args, tmp_path, timeout=120)
    assert proc.returncode == 2, proc.stdout[-1000:] + proc.stderr[-2000:]
    assert proc.stderr.strip().splitlines()[-1].startswith("error: hydra/launcher=slurm: no SLURM")
    assert "NOT RUN" not in proc.stdout


@pytest.mark.skipif(not NO_SLURM_HERE, reason="needs submitit installed and no srun on the PATH")
def test_train_py_multirun_on_slurm_off_a_cluster_is_one_line(tmp_path: Path) -> None:
    # submitit's RuntimeError traceback, exit 1: Hydra builds the launcher inside its main.
    proc = run_train(["-m", *SHRINK, "seed=1,2", "hydra/launcher=slurm"], tmp_path, timeout=120)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("error: hydra/launcher=slurm: no SLURM")
    assert not (tmp_path / "multirun").exists()  # refused before the sweep folder is written


@pytest.mark.parametrize(
    ("count", "gpus", "absent"), [(0, [0], "GPU 0, but torch sees no GPU"),
                                  (2, [1, 2], "GPU 2, but torch sees GPUs 0-1"),
                                  (1, [0, 1], "GPU 1, but torch sees GPU 0")],
)  # fmt: skip
def test_pinning_jobs_to_a_gpu_that_is_not_here_is_refused(monkeypatch, count, gpus, absent):
    # Each job pinned to it (CUDA_VISIBLE_DEVICES) saw no GPU, trained on the CPU and exited 0.
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: count)
    launcher = OmegaConf.create({"_target_": launcher_checks.LOCAL_PARALLEL, "gpus": gpus})
    with pytest.raises(LayerftError, match=f"hydra.launcher.gpus lists {absent}"):
        launcher_checks.check_launcher_here(launcher)
    launcher.gpus = gpus[:-1]  # the ones that are here, or none
    launcher_checks.check_launcher_here(launcher)
    launcher.gpus = gpus
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3")  # ids are the mask's to know: not refused
    launcher_checks.check_launcher_here(launcher)


@pytest.mark.skipif(torch.cuda.is_available(), reason="a machine without a CUDA GPU")
@pytest.mark.parametrize("script", ["sweep.py", "train.py -m"])
def test_pinning_jobs_to_gpus_on_a_machine_without_one_is_one_line(tmp_path: Path, script):
    pinned = ["hydra/launcher=local_parallel", "hydra.launcher.gpus=[0]"]
    if script == "sweep.py":
        proc = run_sweep([*DRY_RUN, *pinned, "--dir", "out"], tmp_path, timeout=120)
    else:
        proc = run_train(["-m", *SHRINK, "seed=1,2", *pinned], tmp_path, timeout=120)
    assert proc.returncode == 2, proc.stderr[-2000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: hydra.launcher.gpus lists GPU 0, but torch sees no GPU"), last
