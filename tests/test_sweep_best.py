"""`--best-of`: best.csv and best.md, each row at its best value of the named settings."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest
from test_aggregate import ACC, spread, write_job

from layerft import sweep as sweep_module
from layerft.aggregate import aggregate
from layerft.errors import LayerftError

# The adapter study's question: each mode at its own best rate. Full fine-tuning is best at 5e-5,
# LoRA at 1e-3, where full fine-tuning is worse than LoRA: a comparison at one rate misleads.
SCORES = {
    ("full", "5e-5"): 0.80,
    ("full", "1e-3"): 0.60,
    ("lora", "5e-5"): 0.55,
    ("lora", "1e-3"): 0.75,
}


def write_grid(root: Path, scores: dict[tuple[str, str], float] = SCORES, **kwargs) -> None:
    """Three seeds of each (mode, rate), each seed's score off the mean by spread(seed) times the
    rate's index (the differences vary by seed, so they get a verdict)."""
    for (mode, lr), score in scores.items():
        for seed in (1, 2, 3):
            value = score + spread(seed) * (1 + (lr == "1e-3"))
            path = root / f"{mode}-{lr}" / str(seed)
            overrides = (f"target_task.lr={lr}",)
            write_job(path, seed, value, tuning_mode=mode, overrides=overrides, **kwargs)


def best_rows(root: Path) -> list[dict[str, str]]:
    with (root / "best.csv").open(encoding="utf-8") as file:
        return list(csv.DictReader(file))


def test_each_row_is_at_its_best_value_and_compared_with_the_baselines_best(tmp_path) -> None:
    write_grid(tmp_path)
    result = aggregate(tmp_path, baseline={"tuning_mode": "full"}, best_of=["target_task.lr"])
    rows = best_rows(tmp_path)
    assert [(r["tuning_mode"], r["target_task.lr"]) for r in rows] == [
        ("full", "5e-5"),
        ("lora", "1e-3"),
    ]
    full, lora = rows
    assert float(full[f"{ACC}_mean"]) == pytest.approx(0.80)
    assert float(lora[f"{ACC}_mean"]) == pytest.approx(0.75)
    # LoRA at its best (1e-3) against full fine-tuning at its best (5e-5), not at 1e-3 (+0.15)
    assert float(lora["diff_mean"]) == pytest.approx(-0.05)
    assert lora["verdict"] == "worse" and full["verdict"] == "baseline"
    assert lora["candidates"] == "5e-5: 0.5500 (3); 1e-3: 0.7500 (3)"
    # The baseline's rate given too (as the adapter study's README line does): the same pairing
    aggregate(tmp_path, {"tuning_mode": "full", "target_task.lr": "5e-5"}, best_of=["target_task.lr"])  # fmt: skip
    assert float(best_rows(tmp_path)[1]["diff_mean"]) == pytest.approx(-0.05)
    # results.csv keeps every row, each compared at its own rate
    assert (
        len(result.rows) == 4 and result.best is not None and result.best_of == ["target_task.lr"]
    )
    markdown = (tmp_path / "best.md").read_text()
    assert markdown.startswith("# Best of target_task.lr\n")
    assert "chosen on these same dev scores, so a row's score overstates" in markdown
    assert "same settings but tuning_mode=full" in markdown
    assert "| tuning_mode=lora,target_task.lr=1e-3 | 5e-5: 0.5500 (3); 1e-3: 0.7500 (3) |" in markdown  # fmt: skip


def test_a_lower_is_better_metric_chooses_the_lowest(tmp_path) -> None:
    loss = "target/eval_loss_rmse"
    write_grid(tmp_path, metric=loss, higher_is_better=False)
    aggregate(tmp_path, baseline={"tuning_mode": "full"}, best_of=["target_task.lr"])
    assert [(r["tuning_mode"], r["target_task.lr"]) for r in best_rows(tmp_path)] == [
        ("full", "1e-3"),
        ("lora", "5e-5"),
    ]
    assert (
        "\nA cell is mean ± sample std (n seeds; ddof=1); lower is better.\n"
        in (tmp_path / "best.md").read_text()
    )


def test_a_first_row_that_failed_before_its_metric_was_known_names_no_direction(tmp_path) -> None:
    # best.md and results.md took the direction of the first row, whose jobs, failed before the
    # config validated, default to higher: a loss grid read "higher is better".
    write_grid(tmp_path, metric="target/eval_loss", higher_is_better=False)
    for seed in (1, 2):
        path = tmp_path / "bitfit" / str(seed)  # first in table order
        write_job(path, seed, error="boom", metric="", tuning_mode="bitfit", overrides=(f"{LR}=5e-5",))  # fmt: skip
    aggregate(tmp_path, best_of=[LR])
    best, results = ((tmp_path / name).read_text() for name in ("best.md", "results.md"))
    assert "\nA cell is mean ± sample std (n seeds; ddof=1); lower is better.\n" in best
    assert "\nSelection metric: `target/eval_loss` (lower is better).\n" in results


def test_best_md_says_how_to_read_its_cells_and_what_every_job_shares(tmp_path) -> None:
    # It said neither what a cell holds nor the model and task every row is of: read alone (it
    # is the adapter study's answer), its numbers belonged to no stated model or task.
    write_grid(tmp_path)
    aggregate(tmp_path, best_of=["target_task.lr"])
    results, best = (
        (tmp_path / name).read_text().splitlines() for name in ("results.md", "best.md")
    )
    shared = [line for line in results if line.startswith(("runtime: ", "Scores: ", "Same in"))]
    assert [line.split(":")[0] for line in shared] == ["runtime", "Scores", "Same in every job"]
    assert "`target_task=demo_sentiment`" in shared[2]
    start = best.index("A cell is mean ± sample std (n seeds; ddof=1); higher is better.")
    assert best[start + 1 : start + 4] == shared


def test_a_tie_goes_to_the_first_value_and_a_failed_one_is_never_chosen(tmp_path) -> None:
    scores = {("full", "5e-5"): 0.7, ("full", "1e-3"): 0.7, ("lora", "5e-5"): 0.5}
    write_grid(tmp_path, scores)
    for seed in (1, 2, 3):  # LoRA at 1e-3 failed before its config was checked: no metric
        path = tmp_path / "lora-1e-3" / str(seed)
        overrides = ("target_task.lr=1e-3",)
        write_job(path, seed, error="boom", metric="", tuning_mode="lora", overrides=overrides)
    # A NaN (no layerft record holds one: refused as damaged, run_record.record_problem) first
    # in table order, a worse finite score after it: the finite one is the only candidate
    # A value most of whose seeds failed is chosen on those that finished, and says so
    write_job(tmp_path / "full-1e-3" / "4", 4, error="OOM", tuning_mode="full", overrides=("target_task.lr=1e-3",))  # fmt: skip
    write_job(tmp_path / "nan" / "1", 1, math.nan, tuning_mode="bitfit", overrides=("target_task.lr=1e-4",))  # fmt: skip
    write_job(tmp_path / "low" / "1", 1, 0.1, tuning_mode="bitfit", overrides=("target_task.lr=1e-3",))  # fmt: skip
    aggregate(tmp_path, best_of=["target_task.lr"])
    rows = {r["tuning_mode"]: r for r in best_rows(tmp_path)}
    # 5e-5 and 1e-3 tie at 0.7 on average (their spreads cancel): the first in table order
    assert rows["full"]["target_task.lr"] == "5e-5"
    assert rows["full"]["candidates"] == "5e-5: 0.7000 (3); 1e-3: 0.7000 (3, 1 failed)"
    assert rows["lora"]["target_task.lr"] == "5e-5"
    assert rows["lora"]["candidates"] == "5e-5: 0.5000 (3); 1e-3: failed"
    assert rows["bitfit"]["target_task.lr"] == "1e-3"
    assert rows["bitfit"]["candidates"] == "1e-3: 0.1000 (1)"


def test_a_group_of_failed_rows_is_shown_failed(tmp_path) -> None:
    write_grid(tmp_path, {("full", "5e-5"): 0.7})
    write_job(tmp_path / "lora" / "1", 1, error="boom", tuning_mode="lora", overrides=("target_task.lr=5e-5",))  # fmt: skip
    aggregate(tmp_path, best_of=["target_task.lr"])
    lora = {r["tuning_mode"]: r for r in best_rows(tmp_path)}["lora"]
    assert lora["verdict"] == "its 1 job failed" and lora["candidates"] == "5e-5: failed"


def test_no_best_of_a_setting_no_job_has_nor_over_settings_that_change_the_task(tmp_path) -> None:
    write_grid(tmp_path)
    with pytest.raises(
        LayerftError, match=r"--best-of target_task\.l: no job sets it \(settings: "
    ):
        aggregate(tmp_path, best_of=["target_task.l"])
    with pytest.raises(LayerftError, match="^--best-of seed: a row folds its seeds$"):
        aggregate(tmp_path, best_of=["target_task.lr", "seed"])
    assert not (tmp_path / "best.csv").exists() and not (tmp_path / "results.csv").exists()
    for seed in (1, 2, 3):  # another task, another selection metric: no best of the two
        write_job(tmp_path / "sts" / str(seed), seed, 0.5, metric="target/eval_pearsonr",
                  target_task="klue_sts", overrides=("target_task.lr=5e-5",))  # fmt: skip
    with pytest.raises(LayerftError, match="choose on different metrics"):
        aggregate(tmp_path, best_of=["target_task"])
    # After a sweep, a refused --best-of leaves the default tables, and no stale best.csv
    aggregate(tmp_path, best_of=["target_task.lr"])
    refused = sweep_module.tabled("demo", [], tmp_path, None, None, (), ["target_task"])
    assert refused is not None and "choose on different metrics" in refused
    assert (tmp_path / "results.csv").exists() and not (tmp_path / "best.csv").exists()


def test_sweep_py_aggregate_writes_best_csv_and_a_later_one_without_it_removes_it(
    tmp_path, capsys
) -> None:
    write_grid(tmp_path)
    folder = str(tmp_path)
    assert sweep_module.main(["aggregate", folder, "--best-of", "target_task.lr"]) == 0
    assert f"wrote {tmp_path / 'best.md'}" in capsys.readouterr().out
    assert len(best_rows(tmp_path)) == 2
    # The default baseline (injection_task=none) is no row here: every row says so
    assert {r["verdict"] for r in best_rows(tmp_path)} == {"no baseline"}
    assert sweep_module.main(["aggregate", folder]) == 0
    assert not (tmp_path / "best.csv").exists() and not (tmp_path / "best.md").exists()


# --- a review's cases: a grid extended later, settings that do not apply, an empty baseline,
# rows choosing on different metrics

LR = "target_task.lr"


def with_lr(run_dirs: list[Path], lr: str) -> None:
    """The composed config Hydra writes in each job folder (its rate at `lr`)."""
    for run_dir in run_dirs:
        (run_dir / ".hydra").mkdir(exist_ok=True)
        (run_dir / ".hydra" / "config.yaml").write_text(f"target_task:\n  lr: {lr}\n")


def write_rows(root: Path, rows: dict[tuple[str, str | None], float], **kwargs) -> None:
    """Three seeds of each (mode, rate); rate None: left unset (the task's own, 5e-5)."""
    for (mode, lr), score in rows.items():
        overrides = (f"{LR}={lr}",) if lr else ()
        dirs = [
            write_job(root / f"{mode}-{lr}" / str(seed), seed, score + spread(seed) * (1 + (mode == "lora")),
                      tuning_mode=mode, overrides=overrides, **kwargs)
            for seed in (1, 2, 3)
        ]  # fmt: skip
        with_lr(dirs, "5.0e-05" if lr in (None, "5e-5") else lr)


def test_a_group_joins_the_row_that_leaves_its_setting_at_the_value_another_spells_out(
    tmp_path,
) -> None:
    # A grid extended later: full fine-tuning ran at the task's own rate (lr unset), its
    # spelled-out repeat skipped as finished; LoRA ran at 5e-5 spelled out. Both are at 5e-5:
    # the best mode at 5e-5 is one row of the two, not two rows of one candidate each.
    scores = {("full", None): 0.80, ("lora", "5e-5"): 0.85, ("full", "1e-3"): 0.6, ("lora", "1e-3"): 0.7}  # fmt: skip
    write_rows(tmp_path, scores, injection_task="none")
    aggregate(tmp_path, best_of=["tuning_mode"])
    rows = {r[LR]: r for r in best_rows(tmp_path)}
    assert len(rows) == 2, [r["candidates"] for r in rows.values()]
    at_default = rows.get("5e-5") or rows["-"]
    assert at_default["tuning_mode"] == "lora"
    assert at_default["candidates"] == "full: 0.8000 (3); lora: 0.8500 (3)"
    # Without a config to read, nothing says the two are one value: two groups
    for config in tmp_path.rglob("config.yaml"):
        config.unlink()
    aggregate(tmp_path, best_of=["tuning_mode"])
    assert len(best_rows(tmp_path)) == 3


def test_a_baseline_of_only_best_of_keys_gives_no_row_a_baseline(tmp_path) -> None:
    # best.md says "no baseline"; each row read "baseline of no row", as if it were one.
    write_rows(tmp_path, {("full", "5e-5"): 0.8, ("full", "1e-3"): 0.6, ("lora", "1e-3"): 0.7})
    aggregate(tmp_path, baseline={LR: "5e-5"}, best_of=[LR])
    assert {r["verdict"] for r in best_rows(tmp_path)} == {"no baseline"}
    markdown = (tmp_path / "best.md").read_text()
    assert "vs baseline: no baseline" in markdown
    # The default baseline (injection_task=none) is no `--baseline` the user gave
    aggregate(tmp_path, best_of=["injection_task"])
    assert {r["verdict"] for r in best_rows(tmp_path)} == {"no baseline"}
    assert "every `--baseline` setting" not in (tmp_path / "best.md").read_text()


def write_splits(root: Path, none: float) -> None:
    """Three seeds of stage 1 under lower1 (0.75) and upper1 (0.8), and of no stage 1 (`none`):
    a row that never reads layer_split."""
    for task, split, score in [("none", None, none), ("demo_pos", "lower1", 0.75), ("demo_pos", "upper1", 0.8)]:  # fmt: skip
        for seed in (1, 2, 3):
            choices = {"layer_split": split} if split else {}
            write_job(root / f"{task}-{split}" / str(seed), seed, score + spread(seed),
                      injection_task=task, **choices)  # fmt: skip


def test_best_md_says_no_dash_is_an_options_value_where_the_setting_does_not_apply(
    tmp_path,
) -> None:
    # layer_split under injection_task=none never applies: `-` there is no value of its options
    write_splits(tmp_path, none=0.7)
    aggregate(tmp_path, best_of=["layer_split"])
    rows = {r["injection_task"]: r for r in best_rows(tmp_path)}
    assert rows["none"]["layer_split"] == "-" and rows["demo_pos"]["layer_split"] == "upper1"
    markdown = (tmp_path / "best.md").read_text()
    assert "`-` in `layer_split`: the value its options give." not in markdown
    assert "(or the setting does not apply to it)" in markdown  # results.md's own note


def test_rows_choosing_on_different_metrics_are_named_by_the_two_metrics(tmp_path) -> None:
    # Three tasks, two on accuracy: the message named the two accuracy tasks
    for task, metric in [("demo_sentiment", ACC), ("klue_nli", ACC), ("klue_sts", "target/eval_pearsonr")]:  # fmt: skip
        for seed in (1, 2):
            write_job(tmp_path / task / str(seed), seed, 0.5, metric=metric, target_task=task)
    with pytest.raises(LayerftError) as caught:
        aggregate(tmp_path, best_of=["target_task"])
    assert "target_task=demo_sentiment and target_task=klue_sts choose on" in str(caught.value)


def test_best_md_names_each_rows_own_selection_metric_where_they_differ(tmp_path) -> None:
    for task, metric in [("demo_sentiment", ACC), ("klue_sts", "target/eval_pearsonr")]:
        for lr in ("5e-5", "1e-3"):
            for seed in (1, 2):
                write_job(tmp_path / f"{task}-{lr}" / str(seed), seed, 0.5, metric=metric,
                          target_task=task, overrides=(f"{LR}={lr}",))  # fmt: skip
    aggregate(tmp_path, best_of=[LR])
    markdown = (tmp_path / "best.md").read_text()
    assert "best mean `selection`" not in markdown
    assert "best mean of its own selection metric" in markdown


def test_a_row_that_never_reads_a_setting_is_a_candidate_of_each_of_its_values(tmp_path) -> None:
    # `--best-of injection_task` over layer_split: the row without stage 1 has no split, its one
    # run serves every split; it was a group of its own, and no split's row weighed it
    write_splits(tmp_path, none=0.78)
    aggregate(tmp_path, best_of=["injection_task"])
    rows = {r["layer_split"]: r for r in best_rows(tmp_path)}
    assert sorted(rows) == ["lower1", "upper1"]  # each split once, none a row of its own
    assert rows["lower1"]["injection_task"] == "none"  # 0.78 over demo_pos's 0.75
    assert rows["upper1"]["injection_task"] == "demo_pos"
    assert rows["lower1"]["candidates"] == "demo_pos: 0.7500 (3); none: 0.7800 (3)"


def test_a_tie_goes_to_the_value_left_unset_and_the_notes_name_the_tied(tmp_path) -> None:
    # Numbers sort before `-`: a tie went to lr=1e4, first in table order, over the task's own rate.
    write_rows(tmp_path, {("full", None): 0.7, ("full", "1e4"): 0.7}, injection_task="none")
    aggregate(tmp_path, best_of=[LR])
    [row] = best_rows(tmp_path)
    assert (row[LR], row["candidates"]) == ("-", "1e4: 0.7000 (3); -: 0.7000 (3)")
    assert row["notes"] == "tie: 1e4 vs -"
    assert (
        "On a tie, `tie:` in its notes names the values tied" in (tmp_path / "best.md").read_text()
    )
