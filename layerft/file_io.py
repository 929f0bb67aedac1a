"""Files written whole or not at all (atomically, by rename), their content digests, and one-line
errors for what the OS refuses.

Serves no config group: results, stage-1 store, sweep tables and plots write through here.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import re
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from layerft.errors import LayerftError


def file_sha256(path: Path) -> str:
    """The sha256 of a file's bytes: what a result records of each data file it read."""
    stat = path.stat()
    return _file_sha256(path.resolve(), stat.st_size, stat.st_mtime_ns)


@functools.cache  # a sweep's plan and its table ask for the same files once per job
def _file_sha256(path: Path, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:  # hashlib.file_digest is Python 3.11+; 3.10 is supported
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_error(action: str, path: Path | str, err: OSError) -> LayerftError:
    """One line naming the path and the system's reason (read-only, no space, not a directory...)."""
    return LayerftError(f"cannot {action} {path}: {err.strerror or err}")


def run_dir_error(run_dir: Path, err: BaseException) -> BaseException:
    """The error a failed file operation under `run_dir` (checkpoints, tracker files) is reported
    as: one line naming the file (`file_error`), or the folder for a checkpoint's weights that
    safetensors could not write (its error names no file); any other error as it is."""
    name = getattr(err, "filename", None) if isinstance(err, OSError) else None
    if isinstance(name, str) and Path(name).is_relative_to(run_dir):
        return file_error("write", name, err)  # type: ignore[arg-type]
    if (unwritten := unwritten_weights(err)) is not None:
        return file_error("write a checkpoint's weights in", run_dir, unwritten)
    return err


def unwritten_weights(err: BaseException) -> OSError | None:
    """The system's error behind a SafetensorError of a failed write, which carries it as text
    only ("Error while serializing: I/O error: No space left on device (os error 28)")."""
    found = re.search(r"^Error while serializing: .*\(os error (\d+)\)", str(err))
    if type(err).__name__ != "SafetensorError" or found is None:
        return None
    code = int(found.group(1))
    return OSError(code, os.strerror(code))


@contextlib.contextmanager
def run_dir_errors(run_dir: Path) -> Iterator[None]:
    """Raise a failed file operation under `run_dir` as its one line (`run_dir_error`)."""
    try:
        yield
    except Exception as err:
        if (reported := run_dir_error(run_dir, err)) is err:
            raise
        raise reported from err


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    """`data` as strict JSON (NaN refused), written with `write_atomic`."""
    text = json.dumps(data, indent=2, sort_keys=True, allow_nan=False)
    write_atomic(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def write_atomic(path: Path, write: Callable[[Path], Any]) -> None:
    """`write` into a temporary file in the same folder, then rename it to `path`: readers see all
    of the file or none, and a failed write (read-only, full disk) leaves an earlier file as it was.
    """
    write_all_atomic({path: write})


def write_all_atomic(files: dict[Path, Callable[[Path], Any]]) -> None:
    """`write_atomic` for files that must agree (a results table and its report): all are written
    before any is renamed, so a kill or failure while writing leaves the earlier set whole."""
    staged: list[tuple[Path, Path]] = []
    path = None
    try:
        for path, write in files.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
            os.close(fd)
            staged.append((Path(name), path))
            write(Path(name))
            sync_to_disk(Path(name))
            Path(name).chmod(0o644)  # mkstemp makes it private; results are for everyone to read
        for tmp, path in staged:
            os.replace(tmp, path)
    except BaseException as err:
        for tmp, _ in staged:
            tmp.unlink(missing_ok=True)
        if isinstance(err, OSError) and path is not None:
            raise file_error("write", path, err) from err
        raise


def sync_to_disk(path: Path) -> None:
    """Flush a written file to disk: done before the rename that publishes it, so that after a
    crash the published name never holds blocks the disk did not yet have (zeros, on ext4)."""
    with path.open("rb") as handle:
        os.fsync(handle.fileno())


def mtime_or_zero(path: Path) -> float:
    """A file's modification time; 0 where it is gone since it was listed (a damaged record
    another job of the sweep set aside meanwhile: results.read_finished)."""
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0
