"""A sweep's results as one table: every job under a folder, seeds folded into combinations,
`results.csv`, `results.md` and the plots (`layerft/plots.py`, `plots_heatmap.py`).

Serves no config group: `sweep.py` and benchmarks call `aggregate()`. It reads only what each run
writes (`metrics.json`, `failed.json`, `history.jsonl`), never a tracker; `.hydra/` only to tell
a started job (its folder), to pair a row with its baseline and to migrate an older record's
fingerprints (the composed config: `sweep_baseline.py`, `record_migration.py`).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from layerft import plots
from layerft.errors import LayerftError
from layerft.file_io import write_all_atomic
from layerft.plot_rows import plot_row
from layerft.plots_common import natural_key
from layerft.plots_heatmap import heatmap_axes
from layerft.run_record import older_results
from layerft.sweep_baseline import baselines, check_baseline
from layerft.sweep_best import BEST_FILES, best_table, render_best
from layerft.sweep_job import Job, changed_files
from layerft.sweep_records import holds_record, read_sweep, unfinished_dirs
from layerft.sweep_report import SweepFolder, csv_text, older_versions, render_markdown
from layerft.sweep_table import (
    Failure,
    Table,
    build_table,
    check_settings,
    combine,
    label,
    setting,
    varied_settings,
)

log = logging.getLogger(__name__)

OUTPUTS = ("results.csv", "results.md", "failures.csv", *BEST_FILES, *plots.FIGURES)
# The job folders of the grid's combinations the folder's last sweep did not run (sweep.py aggregate)
NOT_RUN_FILE = ".not_run.json"


class NothingToTable(LayerftError):
    """Every result in the folder is on data changed since: no table (earlier ones removed)."""


@dataclass
class Aggregate:
    """What `aggregate` wrote: the csv's rows and columns, the failed jobs, the files."""

    rows: list[dict[str, Any]]
    columns: list[str]
    varied: list[str]  # the settings that differ across rows (the first columns)
    failures: list[Failure]
    paths: list[Path]
    markdown: str  # results.md
    unfinished: list[Path]  # job folders with no readable record: killed, running, damaged (no row)
    baseline: dict[str, str]  # each row's baseline: its settings with these replaced
    heatmap: tuple[str, str] | None  # the heatmap's two settings, if one could be drawn
    not_run: list[str]  # job folders of the grid's combinations not run (listed in results.md)
    best_of: list[str]  # the settings best.csv chose over (none: no best.csv)
    best: Table | None  # best.csv's table
    # The folders of the jobs it tabled or listed (on changed data, replaced), at any depth
    job_dirs: list[Path]


def aggregate(
    sweep_dir: Path,
    baseline: dict[str, str] | None = None,
    heatmap: tuple[str, str] | None = None,
    extra_metrics: Sequence[str] = (),
    not_run: Sequence[str] | None = None,
    best_of: Sequence[str] = (),
) -> Aggregate:
    """Fold the jobs under `sweep_dir` into one row per combination; write the tables and plots.

    `baseline` replaces settings to name each row's baseline (default: injection_task=none);
    `heatmap` names its two settings; `extra_metrics` are metrics.json keys to summarise too;
    `not_run` names the job folders of the grid's combinations a sweep did not run (results.md
    lists and counts those whose folder holds no record and is not listed as unfinished); None:
    those the folder's last sweep named (NOT_RUN_FILE), as `sweep.py aggregate` does;
    `best_of` names the settings best.csv and best.md choose each row's best value of.
    """
    started = time.time()
    planned = _last_not_run(sweep_dir) if not_run is None else list(not_run)
    folder = _read_folder(sweep_dir, planned, started)
    jobs = folder.jobs
    combos = combine(jobs)
    varied = varied_settings(combos)
    combos.sort(key=lambda c: [natural_key(setting(c.settings, k)) for k in varied])
    spec = check_baseline(baseline, jobs)
    table = build_table(combos, varied, spec, baselines(combos, spec), list(extra_metrics))
    plot_rows = [plot_row(c, varied, b) for c, b in zip(combos, table.is_baseline, strict=True)]
    check_settings("--heatmap", heatmap or (), combos)  # sweep.py aggregate's: no plan checked it
    axes = heatmap_axes(plot_rows, varied, heatmap)  # a wrong name fails before any write
    failures = [
        Failure(job.run_dir, label(c.settings, varied), job.seed, job.error or "")
        for c in combos
        for job in c.failed
    ]
    best_of = list(dict.fromkeys(best_of))
    best = best_table(combos, varied, spec, best_of, list(extra_metrics)) if best_of else None
    markdown = render_markdown(folder, table, failures)
    written = _table_writers(table, markdown, failures)
    if best is not None:
        written |= _table_writers(best, render_best(best, best_of), [], BEST_FILES)
    metric = table.selection if table.uniform else "selection metric (per row)"
    for name, figure in plots.draw(plot_rows, varied, metric, axes).items():
        written[name] = lambda p, fig=figure: fig.savefig(p, format="png", dpi=120)
    remove_outputs(sweep_dir, started, keep=tuple(written))
    paths = [sweep_dir / name for name in written]
    own = {sweep_dir / NOT_RUN_FILE: lambda p: p.write_text(json.dumps({"not_run": planned}))}
    write_all_atomic({**{path: written[path.name] for path in paths}, **own})
    log.info("sweep results: %s", ", ".join(str(p) for p in paths))
    return Aggregate(
        table.rows, table.columns, varied, failures, paths, markdown, folder.unfinished,
        table.spec, axes, folder.not_run, best_of, best, folder.job_dirs(),
    )  # fmt: skip


def _read_folder(sweep_dir: Path, planned: list[str], started: float) -> SweepFolder:
    """The folder's jobs by fate, with one warning per kind the table leaves out or notes; no
    tabled job (every result on data changed since, or none readable) is NothingToTable, and
    removes an earlier aggregation's files."""
    duplicates: list[Job] = []
    jobs, damaged = read_sweep(sweep_dir, duplicates)
    on_other_data = [job for job in jobs if job.changed]
    replaced = [job for job in jobs if job.replaced_by is not None]
    jobs = [job for job in jobs if not job.changed and job.replaced_by is None]
    unfinished = unfinished_dirs(sweep_dir, damaged)
    not_run = _without_record(sweep_dir, planned, unfinished)
    _warn_left_out(unfinished, on_other_data, older_versions(jobs))
    if not jobs:
        remove_outputs(sweep_dir, started, keep=())
        changed = "every one is on a data file (or a model file, or a hub snapshot) changed since"
        why = f"{changed} (sweep.py --force reruns them)" if on_other_data else "none is readable"
        raise NothingToTable(f"no result to table in {sweep_dir}: {why}")
    return SweepFolder(sweep_dir, jobs, unfinished, on_other_data, replaced, not_run, duplicates)


def _without_record(sweep_dir: Path, names: list[str], unfinished: list[Path]) -> list[str]:
    """The job folders of `names` with no record that no killed job left (unfinished); one with a
    record (a forced rerun that never finished, a blocked folder) is counted there: each once."""
    return [
        name
        for name in names
        if sweep_dir / name not in unfinished and not holds_record(sweep_dir / name)
    ]


def _last_not_run(sweep_dir: Path) -> list[str]:
    """The job folders the folder's last sweep.py launch did not run (none if it names none)."""
    path = sweep_dir / NOT_RUN_FILE
    try:
        names = json.loads(path.read_text(encoding="utf-8"))["not_run"]
        if not (isinstance(names, list) and all(isinstance(name, str) for name in names)):
            raise ValueError("no list of folder names")
    except FileNotFoundError:
        return []
    except (OSError, ValueError, KeyError, TypeError) as err:
        log.warning("%s is unreadable (%s): results.md lists no combination as not run", path, err)
        return []
    return names


def _warn_left_out(unfinished: list[Path], on_other_data: list[Job], older: list[int]) -> None:
    """One warning per kind of job the table leaves out or notes: unfinished, on changed data,
    computed by an older layerft (`older`: their results versions)."""
    if unfinished:
        log.warning(
            "%d job folder(s) with no readable result (killed, still running, or its record "
            "damaged), left out of the table: %s",
            len(unfinished),
            ", ".join(str(path) for path in unfinished),
        )
    if on_other_data:
        log.warning(
            "%d result(s) on %s changed since, left out of the table (sweep.py --force reruns "
            "them): %s",
            len(on_other_data),
            changed_files(on_other_data, files=True),
            ", ".join(f"{job.run_dir} ({', '.join(job.changed)})" for job in on_other_data),
        )
    if older:
        log.warning(
            "%d result(s) computed by an older layerft (%s), tabled with a note; sweep.py --force "
            "reruns them",
            len(older),
            older_results(min(older)),
        )


def _table_writers(
    table: Table,
    markdown: str,
    failures: list[Failure],
    names: tuple[str, str] = ("results.csv", "results.md"),
) -> dict[str, Callable[[Path], Any]]:
    """The table files by name, each a writer of its path: results.csv and results.md (or
    best.csv and best.md: `names`) and, with failures, failures.csv."""
    written: dict[str, Callable[[Path], Any]] = {
        names[0]: lambda p: p.write_text(csv_text(table.columns, table.rows), encoding="utf-8"),
        names[1]: lambda p: p.write_text(markdown, encoding="utf-8"),
    }
    if failures:
        rows = [
            {"run_dir": str(f.run_dir), "settings": f.settings, "seed": f.seed, "error": f.error}
            for f in failures
        ]
        written["failures.csv"] = lambda p: p.write_text(
            csv_text(list(rows[0]), rows), encoding="utf-8"
        )
    return written


def remove_outputs(sweep_dir: Path, started: float, keep: tuple[str, ...]) -> None:
    """Remove an earlier aggregation's files that this one does not write (they would disagree
    with its table), and the temporary files of one killed mid-write."""
    for name in OUTPUTS:
        if name not in keep and (sweep_dir / name).exists():
            (sweep_dir / name).unlink()
        for leftover in sweep_dir.glob(f".{name}.*.tmp"):
            if leftover.stat().st_mtime < started:
                leftover.unlink(missing_ok=True)
