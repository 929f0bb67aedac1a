"""The identity of a model read from a local folder (a folder given as `model.hub_id`, a package's,
a converted one): the sha256 of each file that defines it, recorded with every result
(`run/model_files`, `run/model_folder`) and keyed into its stage 1, so that a checkpoint
re-exported or fine-tuned in place is another model, as an edited data file is other data. A hub
id or `model=tiny` has no folder: nothing is keyed; a hub id's snapshot commit is recorded
(`run/model_commit`, `run/model_ref`: hub_entries), and a result whose revision the local cache
serves from another commit later is on changed model files too (changed_snapshot).

Serves the `model` config group (`layerft/model.py` loads it). Imports nothing heavy: the tables
read records through here; `layerft/model.py` (torch) is imported where a folder is looked up.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
from collections.abc import Collection
from pathlib import Path
from typing import TYPE_CHECKING, Any

from layerft.errors import LayerftError
from layerft.file_io import file_sha256

if TYPE_CHECKING:
    from layerft.model import ModelConfig

MODEL_FILES_KEY = "run/model_files"  # file name -> sha256, of the files that define the model
MODEL_FOLDER_KEY = "run/model_folder"  # the folder they were read from (resolved)
# A hub model's: the snapshot commit the local cache served, and the {hub_id, revision} it served
# it for, so that a later plan or table can ask the cache again (changed_snapshot).
MODEL_COMMIT_KEY = "run/model_commit"
MODEL_REF_KEY = "run/model_ref"
# How the refusal to report a result computed from model files changed since names it
# (run_folder.check_same_data); a failed.json holding it is stale once those files are back.
ON_OTHER_MODEL = "is this config's result on other model files"

# What from_pretrained reads of a folder, whichever of them it has: the weights (safetensors
# only, sharded or not: layerft loads no .bin), the config, and every kind of tokenizer file
# (a fast tokenizer's JSON, WordPiece and BPE vocabularies, sentencepiece models). Not README.md,
# sentence-transformers' pooling configs or other files no run reads. A model's own code (the
# *.py of a folder whose config names some in `auto_map`) runs only under model.trust_remote_code,
# but counts always: turning that on must not meet results keyed without the code it would run.
# The files a tokenizer's vocabulary is read from, any one of them (with tokenizer_config.json).
TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "vocab.json", "*.model")
IDENTITY_FILES = (
    "*.safetensors", "*.safetensors.index.json", "config.json", "tokenizer_config.json",
    "special_tokens_map.json", "added_tokens.json", "merges.txt", *TOKENIZER_FILES,
)  # fmt: skip
CODE_FILES = "*.py"
CODE_NAMED_IN = ("config.json", "tokenizer_config.json")  # by an `auto_map` key


def model_folder(cfg: ModelConfig, cache_dir: Path | None) -> Path | None:
    """The local folder a run reads its model from (resolved; a converted one is written on first
    use, as the run would); None for a hub id or `model=tiny`."""
    from layerft.model import resolve_model_path

    if cfg.tiny is not None:
        return None
    if cfg.hub_id is not None:  # a path that is no folder fails where the model loads
        return Path(cfg.hub_id).expanduser().resolve() if local_folder(cfg) else None
    return Path(resolve_model_path(cfg, cache_dir)).resolve()


def local_folder(cfg: ModelConfig) -> bool:
    """Whether `model.hub_id` names a local folder (it is read as one, never as a hub id)."""
    return cfg.hub_id is not None and Path(cfg.hub_id).expanduser().is_dir()


def planned_model_folder(cfg: ModelConfig, cache_dir: Path | None) -> Path | None:
    """`model_folder` as a sweep's plan sees it: a converted folder not written yet, or a package
    not installed (the run stops on it), has no files to compare: None, and nothing is written."""
    from layerft.model import CONVERTED_AT

    try:
        if cfg.converted is not None and cache_dir is not None:
            folder = CONVERTED_AT[cfg.converted](cache_dir)
            return folder.resolve() if folder.is_dir() else None
        return model_folder(cfg, cache_dir)
    except LayerftError:
        return None


def model_file_digests(folder: Path | None) -> dict[str, str]:
    """File name -> sha256 of each file of `folder` that defines the model (IDENTITY_FILES), none
    without a folder. Each is hashed once per process while its size and mtime stay (file_sha256;
    config.json as _digest reads it)."""
    if folder is None:
        return {}
    patterns = (*IDENTITY_FILES, CODE_FILES) if _names_code(folder) else IDENTITY_FILES
    files = [
        path
        for path in folder.iterdir()
        if any(fnmatch.fnmatchcase(path.name, pattern) for pattern in patterns) and path.is_file()
    ]
    return {path.name: _digest(path) for path in sorted(files)}


def _names_code(folder: Path) -> bool:
    """Whether the folder's config names code of its own (`auto_map`): only then may a run read
    its *.py (a folder's other scripts never change a result)."""
    for name in CODE_NAMED_IN:
        try:
            if '"auto_map"' in (folder / name).read_text(encoding="utf-8", errors="replace"):
                return True
        except OSError:
            continue
    return False


def _digest(path: Path) -> str:
    """A file's sha256; a config's as its JSON less `transformers_version`, which `save_pretrained`
    stamps in: the same model converted again (e5_small_offline) after an upgrade is the same."""
    if path.name != "config.json":
        return file_sha256(path)
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError):  # not JSON: from_pretrained fails on it anyway
        return file_sha256(path)
    if isinstance(config, dict):
        config.pop("transformers_version", None)
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()


def hub_commit(cfg: ModelConfig) -> str | None:
    """The commit of a hub model's snapshot that the local Hugging Face cache serves for its
    `model.revision` (default: main): `run/model_commit`, read as the result is written, after
    training (a first run downloads while training), so a `main` that another process's download
    moved during the run is not told apart. None for a local folder, a package's or converted
    model, `tiny`, or a model the cache does not hold. A result is not keyed by it: a result
    whose revision the cache serves from another commit later is on other model files
    (changed_snapshot)."""
    if cfg.hub_id is None or local_folder(cfg):
        return None
    return _cached_commit(cfg.hub_id, cfg.revision)


def _cached_commit(hub_id: str, revision: str | None) -> str | None:
    """The snapshot commit the Hugging Face cache serves for `hub_id` at `revision`, if any."""
    snapshot = _cached_snapshot(hub_id, revision)
    return None if snapshot is None else snapshot.name


def _cached_snapshot(hub_id: str, revision: str | None) -> Path | None:
    """The snapshot folder the Hugging Face cache serves for `hub_id` at `revision`, if any."""
    from huggingface_hub import try_to_load_from_cache

    try:
        found = try_to_load_from_cache(hub_id, "config.json", revision=revision)
    except ValueError:  # not a valid repo id: the model did not load from the hub either
        return None
    return Path(found).parent if isinstance(found, str) else None


def files_folder(cfg: ModelConfig, cache_dir: Path | None) -> Path | None:
    """Where the model's files lie on this machine: model_folder's, or for a hub id the snapshot
    the local Hugging Face cache serves (None when it holds none)."""
    if cfg.hub_id is not None and not local_folder(cfg):
        return _cached_snapshot(cfg.hub_id, cfg.revision)
    return model_folder(cfg, cache_dir)


def hub_entries(cfg: ModelConfig) -> dict[str, Any]:
    """A record's `run/model_commit` and `run/model_ref` (none unless hub_commit finds one)."""
    commit = hub_commit(cfg)
    if commit is None:
        return {}
    return {
        MODEL_COMMIT_KEY: commit,
        MODEL_REF_KEY: {"hub_id": cfg.hub_id, "revision": cfg.revision},
    }


def changed_snapshot(record: dict[str, Any]) -> list[str]:
    """A hub model's result whose revision (`main`, a tag) the local cache now serves from another
    snapshot commit than the result's (a later download moved it): `<id>@<revision> (commit ...
    then, ... now)`. Not compared: a result recorded without its ref, or a model no longer
    cached."""
    ref, then = record.get(MODEL_REF_KEY), record.get(MODEL_COMMIT_KEY)
    if not (isinstance(ref, dict) and isinstance(ref.get("hub_id"), str) and isinstance(then, str)):
        return []
    revision = ref.get("revision") if isinstance(ref.get("revision"), str) else None
    now = _cached_commit(ref["hub_id"], revision)
    if now is None or now == then:
        return []
    return [f"{ref['hub_id']}@{revision or 'main'} (commit {then[:12]} then, {now[:12]} now)"]


def model_entries(folder: str | None, digests: dict[str, str]) -> dict[str, Any]:
    """A record's `run/model_folder` and `run/model_files`; none without a local folder."""
    return {} if folder is None else {MODEL_FOLDER_KEY: folder, MODEL_FILES_KEY: dict(digests)}


def changed_model_files(
    record: dict[str, Any], folder: str | None, digests: dict[str, str]
) -> list[str]:
    """The paths, in `folder`, of the model files whose bytes (`digests`, by name) differ from those
    a finished result's `record` was computed from: changed, added or gone. A result written
    before model files were recorded, or without a local folder, is not compared."""
    stored = record.get(MODEL_FILES_KEY)
    if not isinstance(stored, dict) or not isinstance(record.get(MODEL_FOLDER_KEY), str):
        return []  # recorded before model files were, or with no local folder: unknown
    if folder is None:  # a plan that cannot find the folder now (the run stops on it)
        return []
    names = {*stored, *digests}
    return [
        str(Path(folder) / name) for name in sorted(names) if stored.get(name) != digests.get(name)
    ]


def model_changed_since(record: dict[str, Any]) -> list[str]:
    """The model files of a finished result's record whose folder, at the path the run read, holds
    other bytes now, or the hub snapshot its revision names now (changed_snapshot): what a table
    reads without the config. A folder now gone is not compared."""
    folder = record.get(MODEL_FOLDER_KEY)
    if not isinstance(folder, str):
        return changed_snapshot(record)
    try:
        return changed_model_files(record, folder, model_file_digests(Path(folder)))
    except OSError:  # gone or unreadable now: not compared, as a missing data file
        return []


def on_other(data: Collection[object], model: Collection[object], files: bool = False) -> str:
    """What changed under results, for a message: `data` (`files`: `data files`), `model files`,
    or both, as `data` and `model` hold any."""
    kinds = (("data files" if files else "data", data), ("model files", model))
    return " and ".join(kind for kind, changed in kinds if changed)
