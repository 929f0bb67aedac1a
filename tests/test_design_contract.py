"""DESIGN.md's file and tracker contracts, read back from real tiny runs: what a run folder holds,
metrics.json's keys, and what the W&B offline run received (config, name, group, tags, history,
summary), with credentials in the environment kept out of all of it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from compose import CONF
from conftest import SHRINK, run_train
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from omegaconf import OmegaConf
from wandb_records import records_by_kind, wandb_items

SECRETS = {"WANDB_API_KEY": "dummy-secret-123", "HF_TOKEN": "hf_dummysecret456"}
OFFLINE = ["tracker=wandb", "tracker.mode=offline"]
BASELINE = [o for o in SHRINK if not o.startswith("injection_task.")] + ["injection_task=none"]


def wandb_run(run_dir: Path) -> tuple[Any, dict[str, Any], dict[str, Any], set[str]]:
    """The offline W&B run in `run_dir`: its run record, config, final summary and history keys."""
    (path,) = run_dir.glob("wandb/offline-run-*/run-*.wandb")
    records = records_by_kind(path)
    (run,) = records["run"]
    config = wandb_items(run.config.update)
    for update in records.get("config", []):
        config |= wandb_items(update.update)
    summary: dict[str, Any] = {}
    for update in records["summary"]:
        summary |= wandb_items(update.update)
    # W&B writes a key with a "/" as its parts (nested_key)
    history = {
        item.key or "/".join(item.nested_key) for row in records["history"] for item in row.item
    }
    return run, config, summary, history


@pytest.mark.slow
def test_a_run_folder_and_its_wandb_run_keep_the_contract(tmp_path: Path) -> None:
    proc = run_train([*SHRINK, *OFFLINE], tmp_path, env_extra=SECRETS)
    assert proc.returncode == 0, proc.stderr
    run_dir = tmp_path / "run"
    # .hydra/ (composed config, overrides), metrics.json and a log
    assert {"config.yaml", "overrides.yaml"} <= {p.name for p in (run_dir / ".hydra").iterdir()}
    assert (run_dir / "train.log").stat().st_size > 0
    metrics = json.loads((run_dir / "metrics.json").read_text())
    for stage in ("injection", "target"):
        for name in ("train_runtime", "train_samples_per_second", "trainable_params",
                     "total_params"):  # fmt: skip
            assert isinstance(metrics[f"{stage}/{name}"], float), (stage, name)
    assert metrics["target/eval_accuracy"] >= 0 and "injection/eval_token_f1" in metrics
    run, config, summary, history = wandb_run(run_dir)
    # the composed config plus one flat choice/<group> key and one tag per group
    groups = ("model", "injection_task", "target_task", "layer_split", "tuning_mode", "lr_schedule")
    for group in groups:
        option = metrics["run/choices"][group]
        assert config[f"choice/{group}"] == option and f"{group}:{option}" in run.tags
    assert config["target_task"]["epochs"] == 1 and config["seed"] == metrics["run/seed"]
    # metrics namespaced by stage; the summary holds metrics.json's numbers (the best checkpoint's)
    assert {k.split("/")[0] for k in history if not k.startswith("_")} == {"injection", "target"}
    numbers = {k: v for k, v in metrics.items() if not k.startswith("run/")}
    assert {k: summary[k] for k in numbers} == numbers
    assert run.run_group == "" and run.job_type == "injection+target"
    # no credential of the environment anywhere in the run folder, binary .wandb files included
    for path in (p for p in run_dir.rglob("*") if p.is_file()):
        data = path.read_bytes()
        assert not any(s.encode() in data for s in SECRETS.values()), path
    assert not any(s in proc.stdout + proc.stderr for s in SECRETS.values())


LONG = [f"target_task.data_files.{s}=/data/a/long/folder/name/{s}.jsonl" for s in ("a", "b")]


def test_a_train_m_jobs_fixed_settings_are_its_command_lines_unswept_ones(tmp_path: Path) -> None:
    """Under `train.py -m` (no sweep.py folder names to read) a run's name put every override in
    key order and counted those past W&B's 128 characters: a learning rate swept under long
    fixed settings fell into "+N more", and the grid's runs, one W&B group, had one name."""
    from layerft.run_record import RunRecord
    from layerft.run_tracker import run_name, sweep_fixed_keys

    # as Hydra's sweeper writes it into the sweep folder before it launches the jobs
    command = ["model=tiny", *LONG, "target_task.lr=1e-4,1e-3", "+tracker.tags=[a,b]"]
    OmegaConf.save({"hydra": {"overrides": {"task": command}}}, tmp_path / "multirun.yaml")
    multirun = ["hydra.mode=MULTIRUN", f"hydra.sweep.dir={tmp_path}"]
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("config", overrides=multirun, return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    try:
        fixed = sweep_fixed_keys()
    finally:
        HydraConfig.instance().cfg = None
    data_files = {f"target_task.data_files.{s}" for s in ("a", "b")}
    assert fixed == {"model", "tracker.tags", *data_files}
    choices = {"injection_task": "none", "target_task": "demo_sentiment", "layer_split": "lower1",
               "tuning_mode": "full", "model": "tiny"}  # fmt: skip
    names = {
        run_name(
            RunRecord(
                "f",
                "g",
                choices,
                1,
                ["model=tiny", *LONG, f"target_task.lr={lr}"],
                "target/eval_accuracy",
                True,
            ),  # fmt: skip
            fixed,
        )
        for lr in ("0.0001", "0.001")
    }
    assert {n.split()[4] for n in names} == {"target_task.lr=0.0001", "target_task.lr=0.001"}


@pytest.mark.slow
def test_train_m_names_each_run_by_its_swept_setting_first(tmp_path: Path) -> None:
    """The same through a real `train.py -m` grid, read back from its W&B offline runs."""
    fixed = ["target_task.max_train_samples=40", "target_task.max_eval_samples=20"]
    args = ["-m", *BASELINE, *OFFLINE, *fixed, "target_task.lr=1e-4,1e-3"]
    proc = run_train(args, tmp_path)
    assert proc.returncode == 0, proc.stderr
    runs = [wandb_run(tmp_path / "sweep" / job)[0] for job in ("0", "1")]
    assert [r.display_name.split()[4] for r in runs] == [
        "target_task.lr=0.0001",
        "target_task.lr=0.001",
    ]
    assert len({r.display_name for r in runs}) == 2 and all(
        len(r.display_name) <= 128 for r in runs
    )
    assert runs[0].run_group == runs[1].run_group == str(tmp_path / "sweep")
