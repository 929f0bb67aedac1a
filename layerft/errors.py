"""User-facing errors: bad config, data or environment, reported as one line and a non-zero exit."""


class LayerftError(Exception):
    """An error the user can fix (a key, file, record or id at fault); printed without a traceback."""
