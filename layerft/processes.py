"""This process's place in a torchrun / accelerate launch (one process without one), and its exit.

Serves no config group: `layerft/run.py`, `layerft/phase.py` and the modules that record or key a
run ask it; train.py, sweep.py and the `local_parallel` launcher's job processes call
`quick_exit` as they start.
"""

from __future__ import annotations

import atexit
import gc
import itertools
import logging
import multiprocessing.util
import os
import sys
import tempfile

from layerft.errors import LayerftError

log = logging.getLogger(__name__)

# The longest path a Unix socket may have (sun_path), and what multiprocessing adds to its
# folder for one: "/listener-XXXXXXXX" (Python 3.10-3.12; 3.13's "/sock-XXXXXXXX" is shorter).
SOCKET_PATH_MAX = 104 if sys.platform == "darwin" or "bsd" in sys.platform else 108
SOCKET_NAME = len("/listener-XXXXXXXX")
# Where a socket's folder goes when TMPDIR's is too long: what CPython 3.13 falls back to.
SHORT_FOLDERS = ("/tmp", "/var/tmp", "/usr/tmp")
# What torchrun (and accelerate launch) tell each process of where it stands.
TORCHRUN_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE")


def rank() -> int:
    """This process's rank among all processes (0 without torchrun)."""
    return _env_number("RANK", 0)


def world_size() -> int:
    """How many processes train together (1 without torchrun); `batch_size` is per process, so
    this sets the global batch and the number of optimizer steps."""
    return _env_number("WORLD_SIZE", 1)


def _env_number(name: str, unset: int) -> int:
    """The whole number >= 0 that torchrun puts in the variable `name`; `unset` without it."""
    value = os.environ.get(name)
    if value is None:
        return unset
    if not value.strip().isdigit():
        raise LayerftError(f"{name}={value!r} is no process number; torchrun sets it, unset it")
    return int(value)


def check_torchrun_env() -> None:
    """Refuse torchrun's variables set as no torchrun sets them (by hand, or left from another
    launch): torch.distributed raised its traceback only once the first stage began to train."""
    given = [name for name in TORCHRUN_VARS if name in os.environ]
    if not given:
        return
    values = {"RANK": 0, "WORLD_SIZE": 1} | {name: _env_number(name, 0) for name in given}
    distributed = "LOCAL_RANK" in given or values["WORLD_SIZE"] > 1  # torch.distributed starts
    needed = ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT") if distributed else ()
    if missing := [name for name in needed if name not in os.environ]:
        raise LayerftError(
            f"{given[0]} is set but not {', '.join(missing)}: torchrun sets them together; "
            f"start the run with torchrun, or unset {', '.join(given)}"
        )
    for index, count in (("RANK", "WORLD_SIZE"), ("LOCAL_RANK", "LOCAL_WORLD_SIZE")):
        if index in values and count in values and values[index] >= values[count]:
            raise LayerftError(
                f"{index}={values[index]} is not below {count}={values[count]}: no torchrun "
                f"process has it; start the run with torchrun, or unset {', '.join(given)}"
            )


_ASKED = itertools.count()  # every process asks the same questions in the same order


def every_process(holds: bool, question: str) -> bool:
    """Whether `holds` is true in every process of this torchrun job, asked through torchrun's own
    store (what one process reads from a file another job may write in between can differ from
    what the next one reads, and processes that part ways hang at their first collective). One
    process, or a launcher without torchrun's store, has only its own answer."""
    world = world_size()
    if world == 1 or os.environ.get("TORCHELASTIC_USE_AGENT_STORE") != "True":
        return holds
    from datetime import timedelta

    from torch.distributed import TCPStore

    store = TCPStore(
        os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]), is_master=False,
        timeout=timedelta(minutes=30),  # NCCL's own: a process may load its data for long
    )  # fmt: skip
    restart = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")
    asked = f"layerft/{restart}/{next(_ASKED)}/{question}"  # each job of a `-m` run asks anew
    store.set(f"{asked}/{rank()}", "1" if holds else "0")
    return all(store.get(f"{asked}/{other}") == b"1" for other in range(world))


def cpu_threads() -> int | None:
    """torch's threads where this process trains on a CPU (None with a CUDA GPU): at another
    count, float sums run in another order and losses differ from about the 7th digit."""
    import torch  # here: train.py calls quick_exit before torch is imported

    return None if torch.cuda.is_available() else torch.get_num_threads()


def cpu_over_mps(bf16: bool) -> bool:
    """Without CUDA, whether the Trainer is told to train on the CPU (`use_cpu`) though a Mac's MPS
    is there: several processes (accelerate's gloo DDP) or bf16 (the CPU's autocast; the Trainer
    refuses bf16 on MPS). One process without bf16 keeps the Trainer's own device."""
    return world_size() > 1 or bf16


def device_name(bf16: bool = False) -> str:
    """What this process trains on, as run records name it (run_record.DEVICE_KEY): the CUDA GPU's
    name, `mps` or `cpu`, after the process count under torchrun (`2x NVIDIA H100 80GB HBM3`).
    `bf16`: the run's precision is bf16, which trains on the CPU rather than MPS (cpu_over_mps)."""
    import torch

    if torch.cuda.is_available():
        name = torch.cuda.get_device_name()
    else:
        mps = torch.backends.mps.is_available() and not cpu_over_mps(bf16)
        name = "mps" if mps else "cpu"
    return name if world_size() == 1 else f"{world_size()}x {name}"


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


def short_socket_folder() -> str:
    """The folder multiprocessing makes its Unix sockets in, short enough for one: data-loader
    workers pass each batch's tensors through a socket there, and under a TMPDIR whose path left
    no room (a cluster's per-job scratch folder) every worker's batch failed to send and the run
    waited for it forever. Such a TMPDIR is then passed over for /tmp, as CPython 3.13 does."""
    saved = tempfile.tempdir
    long = _bytes(tempfile.gettempdir()) + len("/pymp-XXXXXXXX") + SOCKET_NAME >= SOCKET_PATH_MAX
    short = next((d for d in SHORT_FOLDERS if os.path.isdir(d) and os.access(d, os.W_OK)), None)
    try:
        if long and short:
            tempfile.tempdir = short  # get_temp_dir makes its folder in gettempdir()
        folder = multiprocessing.util.get_temp_dir()  # kept for the process: workers fork it
    finally:
        tempfile.tempdir = saved
    if _bytes(folder) + SOCKET_NAME >= SOCKET_PATH_MAX:
        raise LayerftError(
            f"trainer.dataloader_workers: the workers' sockets would go in {folder}, a path too "
            f"long for one (TMPDIR={tempfile.gettempdir()}); set TMPDIR to a shorter folder, or "
            "trainer.dataloader_workers=0"
        )
    if long:
        log.info("data-loader workers' sockets go in %s (TMPDIR's path is too long)", folder)
    return folder


def _bytes(path: str) -> int:
    """A path's length as the kernel counts it: in bytes (a Korean character is three)."""
    return len(os.fsencode(path))
