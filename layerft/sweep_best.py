"""`--best-of key ...`: best.csv and best.md, each row of the table at its best value of those
settings (the adapter study's every tuning mode at its own best learning rate), chosen by the
seed-mean selection metric, and compared with its baseline row's best the same way.

Serves no config group: `layerft/aggregate.py` writes these beside results.csv; the rows, the
baseline pairing and the cells are results.csv's own (`layerft/sweep_table.py`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np

from layerft.errors import LayerftError
from layerft.sweep_baseline import baselines
from layerft.sweep_diffs import md_line, other_scores_lines
from layerft.sweep_job import SettingsKey, settings_key
from layerft.sweep_report import csv_text, table_lines
from layerft.sweep_table import MISSING, Table, TableRow, build_table, label, setting

BEST_FILES = ("best.csv", "best.md")
CANDIDATES = "candidates"  # best.csv's column: each value tried, its mean and seeds


def best_table(
    combos: list[TableRow],
    varied: list[str],
    spec: dict[str, str],
    keys: list[str],
    extra: list[str],
) -> Table:
    """One row per combination of the settings other than `keys`: its row with the best mean
    selection metric over the values of `keys` it ran (the first in table order on a tie; one
    without a finished job only where none has one), beside its baseline row's best (`spec`,
    without `keys`: the baseline is another row's best, not a value of theirs)."""
    if unknown := [k for k in keys if not any(k in c.settings for c in combos)]:
        known = sorted({k for c in combos for k in c.settings})
        raise LayerftError(f"--best-of {unknown[0]}: no job sets it (settings: {', '.join(known)})")
    groups = _groups(combos, keys)
    chosen = [_best(rows, keys) for rows in groups]
    # Paired as results.csv pairs rows, on the settings without `keys`
    bare = [replace(c, settings=_without(c.settings, keys)) for c in chosen]
    by_bare = {id(b): c for b, c in zip(bare, chosen, strict=True)}
    rest = {k: v for k, v in spec.items() if k not in keys}
    bases = [by_bare[id(b)] if b is not None else None for b in baselines(bare, rest)]
    columns = [k for k in varied if k not in keys] + [k for k in keys if k in varied]
    table = build_table(chosen, columns, rest, bases, extra)
    for row, rows in zip(table.rows, groups, strict=True):
        row[CANDIDATES] = _candidates(rows, keys)
    return replace(table, columns=[*table.columns, CANDIDATES])


def _groups(combos: list[TableRow], keys: list[str]) -> list[list[TableRow]]:
    """The rows by their settings other than `keys`, in table order."""
    groups: dict[SettingsKey, list[TableRow]] = {}
    for combo in combos:
        groups.setdefault(settings_key(_without(combo.settings, keys)), []).append(combo)
    return list(groups.values())


def _without(settings: dict[str, str], keys: list[str]) -> dict[str, str]:
    return {k: v for k, v in settings.items() if k not in keys}


def _best(rows: list[TableRow], keys: list[str]) -> TableRow:
    """The row with the best seed-mean selection metric; rows choosing on different metrics (a
    key that changes the task) have no best."""
    ran = [row for row in rows if row.finished]
    if not ran:
        return rows[0]
    if len(metrics := sorted({row.selection_metric for row in ran})) > 1:
        raise LayerftError(
            f"--best-of {' '.join(keys)}: the rows of {label(ran[0].settings, keys)} and "
            f"{label(ran[1].settings, keys)} choose on different metrics ({', '.join(metrics)}): "
            "name settings that leave the task as it is"
        )
    return max(ran, key=_score)  # max keeps the first of equals


def _score(row: TableRow) -> float:
    """The seed-mean selection metric, higher better; a non-finite one (a record layerft did not
    write) is never chosen over a finite one."""
    values = list(row.values(row.selection_metric).values())
    mean = float(np.mean(values)) if values else float("nan")
    return (mean if row.higher_is_better else -mean) if np.isfinite(mean) else float("-inf")


def _candidates(rows: list[TableRow], keys: list[str]) -> str:
    """`key=value: mean (n)` of each row of a group (`failed` for one without a result)."""
    cells = []
    for row in rows:
        values = list(row.values(row.selection_metric).values()) if row.finished else []
        score = f"{np.mean(values):.4f} ({len(values)})" if values else "failed"
        cells.append(f"{','.join(setting(row.settings, k) for k in keys)}: {score}")
    return "; ".join(cells)


def best_writers(table: Table, keys: list[str]) -> dict[str, Callable[[Path], object]]:
    """best.csv and best.md by name, each a writer of its path."""
    markdown = render_best(table, keys)
    return {
        "best.csv": lambda p: p.write_text(csv_text(table.columns, table.rows), encoding="utf-8"),
        "best.md": lambda p: p.write_text(markdown, encoding="utf-8"),
    }


def render_best(table: Table, keys: list[str]) -> str:
    """best.md: what was chosen and how, the table, and the other scores' differences."""
    names = ", ".join(f"`{k}`" for k in keys)
    spec = ", ".join(f"{k}={v}" for k, v in table.spec.items())
    lines = [
        f"# Best of {', '.join(keys)}",
        "",
        f"Each row is one combination of the other settings at the value of {names} with the "
        f"best mean `{table.selection}` over its seeds (`{CANDIDATES}`: each value's mean and "
        "seeds; a tie goes to the first listed). The value was chosen on these same dev scores, "
        "so a row's score overstates what that setting would score on new data (more, the more "
        "values it was chosen from); an extra dev set (`extra_eval_splits`, a test split say) "
        "in the columns was not used to choose.",
        f"vs baseline: this row minus the best row of the same settings but {spec}, paired by "
        "seed as in results.md."
        if table.spec
        else f"vs baseline: no baseline (every `--baseline` setting is one of {names}).",
    ]
    if any(row.get(k) == MISSING for row in table.rows for k in keys):
        lines.append(f"`{MISSING}` in {names}: the value its options give.")
    lines += table_lines(table)
    lines += ["", md_line(["row", CANDIDATES]), "|---|---|"]
    lines += [
        md_line([label(combo.settings, table.varied), row[CANDIDATES]])
        for combo, row in zip(table.combos, table.rows, strict=True)
    ]
    lines += other_scores_lines(table)
    return "\n".join(lines) + "\n"
