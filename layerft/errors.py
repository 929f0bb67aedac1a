"""User-facing errors: bad config, data or environment, reported as one line and a non-zero exit.

Serves no config group: every module raises `LayerftError`; train.py and `layerft/hydra_job.py`
report it (`user_errors_exit`).
"""

import contextlib
import json
import logging
import os
import sys
import traceback
from collections.abc import Iterator
from typing import Any

log = logging.getLogger(__name__)


class LayerftError(Exception):
    """An error the user can fix (a key, file, record or id at fault); printed without a traceback."""


def quoted(value: Any, limit: int = 60) -> str:
    """`value` as JSON, cut to `limit` characters, for a one-line message."""
    return cut(json.dumps(value, ensure_ascii=False, default=repr), limit)


def shown(value: Any, limit: int = 80) -> str:
    """`value` as Python writes it (`repr`), cut to `limit` characters, for a one-line message: a
    record's field may be a whole column (pandas' `to_json()` writes one object of columns)."""
    return cut(repr(value), limit)


def cut(text: str, limit: int = 60) -> str:
    """`text` cut to `limit` characters, its end marked `...`, for a one-line message."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


def traceback_wanted() -> bool:
    """`LAYERFT_TRACEBACK=1`: a user error is reported with its traceback too."""
    return bool(os.environ.get("LAYERFT_TRACEBACK"))


def first_line(err: BaseException) -> str:
    """The first line of an exception's message, or its type's name when it has none."""
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def error_line(err: BaseException) -> str:
    """`Type: first line of the message` (the type alone without one): how a failed job's error is
    recorded and reported."""
    name = type(err).__name__
    return f"{name}: {first_line(err)}" if str(err).strip() else name


@contextlib.contextmanager
def hydra_raises() -> Iterator[bool]:
    """Set HYDRA_FULL_ERROR meanwhile, so that Hydra raises its errors instead of printing them
    over several lines and exiting 1; yields whether the user had set it (then it stays)."""
    user_set = "HYDRA_FULL_ERROR" in os.environ
    if not user_set:
        os.environ["HYDRA_FULL_ERROR"] = "1"
    try:
        yield user_set
    finally:
        if not user_set:
            del os.environ["HYDRA_FULL_ERROR"]


@contextlib.contextmanager
def user_errors_exit(reraise: bool = False) -> Iterator[None]:
    """Turn a LayerftError into one line on stderr and exit code 2 (LAYERFT_TRACEBACK=1 shows it
    all; `reraise`: the caller records it)."""
    try:
        yield
    except LayerftError as err:
        if reraise:
            raise
        if traceback_wanted():
            traceback.print_exc()  # the exit code stays that of bad input
        from layerft.credentials import without_secrets  # here: the error path alone needs Hydra

        message = without_secrets(str(err))  # a library's error line it quotes may echo a key
        log_to_files(logging.ERROR, message)
        print(f"error: {message}", file=sys.stderr)
        raise SystemExit(2) from None


def log_to_files(level: int, message: str) -> None:
    """Write `message` to the log files alone (Hydra's `<run dir>/train.log`), not the console,
    where the caller says it: an error read once there, and kept with the run."""
    record = log.makeRecord(log.name, level, __file__, 0, "%s", (message,), None)
    logger: logging.Logger | None = log
    while logger is not None:
        for handler in logger.handlers:
            if isinstance(handler, logging.FileHandler) and level >= handler.level:
                handler.handle(record)
        logger = logger.parent if logger.propagate else None
