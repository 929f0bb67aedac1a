"""Lines a mutation audit of loading found unguarded: the tokenized-data cache's key and its
refusal of an entry of other records, a model folder's identity files and the paths they are
recorded under, a hub model's recorded ref, and a sweep plan's reading of a model folder that is
no hub id (each test names the mutation it kills)."""

from __future__ import annotations

import copy
import json
import logging
from pathlib import Path
from typing import Any

import huggingface_hub
import pytest
from compose import compose_run
from datasets import Dataset
from test_model_files import hub_cache

from layerft import model as model_module
from layerft import network, tokenized
from layerft.model import ModelConfig, load_tokenizer
from layerft.model_files import (
    MODEL_FILES_KEY,
    MODEL_FOLDER_KEY,
    changed_model_files,
    hub_commit,
    hub_entries,
    model_changed_since,
    model_file_digests,
    model_folder,
    planned_model_folder,
)
from layerft.model_hub import hub_model_error, unreachable_error, unreachable_hub_error
from layerft.tokenized import tokenize, tokenized_key

CLOSED_PORT = "http://127.0.0.1:9"  # nothing listens there: a hub that does not answer


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """HF_HUB_OFFLINE, as CI sets it."""
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)


@pytest.fixture
def hub_down(monkeypatch: pytest.MonkeyPatch) -> None:
    """Online mode, the hub's endpoint a closed local port, no probe result cached."""
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", CLOSED_PORT)
    network.probe_endpoint.cache_clear()
    yield
    network.probe_endpoint.cache_clear()


def model_folder_at(folder: Path, *names: str) -> Path:
    """A folder holding the files `names` (bytes that name them)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_text(name, encoding="utf-8")
    return folder


# --- tokenized: the cache key and the entries it reads back ------------------------------------


def _sentiment() -> tuple[Any, Any]:
    task = compose_run("model=tiny", "target_task=demo_sentiment").target_task
    return task, load_tokenizer(compose_run("model=tiny").model)


def test_another_max_length_is_tokenized_again_not_read_from_the_cache(tmp_path: Path) -> None:
    """Kills `str(task.max_length)` dropped from tokenized_key: a run at a longer max_length
    would train on the shorter one's truncated tokens, read back from the cache."""
    task, tokenizer = _sentiment()
    longer = copy.copy(task)
    longer.max_length = task.max_length + 8
    records = Dataset.from_list([{"text_a": "a " * 200, "label": 1}])
    assert tokenized_key(records, task, tokenizer) != tokenized_key(records, longer, tokenizer)
    lengths = [tokenize(records, t, tokenizer, tmp_path)["length"] for t in (task, longer)]
    assert lengths == [[task.max_length], [task.max_length + 8]]


def test_a_bumped_format_version_keys_the_same_data_anew(monkeypatch) -> None:
    """Kills TOKENIZED_FORMAT_VERSION dropped from tokenized_key: bumping it after an encoder's
    change would no longer set aside the entries the old encoder wrote."""
    task, tokenizer = _sentiment()
    records = Dataset.from_list([{"text_a": "a b c", "label": 1}])
    before = tokenized_key(records, task, tokenizer)
    monkeypatch.setattr(tokenized, "TOKENIZED_FORMAT_VERSION", "bumped")
    assert tokenized_key(records, task, tokenizer) != before


def test_an_entry_of_more_records_than_the_splits_is_rebuilt(tmp_path: Path, caplog) -> None:
    """Kills `found == rows` -> `found >= rows` (and the message's counts swapped): an entry
    holding more features than the split has records (another split's, a bad copy) is not this
    split's tokenization."""
    task, tokenizer = _sentiment()
    rows = [{"text_a": text, "label": 0} for text in ("a", "b c", "d e f")]
    tokenize(Dataset.from_list(rows), task, tokenizer, tmp_path, key="k")
    with caplog.at_level(logging.WARNING, logger="layerft.tokenized"):
        again = tokenize(Dataset.from_list(rows[:2]), task, tokenizer, tmp_path, key="k")
    assert again["length"] == [3, 4]
    assert [r.getMessage() for r in caplog.records if r.name == "layerft.tokenized"] == [
        f"{tmp_path / 'k.arrow'}: broken tokenization cache entry (3 records, expected 2); "
        "rebuilding it"
    ]


# --- model_files: what identifies a model folder, and where ------------------------------------


@pytest.mark.parametrize(
    "name", ["merges.txt", "spiece.model", "added_tokens.json", "special_tokens_map.json"]
)
def test_each_tokenizer_file_is_one_of_the_models_files(tmp_path: Path, name: str) -> None:
    """Kills dropping `merges.txt` (a BPE tokenizer's merges) or `*.model` (a sentencepiece
    model) from IDENTITY_FILES: a folder whose tokenizer was replaced kept its results."""
    folder = model_folder_at(tmp_path, "config.json", name, "README.md")
    assert sorted(model_file_digests(folder)) == sorted(["config.json", name])


def test_code_a_tokenizer_config_names_is_part_of_the_models_identity(tmp_path: Path) -> None:
    """Kills `tokenizer_config.json` dropped from CODE_NAMED_IN: a custom tokenizer's code
    (auto_map in tokenizer_config.json alone) runs under trust_remote_code too."""
    folder = model_folder_at(tmp_path, "config.json", "tokenization_x.py")
    (folder / "tokenizer_config.json").write_text(
        json.dumps({"auto_map": {"AutoTokenizer": ["tokenization_x.XTokenizer", None]}})
    )
    assert "tokenization_x.py" in model_file_digests(folder)


def test_a_folder_named_as_a_model_file_is_not_hashed(tmp_path: Path) -> None:
    """Kills `and path.is_file()` dropped: a sub-folder whose name matches a pattern (an export
    `onnx.model/`) was hashed as a file, an IsADirectoryError instead of the model's files."""
    folder = model_folder_at(tmp_path, "config.json")
    (folder / "onnx.model").mkdir()
    assert list(model_file_digests(folder)) == ["config.json"]


def test_a_config_json_reordered_or_not_an_object_is_read_as_json(tmp_path: Path) -> None:
    """Kills `sort_keys=True` dropped from _digest (the same config written in another key
    order was another model) and `isinstance(config, dict)` dropped (a config.json holding a
    list was an AttributeError, not a digest)."""
    folder = model_folder_at(tmp_path)
    (folder / "config.json").write_text(json.dumps({"a": 1, "b": 2}))
    before = model_file_digests(folder)
    (folder / "config.json").write_text(json.dumps({"b": 2, "a": 1}, indent=2))
    assert model_file_digests(folder) == before
    (folder / "config.json").write_text("[1, 2]")
    assert set(model_file_digests(folder)) == {"config.json"}


@pytest.mark.parametrize("spelt", ["relative", "home"])
def test_a_model_folder_is_recorded_at_its_absolute_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, spelt: str
) -> None:
    """Kills `.resolve()` dropped from model_folder (a relative folder recorded as such, which a
    table run from elsewhere reads as another folder) and `.expanduser()` dropped from
    local_folder (`~/model` read as a hub id: no files keyed)."""
    folder = model_folder_at(tmp_path / "model", "config.json")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    hub_id = "model" if spelt == "relative" else "~/model"
    assert model_folder(ModelConfig(name="m", hub_id=hub_id), None) == folder.resolve()


def test_a_plan_finds_no_folder_of_a_model_not_converted_yet_or_not_installed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Kills planned_model_folder's `if folder.is_dir() else None` dropped (a converted folder
    not written yet was hashed: a FileNotFoundError stopped the plan) and its `except
    LayerftError` narrowed (a package not installed stopped the plan, which counts it by its
    settings and leaves the error to the run)."""
    monkeypatch.setitem(model_module.CONVERTED_AT, "e5_small", lambda cache: cache / "converted")
    converted = ModelConfig(name="c", converted="e5_small")
    assert planned_model_folder(converted, tmp_path) is None
    (tmp_path / "converted").mkdir()
    assert planned_model_folder(converted, tmp_path) == (tmp_path / "converted").resolve()
    missing = ModelConfig(name="p", package="layerft_audit_no_such_package")
    assert planned_model_folder(missing, tmp_path) is None


def test_a_record_without_a_folder_or_a_folder_gone_is_not_compared(tmp_path: Path) -> None:
    """Kills changed_model_files' `folder is None` check dropped, its check of the record's
    folder dropped, and model_changed_since's `except OSError` narrowed: a plan without the
    folder, a record without it and a folder gone since are none of them changed files."""
    record = {MODEL_FOLDER_KEY: str(tmp_path / "gone"), MODEL_FILES_KEY: {"config.json": "c"}}
    assert changed_model_files(record, None, {}) == []
    assert changed_model_files({MODEL_FILES_KEY: {"config.json": "c"}}, str(tmp_path), {}) == []
    assert model_changed_since(record) == []


def test_a_hub_models_ref_records_the_revision_it_loaded(hub_cache_dir: Path) -> None:
    """Kills `"revision": cfg.revision` -> None in hub_entries: a result at tag v1 would later
    be compared with what `main` serves."""
    commit = "1" * 40
    hub_cache(hub_cache_dir, {"v1": commit})
    cfg = ModelConfig(name="m", hub_id="acme/tiny-bert", revision="v1")
    assert hub_entries(cfg) == {
        "run/model_commit": commit,
        "run/model_ref": {"hub_id": "acme/tiny-bert", "revision": "v1"},
    }


def test_a_local_folder_spelt_as_a_cached_hub_id_records_no_commit(
    tmp_path: Path, hub_cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Kills `or local_folder(cfg)` dropped from hub_commit: a folder `acme/tiny-bert` beside
    the run, read as a folder, was recorded with the commit the cache serves for the hub id, and
    its result called changed once a download moved that id's `main`."""
    hub_cache(hub_cache_dir, {"main": "1" * 40})
    model_folder_at(tmp_path / "work" / "acme" / "tiny-bert", "config.json")
    monkeypatch.chdir(tmp_path / "work")
    cfg = ModelConfig(name="m", hub_id="acme/tiny-bert")
    assert hub_commit(cfg) is None and hub_entries(cfg) == {}


def test_hub_commit_of_a_hub_id_the_cache_cannot_look_up_is_none(hub_cache_dir: Path) -> None:
    """Kills `except ValueError` narrowed in _cached_snapshot (an id huggingface_hub calls
    invalid raised instead of being not cached) and `isinstance(found, str)` loosened (a
    config.json the cache recorded as absent raised a TypeError instead)."""
    commit = "1" * 40
    assert hub_commit(ModelConfig(name="m", hub_id="not a//valid id")) is None
    absent = hub_cache_dir / "models--acme--absent"
    (absent / "refs").mkdir(parents=True)
    (absent / "refs" / "main").write_text(commit)
    (absent / ".no_exist" / commit).mkdir(parents=True)
    (absent / ".no_exist" / commit / "config.json").write_text("")
    assert hub_commit(ModelConfig(name="m", hub_id="acme/absent")) is None


# --- model_hub: a plan's reading of a model folder ---------------------------------------------


def test_a_folder_without_config_or_weights_names_both(tmp_path: Path) -> None:
    """Kills the config.json check dropped from folder_error (a folder of weights alone passed
    the plan, then each job failed) and `' and no '` -> `' and '` in its message."""
    empty = model_folder_at(tmp_path / "empty", "vocab.txt")
    error = hub_model_error(ModelConfig(name="m", hub_id=str(empty)))
    assert str(error) == (
        f"model 'm': the folder {empty} has no config.json and no model.safetensors; it needs "
        "config.json, the tokenizer's files and model.safetensors (weights load as safetensors "
        "only: convert a .bin with safetensors.torch.save_file)"
    )
    weights = model_folder_at(tmp_path / "weights", "model.safetensors")
    assert str(hub_model_error(ModelConfig(name="m", hub_id=str(weights)))).startswith(
        f"model 'm': the folder {weights} has no config.json; it needs"
    )


def test_a_relative_model_folder_is_read_as_a_folder_offline_and_online(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, hub_down: None
) -> None:
    """Kills `Path(cfg.hub_id).is_dir()` dropped from hub_model_error (offline, a plan refused
    `models/m` as a hub id not in the cache) and from unreachable_hub_error (online, a run from
    a folder failed on the hub not answering)."""
    model_folder_at(tmp_path / "models" / "m", "config.json", "model.safetensors")
    monkeypatch.chdir(tmp_path)
    cfg = ModelConfig(name="m", hub_id="models/m")
    assert unreachable_hub_error(cfg) is None and hub_model_error(cfg) is None
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    assert hub_model_error(cfg) is None


def test_a_home_folder_that_is_not_there_is_no_such_folder(tmp_path, monkeypatch, offline) -> None:
    """Kills `"~"` dropped from hub_model_error's folder prefixes: `~/models/m` was refused as a
    hub id the cache lacks, not as the missing folder it names."""
    monkeypatch.setenv("HOME", str(tmp_path))
    error = hub_model_error(ModelConfig(name="m", hub_id="~/models/m"))
    assert str(error) == f"model 'm': model.hub_id {tmp_path / 'models' / 'm'}: no such folder"


def test_a_hub_id_without_an_organisation_gets_no_folder_hint(tmp_path, monkeypatch) -> None:
    """Kills `parent.name and` dropped from unreachable_error: `bert-base-uncased` run from a
    folder of model folders was called a mistyped folder of `.`."""
    model_folder_at(tmp_path / "minilm", "config.json")
    monkeypatch.chdir(tmp_path)
    message = str(unreachable_error(ModelConfig(name="m", hub_id="bert-base-uncased"), "gone"))
    assert message.startswith("model 'm': could not load 'bert-base-uncased' (gone); offline,")


def test_a_package_model_that_cannot_load_is_named_by_its_package() -> None:
    """Kills `cfg.hub_id or cfg.package or cfg.converted` -> `cfg.hub_id` in unreachable_error:
    the message said it could not load 'None'."""
    message = str(unreachable_error(ModelConfig(name="p", package="somepkg"), "gone"))
    assert message.startswith("model 'p': could not load 'somepkg' (gone); offline,")
