"""The tracker's own decisions, in process: reachability, the offline fallback, stale run folders."""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import wandb

from layerft import tracker
from layerft.network import unreachable
from layerft.tracker import (
    TrackerBackend,
    TrackerConfig,
    TrackerMode,
    remove_stale_runs,
    start_tracker,
)

KEY = "0123456789abcdef0123456789abcdef01234567"


class _NotFound(BaseHTTPRequestHandler):
    def do_HEAD(self) -> None:  # noqa: N802 - the http.server hook's name
        self.send_response(404)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def http_404() -> Iterator[str]:
    """A local HTTP server that answers every request with 404."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _NotFound)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_any_http_answer_means_reachable(http_404: str) -> None:
    assert unreachable(http_404) is None


def test_a_refused_connection_is_unreachable_at_once() -> None:
    with socket.socket() as sock:  # bind, never listen: connections to it are refused
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        start = time.monotonic()
        reason = unreachable(url)
    assert reason is not None and "refused" in reason.lower()
    assert time.monotonic() - start < 1


def test_a_host_that_never_answers_is_unreachable_after_the_timeout() -> None:
    with socket.socket() as sock:  # listens (the kernel completes connects) but never replies
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        start = time.monotonic()
        reason = unreachable(f"http://127.0.0.1:{sock.getsockname()[1]}", timeout=0.5)
    assert reason is not None
    assert time.monotonic() - start < 1.5


def wandb_cfg(mode: TrackerMode) -> TrackerConfig:
    return TrackerConfig(name="wandb", backend=TrackerBackend.wandb, mode=mode)


@pytest.fixture
def fake_init(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """wandb.init stand-in that fails online (its message echoing the key) and works offline."""
    modes: list[str] = []

    def init(mode: str, dir: str, **kwargs: Any) -> Any:
        modes.append(mode)
        if mode == "online":
            (Path(dir) / "wandb" / "run-20200101_000000-failed01").mkdir(parents=True)
            raise wandb.errors.CommError(f"server said no to {KEY}\nmore detail")
        return SimpleNamespace(id="abc", dir=dir)

    monkeypatch.setattr(wandb, "init", init)
    monkeypatch.setenv("WANDB_API_KEY", KEY)
    monkeypatch.delenv("WANDB_MODE", raising=False)
    return modes


def start(tmp_path: Path, mode: TrackerMode) -> tracker.Tracker:
    return start_tracker(
        wandb_cfg(mode), tmp_path, {}, {"model": "tiny"}, "a run", None, "target", {}
    )


def test_online_start_failure_goes_offline_with_one_warning_without_the_key(
    tmp_path: Path, fake_init: list[str], monkeypatch: pytest.MonkeyPatch, caplog
) -> None:
    monkeypatch.setattr(tracker, "unreachable", lambda url: None)
    earlier = tmp_path / "wandb" / "offline-run-20190101_000000-finished"  # a finished result's
    earlier.mkdir(parents=True)
    stale = tmp_path / "wandb" / "run-20200101_000000-failed01"  # what the failed start leaves
    with caplog.at_level(logging.INFO, logger="layerft.tracker"):
        start(tmp_path, TrackerMode.auto)
    assert fake_init == ["online", "offline"]
    [warning] = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert "offline" in warning and "CommError: server said no to ***" in warning
    assert KEY not in caplog.text and "more detail" not in warning
    assert not stale.exists() and earlier.exists()  # only the failed start's folder goes


def test_unreachable_host_skips_the_online_attempt(
    tmp_path: Path, fake_init: list[str], monkeypatch: pytest.MonkeyPatch, caplog
) -> None:
    monkeypatch.setenv("WANDB_BASE_URL", "http://wandb.example:8080")
    monkeypatch.setattr(tracker, "unreachable", lambda url: f"{url}: down")
    with caplog.at_level(logging.WARNING, logger="layerft.tracker"):
        start(tmp_path, TrackerMode.online)
    assert fake_init == ["offline"]
    [warning] = [r.getMessage() for r in caplog.records]
    assert "http://wandb.example:8080 unreachable" in warning and "offline" in warning


def test_offline_start_failure_is_not_hidden(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def init(**kwargs: Any) -> Any:
        raise wandb.errors.UsageError("broken")

    monkeypatch.setattr(wandb, "init", init)
    with pytest.raises(wandb.errors.UsageError):
        start(tmp_path, TrackerMode.offline)


def test_stale_run_folders_and_latest_link_are_removed_with_one_info_line(
    tmp_path: Path, caplog
) -> None:
    folder = tmp_path / "wandb"
    for name in ("offline-run-20200101_000000-aaaa", "run-20200101_000001-bbbb"):
        (folder / name / "files").mkdir(parents=True)
    (folder / "latest-run").symlink_to("run-20200101_000001-bbbb")
    (folder / "debug.log").write_text("kept")
    with caplog.at_level(logging.INFO, logger="layerft.tracker"):
        remove_stale_runs(tmp_path)
    assert sorted(p.name for p in folder.iterdir()) == ["debug.log"]
    [line] = caplog.messages
    assert "removed 2 W&B run folder(s)" in line and str(folder) in line


def test_nothing_to_remove_logs_nothing(tmp_path: Path, caplog) -> None:
    with caplog.at_level(logging.INFO, logger="layerft.tracker"):
        remove_stale_runs(tmp_path)
        (tmp_path / "wandb").mkdir()
        remove_stale_runs(tmp_path)
    assert caplog.messages == []


def test_run_names_tell_apart_runs_that_differ_only_in_an_override() -> None:
    from layerft.results import RunRecord
    from layerft.run import run_name

    choices = {"injection_task": "none", "target_task": "ag_news", "layer_split": "lower1",
               "tuning_mode": "full", "model": "tiny", "tracker": "wandb"}  # fmt: skip

    def name(*overrides: str) -> str:
        record = RunRecord(
            "f", "g", choices, 1, ["seed=1", *overrides], "target/eval_accuracy", True
        )
        return run_name(record)

    assert name() == "none ag_news lower1 full s1"
    assert name("target_task.lr=1e-3") == "none ag_news lower1 full target_task.lr=1e-3 s1"
    assert name("target_task.lr=3e-3") != name("target_task.lr=1e-3")
    assert name("model=tiny", "tuning_mode=full") == "none ag_news lower1 full model=tiny s1"
    # Result-neutral keys (a credential, where the run writes) and the sweep's name name nothing.
    assert name("+tracker.api_key=***", "cache_dir=/c", "hydra.run.dir=/x", "sweep=demo") == name()
    # W&B refuses a name over 128 characters: the settings that do not fit are counted
    paths = [
        f"target_task.data_files.{s}=/data/a/long/folder/name/{s}.jsonl" for s in ("a", "b", "c")
    ]
    long = name("target_task.lr=1e-3", *paths)
    assert len(long) <= 128 and long.endswith("+2 more s1"), long
    assert long.startswith("none ag_news lower1 full target_task.lr=1e-3 target_task.data_files.a=")
