"""sweep.py's table options, `--baseline key=value ...` and `--heatmap a b`, checked against the
grid before a job runs: a typo, or a Hydra override written after `--baseline` (which takes every
`key=value` after it), would be found only once the whole grid had trained, and with no table.

Serves the `sweep` config group's runs: `layerft/sweep.py` checks them on the planned combinations
and the folder's records; `layerft/aggregate.py` checks them again on the records it tables.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from layerft.config import GROUP_OF_KEY
from layerft.errors import LayerftError
from layerft.sweep_grid import Combination
from layerft.sweep_records import record_dirs
from layerft.sweep_settings import job_settings, setting_value

MISPLACED = "Hydra overrides go before --baseline and --heatmap, which take every value after them"


def baseline_pairs(baseline: Sequence[str] | None) -> dict[str, str] | None:
    """`--baseline`'s settings as key -> value (None: the default baseline)."""
    bad = [item for item in baseline or [] if "=" not in item]
    if bad:
        raise LayerftError(f"--baseline takes key=value settings, got '{bad[0]}'; {MISPLACED}")
    return dict(item.split("=", 1) for item in baseline) if baseline else None


def check_table_options(
    baseline: Sequence[str] | None,
    heatmap: Sequence[str] | None,
    combinations: Sequence[Combination],
    sweep_dir: Path,
) -> None:
    """Each key `--baseline` and `--heatmap` name is a setting of a planned combination or of a
    record in `sweep_dir` (a group's choice always is; the seed never: rows fold it), a heatmap's
    varies, and each baseline value of a key every combination sets is one of theirs or of a
    record's."""
    planned = [job_settings({}, combination.overrides) for combination in combinations]
    recorded = _recorded_settings(sweep_dir)
    known = {*GROUP_OF_KEY, *(key for settings in planned + recorded for key in settings)}
    named = [("--baseline", key) for key in baseline_pairs(baseline) or {}]
    named += [("--heatmap", key) for key in heatmap or ()]
    for option, key in named:
        if key not in known:
            rows = "a row folds its seeds" if key == "seed" else "no job of the grid sets it"
            raise LayerftError(f"{option} {key}: {rows}; {MISPLACED}")
    for key in heatmap or ():  # its axes are settings that vary (a group's default: one value)
        if len({settings.get(key, "") for settings in planned + recorded}) < 2:
            raise LayerftError(f"--heatmap {key}: it does not vary across the grid's jobs")
    for key, value in (baseline_pairs(baseline) or {}).items():
        values = {settings[key] for settings in planned + recorded if key in settings}
        if all(key in settings for settings in planned) and setting_value(value) not in {
            setting_value(v) for v in values
        }:
            raise LayerftError(
                f"--baseline {key}={value}: no job has it (the grid's: {', '.join(sorted(values))})"
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
