"""What a sweep folder holds for a grid's combinations: finished, failed, on changed data,
blocked or not run (found by config fingerprint, in any job folder), and the plan and summary
`sweep.py` prints from it.

Serves no config group: `layerft/sweep.py` prints these.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from layerft.model_files import changed_model_files, changed_snapshot, on_other
from layerft.results import FAILED_FILE, METRICS_FILE, changed_data, job_records, read_record
from layerft.run_folder import differences_from_result
from layerft.run_record import FINGERPRINT_KEY, RESULTS_VERSION, older_results, results_version
from layerft.sweep_grid import Combination, job_folder
from layerft.sweep_records import HYDRA_SUBDIR


def failed_error(folder: Path) -> str:
    """The error line a failed job recorded."""
    return str(json.loads((folder / FAILED_FILE).read_text(encoding="utf-8")).get("run/error", ""))


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
    done, failed, missing, stale, older, blocked = [], [], [], [], [], []
    for combination in combinations:
        own = {results[f] for f in combination.fingerprints if f in results}  # also replaced ones
        if (folder := _first_of(combination.fingerprints, finished)) is not None:
            record = read_record(folder)
            data = changed_data(record, combination.data_files)
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
            _holds_other_config(folder, own)
        ):
            failed.append((combination, folder, failed_error(folder)))
        else:
            missing.append(combination)
            folder = sweep_dir / job_folder(combination)
            if _holds_other_config(folder, own):
                blocked.append((combination, folder))
    return Status(done, failed, missing, stale, older, blocked)


def _first_of(fingerprints: tuple[str, ...], folders: dict[str, Path]) -> Path | None:
    """The folder of the first of `fingerprints` that `folders` holds."""
    return next((folders[f] for f in fingerprints if f in folders), None)


def _holds_other_config(folder: Path, own: set[Path]) -> bool:
    """Whether `folder` holds a result that is not one of the combination's (`own`: the folders of
    its results, one a --force sweep is replacing too)."""
    return folder not in own and another_config_result(folder)


def another_config_result(folder: Path) -> bool:
    """Whether `folder` holds a readable result (of another config, where its combination is not
    finished): a damaged metrics.json is set aside and redone, not blocking."""
    try:
        record = read_record(folder)
    except (OSError, ValueError):
        return False
    return isinstance(record, dict) and FINGERPRINT_KEY in record


class LeftOut(NamedTuple):
    """The combinations sweep.py does not launch."""

    finished: list[Combination]  # unless forced (by --force, or force_rerun in their config)
    repeats: list[tuple[Combination, Combination]]  # each with the job whose run serves it
    blocked: list[Combination]  # their folder holds another config's result; no repeat

    def combinations(self) -> list[Combination]:
        return [*self.finished, *(repeat for repeat, _ in self.repeats), *self.blocked]


def left_out(combinations: Sequence[Combination], state: Status, force: bool) -> LeftOut:
    """What sweep.py leaves out of the launch of `combinations` (in the folder `state` describes):
    the finished, the repeats of a config another job runs, and the blocked (each would stop and
    record its failure in another config's folder)."""
    finished = [] if force else [c for c, _ in state.done if not c.force_rerun]
    blocked = [c for c, _ in state.blocked]
    repeats = repeated_runs(combinations, finished, blocked)
    return LeftOut(finished, repeats, [c for c in blocked if not any(c is r for r, _ in repeats)])


def print_plan(combinations: list[Combination], state: Status, force: bool) -> None:
    """The dry run: combinations, distinct stage-1 trainings, which are done (`state`)."""
    stage1 = {c.stage1 for c in combinations if c.stage1}
    stored = {c.stage1 for c in combinations if c.stage1_stored}
    kept = f" ({len(stored)} stored, reused if their data is unchanged)" if stored else ""
    distinct = len({c.fingerprint for c in combinations})
    runs = f" ({distinct} distinct runs)" if distinct < len(combinations) else ""
    print(f"{len(combinations)} combinations{runs}, {len(stage1)} distinct stage-1 trainings{kept}")
    # Marks by combination: repeats of one config share a fingerprint, not a folder.
    marks = {} if force else {id(c): "done" for c, _ in state.done}
    for combination, _ in state.blocked:
        marks[id(combination)] = "blocked: its folder holds another config's result"
    for combination, _, version in [] if force else state.older:
        marks[id(combination)] = f"done by results version {version}"
    for stale in [] if force else state.stale:
        marks[id(stale.combination)] = "done on other {}: {} changed".format(*stale.changed())
    served_by = {id(repeat): run for repeat, run in left_out(combinations, state, force).repeats}
    for combination in combinations:
        s1 = f"stage1 {combination.stage1}" if combination.stage1 else "no stage 1"
        s1 += ", stored" if combination.stage1_stored else ""
        if (run := served_by.get(id(combination))) is not None:  # not launched: one run serves both
            s1 += f"; the run of {run.label}"
        print(f"  [{marks.get(id(combination), 'todo')}] {combination.label}  ({s1})")
    done = 0 if force else len(state.done)
    # Neither stale nor blocked jobs count as to run: a stale one stops with an error, a blocked
    # one is not launched (both noted below); a blocked repeat is counted once, as served.
    todo = len(combinations) - done - (0 if force else len(state.stale)) - len(served_by)
    todo -= sum(id(combination) not in served_by for combination, _ in state.blocked)
    served = f" ({len(served_by)} served by another job's run)" if served_by else ""
    print(f"{done} done, {todo} to run{served}{' (--force)' if force else ''}")
    if state.stale and not force:
        print(
            f"{len(state.stale)} done on {_on_changed(state.stale, files=True)} changed since: "
            "each stops with an error; rerun them with --force (overrides can narrow the grid to them)"
        )
    if state.older and not force:
        print(older_note(state.older))
    if state.blocked:
        print(blocked_note(state.blocked))


def blocked_note(blocked: list[tuple[Combination, Path]]) -> str:
    """One line on combinations whose job folder holds another config's result."""
    first, folder = blocked[0]
    record = folder / HYDRA_SUBDIR
    differs = None if first.resolved is None else differences_from_result(record, first.resolved)
    return (
        f"{len(blocked)} blocked: the job folder holds the result of another config (a setting "
        "given once on the command line, which job folder names leave out, an option's YAML "
        "edited since, or a schema key added to layerft without its LATER_KEYS line), which is "
        "never overwritten, --force or not, so sweep.py does not launch them; run the grid in a "
        "new --dir, or delete those folders to redo them "
        f"({', '.join(str(folder) for _, folder in blocked[:3])}{', ...' if len(blocked) > 3 else ''})"
        + (f"; {first.label} differs from its folder's in {differs}" if differs else "")
    )


def older_note(older: list[tuple[Combination, Path, int]]) -> str:
    """One line on finished results an older layerft computed: reused, and what changed since."""
    return (
        f"{len(older)} done by an older layerft ({older_results(min(v for _, _, v in older))}): "
        "reused as they are; --force reruns them (overrides can narrow the grid to them)"
    )


def _on_changed(stale: list[Stale], files: bool = False) -> str:
    """What changed under these results (model_files.on_other)."""
    return on_other([s for s in stale if s.data], [s for s in stale if s.model], files)


def print_summary(state: Status) -> None:
    stale = f", {len(state.stale)} on changed {_on_changed(state.stale)}" if state.stale else ""
    print(
        f"sweep: {len(state.done)} finished, {len(state.failed)} failed, {len(state.missing)} not "
        f"run{stale}"
    )
    for combination, folder, error in state.failed:
        print(f"  FAILED {combination.label}: {error} ({folder / FAILED_FILE})")
    for stale in state.stale:
        what, names = stale.changed()
        print(
            f"  ON CHANGED {what.upper()} {stale.combination.label}: {names} changed since its "
            f"result ({stale.folder / METRICS_FILE}); --force reruns it"
        )
    blocked = {id(combination): folder for combination, folder in state.blocked}
    for combination in state.missing:
        folder = blocked.get(id(combination))
        note = "" if folder is None else f" (blocked: {folder} holds another config's result)"
        print(f"  NOT RUN {combination.label}{note}")
    if state.older:
        print(older_note(state.older))
