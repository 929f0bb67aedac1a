"""Damaged records read back from a sweep folder (a hand edit, a copy cut short, another tool):
each is refused and named, never tabled as a score, never taken for a finished job, never a
traceback (a fuzzing review)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from test_aggregate import ACC, write_job

from layerft import metrics
from layerft.aggregate import aggregate
from layerft.errors import LayerftError
from layerft.metrics import MetricInput, MetricSpec
from layerft.results import (
    METRICS_FILE,
    check_still_ours,
    job_records,
    read_finished,
    read_record,
)
from layerft.run_record import RunRecord, record_problem
from layerft.sweep_records import read_sweep
from layerft.sweep_status import another_config_result

FINGERPRINT = "0123456789abcdef"


def _edit(folder: Path, raw: str, **entries: object) -> None:
    """Set `entries` in the folder's metrics.json; `raw` replaces the text `"@"` (NaN, 1e400)."""
    path = folder / METRICS_FILE
    record = json.loads(path.read_text()) | {k.replace("__", "/"): v for k, v in entries.items()}
    path.write_text(json.dumps(record).replace('"@"', raw))


@pytest.mark.parametrize("raw", ["NaN", "Infinity", "-Infinity", "1e400"])
def test_a_score_that_is_no_finite_number_is_refused_not_averaged(tmp_path, caplog, raw) -> None:
    # Python's json reads NaN, Infinity and 1e400 (inf); layerft never writes one (allow_nan=False,
    # phase._dev_scores): the row had read "nan ± nan (2)" / "inf ± nan (2)".
    write_job(tmp_path / "a", 1, 0.5)
    write_job(tmp_path / "b", 2, 0.7)
    _edit(tmp_path / "b", raw, **{ACC.replace("/", "__"): "@"})
    result = aggregate(tmp_path)
    assert result.rows[0][f"{ACC}_mean"] == 0.5 and result.unfinished == [tmp_path / "b"]
    assert f"{tmp_path / 'b' / METRICS_FILE}: {ACC} is not a finite number" in caplog.text
    assert job_records(tmp_path, METRICS_FILE) == {
        json.loads((tmp_path / "a" / METRICS_FILE).read_text())["run/config_fingerprint"]: (
            tmp_path / "a"
        )
    }  # a resume redoes it


@pytest.mark.parametrize(
    ("key", "value", "said"),
    [
        ("run/choices", [1], "run/choices is [1], not a JSON object of options"),
        ("run/overrides", "abc", "run/overrides is 'abc', not a list of overrides"),
        ("run/selection_metric", 5, "run/selection_metric is 5, not a metric's name"),
        ("run/results_version", "x", "run/results_version is 'x', not a whole number"),
        ("run/fingerprint_scheme", "x", "run/fingerprint_scheme is 'x', not a whole number"),
        ("run/seed", "x", "run/seed is 'x', not a whole number"),
    ],
)
def test_a_run_entry_of_another_type_is_one_warning_not_a_traceback_or_another_row(
    tmp_path, caplog, key, value, said
) -> None:
    # run/choices as a list was an AttributeError traceback (aggregate and the resume's options
    # check); a string version or scheme a ValueError traceback in the resume's status; overrides
    # as a string or a numeric selection metric silently made another row of it.
    write_job(tmp_path / "a", 1, 0.5)
    write_job(tmp_path / "b", 2, 0.7)
    _edit(tmp_path / "b", "", **{key.replace("/", "__"): value})
    jobs, damaged = read_sweep(tmp_path)
    assert [job.run_dir for job in jobs] == [tmp_path / "a"] and damaged == [tmp_path / "b"]
    assert f"{tmp_path / 'b' / METRICS_FILE}: {said}" in caplog.text
    assert list(job_records(tmp_path, METRICS_FILE).values()) == [tmp_path / "a"]


def test_a_result_without_its_selection_score_or_fingerprint_is_not_tabled(tmp_path) -> None:
    # The row had read "0.5000 (1)" beside seeds "1 2", with no word of the record left out.
    write_job(tmp_path / "a", 1, 0.5)
    write_job(tmp_path / "b", 2, 0.7)
    write_job(tmp_path / "c", 3, 0.9)
    for folder, key in ((tmp_path / "b", ACC), (tmp_path / "c", "run/config_fingerprint")):
        record = json.loads((folder / METRICS_FILE).read_text())
        del record[key]
        (folder / METRICS_FILE).write_text(json.dumps(record))
    result = aggregate(tmp_path)
    assert result.rows[0][f"{ACC}_mean"] == 0.5
    assert result.unfinished == [tmp_path / "b", tmp_path / "c"]


def test_a_damaged_record_of_this_config_is_set_aside_and_redone_of_another_refused(
    tmp_path, caplog
) -> None:
    # The resume counted it finished (dry-run "8 done"), while the table left it out: redone never.
    folder = write_job(tmp_path / "a", 1, 0.5, fingerprint=FINGERPRINT)
    _edit(folder, "NaN", **{ACC.replace("/", "__"): "@"})
    assert not another_config_result(folder, (FINGERPRINT,))  # not blocking its own config's rerun
    # another config's: its job would stop at read_finished's refusal, so the plan blocks it (it
    # had launched it, to fail)
    assert another_config_result(folder, ("fedcba9876543210",))
    with pytest.raises(LayerftError, match=r"a\/metrics.json is a damaged run record .* not this"):
        read_finished(folder, ("fedcba9876543210",), "--dir <new folder>")
    assert (folder / METRICS_FILE).exists()  # another config's: never overwritten
    with caplog.at_level(logging.WARNING):
        assert read_finished(folder, (FINGERPRINT,), "--dir <new folder>") is None
    assert not (folder / METRICS_FILE).exists() and (folder / "metrics.json.corrupt").exists()
    assert "is a damaged run record" in caplog.text


def test_a_damaged_record_of_another_config_that_appears_while_training_is_not_overwritten(
    tmp_path,
) -> None:
    # check_still_ours returned for any damaged record, so a trained run overwrote another
    # config's result (all its other scores) that read_finished refuses to overwrite.
    folder = write_job(tmp_path / "a", 1, 0.5, fingerprint="fedcba9876543210")
    _edit(folder, "NaN", **{ACC.replace("/", "__"): "@"})
    ours = RunRecord(FINGERPRINT, "seedless", {}, 1, [], ACC, True)
    with pytest.raises(LayerftError, match="came to hold the result of another config"):
        check_still_ours(folder, ours, "--dir <new folder>")
    _edit(folder, "", run__config_fingerprint=FINGERPRINT)  # this config's own: replaced
    check_still_ours(folder, ours, "--dir <new folder>")
    (folder / METRICS_FILE).write_text("{}")  # no one's result
    check_still_ours(folder, ours, "--dir <new folder>")


def test_a_record_set_aside_while_a_resume_lists_the_sweep_is_no_traceback(
    tmp_path, monkeypatch
) -> None:
    # Another job's read_finished setting its damaged record aside between the listing and the
    # sort by mtime was a FileNotFoundError: this job failed instead of running.
    write_job(tmp_path / "a", 1, 0.5)
    write_job(tmp_path / "b", 2, 0.7)
    listed = sorted(tmp_path.glob(f"*/{METRICS_FILE}"))
    (tmp_path / "b" / METRICS_FILE).rename(tmp_path / "b" / "metrics.json.corrupt")
    monkeypatch.setattr(Path, "glob", lambda self, pattern: iter(listed))
    assert list(job_records(tmp_path, METRICS_FILE).values()) == [tmp_path / "a"]


def test_a_job_folder_linked_into_the_sweep_is_tabled_as_the_resume_counts_it(tmp_path) -> None:
    # rglob follows no link: the table silently had one seed fewer while the resume said done.
    write_job(tmp_path / "s" / "a", 1, 0.5)
    write_job(tmp_path / "elsewhere", 2, 0.7)
    (tmp_path / "s" / "b").symlink_to(tmp_path / "elsewhere")
    assert len(job_records(tmp_path / "s", METRICS_FILE)) == 2
    assert aggregate(tmp_path / "s").rows[0][f"{ACC}_mean"] == pytest.approx(0.6)


def test_a_link_to_a_job_folder_of_the_sweep_is_no_second_record(tmp_path) -> None:
    # `*/` followed the link: results.md named it a duplicate record left out, and where the
    # link sorted after the folder, the table named the link as the run's folder.
    write_job(tmp_path / "a", 1, 0.5)
    (tmp_path / "z").symlink_to(tmp_path / "a")
    (tmp_path / "0").symlink_to(tmp_path / "a")
    duplicates: list = []
    jobs, damaged = read_sweep(tmp_path, duplicates)
    assert [job.run_dir for job in jobs] == [tmp_path / "a"] and not duplicates and not damaged


@pytest.mark.parametrize("score", [7.5, -0.3])
def test_an_accuracy_outside_0_to_1_is_refused_not_averaged(tmp_path, caplog, score) -> None:
    # The accuracy module returns fractions: a hand-edited 7.5 had made the row "4.0000 ± 4.9 (2)".
    write_job(tmp_path / "a", 1, 0.5)
    write_job(tmp_path / "b", 2, score)
    result = aggregate(tmp_path)
    assert result.rows[0][f"{ACC}_mean"] == 0.5 and result.unfinished == [tmp_path / "b"]
    said = (
        f"corrupt run record {tmp_path / 'b' / METRICS_FILE}: {ACC} is {score}, outside its "
        "metric's range [0.0, 1.0]; left out of the table, listed as unfinished (a rerun of its "
        "config sets it aside and redoes it)"
    )
    assert [r.message for r in caplog.records if "corrupt" in r.message] == [said]
    assert list(job_records(tmp_path, METRICS_FILE).values()) == [tmp_path / "a"]  # redone


def test_a_score_of_a_0_to_100_metric_is_checked_against_its_declared_range(
    tmp_path, monkeypatch
) -> None:
    # Every packaged metric returns fractions (KLUE's and SQuAD's scripts print x100, their
    # modules here do not); one declaring 0-100 has 87.5 tabled and 187.5 refused.
    percent = MetricSpec(("percent_acc",), MetricInput.class_ids, ranges={"percent_acc": (0, 100)})
    monkeypatch.setattr(metrics, "METRICS", {**metrics.METRICS, "percent": percent})
    score = "target/eval_percent_acc"
    write_job(tmp_path / "a", 1, 87.5, metric=score)
    write_job(tmp_path / "b", 2, 187.5, metric=score)
    result = aggregate(tmp_path)
    assert result.rows[0][f"{score}_mean"] == 87.5 and result.unfinished == [tmp_path / "b"]
    assert record_problem(read_record(tmp_path / "b"), finished=True) == (
        f"{score} is 187.5, outside its metric's range [0, 100]"
    )


def test_a_key_two_metrics_may_name_is_checked_against_their_widest_range(monkeypatch) -> None:
    # `eval_mm_accuracy`: accuracy on a dev set `mm` (0 to 1), or a metric's own `mm_accuracy`
    # (here -1 to 100): the widest bounds stand, so neither one's legal score is refused.
    wide = MetricSpec(("mm_accuracy",), MetricInput.class_ids, ranges={"mm_accuracy": (-1, 100)})
    monkeypatch.setattr(metrics, "METRICS", {**metrics.METRICS, "wide": wide})
    assert metrics.metric_range("target/eval_mm_accuracy") == (-1, 100)
    assert metrics.metric_range("target/eval_accuracy") == (0.0, 1.0)


def test_a_score_whose_range_is_unknown_is_not_range_checked(tmp_path, monkeypatch) -> None:
    # A loss, a speed figure, squad_v2's threshold and a metric that declares no range: any
    # finite number is theirs.
    unranged = MetricSpec(("own_score",), MetricInput.class_ids)
    monkeypatch.setattr(metrics, "METRICS", {**metrics.METRICS, "own": unranged})
    odd = {
        "target/eval_loss": 1e6,
        "target/eval_samples_per_second": 1e6,
        "target/train_runtime": -5.0,
        "target/eval_squad_v2_best_f1_thresh": -40.0,
        "target/eval_own_score": 250.0,
    }
    write_job(tmp_path / "a", 1, 0.5, metrics=odd)
    assert record_problem(read_record(tmp_path / "a"), finished=True) is None
    result = aggregate(tmp_path)
    assert result.rows[0][f"{ACC}_mean"] == 0.5 and not result.unfinished
    assert list(job_records(tmp_path, METRICS_FILE).values()) == [tmp_path / "a"]
