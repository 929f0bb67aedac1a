"""Packaged evaluate metrics: hand-computed values, sklearn parity and offline loading."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from datasets import Dataset
from sklearn.metrics import accuracy_score, f1_score

from layerft.errors import LayerftError
from layerft.metrics import METRICS, METRICS_DIR, MetricInput, load_metric
from layerft.metrics.module import build_metric
from layerft.run_record import record_problem

REPO_ROOT = Path(__file__).resolve().parents[1]


def test_metric_names_match_module_directories() -> None:
    assert set(METRICS) == {
        "accuracy", "macro_f1", "token_f1", "klue_sts", "klue_dp", "klue_ner", "klue_re", "klue_mrc",
        "matthews_correlation", "binary_f1", "pearson_spearman", "squad", "squad_v2",
        "conlleval", "ud_attachment",
    }  # fmt: skip
    for name in METRICS:
        assert (METRICS_DIR / name / f"{name}.py").is_file()


def test_unknown_metric_raises_layerft_error() -> None:
    with pytest.raises(LayerftError, match=r"unknown metric 'f2'; available: accuracy, macro_f1"):
        load_metric("f2")


def test_load_is_cached_per_process() -> None:
    assert load_metric("accuracy") is load_metric("accuracy")


# One small input per input type, in the plain Python values a task kind hands over.
TINY_INPUTS: dict[MetricInput, dict[str, object]] = {
    MetricInput.class_ids: {"predictions": [0, 1, 1], "references": [0, 1, 0]},
    MetricInput.tag_sequences: {
        "predictions": [["B-PS", "I-PS", "O"], ["O"]],
        "references": [["B-PS", "O", "O"], ["B-LC"]],
    },
    MetricInput.every_word_tags: {
        "predictions": [["B-PS", "I-PS", "O"], ["O"]],
        "references": [["B-PS", "O", "O"], ["B-LC"]],
    },
    MetricInput.scores: {"predictions": [1.0, 2.5, 4.0], "references": [0.5, 3.0, 4.5]},
    MetricInput.class_probabilities: {
        "predictions": [0, 1, 1],
        "references": [0, 1, 0],
        "probabilities": [[0.7, 0.3], [0.2, 0.8], [0.4, 0.6]],
    },
    MetricInput.arcs: {
        "predictions": [[2, 0], [0]],
        "references": [[2, 0], [0]],
        "predicted_relations": [[1, 2], [3]],
        "reference_relations": [[1, 2], [4]],
    },
    MetricInput.answers: {"predictions": ["the cat", ""], "references": [["cat"], []]},
    # An answerable and an unanswerable question, so every squad_v2 key is present.
    MetricInput.scored_answers: {
        "predictions": ["the cat", ""],
        "references": [["cat"], []],
        "null_score_diffs": [-1.0, 2.0],
    },
}


def test_tiny_inputs_cover_every_input_type() -> None:
    assert set(TINY_INPUTS) == set(MetricInput)


@pytest.mark.parametrize("name", METRICS)
def test_every_metric_reads_its_input_type(name: str) -> None:
    spec = METRICS[name]
    inputs = TINY_INPUTS[spec.reads]
    metric = load_metric(name)
    assert metric.name == name
    # Declared features must be what Arrow infers from the kind's values: a wrong dtype is not an
    # error, evaluate would cast (head 2 -> 2.0 or "2") before `_compute` sees the values.
    stored = {key: inputs[key] for key in ("predictions", "references")}
    assert metric.features == Dataset.from_dict(stored).features
    result = metric.compute(**inputs)
    assert set(result) == set(spec.keys)
    assert all(isinstance(value, float) for value in result.values())


# Each input type's extremes: every prediction right, and (where a metric can go below 0) every one
# inverted, so each declared range is met at its bounds too.
EXTREME_INPUTS: dict[MetricInput, list[dict[str, object]]] = {
    MetricInput.class_ids: [
        {"predictions": [0, 1, 0], "references": [0, 1, 0]},
        {"predictions": [1, 0, 1], "references": [0, 1, 0]},
    ],
    MetricInput.scores: [
        {"predictions": [0.1, 2.2, 4.7], "references": [0.1, 2.2, 4.7]},
        {"predictions": [4.7, 2.2, 0.1], "references": [0.1, 2.2, 4.7]},
    ],
    MetricInput.class_probabilities: [
        {"predictions": [0, 1], "references": [0, 1], "probabilities": [[1.0, 0.0], [0.0, 1.0]]}
    ],
    MetricInput.arcs: [{**TINY_INPUTS[MetricInput.arcs], "predicted_relations": [[1, 2], [4]]}],
    MetricInput.answers: [{"predictions": ["cat", "a dog"], "references": [["cat"], ["a dog"]]}],
    MetricInput.scored_answers: [
        {"predictions": ["cat", ""], "references": [["cat"], []], "null_score_diffs": [-1.0, 2.0]}
    ],
}
for _tags in (MetricInput.tag_sequences, MetricInput.every_word_tags):
    _gold = TINY_INPUTS[_tags]["references"]
    EXTREME_INPUTS[_tags] = [{"predictions": _gold, "references": _gold}]


@pytest.mark.parametrize("name", METRICS)
def test_every_metric_returns_each_score_within_the_range_it_declares(name: str) -> None:
    # record_problem refuses a record's score outside its declared range: a real one must pass.
    spec = METRICS[name]
    assert set(spec.ranges) == set(spec.keys) - set(spec.not_scores)  # each score's, once
    for inputs in (TINY_INPUTS[spec.reads], *EXTREME_INPUTS[spec.reads]):
        result = load_metric(name).compute(**inputs)
        for key, value in result.items():
            record = {f"target/eval_{key}": value, "run/config_fingerprint": "f"}
            assert record_problem(record, finished=True) is None, (key, value)
            if key in spec.ranges:
                low, high = spec.ranges[key]
                assert low <= value <= high, (key, value)
    perfect = load_metric(name).compute(**EXTREME_INPUTS[spec.reads][0])
    assert {key: perfect[key] for key in spec.ranges} == {
        key: pytest.approx(high) for key, (_, high) in spec.ranges.items()
    }


def test_compute_errors_name_the_metric_class() -> None:
    # Python names the class's `_compute` in a wrong-keyword TypeError, as it did before the
    # classes were built.
    with pytest.raises(TypeError, match=r"^KlueSts\._compute\(\) got an unexpected keyword"):
        load_metric("klue_sts").compute(predictions=[1.0], references=[1.0], bogus=1)
    with pytest.raises(TypeError, match=r"^KlueRe\._compute\(\) missing 1 required"):
        load_metric("klue_re").compute(predictions=[0], references=[0])


def test_build_metric_refuses_an_unregistered_name() -> None:
    with pytest.raises(LayerftError, match=r"unknown metric 'f2'"):
        build_metric("f2", "", "", lambda predictions, references: {})


def test_accuracy_hand_computed() -> None:
    # correct at positions 0, 1, 3 -> 3/5
    result = load_metric("accuracy").compute(
        predictions=[0, 1, 2, 2, 1], references=[0, 1, 1, 2, 0]
    )
    assert result == {"accuracy": pytest.approx(0.6)}


def test_macro_f1_hand_computed() -> None:
    # class 0: tp 1, 2 true, 2 predicted -> F1 2*1/(2+2) = 1/2
    # class 1: tp 2, 2 true, 3 predicted -> F1 2*2/(2+3) = 4/5
    # class 2: tp 1, 2 true, 1 predicted -> F1 2*1/(2+1) = 2/3
    # macro = (1/2 + 4/5 + 2/3) / 3 = (59/30) / 3 = 59/90
    result = load_metric("macro_f1").compute(
        predictions=[0, 1, 1, 1, 2, 0], references=[0, 0, 1, 1, 2, 2]
    )
    assert result == {"macro_f1": pytest.approx(59 / 90)}


def test_macro_f1_counts_a_class_seen_only_in_predictions_as_zero() -> None:
    # class 0: F1 2*1/(2+1) = 2/3; class 1: F1 1; class 2 (never true): F1 0 -> (2/3 + 1 + 0)/3
    result = load_metric("macro_f1").compute(predictions=[0, 2, 1], references=[0, 0, 1])
    assert result == {"macro_f1": pytest.approx(5 / 9)}


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_macro_f1_matches_sklearn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 60))
    references = rng.integers(0, 5, size=n)
    # A wider prediction range so some classes appear only in predictions, some only in refs.
    predictions = np.where(rng.random(n) < 0.5, references, rng.integers(0, 7, size=n))
    result = load_metric("macro_f1").compute(predictions=predictions, references=references)
    expected = f1_score(references, predictions, average="macro", zero_division=0)
    assert result["macro_f1"] == pytest.approx(expected, abs=1e-12)


# Flat refs:  B-PER I-PER O B-LOC O     | O B-ORG O
# Flat preds: B-PER O     O B-LOC B-ORG | O B-ORG B-PER
BIO_REFS = [["B-PER", "I-PER", "O", "B-LOC", "O"], ["O", "B-ORG", "O"]]
BIO_PREDS = [["B-PER", "O", "O", "B-LOC", "B-ORG"], ["O", "B-ORG", "B-PER"]]


def test_token_f1_bio_hand_computed() -> None:
    # correct tokens: B-PER, O, B-LOC, O, B-ORG -> accuracy 5/8
    # non-O: 3 correct (B-PER, B-LOC, B-ORG), 5 predicted, 4 true -> P 3/5, R 3/4, F1 6/9 = 2/3
    # per tag F1 = 2tp/(true + pred): B-LOC 2/2 = 1, B-ORG 2/3, B-PER 2/3, I-PER 0/1 = 0,
    # O: tp 2, 4 true, 3 predicted -> 4/7; macro = (1 + 2/3 + 2/3 + 0 + 4/7)/5 = 61/105
    result = load_metric("token_f1").compute(predictions=BIO_PREDS, references=BIO_REFS)
    assert result == {
        "token_f1": pytest.approx(2 / 3),
        "token_accuracy": pytest.approx(5 / 8),
        "token_macro_f1": pytest.approx(61 / 105),
    }
    flat_refs = [tag for sentence in BIO_REFS for tag in sentence]
    flat_preds = [tag for sentence in BIO_PREDS for tag in sentence]
    assert result["token_macro_f1"] == pytest.approx(
        f1_score(flat_refs, flat_preds, average="macro")
    )


def test_token_f1_custom_outside_tag() -> None:
    # Same tags with "O" renamed "-": the scores must not depend on the outside tag's spelling.
    rename = {"O": "-"}
    refs = [[rename.get(tag, tag) for tag in sentence] for sentence in BIO_REFS]
    preds = [[rename.get(tag, tag) for tag in sentence] for sentence in BIO_PREDS]
    result = load_metric("token_f1").compute(predictions=preds, references=refs, outside_tag="-")
    assert result["token_f1"] == pytest.approx(2 / 3)


def test_token_f1_without_outside_tag_equals_accuracy() -> None:
    # POS-like tagset, no outside tag: 4 of 5 tokens correct -> every token counts, F1 = 4/5
    refs = [["NOUN", "VERB", "DET"], ["NOUN", "ADJ"]]
    preds = [["NOUN", "NOUN", "DET"], ["NOUN", "ADJ"]]
    metric = load_metric("token_f1")
    for outside_tag in (None, "O"):
        result = metric.compute(predictions=preds, references=refs, outside_tag=outside_tag)
        assert result["token_f1"] == pytest.approx(0.8)
        assert result["token_accuracy"] == pytest.approx(0.8)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_token_f1_outside_tag_none_is_accuracy_on_random_tags(seed: int) -> None:
    rng = np.random.default_rng(seed)
    tags = np.array(["O", "B-PER", "I-PER", "B-LOC"])
    lengths = rng.integers(1, 8, size=6)
    refs = [list(rng.choice(tags, size=n)) for n in lengths]
    preds = [list(rng.choice(tags, size=n)) for n in lengths]
    result = load_metric("token_f1").compute(predictions=preds, references=refs, outside_tag=None)
    flat_refs = [tag for sentence in refs for tag in sentence]
    flat_preds = [tag for sentence in preds for tag in sentence]
    assert result["token_f1"] == pytest.approx(accuracy_score(flat_refs, flat_preds))
    assert result["token_accuracy"] == pytest.approx(result["token_f1"])


def test_token_f1_all_outside_gives_zero_f1() -> None:
    # Nothing to find and nothing predicted: F1 is 0/0 -> 0.0 (zero_division=0); accuracy is 1.
    result = load_metric("token_f1").compute(predictions=[["O", "O"]], references=[["O", "O"]])
    assert result == {"token_f1": 0.0, "token_accuracy": 1.0, "token_macro_f1": 1.0}


def test_token_f1_length_mismatch_names_the_sentence() -> None:
    with pytest.raises(ValueError, match="sentence 1 has 3 predicted tags but 2 reference"):
        load_metric("token_f1").compute(
            predictions=[["O"], ["O", "O", "O"]], references=[["O"], ["O", "O"]]
        )


def test_empty_input_scores_zero() -> None:
    assert load_metric("accuracy").compute(predictions=[], references=[]) == {"accuracy": 0.0}
    assert load_metric("macro_f1").compute(predictions=[], references=[]) == {"macro_f1": 0.0}
    expected = {"token_f1": 0.0, "token_accuracy": 0.0, "token_macro_f1": 0.0}
    assert load_metric("token_f1").compute(predictions=[], references=[]) == expected
    assert load_metric("token_f1").compute(predictions=[[]], references=[[]]) == expected


def test_load_works_offline_with_cold_cache(tmp_path: Path) -> None:
    # A fresh process with offline flags, an empty HF cache and sockets that refuse to connect:
    # loading a local module must neither need nor attempt the network.
    script = textwrap.dedent(
        """
        import socket

        def refuse(*args, **kwargs):
            raise OSError("network access attempted")

        socket.socket.connect = refuse
        socket.create_connection = refuse

        from layerft.metrics import METRICS, load_metric

        for name in METRICS:
            load_metric(name)
        print(load_metric("accuracy").compute(predictions=[1, 0], references=[1, 1]))
        """
    )
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "HF_HOME": str(tmp_path / "hf_home"),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
    }
    proc = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "{'accuracy': 0.5}" in proc.stdout
