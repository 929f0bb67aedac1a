"""An exclusive lock on a file (flock) that names its holder: the stage-1 store, sweep folders, a
run's folder while it trains, and the configs a multirun trains.

The OS drops the lock of a process that dies, so a crash never leaves a folder locked.

Serves no config group: `layerft/stage1_store.py`, `layerft/run_folder.py`, `layerft/run_claim.py`
and `layerft/sweep.py` take these locks.
"""

from __future__ import annotations

import contextlib
import fcntl
import math
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, TypeVar

from layerft.errors import LayerftError
from layerft.file_io import file_error

T = TypeVar("T")
WAIT_LOG_SECONDS = 600.0  # lock_unless_done: how often a long wait is logged again
SWEEP_LOCK = ".sweep.lock"  # held by the sweep.py running the folder's grid


@contextlib.contextmanager
def held_lock(path: Path, when_busy: Callable[[str], None]) -> Iterator[None]:
    """Hold the lock on `path`, with this process's pid and host written in the file.

    When another process holds it, `when_busy(holder)` is called with what that process wrote
    ("" if nothing yet): it raises to give up, or returns to wait for the lock. A lock file that
    cannot be made or opened (a read-only folder) is one line (`file_error`); flock's own
    errors (a file system without locks) are raised as they are.
    """
    while True:
        with _opened(path) as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                when_busy(_holder(handle))
                fcntl.flock(handle, fcntl.LOCK_EX)
            if not _still_at(handle, path):  # its holder removed it as it let go: lock the new one
                fcntl.flock(handle, fcntl.LOCK_UN)
                continue
            try:
                _name_holder(handle)
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
            return


def _opened(path: Path) -> IO[str]:
    """The lock file at `path`, made (with its folder) if need be."""

    def made() -> IO[str]:
        path.parent.mkdir(parents=True, exist_ok=True)
        return path.open("a+")

    try:
        return _made_again(made)
    except OSError as err:
        raise file_error("write", path, err) from err


def _made_again(make: Callable[[], T]) -> T:
    """`make()`, tried twice more where a folder it made was removed meanwhile: by a sweep.py
    refused before its first job, which removes the folder it made for its lock (sweep_lock)."""
    for _ in range(2):
        with contextlib.suppress(FileNotFoundError):
            return make()
    return make()


def _still_at(handle: IO[str], path: Path) -> bool:
    """Whether the open file is still the one at `path` (not removed or replaced meanwhile)."""
    try:
        return os.path.samestat(os.fstat(handle.fileno()), os.stat(path))
    except FileNotFoundError:
        return False


def _holder(handle: IO[str]) -> str:
    """What the process holding the lock wrote in its file ("" if nothing yet)."""
    handle.seek(0)
    return handle.read().strip()


def _name_holder(handle: IO[str]) -> None:
    """Write this process's pid and host in the file whose lock it holds."""
    handle.seek(0)
    handle.truncate()
    handle.write(f"pid {os.getpid()} on {os.uname().nodename}")
    handle.flush()


@contextlib.contextmanager
def lock_unless_done(
    path: Path,
    done: Callable[[], T | None],
    on_wait: Callable[[str], None],
    on_unlockable: Callable[[str], None],
    poll_seconds: float = 2.0,
) -> Iterator[T | None]:
    """Hold the lock on `path` while the caller produces what `done()` looks for, unless another
    process produced it first. While another process holds the lock, `done()` is asked every
    `poll_seconds` (`on_wait(holder)` called at the first wait and every ten minutes), so a
    result is taken as soon as it exists, not when its process lets go; it is asked once more
    after the lock is taken, for a result written just before. Yields that result, or None with
    the lock held. Where the file cannot be opened or the file system has no locks (NFS without
    lockd, some FUSE mounts), `on_unlockable(reason)` is called and None yielded without a lock.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            handle = path.open("a+")
        except PermissionError:  # another user's lock file in a shared folder: locks read-only
            handle = path.open("r")
    except OSError as err:
        on_unlockable(f"cannot open {path}: {err.strerror or err}")
        yield None
        return
    with handle:
        locked, result = _take_or_find(handle, path, done, on_wait, on_unlockable, poll_seconds)
        try:
            if locked:
                result = done()
                if result is None and handle.writable():
                    _name_holder(handle)
            yield result
        finally:
            if locked:
                fcntl.flock(handle, fcntl.LOCK_UN)


def _take_or_find(
    handle: IO[str],
    path: Path,
    done: Callable[[], T | None],
    on_wait: Callable[[str], None],
    on_unlockable: Callable[[str], None],
    poll_seconds: float,
) -> tuple[bool, T | None]:
    """(True, None) once the lock is held; (False, result) when `done()` finds one first;
    (False, None) where the file system cannot lock."""
    logged = -math.inf
    while True:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True, None
        except BlockingIOError:
            pass
        except OSError as err:  # ENOLCK, ENOSYS, EOPNOTSUPP: no locks on this file system
            on_unlockable(f"cannot lock {path}: {err.strerror or err}")
            return False, None
        if time.monotonic() - logged >= WAIT_LOG_SECONDS:
            on_wait(_holder(handle))
            logged = time.monotonic()
        if (result := done()) is not None:
            return False, result
        time.sleep(poll_seconds)


@contextlib.contextmanager
def sweep_lock(sweep_dir: Path, option: str = "--dir") -> Iterator[None]:
    """Hold the sweep folder's lock while its grid runs: a second sweep.py on the same folder would
    run the same jobs at once, each removing the other's checkpoints and W&B folders. A sweep
    refused before its first job (a data file it would read is missing) leaves no folder behind
    that it made only to hold the lock."""
    path = sweep_dir / SWEEP_LOCK
    made = [  # a/../b: `a` and `b` (a/.. cannot be removed)
        folder
        for folder in (sweep_dir, *sweep_dir.parents)
        if folder.name not in ("..", "") and not folder.exists()  # "": the root, or "."
    ]

    def usable() -> None:
        sweep_dir.mkdir(parents=True, exist_ok=True)
        path.touch()  # an existing file's time: it succeeds in a folder that takes no new file
        tempfile.TemporaryFile(dir=sweep_dir).close()  # so the job folders can be made

    try:
        _made_again(usable)
    except OSError as err:
        raise LayerftError(
            f"{option} {sweep_dir}: cannot use it as the sweep folder ({err.strerror or err})"
        ) from None

    def refuse(holder: str) -> None:
        raise LayerftError(
            f"{sweep_dir} is in use by another sweep.py ({holder or 'another process'}); wait for "
            "it to end or choose another --dir"
        )

    with held_lock(path, refuse):
        try:
            yield
        finally:
            with contextlib.suppress(OSError):  # the folder gone, or one made by another sweep.py
                if made and [entry.name for entry in sweep_dir.iterdir()] == [SWEEP_LOCK]:
                    path.unlink()  # while locked: a sweep.py waiting on it locks a new file
                    for folder in made:
                        folder.rmdir()
