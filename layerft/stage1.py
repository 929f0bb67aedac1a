"""Stage-1 results stored once and reused: the injected weights and their metrics, under a content
key of exactly what they depend on (settings and data), with a file lock so that two jobs never
train the same one.

Layout under `<cache_dir>/stage1/`, `<key>` being `<settings digest>-<data digest>`:
    <key>/weights.safetensors   the injected layers (`layer.<i>.<name>`) and trained embeddings
    <key>/result.json           key data, stage-1 metrics, number of layers, who trained it
    <key>/history.jsonl         stage 1's logged steps (dev curves)
    <key>.lock                  held (flock) while a job trains it; the OS drops it if that job dies

A result folder is written under a temporary name and renamed, so it is complete or absent.

Serves no config group: `layerft/run.py` obtains each stage 1 here, from the store under `cache_dir`
when `reuse_stage1` is on.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from layerft.errors import LayerftError
from layerft.file_io import file_error, sync_to_disk
from layerft.file_lock import held_lock
from layerft.layer_split import InjectedWeights
from layerft.results import read_history
from layerft.stage1_key import Stage1Key

log = logging.getLogger(__name__)

RESULT_FILE = "result.json"
WEIGHTS_FILE = "weights.safetensors"


@dataclass(frozen=True)
class Stage1Result:
    """A stored stage-1 result, as a job that needs it reads it back."""

    injected: InjectedWeights
    metrics: dict[str, float]
    history: list[dict[str, float]]
    path: Path
    trained_by: str  # the run directory of the job that trained it
    stored: bool = True  # False: trained in this run and kept in memory only (reuse_stage1=false)


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


class Stage1Store:
    """The stage-1 results under one cache folder."""

    def __init__(self, cache_dir: Path) -> None:
        self.root = cache_dir / "stage1"

    def folder(self, key: Stage1Key) -> Path:
        return self.root / key.digest()

    def stored_with_settings(self, settings_digest: str) -> tuple[list[Path], list[Path]]:
        """The stored results trained with these settings, on whatever data (a sweep's plan knows
        the settings of its stage 1s but has not read their data), and the folders among them
        that lack their weights file (which a run refuses: `load` names them)."""
        folders = sorted(p.parent for p in self.root.glob(f"{settings_digest}-*/{RESULT_FILE}"))
        complete = [folder for folder in folders if (folder / WEIGHTS_FILE).is_file()]
        return complete, [folder for folder in folders if folder not in complete]

    def load(self, key: Stage1Key) -> Stage1Result | None:
        """The stored result of this key, or None if there is none (yet)."""
        folder = self.folder(key)
        result_path = folder / RESULT_FILE
        if not result_path.exists():
            return None
        try:
            record = json.loads(result_path.read_text(encoding="utf-8"))
            tensors = load_file(str(folder / WEIGHTS_FILE))
        except (OSError, ValueError, SafetensorError) as err:  # ValueError: bad JSON
            raise LayerftError(
                f"cannot read the stored stage-1 result in {folder} ({err}); remove that folder "
                "to train it again, or run with reuse_stage1=false"
            ) from err
        layers: list[dict[str, Any]] = [{} for _ in range(int(record["num_lower"]))]
        embeddings: dict[str, Any] = {}
        for name, tensor in tensors.items():
            part, rest = name.split(".", 1)
            if part == "embeddings":
                embeddings[rest] = tensor
            else:
                index, param = rest.split(".", 1)
                layers[int(index)][param] = tensor
        injected = InjectedWeights(layers=layers, embeddings=embeddings or None)
        metrics = {k: float(v) for k, v in record["metrics"].items()}
        history = read_history(folder)
        return Stage1Result(injected, metrics, history, folder, record["trained_by"])

    def save(
        self,
        key: Stage1Key,
        injected: InjectedWeights,
        metrics: dict[str, float],
        history: list[dict[str, float]],
        trained_by: Path,
    ) -> Stage1Result:
        """Store a freshly trained result (all files, then one rename) and return it as stored."""
        folder = self.folder(key)
        self.root.mkdir(parents=True, exist_ok=True)
        for leftover in self.root.glob(f".{folder.name}.*"):
            # of a save of this key that was killed (the caller holds the key's lock): it may
            # hold the weights, which nothing else would remove
            shutil.rmtree(leftover, ignore_errors=True)
        tmp = Path(tempfile.mkdtemp(dir=self.root, prefix=f".{folder.name}."))
        try:
            tensors = {
                f"layer.{i}.{name}": tensor.contiguous()
                for i, state in enumerate(injected.layers)
                for name, tensor in state.items()
            }
            for name, tensor in (injected.embeddings or {}).items():
                tensors[f"embeddings.{name}"] = tensor.contiguous()
            save_file(tensors, str(tmp / WEIGHTS_FILE))
            (tmp / "history.jsonl").write_text(
                "".join(json.dumps(h) + "\n" for h in history), encoding="utf-8"
            )
            record = {
                "key": key.data(),
                "metrics": metrics,
                "num_lower": len(injected.layers),
                "trained_by": str(trained_by),
            }
            (tmp / RESULT_FILE).write_text(
                json.dumps(record, indent=2, sort_keys=True, default=str), encoding="utf-8"
            )
            for path in tmp.iterdir():
                sync_to_disk(path)
            os.chmod(tmp, 0o755)  # mkdtemp makes it private
            if folder.exists():  # an unreadable leftover of an older layout: replaced
                shutil.rmtree(folder)
            os.replace(tmp, folder)
        except OSError as err:
            shutil.rmtree(tmp, ignore_errors=True)
            raise file_error("store the stage-1 result in", folder, err) from err
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return Stage1Result(injected, metrics, history, folder, str(trained_by))

    def lock(self, key: Stage1Key) -> contextlib.AbstractContextManager[None]:
        """Hold the key's lock (waiting, with one log line, while another job holds it)."""
        self.root.mkdir(parents=True, exist_ok=True)

        def wait(holder: str) -> None:
            log.info(
                "stage 1 %s is being trained by %s; waiting for it",
                key.digest(),
                holder or "another job",
            )

        return held_lock(self.root / f"{key.digest()}.lock", wait)


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
    together, so none waits on the lock to train: all read the store, all train if it has
    nothing, and the first process stores the result (under the lock, unless a job stored it first).
    """
    if store is None:
        return _kept_in_memory(train(), run_dir)
    found = store.load(key)
    if found is None:
        rank, world = ranks
        if world > 1:
            trained = train()
            if rank != 0:
                return _kept_in_memory(trained, run_dir)
            with store.lock(key):
                if store.load(key) is None:
                    return _stored(store, key, trained, run_dir)
            log.info("stage 1: trained; another job stored the same key meanwhile, kept as it is")
            return _kept_in_memory(trained, run_dir)
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
    # epochs=0 is a control whose layers stay pre-trained: "trained" would say otherwise.
    done = "trained" if key.task.epochs else "not trained (injection_task.epochs=0)"
    log.info("stage 1: %s, stored as %s", done, result.path)
    return Stage1Outcome(result, trained=True)
