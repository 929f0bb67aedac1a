"""`python train.py ARGS` (or sweep.py) forked from a process that has already imported the
training stack, instead of started in a fresh interpreter: the same script, arguments, working
folder, environment variables and output, without paying the ~5 s of torch and transformers
imports on each of the suite's 150-odd calls.

What an import reads from the environment is read once, in the server: the Hugging Face, torch and
thread variables, which `conftest.script_env` sets alike for every call. So a call whose
`env_extra` sets any variable but W&B's and layerft's own, and a call through a launcher prefix
(torchrun), runs in a fresh interpreter; so does every call when LAYERFT_TESTS_FRESH_PROCESSES=1,
which is how to check that a test does not depend on this.
"""

from __future__ import annotations

import atexit
import multiprocessing
import os
import runpy
import subprocess
import sys
import tempfile
import traceback
from collections.abc import Mapping, Sequence
from multiprocessing.context import ForkServerContext
from pathlib import Path

# What a train.py run imports before its first step: the server imports them once. Not wandb:
# its import makes a temporary folder for media, which the first child to exit would delete
# under every other. Then fork_server_warmup: the metric modules, and gc.freeze() of it all.
PRELOAD = [
    "torch",
    "transformers",
    "datasets",
    "evaluate",
    "hydra",
    "layerft.run",
    "fork_server_warmup",
]
# Variables read when a run reads them, not when a module is imported: a call may set its own.
READ_AT_RUN = ("WANDB_", "LAYERFT_")
# Per call, set by conftest.script_env: the server gets its own.
PER_CALL = ("HOME", "TMPDIR")

_server: ForkServerContext | None = None


def forks(env_extra: Mapping[str, str] | None) -> bool:
    """Whether a call with these extra variables may be forked from the server."""
    if os.environ.get("LAYERFT_TESTS_FRESH_PROCESSES") == "1":
        return False
    return all(key.startswith(READ_AT_RUN) for key in env_extra or {})


def run_forked(
    script: Path, args: Sequence[str], cwd: Path, env: Mapping[str, str], timeout: float
) -> subprocess.CompletedProcess[str]:
    """What `subprocess.run([python, script, *args], cwd=cwd, env=env, capture_output=True,
    text=True, timeout=timeout)` returns, from a fork of the server."""
    command = [sys.executable, str(script), *args]
    with tempfile.TemporaryDirectory() as folder:
        out, err = Path(folder) / "stdout", Path(folder) / "stderr"
        process = _server_for(env).Process(
            target=_become, args=(str(script), list(args), str(cwd), dict(env), str(out), str(err))
        )
        process.start()
        process.join(timeout)
        if process.exitcode is None:
            os.killpg(process.pid, 9)  # it and whatever it started, as a fresh process group
            process.join()
            raise subprocess.TimeoutExpired(command, timeout)
        return subprocess.CompletedProcess(
            command, process.exitcode, out.read_text(), err.read_text()
        )


def _server_for(env: Mapping[str, str]) -> ForkServerContext:
    """The fork server, started at the first call with that call's environment but a HOME and
    TMPDIR of its own."""
    global _server
    if _server is None:
        from multiprocessing import forkserver

        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(PRELOAD)
        own = Path(tempfile.mkdtemp(prefix="layerft-fork-server-"))
        server_env = {key: value for key, value in env.items() if not key.startswith(READ_AT_RUN)}
        server_env |= {key: str(own / key.lower()) for key in PER_CALL}
        for key in PER_CALL:
            (own / key.lower()).mkdir()
        saved = dict(os.environ)
        os.environ.clear()
        os.environ.update(server_env)
        try:
            forkserver.ensure_running()  # the server inherits this process's environment
        finally:
            os.environ.clear()
            os.environ.update(saved)
        _server = context
    return _server


def _become(
    script: str, args: list[str], cwd: str, env: dict[str, str], out: str, err: str
) -> None:
    """In the forked child: run as `python SCRIPT ARGS` would in `cwd` with `env`, and exit so."""
    os.setsid()  # its own process group, as the session of a fresh process: a timeout ends it all
    os.chdir(cwd)
    os.environ.clear()
    os.environ.update(env)
    tempfile.tempdir = None  # read TMPDIR again
    for fd, path in ((1, out), (2, err)):
        handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(handle, fd)
        os.close(handle)
    sys.argv = [script, *args]
    sys.path[0] = os.path.dirname(script)
    code = 0
    try:
        runpy.run_path(script, run_name="__main__")
    except SystemExit as stop:
        code = _exit_code(stop.code)
    except BaseException:
        traceback.print_exc()
        code = 1
    atexit._run_exitfuncs()  # an interpreter's exit would; multiprocessing's os._exit does not
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _exit_code(code: object) -> int:
    """The status `sys.exit(code)` gives a process."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1
