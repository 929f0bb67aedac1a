"""GLUE: the official metrics against sklearn/scipy, the release readers on hand-made files in
GLUE's layout, extra dev sets (MNLI mismatched) and every glue_* task through train.py."""

from __future__ import annotations

import json
import logging
import math
import random
import re
import warnings
from pathlib import Path

import numpy as np
import pytest
from compose import CONF, compose_run
from conftest import assert_counts_of, dev_examples, run_train
from datasets import Dataset
from scipy.stats import pearsonr, spearmanr
from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef

from layerft import records as records_module
from layerft.errors import LayerftError
from layerft.metrics import METRICS, load_metric
from layerft.readers import RELEASE_READERS
from layerft.readers_glue import GLUE_LAYOUTS
from layerft.records import normalise_records, read_split
from layerft.run import train_stages
from layerft.stage_data import load_stage_data

GLUE_DATA = Path(__file__).resolve().parent / "data" / "glue"
# task option -> (GLUE's folder name, dev examples, metric keys, the hub's class names)
# The class names are those of Hugging Face's glue.py loader (ClassLabel names, in id order).
TASKS = {
    "glue_cola": ("CoLA", 10, ("matthews_correlation", "accuracy"), ["unacceptable", "acceptable"]),
    "glue_sst2": ("SST-2", 10, ("accuracy",), ["negative", "positive"]),
    "glue_mrpc": ("MRPC", 10, ("binary_f1", "accuracy"), ["not_equivalent", "equivalent"]),
    "glue_qqp": ("QQP", 10, ("binary_f1", "accuracy"), ["not_duplicate", "duplicate"]),
    "glue_stsb": ("STS-B", 10, ("pearson", "spearman"), []),
    "glue_mnli": (
        "MNLI", 12, ("accuracy", "mismatched_accuracy"), ["entailment", "neutral", "contradiction"]
    ),
    "glue_qnli": ("QNLI", 10, ("accuracy",), ["entailment", "not_entailment"]),
    "glue_rte": ("RTE", 10, ("accuracy",), ["entailment", "not_entailment"]),
    "glue_wnli": ("WNLI", 10, ("accuracy",), ["not_entailment", "entailment"]),
}  # fmt: skip


def compute(metric: str, predictions: list, references: list) -> dict[str, float]:
    return load_metric(metric).compute(predictions=predictions, references=references)


# --- metrics ----------------------------------------------------------------------------------


def test_glue_metrics_on_hand_computed_cases() -> None:
    # TP 2, FN 1, FP 1, TN 4: MCC (2*4 - 1*1) / sqrt(3*3*5*5) = 7/15, F1 2*2 / (3 + 3) = 2/3.
    gold = [1, 1, 1, 0, 0, 0, 0, 0]
    pred = [1, 1, 0, 1, 0, 0, 0, 0]
    assert compute("matthews_correlation", pred, gold) == {
        "matthews_correlation": pytest.approx(7 / 15)
    }
    assert compute("binary_f1", pred, gold) == {"binary_f1": pytest.approx(2 / 3)}
    assert compute("matthews_correlation", [1, 0, 1], [0, 1, 0])["matthews_correlation"] == -1
    # One class on a side: undefined, 0.0 (sklearn's value); no positive anywhere: F1 0.0.
    assert compute("matthews_correlation", [1, 1, 1], [1, 0, 1])["matthews_correlation"] == 0
    assert compute("binary_f1", [0, 0], [0, 0])["binary_f1"] == 0
    # Three classes, c=5 of s=6, t=(2,2,2), p=(3,1,2): (5*6 - 12) / sqrt((36 - 14) (36 - 12)).
    mcc = compute("matthews_correlation", [0, 0, 0, 1, 2, 2], [0, 0, 1, 1, 2, 2])
    assert mcc["matthews_correlation"] == pytest.approx(18 / np.sqrt(22 * 24))
    # x (1,2,3,4), y (1,3,2,4): centred dot 4 over norms sqrt(5) * sqrt(5); ranks are the values.
    scores = compute("pearson_spearman", [1.0, 2, 3, 4], [1.0, 3, 2, 4])
    assert scores == {"pearson": pytest.approx(0.8), "spearman": pytest.approx(0.8)}
    # Monotone but not linear: Spearman 1, Pearson below; ties take their average rank.
    scores = compute("pearson_spearman", [1.0, 2, 3, 10], [1.0, 2, 3, 4])
    assert scores["spearman"] == pytest.approx(1.0) and scores["pearson"] < 0.95
    tied = compute("pearson_spearman", [1.0, 1, 2, 5], [1.0, 2, 3, 4])  # ranks 1.5 1.5 3 4
    assert tied["spearman"] == pytest.approx(np.corrcoef([1.5, 1.5, 3, 4], [1, 2, 3, 4])[0, 1])
    # A constant side: scipy gives NaN, metrics.json needs a number.
    assert compute("pearson_spearman", [2.0, 2, 2], [1.0, 2, 3]) == {"pearson": 0, "spearman": 0}
    # A NaN score (a diverged model): no number, as scipy's (ranks placed it as one: rho -0.5).
    nan = compute("pearson_spearman", [math.nan, 1.0, 2], [1.0, 2, 3])
    assert math.isnan(nan["pearson"]) and math.isnan(nan["spearman"])


def test_glue_metrics_match_sklearn_and_scipy_on_random_inputs() -> None:
    rng = np.random.default_rng(0)
    for _ in range(40):
        size, classes = int(rng.integers(2, 60)), int(rng.integers(2, 4))
        gold, pred = rng.integers(0, classes, size), rng.integers(0, classes, size)
        got = compute("matthews_correlation", pred.tolist(), gold.tolist())
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # sklearn warns on one class, as we return 0.0
            assert got["matthews_correlation"] == pytest.approx(matthews_corrcoef(gold, pred))
        gold, pred = rng.integers(0, 2, size), rng.integers(0, 2, size)
        got = compute("binary_f1", pred.tolist(), gold.tolist())
        assert got["binary_f1"] == pytest.approx(f1_score(gold, pred, zero_division=0.0))
        got = compute("accuracy", pred.tolist(), gold.tolist())
        assert got["accuracy"] == pytest.approx(accuracy_score(gold, pred))
        # STS-B gold scores repeat (ties); predictions are real numbers.
        gold_scores = rng.integers(0, 6, size).astype(float)
        if np.ptp(gold_scores) == 0:
            continue
        pred_scores = rng.normal(size=size) + gold_scores * rng.random()
        got = compute("pearson_spearman", pred_scores.tolist(), gold_scores.tolist())
        assert got["pearson"] == pytest.approx(pearsonr(pred_scores, gold_scores)[0])
        assert got["spearman"] == pytest.approx(spearmanr(pred_scores, gold_scores)[0])


def test_glue_metric_keys_are_registered_once() -> None:
    assert METRICS["matthews_correlation"].keys == ("matthews_correlation",)
    assert METRICS["binary_f1"].keys == ("binary_f1",)
    assert METRICS["pearson_spearman"].keys == ("pearson", "spearman")


# --- readers ----------------------------------------------------------------------------------


@pytest.mark.parametrize("option", TASKS)
def test_each_task_reads_its_release_folder_with_the_hubs_labels(option: str) -> None:
    folder, dev_size, _, hub_names = TASKS[option]
    task = compose_run(f"target_task={option}", f"target_task.data_dir={GLUE_DATA / folder}")
    task = task.target_task
    assert task.label_names == hub_names == list(GLUE_LAYOUTS[option[5:]].label_names)
    assert task.source == "data_dir" and task.release_format == option
    train, _ = read_split(task, "target_task", "train")
    dev, origin = read_split(task, "target_task", "validation")
    assert len(dev) == dev_size and origin.endswith(task.release_files["validation"])
    for record in train + dev:  # the hub's columns: the task's text columns, label, idx
        assert set(record) == {*task.text_columns, "label", "idx"}
        if hub_names:
            assert record["label"] in range(len(hub_names))
        else:
            assert 0 <= record["label"] <= 5
    assert [r["idx"] for r in train] == list(range(len(train)))


def test_qqp_drops_and_counts_its_published_rows_with_an_empty_question(tmp_path, caplog) -> None:
    # GLUE's QQP train.tsv holds two rows whose question2 is empty (ids 310121 and 362225).
    header = "id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate\n"
    (tmp_path / "train.tsv").write_text(header + "1\t1\t2\tWhat?\tWhy?\t0\n2\t3\t4\tHow?\t\t0\n")
    (tmp_path / "dev.tsv").write_text(header + "3\t5\t6\tWho?\tWhen?\t1\n")
    task = compose_run("target_task=glue_qqp", f"target_task.data_dir={tmp_path}").target_task
    records, origin = read_split(task, "target_task", "train")
    with caplog.at_level(logging.INFO, logger="layerft.records"):
        rows = normalise_records(task, "target_task", records, origin)
    assert [row["text_a"] for row in rows] == ["What?"]
    assert "dropped 1 unlabelled or blank-text records" in caplog.text


def test_readers_keep_quotes_boms_and_headerless_first_rows() -> None:
    read = RELEASE_READERS
    cola = read["glue_cola"](GLUE_DATA / "CoLA" / "train.tsv")
    # No header: the first line is a record; quotes are text, balanced or not.
    assert cola[0] == {
        "sentence": 'The sailor said "hello" and visited the library.', "label": 1, "idx": 0
    }  # fmt: skip
    assert cola[1]["sentence"] == '"The singer park the found.' and cola[1]["label"] == 0
    assert len(cola) == len((GLUE_DATA / "CoLA" / "train.tsv").read_text().splitlines())
    sst2 = read["glue_sst2"](GLUE_DATA / "SST-2" / "train.tsv")
    assert any(r["sentence"].endswith(' " ') for r in sst2)  # an unbalanced quote, kept
    assert sst2[0]["sentence"].endswith(" ")  # SST-2's trailing space is part of the text
    assert (GLUE_DATA / "MRPC" / "train.tsv").read_bytes().startswith(b"\xef\xbb\xbfQuality")
    mrpc = read["glue_mrpc"](GLUE_DATA / "MRPC" / "train.tsv")
    assert mrpc[2]["sentence1"].startswith('"The ') and mrpc[1]["label"] == 0
    stsb = read["glue_stsb"](GLUE_DATA / "STS-B" / "dev.tsv")
    assert [r["label"] for r in stsb[:5]] == [5.0, 3.8, 2.4, 0.6, 0.0]
    mnli = read["glue_mnli"](GLUE_DATA / "MNLI" / "dev_mismatched.tsv")
    assert [r["label"] for r in mnli[:3]] == [0, 1, 2]  # gold_label, not label1..label5
    assert mnli[0]["premise"] == "The farmer cleaned the harbor yesterday."
    wnli = read["glue_wnli"](GLUE_DATA / "WNLI" / "dev.tsv")
    assert wnli[0]["label"] == 1 and wnli[0]["sentence2"] == "The garden was open."  # entailment


@pytest.mark.parametrize(
    ("task", "text", "error"),
    [
        ("cola", "hw01\t1\t\tGood.\nhw01\t2\t*\tBad.\n", ":2: label '2' is not one of 0, 1"),
        # A row of empty fields is a row, not a blank line to skip without a word.
        ("cola", "hw01\t1\t\tGood.\n\n\t\t\t\n", ":3: label '' is not one of 0, 1"),
        ("cola", "index\tsentence\n0\tA test.\n", ":1: expected 4 tab-separated fields, got 2 (a header"),
        ("sst2", "sentence\tlabel\nfine \t1\nbroken \t1\textra\n", ":3: expected 2 tab-separated fields, got 3"),
        ("rte", "index\tsentence1\tsentence2\tlabel\n0\ta\tb\tneutral\n", ":2: label 'neutral' is not one of entailment, not_entailment"),
        ("mnli", "index\tsentence1\tsentence2\tlabel1\n0\ta\tb\tneutral\n", ":1: header has no column 'gold_label'"),
        ("stsb", "sentence1\tsentence2\tscore\na\tb\t5.5\n", ":2: score '5.5' is not a score in 0..5"),
        ("stsb", "sentence1\tsentence2\tscore\na\tb\tnan\n", ":2: score 'nan' is not a score in 0..5"),
        ("qqp", "id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate\n\n", ": no records"),
    ],
)  # fmt: skip
def test_bad_release_files_name_the_file_line_and_field(
    tmp_path: Path, task: str, text: str, error: str
) -> None:
    path = tmp_path / "dev.tsv"
    path.write_text(text)
    with pytest.raises(LayerftError, match="^" + str(path) + error.replace("(", r"\(")):
        RELEASE_READERS[f"glue_{task}"](path)


def test_a_record_error_found_after_reading_names_its_line(tmp_path: Path) -> None:
    # An empty sentence is refused by the kind, which knows the record's number only; the line is
    # found again in the file (a blank line and SST-2's header counted).
    header = "sentence\tlabel\n"
    (tmp_path / "train.tsv").write_text(header + "fine\t1\n\nbad?\t0\n\t1\n")
    (tmp_path / "dev.tsv").write_text(header + "ok\t1\n")
    task = compose_run("target_task=glue_sst2", f"target_task.data_dir={tmp_path}").target_task
    records, origin = read_split(task, "target_task", "train")
    with pytest.raises(LayerftError, match=rf"^{re.escape(origin)}:5: record 3: column 'sentence'"):
        normalise_records(task, "target_task", records, origin)


def test_bad_bytes_and_missing_files_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "train.tsv"
    path.write_bytes(b"sentence\tlabel\nok\t1\nbad \xff\t0\n")
    with pytest.raises(LayerftError, match=f"^{path}:3: not UTF-8"):
        RELEASE_READERS["glue_sst2"](path)
    with pytest.raises(LayerftError, match="data file not found: .*nope.tsv"):
        RELEASE_READERS["glue_sst2"](tmp_path / "nope.tsv")


def test_hub_rows_need_no_adapter_and_mnli_reads_both_dev_splits(monkeypatch) -> None:
    task = compose_run("target_task=glue_mnli").target_task
    asked = []

    def load_dataset(hub_id: str, config: str, split: str) -> Dataset:
        asked.append((hub_id, config, split))
        row = {"premise": "p", "hypothesis": "h", "label": 2, "idx": 0}
        return Dataset.from_list([row, {**row, "label": -1}])  # -1: the hub's unlabelled test rows

    monkeypatch.setattr(records_module.datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(records_module, "load_dataset", load_dataset)
    records, origin = read_split(task, "target_task", "mismatched")
    assert origin == "nyu-mll/glue/mnli[validation_mismatched]"
    read_split(task, "target_task", "validation")
    assert asked == [
        ("nyu-mll/glue", "mnli", "validation_mismatched"),
        ("nyu-mll/glue", "mnli", "validation_matched"),
    ]
    rows = records_module.normalise_records(task, "target_task", records, origin)
    assert rows == [{"label": 2, "text_a": "p", "text_b": "h"}]  # -1 dropped


# --- config -----------------------------------------------------------------------------------


def test_every_glue_option_composes_with_every_source() -> None:
    assert {p.stem for p in (CONF / "target_task").glob("glue_*.yaml")} == set(TASKS)
    for option, (folder, _, keys, _) in TASKS.items():
        hub = compose_run(f"target_task={option}").target_task
        assert (hub.source, hub.hub_id, hub.hub_config) == ("hub", "nyu-mll/glue", option[5:])
        assert hub.best_metric == keys[0]
        local = compose_run(f"target_task={option}", f"target_task.data_dir={GLUE_DATA / folder}")
        assert local.target_task.source == "data_dir"
    mnli = compose_run(
        "target_task=glue_mnli", "target_task.data_files.train=t.tsv",
        "target_task.data_files.validation=m.tsv", "target_task.data_files.mismatched=mm.tsv",
    ).target_task  # fmt: skip
    assert mnli.source == "data_files" and mnli.extra_eval_splits == ["mismatched"]
    assert mnli.hub_splits["mismatched"] == "validation_mismatched"
    assert mnli.release_files["mismatched"] == "dev_mismatched.tsv"
    # The option works on any task; its names become metric keys.
    snli = compose_run(
        "target_task=snli", "target_task.extra_eval_splits=[hard]", "+target_task.hub_splits.hard=x"
    ).target_task  # fmt: skip
    assert snli.extra_eval_splits == ["hard"]
    for bad, error in (("[validation]", "other than train"), ("[Hard-1]", "lowercase name"),
                       ("[a,a]", "duplicates")):  # fmt: skip
        with pytest.raises(LayerftError, match=error):
            compose_run("target_task=snli", f"target_task.extra_eval_splits={bad}")


# --- extra dev sets ---------------------------------------------------------------------------


def test_extra_split_is_scored_by_the_best_checkpoint(tmp_path: Path) -> None:
    # The matched dev file again as the "mismatched" split: the same checkpoint must score the
    # same on it, to the last digit of the loss.
    mnli = GLUE_DATA / "MNLI"
    cfg = compose_run(
        "model=tiny", "tracker=none", "injection_task=none", f"cache_dir={tmp_path / 'cache'}",
        "target_task=glue_mnli", f"target_task.data_dir={mnli}",
        "target_task.release_files.mismatched=dev_matched.tsv", "target_task.epochs=3",
        "target_task.lr=1e-3", "target_task.batch_size=8",
    )  # fmt: skip
    data = load_stage_data(cfg)
    assert set(data.target.extra_eval) == {"mismatched"}
    assert len(data.target.extra_eval["mismatched"].rows) == 12
    metrics, _ = train_stages(cfg, data, tmp_path / "run", lambda m, s: None)
    assert metrics["target/eval_mismatched_accuracy"] == metrics["target/eval_accuracy"]
    assert metrics["target/eval_mismatched_loss"] == pytest.approx(metrics["target/eval_loss"])
    # Each split's predictions name their records (numbered in the file) and ids, as the run
    # passes them to each split's scorer.
    written = (tmp_path / "run" / "dev_predictions.jsonl.partial").read_text()
    lines = [json.loads(line) for line in written.splitlines()]
    for split in ("validation", "mismatched"):
        named = [(d["record"], d.get("id")) for d in lines if d["split"] == split]
        assert named == [(n, None) for n in range(1, 13)], named


def test_a_missing_extra_split_stops_the_run_before_training(tmp_path: Path) -> None:
    folder = tmp_path / "MNLI"
    folder.mkdir()
    for name in ("train.tsv", "dev_matched.tsv"):
        (folder / name).write_bytes((GLUE_DATA / "MNLI" / name).read_bytes())
    cfg = compose_run(
        "model=tiny", "tracker=none", "injection_task=none", f"cache_dir={tmp_path / 'cache'}",
        "target_task=glue_mnli", f"target_task.data_dir={folder}",
    )  # fmt: skip
    with pytest.raises(
        LayerftError,
        match=re.escape(
            f"target_task.data_dir: no dev_mismatched.tsv in {folder} or a folder inside it "
            "(target_task.release_files.mismatched)"
        ),
    ):
        load_stage_data(cfg)  # the data of both stages is read before anything trains
    cfg = compose_run(
        "model=tiny", "target_task=demo_sentiment", "target_task.extra_eval_splits=[x]"
    )
    with pytest.raises(LayerftError, match="a generated task has no 'x' split"):
        read_split(cfg.target_task, "target_task", "x")
    cfg = compose_run("target_task=snli", "target_task.extra_eval_splits=[x]")
    with pytest.raises(LayerftError, match=r"target_task.hub_splits.x is not set"):
        read_split(cfg.target_task, "target_task", "x")


# --- end to end through train.py --------------------------------------------------------------


@pytest.mark.slow
def test_every_glue_task_runs_through_train_py_on_its_release_files(tmp_path: Path) -> None:
    # One multirun over the nine tasks; each job's data_dir is <links>/<task option>.
    links = tmp_path / "glue"
    links.mkdir()
    for option, (folder, *_) in TASKS.items():
        (links / option).symlink_to(GLUE_DATA / folder)
    result = run_train(
        ["-m", "model=tiny", "tracker=none", "injection_task=none", "target_task.epochs=1",
         f"target_task={','.join(TASKS)}", f"target_task.data_dir={links}/${{target_task.name}}"],
        tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    runs = [json.loads(p.read_text()) for p in (tmp_path / "sweep").glob("*/metrics.json")]
    assert len(runs) == len(TASKS)
    for metrics in runs:
        option = metrics["run/choices"]["target_task"]
        _, dev_size, keys, names = TASKS[option]
        assert metrics["run/selection_metric"] == f"target/eval_{keys[0]}"
        for key in keys:
            value = metrics[f"target/eval_{key}"]
            if key in ("matthews_correlation", "pearson", "spearman"):
                assert -1 <= value <= 1, (option, key, value)
            else:
                assert 0 <= value <= 1, (option, key, value)
        if option == "glue_mnli":  # both dev sets, each counted over its own examples
            assert_counts_of(metrics["target/eval_accuracy"], 12)
            assert_counts_of(metrics["target/eval_mismatched_accuracy"], 9)
        elif "accuracy" in keys:
            assert_counts_of(metrics["target/eval_accuracy"], dev_size)
    assert "target_task mismatched: 9 examples from " in result.stderr + result.stdout


def write_keyword_cola(path: Path, size: int, seed: int) -> Path:
    """CoLA's headerless layout; a sentence is 'acceptable' when it holds 'war' or 'goal'."""
    rng = random.Random(seed)
    filler = ["the", "a", "cat", "dog", "sat", "ran", "on", "under", "mat", "park", "big", "old"]
    lines = []
    for _ in range(size):
        label = rng.randrange(2)
        words = [rng.choice(filler) for _ in range(rng.randint(3, 8))]
        keyword = rng.choice(("war", "goal") if label else ("bank", "chip"))
        words.insert(rng.randrange(len(words) + 1), keyword)
        lines.append(f"kw01\t{label}\t{'' if label else '*'}\t{' '.join(words)} .\n")
    path.write_text("".join(lines))
    return path


def test_glue_cola_learns_through_train_py_and_an_untrained_model_does_not(tmp_path) -> None:
    folder = tmp_path / "CoLA"
    folder.mkdir()
    write_keyword_cola(folder / "train.tsv", 400, seed=0)
    write_keyword_cola(folder / "dev.tsv", 200, seed=1)
    args = ["model=tiny", "tracker=none", "injection_task=none", "target_task=glue_cola",
            f"target_task.data_dir={folder}", "target_task.epochs=5", "target_task.lr=5e-3",
            "target_task.batch_size=16"]  # fmt: skip
    result = run_train(args, tmp_path / "learned")
    assert result.returncode == 0, result.stderr[-2000:]
    learned = json.loads((tmp_path / "learned" / "run" / "metrics.json").read_text())
    assert dev_examples(result.stderr + result.stdout, "target_task") == 200
    result = run_train([*args, "target_task.epochs=0"], tmp_path / "untrained")
    assert result.returncode == 0, result.stderr[-2000:]
    untrained = json.loads((tmp_path / "untrained" / "run" / "metrics.json").read_text())
    # Measured: MCC 0.97 (accuracy 0.985) after 5 epochs; 0.00 untrained (one class predicted).
    assert learned["target/eval_matthews_correlation"] >= 0.5
    assert abs(untrained["target/eval_matthews_correlation"]) <= 0.2
    assert_counts_of(learned["target/eval_accuracy"], 200)
