"""Packaged `evaluate` metrics (accuracy, macro_f1, token_f1), loadable offline by name."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING

from layerft.errors import LayerftError

if TYPE_CHECKING:
    import evaluate

METRICS_DIR: Path = Path(__file__).resolve().parent
# Listed, not globbed, so a stray folder (e.g. __pycache__) can never become a metric name.
METRIC_NAMES: tuple[str, ...] = (
    "accuracy",
    "macro_f1",
    "token_f1",
    "klue_sts",
    "klue_dp",
    "klue_ner",
    "klue_re",
    "klue_mrc",
)


def load_metric(name: str) -> evaluate.EvaluationModule:
    """Load a packaged metric by name from its local module directory (works offline)."""
    if name not in METRIC_NAMES:
        raise LayerftError(f"unknown metric '{name}'; available: {', '.join(METRIC_NAMES)}")
    return _load_cached(name)


@functools.cache
def _load_cached(name: str) -> evaluate.EvaluationModule:
    """Load once per process: evaluate copies and hashes the script on every load."""
    # Imported here so that `import layerft.metrics` stays cheap (evaluate pulls in datasets).
    import evaluate

    # keep_in_memory: inputs are already gathered lists, so evaluate's on-disk Arrow cache would
    # only add file writes and lock contention between concurrent jobs on one machine.
    return evaluate.load(str(METRICS_DIR / name), keep_in_memory=True)
