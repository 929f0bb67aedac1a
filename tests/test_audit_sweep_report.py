"""Lines a mutation audit of a sweep's reports found unguarded: the plan's marks and counts, the
summary after a launch, the repeated-values warning, results.md's job counts, left-out lists and
cells, the table options checked before a job runs, and how settings are named and compared (each
test names the mutation it kills)."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import pytest
from compose import compose_config
from omegaconf import OmegaConf
from test_aggregate import ACC, write_job
from test_audit_stats import baseline_pair
from test_audit_stats import job as stats_job

from layerft import sweep_options, sweep_summary
from layerft.aggregate import aggregate
from layerft.config import resolve_config
from layerft.errors import LayerftError
from layerft.run_record import older_results
from layerft.sweep_diffs import md_summary, other_scores_lines
from layerft.sweep_grid import Combination
from layerft.sweep_options import aggregate_dir, baseline_pairs, check_table_options, tabled
from layerft.sweep_report import SweepFolder, csv_text
from layerft.sweep_settings import effective_settings, job_settings, setting_value
from layerft.sweep_stats import summary
from layerft.sweep_status import Stale, Status, left_out
from layerft.sweep_table import build_table

STORED = "stored: reused where the data and, on a CPU, torch's thread count are as they were"
BLOCKED = "blocked: its folder holds another config's result"


def combination(label: str, fingerprint: str, stage1: str | None = None, stored: bool = False):
    return Combination([label], fingerprint, stage1, label, stage1_stored=stored)


# --- sweep_summary ------------------------------------------------------------------------------


@pytest.fixture
def grid(tmp_path: Path) -> tuple[list[Combination], Status]:
    """Seven combinations: A done, B done by results version 1, C done on changed data, D and G to
    run, E the same config as D (D's run serves it), F blocked by another config's result."""
    a, b = combination("A", "a", "k1", stored=True), combination("B", "b", "k1", stored=True)
    c, d, e = combination("C", "c", "k2"), combination("D", "d"), combination("E", "d")
    f, g = combination("F", "f"), combination("G", "g")
    state = Status(
        done=[(a, tmp_path / "A"), (b, tmp_path / "B")],
        failed=[],
        missing=[d, e, f, g],
        stale=[Stale(c, tmp_path / "C", ["train"], [])],
        older=[(b, tmp_path / "B", 1)],
        blocked=[(f, tmp_path / "F")],
    )
    return [a, b, c, d, e, f, g], state


def test_the_plan_marks_and_counts_each_fate(grid, capsys, tmp_path: Path) -> None:
    """Kills in print_plan: every stage-1 key counted as stored (`if c.stage1` for
    `if c.stage1_stored`); the stale or the served left in `todo`; a blocked job subtracted even
    where a repeat serves it; `, stored` dropped; the older mark or the blocked mark dropped."""
    combinations, state = grid
    sweep_summary.print_plan(combinations, state, False)
    lines = capsys.readouterr().out.splitlines()
    # 2 stage-1 keys (k1, k2), of which only k1 is stored; 7 combinations of 6 fingerprints
    assert (
        lines[0] == f"7 combinations (6 distinct runs), 2 distinct stage-1 trainings (1 {STORED})"
    )
    assert lines[1:8] == [
        "  [done] A  (stage1 k1, stored)",
        "  [done by results version 1] B  (stage1 k1, stored)",
        "  [done on other data: train changed] C  (stage1 k2)",
        "  [todo] D  (no stage 1)",
        "  [todo] E  (no stage 1; the run of D)",
        f"  [{BLOCKED}] F  (no stage 1)",
        "  [todo] G  (no stage 1)",
    ]
    # 7 - 2 done - 1 stale - 1 served (E) - 1 blocked (F, no repeat serves it) = D and G
    assert lines[8] == "2 done, 2 to run (1 served by another job's run)"
    assert lines[9].startswith("1 done on data files changed since: not launched;")
    assert lines[10] == (
        f"1 done by an older layerft ({older_results(1)}): reused as they are; --force reruns "
        "them (overrides can narrow the grid to them)"
    )
    assert lines[11].startswith("1 blocked: the job folder holds the result of another config")
    assert len(lines) == 12


def test_a_forced_plan_marks_no_job_done_and_runs_the_stale_ones(grid, capsys) -> None:
    """Kills in print_plan under --force: `done` marks kept (`marks = {...}` without `if force`),
    the older marks kept, `done = len(state.done)`, the stale not launched (`stale =
    list(state.stale)`), and the older note printed."""
    combinations, state = grid
    sweep_summary.print_plan(combinations, state, True)
    lines = capsys.readouterr().out.splitlines()
    marks = [line.split("]")[0].strip(" [") for line in lines[1:8]]
    assert marks == ["todo", "todo", "todo", "todo", "todo", BLOCKED, "todo"]
    # 7 - 0 done - 1 served (E) - 1 blocked (F) = A, B, C, D and G
    assert lines[8] == "0 done, 5 to run (1 served by another job's run) (--force)"
    assert lines[9].startswith("1 blocked:") and len(lines) == 10


def test_a_plan_of_distinct_runs_gives_no_distinct_count(capsys) -> None:
    """Kills: `distinct <= len(combinations)` (every plan said `(n distinct runs)`)."""
    combinations = [combination("A", "a"), combination("B", "b")]
    sweep_summary.print_plan(combinations, Status([], [], combinations), False)
    assert capsys.readouterr().out.splitlines()[0] == "2 combinations, 0 distinct stage-1 trainings"


@pytest.mark.parametrize(("count", "listed"), [(3, "F1, F2, F3"), (4, "F1, F2, F3, ...")])
def test_the_blocked_note_lists_three_folders_then_dots(count: int, listed: str) -> None:
    """Kills: `blocked[:2]` and `len(blocked) >= 3` in blocked_note."""
    blocked = [(combination(f"F{i}", f"f{i}"), Path(f"F{i}")) for i in range(1, count + 1)]
    assert sweep_summary.blocked_note(blocked).startswith(f"{count} blocked: ")
    assert sweep_summary.blocked_note(blocked).endswith(f"folders to redo them ({listed})")


def test_the_blocked_note_says_what_the_first_differs_in(tmp_path: Path) -> None:
    """Kills dropping the `; <label> differs from its folder's in ...` tail of blocked_note: the
    one line that says which setting sent another config's result into the folder."""
    kept = tmp_path / "F1" / ".hydra" / "finished"
    kept.mkdir(parents=True)
    (kept / "config.yaml").write_text(OmegaConf.to_yaml(compose_config("model=tiny")))
    first = replace(
        combination("F1", "f1"), resolved=resolve_config(compose_config("model=tiny", "seed=2"))
    )
    note = sweep_summary.blocked_note([(first, tmp_path / "F1")])
    assert note.endswith(f"({tmp_path / 'F1'}); F1 differs from its folder's in seed: 42 -> 2")


def test_the_summary_names_each_job_by_its_fate(tmp_path: Path, capsys) -> None:
    """Kills in print_summary: the unfinished counted as not run too (`not_run =
    len(state.missing)`), a failure pointed at metrics.json, an unfinished job also listed as NOT
    RUN (no `continue`), the blocked note dropped, and the older note dropped."""
    done, failed, stale = combination("A", "a"), combination("B", "b"), combination("C", "c")
    killed, blocked, plain = combination("X", "x"), combination("Y", "y"), combination("Z", "z")
    state = Status(
        done=[(done, tmp_path / "A")],
        failed=[(failed, tmp_path / "B", "ValueError: nan loss")],
        missing=[killed, blocked, plain],
        stale=[Stale(stale, tmp_path / "C", ["train"], [])],
        older=[(done, tmp_path / "A", 1)],
        blocked=[(blocked, tmp_path / "Y")],
        unfinished=[(killed, tmp_path / "X")],
    )
    sweep_summary.print_summary(state)
    assert capsys.readouterr().out.splitlines() == [
        # 3 missing, 1 of them unfinished: 2 not run
        "sweep: 1 finished, 1 failed, 2 not run, 1 unfinished, 1 on changed data",
        f"  FAILED B: ValueError: nan loss ({tmp_path / 'B' / 'failed.json'})",
        f"  ON CHANGED DATA C: train changed since its result ({tmp_path / 'C' / 'metrics.json'});"
        " --force reruns it",
        f"  UNFINISHED X: {tmp_path / 'X'} holds no record (stopped, killed, or running)",
        f"  NOT RUN Y (blocked: {tmp_path / 'Y'} holds another config's result)",
        "  NOT RUN Z",
        f"1 done by an older layerft ({older_results(1)}): reused as they are; --force reruns "
        "them (overrides can narrow the grid to them)",
    ]


def test_a_count_of_one_takes_its_noun_in_the_singular(tmp_path: Path, capsys) -> None:
    """results.md said `1 jobs (...) in 1 combinations`, the plan `1 combinations, 1 distinct
    stage-1 trainings`, a later attempt `1 later attempt failed, its earlier result kept`."""
    one = combination("A", "a")
    sweep_summary.print_plan([one], Status([], [], [one]), False)
    assert capsys.readouterr().out.splitlines()[0] == "1 combination, 0 distinct stage-1 trainings"
    repeat = combination("B", "a", "k")
    sweep_summary.print_plan([one, repeat], Status([], [], [one, repeat]), False)
    first = capsys.readouterr().out.splitlines()[0]
    assert first == "2 combinations (1 distinct run), 1 distinct stage-1 training"
    write_job(tmp_path / "a", 1, 0.7, fingerprint="f", mtime=1_000_000)
    write_job(tmp_path / "a", 1, error="boom", fingerprint="f", mtime=2_000_000)
    markdown = aggregate(tmp_path).markdown
    assert (
        "1 job (1 finished, 0 failed; 1 later attempt failed, its earlier result kept) in 1 "
        "combination;" in markdown
    )


def test_the_summary_counts_a_repeat_served_by_another_jobs_run_once(
    tmp_path: Path, capsys
) -> None:
    """`injection_task=none` under two layer splits is one run in one folder: the summary said
    `2 finished, 2 failed` where results.md said `2 jobs (1 finished, 1 failed)`, with no word
    that two of the four combinations are the other two's runs."""
    none1, none2 = combination("none,lower1", "n"), combination("none,lower_half", "n")
    bad1, bad2 = combination("none,lower1,lr", "b"), combination("none,lower_half,lr", "b")
    state = Status(
        done=[(none1, tmp_path / "N"), (none2, tmp_path / "N")],
        failed=[(bad1, tmp_path / "B", "nan"), (bad2, tmp_path / "B", "nan")],
        missing=[],
    )
    sweep_summary.print_summary(state)
    assert capsys.readouterr().out.splitlines()[0] == (
        "sweep: 2 finished, 2 failed, 0 not run (2 distinct runs: 2 served by another combination's run)"
    )


def test_a_failed_forced_rerun_says_its_earlier_result_is_kept(tmp_path: Path, capsys) -> None:
    """`sweep.py --force` whose rerun failed printed `0 finished, 1 failed` and a bare FAILED line
    while results.md averaged the kept result (`later attempt failed: seed 1 (result kept)`)."""
    (tmp_path / "A").mkdir()
    (tmp_path / "A" / "metrics.json").write_text("{}")
    state = Status(done=[], failed=[(combination("A", "a"), tmp_path / "A", "E: x")], missing=[])
    sweep_summary.print_summary(state)
    assert capsys.readouterr().out.splitlines()[1] == (
        f"  FAILED A: E: x ({tmp_path / 'A' / 'failed.json'}; its earlier result is kept)"
    )


def test_a_repeated_value_is_named_once_per_repeated_job(caplog) -> None:
    """Kills: `times.get` for `times.pop` (a job listed three times was named three times, and
    counted so) and the list cut after three names dropped."""
    overrides = [["a=1"], ["a=1"], ["a=2"], ["a=1"], ["b=1"], ["b=1"], ["c=1"], ["c=1"]]
    overrides += [["d=1"], ["d=1"]]
    combinations = [Combination(o, str(i), None, o[0]) for i, o in enumerate(overrides)]
    with caplog.at_level(logging.WARNING):
        sweep_summary.warn_repeated_values(combinations)
    assert caplog.messages == [
        "the grid lists 4 job(s) more than once (a value repeated in a sweep list), each run "
        "once: a=1, b=1, c=1, ..."
    ]
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        sweep_summary.warn_repeated_values(combinations[:4])
    assert caplog.messages[0].endswith("the grid lists 1 job(s) more than once (a value "
                                       "repeated in a sweep list), each run once: a=1")  # fmt: skip


# --- sweep_settings -----------------------------------------------------------------------------


def test_a_deletion_and_a_packaged_choice_are_named_by_their_key() -> None:
    """Kills in job_settings: `lstrip("+")` (`~key` kept its tilde), `"(deleted)"` replaced by the
    (empty) value, `split("@")[0]` (the group, not the package, named the choice), and the choices'
    `str(option)` dropped (a group left unset, None, compared as no text)."""
    settings = job_settings({"tuning_mode": "full", "extra": None}, ["~target_task.lr", "a@b=c"])
    assert settings == {
        "tuning_mode": "full",
        "extra": "None",
        "target_task.lr": "(deleted)",
        "b": "c",
    }


def test_neutral_keys_below_a_neutral_node_and_hydras_groups_are_no_settings() -> None:
    """Kills in _neutral: `key == n` alone (`tracker.project` named a row) and `hydra.` alone
    (`hydra/launcher=...`, a group choice of Hydra's, named a row)."""
    overrides = ["tracker.project=p", "hydra/launcher=basic", "hydra.job.chdir=true", "seed=3"]
    assert job_settings({"tuning_mode": "full"}, overrides) == {"tuning_mode": "full"}


def test_without_stage1_drops_the_split_and_stage1_schedule_choices_themselves() -> None:
    """Kills: STAGE1_ONLY_GROUPS left out of without_stage1's names (only `layer_split.*` and
    `injection_lr_schedule.*` went, the choices `layer_split=lower1` stayed), and `== "none"` for
    `!= "none"` in effective_settings."""
    settings = {
        "injection_task": "none",
        "layer_split": "lower1",
        "layer_split.stage2.policy": "scale",
        "injection_lr_schedule": "linear",
        "injection_task.lr": "1e-4",
        "tuning_mode": "full",
    }
    assert effective_settings(settings) == {"injection_task": "none", "tuning_mode": "full"}
    with_stage1 = settings | {"injection_task": "demo_pos"}
    assert effective_settings(with_stage1) == with_stage1


@pytest.mark.parametrize(
    ("first", "second", "same"),
    [
        ("[query, value]", "[query,value]", True),  # a list: its values, not its spaces
        ("[query, value]", "[query, key]", False),
        ("true", "1", False),  # a bool is no number: True == 1 in Python
        ("nan", "NaN", True),  # NaN equals no number, not even itself
        ("1e-4", "0.0001", True),
    ],
)
def test_which_setting_texts_are_one_value(first: str, second: str, same: bool) -> None:
    """Kills in setting_value: a list compared as its text, `isinstance(value, bool)` dropped
    (`true` was the value of `1`), and NaN returned as a float (never equal to itself)."""
    assert (setting_value(first) == setting_value(second)) is same


# --- sweep_options ------------------------------------------------------------------------------


def planned(*overrides: list[str]) -> list[Combination]:
    return [Combination(list(o), str(i), None, ",".join(o)) for i, o in enumerate(overrides)]


def test_baseline_pairs_name_the_first_bad_item_and_keep_an_equals_sign_in_a_value() -> None:
    """Kills in baseline_pairs: `bad[-1]` (the last bad item named) and `split("=")` (a value
    holding `=` raised a bare ValueError); and `{}` for None (no --baseline is the default one)."""
    with pytest.raises(LayerftError, match=r"^--baseline takes key=value settings, got 'a'; "):
        baseline_pairs(["a", "b=1", "c"])
    assert baseline_pairs(["model.revision=v=2", "tuning_mode=full"]) == {
        "model.revision": "v=2",
        "tuning_mode": "full",
    }
    assert baseline_pairs(None) is None and baseline_pairs([]) is None


def test_a_baseline_value_of_a_key_some_combinations_leave_unset_is_the_tables_to_judge(
    tmp_path: Path,
) -> None:
    """Kills: `not any(...)` for `not all(...)` in check_table_options (a value the plan cannot
    know, the option's own where a combination leaves the key unset, was refused)."""
    combinations = planned(["tuning_mode=full", "target_task.lr=1e-4"], ["tuning_mode=lora"])
    check_table_options(["target_task.lr=2e-5"], None, combinations, tmp_path / "none")
    with pytest.raises(LayerftError, match=r"^--baseline tuning_mode=ful: no job has it"):
        check_table_options(["tuning_mode=ful"], None, combinations, tmp_path / "none")


def test_a_group_no_combination_chooses_is_a_known_setting(tmp_path: Path) -> None:
    """Kills: GROUP_OF_KEY left out of `known` (`--heatmap tuning_mode lr_schedule`, whose
    schedule is every job's default choice, was refused before the grid ran)."""
    combinations = planned(["tuning_mode=full"], ["tuning_mode=lora"])
    check_table_options(None, ["tuning_mode", "lr_schedule"], combinations, tmp_path / "none")
    check_table_options(None, None, combinations, tmp_path / "none", best_of=["lr_schedule"])


def test_a_best_of_key_no_job_sets_is_refused_before_the_grid_runs(tmp_path: Path) -> None:
    """Kills dropping the `--best-of` keys from check_table_options: a misspelt key was found only
    by the tables, once the whole grid had trained."""
    combinations = planned(["tuning_mode=full", "target_task.lr=1e-4"], ["tuning_mode=lora"])
    check_table_options(None, None, combinations, tmp_path / "none", best_of=["target_task.lr"])
    with pytest.raises(LayerftError, match=r"^--best-of target_task.rl: no job of the grid sets"):
        check_table_options(None, None, combinations, tmp_path / "none", best_of=["target_task.rl"])


def test_a_damaged_record_in_the_folder_leaves_the_options_checked_on_the_others(
    tmp_path: Path,
) -> None:
    """Kills: `except ValueError` for `except LayerftError` in _recorded_settings (a damaged
    metrics.json in the sweep folder stopped the plan: the tables name it, as unfinished)."""
    write_job(tmp_path / "old", 1, 0.5, tuning_mode="frozen")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "metrics.json").write_text('{"run/config_fing')
    combinations = planned(["tuning_mode=full"], ["tuning_mode=lora"])
    # frozen: the recorded job's value, which no planned combination has
    check_table_options(["tuning_mode=frozen"], None, combinations, tmp_path)


# --- sweep_report and sweep_diffs ---------------------------------------------------------------


@pytest.mark.parametrize(("higher", "word"), [(True, "higher"), (False, "lower")])
def test_results_md_says_which_way_the_selection_metric_is_better(
    tmp_path: Path, higher: bool, word: str
) -> None:
    """Kills: `"lower" if first.higher_is_better else "higher"` (a loss read as higher-is-better)."""
    loss = "target/eval_loss"
    write_job(tmp_path / "a", 1, 0.5, metric=loss, higher_is_better=higher, tuning_mode="full")
    write_job(tmp_path / "b", 1, 0.4, metric=loss, higher_is_better=higher, tuning_mode="lora")
    assert f"Selection metric: `{loss}` ({word} is better)." in aggregate(tmp_path).markdown


def test_the_other_scores_table_of_rows_without_a_varied_setting_names_them_all() -> None:
    """Kills: `names = table.varied` in other_scores_lines (without `or ["combination"]`, rows
    that vary in no setting column got a header one cell short of the table's own)."""
    f1 = "target/eval_macro_f1"
    base, combo = baseline_pair(f1, (0.40, 0.50, 0.45), (0.44, 0.55, 0.48))
    table = build_table([base, combo], [], {}, [base, base], extra=[])
    lines = other_scores_lines(table)
    assert lines[5:7] == [f"| combination | {f1} |", "|---|---|"]
    assert lines[7] == "| all | baseline |" and lines[8].startswith("| all | +0.0400 [")


def test_results_md_table_has_a_separator_cell_per_column_and_no_empty_notes(tmp_path) -> None:
    """Kills in table_lines: a separator row one `---|` short (markdown then renders the table as
    text) and `noted = True` (an empty notes column in a table without notes)."""
    write_job(tmp_path / "a", 1, 0.7, tuning_mode="full")
    write_job(tmp_path / "b", 1, 0.6, tuning_mode="lora")
    lines = aggregate(tmp_path).markdown.splitlines()
    at = lines.index(
        f"| tuning_mode | {ACC} | vs baseline | verdict | runtime (s) | trainable params | share "
        "| seeds | failed |"
    )
    assert lines[at + 1] == "|" + "---|" * 9


def test_an_older_layerfts_failure_is_no_older_result(tmp_path: Path) -> None:
    """Kills: `job.error is None and` dropped in older_versions (a failure an older layerft
    recorded made results.md say a result in the table was computed by it)."""
    write_job(tmp_path / "a", 1, 0.7, tuning_mode="full")
    write_job(tmp_path / "b", 1, error="boom", version=1, tuning_mode="lora")
    assert "older layerft" not in aggregate(tmp_path).markdown
    write_job(tmp_path / "c", 1, 0.6, version=1, tuning_mode="frozen")
    assert f"1 result by an older layerft ({older_results(1)})" in aggregate(tmp_path).markdown


def test_a_mean_of_a_hundred_or_more_shows_one_decimal() -> None:
    """Kills: `abs(mean) > 100` for `>= 100` in md_summary (a run time of 100 s showed 4)."""
    row = {"m_mean": 100.0, "m_std": 2.5, "m_n": 2, "l_mean": -99.5, "l_std": None, "l_n": 1}
    assert md_summary(row, "m") == "100.0 ± 2.5 (2)"
    assert md_summary(row, "l") == "-99.5000 (1)"


def test_a_spread_below_the_fourth_decimal_shows_its_significant_digits() -> None:
    """Seeds at 0.70000, 0.70002 and 0.70004 read `0.7000 ± 0.0000 (3)`: no spread at all."""
    row = {"m_mean": 0.70002, "m_std": 2e-5, "m_n": 3, "z_mean": 0.5, "z_std": 0.0, "z_n": 3}
    assert md_summary(row, "m") == "0.7000 ± 2e-05 (3)"
    assert md_summary(row, "z") == "0.5000 ± 0.0000 (3)"  # a spread of none stays as it is
    row.update(m_std=5e-5)
    assert md_summary(row, "m") == "0.7000 ± 0.0001 (3)"  # (5e-5 rounds up)
    # A run time's cell, to one decimal: a spread of 0.01 s read `± 0.0`
    row.update(m_mean=150.0, m_std=0.01)
    assert md_summary(row, "m") == "150.0 ± 0.01 (3)"
    row.update(m_std=0.05)
    assert md_summary(row, "m") == "150.0 ± 0.1 (3)"
    # Equal seeds: np.std's rounding (1.4e-16 for three 0.7s) is no spread to show
    assert summary("m", [0.7, 0.7, 0.7]) == {"m_mean": pytest.approx(0.7), "m_std": 0.0, "m_n": 3}


def test_csv_text_ends_its_lines_with_a_newline_and_leaves_none_empty() -> None:
    """Kills: the csv module's own `\\r\\n` line ends in csv_text (results.csv and best.csv)."""
    assert csv_text(["a", "b"], [{"a": 1, "b": None}, {"a": "x,y", "b": 2}]) == 'a,b\n1,\n"x,y",2\n'


def test_a_folders_job_dirs_are_those_tabled_on_changed_data_and_replaced(tmp_path) -> None:
    """Kills: `*self.replaced` dropped from SweepFolder.job_dirs (the folder of a record another
    config's replaced was not among the tabled folders, and a deeper one went unwarned)."""
    finished, changed, replaced = (stats_job(1, 0.5, run_dir=tmp_path / n) for n in "cab")
    folder = SweepFolder(tmp_path, [finished], [tmp_path / "d"], [changed], [replaced], ["e"])
    assert folder.job_dirs() == [tmp_path / "a", tmp_path / "b", tmp_path / "c"]


def four_jobs(sweep_dir: Path) -> None:
    """tuning_mode full / lora by target_task.lr 1e-4 / 3e-5, one seed each."""
    for mode, lr, score in (("full", "1e-4", 0.8), ("full", "3e-5", 0.7), ("lora", "1e-4", 0.6),
                            ("lora", "3e-5", 0.5)):  # fmt: skip
        overrides = (f"target_task.lr={lr}",)
        write_job(sweep_dir / f"{mode}-{lr}", 1, score, overrides=overrides, tuning_mode=mode)


def test_aggregate_dir_passes_every_option_to_the_tables(tmp_path: Path, capsys) -> None:
    """Kills in aggregate_dir: `heat = None` (the --heatmap asked for was not drawn) and
    `best_of=()` (`sweep.py aggregate --best-of` wrote no best.csv)."""
    four_jobs(tmp_path)
    result = aggregate_dir(
        tmp_path, ["tuning_mode=full"], ["target_task.lr", "tuning_mode"], ["z"], ["target_task.lr"]
    )
    assert result.heatmap == ("target_task.lr", "tuning_mode")
    assert (result.baseline, result.not_run, result.best_of) == (
        {"tuning_mode": "full"},
        ["z"],
        ["target_task.lr"],
    )
    assert (
        tmp_path / "best.csv"
    ).exists() and f"wrote {tmp_path / 'best.csv'}" in capsys.readouterr().out


def test_tables_refusing_a_heatmap_keep_the_sweeps_not_run_list_and_say_why(
    tmp_path, monkeypatch
) -> None:
    """Kills in tabled: `aggregate_dir(sweep_dir, None, None)` in the fallback (the combinations
    this sweep did not run were read from the folder's last list, here none), `any(...)` for
    `all(...)` (a refused --heatmap without --baseline raised), `return None` (the refusal was
    not passed on), and the W&B results run dropped."""
    logged = []  # the W&B results run (composing the grid's config takes seconds)
    monkeypatch.setattr(sweep_options, "log_results_table", lambda *a: logged.append(a))
    four_jobs(tmp_path)
    refused = tabled("demo", ["seed=1"], tmp_path, None, ["tuning_mode", "lr_schedule"], ["y", "z"])
    [(grid, overrides, sweep_dir, result)] = logged
    assert (grid, overrides, sweep_dir, result.not_run) == (
        "demo",
        ["seed=1"],
        tmp_path,
        ["y", "z"],
    )
    assert refused is not None and refused.startswith("heatmap needs two different varied")
    markdown = (tmp_path / "results.md").read_text()
    assert markdown.endswith("in no row of the table:\n- y\n- z\n")


def test_results_md_lists_every_unfinished_job(tmp_path: Path) -> None:
    """Kills: results.md's unfinished list cut to its first folder (`unfinished[:1]`) while the
    header counted both."""
    write_job(tmp_path / "done", 1, 0.8)
    for name in ("killed1", "killed2"):  # Hydra started them; no record came
        (tmp_path / name / ".hydra").mkdir(parents=True)
    markdown = aggregate(tmp_path).markdown
    assert "3 jobs (1 finished, 0 failed, 2 unfinished) in 1 combination;" in markdown
    assert markdown.endswith("in no row of the table:\n- killed1\n- killed2\n")


def test_a_finished_job_whose_config_forces_a_rerun_is_planned_as_to_run(tmp_path, capsys):
    """A bug fix, not a mutant: a finished combination with `force_rerun=true` in its config is
    launched (sweep_status.left_out), yet the plan marked it `[done]` and counted it done, `0 to
    run`, as it already did right for one on changed data."""
    a, b = combination("A", "a"), combination("B", "b")
    forced, older = replace(a, force_rerun=True), replace(b, force_rerun=True)
    state = Status(done=[(forced, tmp_path / "A"), (older, tmp_path / "B")], failed=[], missing=[])
    state = replace(state, older=[(older, tmp_path / "B", 1)])
    assert left_out([forced, older], state, False).finished == []  # both are launched
    sweep_summary.print_plan([forced, older], state, False)
    lines = capsys.readouterr().out.splitlines()
    assert lines[1:4] == [
        "  [todo] A  (no stage 1)",
        "  [todo] B  (no stage 1)",
        "0 done, 2 to run",
    ]


def test_each_metric_column_of_results_md_shows_that_metrics_values(tmp_path: Path) -> None:
    """Kills: `md_summary(row, table.selection)` for `md_summary(row, key)` in table_lines
    (every other score's column repeated the selection metric's cell)."""
    f1 = "target/eval_macro_f1"
    write_job(tmp_path / "1", 1, 0.8, metrics={f1: 0.6})
    write_job(tmp_path / "2", 2, 0.7, metrics={f1: 0.4})
    markdown = aggregate(tmp_path).markdown
    assert f"| combination | {ACC} | vs baseline | verdict | {f1} | runtime (s) |" in markdown
    # accuracy 0.75 ± 0.0707 (sample std of 0.8, 0.7); F1 0.5 ± 0.1414 (of 0.6, 0.4)
    assert (
        "| all | 0.7500 ± 0.0707 (2) | - | no baseline | 0.5000 ± 0.1414 (2) | 30.0 |" in markdown
    )


def test_a_baseline_value_spelled_another_way_than_the_grids_is_taken(tmp_path: Path) -> None:
    """Kills: the `setting_value` comparison dropped from check_table_options (`--baseline
    target_task.lr=0.0001` was refused on a grid of `1e-4`: the same number)."""
    combinations = planned(["target_task.lr=1e-4"], ["target_task.lr=3e-5"])
    check_table_options(["target_task.lr=0.0001"], None, combinations, tmp_path / "none")
    with pytest.raises(
        LayerftError, match=r"no job has it \(the grid's and the folder's: 1e-4, 3e-5"
    ):
        check_table_options(["target_task.lr=2e-5"], None, combinations, tmp_path / "none")
