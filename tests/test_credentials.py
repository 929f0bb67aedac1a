"""A credential given on the command line never reaches a results file, a config dump or the
tracker."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import wandb
from compose import CONF
from conftest import REPO, SHRINK, run_sweep, run_train, script_env
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import open_dict

from layerft import sweep_tracker, tracker
from layerft.credential_overrides import credential_override_error
from layerft.credentials import mask_credentials, scrub_config_file
from layerft.errors import LayerftError
from layerft.hydra_job import run_from_hydra
from layerft.tracker import (
    TrackedRun,
    TrackerBackend,
    TrackerConfig,
    TrackerMode,
    start_tracker,
)

FAKE = "sk-FAKE-1234"


def test_only_overrides_named_like_a_credential_are_masked() -> None:
    overrides = [
        f"+tracker.api_key={FAKE}",
        f"+hydra.job.env_set.WANDB_API_KEY={FAKE}",
        f"hydra.job.env_set.HF_TOKEN={FAKE}",
        f"++model.password={FAKE}",
        f"~secret={FAKE}",  # a deletion that names its value
        f"++hydra.job.env_set={{WANDB_API_KEY:{FAKE},OMP_NUM_THREADS:1}}",  # a dict: its keys
        "hydra.job.env_set={OMP_NUM_THREADS:1}",
        "model=tiny",
        "target_task.tokens_column=words",  # a word of the key, not a substring, names a credential
        "seed=1",
    ]
    assert mask_credentials(overrides) == [
        "+tracker.api_key=***",
        "+hydra.job.env_set.WANDB_API_KEY=***",
        "hydra.job.env_set.HF_TOKEN=***",
        "++model.password=***",
        "~secret=***",
        "++hydra.job.env_set={WANDB_API_KEY:***,OMP_NUM_THREADS:1}",
        "hydra.job.env_set={OMP_NUM_THREADS:1}",
        "model=tiny",
        "target_task.tokens_column=words",
        "seed=1",
    ]


@pytest.mark.parametrize(
    "word",
    ["token", "key", "apikey", "secret", "password", "passwd", "auth", "authorization",
     "credential", "credentials"],
)  # fmt: skip
def test_every_credential_word_names_one_in_each_spelling(word: str) -> None:
    camel = "my" + ("ApiKey" if word == "apikey" else word.capitalize())  # myPasswd, myApiKey
    for key in (word, f"db_{word}", f"{word.upper()}_X", f"db-{word}", camel):
        assert mask_credentials([f"+tracker.{key}={FAKE}"]) == [f"+tracker.{key}=***"], key


@pytest.fixture
def wandb_settings(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """wandb.init stand-in that keeps the settings it was given (offline, so nothing is reached)."""
    settings: list[Any] = []

    def init(dir: str, **kwargs: Any) -> Any:
        settings.append(kwargs["settings"])
        return SimpleNamespace(id="abc", dir=dir)

    monkeypatch.setattr(wandb, "init", init)
    return settings


@pytest.mark.parametrize(
    ("argv", "metadata"),
    [
        (["train.py", "tracker=wandb"], True),
        (["train.py", "tracker=wandb", f"+hydra.job.env_set.WANDB_API_KEY={FAKE}"], False),
        (["train.py", "tracker=wandb", f"++hydra.job.env_set={{HF_TOKEN:{FAKE},A:1}}"], False),
        (["train.py", "tracker=wandb", "++hydra.job.env_set={OMP_NUM_THREADS:1}"], True),
    ],
)
def test_wandb_records_no_metadata_when_the_command_line_holds_a_credential(
    tmp_path: Path, monkeypatch, wandb_settings: list[Any], argv: list[str], metadata: bool
) -> None:
    monkeypatch.setattr(sys, "argv", argv)  # W&B's metadata records it
    cfg = TrackerConfig(name="wandb", backend=TrackerBackend.wandb, mode=TrackerMode.offline)
    start_tracker(cfg, tmp_path, TrackedRun("a run", {}))
    [settings] = wandb_settings
    assert settings.x_disable_meta is not metadata


def test_a_refused_credential_override_is_masked_in_failed_json(tmp_path: Path) -> None:
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(
            "config",
            overrides=["model=tiny", "tracker=none", f"+tracker.api_key={FAKE}"],
            return_hydra_config=True,
        )
    with open_dict(cfg):  # what Hydra's launcher sets before it calls the task function
        cfg.hydra.runtime.output_dir = str(tmp_path)
        cfg.hydra.mode = RunMode.MULTIRUN
        cfg.hydra.sweep.dir = str(tmp_path)
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        del cfg["hydra"]
    try:
        assert run_from_hydra(cfg, isolate_failures=True) is None
    finally:
        HydraConfig.instance().cfg = None  # other tests see no Hydra run
    text = (tmp_path / "failed.json").read_text()
    assert FAKE not in text
    assert "+tracker.api_key=***" in json.loads(text)["run/overrides"]


def test_a_single_runs_error_that_echoes_a_key_is_printed_masked(
    tmp_path: Path, monkeypatch, capsys
) -> None:
    # A library's error holding the key went to stderr in clear (Hydra's traceback), which a
    # cluster's job log keeps; a multirun's failed.json and log were masked.
    from layerft import run as run_module

    def echoing(*args: Any) -> Any:
        raise RuntimeError(f"401 Unauthorized: {FAKE}")

    monkeypatch.setattr(run_module, "run", echoing)
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("config", overrides=["model=tiny", "tracker=none"], return_hydra_config=True)
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = str(tmp_path)
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        del cfg["hydra"]
    try:
        with pytest.raises(RuntimeError):  # no key in it: raised for Hydra to print, as before
            run_from_hydra(cfg)
        monkeypatch.setenv("WANDB_API_KEY", FAKE)
        with pytest.raises(SystemExit) as stopped:
            run_from_hydra(cfg)
    finally:
        HydraConfig.instance().cfg = None  # other tests see no Hydra run
    err = capsys.readouterr().err
    assert stopped.value.code == 1 and FAKE not in err
    assert err.rstrip().endswith("RuntimeError: 401 Unauthorized: ***") and "Traceback" in err


def test_a_user_error_quoting_a_library_line_with_a_key_says_it_masked(monkeypatch, capsys) -> None:
    # A one-line error quoting a library's first line (model.py, model_hub.py, records.py) went
    # to stderr and train.log in clear under train.py, and to stderr under sweep.py.
    from layerft import sweep as sweep_module
    from layerft.errors import user_errors_exit

    monkeypatch.setenv("HF_TOKEN", FAKE)
    error = LayerftError(f"model 'x': could not load 'acme/m' (401: token {FAKE} refused)")
    with pytest.raises(SystemExit) as stopped, user_errors_exit():
        raise error
    assert stopped.value.code == 2
    assert (
        capsys.readouterr().err
        == "error: model 'x': could not load 'acme/m' (401: token *** refused)\n"
    )

    def refused(args: Any) -> int:
        raise error

    monkeypatch.setattr(sweep_module, "run_sweep", refused)
    assert sweep_module.main(["demo"]) == 2
    assert capsys.readouterr().err.endswith("(401: token *** refused)\n")


def test_a_key_too_short_to_be_one_masks_nothing(monkeypatch) -> None:
    # WANDB_API_KEY=x (a placeholder) masked every x of every error and traceback.
    from layerft.credentials import without_secrets

    monkeypatch.setenv("WANDB_API_KEY", " x ")
    monkeypatch.setenv("HF_TOKEN", f" {FAKE}\n")
    assert without_secrets(f"max_length x: {FAKE}") == "max_length x: ***"


def test_the_sweep_results_run_config_masks_a_credential(tmp_path: Path, monkeypatch) -> None:
    configs: list[dict[str, Any]] = []

    def start(cfg: TrackerConfig, run_dir: Path, tracked: Any) -> Any:
        configs.append(tracked.config)
        raise StopIteration  # the results table itself is not needed

    monkeypatch.setattr(tracker, "start_tracker", start)
    result = SimpleNamespace(baseline={}, heatmap=None, not_run=[], unfinished=[], best_of=[])
    overrides = ["tracker=wandb", "seed=1", f"+hydra.job.env_set.WANDB_API_KEY={FAKE}"]
    with pytest.raises(StopIteration):
        sweep_tracker.log_results_table("demo", overrides, tmp_path, result)  # type: ignore[arg-type]
    [config] = configs
    assert config["overrides"] == [
        "tracker=wandb",
        "seed=1",
        "+hydra.job.env_set.WANDB_API_KEY=***",
    ]


def files_holding(root: Path, text: str) -> list[Path]:
    return [p for p in sorted(root.rglob("*")) if p.is_file() and text.encode() in p.read_bytes()]


@pytest.mark.slow
def test_no_file_of_a_multirun_or_a_sweep_holds_a_command_line_credential(tmp_path: Path) -> None:
    # Hydra writes its config dumps (.hydra/*.yaml, multirun.yaml) before a job starts; they held
    # the key in clear, and a shared sweep folder with them. A parallel launcher's job files
    # (.local_parallel/*.pkl, .submitit/*/*.pkl) held it too, world-readable and kept.
    key = f"+hydra.job.env_set.WANDB_API_KEY={FAKE}"
    shrunk = [*SHRINK, "injection_task=none"]
    proc = run_train(["-m", *shrunk, "seed=1,2", key], tmp_path / "m")
    assert proc.returncode == 0, proc.stderr[-2000:]
    # In a dict, and with W&B on: its files recorded the command line, and the results run the
    # override as given.
    in_dict = [f"++hydra.job.env_set={{WANDB_API_KEY:{FAKE},OMP_NUM_THREADS:1}}",
               "tracker=wandb", "tracker.mode=offline"]  # fmt: skip
    for launcher, given in (
        ("basic", in_dict),
        ("local_parallel", [key]),
        ("submitit_local", [key]),
    ):
        args = ["demo", *shrunk, "seed=1", "tuning_mode=full", *given, f"hydra/launcher={launcher}"]
        proc = run_sweep(args, tmp_path / launcher)
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert FAKE not in proc.stdout + proc.stderr
    assert list(tmp_path.glob("local_parallel/**/.local_parallel/*.job.pkl"))
    assert list(tmp_path.glob("submitit_local/**/.submitit/*/*.pkl"))
    assert files_holding(tmp_path, FAKE) == []
    recorded = (tmp_path / "basic" / "multirun_outputs" / "demo" / ".results_run.json").read_text()
    assert (
        "++hydra.job.env_set={WANDB_API_KEY:***,OMP_NUM_THREADS:1}"
        in json.loads(recorded)["overrides"]
    )
    assert list(tmp_path.glob("basic/**/wandb/offline-run-*/run-*.wandb"))
    assert "WANDB_API_KEY" not in (tmp_path / "m" / "sweep" / "multirun.yaml").read_text()
    assert (tmp_path / "m" / "sweep" / "1" / ".hydra" / "finished" / "hydra.yaml").exists()


# A Hydra app that writes whether its job saw the key in its environment (not the key itself).
PROBE_APP = """
import os
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig


@hydra.main(version_base="1.3", config_path=None, config_name=None)
def main(cfg) -> None:
    seen = os.environ.get("WANDB_API_KEY") == os.environ["PROBE_EXPECTS"]
    other = os.environ.get("PROBE_OTHER")
    Path(HydraConfig.get().runtime.output_dir, "saw_key").write_text(f"{seen} {other}")


main()
"""


@pytest.mark.slow
@pytest.mark.parametrize(
    ("launcher", "env_set"),
    [("basic", [f"+hydra.job.env_set.WANDB_API_KEY={FAKE}", "+hydra.job.env_set.PROBE_OTHER=kept"]),
     ("local_parallel", [f"++hydra.job.env_set={{WANDB_API_KEY:{FAKE},PROBE_OTHER:kept}}"]),
     ("submitit_local", [f"+hydra.job.env_set.WANDB_API_KEY={FAKE}", "+hydra.job.env_set.PROBE_OTHER=kept"])],
)  # fmt: skip
def test_each_job_of_a_multirun_still_gets_the_credential_in_its_environment(
    tmp_path: Path, launcher: str, env_set: list[str]
) -> None:
    # The callback takes the key out of the multirun's config into the launcher's environment,
    # which each job inherits: run in the launcher's process, or in a process it starts. The
    # other variables, also those set in one dict with the key, stay in the config.
    app = tmp_path / "probe.py"
    app.write_text(PROBE_APP)
    sweep_dir = tmp_path / "sweep"
    args = ["-m", "+x=1,2", *env_set, f"hydra.sweep.dir={sweep_dir}",
            "+hydra.callbacks.scrub._target_=layerft.credentials.ScrubCredentials",
            f"hydra/launcher={launcher}"]  # fmt: skip
    env = script_env(tmp_path, {"PROBE_EXPECTS": FAKE, "PYTHONPATH": str(REPO)})
    proc = subprocess.run(
        [sys.executable, str(app), *args], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert [(sweep_dir / job / "saw_key").read_text() for job in ("0", "1")] == ["True kept"] * 2
    assert files_holding(sweep_dir, FAKE) == []


def test_scrubbing_masks_only_credentials_and_leaves_a_clean_dump_as_it_was(tmp_path: Path) -> None:
    dump = tmp_path / "hydra.yaml"
    clean = "hydra:\n  job:\n    env_set: {}\n    override_dirname: seed=1\n  overrides:\n    task:\n    - seed=1\n"
    dump.write_text(clean)
    assert not scrub_config_file(dump) and dump.read_text() == clean
    dump.write_text(
        f"hydra:\n  job:\n    env_set:\n      HF_TOKEN: {FAKE}\n      OMP_NUM_THREADS: '1'\n"
        f"    override_dirname: +tracker.api_key={FAKE},seed=1\n  overrides:\n    hydra:\n"
        f"    - hydra.job.env_set.HF_TOKEN={FAKE}\n"
        f"    - '++hydra.job.env_set={{WANDB_API_KEY:{FAKE}x,OMP_NUM_THREADS:1}}'\n"
        "    - '++hydra.job.env_set={OMP_NUM_THREADS:1,MKL_NUM_THREADS:1}'\n"  # split, not parsed
        f"    task:\n    - +tracker.api_key={FAKE}\n"
        f"    - seed=1\ntracker:\n  api_key: {FAKE}\n  tokenizer_key_note: kept\n"
    )
    assert scrub_config_file(dump)
    scrubbed = dump.read_text()
    assert FAKE not in scrubbed
    # A secret of digits, which the dump holds as a number where a key takes it.
    dump.write_text(
        "hydra:\n  overrides:\n    task:\n    - +tracker.api_key=123456\ntracker:\n  api_key: 123456\n"
    )
    assert scrub_config_file(dump) and "123456" not in dump.read_text()
    dump.write_text(scrubbed)
    for kept in ("OMP_NUM_THREADS: '1'", "- seed=1", "tokenizer_key_note: kept",
                 "override_dirname: +tracker.api_key=***,seed=1",
                 "++hydra.job.env_set={WANDB_API_KEY:***,OMP_NUM_THREADS:1}",
                 "++hydra.job.env_set={OMP_NUM_THREADS:1,MKL_NUM_THREADS:1}"):  # fmt: skip
        assert kept in scrubbed, scrubbed


@pytest.mark.parametrize(
    ("script", "args"),
    [
        ("train.py", ["model=tiny", "tracker=none", f"+wandb_api_key={FAKE}"]),
        ("train.py", ["-m", "model=tiny", "seed=1,2", f"++tracker.api_key={FAKE}"]),
        ("sweep.py", ["demo", "model=tiny", f"+WANDB_API_KEY={FAKE}"]),
        ("train.py", ["model=tiny", "tracker=none", f"+wandb={{api_key:{FAKE}}}"]),  # in a dict
        ("train.py", ["model=tiny", "tracker=none", f"+tracker.accessToken={FAKE}"]),
    ],
)
def test_a_credential_setting_on_the_command_line_is_refused_before_anything_records_it(
    tmp_path: Path, script: str, args: list[str]
) -> None:
    # No setting takes one, so it failed as an unknown key, but only after Hydra had written its
    # value to .hydra/config.yaml and printed it in a multirun's launch line.
    proc = run_train(args, tmp_path) if script == "train.py" else run_sweep(args, tmp_path)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert FAKE not in proc.stdout + proc.stderr
    [line] = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    key = args[-1].partition("=")[0]
    assert line.startswith(f"error: {key}: no layerft setting takes a credential;"), line
    assert "hydra.job.env_set.<NAME>=" in line
    assert files_holding(tmp_path, FAKE) == []


def test_only_a_setting_that_is_or_holds_a_credential_is_refused() -> None:
    allowed = [
        "target_task.tokens_column=words", "model.tokenizer=x", "+x.max_tokens=3",
        f"hydra.job.env_set.WANDB_API_KEY={FAKE}", f"+hydra.job.env_set={{HF_TOKEN:{FAKE}}}",
        "hydra/launcher=local_parallel", "a=b=c", "+a={b:1}", "seed=1,2",
        "--cfg", "job", "-cn", "config", "-cd", "/tmp/run_token=1/conf",  # a flag's value
    ]  # fmt: skip
    assert credential_override_error(allowed) is None
    for refused in (f"~x.token={FAKE}", f"key@pkg={FAKE}", f"+a={{b:[{{password:{FAKE}}}]}}"):
        error = credential_override_error([*allowed, refused])
        assert error is not None and FAKE not in error, refused
