"""What a forced rerun that never replaced its result leaves beside it is removed by whatever next
finds that result; a rerun still running is left alone."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from layerft.forced_rerun import NOTE_FILE, forced_rerun_done, note_forced_rerun, remove_dead_rerun


def finished_folder_with_a_dead_rerun(run_dir: Path) -> dict[str, Path]:
    """A finished result, then the files a forced rerun killed mid-training left beside it."""
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "metrics.json").write_text('{"target/eval_accuracy": 0.9}')
    hydra = run_dir / ".hydra"
    (hydra / "finished").mkdir(parents=True)
    (hydra / "finished" / "config.yaml").write_text("force_rerun: false\n")
    kept_run = run_dir / "wandb" / "offline-run-20261201_101010-kept"
    kept_run.mkdir(parents=True)
    note_forced_rerun(run_dir, [kept_run])
    # the rerun, from here on
    (hydra / "config.yaml").write_text("force_rerun: true\n")  # Hydra's, for its launch
    dead_run = run_dir / "wandb" / "offline-run-20261205_101010-dead"
    dead_run.mkdir()
    checkpoint = run_dir / "checkpoints" / "target" / "checkpoint-44"
    checkpoint.mkdir(parents=True)
    (run_dir / "history.jsonl.partial").write_text('{"step": 1}\n')
    return {"kept": kept_run, "dead": dead_run, "checkpoint": checkpoint, "hydra": hydra}


DEAD_PID = 2**22 + 1  # above Linux's PID_MAX_LIMIT: no process has it


def test_a_dead_reruns_files_go_and_the_results_stay(tmp_path: Path) -> None:
    files = finished_folder_with_a_dead_rerun(tmp_path)
    note = json.loads((tmp_path / NOTE_FILE).read_text())
    (tmp_path / NOTE_FILE).write_text(json.dumps(note | {"pid": DEAD_PID}))
    remove_dead_rerun(tmp_path, files["hydra"])
    assert files["kept"].is_dir() and not files["dead"].exists()
    assert (
        not (tmp_path / "checkpoints").exists()
        and not (tmp_path / "history.jsonl.partial").exists()
    )
    assert (files["hydra"] / "config.yaml").read_text() == "force_rerun: false\n"
    assert (tmp_path / "metrics.json").exists() and not (tmp_path / NOTE_FILE).exists()


@pytest.mark.parametrize("whose", ["a live process", "another host"])
def test_a_rerun_that_may_still_run_is_left_alone(tmp_path: Path, whose: str) -> None:
    files = finished_folder_with_a_dead_rerun(tmp_path)  # noted by this process: alive
    if whose == "another host":
        note = json.loads((tmp_path / NOTE_FILE).read_text())
        (tmp_path / NOTE_FILE).write_text(json.dumps(note | {"pid": DEAD_PID, "host": "other"}))
    remove_dead_rerun(tmp_path, files["hydra"])
    assert files["dead"].is_dir() and files["checkpoint"].is_dir()
    assert (files["hydra"] / "config.yaml").read_text() == "force_rerun: true\n"
    assert (tmp_path / NOTE_FILE).exists()


def test_without_a_note_nothing_is_removed(tmp_path: Path) -> None:
    files = finished_folder_with_a_dead_rerun(tmp_path)
    forced_rerun_done(tmp_path)  # the rerun replaced the result: these are the user's now
    remove_dead_rerun(tmp_path, files["hydra"])
    assert files["dead"].is_dir() and files["checkpoint"].is_dir()
    assert sorted(os.listdir(tmp_path / "wandb")) == sorted(
        [files["kept"].name, files["dead"].name]
    )
