"""Audit of the metrics, the speed counters and the aggregation helpers by mutation testing:
behaviours test_klue_metrics.py, test_glue.py, test_squad.py, test_conll.py, test_metrics.py,
test_speed.py and test_aggregate.py left unguarded (each test names the mistake it catches).
Expected values are the official definitions' (KLUE-baseline, conlleval, evaluate-v2.0.py,
the vendors' datasheets), worked out by hand in the comments."""

from __future__ import annotations

import json
import logging
import math
import os
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from compose import compose_run
from datasets import Dataset
from test_aggregate import write_job
from transformers import EvalPrediction

from layerft import aggregate as aggregate_module
from layerft.aggregate import NOT_RUN_FILE, aggregate, remove_outputs
from layerft.errors import LayerftError
from layerft.evaluation import build_compute_metrics
from layerft.metrics import METRICS, MetricInput, MetricSpec, _registry, load_metric
from layerft.metrics import module as metric_module
from layerft.metrics.conll import chunk_scores, chunks
from layerft.metrics.glue import pearson_spearman
from layerft.metrics.klue import dp_attachment_scores, mrc_rouge_w, mrc_scores
from layerft.metrics.squad_official import v2_scores
from layerft.plot_rows import dev_curve, plot_row
from layerft.run_record import record_problem
from layerft.speed import NonFiniteLossGuard, TokenCounter, device_peak_flops
from layerft.sweep_job import Job
from layerft.sweep_table import TableRow

ACC = "target/eval_accuracy"


def compute(name: str, **inputs: object) -> dict[str, float]:
    """A packaged metric's scores, as DevScorer gets them."""
    return load_metric(name).compute(**inputs)


# --- KLUE ---------------------------------------------------------------------------------------


def test_mrc_rouge_w_keeps_difflibs_autojunk_as_klue() -> None:
    """Mutation: SequenceMatcher(..., autojunk=False) (KLUE calls it with autojunk on)."""
    # A gold answer of 201 characters: "가" (200 times, over 1% of 201 + 1) is "popular", so
    # difflib finds no common substring with "다가...가" and KLUE's ROUGE-W is 0, not 2PR/(P+R)
    # with the 10 shared characters.
    prediction = "다" + "가" * 10
    assert mrc_rouge_w(prediction, "나" + "가" * 200) == 0.0
    assert mrc_scores([prediction], [["나" + "가" * 200]]) == (0.0, 0.0)
    # Below 200 characters the heuristic is off: L = 10, P = 10/11, R = 10/199 -> 200/2100.
    assert mrc_rouge_w(prediction, "나" + "가" * 198) == pytest.approx(200 / 2100)


def test_dp_refuses_a_negative_predicted_relation() -> None:
    """Mutation: only gold relations are checked for negative ids (a predicted -3 would pass
    as KLUE's merged "others" class and score against a rare gold relation)."""
    heads = np.array([0, 1])
    with pytest.raises(ValueError, match=r"^klue_dp: relation ids must be >= 0"):
        dp_attachment_scores(heads, np.array([-3, 1]), heads, np.array([20, 1]))


def test_re_refuses_a_reference_id_equal_to_the_class_count() -> None:
    """Mutation: `y_true.max() > width` lets id == width (no probability column) through."""
    with pytest.raises(ValueError, match=r"^klue_re: reference ids must lie in \[0, 2\)"):
        compute("klue_re", predictions=[0, 1], references=[0, 2], probabilities=[[0.6, 0.4]] * 2)


def test_re_refuses_probabilities_with_another_row_count() -> None:
    """Mutation: the row-count check dropped (AUPRC then silently pairs rows and labels wrongly)."""
    with pytest.raises(ValueError, match=r"^klue_re: probabilities must be one row per example"):
        compute(
            "klue_re", predictions=[0, 1, 1], references=[0, 1, 1], probabilities=[[0.6, 0.4]] * 2
        )


def test_a_sentence_count_mismatch_names_the_metric() -> None:
    """Mutation: flatten_aligned's count check dropped (zip's own error names no metric)."""
    with pytest.raises(ValueError, match=r"^conlleval: 2 predicted sentences but 1 references$"):
        chunk_scores([["O"], ["O"]], [["O"]])


# --- correlations -------------------------------------------------------------------------------


def test_pearson_of_scores_with_themselves_is_exactly_one() -> None:
    """Mutation: the clip to [-1, 1] dropped: (1/3, 2/3, 1) against itself is 1.0000000000000002
    in floating point, where scipy's pearsonr (and KLUE's pearsonr x 100) gives 1."""
    x = [1 / 3, 2 / 3, 1.0]
    assert compute("klue_sts", predictions=x, references=x)["pearsonr"] == 1.0
    assert pearson_spearman(np.array(x), np.array(x))[0] == 1.0


def test_spearman_is_nan_when_a_reference_score_is_nan() -> None:
    """Mutation: only the predictions are checked for NaN (ranking would place the gold NaN)."""
    pearson, spearman = pearson_spearman(np.array([1.0, 2, 3]), np.array([math.nan, 1, 2]))
    assert math.isnan(pearson) and math.isnan(spearman)


# --- conlleval ----------------------------------------------------------------------------------


def test_conlleval_ioe_chunks() -> None:
    """Mutations: endOfChunk without "E then I", startOfChunk without "E then E / E then I"."""
    # conlleval (and seqeval's default mode, which follows it): an E- tag closes its chunk, so
    # the next E-/I- of the same type starts another.
    assert chunks([["I-X", "E-X", "E-X"]]) == {(0, 0, 1, "X"), (0, 2, 2, "X")}
    assert chunks([["E-X", "I-X", "E-X"]]) == {(0, 0, 0, "X"), (0, 1, 2, "X")}


# --- SQuAD -------------------------------------------------------------------------------------


def test_squad_module_returns_exact_match_and_f1_under_their_own_keys() -> None:
    """Mutation: the squad module swaps squad_exact_match and squad_f1."""
    # "the cat sat" against "a cat": normalised "cat sat" vs "cat": EM 0; 1 common token,
    # P 1/2, R 1 -> F1 2/3. "Cat!" against "cat": EM 1, F1 1. Means: EM 1/2, F1 5/6.
    scores = compute("squad", predictions=["the cat sat", "Cat!"], references=[["a cat"], ["cat"]])
    assert scores == {"squad_exact_match": 0.5, "squad_f1": pytest.approx(5 / 6)}


# --- SQuAD v2 -----------------------------------------------------------------------------------


def test_squad_v2_on_no_question_scores_zero() -> None:
    """Mutation: the empty-input branch returns exact 1.0."""
    assert v2_scores([], []) == {"exact": 0.0, "f1": 0.0}


def test_squad_v2_refuses_null_score_diffs_of_another_length() -> None:
    """Mutation: the null_score_diffs length check dropped (a longer list is silently cut)."""
    with pytest.raises(ValueError, match=r"^squad_v2 null_score_diffs: 3 predictions but 2 "):
        v2_scores(["a", ""], [["a"], []], [0.5, 1.0, 2.0])


# --- speed --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "tflops"),
    [
        ("NVIDIA H100 NVL", 835),  # 1,671 with sparsity
        ("NVIDIA H100 80GB HBM3", 989),
        ("NVIDIA H200 NVL", 835),
        ("NVIDIA GH200 480GB", 989),
        ("NVIDIA B200", 2250),  # 4.5 PFLOPS with sparsity
        ("NVIDIA L40S", 362),  # 733 with sparsity
        ("NVIDIA L40", 181),
        ("NVIDIA L4", 121),
        ("NVIDIA GeForce RTX 4090", 165),  # FP32 accumulate; 330 is FP16 accumulate
        ("Tesla V100-SXM2-32GB", 125),
    ],
)
def test_device_peaks_are_the_dense_datasheet_figures(name: str, tflops: int) -> None:
    """Mutations: a sparse (2x) or wrong peak, and a shorter name ("H100", "L40", "L4") listed
    before a longer one it is part of."""
    assert device_peak_flops(name) == tflops * 1e12


def test_token_counter_reads_each_sentences_own_mask() -> None:
    """Mutation: input_ids_b counted with attention_mask (sentence a's) instead of its own."""
    counter = TokenCounter()
    counter.count(
        {
            "input_ids": torch.zeros(2, 3),
            "attention_mask": torch.tensor([[1, 1, 1], [1, 1, 1]]),  # 6 real
            "input_ids_b": torch.zeros(2, 3),
            "attention_mask_b": torch.tensor([[1, 0, 0], [1, 0, 0]]),  # 2 real
        }
    )
    assert counter.totals() == (8, 12)


@pytest.mark.parametrize("bad", [float("inf"), float("-inf"), float("nan")])
def test_a_dev_loss_that_is_not_finite_stops_the_phase(bad: float) -> None:
    """Mutation: check_dev_loss tests isnan only (an infinite dev loss passed)."""
    guard = NonFiniteLossGuard("target", "lower target_task.lr")
    guard.check_dev_loss(0.3, 4)
    with pytest.raises(LayerftError, match=rf"^target stage: dev loss is {bad} after step 5: "):
        guard.check_dev_loss(bad, 5)


# --- aggregate ----------------------------------------------------------------------------------


def job(seed: int, run_dir: Path, error: str | None = None) -> Job:
    """A finished (or, with `error`, failed) job of the demo task."""
    return Job(
        run_dir=run_dir,
        mtime=0.0,
        fingerprint=f"fp-{seed}",
        seedless_fingerprint="config",
        settings={"tuning_mode": "full"},
        seed=seed,
        selection_metric=ACC,
        higher_is_better=True,
        metrics={} if error else {ACC: 0.5},
        error=error,
    )


def test_remove_outputs_keeps_a_temporary_file_newer_than_the_aggregation(tmp_path) -> None:
    """Mutation: every `.<output>.*.tmp` removed, also one another aggregation is writing now."""
    started = time.time()
    old, new = tmp_path / ".results.csv.a1.tmp", tmp_path / ".results.csv.b2.tmp"
    old.write_text("killed mid-write")
    new.write_text("being written")
    os.utime(old, (started - 60, started - 60))
    os.utime(new, (started + 60, started + 60))
    remove_outputs(tmp_path, started, keep=("results.csv",))
    assert not old.exists() and new.exists()


def test_a_not_run_folder_left_by_a_killed_job_is_counted_once(tmp_path) -> None:
    """Mutation: _without_record ignores `unfinished` (counted as unfinished and as not run)."""
    write_job(tmp_path / "tuning_mode=full", 1, 0.8, tuning_mode="full")
    killed = tmp_path / "tuning_mode=frozen"
    (killed / ".hydra").mkdir(parents=True)
    result = aggregate(tmp_path, not_run=["tuning_mode=frozen", "tuning_mode=lora"])
    assert result.unfinished == [killed]
    assert result.not_run == ["tuning_mode=lora"]


def test_a_not_run_file_without_a_list_of_names_is_warned_and_ignored(tmp_path, caplog) -> None:
    """Mutation: _last_not_run's type check dropped (a string is read as its characters)."""
    write_job(tmp_path / "tuning_mode=full", 1, 0.8, tuning_mode="full")
    (tmp_path / NOT_RUN_FILE).write_text(json.dumps({"not_run": "tuning_mode=lora"}))
    with caplog.at_level(logging.WARNING, logger="layerft.aggregate"):
        result = aggregate(tmp_path)
    assert result.not_run == []
    assert any("is unreadable (no list of folder names)" in r.getMessage() for r in caplog.records)


def test_plot_row_counts_the_failed_seeds_among_the_jobs_run(tmp_path) -> None:
    """Mutation: PlotRow.jobs counts the finished seeds only (the bars' "n of m" loses failures)."""
    combo = TableRow(
        {"tuning_mode": "full"},
        finished=[job(1, tmp_path / "1")],
        failed=[job(2, tmp_path / "2", error="RuntimeError: boom")],
    )
    row = plot_row(combo, ["tuning_mode"], is_baseline=False)
    assert (row.scores, row.jobs) == ([0.5], 2)


def test_plots_of_rows_with_different_selection_metrics_name_no_single_metric(
    tmp_path, monkeypatch
) -> None:
    """Mutation: the plots are labelled with the first row's selection metric in any case."""
    write_job(tmp_path / "a", 1, 0.8, target_task="demo_sentiment")
    write_job(tmp_path / "b", 1, 0.4, metric="target/eval_pearson", target_task="klue_sts")
    drawn = []
    monkeypatch.setattr(
        aggregate_module.plots,
        "draw",
        lambda rows, varied, metric, axes: drawn.append(metric) or {},
    )
    aggregate(tmp_path)
    assert drawn == ["selection metric (per row)"]


def test_a_dev_curve_of_a_history_cut_mid_line_is_empty(tmp_path, caplog) -> None:
    """Mutation: dev_curve catches OSError only (a killed job's half-written JSON line raised)."""
    (tmp_path / "history.jsonl").write_text(json.dumps({"step": 1, ACC: 0.5}) + '\n{"step": 2, "ta')
    with caplog.at_level(logging.WARNING, logger="layerft.aggregate"):
        assert dev_curve(job(1, tmp_path)) == []
    assert "no dev curve, its history is unreadable" in caplog.text


# --- registry and DevScorer ---------------------------------------------------------------------


def test_build_metric_refuses_a_name_evaluate_would_spell_otherwise(monkeypatch) -> None:
    """Mutation: the CamelCase round-trip check dropped ("a__b" -> class "AB" -> "ab")."""
    monkeypatch.setattr(metric_module, "METRICS", {**METRICS, "a__b": METRICS["accuracy"]})
    with pytest.raises(
        LayerftError, match=r"^metric 'a__b': evaluate would name its class AB 'ab'"
    ):
        metric_module.build_metric("a__b", "", "", lambda **_: {})


def test_the_registry_refuses_a_key_two_metrics_return() -> None:
    """Mutation: _registry's duplicate-key check dropped (results merge by key: one would win)."""
    spec = MetricSpec(("accuracy",), MetricInput.class_ids)
    with pytest.raises(
        LayerftError, match=r"^metric key 'accuracy' is returned by both accuracy and macro_f1$"
    ):
        _registry(accuracy=spec, macro_f1=spec)


def test_the_registry_refuses_a_range_of_a_key_the_metric_never_returns() -> None:
    """Mutation: _registry's check of declared ranges dropped (a misspelt key: its range unused)."""
    spec = MetricSpec(("accuracy",), MetricInput.class_ids, ranges={"acuracy": (0.0, 1.0)})
    with pytest.raises(
        LayerftError, match=r"^metric 'accuracy' declares a range of \['acuracy'\], keys it never"
    ):
        _registry(accuracy=spec)


def test_a_score_past_its_range_by_float_rounding_only_is_no_damage() -> None:
    """Mutation: no slack (an unclipped correlation of 1 + 2e-16 refused, its run redone forever)."""
    record = {"run/config_fingerprint": "f", "target/eval_mm_matthews_correlation": -1 - 2e-16}
    assert record_problem(record, finished=True) is None
    record["target/eval_mm_matthews_correlation"] = -1.000001
    assert record_problem(record, finished=True) == (
        "target/eval_mm_matthews_correlation is -1.000001, outside its metric's range [-1.0, 1.0]"
    )


def test_metrics_keep_their_inputs_in_memory() -> None:
    """Mutation: evaluate.load without keep_in_memory (an Arrow cache file per compute)."""
    assert load_metric("accuracy").keep_in_memory is True


def test_dev_scorer_feeds_conlleval_every_word_and_token_f1_the_tagged_ones() -> None:
    """Mutation: conlleval registered as reading tag_sequences (words past max_length unscored)."""
    task = compose_run("model=tiny", "injection_task=conll_ner").injection_task
    assert task is not None and set(task.metrics) == {"conlleval", "token_f1"}
    scorer = build_compute_metrics(task, Dataset.from_list([{"x": 0}]), [])
    tagged = {"predictions": [["B-PER"]], "references": [["B-PER"]]}
    # The second word, cut by max_length, is an "O" prediction against its gold B-LOC.
    every = {"predictions": [["B-PER", "O"]], "references": [["B-PER", "B-LOC"]]}
    inputs = {MetricInput.tag_sequences: tagged, MetricInput.every_word_tags: every}
    scorer.kind = SimpleNamespace(metric_inputs=lambda *_: inputs)
    metrics = scorer(EvalPrediction(predictions=np.zeros((1, 1)), label_ids=np.zeros((1, 1))))
    # conlleval: 1 of 1 guessed chunks right, 1 of 2 gold: P 1, R 1/2, F1 2/3; token_f1 1.
    assert metrics["conll_f1"] == pytest.approx(2 / 3) and metrics["conll_recall"] == 0.5
    assert metrics["token_f1"] == 1.0
