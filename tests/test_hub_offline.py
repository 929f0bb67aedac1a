"""Hub ids on a machine that cannot reach the hub: one clear error at once, not half a minute of retries."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import datasets
import huggingface_hub
import pytest
from compose import compose_run
from conftest import run_train

from layerft import network
from layerft.data import load_task_data
from layerft.errors import LayerftError
from layerft.model import load_tokenizer
from layerft.tiny_model import build_tiny_tokenizer

CLOSED_PORT = "http://127.0.0.1:9"  # discard: nothing listens there, connections are refused
ONLINE_MODE = {"HF_HUB_OFFLINE": "0", "HF_DATASETS_OFFLINE": "0", "HF_ENDPOINT": CLOSED_PORT}


@pytest.fixture
def hub_down(monkeypatch: pytest.MonkeyPatch) -> None:
    """The libraries in online mode, their endpoint a closed local port, no probe result cached."""
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", CLOSED_PORT)
    network.probe_endpoint.cache_clear()
    yield
    network.probe_endpoint.cache_clear()


def test_unreachable_hub_dataset_fails_at_once(tmp_path: Path, hub_down: None) -> None:
    task = compose_run("target_task=snli").target_task
    start = time.monotonic()
    with pytest.raises(LayerftError) as info:
        load_task_data(task, "target_task", build_tiny_tokenizer(), tmp_path, seed=0)
    assert time.monotonic() - start < 5
    message = str(info.value)
    assert (
        "stanfordnlp/snli" in message and CLOSED_PORT in message and "HF_HUB_OFFLINE=1" in message
    )
    assert "target_task.data_files.train=" in message and "\n" not in message
    assert "data_dir" not in message  # SNLI has no release folder layout


def test_the_offline_advice_offers_data_dir_only_with_its_release_files(tmp_path, hub_down) -> None:
    task = compose_run("target_task=klue_nli").target_task
    with pytest.raises(LayerftError) as info:
        load_task_data(task, "target_task", build_tiny_tokenizer(), tmp_path, seed=0)
    assert (
        "or target_task.data_dir=<folder with klue-nli-v1.1_train.json, klue-nli-v1.1_dev.json>"
        in str(info.value)
    )
    snli = compose_run("target_task=snli", f"target_task.data_dir={tmp_path}").target_task
    with pytest.raises(LayerftError, match=r"task 'snli' has no release folder layout for target"):
        load_task_data(snli, "target_task", build_tiny_tokenizer(), tmp_path, seed=0)


def test_unreachable_hub_model_fails_at_once(hub_down: None) -> None:
    start = time.monotonic()
    offline = r"model=minilm.*model=e5_small_offline.*model=tiny"  # every model that loads offline
    with pytest.raises(LayerftError, match=rf"model 'bert_base_uncased'.*{offline}"):
        load_tokenizer(compose_run("model=bert_base_uncased").model)
    assert time.monotonic() - start < 5


def test_in_offline_mode_the_error_does_not_suggest_offline_mode(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(LayerftError) as model_error:
        load_tokenizer(compose_run("model=bert_base_uncased").model)
    task = compose_run("target_task=snli").target_task
    with pytest.raises(LayerftError) as data_error:
        load_task_data(task, "target_task", build_tiny_tokenizer(), tmp_path, seed=0)
    for message in (str(model_error.value), str(data_error.value)):
        assert "offline mode is on: it is not there" in message, message
        assert "set HF_HUB_OFFLINE=1" not in message
    # HF_DATASETS_OFFLINE=1 alone: datasets is offline, the hub library not; the data's advice
    # follows datasets (setting HF_HUB_OFFLINE=1 would not help it).
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    with pytest.raises(LayerftError) as data_error:
        load_task_data(task, "target_task", build_tiny_tokenizer(), tmp_path, seed=0)
    assert "offline mode is on: it is not there" in str(data_error.value)
    assert "set HF_HUB_OFFLINE=1" not in str(data_error.value)


def test_the_hub_is_probed_once_per_process(hub_down: None) -> None:
    cfg = compose_run("model=bert_base_uncased").model
    for _ in range(3):
        with pytest.raises(LayerftError):
            load_tokenizer(cfg)
    assert network.probe_endpoint.cache_info().misses == 1


@pytest.mark.slow
@pytest.mark.parametrize(
    ("args", "names"),
    [
        (["injection_task=none", "target_task=snli"], "stanfordnlp/snli"),
        (["injection_task=none", "model=bert_base_uncased"], "google-bert/bert-base-uncased"),
    ],
)
def test_train_without_offline_mode_fails_fast(tmp_path: Path, args: list[str], names: str) -> None:
    # The same run in offline mode fails at the same point at once: the same imports, no network.
    # Its HF_ variable makes it a fresh interpreter, as the online run is (conftest forks a call
    # only without one): a forked baseline left out the ~5 s of imports under load.
    start = time.monotonic()
    offline = run_train(
        ["model=tiny", "tracker=none", *args], tmp_path / "offline", {"HF_HUB_OFFLINE": "1"}
    )
    baseline = time.monotonic() - start
    assert offline.returncode == 2 and "offline mode is on: it is not there" in offline.stderr, (
        offline.stderr
    )
    start = time.monotonic()
    proc = run_train(["model=tiny", "tracker=none", *args], tmp_path / "online", ONLINE_MODE)
    elapsed = time.monotonic() - start
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1 and names in lines[0], proc.stderr
    assert "Retrying" not in proc.stderr
    # The libraries' retries took over 30 s; the probe takes at most a few.
    assert elapsed < baseline + 15, (elapsed, baseline)


def test_a_sweep_with_hub_data_or_a_hub_model_stops_at_once_when_the_hub_is_down(
    tmp_path: Path, hub_down: None, capsys, plans_once
) -> None:
    # Each job had failed on it in turn (fast, but one after another); --dry-run had passed.
    # A run and its --dry-run plan the grid once (plans_once): the plan finds the hub down.
    from conftest import SHRINK

    from layerft import sweep as sweep_module

    # seed=1: the grid's 4 jobs of one seed (each main() plans them all)
    grid = [
        "demo",
        *(a for a in SHRINK if a != "model=tiny"),
        "seed=1",
        "--dir",
        str(tmp_path / "s"),
    ]
    for choice, name in (("target_task=snli", "stanfordnlp/snli"),
                         ("model=bert_base_uncased", "google-bert/bert-base-uncased")):  # fmt: skip
        model = [] if choice.startswith("model=") else ["model=tiny"]
        for dry_run in (["--dry-run"], []):
            assert sweep_module.main([*grid, *model, choice, *dry_run]) == 2
            [line] = capsys.readouterr().err.strip().splitlines()
            assert name in line and f"{CLOSED_PORT} does not answer" in line, line
    assert not (tmp_path / "s").exists()  # no job started, no folder made for the lock
    assert len(plans_once) == 2


def test_the_hub_settings_read_in_a_process_that_imported_nothing_else() -> None:
    # huggingface_hub's lazy attributes lack `constants` until something imports that submodule:
    # a plan asking first had stopped on an AttributeError.
    code = "from layerft.network import hub_constants; print(hub_constants().HF_HUB_OFFLINE)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.strip() in ("True", "False"), done.stderr
