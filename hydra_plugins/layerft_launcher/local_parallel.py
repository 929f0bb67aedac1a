"""`hydra/launcher=local_parallel`: a multirun's jobs on this machine, each in a fresh process.

Each job runs in a process of its own (`layerft/launch_worker.py`; no allocator or CUDA state
carries over from one job to the next), at most `n_jobs` at once, each pinned to a GPU that no running
job holds. The job travels as a cloudpickle file, as hydra_submitit_launcher ships it to SLURM,
and its JobReturn comes back the same way. A process that dies without one (SIGKILL, the OOM
killer, `os._exit`) does not stop the other jobs: a layerft job's death is recorded in its
`failed.json` like any failed job (the sweep goes on and lists it as failed); another Hydra app's
becomes a FAILED JobReturn naming the job and how it ended, which Hydra's sweeper raises when the
batch is done. `dead_job.py` records the death and fills in the JobReturn the process never sent.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, JobStatus, configure_log, filter_overrides, setup_globals
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, open_dict

from hydra_plugins.layerft_launcher.dead_job import job_return, record_dead_job, task_config
from hydra_plugins.layerft_launcher.gpu_slots import planned_slots, run_pooled
from layerft.errors import LayerftError

log = logging.getLogger(__name__)

LOG_NAME = "launcher.log"  # the job process's stdout and stderr, in its job dir
LOG_TAIL_LINES = 5  # of that log, quoted in a dead job's error


class JobProcessDied(RuntimeError):
    """A job's process ended without handing back its result (killed, or exited by itself)."""


def child_env(gpu: str | None, side_by_side: int = 1) -> dict[str, str]:
    """The job process's environment: this one's, pinned to `gpu`, importing what this one imports,
    and told how many jobs run `side_by_side` (they share the CPUs for data-loader workers). Unless
    OMP_NUM_THREADS is set, each job's torch gets its share of the CPUs: torch's one thread per
    CPU in each of several jobs spin-wait on each other (BENCHMARKS.md, "CPU threads").

    `python train.py` imports layerft and this plugin from the script's folder (sys.path[0]); a
    `python -m` child does not see that folder unless PYTHONPATH names it.
    """
    import torch  # here: Hydra imports every plugin at each launch, this one's launcher or not

    from layerft.launch_worker import LAUNCHER_PID
    from layerft.trainer_config import JOBS_PER_NODE, usable_cpus

    env = dict(os.environ)
    script_dir = sys.path[0] or os.getcwd()
    env["PYTHONPATH"] = os.pathsep.join(
        [script_dir, *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))]
    )
    env["PYTHONUNBUFFERED"] = "1"  # a killed job's log still ends where it died
    env[LAUNCHER_PID] = str(os.getpid())  # the job ends when this process does
    if gpu is not None:
        env["CUDA_VISIBLE_DEVICES"] = gpu  # set before the child's torch touches CUDA
    env[JOBS_PER_NODE] = str(side_by_side)
    omp = env.get("OMP_NUM_THREADS", "1").strip()
    if not omp.isdigit() or int(omp) < 1:  # torch ignores it: the plan's count is no job's
        raise LayerftError(
            f"OMP_NUM_THREADS={env['OMP_NUM_THREADS']!r} is no thread count; set a whole number "
            ">= 1, or unset it for each job's share of the CPUs"
        )
    if "OMP_NUM_THREADS" not in env:  # torch's own count, not above the CPUs: a physical core's
        # (MKL's default) where a CPU is a hyperthread, so that n_jobs=1 computes as train.py does
        threads = min(usable_cpus(), torch.get_num_threads())
        env["OMP_NUM_THREADS"] = str(max(1, threads // side_by_side))
    return env


def describe_exit(code: int) -> str:
    """`exited with code 3`, `killed by signal SIGKILL (9)`: how a process ended."""
    if code >= 0:
        return f"exited with code {code}"
    try:
        name = signal.Signals(-code).name
    except ValueError:
        name = "an unknown signal"
    return f"killed by signal {name} ({-code})"


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    """The last lines of a job's log, or a note that it has none."""
    if not path.exists():
        return "(no output)"
    kept = path.read_text(errors="replace").splitlines()[-lines:]
    return "\n".join(f"    {line}" for line in kept) or "(no output)"


class LocalParallelLauncher(Launcher):
    """Hydra's launcher interface over `run_pooled`: one worker process per job."""

    def __init__(self, n_jobs: int | None, gpus: list[int] | None) -> None:
        self.n_jobs = n_jobs
        self.gpus = None if gpus is None else [str(gpu) for gpu in gpus]
        self.config: DictConfig | None = None
        self.task_function: TaskFunction | None = None
        self.hydra_context: HydraContext | None = None
        self._compose = threading.Lock()  # Hydra's config loader is not thread-safe
        self._running: set[subprocess.Popen[bytes]] = set()
        self._running_lock = threading.Lock()
        self._stopping = False
        self._slots = 1  # jobs side by side, set by launch()

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        self.config = config
        self.hydra_context = hydra_context
        self.task_function = task_function

    def launch(
        self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int
    ) -> Sequence[JobReturn]:
        """Run every job of this batch and return its JobReturn; a dead process gives FAILED."""
        assert self.config is not None
        setup_globals()
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        n_jobs, gpus = planned_slots(self.n_jobs, self.gpus)
        self._slots = n_jobs
        files = Path(str(self.config.hydra.sweep.dir)).absolute() / ".local_parallel"
        files.mkdir(parents=True, exist_ok=True)
        pinned = f", pinned to GPUs {','.join(gpus)}" if gpus else ""
        log.info("Launching %d jobs locally, %d at a time%s", len(job_overrides), n_jobs, pinned)
        state = Singleton.get_state()
        jobs = [
            partial(self._run_job, initial_job_idx + i, list(overrides), state, files)
            for i, overrides in enumerate(job_overrides)
        ]
        return run_pooled(jobs, n_jobs, gpus, on_abort=self._stop_running)

    def _run_job(
        self, idx: int, overrides: list[str], state: dict[Any, Any], files: Path, gpu: str | None
    ) -> JobReturn:
        """Ship job `idx` to a fresh worker process pinned to `gpu`; its JobReturn, or FAILED."""
        import cloudpickle

        from layerft.interrupts import stop_if_interrupted
        from layerft.launch_worker import ShippedJob
        from layerft.results import metrics_stamp

        stop_if_interrupted()  # a Ctrl-C the launcher's thread lost: start no more jobs
        assert self.hydra_context is not None and self.task_function is not None
        config, job_dir = self._job_config(idx, overrides)
        job_file, return_file = files / f"{idx}.job.pkl", files / f"{idx}.return.pkl"
        log_path = job_dir / LOG_NAME
        return_file.unlink(missing_ok=True)  # an earlier launch's must not pass for this one's
        job = ShippedJob(self.hydra_context, self.task_function, config, state)
        job_file.write_bytes(cloudpickle.dumps(job))
        on_gpu = f" (GPU {gpu})" if gpu is not None else ""
        log.info("\t#%d : %s%s -> %s", idx, " ".join(filter_overrides(overrides)), on_gpu, log_path)
        before = metrics_stamp(job_dir)  # a result its process writes is another file
        start = time.monotonic()
        code = self._run_worker([str(job_file), str(return_file)], log_path, gpu)
        seconds = time.monotonic() - start
        if return_file.exists():  # written whole (renamed into place): the job returned
            ret = cloudpickle.loads(return_file.read_bytes())
            assert isinstance(ret, JobReturn)
            error = f": {ret._return_value!r}" if ret.status == JobStatus.FAILED else ""
            log.info("\t#%d %s in %.0f s%s", idx, ret.status.name.lower(), seconds, error)
            if code != 0:  # e.g. a crash in the interpreter's or CUDA's teardown
                log.warning("\t#%d %s after returning its result", idx, describe_exit(code))
            return ret
        log.error("\t#%d %s, see %s", idx, describe_exit(code), log_path)
        died = JobProcessDied(
            f"local_parallel job #{idx} ({' '.join(overrides)}) {describe_exit(code)} after "
            f"{seconds:.0f} s without a result; the end of {log_path}:\n{log_tail(log_path)}"
        )
        task_cfg = task_config(config)
        if not self._stopping and record_dead_job(task_cfg, config.hydra, job_dir, died, before):
            # Recorded as layerft records a failure inside a job, which returns None: the
            # sweep goes on to its other batches and lists this job as failed.
            return job_return(task_cfg, config.hydra, overrides, job_dir, JobStatus.COMPLETED, None)
        return job_return(task_cfg, config.hydra, overrides, job_dir, JobStatus.FAILED, died)

    def _job_config(self, idx: int, overrides: list[str]) -> tuple[DictConfig, Path]:
        """The job's composed config (numbered as BasicLauncher numbers it) and its job dir."""
        assert self.hydra_context is not None and self.config is not None
        with self._compose:
            config = self.hydra_context.config_loader.load_sweep_config(self.config, overrides)
            with open_dict(config):
                config.hydra.job.id = idx
                config.hydra.job.num = idx
            hydra_cfg = HydraConfig.instance().cfg
            HydraConfig.instance().set_config(config)  # as run_job resolves the dir: `${hydra:...}`
            try:
                job_dir = Path(str(config.hydra.sweep.dir), str(config.hydra.sweep.subdir))
            finally:
                HydraConfig.instance().cfg = hydra_cfg
        job_dir = job_dir.absolute()
        job_dir.mkdir(parents=True, exist_ok=True)
        return config, job_dir

    def _run_worker(self, args: list[str], log_path: Path, gpu: str | None) -> int:
        """Run the job process (`python -c launch_worker.COMMAND ARGS`, as `python -m
        layerft.launch_worker ARGS` would) with its output in `log_path`; its exit code."""
        from layerft import launch_worker

        with log_path.open("ab") as out, self._running_lock:
            if self._stopping:  # Ctrl-C came while this job was being composed
                raise JobProcessDied("not started: the launcher is stopping")
            process = subprocess.Popen(
                [sys.executable, "-c", launch_worker.COMMAND, *args],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=child_env(gpu, self._slots),
            )  # fmt: skip
            self._running.add(process)
        try:
            return process.wait()
        finally:
            with self._running_lock:
                self._running.discard(process)

    def _stop_running(self) -> None:
        """Ctrl-C or an error in the launcher: start no more jobs, terminate the running ones."""
        with self._running_lock:
            self._stopping = True
            for process in self._running:
                process.terminate()
