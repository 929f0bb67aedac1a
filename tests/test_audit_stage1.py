"""Lines a mutation audit of the way stage 1 reaches stage 2 found unguarded: the split's refusals
of a stage 1 of no layers and of a stage 2 that scales its injected layers to a standstill, the
transplant's refusal of injected weights that do not cover the layers they replace, a stage 1 kept
in memory as the run's own training, and the store's shared folders, its plan's count of a record
it cannot read and its one warning of a folder without weights (each test names the mutation it
kills)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch
from compose import compose_run

from layerft.errors import LayerftError
from layerft.layer_split import (
    InjectedWeights,
    Stage1Split,
    Stage2Split,
    extract_injected,
    transplant,
)
from layerft.stage1 import obtain_stage1
from layerft.stage1_key import Stage1Key
from layerft.stage1_store import ANY_THREADS, RESULT_FILE, WEIGHTS_FILE, Stage1Store
from layerft.stage_models import build_injection_model, fresh_model

TINY = ("model=tiny", "tracker=none")

# --- layer_split: what a split refuses -----------------------------------------------------------


def test_a_split_of_no_lower_layers_is_refused() -> None:
    """Kills `num_lower < 1` -> `< 0`: `layer_split.stage1.num_lower=0` would train stage 1's
    head alone and transplant nothing, a run that claims a split it never made."""
    with pytest.raises(LayerftError, match=r"^layer_split: num_lower must be >= 1, got 0$"):
        Stage1Split(num_lower=0)
    assert Stage1Split(num_lower=1).num_lower == 1


def test_a_stage2_lr_multiplier_of_zero_is_refused() -> None:
    """Kills `lr_multiplier <= 0` -> `< 0`: policy=scale at 0 would freeze the injected layers
    while the run says they train."""
    with pytest.raises(LayerftError, match=r"^layer_split: lr_multiplier must be > 0, got 0"):
        Stage2Split(lr_multiplier=0.0)
    assert Stage2Split(lr_multiplier=1e-9).lr_multiplier == 1e-9


# --- layer_split: the transplant -----------------------------------------------------------------


@pytest.mark.parametrize("part", ["layer", "embeddings"])
def test_injected_weights_missing_a_tensor_are_refused_not_half_transplanted(part: str) -> None:
    """Kills `load_state_dict(state, strict=True)` -> `strict=False` (either call): an injected
    layer (or embeddings) without one of its tensors (a store entry's weights file edited or
    copied in part) would keep that tensor pre-trained and run stage 2 on a half-transplant."""
    cfg = compose_run(*TINY, "layer_split=lower_half")
    stage1, n = build_injection_model(cfg)
    injected = extract_injected(stage1, cfg.layer_split.stage1, n)
    assert injected.embeddings is not None
    state = injected.layers[1] if part == "layer" else injected.embeddings
    dropped = sorted(state)[0]
    del state[dropped]
    target = fresh_model(cfg, cfg.target_task)
    with pytest.raises(RuntimeError, match=rf'Missing key\(s\) in state_dict: "{dropped}"'):
        transplant(target, injected, Stage2Split(transplant_embeddings=True))


# --- stage1 ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("reuse", [False, True])
def test_a_stage1_kept_in_memory_is_this_runs_own_training(tmp_path: Path, reuse: bool) -> None:
    """Kills `_kept_in_memory(...)` -> `trained=False`: under reuse_stage1=false (and in a
    second torchrun process) run.py would replay stage 1's logged steps into the history and
    tracker a second time, as if reused, and the run would not own the stage 1 it trained."""
    key = Stage1Key.of(compose_run(*TINY, "injection_task=demo_pos"), "data")
    weights = InjectedWeights(layers=[{"w": torch.zeros(2)}], embeddings=None)
    store = Stage1Store(tmp_path / "cache") if reuse else None
    run_dir = tmp_path / "run"
    got = obtain_stage1(store, key, lambda: (weights, {}, [{"step": 1}]), run_dir, (1, 2))
    assert got.trained and got.produced_in(run_dir)
    assert got.entry() == {"status": "trained", "stored": False}


def test_a_torchrun_process_that_alone_found_the_stored_stage1_trains_with_the_others(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Another job stored the key between two processes' reads: the later process reused it while
    # the first trained, and the job hung at the first collective of stage 2.
    from layerft import stage1

    key = Stage1Key.of(compose_run(*TINY, "injection_task=demo_pos"), "data")
    store = Stage1Store(tmp_path / "cache")
    stored = InjectedWeights(layers=[{"w": torch.zeros(2)}], embeddings=None)
    store.save(key, stored, {}, [], tmp_path / "other")
    asked: list[tuple[bool, str]] = []
    monkeypatch.setattr(stage1, "every_process", lambda holds, q: asked.append((holds, q)))
    mine = InjectedWeights(layers=[{"w": torch.ones(2)}], embeddings=None)
    got = obtain_stage1(store, key, lambda: (mine, {}, [{"step": 1}]), tmp_path / "run", (1, 2))
    assert asked == [(True, "stage1-stored")] and got.trained
    assert got.result.injected.layers[0]["w"][0].item() == 1.0
    monkeypatch.setattr(stage1, "every_process", lambda holds, q: holds)  # all found it
    got = obtain_stage1(store, key, lambda: (mine, {}, []), tmp_path / "run", (1, 2))
    assert not got.trained and got.result.injected.layers[0]["w"][0].item() == 0.0


# --- stage1_store --------------------------------------------------------------------------------


def _stored(tmp_path: Path) -> tuple[Stage1Store, Stage1Key]:
    """A store holding one stage 1 of a tiny model's demo_pos key."""
    key = Stage1Key.of(compose_run(*TINY, "injection_task=demo_pos"), "data")
    store = Stage1Store(tmp_path)
    weights = InjectedWeights(layers=[{"w": torch.zeros(2)}], embeddings=None)
    store.save(key, weights, {}, [], tmp_path / "run")
    return store, key


def test_a_stored_stage1_is_readable_by_the_other_users_of_the_cache(tmp_path: Path) -> None:
    """Kills dropping `os.chmod(tmp, 0o755)`: mkdtemp's folder is private (0o700), so a
    cache_dir shared between users would hold stage 1s that only their trainer can reuse."""
    store, key = _stored(tmp_path)
    assert store.folder(key).stat().st_mode & 0o777 == 0o755


def test_the_plan_counts_a_stored_stage1_whose_record_it_cannot_read(tmp_path: Path) -> None:
    """Kills `_keyed_as` returning False (not True) where the record's key cannot be read: the
    plan would say the run trains that stage 1, while the run stops on the damaged folder."""
    store, key = _stored(tmp_path)
    (store.folder(key) / RESULT_FILE).write_text("{", encoding="utf-8")
    assert store.holds(key.settings_digest(), set(), None, ANY_THREADS)
    with pytest.raises(LayerftError, match="cannot read the stored stage-1 result"):
        store.load(key)


def test_a_stored_stage1_without_weights_is_warned_of_once(tmp_path: Path, caplog) -> None:
    """Kills dropping `warned.add(folder)`: a grid asks once per combination, and each of them
    would repeat the warning."""
    store, key = _stored(tmp_path)
    (store.folder(key) / WEIGHTS_FILE).unlink()
    warned: set[Path] = set()
    with caplog.at_level(logging.WARNING, logger="layerft.stage1_store"):
        for _ in range(3):
            assert not store.holds(key.settings_digest(), warned, None, ANY_THREADS)
    assert warned == {store.folder(key)}
    assert [r.getMessage().count(f"has no {WEIGHTS_FILE}") for r in caplog.records] == [1]
