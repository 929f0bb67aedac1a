"""Whether a finished result was computed on the data files there now: by the sha256 of each
split's file its record keeps (`run/data_files`) and the path the run read (`run/data_paths`);
for a hub data set, by the snapshot the local Hugging Face cache serves (`layerft/hub_data.py`).

Serves the `injection_task` and `target_task` config groups (their data), for a run's
folder check (`layerft/run_folder.py`), a sweep's plan (`layerft/sweep_status.py`) and its tables
(`layerft/sweep_job.py`); `layerft/model_files.py` does the same for a model's files.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from layerft.file_io import file_sha256
from layerft.hub_data import changed_hub_data
from layerft.run_record import DATA_FILES_KEY, DATA_PATHS_KEY


def changed_data(record: dict[str, Any], data_files: dict[str, str]) -> list[str]:
    """The splits whose data file differs from the one a finished result's `record` was computed
    on (a file now missing, or a result written before files were recorded, is not compared)."""
    stored = record.get(DATA_FILES_KEY)
    if not isinstance(stored, dict):
        return []
    return sorted(k for k, digest in data_files.items() if stored.get(k, digest) != digest)


def changed_since(record: dict[str, Any]) -> list[str]:
    """The splits of a finished result's record (its metrics.json) whose file, at the path the run
    read, now holds other bytes, then its hub data sets on another commit now (changed_hub_data):
    what a table reads without the config. A file now missing, or a result written before paths
    were recorded, is not compared."""
    digests, paths = record.get(DATA_FILES_KEY), record.get(DATA_PATHS_KEY)
    if not isinstance(digests, dict) or not isinstance(paths, dict):
        return changed_hub_data(record)
    changed = []
    for split, path in paths.items():
        file = Path(str(path))
        try:
            if file.is_file() and file_sha256(file) != digests.get(split):
                changed.append(split)
        except OSError:  # unreadable now: not compared, as a missing file
            continue
    return sorted(changed) + changed_hub_data(record)
