"""The stage-1 store: each stage-1 result stored once under a content key of exactly what it
depends on (settings and data), read back by every job that needs it, with a file lock so that two
jobs never train the same one (`layerft/stage1.py` decides when to train and when to reuse).

Layout under `<cache_dir>/stage1/`, `<key>` being `<settings digest>-<data digest>`:
    <key>/weights.safetensors   the injected layers (`layer.<i>.<name>`) and trained embeddings
    <key>/result.json           key data, stage-1 metrics, number of layers, who trained it, and a
                                hub model's snapshot commit (`run/model_commit`, `run/model_ref`)
    <key>/history.jsonl         stage 1's logged steps (dev curves)
    <key>.lock                  held (flock) while a job trains it; the OS drops it if that job dies

A result folder is written under a temporary name and renamed, so it is complete or absent. One
trained from a hub model whose revision the local cache now serves from another commit is not
reused: the job trains it again from the model it loads, and replaces it.

Serves no config group: `layerft/stage1.py` and a sweep's plan (`layerft/sweep_grid.py`) read it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from layerft.errors import LayerftError, error_line
from layerft.file_io import file_error, sync_to_disk, unwritten_weights
from layerft.file_lock import held_lock
from layerft.layer_split import InjectedWeights
from layerft.model_files import changed_snapshot, hub_entries
from layerft.results import read_history
from layerft.stage1_key import Stage1Key

log = logging.getLogger(__name__)

RESULT_FILE = "result.json"
WEIGHTS_FILE = "weights.safetensors"
# ValueError: bad JSON; the last three: a record or tensor names of another shape (edited)
_UNREADABLE = (OSError, ValueError, SafetensorError, LookupError, TypeError, AttributeError)


@dataclass(frozen=True)
class Stage1Result:
    """A stored stage-1 result, as a job that needs it reads it back."""

    injected: InjectedWeights
    metrics: dict[str, float]
    history: list[dict[str, float]]
    path: Path
    trained_by: str  # the run directory of the job that trained it
    stored: bool = True  # False: trained in this run and kept in memory only (reuse_stage1=false)


# A sweep's plan that cannot tell the CPU threads its jobs train at (Stage1Key.cpu_threads): a
# launcher whose jobs run elsewhere (submitit's).
ANY_THREADS = "any"


class Stage1Store:
    """The stage-1 results under one cache folder."""

    def __init__(self, cache_dir: Path) -> None:
        self.root = cache_dir / "stage1"
        self.stale: set[Path] = set()  # stored from a hub snapshot the cache no longer serves

    def folder(self, key: Stage1Key) -> Path:
        return self.root / key.digest()

    def stored_with_settings(self, settings_digest: str) -> tuple[list[Path], list[Path]]:
        """The stored results trained with these settings, on whatever data (a sweep's plan knows
        the settings of its stage 1s but has not read their data), and the folders among them
        that lack their weights file (which a run refuses: `load` names them)."""
        folders = sorted(p.parent for p in self.root.glob(f"{settings_digest}-*/{RESULT_FILE}"))
        complete = [folder for folder in folders if (folder / WEIGHTS_FILE).is_file()]
        return complete, [folder for folder in folders if folder not in complete]

    def holds(
        self,
        settings_digest: str,
        warned: set[Path],
        model_files: dict[str, str] | None = None,
        cpu_threads: int | str | None = ANY_THREADS,
    ) -> bool:
        """Whether a run with these stage-1 settings would reuse a stored result (a sweep's plan,
        before any data is read). A stored folder without its weights (which the run would stop
        on) is warned about once, not counted. With `model_files` (the model's, as the run keys
        them: none for a hub id or tiny), only one keyed by those files counts (one stored from
        other files, or before files were keyed, the run trains again); None: the plan cannot read
        them yet (a converted folder not written). Likewise `cpu_threads`, the count the jobs
        train at on a CPU (None on a GPU; ANY_THREADS: the plan cannot tell). Nor does one trained
        from a hub snapshot that the cache no longer serves for its revision."""
        complete, damaged = self.stored_with_settings(settings_digest)
        for folder in sorted(set(damaged) - warned):
            record = _stored_record(folder / RESULT_FILE) or {}
            if changed_snapshot(record) or not _keyed_as(record, model_files, cpu_threads):
                continue  # trained again, whatever it holds
            warned.add(folder)
            log.warning(
                "stored stage-1 result %s has no %s: a run on that data stops there; remove the "
                "folder to train it again",
                folder,
                WEIGHTS_FILE,
            )
        return any(_reused(folder / RESULT_FILE, model_files, cpu_threads) for folder in complete)

    def load(self, key: Stage1Key) -> Stage1Result | None:
        """The stored result of this key, or None if there is none (yet)."""
        folder = self.folder(key)
        result_path = folder / RESULT_FILE
        if not result_path.exists():
            return None
        try:
            record = json.loads(result_path.read_text(encoding="utf-8"))
            if changed := changed_snapshot(record):
                if folder not in self.stale:  # a job loads it twice: before and under the lock
                    self.stale.add(folder)
                    log.warning(
                        "stored stage 1 %s was trained from %s: training it again",
                        folder.name, changed[0],
                    )  # fmt: skip
                return None
            tensors = load_file(str(folder / WEIGHTS_FILE))
            injected = InjectedWeights.from_flat(tensors, int(record["num_lower"]))
            metrics = {k: float(v) for k, v in record["metrics"].items()}
            trained_by = str(record["trained_by"])
        except _UNREADABLE as err:
            raise LayerftError(
                f"cannot read the stored stage-1 result in {folder} ({error_line(err)}); remove "
                "that folder to train it again, or run with reuse_stage1=false"
            ) from err
        history = read_history(folder)
        return Stage1Result(injected, metrics, history, folder, trained_by)

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
            save_file(injected.flat(), str(tmp / WEIGHTS_FILE))
            (tmp / "history.jsonl").write_text(
                "".join(json.dumps(h) + "\n" for h in history), encoding="utf-8"
            )
            record = {
                "key": key.data(),
                "metrics": metrics,
                "num_lower": len(injected.layers),
                "trained_by": str(trained_by),
                **hub_entries(key.model),  # a hub model's snapshot: read back by load()
            }
            (tmp / RESULT_FILE).write_text(
                json.dumps(record, indent=2, sort_keys=True, default=str), encoding="utf-8"
            )
            for path in tmp.iterdir():
                sync_to_disk(path)
            os.chmod(tmp, 0o755)  # mkdtemp makes it private
            if folder.exists():  # stale (its hub snapshot), or unreadable: set aside, then removed
                os.replace(folder, tmp.with_name(f"{tmp.name}.old"))  # a reader meets it or this
            os.replace(tmp, folder)
            shutil.rmtree(tmp.with_name(f"{tmp.name}.old"), ignore_errors=True)
        except (OSError, SafetensorError) as err:  # safetensors' own error for a full disk
            shutil.rmtree(tmp, ignore_errors=True)
            if (system := err if isinstance(err, OSError) else unwritten_weights(err)) is None:
                raise
            raise file_error("store the stage-1 result in", folder, system) from err
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return Stage1Result(injected, metrics, history, folder, str(trained_by))

    def lock(self, key: Stage1Key) -> contextlib.AbstractContextManager[None]:
        """Hold the key's lock (waiting, with one log line, while another job holds it)."""

        def wait(holder: str) -> None:
            log.info(
                "stage 1 %s is being trained by %s; waiting for it",
                key.digest(),
                holder or "another job",
            )

        return held_lock(self.root / f"{key.digest()}.lock", wait)


def _stored_record(result: Path) -> dict[str, Any] | None:
    """A stored stage 1's record (result.json), or None where it cannot be read."""
    try:
        record = json.loads(result.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def _reused(
    result: Path, model_files: dict[str, str] | None, cpu_threads: int | str | None
) -> bool:
    """Whether a run keyed by `model_files` (None: any) and `cpu_threads` (ANY_THREADS: any) would
    reuse the stored stage 1 whose record this is."""
    record = _stored_record(result) or {}
    return _keyed_as(record, model_files, cpu_threads) and not changed_snapshot(record)


def _keyed_as(record: dict[str, Any], model_files: dict[str, str] | None, cpu_threads: Any) -> bool:
    """Whether a stored stage 1's record was keyed by these model files and CPU threads (as
    `_reused`); True where its key cannot be read (the run names it, should it load it)."""
    key = record.get("key")
    keyed = key.get("model_files", {}) if isinstance(key, dict) else None
    if not isinstance(key, dict) or not isinstance(keyed, dict):
        return True
    threads = cpu_threads == ANY_THREADS or key.get("cpu_threads") == cpu_threads
    return model_files in (None, keyed) and threads
