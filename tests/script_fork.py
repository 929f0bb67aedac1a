"""`python train.py ARGS` (or sweep.py) forked from a process that has already imported the
training stack, instead of started in a fresh interpreter: the same script, arguments, working
folder, environment variables and output, without paying the ~5 s of torch and transformers
imports on each of the suite's 150-odd calls.

What an import reads from the environment is read once, in the server: the Hugging Face, torch and
thread variables, which `conftest.script_env` sets alike for every call. So a call whose
`env_extra` sets any variable but W&B's, layerft's own and HYDRA_FULL_ERROR (`READ_AT_RUN`), and
a call through a launcher prefix (torchrun), runs in a fresh interpreter; so does every call when
LAYERFT_TESTS_FRESH_PROCESSES=1, which is how to check that a test does not depend on this.
"""

from __future__ import annotations

import atexit
import multiprocessing
import os
import runpy
import signal
import subprocess
import sys
import tempfile
import threading
import traceback
import types
import warnings
from collections.abc import Mapping, Sequence
from multiprocessing.context import ForkServerContext
from multiprocessing.process import BaseProcess
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
# (HYDRA_FULL_ERROR: Hydra's run_and_report and layerft.errors read it as the run fails.)
READ_AT_RUN = ("WANDB_", "LAYERFT_", "HYDRA_FULL_ERROR")
# Per call, set by conftest.script_env: the server gets its own.
PER_CALL = ("HOME", "TMPDIR")

_server: ForkServerContext | None = None


def forks(env_extra: Mapping[str, str] | None) -> bool:
    """Whether a call with these extra variables may be forked from the server."""
    if os.environ.get("LAYERFT_TESTS_FRESH_PROCESSES") == "1":
        return False
    return all(key.startswith(READ_AT_RUN) for key in env_extra or {})


def run_forked(
    script: Path | str, args: Sequence[str], cwd: Path, env: Mapping[str, str], timeout: float
) -> subprocess.CompletedProcess[str]:
    """What `subprocess.run([python, script, *args], cwd=cwd, env=env, capture_output=True,
    text=True, timeout=timeout)` returns, from a fork of the server. `script` may be `-m` or `-c`,
    as for the interpreter: `run_forked("-m", ["layerft.forced_rerun", folder], ...)`."""
    command = [sys.executable, str(script), *args]
    with tempfile.TemporaryDirectory() as folder:
        out, err = Path(folder) / "stdout", Path(folder) / "stderr"
        process = start_forked(script, args, cwd, env, out, err)
        try:
            code = process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, 9)  # it and whatever it started, as a fresh process group
            process.wait()
            raise
        return subprocess.CompletedProcess(command, code, out.read_text(), err.read_text())


class Forked:
    """A forked `python SCRIPT ARGS` started by `start_forked`, with the `subprocess.Popen` calls a
    test makes of one: `pid` (the leader of its own process group), `poll()` and `wait()`."""

    def __init__(self, process: BaseProcess, command: list[str]) -> None:
        self._process, self._command = process, command
        self.pid = process.pid

    def poll(self) -> int | None:
        return self._process.exitcode

    def wait(self, timeout: float | None = None) -> int:
        """Its exit code; as Popen.wait, subprocess.TimeoutExpired if it runs past `timeout`."""
        self._process.join(timeout)
        if self._process.exitcode is None:
            raise subprocess.TimeoutExpired(self._command, timeout or 0)
        return self._process.exitcode


def start_forked(
    script: Path | str,
    args: Sequence[str],
    cwd: Path,
    env: Mapping[str, str],
    out: Path | str = os.devnull,
    err: Path | str = os.devnull,
) -> Forked:
    """Start `python SCRIPT ARGS` (`script` may be `-m` or `-c`) in `cwd` with `env` from a fork
    of the server, without waiting for it, its stdout and stderr written to the files `out` and
    `err` (or discarded): what `subprocess.Popen(..., start_new_session=True)` starts, minus the
    interpreter's imports."""
    argv = [str(script), *args]
    process = _server_for(env).Process(
        target=_become, args=(argv, str(cwd), dict(env), str(out), str(err))
    )
    process.start()
    return Forked(process, [sys.executable, *argv])


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


def _become(argv: list[str], cwd: str, env: dict[str, str], out: str, err: str) -> None:
    """In the forked child: run as `python ARGV` would in `cwd` with `env`, and exit so."""
    os.setsid()  # its own process group, as the session of a fresh process: a timeout ends it all
    os.chdir(cwd)
    os.environ.clear()
    os.environ.update(env)
    tempfile.tempdir = None  # read TMPDIR again
    for fd, path in ((1, out), (2, err)):
        handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(handle, fd)
        os.close(handle)
    code, interrupted = 0, False
    try:
        _run_main(argv, cwd)
    except SystemExit as stop:
        code = _exit_code(stop.code)
    except BaseException as error:
        traceback.print_exc()
        code, interrupted = 1, isinstance(error, KeyboardInterrupt)
    # As an interpreter's exit: wait for the threads left running, then the atexit functions
    # (multiprocessing's os._exit does neither); a KeyboardInterrupt nothing caught ends the
    # process by SIGINT (returncode -2), as CPython's does.
    threading._shutdown()  # type: ignore[attr-defined]
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    if interrupted:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)
    os._exit(code)


def _run_main(argv: list[str], cwd: str) -> None:
    """Run `python ARGV`'s main module, with its `sys.argv` and `sys.path[0]`: a script, `-m
    module` or `-c code`."""
    if argv[0] == "-c":
        sys.argv, sys.path[0] = ["-c", *argv[2:]], ""
        main = sys.modules["__main__"] = types.ModuleType("__main__")  # `import __main__` is it
        exec(compile(argv[1], "<string>", "exec"), main.__dict__)
    elif argv[0] == "-m":
        sys.argv, sys.path[0] = argv[1:], cwd  # run_module puts the module's file in argv[0]
        with warnings.catch_warnings():  # the server imported it already, as its package
            warnings.filterwarnings("ignore", "'.*' found in sys.modules", RuntimeWarning)
            runpy.run_module(argv[1], run_name="__main__", alter_sys=True)
    else:
        sys.argv, sys.path[0] = argv, os.path.dirname(argv[0])
        runpy.run_path(argv[0], run_name="__main__")


def _exit_code(code: object) -> int:
    """The status `sys.exit(code)` gives a process."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1
