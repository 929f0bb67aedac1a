"""A Ctrl-C that Python may lose: SIGINT raises KeyboardInterrupt in whatever code runs when it
arrives, and when that is a garbage collector's callback (a WeakSet's `_remove`), Python prints
"Exception ignored in ..." and carries on, so a sweep ran to its end and exited 0. While
`remembered_interrupts` is active (train.py's run, a sweep's launch), a SIGINT is also remembered,
and the next training step or dev batch (`callbacks.StopOnInterrupt`), the point where a sweep
starts its next job (`sweep_launch.job`, the `local_parallel` launcher) and the end of a run
stop it then. SIGTERM (`kill`, `timeout`, SLURM) stops them the same way, with its own line and
exit code, rather than ending the process where it stands: the sweep still writes its summary and
tables, and a tracker's run is closed as failed rather than left to be found crashed.

Serves no config group: train.py, `layerft/sweep.py`, `layerft/sweep_launch.py`, the phase
runner's callbacks and the `local_parallel` launcher use it.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
import traceback
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any

from layerft.errors import traceback_wanted

# The signals that stop a run or a sweep as Ctrl-C does while `remembered_interrupts` is active,
# and how a stop by each reads: SIGTERM is `kill`'s default, and what `timeout`, `scancel` and
# SLURM at a job's time limit send (its SIGKILL follows after the cluster's KillWait, 30 s by
# default). Their handlers by default: only those are replaced (submitit's own SIGTERM handler in
# its jobs, or the SIGINT a script's `cmd &` ignores, stay).
STOPS = {signal.SIGINT: "interrupted (Ctrl-C)", signal.SIGTERM: "terminated (SIGTERM)"}
_DEFAULTS = {signal.SIGINT: signal.default_int_handler, signal.SIGTERM: signal.SIG_DFL}

# Plain flags, not a threading.Event: setting an Event takes a lock, which a second signal
# arriving inside the handler would wait for forever. `_remembering`: the handlers are installed
# (a remembered signal counts only then: later code in the process, a test's or a notebook's next
# run, is not stopped by it). `_received`: the first of STOPS that came, kept after the context
# ends for the exit line and code.
_pressed = False
_remembering = False
_received: int | None = None
_unraisable_hook: Callable[[Any], object] | None = None  # the one _unreported replaced
_child_handler: Any = None  # the SIGCHLD handler a stop set aside (torch's data loaders')


def _on_stop(signum: int, frame: FrameType | None) -> None:
    global _pressed, _received, _unraisable_hook, _child_handler
    _pressed = True
    _received = _received or signum
    if not traceback_wanted():
        # torch's SIGCHLD handler raises "DataLoader worker ... is killed by signal" wherever the
        # run is when a worker the same SIGTERM reached (kill -TERM -<group>, scancel) ends
        if callable(handler := signal.getsignal(signal.SIGCHLD)):
            _child_handler = handler
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        if sys.unraisablehook is not _unreported:
            _unraisable_hook, sys.unraisablehook = sys.unraisablehook, _unreported
    raise KeyboardInterrupt


def _unreported(unraisable: Any) -> None:
    """sys.unraisablehook after a stop, until the next `remembered_interrupts`: what Python
    ignores and would print as "Exception ignored in ..." (the stop's own KeyboardInterrupt
    landing in a callback; a data loader's finalizer finding its workers ended by the same
    SIGTERM, which `kill -TERM -<group>`, scancel and SLURM send them too) is left to the stop's
    one line."""


def _set_back_after_stop() -> None:
    """Put back what an earlier stop in this process set aside (a test's, a notebook's)."""
    global _child_handler
    if sys.unraisablehook is _unreported and _unraisable_hook is not None:
        sys.unraisablehook = _unraisable_hook
    if _child_handler is not None and signal.getsignal(signal.SIGCHLD) == signal.SIG_DFL:
        signal.signal(signal.SIGCHLD, _child_handler)
    _child_handler = None


@contextlib.contextmanager
def remembered_interrupts() -> Iterator[None]:
    """Within: a SIGINT or SIGTERM raises KeyboardInterrupt, as Python's default handler does for
    SIGINT, and is remembered (`interrupted()`). Outside the main thread, for a signal whose
    handler is not its default (ignored by a script's `cmd &`, or a handler of the caller's), or
    within an outer one (which keeps what it remembered), nothing changes."""
    global _pressed, _remembering, _received
    ours = [sig for sig, default in _DEFAULTS.items() if signal.getsignal(sig) is default]
    if _remembering or threading.current_thread() is not threading.main_thread() or not ours:
        yield
        return
    _pressed, _remembering, _received = False, True, None
    _set_back_after_stop()
    for sig in ours:
        signal.signal(sig, _on_stop)
    try:
        yield
    finally:
        for sig in ours:
            signal.signal(sig, _DEFAULTS[sig])
        _remembering = False


def stopped_how() -> str:
    """How the last stop reads: `interrupted (Ctrl-C)` (also for a KeyboardInterrupt outside
    `remembered_interrupts`), `terminated (SIGTERM)`."""
    return STOPS[_received or signal.SIGINT]


def stopped_code() -> int:
    """The exit code of the last stop, as a shell reports a command a signal ended: 130 for
    Ctrl-C, 143 for SIGTERM."""
    return 128 + (_received or signal.SIGINT)


def stopped_line() -> str:
    """What train.py and sweep.py say when a stop ends them."""
    return f"error: {stopped_how()}; finished results are kept"


def interrupted() -> bool:
    """Whether a SIGINT or SIGTERM came while `remembered_interrupts` is active."""
    return _remembering and _pressed


def stop_if_interrupted() -> None:
    """Raise KeyboardInterrupt if a remembered SIGINT or SIGTERM came (at a training step or dev
    batch, and before a sweep starts another job)."""
    if interrupted():
        raise KeyboardInterrupt


@contextlib.contextmanager
def interrupted_exit() -> Iterator[None]:
    """Around train.py's run: Ctrl-C (SIGTERM) is one line on stderr and exit code 130 (143), as a
    shell reports a command a signal stopped, not a traceback through the training stack
    (LAYERFT_TRACEBACK=1 shows it). What finished is on disk; the same command skips it or, for
    one run, trains it again. A Ctrl-C Python lost is remembered, and raised at the next step."""
    try:
        with remembered_interrupts():
            yield
            stop_if_interrupted()  # lost after the last step: metrics written, the tracker closing
    except KeyboardInterrupt:
        if traceback_wanted():
            traceback.print_exc()
        print(stopped_line(), file=sys.stderr)
        raise SystemExit(stopped_code()) from None
