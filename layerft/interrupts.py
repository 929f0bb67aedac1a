"""A Ctrl-C that Python may lose: SIGINT raises KeyboardInterrupt in whatever code runs when it
arrives, and when that is a garbage collector's callback (a WeakSet's `_remove`), Python prints
"Exception ignored in ..." and carries on, so a sweep ran to its end and exited 0. While
`remembered_interrupts` is active (train.py's run, a sweep's launch), a SIGINT is also remembered,
and the next training step or dev batch (`callbacks.StopOnInterrupt`), the point where a sweep
starts its next job (`sweep_launch.job`, the `local_parallel` launcher) and the end of a run
stop it then.

Serves no config group: train.py, `layerft/sweep.py`, `layerft/sweep_launch.py`, the phase
runner's callbacks and the `local_parallel` launcher use it.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
import traceback
from collections.abc import Iterator
from types import FrameType

from layerft.errors import traceback_wanted

INTERRUPTED = "interrupted (Ctrl-C)"
# What train.py and sweep.py say when Ctrl-C stops them (exit code 130).
INTERRUPTED_LINE = f"error: {INTERRUPTED}; finished results are kept"

# Plain flags, not a threading.Event: setting an Event takes a lock, which a second SIGINT
# arriving inside the handler would wait for forever. `_remembering`: the handler is installed
# (a remembered SIGINT counts only then: later code in the process, a test's or a notebook's next
# run, is not stopped by it).
_pressed = False
_remembering = False


def _on_sigint(signum: int, frame: FrameType | None) -> None:
    global _pressed
    _pressed = True
    raise KeyboardInterrupt


@contextlib.contextmanager
def remembered_interrupts() -> Iterator[None]:
    """Within: a SIGINT raises KeyboardInterrupt, as Python's default handler does, and is
    remembered (`interrupted()`). Outside the main thread, where SIGINT is not Python's default
    (ignored by `nohup ... &`, or a handler of the caller's), or within an outer one (which keeps
    what it remembered), nothing changes."""
    global _pressed, _remembering
    if (
        _remembering
        or threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGINT) is not signal.default_int_handler
    ):
        yield
        return
    _pressed, _remembering = False, True
    signal.signal(signal.SIGINT, _on_sigint)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        _remembering = False


def interrupted() -> bool:
    """Whether a SIGINT came while `remembered_interrupts` is active."""
    return _remembering and _pressed


def stop_if_interrupted() -> None:
    """Raise KeyboardInterrupt if a remembered SIGINT came (at a training step or dev batch, and
    before a sweep starts another job)."""
    if interrupted():
        raise KeyboardInterrupt


@contextlib.contextmanager
def interrupted_exit() -> Iterator[None]:
    """Around train.py's run: Ctrl-C is one line on stderr and exit code 130 (as a shell reports a
    command it stopped), not a traceback through the training stack (LAYERFT_TRACEBACK=1 shows
    it). What finished is on disk; the same command skips it or, for one run, trains it again.
    A Ctrl-C Python lost is remembered, and raised at the next step."""
    try:
        with remembered_interrupts():
            yield
            stop_if_interrupted()  # lost after the last step: metrics written, the tracker closing
    except KeyboardInterrupt:
        if traceback_wanted():
            traceback.print_exc()
        print(INTERRUPTED_LINE, file=sys.stderr)
        raise SystemExit(130) from None
