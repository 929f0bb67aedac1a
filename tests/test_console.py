"""The console: a full disk or closed pipe under stdout, and a locale that reads paths as no text."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, SHRINK, script_env
from test_aggregate import write_job

from layerft import console
from layerft.console import GuardedStream, console_exit_code

LOST_LINE = "error: standard output: {}; what was printed there from then on is lost"
# Linux's device that is always full (a test opening a missing one would make a file of it).
FULL_DEVICE = pytest.mark.skipif(not Path("/dev/full").is_char_device(), reason="needs /dev/full")


@pytest.fixture
def no_losses(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(console, "_LOST", {})


@FULL_DEVICE
def test_a_run_printing_to_a_full_disk_finishes_and_says_so_in_one_line(tmp_path: Path) -> None:
    env = script_env(tmp_path)
    del env["PYTHONUNBUFFERED"]  # block-buffered, as a redirected stdout is: the last lines wait
    with open("/dev/full", "w") as full:
        done = subprocess.run(
            [sys.executable, str(REPO / "train.py"), *SHRINK, f"hydra.run.dir={tmp_path / 'run'}",
             f"cache_dir={tmp_path / 'cache'}"],
            cwd=tmp_path, env=env, stdout=full, stderr=subprocess.PIPE, text=True, timeout=300,
        )  # fmt: skip
    # Before: a traceback from transformers' import-time print (WANDB_MODE=offline) or the final
    # "results:" line, logging's "--- Logging error ---" blocks, and no metrics.json.
    assert done.stderr.splitlines() == [LOST_LINE.format("No space left on device")]
    assert done.returncode == 1
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["target/best_step"] > 0 and "target/eval_accuracy" in metrics
    assert "results: " in (tmp_path / "run" / "train.log").read_text()  # its log file has it all


def test_a_closed_pipe_drops_what_follows_and_points_the_descriptor_at_devnull(no_losses) -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)
    with os.fdopen(write_end, "w", buffering=1) as stream:
        guarded = GuardedStream(stream, "stdout")
        assert guarded.write("first line\n") == len("first line\n")  # EPIPE, dropped
        guarded.write("second line\n")
        guarded.flush()
        assert os.path.samestat(os.fstat(stream.fileno()), os.stat(os.devnull))
    assert isinstance(console._LOST["stdout"], BrokenPipeError)
    assert console_exit_code(0) == 1
    assert console_exit_code(2) == 2  # an error's code stays


@FULL_DEVICE
def test_the_exit_code_counts_a_last_line_still_in_the_buffer(no_losses, monkeypatch) -> None:
    with open("/dev/full", "w") as full:
        monkeypatch.setattr(sys, "stdout", GuardedStream(full, "stdout"))
        print("results: metrics.json")  # block-buffered: written at the next flush
        assert console._LOST == {}
        assert console_exit_code(0) == 1


@pytest.mark.parametrize(
    ("leave", "code"), [(None, 1), (0, 1), ("sys.exit()", 1), (3, 3), ("message", "message")]
)
def test_the_process_leaves_with_1_after_a_lost_stdout_unless_it_failed(
    no_losses, capsys, leave: object, code: object
) -> None:
    console._LOST["stdout"] = BrokenPipeError(32, "Broken pipe")
    with pytest.raises(SystemExit) as ended, console.console_checked():
        if leave == "sys.exit()":
            sys.exit()
        elif leave is not None:
            sys.exit(leave)
    assert ended.value.code == code
    assert capsys.readouterr().err == LOST_LINE.format("Broken pipe") + "\n"


def test_a_console_that_wrote_keeps_the_exit_code(no_losses, capsys) -> None:
    assert console_exit_code(0) == 0
    assert capsys.readouterr().err == ""


def test_text_the_encoding_lacks_is_escaped_and_a_paths_bytes_come_back(tmp_path: Path) -> None:
    script = (
        "import os, sys\n"
        "from layerft.console import guard_console\n"
        "guard_console()\n"
        "print('0.70 \\u00b1 0.01 \\ud55c\\uad6d', os.fsdecode(b'/tmp/\\xed\\x95\\x9c'))\n"
        "print('ok', file=sys.stderr)\n"
    )  # fmt: skip
    env = {**script_env(tmp_path), "LC_ALL": "C", "PYTHONUTF8": "0", "PYTHONIOENCODING": ""}
    env["PYTHONPATH"] = str(REPO)
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout == b"0.70 \\xb1 0.01 \\ud55c\\uad6d /tmp/\xed\x95\x9c\n"
    assert done.stderr == b"ok\n"


@pytest.mark.parametrize("where", ["argument", "folder"])
def test_a_path_the_locale_cannot_read_is_refused_in_one_line(tmp_path: Path, where: str) -> None:
    """LC_ALL=C with PYTHONUTF8=0: file names decode as ASCII. A Korean sweep folder ended in a
    UnicodeEncodeError traceback as results.md was written (its path is in it); a run recorded
    its paths as surrogate escapes."""
    sweep = tmp_path / "스윕"
    write_job(sweep / "1", 1, 0.6)
    env = {**script_env(tmp_path), "LC_ALL": "C", "PYTHONUTF8": "0"}
    args, cwd = (["aggregate", str(sweep)], tmp_path) if where == "argument" else (["aggregate", "."], sweep)  # fmt: skip
    done = subprocess.run(
        [sys.executable, str(REPO / "sweep.py"), *args],
        cwd=cwd, env=env, capture_output=True, text=True, errors="replace", timeout=120,
    )  # fmt: skip
    assert done.returncode == 2
    [line] = done.stderr.splitlines()
    assert line.startswith(f"error: {'an argument' if where == 'argument' else 'the folder'} (")
    assert line.endswith("(ascii); run it with PYTHONUTF8=1 or a UTF-8 locale (LC_ALL=C.UTF-8)")
    assert not (sweep / "results.md").exists()


def test_an_argument_of_bytes_that_are_no_utf8_is_refused_as_such(tmp_path: Path) -> None:
    # Under a UTF-8 locale the advice to use one (a diff review) was no help.
    env = {**script_env(tmp_path), "LC_ALL": "C.UTF-8"}
    done = subprocess.run(
        [sys.executable, str(REPO / "sweep.py"), "aggregate", os.fsdecode(b"/tmp/r\xff")],
        cwd=tmp_path, env=env, capture_output=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2
    assert (
        done.stderr
        == b"error: an argument (/tmp/r\xff) holds bytes that are not UTF-8; give it in UTF-8\n"
    )
    first = subprocess.run(  # the first argument too, before Hydra reads it
        [sys.executable, str(REPO / "train.py"), os.fsdecode(b"hydra.run.dir=r\xff"), "model=tiny"],
        cwd=tmp_path, env=env, capture_output=True, timeout=120,
    )  # fmt: skip
    assert (first.returncode, first.stderr[:22]) == (2, b"error: an argument (hy")
