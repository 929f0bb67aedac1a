"""Which version of a hub data set a result was computed on (`run/data_commits`): the commit the
local Hugging Face cache serves for its `main` as the run has loaded it, and the cache's blob of
each data file of that snapshot; and whether the cache serves other data now.

datasets 5 fetches a data set's card into the hub cache at each online load of any of its configs,
moving `refs/main` to the commit it reads, and the data files it downloads sit beside it in
`snapshots/<commit>/`, each a link to its content's blob. A new commit is not new data by itself
(a card edited, another config's files): where the cache holds the result's data files at the
new commit too, their blobs decide; where it holds none of their folders there (only another
config's files were fetched), nothing says the data changed, and the result stands. A result
whose snapshot held no data files (the hub cache cleared since datasets prepared its own copy) is
compared by its commit alone.

Serves the `injection_task` and `target_task` config groups (their hub data sets), for
`layerft/data_changes.py` and the run folder's and a sweep plan's checks.
"""

from __future__ import annotations

import os
import re
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from layerft.run_record import DATA_COMMITS_KEY

if TYPE_CHECKING:
    from layerft.task import TaskConfig

# A snapshot's files that describe the data set rather than hold it
METADATA = re.compile(r"(^|/)(README\.md|\.gitattributes|dataset_infos\.json|[^/]*\.py)$")


def _repo(hub_id: str) -> Path:
    from huggingface_hub import constants
    from huggingface_hub.file_download import repo_folder_name

    return Path(constants.HF_HUB_CACHE) / repo_folder_name(repo_id=hub_id, repo_type="dataset")


def hub_data_commit(hub_id: str) -> str | None:
    """The commit the local Hugging Face cache serves for a hub data set's `main`, or None where
    the cache names none (cleared, or another cache folder than this process's). An offline load
    reads the newest of datasets' own prepared copies of the config (HF_DATASETS_CACHE), which is
    this commit's unless another config's online load moved `main` on without it."""
    try:
        commit = (_repo(hub_id) / "refs" / "main").read_text().strip()
    except (OSError, UnicodeDecodeError):
        return None
    return commit if re.fullmatch(r"[0-9a-f]{40}", commit) else None


def snapshot_files(hub_id: str, commit: str, folders: set[str] | None = None) -> dict[str, str]:
    """`path in the repo` -> its blob (the name its link points to) of each data file the cache
    holds at `commit`, those in `folders` only if given; none where the cache copies files rather
    than linking them (some Windows set-ups)."""
    root = _repo(hub_id) / "snapshots" / commit
    files = {}
    for path in sorted(root.rglob("*")) if root.is_dir() else []:
        name = path.relative_to(root).as_posix()
        wanted = folders is None or _folder(name) in folders
        if wanted and path.is_symlink() and not METADATA.search(name):
            files[name] = Path(os.readlink(path)).name
    return files


def hub_data_entries(tasks: dict[str, TaskConfig | None]) -> dict[str, Any]:
    """A record's `run/data_commits`, by config group, for the tasks read from the hub whose
    commit the cache names: its id, commit and data files (read right after the run loads its
    data: later, another job's online load of the data set may move `main` on)."""
    commits = {
        group: {"hub_id": task.hub_id, "commit": commit, "files": _own_files(task, commit)}
        for group, task in tasks.items()
        if task is not None and task.hub_id and task.source == "hub"
        if (commit := hub_data_commit(task.hub_id)) is not None
    }
    return {DATA_COMMITS_KEY: commits} if commits else {}


def _own_files(task: TaskConfig, commit: str) -> dict[str, str]:
    """The snapshot's data files of the task's config: those in its folder where the repository
    keeps one per config (`nli/` of klue/klue, `mnli/` of nyu-mll/glue), else all (another
    config's files fetched at the same commit are kept then, and a change to them counts)."""
    assert task.hub_id is not None
    files = snapshot_files(task.hub_id, commit)
    config = task.hub_config
    own = {k: v for k, v in files.items() if config and k.startswith(f"{config}/")}
    return own or files


def changed_hub_data(record: dict[str, Any]) -> list[str]:
    """A finished result's hub data sets whose data the cache serves otherwise now: `<group>:
    <id>@main (commit ... then, ... now)`. Not compared: a result recorded without its commit, a
    data set the cache no longer names, a new commit at which the cache holds none of the
    folders of the result's data files."""
    stored = record.get(DATA_COMMITS_KEY)
    changed = []
    for group, entry in sorted(stored.items()) if isinstance(stored, dict) else []:
        entry = entry if isinstance(entry, dict) else {}
        hub_id, then, files = entry.get("hub_id"), entry.get("commit"), entry.get("files")
        if not (isinstance(hub_id, str) and isinstance(then, str)):
            continue
        if (now := hub_data_commit(hub_id)) is None or now == then:
            continue
        if isinstance(files, dict) and files:
            current = snapshot_files(hub_id, now, {_folder(name) for name in files})
            # Compared in the folders fetched at `now` (none: nothing says the data changed)
            fetched = {_folder(name) for name in current}
            if {k: v for k, v in files.items() if _folder(k) in fetched} == current:
                continue
        changed.append(f"{group}: {hub_id}@main (commit {then[:12]} then, {now[:12]} now)")
    return changed


def _folder(name: str) -> str:
    return str(PurePosixPath(name).parent)
