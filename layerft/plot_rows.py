"""What the plots draw of a table's rows (`layerft/plots.py`, `plots_heatmap.py`): each row as a
`PlotRow`, its seeds' scores and stage-2 dev curves (each job's `history.jsonl`).

Serves no config group: `layerft/aggregate.py` hands these to the plots.
"""

from __future__ import annotations

import logging

from layerft.plots_common import PlotRow
from layerft.results import read_history
from layerft.sweep_job import Job
from layerft.sweep_table import TableRow, applies, label, setting

log = logging.getLogger(__name__)


def plot_row(combo: TableRow, varied: list[str], is_baseline: bool) -> PlotRow:
    """What the plots need of a combination: its scores and stage-2 dev curves, one per seed."""
    curves = [dev_curve(job) for job in combo.finished]
    return PlotRow(
        label(combo.settings, varied),
        {k: setting(combo.settings, k) for k in varied},
        list(combo.values(combo.selection_metric).values()),
        [c for c in curves if c],
        combo.selection_metric,
        is_baseline,
        frozenset(k for k in varied if not applies(combo, k)),
        len({job.seed for job in combo.finished + combo.failed}),
        combo.higher_is_better,
    )


def dev_curve(job: Job) -> list[tuple[int, float]]:
    """(step, dev selection metric) of stage 2's evaluations. They come before the line holding
    `target/train_runtime`; the evaluation after it re-scores the best checkpoint."""
    try:
        lines = read_history(job.run_dir)
    except (OSError, ValueError) as err:  # a job killed mid-line
        log.warning("%s: no dev curve, its history is unreadable (%s)", job.run_dir, err)
        return []
    curve = []
    for line in lines:
        if "target/train_runtime" in line:
            break
        if job.selection_metric in line:
            curve.append((int(line["step"]), float(line[job.selection_metric])))
    return curve
