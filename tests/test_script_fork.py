"""The forked calls of train.py/sweep.py (tests/script_fork.py) look like fresh interpreters."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest
from conftest import script_env
from script_fork import forks, run_forked, start_forked

SCRIPT = """
import os, sys, tempfile
print("argv", sys.argv[1:], "cwd", os.getcwd(), "path0", sys.path[0])
print("env", os.environ.get("LAYERFT_PROBE"), os.environ["HOME"], tempfile.gettempdir())
print("to stderr", file=sys.stderr)
import atexit
atexit.register(lambda: print("atexit ran"))
sys.exit(int(sys.argv[1]))
"""


@pytest.mark.parametrize("code", [0, 3])
def test_a_forked_script_prints_and_exits_as_a_fresh_interpreter_does(tmp_path, code) -> None:
    script = tmp_path / "probe.py"
    script.write_text(SCRIPT)
    work = tmp_path / "work"
    env = script_env(work, {"LAYERFT_PROBE": "seen"})
    forked = run_forked(script, [str(code), "x=1"], work, env, timeout=60)
    fresh = subprocess.run(
        [sys.executable, str(script), str(code), "x=1"],
        cwd=work, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert (forked.returncode, forked.stdout, forked.stderr) == (
        fresh.returncode, fresh.stdout, fresh.stderr,
    )  # fmt: skip
    assert forked.returncode == code and "seen" in forked.stdout and "atexit ran" in forked.stdout
    assert str(work / "tmp") in forked.stdout


def test_a_timeout_kills_the_forked_script_and_raises_as_subprocess_does(tmp_path) -> None:
    script = tmp_path / "sleeper.py"
    script.write_text("import time\ntime.sleep(60)\n")
    with pytest.raises(subprocess.TimeoutExpired):
        run_forked(script, [], tmp_path, script_env(tmp_path), timeout=1)


def test_a_started_script_waited_on_past_its_timeout_raises_as_popen_does(tmp_path) -> None:
    # Forked.wait returned None where Popen.wait raises: `assert p.wait(30) == 0` read a hang as
    # a wrong exit code, and a loop on `wait(t) is None` never ended on one.
    started = start_forked("-c", ["import time; time.sleep(60)"], tmp_path, script_env(tmp_path))
    with pytest.raises(subprocess.TimeoutExpired):
        started.wait(0.5)
    os.killpg(started.pid, signal.SIGKILL)
    assert started.wait(30) == -signal.SIGKILL


def test_only_variables_read_at_run_time_may_differ_from_the_servers(monkeypatch) -> None:
    monkeypatch.delenv("LAYERFT_TESTS_FRESH_PROCESSES", raising=False)
    assert forks(None) and forks({"WANDB_MODE": "offline", "LAYERFT_TRACEBACK": "1"})
    assert not forks({"HF_HUB_OFFLINE": "0"}) and not forks({"PYTHONPATH": "/x"})
    monkeypatch.setenv("LAYERFT_TESTS_FRESH_PROCESSES", "1")
    assert not forks(None)


PROBE = "import sys, __main__; print(sys.argv, repr(sys.path[0]), __main__.__dict__.get('SEEN'))"
THREAD = "def late():\n    time.sleep(0.5)\n    print('thread done', flush=True)\n"


@pytest.mark.parametrize(
    "args",
    [
        ["-c", f"SEEN = 1\n{PROBE}", "a", "b=2"],  # `import __main__` is the code's own module
        ["-m", "probe_module", "a"],  # argv[0] the module's file, sys.path[0] the folder
        ["-c", "raise KeyboardInterrupt"],  # not caught: the process dies by SIGINT (-2)
        ["-c", f"import threading, time\n{THREAD}threading.Thread(target=late).start()"],
    ],
    ids=["c", "m", "interrupt", "thread"],
)
def test_forked_c_and_m_calls_run_and_end_as_a_fresh_interpreters(tmp_path, args) -> None:
    # `-c` ran in a dict, not in `__main__`; an uncaught Ctrl-C exited 1, not by SIGINT; a thread
    # left running was cut off by os._exit, where an interpreter waits for it (hiding a hang).
    (tmp_path / "probe_module.py").write_text(f"SEEN = 2\n{PROBE}\n")
    env = script_env(tmp_path)
    forked = run_forked(args[0], args[1:], tmp_path, env, timeout=60)
    fresh = subprocess.run(
        [sys.executable, *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )
    assert (forked.returncode, forked.stdout) == (fresh.returncode, fresh.stdout), forked.stderr
