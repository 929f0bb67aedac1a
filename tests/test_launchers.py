"""Launchers: local_parallel (a fresh process per job, n_jobs at once, one GPU per running job),
submitit_local (SLURM's path on this machine) and the SLURM preset's composition."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import logging
import os
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from datetime import datetime
from itertools import combinations
from pathlib import Path

import pytest
import torch
from compose import CONF
from conftest import REPO, SHRINK, run_sweep, run_train
from hydra import compose, initialize_config_dir
from hydra.errors import ConfigCompositionException
from hydra.utils import instantiate

from hydra_plugins.layerft_launcher import local_parallel
from hydra_plugins.layerft_launcher.gpu_slots import plan_slots, run_pooled, visible_gpus
from hydra_plugins.layerft_launcher.local_parallel import child_env, describe_exit
from layerft import interrupts
from layerft.errors import LayerftError
from layerft.sweep_grid import expand

# One worker runs this module: its `fates` fixture runs one launch for several tests.
pytestmark = [pytest.mark.xdist_group(__name__), pytest.mark.slow]

HAS_SUBMITIT = importlib.util.find_spec("hydra_plugins.hydra_submitit_launcher") is not None
needs_submitit = pytest.mark.skipif(
    not HAS_SUBMITIT, reason='hydra-submitit-launcher not installed (pip install -e ".[slurm]")'
)

# Two jobs at a time on any machine: with GPUs, n_jobs=2 would otherwise need two of them.
TWO_UNPINNED = ("hydra.launcher.n_jobs=2", "hydra.launcher.gpus=[]")

# A Hydra app whose jobs end as told: the launcher's plumbing without training anything.
APP = textwrap.dedent(
    """
    import os, signal, sys, threading, time
    from pathlib import Path

    import hydra
    from hydra.core.config_store import ConfigStore
    from hydra.core.hydra_config import HydraConfig

    ConfigStore.instance().store(name="app", node={"fate": "finish", "seconds": 0.0, "tag": 0})


    @hydra.main(version_base="1.3", config_path=None, config_name="app")
    def main(cfg):
        out = Path(HydraConfig.get().runtime.output_dir)
        gpu = os.environ.get("CUDA_VISIBLE_DEVICES", "-")
        side_by_side = os.environ.get("LAYERFT_JOBS_PER_NODE", "-")
        (out / "started").write_text(f"{time.time()} {gpu} {os.getpid()} {side_by_side}")
        time.sleep(cfg.seconds)
        if cfg.fate == "sigkill":
            os.kill(os.getpid(), signal.SIGKILL)
        if cfg.fate == "exit3":
            os._exit(3)
        if cfg.fate == "exit0":
            sys.exit(0)  # SystemExit passes through run_job: the process ends with no return
        if cfg.fate == "raise":
            raise ValueError("a Python error in the job")
        if cfg.fate == "sigterm_in_exec":  # as one landing while a dataclass is being defined
            exec("os.kill(os.getpid(), signal.SIGTERM); time.sleep(30)")
        if cfg.fate == "unpicklable":
            error = RuntimeError("carries a lock")
            error.lock = threading.Lock()
            raise error
        (out / "finished").write_text(str(time.time()))
        return cfg.fate


    if __name__ == "__main__":
        main()
    """
)


def run_app(args: list[str], root: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """`python app.py -m ARGS hydra/launcher=local_parallel` in `root`; the plugin from this checkout."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "app.py").write_text(APP)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HYDRA_", "CUDA_"))}
    env.update(PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    return subprocess.run(
        [sys.executable, "app.py", "-m", "hydra/launcher=local_parallel", *args],
        cwd=root, env=env, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


def overlap(a: tuple[float, float], b: tuple[float, float]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


# --- slots: which job runs when, on which GPU (threads only, no processes) ------------------


class Recorder:
    """Fake jobs that sleep and record (gpu, start, end), and how many ran at once at most."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.spans: dict[int, tuple[str | None, float, float]] = {}
        self.running = self.most_running = 0

    def job(self, idx: int, seconds: float) -> Callable[[str | None], int]:
        def run(gpu: str | None) -> int:
            with self.lock:
                self.running += 1
                self.most_running = max(self.most_running, self.running)
            start = time.monotonic()
            time.sleep(seconds)
            with self.lock:
                self.running -= 1
                self.spans[idx] = (gpu, start, time.monotonic())
            return idx

        return run


def test_a_gpu_is_reused_only_when_its_job_finished() -> None:
    rec = Recorder()
    jobs = [rec.job(0, 1.5), rec.job(1, 0.1), rec.job(2, 0.1)]
    assert run_pooled(jobs, n_jobs=2, gpus=["0", "1"]) == [0, 1, 2]  # results in job order
    assert rec.most_running == 2
    assert {gpu for gpu, _, _ in rec.spans.values()} == {"0", "1"}
    for (gpu_a, *span_a), (gpu_b, *span_b) in combinations(rec.spans.values(), 2):
        assert gpu_a != gpu_b or not overlap(span_a, span_b), rec.spans
    # Job 2 waits for a free GPU: job 1's (done after 0.1 s), not job 0's (busy for 1.5 s).
    assert rec.spans[2][0] == rec.spans[1][0] != rec.spans[0][0]
    assert rec.spans[2][1] >= rec.spans[1][2] and overlap(rec.spans[2][1:], rec.spans[0][1:])


def test_without_gpus_n_jobs_caps_how_many_run_at_once() -> None:
    rec = Recorder()
    assert run_pooled([rec.job(i, 0.2) for i in range(5)], n_jobs=2, gpus=[]) == list(range(5))
    assert rec.most_running == 2
    assert {gpu for gpu, _, _ in rec.spans.values()} == {None}


@pytest.mark.parametrize(
    ("n_jobs", "gpus", "slots"),
    [(None, [], 1), (None, ["0", "1"], 2), (1, ["0", "1"], 1), (3, [], 3), (2, ["GPU-a", "3"], 2)],
)
def test_n_jobs_defaults_to_one_per_gpu_else_one(n_jobs, gpus, slots) -> None:
    assert plan_slots(n_jobs, gpus) == slots


@pytest.mark.parametrize(
    ("n_jobs", "gpus", "message"),
    [
        (3, ["0", "1"], "n_jobs=3 but only 2 GPUs (0,1)"),
        (0, [], "n_jobs must be at least 1"),
        (None, ["0", "0"], "lists a GPU twice"),
    ],
)
def test_impossible_slot_plans_fail(n_jobs, gpus, message) -> None:
    with pytest.raises(LayerftError, match=message.replace("(", r"\(").replace(")", r"\)")):
        plan_slots(n_jobs, gpus)


@pytest.mark.parametrize(
    ("mask", "gpus"),
    [("2,3", ["2", "3"]), ("", []), ("GPU-abc, 1", ["GPU-abc", "1"]), ("1,-1,2", ["1"])],
)
def test_visible_gpus_are_the_mask_entries(monkeypatch, mask, gpus) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", mask)
    assert visible_gpus() == gpus


def test_visible_gpus_without_a_mask_count_what_torch_sees(monkeypatch) -> None:
    import torch

    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 3)
    assert visible_gpus() == ["0", "1", "2"]


def test_a_job_process_sees_only_its_gpu_and_the_scripts_folder(monkeypatch) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4,5")
    monkeypatch.setenv("PYTHONPATH", "/elsewhere")
    assert child_env("5")["CUDA_VISIBLE_DEVICES"] == "5"
    assert child_env("5", 3)["LAYERFT_JOBS_PER_NODE"] == "3"  # they share the CPUs for workers
    assert child_env(None)["CUDA_VISIBLE_DEVICES"] == "4,5"  # gpus=[]: not pinned
    paths = child_env(None)["PYTHONPATH"].split(os.pathsep)
    assert paths == [sys.path[0] or os.getcwd(), "/elsewhere"]


def test_side_by_side_jobs_share_the_cpus_unless_omp_num_threads_is_set(monkeypatch) -> None:
    # torch's one thread per CPU in each of two CPU jobs: they spin-wait on each other, a tiny
    # run's training 3.4 s instead of 1.2 (BENCHMARKS.md, "CPU threads").
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(16)))
    monkeypatch.setattr(torch, "get_num_threads", lambda: 16)  # a core per CPU: torch takes all
    assert child_env(None, 2)["OMP_NUM_THREADS"] == "8"
    assert child_env(None, 3)["OMP_NUM_THREADS"] == "5"
    assert child_env(None, 32)["OMP_NUM_THREADS"] == "1"
    monkeypatch.delattr(os, "sched_getaffinity")  # macOS has no affinity: every CPU
    monkeypatch.setattr(os, "cpu_count", lambda: 6)
    assert child_env(None, 2)["OMP_NUM_THREADS"] == "3"
    # torch's own count where it is lower (a core's, where each core is two hyperthreads): one
    # job computes as train.py in this process does (a determinism review).
    monkeypatch.setattr(torch, "get_num_threads", lambda: 4)
    assert child_env(None, 1)["OMP_NUM_THREADS"] == "4"
    assert child_env(None, 2)["OMP_NUM_THREADS"] == "2"
    monkeypatch.setenv("OMP_NUM_THREADS", "4")  # the user's own
    assert child_env(None, 2)["OMP_NUM_THREADS"] == "4"


def test_exits_are_described_by_code_or_signal() -> None:
    assert describe_exit(3) == "exited with code 3"
    assert describe_exit(-9) == "killed by signal SIGKILL (9)"


# --- local_parallel through Hydra, with jobs that end as told -------------------------------


@pytest.fixture(scope="module")
def fates(tmp_path_factory) -> tuple[subprocess.CompletedProcess[str], Path]:
    """Five jobs, two at a time: killed by SIGKILL, finished, `os._exit(3)`, a Python error, an
    exception that does not pickle."""
    root = tmp_path_factory.mktemp("fates")
    grid = ["fate=sigkill,finish,exit3,raise,unpicklable", "seconds=1", *TWO_UNPINNED]
    return run_app([*grid, f"hydra.sweep.dir={root / 'sweep'}"], root), root / "sweep"


def test_a_job_killed_hard_is_a_failed_return_and_the_others_run(fates) -> None:
    proc, sweep = fates  # run_app's timeout: a launcher waiting on a dead job fails here
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    # Raised by the sweeper from job 0's FAILED JobReturn, not by the launcher.
    assert "Error executing job with overrides: ['fate=sigkill'" in proc.stderr
    died = "JobProcessDied: local_parallel job #0 (fate=sigkill seconds=1) killed by signal SIGKILL"
    assert died in out
    assert "#2 exited with code 3, see" in out
    assert (sweep / "1" / "finished").exists()  # beside the killed job
    assert (sweep / "4" / "started").exists()  # after it: its slot was given back
    assert all((sweep / job / "launcher.log").exists() for job in "01234")


def failure_of(proc: subprocess.CompletedProcess[str], job: int) -> str:
    """What the launcher's console says a job that returned FAILED raised."""
    line = re.search(rf"#{job} failed in \d+ s: (.*)", proc.stdout + proc.stderr)
    assert line, proc.stdout + proc.stderr
    return line[1]


def test_a_python_error_in_a_job_comes_back_whole(fates) -> None:
    proc, sweep = fates
    assert failure_of(proc, 3) == "ValueError('a Python error in the job')"
    job_log = (sweep / "3" / "launcher.log").read_text()
    assert "Traceback" in job_log and "ValueError: a Python error in the job" in job_log


def test_an_error_that_does_not_pickle_comes_back_as_its_text(fates) -> None:
    proc, sweep = fates
    assert failure_of(proc, 4).startswith("RuntimeError(\"RuntimeError('carries a lock') (cannot ")
    assert "RuntimeError: carries a lock" in (sweep / "4" / "launcher.log").read_text()


def test_a_relaunch_never_reads_the_last_launchs_return(tmp_path) -> None:
    sweep = f"hydra.sweep.dir={tmp_path / 'sweep'}"
    assert run_app(["fate=finish", sweep, *TWO_UNPINNED], tmp_path).returncode == 0
    proc = run_app(["fate=exit0", sweep, *TWO_UNPINNED], tmp_path)
    assert proc.returncode == 1
    assert "local_parallel job #0 (fate=exit0) exited with code 0" in proc.stderr


def test_a_job_stopped_by_sigterm_inside_an_exec_says_so(tmp_path) -> None:
    # Under `python -m`, CPython ends a process by SIGINT after any KeyboardInterrupt that went
    # through an exec, caught or not: the launcher said "killed by signal SIGINT (2)" of a job
    # whose log ended "terminated (SIGTERM)".
    proc = run_app(["fate=sigterm_in_exec", *TWO_UNPINNED], tmp_path)
    assert proc.returncode == 1
    assert "local_parallel job #0 (fate=sigterm_in_exec) exited with code 143" in proc.stderr
    [log] = tmp_path.glob("multirun/*/*/0/launcher.log")
    assert log.read_text().strip().splitlines()[-1] == (
        "error: terminated (SIGTERM); finished results are kept"
    )


def running(pid: int) -> bool:
    """Whether process `pid` still runs (an orphan's zombie waits for an init that may not reap)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


# Ctrl-C, `kill PID`, `kill -9 PID` of the launcher alone: no job may train on in a folder that a
# rerun of the sweep (its lock gone with the launcher) would run the same job in.
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL])
def test_stopping_the_launcher_ends_the_running_jobs_and_starts_no_more(tmp_path, sig) -> None:
    (tmp_path / "app.py").write_text(APP)
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    grid = ["tag=1,2,3", "seconds=60", *TWO_UNPINNED]
    args = [sys.executable, "app.py", "-m", "hydra/launcher=local_parallel", *grid]
    parent = subprocess.Popen(args, cwd=tmp_path, env=env, stdout=subprocess.PIPE, text=True)
    started: list[Path] = []
    workers: list[int] = []
    try:
        deadline = time.monotonic() + 60
        while len(started) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
            started = list(tmp_path.glob("multirun/*/*/*/started"))
        workers = [int(path.read_text().split()[2]) for path in started]
        parent.send_signal(sig)  # to the launcher alone, not to its process group
        # Well under the jobs' 60 s, so only an abort ends it in time; 20 s once ran out on a
        # 2-core machine running two test suites at once (not reproduced in 120 reruns).
        parent.communicate(timeout=45)
        assert parent.returncode != 0
        time.sleep(0.5)
        assert [pid for pid in workers if running(pid)] == []
        assert len(list(tmp_path.glob("multirun/*/*/*/started"))) == 2  # job 2 never started
        # The launcher's SIGTERM (or the kernel's, as it ended) stopped each as Ctrl-C would:
        # one line at the end of its log, not a traceback (nor the end where it stood)
        for started_file in started:
            log = (started_file.parent / "launcher.log").read_text()
            assert log.strip().splitlines()[-1] == (
                "error: terminated (SIGTERM); finished results are kept"
            ), log[-2000:]
            assert "Traceback" not in log
    finally:
        for pid in [parent.pid, *workers]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def test_jobs_run_pinned_one_per_gpu(tmp_path) -> None:
    # No hydra.sweep.dir: the default `multirun/${now:...}` must resolve alike in both processes.
    grid = ["tag=1,2,3", "seconds=1", "hydra.launcher.gpus=[4,6]"]
    proc = run_app(grid, tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "3 jobs locally, 2 at a time, pinned to GPUs 4,6" in proc.stdout
    jobs = sorted(tmp_path.glob("multirun/*/*/[0-9]"))
    assert [job.name for job in jobs] == ["0", "1", "2"]
    spans = []
    for job in jobs:
        start, gpu, _, side_by_side = (job / "started").read_text().split()
        assert side_by_side == "2"  # told, for its data-loader workers' share of the CPUs
        spans.append((gpu, (float(start), float((job / "finished").read_text()))))
        assert (job / "launcher.log").exists()
    assert {gpu for gpu, _ in spans} == {"4", "6"}
    for (gpu_a, span_a), (gpu_b, span_b) in combinations(spans, 2):
        assert gpu_a != gpu_b or not overlap(span_a, span_b), spans
    assert overlap(spans[0][1], spans[1][1])  # two at a time


def test_more_jobs_at_once_than_gpus_is_refused(tmp_path) -> None:
    proc = run_app(["tag=1,2", "hydra.launcher.n_jobs=3", "hydra.launcher.gpus=[0,1]"], tmp_path)
    assert proc.returncode == 1
    assert "hydra.launcher.n_jobs=3 but only 2 GPUs (0,1)" in proc.stderr
    assert not list(tmp_path.glob("multirun/*/*/0/started"))


def test_an_impossible_slot_plan_in_train_py_is_one_line_and_exit_2(tmp_path) -> None:
    # train.py -m printed the launcher's traceback.
    args = ["-m", *SHRINK, "seed=1,2", "hydra/launcher=local_parallel", "hydra.launcher.n_jobs=0"]
    proc = run_train(args, tmp_path)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert proc.stderr.strip().splitlines() == [
        "error: hydra.launcher.n_jobs must be at least 1, got 0"
    ]
    assert not list(tmp_path.glob("sweep/*/.hydra"))  # no job started


@pytest.mark.parametrize("dry_run", [[], ["--dry-run"]])
def test_an_impossible_slot_plan_in_sweep_py_is_one_line_and_exit_2(tmp_path, dry_run) -> None:
    # sweep.py reported it as a sweep stopped early (`LayerftError: ...`), every job NOT RUN, exit 1;
    # and its dry run, which composed no launcher, passed it.
    args = ["demo", "hydra/launcher=local_parallel", "hydra.launcher.n_jobs=0", "--dir", "out"]
    args += dry_run
    proc = run_sweep(args, tmp_path)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert proc.stderr.strip().splitlines()[-1:] == [
        "error: hydra.launcher.n_jobs must be at least 1, got 0"
    ]
    assert "NOT RUN" not in proc.stdout + proc.stderr
    assert not list(tmp_path.glob("out/*/.hydra"))  # no job started


# --- layerft grids on model=tiny ------------------------------------------------------------


def log_span(path: Path) -> tuple[float, float]:
    """First and last timestamp of a Hydra job log (`[2024-01-31 12:00:00,123][...]`)."""
    stamps = [
        datetime.strptime(line[1:24], "%Y-%m-%d %H:%M:%S,%f").timestamp()
        for line in path.read_text().splitlines()
        if line.startswith("[")
    ]
    return stamps[0], stamps[-1]


def assert_seeds_finished(sweep: Path) -> None:
    for job, seed in (("0", 1), ("1", 2)):
        metrics = json.loads((sweep / job / "metrics.json").read_text())
        assert metrics["run/seed"] == seed
        assert "target/eval_accuracy" in metrics


def test_local_parallel_runs_a_grid_two_at_a_time(tmp_path) -> None:
    grid = ["-m", *SHRINK, "seed=1,2", "hydra/launcher=local_parallel", *TWO_UNPINNED]
    proc = run_train(grid, tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    sweep = tmp_path / "sweep"
    assert_seeds_finished(sweep)
    assert overlap(log_span(sweep / "0" / "train.log"), log_span(sweep / "1" / "train.log"))
    # The jobs' output is in their folders; the console keeps the launcher's lines.
    assert "parameters train" not in proc.stdout
    assert "results: " in (sweep / "0" / "launcher.log").read_text()


def test_parallel_jobs_of_one_config_train_it_once(tmp_path) -> None:
    """Without stage 1 the layer split is never read: the grid's two jobs are one config. Started
    together, the second waits for the first's result instead of training it again beside it."""
    grid = ["-m", *SHRINK, "injection_task=none", "layer_split=lower1,lower_half",
            "hydra/launcher=local_parallel", *TWO_UNPINNED]  # fmt: skip
    proc = run_train(grid, tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    sweep = tmp_path / "sweep"
    [finished] = sweep.glob("*/metrics.json")
    assert "target/eval_accuracy" in json.loads(finished.read_text())
    [lock] = (sweep / ".locks").iterdir()
    assert lock.name == json.loads(finished.read_text())["run/config_fingerprint"] + ".lock"


def test_the_config_lock_is_taken_in_a_multirun_of_single_processes_only(
    tmp_path, monkeypatch, caplog
) -> None:
    from layerft.run_folder import LOCKS_DIR, config_lock
    from layerft.run_record import RunRecord

    record = RunRecord("f" * 16, "g" * 16, {}, 1, [], "target/eval_accuracy", True)
    lock = tmp_path / LOCKS_DIR / f"{'f' * 16}.lock"
    with config_lock(None, record, lambda: None) as served:  # a single run: nothing to share
        assert served is None
    monkeypatch.setenv("WORLD_SIZE", "2")  # torchrun's processes must not wait apart
    with config_lock(str(tmp_path), record, lambda: None) as served:
        assert served is None
    assert not lock.exists()
    monkeypatch.delenv("WORLD_SIZE")
    with config_lock(str(tmp_path), record, lambda: None) as served:
        assert served is None and lock.read_text().startswith(f"pid {os.getpid()} on ")
    # A result written by a repeat just before this job took the lock is taken, not retrained.
    result = ({"target/eval_accuracy": 0.5}, tmp_path / "0")
    with config_lock(str(tmp_path), record, lambda: result) as served:
        assert served == result
    # No lock to be had (a file in the way of the folder): one warning, and the job trains.
    (tmp_path / LOCKS_DIR).rename(tmp_path / "gone")
    (tmp_path / LOCKS_DIR).write_text("a file in the way")
    with (
        caplog.at_level(logging.WARNING),
        config_lock(str(tmp_path), record, lambda: None) as served,
    ):
        assert served is None
    assert "may train it too" in caplog.text and str(lock) in caplog.text


def test_a_job_waiting_for_the_lock_takes_the_result_as_soon_as_it_exists(tmp_path) -> None:
    import fcntl

    from layerft.file_lock import lock_unless_done

    path = tmp_path / "a.lock"
    path.write_text("pid 1 on elsewhere")
    holder = path.open("a+")  # another open file: flock treats it as another process
    fcntl.flock(holder, fcntl.LOCK_EX)
    asked, waits = [], []

    def done() -> str | None:  # the holder writes its result after three looks
        asked.append(1)
        return "result" if len(asked) == 3 else None

    # Were the result not looked for while waiting, the holder's letting go after 5 s ends the wait.
    (safety := threading.Timer(5, lambda: fcntl.flock(holder, fcntl.LOCK_UN))).start()
    with lock_unless_done(path, done, waits.append, pytest.fail, poll_seconds=0.01) as served:
        assert served == "result"  # while the holder still holds the lock (its W&B run closing)
    safety.cancel()
    assert waits == ["pid 1 on elsewhere"]
    # The holder fails (lets go without a result): the waiting job takes the lock and trains.
    threading.Timer(0.2, lambda: fcntl.flock(holder, fcntl.LOCK_UN)).start()
    with lock_unless_done(path, lambda: None, waits.append, pytest.fail, 0.01) as served:
        assert served is None and path.read_text().startswith(f"pid {os.getpid()}")
        assert not _lockable(path)  # held
    assert _lockable(path)  # and let go
    holder.close()


def _lockable(path: Path) -> bool:
    import fcntl

    with path.open() as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True


def test_a_file_system_without_locks_leaves_the_job_to_train_unlocked(
    tmp_path, monkeypatch
) -> None:
    import errno

    from layerft import file_lock

    def no_locks(handle, operation) -> None:  # NFS without lockd
        raise OSError(errno.ENOLCK, os.strerror(errno.ENOLCK))

    monkeypatch.setattr(file_lock.fcntl, "flock", no_locks)
    reasons: list[str] = []
    with file_lock.lock_unless_done(
        tmp_path / "a.lock", lambda: None, pytest.fail, reasons.append
    ) as served:
        assert served is None
    assert reasons == [f"cannot lock {tmp_path / 'a.lock'}: {os.strerror(errno.ENOLCK)}"]


# A sitecustomize that kills every local_parallel job process of seed 2 before its job runs,
# seed 3's after its job ran but before it handed back its result, and seed 1's with SIGSEGV
# after it has (a crash at teardown).
KILL_SEED_2 = textwrap.dedent(
    """
    import os, signal

    if os.environ.get("LAYERFT_LAUNCHER_PID"):  # set in local_parallel's job processes only
        from layerft import launch_worker

        shipped, main = launch_worker.run_shipped, launch_worker.main

        def run_shipped(job):
            if job.config.seed == 2:
                os.kill(os.getpid(), signal.SIGKILL)
            returned = shipped(job)
            if job.config.seed == 3:  # its result written, then killed before it hands it back
                os.kill(os.getpid(), signal.SIGKILL)
            return returned

        def crash_after(job_file, return_file):
            main(job_file, return_file)
            os.kill(os.getpid(), signal.SIGSEGV)

        launch_worker.run_shipped, launch_worker.main = run_shipped, crash_after
    """
)


def test_a_layerft_job_killed_hard_is_recorded_as_failed_and_rerun(tmp_path) -> None:
    # It was listed NOT RUN and stopped the sweep with a traceback-like line after its batch.
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(KILL_SEED_2)
    grid = ["demo", *SHRINK, "injection_task=none", "tuning_mode=full", "seed=1,2,3",
            f"cache_dir={tmp_path / 'cache'}", "hydra/launcher=local_parallel", *TWO_UNPINNED]  # fmt: skip
    proc = run_sweep(grid, tmp_path, env_extra={"PYTHONPATH": f"{hook}{os.pathsep}{REPO}"})
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert "sweep: 2 finished, 1 failed, 0 not run" in out and "stopped early" not in out
    # Seed 3 wrote its result before its process died: finished, no failure beside it.
    assert "its process died after writing its result, which is kept" in out
    assert re.search(
        r"FAILED injection_task=none,seed=2,tuning_mode=full: JobProcessDied: local_parallel job #1 \(.*seed=2.*\) killed by signal "
        r"SIGKILL \(9\) after \d+ s without a result; the end of ",
        out,
    ), out
    # Seed 1's job returned its result before its process crashed: finished, as it is.
    assert "#0 killed by signal SIGSEGV (11) after returning its result" in out
    sweep_dir = tmp_path / "multirun_outputs" / "demo"
    [failed] = sweep_dir.glob("*/failed.json")
    [seed2] = [c for c in expand("demo", grid[1:-4]) if "seed=2" in c.label]
    assert json.loads(failed.read_text())["run/config_fingerprint"] == seed2.fingerprint
    assert "failures.csv" in {p.name for p in sweep_dir.iterdir()}
    # Without the kill, the rerun runs seed 2 only.
    before = {f: f.stat().st_mtime_ns for f in sweep_dir.glob("*/metrics.json")}
    assert len(before) == 2
    proc = run_sweep(grid, tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "sweep: 3 finished, 0 failed, 0 not run" in proc.stdout
    assert all(f.stat().st_mtime_ns == before[f] for f in before)
    assert not list(sweep_dir.glob("*/failed.json"))
    assert "later attempt" not in (sweep_dir / "results.md").read_text()
    # Forced, seed 2's job dies before it runs, beside its result of the same config: a failed
    # later attempt (the result it left is older than its start), not a finished job.
    env = {"PYTHONPATH": f"{hook}{os.pathsep}{REPO}"}
    proc = run_sweep([*grid, "seed=2", "--force"], tmp_path, env_extra=env)
    assert proc.returncode == 1 and "died after writing its result" not in proc.stdout + proc.stderr
    [failed] = sweep_dir.glob("*/failed.json")
    assert "seed=2" in failed.parent.name and (failed.parent / "metrics.json").exists()


@needs_submitit
def test_submitit_local_runs_the_same_grid(tmp_path) -> None:
    grid = ["-m", *SHRINK, "seed=1,2", "hydra/launcher=submitit_local"]
    # submitit's job process starts in `tmp_path`, not beside train.py: it imports this checkout
    # through PYTHONPATH (an installed layerft needs nothing).
    proc = run_train(grid, tmp_path, env_extra={"PYTHONPATH": str(REPO)})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert_seeds_finished(tmp_path / "sweep")


# --- launcher configs -----------------------------------------------------------------------


def compose_launcher(*overrides: str):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose("config", overrides=list(overrides), return_hydra_config=True).hydra.launcher


@needs_submitit
def test_slurm_preset_is_submitit_slurm_with_one_gpu_per_job() -> None:
    launcher = compose_launcher("hydra/launcher=slurm", "hydra.launcher.partition=gpu")
    assert launcher._target_.endswith("submitit_launcher.SlurmLauncher")
    assert launcher.partition == "gpu"
    assert (launcher.gpus_per_node, launcher.tasks_per_node, launcher.nodes) == (1, 1, 1)
    assert (launcher.cpus_per_task, launcher.mem_gb, launcher.timeout_min) == (8, 32, 240)
    assert launcher.array_parallelism == 16
    with pytest.raises(ConfigCompositionException):
        compose_launcher("hydra/launcher=slurm", "hydra.launcher.gpus_per_nod=2")


def test_local_parallel_config_builds_its_launcher() -> None:
    launcher = compose_launcher("hydra/launcher=local_parallel")
    assert (launcher.n_jobs, launcher.gpus) == (None, None)
    launcher = compose_launcher("hydra/launcher=local_parallel", "hydra.launcher.gpus=[0,1]")
    built = instantiate(launcher)
    assert isinstance(built, local_parallel.LocalParallelLauncher)
    assert (built.n_jobs, built.gpus) == (None, ["0", "1"])
    for typo in ("hydra.launcher.n_job=2", "hydra.launcher.n_jobs=two"):
        with pytest.raises(ConfigCompositionException):
            compose_launcher("hydra/launcher=local_parallel", typo)


def test_a_remembered_ctrl_c_starts_no_more_local_parallel_jobs(tmp_path, monkeypatch) -> None:
    # A SIGINT Python lost in the launcher's thread (tests/test_sweep.py has the case) must still
    # keep the pool from starting the jobs it has not started.
    monkeypatch.setattr(interrupts, "_pressed", True)
    monkeypatch.setattr(interrupts, "_remembering", True)  # within the sweep's launch
    launcher = local_parallel.LocalParallelLauncher(n_jobs=1, gpus=None)
    with pytest.raises(KeyboardInterrupt):
        launcher._run_job(0, ["seed=1"], {}, tmp_path, None)
    assert list(tmp_path.iterdir()) == []  # no job file written, no worker started
