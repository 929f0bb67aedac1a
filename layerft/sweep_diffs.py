"""results.md's paired differences from the baseline: a cell as `mean [interval] (n)`, and the
table of each row's differences on the scores besides the selection metric (STS's F1 beside its
Pearson r, NER's entity F1 beside its character F1).

Serves no config group: `layerft/sweep_report.py` writes these lines into results.md.
"""

from __future__ import annotations

from typing import Any

from layerft.sweep_table import Table

DIFF_CELLS = ("diff_mean", "diff_ci_low", "diff_ci_high", "diff_n", "verdict")  # Comparison.cells


def other_scores_lines(table: Table) -> list[str]:
    """A second table: per row, its paired difference from its baseline row on each other score
    both report (`<score>_diff_mean`... in results.csv); none when no row has one."""
    scores = [k for k in table.metrics if f"{k}_verdict" in table.columns]
    scores = [k for k in scores if any(row[f"{k}_diff_mean"] is not None for row in table.rows)]
    if not scores:
        return []
    names = table.varied or ["combination"]
    lines = [
        "",
        "## vs baseline on the other scores",
        "",
        "Each row minus its baseline row on the other scores, paired by seed as the selection "
        "metric's above (a 95% paired t interval and a verdict per score; scores are not "
        "independent, and no correction is made for the scores or rows compared).",
        "",
        md_line([*names, *scores]),
        "|" + "---|" * (len(names) + len(scores)),
    ]
    for row in table.rows:
        cells = [row.get(k, "all") for k in names]
        for key in scores:
            diff = format_diff({k: row[f"{key}_{k}"] for k in DIFF_CELLS})
            verdict = row[f"{key}_verdict"]
            cells.append(verdict if diff == "-" else f"{diff} {verdict}")
        lines.append(md_line(cells))
    return lines


def md_line(cells: list[Any]) -> str:
    """A markdown table line, a `|` in a cell escaped."""
    return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"


def format_diff(row: dict[str, Any]) -> str:
    """A row's paired difference from its baseline as results.md shows it: mean [interval] (n)."""
    if row["diff_mean"] is None:
        return "-"
    values = [row["diff_mean"]]
    if row["diff_ci_low"] is not None:
        values += [row["diff_ci_low"], row["diff_ci_high"]]
    # Significant digits where 4 decimals would show a nonzero difference as ±0.0000: a verdict
    # of "better" beside +0.0000 [+0.0000, +0.0000] hid what it was about.
    mean, *interval = [f"{v:+.2g}" if 0 < abs(v) < 5e-5 else f"{v:+.4f}" for v in values]
    text = f"{mean} [{interval[0]}, {interval[1]}]" if interval else mean
    return f"{text} ({row['diff_n']})"
