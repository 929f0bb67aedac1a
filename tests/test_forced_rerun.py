"""What a forced rerun that never replaced its result leaves beside it is removed by whatever next
finds that result; a rerun still running is left alone, and so are the result's own files."""

from __future__ import annotations

import errno
import fcntl
import json
import os
import shutil
from pathlib import Path

import pytest

from layerft import forced_rerun
from layerft.forced_rerun import NOTE_FILE, noted_forced_rerun, remove_dead_rerun


def finished_folder(run_dir: Path) -> dict[str, Path]:
    """A finished result, with a W&B run and a checkpoint it keeps (`trainer.keep_checkpoints`)."""
    hydra = run_dir / ".hydra"
    (hydra / "finished").mkdir(parents=True)
    (hydra / "finished" / "config.yaml").write_text("force_rerun: false\n")
    (run_dir / "metrics.json").write_text('{"target/eval_accuracy": 0.9}')
    os.utime(run_dir / "metrics.json", (1_000_000, 1_000_000))
    kept_run = run_dir / "wandb" / "offline-run-20261201_101010-kept"
    kept_run.mkdir(parents=True)
    kept_checkpoint = run_dir / "checkpoints" / "target" / "checkpoint-10"
    kept_checkpoint.mkdir(parents=True)
    return {"hydra": hydra, "kept_run": kept_run, "kept_checkpoint": kept_checkpoint}


def rerun_files(run_dir: Path) -> dict[str, Path]:
    """What a forced rerun writes as it trains."""
    (run_dir / ".hydra" / "config.yaml").write_text(
        "force_rerun: true\n"
    )  # Hydra's, for its launch
    dead_run = run_dir / "wandb" / "offline-run-20261205_101010-dead"
    dead_run.mkdir()
    checkpoint = run_dir / "checkpoints" / "target" / "checkpoint-44"
    checkpoint.mkdir()
    (run_dir / "history.jsonl.partial").write_text('{"step": 1}\n')
    return {"dead_run": dead_run, "checkpoint": checkpoint}


def dies(run_dir: Path) -> dict[str, Path]:
    """A forced rerun that raised mid-training (a kill leaves the same: an unlocked note)."""
    with pytest.raises(RuntimeError), noted_forced_rerun(run_dir):
        left = rerun_files(run_dir)
        raise RuntimeError("killed")
    return left


def test_a_dead_reruns_files_go_and_the_results_stay(tmp_path: Path) -> None:
    result = finished_folder(tmp_path)
    left = dies(tmp_path)
    assert (tmp_path / NOTE_FILE).exists()
    remove_dead_rerun(tmp_path, result["hydra"])
    assert not left["dead_run"].exists() and not left["checkpoint"].exists()
    assert not (tmp_path / "history.jsonl.partial").exists()
    assert result["kept_run"].is_dir() and result["kept_checkpoint"].is_dir()
    assert (result["hydra"] / "config.yaml").read_text() == "force_rerun: false\n"
    assert (tmp_path / "metrics.json").exists() and not (tmp_path / NOTE_FILE).exists()


def test_the_next_forced_rerun_removes_a_dead_ones_files_before_it_starts(tmp_path: Path) -> None:
    result = finished_folder(tmp_path)
    left = dies(tmp_path)
    with noted_forced_rerun(tmp_path):
        note = json.loads((tmp_path / NOTE_FILE).read_text())
        assert not left["dead_run"].exists()  # not listed as the result's, to be kept
        assert note["wandb_runs"] == [result["kept_run"].name]
        assert note["checkpoints"] == ["checkpoints/target/checkpoint-10"]
    assert not (tmp_path / NOTE_FILE).exists()  # it ended well


def test_a_running_rerun_is_left_alone(tmp_path: Path) -> None:
    result = finished_folder(tmp_path)
    with noted_forced_rerun(tmp_path):  # its note is locked while it runs
        left = rerun_files(tmp_path)
        remove_dead_rerun(tmp_path, result["hydra"])
        assert left["dead_run"].is_dir() and left["checkpoint"].is_dir()
        assert (result["hydra"] / "config.yaml").read_text() == "force_rerun: true\n"


def test_a_rerun_on_another_host_is_left_alone(tmp_path: Path) -> None:
    result = finished_folder(tmp_path)
    left = dies(tmp_path)
    note = json.loads((tmp_path / NOTE_FILE).read_text())
    (tmp_path / NOTE_FILE).write_text(json.dumps(note | {"host": "another"}))
    remove_dead_rerun(tmp_path, result["hydra"])  # its lock may be invisible from here (NFS)
    assert left["dead_run"].is_dir() and (tmp_path / NOTE_FILE).exists()


def test_a_rerun_killed_after_it_wrote_its_result_keeps_its_own_run(tmp_path: Path) -> None:
    result = finished_folder(tmp_path)
    left = dies(tmp_path)
    os.utime(tmp_path / NOTE_FILE, (2_000_000, 2_000_000))
    (tmp_path / "metrics.json").write_text('{"target/eval_accuracy": 0.95}')  # then killed
    remove_dead_rerun(tmp_path, None)
    assert left["dead_run"].is_dir() and not result["kept_run"].exists()
    assert not (tmp_path / NOTE_FILE).exists()


def test_what_cannot_be_removed_is_warned_about_not_raised(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    finished_folder(tmp_path)
    dies(tmp_path)

    def refuse(path: Path, *args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(shutil, "rmtree", refuse)
    remove_dead_rerun(tmp_path, None)
    assert "could not remove what it names" in caplog.text
    assert caplog.records[-1].name == forced_rerun.log.name


def test_without_locks_a_rerun_runs_and_its_note_is_left_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # NFS without lockd: no lock tells a running rerun from a dead one, so none is tidied.
    def no_locks(*args: object) -> None:
        raise OSError(errno.ENOLCK, "No locks available")

    result = finished_folder(tmp_path)
    monkeypatch.setattr(fcntl, "flock", no_locks)
    left = dies(tmp_path)
    remove_dead_rerun(tmp_path, result["hydra"])
    assert left["dead_run"].is_dir() and (tmp_path / NOTE_FILE).exists()
