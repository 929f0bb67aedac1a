"""Stage 1 trained once and reused: a job takes the stored result of its key if the store has
one (`layerft/stage1_store.py`), else trains it and stores it for the next job, holding the key's
lock meanwhile so that two jobs never train the same one; with `reuse_stage1=false`, it trains and
keeps the result in memory only.

Serves no config group: `layerft/run.py` obtains each stage 1 here, from the store under `cache_dir`
when `reuse_stage1` is on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from layerft.layer_split import InjectedWeights
from layerft.processes import every_process
from layerft.stage1_key import Stage1Key
from layerft.stage1_store import Stage1Result, Stage1Store

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Stage1Outcome:
    """What a job used: the result and whether it trained it or reused it (for logs and metrics.json)."""

    result: Stage1Result
    trained: bool

    def produced_in(self, run_dir: Path) -> bool:
        """Whether the result is this run folder's own: trained here now, or earlier by the run
        whose folder this is (a forced rerun in it replaces that run's tracker record)."""
        trained_by = Path(self.result.trained_by) if self.result.stored else None
        return self.trained or (
            trained_by is not None and trained_by.resolve() == run_dir.resolve()
        )

    def entry(self) -> dict[str, Any]:
        """The `run/stage1` entry of metrics.json."""
        if not self.result.stored:
            return {"status": "trained", "stored": False}
        return {
            "status": "trained" if self.trained else "reused",
            "key": self.result.path.name,
            "path": str(self.result.path),
            "trained_by": self.result.trained_by,
        }


Trained = tuple[InjectedWeights, dict[str, float], list[dict[str, float]]]  # what train() returns


def obtain_stage1(
    store: Stage1Store | None,
    key: Stage1Key,
    train: Callable[[], Trained],
    run_dir: Path,
    ranks: tuple[int, int] = (0, 1),
) -> Stage1Outcome:
    """The stored result of `key` if there is one, else `train()`'s, stored for the next job.

    Without a store (reuse_stage1=false) stage 1 is trained and kept in memory only. Under
    torchrun (`ranks` = (rank, world size) with more than one process) every process must train
    together, so none waits on the lock to train: all read the store, all train unless every one
    found the result there, and the first process stores the result (under the lock, unless a job
    stored it first).
    """
    if store is None:
        outcome = _kept_in_memory(train(), run_dir)
        log.info("stage 1: %s, not stored (reuse_stage1=false)", _done(key))
        return outcome
    found = store.load(key)
    rank, world = ranks
    if world > 1 and not every_process(found is not None, "stage1-stored"):
        trained = train()  # by all, a process that found it (stored an instant ago) included
        if rank != 0:
            return _kept_in_memory(trained, run_dir)
        with store.lock(key):
            if store.load(key) is None:
                return _stored(store, key, trained, run_dir)
        log.info("stage 1: trained; another job stored the same key meanwhile, kept as it is")
        return _kept_in_memory(trained, run_dir)
    if found is None:
        with store.lock(key):
            found = store.load(key)  # trained by the job we waited for
            if found is None:
                return _stored(store, key, train(), run_dir)
    log.info("stage 1: reused %s (trained by %s)", found.path, found.trained_by)
    return Stage1Outcome(found, trained=False)


def _kept_in_memory(trained: Trained, run_dir: Path) -> Stage1Outcome:
    injected, metrics, history = trained
    return Stage1Outcome(
        Stage1Result(injected, metrics, history, run_dir, str(run_dir), stored=False), trained=True
    )


def _stored(store: Stage1Store, key: Stage1Key, trained: Trained, run_dir: Path) -> Stage1Outcome:
    """Store what this job trained (the caller holds the key's lock)."""
    result = store.save(key, *trained, run_dir)
    log.info("stage 1: %s, stored as %s", _done(key), result.path)
    return Stage1Outcome(result, trained=True)


def _done(key: Stage1Key) -> str:
    """What the log says of a stage 1 this job ran: epochs=0 is a control whose layers stay
    pre-trained, which "trained" would deny."""
    return "trained" if key.task.epochs else "not trained (injection_task.epochs=0)"
