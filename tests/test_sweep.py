"""sweep.py end to end on model=tiny: grids, resume after kill -9, failure isolation, the shared
stage-1 store (also with two processes racing), and the typed stage-1 key."""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import errno
import fcntl
import hashlib
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import types
from pathlib import Path
from typing import Any

import datasets
import hydra
import pytest
import torch
from compose import compose_config, compose_run
from conftest import REPO, SHRINK, run_sweep, run_train, script_env, start_sweep, sweep_command
from omegaconf import OmegaConf
from wandb_records import records_by_kind, wandb_items

from hydra_plugins.layerft_launcher.config import LocalParallelConf
from hydra_plugins.layerft_launcher.gpu_slots import BASIC_LAUNCHER, job_cpu_threads
from layerft import (
    stage1_store,
    sweep_compose,
    sweep_grid,
    sweep_hydra,
    sweep_launch,
    sweep_options,
    sweep_status,
    sweep_summary,
    sweep_tracker,
)
from layerft import sweep as sweep_module
from layerft.config import resolve_config
from layerft.config_errors import config_error_line
from layerft.errors import LayerftError
from layerft.file_io import file_sha256
from layerft.fingerprint import FINGERPRINT_SCHEME, config_fingerprint, seedless_fingerprint
from layerft.forced_rerun import NOTE_FILE
from layerft.layer_split import InjectedWeights, Stage1Split, Stage2Split
from layerft.run_folder import previous_result
from layerft.run_record import (
    FINGERPRINT_KEY,
    FINGERPRINT_SCHEME_KEY,
    RESULTS_CHANGES,
    RESULTS_VERSION,
    RESULTS_VERSION_KEY,
    UNREAD_KEY,
    RunRecord,
)
from layerft.stage1 import obtain_stage1
from layerft.stage1_key import Stage1Key
from layerft.stage1_store import ANY_THREADS, WEIGHTS_FILE, Stage1Store
from layerft.sweep_grid import Combination, expand, job_dirname
from layerft.sweep_hydra import grid_names
from layerft.sweep_job import read_job
from layerft.sweep_launch import hydra_args
from layerft.sweep_records import read_sweep

# The demo grid on model=tiny, one epoch per stage (each job takes a few seconds).
TINY_GRID = [a for a in SHRINK if a != "tracker=none"] + ["tracker=none"]
MEASURED = ("runtime", "per_second", "_seconds", "peak_", "_rss_")


def deterministic(metrics: dict[str, Any]) -> dict[str, Any]:
    """The metrics a rerun must reproduce exactly (not times, speeds or memory; not `run/*`)."""
    return {
        k: v
        for k, v in metrics.items()
        if not k.startswith("run/") and not any(m in k for m in MEASURED)
    }


def results(sweep_dir: Path) -> dict[str, dict[str, Any]]:
    """job folder name -> its metrics.json."""
    return {p.parent.name: json.loads(p.read_text()) for p in sweep_dir.glob("*/metrics.json")}


def table_rows(sweep_dir: Path) -> list[dict[str, str]]:
    """The rows of a sweep's results.csv."""
    with (sweep_dir / "results.csv").open() as handle:
        return list(csv.DictReader(handle))


def sweep(tmp: Path, *args: str, expect: int = 0) -> str:
    done = run_sweep(["demo", *TINY_GRID, f"cache_dir={tmp / 'cache'}", *args], tmp)
    assert done.returncode == expect, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout + done.stderr


# --- grids ---------------------------------------------------------------------------------------


def test_the_adapter_study_runs_every_mode_at_the_same_three_learning_rates() -> None:
    # At full fine-tuning's 5e-5 alone the parameter-efficient modes barely trained (BENCHMARKS.md,
    # "The adapter study on MiniLM (pre-trained) on the H200"): a comparison of the modes at one
    # rate was no comparison of the methods (a DESIGN review).
    jobs, _ = sweep_grid.grid_jobs("adapter_study", [])
    rates: dict[str, set[float]] = {}
    for job in jobs:
        values = dict(item.split("=", 1) for item in job)
        rates.setdefault(values["tuning_mode"], set()).add(float(values["target_task.lr"]))
    assert len(jobs) == 135
    modes = ("full", "top_adapter", "layerwise_adapter", "lora", "bitfit")
    assert rates == {mode: {5e-5, 3e-4, 1e-3} for mode in modes}


@pytest.mark.slow
@pytest.mark.parametrize("grid", grid_names())
def test_every_grid_composes_and_expands(grid: str) -> None:
    combinations = expand(grid, [])
    assert len({c.fingerprint for c in combinations}) == len(combinations) > 1
    if grid == "klue_paper":  # none vs klue_dp x 6 tasks x 3 seeds; one KLUE-DP stage 1 per seed
        assert len(combinations) == 36
        assert len({c.stage1 for c in combinations if c.stage1}) == 3
    if grid == "demo":
        assert len(combinations) == 12 and len({c.stage1 for c in combinations if c.stage1}) == 3


@pytest.mark.slow
@pytest.mark.parametrize(
    ("grid", "overrides"),
    [
        ("demo", ["seed=1,2", "target_task.lr=1e-4,3e-4", "model=tiny",
                  "target_task.label_names=[neg,pos]", "++trainer.eval_batch_size=16", "+target_task.data_files.extra=c.jsonl"]),
        ("klue_paper", ["target_task=klue_nli,klue_sts", "injection_task.lr=5e-5"]),
        # values applied in command-line order: one a later override changes, one set through
        # an interpolation (review S)
        ("adapter_study", ["target_task=snli", "tuning_mode=full,lora", "target_task.lr=1e-5",
                           "target_task.data_files.train=x.jsonl",
                           "target_task.data_files={train: a.jsonl, validation: b.jsonl}"]),
        ("demo", ["seed=1,2", "injection_task.data_files=${target_task.data_files}",
                  "target_task.data_files.train=a.jsonl", "++injection_task.data_files.train=b.jsonl"]),
    ],
)  # fmt: skip
def test_a_job_composed_from_a_shared_config_is_what_hydra_composes(
    grid, overrides, monkeypatch
) -> None:
    # expand() composes once per choice of groups and applies each job's values to a copy; a
    # difference would plan a fingerprint the job does not have (a finished job rerun).
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from omegaconf import OmegaConf

    jobs, _ = sweep_grid.grid_jobs(grid, overrides)
    composed = []
    monkeypatch.setattr(
        sweep_compose, "compose", lambda *a, **k: composed.append(a) or compose(*a, **k)
    )
    with initialize_config_dir(config_dir=str(sweep_grid.CONF), version_base="1.3"):
        composer = sweep_compose.JobComposer(grid)
        shared = [composer.compose(job) for job in jobs]  # all first: no job changes another
        for job, cfg in zip(jobs, shared, strict=True):
            own = compose("config", overrides=[f"sweep={grid}", *job])
            assert OmegaConf.to_yaml(cfg) == OmegaConf.to_yaml(own), job
            assert resolve_config(cfg) == resolve_config(own), job
            assert OmegaConf.is_struct(cfg)
    GlobalHydra.instance().clear()
    groups = ("target_task=", "injection_task=", "tuning_mode=", "model=")
    choices = {tuple(o for o in job if o.startswith(groups)) for job in jobs}
    assert len(composed) == len(choices) < len(jobs)  # the values were applied, not composed


def test_a_bad_value_in_a_grid_is_the_error_hydra_gives() -> None:
    with pytest.raises(hydra.errors.ConfigCompositionException) as planned:
        expand("demo", ["seed=1,abc"])
    with pytest.raises(hydra.errors.ConfigCompositionException) as composed:
        compose_config("sweep=demo", "seed=abc")
    line = config_error_line(planned.value)
    assert line == config_error_line(composed.value) and "seed=abc" in line
    # two bad overrides: the one Hydra reports (review S: the plan named the other)
    with pytest.raises(hydra.errors.ConfigCompositionException) as planned:
        expand("demo", ["nonexistent=1,2", "+target_task.lr=3,4"])
    line = config_error_line(planned.value)
    assert line == "unknown config key 'nonexistent'", line


@pytest.mark.parametrize("override", ["++seed=1", "+seed=3,4"])
def test_a_swept_key_spelled_otherwise_than_the_grid_is_refused(override: str) -> None:
    # Hydra's sweeper keeps `++seed` apart from the grid's `seed` and crossed the two: the demo
    # grid's 12 jobs all ran seed 1, 8 of them planned as "served by another job's run", in
    # folders named seed=2 and seed=3
    line = f"{override}: grid demo sweeps seed; narrow it with seed=..."
    with pytest.raises(LayerftError, match=f"^{re.escape(line)}$"):
        expand("demo", [override])
    with pytest.raises(LayerftError, match=f"^{re.escape(line)}$"):
        hydra_args("demo", [override], Path("out"), False)  # the launch's keys too
    # plain `seed=1` narrows the grid; a prefixed key the grid does not sweep is taken
    assert {c.label.split(",")[1] for c in expand("demo", ["seed=1"])} == {"seed=1"}
    assert len(expand("demo", ["++target_task.lr=0.001"])) == 12


@pytest.mark.parametrize("override", ["tuning_mode=glob(zz*)", "seed=range(1,1)"])
def test_a_grid_of_no_combination_is_refused(tmp_path: Path, capsys, override: str) -> None:
    # A glob() that matched no option planned 0 combinations, ran nothing and exited 0.
    for dry_run in (["--dry-run"], []):
        argv = ["demo", "model=tiny", override, "--dir", str(tmp_path / "out"), *dry_run]
        assert sweep_module.main(argv) == 2
        assert capsys.readouterr().err == (
            f"error: grid demo has no combination to run with {override}: a sweep of no value "
            "(a glob() that matches no option, an empty range())\n"
        )
    assert not (tmp_path / "out").exists()
    assert len(expand("demo", ["model=tiny", "tuning_mode=glob(f*)"])) == 12  # frozen, full


@pytest.mark.parametrize(("model", "layers"), [("tiny", 4), ("minilm", 6)])
def test_a_split_deeper_than_the_model_stops_the_plan(tmp_path, capsys, model, layers) -> None:
    # Planned, every job with stage 1 then failed on it; the depth is read as the plan can without
    # loading the model (tiny's config, MiniLM's package folder's config.json).
    argv = ["demo", f"model={model}", "--dry-run", "--dir", str(tmp_path / "out")]
    assert sweep_module.main([*argv, f"layer_split.stage1.num_lower={layers + 1}"]) == 2
    assert capsys.readouterr().err == (
        "error: injection_task=demo_pos,seed=1,tuning_mode=full: layer_split.stage1.num_lower="
        f"{layers + 1} exceeds the model's {layers} layers\n"
    )
    # all of them: taken under full fine-tuning; LoRA would adapt none (every layer frozen)
    assert sweep_module.main([*argv, f"layer_split.stage1.num_lower={layers}", "seed=1"]) == 2
    assert "tuning_mode=lora: every layer it would adapt" in capsys.readouterr().err
    argv += [f"layer_split.stage1.num_lower={layers}", "seed=1", "tuning_mode=full"]
    assert sweep_module.main(argv) == 0


def test_a_group_the_composer_did_not_recognise_is_composed_by_hydra() -> None:
    # e.g. a group from a search path the config adds: Hydra's choices show it; no value applied
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from omegaconf import OmegaConf

    job = ["seed=2", "tuning_mode=lora", "model=tiny"]
    with initialize_config_dir(config_dir=str(sweep_grid.CONF), version_base="1.3"):
        composer = sweep_compose.JobComposer("demo")
        composer.repo = types.SimpleNamespace(group_exists=lambda name: name == "model")
        cfg = composer.compose(job)
    GlobalHydra.instance().clear()
    assert OmegaConf.to_yaml(cfg) == OmegaConf.to_yaml(compose_config("sweep=demo", *job))


def test_job_folder_names_are_safe_and_distinct() -> None:
    assert job_dirname("seed=1,tuning_mode=lora") == "seed=1,tuning_mode=lora"
    assert "/" not in job_dirname("target_task.data_dir=../data/a b,seed=1")
    long_a, long_b = "x=" + "a" * 300, "x=" + "a" * 299 + "b"
    assert len(job_dirname(long_a)) <= 120 and job_dirname(long_a) != job_dirname(long_b)


@pytest.mark.slow
def test_dry_run_lists_combinations_stage1_trainings_and_what_is_done(tmp_path) -> None:
    out = sweep(tmp_path, "seed=1,2", "--dry-run")
    assert "8 combinations, 2 distinct stage-1 trainings" in out
    assert "[todo] injection_task=demo_pos,seed=2,tuning_mode=lora  (stage1 " in out  # its folder
    assert "0 done, 8 to run" in out
    assert not (tmp_path / "multirun_outputs").exists()  # nothing ran

    # A stage 1 stored by an earlier sweep (same settings, any data) is named, not counted as new.
    [seed1] = {
        c.stage1
        for c in expand("demo", [*TINY_GRID, f"cache_dir={tmp_path / 'cache'}", "seed=1"])
        if c.stage1
    }
    stored = tmp_path / "cache" / "stage1" / f"{seed1}-0123456789ab"
    stored.mkdir(parents=True)
    (stored / "result.json").write_text("{}")
    # Without its weights the run would stop on it: named, not counted as stored.
    out = sweep(tmp_path, "seed=1,2", "--dry-run")
    assert "2 distinct stage-1 trainings\n" in out and ", stored" not in out
    assert out.count(f"stored stage-1 result {stored} has no weights.safetensors") == 1
    (stored / "weights.safetensors").write_bytes(b"")
    out = sweep(tmp_path, "seed=1,2", "--dry-run")
    assert "has no weights" not in out
    assert "8 combinations, 2 distinct stage-1 trainings (1 stored: reused where the data" in out
    assert f"demo_pos,seed=1,tuning_mode=lora  (stage1 {seed1}, stored)" in out
    assert re.search(r"demo_pos,seed=2,tuning_mode=lora  \(stage1 \w+\)", out)
    out = sweep(tmp_path, "seed=1,2", "reuse_stage1=false", "--dry-run")
    assert "2 distinct stage-1 trainings\n" in out and ", stored" not in out


def test_dry_run_and_summary_name_results_on_data_files_changed_since(tmp_path, capsys) -> None:
    # Done by fingerprint, but the file of a split differs from the one the result was computed on.
    def job(name: str, digest: str) -> Combination:
        return Combination(
            [], name * 16, None, f"seed={name}", data_files={"target_task.train": digest}
        )

    for name in ("1", "2"):
        (tmp_path / name).mkdir()
        record = {FINGERPRINT_KEY: name * 16, "run/data_files": {"target_task.train": "aa"},
                  RESULTS_VERSION_KEY: RESULTS_VERSION}  # fmt: skip
        (tmp_path / name / "metrics.json").write_text(json.dumps(record))
    jobs = [job("1", "aa"), job("2", "bb"), job("3", "aa")]
    sweep_summary.print_plan(jobs, sweep_status.status(jobs, tmp_path), False)
    assert capsys.readouterr().out.splitlines() == [
        "3 combinations, 0 distinct stage-1 trainings",
        "  [done] seed=1  (no stage 1)",
        "  [done on other data: target_task.train changed] seed=2  (no stage 1)",
        "  [todo] seed=3  (no stage 1)",
        "1 done, 1 to run",
        "1 done on data files changed since: not launched; rerun them with --force "
        "(overrides can narrow the grid to them)",
    ]
    state = sweep_status.status(jobs, tmp_path)
    assert sweep_status.left_out(jobs, state, force=False).stale == [jobs[1]]
    assert sweep_status.left_out(jobs, state, force=True).stale == []
    # force_rerun=true in its config: launched, so planned as to run (the plan had said "0 to
    # run ... not launched", then the launch ran it; a diff review).
    forced = [jobs[0], dataclasses.replace(jobs[1], force_rerun=True)]
    sweep_summary.print_plan(forced, sweep_status.status(forced, tmp_path), False)
    assert capsys.readouterr().out.splitlines()[1:] == [
        "  [done] seed=1  (no stage 1)", "  [todo] seed=2  (no stage 1)", "1 done, 1 to run",
    ]  # fmt: skip
    # The summary after a run: not counted as finished, and the exit code says so (main).
    state = sweep_status.status([job("1", "aa"), job("2", "bb")], tmp_path)
    assert [c.label for c, _ in state.done] == ["seed=1"]
    sweep_summary.print_summary(state)
    assert capsys.readouterr().out.splitlines() == [
        "sweep: 1 finished, 0 failed, 0 not run, 1 on changed data",
        f"  ON CHANGED DATA seed=2: target_task.train changed since its result "
        f"({tmp_path / '2' / 'metrics.json'}); --force reruns it",
    ]


def test_a_job_finished_on_data_changed_since_is_not_launched_unless_forced(tmp_path) -> None:
    # The plan said "0 to run", then each was launched only to stop on its changed file (a
    # user's review); a bad record in that file stopped the sweep before any job (a mutation
    # audit: its job is not launched, so not checked); force_rerun=true launches it.
    train = tmp_path / "train.jsonl"
    lines = [
        json.dumps({"premise": f"p {i}", "hypothesis": "h", "label": i % 3}) for i in range(12)
    ]
    train.write_text("\n".join(lines) + "\n")
    data = ["injection_task=none", "tuning_mode=full", "seed=1", "target_task=snli",
            f"target_task.data_files.train={train}", f"target_task.data_files.validation={train}"]  # fmt: skip
    sweep(tmp_path, *data)
    train.write_text(train.read_text() + '{"premise": "p", "hypothesis": "h", "label": "x"}\n')
    out = sweep(tmp_path, *data, expect=1)
    assert "Skipping 1 of 1 jobs: finished on data or model files changed since" in out
    assert (
        "Launching" not in out
        and "sweep: 0 finished, 0 failed, 0 not run, 1 on changed data" in out
    )
    train.write_text("\n".join(lines[:-1]) + "\n")
    out = sweep(tmp_path, *data, "force_rerun=true")
    assert "Launching 1 jobs" in out and "sweep: 1 finished, 0 failed, 0 not run" in out


def test_the_summary_counts_a_killed_job_as_unfinished_as_results_md_does(tmp_path, capsys):
    # After Ctrl-C it said "8 not run" where results.md said "1 unfinished, 7 not run".
    jobs = [Combination([], name * 16, None, f"seed={name}") for name in "12"]
    (tmp_path / "seed=2" / ".hydra").mkdir(parents=True)  # started, killed before any record
    state = sweep_status.status(jobs, tmp_path)
    assert len(state.missing) == 2 and [c.label for c, _ in state.unfinished] == ["seed=2"]
    sweep_summary.print_summary(state)
    assert capsys.readouterr().out.splitlines() == [
        "sweep: 0 finished, 0 failed, 1 not run, 1 unfinished",
        "  NOT RUN seed=1",
        f"  UNFINISHED seed=2: {tmp_path / 'seed=2'} holds no record (stopped, killed, or running)",
    ]
    (tmp_path / "seed=2" / "failed.json").write_text(json.dumps({FINGERPRINT_KEY: "x" * 16}))
    assert not sweep_status.status(jobs, tmp_path).unfinished  # another config's failure


def test_a_force_sweep_counts_only_the_results_written_since_it_started(tmp_path) -> None:
    # A forced rerun that failed, or never ran, must not be reported by the result it replaces.
    since = time.time_ns()  # the sweep's start; each record's time set (file times are coarse)

    def record(folder: str, name: str, fingerprint: str, seconds: int) -> None:
        (tmp_path / folder).mkdir(exist_ok=True)
        body = {FINGERPRINT_KEY: fingerprint, RESULTS_VERSION_KEY: RESULTS_VERSION}
        (tmp_path / folder / name).write_text(json.dumps(body))
        stamp = since + seconds * 1_000_000_000
        os.utime(tmp_path / folder / name, ns=(stamp, stamp))

    jobs = [Combination([], c * 16, None, f"seed={c}") for c in "123"]
    for job in jobs:
        record(job.label, "metrics.json", job.fingerprint, -60)  # before the sweep
    record("seed=1", "metrics.json", "1" * 16, 1)  # rerun, finished
    record("seed=2", "failed.json", "2" * 16, 1)  # rerun, failed; seed=3's never ran
    state = sweep_status.status(jobs, tmp_path, since_ns=since)
    assert [c.label for c, _ in state.done] == ["seed=1"]
    assert [c.label for c, _, _ in state.failed] == ["seed=2"]
    assert [c.label for c in state.missing] == ["seed=3"]
    assert state.blocked == []  # the result in its folder is its own, which the rerun replaces
    unforced = sweep_status.status(jobs, tmp_path)
    assert [c.label for c, _ in unforced.done] == ["seed=1", "seed=2", "seed=3"]
    # What a launch leaves out: the finished, unless forced (--force, or force_rerun in a config)
    assert sweep_status.left_out(jobs, unforced, force=False).finished == jobs
    assert sweep_status.left_out(jobs, unforced, force=True).finished == []
    jobs[0] = dataclasses.replace(jobs[0], force_rerun=True)
    state = sweep_status.status(jobs, tmp_path)
    assert sweep_status.left_out(jobs, state, force=False).finished == jobs[1:]


def test_only_a_run_record_in_a_jobs_folder_blocks_it_as_another_configs_result(tmp_path):
    # A metrics.json that is JSON but no run's record ({}: a killed writer's, a user's) is redone.
    folder = tmp_path / "seed=1"
    folder.mkdir()
    (folder / "metrics.json").write_text("{}")
    assert not sweep_status.another_config_result(folder)
    (folder / "metrics.json").write_text(json.dumps({FINGERPRINT_KEY: "x" * 16}))
    assert sweep_status.another_config_result(folder)


def test_dry_run_and_summary_name_results_an_older_layerft_computed(tmp_path, capsys) -> None:
    # Reused, never redone unasked, but said to be older, with what changed since.
    older = f"results version 1, now {RESULTS_VERSION}; changed since: {RESULTS_CHANGES[2]}"
    jobs = [Combination([], name * 16, None, f"seed={name}") for name in "123"]
    for name, version in (("1", {}), ("2", {RESULTS_VERSION_KEY: RESULTS_VERSION})):
        (tmp_path / name).mkdir()
        (tmp_path / name / "metrics.json").write_text(
            json.dumps({FINGERPRINT_KEY: name * 16} | version)
        )
    sweep_summary.print_plan(jobs, sweep_status.status(jobs, tmp_path), False)
    assert capsys.readouterr().out.splitlines() == [
        "3 combinations, 0 distinct stage-1 trainings",
        "  [done by results version 1] seed=1  (no stage 1)",
        "  [done] seed=2  (no stage 1)",
        "  [todo] seed=3  (no stage 1)",
        "2 done, 1 to run",
        f"1 done by an older layerft ({older}): reused as they are; --force reruns them (overrides "
        "can narrow the grid to them)",
    ]
    sweep_summary.print_plan(jobs, sweep_status.status(jobs, tmp_path), True)
    assert "older" not in capsys.readouterr().out
    sweep_summary.print_summary(sweep_status.status(jobs, tmp_path))
    assert capsys.readouterr().out.splitlines() == [
        "sweep: 2 finished, 0 failed, 1 not run",
        "  NOT RUN seed=3",
        f"1 done by an older layerft ({older}): reused as they are; --force reruns them (overrides "
        "can narrow the grid to them)",
    ]


@pytest.mark.slow
def test_a_grid_runs_shares_stage1_and_a_rerun_skips_every_finished_job(tmp_path) -> None:
    out = sweep(tmp_path, "seed=1,2")
    sweep_dir = tmp_path / "multirun_outputs" / "demo"
    first = results(sweep_dir)
    assert sorted(first) == sorted(
        f"injection_task={i},seed={s},tuning_mode={m}"
        for i in ("demo_pos", "none")
        for s in (1, 2)
        for m in ("full", "lora")
    )
    assert "sweep: 8 finished, 0 failed, 0 not run" in out
    # Each job's log, as README names it (the module calling Hydra had named it sweep_launch.log).
    logs = {p.name for p in sweep_dir.glob("*/*.log")}
    assert logs == {"sweep.log"} and len(list(sweep_dir.glob("*/sweep.log"))) == 8
    # One stage 1 per seed, trained by one job and reused by the other; recorded in metrics.json.
    assert out.count("stage 1: trained, stored as") == 2
    assert out.count("stage 1: reused") == 2
    assert len(list((tmp_path / "cache" / "stage1").glob("*/result.json"))) == 2
    for seed in (1, 2):
        full = first[f"injection_task=demo_pos,seed={seed},tuning_mode=full"]
        lora = first[f"injection_task=demo_pos,seed={seed},tuning_mode=lora"]
        assert {full["run/stage1"]["status"], lora["run/stage1"]["status"]} == {"trained", "reused"}
        assert full["run/stage1"]["key"] == lora["run/stage1"]["key"]
        # The reused stage 1 is the trained one: its metrics are carried into the job's record.
        assert {k: v for k, v in full.items() if k.startswith("injection/eval_")} == {
            k: v for k, v in lora.items() if k.startswith("injection/eval_")
        }
    none = first["injection_task=none,seed=1,tuning_mode=full"]
    assert none["run/stage1"] == {"status": "none"} and none["run/sweep"] == "demo"
    assert none["run/choices"]["tuning_mode"] == "full" and none["run/seed"] == 1

    # Aggregated at the end: a row per (injection_task, tuning_mode), seeds 1 and 2 folded.
    rows = {(r["injection_task"], r["tuning_mode"]): r for r in table_rows(sweep_dir)}
    assert sorted(rows) == [(i, m) for i in ("demo_pos", "none") for m in ("full", "lora")]
    for (injection, mode), row in rows.items():
        scores = [first[f"injection_task={injection},seed={s},tuning_mode={mode}"] for s in (1, 2)]
        accuracy = [m["target/eval_accuracy"] for m in scores]
        assert float(row["target/eval_accuracy_mean"]) == pytest.approx(sum(accuracy) / 2)
        assert row["target/eval_accuracy_n"] == "2" and row["seeds"] == "1 2"
        if injection == "demo_pos":
            baseline = [first[f"injection_task=none,seed={s},tuning_mode={mode}"] for s in (1, 2)]
            diffs = [a - b["target/eval_accuracy"] for a, b in zip(accuracy, baseline, strict=True)]
            assert float(row["diff_mean"]) == pytest.approx(sum(diffs) / 2)
            assert row["verdict"] == "too few seeds (n=2)"
    markdown, others = (sweep_dir / "results.md").read_text().split("## vs baseline on the other")
    assert markdown.count("| demo_pos |") == 2 and markdown.count("| none |") == 2
    # demo_sentiment's macro F1 beside its accuracy, paired alike
    assert "| injection_task | tuning_mode | target/eval_macro_f1 |" in others
    assert others.count("(2) too few seeds (n=2) |") == 2
    for figure in ("heatmap.png", "bars.png", "dev_curves.png"):
        assert (sweep_dir / figure).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", figure

    mtimes = {p: p.stat().st_mtime_ns for p in sweep_dir.glob("*/metrics.json")}
    configs = {p: p.read_bytes() for p in sweep_dir.glob("*/.hydra/*.yaml")}
    assert len(configs) == 8 * 3
    # Rerun with a result-neutral change: no job is launched (each would have composed its
    # config and found its result), and each job's .hydra/ still describes the run that wrote
    # its metrics.
    # (a hydra override is no part of the jobs Hydra hands the sweeper)
    again = sweep(
        tmp_path, "seed=1,2", "trainer.progress_bar=true", "hydra.sweeper.max_batch_size=3"
    )
    assert "Skipping 8 of 8 jobs: finished" in again and "Launching" not in again
    assert "stage 1:" not in again and "sweep: 8 finished, 0 failed, 0 not run" in again
    assert {p: p.stat().st_mtime_ns for p in sweep_dir.glob("*/metrics.json")} == mtimes
    assert {p: p.read_bytes() for p in sweep_dir.glob("*/.hydra/*.yaml")} == configs

    # Narrowed, the grid finds its results although Hydra numbers its jobs differently.
    narrowed = sweep(tmp_path, "seed=2", "tuning_mode=lora")
    assert "Skipping 2 of 2 jobs" in narrowed and "Launching" not in narrowed
    # Extended by a swept key, job folders get new names; the one combination whose config is
    # unchanged (lr 5e-5 is the task's default) is found in its old folder by its fingerprint.
    extended = sweep(tmp_path, "seed=2", "tuning_mode=lora", "injection_task=none",
                     "target_task.lr=5e-5,1e-4")  # fmt: skip
    assert "Skipping 1 of 2 jobs" in extended and "Launching 1 jobs" in extended
    assert "sweep: 2 finished, 0 failed" in extended
    assert not (
        sweep_dir / "injection_task=none,seed=2,target_task.lr=5e-05,tuning_mode=lora"
    ).exists()
    # force_rerun=true (as --force) reruns a finished result: none of its jobs is skipped.
    job = ["seed=1", "tuning_mode=lora", "injection_task=none"]
    result = sweep_dir / "injection_task=none,seed=1,tuning_mode=lora" / "metrics.json"
    rerun = sweep(tmp_path, *job, "force_rerun=true")
    assert "Skipping" not in rerun and result.stat().st_mtime_ns != mtimes[result]

    forced = sweep(tmp_path, *job, "--force")
    assert "already finished" not in forced and "Skipping" not in forced
    assert "sweep: 1 finished" in forced
    # What a forced rerun that died left beside the result goes when a sweep skips that result.
    folder = result.parent
    assert not (folder / NOTE_FILE).exists()  # this one finished
    digest = hashlib.sha256((folder / "metrics.json").read_bytes()).hexdigest()
    dead = {"host": os.uname().nodename, "locked": True, "result_sha256": digest, "wandb_runs": []}
    (folder / NOTE_FILE).write_text(json.dumps(dead))
    (folder / "checkpoints" / "target" / "checkpoint-9").mkdir(parents=True)
    (folder / ".hydra" / "config.yaml").write_text("force_rerun: true\n")  # its launch's
    tidied = sweep(tmp_path, *job)
    assert "Skipping 1 of 1 jobs" in tidied and "forced rerun that did not finish" in tidied
    assert not (folder / "checkpoints").exists() and not (folder / NOTE_FILE).exists()
    kept = (folder / ".hydra" / "finished" / "config.yaml").read_text()
    assert (folder / ".hydra" / "config.yaml").read_text() == kept
    # A forced rerun that fails is a failure, though the result it was to replace stays.
    (tmp_path / "a_file").write_text("")
    cache = f"cache_dir={tmp_path / 'a_file'}"
    failing = run_sweep(["demo", *TINY_GRID, cache, *job, "--force"], tmp_path)
    assert failing.returncode == 1 and "sweep: 0 finished, 1 failed" in failing.stdout
    assert (sweep_dir / "injection_task=none,seed=1,tuning_mode=lora" / "metrics.json").exists()

    # Another config in the same job folder (a fixed, unswept change) is not launched: its job
    # would refuse to write over that result and record its failure there, which every later
    # table of the folder listed. The way out named is sweep.py's --dir.
    failure = sweep_dir / "injection_task=none,seed=1,tuning_mode=lora" / "failed.json"
    failed_rerun = failure.read_bytes()  # the failed forced rerun's, above
    changed = sweep(tmp_path, "seed=1", "tuning_mode=lora", "injection_task=none",
                    "target_task.head_dropout=0.2", expect=1)  # fmt: skip
    assert "holds the result of another config" in changed and "in a new --dir" in changed
    assert "differs from its folder's in target_task.head_dropout: 0.1 -> 0.2" in changed
    assert "Skipping 1 of 1 jobs: their folder holds another config's result" in changed
    assert "sweep: 0 finished, 0 failed, 1 not run" in changed
    assert "NOT RUN injection_task=none,seed=1,tuning_mode=lora (blocked: " in changed
    assert failure.read_bytes() == failed_rerun
    # The table keeps the result in that folder, and the failed forced rerun beside it.
    assert (
        "9 jobs (9 finished, 0 failed; 1 later attempt failed, its earlier result"
        in (sweep_dir / "results.md").read_text()
    )
    # A grid whose every job fails (a non-finite loss) still rewrites the folder's tables, now
    # with its failures.
    sweep(tmp_path, "seed=1", "tuning_mode=lora", "injection_task=none",
          "target_task.lr=1e+30,1e+31", expect=1)  # fmt: skip
    assert (
        "11 jobs (9 finished, 2 failed; 1 later attempt failed"
        in (sweep_dir / "results.md").read_text()
    )


def test_a_plan_counts_one_stage1_for_settings_its_schedule_never_reads(tmp_path) -> None:
    grid = ("seed=1", "tuning_mode=full", "injection_task=demo_pos", "target_task.lr=1e-4,2e-4",
            "lr_schedule@injection_lr_schedule=linear,layerwise_decay",
            "injection_lr_schedule.layer_decay=0.8,0.9")  # fmt: skip
    # linear reads no layer_decay: one stage 1 for it, one per decay for layerwise_decay.
    assert "8 combinations (6 distinct runs), 3 distinct stage-1 trainings" in sweep(
        tmp_path, *grid, "--dry-run"
    )


@pytest.mark.slow
def test_a_baseline_crossed_with_layer_splits_trains_once_and_serves_every_split(tmp_path) -> None:
    # Without stage 1 the split is never read: one run serves both splits' baseline jobs.
    grid = ("seed=1", "tuning_mode=full", "layer_split=lower1,all")
    plan = sweep(tmp_path, *grid, "--dry-run")
    assert "4 combinations (3 distinct runs), 2 distinct stage-1 trainings" in plan
    assert (
        "[todo] injection_task=none,layer_split=all,seed=1,tuning_mode=full  (no stage 1; "
        "the run of injection_task=none,layer_split=lower1,seed=1,tuning_mode=full)" in plan
    )
    out = sweep(tmp_path, *grid)
    sweep_dir = tmp_path / "multirun_outputs" / "demo"
    baseline = sweep_dir / "injection_task=none,layer_split=lower1,seed=1,tuning_mode=full"
    assert sorted(results(sweep_dir)) == [
        "injection_task=demo_pos,layer_split=all,seed=1,tuning_mode=full",
        "injection_task=demo_pos,layer_split=lower1,seed=1,tuning_mode=full",
        baseline.name,
    ]
    # Not launched at all: a parallel launcher would train the two at the same time.
    assert "Skipping 1 of 4 jobs: the run of an earlier job of the grid" in out
    assert "Launching 3 jobs" in out and "already finished" not in out
    assert "sweep: 4 finished, 0 failed, 0 not run" in out
    # The table: one baseline row, the baseline of both split rows.
    rows = table_rows(sweep_dir)
    assert [(r["injection_task"], r["layer_split"]) for r in rows] == [
        ("demo_pos", "all"), ("demo_pos", "lower1"), ("none", "-"),
    ]  # fmt: skip
    base = json.loads((baseline / "metrics.json").read_text())["target/eval_accuracy"]
    for row in rows[:2]:
        assert float(row["diff_mean"]) == pytest.approx(
            float(row["target/eval_accuracy_mean"]) - base
        )
    assert "0 done, 4 to run" not in sweep(tmp_path, *grid, "--dry-run")  # all done
    assert "4 done, 0 to run" in sweep(tmp_path, *grid, "--dry-run")


@pytest.mark.slow
def test_a_setting_no_run_of_its_row_reads_neither_retrains_nor_splits_the_row(tmp_path) -> None:
    # LoRA's rank under tuning_mode=full: one full fine-tuning run serves both ranks, and its row
    # names no rank (the rank still varies across the LoRA rows).
    grid = ("seed=1", "injection_task=none", "tuning_mode.lora.rank=2,4")
    plan = sweep(tmp_path, *grid, "--dry-run")
    assert "4 combinations (3 distinct runs)" in plan
    assert (
        "[todo] injection_task=none,seed=1,tuning_mode.lora.rank=4,tuning_mode=full  (no stage 1; "
        "the run of injection_task=none,seed=1,tuning_mode.lora.rank=2,tuning_mode=full)" in plan
    )
    out = sweep(tmp_path, *grid)
    assert "Skipping 1 of 4 jobs: the run of an earlier job of the grid" in out
    assert "sweep: 4 finished, 0 failed, 0 not run" in out
    sweep_dir = tmp_path / "multirun_outputs" / "demo"
    finished = results(sweep_dir)
    assert len(finished) == 3
    [full] = [m for m in finished.values() if m["run/choices"]["tuning_mode"] == "full"]
    assert full["run/unread_settings"][:1] == ["injection_task."]
    assert "tuning_mode.lora." in full["run/unread_settings"]
    rows = table_rows(sweep_dir)
    assert [(r["tuning_mode"], r["tuning_mode.lora.rank"]) for r in rows] == [
        ("full", "-"), ("lora", "2"), ("lora", "4"),
    ]  # fmt: skip
    assert "4 done, 0 to run" in sweep(tmp_path, *grid, "--dry-run")


def as_scheme_1(folder: Path) -> None:
    """Rewrite a finished job's record as a layerft of fingerprint scheme 1 wrote it (its config
    kept beside it, as run_folder.keep_hydra_files keeps it)."""
    config = resolve_config(OmegaConf.load(folder / ".hydra" / "finished" / "config.yaml"))
    path = folder / "metrics.json"
    record = json.loads(path.read_text())
    del record[FINGERPRINT_SCHEME_KEY]
    record[FINGERPRINT_KEY] = config_fingerprint(config, scheme=1)
    record["run/seedless_fingerprint"] = seedless_fingerprint(config, scheme=1)
    assert record[FINGERPRINT_KEY] != config_fingerprint(config)  # the schemes do differ here
    path.write_text(json.dumps(record))


@pytest.mark.slow
def test_a_scheme_1_baseline_serves_every_split_through_the_config_kept_beside_it(tmp_path) -> None:
    # Written under one split by an older layerft, found by a grid adding splits (not retrained),
    # and replaced, not refused as another config's, by --force.
    sweep(tmp_path, "seed=1", "tuning_mode=full", "injection_task=none", "layer_split=lower1,all")
    sweep_dir = tmp_path / "multirun_outputs" / "demo"
    [folder] = [p.parent for p in sweep_dir.glob("*/metrics.json")]
    as_scheme_1(folder)
    grid = (
        "seed=1",
        "tuning_mode=full",
        "injection_task=none",
        "layer_split=lower1,all,lower_half",
    )
    plan = sweep(tmp_path, *grid, "--dry-run")
    assert "3 done, 0 to run" in plan and "todo" not in plan and "blocked" not in plan
    out = sweep(tmp_path, *grid)
    assert "Skipping 3 of 3 jobs: finished" in out and "sweep: 3 finished, 0 failed" in out
    assert len(table_rows(sweep_dir)) == 1  # one baseline row
    forced = sweep(tmp_path, *grid, "--force")
    assert "Skipping 2 of 3 jobs: the run of an earlier job" in forced
    assert "sweep: 3 finished, 0 failed, 0 not run" in forced
    assert (
        json.loads((folder / "metrics.json").read_text())[FINGERPRINT_SCHEME_KEY]
        == FINGERPRINT_SCHEME
    )


def test_a_scheme_2_record_with_a_setting_it_never_read_serves_every_value_of_it(tmp_path) -> None:
    # Full fine-tuning recorded with LoRA's rank set by a layerft of scheme 2, which hashed the
    # rank: found, through the config kept beside it, by the same run under another rank.
    sweep(tmp_path, "seed=1", "tuning_mode=full", "injection_task=none", "tuning_mode.lora.rank=2")
    sweep_dir = tmp_path / "multirun_outputs" / "demo"
    [folder] = [p.parent for p in sweep_dir.glob("*/metrics.json")]
    config = resolve_config(OmegaConf.load(folder / ".hydra" / "finished" / "config.yaml"))
    path = folder / "metrics.json"
    record = json.loads(path.read_text())
    del record[UNREAD_KEY]
    record[FINGERPRINT_SCHEME_KEY] = 2
    record[FINGERPRINT_KEY] = config_fingerprint(config, scheme=2)
    record["run/seedless_fingerprint"] = seedless_fingerprint(config, scheme=2)
    assert record[FINGERPRINT_KEY] != config_fingerprint(config)  # the schemes do differ here
    path.write_text(json.dumps(record))
    grid = ("seed=1", "tuning_mode=full", "injection_task=none", "tuning_mode.lora.rank=2,4")
    assert "2 done, 0 to run" in sweep(tmp_path, *grid, "--dry-run")
    [job] = read_sweep(sweep_dir)[0]
    assert job.fingerprint == config_fingerprint(config) and "tuning_mode.lora." in job.unread
    assert "tuning_mode.lora.rank" not in job.settings


def test_a_scheme_4_record_with_another_kinds_setting_serves_every_value_of_it(tmp_path) -> None:
    # A classification run recorded with a span setting by a layerft of scheme 4, which hashed it:
    # found, through the config kept beside it, by the run under another value, and a grid
    # sweeping the setting over classification is one run per combination.
    job = ("seed=1", "tuning_mode=full", "injection_task=none")
    assert "2 combinations (1 distinct run)" in sweep(
        tmp_path, *job, "target_task.spans.doc_stride=64,128", "--dry-run"
    )
    sweep(tmp_path, *job, "target_task.spans.doc_stride=64")
    sweep_dir = tmp_path / "multirun_outputs" / "demo"
    [folder] = [p.parent for p in sweep_dir.glob("*/metrics.json")]
    config = resolve_config(OmegaConf.load(folder / ".hydra" / "finished" / "config.yaml"))
    path = folder / "metrics.json"
    record = json.loads(path.read_text())
    record[FINGERPRINT_SCHEME_KEY] = 4
    record[FINGERPRINT_KEY] = config_fingerprint(config, scheme=4)
    record["run/seedless_fingerprint"] = seedless_fingerprint(config, scheme=4)
    record[UNREAD_KEY] = [k for k in record[UNREAD_KEY] if not k.startswith("target_task.")]
    assert record[FINGERPRINT_KEY] != config_fingerprint(config)  # the schemes do differ here
    path.write_text(json.dumps(record))
    assert "2 done, 0 to run" in sweep(tmp_path, *job, "target_task.spans.doc_stride=32,128", "--dry-run")  # fmt: skip
    [found] = read_sweep(sweep_dir)[0]
    assert found.fingerprint == config_fingerprint(config) and "target_task.spans." in found.unread
    assert "target_task.spans.doc_stride" not in found.settings


def test_a_failure_recorded_before_its_config_validated_is_no_scheme_1_record(tmp_path) -> None:
    # It has no fingerprint to compare: never "the same run" as a record of its row and seed.
    (tmp_path / "a").mkdir()
    record = {"run/choices": {"injection_task": "none"}, "run/seed": 1, "run/overrides": [],
              "run/error": "bad key"}  # fmt: skip
    (tmp_path / "a" / "failed.json").write_text(json.dumps(record))
    assert not read_job(tmp_path / "a").unread_in_fingerprint


def test_a_repeat_is_launched_in_place_of_a_blocked_first() -> None:
    # The first's folder holds another config's result: its job would stop, and no run serve both.
    first, second, other = (Combination([n], f, None, n) for n, f in (("a", "f"), ("b", "f"), ("c", "g")))  # fmt: skip
    grid = [first, second, other]
    assert sweep_status.repeated_runs(grid, []) == [(second, first)]
    assert sweep_status.repeated_runs(grid, [], [first]) == [(first, second)]
    assert sweep_status.repeated_runs(grid, [first]) == []  # finished: the other is not a repeat


def test_a_baseline_recorded_under_the_earlier_fingerprint_scheme_is_done(tmp_path) -> None:
    # Scheme 1 hashed the (unread) split of a run without stage 1: its records stay this config's
    # result (found, reused, not "another config"), and two of them under two splits are one row.
    args = [*TINY_GRID, f"cache_dir={tmp_path / 'cache'}", "seed=1", "tuning_mode=full",
            "injection_task=none", "layer_split=lower1,all"]  # fmt: skip
    combinations = expand("demo", args)
    assert len({c.fingerprint for c in combinations}) == 1
    for combination in combinations:
        (earlier,) = combination.earlier_fingerprints
        folder = tmp_path / sweep_grid.job_folder(combination)
        folder.mkdir()
        (folder / "metrics.json").write_text(json.dumps({
            FINGERPRINT_KEY: earlier, "run/seedless_fingerprint": earlier[::-1],
            "run/choices": {"injection_task": "none", "tuning_mode": "full",
                            "layer_split": folder.name.split("layer_split=")[1].split(",")[0]},
            "run/seed": 1, "run/overrides": combination.overrides,
            "run/selection_metric": "target/eval_accuracy", "run/higher_is_better": True,
            RESULTS_VERSION_KEY: RESULTS_VERSION, "target/eval_accuracy": 0.5,
        }))  # fmt: skip
    state = sweep_status.status(combinations, tmp_path)
    assert not state.missing and not state.blocked
    assert sorted(folder.name for _, folder in state.done) == sorted(
        sweep_grid.job_folder(c) for c in combinations
    )
    # A job of the grid reuses its folder's record: neither rerun nor refused as another config's.
    config = resolve_config(compose_config(*combination.overrides))
    record = RunRecord.of(config, {}, combination.overrides, ("target/eval_accuracy", True))
    found = previous_result(folder, record, str(tmp_path), config)
    assert found is not None and found[0]["target/eval_accuracy"] == 0.5 and found[1] == folder
    jobs = read_sweep(tmp_path)[0]
    assert len(jobs) == 1 and jobs[0].replaced_by is None  # one run: the newer record
    assert jobs[0].seedless_fingerprint is None  # it hashed the split: no config check across seeds


@pytest.mark.slow
def test_reused_stage1_gives_the_same_results_as_training_it_in_the_run(tmp_path) -> None:
    args = ("seed=1", "injection_task=demo_pos")
    sweep(tmp_path / "store", *args, "tuning_mode=full,lora")  # lora reuses full's stage 1
    sweep(tmp_path / "fresh", *args, "tuning_mode=lora", "reuse_stage1=false")
    name = "injection_task=demo_pos,seed=1,tuning_mode=lora"
    stored = results(tmp_path / "store" / "multirun_outputs" / "demo")[name]
    fresh = results(tmp_path / "fresh" / "multirun_outputs" / "demo")[name]
    assert stored["run/stage1"]["status"] == "reused"
    assert fresh["run/stage1"] == {"status": "trained", "stored": False}
    assert deterministic(stored) == deterministic(fresh)
    assert not (tmp_path / "fresh" / "cache" / "stage1").exists()


@pytest.mark.slow
def test_a_stage1_stored_at_other_cpu_threads_is_trained_again(tmp_path) -> None:
    # The same command at 2 threads gave other numbers once a 1-thread run (a local_parallel job's
    # share) had stored its stage 1 (a determinism review): now it trains its own.
    args = ["model=tiny", "tracker=none", "target_task.lr=2e-3", "injection_task.lr=2e-3"]
    cache = f"cache_dir={tmp_path / 'cache'}"
    two = {"OMP_NUM_THREADS": "2"}
    for name, env in (("one", None), ("two", two)):
        done = run_train([*args, cache, f"hydra.run.dir={tmp_path / name}"], tmp_path, env)
        assert done.returncode == 0, done.stderr
        assert "stage 1: trained, stored as" in done.stdout + done.stderr, name
    own = run_train([*args, f"hydra.run.dir={tmp_path / 'own'}"], tmp_path / "own", two)
    assert own.returncode == 0, own.stderr
    first, second, alone = (
        json.loads((tmp_path / name / "metrics.json").read_text()) for name in ("one", "two", "own")
    )
    assert (first["run/cpu_threads"], second["run/cpu_threads"]) == (1, 2)
    assert deterministic(second) == deterministic(alone)
    assert len(list((tmp_path / "cache" / "stage1").glob("*/result.json"))) == 2


@pytest.mark.slow
def test_train_py_m_with_folders_named_by_settings_resumes_a_reordered_grid(tmp_path) -> None:
    # Numbered folders give an extended grid's new configs other configs' folders (they fail,
    # every time); README's way out for train.py -m: sweep.py's folder names, by settings (a path
    # value such as cache_dir's is one folder name).
    named = [
        'hydra.sweep.subdir="${layerft_dirname:${hydra.job.override_dirname}}"',
        "model=tiny", "tracker=none", "injection_task=none", "target_task.epochs=1",
    ]  # fmt: skip
    first = run_train(["-m", *named, "tuning_mode=lora,full", "seed=42"], tmp_path)
    assert first.returncode == 0, first.stderr
    done = {p: p.read_bytes() for p in (tmp_path / "sweep").glob("*/metrics.json")}
    assert len(done) == 2
    again = run_train(["-m", *named, "tuning_mode=full,lora", "seed=42,7"], tmp_path)
    assert again.returncode == 0, again.stderr
    assert (again.stdout + again.stderr).count("already finished") == 2
    assert len(list((tmp_path / "sweep").glob("*/metrics.json"))) == 4
    assert {p: p.read_bytes() for p in done} == done


# --- failures ------------------------------------------------------------------------------------


def test_a_nan_job_is_recorded_failed_and_the_others_finish(tmp_path) -> None:
    out = sweep(
        tmp_path, "seed=1", "injection_task=none", "tuning_mode=full",
        "target_task.lr=5e-5,1e30", "target_task.max_grad_norm=0", expect=1,
    )  # fmt: skip
    sweep_dir = tmp_path / "multirun_outputs" / "demo"
    bad = sweep_dir / "injection_task=none,seed=1,target_task.lr=1e+30,tuning_mode=full"
    good = sweep_dir / "injection_task=none,seed=1,target_task.lr=5e-05,tuning_mode=full"
    assert (good / "metrics.json").exists() and not (good / "failed.json").exists()
    assert not (bad / "metrics.json").exists()
    failure = json.loads((bad / "failed.json").read_text())
    assert re.match(r"LayerftError: target stage: (training|dev) loss is nan", failure["run/error"])
    assert failure["run/seed"] == 1 and failure["run/choices"]["tuning_mode"] == "full"
    assert "sweep: 1 finished, 1 failed, 0 not run" in out
    assert re.search(r"FAILED \S*target_task.lr=1e\+30\S*: LayerftError: target stage: ", out)


def test_a_launch_that_stops_still_gives_the_summary_and_table_and_one_line(tmp_path) -> None:
    sweep_dir = tmp_path / "multirun_outputs" / "demo"
    sweep_dir.mkdir(parents=True)
    blocked = sweep_dir / "injection_task=none,seed=2,tuning_mode=full"
    blocked.write_text("")  # a file where Hydra makes the second job's folder: the launch stops
    out = sweep(tmp_path, "seed=1,2", "injection_task=none", "tuning_mode=full", expect=1)
    assert "sweep: 1 finished, 0 failed, 1 not run" in out
    assert (sweep_dir / "results.csv").exists() and "Traceback" not in out
    assert out.strip().splitlines()[-1] == (
        f"error: the sweep stopped early: cannot create {blocked.relative_to(tmp_path)}: File exists"
    )


def test_a_missing_data_file_stops_the_sweep_before_any_job_runs(tmp_path, capsys) -> None:
    # The dry run listed 12 to run; the sweep trained the six jobs without stage 1, then each job
    # that reads the file failed on it (train.py refuses such a run at once).
    sweep_dir = tmp_path / "outputs" / "sweep"
    missing = "injection_task.data_files.train=/no/such.jsonl"
    for dry_run in (["--dry-run"], []):
        args = ["demo", *TINY_GRID, missing, "--dir", str(sweep_dir), *dry_run]
        assert sweep_module.main(args) == 2
        [line] = capsys.readouterr().err.strip().splitlines()
        assert re.fullmatch(
            r"error: \S*injection_task=demo_pos\S*: injection_task.data_files.train: no such file "
            r"/no/such.jsonl",
            line,
        ), line
    # no job started; the folders made only to hold the sweep's lock are gone (one was left)
    assert not (tmp_path / "outputs").exists()
    sweep_dir.mkdir(parents=True)  # the user's own folder stays
    assert sweep_module.main(["demo", *TINY_GRID, missing, "--dir", str(sweep_dir)]) == 2
    assert [path.name for path in sweep_dir.iterdir()] == [".sweep.lock"]


def test_a_bad_record_stops_the_sweep_before_any_job_runs(tmp_path, capsys) -> None:
    # Every job reading the file had failed on it in turn (12 failures), each after its imports.
    good = "".join(
        f'{{"text": "t{i}", "label": "{("negative", "positive")[i % 2]}"}}\n' for i in range(8)
    )
    (tmp_path / "dev.jsonl").write_text(good)
    (tmp_path / "train.jsonl").write_text(good + '{"text": "x", "label": "neutral"}\n')
    files = [f"target_task.data_files.{s}={tmp_path / f}.jsonl" for s, f in (("train", "train"), ("validation", "dev"))]  # fmt: skip
    sweep_dir = tmp_path / "sweep"
    for dry_run in (["--dry-run"], []):
        assert (
            sweep_module.main(["demo", *TINY_GRID, *files, "--dir", str(sweep_dir), *dry_run]) == 2
        )
        [line] = capsys.readouterr().err.strip().splitlines()
        assert line.endswith(
            f"{tmp_path / 'train.jsonl'}:9: record 9: label 'neutral' is not in "
            "target_task.label_names (2 labels: negative, positive)"
        ), line
    assert not sweep_dir.exists()  # no job started, no folder made only to hold the lock
    (tmp_path / "train.jsonl").write_text(good)  # fixed: it plans
    assert (
        sweep_module.main(["demo", *TINY_GRID, *files, "--dir", str(sweep_dir), "--dry-run"]) == 0
    )


@pytest.mark.slow
def test_a_sweep_folder_named_with_hydras_own_characters_runs(tmp_path) -> None:
    # --dry-run said "2 to run", then the launch stopped: "OverrideParseException" (the folder
    # went to Hydra as an unquoted override value).
    folder = tmp_path / "데이터 a=b,c (it's) [x]"
    out = sweep(
        tmp_path, "seed=1,2", "injection_task=none", "tuning_mode=full", "--dir", str(folder)
    )
    assert "sweep: 2 finished, 0 failed, 0 not run" in out
    assert len(list(folder.glob("*/metrics.json"))) == 2 and (folder / "results.md").exists()
    # One holding "${": refused before a plan says it runs (Hydra resolved it in the job folders)
    refused = tmp_path / "a${x}"
    out = sweep(tmp_path, "seed=1", "--dir", str(refused), "--dry-run", expect=2)
    assert f"--dir {refused}: Hydra would read its '${{' as an interpolation" in out


def test_offline_a_hub_dataset_the_cache_lacks_stops_the_sweep_and_a_cached_one_plans(
    tmp_path, capsys, monkeypatch
) -> None:
    # Every job of such a grid had failed on it in turn; --dry-run had passed it.
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "datasets")
    args = ["demo", *TINY_GRID, "target_task=snli", "--dir", str(tmp_path / "sweep")]
    for dry_run in (["--dry-run"], []):
        assert sweep_module.main([*args, *dry_run]) == 2
        [line] = capsys.readouterr().err.strip().splitlines()
        assert (
            "target_task 'snli': could not load hub dataset stanfordnlp/snli (Couldn't reach"
            in line
        )
        assert "offline, set target_task.data_files.train=..." in line
    assert not (tmp_path / "sweep").exists()  # no job started, no folder made for the lock
    # The cache as `load_dataset` leaves it (the run reads it from there): the grid plans.
    rows = tmp_path / "snli.jsonl"
    rows.write_text('{"premise": "a", "hypothesis": "b", "label": 0}\n')
    built = datasets.load_dataset(
        "json", data_files={"validation": str(rows)}, cache_dir=str(tmp_path / "built")
    )
    [folder] = {Path(f["filename"]).parent for f in built["validation"].cache_files}
    cached = tmp_path / "datasets" / "stanfordnlp___snli" / "default" / "0.0.0" / folder.name
    shutil.copytree(folder, cached)
    (cached / "json-validation.arrow").rename(cached / "snli-validation.arrow")
    assert (
        datasets.load_dataset("stanfordnlp/snli", split="validation").to_list()[0]["premise"] == "a"
    )
    assert sweep_module.main([*args, "--dry-run"]) == 0


def test_a_bad_tag_in_a_klue_release_stops_the_sweep_before_any_job_runs(
    tmp_path, capsys, shared_data
) -> None:
    # Every tagging kind had been left to its runs (the check skipped any kind that can tag
    # texts itself, not only a task that does); a split of no labelled record as well.
    release = tmp_path / "ner"
    shutil.copytree(shared_data / "klue" / "klue-ner-v1.1", release)
    train = release / "klue-ner-v1.1_train.tsv"
    train.write_text(
        train.read_text(encoding="utf-8").replace("\tB-PS", "\tB-XX", 1), encoding="utf-8"
    )
    args = [
        "demo",
        *TINY_GRID,
        "target_task=klue_ner",
        f"target_task.data_dir={release}",
        "--dry-run",
    ]
    assert sweep_module.main([*args, "--dir", str(tmp_path / "s")]) == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert "klue-ner-v1.1_train.tsv:" in line and "B-XX" in line, line
    (tmp_path / "dev.jsonl").write_text('{"text": "a", "label": -1}\n')  # SNLI's unlabelled mark
    files = [
        f"target_task.data_files.{s}={tmp_path / 'dev.jsonl'}" for s in ("train", "validation")
    ]
    assert sweep_module.main(["demo", *TINY_GRID, "target_task=snli", *files, "--dry-run"]) == 2
    assert capsys.readouterr().err.strip().endswith("has no labelled records")


def test_only_a_combination_the_sweep_launches_is_refused_for_its_data() -> None:
    # A finished one is not rerun (its data file may have moved since), nor is a blocked one.
    error = "target_task.data_files.train: no such file /moved.jsonl"
    done, todo, blocked = (
        Combination([], f * 16, None, f"seed={f}", input_error=error) for f in "123"
    )
    forced = dataclasses.replace(done, force_rerun=True)  # force_rerun=true in its config
    state = sweep_status.Status([(done, Path("1")), (forced, Path("1"))], [], [todo, blocked])
    state.blocked.append((blocked, Path("3")))

    def refused(grid: list[Combination], force: bool = False) -> str | None:
        try:
            sweep_module.check_launched_inputs(grid, sweep_status.left_out(grid, state, force))
        except LayerftError as err:
            return str(err)
        return None

    assert refused([done, blocked]) is None
    assert refused([done, blocked, todo]) == f"seed=2: {error}"
    assert refused([done], force=True) == f"seed=1: {error}"  # --force reruns it
    assert refused([forced]) == f"seed=1: {error}"


def test_a_refusal_an_earlier_launch_recorded_beside_another_configs_result_goes(
    tmp_path, monkeypatch, capsys
) -> None:
    # An older sweep.py (and train.py -m) launched a blocked job: it recorded its refusal in the
    # other config's folder, which then counted it failed and launched it again, and every table
    # of the folder listed it. It is blocked, not launched, and the record goes.
    args = ["demo", *TINY_GRID, "seed=1", "injection_task=none", "tuning_mode=full"]
    [combination] = expand("demo", args[1:])
    folder = tmp_path / "sweep" / sweep_grid.job_folder(combination)
    folder.mkdir(parents=True)
    result = {FINGERPRINT_KEY: "f" * 16, RESULTS_VERSION_KEY: RESULTS_VERSION}
    (folder / "metrics.json").write_text(json.dumps(result))
    refusal = {FINGERPRINT_KEY: combination.fingerprint, "run/error": "LayerftError: refused"}
    (folder / "failed.json").write_text(json.dumps(refusal))
    state = sweep_status.status([combination], tmp_path / "sweep")
    assert not state.failed and state.blocked == [(combination, folder)]
    launched: list[Any] = []
    monkeypatch.setattr(hydra, "main", lambda **kwargs: lambda task: lambda: launched.append(1))
    monkeypatch.setattr(sweep_module, "tabled", lambda *args: None)
    assert sweep_module.main([*args, "--dir", str(tmp_path / "sweep")]) == 1
    assert not (folder / "failed.json").exists() and (folder / "metrics.json").exists()
    out = capsys.readouterr().out
    assert "sweep: 0 finished, 0 failed, 1 not run" in out
    assert f"NOT RUN {combination.label} (blocked: {folder} holds another config's result)" in out


def test_ctrl_c_gives_the_summary_and_exit_130_not_a_traceback(tmp_path, monkeypatch, capsys):
    def interrupted(*args: Any, **kwargs: Any) -> None:
        raise KeyboardInterrupt  # as Hydra's launcher passes it on, its jobs stopped

    monkeypatch.setattr(hydra, "main", lambda **kwargs: lambda task: interrupted)
    args = ["demo", *TINY_GRID, "seed=1", "injection_task=none", "tuning_mode=full,frozen"]
    assert sweep_module.main([*args, "--dir", str(tmp_path / "sweep")]) == 130
    out, err = capsys.readouterr()
    assert "sweep: 0 finished, 0 failed, 2 not run" in out
    assert err.strip().splitlines()[-1] == "error: the sweep stopped early: interrupted (Ctrl-C)"


def test_a_stopped_jobs_log_says_so_and_takes_none_of_the_sweeps_own_lines(
    tmp_path, monkeypatch
) -> None:
    # Hydra's launcher detaches a job's log file only once the job returns: after a SIGTERM the
    # sweep's summary and tables went on into the stopped job's sweep.log (a README walkthrough)
    job_log = tmp_path / "job" / "sweep.log"
    job_log.parent.mkdir()

    def stopped_in_a_job(*args: Any, **kwargs: Any) -> None:
        logging.getLogger().addHandler(logging.FileHandler(job_log))  # as Hydra's job logging
        logging.getLogger("layerft.run").warning("training")
        raise KeyboardInterrupt

    monkeypatch.setattr(hydra, "main", lambda **kwargs: lambda task: stopped_in_a_job)
    args = ["demo", *TINY_GRID, "seed=1", "injection_task=none", "tuning_mode=full"]
    assert sweep_module.main([*args, "--dir", str(tmp_path / "sweep")]) == 130
    logging.getLogger("layerft.aggregate").warning("a line of the sweep's own")
    assert job_log.read_text().splitlines() == ["training", "job stopped: interrupted (Ctrl-C)"]
    assert not [h for h in logging.getLogger().handlers if isinstance(h, logging.FileHandler)]


def test_a_sweep_stopped_early_names_its_unrun_combinations_in_results_md(
    tmp_path, monkeypatch, capsys
) -> None:
    # results.md said "1 jobs (1 finished, 0 failed)" after Ctrl-C: a reader could not tell the
    # grid's other combinations from ones never in it (the summary named them, the table did not)
    sweep(tmp_path, "seed=1", "injection_task=none", "tuning_mode=full")
    sweep_dir = tmp_path / "multirun_outputs" / "demo"

    def interrupted(*args: Any, **kwargs: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(hydra, "main", lambda **kwargs: lambda task: interrupted)
    args = ["demo", *TINY_GRID, "seed=1", "injection_task=none", "tuning_mode=full,frozen"]
    assert sweep_module.main([*args, "--dir", str(sweep_dir)]) == 130
    markdown = (sweep_dir / "results.md").read_text()
    assert "2 jobs (1 finished, 0 failed, 1 not run) in 1 combination" in markdown
    assert markdown.endswith(
        "## Not run (in the grid, no result)\n\nCombinations of the grid this sweep did not run (it "
        "stopped early), in no row of the table:\n"
        "- injection_task=none,seed=1,tuning_mode=frozen\n"
    )
    # `sweep.py aggregate` (another baseline, say) lists them as well: it had said nothing of them.
    (sweep_dir / "results.md").unlink()
    assert sweep_module.main(["aggregate", str(sweep_dir)]) == 0
    assert (sweep_dir / "results.md").read_text() == markdown
    assert sweep_module.aggregate_dir(sweep_dir, None, None, not_run=[]).markdown != markdown


def test_ctrl_c_while_the_tables_are_written_is_one_line_and_exit_130(
    tmp_path, monkeypatch, capsys
) -> None:
    def interrupted(*args: Any, **kwargs: Any) -> None:
        raise KeyboardInterrupt  # all jobs done, the tables being written

    monkeypatch.setattr(hydra, "main", lambda **kwargs: lambda task: lambda: None)
    monkeypatch.setattr(sweep_module, "aggregate_dir", interrupted)  # sweep.py aggregate's
    monkeypatch.setattr(sweep_options, "aggregate_dir", interrupted)  # after a sweep
    monkeypatch.setattr(sweep_module, "job_records", lambda *args: {"f": tmp_path})  # a result
    args = ["demo", *TINY_GRID, "seed=1", "injection_task=none", "tuning_mode=full"]
    assert sweep_module.main([*args, "--dir", str(tmp_path / "sweep")]) == 130
    assert capsys.readouterr().err.strip().splitlines() == [
        "error: interrupted (Ctrl-C); finished results are kept; this sweep's tables are not "
        f"written (python sweep.py aggregate {tmp_path / 'sweep'} writes them)"
    ]  # a second Ctrl-C as they were written had said nothing of them (a chaos review)
    assert sweep_module.main(["aggregate", str(tmp_path / "sweep")]) == 130


def test_sigterm_while_the_tables_are_written_is_one_line_and_exit_143(
    tmp_path, monkeypatch, capsys
) -> None:
    # Outside the launch (planning, the tables, `sweep.py aggregate`) SIGTERM ended the process.
    def terminated(*args: Any, **kwargs: Any) -> None:
        os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(hydra, "main", lambda **kwargs: lambda task: lambda: None)
    monkeypatch.setattr(sweep_module, "aggregate_dir", terminated)  # sweep.py aggregate's
    monkeypatch.setattr(sweep_options, "aggregate_dir", terminated)  # after a sweep
    monkeypatch.setattr(sweep_module, "job_records", lambda *args: {"f": tmp_path})  # a result
    previous = signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        args = ["demo", *TINY_GRID, "seed=1", "injection_task=none", "tuning_mode=full"]
        assert sweep_module.main([*args, "--dir", str(tmp_path / "sweep")]) == 143
        assert sweep_module.main(["aggregate", str(tmp_path / "sweep")]) == 143
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert capsys.readouterr().err.strip().splitlines() == [
        "error: terminated (SIGTERM); finished results are kept; this sweep's tables are not "
        f"written (python sweep.py aggregate {tmp_path / 'sweep'} writes them)",
        "error: terminated (SIGTERM); finished results are kept",
    ]


@pytest.mark.parametrize("next_job", [True, False])
def test_a_ctrl_c_python_lost_still_stops_the_sweep_with_exit_130(
    tmp_path, monkeypatch, capsys, next_job: bool
) -> None:
    # Python swallows a KeyboardInterrupt raised in a garbage collector's callback ("Exception
    # ignored in ... WeakSet"): the sweep ran on to its end and exited 0. It is remembered now.
    started = []
    # The folder Hydra made for the next job, which never starts: no table lists it as unfinished
    made = tmp_path / "sweep" / "next"
    (made / ".hydra").mkdir(parents=True)
    (made / "job.log").touch()
    monkeypatch.setattr(sweep_launch, "_job_folder", lambda: made)

    def lost_interrupt(*args: Any, **kwargs: Any) -> None:
        with contextlib.suppress(KeyboardInterrupt):  # where Python lost it
            signal.getsignal(signal.SIGINT)(signal.SIGINT, None)
        if next_job:
            started.append(True)
            sweep_launch.job(None)  # type: ignore[arg-type]  # it must not get as far as cfg

    monkeypatch.setattr(hydra, "main", lambda **kwargs: lambda task: lost_interrupt)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a terminal
    try:
        args = ["demo", *TINY_GRID, "seed=1", "injection_task=none", "tuning_mode=full,frozen"]
        assert sweep_module.main([*args, "--dir", str(tmp_path / "sweep")]) == 130
    finally:
        signal.signal(signal.SIGINT, previous)
    assert started == ([True] if next_job else [])
    assert made.exists() is not next_job
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "error: the sweep stopped early: interrupted (Ctrl-C)"
    )
    assert signal.getsignal(signal.SIGINT) is previous


@pytest.mark.parametrize(
    "sigint", [signal.default_int_handler, signal.SIG_IGN], ids=["tty", "background"]
)
def test_sigterm_stops_the_sweep_as_ctrl_c_does_with_its_own_line_and_exit_143(
    tmp_path, monkeypatch, capsys, sigint
) -> None:
    # `kill`, `timeout` and SLURM at a job's time limit send SIGTERM: it ended the process where it
    # stood (exit -15), with no summary, no tables and a tracker run left to be found crashed.
    # A script's `cmd &` ignores SIGINT: SIGTERM is how such a sweep is stopped.
    started = []

    def terminated(*args: Any, **kwargs: Any) -> None:
        os.kill(os.getpid(), signal.SIGTERM)  # the handler raises in this (the main) thread
        started.append(True)  # never reached

    monkeypatch.setattr(hydra, "main", lambda **kwargs: lambda task: terminated)
    previous = signal.signal(signal.SIGINT, sigint), signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        args = ["demo", *TINY_GRID, "seed=1", "injection_task=none", "tuning_mode=full,frozen"]
        assert sweep_module.main([*args, "--dir", str(tmp_path / "sweep")]) == 143
        assert signal.getsignal(signal.SIGINT) is sigint  # as it found them
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    finally:
        signal.signal(signal.SIGINT, previous[0])
        signal.signal(signal.SIGTERM, previous[1])
    assert started == []
    out, err = capsys.readouterr()
    assert "sweep: 0 finished, 0 failed, 2 not run" in out
    assert err.strip().splitlines()[-1] == "error: the sweep stopped early: terminated (SIGTERM)"


def stop_group_after_a_step(script: str, args: list[str], tmp_path: Path, delay: float):
    """Run `script ARGS` in a process group of its own, and SIGTERM the whole group (as scancel,
    SLURM's time limit and `kill -TERM -<pgid>` do: data-loader workers too) `delay` s after its
    third training step is logged: its exit code and output."""
    process = subprocess.Popen(
        [sys.executable, str(REPO / script), *args], cwd=tmp_path, env=script_env(tmp_path),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )  # fmt: skip
    assert process.stdout is not None
    out = []
    # a run that never logs its third step (it hung at its first batch once) ends the test
    deadline = threading.Timer(240, os.killpg, (process.pid, signal.SIGKILL))
    deadline.start()
    try:
        for line in process.stdout:
            out.append(line)
            if "target step 3: loss" in line:
                time.sleep(delay)
                os.killpg(process.pid, signal.SIGTERM)
                break
        out.append(process.communicate(timeout=120)[0])
    finally:
        deadline.cancel()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
    return process.returncode, "".join(out)


@pytest.mark.slow
@pytest.mark.parametrize("delay", [0.0, 0.05])
def test_sigterm_to_the_group_of_a_sweep_with_loader_workers_is_a_stop_not_a_failure(
    tmp_path, delay: float
) -> None:
    # The workers die of the same SIGTERM, and torch raises "DataLoader worker (pid N) is killed by
    # signal: Terminated" in the run: the sweep recorded the job as FAILED (failed.json), and the
    # loader's finalizer printed a traceback. (Its line and exit code depend on which signal the
    # run meets first; the in-process tests above pin those down.)
    # (Under the test's long TMPDIR it had hung at its first batch: short_socket_folder.)
    args = ["demo", *TINY_GRID, "injection_task=none", "target_task.epochs=1000",
            "trainer.dataloader_workers=2", f"cache_dir={tmp_path / 'cache'}", "seed=1",
            "tuning_mode=full", "--dir", str(tmp_path / "sweep")]  # fmt: skip
    code, out = stop_group_after_a_step("sweep.py", args, tmp_path, delay)
    assert code == 143, out[-3000:]
    assert not list(tmp_path.glob("*/*/failed.json")), out[-3000:]
    assert "error: the sweep stopped early: terminated (SIGTERM)" in out


def test_a_stop_sets_aside_torchs_child_handler_and_ignored_errors_until_the_next_run(
    capsys,
) -> None:
    # After kill -TERM -<group>, torch's SIGCHLD handler raised "DataLoader worker ... is killed by
    # signal" wherever the run was, and finalizers printed "Exception ignored in ..." beside the
    # stop's one line.
    from layerft import interrupts

    def torchs(signum: int, frame: Any) -> None:
        raise RuntimeError("DataLoader worker (pid 1) is killed by signal: Terminated.")

    class Noisy:
        def __del__(self) -> None:
            raise RuntimeError("raised in a finalizer")

    with interrupts.remembered_interrupts():  # puts back what an earlier test's stop set aside
        hook = sys.unraisablehook
    previous = signal.signal(signal.SIGCHLD, torchs), signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        with pytest.raises(KeyboardInterrupt), interrupts.remembered_interrupts():
            os.kill(os.getpid(), signal.SIGTERM)
        assert signal.getsignal(signal.SIGCHLD) == signal.SIG_DFL
        Noisy()  # collected at once: its error is ignored, and not printed
        assert "raised in a finalizer" not in capsys.readouterr().err
        assert sys.unraisablehook is interrupts._unreported  # not pytest's, which records it
        with interrupts.remembered_interrupts():  # the next run: both back
            assert signal.getsignal(signal.SIGCHLD) is torchs and sys.unraisablehook is hook
    finally:
        signal.signal(signal.SIGCHLD, previous[0])
        signal.signal(signal.SIGTERM, previous[1])
        sys.unraisablehook = hook


def test_an_error_the_stop_sets_off_in_a_job_is_the_stop_not_a_failure(
    tmp_path, monkeypatch, capsys
) -> None:
    # Cleanup meeting a data loader whose workers the same SIGTERM ended raises in place of the
    # KeyboardInterrupt: the job was recorded as failed, and the sweep went on to the next one.
    import layerft.run as run_module

    def run(*args: Any, **kwargs: Any) -> None:
        try:
            os.kill(os.getpid(), signal.SIGTERM)
        finally:
            raise RuntimeError("DataLoader worker (pid(s) 1) exited unexpectedly")

    monkeypatch.setattr(run_module, "run", run)
    previous = signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        args = ["demo", *TINY_GRID, "seed=1", "injection_task=none", "tuning_mode=full,frozen"]
        assert sweep_module.main([*args, "--dir", str(tmp_path / "sweep")]) == 143
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert not list((tmp_path / "sweep").glob("*/failed.json"))
    out, err = capsys.readouterr()
    assert "sweep: 0 finished, 0 failed, 1 not run, 1 unfinished" in out
    assert err.strip().splitlines()[-1] == "error: the sweep stopped early: terminated (SIGTERM)"


def test_a_sigterm_handler_of_the_callers_is_left_alone() -> None:
    # submitit's jobs handle SIGTERM themselves (and SIGUSR2 for a time limit): not replaced.
    from layerft import interrupts

    def callers(signum: int, frame: Any) -> None: ...

    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    previous_term = signal.signal(signal.SIGTERM, callers)
    try:
        with interrupts.remembered_interrupts():
            assert signal.getsignal(signal.SIGTERM) is callers
            assert signal.getsignal(signal.SIGINT) is not signal.default_int_handler  # ours
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
        with pytest.raises(SystemExit) as ended, interrupts.interrupted_exit():
            os.kill(os.getpid(), signal.SIGINT)
        assert ended.value.code == 130  # the last stop's, not an earlier SIGTERM's
    finally:
        signal.signal(signal.SIGINT, previous)
        signal.signal(signal.SIGTERM, previous_term)


def test_a_remembered_ctrl_c_counts_only_within_its_context_and_an_inner_one_keeps_it() -> None:
    from layerft import interrupts

    lose = lambda: signal.getsignal(signal.SIGINT)(signal.SIGINT, None)  # noqa: E731
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a terminal
    try:
        with interrupts.remembered_interrupts():
            with contextlib.suppress(KeyboardInterrupt):  # where Python lost it
                lose()
            with interrupts.remembered_interrupts():  # nested: no reset
                assert interrupts.interrupted()
            with pytest.raises(KeyboardInterrupt):
                interrupts.stop_if_interrupted()
        # Afterwards (a notebook's or a test's next run in the process): nothing stops it
        assert not interrupts.interrupted()
        interrupts.stop_if_interrupted()
        # A run whose Ctrl-C was lost after its last step: exit 130 all the same
        with (
            pytest.raises(SystemExit) as ended,
            interrupts.interrupted_exit(),
            contextlib.suppress(KeyboardInterrupt),
        ):
            lose()
        assert ended.value.code == 130
    finally:
        signal.signal(signal.SIGINT, previous)


def test_an_interrupted_job_folder_with_an_earlier_attempts_files_stays(tmp_path) -> None:
    folder = tmp_path / "job"
    (folder / ".hydra").mkdir(parents=True)
    (folder / "job.log").write_text("an earlier attempt's lines\n")
    sweep_launch._remove_unstarted(folder)
    assert folder.exists()
    (folder / "job.log").write_text("")
    (folder / "checkpoints").mkdir()
    sweep_launch._remove_unstarted(folder)
    assert folder.exists()
    (folder / "checkpoints").rmdir()
    sweep_launch._remove_unstarted(folder)
    assert not folder.exists()


# In the default run (about 25 s): the resume and determinism contracts end to end, which the
# README's test command and so `.ci/run` must check.
def test_kill_9_in_the_second_job_then_rerun_matches_an_uninterrupted_sweep(tmp_path) -> None:
    grid = [*TINY_GRID, "injection_task=demo_pos", "tuning_mode=full", "seed=1,2,3"]
    killed = tmp_path / "killed"
    args = ["demo", *grid, f"cache_dir={killed / 'cache'}"]
    process = start_sweep(args, killed)
    sweep_dir = killed / "multirun_outputs" / "demo"
    first = sweep_dir / "injection_task=demo_pos,seed=1,tuning_mode=full"
    second = sweep_dir / "injection_task=demo_pos,seed=2,tuning_mode=full"
    deadline = time.monotonic() + 300
    partial = second / "history.jsonl.partial"  # written as the job goes
    while not partial.exists() or not partial.read_text():
        assert process.poll() is None and time.monotonic() < deadline, "second job never started"
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)  # in the middle of the second job's stage 1
    process.wait()
    assert (first / "metrics.json").exists() and not (second / "metrics.json").exists()
    finished_at = (first / "metrics.json").stat().st_mtime_ns

    out = run_sweep(args, killed)
    assert out.returncode == 0, out.stderr[-3000:]
    assert (first / "metrics.json").stat().st_mtime_ns == finished_at  # not rerun
    assert "Skipping 1 of 3 jobs" in out.stdout and "Launching 2 jobs" in out.stdout
    assert "sweep: 3 finished, 0 failed, 0 not run" in out.stdout

    sweep(tmp_path / "whole", "injection_task=demo_pos", "tuning_mode=full", "seed=1,2,3")
    whole = results(tmp_path / "whole" / "multirun_outputs" / "demo")
    resumed = results(sweep_dir)
    assert sorted(whole) == sorted(resumed)
    for name in whole:
        assert deterministic(resumed[name]) == deterministic(whole[name]), name


# --- the stage-1 store ---------------------------------------------------------------------------


@pytest.mark.slow
def test_two_processes_racing_for_one_stage1_train_it_once(tmp_path) -> None:
    cache = tmp_path / "cache"
    common = [*TINY_GRID, f"cache_dir={cache}", "injection_task=demo_pos", "seed=1",
              "injection_task.epochs=3"]  # fmt: skip
    processes = [
        subprocess.Popen(
            sweep_command(["demo", *common, f"tuning_mode={mode}", "--dir", f"out_{mode}"]),
            cwd=tmp_path,
            env=script_env(tmp_path),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )  # fmt: skip
        for mode in ("full", "lora")
    ]
    logs = [p.communicate(timeout=600)[0] for p in processes]
    assert [p.returncode for p in processes] == [0, 0], logs
    joined = "".join(logs)
    assert joined.count("stage 1: trained, stored as") == 1
    assert joined.count("stage 1: reused") == 1
    assert len(list((cache / "stage1").glob("*/result.json"))) == 1
    assert not list((cache / "stage1").glob(".*"))  # no temporary folder left


def test_a_crashed_holder_does_not_block_the_lock(tmp_path) -> None:
    key = Stage1Key.of(compose_run("model=tiny", "injection_task=demo_pos"), "data")
    store = Stage1Store(tmp_path)
    store.root.mkdir(parents=True)
    holder = subprocess.Popen(
        ["python", "-c", "import fcntl,sys,time; f=open(sys.argv[1],'a'); "
         "fcntl.flock(f, fcntl.LOCK_EX); print('held', flush=True); time.sleep(600)",
         str(store.root / f"{key.digest()}.lock")],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    holder.kill()  # like kill -9: the OS releases its lock
    holder.wait()
    started = time.monotonic()
    with store.lock(key):
        assert time.monotonic() - started < 5


def test_stored_weights_read_back_exactly(tmp_path) -> None:
    key = Stage1Key.of(compose_run("model=tiny", "injection_task=demo_pos"), "data")
    injected = InjectedWeights(
        layers=[{"w": torch.randn(3, 4), "b": torch.randn(4)} for _ in range(2)],
        embeddings={"word_embeddings.weight": torch.randn(5, 4)},
    )
    history = [{"step": 1, "injection/eval_token_f1": 0.5}]
    store = Stage1Store(tmp_path)
    assert store.load(key) is None
    store.save(key, injected, {"injection/eval_token_f1": 0.5}, history, tmp_path / "run")
    back = store.load(key)
    assert back is not None and back.history == history and back.trained_by == str(tmp_path / "run")
    for mine, theirs in zip(injected.layers, back.injected.layers, strict=True):
        assert mine.keys() == theirs.keys() and all(torch.equal(mine[k], theirs[k]) for k in mine)
    assert back.injected.embeddings is not None
    assert torch.equal(
        back.injected.embeddings["word_embeddings.weight"],
        injected.embeddings["word_embeddings.weight"],
    )


def test_a_stage1_stored_without_embeddings_reads_back_without_them(tmp_path) -> None:
    # `{}` instead of None would make stage 2 take the embeddings as injected: freeze the
    # pre-trained ones, and fail transplant_embeddings=true, unlike a fresh stage 1.
    key = Stage1Key.of(compose_run("model=tiny", "injection_task=demo_pos"), "data")
    store = Stage1Store(tmp_path)
    store.save(
        key, InjectedWeights(layers=[{"w": torch.ones(2)}], embeddings=None), {}, [], tmp_path
    )
    back = store.load(key)
    assert back is not None and back.injected.embeddings is None


def test_a_job_that_waited_for_the_lock_reuses_what_the_holder_stored(tmp_path) -> None:
    # The store is read again under the lock: two jobs of one key train it once.
    key = Stage1Key.of(compose_run("model=tiny", "injection_task=demo_pos"), "data")
    store = Stage1Store(tmp_path)
    held = store.lock

    @contextlib.contextmanager
    def lock_after_the_holder_stored(k: Stage1Key) -> Any:
        weights = InjectedWeights(layers=[{"w": torch.zeros(2)}], embeddings=None)
        store.save(k, weights, {}, [], tmp_path / "holder")  # while this job waited
        with held(k):
            yield

    store.lock = lock_after_the_holder_stored  # type: ignore[method-assign]
    trained: list[bool] = []
    got = obtain_stage1(store, key, lambda: trained.append(True), tmp_path / "waiter")  # type: ignore[arg-type, func-returns-value]
    assert trained == [] and got.entry()["status"] == "reused"
    assert got.result.trained_by == str(tmp_path / "holder")


def test_storing_a_stage1_removes_what_a_killed_store_of_that_key_left(tmp_path) -> None:
    key = Stage1Key.of(compose_run("model=tiny", "injection_task=demo_pos"), "data")
    store = Stage1Store(tmp_path)
    killed = store.root / f".{key.digest()}.k3x9"  # SIGKILL inside save: its temporary folder
    other = store.root / ".other-key.k3x9"  # another key's save, maybe under way
    for folder in (killed, other):
        folder.mkdir(parents=True)
        (folder / "weights.safetensors").write_bytes(b"")
    injected = InjectedWeights(layers=[{"w": torch.randn(3, 4)}], embeddings=None)
    with store.lock(key):
        store.save(key, injected, {}, [], tmp_path / "run")
    assert sorted(p.name for p in store.root.iterdir()) == sorted(
        [key.digest(), f"{key.digest()}.lock", other.name]
    )


@pytest.mark.parametrize(
    ("name", "damage"),
    [("weights.safetensors", 100), ("result.json", 5), ("result.json", '{"metrics": {}}'),
     ("result.json", "[]")],  # edited to another shape: a KeyError, an AttributeError
)  # fmt: skip
def test_a_damaged_stored_stage1_is_one_error_naming_its_folder(tmp_path, name, damage) -> None:
    key = Stage1Key.of(compose_run("model=tiny", "injection_task=demo_pos"), "data")
    injected = InjectedWeights(layers=[{"w": torch.randn(3, 4)}], embeddings=None)
    store = Stage1Store(tmp_path)
    store.save(key, injected, {}, [{"step": 1}], tmp_path / "run")
    if isinstance(damage, int):
        os.truncate(store.folder(key) / name, damage)
    else:
        (store.folder(key) / name).write_text(damage)
    with pytest.raises(LayerftError) as caught:
        store.load(key)
    message = str(caught.value)
    assert f"stage-1 result in {store.folder(key)}" in message and "reuse_stage1=false" in message
    assert "\n" not in message


def test_obtain_stage1_trains_stores_or_reuses_as_the_store_and_the_ranks_say(tmp_path) -> None:
    key = Stage1Key.of(compose_run("model=tiny", "injection_task=demo_pos"), "data")
    calls: list[float] = []

    def train(value: float):  # noqa: ANN202 - obtain_stage1's train()
        def trained():  # noqa: ANN202
            calls.append(value)
            weights = InjectedWeights(layers=[{"w": torch.full((2,), value)}], embeddings=None)
            return weights, {"injection/eval_x": value}, [{"step": 1}]

        return trained

    def outcome(store, value: float, ranks=(0, 1)):  # noqa: ANN001, ANN202
        got = obtain_stage1(store, key, train(value), tmp_path / f"run{value}", ranks)
        return got.entry(), got.result.injected.layers[0]["w"][0].item()

    # No store (reuse_stage1=false): trained, kept in memory.
    assert outcome(None, 1.0) == ({"status": "trained", "stored": False}, 1.0)
    store = Stage1Store(tmp_path / "cache")
    # A second process of a torchrun job trains with the first but never stores.
    assert outcome(store, 2.0, ranks=(1, 2)) == ({"status": "trained", "stored": False}, 2.0)
    assert store.load(key) is None
    # The first process of a torchrun job stores what it trained.
    entry, value = outcome(store, 3.0, ranks=(0, 2))
    assert (entry["status"], entry["trained_by"], value) == ("trained", str(tmp_path / "run3.0"), 3)
    # Stored before a torchrun job starts: every process reuses it, none trains.
    assert outcome(store, 4.0, ranks=(0, 2)) == ({**entry, "status": "reused"}, 3.0)
    assert outcome(store, 4.0, ranks=(1, 2)) == ({**entry, "status": "reused"}, 3.0)
    # Another job stores the key while a torchrun job trains: the stored one stays; the run reports
    # its own weights, kept in memory.
    raced = Stage1Store(tmp_path / "raced")

    def train_while_another_stores():  # noqa: ANN202
        result = train(5.0)()
        raced.save(
            key, InjectedWeights(layers=[{"w": torch.zeros(2)}], embeddings=None), {}, [], tmp_path
        )
        return result

    got = obtain_stage1(raced, key, train_while_another_stores, tmp_path / "run5", (0, 2))
    assert got.entry() == {"status": "trained", "stored": False}
    assert got.result.injected.layers[0]["w"][0].item() == 5.0
    assert raced.load(key).injected.layers[0]["w"][0].item() == 0.0  # not overwritten
    # One process: trained once under the lock, then reused.
    single = Stage1Store(tmp_path / "single")
    assert outcome(single, 6.0)[0]["status"] == "trained"
    assert outcome(single, 7.0) == ({**outcome(single, 8.0)[0], "status": "reused"}, 6.0)
    assert calls == [1.0, 2.0, 3.0, 5.0, 6.0]


def test_a_stage1_of_zero_epochs_is_not_logged_as_trained(tmp_path, caplog) -> None:
    cfg = compose_run("model=tiny", "injection_task=demo_pos", "injection_task.epochs=0")
    weights = InjectedWeights(layers=[{"w": torch.zeros(2)}], embeddings=None)
    with caplog.at_level(logging.INFO, logger="layerft.stage1"):
        obtain_stage1(Stage1Store(tmp_path), Stage1Key.of(cfg, "data"), lambda: (weights, {}, []),
                      tmp_path / "run")  # fmt: skip
    assert "stage 1: not trained (injection_task.epochs=0), stored as" in caplog.text
    with caplog.at_level(logging.INFO, logger="layerft.stage1"):  # no store: the log says so too
        obtain_stage1(None, Stage1Key.of(cfg, "data"), lambda: (weights, {}, []), tmp_path / "r2")
    assert "stage 1: not trained (injection_task.epochs=0), not stored (reuse_stage1=false)" in (
        caplog.text
    )


def test_every_stored_file_is_on_disk_before_the_folder_is_published(tmp_path, monkeypatch) -> None:
    # After a crash, a published stage 1 must not hold blocks the disk never got (zeroed weights
    # would train stage 2 on nothing, silently): every file is fsynced before the rename.
    events: list[str] = []
    monkeypatch.setattr(stage1_store, "sync_to_disk", lambda path: events.append(path.name))
    rename = os.replace
    monkeypatch.setattr(os, "replace", lambda a, b: (events.append("rename"), rename(a, b)))
    key = Stage1Key.of(compose_run("model=tiny", "injection_task=demo_pos"), "data")
    injected = InjectedWeights(layers=[{"w": torch.randn(3, 4)}], embeddings=None)
    Stage1Store(tmp_path).save(key, injected, {}, [{"step": 1}], tmp_path / "run")
    assert sorted(events[:-1]) == ["history.jsonl", "result.json", "weights.safetensors"]
    assert events[-1] == "rename"


# --- the stage-1 key -----------------------------------------------------------------------------

BASE = ("model=tiny", "injection_task=demo_pos", "layer_split=lower1")
# A changed value for every field of each part of the split.
STAGE1_CHANGES = {
    "num_lower": "layer_split.stage1.num_lower=2",
    "fraction": ["layer_split.stage1.num_lower=null", "layer_split.stage1.fraction=0.5"],
    "head": "layer_split.stage1.head=split",
    "train_embeddings": "layer_split.stage1.train_embeddings=false",
}
STAGE2_CHANGES = {
    "policy": "layer_split.stage2.policy=train",
    "lr_multiplier": "layer_split.stage2.lr_multiplier=0.5",
    "transplant_embeddings": "layer_split.stage2.transplant_embeddings=true",
}
OTHER_STAGE1_INPUTS = [
    "model=minilm", "injection_task.lr=1e-4", "injection_lr_schedule.warmup_ratio=0.2",
    "trainer.group_by_length=true", "seed=7",
]  # fmt: skip
STAGE2_ONLY = [
    "target_task.lr=1e-4", "tuning_mode=lora", "lr_schedule=cosine", "tracker=none",
    "trainer.progress_bar=true", "trainer.keep_checkpoints=true", "cache_dir=/elsewhere",
    "layer_split.name=renamed",
]  # fmt: skip


def key_of(*overrides: str | list[str]) -> str:
    flat = [o for item in overrides for o in ([item] if isinstance(item, str) else item)]
    return Stage1Key.of(compose_run(*BASE, *flat)).settings_digest()


def test_every_stage1_field_and_only_those_change_the_stage1_key() -> None:
    # The test lists every field of both parts: a field added to either must be placed here.
    assert set(STAGE1_CHANGES) == {f.name for f in dataclasses.fields(Stage1Split)}
    assert set(STAGE2_CHANGES) == {f.name for f in dataclasses.fields(Stage2Split)}
    base = key_of()
    for field, change in STAGE1_CHANGES.items():
        assert key_of(change) != base, field
    for field, change in STAGE2_CHANGES.items():
        assert key_of(change) == base, field
    for change in OTHER_STAGE1_INPUTS:
        assert key_of(change) != base, change
    for change in STAGE2_ONLY:
        assert key_of(change) == base, change


def test_schedule_settings_its_scaling_never_reads_do_not_key_stage1() -> None:
    # As they do not key the run (fingerprint scheme 3): a later sweep that differs only in them
    # reuses the stored stage 1, and a plan counts it once.
    decay, head = (
        "injection_lr_schedule.layer_decay=0.5",
        "injection_lr_schedule.multipliers.head=3",
    )
    base = key_of()  # linear: uniform scaling reads neither
    assert key_of(decay) == base and key_of(head) == base
    layerwise = "lr_schedule@injection_lr_schedule=layerwise_decay"
    assert key_of(layerwise, decay) != key_of(layerwise)
    assert key_of(layerwise, head) == key_of(layerwise)
    discriminative = "lr_schedule@injection_lr_schedule=discriminative"
    assert key_of(discriminative, head) != key_of(discriminative)
    assert key_of(discriminative, decay) == key_of(discriminative)


def test_the_process_count_keys_stage1_and_the_result_when_there_are_several(monkeypatch) -> None:
    # batch_size is per process: two torchrun processes train with twice the global batch and half
    # the steps, which is another stage 1 and another result.
    cfg = compose_run(*BASE)
    resolved = resolve_config(compose_config(*BASE))
    one = (Stage1Key.of(cfg, "a" * 24).digest(), config_fingerprint(resolved))
    monkeypatch.setenv("WORLD_SIZE", "1")
    assert (Stage1Key.of(cfg, "a" * 24).digest(), config_fingerprint(resolved)) == one
    monkeypatch.setenv("WORLD_SIZE", "2")
    two = (Stage1Key.of(cfg, "a" * 24).digest(), config_fingerprint(resolved))
    assert two[0] != one[0] and two[1] != one[1]


def test_torchs_cpu_threads_key_the_stored_stage1_not_the_plan(monkeypatch) -> None:
    # A stage 1 trained at 1 thread (a local_parallel job's share) differs from one trained at 2
    # from about the 7th digit: reused by a 2-thread run, that run's metrics were neither its own
    # training's nor another's (a determinism review). On a GPU the CPU's threads key nothing.
    cfg = compose_run(*BASE)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch, "get_num_threads", lambda: 1)
    one = Stage1Key.of(cfg, "a" * 24)
    monkeypatch.setattr(torch, "get_num_threads", lambda: 2)
    two = Stage1Key.of(cfg, "a" * 24)
    assert (one.cpu_threads, two.cpu_threads) == (1, 2) and one.data()["cpu_threads"] == 1
    assert one.digest() != two.digest()
    assert one.settings_digest() == two.settings_digest()  # one stage 1 in a sweep's plan
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    gpu = Stage1Key.of(cfg, "a" * 24)
    assert gpu.cpu_threads is None and "cpu_threads" not in gpu.data()
    assert gpu.digest() == dataclasses.replace(two, cpu_threads=None).digest() != two.digest()


def test_the_plan_counts_a_stage1_stored_at_its_jobs_cpu_threads_only(tmp_path, caplog) -> None:
    # The dry run said "stored" for a stage 1 its jobs then trained again, at another thread count
    # (a diff review): the plan looks up the count its launcher gives the jobs.
    args = ["model=tiny", "injection_task=demo_pos", "seed=1", "tuning_mode=full"]
    args.append(f"cache_dir={tmp_path}")
    key = dataclasses.replace(Stage1Key.of(compose_run(*args), "a" * 24), cpu_threads=1)
    weights = InjectedWeights(layers=[{"w": torch.zeros(2)}], embeddings=None)
    store = Stage1Store(tmp_path)
    store.save(key, weights, {}, [], tmp_path / "run")

    def stored(threads: int | str | None) -> bool:
        [combination] = expand("demo", args, tmp_path / "sweep", threads)
        return combination.stage1_stored

    assert stored(1) and stored(ANY_THREADS)
    assert not stored(2) and not stored(None)  # another count; a GPU's key has none
    (store.folder(key) / WEIGHTS_FILE).unlink()  # damaged: warned of where a job would load it
    with caplog.at_level(logging.WARNING):
        assert not stored(2)
    assert "has no" not in caplog.text
    with caplog.at_level(logging.WARNING):
        assert not stored(1)
    assert f"stored stage-1 result {store.folder(key)} has no {WEIGHTS_FILE}" in caplog.text


def test_the_plan_takes_its_jobs_cpu_threads_from_the_launcher(monkeypatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch, "get_num_threads", lambda: 4)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(4)), raising=False)
    basic = OmegaConf.create({"_target_": BASIC_LAUNCHER})
    parallel = OmegaConf.create({"_target_": LocalParallelConf._target_, "n_jobs": 2, "gpus": []})
    elsewhere = OmegaConf.create({"_target_": "hydra_plugins.hydra_submitit_launcher.x"})
    assert [job_cpu_threads(c) for c in (basic, parallel, elsewhere)] == [4, 2, ANY_THREADS]
    monkeypatch.setenv("OMP_NUM_THREADS", "3")  # the user's, every job's
    assert job_cpu_threads(parallel) == 3
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # no CPU count keys stage 1
    assert job_cpu_threads(basic) is None and job_cpu_threads(parallel) is None
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setenv("WORLD_SIZE", "2")  # torchrun: the processes must agree; none keys it
    assert Stage1Key.of(compose_run(*BASE), "a" * 24).cpu_threads is None


def test_the_stored_stage1_folder_is_keyed_by_settings_and_data() -> None:
    cfg = compose_run(*BASE)
    first, edited = Stage1Key.of(cfg, "a" * 24), Stage1Key.of(cfg, "b" * 24)
    assert first.settings_digest() == edited.settings_digest()  # one stage 1 in a sweep's plan
    assert first.digest() != edited.digest()  # but data edited at the same path is not reused
    assert first.digest().startswith(first.settings_digest() + "-")


# --- launchers -----------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(
    "launcher",
    [
        ["hydra/launcher=local_parallel", "hydra.launcher.n_jobs=2", "hydra.launcher.gpus=[]"],
        ["hydra/launcher=submitit_local"],
    ],
    ids=["local_parallel", "submitit_local"],
)
def test_parallel_launchers_run_the_grid_with_one_stage1_training(tmp_path, launcher) -> None:
    if "submitit" in launcher[0]:
        pytest.importorskip("hydra_plugins.hydra_submitit_launcher", reason="extra 'slurm' absent")
    out = sweep(tmp_path, "seed=1", "injection_task=demo_pos", "tuning_mode=full,lora", *launcher)
    assert "sweep: 2 finished, 0 failed, 0 not run" in out
    sweep_dir = tmp_path / "multirun_outputs" / "demo"
    statuses = sorted(m["run/stage1"]["status"] for m in results(sweep_dir).values())
    assert statuses == ["reused", "trained"]  # the jobs ran as separate processes, one trained it
    assert len(list((tmp_path / "cache" / "stage1").glob("*/result.json"))) == 1
    assert (sweep_dir / "results.csv").exists()


# --- W&B -----------------------------------------------------------------------------------------


@pytest.mark.slow
def test_wandb_runs_of_a_sweep_carry_group_job_type_summary_and_stage1_lineage(tmp_path) -> None:
    sweep(tmp_path, "seed=1", "injection_task=demo_pos", "tuning_mode=full,lora",
          "tracker=wandb", "tracker.mode=offline")  # fmt: skip
    sweep_dir = tmp_path / "multirun_outputs" / "demo"
    artifacts = {}
    for name, metrics in results(sweep_dir).items():
        [run_file] = (sweep_dir / name / "wandb").glob("offline-run-*/run-*.wandb")
        records = records_by_kind(run_file)
        [run] = records["run"]
        assert (run.run_group, run.job_type) == ("demo", "injection+target")
        config = wandb_items(run.config.update)
        assert config["choice/tuning_mode"] == metrics["run/choices"]["tuning_mode"]
        assert config["choice/injection_task"] == "demo_pos" and config["seed"] == 1
        logged = {
            item.key or "/".join(item.nested_key) for h in records["history"] for item in h.item
        }
        assert {"injection/eval_token_f1", "target/eval_accuracy", "target/step"} <= logged
        summary: dict[str, Any] = {}
        for update in records["summary"]:
            summary |= wandb_items(update.update)
        assert summary["target/eval_accuracy"] == metrics["target/eval_accuracy"]
        [artifact] = records["artifact"]
        assert (
            artifact.type == "stage1" and artifact.name == f"stage1-{metrics['run/stage1']['key']}"
        )
        artifacts[metrics["run/stage1"]["status"]] = artifact
    # The job that trained stage 1 logs the artifact (output); the one that reused it uses it
    # (input): the same name and content digest, so W&B links both runs to one version.
    assert not artifacts["trained"].use_after_commit and artifacts["reused"].use_after_commit
    assert artifacts["trained"].digest == artifacts["reused"].digest
    assert artifacts["trained"].name == artifacts["reused"].name

    [table_run] = (sweep_dir / "wandb").glob("offline-run-*/run-*.wandb")
    records = records_by_kind(table_run)
    [run] = records["run"]
    assert (run.run_group, run.job_type) == ("demo", "aggregate")
    config = wandb_items(run.config.update)
    assert config["baseline"] == {"injection_task": "none"} and config["sweep"] == "demo"
    logged = {
        tuple(item.nested_key): json.loads(item.value_json)
        for h in records["history"]
        for item in h.item
    }
    assert logged[("results", "_type")] == "table-file" and logged[("results", "nrows")] == 2
    assert logged[("plots/bars", "_type")] == "image-file"
    table = json.loads((table_run.parent / "files" / logged[("results", "path")]).read_text())
    modes = [row[table["columns"].index("tuning_mode")] for row in table["data"]]
    assert sorted(modes) == ["full", "lora"]
    # Run again (nothing to train): the results run is the same W&B run, its old folder gone.
    sweep(tmp_path, "seed=1", "injection_task=demo_pos", "tuning_mode=full,lora",
          "tracker=wandb", "tracker.mode=offline")  # fmt: skip
    [again] = (sweep_dir / "wandb").glob("offline-run-*/run-*.wandb")
    assert again != table_run and again.stem == table_run.stem == f"run-{run.run_id}"
    # `sweep.py aggregate` with another baseline updates that run's table, as the grid logged it.
    record = json.loads((sweep_dir / ".results_run.json").read_text())
    assert record["grid"] == "demo" and record["tracker"]["mode"] == "offline"
    # With --best-of, best.csv is a table of that run too (here the one best mode).
    options = ["--baseline", "tuning_mode=lora", "--best-of", "tuning_mode"]
    done = run_sweep(["aggregate", str(sweep_dir), *options], tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    [third] = (sweep_dir / "wandb").glob("offline-run-*/run-*.wandb")
    assert third != again and third.stem == again.stem
    records = records_by_kind(third)
    [run] = records["run"]
    config = wandb_items(run.config.update)
    assert config["baseline"] == {"tuning_mode": "lora"} and config["best_of"] == ["tuning_mode"]
    logged = {
        tuple(item.nested_key): json.loads(item.value_json)
        for h in records["history"]
        for item in h.item
    }
    assert logged[("best", "_type")] == "table-file" and logged[("best", "nrows")] == 1
    # A forced rerun replaces each job's W&B run; the one in the folder that trained stage 1 logs
    # it as its output again (its stage 1 reused now): the lineage keeps a producer.
    sweep(tmp_path, "seed=1", "injection_task=demo_pos", "tuning_mode=full,lora",
          "tracker=wandb", "tracker.mode=offline", "--force")  # fmt: skip
    outputs = {}
    for name, metrics in results(sweep_dir).items():
        assert metrics["run/stage1"]["status"] == "reused"
        [run_file] = (sweep_dir / name / "wandb").glob("offline-run-*/run-*.wandb")
        [artifact] = records_by_kind(run_file)["artifact"]
        outputs[name] = not artifact.use_after_commit
    trainer = Path(next(iter(results(sweep_dir).values()))["run/stage1"]["trained_by"]).name
    assert outputs == {name: name == trainer for name in outputs} and sum(outputs.values()) == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nogrid"], "error: no grid 'nogrid' in "),
        (
            ["klue_papr"],
            f"error: no grid 'klue_papr' in {sweep_grid.CONF / 'sweep'}; did you mean 'klue_paper'? grids: ",
        ),
        (
            ["demo", "tuning_mode=nosuch", "--dry-run"],
            "error: tuning_mode=nosuch: no such option; options: bitfit, frozen, ",
        ),
        (["demo", "target_task.lr=-1", "--dry-run"], "error: target_task.lr must be > 0, got -1.0"),
        (["aggregate", "nowhere"], "error: "),
        (["aggregate", "somewhere", "--dry-run"], "(no --dry-run, --force or --dir)"),
        # Hydra's error, in one line with the likely fix.
        (["demo", "target_task.lrr=1", "--dry-run"], "did you mean 'target_task.lr'?"),
        (["demo", "seed=1", "--dir", "{file}/sweep"], "cannot use it as the sweep folder"),
        (["demo", "hydra.sweep.dir={file}x", "--dry-run"], "picks the sweep folder with --dir"),
        (
            ["demo", "hydra/sweeper=basic"],
            "error: hydra/sweeper: sweep.py runs a grid with its own",
        ),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, args, message) -> None:
    (tmp_path / "file").write_text("")
    args = [arg.format(file=tmp_path / "file") for arg in args]
    done = run_sweep(args, tmp_path)
    assert done.returncode == 2, done.stderr[-2000:]
    # One line (a first matplotlib import in a fresh home may log its font cache before it).
    assert done.stderr.strip().splitlines()[-1].startswith("error: ") and message in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("argv", [[], ["--dry-run"], ["--dir", "x"]])
def test_no_grid_is_the_one_missing_argument(argv: list[str], capsys) -> None:
    # argparse said "the following arguments are required: grid, overrides" (they are optional)
    with pytest.raises(SystemExit) as stopped:
        sweep_module.parse_args(argv)
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert err.splitlines()[0] == "usage: sweep.py [options] grid [overrides ...]"
    assert err.splitlines()[-1] == "sweep.py: error: the following argument is required: grid"


def test_a_second_sweep_on_a_folder_in_use_stops_at_once(tmp_path) -> None:
    folder = tmp_path / "sweep"
    folder.mkdir()
    with (folder / ".sweep.lock").open("a+") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # as the sweep.py running this folder holds it
        held.write("pid 1 on elsewhere")
        held.flush()
        done = run_sweep(["demo", "seed=1", "model=tiny", "--dir", str(folder)], tmp_path)
    assert done.returncode == 2, done.stderr[-2000:]
    assert f"error: {folder} is in use by another sweep.py (pid 1 on elsewhere)" in done.stderr
    assert [p.name for p in folder.iterdir()] == [".sweep.lock"]  # no job started


def test_a_sweep_folder_that_takes_no_new_file_is_refused_before_any_job(
    tmp_path, monkeypatch
) -> None:
    folder = tmp_path / "sweep"
    folder.mkdir()
    (folder / ".sweep.lock").write_text("")  # touching it works on a read-only (immutable) folder

    def read_only(*args: Any, **kwargs: Any) -> Any:
        raise PermissionError(errno.EPERM, os.strerror(errno.EPERM))

    monkeypatch.setattr(tempfile, "TemporaryFile", read_only)
    with pytest.raises(LayerftError) as caught, sweep_module.sweep_lock(folder):
        pass
    assert str(caught.value) == (
        f"--dir {folder}: cannot use it as the sweep folder (Operation not permitted)"
    )


@pytest.mark.parametrize("step", ["touch", "open"])
def test_a_sweep_starting_as_another_removes_the_folder_it_made_still_runs(
    step: str, tmp_path: Path, monkeypatch
) -> None:
    # Sweep A, refused before its first job, removed the folder it made just after sweep B (a
    # valid grid on the same --dir) had found it there: B was refused, "cannot use it as the
    # sweep folder (No such file or directory)", or could not open its lock file.
    folder = tmp_path / "outputs" / "sweep"
    first = [sweep_module.sweep_lock(folder)]
    first[0].__enter__()
    real = getattr(Path, step)

    def first_ends_now(self: Path, *args: Any, **kwargs: Any) -> Any:
        if first and self.name == ".sweep.lock":
            first.pop().__exit__(None, None, None)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Path, step, first_ends_now)
    with sweep_module.sweep_lock(folder):
        assert not first and (folder / ".sweep.lock").exists()


def test_a_sweep_folder_removed_while_its_lock_is_held_ends_the_lock_quietly(tmp_path) -> None:
    # The lock's tidying listed the folder it had made: FileNotFoundError in place of the sweep's
    # own exit code or error.
    folder = tmp_path / "made"
    with sweep_module.sweep_lock(folder):
        shutil.rmtree(folder)
    assert not folder.exists()


def test_a_refused_sweep_removes_every_folder_a_dotted_dir_made(tmp_path) -> None:
    # `--dir a/../b` made `a` and `b`; a sweep refused before its first job removed `b` alone (its
    # lexical parent `a/..` cannot be removed, and that error ended the tidying).
    with sweep_module.sweep_lock(tmp_path / "a" / "x" / ".." / ".." / "b"):
        assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b"]
    assert list(tmp_path.iterdir()) == []


def test_force_reruns_in_the_job_folders_it_would_skip() -> None:
    args = hydra_args("demo", ["seed=1"], Path("x"), force=True)
    [exclude] = [a for a in args if a.startswith("hydra.job.config.override_dirname.exclude_keys")]
    assert "force_rerun" in exclude and "force_rerun=true" in args


def test_the_sweeper_leaves_out_the_finished_jobs_in_full_batches() -> None:
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from hydra_plugins.layerft_launcher.skipping_sweeper import SkippingSweeper

    overrides = OverridesParser.create().parse_overrides(["a=1,2,3,4", "sweep=demo", "b=x"])
    finished = [["a=1", "b=x"], ["a=3", "b=x"], ["a=5", "b=x"]]  # as sweep.py lists them
    assert SkippingSweeper(max_batch_size=None, finished=finished).split_arguments(
        overrides, None
    ) == [[["a=2", "sweep=demo", "b=x"], ["a=4", "sweep=demo", "b=x"]]]
    assert SkippingSweeper(None, finished=finished).split_arguments(overrides, 1) == [
        [["a=2", "sweep=demo", "b=x"]],
        [["a=4", "sweep=demo", "b=x"]],
    ]
    everything = [[f"a={i}", "b=x"] for i in range(1, 5)]
    assert SkippingSweeper(None, finished=everything).split_arguments(overrides, None) == []


def test_the_sweeper_runs_the_first_of_jobs_with_identical_overrides() -> None:
    # A value repeated in a sweep list (seed=1,1): sweep.py lists the second job as a repeat of
    # the first, with the same overrides; the sweeper left out both, and the config never ran.
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from hydra_plugins.layerft_launcher.skipping_sweeper import SkippingSweeper

    overrides = OverridesParser.create().parse_overrides(["a=1,2,1,1", "b=x,y"])
    jobs = [[f"a={a}", f"b={b}"] for a in (1, 2, 1, 1) for b in "xy"]
    repeats = [["a=1", "b=x"], ["a=1", "b=x"], ["a=1", "b=y"], ["a=1", "b=y"]]
    sweeper = SkippingSweeper(None, repeats=repeats, finished=[["a=2", "b=y"]])
    assert sweeper.left_out(jobs) == [None, None, None, "finished", *["repeat"] * 4]
    assert sweeper.split_arguments(overrides, None) == [[["a=1", "b=x"], ["a=1", "b=y"], ["a=2", "b=x"]]]  # fmt: skip
    # A repeat of another job's overrides (a setting its choices never read) is left out alone.
    other = SkippingSweeper(None, repeats=[["a=2", "b=x"]], blocked=[["a=1", "b=y"]])
    assert other.left_out(jobs[:4]) == [None, "blocked", "repeat", None]
    # Finished on files changed since: the plan said "0 to run", then each was launched to stop.
    stale = SkippingSweeper(None, stale=[["a=2", "b=y"]], finished=[["a=1", "b=x"]])
    assert stale.left_out(jobs[:4]) == ["finished", None, None, "stale"]


@pytest.mark.slow
def test_a_value_repeated_in_a_grid_runs_once_with_a_warning(tmp_path: Path) -> None:
    out = sweep(tmp_path, "seed=1,1", "injection_task=none", "tuning_mode=full")
    assert (
        "the grid lists 1 job(s) more than once (a value repeated in a sweep list), each run "
        "once: injection_task=none,seed=1,tuning_mode=full" in out
    )
    assert "Launching 1 jobs" in out and "sweep: 2 finished, 0 failed, 0 not run" in out
    done = results(tmp_path / "multirun_outputs" / "demo")
    assert list(done) == ["injection_task=none,seed=1,tuning_mode=full"]


@pytest.fixture
def grid_conf(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of conf/ that sweep.py reads in this process, for grid files a test writes."""
    conf = Path(shutil.copytree(sweep_grid.CONF, tmp_path / "conf"))
    for module in (sweep_launch, sweep_grid, sweep_hydra, sweep_tracker):
        monkeypatch.setattr(module, "CONF", conf)
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    return conf


GRID_SHAPE = (
    "bad.yaml: a grid starts with '# @package _global_' and sets hydra.sweeper.params "
    "(key: comma list); see conf/sweep/demo.yaml"
)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "# @package _global_\nhydra:\n  sweeper:\n    params: [seed\n  bad: 1\n",
            "bad.yaml:5:6: not valid YAML (while parsing a flow sequence: expected ',' or ']', "
            "but got ':'); fix the file",
        ),
        ("", GRID_SHAPE),  # an empty file: Hydra's error was "Key 'sweep' not in 'RunConfig'"
        ("hydra:\n  sweeper:\n    params:\n      seed: 1,2\n", GRID_SHAPE),  # no header
        ("# @package _global_\nseed: 1\n", GRID_SHAPE),  # no params
        (  # another sweeper, which sweep.py's own would replace
            "# @package _global_\ndefaults:\n  - override /hydra/sweeper: basic\n"
            "hydra:\n  sweeper:\n    params:\n      seed: 1,2\n",
            "bad.yaml: hydra/sweeper: sweep.py runs a grid with its own sweeper (Hydra's basic one, "
            "less the finished jobs); for another sweeper run train.py -m",
        ),
        (  # Hydra's error named neither the file nor the fix: "Value '[0.0001, 5e-05]' of type
            # 'list' could not be converted to Float"
            "# @package _global_\nhydra:\n  sweeper:\n    params:\n      target_task.lr: [1e-4, 5e-5]\n",
            "bad.yaml: hydra.sweeper.params.target_task.lr is a YAML list, which Hydra passes as one "
            "value; give its values as a comma list (target_task.lr: a,b)",
        ),
        (  # a list of lists, meant as two values of a list key, is one value no run can use
            "# @package _global_\nhydra:\n  sweeper:\n    params:\n"
            "      tuning_mode.lora.target_modules: [[query], [query, value]]\n",
            "bad.yaml: hydra.sweeper.params.tuning_mode.lora.target_modules is a YAML list, which "
            "Hydra passes as one value; give its values as a comma list "
            "(tuning_mode.lora.target_modules: a,b)",
        ),
        (  # a mistyped key among its params: Hydra's error named the key, not the file
            "# @package _global_\nhydra:\n  sweeper:\n    params:\n      tuning_mod: full,lora\n",
            "bad.yaml: hydra.sweeper.params: unknown config key 'tuning_mod'; did you mean "
            "'tuning_mode'?",
        ),
        (  # a group's option given as a value: Hydra said "Merge error: str is not a subclass
            # of ModelConfig. value: tiny full_key: object_type=RunConfig"
            "# @package _global_\nmodel: tiny\nhydra:\n  sweeper:\n    params:\n      seed: 1,2\n",
            "bad.yaml: 'tiny' is set as the value of a config group (model); choose the option in "
            "the file's defaults list instead: `- override /model: tiny`",
        ),
        (
            "# @package _global_\ntarget_task: snli\nhydra:\n  sweeper:\n    params:\n      seed: 1\n",
            "bad.yaml: 'snli' is set as the value of a config group (injection_task or target_task); "
            "choose the option in the file's defaults list instead: `- override /<group>: snli`",
        ),
    ],
)
def test_a_bad_grid_file_is_one_line_naming_it_and_exit_2(grid_conf, capsys, text, message) -> None:
    (grid_conf / "sweep" / "bad.yaml").write_text(text)
    assert sweep_module.main(["bad", "--dry-run"]) == 2
    [line] = capsys.readouterr().err.splitlines()
    assert line == f"error: {grid_conf / 'sweep' / 'bad.yaml'}{message[len('bad.yaml') :]}"


def test_a_grid_may_give_a_list_valued_key_one_yaml_list(grid_conf, capsys) -> None:
    # Hydra passes it as one value: right for a key that holds a list (one job per seed here).
    (grid_conf / "sweep" / "lists.yaml").write_text(
        "# @package _global_\nhydra:\n  sweeper:\n    params:\n"
        "      tuning_mode.lora.target_modules: [query, value]\n      seed: 1,2\n"
    )
    assert sweep_module.main(["lists", "model=tiny", "tuning_mode=lora", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "seed=2,tuning_mode.lora.target_modules=['query','value']" in out
    assert out.splitlines()[-1] == "0 done, 2 to run"


def test_a_sweep_whose_every_result_is_on_changed_data_keeps_its_exit_code(
    tmp_path, caplog
) -> None:
    # Its summary lists them ON CHANGED DATA (exit 1); the table step only warns, not exit 2.
    train = tmp_path / "train.jsonl"
    train.write_text("1\n")
    record = {FINGERPRINT_KEY: "f" * 16, "run/choices": {}, "run/seed": 1, "run/overrides": [],
              "run/selection_metric": "target/eval_accuracy", "run/higher_is_better": True,
              "run/data_files": {"target_task.train": file_sha256(train)},
              "run/data_paths": {"target_task.train": str(train)}, "target/eval_accuracy": 0.5}  # fmt: skip
    (tmp_path / "s" / "a").mkdir(parents=True)
    (tmp_path / "s" / "a" / "metrics.json").write_text(json.dumps(record))
    train.write_text("2\n")
    sweep_module.tabled("demo", [], tmp_path / "s", None, None)
    assert "no result to table in" in caplog.text and not (tmp_path / "s" / "results.md").exists()


def test_a_grids_tables_taking_in_results_deeper_in_its_folder_say_so(tmp_path, caplog) -> None:
    # `--dir .` over an older multirun_outputs/demo: results.md mixed both grids without a word.
    record = {"run/seed": 1, "run/overrides": [], "run/selection_metric": "target/eval_accuracy",
              "run/higher_is_better": True, "target/eval_accuracy": 0.5}  # fmt: skip
    for folder, grid in (("a", "klue_paper"), ("multirun_outputs/demo/b", "demo")):
        (tmp_path / "s" / folder).mkdir(parents=True)
        (tmp_path / "s" / folder / "metrics.json").write_text(json.dumps(
            record | {FINGERPRINT_KEY: folder[-1] * 16, "run/choices": {"sweep": grid}}
        ))  # fmt: skip
    sweep_module.tabled("klue_paper", [], tmp_path / "s", None, None)
    assert (
        f"{tmp_path / 's'} tables 1 result(s) from folders deeper inside it too "
        "(multirun_outputs/demo/b): no jobs of this grid; give klue_paper a --dir of its own to "
        "table it alone" in caplog.text
    )
    caplog.clear()
    shutil.rmtree(tmp_path / "s" / "a")  # the other grid's alone: still said
    sweep_module.tabled("klue_paper", [], tmp_path / "s", None, None)
    assert "1 result(s) from folders deeper inside it too" in caplog.text
    caplog.clear()
    (tmp_path / "s" / "a").mkdir()
    (tmp_path / "s" / "a" / "metrics.json").write_text(json.dumps(
        record | {FINGERPRINT_KEY: "a" * 16, "run/choices": {"sweep": "klue_paper"}}
    ))  # fmt: skip
    shutil.rmtree(tmp_path / "s" / "multirun_outputs")
    sweep_module.tabled("klue_paper", [], tmp_path / "s", None, None)
    assert "other grids" not in caplog.text and (tmp_path / "s" / "results.md").exists()


def test_dry_run_marks_a_combination_whose_folder_holds_another_configs_result(
    tmp_path, capsys
) -> None:
    # An option's YAML edited since the grid ran: the same folder, another fingerprint. Its job
    # refuses to overwrite that result (--force too); the plan says so instead of "todo".
    jobs = [Combination([], name * 16, None, f"seed={name}") for name in "12"]
    (tmp_path / "seed=1").mkdir()
    record = {FINGERPRINT_KEY: "f" * 16, RESULTS_VERSION_KEY: RESULTS_VERSION}
    (tmp_path / "seed=1" / "metrics.json").write_text(json.dumps(record))
    for force in (False, True):
        sweep_summary.print_plan(jobs, sweep_status.status(jobs, tmp_path), force)
        lines = capsys.readouterr().out.splitlines()
        assert (
            lines[1] == "  [blocked: its folder holds another config's result] seed=1  (no stage 1)"
        )
        assert lines[2] == "  [todo] seed=2  (no stage 1)"
        assert lines[3].startswith("0 done, 1 to run")  # the blocked job only stops
        assert lines[-1].startswith(
            "1 blocked: the job folder holds the result of another config (a setting given once "
            "on the command line, which job folder names leave out, an option's YAML edited "
            "since, or a schema key added to layerft without its LATER_KEYS line), which is never "
            "overwritten, --force or not"
        )
        assert lines[-1].endswith(f"folders to redo them ({tmp_path / 'seed=1'})")
    # A damaged metrics.json is set aside and the job redone: not blocked.
    (tmp_path / "seed=1" / "metrics.json").write_text('{"run/config_fing')
    sweep_summary.print_plan(jobs, sweep_status.status(jobs, tmp_path), False)
    assert "blocked" not in capsys.readouterr().out


def test_a_blocked_job_whose_repeat_runs_is_not_counted_twice_in_the_plan(tmp_path, capsys) -> None:
    # One config in two folders, the first holding another config's result: the second runs
    # and serves both. The plan said "0 to run".
    jobs = [Combination([], "a" * 16, None, f"seed={name}") for name in "12"]
    (tmp_path / "seed=1").mkdir()
    record = {FINGERPRINT_KEY: "f" * 16, RESULTS_VERSION_KEY: RESULTS_VERSION}
    (tmp_path / "seed=1" / "metrics.json").write_text(json.dumps(record))
    sweep_summary.print_plan(jobs, sweep_status.status(jobs, tmp_path), False)
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].startswith("  [blocked: its folder holds another config's result] seed=1")
    assert lines[1].endswith("; the run of seed=2)")
    assert lines[3] == "0 done, 1 to run (1 served by another job's run)"


def test_a_grid_that_sweeps_nothing_runs_in_hydras_default_folder() -> None:
    # Its label says "(defaults)"; its folder, where a blocked result would sit, is "default".
    combination = Combination([], "f" * 16, None, "(defaults)")
    assert sweep_grid.job_folder(combination) == sweep_grid.job_dirname("") == "default"
    assert sweep_grid.job_folder(Combination([], "f" * 16, None, "seed=1")) == "seed=1"


def test_a_sweep_whose_every_job_failed_writes_its_failures(tmp_path: Path) -> None:
    # README: failures.csv is written when a job failed; with no result at all nothing was.
    (tmp_path / "a_file").write_text("")
    job = ("seed=1", "tuning_mode=full", "injection_task=none")
    done = run_sweep(["demo", *TINY_GRID, f"cache_dir={tmp_path / 'a_file'}", *job, "--dir", "s"], tmp_path)  # fmt: skip
    assert done.returncode == 1 and "sweep: 0 finished, 1 failed" in done.stdout, done.stderr
    assert "1 job (0 finished, 1 failed)" in (tmp_path / "s" / "results.md").read_text()
    (failure,) = list(csv.DictReader((tmp_path / "s" / "failures.csv").open()))
    assert failure["seed"] == "1" and "a_file" in failure["error"]


def test_a_grid_of_ones_own_folder_runs_from_the_search_path(tmp_path: Path) -> None:
    # A grid in <dir>/sweep/ beside a task of one's own in <dir>/target_task/, outside the repo.
    mine = tmp_path / "mine"
    (mine / "sweep").mkdir(parents=True)
    (mine / "target_task").mkdir()
    task = (sweep_grid.CONF / "target_task" / "demo_sentiment.yaml").read_text()
    (mine / "target_task" / "my_sentiment.yaml").write_text(
        re.sub(r"(?m)^name: .*$", "name: my_sentiment", task)
    )
    (mine / "sweep" / "my_grid.yaml").write_text(
        "# @package _global_\ndefaults:\n  - override /target_task: my_sentiment\n"
        "target_task:\n  max_length: 40\n"
        "hydra:\n  sweeper:\n    params:\n      injection_task: none,demo_pos\n"
    )
    searchpath = f"hydra.searchpath=[file://{mine}]"
    done = run_sweep(["my_grid", searchpath, *TINY_GRID, "--dir", "out"], tmp_path)
    assert done.returncode == 0, done.stderr
    table = (tmp_path / "out" / "results.md").read_text()
    assert "`target_task=my_sentiment`" in table and "2 jobs (2 finished, 0 failed)" in table
    # What the grid file sets itself, which no choice or override names, and the runs read.
    assert "Set by the grid or experiment file in every job: `target_task.max_length=40`." in table
    # A folder without `file://`, as train.py takes it (Hydra reads it as a file path): it had
    # been "no grid 'my_grid' in conf/sweep".
    plain = f"hydra.searchpath=[{mine}]"
    again = run_sweep(["my_grid", plain, *TINY_GRID, "--dir", "out", "--dry-run"], tmp_path)
    assert again.stdout.splitlines()[-1] == "2 done, 0 to run", again.stderr
    unfound = run_sweep(["my_grid", *TINY_GRID, "--dry-run"], tmp_path)
    assert unfound.returncode == 2
    assert unfound.stderr.strip() == (
        f"error: no grid 'my_grid' in {sweep_grid.CONF / 'sweep'}; grids: adapter_study, demo, "
        "klue_paper"
    )
    # A mistyped folder is named as not found (the grid was only "not in" it).
    typo = f"hydra.searchpath=[file://{mine}x]"
    unfound = run_sweep(["my_grid", typo, *TINY_GRID, "--dry-run"], tmp_path)
    assert unfound.returncode == 2
    assert unfound.stderr.strip() == (
        f"error: no grid 'my_grid' in {sweep_grid.CONF / 'sweep'}, {mine}x/sweep ({mine}x: not "
        "found); grids: adapter_study, demo, klue_paper"
    )


def test_the_plan_says_which_of_ones_own_options_a_shipped_one_hides(tmp_path: Path) -> None:
    # train.py warned as each job ran; the plan, and --dry-run, said nothing (a user's review).
    mine = tmp_path / "mine"
    for name in ("target_task/demo_sentiment", "sweep/demo"):
        (mine / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(sweep_grid.CONF / f"{name}.yaml", mine / f"{name}.yaml")
    searchpath = f"hydra.searchpath=[file://{mine}]"
    done = run_sweep(["demo", searchpath, *TINY_GRID, "--dry-run"], tmp_path)
    assert done.returncode == 0, done.stderr
    for name, choice in (("target_task/demo_sentiment", "target_task=demo_sentiment"),
                         ("sweep/demo", "sweep=demo")):  # fmt: skip
        line = (
            f"{mine / name}.yaml is not read: {choice} reads {sweep_grid.CONF / name}.yaml "
            "(earlier on the search path); give yours a name of its own"
        )
        assert done.stderr.count(line) == 1, done.stderr


def test_the_end_of_sweep_report_survives_a_failed_json_removed_meanwhile(
    tmp_path, caplog, monkeypatch
) -> None:
    # The callback lists the failures whose failed.json changed during the sweep; one a concurrent
    # run or a later job removed since was a FileNotFoundError after every job had finished.
    from layerft.sweep_launch import FailedJobs

    monkeypatch.setattr(FailedJobs, "failed", [])  # restored after: train.py reads it
    kept, gone = tmp_path / "a", tmp_path / "b"
    for folder in (kept, gone):
        folder.mkdir()
        (folder / "failed.json").write_text(json.dumps({"run/error": f"ValueError: {folder.name}"}))
    config = OmegaConf.create({"hydra": {"sweep": {"dir": str(tmp_path)}}})
    report = FailedJobs()  # its `before` is empty: both were written during the sweep
    real_stamps = sweep_launch.failure_stamps

    def stamps_then_remove(sweep_dir: Path) -> dict[Path, int]:
        found = real_stamps(sweep_dir)
        (gone / "failed.json").unlink()
        return found

    monkeypatch.setattr(sweep_launch, "failure_stamps", stamps_then_remove)
    with caplog.at_level(logging.ERROR):
        report.on_multirun_end(config)
    assert FailedJobs.failed == [kept, gone]
    assert f"job failed: ValueError: a ({kept / 'failed.json'})" in caplog.messages
    assert (
        f"job failed: failed.json is gone or unreadable ({gone / 'failed.json'})" in caplog.messages
    )
