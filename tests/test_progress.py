"""What a run shows while it trains: a labelled progress bar per stage on a terminal, log lines in files."""

from __future__ import annotations

import fcntl
import os
import pty
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest
from conftest import REPO, SHRINK, run_train


def run_on_terminal(args: list[str], cwd: Path) -> tuple[int, str]:
    """Run train.py with stderr on a pseudo-terminal (as in a shell); its exit code and that output."""
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))  # rows, columns
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WANDB_", "LAYERFT_"))}
    env.update(HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", HOME=str(cwd), OMP_NUM_THREADS="1")
    proc = subprocess.Popen(
        [sys.executable, str(REPO / "train.py"), *args],
        cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=follower,
    )  # fmt: skip
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    return proc.wait(timeout=300), b"".join(chunks).decode(errors="replace")


@pytest.mark.slow
def test_terminal_shows_a_progress_bar_per_stage_and_the_log_keeps_evaluations(tmp_path) -> None:
    args = [*SHRINK, f"cache_dir={tmp_path / 'cache'}", f"hydra.run.dir={tmp_path / 'run'}"]
    code, shown = run_on_terminal(args, tmp_path)
    assert code == 0, shown[-2000:]
    # tqdm's bar, with the stage as its description: "injection: 100%|██████████| 2/2 [...]"
    assert "injection: 100%|" in shown and "target: 100%|" in shown
    log = (tmp_path / "run" / "train.log").read_text()
    assert "injection step 2: eval_loss=" in log and "target step 2: eval_loss=" in log
    assert "100%|" not in log


def test_no_progress_bar_or_pin_memory_warning_when_not_on_a_terminal(tmp_path) -> None:
    proc = run_train(list(SHRINK), tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "100%|" not in proc.stderr and "it/s]" not in proc.stderr
    assert "pin_memory" not in proc.stderr  # the Trainer's warning on machines without a GPU
