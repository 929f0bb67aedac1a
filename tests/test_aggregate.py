"""Sweep aggregation on hand-made job folders with known numbers: rows, seeds folded, the paired
baseline difference, failures, errors and the plots."""

from __future__ import annotations

import csv
import json
import logging
import math
import os
import re
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from matplotlib.figure import Figure

from layerft import file_io, plots, run_folder, sweep_baseline
from layerft import sweep as sweep_module
from layerft.aggregate import aggregate
from layerft.errors import LayerftError
from layerft.fingerprint import FINGERPRINT_SCHEME
from layerft.plot_rows import dev_curve
from layerft.plots import curves_figure, draw
from layerft.plots_common import PlotRow
from layerft.plots_heatmap import heatmap_axes, heatmap_figure
from layerft.results import record_failure
from layerft.run_record import RESULTS_VERSION
from layerft.sweep_diffs import format_diff
from layerft.sweep_job import read_job
from layerft.sweep_records import _differ
from layerft.sweep_settings import job_settings
from layerft.sweep_stats import NO_SPREAD, all_failed, paired_t_interval

REPO = Path(__file__).resolve().parents[1]
ACC = "target/eval_accuracy"
CHOICES = {
    "model": "tiny",
    "injection_task": "demo_pos",
    "target_task": "demo_sentiment",
    "layer_split": "lower1",
    "tuning_mode": "full",
    "lr_schedule": "linear",
    "injection_lr_schedule": "linear",
    "tracker": "none",
}
PNG = b"\x89PNG\r\n\x1a\n"


def write_job(
    path: Path,
    seed: int,
    score: float | None = None,
    *,
    overrides: tuple[str, ...] = (),
    metrics: dict[str, float] | None = None,
    error: str | BaseException | None = None,
    metric: str = ACC,
    higher_is_better: bool = True,
    fingerprint: str | None = None,
    config: str | None = "",
    history: list[dict[str, float]] | None = None,
    mtime: float | None = None,
    data: dict[str, Path] | None = None,
    version: int | None = RESULTS_VERSION,
    scheme: int | None = FINGERPRINT_SCHEME,
    unread: tuple[str, ...] | None = None,
    file_settings: dict[str, str] | None = None,
    threads: Any = None,
    device: Any = None,
    **choices: str,
) -> Path:
    """A job folder as a sweep leaves it: metrics.json (or failed.json with `error`: a message, or
    an exception recorded as sweep.py records it) and, if given, history.jsonl. Group choices not
    given are CHOICES'; each given one is also an override. `config`: the seedless fingerprint
    (None: a record written before it existed; by default one per choices and overrides). `data`: `<group>.<split>` -> the data file it read.
    `version`: the results version of the layerft that wrote it (None: before versions were
    recorded); `scheme` its fingerprint scheme (None: before schemes were recorded); `threads` the
    CPU threads it ran at (None: on a GPU, or an older record); `device` what it trained on (None:
    an older record)."""
    path.mkdir(parents=True, exist_ok=True)
    if config == "":
        config = json.dumps([sorted(choices.items()), sorted(overrides)])
    record = {
        "run/config_fingerprint": fingerprint or f"{path}-{seed}",
        "run/choices": CHOICES | choices,
        "run/seed": seed,
        "run/overrides": [f"{k}={v}" for k, v in choices.items()] + [f"seed={seed}", *overrides],
        "run/selection_metric": metric,
        "run/higher_is_better": higher_is_better,
        "run/sweep": "test",
    } | ({} if config is None else {"run/seedless_fingerprint": config})
    if version is not None:
        record["run/results_version"] = version
    if scheme is not None:
        record["run/fingerprint_scheme"] = scheme
    if unread is not None:  # the settings its choices never read (run_record.RunRecord.unread)
        record["run/unread_settings"] = list(unread)
    if file_settings is not None:  # what its grid file set (run_record.RunRecord.file_settings)
        record["run/file_settings"] = file_settings
    if threads is not None:
        record["run/cpu_threads"] = threads
    if device is not None:
        record["run/device"] = device
    if data is not None:
        record["run/data_files"] = {k: file_io.file_sha256(f) for k, f in data.items()}
        record["run/data_paths"] = {k: str(f) for k, f in data.items()}
    file = path / "failed.json"
    if isinstance(error, BaseException):
        record_failure(path, record, error)
    elif error is not None:
        file.write_text(json.dumps(record | {"run/error": error, "run/error_type": "RuntimeError"}))  # fmt: skip
    else:
        values = {"target/train_runtime": 30.0, "target/trainable_params": 1000.0}
        values |= {"target/total_params": 4000.0, "target/eval_loss": 0.5}
        values |= ({} if score is None else {metric: score}) | (metrics or {})
        file = path / "metrics.json"
        file.write_text(json.dumps(values | record))
    if history is not None:
        (path / "history.jsonl").write_text("".join(json.dumps(line) + "\n" for line in history))
    if mtime is not None:
        os.utime(file, (mtime, mtime))
    return path


def write_seeds(root: Path, scores: dict[int, float], **kwargs: Any) -> None:
    """One job per seed under `root/<combination>/<seed>`."""
    name = ",".join(f"{k}={v}" for k, v in sorted(kwargs.items()) if isinstance(v, str)) or "base"
    for seed, score in scores.items():
        write_job(root / name / str(seed), seed, score, **kwargs)


def spread(seed: int) -> float:
    """A per-seed offset of mean 0 over seeds 1-3: differences that vary by seed, as trained
    runs' do (the same difference at every seed gets no verdict)."""
    return 0.01 * (seed - 2)


def row_of(result: Any, **settings: str) -> dict[str, Any]:
    (row,) = [r for r in result.rows if all(r[k] == v for k, v in settings.items())]
    return row


# --- rows, settings, columns --------------------------------------------------------------------


def test_seeds_fold_into_mean_sample_std_and_n(tmp_path: Path) -> None:
    write_seeds(tmp_path, {1: 0.80, 2: 0.82, 3: 0.84}, tuning_mode="full")
    write_seeds(tmp_path, {1: 0.70}, tuning_mode="frozen")
    result = aggregate(tmp_path)
    assert result.varied == ["tuning_mode"]
    assert [r["tuning_mode"] for r in result.rows] == ["frozen", "full"]
    full, frozen = row_of(result, tuning_mode="full"), row_of(result, tuning_mode="frozen")
    assert full[f"{ACC}_mean"] == pytest.approx(0.82)
    assert full[f"{ACC}_std"] == pytest.approx(0.02)  # ddof=1; ddof=0 would be 0.01633
    assert (full[f"{ACC}_n"], full["seeds"], full["failed"]) == (3, "1 2 3", 0)
    assert (frozen[f"{ACC}_mean"], frozen[f"{ACC}_std"], frozen[f"{ACC}_n"]) == (0.70, None, 1)
    markdown = (tmp_path / "results.md").read_text()
    assert "| full | 0.8200 ± 0.0200 (3) |" in markdown
    assert "| frozen | 0.7000 (1) |" in markdown
    with (tmp_path / "results.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == result.columns
    assert float(rows[1][f"{ACC}_std"]) == pytest.approx(0.02)
    assert rows[0][f"{ACC}_std"] == ""  # one seed: no std
    assert not list(tmp_path.glob(".*.tmp")), "a temporary file was left behind"


def test_settings_merge_choices_and_overrides_without_seed_or_neutral_keys() -> None:
    overrides = [
        "model=tiny", "seed=3", "+extra.key=1", "++forced=2", "~trainer.compile", "tracker=none",
        "tracker.project=x", "hydra.run.dir=/x", "cache_dir=/c", "trainer.keep_checkpoints=true",
        "trainer.progress_bar=false", "trainer.dataloader_workers=2",
        "lr_schedule@injection_lr_schedule=cosine", "target_task.lr=1e-4",
    ]  # fmt: skip
    settings = job_settings(CHOICES, overrides)
    assert settings == {
        **{k: v for k, v in CHOICES.items() if k != "tracker"},
        "injection_lr_schedule": "cosine",
        "extra.key": "1",
        "forced": "2",
        "trainer.compile": "(deleted)",
        "target_task.lr": "1e-4",
    }


def test_a_group_override_is_the_same_setting_as_its_choice(tmp_path: Path) -> None:
    write_job(tmp_path / "a", 1, 0.5)  # model=tiny by default
    write_job(tmp_path / "b", 2, 0.7, model="tiny", overrides=("tracker=wandb", "cache_dir=/x"))
    result = aggregate(tmp_path)
    assert len(result.rows) == 1 and result.varied == []
    assert result.rows[0][f"{ACC}_n"] == 2
    assert "| all |" in result.markdown


def test_varied_columns_a_missing_setting_and_numeric_order(tmp_path: Path) -> None:
    for lr in ("1e-4", "5e-5", "2e-5"):
        write_seeds(tmp_path / lr, {1: 0.6}, tuning_mode="lora", overrides=(f"target_task.lr={lr}",))  # fmt: skip
    write_seeds(tmp_path / "default", {1: 0.6}, tuning_mode="full")
    result = aggregate(tmp_path)
    assert result.varied == ["tuning_mode", "target_task.lr"]  # groups first
    assert [(r["tuning_mode"], r["target_task.lr"]) for r in result.rows] == [
        ("full", "-"), ("lora", "2e-5"), ("lora", "5e-5"), ("lora", "1e-4"),
    ]  # fmt: skip
    assert "Same in every job: `model=tiny`" in result.markdown


def test_a_row_notes_the_seeds_whose_classifier_predicts_one_class(tmp_path: Path) -> None:
    # Seed 2's 0.5 is the majority share of a model that predicts one label: not a score of the
    # setting compared. The count is no score column.
    for seed, classes in ((1, 2.0), (2, 1.0), (3, 2.0)):
        one = {
            "target/eval_predicted_classes": classes,
            "injection/eval_predicted_classes": 4 - seed,
        }
        write_job(tmp_path / "lora" / str(seed), seed, 0.5, metrics=one, tuning_mode="lora")
    result = aggregate(tmp_path)
    # a stage-1 tagger's one tag is named as stage 1's: the row's scores are stage 2's
    assert (
        result.rows[0]["notes"]
        == "stage 1 predicts one label on dev: seed 3; predicts one label on dev: seed 2"
    )
    assert not any("predicted_classes" in column for column in result.columns)


def test_a_sweeps_tables_refusing_its_options_are_written_with_the_defaults(
    tmp_path: Path, monkeypatch, capsys
) -> None:
    # A heatmap setting no row varies passes the plan (a group's default choice is no override
    # it knows): the grid had trained, then no table was written, and the old one stayed.
    sweep_dir = tmp_path / "s"
    for seed, mode in ((1, "full"), (2, "full"), (1, "lora"), (2, "lora")):
        write_job(sweep_dir / f"{mode}-{seed}", seed, 0.5 + seed / 10, tuning_mode=mode)
    monkeypatch.setattr(sweep_module, "run_grid", lambda *args: None)  # the jobs above ran
    options = ["--heatmap", "tuning_mode", "lr_schedule"]
    assert (
        sweep_module.main(["demo", "model=tiny", "tracker=none", "--dir", str(sweep_dir), *options])
        == 2
    )
    assert (
        capsys.readouterr()
        .err.strip()
        .endswith(
            "error: heatmap needs two different varied settings, not ['lr_schedule']; varied: "
            "tuning_mode; the tables have the default baseline and heatmap"
        )
    )
    assert "| lora |" in (sweep_dir / "results.md").read_text()


def test_results_md_names_the_keys_the_grid_file_set(tmp_path: Path) -> None:
    # `target_task.max_length: 48` in a grid file: no choice or override names it, and two
    # tables of other values had had one header.
    alike, other = {"target_task.max_length": "48"}, {"target_task.max_length": "48", "a.b": "2"}
    write_seeds(tmp_path, {1: 0.6, 2: 0.7}, tuning_mode="full", file_settings=alike | {"a.b": "1"})
    write_seeds(tmp_path, {1: 0.6}, tuning_mode="lora", file_settings=other)
    markdown = aggregate(tmp_path).markdown
    assert (
        "Set by the grid or experiment file in every job: `target_task.max_length=48`." in markdown
    )
    assert (
        "Set by the grid or experiment file in some jobs, or to other values: `a.b` (1, 2)."
        in markdown
    )
    # One that some jobs' file leaves unset; a record of an older layerft says nothing.
    write_seeds(tmp_path, {2: 0.7}, tuning_mode="lora", file_settings=alike)
    write_seeds(tmp_path / "old", {3: 0.7}, tuning_mode="lora")
    markdown = aggregate(tmp_path).markdown
    assert "in every job that records them: `target_task.max_length=48`." in markdown
    assert "other values: `a.b` (1, 2; not by the file in some)." in markdown
    assert "1 result by an older layerft does not record what their grid" in markdown
    # None set anything: no such line.
    assert "grid or experiment file" not in aggregate(tmp_path / "old").markdown


def test_a_setting_its_run_never_reads_is_no_setting_of_its_row(tmp_path: Path) -> None:
    # tuning_mode.lora.rank=2 on every job of a grid crossing full and lora: the full fine-tuning
    # row has no rank, and one rank wherever it is read is no varied column.
    rank = ("tuning_mode.lora.rank=2",)
    write_seeds(tmp_path, {1: 0.6}, tuning_mode="full", overrides=rank, unread=("tuning_mode.lora.",))  # fmt: skip
    write_seeds(tmp_path, {1: 0.7}, tuning_mode="lora", overrides=rank, unread=())
    result = aggregate(tmp_path)
    assert result.varied == ["tuning_mode"] and "tuning_mode.lora.rank" not in result.columns
    assert "Same in every job where it applies: `tuning_mode.lora.rank=2`" in result.markdown
    # The node given whole is no setting of the full row either; the choice of a group whose keys
    # a run never reads (injection_task=none) is.
    settings = job_settings({"injection_task": "none", "tuning_mode": "full"},
                            ["tuning_mode.lora={rank:4}", "injection_task.lr=1"],
                            ("injection_task.", "tuning_mode.lora."))  # fmt: skip
    assert settings == {"injection_task": "none", "tuning_mode": "full"}


def test_the_row_that_never_reads_a_setting_is_the_baseline_of_each_value_of_it(tmp_path) -> None:
    # --baseline tuning_mode=full under LoRA rows of two ranks: the one full fine-tuning row
    # (which has no rank) is the baseline of both.
    for rank, scores in (("2", {1: 0.70, 2: 0.72, 3: 0.74}), ("4", {1: 0.80, 2: 0.81, 3: 0.85})):
        write_seeds(tmp_path / rank, scores, tuning_mode="lora", overrides=(f"tuning_mode.lora.rank={rank}",), unread=())  # fmt: skip
    write_seeds(tmp_path, {1: 0.6, 2: 0.6, 3: 0.6}, tuning_mode="full",
                overrides=("tuning_mode.lora.rank=2",), unread=("tuning_mode.lora.",))  # fmt: skip
    result = aggregate(tmp_path, baseline={"tuning_mode": "full"})
    assert row_of(result, tuning_mode="lora", **{"tuning_mode.lora.rank": "2"})["diff_mean"] == pytest.approx(0.12)  # fmt: skip
    assert row_of(result, tuning_mode="lora", **{"tuning_mode.lora.rank": "4"})["diff_mean"] == pytest.approx(0.22)  # fmt: skip


def test_a_setting_with_one_value_wherever_it_applies_is_not_varied(tmp_path: Path) -> None:
    # injection_task=none rows drop injection_task.*: it was a varied column, in every plot label
    for inj in ("none", "demo_pos"):
        for mode in ("full", "lora"):
            write_seeds(tmp_path, {1: 0.6}, injection_task=inj, tuning_mode=mode, overrides=("injection_task.lr=1e-4",))  # fmt: skip
    write_job(tmp_path / "failed", 2, error="OOM", injection_task="demo_pos", overrides=("injection_task.lr=1e-4",))  # fmt: skip
    result = aggregate(tmp_path)
    assert result.varied == ["injection_task", "tuning_mode"]
    assert "injection_task.lr" not in result.columns
    # ...as do the split and the stage-1 schedule, which a run without stage 1 never reads.
    assert (
        "Same in every job where it applies: `layer_split=lower1`, `injection_lr_schedule=linear`, "
        "`injection_task.lr=1e-4`"
    ) in result.markdown
    assert "| demo_pos | full | 0.6000 (1) |" in result.markdown
    assert [f.settings for f in result.failures] == ["injection_task=demo_pos,tuning_mode=full"]


def test_a_killed_aggregations_temporary_files_are_removed(tmp_path: Path) -> None:
    write_job(tmp_path / "1", 1, 0.8)
    leftover = tmp_path / ".results.md.k3x9.tmp"  # what write_atomic left when killed
    leftover.write_text("")
    os.utime(leftover, (time.time() - 60, time.time() - 60))
    unrelated = tmp_path / ".notes.tmp"
    unrelated.write_text("mine")
    aggregate(tmp_path)
    assert not leftover.exists() and unrelated.exists() and (tmp_path / "results.md").exists()


def test_a_kill_while_the_tables_are_written_leaves_the_earlier_set_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_job(tmp_path / "1", 1, 0.8)
    aggregate(tmp_path)
    before = {p.name: p.read_bytes() for p in tmp_path.glob("results.*")}
    write_job(tmp_path / "2", 2, 0.6)
    synced: list[Path] = []

    def killed(path: Path) -> None:
        synced.append(path)
        if len(synced) == 2:  # Ctrl-C once the first file of the new set is written
            raise KeyboardInterrupt

    monkeypatch.setattr(file_io, "sync_to_disk", killed)
    with pytest.raises(KeyboardInterrupt):
        aggregate(tmp_path)
    assert sorted(before) == ["results.csv", "results.md"]
    assert {p.name: p.read_bytes() for p in tmp_path.glob("results.*")} == before
    assert list(tmp_path.glob(".*.tmp")) == []


def test_metric_columns_runtime_and_parameters(tmp_path: Path) -> None:
    extra = {
        "target/eval_macro_f1": 0.6, "target/eval_runtime": 3.0,
        "target/eval_samples_per_second": 100.0, "target/eval_steps_per_second": 9.0,
        "injection/eval_token_f1": 0.9, "injection/eval_loss": 0.2, "target/peak_rss_mb": 900.0,
        "target/eval_mismatched_accuracy": 0.7, "target/eval_mismatched_loss": 0.6,
        "target/eval_mismatched_runtime": 2.0, "target/eval_mismatched_samples_per_second": 50.0,
        "target/eval_model_preparation_time": 0.01,  # the Trainer's, in an epochs=0 stage
        "target/eval_squad_v2_best_f1_thresh": -1.5,  # a threshold squad_v2 found, no score
    }  # fmt: skip
    write_job(tmp_path / "1", 1, 0.8, metrics=extra | {"injection/train_runtime": 10.0})
    write_job(tmp_path / "2", 2, 0.8, metrics=extra | {"injection/train_runtime": 12.0, "target/train_runtime": 34.0})  # fmt: skip
    result = aggregate(tmp_path, extra_metrics=["target/peak_rss_mb", "target/peak_cuda_mb"])
    summarized = [c[:-5] for c in result.columns if c.endswith("_mean") and "diff_" not in c]
    assert summarized == [ACC, "target/eval_macro_f1", "target/eval_mismatched_accuracy", "injection/eval_token_f1", "target/peak_rss_mb"]  # fmt: skip
    (row,) = result.rows
    assert row["runtime_s"] == pytest.approx((10 + 30 + 12 + 34) / 2)
    assert (row["trainable_params"], row["trainable_share"]) == (1000, 0.25)
    assert "| 43.0 | 1,000 | 25.00% | 1 2 | 0 |" in result.markdown


def test_rows_with_different_selection_metrics_name_theirs(tmp_path: Path) -> None:
    write_seeds(tmp_path, {1: 0.8}, target_task="demo_sentiment")
    write_seeds(tmp_path, {1: 0.3}, target_task="klue_sts", metric="target/eval_pearsonr")
    result = aggregate(tmp_path)
    sts = row_of(result, target_task="klue_sts")
    assert (sts["selection_metric"], sts["selection_mean"]) == ("target/eval_pearsonr", 0.3)
    assert row_of(result, target_task="demo_sentiment")["selection_mean"] == 0.8


# --- the paired baseline difference -------------------------------------------------------------


def test_interval_of_a_constant_difference_collapses_to_it() -> None:
    low, high = paired_t_interval(np.array([0.02, 0.02, 0.02, 0.02]))
    assert low == pytest.approx(0.02, abs=1e-12) and high == pytest.approx(0.02, abs=1e-12)


@pytest.mark.parametrize("n", [2, 3, 5, 30, 31, 50, 200])
def test_interval_is_the_paired_t_interval(n: int) -> None:
    stats = pytest.importorskip("scipy.stats")
    diffs = 0.01 * np.sin(np.arange(1.0, n + 1.0)) + 0.005
    expected = stats.t.interval(0.95, n - 1, loc=diffs.mean(), scale=stats.sem(diffs))
    assert paired_t_interval(diffs) == pytest.approx(expected, abs=1e-5)


def test_verdict_is_wrong_about_one_in_twenty_times_without_a_difference() -> None:
    # A bootstrap interval over 3 pairs is [min, max]: it left out 0 (a verdict) in 25% of null rows
    rng = np.random.default_rng(1)
    for n in (3, 5):
        rows = rng.normal(0.0, 1.0, size=(4000, n))
        verdicts = np.mean([not (low <= 0 <= high) for low, high in map(paired_t_interval, rows)])
        assert 0.035 < verdicts < 0.065


def test_difference_pairs_by_seed_and_ignores_an_unpaired_one(tmp_path: Path) -> None:
    write_seeds(tmp_path, {1: 0.79, 2: 0.85, 3: 0.91, 4: 0.99}, injection_task="demo_pos")
    write_seeds(tmp_path, {1: 0.70, 2: 0.75, 3: 0.80, 5: 0.10}, injection_task="none")
    result = aggregate(tmp_path)
    row = row_of(result, injection_task="demo_pos")
    assert row["diff_n"] == 3
    assert row["diff_mean"] == pytest.approx(0.10)
    half = 4.302653 * 0.01 / np.sqrt(3)  # t(0.975, 2) x sd / sqrt(n) of +0.09 +0.10 +0.11
    assert row["diff_ci_low"] == pytest.approx(0.10 - half, abs=1e-6)
    assert row["diff_ci_high"] == pytest.approx(0.10 + half, abs=1e-6)
    assert row["verdict"] == "better"
    assert row_of(result, injection_task="none")["verdict"] == "baseline"
    assert "| demo_pos | 0.8850 ± 0.0854 (4) | +0.1000 [+0.0752, +0.1248] (3) | better |" in (
        result.markdown
    )


def test_a_seed_run_at_other_cpu_threads_than_its_baselines_says_so(tmp_path: Path) -> None:
    # A sweep resumed at another thread count: its new jobs' numbers hold float sums in another
    # order, and trained their own stage 1; the pair's difference said nothing of it.
    write_seeds(tmp_path, {1: 0.6, 2: 0.5, 3: 0.6}, injection_task="none", threads=2)
    write_seeds(tmp_path, {1: 0.7, 2: 0.6}, injection_task="demo_pos", threads=2)
    write_job(tmp_path / "demo_pos-3", 3, 0.7, injection_task="demo_pos", threads=1)
    write_seeds(tmp_path, {1: 0.6, 2: 0.5, 3: 0.6}, injection_task="none", tuning_mode="lora")
    write_seeds(tmp_path, {1: 0.6, 2: 0.5}, injection_task="demo_pos", tuning_mode="lora")
    write_job(tmp_path / "lora-3", 3, 0.6, injection_task="demo_pos", tuning_mode="lora", threads=1)
    result = aggregate(tmp_path)
    row = row_of(result, injection_task="demo_pos", tuning_mode="full")
    assert row["notes"] == "CPU threads differ from baseline: seed 3 (1 vs 2)"
    assert "| 1 2 3 | 0 | CPU threads differ from baseline: seed 3 (1 vs 2) |" in result.markdown
    # A baseline on a GPU (no count recorded) is no other count: the lora rows have no note.
    assert [r["notes"] for r in result.rows if r is not row] == ["", "", ""]
    for bad in ("1", 0, 2.0):
        write_job(tmp_path / "demo_pos-3", 3, 0.7, injection_task="demo_pos", threads=bad)
        with pytest.raises(LayerftError, match=r"-3/metrics.json: run/cpu_threads is not a posit"):
            read_job(tmp_path / "demo_pos-3")


def test_a_seed_run_on_another_device_than_its_baselines_says_so(tmp_path: Path) -> None:
    # A baseline run on a CPU, a row's seed resumed on a GPU: bf16 kernels, padding to multiples
    # of 8 and float sums differ, and its difference from the baseline is partly the machine's.
    h100, a100 = "NVIDIA H100 80GB HBM3", "NVIDIA A100-SXM4-40GB"
    write_seeds(tmp_path, {1: 0.6, 2: 0.5, 3: 0.6}, injection_task="none", device="cpu", threads=2)
    write_seeds(tmp_path, {1: 0.7, 2: 0.6}, injection_task="demo_pos", device="cpu", threads=2)
    write_job(tmp_path / "demo_pos-3", 3, 0.7, injection_task="demo_pos", device=h100)
    # An older record (no device) is noted against none, its CPU threads though it records (a
    # Mac's MPS run and a torchrun one recorded them too); a GPU model is a device of its own
    lora = {"injection_task": "demo_pos", "tuning_mode": "lora"}
    write_seeds(tmp_path, {1: 0.6, 2: 0.5}, injection_task="none", tuning_mode="lora", device="cpu", threads=2)  # fmt: skip
    write_job(tmp_path / "lora-none-3", 3, 0.6, injection_task="none", tuning_mode="lora", threads=2)  # fmt: skip
    write_job(tmp_path / "lora-1", 1, 0.6, **lora, device=h100)
    write_job(tmp_path / "lora-2", 2, 0.6, **lora, device="cpu", threads=2)
    write_job(tmp_path / "lora-3", 3, 0.6, **lora, device=h100)  # beside the older record
    write_seeds(tmp_path, {1: 0.6, 2: 0.5, 3: 0.6}, injection_task="none", tuning_mode="bitfit", device=a100)  # fmt: skip
    write_seeds(tmp_path, {1: 0.6, 2: 0.5, 3: 0.6}, injection_task="demo_pos", tuning_mode="bitfit", device=h100)  # fmt: skip
    result = aggregate(tmp_path)
    notes = {(r["injection_task"], r["tuning_mode"]): r["notes"] for r in result.rows}
    assert notes[("demo_pos", "full")] == f"device differs from baseline: seed 3 ({h100} vs cpu)"
    assert notes[("demo_pos", "lora")] == f"device differs from baseline: seed 1 ({h100} vs cpu)"
    assert notes[("demo_pos", "bitfit")] == (
        f"device differs from baseline: seed 1 ({h100} vs {a100}), seed 2 ({h100} vs {a100}), "
        f"seed 3 ({h100} vs {a100})"
    )
    assert {notes[("none", mode)] for mode in ("full", "lora", "bitfit")} == {""}
    for bad in ("", " ", 5, None):
        write_job(tmp_path / "demo_pos-3", 3, 0.7, injection_task="demo_pos", device=bad)
        if bad is None:
            continue
        with pytest.raises(LayerftError, match=r"-3/metrics.json: run/device is not a device's"):
            read_job(tmp_path / "demo_pos-3")


def test_a_mean_over_other_seeds_than_its_baselines_says_so(tmp_path: Path) -> None:
    # demo_pos's failed seed 2 was the baseline's weakest: the two means differ by +0.033, the
    # paired difference is 0; nothing said so
    write_seeds(tmp_path, {1: 0.6, 2: 0.5, 3: 0.6}, injection_task="none")
    write_seeds(tmp_path, {1: 0.6, 3: 0.6}, injection_task="demo_pos")
    write_job(tmp_path / "injection_task=demo_pos" / "2", 2, error="OOM", injection_task="demo_pos")
    write_seeds(tmp_path, {1: 0.6, 2: 0.6, 3: 0.6}, injection_task="demo_pos", tuning_mode="lora")
    write_seeds(tmp_path, {1: 0.6, 2: 0.6, 3: 0.6}, injection_task="none", tuning_mode="lora")
    result = aggregate(tmp_path)
    row = row_of(result, injection_task="demo_pos", tuning_mode="full")
    assert row["notes"] == "seeds differ from baseline: 1 3 vs 1 2 3"
    assert "| +0.0000 (2) | too few seeds (n=2) |" in result.markdown
    assert "| 1 3 | 1 | seeds differ from baseline: 1 3 vs 1 2 3 |" in result.markdown
    assert [r["notes"] for r in result.rows if r is not row] == [
        "",
        "",
        "",
    ]  # same seeds, baselines


def test_results_an_older_layerft_computed_are_tabled_with_a_note(tmp_path: Path, caplog) -> None:
    # Reused as they are (never redone unasked), but a reader comparing rows must know that code
    # which changed since produced some of the numbers.
    for seed in (1, 2, 3):
        write_job(tmp_path / f"n{seed}", seed, 0.5, injection_task="none")
        old = None if seed == 1 else 1 if seed == 2 else RESULTS_VERSION
        write_job(tmp_path / f"p{seed}", seed, 0.6, injection_task="demo_pos", version=old)
    result = aggregate(tmp_path)
    assert row_of(result, injection_task="demo_pos")["notes"] == "older layerft: seed 1 2"
    assert row_of(result, injection_task="none")["notes"] == ""
    assert (
        f"2 results by an older layerft (results version 1, now {RESULTS_VERSION}; changed "
        "since: adapters sit after"
    ) in result.markdown
    assert "2 result(s) computed by an older layerft (results version 1" in caplog.text
    for seed in (1, 2):
        write_job(tmp_path / f"p{seed}", seed, 0.6, injection_task="demo_pos")
    result = aggregate(tmp_path)
    assert "older layerft" not in result.markdown


@pytest.mark.parametrize(
    ("scores", "higher_is_better", "verdict"),
    [
        ({1: 0.9, 2: 0.9}, True, "too few seeds (n=2)"),
        ({1: 0.65, 2: 0.76, 3: 0.87}, True, "better"),
        ({1: 0.61, 2: 0.72, 3: 0.83}, True, "no clear difference"),  # same sign, too spread
        ({1: 0.61, 2: 0.68, 3: 0.83}, True, "no clear difference"),
        ({1: 0.55, 2: 0.64, 3: 0.73}, True, "worse"),
        ({1: 0.65, 2: 0.76, 3: 0.87}, False, "worse"),  # a loss-like metric: higher is worse
        ({1: 0.55, 2: 0.64, 3: 0.73}, False, "better"),
        # +0.05 at every seed (as float subtraction gives it): a zero-width interval said "better"
        ({1: 0.65, 2: 0.75, 3: 0.85}, True, NO_SPREAD),
        ({1: 0.60, 2: 0.70, 3: 0.80}, True, NO_SPREAD),  # identical: no interval to say "no clear"
    ],
)
def test_verdicts(
    tmp_path: Path, scores: dict[int, float], higher_is_better: bool, verdict: str
) -> None:
    # diffs +.05 +.06 +.07: mean ± 4.30 · .01/√3 excludes 0; +.01 +.02 +.03 does not
    base = {1: 0.60, 2: 0.70, 3: 0.80}
    write_seeds(tmp_path, base, injection_task="none", higher_is_better=higher_is_better)
    write_seeds(tmp_path, scores, injection_task="demo_pos", higher_is_better=higher_is_better)
    assert row_of(aggregate(tmp_path), injection_task="demo_pos")["verdict"] == verdict


def test_the_same_difference_at_every_seed_gets_no_interval_and_no_verdict(tmp_path) -> None:
    # The seeds did not vary the runs (e.g. an evaluation that no seed enters): no replicates.
    write_seeds(tmp_path, {1: 16 / 32, 2: 17 / 32, 3: 18 / 32}, injection_task="none")
    write_seeds(tmp_path, {1: 17 / 32, 2: 18 / 32, 3: 19 / 32}, injection_task="demo_pos")
    result = aggregate(tmp_path)
    row = row_of(result, injection_task="demo_pos")
    assert (row["diff_ci_low"], row["diff_ci_high"], row["diff_n"]) == (None, None, 3)
    assert f"| +0.0312 (3) | {NO_SPREAD} |" in result.markdown
    assert "[+0.0312, +0.0312]" not in result.markdown


def test_two_records_of_one_run_with_other_scores_warn_which_the_table_keeps(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # A run repeated on a GPU, or a job folder copied: only an INFO line said which one counted.
    older = write_job(tmp_path / "a", 1, 0.70, fingerprint="f1", mtime=1_000)
    newer = write_job(tmp_path / "b", 1, 0.99, fingerprint="f1", mtime=2_000)
    write_job(tmp_path / "c", 2, 0.80, fingerprint="f2")
    with caplog.at_level(logging.WARNING):
        result = aggregate(tmp_path)
    assert f"{older} and {newer} are records of the same run with {ACC} 0.7 and 0.99" in caplog.text
    assert result.rows[0][f"{ACC}_mean"] == pytest.approx((0.99 + 0.80) / 2)
    caplog.clear()
    write_job(tmp_path / "a", 1, 0.99, fingerprint="f1", mtime=1_000)  # the same scores: no warning
    with caplog.at_level(logging.WARNING):
        aggregate(tmp_path)
    assert "records of the same run" not in caplog.text


def test_a_failure_and_the_result_of_one_run_or_two_nan_copies_warn_of_no_other_scores(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # It warned "with <metric> None and 0.8; the table keeps the newer" of a failed attempt (no
    # score) beside the run's result, older than the failure; and NaN != NaN warned of two copies.
    write_job(tmp_path / "a", 1, error="boom", fingerprint="f1", mtime=3_000)
    write_job(tmp_path / "b", 1, 0.8, fingerprint="f1", mtime=1_000)
    write_job(tmp_path / "c", 2, 0.7, fingerprint="f2")
    with caplog.at_level(logging.WARNING):
        result = aggregate(tmp_path)
    assert result.rows[0][f"{ACC}_mean"] == pytest.approx(0.75)
    assert "records of the same run" not in caplog.text
    assert not _differ(math.nan, math.nan) and _differ(0.7, math.nan) and _differ(None, 0.7)


def test_a_tiny_difference_shows_its_digits(tmp_path: Path) -> None:
    # It read "+0.0000 [+0.0000, +0.0000] (3) | better"
    write_seeds(tmp_path, {1: 0.6, 2: 0.7, 3: 0.8}, injection_task="none")
    write_seeds(tmp_path, {1: 0.60003, 2: 0.70004, 3: 0.80005}, injection_task="demo_pos")
    write_seeds(tmp_path, {1: 0.6, 2: 0.7, 3: 0.8}, injection_task="none", tuning_mode="lora")
    write_seeds(tmp_path, {1: 0.6, 2: 0.8, 3: 0.8}, injection_task="demo_pos", tuning_mode="lora")
    markdown = aggregate(tmp_path).markdown
    assert "| +4e-05 [+1.5e-05, +0.0001] (3) | better |" in markdown
    assert "| +0.0333 [-0.1101, +0.1768] (3) | no clear difference |" in markdown  # 4 decimals
    # Each value on its own: one bound near 0 does not cut the others to 2 digits.
    row = {"diff_mean": 0.012345, "diff_ci_low": 0.00002, "diff_ci_high": 0.02467, "diff_n": 3}
    assert format_diff(row) == "+0.0123 [+2e-05, +0.0247] (3)"


def test_every_other_score_gets_its_paired_difference_too(tmp_path: Path) -> None:
    # KLUE-STS selects on Pearson r; the paper reports its F1, which had no difference at all.
    pearson, f1 = "target/eval_pearsonr", "target/eval_f1"
    for task, scores in (("none", (0.80, 0.70, 0.75)), ("demo_pos", (0.84, 0.75, 0.78))):
        for seed, (score, up) in enumerate(zip(scores, (0.04, 0.05, 0.03), strict=True), 1):
            extra = {f1: 0.7, ACC: 0.5}
            if task != "none":
                extra = {f1: score - 0.1, ACC: 0.5 + up, "injection/eval_token_accuracy": 0.9}
            write_job(tmp_path / task / str(seed), seed, score, metrics=extra, metric=pearson,
                      injection_task=task)  # fmt: skip
    result = aggregate(tmp_path)
    row = row_of(result, injection_task="demo_pos")
    diffs = np.array([0.74, 0.65, 0.68]) - 0.7
    assert row[f"{f1}_diff_mean"] == pytest.approx(diffs.mean())
    assert (row[f"{f1}_diff_ci_low"], row[f"{f1}_diff_ci_high"]) == pytest.approx(
        paired_t_interval(diffs)
    )
    assert row[f"{f1}_verdict"] == "no clear difference" and row[f"{f1}_diff_n"] == 3
    assert row[f"{ACC}_verdict"] == "better"  # accuracy went up by 0.04, 0.05, 0.03
    assert row["injection/eval_token_accuracy_verdict"] == "not in both"
    table = result.markdown.split("## vs baseline on the other scores")[1]
    assert f"| injection_task | {ACC} | {f1} |" in table  # no column for the stage-1 score
    assert "| demo_pos | +0.0400 [+0.0152, +0.0648] (3) better | -0.0100 [-0.1238, +0.1038] (3) no clear difference |" in table  # fmt: skip
    assert "| none | baseline | baseline |" in table
    # Rows of different selection metrics: a row's own is compared above, and a score neither
    # row reports is no cell ('not in both' had said one row had it).
    write_job(tmp_path / "nli" / "none", 1, 0.7, injection_task="none", target_task="nli")
    write_job(tmp_path / "nli" / "pos", 1, 0.8, injection_task="demo_pos", target_task="nli")
    nli = row_of(aggregate(tmp_path), injection_task="demo_pos", target_task="nli")
    assert (nli[f"{ACC}_verdict"], nli[f"{f1}_verdict"], nli[f"{pearson}_verdict"]) == ("", "", "")


def test_a_row_whose_best_checkpoint_is_the_model_as_given_says_so(tmp_path: Path) -> None:
    # Two KLUE-STS rows that never trained (best at step 1, lr 0) read +0.0026 and nothing else.
    for seed in (1, 2, 3):
        flags = {"target/best_untrained": float(seed != 3), "injection/best_untrained": 0.0}
        write_job(
            tmp_path / "pos" / str(seed), seed, 0.31, metrics=flags, injection_task="demo_pos"
        )
        write_job(tmp_path / "none" / str(seed), seed, 0.30, injection_task="none")
    result = aggregate(tmp_path)
    assert row_of(result, injection_task="demo_pos")["notes"] == (
        "best is the model as given (step 1, lr 0): seed 1 2"
    )
    assert row_of(result, injection_task="none")["notes"] == ""


def test_another_score_is_judged_by_its_own_direction_not_the_rows(tmp_path: Path) -> None:
    # Rows selected by a lower-is-better score (a user's metric): accuracy rising is still better.
    loss = "target/eval_loss"
    for task, losses in (("none", (0.60, 0.50, 0.55)), ("demo_pos", (0.50, 0.41, 0.44))):
        for seed, (value, up) in enumerate(zip(losses, (0.04, 0.05, 0.03), strict=True), 1):
            accuracy = 0.5 + (up if task != "none" else 0.0)
            write_job(tmp_path / task / str(seed), seed, value, metrics={ACC: accuracy},
                      metric=loss, higher_is_better=False, injection_task=task)  # fmt: skip
    row = row_of(aggregate(tmp_path), injection_task="demo_pos")
    assert row["verdict"] == "better"  # the loss went down
    assert row[f"{ACC}_verdict"] == "better"  # and accuracy up: not "worse" by the loss's rule


def test_no_baseline_when_its_combination_is_missing(tmp_path: Path) -> None:
    write_seeds(tmp_path, {1: 0.8, 2: 0.8, 3: 0.8}, injection_task="demo_pos", tuning_mode="full")
    write_seeds(tmp_path, {1: 0.7, 2: 0.7, 3: 0.7}, injection_task="none", tuning_mode="lora")
    result = aggregate(tmp_path)
    row = row_of(result, tuning_mode="full")
    assert (row["verdict"], row["diff_mean"], row["diff_n"]) == ("no baseline", None, None)


def test_stage1_settings_varied_beside_none_share_its_row_as_baseline(tmp_path: Path) -> None:
    # `injection_task.lr=1e-4,5e-5` beside injection_task=none: the none jobs are one config (a
    # disabled stage 1 leaves it), so the sweep runs one of them, with either rate's override.
    write_seeds(tmp_path, {1: 0.6, 2: 0.7, 3: 0.8}, injection_task="none", overrides=("injection_task.lr=1e-4",))  # fmt: skip
    for lr, shift in (("1e-4", 0.1), ("5e-5", -0.1)):
        scores = {s: base + shift + spread(s) for s, base in ((1, 0.6), (2, 0.7), (3, 0.8))}
        write_seeds(tmp_path / lr, scores, injection_task="demo_pos", overrides=(f"injection_task.lr={lr}",))  # fmt: skip
    result = aggregate(tmp_path)
    assert row_of(result, injection_task="none")["injection_task.lr"] == "-"  # it has none
    for lr, verdict, diff in (("1e-4", "better", 0.1), ("5e-5", "worse", -0.1)):
        row = row_of(result, injection_task="demo_pos", **{"injection_task.lr": lr})
        assert (row["verdict"], row["diff_n"]) == (verdict, 3)
        assert row["diff_mean"] == pytest.approx(diff)


def test_a_given_baseline_replaces_those_settings(tmp_path: Path) -> None:
    for mode, shift in (("full", 0.0), ("lora", -0.1), ("bitfit", -0.1)):
        for split in ("lower1", "all"):
            scores = {s: 0.8 + shift + 0.01 * s + (spread(s) if shift else 0) for s in (1, 2, 3)}
            write_seeds(tmp_path, scores, tuning_mode=mode, layer_split=split)
    result = aggregate(tmp_path, baseline={"tuning_mode": "full"})
    for row in result.rows:
        expected = "baseline" if row["tuning_mode"] == "full" else "worse"
        assert row["verdict"] == expected
        if expected == "worse":
            assert row["diff_mean"] == pytest.approx(-0.1)
    with pytest.raises(LayerftError, match="baseline setting tuning_mod is in no job"):
        aggregate(tmp_path, baseline={"tuning_mod": "full"})


def test_rows_without_stage1_pair_with_a_stage1_baseline_that_differs_only_in_stage1(
    tmp_path: Path,
) -> None:
    # `--baseline injection_task=demo_pos`: a none row has no split to match, and every row read
    # "no baseline" (the demo_pos row "baseline of no row"), without a word.
    for mode, shift in (("full", 0.0), ("lora", -0.2)):
        write_seeds(tmp_path / "s1", {s: 0.8 + shift + 0.01 * s for s in (1, 2, 3)}, injection_task="demo_pos", tuning_mode=mode, layer_split="lower1")  # fmt: skip
        write_seeds(tmp_path / "none", {s: 0.7 + shift + 0.01 * s + spread(s) for s in (1, 2, 3)}, injection_task="none", tuning_mode=mode)  # fmt: skip
    result = aggregate(tmp_path, baseline={"injection_task": "demo_pos"})
    for mode in ("full", "lora"):
        assert row_of(result, injection_task="demo_pos", tuning_mode=mode)["verdict"] == "baseline"
        row = row_of(result, injection_task="none", tuning_mode=mode)
        assert (row["verdict"], row["diff_n"]) == ("worse", 3)
        assert row["diff_mean"] == pytest.approx(-0.1)
    # Two splits of stage 1: which is the none row's baseline is not said; none is taken.
    write_seeds(tmp_path / "all", {1: 0.9, 2: 0.9, 3: 0.9}, injection_task="demo_pos", tuning_mode="full", layer_split="all")  # fmt: skip
    result = aggregate(tmp_path, baseline={"injection_task": "demo_pos"})
    assert row_of(result, injection_task="none", tuning_mode="full")["verdict"] == "no baseline"
    given = aggregate(tmp_path, baseline={"injection_task": "demo_pos", "layer_split": "all"})
    row = row_of(given, injection_task="none", tuning_mode="full")
    assert (row["verdict"], row["diff_mean"]) == ("worse", pytest.approx(0.72 - 0.9))


def test_a_given_baseline_value_no_job_has_is_refused_naming_the_values(tmp_path: Path) -> None:
    # A typo in the value (LoRA for lora, 1e-4 for 2e-4) left every row without a baseline, silently
    for mode in ("full", "lora"):
        write_seeds(tmp_path, {1: 0.8}, tuning_mode=mode, overrides=("target_task.lr=2e-4",))
    with pytest.raises(LayerftError) as caught:
        aggregate(tmp_path, baseline={"tuning_mode": "LoRA"})
    assert str(caught.value) == (
        "baseline tuning_mode=LoRA is in no job; give one of the values the jobs have: full, lora"
    )
    with pytest.raises(LayerftError, match="lr=1e-4 is in no job; .* the jobs have: 2e-4$"):
        aggregate(tmp_path, baseline={"target_task.lr": "1e-4"})
    given = aggregate(tmp_path, baseline={"target_task.lr": "0.0002"})  # the same value: accepted
    assert row_of(given, tuning_mode="lora")["verdict"] == "baseline of no row"  # each its own


def test_a_baseline_of_a_setting_left_unset_is_chosen_as_key_dash(tmp_path: Path) -> None:
    # An lr grid extended after a run at the task's own lr: that run is the row without lr (its
    # spelled-out repeat was skipped as finished), which `target_task.lr=5e-5` cannot name.
    write_seeds(tmp_path / "default", {1: 0.80, 2: 0.82, 3: 0.84}, injection_task="none")
    write_seeds(tmp_path / "lr", {1: 0.70, 2: 0.71, 3: 0.75}, injection_task="none",
                overrides=("target_task.lr=1e-3",))  # fmt: skip
    with pytest.raises(LayerftError) as caught:
        aggregate(tmp_path, baseline={"target_task.lr": "5e-5"})
    assert str(caught.value) == (
        "baseline target_task.lr=5e-5 is in no job; give one of the values the jobs have: 1e-3, "
        "or - (not set: its options' value)"
    )
    result = aggregate(tmp_path, baseline={"target_task.lr": "-"})
    assert row_of(result, **{"target_task.lr": "-"})["verdict"] == "baseline"
    lower = row_of(result, **{"target_task.lr": "1e-3"})
    assert (lower["diff_mean"], lower["diff_n"]) == (pytest.approx(-0.1), 3)
    assert lower["verdict"] == "worse"


def test_results_md_says_what_a_baseline_of_key_dash_means(tmp_path: Path) -> None:
    # `--baseline target_task.lr=5e-5`, the task's own, names the row leaving lr unset: the header
    # read `same settings but target_task.lr=-`, a value the user never gave, with no word on it.
    write_seeds(tmp_path / "default", {1: 0.80, 2: 0.82, 3: 0.84}, injection_task="none")
    with_config(tmp_path / "default", "5.0e-05")
    write_seeds(tmp_path / "lr", {1: 0.70, 2: 0.71, 3: 0.75}, injection_task="none",
                overrides=("target_task.lr=1e-3",))  # fmt: skip
    result = aggregate(tmp_path, baseline={"target_task.lr": "5e-5"})
    assert result.baseline == {"target_task.lr": "-"}
    assert row_of(result, **{"target_task.lr": "1e-3"})["diff_n"] == 3
    assert (
        "(same settings but target_task.lr=- (not set: its options' value)) on the selection "
        "metric" in result.markdown
    )


def with_config(root: Path, lr: str) -> None:
    """Each job folder under `root` with the composed config Hydra writes (its rate at `lr`)."""
    for metrics in root.rglob("metrics.json"):
        (metrics.parent / ".hydra").mkdir(exist_ok=True)
        (metrics.parent / ".hydra" / "config.yaml").write_text(f"target_task:\n  lr: {lr}\n")


@pytest.mark.parametrize("spelled", ["stage1", "baseline"])
def test_a_row_pairs_with_a_baseline_that_leaves_its_setting_at_the_same_value(
    tmp_path: Path, spelled: str
) -> None:
    # A grid extended later: one side spells out the task's own rate (5e-5), the other leaves it.
    scores = {1: 0.60, 2: 0.70, 3: 0.80}
    rows = {"none": scores, "demo_pos": {s: v + 0.05 + spread(s) for s, v in scores.items()}}
    spells = {"none": spelled == "baseline", "demo_pos": spelled == "stage1"}
    for task, values in rows.items():
        overrides = (f"{LR}=0.00005",) if spells[task] else ()
        write_seeds(tmp_path / task, values, injection_task=task, overrides=overrides)
    with_config(tmp_path, "5.0e-05")
    write_seeds(tmp_path / "other", scores, injection_task="demo_pos", overrides=(f"{LR}=1e-4",))
    with_config(tmp_path / "other", "0.0001")
    result = aggregate(tmp_path)
    row = row_of(result, injection_task="demo_pos", **{LR: "5e-5" if spells["demo_pos"] else "-"})
    assert (row["verdict"], row["diff_n"], row["diff_mean"]) == ("better", 3, pytest.approx(0.05))
    assert row_of(result, injection_task="none")["verdict"] == "baseline"
    assert row_of(result, **{LR: "1e-4"})["verdict"] == "no baseline"  # none ran at 1e-4
    # A config holding another value, or none to read: no pair.
    with_config(tmp_path / ("none" if spelled == "stage1" else "demo_pos"), "3e-05")
    assert row_of(aggregate(tmp_path), **{LR: "1e-4"})["verdict"] == "no baseline"
    assert (
        row_of(aggregate(tmp_path), injection_task="demo_pos", **{LR: row[LR]})["verdict"]
        == "no baseline"
    )
    for config in tmp_path.rglob("config.yaml"):
        config.unlink()
    assert (
        row_of(aggregate(tmp_path), injection_task="demo_pos", **{LR: row[LR]})["verdict"]
        == "no baseline"
    )


def test_a_row_pairs_with_a_baseline_on_a_list_valued_setting(tmp_path: Path) -> None:
    # --baseline tuning_mode=lora beside a LoRA row that spells out its target modules: the full
    # fine-tuning row (which never reads them; its config holds the same list) pairs with it.
    # A list had read as no value, leaving "no baseline" and "baseline of no row".
    modules = "tuning_mode.lora.target_modules=[query,value]"
    write_seeds(tmp_path / "lora", {1: 0.6, 2: 0.7, 3: 0.8}, tuning_mode="lora",
                overrides=(modules,), unread=())  # fmt: skip
    write_seeds(tmp_path / "full", {1: 0.7, 2: 0.8, 3: 0.9}, tuning_mode="full",
                overrides=(modules,), unread=("tuning_mode.lora.",))  # fmt: skip
    for metrics in (tmp_path / "full").rglob("metrics.json"):
        (metrics.parent / ".hydra").mkdir()
        (metrics.parent / ".hydra" / "config.yaml").write_text(
            "tuning_mode:\n  lora:\n    target_modules: [query, value]\n"
        )
    result = aggregate(tmp_path, baseline={"tuning_mode": "lora"})
    row = row_of(result, tuning_mode="full")
    assert (row["diff_n"], row["diff_mean"]) == (3, pytest.approx(0.1))
    assert row_of(result, tuning_mode="lora")["verdict"] == "baseline"


def test_a_job_folders_config_is_read_once_per_table(tmp_path: Path, monkeypatch) -> None:
    scores = {1: 0.60, 2: 0.70, 3: 0.80}
    write_seeds(tmp_path / "none", scores, injection_task="none")
    for lr in ("1e-4", "2e-4", "3e-4"):  # none pairs exactly; each looks at the baseline's configs
        write_seeds(tmp_path / lr, scores, injection_task="demo_pos", overrides=(f"{LR}={lr}",))
    with_config(tmp_path, "5.0e-05")
    reads: list[Path] = []
    read = sweep_baseline._config
    monkeypatch.setattr(sweep_baseline, "_config", lambda d: reads.append(d) or read(d))
    aggregate(tmp_path)
    assert reads and len(reads) == len(set(reads))


def test_a_baseline_row_no_row_compares_with_says_so(tmp_path: Path) -> None:
    for lr in ("1e-3", "3e-3"):
        write_seeds(tmp_path / lr, {1: 0.6}, injection_task="none", overrides=(f"{LR}={lr}",))
    write_seeds(tmp_path, {1: 0.7}, injection_task="demo_pos", overrides=(f"{LR}=1e-3",))
    result = aggregate(tmp_path)
    assert row_of(result, injection_task="none", **{LR: "1e-3"})["verdict"] == "baseline"
    assert row_of(result, injection_task="none", **{LR: "3e-3"})["verdict"] == "baseline of no row"


# --- numbers written two ways ----------------------------------------------------------------------

LR = "target_task.lr"


def test_one_number_written_two_ways_is_one_setting(tmp_path: Path) -> None:
    write_job(tmp_path / "a", 1, 0.6, overrides=(f"{LR}=0.0001",))
    write_job(tmp_path / "b", 2, 0.8, overrides=(f"{LR}=1e-4",))
    result = aggregate(tmp_path)
    assert result.varied == []  # not a varied setting: both jobs ran with the same rate
    (row,) = result.rows
    assert (row[f"{ACC}_n"], row[f"{ACC}_mean"]) == (2, pytest.approx(0.7))
    assert f"`{LR}=1e-4`" in result.markdown  # the shortest spelling the jobs use


def test_a_row_shows_one_spelling_whatever_the_job_order(tmp_path: Path) -> None:
    tables = []
    for tree, spellings in (
        ("x", ("1e-4", "0.0001", "1.0e-4")),
        ("y", ("1.0e-4", "0.0001", "1e-4")),
    ):
        for seed, lr in enumerate(spellings, 1):  # folders a, b, c: another order in each tree
            write_job(tmp_path / tree / "abc"[seed - 1], seed, 0.7, overrides=(f"{LR}={lr}",))
        write_job(tmp_path / tree / "d", 1, 0.5, overrides=(f"{LR}=2e-5",))
        result = aggregate(tmp_path / tree)
        assert [(r[LR], r[f"{ACC}_n"]) for r in result.rows] == [("2e-5", 1), ("1e-4", 3)]
        tables.append((tmp_path / tree / "results.csv").read_text())
    assert tables[0] == tables[1]


def test_a_baseline_written_the_other_way_pairs(tmp_path: Path) -> None:
    scores = {1: 0.60, 2: 0.70, 3: 0.80}
    write_seeds(tmp_path / "a", scores, injection_task="none", overrides=(f"{LR}=0.0001",))
    write_seeds(tmp_path / "b", scores, injection_task="none", overrides=(f"{LR}=2e-5",))
    demo = {s: v + 0.05 + spread(s) for s, v in scores.items()}
    write_seeds(tmp_path / "c", demo, injection_task="demo_pos", overrides=(f"{LR}=1e-4",))
    default = aggregate(tmp_path)  # injection_task=none of the same rate, written 0.0001
    row = row_of(default, injection_task="demo_pos")
    assert (row[LR], row["verdict"], row["diff_n"]) == ("1e-4", "better", 3)
    assert row["diff_mean"] == pytest.approx(0.05)
    given = aggregate(tmp_path, baseline={LR: "0.0001"})
    assert row_of(given, injection_task="none", **{LR: "2e-5"})["diff_n"] == 3
    assert row_of(given, injection_task="none", **{LR: "1e-4"})["verdict"] == "baseline"


@pytest.mark.parametrize(
    ("first", "second", "rows"),
    [
        ("1e-4", "0.0001", 1),
        ("1E-4", "1.0e-4", 1),
        ("3", "3.0", 1),  # an int for a float field: OmegaConf holds 3.0 for both
        ("1_000", "1000", 1),
        (".5", "0.5", 1),
        ("lower_half", "lower-half", 2),  # names are text
        ("'1e-4'", "1e-4", 2),  # a quoted number is a string
        ("true", "1", 2),  # a boolean is no number
        ("null", "0", 2),
        ("[1]", "1", 2),
        ("0x10", "16", 2),  # the grammar reads no hex: `0x10` is a name
        ("1e-4", "2e-4", 2),
    ],
)
def test_which_spellings_are_one_value(tmp_path: Path, first: str, second: str, rows: int) -> None:
    write_job(tmp_path / "a", 1, 0.6, overrides=(f"x={first}",))
    write_job(tmp_path / "b", 1, 0.8, overrides=(f"x={second}",))  # the same seed: one run if equal
    assert len(aggregate(tmp_path).rows) == rows


def test_a_seed_that_spells_out_a_default_joins_the_seeds_of_its_config(tmp_path: Path) -> None:
    """`sweep.py demo` then `sweep.py demo target_task.lr=5e-5 seed=3`, 5e-5 being the task's lr:
    one config (seedless fingerprint), so one row of three seeds, still paired with its baseline
    (whose records never name the lr), not a row of its own as if the lr differed."""
    for seed, score in ((1, 0.6), (2, 0.7)):
        write_job(tmp_path / f"none{seed}", seed, score - 0.1, config="base", injection_task="none")
        write_job(tmp_path / f"pos{seed}", seed, score, config="c")
    write_job(tmp_path / "pos3", 3, 0.8, overrides=("target_task.lr=5e-5",), config="c")
    write_job(tmp_path / "lr", 1, 0.5, overrides=("target_task.lr=1e-3",), config="d")
    result = aggregate(tmp_path)
    assert result.varied == ["injection_task", "target_task.lr"]
    row = row_of(result, injection_task="demo_pos", **{"target_task.lr": "-"})
    assert (row[f"{ACC}_n"], row["seeds"]) == (3, "1 2 3")
    assert row[f"{ACC}_mean"] == pytest.approx(0.7)
    assert (row["diff_n"], row["diff_mean"]) == (2, pytest.approx(0.1))  # seeds 1 and 2 paired
    assert row_of(result, **{"target_task.lr": "1e-3"})[f"{ACC}_n"] == 1
    assert len(result.rows) == 3


def test_settings_one_record_of_a_config_lacks_name_no_row(tmp_path: Path) -> None:
    """The label holds what every record of its config spells: a record-choice key (outside the
    fingerprint) set in one run is not written on the other's row as if it had it too."""
    write_job(tmp_path / "a", 1, 0.6, overrides=("target_task.drop_blank_texts=true",), config="c")
    write_job(tmp_path / "b", 2, 0.7, config="c")
    result = aggregate(tmp_path)
    (row,) = result.rows
    assert row[f"{ACC}_n"] == 2
    assert "drop_blank_texts" not in result.markdown


def test_results_md_says_what_a_dash_in_a_setting_column_means(tmp_path: Path) -> None:
    write_job(tmp_path / "1", 1, 0.6)
    write_job(tmp_path / "2", 1, 0.7, overrides=("target_task.max_length=64",))
    result = aggregate(tmp_path)
    assert sorted(r["target_task.max_length"] for r in result.rows) == ["-", "64"]
    assert "`-` in a setting column: not set on that row's command lines" in result.markdown


def test_two_configs_with_one_row_and_seed_keep_one_and_warn(tmp_path: Path, caplog) -> None:
    # `1` and `1.0` on a str field (model.revision) resolve to "1" and "1.0": two fingerprints.
    write_job(tmp_path / "a", 1, 0.6, overrides=("model.revision=1",), mtime=1_000_000)
    write_job(tmp_path / "b", 1, 0.8, overrides=("model.revision=1.0",), mtime=2_000_000)
    result = aggregate(tmp_path)
    (row,) = result.rows
    assert (row[f"{ACC}_mean"], row[f"{ACC}_n"]) == (0.8, 1)
    (warning,) = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert f"{tmp_path / 'a'} and {tmp_path / 'b'}" in warning and "different configs" in warning
    # results.md counts and lists the record it left out (it said "1 job", as if a had not run)
    assert "2 jobs (1 finished, 0 failed, 1 replaced by another config's)" in result.markdown
    assert "## Replaced by another config (left out of the table)" in result.markdown
    assert result.markdown.rstrip().endswith("| a | all | 1 | b |")  # b: the one row


def test_seeds_that_ran_different_configs_are_marked_and_logged(tmp_path: Path, caplog) -> None:
    # A changed YAML default is on no command line: seed 4 (max_length 16, not 64) joined the row
    write_seeds(tmp_path, {1: 0.6, 2: 0.6, 3: 0.6}, injection_task="none")
    write_job(tmp_path / "injection_task=none" / "4", 4, 0.4, config="max_length=16", injection_task="none")  # fmt: skip
    write_seeds(tmp_path, {1: 0.7, 2: 0.7, 3: 0.7, 4: 0.7}, injection_task="demo_pos")
    result = aggregate(tmp_path)
    assert row_of(result, injection_task="none")["notes"] == "different configs: seeds 1 2 3 vs 4"
    assert row_of(result, injection_task="demo_pos")["notes"] == ""
    with (tmp_path / "results.csv").open() as handle:
        assert [r["notes"] for r in csv.DictReader(handle)] == ["", "different configs: seeds 1 2 3 vs 4"]  # fmt: skip
    assert "| 1 2 3 4 | 0 | different configs: seeds 1 2 3 vs 4 |" in result.markdown
    (warning,) = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warning.startswith("injection_task=none: seeds 1 2 3 vs 4 ran different configs")


def test_records_without_a_seedless_fingerprint_still_aggregate(tmp_path: Path) -> None:
    write_job(tmp_path / "old", 1, 0.6, config=None)  # written before it existed: either config
    write_job(tmp_path / "new", 2, 0.8)
    (row,) = aggregate(tmp_path).rows
    assert (row[f"{ACC}_n"], row["notes"]) == (2, "")
    assert "notes" not in (tmp_path / "results.md").read_text()  # no empty column


def test_a_spelling_only_a_superseded_record_used_names_no_row(tmp_path: Path) -> None:
    write_job(tmp_path / "old", 1, 0.5, overrides=(f"{LR}=0.5",), fingerprint="f", mtime=1_000_000)
    write_job(tmp_path / "new", 1, 0.9, overrides=(f"{LR}=0.50",), fingerprint="f", mtime=2_000_000)
    result = aggregate(tmp_path)
    assert result.rows[0][f"{ACC}_mean"] == 0.9
    assert f"`{LR}=0.50`" in result.markdown  # the spelling of the record that counts


def test_a_float_hydra_spelled_out_shows_in_its_exponent_form(tmp_path: Path) -> None:
    # Hydra's sweeper writes a grid's `1e4` as `10000.0` and `5e-5` as `5e-05`: rows, labels and
    # best.md read `10000.0`; results.csv's `1e4` is the same number to a CSV reader.
    for name, lr, score in (("a", "10000.0", 0.5), ("b", "5e-05", 0.7), ("c", "0.1", 0.6)):
        write_job(tmp_path / name, 1, score, overrides=(f"{LR}={lr}",))
    write_job(tmp_path / "d", 1, error="boom", overrides=(f"{LR}=0.0001",))
    result = aggregate(tmp_path, baseline={LR: "5e-5"}, best_of=["injection_task"])
    assert [row[LR] for row in result.rows] == ["5e-5", "1e-4", "0.1", "1e4"]
    with (tmp_path / "results.csv").open() as handle:
        assert [float(r[LR]) for r in csv.DictReader(handle)] == [5e-5, 1e-4, 0.1, 1e4]
    assert "| 1e4 | 0.5000 (1) |" in result.markdown
    assert [failure.settings for failure in result.failures] == [f"{LR}=1e-4"]
    assert f"| {LR}=1e4 | demo_pos: 0.5000 (1) |" in (tmp_path / "best.md").read_text()
    assert "same settings but target_task.lr=5e-5)" in result.markdown


# --- which jobs count -----------------------------------------------------------------------------


def test_a_config_run_twice_counts_once_the_newer(tmp_path: Path) -> None:
    write_job(tmp_path / "old", 1, 0.5, fingerprint="same", mtime=1_000_000)
    write_job(tmp_path / "new", 1, 0.9, fingerprint="same", mtime=2_000_000)
    (row,) = aggregate(tmp_path).rows
    assert (row[f"{ACC}_mean"], row[f"{ACC}_n"]) == (0.9, 1)


def test_results_md_counts_and_names_the_records_of_a_run_left_out(tmp_path: Path) -> None:
    # `sweep.py aggregate` over a folder holding a copy of a sweep: only the log said so, and
    # results.md a lower job count than the folders it read.
    write_job(tmp_path / "copy" / "old", 1, 0.5, fingerprint="same", mtime=1_000_000)
    write_job(tmp_path / "new", 1, 0.9, fingerprint="same", mtime=2_000_000)
    write_job(
        tmp_path / "retried", 2, error="CUDA out of memory", fingerprint="two", mtime=1_000_000
    )
    write_job(tmp_path / "retried", 2, 0.7, fingerprint="two", mtime=2_000_000)  # no duplicate
    markdown = aggregate(tmp_path).markdown
    assert "2 jobs (2 finished, 0 failed) in 1 combination;" in markdown
    assert (
        "\n1 record of a run another record in the table also holds, left out (the newer "
        "counts): copy/old\n" in markdown
    )


def test_a_folder_that_failed_then_finished_counts_as_finished(tmp_path: Path) -> None:
    write_job(tmp_path / "job", 1, error="CUDA out of memory", mtime=1_000_000)
    write_job(tmp_path / "job", 1, 0.7, mtime=2_000_000)  # metrics.json beside an older failed.json
    result = aggregate(tmp_path)
    assert (result.rows[0]["failed"], result.rows[0][f"{ACC}_n"], result.failures) == (0, 1, [])
    assert "No job failed." in result.markdown
    assert not (tmp_path / "failures.csv").exists()


def test_another_configs_failure_in_a_folder_with_a_result_counts_as_failed(tmp_path) -> None:
    # train.py -m numbers its folders: a lora job refused in a full job's folder has no result
    write_seeds(tmp_path, {1: 0.7, 2: 0.8}, mtime=1_000_000)
    write_job(tmp_path / "base" / "1", 1, error="holds another config's result", mtime=2_000_000,
              tuning_mode="lora", fingerprint="lora")  # fmt: skip
    result = aggregate(tmp_path)
    (failure,) = result.failures  # no later attempt of the full result kept beside it
    assert failure.error == "RuntimeError: holds another config's result"
    lora = row_of(result, tuning_mode="lora")
    assert (lora["failed"], lora["notes"]) == (1, "")
    assert row_of(result, tuning_mode="full")["notes"] == ""
    assert "3 jobs (2 finished, 1 failed) in 2 combinations" in result.markdown  # as the rows


@pytest.mark.parametrize("validated", [True, False])
def test_a_failure_after_a_result_in_its_folder_is_listed_and_the_result_kept(
    tmp_path: Path, validated: bool
) -> None:
    # A failed --force rerun: the failure is newer. One that failed before its config validated
    # (a check added since) has no fingerprint: its settings and seed tell it is this config's.
    write_seeds(tmp_path, {1: 0.7, 2: 0.8, 3: 0.9}, mtime=1_000_000)
    failed = write_job(tmp_path / "base" / "2", 2, error="CUDA out of memory", mtime=2_000_000)
    if not validated:
        record = json.loads((failed / "failed.json").read_text())
        for key in ("config_fingerprint", "seedless_fingerprint", "selection_metric"):
            del record[f"run/{key}"]
        del record["run/higher_is_better"]
        (failed / "failed.json").write_text(json.dumps(record))
        os.utime(failed / "failed.json", (2_000_000, 2_000_000))
    result = aggregate(tmp_path)
    (row,) = result.rows
    # Counted once, as the header counts it: seed 2 is averaged, so it is no failed job of the row.
    assert (row[f"{ACC}_n"], row[f"{ACC}_mean"], row["failed"]) == (3, pytest.approx(0.8), 0)
    assert row["notes"] == "later attempt failed: seed 2 (result kept)"
    (failure,) = result.failures
    assert failure.seed == 2 and failure.run_dir == tmp_path / "base" / "2"
    assert "CUDA out of memory (a later attempt; the earlier result is kept)" in failure.error
    assert "3 jobs (3 finished, 0 failed; 1 later attempt failed, its earlier result kept)" in (
        result.markdown
    )
    assert (tmp_path / "failures.csv").exists()


def test_an_unreadable_failure_beside_a_result_is_warned_and_the_result_kept(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write_job(tmp_path / "job", 1, 0.7, mtime=1_000_000)
    (tmp_path / "job" / "failed.json").write_text("")  # a write cut short, after the result
    result = aggregate(tmp_path)
    assert (result.rows[0][f"{ACC}_mean"], result.rows[0]["failed"], result.failures) == (
        0.7,
        0,
        [],
    )
    failed = tmp_path / "job" / "failed.json"
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING] == [
        f"corrupt run record {failed}: not JSON (Expecting value: line 1 column 1 (char 0)); "
        "ignored, the result beside it stands"
    ]


def test_a_job_refused_before_its_config_validated_is_a_failure_not_a_corrupt_folder(tmp_path):
    # train.py -m target_task.epochs=1,-1: the second job's record has no fingerprint and no
    # selection metric; aggregate stopped at it, for the whole folder.
    write_seeds(tmp_path, {1: 0.7, 2: 0.8, 3: 0.9})
    early = {"run/choices": CHOICES, "run/overrides": ["target_task.epochs=-1", "seed=1"],
             "run/seed": 1, "run/sweep": "test"}  # fmt: skip
    (tmp_path / "refused").mkdir()
    record_failure(tmp_path / "refused", early, LayerftError("target_task.epochs must be >= 0"))
    result = aggregate(tmp_path)
    assert sorted(row[f"{ACC}_n"] for row in result.rows) == [0, 3]
    (failure,) = result.failures
    assert failure.error == "LayerftError: target_task.epochs must be >= 0"
    assert f"Selection metric: `{ACC}`" in result.markdown


def test_a_finished_run_of_a_config_wins_over_a_later_failed_one(tmp_path: Path) -> None:
    write_job(tmp_path / "first", 1, 0.7, fingerprint="same", mtime=1_000_000)
    write_job(tmp_path / "rerun", 1, error="killed", fingerprint="same", mtime=2_000_000)
    (row,) = aggregate(tmp_path).rows
    assert (row[f"{ACC}_mean"], row["failed"]) == (0.7, 0)


def test_failures_get_a_row_a_count_and_a_section(tmp_path: Path) -> None:
    write_seeds(tmp_path, {1: 0.8, 2: 0.8}, tuning_mode="full")
    write_job(tmp_path / "lora" / "1", 1, error="CUDA out of memory | at step 3", tuning_mode="lora")  # fmt: skip
    write_job(tmp_path / "lora" / "2", 2, error=MemoryError("CUDA out of memory\nat"), tuning_mode="lora")  # fmt: skip
    write_job(tmp_path / "full" / "3", 3, error="NaN loss", tuning_mode="full")
    result = aggregate(tmp_path)
    lora = row_of(result, tuning_mode="lora")
    assert (lora[f"{ACC}_mean"], lora[f"{ACC}_n"], lora["failed"], lora["seeds"]) == (None, 0, 2, "")  # fmt: skip
    assert row_of(result, tuning_mode="full")["failed"] == 1
    assert [(f.run_dir.name, f.seed, f.settings) for f in result.failures] == [
        ("3", 3, "tuning_mode=full"), ("1", 1, "tuning_mode=lora"), ("2", 2, "tuning_mode=lora"),
    ]  # fmt: skip
    section = result.markdown.split("## Failures")[1]
    assert "| lora/1 | tuning_mode=lora | 1 | RuntimeError: CUDA out of memory \\| at step 3 |" in section  # fmt: skip
    assert "| lora/2 | tuning_mode=lora | 2 | MemoryError: CUDA out of memory |" in section
    assert "| lora | - | - | all 2 jobs failed | - | - | - | - | 2 |" in result.markdown
    assert len((tmp_path / "failures.csv").read_text().splitlines()) == 4
    assert "5 jobs (2 finished, 3 failed) in 2 combinations" in result.markdown


def test_a_row_whose_jobs_all_failed_says_so_and_so_do_the_rows_it_is_baseline_of(
    tmp_path: Path,
) -> None:
    # It said "too few seeds (n=0)", as if seeds were missing
    for seed in (1, 2, 3):
        write_job(tmp_path / "none" / str(seed), seed, error="offline", injection_task="none")
        write_job(tmp_path / "lora" / str(seed), seed, error="OOM", injection_task="demo_pos", tuning_mode="lora")  # fmt: skip
    write_seeds(tmp_path, {1: 0.8, 2: 0.8, 3: 0.8}, injection_task="demo_pos")
    result = aggregate(tmp_path)
    verdicts = [(r["injection_task"], r["tuning_mode"], r["verdict"]) for r in result.rows]
    assert verdicts == [
        ("demo_pos", "full", "all 3 baseline jobs failed"),
        ("demo_pos", "lora", "all 3 jobs failed"),  # and it has no baseline
        ("none", "full", "all 3 jobs failed"),  # a baseline row: it said "baseline"
    ]
    given = aggregate(tmp_path, baseline={"tuning_mode": "lora"})
    lora = row_of(given, injection_task="demo_pos", tuning_mode="lora")
    assert lora["verdict"] == "all 3 jobs failed"  # its own baseline: "baseline of no row"


def test_jobs_are_found_at_any_depth(tmp_path: Path) -> None:
    write_job(tmp_path / "a" / "b" / "c", 1, 0.8)
    write_job(tmp_path / "d", 2, 0.6)
    (tmp_path / "d" / ".hydra").mkdir()  # a run's other folders hold no job
    assert aggregate(tmp_path).rows[0][f"{ACC}_n"] == 2


def test_results_md_says_which_split_and_checkpoint_the_scores_and_costs_are_of(tmp_path) -> None:
    # A reader could not tell a dev score picked as the best of several dev evaluations from a
    # held-out one, nor which stage "trainable params" and the unexplained "share" counted.
    write_seeds(tmp_path, {1: 0.8, 2: 0.6}, tuning_mode="frozen")
    markdown = aggregate(tmp_path).markdown
    assert "each stage's dev set (`validation`) at its best dev checkpoint" in markdown
    assert "not a held-out estimate" in markdown
    assert (
        "trainable params: stage 2's, mean over seeds; share: of stage 2's parameters" in markdown
    )


def test_a_not_run_combination_whose_folder_holds_an_earlier_failure_is_counted_once(
    tmp_path: Path,
) -> None:
    # A grid option edited after its job failed, then the sweep stopped before rerunning it: the
    # old failure is listed as failed, and the folder was counted again as not run (3 jobs of 2).
    write_job(tmp_path / "tuning_mode=full", 1, 0.8, tuning_mode="full")
    write_job(tmp_path / "tuning_mode=frozen", 1, error="boom", fingerprint="old", tuning_mode="frozen")  # fmt: skip
    markdown = aggregate(tmp_path, not_run=["tuning_mode=frozen", "tuning_mode=lora"]).markdown
    assert "3 jobs (1 finished, 1 failed, 1 not run) in 2 combinations" in markdown
    assert markdown.endswith("in no row of the table:\n- tuning_mode=lora\n")


def test_an_unfinished_job_is_listed_and_counted_but_in_no_row(tmp_path: Path, caplog) -> None:
    # A job killed mid-run (or still running) left no record: "2 jobs (2 finished, 0 failed)"
    write_seeds(tmp_path, {1: 0.8, 2: 0.6}, tuning_mode="frozen")
    killed = tmp_path / "tuning_mode=frozen" / "3"
    (killed / ".hydra").mkdir(parents=True)
    (killed / "history.jsonl.partial").write_text("")
    result = aggregate(tmp_path)
    assert result.unfinished == [killed]
    assert (result.rows[0][f"{ACC}_n"], result.rows[0]["seeds"]) == (2, "1 2")
    assert "3 jobs (2 finished, 0 failed, 1 unfinished) in 1 combination" in result.markdown
    assert result.markdown.endswith(
        "## Unfinished (killed, still running, or its record unreadable)\n\n"
        "Job folders with no readable metrics.json or failed.json, in no row of the table:\n"
        "- tuning_mode=frozen/3\n"
    )
    (warning,) = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warning.endswith(f"record damaged), left out of the table: {killed}")


def test_a_result_on_a_data_file_changed_since_is_named_and_in_no_row(tmp_path, caplog) -> None:
    # `sweep.py aggregate` has no config: it compares the file at the path each job read.
    train = tmp_path / "train.jsonl"
    train.write_text('{"text": "a", "label": 0}\n')
    sweep_dir = tmp_path / "sweep"
    data = {"target_task.train": train}
    write_seeds(sweep_dir, {1: 0.8, 2: 0.6}, tuning_mode="frozen", data=data, mtime=1_000_000)
    write_seeds(sweep_dir, {1: 0.9}, tuning_mode="full", data=data, mtime=1_000_000)
    write_seeds(sweep_dir, {1: 0.5}, tuning_mode="lora")  # a record without data files
    assert len(aggregate(sweep_dir).rows) == 3
    # The frozen seed 2 reran on the edited file (a newer result, the same fingerprint elsewhere
    # would win too); the others are on the old bytes.
    train.write_text('{"text": "a", "label": 1}\n')
    write_job(sweep_dir / "tuning_mode=frozen" / "2", 2, 0.65, data=data, tuning_mode="frozen")
    result = aggregate(sweep_dir)
    assert [(r["tuning_mode"], r["seeds"]) for r in result.rows] == [("frozen", "2"), ("lora", "1")]
    assert row_of(result, tuning_mode="frozen")[f"{ACC}_mean"] == 0.65
    assert "4 jobs (2 finished, 0 failed, 2 on changed data) in 2 combinations" in result.markdown
    assert result.markdown.endswith(
        "## On changed data (left out of the table)\n\n"
        "Finished on a data file that holds other bytes now (sha256 of the file at the path the "
        "job read); `sweep.py --force` reruns them:\n"
        "| job | settings | seed | changed | later attempt |\n|---|---|---|---|---|\n"
        "| tuning_mode=frozen/1 | tuning_mode=frozen | 1 | target_task.train | - |\n"
        "| tuning_mode=full/1 | tuning_mode=full | 1 | target_task.train | - |\n"
    )
    (warning,) = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warning.startswith("2 result(s) on data files changed since, left out of the table")
    with (sweep_dir / "results.csv").open() as handle:
        assert [row["tuning_mode"] for row in csv.DictReader(handle)] == ["frozen", "lora"]
    # A file gone (or a record from before paths were kept) is not compared.
    train.unlink()
    assert len(aggregate(sweep_dir).rows) == 3


def test_a_refused_rerun_beside_a_result_on_changed_data_is_one_job_shown_once(tmp_path) -> None:
    # As sweep.py's summary has it: ON CHANGED DATA, not also FAILED (nor "a later attempt; the
    # earlier result is kept": no row keeps that result). Its error is beside it.
    train = tmp_path / "train.jsonl"
    train.write_text("1\n")
    write_job(tmp_path / "s" / "a", 1, 0.8, data={"target_task.train": train}, mtime=1_000_000)
    write_job(tmp_path / "s" / "b", 2, 0.7, mtime=1_000_000)
    train.write_text("2\n")
    write_job(tmp_path / "s" / "a", 1, error="... is this config's result on other data")
    result = aggregate(tmp_path / "s")
    assert result.failures == [] and not (tmp_path / "s" / "failures.csv").exists()
    (row,) = result.rows
    assert (row["seeds"], row["failed"]) == ("2", 0)
    assert "2 jobs (1 finished, 0 failed, 1 on changed data)" in result.markdown
    assert result.markdown.endswith(
        "| a | all | 1 | target_task.train | RuntimeError: ... is this config's result on other "
        "data |\n"
    )


def test_a_refusal_in_another_configs_folder_is_dropped_once_its_config_has_a_record(
    tmp_path,
) -> None:
    # train.py -m rerun with another injection_task after a kill: each job was refused in the
    # folder of the first grid's result, then the grid run again finished them elsewhere; the
    # tables still said "failed 2" for a row whose both seeds had results (a chaos review).
    sweep_dir = tmp_path / "s"
    for seed in (1, 2):
        write_job(sweep_dir / f"{seed - 1}", seed, 0.5, fingerprint=f"none-{seed}",
                  injection_task="none", mtime=1_000_000)  # fmt: skip
        refusal = f"... {sweep_dir / str(seed - 1)} holds the result of another config ..."
        write_job(sweep_dir / f"{seed - 1}", seed, error=refusal, fingerprint=f"pos-{seed}",
                  injection_task="demo_pos")  # fmt: skip
    result = aggregate(sweep_dir)
    assert len(result.failures) == 2  # no record of theirs elsewhere: the refusals are all there is
    for seed in (1, 2):
        write_job(sweep_dir / f"{seed + 1}", seed, 0.7, fingerprint=f"pos-{seed}",
                  injection_task="demo_pos")  # fmt: skip
    result = aggregate(sweep_dir)
    assert result.failures == []
    assert sorted((row["injection_task"], row["seeds"], row["failed"]) for row in result.rows) == [
        ("demo_pos", "1 2", 0), ("none", "1 2", 0),
    ]  # fmt: skip
    assert "4 jobs (4 finished, 0 failed)" in result.markdown


def test_a_refusal_on_changed_data_is_not_reported_once_the_file_is_restored(tmp_path) -> None:
    # The data file edited, each rerun was refused beside its result; the file copied back, the
    # results are on the current data and finished, and the refusal is stale: it was still listed
    # as a failure, and the row noted "later attempt failed". A rerun failed otherwise still is.
    train, sweep_dir = tmp_path / "train.jsonl", tmp_path / "s"
    train.write_text("1\n")
    data = {"target_task.train": train}
    write_job(sweep_dir / "a", 1, 0.8, data=data, mtime=1_000_000)
    write_job(sweep_dir / "b", 2, 0.6, data=data, mtime=1_000_000)
    train.write_text("2\n")
    edited = SimpleNamespace(data_files={"target_task.train": file_io.file_sha256(train)})
    with pytest.raises(LayerftError) as refused:
        run_folder.check_same_data(sweep_dir / "a", edited, "a hint")  # as the rerun stopped
    write_job(sweep_dir / "a", 1, error=refused.value, data=data)
    write_job(sweep_dir / "b", 2, error=RuntimeError("CUDA out of memory"), data=data)  # --force
    train.write_text("1\n")
    result = aggregate(sweep_dir)
    assert [(f.seed, f.error) for f in result.failures] == [
        (2, "RuntimeError: CUDA out of memory (a later attempt; the earlier result is kept)")
    ]
    (row,) = result.rows
    assert (row["seeds"], row["failed"], row[f"{ACC}_mean"]) == ("1 2", 0, pytest.approx(0.7))
    assert row["notes"] == "later attempt failed: seed 2 (result kept)"
    assert "on other data" not in (sweep_dir / "failures.csv").read_text()
    # An attempt that read another file (a relative path run from another folder) is refused
    # still: the result's own file holding its bytes says nothing of the file the attempt read.
    other = tmp_path / "elsewhere" / "train.jsonl"
    other.parent.mkdir()
    other.write_text("3\n")
    write_job(sweep_dir / "a", 1, error=refused.value, data={"target_task.train": other})
    assert [f.seed for f in aggregate(sweep_dir).failures] == [1, 2]


def test_a_setting_only_results_on_changed_data_used_still_names_them(tmp_path) -> None:
    # No row varies it: the label adds the settings the tabled jobs do not share.
    dev = tmp_path / "dev.jsonl"
    dev.write_text("1\n")
    write_seeds(tmp_path / "s", {1: 0.8}, tuning_mode="full")
    write_seeds(tmp_path / "s", {1: 0.6}, tuning_mode="lora", data={"target_task.validation": dev})
    dev.write_text("2\n")
    result = aggregate(tmp_path / "s")
    assert (
        result.varied == [] and "| tuning_mode=lora/1 | tuning_mode=lora | 1 |" in result.markdown
    )


def test_a_folder_whose_every_result_is_on_changed_data_tables_nothing(tmp_path) -> None:
    train = tmp_path / "train.jsonl"
    train.write_text("1\n")
    write_job(tmp_path / "s" / "a", 1, 0.8, data={"target_task.train": train})
    aggregate(tmp_path / "s")
    assert (tmp_path / "s" / "results.md").exists()
    train.write_text("2\n")
    with pytest.raises(LayerftError, match="no result to table in .*: every one is on a data file"):
        aggregate(tmp_path / "s")
    assert (
        not (tmp_path / "s" / "results.md").exists() and not (tmp_path / "s" / "bars.png").exists()
    )


def test_a_corrupt_record_is_named_and_listed_and_the_others_are_tabled(tmp_path, caplog) -> None:
    # One damaged metrics.json had refused the whole folder, leaving its old tables in place.
    write_job(tmp_path / "good", 1, 0.8)
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "metrics.json").write_text('{"target/eval_accuracy": 0.')
    result = aggregate(tmp_path)
    assert result.rows[0][f"{ACC}_mean"] == 0.8 and result.unfinished == [tmp_path / "bad"]
    assert "2 jobs (1 finished, 0 failed, 1 unfinished)" in result.markdown
    assert result.markdown.endswith("in no row of the table:\n- bad\n")
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings[0].startswith(f"corrupt run record {tmp_path}/bad/metrics.json: not JSON")
    assert warnings[0].endswith("; left out of the table, listed as unfinished (a rerun redoes it)")
    (tmp_path / "bad" / "metrics.json").write_text('{"target/eval_accuracy": 0.5}')  # no record
    caplog.clear()
    assert aggregate(tmp_path).unfinished == [tmp_path / "bad"]
    assert f"corrupt run record {tmp_path}/bad/metrics.json: 'run/choices'" in caplog.text
    # A rerun takes it for a result (another config's, never overwritten; or, naming its own
    # config's fingerprint, its own finished one): it had said "a rerun redoes it" (a chaos review).
    assert "(delete it to redo it)" in caplog.text
    (tmp_path / "bad" / "metrics.json").write_text("{}")  # a rerun sets it aside and redoes it
    caplog.clear()
    assert aggregate(tmp_path).unfinished == [tmp_path / "bad"]
    assert "listed as unfinished (a rerun redoes it)" in caplog.text
    # JSON's true is no number, though Python's bool is an int
    good = json.loads((tmp_path / "good" / "metrics.json").read_text())
    (tmp_path / "bad" / "metrics.json").write_text(json.dumps({**good, "target/x": True}))
    with pytest.raises(LayerftError, match=r"metrics.json: target/x is not a number$"):
        read_job(tmp_path / "bad")
    write_job(
        tmp_path / "bad", 2, error="boom", mtime=time.time() + 60
    )  # a later failure beside it
    assert aggregate(tmp_path).unfinished == [tmp_path / "bad"]
    (tmp_path / "good" / "metrics.json").write_text("")  # none readable: no table
    with pytest.raises(LayerftError, match="no result to table in .*: none is readable"):
        aggregate(tmp_path)


def test_a_folder_without_jobs_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    with pytest.raises(LayerftError, match=re.escape(f"no job in {tmp_path / 'empty'}")):
        aggregate(tmp_path / "empty")
    with pytest.raises(LayerftError, match="no sweep folder"):
        aggregate(tmp_path / "missing")


# --- plots ------------------------------------------------------------------------------------


def curve(score: float) -> list[dict[str, float]]:
    """A stage-2 history: stage-1 lines, dev evaluations, the train summary, the best re-scored."""
    return [
        {"step": 5, "injection/eval_token_f1": 0.9},
        {"step": 10, ACC: score - 0.2, "target/eval_loss": 0.9},
        {"step": 20, ACC: score, "target/eval_loss": 0.7},
        {"step": 20, "target/train_runtime": 30.0},
        {"step": 20, ACC: 0.0},  # the best checkpoint re-evaluated: not a point of the curve
    ]


def test_plots_with_two_varied_settings(tmp_path: Path) -> None:
    long = {"injection_task": "klue_dp", "layer_split": "lower_half"}
    for mode in ("full", "layerwise_adapter", "top_adapter"):
        for inj in ("none", "klue_dp"):
            for seed in (1, 2):
                settings = long | {"injection_task": inj, "tuning_mode": mode}
                write_job(tmp_path / mode / inj / str(seed), seed, 0.7 + 0.01 * seed, history=curve(0.7), **settings)  # fmt: skip
    result = aggregate(tmp_path)
    names = {p.name for p in result.paths}
    assert names == {"results.csv", "results.md", "bars.png", "heatmap.png", "dev_curves.png"}
    for name in ("bars.png", "heatmap.png", "dev_curves.png"):
        assert (tmp_path / name).read_bytes()[:8] == PNG


def plot_row(scores: list[float], metric: str = ACC, **settings: str) -> PlotRow:
    """A combination as the plots see it; each seed's dev curve is one point."""
    label = ",".join(f"{k}={v}" for k, v in settings.items())
    return PlotRow(label, settings, scores, [[(1, score)] for score in scores], metric)


def heatmap_texts(figure: Figure) -> dict[tuple[str, str], str]:
    """(x tick, y tick) -> the text drawn in that cell."""
    ax = figure.axes[0]  # [1] is the colour bar
    xs = [t.get_text() for t in ax.get_xticklabels()]
    ys = [t.get_text() for t in ax.get_yticklabels()]
    cells = {}
    for text in ax.texts:
        j, i = text.get_position()
        cells[xs[round(j)], ys[round(i)]] = text.get_text()
    return cells


def test_heatmap_marks_cells_averaging_fewer_combinations_or_runs() -> None:
    rows = [
        plot_row([0.74, 0.75, 0.745], injection_task="demo_pos", tuning_mode="full", lr="1"),
        replace(
            plot_row([], injection_task="demo_pos", tuning_mode="full", lr="2"), jobs=3
        ),  # all failed
        plot_row([0.7, 0.7, 0.7], injection_task="none", tuning_mode="full", lr="1"),
        plot_row([0.5, 0.5, 0.5], injection_task="none", tuning_mode="full", lr="2"),
        replace(
            plot_row([0.6, 0.6], injection_task="demo_pos", tuning_mode="lora", lr="1"), jobs=3
        ),
        plot_row([0.4, 0.4, 0.4], injection_task="demo_pos", tuning_mode="lora", lr="2"),
    ]
    axes, varied = ("injection_task", "tuning_mode"), ["injection_task", "tuning_mode", "lr"]
    figure = heatmap_figure(rows, axes, varied, ACC)
    assert heatmap_texts(figure) == {
        ("demo_pos", "full"): "0.745\n1/2 combos\n3/6 runs",  # lr=1 only: not comparable
        ("none", "full"): "0.600",
        ("demo_pos", "lora"): "0.500\n5/6 runs",
        ("none", "lora"): "not run",
    }
    assert figure.axes[0].get_title().endswith("\nk/n: the cell averages k of the n its grid has")
    complete = heatmap_figure(rows[2:4], axes, varied, ACC)
    assert heatmap_texts(complete) == {("none", "full"): "0.600"}
    assert "k/n" not in complete.axes[0].get_title()


def test_heatmap_fills_every_cell_along_a_setting_a_row_never_read(tmp_path, monkeypatch) -> None:
    # injection_task=none reads no layer_split (its row's value `-`): its one run served both
    # splits, whose cells read "not run" beside a `-` column where demo_pos read "not run" too.
    for split, score in (("lower1", 0.8), ("lower_half", 0.7)):
        write_seeds(tmp_path, {1: score, 2: score}, injection_task="demo_pos", layer_split=split)
    write_seeds(tmp_path, {1: 0.6, 2: 0.6}, injection_task="none", layer_split="lower1")
    write_seeds(tmp_path, {1: 0.5, 2: 0.5}, injection_task="klue_pos", layer_split="lower1")
    drawn: dict[str, Figure] = {}
    monkeypatch.setattr(plots, "draw", lambda *args: drawn.update(draw(*args)) or drawn)
    assert aggregate(tmp_path).heatmap == ("injection_task", "layer_split")
    assert heatmap_texts(drawn["heatmap.png"]) == {
        ("demo_pos", "lower1"): "0.800",
        ("demo_pos", "lower_half"): "0.700",
        ("klue_pos", "lower1"): "0.500",
        ("klue_pos", "lower_half"): "not run",  # no run serves it
        ("none", "lower1"): "0.600",
        ("none", "lower_half"): "0.600",
    }
    # Unread on both axes: one row in every cell, no `-` tick on either.
    axes = ("injection_task", "layer_split")
    rows = [
        plot_row([0.9], injection_task="demo_pos", layer_split="lower1"),
        replace(
            plot_row([], injection_task="klue_pos", layer_split="lower_half"), jobs=1
        ),  # failed
        replace(plot_row([0.6], injection_task="-", layer_split="-"), unread=frozenset(axes)),
    ]
    texts = heatmap_texts(heatmap_figure(rows, axes, list(axes), ACC))
    assert texts == {
        ("demo_pos", "lower1"): "0.750",
        ("demo_pos", "lower_half"): "0.600\n1/2 combos\n1/2 runs",
        ("klue_pos", "lower1"): "0.600\n1/2 combos\n1/2 runs",
        ("klue_pos", "lower_half"): "0.600\n1/2 combos\n1/2 runs",
    }


def test_no_heatmap_averages_different_selection_metrics_into_one_cell(caplog) -> None:
    pearson = "target/eval_pearsonr"
    rows = [
        plot_row([0.57], injection_task="demo_pos", tuning_mode="full", target_task="sent"),
        plot_row([0.17], pearson, injection_task="demo_pos", tuning_mode="full", target_task="sts"),
        plot_row([], pearson, injection_task="none", tuning_mode="full", target_task="sent"),
    ]
    varied = ["injection_task", "tuning_mode", "target_task"]
    figures = draw(rows, varied, "selection metric (per row)", ("injection_task", "tuning_mode"))
    assert "heatmap.png" not in figures and "bars.png" in figures
    assert caplog.messages == [
        "no heatmap.png: its cell injection_task=demo_pos, tuning_mode=full would average different "
        f"selection metrics ({ACC}, {pearson}); choose --heatmap settings that separate them"
    ]
    # one metric per cell (target_task on an axis): drawn; a failed row's metric averages nothing
    apart = draw(rows, varied, "selection metric (per row)", ("target_task", "injection_task"))
    assert "heatmap.png" in apart


def test_heatmap_colours_cells_within_their_own_metric() -> None:
    # One scale over accuracy and pearsonr showed which task scores higher, not which mode helps.
    pearson = "target/eval_pearsonr"
    rows = [
        plot_row([0.9], tuning_mode="full", target_task="sent"),
        plot_row([0.8], tuning_mode="lora", target_task="sent"),
        plot_row([0.3], pearson, tuning_mode="full", target_task="sts"),
        plot_row([0.1, 0.3], pearson, tuning_mode="lora", target_task="sts"),
        plot_row([0.25], pearson, tuning_mode="bitfit", target_task="sts"),
    ]
    axes = ("tuning_mode", "target_task")
    figure = heatmap_figure(rows, axes, list(axes), "selection metric (per row)")
    ax, bar = figure.axes
    shade = np.ma.filled(ax.images[0].get_array(), np.nan)
    # x: bitfit, full, lora; y: sent, sts. sent's bitfit was not run.
    np.testing.assert_allclose(shade, [[np.nan, 1.0, 0.0], [0.5, 1.0, 0.0]])
    assert [t.get_text() for t in ax.get_yticklabels()] == ["sent\n(accuracy)", "sts\n(pearsonr)"]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["bitfit", "full", "lora"]
    assert heatmap_texts(figure)["lora", "sts\n(pearsonr)"] == "0.200"  # the value, not its shade
    assert bar.get_ylabel() == "within each target_task (higher is better)"
    # it said 'per row'; sts/lora's second seed marks no other cell short (most rows have one)
    assert ax.get_title() == "mean selection metric (each target_task's own)"
    # One cell per metric: every shade is 0.5, and the bar still reads lowest..highest.
    single = heatmap_figure(rows[:1] + rows[2:3], axes, list(axes), "selection metric (per row)")
    assert single.axes[0].images[0].get_clim() == (0.0, 1.0)
    # One metric: the values are the colours, on the metric's own scale.
    same = heatmap_figure(rows[:2], axes, list(axes), ACC)
    np.testing.assert_allclose(np.ma.filled(same.axes[0].images[0].get_array()), [[0.9, 0.8]])
    assert same.axes[1].get_ylabel() == f"{ACC} (higher is better)"


def test_heatmap_colours_each_data_set_apart_and_never_averages_two() -> None:
    # SNLI (0.40-0.47) and AG News (0.85-0.92), both accuracy, had one scale: a purple column and
    # a yellow one; without --heatmap the cells averaged the two data sets.
    rows = [
        plot_row([score], tuning_mode=mode, lr_schedule=schedule, target_task=task)
        for task, low in (("snli", 0.40), ("ag_news", 0.85))
        for mode, schedule, score in (("full", "linear", low), ("lora", "linear", low + 0.07),
                                      ("full", "cosine", low + 0.02), ("lora", "cosine", low + 0.05))
    ]  # fmt: skip
    varied = ["tuning_mode", "lr_schedule", "target_task"]
    assert heatmap_axes(rows, varied, None) == ("tuning_mode", "target_task")
    figure = heatmap_figure(rows, ("tuning_mode", "target_task"), varied, ACC)
    ax, bar = figure.axes
    shade = np.ma.filled(ax.images[0].get_array(), np.nan)
    np.testing.assert_allclose(shade, [[0.0, 1.0], [0.0, 1.0]])  # y: ag_news, snli; x: full, lora
    assert bar.get_ylabel() == "within each target_task (higher is better)"
    assert ax.get_title().startswith(
        f"mean {ACC} (colour: within each target_task)\naveraged over lr_schedule"
    )
    assert heatmap_texts(figure)["lora", "snli"] == "0.460"
    figures = draw(rows, varied, ACC, ("tuning_mode", "lr_schedule"))
    assert "heatmap.png" not in figures and "bars.png" in figures


def test_heatmap_counts_only_the_rows_its_grid_has_in_a_cell() -> None:
    # linear reads neither multiplier, discriminative one, layerwise_decay the other: every cell
    # was full, yet those mixing schedules read "1/2 combos 1/2 runs".
    rows = [
        replace(plot_row([0.5, 0.6], lr_schedule="linear", mult="-", decay="-"),
                unread=frozenset({"mult", "decay"})),
        *(replace(plot_row([0.6, 0.7], lr_schedule="discriminative", mult=m, decay="-"),
                  unread=frozenset({"decay"})) for m in ("2", "4")),
        *(replace(plot_row([0.7, 0.8], lr_schedule="layerwise_decay", mult="-", decay=d),
                  unread=frozenset({"mult"})) for d in ("0.8", "0.9")),
    ]  # fmt: skip
    axes, varied = ("lr_schedule", "mult"), ["lr_schedule", "mult", "decay"]
    texts = heatmap_texts(heatmap_figure(rows, axes, varied, ACC))
    assert not any("/" in text for text in texts.values()), texts
    assert texts["layerwise_decay", "2"] == "0.750" and texts["discriminative", "4"] == "0.650"
    # One decay value's row failed: its cells say so.
    rows[4] = replace(rows[4], scores=[], jobs=2)
    texts = heatmap_texts(heatmap_figure(rows, axes, varied, ACC))
    assert texts["layerwise_decay", "2"] == "0.750\n1/2 combos\n2/4 runs"
    # Each task its own learning rates (snli 1e-4 and 3e-5, ag_news 5e-5 and 1e-5): every cell
    # full, where a product of all four rates had read 2/4 everywhere.
    rows = [
        plot_row([0.5, 0.6, 0.7], tuning_mode=mode, target_task=task, lr=lr)
        for mode in ("full", "lora")
        for task, rates in (("snli", ("1e-4", "3e-5")), ("ag_news", ("5e-5", "1e-5")))
        for lr in rates
    ]
    texts = heatmap_texts(
        heatmap_figure(
            rows, ("tuning_mode", "target_task"), ["tuning_mode", "target_task", "lr"], ACC
        )
    )
    assert set(texts.values()) == {"0.600"}
    # Seed 3 failed in most rows: those cells say so (the usual count of scores had been 2).
    rows = [
        replace(plot_row([0.5, 0.6] + [0.7] * (task == "b" and split == "y"), target_task=task, split=split), jobs=3)
        for task in ("a", "b")
        for split in ("x", "y")
    ]  # fmt: skip
    texts = heatmap_texts(
        heatmap_figure(rows, ("target_task", "split"), ["target_task", "split"], ACC)
    )
    assert sorted(texts.values()) == ["0.550\n2/3 runs"] * 3 + ["0.600"]


def stopped_before_one_job(seeds: dict[str, int] | None = None) -> list[Any]:
    """injection_task x tuning_mode x lr=1,2 (scores 0.7 and 0.5), stopped before
    demo_pos/full/lr=2 ran; `seeds`: how many each rate ran (default 2)."""
    return [
        plot_row([score] * (seeds or {}).get(lr, 2), injection_task=inj, tuning_mode=mode, lr=lr)
        for inj in ("demo_pos", "none")
        for mode in ("full", "lora")
        for lr, score in (("1", 0.7), ("2", 0.5))
        if (inj, mode, lr) != ("demo_pos", "full", "2")
    ]


def lr_heatmap_texts(rows: list[Any]) -> dict[tuple[str, str], str]:
    """The heatmap of injection_task x tuning_mode over rows that vary lr too: each cell's text."""
    varied = ["injection_task", "tuning_mode", "lr"]
    return heatmap_texts(heatmap_figure(rows, ("injection_task", "tuning_mode"), varied, ACC))


def test_heatmap_marks_a_cell_missing_a_value_of_an_averaged_setting() -> None:
    # A sweep stopped before full/demo_pos/lr=2 ran: that cell averaged lr=1 alone, unmarked,
    # beside cells averaging both rates (its column and its row have lr=2).
    rows = stopped_before_one_job()
    texts = lr_heatmap_texts(rows)
    assert texts == {
        ("demo_pos", "full"): "0.700\n1/2 combos\n2/4 runs",
        ("demo_pos", "lora"): "0.600",
        ("none", "full"): "0.600",
        ("none", "lora"): "0.600",
    }
    # A value one cell alone has (lr=3, demo_pos/lora) is expected of no other cell.
    rows.append(plot_row([0.9, 0.9], injection_task="demo_pos", tuning_mode="lora", lr="3"))
    texts = lr_heatmap_texts(rows)
    assert texts["demo_pos", "lora"] == "0.700" and texts["none", "lora"] == "0.600"
    assert texts["demo_pos", "full"] == "0.700\n1/2 combos\n2/4 runs"
    # A rate per pair of values (chosen per mode and task), every job run: none is missing.
    plan = {("full", "snli"): "1e-5", ("full", "ag"): "1e-4", ("lora", "snli"): "1e-4",
            ("lora", "ag"): "1e-5"}  # fmt: skip
    rows = [plot_row([0.5, 0.6], tuning_mode=m, task=t, lr=lr) for (m, t), lr in plan.items()]
    texts = heatmap_texts(
        heatmap_figure(rows, ("tuning_mode", "task"), ["tuning_mode", "task", "lr"], ACC)
    )
    assert set(texts.values()) == {"0.550"}, texts


def test_heatmap_cell_is_the_mean_of_its_combination_means() -> None:
    # Kills: cell_mean as the median of the combination means (0.200 where the mean is 0.300).
    rows = [
        plot_row([score], injection_task=inj, tuning_mode="full", lr=lr)
        for inj in ("demo_pos", "none")
        for lr, score in (("1", 0.1), ("2", 0.2), ("3", 0.6))
    ]
    texts = lr_heatmap_texts(rows)
    assert texts == {("demo_pos", "full"): "0.300", ("none", "full"): "0.300"}


def test_heatmap_counts_a_missing_value_beside_one_only_its_cell_has() -> None:
    # Kills: `len(expected - present)` -> `len(expected) - len(present)` in grid_counts: the cell
    # lacking lr=2 but alone in having lr=3 read complete (2 expected, 2 present).
    rows = stopped_before_one_job()
    rows.append(plot_row([0.9, 0.9], injection_task="demo_pos", tuning_mode="full", lr="3"))
    texts = lr_heatmap_texts(rows)
    assert texts == {
        ("demo_pos", "full"): "0.800\n2/3 combos\n4/6 runs",
        ("demo_pos", "lora"): "0.600",
        ("none", "full"): "0.600",
        ("none", "lora"): "0.600",
    }


def test_heatmap_expects_a_missing_combination_to_have_its_kinds_most_runs() -> None:
    # Kills: `max(row.runs ...)` -> `min(...)` in grid_counts: lr=2 ran 3 seeds wherever it ran,
    # yet the cell missing it expected 2 more runs (its kind's fewest), "2/4 runs" for 2/5.
    rows = stopped_before_one_job(seeds={"1": 2, "2": 3})
    texts = lr_heatmap_texts(rows)
    assert texts["demo_pos", "full"] == "0.700\n1/2 combos\n2/5 runs"
    assert texts["none", "lora"] == "0.600"


def test_bars_reach_the_lowest_whisker_and_name_each_rows_metric_when_they_differ() -> None:
    pearson = "target/eval_pearsonr"
    rows = [
        plot_row([0.9, 0.8], target_task="sent"),
        plot_row([0.3, -0.2], pearson, target_task="sts"),  # mean 0.05, std 0.354
    ]
    ax = draw(rows, ["target_task"], "selection metric (per row)", None)["bars.png"].axes[0]
    low = 0.05 - np.std([0.3, -0.2], ddof=1)
    assert ax.get_xlim()[0] <= low < 0  # the axis started at 0 and cut the whisker off
    assert [t.get_text() for t in ax.get_yticklabels()] == [
        "target_task=sent [accuracy]", "target_task=sts [pearsonr]"
    ]  # fmt: skip
    one = draw(rows[:1], ["target_task"], ACC, None)["bars.png"].axes[0]
    assert [t.get_text() for t in one.get_yticklabels()] == ["target_task=sent"]
    # A row whose every job failed before its config validated has no metric to name
    failed = draw([rows[0], plot_row([], "", target_task="x")], ["target_task"], ACC, None)
    labels = [t.get_text() for t in failed["bars.png"].axes[0].get_yticklabels()]
    assert labels == ["target_task=sent", "target_task=x"]


def test_bars_draw_beside_a_score_that_is_not_finite() -> None:
    # A NaN in a record layerft did not write (it refuses them) failed the whole aggregation:
    # matplotlib refuses NaN axis limits
    rows = [plot_row([float("nan")], target_task="a"), plot_row([0.9, 0.8], target_task="b")]
    ax = draw(rows, ["target_task"], ACC, None)["bars.png"].axes[0]
    assert ax.get_xlim() == pytest.approx((0.0, (0.85 + np.std([0.9, 0.8], ddof=1)) * 1.35))
    assert [t.get_text() for t in ax.texts][0] == " nan (n=1)"


def test_a_bar_of_one_seed_draws_no_whisker() -> None:
    rows = [plot_row([0.9, 0.8], target_task="a"), plot_row([0.7], target_task="b")]
    ax = draw(rows, ["target_task"], ACC, None)["bars.png"].axes[0]
    (bars,) = [c for c in ax.containers if getattr(c, "errorbar", None) is not None]
    whiskers = bars.errorbar.lines[2][0].get_segments()
    assert [len(segment) for segment in whiskers] == [2, 0]  # a: mean ± std; b: none


def test_heatmap_title_and_legend_fit_and_cells_without_a_mean_say_why() -> None:
    fixed = {f"injection_task.a_long_setting_name_{i}": "1000" for i in range(6)}
    rows = [
        plot_row([0.7], injection_task="demo_pos", tuning_mode="full", **fixed),
        plot_row([0.6], injection_task="none", tuning_mode="full", **fixed),
        plot_row([], injection_task="klue_pos", tuning_mode="full", **fixed),  # every seed failed
        plot_row([0.5], injection_task="none", tuning_mode="lora", **fixed),
    ]
    varied = ["injection_task", "tuning_mode", *fixed]
    heatmap = heatmap_figure(rows, ("injection_task", "tuning_mode"), varied, ACC)
    texts = {t.get_text(): t.get_color() for t in heatmap.axes[0].texts}
    assert texts["failed"] == texts["not run"] == "black"  # was a white "-" on the white cell
    curves = curves_figure(rows, ACC)
    [legend] = curves.subfigs[0].legends
    for figure, artist in ((heatmap, heatmap.axes[0].title), (curves, legend)):
        figure.canvas.draw()
        box = artist.get_window_extent()
        assert box.x0 >= 0 and box.x1 <= figure.bbox.width, f"{artist} is clipped"
    (label, *_) = [t.get_text() for t in legend.get_texts()]
    assert label.replace(",\n", ",") == rows[0].label + " (n=1)"  # wrapped after commas only


def test_dev_curves_of_each_target_task_are_a_panel_of_their_own() -> None:
    # Two data sets' dev scores on one axis (and one legend of every row) read as one comparison.
    rows = [
        plot_row([0.9], target_task="ag_news", tuning_mode="full"),
        plot_row([0.6, 0.7], target_task="nsmc", tuning_mode="full"),
        plot_row([0.8], target_task="ag_news", tuning_mode="lora"),
    ]
    curves = draw(rows, ["target_task", "tuning_mode"], ACC, None)["dev_curves.png"]
    panels = {
        sub.axes[0].get_title().split(":")[0]: [t.get_text() for t in sub.legends[0].get_texts()]
        for sub in curves.subfigs
    }
    assert panels == {
        "target_task=ag_news": ["tuning_mode=full (n=1)", "tuning_mode=lora (n=1)"],
        "target_task=nsmc": ["tuning_mode=full (n=2)"],
    }
    curves.canvas.draw()  # laid out without error
    # Tasks of different selection metrics: each panel's axis names its own, no legend entry does
    rows[1] = plot_row([0.6, 0.7], "target/eval_f1", target_task="nsmc", tuning_mode="full")
    curves = draw(rows, ["target_task", "tuning_mode"], ACC, None)["dev_curves.png"]
    axes = [sub.axes[0] for sub in curves.subfigs]
    assert [ax.get_ylabel() for ax in axes] == [f"dev {ACC}", "dev target/eval_f1"]
    assert [t.get_text() for t in curves.subfigs[1].legends[0].get_texts()] == [
        "tuning_mode=full (n=2)"
    ]
    one_task = [plot_row([0.9], target_task="a", tuning_mode=m) for m in ("full", "lora")]
    [panel] = curves_figure(one_task, ACC).subfigs
    assert panel.axes[0].get_title().startswith("stage-2 dev curves")


def test_dev_curve_stops_before_the_best_checkpoint_is_rescored(tmp_path: Path) -> None:
    job = read_job(write_job(tmp_path / "j", 1, 0.7, history=curve(0.7)))
    assert dev_curve(job) == [(10, pytest.approx(0.5)), (20, 0.7)]


def test_one_varied_setting_draws_no_heatmap_and_no_history_no_curves(tmp_path: Path) -> None:
    (tmp_path / "heatmap.png").write_bytes(PNG)  # an earlier aggregation's
    write_seeds(tmp_path, {1: 0.8}, tuning_mode="full")
    write_seeds(tmp_path, {1: 0.7}, tuning_mode="lora")
    write_job(tmp_path / "failed", 1, error="boom", tuning_mode="bitfit")
    result = aggregate(tmp_path)
    assert (tmp_path / "bars.png").read_bytes()[:8] == PNG
    assert not (tmp_path / "heatmap.png").exists()
    assert not (tmp_path / "dev_curves.png").exists()
    assert tmp_path / "bars.png" in result.paths
    with pytest.raises(LayerftError, match="heatmap needs two different varied settings"):
        aggregate(tmp_path, heatmap=("tuning_mode", "model"))
    # A typo (sweep.py aggregate checks no plan first) is named as such, not as unvaried
    with pytest.raises(LayerftError, match=r"^--heatmap tuning_mod: no job sets it \(settings: "):
        aggregate(tmp_path, heatmap=("tuning_mod", "model"))


def test_adapter_benchmark_table_only_reads_its_sweep(tmp_path: Path) -> None:
    for n, mode in enumerate(("full", "lora")):
        metrics = {"target/peak_rss_mb": 900.0 + n, "target/train_samples_per_second": 50.0}
        write_job(tmp_path / mode / "0", 42, 0.3 + n / 10, metrics=metrics, injection_task="none", tuning_mode=mode)  # fmt: skip
    script = REPO / "benchmarks" / "adapter_study.py"
    done = subprocess.run(
        [sys.executable, str(script), "--table-only", "--sweep-dir", str(tmp_path)],
        capture_output=True, text=True, check=True, cwd=tmp_path,
    )  # fmt: skip
    assert "target/peak_rss_mb" in done.stdout and "| lora |" in done.stdout
    assert "| full | 0.3000 (1) | - | baseline |" in done.stdout
    assert (tmp_path / "results.csv").exists()


def test_sweep_py_aggregate_without_a_results_run_record_leaves_the_wandb_table(
    tmp_path, caplog
) -> None:
    from layerft.sweep import main

    write_job(tmp_path / "1", 1, 0.6)
    assert main(["aggregate", str(tmp_path)]) == 0
    assert "W&B 'aggregate' run" not in caplog.text  # no W&B run in the folder: nothing to say
    (tmp_path / "wandb" / "offline-run-20261203_000000-results-0123").mkdir(parents=True)
    assert main(["aggregate", str(tmp_path)]) == 0
    # Logged by an earlier layerft: no record of its grid and tracker to log a new table with.
    assert "its W&B results run still holds the table of the last" in caplog.text
    (tmp_path / ".results_run.json").write_text(
        '{"grid": "demo", "tracker": {"mode": "sometimes"}}'
    )
    assert main(["aggregate", str(tmp_path)]) == 2  # damaged: one line naming it


def test_a_verdict_counts_failed_jobs_in_words_that_agree() -> None:
    # "all 1 jobs failed" read as a typo in a table meant for a paper.
    assert all_failed(1, "job") == "its 1 job failed"
    assert all_failed(2, "job") == "all 2 jobs failed"
    assert all_failed(3, "baseline job") == "all 3 baseline jobs failed"


def test_the_last_sweeps_combinations_not_run_are_listed_until_they_have_a_result(
    tmp_path, caplog
) -> None:
    # `sweep.py aggregate` (no grid) rewrote results.md without the not-run list the sweep wrote.
    write_job(tmp_path / "1", 1, 0.6)
    assert aggregate(tmp_path, not_run=["2", "3"]).not_run == ["2", "3"]
    assert aggregate(tmp_path).not_run == ["2", "3"]  # as `sweep.py aggregate` calls it
    write_job(tmp_path / "2", 2, 0.7)
    assert aggregate(tmp_path).not_run == ["3"]
    assert (tmp_path / "results.md").read_text().endswith("in no row of the table:\n- 3\n")
    (tmp_path / ".not_run.json").write_text("{")
    assert aggregate(tmp_path).not_run == [] and ".not_run.json is unreadable" in caplog.text


def test_the_wandb_results_run_names_the_combinations_not_run(tmp_path, monkeypatch) -> None:
    from layerft import sweep_tracker, tracker
    from layerft.config import register_configs

    register_configs()  # the tracker group's schema, which the results run composes
    configs: list[dict[str, Any]] = []

    def start(cfg: Any, run_dir: Path, tracked: Any) -> Any:
        configs.append(tracked.config)
        raise StopIteration  # the table itself is not needed

    monkeypatch.setattr(tracker, "start_tracker", start)
    result = SimpleNamespace(
        baseline={}, heatmap=None, not_run=["seed=2"], best_of=["lr"], unfinished=[tmp_path / "s3"]
    )
    with pytest.raises(StopIteration):
        sweep_tracker.log_results_table("demo", ["tracker=wandb"], tmp_path, result)  # type: ignore[arg-type]
    assert configs[0]["not_run"] == ["seed=2"]
    # A job killed mid-run is in no row and not in not_run: the results run named it nowhere
    assert configs[0]["unfinished"] == ["s3"]
    assert configs[0]["best_of"] == ["lr"]
