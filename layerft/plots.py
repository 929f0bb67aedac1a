"""Figures of a sweep's results: a heatmap over two settings (`layerft/plots_heatmap.py`), one bar
per combination, and the stage-2 dev curves. Drawn off-screen (Agg) into Figure objects (their
shared parts: `layerft/plots_common.py`); `layerft.aggregate` saves them.

Serves no config group. Nothing here touches pyplot's global state or opens a window.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import replace

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from layerft.plots_common import CHARS_PER_INCH, PlotRow, better_note, new_figure
from layerft.plots_heatmap import heatmap_figure, mixed_metric_cell

log = logging.getLogger(__name__)

FIGURES = ("heatmap.png", "bars.png", "dev_curves.png")
LINESTYLES = ("-", "--", ":", "-.")  # after the 10 colours of tab10 are used up
PANEL_SETTING = "target_task"  # the dev curves of each value are a panel of their own


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


def bars_figure(rows: list[PlotRow], metric: str) -> Figure:
    """One horizontal bar per combination (mean, std error bar, n), the first at the top."""
    longest = max(len(row.label) for row in rows)
    figure = new_figure(min(22.0, 5.0 + 0.075 * longest), 1.4 + 0.42 * len(rows))
    ax = figure.add_subplot()
    place = np.arange(len(rows))[::-1]
    means = np.array([row.mean for row in rows])
    colors = ["tab:orange" if row.is_baseline else "tab:blue" for row in rows]
    # One seed has no spread: no whisker (a zero-width one reads as std 0 over several seeds).
    spread = [row.std if len(row.scores) > 1 else np.nan for row in rows]
    ax.barh(place, np.nan_to_num(means), xerr=spread, color=colors, capsize=3)
    labels = [row.label + (" (baseline)" if row.is_baseline else "") for row in rows]
    ax.set_yticks(place, labels, fontsize="small")
    # Limits from finite scores only: a NaN in a record layerft did not write failed the figure
    finite = [row for row in rows if row.scores and np.isfinite([row.mean, row.std]).all()]
    reach = max([abs(row.mean) + row.std for row in finite], default=1.0)
    for y, row in zip(place, rows, strict=True):
        failed = f", {row.runs - len(row.scores)} failed" if row.runs > len(row.scores) else ""
        digits = 1 if abs(row.mean) >= 100 else 4  # as results.md's cells (sweep_diffs.md_summary)
        text = (
            f" {row.mean:.{digits}f} (n={len(row.scores)}{failed})"
            if row.scores
            else " no finished run"
        )
        ax.text(max(row.mean + row.std, 0) if row in finite else 0, y, text, va="center", fontsize="small")  # fmt: skip
    # From the lowest whisker: a negative score (pearsonr, matthews) or a wide spread reaches below 0.
    low = min([row.mean - row.std for row in finite], default=0.0)
    ax.set_xlim(min(0.0, low * 1.1), reach * 1.35)
    ax.set_xlabel(f"{metric} (mean ± sample std over seeds){better_note(rows)}")
    ax.set_ylim(-0.6, len(rows) - 0.4)
    _fit_xlabel(figure, ax)
    return figure


def _fit_xlabel(figure: Figure, ax: Axes) -> None:
    """Widen the figure until its axis label fits: a width from short row labels alone cut the
    label's end, `(higher is better)`, off the right edge (the label is centred on the axes, so
    the figure grows by twice what sticks out)."""
    figure.draw_without_rendering()
    label, edge = ax.xaxis.label.get_window_extent(), figure.bbox
    over = max(0.0, label.x1 - edge.x1, edge.x0 - label.x0)
    if over:
        figure.set_figwidth(figure.get_figwidth() + (2 * over + 20) / figure.dpi)


def curves_figure(rows: list[PlotRow], metric: str) -> Figure:
    """Stage-2 dev curves: per combination the mean over seeds, each seed faint behind it; one
    panel per target task where it varies (dev scores of different data sets share no axis)."""
    panels = _panels([row for row in rows if row.curves])
    width = 8.0
    wrap = round(width * CHARS_PER_INCH) - 10
    labels = [[wrap_at_commas(label, wrap) for label, _ in panel] for _, _, panel in panels]
    heights = [4.5 + 0.2 * sum(label.count("\n") + 1 for label in panel) for panel in labels]
    figure = new_figure(width, sum(heights))
    subfigures = figure.subfigures(len(panels), 1, height_ratios=heights, squeeze=False)[:, 0]
    for subfigure, (title, own, panel), panel_labels in zip(
        subfigures, panels, labels, strict=True
    ):
        ax = subfigure.add_subplot()
        for i, ((_, row), label) in enumerate(zip(panel, panel_labels, strict=True)):
            _draw_curve(ax, row, label, f"C{i % 10}", LINESTYLES[(i // 10) % len(LINESTYLES)])
        ax.set_xlabel("step (stage 2)")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(f"dev {own or metric}")
        heading = "stage-2 dev curves: mean over seeds (faint: each seed)"
        ax.set_title(f"{title}: {heading}" if title else heading, fontsize="medium")
        ax.grid(alpha=0.3)
        subfigure.legend(loc="outside lower center", fontsize="small", ncols=1)
    return figure


Panel = tuple[str | None, str | None, list[tuple[str, PlotRow]]]


def _panels(rows: list[PlotRow]) -> list[Panel]:
    """The rows by target task where it varies: each panel with its title, its one metric (None:
    the rows' own, named in their labels) and each row with its label without the task (nor the
    metric the panel names); else one untitled panel of every row."""
    tasks = sorted({row.settings[PANEL_SETTING] for row in rows if PANEL_SETTING in row.settings})
    if len(tasks) < 2:
        return [(None, None, [(row.label, row) for row in rows])]
    panels: list[Panel] = []
    for task in tasks:
        of_task = [row for row in rows if row.settings.get(PANEL_SETTING) == task]
        own = metrics.pop() if len(metrics := {row.metric for row in of_task}) == 1 else None
        panel = []
        for row in of_task:
            named = ",".join(f"{k}={v}" for k, v in row.settings.items())
            others = ",".join(f"{k}={v}" for k, v in row.settings.items() if k != PANEL_SETTING)
            suffix = "" if own else row.label.removeprefix(named)  # draw()'s ` [metric]`
            panel.append(((others or "all") + suffix, row))
        panels.append((f"{PANEL_SETTING}={task}", own, panel))
    return panels


def _draw_curve(ax: Axes, row: PlotRow, label: str, color: str, style: str) -> None:
    """One combination's mean dev curve, each seed's faint behind it when it has several."""
    by_step: dict[int, list[float]] = defaultdict(list)
    for curve in row.curves:
        steps, values = zip(*curve, strict=True)
        if len(row.curves) > 1:
            ax.plot(steps, values, color=color, alpha=0.25, linewidth=0.8)
        for step, value in curve:
            by_step[step].append(value)
    steps = sorted(by_step)
    ax.plot(
        steps,
        [np.mean(by_step[s]) for s in steps],
        color=color,
        linestyle=style,
        marker=".",
        label=f"{label} (n={len(row.curves)})",
    )


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
