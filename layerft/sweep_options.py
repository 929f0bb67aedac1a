"""A sweep folder's tables (`aggregate_dir`, and `tabled` after a sweep), and their options,
`--baseline key=value ...`, `--heatmap a b` and `--best-of key ...`, checked against the grid
before a job runs: a typo, or a Hydra override written after `--baseline` (which takes every
`key=value` after it), would be found only once the whole grid had trained. One the plan cannot
judge (a group's default choice is no override) and the tables refuse still leaves tables, with
the defaults.

Serves the `sweep` config group's runs: `layerft/sweep.py` calls these; `layerft/aggregate.py`
checks the options again on the records it tables.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from layerft.config import GROUP_OF_KEY
from layerft.errors import LayerftError
from layerft.sweep_grid import Combination
from layerft.sweep_records import record_dirs
from layerft.sweep_settings import job_settings, setting_value
from layerft.sweep_table import MISSING
from layerft.sweep_tracker import log_results_table

if TYPE_CHECKING:
    from layerft.aggregate import Aggregate

log = logging.getLogger(__name__)

MISPLACED = (
    "Hydra overrides go before --baseline, --heatmap and --best-of, which take every value after "
    "them"
)


def baseline_pairs(baseline: Sequence[str] | None) -> dict[str, str] | None:
    """`--baseline`'s settings as key -> value (None: the default baseline)."""
    bad = [item for item in baseline or [] if "=" not in item or item.startswith("=")]
    if bad:
        raise LayerftError(f"--baseline takes key=value settings, got '{bad[0]}'; {MISPLACED}")
    pairs: dict[str, str] = {}
    for key, value in (item.split("=", 1) for item in baseline or []):
        # the last had won without a word; `1e-4` and `0.0001` are one value
        if setting_value(pairs.setdefault(key, value)) != setting_value(value):
            raise LayerftError(f"--baseline {key}: given twice ({pairs[key]}, {value}); give one")
    return pairs or None


def check_best_of_once(best_of: Sequence[str] | None) -> None:
    """`--best-of` names each setting once (best.csv had taken a key named twice as one)."""
    named = list(best_of or ())
    if twice := next((key for i, key in enumerate(named) if key in named[:i]), None):
        raise LayerftError(f"--best-of {twice}: named twice; name each setting once")


def check_table_options(
    baseline: Sequence[str] | None,
    heatmap: Sequence[str] | None,
    combinations: Sequence[Combination],
    sweep_dir: Path,
    best_of: Sequence[str] | None = None,
) -> None:
    """Each key `--baseline`, `--heatmap` and `--best-of` name is a setting of a planned
    combination or of a record in `sweep_dir` (a group's choice always is; the seed never: rows
    fold it); a heatmap setting every combination sets on its command line takes two values there
    or in a record; and each baseline value of a key every combination sets on its command line
    is one of theirs or a record's (`-`: where one leaves it unset)."""
    planned = [job_settings({}, combination.overrides) for combination in combinations]
    recorded = _recorded_settings(sweep_dir)
    known = {*GROUP_OF_KEY, *(key for settings in planned + recorded for key in settings)}
    pairs = baseline_pairs(baseline) or {}
    check_best_of_once(best_of)
    if heatmap and heatmap[0] == heatmap[1]:  # else refused once the whole grid had trained
        raise LayerftError(f"--heatmap {heatmap[0]} {heatmap[1]}: name two different settings")
    named = [*(("--baseline", k) for k in pairs), *(("--heatmap", k) for k in heatmap or ())]
    for option, key in [*named, *(("--best-of", k) for k in best_of or ())]:
        if key not in known:
            rows = "a row folds its seeds" if key == "seed" else "no job of the grid sets it"
            raise LayerftError(f"{option} {key}: {rows}; {MISPLACED}")
    for key in heatmap or ():  # one value in every job and record: refused once the grid trained
        values = {settings.get(key, MISSING) for settings in planned + recorded}
        if len(values) == 1 and all(key in settings for settings in planned):
            raise LayerftError(
                f"--heatmap {key}: every job has {key}={values.pop()}; name a setting that varies"
            )
    for key, value in pairs.items():
        if not all(key in settings for settings in planned):
            continue  # a default the plan does not know (a group's choice): the tables judge it
        values = {settings.get(key, MISSING) for settings in planned + recorded}
        if value not in values and setting_value(value) not in {setting_value(v) for v in values}:
            raise LayerftError(
                f"--baseline {key}={value}: no job has it (the grid's and the folder's: "
                f"{', '.join(sorted(values))})"
            )


def _recorded_settings(sweep_dir: Path) -> list[dict[str, str]]:
    """The settings of the records already in `sweep_dir` (a damaged one is the table's to name)."""
    from layerft.sweep_job import read_job

    found = []
    for folder in record_dirs(sweep_dir) if sweep_dir.is_dir() else []:
        try:
            found.append(read_job(folder).settings)
        except LayerftError:
            continue
    return found


def aggregate_dir(
    sweep_dir: Path,
    baseline: list[str] | None,
    heatmap: list[str] | None,
    not_run: Sequence[str] | None = None,
    best_of: Sequence[str] | None = None,
) -> Aggregate:
    """Write results.csv / results.md / plots (and best.csv, best.md `best_of` settings) for a
    sweep folder (layerft/aggregate.py); with `not_run` None, its last sweep's combinations not
    run are listed."""
    from layerft.aggregate import aggregate

    pairs = baseline_pairs(baseline)
    check_best_of_once(best_of)
    heat = tuple(heatmap) if heatmap else None
    result = aggregate(sweep_dir, pairs, heat, not_run=not_run, best_of=best_of or ())
    for path in result.paths:
        print(f"wrote {path}")
    return result


def tabled(
    grid: str,
    overrides: Sequence[str],
    sweep_dir: Path,
    baseline: list[str] | None,
    heatmap: list[str] | None,
    not_run: Sequence[str] = (),
    best_of: Sequence[str] | None = None,
) -> str | None:
    """A sweep's tables and their W&B run after it ran (`not_run`: the job folders of the grid's
    combinations with no record, listed in results.md); with no result to table (each on changed
    data, which the summary lists) a warning: the exit code stays the sweep's. Where the tables
    refuse `baseline`, `heatmap` or `best_of`, they are written with the defaults (no best.csv),
    and the refusal returned (the grid's results are not left without tables, nor with stale
    ones)."""
    from layerft.aggregate import NothingToTable

    try:
        try:
            result = aggregate_dir(sweep_dir, baseline, heatmap, not_run, best_of)
            refused = None
        except LayerftError as err:
            if isinstance(err, NothingToTable) or all(
                option is None for option in (baseline, heatmap, best_of)
            ):
                raise
            result, refused = aggregate_dir(sweep_dir, None, None, not_run), str(err)
    except NothingToTable as err:
        log.warning("%s", err)
        return None
    # The grid's job folders sit directly inside its folder: a record deeper is no job of it
    if deeper := [d for d in result.job_dirs if d.parent != sweep_dir]:
        log.warning("%s tables %d result(s) from folders deeper inside it too (%s): no jobs of "
                    "this grid; give %s a --dir of its own to table it alone",
                    sweep_dir, len(deeper), deeper[0].relative_to(sweep_dir), grid)  # fmt: skip
    log_results_table(grid, overrides, sweep_dir, result)
    return refused
