"""A model read from a local folder: its files' sha256 are recorded with the result and key its
stage 1, so weights re-exported or fine-tuned in place are another model (as an edited data file is
other data), and an unchanged folder is still reused."""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path

import pytest
from compose import compose_config, compose_run
from conftest import SHRINK, run_train

from layerft import hydra_job, run_folder, sweep_status, sweep_summary
from layerft.config import resolve_config
from layerft.errors import LayerftError
from layerft.model_files import (
    MODEL_FILES_KEY,
    MODEL_FOLDER_KEY,
    changed_snapshot,
    hub_commit,
    model_changed_since,
    model_file_digests,
)
from layerft.results import FAILED_FILE, METRICS_FILE, write_metrics
from layerft.run import stage1_for
from layerft.run_record import FINGERPRINT_KEY, RESULTS_VERSION, RESULTS_VERSION_KEY, RunRecord
from layerft.stage1_key import Stage1Key
from layerft.stage_data import load_stage_data
from layerft.sweep_grid import expand
from layerft.sweep_job import read_job
from layerft.sweep_records import _back_on_its_data
from layerft.tiny_model import TinyConfig, build_tiny_backbone, build_tiny_tokenizer

ENTRIES = {"run/choices": {}, "run/overrides": [], "run/sweep": None}


def save_tiny(folder: Path, init_seed: int = 0) -> Path:
    """`model=tiny`'s backbone and tokenizer as a Hugging Face folder; `init_seed` other weights."""
    tokenizer = build_tiny_tokenizer()
    backbone = build_tiny_backbone(TinyConfig(init_seed=init_seed), vocab_size=len(tokenizer))
    backbone.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def overrides(folder: Path, tmp_path: Path, *more: str) -> list[str]:
    """SHRINK's run with the model read from `folder` (a local folder given as model.hub_id)."""
    model = ["model=bert_base_uncased", f"model.hub_id={folder}", "model.pretrained_pooler=false"]
    shrunk = [arg for arg in SHRINK if arg != "model=tiny"]
    return [*model, *shrunk, f"cache_dir={tmp_path / 'cache'}", *more]


def record_of(args: list[str]) -> RunRecord:
    return hydra_job.build_run_record(
        compose_run(*args), resolve_config(compose_config(*args)), ENTRIES
    )


def test_a_result_on_model_files_changed_since_is_refused_and_an_unchanged_one_reused(
    tmp_path: Path,
) -> None:
    folder = save_tiny(tmp_path / "model")
    args = overrides(folder, tmp_path, "injection_task=none")
    first = record_of(args)
    assert first.model_folder == str(folder.resolve())
    assert set(first.model_files) == {
        "config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"
    }  # fmt: skip
    run_dir = tmp_path / "run"
    write_metrics(run_dir, {"target/eval_accuracy": 0.5}, first)
    # Unchanged, or saved again with the same bytes (newer mtimes): reused, as before.
    assert run_folder.previous_result(run_dir, record_of(args), None) is not None
    save_tiny(folder)
    assert record_of(args).model_files == first.model_files
    assert run_folder.previous_result(run_dir, record_of(args), None) is not None

    save_tiny(folder, init_seed=1)  # the checkpoint re-exported in place
    edited = record_of(args)
    assert edited.fingerprint == first.fingerprint
    assert edited.model_files["model.safetensors"] != first.model_files["model.safetensors"]
    assert edited.model_files["config.json"] == first.model_files["config.json"]
    with pytest.raises(LayerftError) as caught:
        run_folder.previous_result(run_dir, edited, None)
    assert str(caught.value) == (
        f"{run_dir / METRICS_FILE} is this config's result on other model files: "
        f"{folder.resolve() / 'model.safetensors'} changed since (its bytes' sha256); replace it "
        "with force_rerun=true (sweep.py --force), or run in a new folder "
        "(hydra.run.dir=<new folder>)"
    )
    # The table compares the folder the run read, without the config, and leaves it out.
    assert read_job(run_dir).changed == (str(folder.resolve() / "model.safetensors"),)
    # A result written before model files were recorded is served, as one without data hashes.
    stored = json.loads((run_dir / METRICS_FILE).read_text())
    del stored[MODEL_FILES_KEY], stored[MODEL_FOLDER_KEY]
    (run_dir / METRICS_FILE).write_text(json.dumps(stored))
    assert run_folder.previous_result(run_dir, edited, None) is not None
    assert read_job(run_dir).changed == ()


def test_a_sweep_plan_marks_a_result_on_changed_model_files(tmp_path: Path, capsys) -> None:
    folder = save_tiny(tmp_path / "model")
    grid = overrides(folder, tmp_path, "injection_task=none", "tuning_mode=full", "seed=1")
    [combination] = expand("demo", grid)
    assert combination.model_folder == str(folder.resolve())
    job = tmp_path / "sweep" / "job"
    job.mkdir(parents=True)
    record = {FINGERPRINT_KEY: combination.fingerprint, RESULTS_VERSION_KEY: RESULTS_VERSION,
              MODEL_FOLDER_KEY: combination.model_folder,
              MODEL_FILES_KEY: combination.model_files}  # fmt: skip
    (job / METRICS_FILE).write_text(json.dumps(record))
    state = sweep_status.status([combination], tmp_path / "sweep")
    assert len(state.done) == 1 and not state.stale  # unchanged: done, not rerun

    save_tiny(folder, init_seed=1)
    [edited] = expand("demo", grid)
    assert edited.fingerprint == combination.fingerprint
    state = sweep_status.status([edited], tmp_path / "sweep")
    assert not state.done and len(state.stale) == 1
    sweep_summary.print_plan([edited], state, False)
    sweep_summary.print_summary(state)
    weights = folder.resolve() / "model.safetensors"
    assert capsys.readouterr().out.splitlines() == [
        "1 combination, 0 distinct stage-1 trainings",
        f"  [done on other model files: {weights} changed] {edited.label}  (no stage 1)",
        "0 done, 0 to run",
        "1 done on model files changed since: not launched; rerun them with --force "
        "(overrides can narrow the grid to them)",
        "sweep: 0 finished, 0 failed, 0 not run, 1 on changed model files",
        f"  ON CHANGED MODEL FILES {edited.label}: {weights} changed since its result "
        f"({job / METRICS_FILE}); --force reruns it",
    ]


def test_a_stage1_is_reused_from_the_same_model_files_and_trained_again_from_changed_ones(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = save_tiny(tmp_path / "model")
    cfg = compose_run(*overrides(folder, tmp_path, "injection_task=demo_pos"))
    data = load_stage_data(cfg)
    assert data.injection is not None

    def stage1(run: str) -> tuple[str, Path]:
        outcome = stage1_for(cfg, data.injection, tmp_path / run, lambda metrics, step: None)
        return ("trained" if outcome.trained else "reused"), outcome.result.path

    with caplog.at_level(logging.INFO, logger="layerft.stage1"):
        status, stored = stage1("a")
        assert status == "trained"
        save_tiny(folder)  # the same bytes again: the same model
        assert stage1("b") == ("reused", stored)
        save_tiny(folder, init_seed=1)
        status, other = stage1("c")  # its layers would be the old checkpoint's: trained afresh
        assert status == "trained" and other != stored
        assert stage1("d") == ("reused", other)
    assert other.name.split("-")[0] == stored.name.split("-")[0]  # one stage 1 in a sweep's plan
    key = json.loads((other / "result.json").read_text())["key"]
    assert set(key["model_files"]) >= {"model.safetensors", "config.json"}
    assert caplog.text.count("stage 1: reused") == 2


def test_a_model_without_a_folder_records_nothing_and_keys_stage1_as_before(tmp_path) -> None:
    args = [*SHRINK, "injection_task=demo_pos"]
    record = record_of(args)
    assert record.model_folder is None and record.model_files == {}
    assert not {MODEL_FILES_KEY, MODEL_FOLDER_KEY} & set(record.entries())
    key = Stage1Key.of(compose_run(*args), "a" * 24)
    assert "model_files" not in key.data()
    on_gpu = dataclasses.replace(key, cpu_threads=None)  # a CPU's threads key a CPU's stage 1 only
    assert on_gpu.digest() == f"{on_gpu.settings_digest()}-{'a' * 12}"


def test_a_sweep_plan_counts_a_stage1_stored_only_from_the_model_files_the_run_keys(
    tmp_path: Path,
) -> None:
    """The plan says `stored` only where the run reuses it: a stage 1 stored from other files of
    the model's folder (or before model files were keyed: MiniLM's) is trained again."""
    folder = save_tiny(tmp_path / "model")
    args = overrides(folder, tmp_path, "injection_task=demo_pos", "seed=1")
    cfg = compose_run(*args)
    data = load_stage_data(cfg)
    assert data.injection is not None
    outcome = stage1_for(cfg, data.injection, tmp_path / "run", lambda metrics, step: None)
    grid = [*args, "tuning_mode=full"]
    [combination] = expand("demo", grid)
    assert combination.stage1_stored  # the run reuses it

    # Stored before model files were keyed: the same settings, the data digest alone.
    legacy = outcome.result.path.with_name(Stage1Key.of(cfg, data.injection.content).digest())
    assert legacy != outcome.result.path  # the run looks for the key with the files
    outcome.result.path.rename(legacy)
    record = json.loads((legacy / "result.json").read_text())
    del record["key"]["model_files"]
    (legacy / "result.json").write_text(json.dumps(record))
    [upgraded] = expand("demo", grid)
    assert not upgraded.stage1_stored  # the run's key has the files: it trains

    legacy.rename(outcome.result.path)  # back, with other weights in the folder now
    record["key"]["model_files"] = combination.model_files
    (outcome.result.path / "result.json").write_text(json.dumps(record))
    save_tiny(folder, init_seed=1)
    [edited] = expand("demo", grid)
    assert not edited.stage1_stored


def test_a_config_json_differing_only_in_its_transformers_version_is_the_same_model(
    tmp_path: Path,
) -> None:
    # save_pretrained stamps its version in: e5_small_offline converted again after an upgrade
    # (a cleared cache_dir) was refused as "a result on other model files".
    folder = save_tiny(tmp_path / "model")
    before = model_file_digests(folder)
    config = json.loads((folder / "config.json").read_text())
    config["transformers_version"] = "99.0.0"
    (folder / "config.json").write_text(json.dumps(config, indent=4))
    assert model_file_digests(folder) == before
    config["hidden_dropout_prob"] = 0.5  # any other key is another model
    (folder / "config.json").write_text(json.dumps(config))
    assert model_file_digests(folder)["config.json"] != before["config.json"]


def test_a_model_folders_own_code_is_part_of_its_identity(tmp_path: Path) -> None:
    # Code auto_map names runs under model.trust_remote_code: edited code is another model.
    folder = save_tiny(tmp_path / "model")
    (folder / "modeling_x.py").write_text("class XModel: ...\n")
    assert "modeling_x.py" not in model_file_digests(folder)  # no auto_map: a script beside it
    config = json.loads((folder / "config.json").read_text())
    config["auto_map"] = {"AutoModel": "modeling_x.XModel"}
    (folder / "config.json").write_text(json.dumps(config))
    before = model_file_digests(folder)
    assert "modeling_x.py" in before
    (folder / "modeling_x.py").write_text("class XModel: pass\n")
    assert model_file_digests(folder)["modeling_x.py"] != before["modeling_x.py"]


def hub_cache(cache: Path, refs: dict[str, str]) -> Path:
    """A Hugging Face cache holding `acme/tiny-bert` as downloads leave it: a snapshot folder per
    commit, and refs/<name> naming the commit each revision name resolves to."""
    repo = cache / "models--acme--tiny-bert"
    for name, commit in refs.items():
        if not (repo / "snapshots" / commit).is_dir():
            save_tiny(repo / "snapshots" / commit)
        (repo / "refs" / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / "refs" / name).write_text(commit)
    return cache


def test_hub_commit_follows_the_revision_asked(tmp_path: Path, monkeypatch) -> None:
    from huggingface_hub import constants

    main, tagged = "1" * 40, "2" * 40
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(hub_cache(tmp_path, {"main": main, "v1": tagged})))  # fmt: skip
    model = compose_run("model=bert_base_uncased", "model.hub_id=acme/tiny-bert").model
    assert hub_commit(model) == main
    for revision, commit in (("v1", tagged), (main, main), ("v2", None)):
        assert hub_commit(dataclasses.replace(model, revision=revision)) == commit, revision
    assert hub_commit(dataclasses.replace(model, hub_id="acme/not-cached")) is None
    assert hub_commit(compose_run("model=tiny").model) is None


@pytest.mark.slow
def test_a_hub_model_records_the_commit_of_the_snapshot_it_loaded(tmp_path: Path) -> None:
    commit = "0123456789abcdef0123456789abcdef01234567"
    cache = hub_cache(tmp_path / "hub", {"main": commit})
    args = [
        "model=bert_base_uncased",
        "model.hub_id=acme/tiny-bert",
        "model.pretrained_pooler=false",
    ]
    shrunk = [arg for arg in SHRINK if arg != "model=tiny"]
    proc = run_train(
        [*args, *shrunk, "injection_task=none"], tmp_path, {"HF_HUB_CACHE": str(cache)}
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    metrics = json.loads((tmp_path / "run" / METRICS_FILE).read_text())
    assert metrics["run/model_commit"] == commit
    assert metrics["run/model_ref"] == {"hub_id": "acme/tiny-bert", "revision": None}
    assert MODEL_FILES_KEY not in metrics  # a hub id keys no files: its first run downloads them
    # A later download moved `main` to another commit: the result is not this model's any more.
    hub_cache(tmp_path / "hub", {"main": "f" * 40})
    again = run_train(
        [*args, *shrunk, "injection_task=none"], tmp_path, {"HF_HUB_CACHE": str(cache)}
    )
    assert again.returncode == 2, again.stderr[-2000:]
    assert again.stderr.strip().splitlines()[-1] == (
        f"error: {tmp_path / 'run' / METRICS_FILE} is this config's result on other model files: "
        "the Hugging Face cache serves acme/tiny-bert@main (commit 0123456789ab then, "
        "ffffffffffff now); replace it with force_rerun=true (sweep.py --force), or run in a new "
        "folder (hydra.run.dir=<new folder>)"
    )


def test_a_stage1_from_a_hub_snapshot_the_cache_no_longer_serves_is_trained_again(
    tmp_path: Path, monkeypatch, caplog: pytest.LogCaptureFixture
) -> None:
    # Its layers are the old snapshot's: transplanted into the new one's model they are another
    # start, as a stage 1 from edited files of a local folder is (keyed by those files).
    from huggingface_hub import constants

    then, now = "1" * 40, "2" * 40
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(hub_cache(tmp_path / "hub", {"main": then})))  # fmt: skip
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    model = ["model=bert_base_uncased", "model.hub_id=acme/tiny-bert", "model.pretrained_pooler=false"]  # fmt: skip
    shrunk = [arg for arg in SHRINK if arg != "model=tiny"]
    args = [*model, *shrunk, f"cache_dir={tmp_path / 'cache'}", "injection_task=demo_pos", "seed=1"]  # fmt: skip
    cfg = compose_run(*args)
    data = load_stage_data(cfg)
    assert data.injection is not None

    def stage1(run: str) -> tuple[str, Path]:
        outcome = stage1_for(cfg, data.injection, tmp_path / run, lambda metrics, step: None)
        return ("trained" if outcome.trained else "reused"), outcome.result.path

    def planned_stored() -> bool:
        [combination] = expand("demo", [*args, "tuning_mode=full"])
        return combination.stage1_stored

    with caplog.at_level(logging.INFO, logger="layerft"):
        status, stored = stage1("a")
        assert status == "trained" and stage1("b") == ("reused", stored)
        assert json.loads((stored / "result.json").read_text())["run/model_commit"] == then
        assert planned_stored()
        hub_cache(tmp_path / "hub", {"main": now})  # a later download moved `main`
        assert not planned_stored()
        (stored / "weights.safetensors").unlink()  # stale and damaged: trained again, unwarned
        assert not planned_stored() and "has no weights" not in caplog.text
        assert stage1("c") == ("trained", stored)  # replaced: its key is the same
        assert not list(stored.parent.glob(".*"))  # the old folder set aside, then removed
        assert json.loads((stored / "result.json").read_text())["run/model_commit"] == now
        assert stage1("d") == ("reused", stored) and planned_stored()
    assert caplog.text.count("training it again") == 1, caplog.text
    assert (
        f"stored stage 1 {stored.name} was trained from acme/tiny-bert@main (commit 111111111111 "
        "then, 222222222222 now): training it again" in caplog.text
    )


def test_a_hub_result_is_on_changed_model_files_once_its_revision_names_another_commit(
    tmp_path: Path, monkeypatch
) -> None:
    from huggingface_hub import constants

    then, now = "1" * 40, "2" * 40
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(hub_cache(tmp_path, {"main": then, "v1": then})))  # fmt: skip
    record = {"run/model_commit": then, "run/model_ref": {"hub_id": "acme/tiny-bert", "revision": "v1"}}  # fmt: skip
    assert changed_snapshot(record) == model_changed_since(record) == []
    hub_cache(tmp_path, {"v1": now})
    changed = ["acme/tiny-bert@v1 (commit 111111111111 then, 222222222222 now)"]
    assert changed_snapshot(record) == model_changed_since(record) == changed
    assert (
        changed_snapshot(record | {"run/model_ref": {"hub_id": "acme/gone", "revision": "v1"}})
        == []
    )
    assert changed_snapshot({"run/model_commit": then}) == []  # recorded before refs were
    # A sweep's plan: done on other model files, rerun with --force.
    grid = ["model=bert_base_uncased", "model.hub_id=acme/tiny-bert", "model.revision=v1",
            "injection_task=none", "tuning_mode=full", "seed=1"]  # fmt: skip
    [combination] = expand("demo", grid)
    job = tmp_path / "sweep" / "job"
    job.mkdir(parents=True)
    record |= {FINGERPRINT_KEY: combination.fingerprint, RESULTS_VERSION_KEY: RESULTS_VERSION}
    (job / METRICS_FILE).write_text(json.dumps(record))
    state = sweep_status.status([combination], tmp_path / "sweep")
    assert not state.done and [stale.model for stale in state.stale] == [changed]
    # A sweep job's refusal to report it (failed.json beside it) stands while v1 names the other
    # commit, and is stale once v1 names the result's again.
    (job / FAILED_FILE).write_text(json.dumps({"run/data_paths": {}}))
    assert not _back_on_its_data(job)
    hub_cache(tmp_path, {"v1": then})
    assert len(sweep_status.status([combination], tmp_path / "sweep").done) == 1
    assert _back_on_its_data(job)


def test_offline_a_hub_model_the_cache_lacks_stops_the_sweep_and_a_cached_one_plans(
    tmp_path: Path, monkeypatch, capsys
) -> None:
    # Every job of such a grid had failed on it in turn; --dry-run had passed it.
    from huggingface_hub import constants

    from layerft import sweep as sweep_module

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    model = ["model=bert_base_uncased", "model.hub_id=acme/tiny-bert", "model.pretrained_pooler=false"]  # fmt: skip
    args = ["demo", *model, *(a for a in SHRINK if a != "model=tiny"), "--dir", str(tmp_path / "sweep")]  # fmt: skip
    for dry_run in (["--dry-run"], []):
        assert sweep_module.main([*args, *dry_run]) == 2
        [line] = capsys.readouterr().err.strip().splitlines()
        assert line.startswith("error: injection_task=none,seed=1,tuning_mode=full: model "
                               "'bert_base_uncased': could not load 'acme/tiny-bert' (not in the "
                               "local Hugging Face cache at revision main); "), line  # fmt: skip
        assert "offline, use model=minilm" in line
    assert not (tmp_path / "sweep").exists()  # no job started, no folder made for the lock
    hub_cache(tmp_path / "hub", {"main": "1" * 40})  # as a download leaves it: the grid plans
    assert sweep_module.main([*args, "--dry-run"]) == 0
    assert sweep_module.main([*args, "model.revision=v2", "--dry-run"]) == 2  # not that revision
    assert "(not in the local Hugging Face cache at revision v2)" in capsys.readouterr().err


def test_a_model_folder_its_runs_cannot_load_stops_the_sweeps_plan(tmp_path, capsys) -> None:
    # A folder of .bin weights passed --dry-run, then every job failed on it.
    from layerft import sweep as sweep_module

    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    (folder / "pytorch_model.bin").write_bytes(b"")
    model = ["model=bert_base_uncased", f"model.hub_id={folder}", "model.pretrained_pooler=false"]
    args = ["demo", *model, *(a for a in SHRINK if a != "model=tiny"), "--dir", str(tmp_path / "s")]
    assert sweep_module.main([*args, "--dry-run"]) == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert f"model 'bert_base_uncased': the folder {folder} has no model.safetensors; " in line
    assert sweep_module.main([*args, f"model.hub_id={tmp_path / 'no'}", "--dry-run"]) == 2
    assert f"model.hub_id {tmp_path / 'no'}: no such folder" in capsys.readouterr().err
