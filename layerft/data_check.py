"""A sweep's local data read and checked before any job runs: a bad record (a label not in
label_names, a missing column) would otherwise fail every job of the grid that reads it, one
after another, each after its imports.

Serves the `injection_task` and `target_task` config groups as a sweep plans them:
`layerft/sweep_grid.py` asks `record_error` of each combination, sweep.py refuses to launch one
with an error (sweep.check_launched_inputs), as train.py's run would stop on it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from layerft.errors import LayerftError
from layerft.kinds import kind_of
from layerft.task import SPLITS, TaskConfig

if TYPE_CHECKING:
    from layerft.config import RunConfig

# (task settings, split, file) -> the first error, or None: a grid checks each file once per
# task settings, however many combinations read it; its recipe reads no record
_CHECKED: dict[str, str | None] = {}
RECIPE = frozenset(
    {"lr", "epochs", "batch_size", "max_length", "weight_decay", "max_grad_norm",
     "evals_per_epoch", "head_dropout", "metrics", "best_metric"}
)  # fmt: skip


def record_error(run_cfg: RunConfig) -> str | None:
    """The first bad record of a local data file this run reads, as its run would report it (the
    target task's files first), or None; a hub dataset its runs cannot load too (offline: not in
    the local cache; online: the hub unreachable). Generated data and the hub's records are the
    run's to read; so is the data of a task that tags its texts as it reads them
    (kind.distinct_text: a silver tagger)."""
    tasks = (("target_task", run_cfg.target_task), ("injection_task", run_cfg.injection_task))
    for group, task in tasks:
        if task is None:
            continue
        if task.source == "hub":
            if error := _hub_error(task, group):
                return error
            continue
        if task.source not in ("data_files", "data_dir"):
            continue
        distinct = kind_of(task).distinct_text
        if distinct is not None and distinct(task) is not None:  # a silver tagger reads it
            continue
        for split in (*SPLITS, *task.extra_eval_splits):
            if error := _split_error(task, group, split):
                return error
    return None


def _hub_error(task: TaskConfig, group: str) -> str | None:
    """A hub dataset its runs cannot load (once per dataset): offline, one the cache lacks;
    online, an unreachable hub. Every job reading it would fail on it."""
    import datasets

    from layerft.records import hub_data_error

    cache = Path(datasets.config.HF_DATASETS_CACHE)  # a data set it gains changes its time
    changed = cache.stat().st_mtime_ns if cache.is_dir() else None
    offline = bool(datasets.config.HF_HUB_OFFLINE)
    # release_files: the error's hint names them (group.data_dir=<folder with ...>)
    key = json.dumps(["hub", group, task.name, task.hub_id, task.hub_config, task.release_files, str(cache), changed, offline])  # fmt: skip
    if key not in _CHECKED:
        with _errors_only():  # "Using the latest cached version": the run's to say
            error = hub_data_error(task, group)
        _CHECKED[key] = None if error is None else str(error)
    return _CHECKED[key]


def _split_error(task: TaskConfig, group: str, split: str) -> str | None:
    from layerft.records import normalise_records, read_split

    path = task.split_file(split)
    if path is None or not path.is_file():  # check_data_files names it
        return None
    stat = path.stat()
    read = {k: v for k, v in dataclasses.asdict(task).items() if k not in RECIPE}
    settings = json.dumps(read, sort_keys=True, default=str)
    key = json.dumps([settings, group, split, str(path.resolve()), stat.st_size, stat.st_mtime_ns])
    if key not in _CHECKED:
        try:
            with _errors_only():  # the run says what it reads; the plan says only errors
                records, origin = read_split(task, group, split)
                if not normalise_records(task, group, records, origin):  # as load_task_data says
                    raise LayerftError(f"{group} '{task.name}': {origin} has no labelled records")
            _CHECKED[key] = None
        except LayerftError as err:
            _CHECKED[key] = str(err)
    return _CHECKED[key]


@contextlib.contextmanager
def _errors_only() -> Iterator[None]:
    """No log record below ERROR meanwhile; then the level `logging.disable` had before."""
    before = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        yield
    finally:
        logging.disable(before)
