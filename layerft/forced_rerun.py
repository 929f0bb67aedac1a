"""A forced rerun of a finished result (`force_rerun=true`, `sweep.py --force`), and what one that
never replaced the result left beside it.

The result's metrics and W&B run stay while its rerun trains; its kept checkpoints, history and
kept Hydra files are set aside until the rerun has replaced it, or put back if it did not
(`layerft/replaced_result.py`). The rerun keeps a note in the folder, locked for as long as it
runs, naming the result's bytes and W&B runs; it removes the note once it ends well. A note left unlocked is of a rerun that failed or was killed
(the OS drops a dead process's lock): beside the result lie its W&B run, checkpoints and partial
history, and Hydra's files describe its launch. A folder that keeps its result is never run again
(sweep.py skips it), so whatever next finds that result (sweep.py before its launch, a job at its
start, the next forced rerun) removes them, or `wandb sync` would upload a dead attempt as a
second run of the combination.

Serves no config group: `layerft/run.py` notes a forced rerun, `layerft/run_folder.py` and
`layerft/sweep.py` tidy a result's folder.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import sys
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO

from layerft import replaced_result
from layerft.errors import LayerftError
from layerft.file_io import file_sha256, run_dir_errors
from layerft.predictions import PREDICTIONS_FILE
from layerft.results import CHECKPOINTS_DIR, HISTORY_FILE, METRICS_FILE
from layerft.tracker import remove_stale_runs, wandb_runs

log = logging.getLogger(__name__)

NOTE_FILE = ".forced_rerun.json"  # in a run folder while a forced rerun replaces its result


@dataclass(frozen=True)
class Note:
    """What a forced rerun notes before it starts."""

    host: str
    # False where the rerun could not lock its note (a file system without locks, a lock daemon
    # down): nothing tells it from a dead one then, so only a user's word tidies it (`main`).
    locked: bool
    result_sha256: str  # metrics.json's bytes: other bytes later, and the rerun replaced them
    wandb_runs: tuple[str, ...]  # the result's W&B run folders
    # It sets the result's checkpoints, history and Hydra files aside (replaced_result), so its
    # own are told apart; a note of an earlier layerft did not: any checkpoints were the attempt's.
    sets_result_aside: bool = False

    @classmethod
    def parse(cls, text: str) -> Note:
        data = json.loads(text)
        note = cls(**{**data, "wandb_runs": tuple(data["wandb_runs"])})
        if not all(isinstance(name, str) for name in (note.host, note.result_sha256)):
            raise TypeError("host and result_sha256 must be text")
        return note


@contextlib.contextmanager
def noted_forced_rerun(run_dir: Path, hydra_dir: Path | None = None) -> Iterator[None]:
    """Hold a locked note in `run_dir` while a forced rerun replaces its result. Removed when the
    rerun ends well; left (unlocked) when it raises or its process dies, for `remove_dead_rerun`.
    Another forced rerun of the folder that is running already: an error."""
    remove_dead_rerun(run_dir)  # an earlier one's leftovers are no part of the result
    path = run_dir / NOTE_FILE
    with run_dir_errors(run_dir):  # a read-only or full disk: one line
        handle = path.open("a+", encoding="utf-8")
    with handle:
        with run_dir_errors(run_dir):
            locked = _lock(run_dir, handle)
            try:
                replaced_result.check_clear(run_dir)  # before the note: a refusal leaves none
            except LayerftError:
                path.unlink()  # opened, and empty: `_lock` refuses a note in it
                raise
            note = _write_note(run_dir, handle, locked)
            replaced_result.set_aside(run_dir, hydra_dir)  # after the note, which says it does
        try:
            yield
        except BaseException:
            _settle(run_dir, note)  # as a tidy would, before the error goes on
            raise
        if _settle(run_dir, note):  # else the note stays, and the next tidy finishes it
            path.unlink(missing_ok=True)


def _settle(run_dir: Path, note: Note) -> bool:
    """Drop what was set aside of the result if the rerun replaced it (its metrics are other bytes
    now), else put it back; whether that went through (a failure is warned about: a rerun's own
    error may be going on)."""
    try:
        if file_sha256(run_dir / METRICS_FILE) != note.result_sha256:
            replaced_result.drop(run_dir)
        else:
            replaced_result.put_back(run_dir)
    except OSError as err:
        log.warning("%s: could not settle what was set aside of the result (%s)", run_dir, err)
        return False
    return True


def _lock(run_dir: Path, handle: IO[str]) -> bool:
    """Lock the open note file, held until it closes (or the process dies); whether it could.
    Another rerun's note still there after `remove_dead_rerun` (one running, on another host, or
    unlocked) is never overwritten: an error, naming it."""
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        locked = True
    except BlockingIOError:
        raise LayerftError(f"{run_dir}: another forced rerun of it is running") from None
    except OSError:  # no locks here (a file system without them, a lock daemon down)
        locked = False
    handle.seek(0)
    if handle.read().strip():
        raise LayerftError(
            f"{run_dir / NOTE_FILE}: a forced rerun on another host, or one that could not lock "
            f"its note, may still run there; once it has ended, `python -m layerft.forced_rerun "
            f"{run_dir}` tidies the folder"
        )
    return locked


def _write_note(run_dir: Path, handle: IO[str], locked: bool) -> Note:
    """Write the note into the open file `_lock` took (`locked`: whether it could lock it)."""
    runs = tuple(run.name for run in wandb_runs(run_dir))
    note = Note(os.uname().nodename, locked, file_sha256(run_dir / METRICS_FILE), runs, True)
    handle.seek(0)
    handle.truncate()
    handle.write(json.dumps(asdict(note)))
    handle.flush()
    os.fsync(handle.fileno())
    return note


def remove_dead_rerun(run_dir: Path, any_host: bool = False) -> bool:
    """Remove what a forced rerun that failed or was killed left beside the result in `run_dir`
    (its W&B runs, checkpoints, partial history); whether it did, so that the caller puts back
    the result's Hydra files (`run_folder.restore_hydra_files`), which its launch rewrote. Left
    alone: a rerun still running (its note locked), and unless `any_host` (a user's word that it
    has ended: `main`), one that could not lock its note or one on another host (whose lock may
    not be seen from here). Killed after it wrote its result, it is finished instead: the
    replaced result's W&B runs go. A file that cannot be removed is warned about."""
    path = run_dir / NOTE_FILE
    try:
        with path.open(encoding="utf-8") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:  # held: the rerun runs
                return False
            except OSError:  # no locks here: only a user's word (`any_host`) says it has ended
                if not any_host:
                    return False
            text = handle.read()
            if not text.strip():  # opened, never written (a rerun refused, or killed at once)
                path.unlink()
                return False
            try:
                note = Note.parse(text)
            except (ValueError, KeyError, TypeError) as err:
                log.warning("%s: not a forced rerun's note (%s); left as it is", path, err)
                return False
            if not any_host and (not note.locked or note.host != os.uname().nodename):
                log.info("%s: left as it is: a forced rerun on %s may still run", path, note.host)
                return False
            dead = file_sha256(run_dir / METRICS_FILE) == note.result_sha256
            if dead:
                _remove_dead_attempt(run_dir, note)
            else:
                _finish_replacement(run_dir, note)
            path.unlink(missing_ok=True)
            return dead
    except FileNotFoundError:  # no note: no forced rerun left anything
        return False
    except OSError as err:
        log.warning("%s: could not remove what a forced rerun left (%s)", run_dir, err)
        return False


def _finish_replacement(run_dir: Path, note: Note) -> None:
    """The rerun wrote its result, then was killed: the result it replaced keeps no W&B run, and
    no checkpoints."""
    replaced = [run for run in wandb_runs(run_dir) if run.name in note.wandb_runs]
    remove_stale_runs(run_dir, replaced, "the result a forced rerun replaced")
    replaced_result.drop(run_dir)


def _remove_dead_attempt(run_dir: Path, note: Note) -> None:
    dead = [run for run in wandb_runs(run_dir) if run.name not in note.wandb_runs]
    remove_stale_runs(run_dir, dead, "a forced rerun that did not finish")
    latest = run_dir / "wandb" / "latest-run"
    if latest.is_symlink() and not latest.exists():  # it pointed at the dead run
        latest.unlink()
    if note.sets_result_aside:
        replaced_result.put_back(run_dir)
    else:  # any checkpoints there are the attempt's
        replaced_result.remove_trainer_checkpoints(run_dir / CHECKPOINTS_DIR)
    for name in (HISTORY_FILE, PREDICTIONS_FILE):
        (run_dir / f"{name}.partial").unlink(missing_ok=True)
    log.info("removed what a forced rerun that did not finish left in %s", run_dir)


def main(argv: list[str]) -> int:
    """`python -m layerft.forced_rerun <job folder>...`: tidy what a forced rerun that has ended
    left beside each result, whichever host ran it (sweep.py and jobs leave another host's alone);
    exit 1 if a folder could not be tidied."""
    from layerft.run_folder import tidy_finished  # it imports this module
    from layerft.sweep_records import HYDRA_SUBDIR

    if not argv:
        print("usage: python -m layerft.forced_rerun <job folder>...", file=sys.stderr)
        return 2
    failed = False
    for folder in map(Path, argv):
        note = folder / NOTE_FILE
        if not note.is_file():
            print(f"{folder}: no forced rerun's note: nothing to tidy")
            continue
        # Read before remove_dead_rerun, which removes an empty note (a rerun that stopped before
        # it set anything aside) as it removes a finished replacement's: they are told apart here.
        empty = note.stat().st_size == 0
        if tidy_finished(folder, folder / HYDRA_SUBDIR, any_host=True):
            print(f"{folder}: tidied")
        elif note.is_file():
            failed = True
            print(
                f"{folder}: left as it is: its rerun still runs on this host, its note is "
                "unreadable, or a file could not be removed (see above)",
                file=sys.stderr,
            )
        elif empty:
            print(f"{folder}: its rerun's note was empty (it had set nothing aside); tidied")
        else:
            print(f"{folder}: its rerun had replaced the result; tidied")
    return 1 if failed else 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    sys.exit(main(sys.argv[1:]))
