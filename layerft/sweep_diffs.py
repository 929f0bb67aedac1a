"""results.md's cells and counts: a summary as `mean ± std (n)`, a paired difference from the
baseline as `mean [interval] (n)`, the table of each row's differences on the scores besides the
selection metric (STS's F1 beside its Pearson r, NER's entity F1 beside its character F1), the
baseline's settings, the settings every job shares, and a count of things (`1 combination`).

Serves no config group: `layerft/sweep_report.py` and `layerft/sweep_best.py` write these into
results.md and best.md, `layerft/sweep_summary.py` counts with `counted`.
"""

from __future__ import annotations

from typing import Any

from layerft.sweep_table import MISSING, Table

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


def shared_settings_lines(table: Table) -> list[str]:
    """The settings every job of the table shares (where they apply), one line each."""
    lines = []
    if table.constant:
        lines.append(
            "Same in every job: " + ", ".join(f"`{k}={v}`" for k, v in table.constant.items())
        )
    if table.applying:
        lines.append(
            "Same in every job where it applies: "
            + ", ".join(f"`{k}={v}`" for k, v in table.applying.items())
        )
    return lines


def md_summary(row: dict[str, Any], name: str) -> str:
    """A row's summary of metric `name` as results.md shows it: mean ± std (n)."""
    mean, std, n = row[f"{name}_mean"], row[f"{name}_std"], row[f"{name}_n"]
    if not n:
        return "-"
    digits = 1 if abs(mean) >= 100 else 4  # run times and memory in MiB; scores in [0, 1]
    # A spread 4 decimals would show as ± 0.0000 in significant digits (as format_diff does)
    spread = None if std is None else f"{std:.{digits}f}"
    spread = f"{std:.2g}" if std and 0 < std < 0.5 * 10**-digits else spread
    text = f"{mean:.{digits}f}" + ("" if spread is None else f" ± {spread}")
    return f"{text} ({n})"


def spec_text(spec: dict[str, str]) -> str:
    """The settings a row's baseline replaces, `key=value` each; `-` (the value of a row that
    leaves the key unset, as `--baseline` names the options' own value) said in words there."""
    unset = " (not set: its options' value)"
    return ", ".join(f"{k}={v}" + (unset if v == MISSING else "") for k, v in spec.items())


def counted(n: int, noun: str, plural: str | None = None) -> str:
    """`1 job`, `2 jobs`: a count with its noun in the number it takes."""
    return f"{n} {noun if n == 1 else plural or noun + 's'}"
