"""Audit of the sweep table's statistics, rows and baselines on hand-made rows: behaviours the
end-to-end tests in test_aggregate.py left unguarded (each test names the mistake it catches)."""

from __future__ import annotations

from pathlib import Path

from layerft.sweep_baseline import ComposedConfigs, baselines
from layerft.sweep_job import Job
from layerft.sweep_stats import compare, costs, score_is_higher
from layerft.sweep_table import TableRow, build_table, combine, varied_settings

ACC = "target/eval_accuracy"


def job(
    seed: int,
    score: float | None = None,
    *,
    settings: dict[str, str] | None = None,
    metric: str = ACC,
    run_dir: Path | None = None,
    error: str | None = None,
    later_attempt: bool = False,
    unread: tuple[str, ...] = (),
    metrics: dict[str, float] | None = None,
) -> Job:
    """A job as read_sweep reads it: finished with `score` (and `metrics`), or failed with `error`."""
    values = {} if error is not None else {metric: score, **(metrics or {})}
    return Job(
        run_dir=run_dir or Path(f"/nowhere/{seed}"),
        mtime=0.0,
        fingerprint=f"fp-{seed}",
        seedless_fingerprint="config",
        settings=dict(settings or {"injection_task": "demo_pos"}),
        seed=seed,
        selection_metric=metric,
        higher_is_better=True,
        metrics=values,
        error=error,
        later_attempt=later_attempt,
        unread=unread,
    )


def row(
    settings: dict[str, str],
    scores: dict[int, float],
    *,
    metric: str = ACC,
    root: Path | None = None,
    config: str | None = None,
) -> TableRow:
    """A row of finished jobs, one per seed; under `root` each job folder gets `config` as the
    composed config Hydra writes (`.hydra/config.yaml`)."""
    jobs = []
    for seed, score in scores.items():
        run_dir = None
        if root is not None:
            run_dir = root / "-".join(f"{k}={v}" for k, v in sorted(settings.items())) / str(seed)
            if config is not None:
                (run_dir / ".hydra").mkdir(parents=True)
                (run_dir / ".hydra" / "config.yaml").write_text(config)
        jobs.append(job(seed, score, settings=settings, metric=metric, run_dir=run_dir))
    return TableRow(dict(settings), jobs, [])


# --- sweep_stats ---------------------------------------------------------------------------------


def test_a_baseline_on_another_selection_metric_is_no_baseline() -> None:
    # Kills: dropping `base.selection_metric != combo.selection_metric` in compare (an F1 minus an
    # accuracy, given a verdict).
    base = row({"injection_task": "none"}, {1: 0.5, 2: 0.6, 3: 0.7}, metric="target/eval_macro_f1")
    combo = row({"injection_task": "demo_pos"}, {1: 0.8, 2: 0.85, 3: 0.95})
    comparison = compare(combo, base, compared=False)
    assert (comparison.verdict, comparison.diffs, comparison.ci) == ("no baseline", None, None)


def test_a_score_no_metric_registers_counts_as_higher_is_better() -> None:
    # Kills: `all(...)` -> `any(...)` in score_is_higher (no registry entry: all() of nothing).
    assert score_is_higher("target/eval_unregistered_score") is True
    assert score_is_higher("target/eval_accuracy") is True
    assert score_is_higher("target/eval_mismatched_accuracy") is True


def test_a_later_attempts_failure_without_a_result_of_its_seed_counts_as_failed() -> None:
    # Kills: dropping `job.seed in finished` in TableRow.later_failed_seeds: a later attempt of
    # another config refused in a folder leaves that seed without a result, a failure.
    combo = row({"injection_task": "demo_pos"}, {1: 0.8, 2: 0.82})
    combo.failed = [
        job(2, error="RuntimeError: boom", later_attempt=True),  # seed 2's result is kept
        job(3, error="RuntimeError: refused", later_attempt=True),  # seed 3 has none
    ]
    assert combo.later_failed_seeds() == [2]
    assert costs(combo)["failed"] == 1


# --- sweep_table ---------------------------------------------------------------------------------


def test_combine_orders_a_rows_jobs_by_seed_and_unions_their_unread_settings() -> None:
    # Kills: combine without sorting by seed (the seeds column read `3 1 2`), and a row's unread
    # settings taken from its last job only (records before fingerprint scheme 3 list none).
    settings = {"injection_task": "demo_pos", "tuning_mode": "full"}
    jobs = [
        job(3, 0.7, settings=settings),
        job(1, 0.8, settings=settings, unread=("tuning_mode.lora.",)),
        job(2, 0.9, settings=settings),
    ]
    (combo,) = combine(jobs)
    assert [j.seed for j in combo.finished] == [1, 2, 3]
    assert costs(combo)["seeds"] == "1 2 3"
    assert combo.unread == ("tuning_mode.lora.",)


def test_varied_settings_list_groups_before_dotted_keys() -> None:
    # Kills: sorting the varied settings by first appearance only (README: groups first).
    combos = [
        row({"target_task.lr": "1e-4", "tuning_mode": "full"}, {1: 0.5}),
        row({"target_task.lr": "2e-4", "tuning_mode": "lora"}, {1: 0.5}),
    ]
    assert varied_settings(combos) == ["tuning_mode", "target_task.lr"]


def test_only_scores_get_a_paired_difference_column() -> None:
    # Kills: `if is_score(key)` -> always in build_table: an extra metric that is no score (a
    # loss, a run time) got `_diff_mean` ... `_verdict` columns it has no verdict for.
    loss = "target/eval_loss"
    base = row({"injection_task": "none"}, {1: 0.5, 2: 0.6, 3: 0.7})
    combo = row({"injection_task": "demo_pos"}, {1: 0.6, 2: 0.65, 3: 0.8})
    for combo_row, losses in ((base, (0.9, 0.8, 0.7)), (combo, (0.5, 0.6, 0.4))):
        for j, value in zip(combo_row.finished, losses, strict=True):
            j.metrics[loss] = value
    table = build_table([base, combo], ["injection_task"], {}, [base, base], extra=[loss])
    assert table.metrics == [loss]
    assert f"{loss}_mean" in table.columns
    assert not [c for c in table.columns if c.startswith(f"{loss}_diff") or c == f"{loss}_verdict"]


# --- sweep_baseline ------------------------------------------------------------------------------

LR_DEFAULT = "target_task:\n  lr: 5.0e-05\n"


def test_a_row_without_stage1_pairs_with_a_baseline_that_leaves_its_rate_at_the_same_value(
    tmp_path: Path,
) -> None:
    # Kills: entering the stage-1 branch of baseline_of for every row without stage 1 (dropping
    # `!= wanted.get("injection_task")`): under `--baseline tuning_mode=full` the LoRA row that
    # spells out the task's own rate lost its full fine-tuning baseline that leaves it.
    full = row({"injection_task": "none", "tuning_mode": "full"}, {1: 0.7, 2: 0.8, 3: 0.9},
               root=tmp_path, config=LR_DEFAULT)  # fmt: skip
    lora = row(
        {"injection_task": "none", "tuning_mode": "lora", "target_task.lr": "5e-5"},
        {1: 0.6, 2: 0.7, 3: 0.8}, root=tmp_path, config=LR_DEFAULT,
    )  # fmt: skip
    assert baselines([full, lora], {"tuning_mode": "full"}) == [full, full]


def test_a_baseline_that_differs_in_another_setting_is_no_pair(tmp_path: Path) -> None:
    # Kills: dropping the check that the settings both rows have agree (at_same_values): the LoRA
    # row paired with the full fine-tuning row that leaves the rate at the same value.
    base = row({"injection_task": "none", "tuning_mode": "full"}, {1: 0.7, 2: 0.8, 3: 0.9},
               root=tmp_path, config=LR_DEFAULT)  # fmt: skip
    combo = row(
        {"injection_task": "demo_pos", "tuning_mode": "lora", "target_task.lr": "5e-5"},
        {1: 0.6, 2: 0.7, 3: 0.8}, root=tmp_path, config=LR_DEFAULT,
    )  # fmt: skip
    assert baselines([base, combo], {"injection_task": "none"}) == [base, None]


def test_a_baselines_own_key_never_pairs_with_the_row_that_leaves_it(tmp_path: Path) -> None:
    # Kills: dropping `any(key in spec ...)` in at_same_values: `--baseline target_task.lr=5e-5`
    # asks for the rows that spell out 5e-5, not for those left at the options' 5e-5 (`key=-`).
    lora_default = row({"tuning_mode": "lora"}, {1: 0.5, 2: 0.6, 3: 0.7},
                       root=tmp_path, config=LR_DEFAULT)  # fmt: skip
    lora_fast = row({"tuning_mode": "lora", "target_task.lr": "1e-3"}, {1: 0.6, 2: 0.7, 3: 0.8},
                    root=tmp_path, config="target_task:\n  lr: 0.001\n")  # fmt: skip
    full = row({"tuning_mode": "full", "target_task.lr": "5e-5"}, {1: 0.7, 2: 0.8, 3: 0.9},
               root=tmp_path, config=LR_DEFAULT)  # fmt: skip
    found = baselines([lora_default, lora_fast, full], {"target_task.lr": "5e-5"})
    assert found == [None, None, full]


def test_the_finished_config_wins_over_the_one_a_skipped_rerun_rewrote(tmp_path: Path) -> None:
    # Kills: reading `.hydra/config.yaml` before `.hydra/finished/config.yaml` (README: the
    # finished one, which a skipped rerun cannot rewrite, else `.hydra/`).
    run_dir = tmp_path / "job"
    (run_dir / ".hydra" / "finished").mkdir(parents=True)
    (run_dir / ".hydra" / "finished" / "config.yaml").write_text(LR_DEFAULT)
    (run_dir / ".hydra" / "config.yaml").write_text("target_task:\n  lr: 0.001\n")
    jobs = [job(1, 0.5, run_dir=run_dir)]
    assert ComposedConfigs().hold(jobs, {"target_task.lr": "5e-5"})
    assert not ComposedConfigs().hold(jobs, {"target_task.lr": "1e-3"})
    (run_dir / ".hydra" / "finished" / "config.yaml").unlink()  # none finished: `.hydra/`'s
    assert ComposedConfigs().hold(jobs, {"target_task.lr": "1e-3"})
