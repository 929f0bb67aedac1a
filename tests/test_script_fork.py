"""The forked calls of train.py/sweep.py (tests/script_fork.py) look like fresh interpreters."""

from __future__ import annotations

import subprocess
import sys

import pytest
from conftest import script_env
from script_fork import forks, run_forked

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


def test_only_variables_read_at_run_time_may_differ_from_the_servers(monkeypatch) -> None:
    monkeypatch.delenv("LAYERFT_TESTS_FRESH_PROCESSES", raising=False)
    assert forks(None) and forks({"WANDB_MODE": "offline", "LAYERFT_TRACEBACK": "1"})
    assert not forks({"HF_HUB_OFFLINE": "0"}) and not forks({"PYTHONPATH": "/x"})
    monkeypatch.setenv("LAYERFT_TESTS_FRESH_PROCESSES", "1")
    assert not forks(None)
