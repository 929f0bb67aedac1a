"""The console: standard output and error that a full disk, a closed pipe or a locale without the
text's letters turn into one line at the end instead of a traceback in the middle of a run.

Serves no config group: train.py, sweep.py and the `local_parallel` launcher's job processes call
`guard_console` as they start and end in `console_checked`.

A run's results are its files; the console only reports them. Printing to a file on a full disk
(`train.py > log`), to a pipe whose reader has gone (`| head`, a killed `tee`), or to anything
else that fails used to stop the run with a traceback from the first print or log line after the
failure (transformers prints one as it is imported). Now what is printed from then on goes to
/dev/null, the run goes on, and the process ends saying so in one line on stderr, with exit 1.
Text a locale cannot encode (Korean under LC_ALL=C with PYTHONUTF8=0) is written as escapes,
and a path's bytes that were no UTF-8 as those bytes.
"""

from __future__ import annotations

import codecs
import contextlib
import os
import sys
from collections.abc import Iterator
from typing import Any, TextIO

ERRORS = "layerft.console"  # the codec error handler the console's streams use
STREAMS = {"stdout": "standard output", "stderr": "standard error"}

# The first write error of each stream ("stdout", "stderr"), from which on it went to /dev/null.
_LOST: dict[str, OSError] = {}


def _unencodable(err: UnicodeError) -> tuple[str | bytes, int]:
    """A path's undecodable bytes (read as surrogate escapes) are written back as those bytes;
    other text the stream's encoding lacks as backslash escapes."""
    if not isinstance(err, UnicodeEncodeError):
        raise err
    escaped_bytes = all(map(_escaped_byte, err.object[err.start : err.end]))
    return codecs.lookup_error("surrogateescape" if escaped_bytes else "backslashreplace")(err)


def _escaped_byte(char: str) -> bool:
    """Whether `char` stands for a byte that was no text (Python's surrogateescape: U+DC80-DCFF)."""
    return 0xDC80 <= ord(char) <= 0xDCFF


codecs.register_error(ERRORS, _unencodable)


class GuardedStream:
    """A text stream whose failed writes are dropped instead of raised: the first failure is kept
    for `console_exit_code` and the stream's file descriptor is pointed at /dev/null, so that
    what its buffer still holds (and the interpreter's last flush) goes nowhere quietly."""

    def __init__(self, stream: TextIO, name: str) -> None:
        self._stream = stream
        self._name = name

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except OSError as err:
            self._lost(err)
            return len(text)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        try:
            self._stream.flush()
        except OSError as err:
            self._lost(err)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)

    def _lost(self, err: OSError) -> None:
        _LOST.setdefault(self._name, err)
        try:
            fd = self._stream.fileno()
        except (OSError, ValueError):  # no file descriptor: the dropped writes are all there is
            return
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, fd)
        finally:
            os.close(devnull)


def undecoded_input() -> str | None:
    """The line to stop on where an argument or the working folder holds bytes this Python read as
    no text (surrogate escapes: file names decode as ASCII, LC_ALL=C with PYTHONUTF8=0): such a
    path would be recorded as escapes, and a config's non-ASCII path could not be opened."""
    encoding = sys.getfilesystemencoding()
    for where, text in [*(("an argument", arg) for arg in sys.argv[1:]), ("the folder", _cwd())]:
        if not any(map(_escaped_byte, text)):
            continue
        if codecs.lookup(encoding).name == "utf-8":  # bytes that are no UTF-8 (another encoding)
            return f"{where} ({text}) holds bytes that are not UTF-8; give it in UTF-8"
        return (f"{where} ({text}) is not text in this Python's file-name encoding ({encoding}); "
                "run it with PYTHONUTF8=1 or a UTF-8 locale (LC_ALL=C.UTF-8)")  # fmt: skip
    return None


def _cwd() -> str:
    try:
        return os.getcwd()
    except OSError:  # removed: whatever needs it says so
        return ""


def guard_console() -> None:
    """Guard sys.stdout and sys.stderr of this process (once; before logging is set up, so that
    its handlers write through them)."""
    for name in STREAMS:
        stream = getattr(sys, name)
        if stream is None or isinstance(stream, GuardedStream):
            continue
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors=ERRORS)
        setattr(sys, name, GuardedStream(stream, name))


@contextlib.contextmanager
def console_checked() -> Iterator[None]:
    """Leave the process with `console_exit_code` of the code it was leaving with (0 when the
    block ends without sys.exit)."""
    try:
        yield
    except SystemExit as stop:
        if stop.code is not None and not isinstance(stop.code, int):  # a message: exit 1
            console_exit_code(1)
            raise
        raise SystemExit(console_exit_code(stop.code or 0)) from None
    if code := console_exit_code(0):
        raise SystemExit(code)


def console_exit_code(code: int) -> int:
    """The process's exit code: `code`, or 1 where it is 0 and a console stream failed, which is
    then named in one line on stderr (if stderr still writes)."""
    sys.stdout.flush()  # a redirected stdout is block-buffered: its last lines are still here
    for name, err in _LOST.items():
        print(f"error: {STREAMS[name]}: {err.strerror or err}; what was printed there from then "
              "on is lost", file=sys.stderr)  # fmt: skip
    return 1 if code == 0 and _LOST else code
