"""What a sweep folder holds for a grid's combinations: finished, failed, on changed data,
blocked, unfinished or not run (found by config fingerprint, in any job folder), and what a
launch leaves out; `layerft/sweep_summary.py` prints the plan and summary from it.

Serves no config group: `layerft/sweep.py` reads these.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from layerft.data_changes import changed_data
from layerft.hub_data import changed_hub_data
from layerft.model_files import changed_model_files, changed_snapshot, on_other
from layerft.results import (
    FAILED_FILE,
    METRICS_FILE,
    job_records,
    read_failure,
    read_record,
)
from layerft.run_record import (
    ERROR_KEY,
    FINGERPRINT_KEY,
    RESULTS_VERSION,
    record_problem,
    results_version,
)
from layerft.sweep_grid import Combination, job_folder
from layerft.sweep_records import is_unfinished


def failed_error(folder: Path) -> str:
    """The error line a failed job recorded (a failed.json removed since says so)."""
    failure = read_failure(folder)
    return (
        "failed.json is gone or unreadable" if failure is None else str(failure.get(ERROR_KEY, ""))
    )


def repeated_runs(
    combinations: Sequence[Combination],
    skipped: Sequence[Combination],
    blocked: Sequence[Combination] = (),
) -> list[tuple[Combination, Combination]]:
    """The combinations, of those not `skipped`, whose config another one launched runs, each with
    that one: its result serves both (found by fingerprint), so only the first is launched; a
    `blocked` one (its folder holds another config's result, so its job stops) is not that first
    while another can be."""
    launching = [c for c in combinations if not any(c is s for s in skipped)]
    first: dict[str, Combination] = {}
    for combination in sorted(launching, key=lambda c: any(c is b for b in blocked)):
        first.setdefault(combination.fingerprint, combination)
    return [(c, first[c.fingerprint]) for c in launching if first[c.fingerprint] is not c]


class Stale(NamedTuple):
    """A combination finished on data or model files changed since: its job stops on them."""

    combination: Combination
    folder: Path  # of its result
    data: list[str]  # the splits whose data file changed
    model: list[str]  # the paths of the model files that changed

    def changed(self) -> tuple[str, str]:
        """What changed (model_files.on_other), and the splits' and files' names."""
        return on_other(self.data, self.model), ", ".join([*self.data, *self.model])


@dataclass(frozen=True)
class Status:
    done: list[tuple[Combination, Path]]
    failed: list[tuple[Combination, Path, str]]
    missing: list[Combination]
    # Finished on a data or model file changed since (run_folder.check_same_data): --force reruns
    stale: list[Stale] = field(default_factory=list)
    # Of `done`: those computed by an older layerft (run_record.RESULTS_VERSION), with their version.
    older: list[tuple[Combination, Path, int]] = field(default_factory=list)
    # Of `missing`: those whose job folder holds another config's result (an option's YAML
    # edited since, a setting the folder names leave out), which its job never overwrites: it
    # would stop with an error naming the keys, so sweep.py does not launch it.
    blocked: list[tuple[Combination, Path]] = field(default_factory=list)
    # Of `missing`: those whose job folder Hydra started and no record came to (killed, or
    # still running in another sweep.py): results.md counts them as unfinished too.
    unfinished: list[tuple[Combination, Path]] = field(default_factory=list)


def status(combinations: list[Combination], sweep_dir: Path, since_ns: int | None = None) -> Status:
    """Which combinations have a finished result, a recorded failure, or nothing, in the folder.

    `since_ns` (a --force sweep's start): only a result written since then counts as finished, so
    a forced rerun that failed or never ran is not reported by the result it was to replace.
    """
    results = job_records(sweep_dir, METRICS_FILE)
    finished = results
    if since_ns is not None:
        finished = {
            fingerprint: folder
            for fingerprint, folder in results.items()
            if (folder / METRICS_FILE).stat().st_mtime_ns >= since_ns
        }
    failures = job_records(sweep_dir, FAILED_FILE)
    done, failed, missing, stale, older, blocked, unfinished = [], [], [], [], [], [], []
    for combination in combinations:
        own = {results[f] for f in combination.fingerprints if f in results}  # also replaced ones
        if (folder := _first_of(combination.fingerprints, finished)) is not None:
            record = read_record(folder)
            data = changed_data(record, combination.data_files) + changed_hub_data(record)
            model = changed_model_files(record, combination.model_folder, combination.model_files)
            model += changed_snapshot(record)
            if data or model:
                stale.append(Stale(combination, folder, data, model))
            else:
                done.append((combination, folder))
                if (version := results_version(record)) < RESULTS_VERSION:
                    older.append((combination, folder, version))
        # A failure beside another config's result is a refusal to overwrite it: blocked.
        elif (folder := _first_of(combination.fingerprints, failures)) is not None and not (
            _holds_other_config(folder, own, combination.fingerprints)
        ):
            failed.append((combination, folder, failed_error(folder)))
        else:
            missing.append(combination)
            folder = sweep_dir / job_folder(combination)
            if _holds_other_config(folder, own, combination.fingerprints):
                blocked.append((combination, folder))
            elif is_unfinished(folder):
                unfinished.append((combination, folder))
    return Status(done, failed, missing, stale, older, blocked, unfinished)


def _first_of(fingerprints: tuple[str, ...], folders: dict[str, Path]) -> Path | None:
    """The folder of the first of `fingerprints` that `folders` holds."""
    return next((folders[f] for f in fingerprints if f in folders), None)


def _holds_other_config(folder: Path, own: set[Path], fingerprints: tuple[str, ...]) -> bool:
    """Whether `folder` holds a result that is not one of the combination's (`own`: the folders of
    its results, one a --force sweep is replacing too; `fingerprints`: its config's)."""
    return folder not in own and another_config_result(folder, fingerprints)


def another_config_result(folder: Path, fingerprints: tuple[str, ...] = ()) -> bool:
    """Whether `folder` holds a readable result (of another config, where its combination is not
    finished): a damaged metrics.json of its own config (`fingerprints`) is set aside and redone,
    not blocking; another config's, damaged or not, is never overwritten (results.read_finished)."""
    try:
        record = read_record(folder)
    except (OSError, ValueError):
        return False
    if not isinstance(record, dict) or FINGERPRINT_KEY not in record:
        return False
    return not record_problem(record, True) or record[FINGERPRINT_KEY] not in fingerprints


class LeftOut(NamedTuple):
    """The combinations sweep.py does not launch."""

    finished: list[Combination]  # unless forced (by --force, or force_rerun in their config)
    repeats: list[tuple[Combination, Combination]]  # each with the job whose run serves it
    blocked: list[Combination]  # their folder holds another config's result; no repeat
    stale: list[Combination]  # finished on files changed since, unless forced: they would stop

    def combinations(self) -> list[Combination]:
        repeats = (repeat for repeat, _ in self.repeats)
        return [*self.finished, *repeats, *self.blocked, *self.stale]


def left_out(combinations: Sequence[Combination], state: Status, force: bool) -> LeftOut:
    """What sweep.py leaves out of the launch of `combinations` (in the folder `state` describes):
    the finished, the repeats of a config another job runs, the blocked (each would stop and
    record its failure in another config's folder) and the stale (each would stop on its changed
    files: --force reruns them)."""
    finished = [] if force else [c for c, _ in state.done if not c.force_rerun]
    stale = [] if force else [s.combination for s in state.stale if not s.combination.force_rerun]
    blocked = [c for c, _ in state.blocked]
    repeats = repeated_runs(combinations, [*finished, *stale], blocked)
    unserved = [c for c in blocked if not any(c is r for r, _ in repeats)]
    return LeftOut(finished, repeats, unserved, stale)
