"""How layerft's processes end: train.py, sweep.py and a local_parallel job skip the interpreter's
final garbage collections (`processes.quick_exit`), which took 3-5 s at the end of each."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, script_env

# Loaded at start-up (sitecustomize): a cycle that only a garbage collection frees, reachable
# until the interpreter clears its modules at exit; its __del__ says whether a final collection
# went over it.
PROBE = """
import os


class _Probe:
    def __init__(self, path):
        self.cycle, self.write = self, os.write
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)

    def __del__(self):
        self.write(self.fd, b"collected\\n")


probe = _Probe(os.environ["LAYERFT_EXIT_PROBE"])
"""


def final_collection_ran(args: list[str], tmp_path: Path) -> bool:
    """Run `python ARGS` (it may fail) with the probe loaded: whether exiting collected it."""
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "sitecustomize.py").write_text(PROBE)
    probe = tmp_path / "probe"
    path = os.pathsep.join([str(tmp_path / "site"), str(REPO)])
    env = dict(os.environ, PYTHONPATH=path, LAYERFT_EXIT_PROBE=str(probe), HF_HUB_OFFLINE="1")
    subprocess.run([sys.executable, *args], cwd=tmp_path, env=env, capture_output=True, timeout=120)
    assert probe.exists()  # the probe was loaded
    return probe.read_text() == "collected\n"


def test_the_probe_sees_a_final_collection(tmp_path: Path) -> None:
    assert final_collection_ran(["-c", "pass"], tmp_path)


@pytest.mark.parametrize(
    "args",
    [
        pytest.param([str(REPO / "train.py"), "--help"], id="train.py", marks=pytest.mark.slow),
        pytest.param([str(REPO / "sweep.py"), "--no-such-option"], id="sweep.py"),
        pytest.param(["-m", "layerft.launch_worker"], id="local_parallel job"),  # no job file
    ],
)
def test_layerft_processes_exit_without_the_final_collections(args, tmp_path: Path) -> None:
    assert not final_collection_ran(args, tmp_path)


# Sends the signal to itself as the script first imports Hydra or torch (the seconds before a
# run's or a sweep's own handling starts), then runs the script as `python <script>` would.
SIGNAL_WHILE_IMPORTING = """
import os, runpy, signal, sys

script, sig, args = sys.argv[1], int(sys.argv[2]), sys.argv[3:]


class Finder:
    def find_spec(self, name, path=None, target=None):
        if name in ("hydra", "torch"):
            sys.meta_path.remove(self)
            os.kill(os.getpid(), sig)
        return None


sys.meta_path.insert(0, Finder())
sys.argv = [script, *args]
runpy.run_path(script, run_name="__main__")
"""


@pytest.mark.parametrize("script", ["train.py", "sweep.py"])
@pytest.mark.parametrize(
    ("sig", "code", "said"),
    [
        (signal.SIGINT, 130, "error: interrupted (Ctrl-C); finished results are kept"),
        (signal.SIGTERM, 143, "error: terminated (SIGTERM); finished results are kept"),
    ],
)
def test_a_stop_while_the_script_loads_is_one_line(
    tmp_path: Path, script: str, sig: int, code: int, said: str
) -> None:
    # A Ctrl-C in the first seconds of train.py or sweep.py (torch's imports) printed some 40
    # lines of KeyboardInterrupt traceback through torch; a SIGTERM there ended it silently.
    args = ["model=tiny", f"hydra.run.dir={tmp_path / 'run'}"]
    if script == "sweep.py":
        args = ["demo", "model=tiny", "--dir", str(tmp_path / "sweep")]
    done = subprocess.run(
        [sys.executable, "-c", SIGNAL_WHILE_IMPORTING, str(REPO / script), str(int(sig)), *args],
        cwd=tmp_path, env=script_env(tmp_path), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert (done.returncode, done.stdout, done.stderr) == (code, "", said + "\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tmp"]  # nothing ran (script_env's)
