"""Lines a mutation audit found unguarded outside the readers: model identity files, model limits,
dev predictions, DevScorer and the tokenized-data cache key (each test names what it pins)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from compose import compose_run
from datasets import Dataset
from transformers import CamembertConfig, EvalPrediction, XLMRobertaConfig

from layerft import model as model_module
from layerft import predictions
from layerft.errors import LayerftError
from layerft.evaluation import build_compute_metrics
from layerft.metrics import MetricInput
from layerft.model import ModelConfig, load_tokenizer
from layerft.model_files import (
    MODEL_FILES_KEY,
    MODEL_FOLDER_KEY,
    changed_model_files,
    model_file_digests,
)
from layerft.model_limits import max_sequence_length
from layerft.tokenized import tokenize, tokenized_key

# --- model identity files ---------------------------------------------------------------------


def test_a_sharded_checkpoints_index_is_one_of_the_models_files(tmp_path: Path) -> None:
    # from_pretrained reads the shards through model.safetensors.index.json: an index edited in
    # place (shards renamed, a tensor moved) is another model.
    for name, text in [
        ("model-00001-of-00002.safetensors", "shard 1"),
        ("model-00002-of-00002.safetensors", "shard 2"),
        ("model.safetensors.index.json", '{"weight_map": {"a": "model-00001-of-00002"}}'),
        ("config.json", '{"model_type": "bert"}'),
        ("README.md", "not read by any run"),
    ]:
        (tmp_path / name).write_text(text, encoding="utf-8")
    digests = model_file_digests(tmp_path)
    assert sorted(digests) == [
        "config.json", "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors",
        "model.safetensors.index.json",
    ]  # fmt: skip
    (tmp_path / "model.safetensors.index.json").write_text('{"weight_map": {}}', encoding="utf-8")
    record = {MODEL_FOLDER_KEY: str(tmp_path), MODEL_FILES_KEY: digests}
    assert changed_model_files(record, str(tmp_path), model_file_digests(tmp_path)) == [
        str(tmp_path / "model.safetensors.index.json")
    ]


def test_changed_model_files_names_a_file_gone_and_a_file_added(tmp_path: Path) -> None:
    folder = str(tmp_path)
    record = {MODEL_FOLDER_KEY: folder, MODEL_FILES_KEY: {"config.json": "c", "vocab.txt": "v"}}
    # vocab.txt gone, tokenizer.json new: both change what the run reads.
    now = {"config.json": "c", "tokenizer.json": "t"}
    assert changed_model_files(record, folder, now) == [
        str(tmp_path / "tokenizer.json"), str(tmp_path / "vocab.txt"),
    ]  # fmt: skip
    assert changed_model_files(record, folder, {"config.json": "c"}) == [
        str(tmp_path / "vocab.txt")
    ]
    assert changed_model_files(record, folder, dict(record[MODEL_FILES_KEY])) == []


# --- model limits -----------------------------------------------------------------------------


def test_a_slow_tokenizer_is_refused_by_name(monkeypatch) -> None:
    # Tagging needs a fast tokenizer's word ids; a slow one must stop the run with one line.
    cfg = ModelConfig(name="slowpoke", hub_id="org/slowpoke")
    slow, fast = SimpleNamespace(is_fast=False), SimpleNamespace(is_fast=True)
    monkeypatch.setattr(model_module, "from_pretrained", lambda *a, **k: slow)
    with pytest.raises(LayerftError) as caught:
        load_tokenizer(cfg)
    assert str(caught.value) == "model 'slowpoke': layerft needs a fast tokenizer"
    monkeypatch.setattr(model_module, "from_pretrained", lambda *a, **k: fast)
    assert load_tokenizer(cfg) is fast


@pytest.mark.parametrize("config_class", [XLMRobertaConfig, CamembertConfig])
def test_fairseq_models_positions_start_after_the_padding_index(
    tmp_path: Path, config_class: type
) -> None:
    # XLM-R and CamemBERT number positions from padding_idx + 1, as RoBERTa does: 514 positions,
    # pad id 1 hold 512 tokens.
    config_class(vocab_size=50, max_position_embeddings=514, pad_token_id=1).save_pretrained(
        tmp_path
    )
    assert max_sequence_length(ModelConfig(name="m", hub_id=str(tmp_path))) == 512


# --- dev predictions --------------------------------------------------------------------------


def test_publish_without_a_partial_file_does_nothing(tmp_path: Path) -> None:
    predictions.publish(tmp_path)  # no error: nothing was written
    assert list(tmp_path.iterdir()) == []
    (tmp_path / f"{predictions.PREDICTIONS_FILE}.partial").write_text("{}\n", encoding="utf-8")
    predictions.publish(tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == [predictions.PREDICTIONS_FILE]
    assert (tmp_path / predictions.PREDICTIONS_FILE).read_text(encoding="utf-8") == "{}\n"


def _strict(constant: str) -> None:
    raise ValueError(f"{constant} is not JSON")


def test_dev_predictions_write_a_score_that_is_no_number_as_null(tmp_path: Path) -> None:
    # A diverged regression predicts NaN or infinity: the file stays strict JSON.
    task = compose_run("model=tiny", "target_task=glue_stsb").target_task
    last = {"input": MetricInput.scores, "predictions": [math.nan, 1.5, math.inf],
            "references": [2.0, -math.inf, 3.0]}  # fmt: skip
    predictions.write_partial(
        tmp_path, task, {"validation": SimpleNamespace(last=last, sources=())}
    )
    text = (tmp_path / f"{predictions.PREDICTIONS_FILE}.partial").read_text(encoding="utf-8")
    lines = [json.loads(line, parse_constant=_strict) for line in text.splitlines()]
    assert [(d["prediction"], d["reference"]) for d in lines] == [
        (None, 2.0), (1.5, None), (None, 3.0),
    ]  # fmt: skip


# --- DevScorer --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("best", "reads"),
    [("re_micro_f1", MetricInput.class_probabilities), ("accuracy", MetricInput.class_ids)],
)
def test_dev_scorer_keeps_the_inputs_of_the_metric_that_returns_the_best_metric(
    best: str, reads: MetricInput
) -> None:
    # klue_re's metrics: klue_re (class probabilities) then accuracy (class ids). `last`, which
    # dev_predictions.jsonl writes, must be what the best metric scored, not the last metric's.
    task = compose_run(
        "model=tiny", "target_task=klue_re", f"target_task.best_metric={best}"
    ).target_task
    assert list(task.metrics) == ["klue_re", "accuracy"]
    labels = np.array([0, 1, 2, 1])
    logits = np.eye(len(task.label_names))[[0, 1, 1, 1]]
    scorer = build_compute_metrics(task, Dataset.from_list([{"x": 0}] * 4), [])
    assert scorer(EvalPrediction(predictions=logits, label_ids=labels))[best] >= 0
    assert scorer.last["input"] == reads
    assert scorer.last["predictions"] == [0, 1, 1, 1] and scorer.last["references"] == [0, 1, 2, 1]
    assert ("probabilities" in scorer.last) == (reads == MetricInput.class_probabilities)


# --- tokenized-data cache key -----------------------------------------------------------------


def test_the_same_records_tokenized_by_two_kinds_are_cached_apart(tmp_path: Path) -> None:
    # klue_sts (a cross-encoder) and klue_sts_biencoder normalise a record alike and differ in
    # nothing else the key reads (their settings are at defaults): only the kind tells their
    # encodings apart, and one must not be read back for the other.
    cross = compose_run("model=tiny", "target_task=klue_sts").target_task
    bi = compose_run("model=tiny", "target_task=klue_sts_biencoder").target_task
    tokenizer = load_tokenizer(compose_run("model=tiny").model)
    records = Dataset.from_list([{"label": 3.5, "text_a": "a b c", "text_b": "d e"}])
    keys = {tokenized_key(records, task, tokenizer) for task in (cross, bi)}
    assert len(keys) == 2
    encoded = [tokenize(records, task, tokenizer, tmp_path) for task in (cross, bi)]
    assert encoded[0].column_names != encoded[1].column_names
    assert len(list(tmp_path.glob("*.arrow"))) == 2
