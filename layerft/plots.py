"""Figures of a sweep's results: a heatmap over two settings, one bar per combination, and the
stage-2 dev curves. Drawn off-screen (Agg) into Figure objects; `layerft.aggregate` saves them.

Serves no config group. Nothing here touches pyplot's global state or opens a window.
"""

from __future__ import annotations

import logging
import textwrap
from collections import defaultdict
from dataclasses import dataclass, replace

import numpy as np
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from layerft.errors import LayerftError

log = logging.getLogger(__name__)

FIGURES = ("heatmap.png", "bars.png", "dev_curves.png")
LINESTYLES = ("-", "--", ":", "-.")  # after the 10 colours of tab10 are used up
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

    @property
    def mean(self) -> float:
        return float(np.mean(self.scores)) if self.scores else float("nan")

    @property
    def std(self) -> float:
        return float(np.std(self.scores, ddof=1)) if len(self.scores) > 1 else 0.0


def natural_key(value: str) -> tuple[int, float, str]:
    """Sort setting values as numbers when they are (1e-5 before 3e-5 before 1e-4), else as text."""
    try:
        return (0, float(value), "")
    except ValueError:
        return (1, 0.0, value)


def heatmap_axes(
    rows: list[PlotRow], varied: list[str], requested: tuple[str, str] | None
) -> tuple[str, str] | None:
    """The heatmap's (x, y) settings: the requested ones, else the two varied settings with the most
    distinct values; None when fewer than two settings vary."""
    if requested is not None:
        wrong = [name for name in requested if name not in varied]
        if wrong or requested[0] == requested[1]:
            raise LayerftError(
                f"heatmap needs two different varied settings, not {wrong or requested}; "
                f"varied: {', '.join(varied) or 'none'}"
            )
        return requested
    if len(varied) < 2:
        return None
    counts = {k: len({row.settings[k] for row in rows}) for k in varied}
    x, y = sorted(varied, key=lambda k: -counts[k])[:2]  # stable: ties keep column order
    return x, y


def draw(
    rows: list[PlotRow], varied: list[str], metric: str, axes: tuple[str, str] | None
) -> dict[str, Figure]:
    """File name -> figure, for the figures there is something to show."""
    if len({row.metric for row in rows if row.scores}) > 1:  # one axis, several metrics:
        rows = [  # each row with a score names its own
            replace(row, label=f"{row.label} [{short_metric(row.metric)}]") if row.scores else row
            for row in rows
        ]
    figures = {"bars.png": bars_figure(rows, metric)}
    if axes is None:
        log.info("no heatmap.png: %d varied setting(s), it needs 2", len(varied))
    elif mixed := mixed_metric_cell(rows, axes):
        log.warning("no heatmap.png: %s", mixed)
    else:
        figures["heatmap.png"] = heatmap_figure(rows, axes, varied, metric)
    if any(row.curves for row in rows):
        figures["dev_curves.png"] = curves_figure(rows, metric)
    else:
        log.info("no dev_curves.png: no job has a history.jsonl with dev evaluations")
    return figures


def short_metric(key: str) -> str:
    """`target/eval_accuracy` -> `accuracy`."""
    return key.rsplit("/", 1)[-1].removeprefix("eval_")


def mixed_metric_cell(rows: list[PlotRow], axes: tuple[str, str]) -> str | None:
    """Why no heatmap over `axes`: a cell that would average different selection metrics (a mean of
    accuracy and pearsonr means nothing); None when each cell has one."""
    x, y = axes
    metrics: dict[tuple[str, str], set[str]] = defaultdict(set)
    for row in rows:
        if row.scores:
            metrics[row.settings[x], row.settings[y]].add(row.metric)
    for (xv, yv), names in metrics.items():
        if len(names) > 1:
            return (
                f"its cell {x}={xv}, {y}={yv} would average different selection metrics "
                f"({', '.join(sorted(names))}); choose --heatmap settings that separate them"
            )
    return None


def _figure(width: float, height: float) -> Figure:
    figure = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def heatmap_figure(
    rows: list[PlotRow], axes: tuple[str, str], varied: list[str], metric: str
) -> Figure:
    """Mean selection metric per (x, y) pair of values; other varied settings are averaged over
    (each combination weighs the same). A cell averaging fewer combinations or finished runs
    than the fullest cell says so: its mean is over another set and does not compare evenly."""
    x, y = axes
    xs = sorted({row.settings[x] for row in rows}, key=natural_key)
    ys = sorted({row.settings[y] for row in rows}, key=natural_key)
    run = {(row.settings[x], row.settings[y]) for row in rows}
    cells: dict[tuple[str, str], list[PlotRow]] = defaultdict(list)
    for row in rows:
        if row.scores:
            cells[row.settings[x], row.settings[y]].append(row)
    full_combos = max(map(len, cells.values()), default=0)
    full_runs = max((sum(len(r.scores) for r in cell) for cell in cells.values()), default=0)
    short = {key: cell_shortfall(cell, full_combos, full_runs) for key, cell in cells.items()}
    grid = np.array([[cell_mean(cells[xv, yv]) for xv in xs] for yv in ys])
    metric_of = {key: cell[0].metric for key, cell in cells.items() if cell}
    per_metric = len(set(metric_of.values())) > 1
    # Cells of different metrics (target_task on an axis) are coloured within their metric: one
    # scale would show which task scores higher, not which setting helps.
    shade = (
        shades(grid, [[metric_of.get((xv, yv)) for xv in xs] for yv in ys]) if per_metric else grid
    )
    x_ticks, y_ticks = xs, ys
    title = f"mean {metric}"
    if per_metric:  # name each value's metric on the axis that separates them
        x_ticks = tick_metrics(xs, [(xv, metric_of.get((xv, yv))) for xv in xs for yv in ys])
        y_ticks = tick_metrics(ys, [(yv, metric_of.get((xv, yv))) for xv in xs for yv in ys])
        named = [a for a, ticks, values in ((x, x_ticks, xs), (y, y_ticks, ys)) if ticks != values]
        title = f"mean selection metric (each {named[0] if named else 'cell'}'s own)"
    width = max(5.0, 1.2 * len(xs) + 3.5)
    if others := [k for k in varied if k not in axes]:
        title += "\n" + textwrap.fill(
            "averaged over " + ", ".join(others), round(width * CHARS_PER_INCH)
        )
    if any(short.values()):
        title += "\nk/n: the cell averages k, the fullest cell n"
    figure = _figure(width, max(3.5, 0.6 * len(ys) + 2.5) + 0.2 * max(0, title.count("\n") - 1))
    ax = figure.add_subplot()
    # a cell without a mean is light grey with dark text (the default left white on white)
    cmap = colormaps["viridis"].with_extremes(bad="0.9")
    scale = {"vmin": 0.0, "vmax": 1.0} if per_metric else {}  # shades, even when all are 0.5
    image = ax.imshow(np.ma.masked_invalid(shade), cmap=cmap, aspect="auto", **scale)
    finite = shade[np.isfinite(shade)]
    middle = (finite.min() + finite.max()) / 2 if finite.size else 0.0
    for (i, j), value in np.ndenumerate(grid):
        if cells[xs[j], ys[i]]:
            text = "\n".join([f"{value:.3f}", *short[xs[j], ys[i]]])
        else:
            text = "failed" if (xs[j], ys[i]) in run else "not run"
        color = "white" if shade[i, j] < middle else "black"  # NaN < x is False
        ax.text(j, i, text, ha="center", va="center", color=color, fontsize="small")
    tilt = 30 if max(map(len, x_ticks)) > 8 else 0
    ax.set_xticks(
        range(len(xs)), x_ticks, rotation=tilt, ha="right" if tilt else "center",
        rotation_mode="anchor",
    )  # fmt: skip
    ax.set_yticks(range(len(ys)), y_ticks)
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    ax.set_title(title, fontsize="medium")
    if per_metric:
        bar = figure.colorbar(image, ax=ax, label="within each metric", ticks=[0, 1])
        bar.ax.set_yticklabels(["lowest", "highest"])
    else:
        figure.colorbar(image, ax=ax, label=metric)
    return figure


def shades(grid: np.ndarray, metrics: list[list[str | None]]) -> np.ndarray:
    """Each cell's colour value: its mean scaled to [0, 1] between the lowest and the highest
    mean of its metric (0.5 when they are equal); NaN stays NaN."""
    shade = np.full(grid.shape, np.nan)
    names = np.array(metrics, dtype=object)
    for name in {m for row in metrics for m in row if m is not None}:
        mask = (names == name) & np.isfinite(grid)
        if not mask.any():
            continue
        low, high = grid[mask].min(), grid[mask].max()
        shade[mask] = (grid[mask] - low) / (high - low) if high > low else 0.5
    return shade


def tick_metrics(values: list[str], pairs: list[tuple[str, str | None]]) -> list[str]:
    """Tick labels naming each value's metric when every cell of that value has one metric (the
    axis of target_task); the plain values otherwise."""
    seen: dict[str, set[str]] = defaultdict(set)
    for value, name in pairs:
        if name is not None:
            seen[value].add(name)
    if not seen or any(len(names) > 1 for names in seen.values()):
        return values
    return [
        f"{value}\n({next(iter(seen[value])).rsplit('eval_', 1)[-1]})" if seen[value] else value
        for value in values
    ]


def cell_mean(cell: list[PlotRow]) -> float:
    """The mean of the cell's combination means (NaN for none)."""
    return float(np.mean([row.mean for row in cell])) if cell else float("nan")


def cell_shortfall(cell: list[PlotRow], full_combos: int, full_runs: int) -> list[str]:
    """`k/n combos` and `k/n runs` where a heatmap cell has fewer than the fullest cell."""
    combos, runs = len(cell), sum(len(row.scores) for row in cell)
    counts = (("combos", combos, full_combos), ("runs", runs, full_runs))
    return [f"{k}/{n} {name}" for name, k, n in counts if k < n]


def bars_figure(rows: list[PlotRow], metric: str) -> Figure:
    """One horizontal bar per combination (mean, std error bar, n), the first at the top."""
    longest = max(len(row.label) for row in rows)
    figure = _figure(min(22.0, 5.0 + 0.075 * longest), 1.4 + 0.42 * len(rows))
    ax = figure.add_subplot()
    place = np.arange(len(rows))[::-1]
    means = np.array([row.mean for row in rows])
    colors = ["tab:orange" if row.is_baseline else "tab:blue" for row in rows]
    # One seed has no spread: no whisker (a zero-width one reads as std 0 over several seeds).
    spread = [row.std if len(row.scores) > 1 else np.nan for row in rows]
    ax.barh(place, np.nan_to_num(means), xerr=spread, color=colors, capsize=3)
    labels = [row.label + (" (baseline)" if row.is_baseline else "") for row in rows]
    ax.set_yticks(place, labels, fontsize="small")
    reach = max([abs(row.mean) + row.std for row in rows if row.scores], default=1.0)
    for y, row in zip(place, rows, strict=True):
        text = f" {row.mean:.3f} (n={len(row.scores)})" if row.scores else " no finished run"
        ax.text(
            max(row.mean + row.std, 0) if row.scores else 0, y, text, va="center", fontsize="small"
        )
    # From the lowest whisker: a negative score (pearsonr, matthews) or a wide spread reaches below 0.
    low = min([row.mean - row.std for row in rows if row.scores], default=0.0)
    ax.set_xlim(min(0.0, low * 1.1), reach * 1.35)
    ax.set_xlabel(f"{metric} (mean ± sample std over seeds)")
    ax.set_ylim(-0.6, len(rows) - 0.4)
    return figure


def curves_figure(rows: list[PlotRow], metric: str) -> Figure:
    """Stage-2 dev curves: per combination the mean over seeds, each seed faint behind it."""
    drawn = [row for row in rows if row.curves]
    width = 8.0
    labels = [wrap_at_commas(row.label, round(width * CHARS_PER_INCH) - 10) for row in drawn]
    figure = _figure(width, 4.5 + 0.2 * sum(label.count("\n") + 1 for label in labels))
    ax = figure.add_subplot()
    for i, (row, label) in enumerate(zip(drawn, labels, strict=True)):
        color = f"C{i % 10}"
        by_step: dict[int, list[float]] = defaultdict(list)
        for curve in row.curves:
            steps, values = zip(*curve, strict=True)
            if len(row.curves) > 1:
                ax.plot(steps, values, color=color, alpha=0.25, linewidth=0.8)
            for step, value in curve:
                by_step[step].append(value)
        steps = sorted(by_step)
        style = LINESTYLES[(i // 10) % len(LINESTYLES)]
        ax.plot(
            steps,
            [np.mean(by_step[s]) for s in steps],
            color=color,
            linestyle=style,
            marker=".",
            label=f"{label} (n={len(row.curves)})",
        )
    ax.set_xlabel("step (stage 2)")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel(f"dev {metric}")
    ax.set_title("stage-2 dev curves: mean over seeds (faint: each seed)", fontsize="medium")
    ax.grid(alpha=0.3)
    figure.legend(loc="outside lower center", fontsize="small", ncols=1)
    return figure


def wrap_at_commas(text: str, width: int) -> str:
    """`text` broken after commas into lines of about `width` characters (a longer part stays whole):
    a legend of long `key=value,...` labels otherwise runs off both sides of the figure."""
    lines: list[str] = []
    for part in text.split(","):
        if lines and len(lines[-1]) + len(part) < width:
            lines[-1] += "," + part
        else:
            lines.append(part)
    return ",\n".join(lines)
