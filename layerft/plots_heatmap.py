"""The heatmap of a sweep's results: its two settings (`heatmap_axes`), why a pair of them has
none (`mixed_metric_cell`), and the figure, mean selection metric per pair of values (what each
cell averages: `layerft/plots_cells.py`). `layerft/plots.py` draws it with the other figures.

Serves no config group. Nothing here touches pyplot's global state or opens a window.
"""

from __future__ import annotations

import textwrap
from collections import defaultdict

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure

from layerft.errors import LayerftError
from layerft.plots_cells import cell_mean, cell_rows, cell_shortfall, grid_counts, served_cells
from layerft.plots_common import CHARS_PER_INCH, PlotRow, better_note, natural_key, new_figure

TASK = "target_task"  # its values are data sets: never averaged in a cell, coloured apart


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
    counts = {k: len(axis_values(rows, k)) for k in varied}
    ranked = sorted(varied, key=lambda k: -counts[k])  # stable: ties keep column order
    if TASK in varied:  # a cell never averages two data sets' scores
        ranked = sorted([TASK, next(k for k in ranked if k != TASK)], key=ranked.index)
    x, y = ranked[:2]
    return x, y


def mixed_metric_cell(rows: list[PlotRow], axes: tuple[str, str]) -> str | None:
    """Why no heatmap over `axes`: a cell that would average different selection metrics (a mean of
    accuracy and pearsonr means nothing); None when each cell has one."""
    x, y = axes
    xs, ys = axis_values(rows, x), axis_values(rows, y)
    metrics: dict[tuple[str, str], set[str]] = defaultdict(set)
    for row in rows:
        for cell in served_cells(row, axes, xs, ys) if row.scores else ():
            metrics[cell].add(row.metric)
    for (xv, yv), names in metrics.items():
        if len(names) > 1:
            return (
                f"its cell {x}={xv}, {y}={yv} would average different selection metrics "
                f"({', '.join(sorted(names))}); choose --heatmap settings that separate them"
            )
    if TASK not in axes and len(tasks := axis_values(rows, TASK)) > 1:
        return (
            f"its cells would average the scores of different data sets ({TASK} "
            f"{', '.join(tasks)}); put {TASK} on an axis (--heatmap {TASK} {x})"
        )
    return None


def axis_values(rows: list[PlotRow], key: str) -> list[str]:
    """The values of `key` along a heatmap axis: those of the rows whose runs read it."""
    return sorted(
        {row.settings[key] for row in rows if key in row.settings and key not in row.unread},
        key=natural_key,
    )


def heatmap_figure(
    rows: list[PlotRow], axes: tuple[str, str], varied: list[str], metric: str
) -> Figure:
    """Mean selection metric per (x, y) pair of values; other varied settings are averaged over
    (each combination weighs the same). A cell averaging fewer combinations or finished runs
    than its grid has there says so: its mean is over another set and does not compare evenly.
    A row whose runs never read an axis's setting (injection_task=none under layer_split) is in
    every cell along that axis, not in a column of its own: one run serves every value."""
    x, y = axes
    xs, ys = axis_values(rows, x), axis_values(rows, y)
    cells, run = cell_rows(rows, axes, xs, ys)
    others = [k for k in varied if k not in axes]
    short = {
        key: cell_shortfall(cell, grid_counts(rows, axes, run, key)) for key, cell in cells.items()
    }
    grid = np.array([[cell_mean(cells[xv, yv]) for xv in xs] for yv in ys])
    shade, (x_ticks, y_ticks), title, within = colouring(grid, cells, axes, (xs, ys), metric)
    width = max(5.0, 1.2 * len(xs) + 3.5)
    if others:
        title += "\n" + textwrap.fill(
            "averaged over " + ", ".join(others), round(width * CHARS_PER_INCH)
        )
    if any(short.values()):
        title += "\nk/n: the cell averages k of the n its grid has"
    figure = new_figure(width, max(3.5, 0.6 * len(ys) + 2.5) + 0.2 * max(0, title.count("\n") - 1))
    ax = figure.add_subplot()
    # a cell without a mean is light grey with dark text (the default left white on white)
    cmap = colormaps["viridis"].with_extremes(bad="0.9")
    scale = {"vmin": 0.0, "vmax": 1.0} if within else {}  # shades, even when all are 0.5
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
    ha = "right" if tilt else "center"
    ax.set_xticks(range(len(xs)), x_ticks, rotation=tilt, ha=ha, rotation_mode="anchor")
    ax.set_yticks(range(len(ys)), y_ticks)
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    ax.set_title(title, fontsize="medium")
    if within:
        bar = figure.colorbar(image, ax=ax, label=within + better_note(rows), ticks=[0, 1])
        bar.ax.set_yticklabels(["lowest", "highest"])
    else:
        figure.colorbar(image, ax=ax, label=metric + better_note(rows))
    return figure


def colouring(
    grid: np.ndarray,
    cells: dict[tuple[str, str], list[PlotRow]],
    axes: tuple[str, str],
    values: tuple[list[str], list[str]],
    metric: str,
) -> tuple[np.ndarray, tuple[list[str], list[str]], str, str | None]:
    """The cells' colour values, the axes' tick labels, the title's first line, and what a colour
    is scaled within (None: the metric's own values). Cells of different metrics or data sets
    (target_task on an axis) are coloured within their own: one scale would show which task
    scores higher, not which setting helps."""
    (x, y), (xs, ys) = axes, values
    metric_of = {key: cell[0].metric for key, cell in cells.items() if cell}
    task = axes.index(TASK) if TASK in axes else None
    scale_of = {k: f"{m} {'' if task is None else k[task]}" for k, m in metric_of.items()}
    if len(set(scale_of.values())) < 2:
        return grid, (xs, ys), f"mean {metric}", None
    shade = shades(grid, [[scale_of.get((xv, yv)) for xv in xs] for yv in ys])
    within = f"within each {'metric' if task is None else TASK}"
    if len(set(metric_of.values())) < 2:
        return shade, (xs, ys), f"mean {metric} (colour: {within})", within
    # name each value's metric on the axis that separates them
    x_ticks = tick_metrics(xs, [(xv, metric_of.get((xv, yv))) for xv in xs for yv in ys])
    y_ticks = tick_metrics(ys, [(yv, metric_of.get((xv, yv))) for xv in xs for yv in ys])
    named = [a for a, ticks, values in ((x, x_ticks, xs), (y, y_ticks, ys)) if ticks != values]
    title = f"mean selection metric (each {named[0] if named else 'cell'}'s own)"
    return shade, (x_ticks, y_ticks), title, within


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
