"""The notes of a sweep table's row: what its numbers hide (seeds that ran different configs, a
mean over other seeds than its baseline's, seeds run on other devices or at other CPU thread
counts than its baseline's, a failed later attempt, older results, a best checkpoint that
predicts one label or is the model as given).

Serves no config group: `layerft/sweep_table.py`'s build_table writes them into each row.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from layerft.metrics import PREDICTED_CLASSES
from layerft.results import BEST_UNTRAINED

if TYPE_CHECKING:
    from layerft.sweep_table import TableRow

log = logging.getLogger(__name__)

# A best checkpoint's metric at 1 that a row's note names (TableRow.seeds_with)
FLAGS = ((PREDICTED_CLASSES, "predicts one label on dev"),
         (f"/{BEST_UNTRAINED}", "best is the model as given (step 1, lr 0)"))  # fmt: skip


def notes(combo: TableRow, base: TableRow | None, row_label: str) -> list[str]:
    """What a row's numbers hide: seeds that ran different configs (a YAML or code default changed
    between them; the settings name only the command line), logged as a warning too; a mean over
    other seeds than its baseline's (the gap between the two means is partly the seeds'); seeds it
    and its baseline ran on other devices or at other CPU thread counts (_differing: the pair
    differs in bf16 kernels, padding, float sums' order and, where stage 1 was stored, in a stage 1
    trained apart: `stage1_key.Stage1Key.cpu_threads`); a later attempt that failed
    beside a result the row keeps; results an older layerft computed; FLAGS.
    `row_label` names the row in the warning."""
    found = []
    metric = combo.selection_metric
    if base is not None and base is not combo and base.selection_metric == metric:
        mine, theirs = combo.values(metric), base.values(metric)
        if mine and theirs and mine.keys() != theirs.keys():
            found.append(f"seeds differ from baseline: {_seeds(mine)} vs {_seeds(theirs)}")
        if devices := _differing(combo.devices(), base.devices()):
            found.append(f"device differs from baseline: {devices}")
        if threads := _differing(combo.cpu_threads(), base.cpu_threads()):
            found.append(f"CPU threads differ from baseline: {threads}")
    if later := combo.later_failed_seeds():
        found.append(f"later attempt failed: seed {' '.join(map(str, later))} (result kept)")
    if older := combo.older_seeds():
        found.append(f"older layerft: seed {' '.join(map(str, older))}")
    for stage, name in (("injection", "stage 1 "), ("target", "")):
        for ending, note in FLAGS:
            if seeds := combo.seeds_with(stage, ending):
                found.append(f"{name}{note}: seed {' '.join(map(str, seeds))}")
    if len(configs := combo.seeds_by_config()) > 1:
        seeds = " vs ".join(" ".join(map(str, group)) for group in configs)
        found.append(f"different configs: seeds {seeds}")
        log.warning(
            "%s: seeds %s ran different configs (a default changed between them?), averaged in "
            "one row; rerun them with one config",
            row_label,
            seeds,
        )
    return found


def _differing(mine: dict[int, Any], theirs: dict[int, Any]) -> str:
    """The seeds whose value (a device, a CPU thread count) differs between a row and its baseline,
    where both record it: `seed 2 (1 vs 2)` each (a sweep resumed on another machine, or with
    another launcher's thread share)."""
    seeds = sorted(seed for seed in mine.keys() & theirs.keys() if mine[seed] != theirs[seed])
    return ", ".join(f"seed {seed} ({mine[seed]} vs {theirs[seed]})" for seed in seeds)


def _seeds(values: dict[int, float]) -> str:
    return " ".join(map(str, sorted(values)))
