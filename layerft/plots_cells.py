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
    seeds; and, per kind of row (the settings its runs never read), each of that kind's most
    runs: one where the kind ran along both axes through the cell but not in it, else each
    combination of the averaged settings the cell lacks (never run) that a rectangle of three
    other cells holds, one in its column, one in its row and one in neither. So a value an
    averaged setting takes per value of one axis (each task's own learning rates), or per pair
    of values, is expected nowhere else; a combination missing from two cells of a column and
    two of a row (a sweep stopped early, its last values never run) goes unmarked."""
    here = run.get(cell, [])
    combos, runs = len(here), sum(row.runs for row in here)
    kinds: dict[frozenset[str], list[PlotRow]] = defaultdict(list)
    for row in rows:
        kinds[row.unread].append(row)
    (x, y), cells = cell, list(run)
    for unread, members in kinds.items():
        if present := _held(run, cell, axes, unread):
            expected = set().union(*(
                _held(run, (x, yo), axes, unread) & _held(run, (xo, y), axes, unread)
                & _held(run, (xo, yo), axes, unread)
                for xo, yo in cells if xo != x and yo != y
            ))  # fmt: skip
            missing = len(expected - present)
        else:  # the kind has no row here: is there one along each axis?
            reached = [
                k in unread or v in {r.settings[k] for r in members}
                for k, v in zip(axes, cell, strict=True)
            ]
            missing = int(all(reached))
        combos, runs = combos + missing, runs + missing * max(row.runs for row in members)
    return combos, runs


def _held(
    run: dict[tuple[str, str], list[PlotRow]],
    cell: tuple[str, str],
    axes: tuple[str, str],
    unread: frozenset[str],
) -> set[tuple[tuple[str, str], ...]]:
    """The combinations of the averaged settings the rows of one kind (`unread`) ran in `cell`."""
    return {averaged(row, axes) for row in run.get(cell, []) if row.unread == unread}


def averaged(row: PlotRow, axes: tuple[str, str]) -> tuple[tuple[str, str], ...]:
    """The row's values of the settings a heatmap cell averages over (`-` where never read)."""
    return tuple(sorted((k, v) for k, v in row.settings.items() if k not in axes))


def cell_shortfall(cell: list[PlotRow], counts: tuple[int, int]) -> list[str]:
    """`k/n combos` and `k/n runs` where a heatmap cell averages fewer than its grid has there
    (`counts`, grid_counts): a row or a seed failed, or was not run."""
    found = (len(cell), sum(len(row.scores) for row in cell))
    pairs = zip(("combos", "runs"), found, counts, strict=True)
    return [f"{k}/{n} {name}" for name, k, n in pairs if k < n]
