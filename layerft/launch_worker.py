"""The job process of `hydra/launcher=local_parallel` (hydra_plugins/layerft_launcher).

`python -m layerft.launch_worker JOB RETURN` runs the Hydra job pickled in JOB, as
hydra_submitit_launcher runs one on a SLURM node, and pickles its JobReturn to RETURN. Rerunning
that command by hand replays a job that died.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cloudpickle
from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, JobStatus, run_job, setup_globals
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig


@dataclass(frozen=True)
class ShippedJob:
    """What a job needs in a fresh process: the launcher's context, the job's composed config
    (`hydra.job.num` set) and Hydra's singletons (config store, plugins, runtime) as they were."""

    hydra_context: HydraContext
    task_function: TaskFunction
    config: DictConfig
    singleton_state: dict[Any, Any]


def run_shipped(job: ShippedJob) -> JobReturn:
    """Run the job in its job dir, as hydra_submitit_launcher does on a node."""
    Singleton.set_state(job.singleton_state)
    setup_globals()
    return run_job(
        hydra_context=job.hydra_context,
        task_function=job.task_function,
        config=job.config,
        job_dir_key="hydra.sweep.dir",
        job_subdir_key="hydra.sweep.subdir",
    )


def shippable(ret: JobReturn) -> JobReturn:
    """`ret` with a failure's traceback in the log and a return value that pickles (a pickled
    exception loses its traceback, and some exceptions do not pickle at all)."""
    error = ret._return_value
    if ret.status == JobStatus.FAILED and isinstance(error, BaseException):
        traceback.print_exception(type(error), error, error.__traceback__)
    try:
        cloudpickle.dumps(error)
    except Exception as pickling:
        ret.status = JobStatus.FAILED
        ret._return_value = RuntimeError(
            f"{error!r} (cannot be sent back to the launcher: {pickling})"
        )
    return ret


LAUNCHER_PID = "LAYERFT_LAUNCHER_PID"  # set by the launcher for the job processes it starts
PR_SET_PDEATHSIG = 1  # linux/prctl.h


def end_with_launcher() -> None:
    """Linux: have the kernel send this job SIGTERM when its launcher's process ends, by any signal
    (SIGKILL included). An orphaned job would go on training in its folder while a rerun of the
    sweep, its lock released with the launcher, ran the same job there."""
    launcher = os.environ.get(LAUNCHER_PID)
    if launcher is None or not sys.platform.startswith("linux"):
        return  # replayed by hand: nothing to end with
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != int(launcher):  # the launcher ended before the line above
        os._exit(128 + signal.SIGTERM)


def main(job_file: Path, return_file: Path) -> None:
    """Run the job in `job_file`; write its JobReturn to `return_file` whole or not at all."""
    job = cloudpickle.loads(job_file.read_bytes())
    assert isinstance(job, ShippedJob)
    ret = shippable(run_shipped(job))
    partial = return_file.with_name(return_file.name + ".partial")
    partial.write_bytes(cloudpickle.dumps(ret))
    os.replace(partial, return_file)


# How the launcher starts a job: `python -c` and this line rather than `python -m`, whose
# interpreter ends by SIGINT (exit 130, "killed by signal SIGINT") after any KeyboardInterrupt
# that went through an exec (a dataclass being defined as SIGTERM came), caught or not.
COMMAND = "from layerft.launch_worker import cli; cli()"


def cli() -> None:
    """`python -m layerft.launch_worker JOB RETURN` (or -c COMMAND): run the job, with this
    process ending when its launcher does. Ctrl-C, or the SIGTERM of a launcher stopping (or
    ended), is one line at the end of the job's log, not a traceback; a Ctrl-C Python lost
    stops the job at its next step."""
    from layerft.console import console_checked, guard_console
    from layerft.interrupts import interrupted_exit
    from layerft.processes import quick_exit

    quick_exit()
    guard_console()
    end_with_launcher()
    with console_checked(), interrupted_exit():
        main(Path(sys.argv[1]), Path(sys.argv[2]))


if __name__ == "__main__":
    # The job file names layerft.launch_worker's classes, which are not this __main__'s.
    from layerft import launch_worker

    launch_worker.cli()
