"""`python sweep.py <grid>`: a named grid of conf/sweep/ as one Hydra multirun into
`multirun_outputs/<grid>/`, resumable and failure-isolated, aggregated at the end.

- Each combination's job directory is named after its swept settings (`seed=1,tuning_mode=lora`);
  a job whose config already has a finished result anywhere in the sweep folder is not launched
  (the key is the config fingerprint, layerft/fingerprint.py), so a rerun only runs what is missing.
- A job that fails (an exception, a NaN loss, out of memory) writes `failed.json` and the sweep
  goes on; the summary lists failures and the exit code is 1 if any combination is not finished.
- `--dry-run` lists the combinations, the distinct stage-1 trainings they need, and which are done.

Serves the `sweep` config group (conf/sweep/<grid>.yaml), as `layerft/sweep_grid.py` does.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import shlex
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from hydra_plugins.layerft_launcher.gpu_slots import job_cpu_threads
from layerft.config_errors import CONFIG_ERRORS, composition_error_line
from layerft.config_overrides import deletion_error
from layerft.credential_overrides import credential_override_error
from layerft.credentials import without_secrets
from layerft.errors import LayerftError
from layerft.file_lock import sweep_lock
from layerft.interrupts import STOPS, remembered_interrupts, stopped_code, stopped_line
from layerft.launcher_checks import check_launcher_here
from layerft.results import FAILED_FILE, METRICS_FILE, job_records, read_failure
from layerft.run_folder import tidy_finished
from layerft.run_record import FINGERPRINT_KEY
from layerft.sweep_checks import (
    check_grid_name,
    check_grid_overrides,
    check_sweep_dir,
    folder_argument,
)
from layerft.sweep_grid import OUTPUTS, Combination, check_grid, expand, job_folder
from layerft.sweep_hydra import grid_names, split_overrides
from layerft.sweep_launch import check_hydra_overrides, check_launcher, run_grid
from layerft.sweep_options import MISPLACED, aggregate_dir, check_table_options, tabled
from layerft.sweep_records import HYDRA_SUBDIR
from layerft.sweep_status import LeftOut, left_out, status
from layerft.sweep_summary import blocked_note, print_plan, print_summary, warn_repeated_values
from layerft.sweep_tracker import relog_results_table

log = logging.getLogger(__name__)


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    """sweep.py's arguments: a grid and its overrides, or `aggregate <dir>`, and the options."""
    parser = argparse.ArgumentParser(
        prog="sweep.py",
        usage="%(prog)s [options] grid [overrides ...]",
        description="Run a named grid of conf/sweep/ (or of <dir>/sweep/ with "
        "'hydra.searchpath=[file://<dir>]'), or aggregate a sweep folder.",
        epilog="python sweep.py aggregate <dir> [--baseline key=value ...]: tables and plots only",
    )
    # "?", checked below: argparse said both were missing, though overrides are optional ("*")
    parser.add_argument("grid", nargs="?", help=f"one of: {', '.join(grid_names())}, aggregate")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides narrowing or extending it")
    parser.add_argument("--dry-run", action="store_true", help="list combinations, run nothing")
    parser.add_argument("--force", action="store_true", help="rerun finished combinations too")
    parser.add_argument(
        "--dir", type=folder_argument, help="the sweep folder (default multirun_outputs/<grid>)"
    )
    parser.add_argument(
        "--baseline",
        nargs="*",
        action="extend",
        default=None,
        help="the baseline row's key=value settings, after the overrides (injection_task=none)",
    )
    parser.add_argument("--heatmap", nargs=2, default=None, help="the two settings of the heatmap")
    parser.add_argument(
        "--best-of",
        nargs="+",
        action="extend",
        default=None,
        metavar="KEY",
        help="best.csv / best.md: each row at its best value of these settings (target_task.lr)",
    )
    args = parser.parse_intermixed_args(argv)  # overrides may follow options
    if args.grid is None:
        parser.error("the following argument is required: grid")
    return args


def main(argv: Sequence[str]) -> int:
    """Run sweep.py with `argv`; its exit status."""
    logging.basicConfig(
        level=logging.INFO, format="[%(asctime)s][%(name)s][%(levelname)s] - %(message)s"
    )
    args = parse_args(argv)
    try:
        if args.baseline == []:  # `--baseline` alone had been the default baseline, without a word
            raise LayerftError(f"--baseline takes key=value settings, got none; {MISPLACED}")
        with remembered_interrupts():  # SIGTERM too, while planning or tabling as while launching
            return aggregate_only(args) if args.grid == "aggregate" else run_sweep(args)
    except LayerftError as err:
        print(f"error: {without_secrets(str(err))}", file=sys.stderr)  # as train.py says it
        return 2
    except KeyboardInterrupt as stop:  # Ctrl-C, SIGTERM outside the jobs: nothing half-written
        print(stopped_line() + (f"; {stop}" if str(stop) else ""), file=sys.stderr)
        return stopped_code()
    except (*CONFIG_ERRORS, AssertionError, ValueError) as err:  # ValueError: `experiment=null`
        line = composition_error_line(err)
        if line is None:
            raise
        print(f"error: {line}", file=sys.stderr)
        return 2


def aggregate_only(args: argparse.Namespace) -> int:
    """`sweep.py aggregate <folder>`: the tables, plots and W&B results run of a sweep folder."""
    if len(args.overrides) != 1 or args.dry_run or args.force or args.dir:
        raise LayerftError(
            "usage: python sweep.py aggregate <sweep folder> [--baseline ...] "
            "[--heatmap a b] [--best-of key ...] (no --dry-run, --force or --dir)"
        )
    if not args.overrides[0]:  # Path(""): every record under the current folder, tabled there
        raise LayerftError("aggregate '': an empty path; name the sweep folder ('.' for this one)")
    sweep_dir = Path(args.overrides[0])
    result = aggregate_dir(sweep_dir, args.baseline, args.heatmap, best_of=args.best_of)
    relog_results_table(sweep_dir, result)
    return 0


def run_sweep(args: argparse.Namespace) -> int:
    """Check the grid and its overrides, then list it (--dry-run) or run what is left of it."""
    if refused := deletion_error(args.overrides):  # before the grid composes: a crash there
        raise LayerftError(refused)
    check_grid_name(args.grid)
    check_grid(args.grid, args.overrides)
    check_hydra_overrides(args.overrides)
    check_grid_overrides(args.grid, args.overrides)
    launcher = check_launcher(args.grid, args.overrides)
    check_launcher_here(launcher)
    if refused := credential_override_error(args.overrides):
        raise LayerftError(refused)
    sweep_dir = args.dir or OUTPUTS / args.grid
    option = "--dir" if args.dir else "the sweep folder"  # as the user named it, or not
    check_sweep_dir(sweep_dir, option)
    combinations = expand(args.grid, args.overrides, sweep_dir, job_cpu_threads(launcher))
    if not combinations:  # it ran nothing, wrote no table, and exited 0
        swept = [o.input_line for o in split_overrides(args.overrides)[0] if o.is_sweep_override()]
        raise LayerftError(
            f"grid {args.grid} has no combination to run"
            + (f" with {' '.join(swept)}" if swept else "")
            + ": a sweep of no value (a glob() that matches no option, an empty range())"
        )
    check_table_options(args.baseline, args.heatmap, combinations, sweep_dir, args.best_of)
    warn_repeated_values(combinations)
    if args.dry_run:
        state = status(combinations, sweep_dir)
        check_launched_inputs(combinations, left_out(combinations, state, args.force))
        print_plan(combinations, state, args.force)
        return 0
    with sweep_lock(sweep_dir, option):
        return launch(args, combinations, sweep_dir)


def launch(args: argparse.Namespace, combinations: list[Combination], sweep_dir: Path) -> int:
    """Run the combinations not finished yet (all with --force), summarise, table; the exit code:
    1 if any is not finished, 130 after Ctrl-C (143 after SIGTERM)."""
    started_ns = time.time_ns()
    before = status(combinations, sweep_dir)
    left = left_out(combinations, before, args.force)
    check_launched_inputs(combinations, left)
    if before.blocked:
        log.warning("%s", blocked_note(before.blocked))
    for combination, folder in [] if args.force else before.done:
        if not combination.force_rerun:  # never launched: tidied here, or never
            tidy_finished(folder, folder / HYDRA_SUBDIR)
    for combination, folder in before.blocked:
        remove_refusal(combination, folder)
    stopped = run_grid(args.grid, args.overrides, sweep_dir, args.force, left)
    state = status(combinations, sweep_dir, started_ns if args.force else None)
    print_summary(state)
    if stopped:
        print(f"error: the sweep stopped early: {stopped}", file=sys.stderr)
    # this grid's or earlier ones': tables match (all failed: the failures and their rows)
    refused = None
    if job_records(sweep_dir, METRICS_FILE) or job_records(sweep_dir, FAILED_FILE):
        not_run = [job_folder(combination) for combination in state.missing]  # named in results.md
        options = (args.baseline, args.heatmap)
        with untabled_said(sweep_dir):
            refused = tabled(args.grid, args.overrides, sweep_dir, *options, not_run, args.best_of)
        if refused:
            lost = ", and no best.csv" if args.best_of else ""
            print(f"error: {refused}; the tables have the default baseline and heatmap{lost}", file=sys.stderr)  # fmt: skip
    if stopped in STOPS.values():
        return stopped_code()  # as a shell reports a command a signal stopped
    if refused:
        return 2
    return 0 if not stopped and not (state.failed or state.missing or state.stale) else 1


@contextlib.contextmanager
def untabled_said(sweep_dir: Path) -> Iterator[None]:
    """A stop while the tables are written (a second Ctrl-C) leaves the earlier ones whole
    (written all at once): the stop says that these were not written, and how to write them."""
    try:
        yield
    except KeyboardInterrupt:
        command = f"python sweep.py aggregate {shlex.quote(str(sweep_dir))}"
        raise KeyboardInterrupt(
            f"this sweep's tables are not written ({command} writes them)"
        ) from None


def check_launched_inputs(combinations: Sequence[Combination], left: LeftOut) -> None:
    """Refuse the sweep while a combination it launches would stop on what it reads
    (Combination.input_error: a local data file unset, missing or holding a bad record; offline, a
    hub data set or model the cache lacks), as its run would: its job would fail only after the
    jobs before it had trained, hours into a real grid. One not launched (finished, whose files may have moved since;
    blocked; a repeat, whose data is its first's) is not checked."""
    not_launched = {id(combination) for combination in left.combinations()}
    for combination in combinations:
        if combination.input_error is not None and id(combination) not in not_launched:
            raise LayerftError(f"{combination.label}: {combination.input_error}")


def remove_refusal(combination: Combination, folder: Path) -> None:
    """Remove the failure an earlier launch of a blocked combination recorded in the folder of
    the other config's result (an older sweep.py launched it; `train.py -m` does): every later
    table of the folder listed it as a failed run. The summary lists the combination instead."""
    failure = read_failure(folder)
    if failure is not None and failure.get(FINGERPRINT_KEY) in combination.fingerprints:
        (folder / FAILED_FILE).unlink(missing_ok=True)
        log.info(
            "removed %s: an earlier refusal of %s, blocked there",
            folder / FAILED_FILE, combination.label,
        )  # fmt: skip
