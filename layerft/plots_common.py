"""What every figure of a sweep's results shares: one combination as the plots see it (`PlotRow`),
the order of setting values (`natural_key`) and the off-screen (Agg) figure each is drawn on.
`layerft/plots.py` draws the bars and dev curves, `layerft/plots_heatmap.py` the heatmap.

Serves no config group. Nothing here touches pyplot's global state or opens a window.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

CHARS_PER_INCH = 11  # of text at fontsize "medium" or "small", with a margin: where to wrap a line


@dataclass(frozen=True)
class PlotRow:
    """One combination, as the plots see it."""

    label: str  # `key=value,...` over the varied settings
    settings: dict[str, str]  # varied setting -> value
    scores: list[float]  # the selection metric, one per finished seed
    curves: list[list[tuple[int, float]]]  # per seed: (step, dev selection metric)
    metric: str  # the selection metric the scores are of
    is_baseline: bool = False  # another row's baseline
    # Varied settings its runs never read (sweep_table.applies): one run serves every value of each.
    unread: frozenset[str] = frozenset()
    jobs: int = 0  # its seeds run, finished or failed (0: as many as it has scores)
    higher_is_better: bool = True  # of its selection metric

    @property
    def runs(self) -> int:
        """Its seeds run, finished or failed."""
        return max(self.jobs, len(self.scores))

    @property
    def mean(self) -> float:
        return float(np.mean(self.scores)) if self.scores else float("nan")

    @property
    def std(self) -> float:
        return float(np.std(self.scores, ddof=1)) if len(self.scores) > 1 else 0.0


def better_note(rows: list[PlotRow]) -> str:
    """` (higher is better)` or ` (lower is better)` where the rows agree on it, else nothing (a
    row with no finished run may have failed before its metric was known)."""
    ways = {row.higher_is_better for row in rows if row.scores}
    return "" if len(ways) != 1 else " (higher is better)" if ways.pop() else " (lower is better)"


def natural_key(value: str) -> tuple[int, float, str]:
    """Sort setting values as numbers when they are (1e-5 before 3e-5 before 1e-4), else as text."""
    try:
        return (0, float(value), "")
    except ValueError:
        return (1, 0.0, value)


def new_figure(width: float, height: float) -> Figure:
    """A figure of `width` x `height` inches, laid out to fit its labels, drawn off-screen (Agg)."""
    figure = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(figure)
    return figure
