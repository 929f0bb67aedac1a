"""A user's machine unlike the developer's (from a review that ran layerft under read-only caches,
long and non-ASCII paths): each such fault is one line naming the file, not a traceback."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from compose import compose_run
from conftest import REPO

from layerft.config_overrides import quoted_value
from layerft.errors import LayerftError
from layerft.stage1_key import Stage1Key
from layerft.stage1_store import Stage1Store
from layerft.sweep_grid import MAX_DIRNAME, job_dirname


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
