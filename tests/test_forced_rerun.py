"""What a forced rerun that never replaced its result leaves beside it is removed by whatever next
finds that result; a rerun that may still run is left alone, and so are the result's own files."""

from __future__ import annotations

import errno
import fcntl
import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO, SHRINK, run_python, run_train

from layerft import forced_rerun, replaced_result
from layerft.errors import LayerftError
from layerft.forced_rerun import NOTE_FILE, noted_forced_rerun, remove_dead_rerun
from layerft.run_folder import tidy_finished
from layerft.sweep_records import unfinished_dirs

RECORD = {
    "target/eval_accuracy": 0.9, "run/choices": {}, "run/seed": 1, "run/overrides": [],
    "run/selection_metric": "target/eval_accuracy", "run/higher_is_better": True,
    "run/config_fingerprint": "0123456789abcdef",
}  # fmt: skip


def finished_folder(run_dir: Path) -> dict[str, Path]:
    """A finished result with its W&B run and kept Hydra files."""
    hydra = run_dir / ".hydra"
    (hydra / "finished").mkdir(parents=True)
    (hydra / "finished" / "config.yaml").write_text("force_rerun: false\n")
    (run_dir / "metrics.json").write_text(json.dumps(RECORD))  # readable, as a sweep reads it
    kept_run = run_dir / "wandb" / "offline-run-20261201_101010-kept"
    kept_run.mkdir(parents=True)
    return {"hydra": hydra, "kept_run": kept_run}


def rerun_files(run_dir: Path) -> dict[str, Path]:
    """What a forced rerun writes as it trains."""
    (run_dir / ".hydra" / "config.yaml").write_text(
        "force_rerun: true\n"
    )  # Hydra's, for its launch
    dead_run = run_dir / "wandb" / "offline-run-20261205_101010-dead"
    dead_run.mkdir()
    (run_dir / "wandb" / "latest-run").symlink_to(dead_run.name)
    checkpoint = run_dir / "checkpoints" / "target" / "checkpoint-44"
    checkpoint.mkdir(parents=True)
    (run_dir / "history.jsonl.partial").write_text('{"step": 1}\n')
    (run_dir / "dev_predictions.jsonl.partial").write_text("")
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
    tidy_finished(tmp_path, result["hydra"])  # as sweep.py, or a job finding it, does
    assert not left["dead_run"].exists() and not (tmp_path / "wandb" / "latest-run").is_symlink()
    assert not (tmp_path / "checkpoints").exists()
    assert not (tmp_path / "history.jsonl.partial").exists()
    assert not (tmp_path / "dev_predictions.jsonl.partial").exists()
    assert result["kept_run"].is_dir()
    assert (result["hydra"] / "config.yaml").read_text() == "force_rerun: false\n"
    assert (tmp_path / "metrics.json").exists() and not (tmp_path / NOTE_FILE).exists()


def test_the_next_forced_rerun_removes_a_dead_ones_files_before_it_starts(tmp_path: Path) -> None:
    result = finished_folder(tmp_path)
    left = dies(tmp_path)
    with noted_forced_rerun(tmp_path):
        note = json.loads((tmp_path / NOTE_FILE).read_text())
        assert not left["dead_run"].exists()  # so not listed as the result's, to be kept
        assert note["wandb_runs"] == [result["kept_run"].name] and note["locked"] is True
        running = pytest.raises(LayerftError, match="another forced rerun of it is running")
        with running, noted_forced_rerun(tmp_path):
            pass
    assert not (tmp_path / NOTE_FILE).exists()  # it ended well


def test_a_running_rerun_is_left_alone(tmp_path: Path) -> None:
    result = finished_folder(tmp_path)
    with noted_forced_rerun(tmp_path):  # its note is locked while it runs
        left = rerun_files(tmp_path)
        tidy_finished(tmp_path, result["hydra"])
        assert left["dead_run"].is_dir() and left["checkpoint"].is_dir()
        assert (result["hydra"] / "config.yaml").read_text() == "force_rerun: true\n"


def edit_note(run_dir: Path, **changes: Any) -> None:
    note = json.loads((run_dir / NOTE_FILE).read_text())
    (run_dir / NOTE_FILE).write_text(json.dumps(note | changes))


def test_a_rerun_on_another_host_is_left_alone(tmp_path: Path) -> None:
    finished_folder(tmp_path)
    left = dies(tmp_path)
    edit_note(tmp_path, host="another")
    assert not remove_dead_rerun(tmp_path)  # its lock may be invisible from here (NFS)
    assert left["dead_run"].is_dir() and (tmp_path / NOTE_FILE).exists()


def test_a_rerun_that_could_not_lock_its_note_is_left_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A lock daemon down for a moment (NFS): the finder's lock later tells nothing of the rerun.
    flock = fcntl.flock
    calls: list[int] = []

    def fails_once(handle: Any, operation: int) -> None:
        calls.append(operation)
        if len(calls) == 1:
            raise OSError(errno.ENOLCK, "No locks available")
        flock(handle, operation)

    finished_folder(tmp_path)
    monkeypatch.setattr(fcntl, "flock", fails_once)
    with noted_forced_rerun(tmp_path):
        left = rerun_files(tmp_path)
        assert json.loads((tmp_path / NOTE_FILE).read_text())["locked"] is False
        assert not remove_dead_rerun(tmp_path)
        assert left["dead_run"].is_dir() and left["checkpoint"].is_dir()


def test_a_rerun_killed_after_it_wrote_its_result_keeps_its_own_run(tmp_path: Path) -> None:
    result = finished_folder(tmp_path)
    left = dies(tmp_path)
    (tmp_path / "metrics.json").write_text('{"target/eval_accuracy": 0.95}')  # then killed
    assert not remove_dead_rerun(tmp_path)  # no dead attempt: its launch's files are the result's
    assert left["dead_run"].is_dir() and not result["kept_run"].exists()
    assert not (tmp_path / NOTE_FILE).exists()


def test_a_copied_result_is_no_replaced_one(tmp_path: Path) -> None:
    # Its bytes decide, not its time: a copy without times made metrics.json look newer.
    result = finished_folder(tmp_path)
    left = dies(tmp_path)
    os.utime(tmp_path / "metrics.json", (4_000_000_000, 4_000_000_000))
    assert remove_dead_rerun(tmp_path)
    assert result["kept_run"].is_dir() and not left["dead_run"].exists()


def test_what_cannot_be_removed_is_warned_about_not_raised(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    finished_folder(tmp_path)
    dies(tmp_path)

    def refuse(path: Path, *args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(shutil, "rmtree", refuse)
    assert not remove_dead_rerun(tmp_path)
    assert "could not remove what a forced rerun left" in caplog.text
    assert (tmp_path / NOTE_FILE).exists()  # tried again next time


# --- the checkpoints kept with the result (trainer.keep_checkpoints=true) -------------------------

ASIDE = replaced_result.REPLACED_DIR


def kept_checkpoint(run_dir: Path) -> Path:
    """A checkpoint the finished result kept, and a file of the user's beside it."""
    checkpoint = run_dir / "checkpoints" / "target" / "checkpoint-40"
    checkpoint.mkdir(parents=True)
    (checkpoint / "model.safetensors").write_bytes(b"the result's weights")
    (run_dir / "checkpoints" / "exported.bin").write_bytes(b"mine")
    return checkpoint


def result_checkpoints_are_back(run_dir: Path, kept: Path) -> None:
    assert (kept / "model.safetensors").read_bytes() == b"the result's weights"
    assert sorted(p.name for p in kept.parent.iterdir()) == ["checkpoint-40"]
    assert (run_dir / "checkpoints" / "exported.bin").read_bytes() == b"mine"
    assert not (run_dir / ASIDE).exists()


def killed_in_rerun(run_dir: Path, *lines: str, before_set_aside: bool = False) -> int:
    """The exit code of a forced rerun (its Hydra folder `.hydra`) that runs `lines` of Python
    (`run_dir`: a Path, `argv`: the text `ARGV`) under its note, then is killed (os._exit); or
    killed before it set anything aside."""
    script = "\n".join([
        "import os, sys",
        "from pathlib import Path",
        "from layerft import forced_rerun, replaced_result",
        "run_dir = Path(sys.argv[1])",
        "if sys.argv[2] == 'early':",
        "    replaced_result.set_aside = lambda *args: os._exit(9)",
        "with forced_rerun.noted_forced_rerun(run_dir, run_dir / '.hydra'):",
        *(f"    {line}" for line in lines),
        "    os._exit(9)",
    ])  # fmt: skip
    when = "early" if before_set_aside else "late"
    done = run_python(["-c", script, str(run_dir), when, ARGV], beside(run_dir))
    print(done.stdout, done.stderr)  # shown if the test fails
    return done.returncode


def beside(run_dir: Path) -> Path:
    """A folder beside `run_dir` for a process's working folder (its home and temp folders)."""
    return run_dir.with_name(f"{run_dir.name}-cwd")


def killed_rerun(run_dir: Path, before_set_aside: bool = False) -> int:
    """A forced rerun killed once it made a checkpoint, or before it set any aside."""
    return killed_in_rerun(
        run_dir,
        "(run_dir / 'checkpoints' / 'target' / 'checkpoint-44').mkdir(parents=True)",
        "(run_dir / 'checkpoints' / 'injection').mkdir()",  # made, nothing saved yet
        before_set_aside=before_set_aside,
    )


ARGV = '{"step": 1, "target/loss": 0.7}\n'  # a new history, passed as an argument


def test_a_failed_rerun_puts_back_the_results_checkpoints(tmp_path: Path) -> None:
    result = finished_folder(tmp_path)
    kept = kept_checkpoint(tmp_path)
    left = dies(tmp_path)
    assert not left["checkpoint"].exists()
    result_checkpoints_are_back(tmp_path, kept)
    tidy_finished(tmp_path, result["hydra"])  # the note it left: its W&B run goes, no checkpoint
    result_checkpoints_are_back(tmp_path, kept)


def test_a_killed_rerun_leaves_the_results_checkpoints_to_be_put_back(tmp_path: Path) -> None:
    result = finished_folder(tmp_path)
    kept = kept_checkpoint(tmp_path)
    assert killed_rerun(tmp_path) == 9
    assert not kept.exists() and (tmp_path / ASIDE).is_dir()  # aside, as it died
    tidy_finished(tmp_path, result["hydra"])
    result_checkpoints_are_back(tmp_path, kept)


def test_a_rerun_killed_before_it_set_them_aside_leaves_them_be(tmp_path: Path) -> None:
    result = finished_folder(tmp_path)
    kept = kept_checkpoint(tmp_path)
    assert killed_rerun(tmp_path, before_set_aside=True) == 9
    tidy_finished(tmp_path, result["hydra"])
    result_checkpoints_are_back(tmp_path, kept)


def test_a_tidy_cut_short_is_done_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    result = finished_folder(tmp_path)
    kept = kept_checkpoint(tmp_path)
    assert killed_rerun(tmp_path) == 9
    rename = Path.rename

    def refuse_the_last(path: Path, target: Any) -> Any:
        if path.name == ASIDE:
            raise KeyboardInterrupt  # stopped just before the commit
        return rename(path, target)

    monkeypatch.setattr(Path, "rename", refuse_the_last)
    with pytest.raises(KeyboardInterrupt):
        tidy_finished(tmp_path, result["hydra"])
    monkeypatch.undo()
    tidy_finished(tmp_path, result["hydra"])
    result_checkpoints_are_back(tmp_path, kept)


def test_a_rerun_that_replaced_the_result_drops_only_its_trainer_checkpoints(
    tmp_path: Path,
) -> None:
    finished_folder(tmp_path)
    kept = kept_checkpoint(tmp_path)
    with noted_forced_rerun(tmp_path):
        assert not kept.exists()  # out of the Trainer's way: it would rotate them out
        new = tmp_path / "checkpoints" / "target" / "checkpoint-44"
        new.mkdir(parents=True)
        (tmp_path / "metrics.json").write_text('{"target/eval_accuracy": 0.95}')
    assert new.is_dir() and not kept.exists() and not (tmp_path / ASIDE).exists()
    assert (tmp_path / "checkpoints" / "exported.bin").read_bytes() == b"mine"


def test_a_rerun_that_raises_after_its_result_keeps_its_own_checkpoints(tmp_path: Path) -> None:
    # Written, then the tracker's upload failed (or a Ctrl-C came): the result is the new one.
    finished_folder(tmp_path)
    kept = kept_checkpoint(tmp_path)
    with pytest.raises(RuntimeError), noted_forced_rerun(tmp_path):
        new = tmp_path / "checkpoints" / "target" / "checkpoint-44"
        new.mkdir(parents=True)
        (tmp_path / "metrics.json").write_text('{"target/eval_accuracy": 0.95}')
        raise RuntimeError("W&B upload failed")
    assert new.is_dir() and not kept.exists() and not (tmp_path / ASIDE).exists()
    # Killed instead, after its result: whatever finds the folder drops them.
    kept = kept_checkpoint(tmp_path / "killed")
    (tmp_path / "killed" / "metrics.json").write_text('{"target/eval_accuracy": 0.9}')
    (tmp_path / "killed" / NOTE_FILE).write_text(json.dumps({
        "host": os.uname().nodename, "locked": True, "wandb_runs": [],
        "result_sha256": "an older result's", "sets_result_aside": True,
    }))  # fmt: skip
    (tmp_path / "killed" / "checkpoints").rename(tmp_path / "killed" / ASIDE)
    assert not remove_dead_rerun(tmp_path / "killed")
    assert not kept.exists() and not (tmp_path / "killed" / ASIDE).exists()
    assert (tmp_path / "killed" / "checkpoints" / "exported.bin").read_bytes() == b"mine"


def test_checkpoints_an_earlier_rerun_could_not_put_back_stop_the_next(tmp_path: Path) -> None:
    finished_folder(tmp_path)
    (tmp_path / ASIDE).mkdir()
    refused = pytest.raises(LayerftError, match=rf"{ASIDE}: what an earlier forced rerun set aside")
    with refused, noted_forced_rerun(tmp_path):
        pass


def test_a_note_of_an_earlier_layerft_removes_the_attempts_checkpoints(tmp_path: Path) -> None:
    result = finished_folder(tmp_path)
    left = dies(tmp_path)
    (tmp_path / "checkpoints" / "target" / "checkpoint-44").mkdir(parents=True)  # as it left them
    note = json.loads((tmp_path / NOTE_FILE).read_text())
    del note["sets_result_aside"]
    (tmp_path / NOTE_FILE).write_text(json.dumps(note))
    tidy_finished(tmp_path, result["hydra"])
    assert not (tmp_path / "checkpoints").exists() and not left["dead_run"].exists()


def test_a_rerun_killed_as_it_wrote_its_result_leaves_the_results_history_and_config(
    tmp_path: Path,
) -> None:
    # Killed after publishing its history and keeping its Hydra files, before its metrics.
    result = finished_folder(tmp_path)
    (tmp_path / "history.jsonl").write_text(OLD_HISTORY)
    (tmp_path / "dev_predictions.jsonl").write_text(OLD_HISTORY)  # the result's predictions too
    assert (
        killed_in_rerun(
            tmp_path,
            "for name in ('config.yaml', 'finished/config.yaml'):",
            "    (run_dir / '.hydra' / name).write_text('force_rerun: true')",
            "(run_dir / 'history.jsonl').write_text(sys.argv[3])",
            "(run_dir / 'dev_predictions.jsonl').write_text(sys.argv[3])",
        )
        == 9
    )
    tidy_finished(tmp_path, result["hydra"])
    assert (tmp_path / "history.jsonl").read_text() == OLD_HISTORY
    assert (tmp_path / "dev_predictions.jsonl").read_text() == OLD_HISTORY
    for kept in (result["hydra"] / "finished" / "config.yaml", result["hydra"] / "config.yaml"):
        assert kept.read_text() == "force_rerun: false\n"
    assert not (tmp_path / replaced_result.COPIES_DIR).exists()
    # A rerun that replaced the result keeps its own: the copies go.
    (tmp_path / f"{replaced_result.COPIES_DIR}.k1ll3d").mkdir()  # a staging a kill left
    with noted_forced_rerun(tmp_path, result["hydra"]):
        copies = tmp_path / replaced_result.COPIES_DIR
        assert (copies / "history.jsonl").read_text() == OLD_HISTORY
        # No `.hydra` folder in them: a sweep would read it as an unfinished job's folder.
        assert unfinished_dirs(tmp_path) == [] and not list(copies.rglob(".hydra"))
        assert not (tmp_path / f"{replaced_result.COPIES_DIR}.k1ll3d").exists()
        (tmp_path / "history.jsonl").write_text(NEW_HISTORY)
        (tmp_path / "metrics.json").write_text('{"target/eval_accuracy": 0.95}')
    assert (tmp_path / "history.jsonl").read_text() == NEW_HISTORY
    assert not (tmp_path / replaced_result.COPIES_DIR).exists()


OLD_HISTORY = '{"step": 1, "target/loss": 0.5}\n'
NEW_HISTORY = ARGV


# Kills a forced rerun (force_rerun=true on its command line) just before it writes its metrics:
# its history published and its Hydra files kept, as a kill in that moment leaves them.
KILL_BEFORE_METRICS = """
import os, sys

if any(arg == "force_rerun=true" for arg in sys.argv):
    from layerft import results

    def killed(*args, **kwargs):
        os._exit(9)

    results.write_metrics = killed
"""


@pytest.mark.slow
def test_a_run_finding_its_result_after_a_killed_rerun_keeps_the_results_files(
    tmp_path: Path,
) -> None:
    run = [*SHRINK, "trainer.keep_checkpoints=true"]
    assert run_train(run, tmp_path).returncode == 0
    run_dir = tmp_path / "run"
    kept = ["history.jsonl", "metrics.json", ".hydra/overrides.yaml", ".hydra/finished/config.yaml"]
    kept += ["dev_predictions.jsonl"]
    kept += [str(p.relative_to(run_dir)) for p in run_dir.glob("checkpoints/*/*/model.safetensors")]
    before = {name: (run_dir / name).read_bytes() for name in kept}
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(KILL_BEFORE_METRICS)
    env = {"PYTHONPATH": f"{hook}{os.pathsep}{REPO}"}
    assert run_train([*run, "force_rerun=true"], tmp_path, env_extra=env).returncode == 9
    assert (run_dir / "history.jsonl").read_bytes() != before["history.jsonl"]  # the attempt's
    again = run_train(run, tmp_path)  # finds its result: what the rerun left goes
    assert again.returncode == 0 and "already finished" in again.stdout + again.stderr
    assert {name: (run_dir / name).read_bytes() for name in kept} == before


@pytest.mark.parametrize("kept_folder", [False, True])  # none, or one with no file
def test_what_a_rerun_wrote_where_the_result_had_nothing_goes(
    tmp_path: Path, kept_folder: bool
) -> None:
    # A result from before history or the kept Hydra copy existed (review): a rerun killed after
    # writing its own left them beside the old metrics.
    (tmp_path / ".hydra" / ("finished" if kept_folder else "")).mkdir(parents=True)
    (tmp_path / "metrics.json").write_text('{"target/eval_accuracy": 0.9}')
    assert (
        killed_in_rerun(
            tmp_path,
            "(run_dir / '.hydra' / 'finished').mkdir(exist_ok=True)",
            "(run_dir / '.hydra' / 'finished' / 'config.yaml').write_text('force_rerun: true')",
            "(run_dir / 'history.jsonl').write_text('{}')",
        )
        == 9
    )
    assert remove_dead_rerun(tmp_path)
    assert not (tmp_path / "history.jsonl").exists()
    assert not (tmp_path / ".hydra" / "finished").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [".hydra", "metrics.json"]


def test_a_rerun_that_could_not_settle_keeps_its_note_for_the_next_tidy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    finished_folder(tmp_path)
    kept = kept_checkpoint(tmp_path)
    drop = replaced_result.drop

    def busy(run_dir: Path) -> None:
        raise OSError(errno.EBUSY, "Device or resource busy")  # an NFS .nfs* file, say

    monkeypatch.setattr(replaced_result, "drop", busy)
    with noted_forced_rerun(tmp_path):
        (tmp_path / "metrics.json").write_text('{"target/eval_accuracy": 0.95}')
    assert (tmp_path / NOTE_FILE).exists() and (tmp_path / ASIDE).is_dir()  # tried again later
    monkeypatch.setattr(replaced_result, "drop", drop)
    assert not remove_dead_rerun(tmp_path)  # it replaced the result: the old checkpoints go
    assert not (tmp_path / ASIDE).exists() and not kept.exists()
    assert not (tmp_path / NOTE_FILE).exists()


def test_a_note_from_another_host_is_never_overwritten(tmp_path: Path) -> None:
    # A rerun there may still run: a rerun here that overwrote its note (review) made every later
    # tidy here take it for dead, and remove its checkpoints.
    finished_folder(tmp_path)
    dies(tmp_path)
    edit_note(tmp_path, host="another")
    note = (tmp_path / NOTE_FILE).read_text()
    refused = pytest.raises(LayerftError, match=rf"{NOTE_FILE}: a forced rerun on another host")
    with refused, noted_forced_rerun(tmp_path):
        pytest.fail("it ran")
    assert (tmp_path / NOTE_FILE).read_text() == note


def test_a_dead_rerun_of_another_host_is_tidied_when_asked(tmp_path: Path) -> None:
    # sweep.py on a login node leaves a compute node's note alone: this is how a user tidies it.
    result = finished_folder(tmp_path)
    kept = kept_checkpoint(tmp_path)
    assert killed_rerun(tmp_path) == 9
    edit_note(tmp_path, host="a-compute-node")
    tidy_finished(tmp_path, result["hydra"])
    assert (tmp_path / NOTE_FILE).exists() and not kept.exists()  # left alone
    command = ["-m", "layerft.forced_rerun", str(tmp_path)]
    done = run_python(command, beside(tmp_path))
    assert (done.returncode, done.stdout) == (0, f"{tmp_path}: tidied\n"), done.stderr
    result_checkpoints_are_back(tmp_path, kept)
    assert not (tmp_path / NOTE_FILE).exists()
    done = run_python(command, beside(tmp_path))
    assert (done.returncode, done.stdout) == (
        0,
        f"{tmp_path}: no forced rerun's note: nothing to tidy\n",
    )


def test_a_note_never_written_is_removed_and_the_rerun_goes_on(tmp_path: Path, caplog) -> None:
    # A rerun refused (what an earlier one set aside is still there) leaves no note file; one
    # killed between opening it and writing it leaves it empty: the next tidy removes it.
    finished_folder(tmp_path)
    (tmp_path / ASIDE).mkdir()
    refused = pytest.raises(LayerftError, match=rf"python -m layerft.forced_rerun {tmp_path}")
    with refused, noted_forced_rerun(tmp_path):
        pass
    assert not (tmp_path / NOTE_FILE).exists()
    (tmp_path / ASIDE).rmdir()
    (tmp_path / NOTE_FILE).write_text("")
    with noted_forced_rerun(tmp_path):
        assert json.loads((tmp_path / NOTE_FILE).read_text())["locked"] is True
    assert not (tmp_path / NOTE_FILE).exists() and "not a forced rerun's note" not in caplog.text


def test_the_tidy_command_goes_on_without_locks_and_through_every_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    # On a file system without flock a dead rerun's note is unlocked: only the command tidies it.
    flock = fcntl.flock

    def no_locks(handle: Any, operation: int) -> None:
        raise OSError(errno.ENOLCK, "No locks available")

    unreadable, dead = tmp_path / "unreadable", tmp_path / "dead"
    finished_folder(unreadable)
    (unreadable / NOTE_FILE).write_text("{not json")
    result = finished_folder(dead)
    monkeypatch.setattr(fcntl, "flock", no_locks)
    left = dies(dead)
    assert not remove_dead_rerun(dead)  # unlocked: sweep.py and jobs leave it alone
    assert forced_rerun.main([str(unreadable), str(dead)]) == 1  # the first fails, the next runs
    monkeypatch.setattr(fcntl, "flock", flock)
    assert not left["dead_run"].exists() and result["kept_run"].is_dir()
    assert not (dead / NOTE_FILE).exists() and (unreadable / NOTE_FILE).exists()
    assert capsys.readouterr().out == f"{dead}: tidied\n"
