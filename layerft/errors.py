"""User-facing errors: bad config, data or environment, reported as one line and a non-zero exit."""

import os


class LayerftError(Exception):
    """An error the user can fix (a key, file, record or id at fault); printed without a traceback."""


def traceback_wanted() -> bool:
    """`LAYERFT_TRACEBACK=1`: a user error is reported with its traceback too."""
    return bool(os.environ.get("LAYERFT_TRACEBACK"))
