"""A forced rerun of a finished result (`force_rerun=true`, `sweep.py --force`), and what one that
never replaced the result left beside it.

The result's metrics, history and W&B run stay while its rerun trains, and so do the checkpoints
kept with it (`trainer.keep_checkpoints=true`), set aside in `.checkpoints.replaced/` since the
rerun trains in the same folder: dropped once the rerun has replaced the result, put back if it
does not. The rerun keeps a note in the folder, locked for as long as it runs, naming the result's
bytes and W&B runs; it removes the note once it ends well. A note left unlocked is of a rerun that
failed or was killed (the OS drops a dead process's lock): beside the result lie its W&B run,
checkpoints and partial history, and Hydra's files describe its launch. A folder that keeps its result is never run again (sweep.py skips it), so whatever next
finds that result (sweep.py before its launch, a job at its start, the next forced rerun) removes
them, or `wandb sync` would upload a dead attempt as a second run of the combination.

Serves no config group: `layerft/run.py` notes a forced rerun, `layerft/run_folder.py` and
`layerft/sweep.py` tidy a result's folder.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import shutil
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import IO

from layerft.errors import LayerftError
from layerft.file_io import file_sha256
from layerft.results import HISTORY_FILE, METRICS_FILE, run_dir_errors
from layerft.tracker import remove_stale_runs, wandb_runs

log = logging.getLogger(__name__)

NOTE_FILE = ".forced_rerun.json"  # in a run folder while a forced rerun replaces its result
REPLACED_CHECKPOINTS = ".checkpoints.replaced"  # the result's kept checkpoints, while it does


@dataclass(frozen=True)
class Note:
    """What a forced rerun notes before it starts."""

    host: str
    # False where the rerun could not lock its note (a file system without locks, a lock daemon
    # down): nothing tells it from a dead one then, so it is never tidied.
    locked: bool
    result_sha256: str  # metrics.json's bytes: other bytes later, and the rerun replaced them
    wandb_runs: tuple[str, ...]  # the result's W&B run folders
    # The rerun raised and put the result's kept checkpoints back itself: those in checkpoints/
    # are the result's, not the attempt's.
    checkpoints_restored: bool = False

    @classmethod
    def parse(cls, text: str) -> Note:
        data = json.loads(text)
        note = cls(**{**data, "wandb_runs": tuple(data["wandb_runs"])})
        if not all(isinstance(name, str) for name in (note.host, note.result_sha256)):
            raise TypeError("host and result_sha256 must be text")
        return note


@contextlib.contextmanager
def noted_forced_rerun(run_dir: Path) -> Iterator[None]:
    """Hold a locked note in `run_dir` while a forced rerun replaces its result. Removed when the
    rerun ends well; left (unlocked) when it raises or its process dies, for `remove_dead_rerun`.
    Another forced rerun of the folder that is running already: an error."""
    remove_dead_rerun(run_dir)  # an earlier one's leftovers are no part of the result
    path = run_dir / NOTE_FILE
    with run_dir_errors(run_dir):  # a read-only or full disk: one line
        handle = path.open("a+", encoding="utf-8")
    with handle:
        with run_dir_errors(run_dir):
            note = _write_note(run_dir, handle)
            _set_aside_checkpoints(run_dir)  # after the note: a kill between leaves both
        try:
            yield
        except BaseException:
            if _restore_checkpoints(run_dir):  # the result's own again, as before the rerun
                with contextlib.suppress(OSError):  # else a tidy removes them as the attempt's
                    _write(handle, replace(note, checkpoints_restored=True))
            raise
        _drop_replaced_checkpoints(run_dir)
        path.unlink(missing_ok=True)


def _write_note(run_dir: Path, handle: IO[str]) -> Note:
    """Lock the open note (held until it closes, or the process dies), then write it."""
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        locked = True
    except BlockingIOError:
        raise LayerftError(f"{run_dir}: another forced rerun of it is running") from None
    except OSError:
        locked = False
    runs = tuple(run.name for run in wandb_runs(run_dir))
    note = Note(os.uname().nodename, locked, file_sha256(run_dir / METRICS_FILE), runs)
    _write(handle, note)
    return note


def _write(handle: IO[str], note: Note) -> None:
    handle.seek(0)
    handle.truncate()
    handle.write(json.dumps(asdict(note)))
    handle.flush()
    os.fsync(handle.fileno())


def remove_dead_rerun(run_dir: Path) -> bool:
    """Remove what a forced rerun that failed or was killed left beside the result in `run_dir`
    (its W&B runs, checkpoints, partial history); whether it did, so that the caller puts back
    the result's Hydra files (`run_folder.restore_hydra_files`), which its launch rewrote. Left
    alone: a rerun still running (its note locked), one that could not lock its note, and one on
    another host (whose lock may not be seen from here). Killed after it wrote its result, it is
    finished instead: the replaced result's W&B runs go. A file that cannot be removed is warned
    about."""
    path = run_dir / NOTE_FILE
    try:
        with path.open(encoding="utf-8") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:  # held: the rerun runs (or no locks here)
                return False
            try:
                note = Note.parse(handle.read())
            except (ValueError, KeyError, TypeError) as err:
                log.warning("%s: not a forced rerun's note (%s); left as it is", path, err)
                return False
            if not note.locked or note.host != os.uname().nodename:
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
    _drop_replaced_checkpoints(run_dir)


def _remove_dead_attempt(run_dir: Path, note: Note) -> None:
    dead = [run for run in wandb_runs(run_dir) if run.name not in note.wandb_runs]
    remove_stale_runs(run_dir, dead, "a forced rerun that did not finish")
    latest = run_dir / "wandb" / "latest-run"
    if latest.is_symlink() and not latest.exists():  # it pointed at the dead run
        latest.unlink()
    if not note.checkpoints_restored:
        _restore_checkpoints(run_dir)
    (run_dir / f"{HISTORY_FILE}.partial").unlink(missing_ok=True)
    log.info("removed what a forced rerun that did not finish left in %s", run_dir)


def _set_aside_checkpoints(run_dir: Path) -> None:
    """The result's kept checkpoints out of the rerun's way (the Trainer would rotate them out)."""
    from layerft.phase import CHECKPOINTS_DIR  # transformers

    # Already aside: an earlier rerun could not put them back (checkpoints/ held files of a user's).
    if (run_dir / CHECKPOINTS_DIR).is_dir() and not (run_dir / REPLACED_CHECKPOINTS).exists():
        (run_dir / CHECKPOINTS_DIR).rename(run_dir / REPLACED_CHECKPOINTS)


def _restore_checkpoints(run_dir: Path) -> bool:
    """Remove the rerun's checkpoints and put back the result's, if it kept some; whether it did
    (a failure is warned about: this runs while the rerun's own error goes on)."""
    from layerft.phase import CHECKPOINTS_DIR, remove_unfinished_checkpoints  # transformers

    checkpoints, kept = run_dir / CHECKPOINTS_DIR, run_dir / REPLACED_CHECKPOINTS
    try:
        stages = (
            [p.name for p in checkpoints.iterdir() if p.is_dir()] if checkpoints.is_dir() else []
        )
        remove_unfinished_checkpoints(run_dir, stages)
        for empty in [*(checkpoints / stage for stage in stages), checkpoints]:  # the Trainer's
            with contextlib.suppress(OSError):  # not empty, or gone
                empty.rmdir()
        if kept.is_dir() and checkpoints.exists():  # a user's own files there: nothing is merged
            log.warning(
                "%s holds other files: the result's checkpoints stay in %s", checkpoints, kept
            )
        elif kept.is_dir():
            kept.rename(checkpoints)
            return True
    except OSError as err:
        log.warning(
            "%s: could not put back the result's checkpoints from %s (%s)", run_dir, kept, err
        )
    return False


def _drop_replaced_checkpoints(run_dir: Path) -> None:
    """Remove the checkpoints of a result that was replaced."""
    shutil.rmtree(run_dir / REPLACED_CHECKPOINTS, ignore_errors=True)
