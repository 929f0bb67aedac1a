"""A run's process among others: data-loader workers sending their batches through a Unix socket
in multiprocessing's temporary folder (`processes.short_socket_folder`)."""

from __future__ import annotations

import json
import multiprocessing.process
import os
import tempfile
from pathlib import Path

import pytest
from conftest import run_train

from layerft import processes
from layerft.errors import LayerftError

TINY = ["model=tiny", "tracker=none", "injection_task=none", "target_task.epochs=1",
        "target_task.generator_sizes.train=64", "target_task.generator_sizes.validation=32"]  # fmt: skip


def test_the_device_name_says_what_a_run_trained_on_and_how_many_processes(monkeypatch) -> None:
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda: "NVIDIA H100 80GB HBM3")
    assert processes.device_name() == "NVIDIA H100 80GB HBM3"
    monkeypatch.setenv("WORLD_SIZE", "2")  # torchrun's
    assert processes.device_name() == "2x NVIDIA H100 80GB HBM3"
    monkeypatch.delenv("WORLD_SIZE")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert processes.device_name() == "cpu"
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert processes.device_name() == "mps"


def test_every_process_of_a_torchrun_job_gets_one_answer(tmp_path: Path, monkeypatch) -> None:
    # Each process read the stage-1 store alone: one that found a result another job had stored an
    # instant after the first process looked reused it while the first trained, and both hung.
    import subprocess
    import sys
    from datetime import timedelta

    from torch.distributed import TCPStore

    agent = TCPStore("127.0.0.1", 0, is_master=True, timeout=timedelta(seconds=60))  # torchrun's
    ask = (  # then a second question, as the next job of a `train.py -m` asks, a second later
        "import sys, time; from layerft.processes import every_process as e; "
        "print(e(sys.argv[1] == 'found', 'q')); time.sleep(int(sys.argv[2])); print(e(True, 'q'))"
    )
    env = {**os.environ, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(agent.port),
           "TORCHELASTIC_USE_AGENT_STORE": "True", "WORLD_SIZE": "2"}  # fmt: skip

    def answers(*found: str, restart: str = "0") -> list[list[str]]:
        asked = [
            subprocess.Popen(
                [sys.executable, "-c", ask, said, str(rank)],
                stdout=subprocess.PIPE,
                text=True,
                env={**env, "RANK": str(rank), "TORCHELASTIC_RESTART_COUNT": restart},
            )  # fmt: skip
            for rank, said in enumerate(found)
        ]
        return [process.communicate(timeout=60)[0].split() for process in asked]

    assert answers("found", "missing") == [["False", "True"]] * 2  # not the first's stale answer
    assert answers("found", "found", restart="1") == [["True", "True"]] * 2  # a restart anew
    monkeypatch.setenv("WORLD_SIZE", "2")  # another launcher: no store to ask, its own answer
    monkeypatch.delenv("TORCHELASTIC_USE_AGENT_STORE", raising=False)
    assert processes.every_process(True, "q") and not processes.every_process(False, "q")


def test_a_mac_run_the_trainer_puts_on_the_cpu_is_recorded_on_the_cpu(monkeypatch) -> None:
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert processes.device_name() == "mps"
    assert processes.device_name(bf16=True) == "cpu"  # the CPU's bf16 autocast: use_cpu
    monkeypatch.setenv("WORLD_SIZE", "2")  # gloo DDP on the CPU: use_cpu
    assert processes.device_name() == "2x cpu"


@pytest.mark.parametrize(("world", "precision", "cpu"), [("1", "fp32", False), ("1", "bf16", True), ("2", "fp32", True)])  # fmt: skip
def test_the_trainer_trains_where_the_record_says(monkeypatch, world: str, precision: str, cpu: bool) -> None:  # fmt: skip
    # Without CUDA, on a Mac: the Trainer's use_cpu and run/device follow one rule
    import torch
    from compose import compose_run

    from layerft.phase_trainer import PhaseSteps, training_arguments

    cfg = compose_run("model=tiny", "injection_task=none", f"trainer.precision={precision}")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    monkeypatch.setenv("WORLD_SIZE", world)
    monkeypatch.setattr("layerft.phase_trainer.TrainingArguments", dict)
    args = training_arguments(
        cfg.target_task, cfg.trainer, 1, Path("/tmp/unused"), PhaseSteps(10, 2, 5, 10, 5)
    )
    device = processes.device_name(bf16=precision == "bf16")
    assert args["use_cpu"] is cpu and device.endswith("cpu" if cpu else "mps")


def long_folder(tmp_path: Path, length: int = 90, letter: str = "t") -> Path:
    """A folder under `tmp_path` whose path has about `length` bytes (a cluster's job scratch)."""
    room = max(1, length - len(os.fsencode(tmp_path)) - 1) // len(letter.encode())
    folder = tmp_path / (letter * max(1, room))
    folder.mkdir()
    return folder


@pytest.mark.parametrize("letter", ["t", "임"], ids=["ascii", "korean"])
def test_loader_workers_run_under_a_tmpdir_too_long_for_a_socket(
    tmp_path: Path, letter: str
) -> None:
    # Each worker's batch failed to send ("OSError: AF_UNIX path too long", printed by the
    # worker's queue thread, which dropped the batch) and the run waited for it at its first
    # step forever; a test's own long TMPDIR hung the suite so. The limit is in bytes: 30 Korean
    # characters are 90.
    tmpdir = long_folder(tmp_path, letter=letter)
    assert len(str(tmpdir)) < 80 <= len(os.fsencode(tmpdir)) or letter == "t"
    proc = run_train(
        [*TINY, "trainer.dataloader_workers=2"], tmp_path, {"TMPDIR": str(tmpdir)}, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "AF_UNIX path too long" not in proc.stderr
    assert "data-loader workers' sockets go in /tmp/pymp-" in proc.stdout + proc.stderr
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["target/train_samples_per_second"] > 0


def test_a_socket_folder_left_too_long_is_one_line_naming_the_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No short folder to fall back on (none writable): one line, not a hang.
    monkeypatch.setattr(processes, "SHORT_FOLDERS", ())
    monkeypatch.setattr(tempfile, "tempdir", str(long_folder(tmp_path)))
    config = multiprocessing.process.current_process()._config
    kept = config.pop("tempdir", None)  # none made yet, as in a fresh process
    try:
        with pytest.raises(LayerftError) as caught:
            processes.short_socket_folder()
    finally:  # this process's later workers keep the folder they had
        config.pop("tempdir", None)
        if kept is not None:
            config["tempdir"] = kept
    message = str(caught.value)
    assert message.startswith("trainer.dataloader_workers: the workers' sockets would go in ")
    assert message.endswith("set TMPDIR to a shorter folder, or trainer.dataloader_workers=0")
