"""A forced rerun of a finished result (`force_rerun=true`, `sweep.py --force`), and what one that
never replaced the result left beside it.

The result's files stay while its rerun trains: the rerun writes a note first, naming the W&B runs
of the result and its own process, and removes it once it has replaced the result. A note still
there later is of a rerun that failed or was killed: its W&B run, checkpoints and partial history
lie beside the result, and Hydra's files describe its launch. A folder that keeps its result is
never run again (sweep.py skips it), so whatever next finds that result (sweep.py before its
launch, a job of `train.py -m` at its start) removes them, or `wandb sync` would upload a dead
attempt as a second run of the combination.

Serves no config group: `layerft/run.py` notes a forced rerun, `layerft/run_folder.py` and
`layerft/sweep.py` tidy a result's folder.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

from layerft.file_io import write_json_atomic
from layerft.results import HISTORY_FILE

log = logging.getLogger(__name__)

NOTE_FILE = ".forced_rerun.json"  # in a run folder while a forced rerun replaces its result


def note_forced_rerun(run_dir: Path, kept_runs: list[Path]) -> None:
    """Before a forced rerun starts its tracker: the W&B runs of the result it replaces, and who
    it is (removed by `forced_rerun_done`)."""
    note = {"pid": os.getpid(), "host": os.uname().nodename, "kept": [p.name for p in kept_runs]}
    write_json_atomic(run_dir / NOTE_FILE, note)


def forced_rerun_done(run_dir: Path) -> None:
    """The forced rerun replaced the result: nothing of it is left over."""
    (run_dir / NOTE_FILE).unlink(missing_ok=True)


def remove_dead_rerun(run_dir: Path, hydra_dir: Path | None) -> None:
    """Remove what a forced rerun that failed or was killed left beside the result in `run_dir`
    (its W&B runs, checkpoints, partial history), and put back the result's Hydra files into
    `hydra_dir` (kept in its `finished/`). A rerun whose process still lives (on this host; on
    another one it cannot be told) is left alone."""
    path = run_dir / NOTE_FILE
    try:
        note = json.loads(path.read_text(encoding="utf-8"))
        pid, host, kept = int(note["pid"]), str(note["host"]), {str(n) for n in note["kept"]}
    except FileNotFoundError:
        return
    except (OSError, ValueError, KeyError, TypeError) as err:
        log.warning("%s: unreadable (%s); what it names is left as it is", path, err)
        return
    if host != os.uname().nodename or _alive(pid):
        return
    from layerft.phase import remove_unfinished_checkpoints  # the Trainer's names: transformers
    from layerft.run import STAGES
    from layerft.tracker import remove_stale_runs, wandb_runs

    dead = [run for run in wandb_runs(run_dir) if run.name not in kept]
    remove_stale_runs(run_dir, dead, "a forced rerun that did not finish")
    remove_unfinished_checkpoints(run_dir, STAGES)
    (run_dir / f"{HISTORY_FILE}.partial").unlink(missing_ok=True)
    if hydra_dir is not None:
        for kept_file in (hydra_dir / "finished").glob("*.yaml"):
            shutil.copy2(kept_file, hydra_dir / kept_file.name)
    path.unlink()
    log.info("removed what a forced rerun that did not finish left in %s", run_dir)


def _alive(pid: int) -> bool:
    """Whether process `pid` runs on this host (this one included)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's
        return True
    return True
