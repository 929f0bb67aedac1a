"""`--best-of key ...`: best.csv and best.md, each row of the table at its best value of those
settings (the adapter study's every tuning mode at its own best learning rate), chosen by the
seed-mean selection metric, and compared with its baseline row's best the same way.

Serves no config group: `layerft/aggregate.py` writes these beside results.csv; the rows, the
baseline pairing and the cells are results.csv's own (`layerft/sweep_table.py`).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from layerft.errors import LayerftError
from layerft.sweep_baseline import ComposedConfigs, baselines
from layerft.sweep_diffs import md_line, other_scores_lines, shared_settings_lines, spec_text
from layerft.sweep_job import SettingsKey, settings_key
from layerft.sweep_report import COST_NOTES, table_lines
from layerft.sweep_table import (
    MISSING,
    Table,
    TableRow,
    applies,
    build_table,
    check_settings,
    label,
    setting,
)

BEST_FILES = ("best.csv", "best.md")
CANDIDATES = "candidates"  # best.csv's column: each value tried, its mean, seeds and failures


def best_table(
    combos: list[TableRow],
    varied: list[str],
    spec: dict[str, str],
    keys: list[str],
    extra: list[str],
) -> Table:
    """One row per combination of the settings other than `keys`: its row with the best mean
    selection metric over the values of `keys` it ran (on a tie, `_best`'s; one without a
    finished job only where none has one), beside its baseline row's best (`spec`,
    without `keys`: the baseline is another row's best, not a value of theirs)."""
    if "seed" in keys:
        raise LayerftError("--best-of seed: a row folds its seeds")
    check_settings("--best-of", keys, combos)
    groups = _groups(combos, keys)
    # Each best row under its group's settings (a row serving several groups, in each of them)
    bests = [_best(rows, keys) for _, rows in groups]
    chosen = [
        replace(best, settings={**own, **{k: v for k, v in best.settings.items() if k in keys}})
        for (own, _), (best, _) in zip(groups, bests, strict=True)
    ]
    # Paired as results.csv pairs rows, on the settings without `keys`
    bare = [replace(c, settings=_without(c.settings, keys)) for c in chosen]
    by_bare = {id(b): c for b, c in zip(bare, chosen, strict=True)}
    rest = {k: v for k, v in spec.items() if k not in keys}
    # No setting left to replace: each row would be its own baseline ("baseline of no row"),
    # where best.md says there is none
    paired = baselines(bare, rest) if rest else [None] * len(bare)
    bases = [by_bare[id(b)] if b is not None else None for b in paired]
    columns = [k for k in varied if k not in keys] + [k for k in keys if k in varied]
    table = build_table(chosen, columns, rest, bases, extra)
    for row, (_, rows), (_, tied) in zip(table.rows, groups, bests, strict=True):
        row[CANDIDATES] = _candidates(rows, keys)
        if len(tied) > 1:  # said beside the row's other notes
            tie = "tie: " + " vs ".join(
                ",".join(setting(r.settings, k) for k in keys) for r in tied
            )
            row["notes"] = "; ".join(note for note in (tie, row["notes"]) if note)
    return replace(table, columns=[*table.columns, CANDIDATES])


def _groups(combos: list[TableRow], keys: list[str]) -> list[tuple[dict[str, str], list[TableRow]]]:
    """The rows by their settings other than `keys` (each group's, and its rows in table order).
    Two sets of those that
    differ only where one leaves a setting at the value the other spells out, as the job
    folders' configs say, are one group (a grid extended later: `target_task.lr=5e-5` beside a
    row that left the task's own 5e-5), as `sweep_baseline.at_same_values` pairs such rows."""
    exact: dict[SettingsKey, list[TableRow]] = {}
    for combo in combos:
        exact.setdefault(settings_key(_without(combo.settings, keys)), []).append(combo)
    configs = ComposedConfigs()
    groups: list[list[TableRow]] = []
    for group in exact.values():
        into = next((g for g in groups if _same_values(g, group, keys, configs)), None)
        if into is not None:
            into.extend(group)
        else:
            groups.append(group)
    groups = _with_serving_rows(groups, keys)  # each group's own rows first
    order = {id(combo): n for n, combo in enumerate(combos)}
    return [
        (_without(group[0].settings, keys), sorted(group, key=lambda c: order[id(c)]))
        for group in groups
    ]


def _with_serving_rows(groups: list[list[TableRow]], keys: list[str]) -> list[list[TableRow]]:
    """A group whose runs never read a setting other groups have (`injection_task=none` under
    `layer_split`, `--best-of injection_task`) is a candidate of each of those groups it agrees
    with elsewhere, as its one run serves every value of that setting, not a group of its own."""
    kept = []
    for group in groups:
        mine = _without(group[0].settings, keys)
        served = [
            other
            for other in groups
            if (theirs := _without(other[0].settings, keys)).keys() > mine.keys()
            and all(theirs[k] == v for k, v in mine.items())
            and not any(applies(group[0], k) for k in theirs.keys() - mine.keys())
        ]
        for other in served:
            other.extend(group)
        if not served:
            kept.append(group)
    return kept


def _same_values(
    one: list[TableRow], other: list[TableRow], keys: list[str], configs: ComposedConfigs
) -> bool:
    """Whether two groups' settings (but `keys`) differ only in ones that one group leaves unset
    where they apply to it (not `layer_split` under injection_task=none: no value of its options)
    and its jobs' configs hold at the other's value."""
    mine, theirs = _without(one[0].settings, keys), _without(other[0].settings, keys)
    if any(theirs[k] != v for k, v in mine.items() if k in theirs):
        return False
    only_mine = {k: v for k, v in mine.items() if k not in theirs}
    only_theirs = {k: v for k, v in theirs.items() if k not in mine}
    if not all(applies(other[0], k) for k in only_mine) or not all(
        applies(one[0], k) for k in only_theirs
    ):
        return False
    jobs = [[job for row in group for job in row.finished + row.failed] for group in (one, other)]
    return configs.hold(jobs[1], only_mine) and configs.hold(jobs[0], only_theirs)


def _without(settings: dict[str, str], keys: list[str]) -> dict[str, str]:
    return {k: v for k, v in settings.items() if k not in keys}


def _best(rows: list[TableRow], keys: list[str]) -> tuple[TableRow, list[TableRow]]:
    """The row with the best seed-mean selection metric, and the rows tied at it (one: no tie).
    On a tie the row leaving the most of `keys` unset (`-`: its options' own value, the one a
    user changes from) wins, then the first in table order; rows choosing on different metrics (a
    key that changes the task) have no best."""
    ran = [row for row in rows if row.finished]
    if not ran:
        return rows[0], [rows[0]]
    first = ran[0].selection_metric
    other = next((row for row in ran if row.selection_metric != first), None)
    if other is not None:  # named by two rows that differ in it (the second may share the first's)
        raise LayerftError(
            f"--best-of {' '.join(keys)}: the rows of {label(ran[0].settings, keys)} and "
            f"{label(other.settings, keys)} choose on different metrics ({first}, "
            f"{other.selection_metric}): name settings that leave the task as it is"
        )
    best = max(_score(row) for row in ran)
    tied = [row for row in ran if _score(row) == best] if np.isfinite(best) else ran[:1]
    unset = [sum(setting(row.settings, k) == MISSING for k in keys) for row in tied]
    return tied[unset.index(max(unset))], tied  # index: the first of equals


def _score(row: TableRow) -> float:
    """The seed-mean selection metric, higher better; a non-finite one (a record layerft did not
    write) is never chosen over a finite one."""
    values = list(row.values(row.selection_metric).values())
    mean = float(np.mean(values)) if values else float("nan")
    return (mean if row.higher_is_better else -mean) if np.isfinite(mean) else float("-inf")


def _candidates(rows: list[TableRow], keys: list[str]) -> str:
    """`value: mean (n)` of each row of a group, `(n, k failed)` where seeds failed (a mean over
    the few that finished is a lucky draw's more often), `failed` for one without a result."""
    cells = []
    for row in rows:
        values = list(row.values(row.selection_metric).values()) if row.finished else []
        failed = f", {row.failed_count()} failed" if row.failed_count() else ""
        score = f"{np.mean(values):.4f} ({len(values)}{failed})" if values else "failed"
        cells.append(f"{','.join(setting(row.settings, k) for k in keys)}: {score}")
    return "; ".join(cells)


def render_best(table: Table, keys: list[str]) -> str:
    """best.md: what was chosen and how, the table, and the other scores' differences."""
    names = ", ".join(f"`{k}`" for k in keys)
    spec = spec_text(table.spec)
    # Rows of several tasks each choose on their own metric (the table's `selection_metric`)
    metric = f"`{table.selection}`" if table.uniform else "of its own selection metric"
    better = {True: "; higher is better", False: "; lower is better", None: ""}[
        table.higher_is_better
    ]
    lines = [
        f"# Best of {', '.join(keys)}",
        "",
        f"Each row is one combination of the other settings at the value of {names} with the "
        f"best mean {metric} over its seeds (`{CANDIDATES}`: each value's mean, seeds and "
        "failed seeds). On a tie, `tie:` in its notes names the values tied, and the row is the "
        f"one leaving most of {names} unset (`{MISSING}`: its options' own value), else the first "
        "listed. The value was chosen on these same dev scores, so a row's score overstates what "
        "that setting would score on new data (more, the more values it was chosen from); an "
        "extra dev set (`extra_eval_splits`, a test split say) in the columns was not used to "
        "choose.",
        f"vs baseline: this row minus the best row of the same settings but {spec}, paired by "
        "seed as in results.md."
        if table.spec
        else "vs baseline: no baseline (each setting of the baseline, `--baseline`'s or the "
        f"default injection_task=none, is one of {names}).",
        f"A cell is mean ± sample std (n seeds; ddof=1){better}.",
        *COST_NOTES,
        *shared_settings_lines(table),
    ]
    # `-` in a key's column: table_lines says what it means (unset, or a setting that does not
    # apply: `layer_split` under injection_task=none has no value of its options)
    lines += table_lines(table)
    lines += ["", md_line(["row", CANDIDATES]), "|---|---|"]
    lines += [
        md_line([label(combo.settings, table.varied), row[CANDIDATES]])
        for combo, row in zip(table.combos, table.rows, strict=True)
    ]
    lines += other_scores_lines(table)
    return "\n".join(lines) + "\n"
