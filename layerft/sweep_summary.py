"""The plan (`sweep.py --dry-run`) and the summary after a launch, printed from a sweep folder's
state (`layerft/sweep_status.py`), and a warning for a grid that lists a job twice.

Serves no config group: `layerft/sweep.py` prints these.
"""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path

from layerft.model_files import on_other
from layerft.results import FAILED_FILE, METRICS_FILE
from layerft.run_folder import differences_from_result
from layerft.run_record import older_results
from layerft.sweep_diffs import counted
from layerft.sweep_grid import Combination
from layerft.sweep_records import HYDRA_SUBDIR
from layerft.sweep_status import Stale, Status, left_out

log = logging.getLogger(__name__)


def print_plan(combinations: list[Combination], state: Status, force: bool) -> None:
    """The dry run: combinations, distinct stage-1 trainings, which are done (`state`)."""
    stage1 = {c.stage1 for c in combinations if c.stage1}
    stored = {c.stage1 for c in combinations if c.stage1_stored}
    kept = (
        f" ({len(stored)} stored: reused where the data and, on a CPU, torch's thread count are "
        "as they were)"
        if stored else ""
    )  # fmt: skip
    distinct = len({c.fingerprint for c in combinations})
    runs = f" ({counted(distinct, 'distinct run')})" if distinct < len(combinations) else ""
    trainings = counted(len(stage1), "distinct stage-1 training")
    print(f"{counted(len(combinations), 'combination')}{runs}, {trainings}{kept}")
    left = left_out(combinations, state, force)
    # Done and not launched: unless forced (--force, or force_rerun=true in its config)
    finished = {id(combination) for combination in left.finished}
    # Marks by combination: repeats of one config share a fingerprint, not a folder.
    marks = {id(c): "done" for c, _ in state.done if id(c) in finished}
    for combination, _ in state.blocked:
        marks[id(combination)] = "blocked: its folder holds another config's result"
    for combination, _, version in state.older:
        if id(combination) in finished:
            marks[id(combination)] = f"done by results version {version}"
    not_launched = {id(combination) for combination in left.stale}  # force_rerun=true: launched
    stale = [s for s in state.stale if id(s.combination) in not_launched]
    for one in stale:
        marks[id(one.combination)] = "done on other {}: {} changed".format(*one.changed())
    served_by = {id(repeat): run for repeat, run in left.repeats}
    for combination in combinations:
        s1 = f"stage1 {combination.stage1}" if combination.stage1 else "no stage 1"
        s1 += ", stored" if combination.stage1_stored else ""
        if (run := served_by.get(id(combination))) is not None:  # not launched: one run serves both
            s1 += f"; the run of {run.label}"
        print(f"  [{marks.get(id(combination), 'todo')}] {combination.label}  ({s1})")
    done = len(finished)
    # Neither stale nor blocked jobs count as to run: neither is launched (both noted below); a
    # blocked repeat is counted once, as served.
    todo = len(combinations) - done - len(stale) - len(served_by)
    todo -= sum(id(combination) not in served_by for combination, _ in state.blocked)
    served = f" ({len(served_by)} served by another job's run)" if served_by else ""
    print(f"{done} done, {todo} to run{served}{' (--force)' if force else ''}")
    if stale:
        print(
            f"{len(stale)} done on {_on_changed(stale, files=True)} changed since: "
            "not launched; rerun them with --force (overrides can narrow the grid to them)"
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
    """Print what a folder holds of its grid: counts, then each job failed, on changed files,
    unfinished or not run."""
    stale = f", {len(state.stale)} on changed {_on_changed(state.stale)}" if state.stale else ""
    killed = f", {len(state.unfinished)} unfinished" if state.unfinished else ""
    not_run = len(state.missing) - len(state.unfinished)
    # Combinations, not runs: a repeat (another layer split beside injection_task=none) is served
    # by its first job's folder, which results.md counts once
    runs = {folder for _, folder in state.done} | {folder for _, folder, _ in state.failed}
    shared = len(state.done) + len(state.failed) - len(runs)
    repeats = (
        f" ({counted(len(runs), 'distinct run')}: {shared} served by another combination's run)"
        if shared
        else ""
    )
    print(
        f"sweep: {len(state.done)} finished, {len(state.failed)} failed, {not_run} not run"
        f"{killed}{stale}{repeats}"
    )
    for combination, folder, error in state.failed:
        # A --force rerun that failed beside its result (a failure beside another config's is
        # blocked, not failed): results.md averages that result, and this line says so
        kept = "; its earlier result is kept" if (folder / METRICS_FILE).is_file() else ""
        print(f"  FAILED {combination.label}: {error} ({folder / FAILED_FILE}{kept})")
    for stale in state.stale:
        what, names = stale.changed()
        print(
            f"  ON CHANGED {what.upper()} {stale.combination.label}: {names} changed since its "
            f"result ({stale.folder / METRICS_FILE}); --force reruns it"
        )
    blocked = {id(combination): folder for combination, folder in state.blocked}
    unfinished = {id(combination): folder for combination, folder in state.unfinished}
    for combination in state.missing:
        if (folder := unfinished.get(id(combination))) is not None:
            print(
                f"  UNFINISHED {combination.label}: {folder} holds no record (stopped, killed, or running)"
            )
            continue
        folder = blocked.get(id(combination))
        note = "" if folder is None else f" (blocked: {folder} holds another config's result)"
        print(f"  NOT RUN {combination.label}{note}")
    if state.older:
        print(older_note(state.older))


def warn_repeated_values(combinations: list[Combination]) -> None:
    """One line for a grid whose sweep lists repeat a value: its jobs of identical settings are
    one run (the first), and one job folder."""
    times = Counter(tuple(sorted(c.overrides)) for c in combinations)
    if repeated := [c.label for c in combinations if times.pop(tuple(sorted(c.overrides)), 1) > 1]:
        log.warning(
            "the grid lists %d job(s) more than once (a value repeated in a sweep list), each run "
            "once: %s", len(repeated), ", ".join(repeated[:3]) + (", ..." if len(repeated) > 3 else ""),
        )  # fmt: skip
