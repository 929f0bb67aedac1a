"""Mutation audit of the promises that a run's results are written atomically, that an interrupted
sweep resumes without redoing finished combinations, and that it never loses finished results:
each test kills a mutation the other tests let live (named in its comment)."""

from __future__ import annotations

import dataclasses
import fcntl
import json
import os
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from compose import compose_run

from layerft import file_io, forced_rerun, replaced_result, stage1_store
from layerft.file_lock import held_lock
from layerft.results import HISTORY_FILE, METRICS_FILE, metrics_stamp
from layerft.run_folder import RUN_LOCK, remove_if_only_hydra_files
from layerft.stage1_key import Stage1Key


def test_an_atomic_write_publishes_a_new_file_and_leaves_the_one_a_reader_opened_whole(
    tmp_path: Path,
) -> None:
    # Kills write_all_atomic copying the staged file over `path` (in place) instead of renaming
    # it: a reader (a sweep table being built) then read half the new file after the old one.
    path = tmp_path / METRICS_FILE
    file_io.write_json_atomic(path, {"a": 1.0})
    with path.open(encoding="utf-8") as reader:
        old_inode = os.fstat(reader.fileno()).st_ino
        file_io.write_json_atomic(path, {"b": 2.0})
        assert json.loads(reader.read()) == {"a": 1.0}
    assert path.stat().st_ino != old_inode and json.loads(path.read_text()) == {"b": 2.0}


def test_a_result_rewritten_within_one_clock_tick_has_another_stamp(tmp_path: Path) -> None:
    # Kills metrics_stamp dropping the inode: a result written since the job started, at the same
    # modification time (a coarse file-system clock), read as the one already there.
    file_io.write_json_atomic(tmp_path / METRICS_FILE, {"a": 1.0})
    before = metrics_stamp(tmp_path)
    mtime = (tmp_path / METRICS_FILE).stat().st_mtime_ns
    file_io.write_json_atomic(tmp_path / METRICS_FILE, {"a": 2.0})
    os.utime(tmp_path / METRICS_FILE, ns=(mtime, mtime))
    assert before is not None and metrics_stamp(tmp_path) != before
    assert metrics_stamp(tmp_path / "none") is None


def test_a_lock_waited_for_is_held_only_once_its_holder_lets_go(tmp_path: Path) -> None:
    # Kills held_lock going on without the blocking flock after `when_busy` returns: two jobs
    # waiting on one stage 1 (Stage1Store.lock) trained and stored it at once.
    path, events = tmp_path / "x.lock", []
    holder = path.open("a+")
    fcntl.flock(holder, fcntl.LOCK_EX)

    def waiter() -> None:
        with held_lock(path, lambda who: events.append("waiting")):
            events.append("locked")

    # A daemon, the holder let go whatever happens: a failed assertion had left the waiter
    # blocked on the lock, and pytest hung at exit after reporting it
    thread = threading.Thread(target=waiter, daemon=True)
    try:
        thread.start()
        for _ in range(500):  # up to 10 s for the thread to start
            if events:
                break
            time.sleep(0.02)
        time.sleep(0.3)
        assert events == ["waiting"]  # still blocked on the holder's lock
    finally:
        fcntl.flock(holder, fcntl.LOCK_UN)
        holder.close()
    thread.join(10)
    assert events == ["waiting", "locked"]


def test_a_forced_rerun_leaves_the_results_history_and_kept_config_in_place_while_it_trains(
    tmp_path: Path,
) -> None:
    # Kills set_aside moving (not copying) the history and kept Hydra files: while the rerun
    # trained, the finished result lost its dev curves and its config.
    (tmp_path / HISTORY_FILE).write_text('{"step": 1}\n')
    finished = tmp_path / ".hydra" / "finished"
    finished.mkdir(parents=True)
    (finished / "config.yaml").write_text("seed: 1\n")
    replaced_result.set_aside(tmp_path, tmp_path / ".hydra")
    assert (tmp_path / HISTORY_FILE).read_text() == '{"step": 1}\n'
    assert (finished / "config.yaml").read_text() == "seed: 1\n"
    replaced_result.put_back(tmp_path)
    assert (tmp_path / HISTORY_FILE).read_text() == '{"step": 1}\n'
    assert not (tmp_path / replaced_result.COPIES_DIR).exists()


def test_a_forced_reruns_note_is_on_disk_before_it_sets_the_result_aside(
    tmp_path: Path, monkeypatch
) -> None:
    # Kills the note's fsync dropped: after a power cut the note could be empty or gone while
    # the result's checkpoints lay aside, and no tidy would put them back.
    (tmp_path / METRICS_FILE).write_text('{"a": 1.0}')
    synced: list[str] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        synced.append(Path(os.readlink(f"/proc/self/fd/{fd}")).name)
        real_fsync(fd)

    def set_aside(run_dir: Path, hydra_dir: Path | None) -> None:
        synced.append("set aside")

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(replaced_result, "set_aside", set_aside)
    monkeypatch.setattr(replaced_result, "put_back", lambda run_dir: None)
    with forced_rerun.noted_forced_rerun(tmp_path):
        pass
    assert synced[:2] == [forced_rerun.NOTE_FILE, "set aside"]


def test_the_process_count_keys_a_stored_stage1_on_a_gpu(tmp_path: Path) -> None:
    # Kills Stage1Key.data dropping world_size at any count: on GPUs (no CPU threads keyed) a
    # torchrun job reused the stage 1 of a single process, trained at half its global batch.
    one = dataclasses.replace(Stage1Key.of(compose_run("model=tiny", "injection_task=demo_pos"),
                                           "a" * 24), cpu_threads=None)  # fmt: skip
    two = dataclasses.replace(one, world_size=2)
    assert one.settings_digest() != two.settings_digest() and one.digest() != two.digest()


def test_a_job_folder_holding_more_than_hydras_files_is_kept(tmp_path: Path) -> None:
    # Kills remove_if_only_hydra_files removing any folder: a job folder whose combination
    # finished elsewhere lost what else it held (a killed attempt's checkpoints, one's own files).
    (tmp_path / ".hydra").mkdir()
    (tmp_path / "train.log").write_text("")
    (tmp_path / RUN_LOCK).write_text("")
    (tmp_path / "notes.txt").write_text("mine")
    remove_if_only_hydra_files(tmp_path)
    assert (tmp_path / "notes.txt").read_text() == "mine"
    (tmp_path / "notes.txt").unlink()
    remove_if_only_hydra_files(tmp_path)
    assert not tmp_path.exists()


def test_a_stage1_store_cut_short_by_ctrl_c_leaves_no_half_written_folder(
    tmp_path: Path, monkeypatch
) -> None:
    # Kills save() keeping its temporary folder on a KeyboardInterrupt: the weights it held lay
    # in the cache, unseen, until a later save of that very key.
    def interrupted(tensors: dict, path: str) -> None:
        Path(path).write_bytes(b"half")
        raise KeyboardInterrupt

    monkeypatch.setattr(stage1_store, "save_file", interrupted)
    store = stage1_store.Stage1Store(tmp_path)
    key = Stage1Key.of(compose_run("model=tiny", "injection_task=demo_pos"), "a" * 24)
    injected = SimpleNamespace(flat=dict, layers=[])
    with pytest.raises(KeyboardInterrupt):
        store.save(key, injected, {}, [], tmp_path)  # type: ignore[arg-type]
    assert list(store.root.iterdir()) == [] and store.load(key) is None
