"""Mutation audit of the modules that guard finished results (run_claim, run_folder, forced_rerun,
replaced_result, results, file_io, sweep_status, sweep_records, record_migration and the
launcher's skipping_sweeper and dead_job): each test kills a mutant no fast test caught."""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from compose import compose_config
from omegaconf import OmegaConf
from test_aggregate import write_job
from test_forced_rerun import ASIDE, RECORD, finished_folder, kept_checkpoint
from test_results import record

from hydra_plugins.layerft_launcher import dead_job
from layerft import file_lock, forced_rerun, hydra_job, run_claim, run_folder, sweep_status
from layerft.config import resolve_config
from layerft.errors import LayerftError
from layerft.fingerprint import config_fingerprint
from layerft.forced_rerun import NOTE_FILE, noted_forced_rerun, remove_dead_rerun
from layerft.record_migration import KEPT_CONFIG
from layerft.replaced_result import COPIES_DIR as COPIES
from layerft.results import (
    HistoryFile,
    job_records,
    read_failure,
    read_finished,
    read_history,
    write_metrics,
)
from layerft.run_record import (
    FINGERPRINT_KEY,
    FINGERPRINT_SCHEME_KEY,
    RESULTS_VERSION,
    RESULTS_VERSION_KEY,
)
from layerft.sweep_grid import Combination
from layerft.sweep_status import failed_error


def no_locks(code: int) -> Any:
    """fcntl.flock as a file system without locks (`code`) answers a lock it cannot take."""
    real = fcntl.flock

    def flock(handle: Any, operation: int) -> None:
        if operation & fcntl.LOCK_EX:
            raise OSError(code, os.strerror(code))
        real(handle, operation)

    return flock


def test_a_folder_that_cannot_be_locked_is_claimed_with_a_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # Kills run_claim's `err.errno not in NO_LOCKS` turned around: a file system without locks
    # (NFS without lockd) stopped every run with "cannot write", and a lock error was let through.
    monkeypatch.setattr(file_lock.fcntl, "flock", no_locks(errno.ENOLCK))
    level = caplog.at_level(logging.WARNING, logger="layerft.run_claim")
    with level, run_claim.claimed_folder(tmp_path, "x") as claim:
        assert claim.run_dir == tmp_path
    assert not (tmp_path / ".run.lock").exists()  # it had outlived the run (the audit's bug 1)
    assert [r.getMessage() for r in caplog.records] == [
        f"{tmp_path}: no file locks ([Errno {errno.ENOLCK}] {os.strerror(errno.ENOLCK)}); a second "
        "run there is not stopped"
    ]
    monkeypatch.setattr(file_lock.fcntl, "flock", no_locks(errno.EIO))
    with pytest.raises(LayerftError) as refused, run_claim.claimed_folder(tmp_path, "x"):
        pass
    assert str(refused.value) == f"cannot write {tmp_path / '.run.lock'}: {os.strerror(errno.EIO)}"


def hydra_node(chdir: bool) -> Any:
    return OmegaConf.create({"job": {"chdir": chdir, "name": "train"}})


def test_only_a_layerft_jobs_death_is_recorded_in_its_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Kills dead_job's `"target_task" not in task_cfg` turned around: a killed layerft job left no
    # failed.json (the sweep counted it unfinished), another app's job was handed to layerft.
    # Only the slow launcher tests ran it.
    recorded: list[tuple[Any, ...]] = []
    monkeypatch.setattr(hydra_job, "record_dead_job", lambda *args: recorded.append(args))
    error, hydra = RuntimeError("killed"), hydra_node(True)
    layerft_job = OmegaConf.create({"target_task": {"name": "x"}})
    assert dead_job.record_dead_job(layerft_job, hydra, tmp_path, error, (1, 2)) is True
    assert recorded == [(layerft_job, hydra, tmp_path, error, (1, 2))]
    assert (
        dead_job.record_dead_job(OmegaConf.create({"a": 1}), hydra, tmp_path, error, None) is False
    )
    assert len(recorded) == 1


def test_a_dead_jobs_return_names_its_working_folder_as_hydra_would(tmp_path: Path) -> None:
    # Kills dead_job.job_return's working_dir always the job folder: without hydra.job.chdir a
    # job runs in the launch's folder. Only the slow launcher tests ran it.
    returned = dead_job.job_return(OmegaConf.create({}), hydra_node(False), ["a=1"], tmp_path,
                                   dead_job.JobStatus.FAILED, None)  # fmt: skip
    assert returned.working_dir == os.getcwd() and returned.task_name == "train"
    chdir = dead_job.job_return(OmegaConf.create({}), hydra_node(True), [], tmp_path,
                                dead_job.JobStatus.FAILED, None)  # fmt: skip
    assert chdir.working_dir == str(tmp_path)


def test_an_empty_note_is_removed_by_the_next_tidy(tmp_path: Path) -> None:
    # Kills remove_dead_rerun keeping a note that was opened and never written (a rerun killed at
    # once): it stayed beside the result for good, and the tidy command said it could not tidy.
    finished_folder(tmp_path)
    (tmp_path / NOTE_FILE).write_text("")
    assert remove_dead_rerun(tmp_path) is False
    assert not (tmp_path / NOTE_FILE).exists()
    assert json.loads((tmp_path / "metrics.json").read_text()) == RECORD


def test_a_dead_rerun_that_started_no_wandb_run_leaves_latest_run_at_the_results(
    tmp_path: Path,
) -> None:
    # Kills _remove_dead_attempt unlinking wandb/latest-run whatever it points at: a rerun killed
    # before its W&B run started took the result's own latest-run link with it.
    kept_run = finished_folder(tmp_path)["kept_run"]
    (tmp_path / "wandb" / "latest-run").symlink_to(kept_run.name)
    with pytest.raises(RuntimeError), noted_forced_rerun(tmp_path):
        raise RuntimeError("killed")
    assert remove_dead_rerun(tmp_path) is True
    assert (tmp_path / "wandb" / "latest-run").resolve() == kept_run.resolve()


def test_copies_an_earlier_rerun_could_not_put_back_stop_the_next_before_its_note(
    tmp_path: Path,
) -> None:
    # Kills check_clear looking only at `.checkpoints.replaced/`: with `.result.replaced/` left
    # (its history and Hydra files), the next rerun wrote its note, then failed to rename its own
    # copies over them with another error, its note left beside the result.
    finished_folder(tmp_path)
    (tmp_path / COPIES).mkdir()
    (tmp_path / COPIES / "history.jsonl").write_text("the result's\n")
    with pytest.raises(LayerftError) as refused, noted_forced_rerun(tmp_path):
        pass
    assert str(refused.value) == (
        f"{tmp_path / COPIES}: what an earlier forced rerun set aside is not back in place; once "
        f"that rerun has ended, `python -m layerft.forced_rerun {tmp_path}` puts it back"
    )
    assert not (tmp_path / NOTE_FILE).exists()
    assert (tmp_path / COPIES / "history.jsonl").read_text() == "the result's\n"


def test_hydra_files_outside_the_run_folder_are_not_the_results_to_set_aside(
    tmp_path: Path,
) -> None:
    # Kills set_aside copying a Hydra folder that is not under the run folder (an absolute
    # hydra.output_subdir): the rerun stopped with a ValueError from Path.relative_to.
    run_dir, elsewhere = tmp_path / "run", tmp_path / "elsewhere" / ".hydra"
    run_dir.mkdir()
    finished_folder(run_dir)
    (elsewhere / "finished").mkdir(parents=True)
    (elsewhere / "finished" / "config.yaml").write_text("other: 1\n")
    with noted_forced_rerun(run_dir, elsewhere):
        assert sorted(p.name for p in (run_dir / COPIES).iterdir()) == [
            "dev_predictions.jsonl.absent",
            "history.jsonl.absent",
        ]
    assert not (run_dir / COPIES).exists() and not (run_dir / NOTE_FILE).exists()


def test_a_file_the_rerun_made_under_a_results_name_never_replaces_the_results(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Kills put_back's check for a name both the result's checkpoints and the rerun's hold: the
    # rerun's exported.bin was renamed over the result's, which was lost.
    finished_folder(tmp_path)
    kept = kept_checkpoint(tmp_path)
    failed = pytest.raises(RuntimeError)
    with caplog.at_level(logging.WARNING), failed, noted_forced_rerun(tmp_path):
        (tmp_path / "checkpoints").mkdir()
        (tmp_path / "checkpoints" / "exported.bin").write_bytes(b"the rerun's")
        raise RuntimeError("failed")
    assert (tmp_path / ASIDE / "exported.bin").read_bytes() == b"mine"
    assert (tmp_path / ASIDE / "target" / kept.name / "model.safetensors").is_file()
    assert (tmp_path / "checkpoints" / "exported.bin").read_bytes() == b"the rerun's"
    assert "both hold exported.bin" in caplog.text


def test_a_replacing_reruns_file_is_never_overwritten_by_the_replaced_results(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Kills _give_back renaming an aside file over one of the same name in checkpoints/: the
    # new result's exported.bin was replaced by the replaced result's.
    finished_folder(tmp_path)
    kept_checkpoint(tmp_path)
    with caplog.at_level(logging.WARNING), noted_forced_rerun(tmp_path):
        (tmp_path / "checkpoints").mkdir()
        (tmp_path / "checkpoints" / "exported.bin").write_bytes(b"the rerun's")
        (tmp_path / "metrics.json").write_text('{"target/eval_accuracy": 0.95}')
    assert (tmp_path / "checkpoints" / "exported.bin").read_bytes() == b"the rerun's"
    assert (tmp_path / ASIDE / "exported.bin").read_bytes() == b"mine"
    assert f"{tmp_path / ASIDE}: left as it is: " in caplog.text


def test_a_folder_of_ones_own_beside_the_results_checkpoints_outlives_its_replacement(
    tmp_path: Path,
) -> None:
    # Kills remove_trainer_checkpoints taking every folder of a stage for a Trainer checkpoint:
    # a folder of one's own under checkpoints/target/ went with the replaced result's.
    finished_folder(tmp_path)
    kept = kept_checkpoint(tmp_path)
    (kept.parent / "exported").mkdir()
    (kept.parent / "exported" / "model.bin").write_bytes(b"mine too")
    with noted_forced_rerun(tmp_path):
        (tmp_path / "metrics.json").write_text('{"target/eval_accuracy": 0.95}')
    assert not kept.exists() and not (tmp_path / ASIDE).exists()
    assert (kept.parent / "exported" / "model.bin").read_bytes() == b"mine too"


def test_no_config_lock_is_taken_by_the_processes_of_a_torchrun(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Kills config_lock's `world_size() > 1` made `> 2`: two processes of one torchrun job each
    # waited for the other's lock (the second stalled the first in its first collective).
    asked: list[int] = []
    record = SimpleNamespace(fingerprint="0123456789abcdef")
    monkeypatch.setattr(run_folder, "world_size", lambda: 2)
    with run_folder.config_lock(str(tmp_path), record, lambda: asked.append(1)) as served:
        assert served is None
    assert not (tmp_path / run_folder.LOCKS_DIR).exists() and asked == []
    monkeypatch.setattr(run_folder, "world_size", lambda: 1)
    with run_folder.config_lock(str(tmp_path), record, lambda: asked.append(1)) as served:
        assert served is None
    assert asked == [1] and (tmp_path / run_folder.LOCKS_DIR).is_dir()


def test_a_finished_run_found_again_puts_back_the_hydra_files_of_its_result(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Kills previous_result leaving the Hydra files this launch rewrote beside a finished result
    # it skips: .hydra/overrides.yaml named a launch (tracker=wandb) that never ran there.
    write_metrics(tmp_path, {"target/eval_accuracy": 0.5}, record())
    (tmp_path / ".hydra" / "finished").mkdir(parents=True)
    (tmp_path / ".hydra" / "finished" / "overrides.yaml").write_text("- seed=3\n")
    (tmp_path / ".hydra" / "overrides.yaml").write_text("- seed=3\n- tracker=wandb\n")
    monkeypatch.setattr(run_folder, "hydra_record", lambda run_dir: run_dir / ".hydra")
    found = run_folder.previous_result(tmp_path, record(), sweep_dir=None)
    assert found == ({"target/eval_accuracy": 0.5}, tmp_path)
    assert (tmp_path / ".hydra" / "overrides.yaml").read_text() == "- seed=3\n"


def test_a_job_folder_of_a_combination_finished_elsewhere_is_removed(tmp_path: Path) -> None:
    # Kills previous_result keeping the folder Hydra made for a job whose result another job
    # folder holds: the sweep folder kept an empty job folder (.hydra/ and a log) for good,
    # listed as unfinished. Only a slow test removed one, directly.
    write_metrics(tmp_path / "3", {"target/eval_accuracy": 0.5}, record())
    (tmp_path / "0" / ".hydra").mkdir(parents=True)
    (tmp_path / "0" / "train.log").write_text("")
    found = run_folder.previous_result(tmp_path / "0", record(), str(tmp_path))
    assert found == ({"target/eval_accuracy": 0.5}, tmp_path / "3")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["3"]


def test_a_result_found_in_another_job_folder_on_other_data_is_refused(tmp_path: Path) -> None:
    # Kills read_result skipping check_same_data: a sibling job folder's result, computed on a
    # dev file edited since, was reported as this run's.
    split = "target_task.validation"
    then = replace(record(), data_files={split: "aa" * 32}, data_paths={split: "dev.jsonl"})
    now = replace(then, data_files={split: "bb" * 32})
    write_metrics(tmp_path / "3", {"target/eval_accuracy": 0.5}, then)
    (tmp_path / "0" / ".hydra").mkdir(parents=True)
    with pytest.raises(LayerftError) as refused:
        run_folder.previous_result(tmp_path / "0", now, str(tmp_path))
    assert str(refused.value) == (
        f"{tmp_path / '3' / 'metrics.json'} is this config's result on other data: the file of "
        f"{split} changed since (its bytes' sha256); replace it with force_rerun=true (sweep.py "
        "--force), or run in a new folder (sweep.py ... --dir <new folder>, or "
        "hydra.sweep.dir=<new folder> with train.py -m)"
    )
    assert run_folder.previous_result(tmp_path / "0", then, str(tmp_path)) is not None


def test_a_replacing_results_hydra_files_replace_the_kept_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Kills keep_hydra_files leaving the earlier `finished/` in place: the rename onto it failed
    # (warned), the replaced result's config stayed kept (and was later put back as the new
    # result's), and the staging folder was left in `.hydra/`.
    hydra = tmp_path / ".hydra"
    (hydra / "finished").mkdir(parents=True)
    (hydra / "finished" / "config.yaml").write_text("seed: 1\n")
    (hydra / "config.yaml").write_text("seed: 2\n")
    monkeypatch.setattr(run_folder, "hydra_record", lambda run_dir: run_dir / ".hydra")
    run_folder.keep_hydra_files(tmp_path)
    assert (hydra / "finished" / "config.yaml").read_text() == "seed: 2\n"
    assert sorted(p.name for p in hydra.iterdir()) == ["config.yaml", "finished"]


def test_a_new_attempts_history_starts_afresh_and_is_published_whole(tmp_path: Path) -> None:
    # Kills HistoryFile truncating nothing (touch): a killed attempt's lines began the next one's
    # history; and publish leaving the partial file unpublished.
    (tmp_path / "history.jsonl.partial").write_text('{"step": 9, "target/loss": 1.0}\n')
    history = HistoryFile(tmp_path)
    history.log({"target/loss": 0.5}, 1)
    history.publish()
    assert read_history(tmp_path) == [{"step": 1, "target/loss": 0.5}]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["history.jsonl"]


def test_a_failed_json_that_is_no_object_reads_as_none(tmp_path: Path) -> None:
    # Kills read_failure handing back any JSON value: a failed.json holding a list broke the
    # sweep's summary (`.get` on a list) instead of reading as "gone or unreadable".
    (tmp_path / "failed.json").write_text("[1, 2]")
    assert read_failure(tmp_path) is None
    assert failed_error(tmp_path) == "failed.json is gone or unreadable"


def test_the_newest_record_of_a_config_names_its_job_folder(tmp_path: Path) -> None:
    # Kills job_records keeping the oldest of two records of one config (a copied folder, a
    # result written in two job folders): a job was served the older result.
    write_job(tmp_path / "a", 1, 0.5, fingerprint="f" * 16, mtime=2_000_000_000)
    write_job(tmp_path / "b", 1, 0.6, fingerprint="f" * 16, mtime=1_000_000_000)
    assert job_records(tmp_path, "metrics.json") == {"f" * 16: tmp_path / "a"}
    os.utime(tmp_path / "b" / "metrics.json", (2_100_000_000, 2_100_000_000))
    assert job_records(tmp_path, "metrics.json") == {"f" * 16: tmp_path / "b"}


def test_a_scheme_2_record_in_a_job_folder_is_this_configs_result_there_and_in_the_sweep(
    tmp_path: Path,
) -> None:
    # Kills _of_config ignoring migrated_fingerprints (a rerun refused the config's own result
    # of an earlier scheme as another config's) and job_records leaving out the migrated key (a
    # sibling job did not find it, and trained the config again). The migration itself was
    # tested, not these two lookups through it.
    overrides = ["injection_task=none", "tuning_mode=full", "tuning_mode.lora.rank=4"]
    job = tmp_path / "3"
    (job / KEPT_CONFIG).parent.mkdir(parents=True)
    OmegaConf.save(compose_config(*overrides), job / KEPT_CONFIG)
    config = resolve_config(compose_config(*overrides))
    (job / "metrics.json").write_text(json.dumps({
        "target/eval_accuracy": 0.5, FINGERPRINT_KEY: config_fingerprint(config, scheme=2),
        FINGERPRINT_SCHEME_KEY: 2, "run/choices": {"tuning_mode": "full"},
        "run/overrides": overrides, RESULTS_VERSION_KEY: RESULTS_VERSION,
    }))  # fmt: skip
    now = config_fingerprint(config)
    assert read_finished(job, (now,), "x") == {"target/eval_accuracy": 0.5}
    assert job_records(tmp_path, "metrics.json")[now] == job


def test_a_result_stamped_at_the_force_sweeps_very_start_counts_as_written_since(
    tmp_path: Path,
) -> None:
    # Kills status comparing `> since_ns`: a forced rerun's result whose file time equals the
    # sweep's start (a coarse file-system clock) was taken for the one it replaced: not run.
    job = Combination([], "1" * 16, None, "seed=1")
    write_job(tmp_path / "seed=1", 1, 0.5, fingerprint=job.fingerprint)
    since = (tmp_path / "seed=1" / "metrics.json").stat().st_mtime_ns
    state = sweep_status.status([job], tmp_path, since_ns=since)
    assert state.done == [(job, tmp_path / "seed=1")] and state.missing == []
    assert sweep_status.status([job], tmp_path, since_ns=since + 1).missing == [job]


def test_tidying_an_empty_note_says_the_rerun_set_nothing_aside(tmp_path: Path, capsys) -> None:
    # An empty note (a rerun refused or killed before writing it) read "its rerun had replaced
    # the result; tidied" (the audit's bug 2): it replaced nothing.
    (tmp_path / "metrics.json").write_text("{}")
    (tmp_path / forced_rerun.NOTE_FILE).write_text("")
    with (tmp_path / forced_rerun.NOTE_FILE).open() as held:  # its rerun still runs: left alone
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        assert forced_rerun.main([str(tmp_path)]) == 1
    assert (tmp_path / forced_rerun.NOTE_FILE).exists()
    capsys.readouterr()
    assert forced_rerun.main([str(tmp_path)]) == 0
    assert capsys.readouterr().out == (
        f"{tmp_path}: its rerun's note was empty (it had set nothing aside); tidied\n"
    )
    assert not (tmp_path / forced_rerun.NOTE_FILE).exists()
    assert (tmp_path / "metrics.json").read_text() == "{}"
