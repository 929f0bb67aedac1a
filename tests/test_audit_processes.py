"""Lines a mutation audit of a process's place and exit found unguarded: the rank torchrun gives,
the socket folder's fallback and what it leaves of tempfile's, a `gpus=[]` plan that pins no GPU,
a Ctrl-C while local_parallel jobs run, a second stop within one run, and the console's writes
(each test names what it pins)."""

from __future__ import annotations

import contextlib
import errno
import multiprocessing.process
import os
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hydra_plugins.layerft_launcher.gpu_slots import planned_slots, run_pooled
from layerft import console, interrupts, processes
from layerft.console import ERRORS, GuardedStream, console_checked

LOST_LINE = "error: standard output: Broken pipe; what was printed there from then on is lost"

# --- torchrun's rank ------------------------------------------------------------------------------


def test_the_rank_is_torchruns_global_rank_and_only_rank_0_records(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Kills `rank` reading LOCAL_RANK, and `is_main_process` as `rank() <= 1`."""
    # the second node's first process: LOCAL_RANK 0, but rank 2 of 4; it must not write records
    monkeypatch.setenv("RANK", "2")
    monkeypatch.setenv("LOCAL_RANK", "0")
    assert processes.rank() == 2 and not processes.is_main_process()
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert not processes.is_main_process()
    monkeypatch.setenv("RANK", "0")
    assert processes.is_main_process()


# --- the socket folder ----------------------------------------------------------------------------


@pytest.fixture
def fresh_socket_folder() -> Iterator[None]:
    """multiprocessing's folder as in a fresh process (none made yet); this process's kept after."""
    config = multiprocessing.process.current_process()._config
    kept = config.pop("tempdir", None)
    try:
        yield
    finally:
        config.pop("tempdir", None)  # multiprocessing removes the folder made as it exits
        if kept is not None:
            config["tempdir"] = kept


def long_tmpdir(tmp_path: Path) -> str:
    """A folder whose path leaves no room for a socket below it (a cluster's job scratch)."""
    folder = tmp_path / ("t" * max(1, 100 - len(os.fsencode(tmp_path))))
    folder.mkdir()
    return str(folder)


def test_a_too_long_tmpdir_is_passed_over_for_this_call_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_socket_folder: None
) -> None:
    """Kills `short_socket_folder` leaving tempfile.tempdir at the short folder."""
    long = long_tmpdir(tmp_path)
    monkeypatch.setattr(tempfile, "tempdir", long)
    folder = processes.short_socket_folder()
    assert Path(folder).parent == Path("/tmp")
    assert tempfile.tempdir == long  # the run's other temporary files stay where TMPDIR says


@pytest.mark.skipif(not os.path.isdir("/var/tmp"), reason="needs /var/tmp")
def test_a_short_folder_this_process_cannot_write_is_passed_over(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_socket_folder: None
) -> None:
    """Kills the fallback dropping `os.access(d, os.W_OK)` (taking a read-only /tmp)."""
    monkeypatch.setattr(tempfile, "tempdir", long_tmpdir(tmp_path))
    monkeypatch.setattr(processes, "SHORT_FOLDERS", ("/tmp", "/var/tmp"))
    access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode: path != "/tmp" and access(path, mode))
    assert Path(processes.short_socket_folder()).parent == Path("/var/tmp")


# --- local_parallel's slots -----------------------------------------------------------------------


def test_gpus_listed_empty_pins_no_gpu_whatever_is_visible(monkeypatch: pytest.MonkeyPatch) -> None:
    """Kills `planned_slots` reading `gpus=[]` as null (the visible GPUs, which refuse n_jobs=2)."""
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    assert planned_slots(2, []) == (2, [])
    assert planned_slots(None, None) == (1, ["0"])
    assert planned_slots(1, [3]) == (1, ["3"])


def test_ctrl_c_while_jobs_run_drops_the_waiting_ones_and_stops_the_running_first() -> None:
    """Kills `run_pooled` without `future.cancel()` (the waiting job still runs) or without
    `on_abort()` (the running job is never told to stop, and the launcher waits for its end)."""
    started: list[int] = []
    stop = threading.Event()

    def interrupting(gpu: str | None) -> int:
        started.append(0)
        time.sleep(0.2)  # the launcher has submitted every job and waits for the first
        os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C: raised in the main thread, which waits
        return int(stop.wait(timeout=5))

    def waiting(gpu: str | None) -> int:
        started.append(1)
        return 1

    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    begun = time.monotonic()
    try:
        with pytest.raises(KeyboardInterrupt):
            run_pooled([interrupting, waiting], n_jobs=1, gpus=["0"], on_abort=stop.set)
    finally:
        signal.signal(signal.SIGINT, previous)
    assert started == [0]
    assert stop.is_set() and time.monotonic() - begun < 4


def test_ctrl_c_while_the_jobs_are_submitted_stops_those_submitted() -> None:
    """A Ctrl-C landing before the last job was submitted skipped `on_abort`: the launcher waited
    for the running job's own end, which was never told to stop."""
    stop = threading.Event()

    def running(gpu: str | None) -> int:
        return int(stop.wait(timeout=5))

    def submitted() -> Iterator[Any]:
        yield running
        raise KeyboardInterrupt  # as the second job was being submitted

    begun = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        run_pooled(submitted(), n_jobs=1, gpus=[], on_abort=stop.set)  # type: ignore[arg-type]
    assert stop.is_set() and time.monotonic() - begun < 4


# --- the console ----------------------------------------------------------------------------------


class FailingStream:
    """A stream with no file descriptor whose writes fail: first the disk is full, then the pipe."""

    def __init__(self) -> None:
        self.errors = [
            OSError(errno.ENOSPC, "No space left on device"),
            BrokenPipeError(32, "pipe"),
        ]

    def write(self, text: str) -> int:
        raise self.errors.pop(0) if self.errors else OSError(errno.EIO, "I/O error")

    def flush(self) -> None: ...

    def fileno(self) -> int:
        raise ValueError("I/O operation on closed file")  # a closed stream's answer


def test_the_first_failure_of_a_stream_is_the_one_named_and_writelines_is_guarded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Kills `_lost` keeping the last failure (`_LOST[name] = err`), catching only OSError from
    `fileno()` (a closed stream's ValueError raised), and `writelines` left to the raw stream."""
    monkeypatch.setattr(console, "_LOST", {})
    guarded = GuardedStream(FailingStream(), "stdout")  # type: ignore[arg-type]
    guarded.writelines(["first\n", "second\n", "third\n"])
    assert console._LOST["stdout"].errno == errno.ENOSPC


def test_console_checked_names_a_lost_stream_on_every_way_out(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Kills `console_checked` not naming the loss for a sys.exit(message), and passing a bare
    sys.exit()'s None on (exit 0 after a lost stdout)."""
    monkeypatch.setattr(console, "_LOST", {"stdout": BrokenPipeError(32, "Broken pipe")})
    with pytest.raises(SystemExit) as ended, console_checked():
        raise SystemExit("error: something else")
    assert ended.value.code == "error: something else"
    assert capsys.readouterr().err == LOST_LINE + "\n"
    with pytest.raises(SystemExit) as ended, console_checked():
        raise SystemExit()
    assert ended.value.code == 1


def test_only_surrogate_escapes_of_bytes_come_back_as_bytes() -> None:
    """Kills `_unencodable` taking a run of unencodable text as bytes when any (not all) of it is,
    and `_escaped_byte` counting U+DC00-DC7F (no byte's escape) in."""
    assert "/tmp/\udced\udc95\udc9c".encode("ascii", ERRORS) == b"/tmp/\xed\x95\x9c"
    assert "\udced\ud55c".encode("ascii", ERRORS) == b"\\udced\\ud55c"  # a byte, then Korean
    assert "a\udc00b".encode("ascii", ERRORS) == b"a\\udc00b"


# --- stops ----------------------------------------------------------------------------------------


def test_a_second_stop_in_one_run_keeps_what_the_first_set_aside(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Kills `_on_stop` setting aside SIGCHLD's handler when it is no function (the second stop's
    SIG_DFL replaces torch's), and replacing sys.unraisablehook when it is already `_unreported`
    (the second stop sets its own aside): either was lost for the process's next run."""
    monkeypatch.setattr(interrupts, "traceback_wanted", lambda: False)
    for name in ("_pressed", "_received", "_child_handler", "_unraisable_hook"):
        monkeypatch.setattr(interrupts, name, getattr(interrupts, name))

    def torchs(signum: int, frame: Any) -> None: ...

    with interrupts.remembered_interrupts():  # puts back what an earlier test's stop set aside
        hook = sys.unraisablehook
    previous = (
        signal.signal(signal.SIGINT, signal.default_int_handler),
        signal.signal(signal.SIGTERM, signal.SIG_DFL),
        signal.signal(signal.SIGCHLD, torchs),
    )
    try:
        with interrupts.remembered_interrupts():
            for sig in (signal.SIGTERM, signal.SIGINT):  # scancel, then a Ctrl-C as it unwinds
                with contextlib.suppress(KeyboardInterrupt):
                    os.kill(os.getpid(), sig)
        with interrupts.remembered_interrupts():  # the next run: both back
            assert signal.getsignal(signal.SIGCHLD) is torchs
            assert sys.unraisablehook is hook
    finally:
        signal.signal(signal.SIGINT, previous[0])
        signal.signal(signal.SIGTERM, previous[1])
        signal.signal(signal.SIGCHLD, previous[2])
        sys.unraisablehook = hook


def test_an_unraisable_hook_set_since_a_stop_is_not_replaced_by_the_one_it_set_aside(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Kills `_set_back_after_stop` putting back the set-aside hook whatever is installed now."""

    def pytests(unraisable: Any) -> None: ...

    def callers(unraisable: Any) -> None: ...

    monkeypatch.setattr(interrupts, "_unraisable_hook", pytests)
    monkeypatch.setattr(sys, "unraisablehook", callers)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with interrupts.remembered_interrupts():
            assert sys.unraisablehook is callers
    finally:
        signal.signal(signal.SIGINT, previous)


def test_a_remembered_context_outside_the_main_thread_changes_nothing() -> None:
    """Kills `remembered_interrupts` dropping its main-thread check (signal.signal raises there)."""
    errors: list[BaseException] = []

    def in_a_thread() -> None:
        try:
            with interrupts.remembered_interrupts():
                pass
        except BaseException as err:  # noqa: BLE001
            errors.append(err)

    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        thread = threading.Thread(target=in_a_thread)
        thread.start()
        thread.join()
    finally:
        signal.signal(signal.SIGINT, previous)
    assert errors == []
