"""User-facing errors: bad config, data or environment, reported as one line and a non-zero exit."""

import contextlib
import os
from collections.abc import Iterator


class LayerftError(Exception):
    """An error the user can fix (a key, file, record or id at fault); printed without a traceback."""


def traceback_wanted() -> bool:
    """`LAYERFT_TRACEBACK=1`: a user error is reported with its traceback too."""
    return bool(os.environ.get("LAYERFT_TRACEBACK"))


def error_line(err: BaseException) -> str:
    """`Type: first line of the message`: how a failed job's error is recorded and reported."""
    return f"{type(err).__name__}: {(str(err).strip().splitlines() or [''])[0]}"


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
