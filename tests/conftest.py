"""Shared fixtures: run `train.py` as a user would, offline and inside a temporary folder."""

from __future__ import annotations

import gc
import os
import re
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from script_fork import Forked, forks, run_forked, start_forked

REPO = Path(__file__).resolve().parents[1]
# Real-format samples of public data sets beside the checkout (CI has them; a user's clone does not).
SHARED_DATA = REPO.parent / "shared" / "data"

# model=tiny on a few dozen generated examples, one epoch per stage: a whole run takes seconds.
SHRINK = (
    "model=tiny",
    "tracker=none",
    "injection_task.generator_sizes.train=64",
    "injection_task.generator_sizes.validation=32",
    "target_task.generator_sizes.train=64",
    "target_task.generator_sizes.validation=32",
    "injection_task.epochs=1",
    "target_task.epochs=1",
)

# Variables that would let a developer's shell change what a run does or where it writes.
_SCRUBBED_PREFIXES = ("WANDB_", "HF_", "HYDRA_", "LAYERFT_", "XDG_")


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist, give each worker its share of the cores for torch's threads: two workers
    with two threads each on two cores run far slower than with one each (OpenMP threads spin on
    cores the other worker holds)."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers > 1:
        import torch

        cores = len(os.sched_getaffinity(0))  # the cores this process may use, not the host's
        torch.set_num_threads(max(1, min(torch.get_num_threads(), cores // workers)))


def pytest_collection_finish(session: pytest.Session) -> None:
    """Take the objects of every import so far (torch, transformers, the test modules: about half
    a million) out of the garbage collector's view: each full collection, which the Trainer makes
    at every `train()`, then skips them (test_training.py and test_kinds.py ran about a quarter
    faster, the default run about an eighth); no result changes (frozen objects are only never
    freed, and they live as long as the process anyway)."""
    gc.freeze()


def run_train(
    args: Sequence[str],
    cwd: Path,
    env_extra: Mapping[str, str] | None = None,
    timeout: float = 300,
    launcher: Sequence[str] = (),
) -> subprocess.CompletedProcess[str]:
    """Run `python train.py ARGS` in `cwd`; every file it writes (run, sweep, caches, home) lands there.

    Adds `cache_dir=<cwd>/cache hydra.run.dir=<cwd>/run hydra.sweep.dir=<cwd>/sweep` unless
    `args` set them, so two calls with the same `cwd` share one run directory. `launcher` goes
    between the interpreter and train.py (e.g. `-m torch.distributed.run --nproc_per_node=2`).
    """
    env = script_env(cwd, env_extra)
    defaults = {
        "cache_dir": cwd / "cache",
        "hydra.run.dir": cwd / "run",
        "hydra.sweep.dir": cwd / "sweep",
    }
    given = {arg.split("=", 1)[0] for arg in args}
    extra = [f"{key}={value}" for key, value in defaults.items() if key not in given]
    if not launcher and forks(env_extra):
        return run_forked(REPO / "train.py", [*args, *extra], cwd, env, timeout)
    return subprocess.run(
        [sys.executable, *launcher, str(REPO / "train.py"), *args, *extra],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def script_env(cwd: Path, env_extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a script run in `cwd`: offline, one thread, home and temp inside `cwd`."""
    cwd.mkdir(parents=True, exist_ok=True)
    (cwd / "tmp").mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(_SCRUBBED_PREFIXES)}
    env.update(
        HOME=str(cwd / "home"),  # W&B and HF caches default to ~: keep them out of the real home
        TMPDIR=str(cwd / "tmp"),
        HF_HUB_OFFLINE="1",
        HF_DATASETS_OFFLINE="1",
        OMP_NUM_THREADS="1",  # a tiny model gains nothing from threads; runs go side by side
        PYTHONUNBUFFERED="1",
    )
    env.update(env_extra or {})
    return env


def sweep_command(args: Sequence[str]) -> list[str]:
    return [sys.executable, str(REPO / "sweep.py"), *args]


def run_sweep(
    args: Sequence[str], cwd: Path, env_extra: Mapping[str, str] | None = None, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """Run `python sweep.py ARGS` in `cwd`: its `multirun_outputs/` lands there."""
    if forks(env_extra):
        return run_forked(REPO / "sweep.py", args, cwd, script_env(cwd, env_extra), timeout)
    return subprocess.run(
        sweep_command(args),
        cwd=cwd,
        env=script_env(cwd, env_extra),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def run_python(
    args: Sequence[str], cwd: Path, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """`python ARGS` (`-m module ...`, `-c code ...`) in `cwd`, in a script's environment
    (script_env: its home and temp folders land in `cwd`), as `run_train` runs train.py."""
    env = script_env(cwd)
    if forks(None):
        return run_forked(args[0], args[1:], cwd, env, timeout)
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


def start_sweep(args: Sequence[str], cwd: Path) -> subprocess.Popen[bytes] | Forked:
    """Start `python sweep.py ARGS` in `cwd` without waiting for it, its output discarded, as the
    leader of a process group of its own (`os.killpg(started.pid, ...)` ends it and its jobs)."""
    env = script_env(cwd)
    if forks(None):
        return start_forked(REPO / "sweep.py", args, cwd, env)
    return subprocess.Popen(
        sweep_command(args), cwd=cwd, env=env, start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


def dev_examples(log: str, group: str) -> int:
    """How many dev examples a run's log says `group` (target_task, injection_task) scored on."""
    found = re.findall(rf"{group} validation: (\d+) examples from ", log)
    assert len(set(found)) == 1, found
    return int(found[0])


def assert_counts_of(fraction: float, total: int) -> None:
    """`fraction` is k/total for a whole k: the metric was computed over exactly `total` examples."""
    assert abs(fraction * total - round(fraction * total)) < 1e-6, (fraction, total)


@pytest.fixture(scope="session")
def shrink() -> list[str]:
    """Overrides that make the default two-stage run tiny (drop `injection_task.*` for `=none`)."""
    return list(SHRINK)


@pytest.fixture
def plans_once(monkeypatch: pytest.MonkeyPatch) -> dict[str, list]:
    """`layerft.sweep.main` plans a grid once for calls with the same arguments (grid, overrides,
    folder, threads: what the plan reads; not --dry-run, --baseline and the like), for a test
    whose calls change nothing the plan reads; every call runs the rest of main() whole. The
    plans by their arguments' repr."""
    from layerft import sweep as sweep_module
    from layerft.sweep_grid import expand

    plans: dict[str, list] = {}

    def planned_once(*args: Any) -> list:
        if repr(args) not in plans:
            plans[repr(args)] = expand(*args)
        return plans[repr(args)]

    monkeypatch.setattr(sweep_module, "expand", planned_once)
    return plans


@pytest.fixture
def shared_data() -> Path:
    """The shared real-format samples beside the checkout, or a skip when absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real-format samples not found at {SHARED_DATA} (only CI has them)")
    return SHARED_DATA


def assert_a_new_member_stops_the_import(
    module: ModuleType, member: str, added: str, message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Importing `module` with the enum line `added` after its line `member` (a registry that
    misses the new member) raises a LayerftError saying `message`; as a module of its own."""
    from layerft.errors import LayerftError

    path = Path(str(module.__file__))
    source = path.read_text().replace(member, member + added, 1)
    assert added in source
    edited = ModuleType(f"{module.__name__}_edited")  # in sys.modules: dataclasses look it up
    monkeypatch.setitem(sys.modules, edited.__name__, edited)
    with pytest.raises(LayerftError) as caught:
        exec(compile(source, str(path), "exec"), edited.__dict__)
    assert str(caught.value) == message


@pytest.fixture
def hub_cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty Hugging Face hub cache, the one huggingface_hub reads."""
    from huggingface_hub import constants

    root = tmp_path / "hub"
    root.mkdir()
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(root))
    return root
