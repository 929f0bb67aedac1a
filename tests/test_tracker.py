"""The tracker's own decisions, in process: reachability, the offline fallback, stale run folders."""

from __future__ import annotations

import logging
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import wandb
from conftest import script_env

from layerft import tracker
from layerft.network import unreachable
from layerft.tracker import (
    TrackedRun,
    TrackerBackend,
    TrackerConfig,
    TrackerMode,
    remove_stale_runs,
    start_tracker,
)
from layerft.tracker_backends import Tracker

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


def start(tmp_path: Path, mode: TrackerMode) -> Tracker:
    return start_tracker(wandb_cfg(mode), tmp_path, TrackedRun("a run", {}, {"model": "tiny"}))


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


def probed_host(tmp_path: Path, fake_init: list[str], monkeypatch: pytest.MonkeyPatch) -> str:
    """The host a tracker=wandb start probes with no base URL set anywhere (it then runs online)."""
    for name in ("WANDB_BASE_URL", "WANDB_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(tmp_path / "no-config"))
    monkeypatch.chdir(tmp_path)
    asked: list[str] = []
    monkeypatch.setattr(tracker, "unreachable", lambda url: asked.append(url))
    start(tmp_path, TrackerMode.online)
    assert fake_init[0] == "online"
    (host,) = asked
    return host


def test_the_probe_asks_the_host_the_installed_wandb_talks_to(
    tmp_path: Path, fake_init: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The probe asked api.wandb.ai while W&B 0.31 talks to api.forge.coreweave.com by default: a
    # machine reaching only the latter (a firewall's allow list) ran offline for nothing.
    from wandb.sdk.lib.urls import DEFAULT_BASE_URL

    assert probed_host(tmp_path, fake_init, monkeypatch) == DEFAULT_BASE_URL


def test_the_probe_asks_api_wandb_ai_where_wandb_urls_has_no_default_host(
    tmp_path: Path, fake_init: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # W&B 0.23 to 0.30 have wandb/sdk/lib/urls.py without DEFAULT_BASE_URL: reading it as an
    # attribute raised AttributeError (not the ImportError the import of the name raised), and
    # every tracker=wandb run stopped with a traceback at its tracker's start.
    import wandb.sdk.lib.urls

    monkeypatch.delattr(wandb.sdk.lib.urls, "DEFAULT_BASE_URL")
    assert probed_host(tmp_path, fake_init, monkeypatch) == "https://api.wandb.ai"


def test_a_run_start_reads_wandbs_settings_files_once(
    tmp_path: Path, fake_init: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The mode and the host each read them, and the mode's key check read them again: three times.
    monkeypatch.delenv("WANDB_BASE_URL", raising=False)
    monkeypatch.setattr(tracker, "unreachable", lambda url: None)
    reads: list[dict[str, str]] = []
    monkeypatch.setattr(tracker, "wandb_settings", lambda: reads.append({}) or reads[-1])
    start(tmp_path, TrackerMode.auto)
    assert len(reads) == 1 and fake_init[0] == "online"


def test_offline_start_failure_is_not_hidden(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def init(**kwargs: Any) -> Any:
        raise wandb.errors.UsageError("broken")

    monkeypatch.setattr(wandb, "init", init)
    with pytest.raises(wandb.errors.UsageError):
        start(tmp_path, TrackerMode.offline)


def test_selection_metrics_follow_their_stage_step_and_a_failed_run_says_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A metric defined by name took no glob's step axis: stage 2's selection metric was drawn
    # on W&B's own _step, after stage 1's steps; and its summary was {"max": x} in an unfinished
    # run but a number in a finished one (two columns in W&B's runs table).
    from wandb_records import records_by_kind, wandb_items

    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("WANDB_MODE", raising=False)
    selection = {"injection/eval_token_f1": True, "target/eval_pearsonr": True}
    tracked = TrackedRun("a run", {}, selection=selection)
    run = start_tracker(wandb_cfg(TrackerMode.offline), tmp_path, tracked)
    run.log({"injection/eval_token_f1": 0.5, "injection/eval_loss": 1.0}, 4)
    run.log({"injection/eval_token_f1": 0.4}, 8)
    run.log({"target/eval_pearsonr": float("nan")}, 2)  # constant predictions
    run.log({"target/eval_pearsonr": 0.3, "target/loss": 2.0}, 4)
    run.log({"target/eval_pearsonr": 0.7}, 6)
    run.log({"target/eval_pearsonr": 0.6}, 8)
    monkeypatch.setenv("WANDB_API_KEY", KEY)  # should an error echo it
    run.finish(f"CommError: {KEY} refused")  # failed: W&B said nowhere why
    [run_file] = tmp_path.glob("wandb/offline-run-*/run-*.wandb")
    for _ in range(100):  # W&B's core process may still be writing the file after finish()
        if "exit" in (records := records_by_kind(run_file)):
            break
        time.sleep(0.1)
    axes = {m.name: m.step_metric for m in records["metric"] if m.name}
    assert axes["target/eval_pearsonr"] == "target/step"
    assert axes["injection/eval_token_f1"] == "injection/step"
    summary: dict[str, Any] = {}
    for update in records["summary"]:
        summary |= wandb_items(update.update)
    assert summary["target/eval_pearsonr"] == 0.7 and summary["injection/eval_token_f1"] == 0.5
    assert summary["run/error"] == "CommError: *** refused"
    [exit_record] = records["exit"]
    assert exit_record.exit_code == 1


@pytest.mark.parametrize("mode", [TrackerMode.offline, TrackerMode.online])
def test_a_stop_inside_wandb_init_closes_its_run_as_failed(
    mode: TrackerMode, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A sweep's SIGTERM (a KeyboardInterrupt by layerft.interrupts) that landed while W&B started
    # the job's run: W&B's exit hook closed the run as finished, exit code 0, no run/error. Online:
    # the start failed and the stop landed in the offline start after it (it had gone unclosed).
    import wandb
    from wandb_records import records_by_kind, wandb_items

    from layerft import interrupts

    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("WANDB_API_KEY", KEY)
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.setattr(tracker, "unreachable", lambda url: None)
    started = wandb.init

    def stopped_while_starting(**kwargs: Any) -> Any:
        if kwargs["mode"] == "online":
            raise wandb.errors.CommError("server said no")
        started(**kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(wandb, "init", stopped_while_starting)
    monkeypatch.setattr(interrupts, "_received", signal.SIGTERM)
    with pytest.raises(KeyboardInterrupt):
        start_tracker(wandb_cfg(mode), tmp_path, TrackedRun("a run", {}))
    assert wandb.run is None
    [run_file] = tmp_path.glob("wandb/offline-run-*/run-*.wandb")
    for _ in range(100):  # W&B's core process may still be writing the file after finish()
        if "exit" in (records := records_by_kind(run_file)):
            break
        time.sleep(0.1)
    [exit_record] = records["exit"]
    summary: dict[str, Any] = {}
    for update in records["summary"]:
        summary |= wandb_items(update.update)
    assert exit_record.exit_code == 1 and summary["run/error"] == "terminated (SIGTERM)"


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
    from layerft.run_record import RunRecord
    from layerft.run_tracker import run_name

    choices = {"injection_task": "demo_pos", "target_task": "ag_news", "layer_split": "lower1",
               "tuning_mode": "full", "model": "tiny", "tracker": "wandb"}  # fmt: skip

    def name(*overrides: str) -> str:
        record = RunRecord(
            "f", "g", choices, 1, ["seed=1", *overrides], "target/eval_accuracy", True
        )
        return run_name(record)

    assert name() == "demo_pos ag_news lower1 full s1"
    assert name("target_task.lr=1e-3") == "demo_pos ag_news lower1 full target_task.lr=1e-3 s1"
    assert name("target_task.lr=3e-3") != name("target_task.lr=1e-3")
    assert name("model=tiny", "tuning_mode=full") == "demo_pos ag_news lower1 full model=tiny s1"
    # Result-neutral keys (a credential, where the run writes) and the sweep's name name nothing.
    assert name("+tracker.api_key=***", "cache_dir=/c", "hydra.run.dir=/x", "sweep=demo") == name()
    # W&B refuses a name over 128 characters: the settings that do not fit are counted
    paths = [
        f"target_task.data_files.{s}=/data/a/long/folder/name/{s}.jsonl" for s in ("a", "b", "c")
    ]
    long = name("target_task.lr=1e-3", *paths)
    assert len(long) <= 128 and long.endswith("+2 more s1"), long
    assert long.startswith(
        "demo_pos ag_news lower1 full target_task.lr=1e-3 target_task.data_files.a="
    )
    # A grid's swept setting comes before those set alike for all its jobs: two learning rates
    # under long fixed data paths were one name, the rate counted in "+N more".
    fixed = frozenset(o.split("=")[0] for o in paths)
    record = RunRecord("f", "g", choices, 1, ["seed=1", *paths, "target_task.lr=1e-3"],
                       "target/eval_accuracy", True)  # fmt: skip
    swept_first = run_name(record, fixed)
    assert swept_first.startswith("demo_pos ag_news lower1 full target_task.lr=1e-3 ")
    assert swept_first.endswith("+2 more s1") and "+3 more" in run_name(record)
    # Without stage 1 the split is never read: its one run serves every split and names none.
    choices["injection_task"] = "none"
    assert name("layer_split.stage2.policy=freeze") == "none ag_news - full s1"


def test_a_sweep_jobs_fixed_settings_are_its_hydra_folder_names_excluded_keys() -> None:
    from compose import CONF
    from hydra import compose, initialize_config_dir
    from hydra.core.hydra_config import HydraConfig

    from layerft.run_tracker import sweep_fixed_keys

    assert sweep_fixed_keys() == frozenset()  # no Hydra job: nothing is known fixed
    keys = (
        "model,+target_task.data_files.a,lr_schedule@injection_lr_schedule"  # as sweep.py has them
    )
    excluded = f"hydra.job.config.override_dirname.exclude_keys=[{keys}]"
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("config", overrides=[excluded], return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    try:
        fixed = {"model", "target_task.data_files.a", "injection_lr_schedule"}  # as settings
        assert sweep_fixed_keys() == fixed
    finally:
        HydraConfig.instance().cfg = None


@pytest.mark.parametrize("injection", ["none", "demo_pos"])
def test_a_baseline_run_belongs_to_no_split_in_wandb(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, injection: str
) -> None:
    """A run without stage 1 serves every layer split of its grid: its W&B run carries no split
    (tags, `choice/` keys, config) rather than the first one the grid listed."""
    from compose import compose_config

    from layerft.config import resolve_config, to_run_config
    from layerft.run_record import RunRecord
    from layerft.run_tracker import open_tracker

    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(wandb, "init", lambda **kwargs: calls.append(kwargs) or SimpleNamespace(
        id="abc", dir=str(tmp_path), define_metric=lambda *a, **k: None
    ))  # fmt: skip
    overrides = [f"injection_task={injection}", "layer_split=lower_half", "tracker=wandb",
                 "tracker.mode=offline", "model=tiny"]  # fmt: skip
    composed = compose_config(*overrides)
    cfg, resolved = to_run_config(composed), resolve_config(composed)
    choices = {"injection_task": injection, "target_task": "demo_sentiment",
               "layer_split": "lower_half", "tuning_mode": "full", "lr_schedule": "linear",
               "injection_lr_schedule": "linear", "model": "tiny", "tracker": "wandb"}  # fmt: skip
    record = RunRecord.of(resolved, choices, overrides, ("target/eval_accuracy", True))
    open_tracker(cfg, tmp_path, resolved, record, keep_earlier=False)

    [init] = calls
    # a combination's seeds are one group in W&B by one key
    assert init["config"]["layerft/combination"] == record.seedless_fingerprint
    assert init["config"]["layerft/selection_metric"] == "target/eval_accuracy"
    unread = ("layer_split", "injection_lr_schedule")
    split_tags = [t for t in init["tags"] if t.split(":")[0] in unread]
    split_keys = {k for k in init["config"] if k.removeprefix("choice/") in unread}
    # Nor does a setting it never reads show: LoRA's under full fine-tuning.
    assert (
        "lora" not in init["config"]["tuning_mode"]
        and init["config"]["tuning_mode"]["name"] == "full"
    )
    assert "layer_decay" not in init["config"]["lr_schedule"]
    # Nor a setting that cannot change its result: a forced rerun, another cache folder or the
    # tracker's own settings split one config's runs when W&B groups them by config.
    assert not {"force_rerun", "cache_dir", "reuse_stage1", "tracker", "choice/tracker"} & set(
        init["config"]
    )
    assert (
        "keep_checkpoints" not in init["config"]["trainer"] and "tracker:wandb" not in init["tags"]
    )
    if injection == "none":
        assert init["name"] == "none demo_sentiment - full model=tiny s42"
        assert split_tags == [] and split_keys == set()
        assert "tuning_mode:full" in init["tags"] and init["config"]["choice/tuning_mode"] == "full"
        assert init["config"]["injection_task"] is None
    else:
        assert init["name"] == "demo_pos demo_sentiment lower_half full model=tiny s42"
        assert split_tags == ["injection_lr_schedule:linear", "layer_split:lower_half"]
        stage1 = init["config"]["layer_split"]["stage1"]
        assert stage1 == resolved["layer_split"]["stage1"]
        assert "lr_multiplier" not in init["config"]["layer_split"]["stage2"]  # policy=freeze
        assert init["config"]["choice/layer_split"] == "lower_half"


def test_a_forced_rerun_in_the_folder_that_trained_stage1_logs_it_as_its_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # It replaces that folder's W&B run, the artifact's one producer: logged as an input only, it
    # left the stage-1 lineage with no run that produced it. A run of another folder only uses it.
    from layerft.stage1 import Stage1Outcome
    from layerft.stage1_store import Stage1Result
    from layerft.tracker_backends import WandbTracker

    stored = tmp_path / "cache" / "stage1" / "abc-def"
    stored.mkdir(parents=True)
    (stored / "weights.safetensors").write_bytes(b"w")
    producer = tmp_path / "run"
    result = Stage1Result(None, {}, [], stored, str(producer))  # type: ignore[arg-type]
    reused = Stage1Outcome(result, trained=False)
    assert reused.produced_in(producer) and not reused.produced_in(tmp_path / "other")
    assert Stage1Outcome(result, trained=True).produced_in(tmp_path / "other")
    calls: list[str] = []
    run = SimpleNamespace(
        log_artifact=lambda artifact: calls.append("output"),
        _log_artifact=lambda artifact, **kwargs: calls.append("input"),
        settings=SimpleNamespace(_offline=True),
    )
    monkeypatch.setattr(wandb, "Artifact", lambda *a, **k: SimpleNamespace(add_reference=lambda *a, **k: None))  # fmt: skip
    for folder in (producer, tmp_path / "other"):
        WandbTracker(run).stage1(reused, reused.produced_in(folder))
    assert calls == ["output", "input"]


def test_a_stage1_artifact_is_logged_without_wandbs_checksum_note(tmp_path: Path, capsys) -> None:
    # "wandb: Generating checksum for up to 10000000 files in ..." on stderr in every run with
    # a stored stage 1, whatever silent=True says.
    from layerft.stage1 import Stage1Outcome
    from layerft.stage1_store import Stage1Result
    from layerft.tracker_backends import WandbTracker

    stored = tmp_path / "stage1" / "abc-def"
    stored.mkdir(parents=True)
    (stored / "weights.safetensors").write_bytes(b"w")
    logged: list[Any] = []
    run = SimpleNamespace(log_artifact=logged.append)
    result = Stage1Result(None, {}, [], stored, str(tmp_path))  # type: ignore[arg-type]
    WandbTracker(run).stage1(Stage1Outcome(result, trained=True), produced=True)
    [artifact] = logged
    assert artifact.name == "stage1-abc-def"
    assert list(artifact.manifest.entries) == ["stage1/weights.safetensors"]
    assert capsys.readouterr().err == ""


def test_auto_mode_finds_the_key_in_the_netrc_file_wandb_reads_for_its_host(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `auto` went offline where W&B would have logged in: a ~/.netrc others may read (Python's
    # default netrc refuses it; W&B names the file), a $NETRC file, ~/_netrc, the host newer W&B
    # versions save a key for (api.forge.coreweave.com), a server of one's own (WANDB_BASE_URL or
    # the base_url `wandb login --host` saves) and a netrc `default` entry.
    for name in (
        "WANDB_API_KEY",
        "WANDB_MODE",
        "NETRC",
        "WANDB_BASE_URL",
        "WANDB_CONFIG_DIR",
        "WANDB_IDENTITY_TOKEN_FILE",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    auto = wandb_cfg(TrackerMode.auto)

    def netrc_holds(host: str, file: str = ".netrc", password: str = KEY) -> None:
        (tmp_path / file).write_text(f"machine {host}\n  login user\n  password {password}\n")
        (tmp_path / file).chmod(0o644)

    assert tracker.resolve_mode(auto) == "offline"
    monkeypatch.setenv("WANDB_IDENTITY_TOKEN_FILE", str(tmp_path / "token"))  # W&B's other way
    assert tracker.resolve_mode(auto) == "online"
    monkeypatch.delenv("WANDB_IDENTITY_TOKEN_FILE")
    netrc_holds("api.wandb.ai")
    assert tracker.resolve_mode(auto) == "online"
    netrc_holds("api.forge.coreweave.com")
    assert tracker.resolve_mode(auto) == "online"
    netrc_holds("ml.example.org:8443")
    assert tracker.resolve_mode(auto) == "offline"  # no W&B host
    monkeypatch.setenv("WANDB_BASE_URL", "https://ml.example.org:8443")
    assert tracker.resolve_mode(auto) == "online"
    monkeypatch.delenv("WANDB_BASE_URL")
    (tmp_path / ".config" / "wandb").mkdir(parents=True)
    (tmp_path / ".config" / "wandb" / "settings").write_text(
        "[default]\nbase_url = https://ml.example.org:8443\n"
    )
    assert tracker.resolve_mode(auto) == "online"
    netrc_holds("ml.example.org:8443", password="")
    assert tracker.resolve_mode(auto) == "offline"  # an entry with no key
    (tmp_path / ".netrc").write_text(f"default login user password {KEY}\n")
    assert tracker.resolve_mode(auto) == "online"
    netrc_holds("github.com")
    netrc_holds("api.wandb.ai", "_netrc")
    assert tracker.resolve_mode(auto) == "offline"  # W&B reads ~/.netrc, which is there
    (tmp_path / ".netrc").unlink()
    assert tracker.resolve_mode(auto) == "online"  # then ~/_netrc
    monkeypatch.setenv("NETRC", str(tmp_path / "elsewhere"))
    assert tracker.resolve_mode(auto) == "offline"  # only the file NETRC names
    netrc_holds("api.wandb.ai", "elsewhere")
    assert tracker.resolve_mode(auto) == "online"


def test_auto_mode_follows_the_mode_wandb_offline_saved(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `wandb offline` (saved in the workspace's wandb/settings) was ignored: a key sent the runs
    # online all the same.
    for name in ("WANDB_MODE", "WANDB_DIR", "WANDB_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("WANDB_API_KEY", KEY)
    monkeypatch.chdir(tmp_path)
    auto = wandb_cfg(TrackerMode.auto)
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "settings").write_text("[default]\nmode = offline\n")
    assert tracker.resolve_mode(auto) == "offline"
    (tmp_path / "wandb").mkdir()
    (tmp_path / "wandb" / "settings").write_text("[default]\nmode = online\n")
    assert tracker.resolve_mode(auto) == "online"  # the workspace's wins
    (tmp_path / "wandb" / "settings").write_text("[default]\nmode = dryrun\n")
    assert tracker.resolve_mode(auto) == "offline"
    monkeypatch.setenv("WANDB_MODE", "online")
    assert tracker.resolve_mode(auto) == "online"  # the environment wins over both files
    assert tracker.resolve_mode(wandb_cfg(TrackerMode.offline)) == "offline"  # the config over all
    monkeypatch.delenv("WANDB_MODE")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "elsewhere"))  # its workspace: no settings
    assert tracker.resolve_mode(auto) == "offline"  # the global file's
    (tmp_path / "config" / "settings").write_text("[default]\nmode = sideways\n")
    assert tracker.resolve_mode(auto) == "online"  # no mode W&B knows: the key decides


# A stop (Ctrl-C, SIGTERM) landing while `import wandb` runs, as it did at a job's tracker start,
# then the tracker started again in the same process (as the sweep's results run is, after a stop).
STOP_IN_WANDB_IMPORT = """
import sys
from pathlib import Path

from layerft.tracker import TrackedRun, TrackerBackend, TrackerConfig, TrackerMode, start_tracker


class Stop:
    seen = 0

    def find_spec(self, name, path=None, target=None):
        self.seen += name.startswith("wandb.")
        if self.seen == 60:  # partway: wandb 0.31 imports some 240 of its modules
            sys.meta_path.remove(self)
            raise KeyboardInterrupt
        return None


sys.meta_path.insert(0, Stop())
cfg = TrackerConfig(name="wandb", backend=TrackerBackend.wandb, mode=TrackerMode.offline)
try:
    start_tracker(cfg, Path("first"), TrackedRun("a run", {}))
except KeyboardInterrupt:
    print("stopped")
start_tracker(cfg, Path("second"), TrackedRun("a run", {})).finish()
print("started again")
"""


def test_a_stop_inside_the_wandb_import_leaves_a_later_start_working(tmp_path: Path) -> None:
    # Python keeps the submodules an interrupted import loaded: the next `import wandb` raised
    # "partially initialized module 'wandb' has no attribute 'errors'" (the stopped job's run
    # closed, then the sweep's results run: a traceback, exit code 1 instead of 130).
    done = subprocess.run(
        [sys.executable, "-c", STOP_IN_WANDB_IMPORT], cwd=tmp_path, env=script_env(tmp_path),
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert (done.returncode, done.stdout) == (0, "stopped\nstarted again\n"), done.stderr[-2000:]
    assert len(list((tmp_path / "second" / "wandb").glob("offline-run-*"))) == 1
