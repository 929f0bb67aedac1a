"""A finished result's kept checkpoints (`trainer.keep_checkpoints=true`) while a forced rerun
trains in its folder: set aside in `.checkpoints.replaced/` (the Trainer would rotate them out of
`checkpoints/`), dropped once the rerun has replaced the result, put back if it did not.

Whether that folder exists is the whole state, so each step can be cut short by a kill and done
again: set aside (one rename; an empty folder where the result kept none), then, after a rerun
that did not replace the result, the attempt's Trainer checkpoints removed and the folder renamed
back (the rename is the commit). Only the Trainer's `<stage>/checkpoint-<step>` folders are ever
removed: a file of one's own under `checkpoints/` goes aside and comes back with them.

Serves no config group: `layerft/forced_rerun.py` calls it as it notes and tidies a forced rerun.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
from pathlib import Path

from layerft.errors import LayerftError
from layerft.results import CHECKPOINTS_DIR

log = logging.getLogger(__name__)

REPLACED_DIR = ".checkpoints.replaced"
TRAINER_CHECKPOINTS = "*/checkpoint-*"  # transformers' PREFIX_CHECKPOINT_DIR, per stage folder


def set_aside(run_dir: Path) -> None:
    """Move the result's `checkpoints/` out of a forced rerun's way (an empty folder stands for
    none). One left by an earlier rerun that could not be put back: an error, naming it."""
    checkpoints, kept = run_dir / CHECKPOINTS_DIR, run_dir / REPLACED_DIR
    if kept.exists():
        raise LayerftError(
            f"{kept}: the checkpoints an earlier forced rerun set aside could not be put back; "
            f"move them back to {checkpoints} (or delete them) before rerunning"
        )
    if checkpoints.is_dir():
        checkpoints.rename(kept)
    else:
        kept.mkdir()


def put_back(run_dir: Path) -> None:
    """After a rerun that did not replace the result: remove its Trainer checkpoints, then rename
    the result's back. Nothing to do once they are back, or if they never went (a rerun killed
    before it set them aside: `checkpoints/` is still the result's)."""
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
    """After a rerun that replaced the result: remove the replaced result's Trainer checkpoints
    and give what else was aside back to `checkpoints/` (a name both hold stays aside, warned)."""
    checkpoints, kept = run_dir / CHECKPOINTS_DIR, run_dir / REPLACED_DIR
    if not kept.is_dir():
        return
    remove_trainer_checkpoints(kept)
    if kept.exists():
        _give_back(kept, checkpoints)


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


def remove_trainer_checkpoints(folder: Path) -> None:
    """Remove the Trainer's `<stage>/checkpoint-<step>` folders under `folder`, then the stage
    folders and `folder` itself where that left them empty."""
    for checkpoint in sorted(folder.glob(TRAINER_CHECKPOINTS)):
        if checkpoint.is_dir():
            shutil.rmtree(checkpoint)
    for empty in [*sorted(p for p in folder.glob("*") if p.is_dir()), folder]:
        with contextlib.suppress(OSError):  # not empty, or gone
            empty.rmdir()
