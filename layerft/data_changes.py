"""Whether a finished result was computed on the data files there now: by the sha256 of each
split's file its record keeps (`run/data_files`) and the path the run read (`run/data_paths`);
for a hub data set, by the snapshot commit the local Hugging Face cache serves for its `main`
(`run/data_commits`: a later download may have moved it to a new version of the data set).

Serves the `injection_task` and `target_task` config groups (their data), for a run's
folder check (`layerft/run_folder.py`), a sweep's plan (`layerft/sweep_status.py`) and its tables
(`layerft/sweep_job.py`); `layerft/model_files.py` does the same for a model's files.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from layerft.file_io import file_sha256
from layerft.run_record import DATA_COMMITS_KEY, DATA_FILES_KEY, DATA_PATHS_KEY

if TYPE_CHECKING:
    from layerft.task import TaskConfig


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


def hub_data_commit(hub_id: str) -> str | None:
    """The commit the local Hugging Face cache serves for a hub data set's `main` (datasets 5
    fetches its card there at each online load, of any of its configs, moving `refs/main` to the
    commit it reads), or None where the cache names none (cleared, or another cache folder than
    this process's). An offline load reads the newest of datasets' own prepared copies of the
    config instead (HF_DATASETS_CACHE), which is this commit's unless `refs/main` moved on since
    without that config being prepared (another config of the repo loaded online)."""
    from huggingface_hub import constants
    from huggingface_hub.file_download import repo_folder_name

    folder = repo_folder_name(repo_id=hub_id, repo_type="dataset")
    try:
        commit = (Path(constants.HF_HUB_CACHE) / folder / "refs" / "main").read_text().strip()
    except (OSError, UnicodeDecodeError):
        return None
    return commit if re.fullmatch(r"[0-9a-f]{40}", commit) else None


def hub_data_entries(tasks: dict[str, TaskConfig | None]) -> dict[str, Any]:
    """A record's `run/data_commits`, by config group, for the tasks read from the hub whose
    commit the cache names (read right after the run loads its data: later, another job's online
    load of the data set may have moved it on)."""
    commits = {
        group: {"hub_id": task.hub_id, "commit": commit}
        for group, task in tasks.items()
        if task is not None and task.hub_id and task.source == "hub"
        if (commit := hub_data_commit(task.hub_id)) is not None
    }
    return {DATA_COMMITS_KEY: commits} if commits else {}


def changed_hub_data(record: dict[str, Any]) -> list[str]:
    """A finished result's hub data sets whose `main` the cache serves from another commit now:
    `<group>: <id>@main (commit ... then, ... now)`. Not compared: a result recorded without its
    commit, or a data set the cache no longer names."""
    stored = record.get(DATA_COMMITS_KEY)
    changed = []
    for group, entry in sorted(stored.items()) if isinstance(stored, dict) else []:
        hub_id, then = (entry.get(k) for k in ("hub_id", "commit")) if isinstance(entry, dict) else (None, None)  # fmt: skip
        if not (isinstance(hub_id, str) and isinstance(then, str)):
            continue
        if (now := hub_data_commit(hub_id)) is not None and now != then:
            changed.append(f"{group}: {hub_id}@main (commit {then[:12]} then, {now[:12]} now)")
    return changed
