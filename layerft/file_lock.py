"""An exclusive lock on a file (flock) that names its holder: the stage-1 store and sweep folders.

The OS drops the lock of a process that dies, so a crash never leaves a folder locked.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Callable, Iterator
from pathlib import Path


@contextlib.contextmanager
def held_lock(path: Path, when_busy: Callable[[str], None]) -> Iterator[None]:
    """Hold the lock on `path`, with this process's pid and host written in the file.

    When another process holds it, `when_busy(holder)` is called with what that process wrote
    ("" if nothing yet): it raises to give up, or returns to wait for the lock.
    """
    with path.open("a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            when_busy(handle.read().strip())
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            handle.seek(0)
            handle.truncate()
            handle.write(f"pid {os.getpid()} on {os.uname().nodename}")
            handle.flush()
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
