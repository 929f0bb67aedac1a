"""What a forced rerun could overwrite of the finished result it may replace, kept apart while it
trains in the result's folder: the kept checkpoints (`trainer.keep_checkpoints=true`), set aside in
`.checkpoints.replaced/` (the Trainer would rotate them out of `checkpoints/`), and copies of the
history and the kept Hydra files in `.result.replaced/` (the rerun publishes its own just before
its metrics, so a kill between them would leave them beside the old metrics). Once the rerun has
replaced the result they are dropped; if it did not, put back.

Whether each folder exists is the whole state, so each step can be cut short by a kill and done
again: set aside (a rename, an empty folder where the result kept no checkpoint; the copies,
each named by its path in the run folder, written elsewhere, then renamed), put back (the attempt's Trainer checkpoints removed, then a
rename; each copy moved back, then its folder removed). Only the Trainer's
`<stage>/checkpoint-<step>` folders are ever removed: a file of one's own under `checkpoints/`
goes aside and comes back with them.

Serves no config group: `layerft/forced_rerun.py` calls it as it notes and tidies a forced rerun.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import quote, unquote

from layerft.errors import LayerftError
from layerft.predictions import PREDICTIONS_FILE
from layerft.results import CHECKPOINTS_DIR, HISTORY_FILE

log = logging.getLogger(__name__)

REPLACED_DIR = ".checkpoints.replaced"
COPIES_DIR = ".result.replaced"
ABSENT = ".absent"  # a copy's name with this: the result had no such file or folder
TRAINER_CHECKPOINT = "checkpoint-*"  # transformers' PREFIX_CHECKPOINT_DIR, in a stage's folder


def check_clear(run_dir: Path) -> None:
    """Nothing an earlier rerun set aside is left (it could not be put back, or its note is
    gone): an error naming it, before a new rerun notes anything."""
    for left in (run_dir / REPLACED_DIR, run_dir / COPIES_DIR):
        if left.exists():
            raise LayerftError(
                f"{left}: what an earlier forced rerun set aside is not back in place; once that "
                f"rerun has ended, `python -m layerft.forced_rerun {run_dir}` puts it back"
            )


def set_aside(run_dir: Path, hydra_dir: Path | None) -> None:
    """Move the result's `checkpoints/` out of a forced rerun's way (an empty folder stands for
    none) and copy its history, dev predictions and kept Hydra files (`hydra_dir`: its Hydra subfolder, None
    outside Hydra); one it does not have is noted as absent, so that one the rerun writes goes."""
    checkpoints, kept = run_dir / CHECKPOINTS_DIR, run_dir / REPLACED_DIR
    check_clear(run_dir)
    originals = [run_dir / HISTORY_FILE, run_dir / PREDICTIONS_FILE]
    if hydra_dir is not None and hydra_dir.is_relative_to(run_dir):  # else not the result's own
        finished = hydra_dir / "finished"
        originals += sorted(finished.glob("*.yaml")) or [finished]  # none kept: all of it absent
    _remove_staging(run_dir)  # of a rerun killed while it copied
    staging = Path(tempfile.mkdtemp(dir=run_dir, prefix=f"{COPIES_DIR}."))
    for original in originals:
        copy = staging / _flat(original.relative_to(run_dir))
        if original.is_file():
            shutil.copy2(original, copy)
        else:
            copy.with_name(copy.name + ABSENT).touch()
    staging.rename(run_dir / COPIES_DIR)
    if checkpoints.is_dir():
        checkpoints.rename(kept)
    else:
        kept.mkdir()


def put_back(run_dir: Path) -> None:
    """After a rerun that did not replace the result: its history and kept Hydra files copied
    back, its Trainer checkpoints removed and the result's renamed back. Nothing to do once they
    are back, or if they never went (a rerun killed before it set them aside)."""
    _remove_staging(run_dir)
    copies = run_dir / COPIES_DIR
    if copies.is_dir():
        for copy in sorted(copies.iterdir()):
            if copy.name.endswith(ABSENT):  # the result had none: the rerun's goes
                original = run_dir / unquote(copy.name.removesuffix(ABSENT))
                if original.is_dir():
                    shutil.rmtree(original)
                original.unlink(missing_ok=True)
                copy.unlink()
                continue
            original = run_dir / unquote(copy.name)
            original.parent.mkdir(parents=True, exist_ok=True)
            os.replace(copy, original)
        shutil.rmtree(copies)
    checkpoints, kept = run_dir / CHECKPOINTS_DIR, run_dir / REPLACED_DIR
    if not kept.is_dir():
        return
    remove_trainer_checkpoints(checkpoints)
    if checkpoints.exists():  # files of one's own, made while the rerun ran
        for entry in sorted(checkpoints.iterdir()):
            if (kept / entry.name).exists():
                log.warning(
                    "%s and %s both hold %s: the result's checkpoints stay in %s; move them back "
                    "by hand", checkpoints, kept, entry.name, kept,
                )  # fmt: skip
                return
            entry.rename(kept / entry.name)
        checkpoints.rmdir()
    if any(kept.iterdir()):
        kept.rename(checkpoints)
    else:
        kept.rmdir()  # the result kept none


def drop(run_dir: Path) -> None:
    """After a rerun that replaced the result: the copies removed, and the replaced result's
    Trainer checkpoints; what else was aside goes back to `checkpoints/` (a name both hold stays
    aside, warned about)."""
    _remove_staging(run_dir)
    shutil.rmtree(run_dir / COPIES_DIR, ignore_errors=True)
    checkpoints, kept = run_dir / CHECKPOINTS_DIR, run_dir / REPLACED_DIR
    if not kept.is_dir():
        return
    remove_trainer_checkpoints(kept)
    if kept.exists():
        _give_back(kept, checkpoints)


def _flat(relative: Path) -> str:
    """A copy's file name: its path in the run folder as one name (`.hydra%2Ffinished%2F...`), so
    that no `.hydra/` folder inside the copies reads as a job folder's (sweep_records)."""
    return quote(relative.as_posix(), safe="")


def _remove_staging(run_dir: Path) -> None:
    """Copies a rerun killed while it made them left half made (never renamed into place)."""
    for staging in run_dir.glob(f"{COPIES_DIR}.*"):
        shutil.rmtree(staging, ignore_errors=True)


def _give_back(kept: Path, checkpoints: Path) -> None:
    if not checkpoints.exists():
        kept.rename(checkpoints)
        return
    for entry in sorted(kept.rglob("*"), reverse=True):  # the deepest first
        target = checkpoints / entry.relative_to(kept)
        if entry.is_dir():
            with contextlib.suppress(OSError):  # not empty: a name both hold is under it
                entry.rmdir()
        elif not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            entry.rename(target)
    with contextlib.suppress(OSError):
        kept.rmdir()
    if kept.exists():
        log.warning("%s: left as it is: %s holds the same names", kept, checkpoints)


def remove_trainer_checkpoints(folder: Path, stages: Iterable[str] = ("*",)) -> int:
    """Remove the Trainer's `<stage>/checkpoint-<step>` folders under `folder` (of `stages`, names
    or patterns), then those stage folders and `folder` itself where that left them empty; how
    many checkpoints it removed. Anything else under `folder` stays."""
    stage_dirs = sorted({path for stage in stages for path in folder.glob(stage) if path.is_dir()})
    removed = sorted(c for d in stage_dirs for c in d.glob(TRAINER_CHECKPOINT) if c.is_dir())
    for checkpoint in removed:
        shutil.rmtree(checkpoint)
    for empty in [*stage_dirs, folder]:
        with contextlib.suppress(OSError):  # not empty, or gone
            empty.rmdir()
    return len(removed)
