"""A user's machine unlike the developer's (from a review that ran layerft under read-only caches,
long and non-ASCII paths): each such fault is one line naming the file, not a traceback."""

from __future__ import annotations

import contextlib
import errno
import logging.config
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch
from compose import compose_run
from conftest import REPO, run_python, run_train, script_env
from datasets import Dataset
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf
from safetensors import SafetensorError

from layerft import file_io, run_claim, stage1_store, sweep_launch
from layerft.config_errors import log_file_error_line
from layerft.config_overrides import quoted_value
from layerft.errors import LayerftError
from layerft.layer_split import InjectedWeights
from layerft.stage1_key import Stage1Key
from layerft.stage1_store import Stage1Store
from layerft.sweep_grid import MAX_DIRNAME, job_dirname
from layerft.tiny_model import build_tiny_tokenizer
from layerft.tokenized import tokenize


def test_a_stage1_lock_that_cannot_be_written_is_one_line(tmp_path) -> None:
    # A read-only cache_dir whose stage 1 is not stored yet: a traceback from opening the lock
    # (as root, a folder in the lock's place stands for the read-only mount the review used).
    key = Stage1Key.of(compose_run("model=tiny", "injection_task=demo_pos"), "data")
    store = Stage1Store(tmp_path)
    lock = store.root / f"{key.digest()}.lock"
    lock.mkdir(parents=True)
    with (
        pytest.raises(LayerftError, match=f"^cannot write {lock}: Is a directory$"),
        store.lock(key),
    ):
        pass


def test_evaluates_module_cache_not_writable_is_one_line_naming_hf_home(tmp_path) -> None:
    # A read-only HF_HOME (or XDG_CACHE_HOME, HOME): evaluate copies each metric module there.
    (tmp_path / "file").write_text("")
    env = dict(
        os.environ, HF_MODULES_CACHE=str(tmp_path / "file" / "modules"), PYTHONPATH=str(REPO)
    )
    code = "from layerft.metrics import load_metric; load_metric('accuracy')"
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1] == (
        f"layerft.errors.LayerftError: metric 'accuracy': evaluate could not copy its module to "
        f"{tmp_path / 'file' / 'modules'} (Not a directory); set HF_HOME (or HF_MODULES_CACHE) "
        "to a writable folder"
    )


def test_a_data_path_too_long_to_look_up_is_no_such_file(tmp_path) -> None:
    # A name over 255 bytes: Path.exists() raised "File name too long" as a traceback.
    path = tmp_path / ("데" * 90 + ".jsonl")  # 270 bytes
    cfg = compose_run("target_task=snli", f"target_task.data_files.train={quoted_value(str(path))}")
    with pytest.raises(LayerftError, match="^target_task.data_files.train: no such file "):
        cfg.target_task.existing_file("target_task", "train")


def test_a_job_folder_name_of_non_ascii_letters_fits_a_file_name(tmp_path) -> None:
    # A swept Korean data path: 120 letters are 360 bytes, past the 255 a file name may have.
    names = [
        job_dirname(f"target_task.data_files.train=/data/{'데' * 150}{i}.jsonl") for i in (1, 2)
    ]
    assert names[0] != names[1]
    for name in names:
        assert len(name.encode()) <= 255 and len(name) <= MAX_DIRNAME
        (tmp_path / name).mkdir()
    # ASCII names as before (resumed sweeps keep their folders).
    ascii_name = "target_task.lr=1e-4,seed=1"
    assert job_dirname(ascii_name) == ascii_name


@pytest.mark.parametrize(
    "text",
    ["데이터 a=b,c (it's) [x]", "a\\${b}", "${x}", "end\\", "a\\'b", "back\\slash", '"q" {}'],
)
def test_a_quoted_value_reads_back_through_hydra_as_written(text: str) -> None:
    # sweep.py --dir with Hydra's own characters stopped the launch (OverrideParseException).
    value = OverridesParser.create().parse_override(f"x={quoted_value(text)}").value()
    assert OmegaConf.create({"x": value}).x == text


def test_a_second_run_given_a_folder_in_use_stops_at_once(tmp_path, monkeypatch) -> None:
    # Two train.py given one folder mixed their history and checkpoints, and the later launch's
    # Hydra files (rewritten before it could be refused) described the earlier run's result.
    hydra = tmp_path / ".hydra"
    hydra.mkdir()
    (hydra / "overrides.yaml").write_text("- seed=1\n")
    monkeypatch.setattr(run_claim, "hydra_record", lambda run_dir: run_dir / ".hydra")
    started = {"overrides.yaml": b"- seed=1\n"}  # as the job read them first thing (hydra_job)
    (hydra / "overrides.yaml").write_text("- seed=2\n")  # a second launch's, before the claim
    with run_claim.claimed_folder(tmp_path, "hydra.run.dir=<new folder>", True, started) as claim:
        with pytest.raises(LayerftError) as refused, run_claim.claimed_folder(tmp_path, "x"):
            pass
        claim.put_back_hydra_files()
        assert (hydra / "overrides.yaml").read_text() == "- seed=1\n"
    assert str(refused.value).startswith(
        f"{tmp_path} is in use by another run (pid {os.getpid()} on "
    )
    assert str(refused.value).endswith("; run this one in another folder (x)")
    assert not (tmp_path / run_claim.RUN_LOCK).exists()  # nothing left once the run ends
    with run_claim.claimed_folder(tmp_path, "x"):  # free again
        pass


@pytest.mark.slow
def test_train_py_given_a_folder_another_run_trains_in_stops_with_one_line(tmp_path) -> None:
    args = ["model=tiny", "tracker=none", "injection_task=none", "target_task.epochs=10000",
            "target_task.generator_sizes.train=64", "target_task.generator_sizes.validation=32",
            f"hydra.run.dir={tmp_path / 'run'}", f"cache_dir={tmp_path / 'cache'}"]  # fmt: skip
    first = subprocess.Popen(
        [sys.executable, str(REPO / "train.py"), *args, "seed=1"], cwd=tmp_path,
        env=script_env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,
    )  # fmt: skip
    deadline = threading.Timer(240, os.killpg, (first.pid, signal.SIGKILL))
    deadline.start()
    try:
        assert first.stdout is not None
        for line in first.stdout:  # training has begun once a step is logged
            if re.search(r"target step \d+: loss=", line):
                break
        second = run_train([*args, "seed=2"], tmp_path, timeout=120)
        os.killpg(first.pid, signal.SIGTERM)
        first.communicate(timeout=120)
    finally:
        deadline.cancel()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(first.pid, signal.SIGKILL)
    assert second.returncode == 2, second.stderr[-2000:]
    assert (
        f"error: {tmp_path / 'run'} is in use by another run (pid {first.pid} on " in second.stderr
    )
    assert first.returncode == 143  # the first was stopped by the test, not by the second


def test_a_sweep_folder_that_is_no_utf8_is_one_line(tmp_path, capsys) -> None:
    # Its jobs trained, then safetensors refused the path and the tables ended in a traceback.
    from layerft import sweep as sweep_module

    folder = str(tmp_path) + "/x\udcffbyte"  # the byte 0xff, as Python reads it from argv
    code = sweep_module.main(["demo", "model=tiny", "--dir", folder, "--dry-run"])
    assert code == 2
    assert capsys.readouterr().err.strip() == f"error: --dir {ascii(folder)}: not a UTF-8 path"


def test_a_lock_file_removed_as_its_holder_let_go_is_locked_anew(tmp_path) -> None:
    # A run removes its folder's lock file before letting go; one waiting on the old file then
    # held a lock nobody else could see, beside a third run locking a new file there.
    import fcntl

    from layerft.file_lock import held_lock

    path, seen = tmp_path / "x.lock", []
    first = path.open("a+")
    fcntl.flock(first, fcntl.LOCK_EX)

    def waiter() -> None:
        with held_lock(path, lambda holder: seen.append("waiting")):
            seen.append(path.exists())

    thread = threading.Thread(target=waiter)
    thread.start()
    for _ in range(100):
        if seen:
            break
        time.sleep(0.05)
    time.sleep(0.2)  # now blocked in its flock on the first file
    path.unlink()
    fcntl.flock(first, fcntl.LOCK_UN)
    first.close()
    thread.join(10)
    assert seen == ["waiting", True]


def test_a_killed_runs_lock_file_does_not_keep_an_empty_job_folder(tmp_path) -> None:
    from layerft.run_folder import RUN_LOCK, remove_if_only_hydra_files

    (tmp_path / ".hydra").mkdir()
    (tmp_path / "train.log").write_text("")
    (tmp_path / RUN_LOCK).write_text("pid 1 on host")  # a kill -9 left it
    remove_if_only_hydra_files(tmp_path)
    assert not tmp_path.exists()


def test_a_run_puts_back_the_hydra_files_its_job_started_with(tmp_path) -> None:
    """Hydra files rewritten after the job read them (a second launch given the folder, seconds
    into the first's imports) are put back as they were when the job started."""
    script = (
        "import runpy, sys\n"
        "from pathlib import Path\n"
        "import layerft.run as run_module\n"
        "started = run_module.run\n"
        "def rewritten(run_cfg, run_dir, *args):\n"
        "    (Path(run_dir) / '.hydra' / 'overrides.yaml').write_text('- seed=2\\n')\n"
        "    return started(run_cfg, run_dir, *args)\n"
        "run_module.run = rewritten\n"
        "sys.argv = ['train.py', *sys.argv[1:]]\n"
        f"runpy.run_path({str(REPO / 'train.py')!r}, run_name='__main__')\n"
    )
    args = ["model=tiny", "tracker=none", "injection_task=none", "target_task.epochs=1",
            "target_task.generator_sizes.train=16", "target_task.generator_sizes.validation=8",
            f"hydra.run.dir={tmp_path / 'run'}", f"cache_dir={tmp_path / 'cache'}"]  # fmt: skip
    done = run_python(["-c", script, *args], tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    overrides = (tmp_path / "run" / ".hydra" / "overrides.yaml").read_text()
    assert "seed=2" not in overrides and "target_task.epochs=1" in overrides


# A disk that fills up (a chaos review filled a tmpfs): safetensors raises its own error, not an
# OSError, naming no file; the run, the stage-1 store and the tokenization cache each say so in
# one line and leave no temporary file on the full disk.
FULL = "Error while serializing: I/O error: No space left on device (os error 28)"


def test_a_checkpoint_the_disk_has_no_room_for_is_one_line(tmp_path) -> None:
    with pytest.raises(LayerftError) as refused, file_io.run_dir_errors(tmp_path):
        raise SafetensorError(FULL)  # the Trainer saving a checkpoint (a traceback, exit 1)
    assert str(refused.value) == (
        f"cannot write a checkpoint's weights in {tmp_path}: No space left on device"
    )
    for text in (  # reading weights: not a write, whatever the system said
        "Error while deserializing header: invalid JSON",
        "Error while deserializing header: I/O error: No such file or directory (os error 2)",
    ):
        other = SafetensorError(text)
        with pytest.raises(SafetensorError) as kept, file_io.run_dir_errors(tmp_path):
            raise other
        assert kept.value is other


def test_a_stage1_result_the_disk_has_no_room_for_is_one_line(tmp_path, monkeypatch) -> None:
    def full(tensors, filename) -> None:  # noqa: ANN001 - save_file's
        Path(filename).write_bytes(b"\0" * 8)  # what it wrote before the disk filled
        raise SafetensorError(FULL)

    monkeypatch.setattr(stage1_store, "save_file", full)
    key = Stage1Key.of(compose_run("model=tiny", "injection_task=demo_pos"), "data")
    store = Stage1Store(tmp_path)
    weights = InjectedWeights(layers=[{"w": torch.ones(2)}], embeddings=None)
    with pytest.raises(LayerftError) as refused:
        store.save(key, weights, {}, [], tmp_path)
    assert str(refused.value) == (
        f"cannot store the stage-1 result in {store.folder(key)}: No space left on device"
    )
    assert [p.name for p in store.root.iterdir()] == []


def test_tokenized_data_the_disk_has_no_room_for_leaves_nothing(tmp_path, monkeypatch) -> None:
    def full(self, *args, cache_file_name: str, **kwargs) -> None:  # noqa: ANN001, ANN002, ANN003
        Path(cache_file_name).with_name("tmpabcd1234").write_bytes(b"\0" * 8)  # datasets' own
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(Dataset, "map", full)
    task = compose_run("model=tiny").target_task
    with pytest.raises(LayerftError, match="No space left on device"):
        tokenize(Dataset.from_list([{"text": "a", "label": 0}]), task, build_tiny_tokenizer(),
                 tmp_path / "tokenized", key="k")  # fmt: skip
    assert list((tmp_path / "tokenized").iterdir()) == []  # a tmpXXXXXXXX was left there


def test_a_log_file_hydra_cannot_open_is_one_line(tmp_path) -> None:
    # train.log (or a job's sweep.log) with a folder in its place, or in a folder one may not
    # write: a traceback from train.py, "ValueError: Unable to configure handler 'file'" naming
    # no file from sweep.py (a chaos review).
    (tmp_path / "run" / "train.log").mkdir(parents=True)
    done = run_train(["model=tiny", "tracker=none", f"hydra.run.dir={tmp_path / 'run'}"], tmp_path)
    assert done.returncode == 2
    assert (
        done.stderr.strip()
        == f"error: cannot write {tmp_path / 'run' / 'train.log'}: Is a directory"
    )
    handler = {"class": "logging.FileHandler", "filename": str(tmp_path / "run" / "train.log")}
    with pytest.raises(ValueError) as refused:
        logging.config.dictConfig({"version": 1, "handlers": {"file": handler}})
    line = f"cannot write {tmp_path / 'run' / 'train.log'}: Is a directory"
    assert sweep_launch._stopped_by(refused.value) == line  # what the sweep says stopped it

    # Only a handler that could not open a named file: logging's other failures keep their line.
    def failed(message: str, cause: BaseException) -> ValueError:
        err = ValueError(message)
        err.__cause__ = cause
        return err

    handler_failed, named = (
        "Unable to configure handler 'file'",
        OSError(errno.EISDIR, "Is a directory", "x"),
    )
    assert log_file_error_line(failed(handler_failed, named)) == "cannot write x: Is a directory"
    assert log_file_error_line(failed("Unable to configure formatter 'simple'", named)) is None
    assert log_file_error_line(failed(handler_failed, ImportError("no such class"))) is None
    assert log_file_error_line(failed(handler_failed, OSError(errno.EACCES, "denied"))) is None
