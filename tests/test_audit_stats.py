"""Audit of the sweep table's statistics, rows and baselines on hand-made rows: behaviours the
end-to-end tests in test_aggregate.py left unguarded (each test names the mistake it catches)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from layerft import sweep_stats
from layerft.errors import LayerftError
from layerft.metrics import METRICS, MetricSpec
from layerft.sweep_baseline import ComposedConfigs, baselines, check_baseline
from layerft.sweep_diffs import format_diff, other_scores_lines
from layerft.sweep_job import Job
from layerft.sweep_notes import notes
from layerft.sweep_stats import compare, costs, paired_t_interval, score_is_higher, t_975
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


def baseline_pair(
    metric: str, base_values: tuple[float, ...], combo_values: tuple[float, ...]
) -> tuple[TableRow, TableRow]:
    """A row without stage 1 and one with it, seeds 1-3, each job also holding `metric`."""
    base = row({"injection_task": "none"}, {1: 0.5, 2: 0.6, 3: 0.7})
    combo = row({"injection_task": "demo_pos"}, {1: 0.6, 2: 0.65, 3: 0.8})
    for combo_row, values in ((base, base_values), (combo, combo_values)):
        for j, value in zip(combo_row.finished, values, strict=True):
            j.metrics[metric] = value
    return base, combo


def test_only_scores_get_a_paired_difference_column() -> None:
    # Kills: `if is_score(key)` -> always in build_table: an extra metric that is no score (a
    # loss, a run time) got `_diff_mean` ... `_verdict` columns it has no verdict for.
    loss = "target/eval_loss"
    base, combo = baseline_pair(loss, (0.9, 0.8, 0.7), (0.5, 0.6, 0.4))
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


# --- the mutation audit's survivors (each test names the mutant it kills) ------------------------


def test_every_t_quantile_is_students_to_4_decimals() -> None:
    # Kills: a transposed digit in T_975 (2.2622 -> 2.2262 at 9 degrees of freedom: the interval of
    # 10 seeds 1.6% too narrow); the end-to-end tests check only df 1, 2, 4, 29 and 30.
    stats = pytest.importorskip("scipy.stats")
    for df in [*range(1, 31), 31, 40, 60, 100, 1000]:
        assert t_975(df) == pytest.approx(float(stats.t.ppf(0.975, df)), abs=1e-4), df


def test_a_row_on_other_seeds_than_its_baseline_has_no_mean_difference() -> None:
    # Kills: `if self.diffs` -> `if self.diffs is not None` in Comparison.cells: no seed in common
    # gave a mean difference of NaN ("+nan (0)") beside "too few seeds (n=0)".
    base = row({"injection_task": "none"}, {1: 0.5, 2: 0.6, 3: 0.7})
    combo = row({"injection_task": "demo_pos"}, {4: 0.8, 5: 0.85, 6: 0.9})
    cells = compare(combo, base, compared=False).cells()
    assert cells == {"diff_mean": None, "diff_ci_low": None, "diff_ci_high": None, "diff_n": 0,
                     "verdict": "too few seeds (n=0)"}  # fmt: skip
    assert format_diff(cells) == "-"


def test_differences_that_vary_by_less_than_a_millionth_still_get_an_interval() -> None:
    # Kills: no_spread's tolerance 1e-9 -> 1e-6: a spread far above float rounding (2e-7) read "same
    # difference at every seed: no interval".
    stats = pytest.importorskip("scipy.stats")
    base = row({"injection_task": "none"}, {1: 0.5, 2: 0.6, 3: 0.7})
    combo = row({"injection_task": "demo_pos"}, {1: 0.5001, 2: 0.6001001, 3: 0.7001002})
    comparison = compare(combo, base, compared=False)
    diffs = np.array([0.5001 - 0.5, 0.6001001 - 0.6, 0.7001002 - 0.7])
    half = stats.t.ppf(0.975, 2) * np.std(diffs, ddof=1) / np.sqrt(3)
    assert comparison.verdict == "better"
    assert comparison.ci == pytest.approx((diffs.mean() - half, diffs.mean() + half), abs=1e-9)


def test_trainable_params_are_the_rounded_mean() -> None:
    # Kills: round -> int in costs (1000.67 shown as 1,000).
    combo = row({"injection_task": "demo_pos"}, {1: 0.8, 2: 0.8, 3: 0.8})
    for j, params in zip(combo.finished, (1000.0, 1001.0, 1001.0), strict=True):
        j.metrics.update({"target/trainable_params": params, "target/total_params": 4000.0})
    found = costs(combo)
    assert found["trainable_params"] == 1001
    assert found["trainable_share"] == pytest.approx((1000 + 1001 + 1001) / 3 / 4000)


def test_a_lower_is_better_score_of_a_further_dev_set_is_judged_lower_is_better(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Kills: `partition("/eval_")[2]` -> `[0]` in score_is_higher (no name matched, every score
    # counted as higher-is-better); unseen while every registered metric is higher-is-better.
    wer = MetricSpec(
        keys=("wer",), reads=next(iter(METRICS.values())).reads, higher_is_better=False
    )
    monkeypatch.setattr(sweep_stats, "METRICS", {**METRICS, "wer": wer})
    assert score_is_higher("target/eval_wer") is False
    assert score_is_higher("target/eval_mismatched_wer") is False
    assert score_is_higher("target/eval_power") is True  # ends in "wer", not "_wer"
    assert score_is_higher(ACC) is True


def test_a_rows_direction_is_its_finished_jobs_not_a_failure_before_its_config_validated() -> None:
    # Kills: TableRow.higher_is_better read from a failed job first: one refused before its config
    # validated records higher-is-better (no metric yet), and flipped a loss row's verdict.
    loss = "target/eval_loss"
    base = row({"injection_task": "none"}, {1: 0.60, 2: 0.50, 3: 0.55}, metric=loss)
    combo = row({"injection_task": "demo_pos"}, {1: 0.50, 2: 0.41, 3: 0.44}, metric=loss)
    for loss_row in (base, combo):
        loss_row.finished = [replace(j, higher_is_better=False) for j in loss_row.finished]
    refused = replace(job(4, error="LayerftError: refused"), selection_metric="")
    combo.failed = [refused]
    assert (combo.selection_metric, combo.higher_is_better) == (loss, False)
    assert compare(combo, base, compared=False).verdict == "better"  # the loss went down


def test_a_failed_job_of_a_seed_the_row_averages_is_a_failure_unless_a_later_attempt() -> None:
    # Kills: dropping `job.later_attempt` in TableRow.later_failed_seeds: another folder's failed
    # run of the same settings and seed (no later attempt of the result kept) was no failure and
    # read "later attempt failed".
    combo = row({"injection_task": "demo_pos"}, {1: 0.8, 2: 0.82})
    combo.failed = [job(2, error="RuntimeError: boom")]
    assert combo.later_failed_seeds() == []
    assert costs(combo)["failed"] == 1
    assert notes(combo, None, "row") == []


def test_an_older_layerfts_failure_is_no_older_result() -> None:
    # Kills: TableRow.older_seeds over the failed jobs too: a failure an older layerft recorded has
    # no result in the row, yet the row read "older layerft: seed 3".
    combo = row({"injection_task": "demo_pos"}, {1: 0.8, 2: 0.82})
    combo.failed = [replace(job(3, error="RuntimeError: boom"), results_version=1)]
    assert combo.older_seeds() == []
    assert notes(combo, None, "row") == []


# --- sweep_notes ---------------------------------------------------------------------------------


def test_a_row_with_a_seed_its_baseline_lacks_says_so() -> None:
    # Kills: the seeds note only where the row lacks a baseline seed (`theirs - mine`): its mean
    # over seeds 1-4 beside the baseline's 1-3 went unsaid.
    base = row({"injection_task": "none"}, {1: 0.5, 2: 0.6, 3: 0.7})
    combo = row({"injection_task": "demo_pos"}, {1: 0.6, 2: 0.7, 3: 0.8, 4: 0.2})
    assert notes(combo, base, "row") == ["seeds differ from baseline: 1 2 3 4 vs 1 2 3"]


def test_a_row_whose_jobs_all_failed_has_no_seeds_note() -> None:
    # Kills: `if mine and theirs` -> `if mine or theirs` in notes: a row of failed jobs read
    # "seeds differ from baseline:  vs 1 2 3" beside its verdict "all 2 jobs failed".
    base = row({"injection_task": "none"}, {1: 0.5, 2: 0.6, 3: 0.7})
    combo = TableRow({"injection_task": "demo_pos"}, [], [job(s, error="OOM") for s in (1, 2)])
    assert notes(combo, base, "row") == []
    assert notes(base, combo, "row") == []  # nor a row whose baseline's did


def test_a_baseline_on_another_selection_metric_gets_no_seeds_note() -> None:
    # Kills: dropping `base.selection_metric == metric` in notes: a row without a baseline (another
    # selection metric) was told its seeds differ from the baseline's, on the baseline's accuracy.
    base = row({"injection_task": "none"}, {1: 0.5, 2: 0.6}, metric="target/eval_macro_f1")
    for j in base.finished:
        j.metrics[ACC] = 0.5
    combo = row({"injection_task": "demo_pos"}, {1: 0.6, 2: 0.7, 3: 0.8})
    assert notes(combo, base, "row") == []


def test_cpu_threads_are_compared_with_a_baseline_on_the_same_selection_metric_only() -> None:
    # A baseline on another selection metric is no baseline: no note on its thread counts either.
    base = row({"injection_task": "none"}, {1: 0.5, 2: 0.6}, metric="target/eval_macro_f1")
    combo = row({"injection_task": "demo_pos"}, {1: 0.6, 2: 0.7})
    base.finished = [replace(j, cpu_threads=2) for j in base.finished]
    combo.finished = [replace(j, cpu_threads=1) for j in combo.finished]
    assert notes(combo, base, "row") == []
    base.finished = [replace(j, selection_metric=ACC) for j in base.finished]
    assert notes(combo, base, "row") == [
        "CPU threads differ from baseline: seed 1 (1 vs 2), seed 2 (1 vs 2)"
    ]
    assert notes(combo, combo, "row") == []  # a baseline row itself


def test_a_baseline_value_the_rows_leaving_it_unset_hold_names_those_rows(tmp_path: Path) -> None:
    # adapter_study given a rate axis in a folder of its earlier results: those leave
    # target_task.lr unset (the task's own 5e-5), and `--baseline target_task.lr=5e-5` was refused
    # after every job had run (a diff review).
    old = tmp_path / "old"
    (old / ".hydra").mkdir(parents=True)
    (old / ".hydra" / "config.yaml").write_text("target_task:\n  lr: 5.0e-05\n")
    jobs = [job(1, 0.5, settings={"tuning_mode": "full"}, run_dir=old),
            job(1, 0.6, settings={"tuning_mode": "lora", "target_task.lr": "0.001"})]  # fmt: skip
    spec = check_baseline({"tuning_mode": "full", "target_task.lr": "5e-5"}, jobs)
    assert spec == {"tuning_mode": "full", "target_task.lr": "-"}
    with pytest.raises(LayerftError, match=r"baseline target_task.lr=3e-5 is in no job; give one "):
        check_baseline({"target_task.lr": "3e-5"}, jobs)


# --- sweep_diffs ---------------------------------------------------------------------------------


def test_the_other_scores_table_is_a_markdown_table_of_the_scores_compared() -> None:
    # Kills: a separator row one `---|` short in other_scores_lines (the header and separator had
    # different cell counts: markdown rendered the table as text); and dropping its filter of
    # scores no row has a difference on (a stage-1 score beside a row without stage 1: a column
    # of "not in both"; test_aggregate checks the header as a substring only).
    f1, stage1 = "target/eval_macro_f1", "injection/eval_token_accuracy"
    base = row({"injection_task": "none"}, {1: 0.5, 2: 0.6, 3: 0.7})
    combo = row({"injection_task": "demo_pos"}, {1: 0.6, 2: 0.65, 3: 0.8})
    for combo_row, scores in ((base, (0.40, 0.50, 0.45)), (combo, (0.44, 0.55, 0.48))):
        for j, value in zip(combo_row.finished, scores, strict=True):
            j.metrics[f1] = value
            if combo_row is combo:
                j.metrics[stage1] = 0.9
    table = build_table([base, combo], ["injection_task"], {}, [base, base], extra=[])
    assert table.metrics == [f1, stage1] and table.rows[1][f"{stage1}_verdict"] == "not in both"
    lines = other_scores_lines(table)
    assert lines[5:7] == [f"| injection_task | {f1} |", "|---|---|"]
    diffs = np.array([0.04, 0.05, 0.03])
    low, high = paired_t_interval(diffs)
    assert lines[7:] == [
        "| none | baseline |",
        f"| demo_pos | +0.0400 [{low:+.4f}, {high:+.4f}] (3) better |",
    ]


# --- sweep_baseline ------------------------------------------------------------------------------


def test_a_baseline_whose_jobs_all_failed_pairs_by_their_configs(tmp_path: Path) -> None:
    # Kills: reading only the finished jobs' configs in at_same_values: a baseline whose every job
    # failed (Hydra wrote their configs) lost its row, "no baseline" where the row's verdict is
    # "all 3 baseline jobs failed".
    settings = {"injection_task": "none"}
    failed = []
    for seed in (1, 2, 3):
        run_dir = tmp_path / "none" / str(seed)
        (run_dir / ".hydra").mkdir(parents=True)
        (run_dir / ".hydra" / "config.yaml").write_text(LR_DEFAULT)
        failed.append(job(seed, settings=settings, run_dir=run_dir, error="RuntimeError: OOM"))
    base = TableRow(settings, [], failed)
    combo = row({"injection_task": "demo_pos", "target_task.lr": "5e-5"}, {1: 0.6, 2: 0.7, 3: 0.8},
                root=tmp_path, config=LR_DEFAULT)  # fmt: skip
    assert baselines([base, combo], {"injection_task": "none"}) == [base, base]
    assert compare(combo, base, compared=False).verdict == "all 3 baseline jobs failed"


def test_a_config_without_the_key_does_not_hold_its_value(tmp_path: Path) -> None:
    # Kills: `found is None or ...` -> `found is not None and ...` in ComposedConfigs.hold: a config
    # that has no such key at all held any value of it.
    run_dir = tmp_path / "job"
    (run_dir / ".hydra").mkdir(parents=True)
    (run_dir / ".hydra" / "config.yaml").write_text(LR_DEFAULT)
    jobs = [job(1, 0.5, run_dir=run_dir)]
    assert not ComposedConfigs().hold(jobs, {"target_task.warmup_ratio": "0.1"})
    assert ComposedConfigs().hold(jobs, {"target_task.lr": "5e-5"})


def test_an_unreadable_config_is_skipped_and_the_readable_ones_decide(tmp_path: Path) -> None:
    # Kills: an unreadable config (none written, or not a mapping) answering False in
    # ComposedConfigs.hold, and a YAML list read as a config: README, "at least one job's config is
    # readable, and each readable one holds every value".
    jobs = []
    for seed, text in ((1, LR_DEFAULT), (2, None), (3, "- 1\n- 2\n")):
        run_dir = tmp_path / str(seed)
        (run_dir / ".hydra").mkdir(parents=True)
        if text is not None:
            (run_dir / ".hydra" / "config.yaml").write_text(text)
        jobs.append(job(seed, 0.5, run_dir=run_dir))
    assert ComposedConfigs().hold(jobs, {"target_task.lr": "5e-5"})
    assert not ComposedConfigs().hold(jobs[1:], {"target_task.lr": "5e-5"})  # none readable


def test_a_boolean_in_a_config_holds_the_override_spelling(tmp_path: Path) -> None:
    # Kills: a config's boolean as Python spells it (`True`) in _text: `trainer.fp16=true` beside a
    # baseline whose config has fp16 true never paired.
    run_dir = tmp_path / "job"
    (run_dir / ".hydra").mkdir(parents=True)
    (run_dir / ".hydra" / "config.yaml").write_text("trainer:\n  fp16: true\n")
    jobs = [job(1, 0.5, run_dir=run_dir)]
    assert ComposedConfigs().hold(jobs, {"trainer.fp16": "true"})
    assert not ComposedConfigs().hold(jobs, {"trainer.fp16": "false"})


def test_a_baseline_refused_before_its_config_validated_says_its_jobs_failed() -> None:
    # Its jobs record no selection metric (""): the rows beside it said "no baseline", where
    # failures of validated jobs say "all 3 baseline jobs failed" (the mutation audit found it).
    refused = [
        replace(job(s, error="LayerftError: refused"), selection_metric="") for s in (1, 2, 3)
    ]
    base = TableRow({"injection_task": "none"}, [], refused)
    combo = row({"injection_task": "demo_pos"}, {1: 0.8, 2: 0.81, 3: 0.83})
    assert compare(combo, base, compared=False).verdict == "all 3 baseline jobs failed"


def test_a_score_that_is_not_finite_gets_no_verdict() -> None:
    # layerft never writes NaN, but json reads one a record was edited to hold: its interval was
    # (nan, nan), and `nan <= 0 <= nan` being false, the verdict "worse".
    base = row({"injection_task": "none"}, {1: 0.5, 2: 0.6, 3: 0.7})
    combo = row({"injection_task": "demo_pos"}, {1: 0.8, 2: float("nan"), 3: 0.83})
    comparison = compare(combo, base, compared=False)
    assert comparison.verdict == "a score is not finite" and comparison.ci is None
