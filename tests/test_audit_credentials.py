"""Lines a mutation audit of the credential paths found unguarded: the config dumps a Hydra job and
a multirun leave (ScrubCredentials' callbacks and the credentials a multirun moves into the
environment), the scrubber's corner cases, the command-line refusal's flags, W&B's mode and the
secrets a failed run's error is masked of (each test names what it pins)."""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import wandb
import yaml
from compose import CONF
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf, open_dict

from layerft import run_tracker, sweep_tracker
from layerft.credential_overrides import credential_override_error
from layerft.credentials import ScrubCredentials, mask_credentials, scrub_config_file
from layerft.results import FAILED_FILE, record_failure
from layerft.run_record import ERROR_KEY
from layerft.tracker import (
    TrackedRun,
    TrackerBackend,
    TrackerConfig,
    TrackerMode,
    resolve_mode,
    start_tracker,
)
from layerft.tracker_backends import NoTracker, WandbTracker

FAKE = "sk-FAKE-5678"
HF_FAKE = "hf_FAKE9012"

# --- the config dumps of a job and of a multirun ----------------------------------------------


def _hydra_config(tmp_path: Path, *overrides: str) -> DictConfig:
    """The root config with its `hydra` node as a multirun's job in `tmp_path` has it."""
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("config", overrides=["model=tiny", *overrides], return_hydra_config=True)
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = str(tmp_path / "0")
        cfg.hydra.mode = RunMode.MULTIRUN
        cfg.hydra.sweep.dir = str(tmp_path)
    return cfg


def _dump(path: Path) -> None:
    """A config dump as Hydra writes it, holding FAKE as a command-line `env_set` credential."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        f"hydra:\n  job:\n    env_set:\n      WANDB_API_KEY: {FAKE}\n  overrides:\n    hydra:\n"
        f"    - hydra.job.env_set.WANDB_API_KEY={FAKE}\n"
    )


def test_a_jobs_three_dumps_and_its_multiruns_yaml_are_scrubbed_when_it_starts(
    tmp_path: Path,
) -> None:
    """Kills: on_job_start skipping `hydra.yaml` (or another of the three `.hydra` files), or a
    multirun's `multirun.yaml`; on_multirun_end not scrubbing `multirun.yaml`."""
    cfg = _hydra_config(tmp_path)
    dumps = [tmp_path / "0" / ".hydra" / n for n in ("config.yaml", "hydra.yaml", "overrides.yaml")]
    for path in [*dumps, tmp_path / "multirun.yaml"]:
        _dump(path)
    HydraConfig.instance().set_config(cfg)
    try:
        ScrubCredentials().on_job_start(config=cfg)
    finally:
        HydraConfig.instance().cfg = None  # other tests see no Hydra run
    for path in [*dumps, tmp_path / "multirun.yaml"]:
        text = path.read_text()
        assert FAKE not in text and "WANDB_API_KEY: '***'" in text, path
    # A multirun whose jobs had all finished starts none: its multirun.yaml is scrubbed at its end.
    _dump(tmp_path / "multirun.yaml")
    ScrubCredentials().on_multirun_end(config=cfg)
    assert FAKE not in (tmp_path / "multirun.yaml").read_text()


def test_a_multiruns_credentials_leave_its_config_for_the_environment_and_the_rest_stays(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Kills: on_multirun_start doing nothing; move_env_set_credentials keeping the
    `hydra.job.env_set.<KEY>=` override, keeping the credential inside an `env_set` dict override
    (in clear, or as `***`, which each job would then have as its key), or not setting the
    environment (the jobs would run without the key)."""
    monkeypatch.setenv("WANDB_API_KEY", "before")  # restored after the test
    monkeypatch.setenv("HF_TOKEN", "before")
    cfg = _hydra_config(
        tmp_path,
        f"++hydra.job.env_set={{HF_TOKEN:{HF_FAKE},OMP_NUM_THREADS:'1'}}",
        f"+hydra.job.env_set.WANDB_API_KEY={FAKE}",
    )
    ScrubCredentials().on_multirun_start(config=cfg)
    assert dict(cfg.hydra.job.env_set) == {"OMP_NUM_THREADS": "1"}
    assert OmegaConf.to_container(cfg.hydra.overrides.hydra) == [
        "++hydra.job.env_set={OMP_NUM_THREADS:'1'}"
    ]
    assert (os.environ["WANDB_API_KEY"], os.environ["HF_TOKEN"]) == (FAKE, HF_FAKE)


# --- the scrubber's corner cases --------------------------------------------------------------


def _scrubbed(tmp_path: Path, text: str) -> Any:
    """The `hydra` node of a dump holding `text` after scrub_config_file, which must change it."""
    dump = tmp_path / "hydra.yaml"
    dump.write_text(text)
    assert scrub_config_file(dump)
    return yaml.safe_load(dump.read_text())["hydra"]


def test_a_credential_anywhere_in_an_override_dirname_is_masked(tmp_path: Path) -> None:
    """Kills: masking a comma-joined `override_dirname` only when its first part is a credential
    (Hydra sorts its parts; a deletion `~key=` sorts last)."""
    scrubbed = _scrubbed(
        tmp_path,
        f"hydra:\n  job:\n    override_dirname: seed=1,~tracker.secret={FAKE}\n"
        f"  overrides:\n    task:\n    - seed=1\n    - ~tracker.secret={FAKE}\n",
    )
    assert scrubbed["job"]["override_dirname"] == "seed=1,~tracker.secret=***"
    assert scrubbed["overrides"]["task"] == ["seed=1", "~tracker.secret=***"]


def test_a_quoted_env_set_credential_is_masked_in_the_env_set_it_sets(tmp_path: Path) -> None:
    """Kills: not collecting the values of `hydra.job.env_set`'s credentials. Quoted on the command
    line (`...WANDB_API_KEY='<key>'`), the override's value is the key with its quotes, so the
    unquoted key in `env_set` equals no override's value."""
    scrubbed = _scrubbed(
        tmp_path,
        f"hydra:\n  job:\n    env_set:\n      WANDB_API_KEY: {FAKE}\n  overrides:\n    hydra:\n"
        f"    - hydra.job.env_set.WANDB_API_KEY='{FAKE}'\n",
    )
    assert scrubbed["job"]["env_set"] == {"WANDB_API_KEY": "***"}
    assert scrubbed["overrides"]["hydra"] == ["hydra.job.env_set.WANDB_API_KEY=***"]


def test_an_empty_credential_masks_no_empty_value(tmp_path: Path) -> None:
    """Kills: dropping `secrets.discard("")`: an empty credential override (`+tracker.api_key=`)
    turned every empty string of the dump into `***`."""
    scrubbed = _scrubbed(
        tmp_path,
        "hydra:\n  job:\n    name: ''\n  overrides:\n    task:\n    - +tracker.api_key=\n"
        f"    - hydra.job.env_set.HF_TOKEN={HF_FAKE}\n",
    )
    assert scrubbed["job"]["name"] == ""
    assert scrubbed["overrides"]["task"] == [
        "+tracker.api_key=***",
        "hydra.job.env_set.HF_TOKEN=***",
    ]


def test_a_camel_case_credential_after_a_digit_is_masked() -> None:
    """Kills: the camelCase pattern taking a lowercase letter, not a digit, before its word
    (`v2Token`, `s3Secret`)."""
    overrides = [f"+tracker.v2Token={FAKE}", f"+store.s3Secret={FAKE}"]
    assert mask_credentials(overrides) == ["+tracker.v2Token=***", "+store.s3Secret=***"]


# --- the command line's refusal ---------------------------------------------------------------


@pytest.mark.parametrize(
    "flag", ["-cp", "--config-path", "-cd", "--config-dir", "--experimental-rerun"]
)
def test_a_hydra_flags_value_is_no_setting_even_when_named_like_a_credential(flag: str) -> None:
    """Kills: dropping `-cp` or `--experimental-rerun` from the flags that take a value: a folder
    or file named like a credential setting refused the run."""
    assert credential_override_error([flag, "/runs/api_key=1/conf", "seed=1"]) is None


def test_only_hydras_own_node_may_name_a_credential() -> None:
    """Kills: letting through any key that merely holds the word `hydra` (`+my_hydra.token=`),
    which Hydra would then record and print."""
    error = credential_override_error([f"+my_hydra.token={FAKE}"])
    assert error is not None and error.startswith("+my_hydra.token: ")


# --- W&B's mode and what its run is told --------------------------------------------------------


def _wandb_cfg(mode: TrackerMode = TrackerMode.auto) -> TrackerConfig:
    return TrackerConfig(name="wandb", backend=TrackerBackend.wandb, mode=mode)


@pytest.fixture
def no_wandb_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No W&B key or mode in the environment, and a home folder (for ~/.netrc) of the test's own."""
    for name in ("WANDB_API_KEY", "WANDB_MODE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    return tmp_path / ".netrc"


def test_a_netrc_login_to_wandb_logs_online_and_an_unreadable_netrc_offline(
    no_wandb_env: Path,
) -> None:
    """Kills: has_wandb_credentials ignoring ~/.netrc (`wandb login` writes the key there), and
    not catching a malformed netrc's NetrcParseError, which crashed the run instead."""
    assert resolve_mode(_wandb_cfg()) == "offline"
    no_wandb_env.write_text(f"machine api.wandb.ai\n  login user\n  password {FAKE}\n")
    no_wandb_env.chmod(0o600)
    assert resolve_mode(_wandb_cfg()) == "online"
    no_wandb_env.write_text(f"machine example.org login user password {FAKE}\n")
    assert resolve_mode(_wandb_cfg()) == "offline"
    no_wandb_env.write_text("machine\n")  # missing 'machine' name
    assert resolve_mode(_wandb_cfg()) == "offline"


def test_wandb_mode_in_the_environment_wins_over_auto_and_a_mode_set_wins_over_both(
    no_wandb_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Kills: resolve_mode ignoring WANDB_MODE (a key in the environment sent a run online that
    the user had set offline), or ignoring `tracker.mode` other than auto."""
    monkeypatch.setenv("WANDB_API_KEY", FAKE)
    assert resolve_mode(_wandb_cfg()) == "online"
    monkeypatch.setenv("WANDB_MODE", "offline")
    assert resolve_mode(_wandb_cfg()) == "offline"
    assert resolve_mode(_wandb_cfg(TrackerMode.online)) == "online"
    monkeypatch.delenv("WANDB_API_KEY")
    monkeypatch.delenv("WANDB_MODE")
    assert resolve_mode(_wandb_cfg(TrackerMode.online)) == "online"
    monkeypatch.setenv("WANDB_API_KEY", FAKE)
    assert resolve_mode(_wandb_cfg(TrackerMode.offline)) == "offline"


def test_tracker_none_starts_no_wandb_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Kills: start_tracker opening a W&B run for `tracker=none`."""
    monkeypatch.setattr(wandb, "init", lambda **kwargs: pytest.fail("wandb.init called"))
    cfg = TrackerConfig(name="none", backend=TrackerBackend.none)
    assert isinstance(start_tracker(cfg, tmp_path, TrackedRun("a run", {})), NoTracker)
    assert not (tmp_path / "wandb").exists()


def test_a_credential_as_the_first_argument_turns_wandbs_metadata_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Kills: looking for a credential from the second argument on (`sys.argv[2:]`): W&B's
    metadata recorded a command line whose first argument was the key."""
    settings: list[Any] = []

    def init(dir: str, **kwargs: Any) -> Any:
        settings.append(kwargs["settings"])
        return SimpleNamespace(id="abc", dir=dir)

    monkeypatch.setattr(wandb, "init", init)
    monkeypatch.setattr(sys, "argv", ["train.py", f"+hydra.job.env_set.WANDB_API_KEY={FAKE}"])
    start_tracker(_wandb_cfg(TrackerMode.offline), tmp_path, TrackedRun("a run", {}))
    [used] = settings
    assert used.x_disable_meta is True


# --- what a W&B run's summary holds -----------------------------------------------------------


def _fake_run() -> SimpleNamespace:
    """A W&B run stand-in that keeps its summary and exit code."""
    run = SimpleNamespace(summary={}, logged=[], exit_codes=[])
    run.define_metric = lambda *args, **kwargs: None
    run.log = run.logged.append
    run.finish = lambda exit_code: run.exit_codes.append(exit_code)
    return run


def test_a_failed_runs_error_is_masked_of_every_secret_variable_at_each_occurrence(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Kills: dropping HF_TOKEN or HUGGING_FACE_HUB_TOKEN from SECRET_VARIABLES, or masking only
    a secret's first occurrence, in `run/error` (and so in the offline warning's error line)."""
    monkeypatch.setenv("WANDB_API_KEY", FAKE)
    monkeypatch.setenv("HF_TOKEN", HF_FAKE)
    monkeypatch.setenv("HUGGING_FACE_HUB_TOKEN", "hf_OLDNAME3456")
    run = _fake_run()
    WandbTracker(run).finish(
        f"HTTPError: {HF_FAKE} refused ({HF_FAKE}), hf_OLDNAME3456 too, and {FAKE} then {FAKE}"
    )
    assert run.summary[ERROR_KEY] == "HTTPError: *** refused (***), *** too, and *** then ***"
    assert run.exit_codes == [1]


def test_a_lower_is_better_selection_metric_keeps_its_lowest_value_in_the_summary() -> None:
    """Kills: _improves ignoring `higher` (a loss kept its highest value as the run's best)."""
    run = _fake_run()
    tracker = WandbTracker(run, {"target/eval_loss": False})
    for step, loss in enumerate([0.9, 0.4, 0.6]):
        tracker.log({"target/eval_loss": loss}, step)
    assert run.summary["target/eval_loss"] == 0.4


def test_a_stage1_result_kept_in_memory_only_logs_no_artifact(tmp_path: Path) -> None:
    """Kills: stage1() logging an artifact for a result that was never stored (reuse_stage1=false),
    which referenced a folder that does not exist."""
    from layerft.stage1 import Stage1Outcome
    from layerft.stage1_store import Stage1Result

    logged: list[Any] = []
    run = SimpleNamespace(log_artifact=logged.append)
    folder = tmp_path / "stage1" / "abc"  # never written
    result = Stage1Result(None, {}, [], folder, str(tmp_path), stored=False)  # type: ignore[arg-type]
    WandbTracker(run).stage1(Stage1Outcome(result, trained=True), produced=True)
    assert logged == []


def test_the_final_metrics_go_into_the_runs_summary() -> None:
    """Kills: summarize() doing nothing (the run's table in W&B showed no final metrics)."""
    run = _fake_run()
    WandbTracker(run).summarize({"target/eval_accuracy": 0.75})
    assert run.summary == {"target/eval_accuracy": 0.75}


# --- the sweep's results run and a job's tracker ------------------------------------------------


def test_the_results_run_record_keeps_the_overrides_masked_and_a_relog_publishes_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Kills: writing `.results_run.json` (in the shared sweep folder) with the overrides as given,
    and relog_results_table publishing other overrides than the record's."""
    published: list[list[str]] = []

    def publish(grid: str, overrides: list[str], *args: Any) -> None:
        published.append(overrides)

    monkeypatch.setattr(sweep_tracker, "publish_results_table", publish)
    result = SimpleNamespace(baseline={}, heatmap=None, not_run=[], unfinished=[], best_of=[])
    overrides = ["tracker=wandb", "seed=1", f"+hydra.job.env_set.WANDB_API_KEY={FAKE}"]
    sweep_tracker.log_results_table("demo", overrides, tmp_path, result)  # type: ignore[arg-type]
    record = (tmp_path / sweep_tracker.RESULTS_RUN_FILE).read_text()
    masked = ["tracker=wandb", "seed=1", "+hydra.job.env_set.WANDB_API_KEY=***"]
    assert FAKE not in record and json.loads(record)["overrides"] == masked
    sweep_tracker.relog_results_table(tmp_path, result)  # type: ignore[arg-type]
    assert published == [masked, masked]


def test_a_process_other_than_the_first_opens_no_tracker_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Kills: open_tracker opening a W&B run in every process of a distributed run."""
    from compose import compose_config

    from layerft.config import resolve_config, to_run_config
    from layerft.run_record import RunRecord

    monkeypatch.setattr(wandb, "init", lambda **kwargs: pytest.fail("wandb.init called"))
    monkeypatch.setattr(run_tracker, "is_main_process", lambda: False)
    overrides = ["injection_task=none", "tracker=wandb", "tracker.mode=offline", "model=tiny"]
    composed = compose_config(*overrides)
    cfg, resolved = to_run_config(composed), resolve_config(composed)
    record = RunRecord.of(resolved, {"tracker": "wandb"}, overrides, ("target/eval_accuracy", True))
    opened = run_tracker.open_tracker(cfg, tmp_path, resolved, record, keep_earlier=False)
    assert isinstance(opened, NoTracker)


def test_a_sweeps_job_joins_the_sweeps_wandb_group_and_names_an_added_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Kills: open_tracker leaving the run out of its sweep's W&B group, and run_name reading an
    override's key as given (`+target_task.note`), which left an added setting unnamed."""
    from compose import compose_config

    from layerft.config import resolve_config, to_run_config
    from layerft.run_record import RunRecord

    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(wandb, "init", lambda **kwargs: calls.append(kwargs) or SimpleNamespace(
        id="abc", dir=str(tmp_path)
    ))  # fmt: skip
    overrides = ["injection_task=none", "tracker=wandb", "tracker.mode=offline", "model=tiny",
                 "+target_task.note=x"]  # fmt: skip
    composed = compose_config(*overrides[:-1])
    cfg, resolved = to_run_config(composed), resolve_config(composed)
    choices = {"injection_task": "none", "target_task": "demo_sentiment", "tuning_mode": "full"}
    selection = ("target/eval_accuracy", True)
    record = RunRecord.of(resolved, choices, overrides, selection, sweep="demo")
    run_tracker.open_tracker(cfg, tmp_path, resolved, record, keep_earlier=False)
    [init] = calls
    assert init["group"] == "demo"
    assert "target_task.note=x" in init["name"].split()


# --- a failed job's record and log --------------------------------------------------------------


def test_a_failed_jobs_record_and_log_mask_a_secret_its_error_echoes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Bug: the error line the W&B run's `run/error` masks (without_secrets) went into failed.json
    and the job's log in clear, key and all, should a library echo the key into its error."""
    monkeypatch.setenv("WANDB_API_KEY", FAKE)
    err = RuntimeError(f"401 for key {FAKE}\nsent {FAKE}")
    with caplog.at_level(logging.ERROR, logger="layerft.results"):
        record_failure(tmp_path, {"run/overrides": ["seed=1"]}, err)
    text = (tmp_path / FAILED_FILE).read_text()
    assert FAKE not in text and json.loads(text)[ERROR_KEY] == "RuntimeError: 401 for key ***"
    assert FAKE not in caplog.text and "sent ***" in caplog.text  # the traceback's message too
