"""What a heatmap cell of a sweep's results averages: the cells each row serves (`served_cells`),
the rows in each (`cell_rows`), their mean, and how many combinations and runs the grid has in
a cell beside how many it averages (`grid_counts`, `cell_shortfall`: the figure's k/n marks).
`layerft/plots_heatmap.py` draws the figure.

Serves no config group.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from layerft.plots_common import PlotRow


def served_cells(
    row: PlotRow, axes: tuple[str, str], xs: list[str], ys: list[str]
) -> list[tuple[str, str]]:
    """The (x, y) cells a row's runs serve: its own pair of values, and along an axis whose setting
    they never read (its value `-`), every value of that axis."""
    x, y = axes
    row_xs = xs if x in row.unread else [row.settings[x]]
    row_ys = ys if y in row.unread else [row.settings[y]]
    return [(xv, yv) for xv in row_xs for yv in row_ys]


def cell_rows(
    rows: list[PlotRow], axes: tuple[str, str], xs: list[str], ys: list[str]
) -> tuple[dict[tuple[str, str], list[PlotRow]], dict[tuple[str, str], list[PlotRow]]]:
    """Each cell's rows with scores (`served_cells`), and each cell's rows finished or failed (a
    cell of none reads "not run")."""
    run: dict[tuple[str, str], list[PlotRow]] = defaultdict(list)
    cells: dict[tuple[str, str], list[PlotRow]] = defaultdict(list)
    for row in rows:
        for cell in served_cells(row, axes, xs, ys):
            run[cell].append(row)
            if row.scores:
                cells[cell].append(row)
    return cells, run


def cell_mean(cell: list[PlotRow]) -> float:
    """The mean of the cell's combination means (NaN for none)."""
    return float(np.mean([row.mean for row in cell])) if cell else float("nan")


def grid_counts(
    rows: list[PlotRow],
    axes: tuple[str, str],
    run: dict[tuple[str, str], list[PlotRow]],
    cell: tuple[str, str],
) -> tuple[int, int]:
    """The combinations and runs the grid has in `cell`: its rows finished or failed, with their
    seeds; and, per kind of row (the settings its runs never read), the combinations of the
    averaged settings that kind has both along the cell's column and along its row but not in
    the cell (never run), each of that kind's most runs. Values an averaged setting takes per
    value of one axis (each task's own learning rates) are expected where that value is."""
    here = run.get(cell, [])
    combos, runs = len(here), sum(row.runs for row in here)
    kinds: dict[frozenset[str], list[PlotRow]] = defaultdict(list)
    for row in rows:
        kinds[row.unread].append(row)
    for unread, members in kinds.items():
        along = [  # none along an axis the kind never reads: its rows serve each cell whole
            {averaged(row, axes) for row in members if row.settings[key] == value}
            for key, value in zip(axes, cell, strict=True)
        ]
        present = {averaged(row, axes) for row in here if row.unread == unread}
        missing = len((along[0] & along[1]) - present)
        combos, runs = combos + missing, runs + missing * max(row.runs for row in members)
    return combos, runs


def averaged(row: PlotRow, axes: tuple[str, str]) -> tuple[tuple[str, str], ...]:
    """The row's values of the settings a heatmap cell averages over (`-` where never read)."""
    return tuple(sorted((k, v) for k, v in row.settings.items() if k not in axes))


def cell_shortfall(cell: list[PlotRow], counts: tuple[int, int]) -> list[str]:
    """`k/n combos` and `k/n runs` where a heatmap cell averages fewer than its grid has there
    (`counts`, grid_counts): a row or a seed failed, or was not run."""
    found = (len(cell), sum(len(row.scores) for row in cell))
    pairs = zip(("combos", "runs"), found, counts, strict=True)
    return [f"{k}/{n} {name}" for name, k, n in pairs if k < n]
