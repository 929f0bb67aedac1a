"""Mutation audit of the modules that read and write finished records: file_io (atomic writes),
record_migration (an earlier fingerprint scheme's records) and sweep_records (a sweep folder's
job records). Each test kills a mutant no fast test caught, or covers a survivor of the earlier
audit (test_audit_results.py): a hub model's snapshot moved since its result (F8), and two
old-scheme records of one row and seed (D6)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from compose import compose_config
from omegaconf import OmegaConf
from test_aggregate import write_job
from test_environment import FULL
from test_model_files import hub_cache

from layerft import file_io, record_migration
from layerft.aggregate import aggregate
from layerft.config import resolve_config
from layerft.fingerprint import config_fingerprint, seedless_fingerprint, unhashed_settings
from layerft.record_migration import KEPT_CONFIG, migrated_fingerprints
from layerft.run_record import FINGERPRINT_KEY
from layerft.sweep_records import read_sweep

# --- file_io -------------------------------------------------------------------------------------


def test_an_atomic_write_stages_its_file_in_the_folder_it_publishes_to(tmp_path: Path) -> None:
    # Kills mkstemp's `dir=path.parent` dropped: the temporary file went to /tmp, whose rename
    # onto another file system is no rename (EXDEV: every write failed) and never atomic.
    staged: list[Path] = []
    path = tmp_path / "sweep" / "results.md"
    file_io.write_atomic(path, lambda tmp: staged.append(tmp) or tmp.write_text("table"))
    [tmp] = staged
    assert tmp.parent == path.parent and path.read_text() == "table"
    assert sorted(p.name for p in path.parent.iterdir()) == ["results.md"]


def test_only_safetensors_own_error_is_taken_for_a_checkpoint_the_disk_had_no_room_for(
    tmp_path: Path,
) -> None:
    # Kills unwritten_weights' `type(err).__name__ != "SafetensorError"` dropped: any error whose
    # text reads as safetensors' (a tokenizer's, a user callback's) was reported as a checkpoint's
    # weights that could not be written in the run folder, its own message and traceback lost.
    other = RuntimeError(FULL)
    assert file_io.unwritten_weights(other) is None
    with pytest.raises(RuntimeError) as kept, file_io.run_dir_errors(tmp_path):
        raise other
    assert kept.value is other


# --- record_migration ----------------------------------------------------------------------------


def test_a_scheme_1_baseline_is_migrated_from_its_kept_config(tmp_path: Path) -> None:
    # Kills `baseline = scheme < 2` narrowed to `scheme < 1`: a run without stage 1 recorded by
    # scheme 1 (which hashed its unread split) kept its old fingerprint, so a plan and a job
    # missed it (only the slow test_sweep test of a scheme-1 baseline caught it).
    overrides = ["injection_task=none", "tuning_mode=full", "layer_split=lower1"]
    (tmp_path / KEPT_CONFIG).parent.mkdir(parents=True)
    OmegaConf.save(compose_config(*overrides), tmp_path / KEPT_CONFIG)
    config = resolve_config(compose_config(*overrides))
    record = {FINGERPRINT_KEY: config_fingerprint(config, scheme=1), "run/overrides": overrides,
              "run/choices": {"injection_task": "none", "tuning_mode": "full"}}  # fmt: skip
    assert record[FINGERPRINT_KEY] != config_fingerprint(config)  # the schemes differ here
    migrated = (config_fingerprint(config), seedless_fingerprint(config), unhashed_settings(config))
    assert migrated_fingerprints(tmp_path, record) == migrated


@pytest.mark.parametrize(
    ("override", "respelt"),
    [
        ("target_task.data_files={train: data/a.jsonl}", True),  # all of data_files: may be
        ("+target_task.data_files.train=./data/a.jsonl", True),  # added (no such split yet)
        ("+target_task.data_files.train=data/a.jsonl", False),
        ("target_task.data_files.train='./data/a.jsonl'", True),  # quoted on the command line
        ("target_task.data_files.train='data/a.jsonl'", False),
    ],
)
def test_an_override_of_a_data_path_as_hydra_takes_it_may_key_its_record_otherwise(
    override: str, respelt: bool
) -> None:
    # Kills _respelt_path's `rest == "data_files"` dropped, `lstrip("+~")` dropped and the quotes
    # left on its value: a scheme-3 record that set its data path so, written before data paths
    # were recorded, was never migrated (its seeds two configs, its result not found).
    assert record_migration._respelt_path(override) is respelt


def test_a_kept_config_spelling_either_tasks_data_path_otherwise_is_read_again(
    tmp_path: Path,
) -> None:
    # Kills _spelt_otherwise reading only the target task, and its `respelt != task` turned
    # around (a config whose tasks are both spelt otherwise was taken as spelt as read).
    injection = ["injection_task=ud_dp", "injection_task.data_dir=./ud//ewt"]
    target = ["target_task=snli", "+target_task.data_files.train=./data//a.jsonl"]
    for overrides, spelt in (
        (injection, True),
        ([*injection, *target], True),
        (["injection_task=ud_dp", "injection_task.data_dir=ud/ewt"], False),
    ):
        path = tmp_path / f"{len(overrides)}{spelt}.yaml"
        OmegaConf.save(compose_config(*overrides), path)
        stat = path.stat()
        assert record_migration._spelt_otherwise(path, stat.st_size, stat.st_mtime_ns) is spelt


# --- F8: a hub model's snapshot moved since its result -------------------------------------------


def test_a_hub_models_result_is_left_out_of_the_table_once_its_revision_names_another_commit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The earlier audit's F8: the plan (sweep_status) noticed a hub model's moved snapshot, the
    # sweep's table was not tested to: its result stayed in a row as if on the model it names.
    from huggingface_hub import constants

    then, now = "1" * 40, "2" * 40
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(hub_cache(tmp_path / "hub", {"main": then})))  # fmt: skip
    sweep = tmp_path / "sweep"
    write_job(sweep / "b", 2, 0.7)  # on a local model: a row to table
    metrics = write_job(sweep / "a", 1, 0.5) / "metrics.json"
    ref = {"hub_id": "acme/tiny-bert", "revision": None}
    metrics.write_text(json.dumps(json.loads(metrics.read_text()) | {
        "run/model_commit": then, "run/model_ref": ref}))  # fmt: skip
    assert [job.changed for job in read_sweep(sweep)[0]] == [(), ()]
    hub_cache(tmp_path / "hub", {"main": now})  # a later download moved `main`
    [job, _], damaged = read_sweep(sweep)
    changed = "acme/tiny-bert@main (commit 111111111111 then, 222222222222 now)"
    assert job.changed_model == (changed,) and job.changed_data == () and damaged == []
    result = aggregate(sweep)
    assert [row[f"{job.selection_metric}_n"] for row in result.rows] == [1]
    assert "## On changed model files (left out of the table)" in result.markdown
    assert f"| a | all | 1 | {changed} | - |" in result.markdown


# --- D6: two old-scheme records of one row and seed ----------------------------------------------


def test_old_scheme_records_of_one_row_and_seed_name_the_record_kept_instead(
    tmp_path: Path,
) -> None:
    # The earlier audit's D6: records of fingerprint scheme 1 (no scheme, no results version) of
    # two configs for one row and seed; the newest is kept, and each other names it, not itself
    # nor another left out.
    for name, mtime in (("a", 1_000_000_000), ("c", 3_000_000_000), ("b", 2_000_000_000)):
        write_job(tmp_path / name, 1, 0.5, fingerprint=name * 16, scheme=None, version=None,
                  mtime=mtime)  # fmt: skip
    jobs, _ = read_sweep(tmp_path)
    kept = tmp_path / "c"
    assert [(j.run_dir.name, j.replaced_by) for j in jobs] == [
        ("a", kept),
        ("b", kept),
        ("c", None),
    ]
    result = aggregate(tmp_path)
    assert "3 jobs (1 finished, 0 failed, 2 replaced by another config's)" in result.markdown
    assert result.markdown.rstrip().endswith("| a | all | 1 | c |\n| b | all | 1 | c |")


# --- sweep_records -------------------------------------------------------------------------------


def test_a_failure_stamped_with_its_results_very_time_is_no_later_attempt(tmp_path: Path) -> None:
    # Kills _failed_after_finishing's `>` as `>=`: a failed.json no newer than the result beside it
    # (a coarse file-system clock, a copy that kept both times) was listed as a later attempt.
    folder = write_job(tmp_path / "a", 1, 0.5, fingerprint="f" * 16, mtime=1_000_000)
    write_job(folder, 1, error="CUDA out of memory", fingerprint="f" * 16, mtime=1_000_000)
    jobs, _ = read_sweep(tmp_path)
    assert [(j.run_dir, j.error, j.later_attempt) for j in jobs] == [(folder, None, False)]
    os.utime(folder / "failed.json", (1_000_001, 1_000_001))
    jobs, _ = read_sweep(tmp_path)
    assert [(j.error is None, j.later_attempt) for j in jobs] == [(True, False), (False, True)]
