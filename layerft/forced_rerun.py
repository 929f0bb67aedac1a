"""A forced rerun of a finished result (`force_rerun=true`, `sweep.py --force`), and what one that
never replaced the result left beside it.

The result's files stay while its rerun trains. The rerun keeps a note in the folder, locked for as
long as it runs, naming the W&B runs and checkpoints of the result; it removes the note once it
ends well. A note left unlocked is of a rerun that failed or was killed (the OS drops a dead
process's lock): beside the result lie its W&B run, checkpoints and partial history, and Hydra's
files describe its launch. A folder that keeps its result is never run again (sweep.py skips it),
so whatever next finds that result (sweep.py before its launch, a job at its start, the next
forced rerun) removes them, or `wandb sync` would upload a dead attempt as a second run of the
combination.

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
from pathlib import Path

from layerft.results import HISTORY_FILE, METRICS_FILE
from layerft.tracker import remove_stale_runs, wandb_runs

log = logging.getLogger(__name__)

NOTE_FILE = ".forced_rerun.json"  # in a run folder while a forced rerun replaces its result


@contextlib.contextmanager
def noted_forced_rerun(run_dir: Path) -> Iterator[None]:
    """Hold a locked note in `run_dir` while a forced rerun replaces its result: the result's W&B
    runs and checkpoints, and this host. Removed when the rerun ends well; left (unlocked) when it
    raises or the process dies, for `remove_dead_rerun`."""
    remove_dead_rerun(run_dir, None)  # an earlier one's leftovers are no part of the result
    note = {
        "host": os.uname().nodename,
        "wandb_runs": [run.name for run in wandb_runs(run_dir)],
        "checkpoints": _checkpoints(run_dir),
    }
    path = run_dir / NOTE_FILE
    with path.open("a+", encoding="utf-8") as handle:
        # Released when the file closes, or the process dies. A file system without locks fails
        # the finder's attempt too, which then leaves the note alone.
        with contextlib.suppress(OSError):
            fcntl.flock(handle, fcntl.LOCK_EX)
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps(note))
        handle.flush()
        yield
        path.unlink(missing_ok=True)  # not reached when the rerun raises


def remove_dead_rerun(run_dir: Path, hydra_dir: Path | None) -> None:
    """Remove what a forced rerun that failed or was killed left beside the result in `run_dir`
    (its W&B runs, checkpoints, partial history), and put back the result's Hydra files into
    `hydra_dir` (from its `finished/`; None: done by the caller). A rerun still running (its note
    locked, or written on another host, where a lock may not be seen) is left alone. Killed after
    it wrote its result, it is finished instead: the result's earlier W&B runs go. Best effort: a
    file that cannot be removed is warned about."""
    path = run_dir / NOTE_FILE
    try:
        with path.open("r+", encoding="utf-8") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:  # held: the rerun runs (or the file system cannot lock)
                return
            note = json.loads(handle.read())
            if note["host"] != os.uname().nodename:
                log.info(
                    "%s: left as it is, a forced rerun on %s may still run", path, note["host"]
                )
                return
            _tidy(run_dir, path, note, hydra_dir)
    except FileNotFoundError:
        return
    except (OSError, ValueError, KeyError, TypeError) as err:
        log.warning("%s: could not remove what it names (%s); left as it is", path, err)


def _tidy(run_dir: Path, path: Path, note: dict[str, list[str]], hydra_dir: Path | None) -> None:
    kept_runs = set(note["wandb_runs"])
    if (run_dir / METRICS_FILE).stat().st_mtime > path.stat().st_mtime:
        # killed after writing its result: the runs of the result it replaced are stale
        replaced = [run for run in wandb_runs(run_dir) if run.name in kept_runs]
        remove_stale_runs(run_dir, replaced, "the result a forced rerun replaced")
        path.unlink()
        return
    dead = [run for run in wandb_runs(run_dir) if run.name not in kept_runs]
    remove_stale_runs(run_dir, dead, "a forced rerun that did not finish")
    for checkpoint in set(_checkpoints(run_dir)) - set(note["checkpoints"]):
        shutil.rmtree(run_dir / checkpoint)
        for folder in (run_dir / checkpoint).parents[:2]:  # the stage's, then `checkpoints/`
            with contextlib.suppress(OSError):  # not empty: a kept checkpoint, a user's file
                folder.rmdir()
    (run_dir / f"{HISTORY_FILE}.partial").unlink(missing_ok=True)
    if hydra_dir is not None:
        for kept_file in (hydra_dir / "finished").glob("*.yaml"):
            shutil.copy2(kept_file, hydra_dir / kept_file.name)
    path.unlink()
    log.info("removed what a forced rerun that did not finish left in %s", run_dir)


def _checkpoints(run_dir: Path) -> list[str]:
    """The Trainer's checkpoint folders in `run_dir`, relative to it."""
    from layerft.phase import CHECKPOINTS_DIR, PREFIX_CHECKPOINT_DIR  # transformers: lazily

    found = (run_dir / CHECKPOINTS_DIR).glob(f"*/{PREFIX_CHECKPOINT_DIR}-*")
    return sorted(str(p.relative_to(run_dir)) for p in found)
