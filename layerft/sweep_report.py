"""The text of a sweep's table files: `results.md` (mean ± std (n) cells, the failed jobs) and CSV.

Serves no config group: `layerft/aggregate.py` writes these texts (atomically, as one set:
`file_io.write_all_atomic`).
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from layerft.file_settings import file_settings_lines
from layerft.run_record import older_results
from layerft.sweep_diffs import (
    counted,
    format_diff,
    md_line,
    md_summary,
    other_scores_lines,
    shared_settings_lines,
    spec_text,
)
from layerft.sweep_job import Job, changed_files
from layerft.sweep_stats import MIN_PAIRS
from layerft.sweep_table import MISSING, Failure, Table, label


@dataclass(frozen=True)
class SweepFolder:
    """What a sweep folder holds: the jobs tabled (finished and failed), the job folders with no
    readable record (`unfinished`), the results on data changed since, those another config's
    record replaced and a tabled run's other records (all left out), and the grid's combinations
    not run (their job folders)."""

    path: Path
    jobs: list[Job]
    unfinished: list[Path]
    on_other_data: list[Job]
    replaced: list[Job]
    not_run: list[str]
    duplicates: list[Job] = field(default_factory=list)  # another record of a tabled run's

    def job_dirs(self) -> list[Path]:
        """The folders of the jobs tabled or listed: finished, failed, on changed data, replaced."""
        return sorted({job.run_dir for job in (*self.jobs, *self.on_other_data, *self.replaced)})


# How to read a row's costs and scores (results.md, best.md)
COST_NOTES = (
    "runtime: stage 1 + stage 2 training seconds (a reused stage 1 counts its original time).",
    "Scores: each stage's dev set (`validation`) at its best dev checkpoint (each metric of a "
    "stage from that one checkpoint), so a row's selection metric is the best of its dev "
    "evaluations, not a held-out estimate. trainable params: stage 2's, mean over seeds; "
    "share: of stage 2's parameters.",
)


def render_markdown(folder: SweepFolder, table: Table, failures: list[Failure]) -> str:
    """results.md: what was aggregated, the table (mean ± std (n)), then the failed jobs, the
    unfinished ones, the results on data changed since, those another config's record replaced
    and the grid's combinations not run."""
    # The title, the job counts, how to read the cells, and the settings every job shares.
    better = "higher" if table.higher_is_better else "lower"
    spec = spec_text(table.spec)
    total, counts = _job_counts(folder, failures)
    lines = [
        f"# Sweep results: {folder.path}",
        "",
        f"{counted(total, 'job')} ({counts}) in {counted(len(table.rows), 'combination')}; a cell "
        "is mean ± sample std (n seeds; ddof=1).",
        f"Selection metric: `{table.selection}` ({better} is better)."
        if table.uniform
        else "Selection metric: each row's own (column `selection metric`).",
        f"vs baseline: this row minus its baseline (same settings but {spec}) on the selection "
        f"metric, paired by seed, with a 95% paired t interval; a verdict needs {MIN_PAIRS} pairs "
        "that differ by seed, and each row's is its own (no correction for the rows compared).",
        *COST_NOTES,
    ]
    if older := older_versions(folder.jobs):
        lines.append(
            f"{counted(len(older), 'result')} by an older layerft ({older_results(min(older))}): "
            "in the table, `older layerft` in their rows' notes; `sweep.py --force` reruns them."
        )
    if folder.duplicates:  # a sweep folder copied into the one aggregated, say
        lines.append(
            f"{counted(len(folder.duplicates), 'record')} of a run another record in the table "
            "also holds, left out (the newer counts): "
            + ", ".join(_relative(job.run_dir, folder.path) for job in folder.duplicates)
        )
    lines += shared_settings_lines(table)
    lines += file_settings_lines([job for combo in table.combos for job in combo.finished])
    lines += table_lines(table)
    lines += other_scores_lines(table)
    lines += _left_out_lines(folder, table, failures)
    # A sweep stopped early (a blocked folder holds a record): rows leave these out
    if folder.not_run:
        lines += ["", "## Not run (in the grid, no result)", ""]
        lines.append(
            "Combinations of the grid this sweep did not run (it stopped early), in no row of "
            "the table:"
        )
        lines += [f"- {name}" for name in folder.not_run]
    return "\n".join(lines) + "\n"


def _job_counts(folder: SweepFolder, failures: list[Failure]) -> tuple[int, str]:
    """How many jobs results.md is about, and their counts by fate, each job counted once (a
    failure in a folder that keeps a result is a later attempt, not a job of its own)."""
    jobs, unfinished, not_run = folder.jobs, folder.unfinished, folder.not_run
    on_other_data, replaced = folder.on_other_data, folder.replaced
    later = sum(job.later_attempt for job in jobs)
    counts = f"{len(jobs) - len(failures)} finished, {len(failures) - later} failed"
    counts += f", {len(unfinished)} unfinished" if unfinished else ""
    counts += f", {len(not_run)} not run" if not_run else ""
    counts += (
        f", {len(on_other_data)} on changed {changed_files(on_other_data)}" if on_other_data else ""
    )
    counts += f", {len(replaced)} replaced by another config's" if replaced else ""
    kept = "its earlier result" if later == 1 else "their earlier results"
    counts += f"; {counted(later, 'later attempt')} failed, {kept} kept" if later else ""
    total = len(jobs) - later + len(unfinished) + len(on_other_data) + len(replaced) + len(not_run)
    return total, counts


def table_lines(table: Table) -> list[str]:
    """The table itself: a note on unset settings where a row has one, then header and rows."""
    lines: list[str] = []
    names = table.varied or ["combination"]
    if any(row.get(k) == MISSING for row in table.rows for k in names):
        lines.append(
            f"`{MISSING}` in a setting column: not set on that row's command lines, so the value "
            "its options give (or the setting does not apply to it)."
        )
    header = [*names, *(["selection metric"] if not table.uniform else [])]
    header += [table.selection, "vs baseline", "verdict", *table.metrics]
    header += ["runtime (s)", "trainable params", "share", "seeds", "failed"]
    noted = any(row["notes"] for row in table.rows)  # no empty column in a table without notes
    header += ["notes"] if noted else []
    lines += ["", md_line(header), "|" + "---|" * len(header)]
    for row in table.rows:
        cells = [row.get(k, "all") for k in names]
        cells += [row["selection_metric"]] if not table.uniform else []
        cells += [md_summary(row, table.selection), format_diff(row), row["verdict"]]
        cells += [md_summary(row, key) for key in table.metrics]
        cells += [
            "-" if row["runtime_s"] is None else f"{row['runtime_s']:.1f}",
            "-" if row["trainable_params"] is None else f"{row['trainable_params']:,}",
            "-" if row["trainable_share"] is None else f"{100 * row['trainable_share']:.2f}%",
            row["seeds"] or "-",
            str(row["failed"]),
            *([row["notes"]] if noted else []),
        ]
        lines.append(md_line(cells))
    return lines


def _left_out_lines(folder: SweepFolder, table: Table, failures: list[Failure]) -> list[str]:
    """The jobs in no row: failed, unfinished, finished on changed data, replaced."""
    sweep_dir, unfinished = folder.path, folder.unfinished
    on_other_data, replaced = folder.on_other_data, folder.replaced
    lines = ["", "## Failures", ""]
    if not failures:
        lines.append("No job failed.")
    else:
        lines += [md_line(["job", "settings", "seed", "error"]), "|---|---|---|---|"]
        for failure in failures:
            job = _relative(failure.run_dir, sweep_dir)
            lines.append(md_line([job, failure.settings, str(failure.seed), failure.error]))
    if unfinished:
        lines += ["", "## Unfinished (killed, still running, or its record unreadable)", ""]
        lines.append(
            "Job folders with no readable metrics.json or failed.json, in no row of the table:"
        )
        lines += [f"- {_relative(path, sweep_dir)}" for path in unfinished]
    if on_other_data:
        what = changed_files(on_other_data)
        lines += ["", f"## On changed {what} (left out of the table)", ""]
        # A hub data set or model is no file at a path: its change is the cache's commit
        hub = any(_HUB_SNAPSHOT.search(change) for job in on_other_data for change in job.changed)
        lines.append(
            f"Finished on {_A_FILE.get(what, 'a data or model file')} that holds other bytes now "
            "(sha256 of the file at the path the job read)"
            + (", or a hub snapshot the Hugging Face cache no longer serves" if hub else "")
            + "; `sweep.py --force` reruns them:"
        )
        header = ["job", "settings", "seed", "changed", "later attempt"]
        lines += [md_line(header), "|---|---|---|---|---|"]
        for job in on_other_data:
            cells = [_relative(job.run_dir, sweep_dir), _own_label(job, table), str(job.seed)]
            lines.append(md_line([*cells, ", ".join(job.changed), job.later_error or "-"]))
    if replaced:
        lines += ["", "## Replaced by another config (left out of the table)", ""]
        lines.append(
            "The same settings and seed as a job in the table, but another config (a default "
            "changed between them); the table keeps the finished one, then the newer:"
        )
        lines += [md_line(["job", "settings", "seed", "kept instead"]), "|---|---|---|---|"]
        for job in replaced:
            assert job.replaced_by is not None
            cells = [_relative(job.run_dir, sweep_dir), _own_label(job, table), str(job.seed)]
            lines.append(md_line([*cells, _relative(job.replaced_by, sweep_dir)]))
    return lines


_A_FILE = {"data": "a data file", "model files": "a model file"}  # by changed_files
# How data_changes.changed_hub_data and model_files.changed_snapshot name a moved hub snapshot
_HUB_SNAPSHOT = re.compile(r"@\S+ \(commit [0-9a-f]+ then, [0-9a-f]+ now\)$")


def older_versions(jobs: list[Job]) -> list[int]:
    """The results versions of the finished jobs an older layerft computed, one per job."""
    return [job.results_version for job in jobs if job.error is None and job.older]


def _own_label(job: Job, table: Table) -> str:
    """A job outside the table by the varied settings and those it does not share with the table's
    jobs (a setting only results on changed data used is varied in no row)."""
    shared = table.constant | table.applying
    own = [k for k, v in job.settings.items() if k not in table.varied and shared.get(k) != v]
    return label(job.settings, [*table.varied, *own])


def _relative(path: Path, sweep_dir: Path) -> str:
    return str(path.relative_to(sweep_dir)) if path != sweep_dir else "."


def csv_text(columns: list[str], rows: list[dict[str, Any]]) -> str:
    """CSV with a header; None is an empty cell."""
    out = io.StringIO()
    writer = csv.DictWriter(out, columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()
