"""Config mistakes through a real `python train.py` call: one `error:` line naming the key, exit 2."""

from __future__ import annotations

from pathlib import Path

from conftest import run_train


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error: ")]


def test_added_unknown_key_fails_the_run(tmp_path: Path) -> None:
    proc = run_train(["model=tiny", "tracker=none", "+target_task.lrr=1e-4"], tmp_path)
    assert proc.returncode == 2, proc.stderr
    lines = error_lines(proc.stderr)
    assert len(lines) == 1 and "target_task.lrr" in lines[0], proc.stderr
    assert not (tmp_path / "run" / "metrics.json").exists()
