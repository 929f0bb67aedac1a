"""Sentence kinds' lines a mutation audit found unguarded: the checks, records, encoders, heads and
metric inputs of sequence classification, cross- and bi-encoder regression and relation
classification, on tiny hand-made inputs whose expected values are derived in the comments (each
test names the line it pins)."""

from __future__ import annotations

import copy
import functools
import logging

import numpy as np
import pytest
import torch
from compose import compose_run
from datasets import Dataset
from transformers import EvalPrediction, RobertaConfig
from transformers.models.roberta.modeling_roberta import RobertaClassificationHead

from layerft.errors import LayerftError
from layerft.kinds import KINDS, kind_of
from layerft.kinds import biencoder_regression as biencoder
from layerft.kinds import relation_classification as relation
from layerft.kinds import sequence_classification as classification
from layerft.kinds import sequence_regression as regression
from layerft.kinds.base import blank, head_output, logits_of
from layerft.metrics import MetricInput
from layerft.records import normalise_records
from layerft.task import TaskConfig
from layerft.tiny_model import build_tiny_backbone, build_tiny_tokenizer
from layerft.tokenized import tokenize
from layerft.unread_keys import other_kinds_settings

TINY = build_tiny_tokenizer()  # one token per character, spaces none


@functools.cache
def _task(option: str, *overrides: str) -> TaskConfig:
    return compose_run("model=tiny", f"target_task={option}", *overrides).target_task


def task_of(option: str, *overrides: str) -> TaskConfig:
    """A fresh copy of the composed target task (composed once per option and overrides)."""
    return copy.deepcopy(_task(option, *overrides))


@functools.cache
def backbone() -> torch.nn.Module:
    torch.manual_seed(0)
    return build_tiny_backbone(compose_run("model=tiny").model.tiny, len(TINY)).eval()


def refused(option: str, *overrides: str) -> str:
    """The message of the LayerftError composing `option` with `overrides` raises."""
    with pytest.raises(LayerftError) as caught:
        compose_run("model=tiny", f"target_task={option}", *overrides)
    return str(caught.value)


# --- config checks ------------------------------------------------------------------------------


@pytest.mark.parametrize("columns", ["[premise,hypothesis,other]", "[]"])
def test_a_sentence_task_reads_one_or_two_text_columns(columns: str) -> None:
    # check_text_columns: `not 1 <= len(text_columns) <= 2` (a third column would be dropped by
    # zip(("text_a", "text_b"), ...) without a word; none would train on nothing).
    message = refused("snli", f"target_task.text_columns={columns}")
    assert "text_columns must name 1 or 2 columns" in message


def test_a_biencoder_needs_two_texts_and_a_positive_score_max() -> None:
    # biencoder.check: `len(text_columns) != 2` (its encoder reads text_b) and `score_max <= 0`
    # (targets are score / score_max).
    message = refused("klue_sts_biencoder", "target_task.text_columns=[sentence1]")
    assert "text_columns must name 2 columns, got ['sentence1']" in message
    message = refused(
        "klue_sts_biencoder", "target_task.biencoder.score_max=0",
        "target_task.regression.score_range=null",
    )  # fmt: skip
    assert "biencoder.score_max must be > 0, got 0" in message


@pytest.mark.parametrize("span", ["[0,1,2]", "[1,1]"])
def test_a_score_range_is_two_numbers_low_below_high(span: str) -> None:
    # regression.check: `len(span) != 2 or not span[0] < span[1]`.
    message = refused("klue_sts", f"target_task.regression.score_range={span}")
    assert "regression.score_range must be [low, high] with low < high" in message


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("target_task.label_names=[no_relation,a,a]", "label_names has duplicates"),
        ("target_task.label_column=sentence", "include label_column 'sentence'"),
        ("target_task.relation.entity_columns=[subject]", "entity_columns must name 2 columns"),
    ],
)
def test_relation_settings_are_checked(override: str, expected: str) -> None:
    # relation.check: check_label_names, check_label_unread and `len(entity_columns) != 2`.
    assert expected in refused("klue_re", override)


def test_a_biencoder_reads_the_regression_settings() -> None:
    # biencoder KIND.settings holds "regression": its normalise checks regression.score_range, so
    # a set score_range is no "unread" setting (and keys the tokenized data).
    assert other_kinds_settings("target_task", "biencoder_regression") == [
        (f"target_task.{node}.", f"target_task.kind=biencoder_regression reads no {node} settings")
        for node in sorted({n for k in KINDS.values() for n in k.settings} - {"biencoder", "regression"})
    ]  # fmt: skip


# --- records ------------------------------------------------------------------------------------


def test_of_two_blank_texts_the_first_is_named() -> None:
    # classification.texts: `column, text = blanks[0]`, in text_columns order.
    task = task_of("snli")
    record = {"premise": " ", "hypothesis": "", "label": 0}
    with pytest.raises(LayerftError, match=r"column 'premise' is blank \(only spaces\)"):
        normalise_records(task, "target_task", [record], "f")


@pytest.mark.parametrize(("names", "label"), [("['-01','0']", 0), ("['0','1','2']", None)])
def test_minus_one_is_a_class_only_where_a_label_name_reads_as_minus_one(names, label) -> None:
    # _names_minus_one: `str(label) in label_names or any(integer_text(n) == -1 ...)`: "-01" is
    # -1 to a CSV reader, so a -1 label is that class (index 0); among ["0", "1", "2"] it is
    # SNLI's unlabelled -1, dropped (reading `== 1` would keep it and fail on it).
    task = task_of("snli", f"target_task.label_names={names}", "target_task.unlabelled_values=[]")
    record = {"premise": "a", "hypothesis": "b", "label": -1}
    rows = normalise_records(task, "target_task", [record], "f")
    assert [r["label"] for r in rows] == ([] if label is None else [label])


def test_a_null_score_is_an_unlabelled_record() -> None:
    # regression.score_of: `if value is None: return None` (a hub test split has no scores).
    task = task_of("klue_sts")
    records = [{"sentence1": "a", "sentence2": "b", "real_label": s} for s in (None, 3)]
    rows = normalise_records(task, "target_task", records, "f")
    assert rows == [{"label": 3.0, "text_a": "a", "text_b": "b"}]
    assert type(rows[0]["label"]) is float  # `float(value)`: an int score is a float label too


def test_a_scored_pair_with_a_blank_text_is_dropped_where_the_task_drops_them() -> None:
    # regression.normalise: `None if found is None`: drop_blank_texts drops the record, not
    # only its text (the score would train against [CLS] [SEP]).
    task = task_of("klue_sts", "target_task.drop_blank_texts=true")
    records = [{"sentence1": s, "sentence2": "b", "real_label": 1.0} for s in (" ", "a")]
    assert normalise_records(task, "target_task", records, "f") == [
        {"label": 1.0, "text_a": "a", "text_b": "b"}
    ]


# "abcd" with a subject "ab" (characters 0-1) and an object "cd" (2-3).
def relation_record(sentence: str = "abcd", **changes: object) -> dict:
    record = {
        "sentence": sentence,
        "subject": {"word": "ab", "start": 0, "end": 1, "type": "P"},
        "object": {"word": "cd", "start": 2, "end": 3, "type": "O"},
        "label": "per:employee_of",
    }
    return record | changes


def test_entities_that_touch_are_marked_and_one_character_entities_are_kept() -> None:
    # mark: `entity["start"] < position` refuses only an overlap; "cd" starts right where "ab"
    # ends. Pieces: "" + "@ * P * " + "ab" + " @" + "" + "# ^ O ^ " + "cd" + " #" + "": the object
    # marker sits at 8 + 2 + 2 = 12.
    task = task_of("klue_re")
    [row] = normalise_records(task, "target_task", [relation_record()], "f")
    assert row["text"] == "@ * P * ab @# ^ O ^ cd #"
    assert (row["subject_char"], row["object_char"]) == (0, 12)
    # _entity: `start <= end`: a one-character entity ("b" at 1..1, "d" at 3..3) is a span.
    one = relation_record(
        subject={"word": "b", "start": 1, "end": 1, "type": "P"},
        object={"word": "d", "start": 3, "end": 3, "type": "O"},
    )
    [row] = normalise_records(task, "target_task", [one], "f")
    assert row["text"] == "a@ * P * b @c# ^ O ^ d #"


@pytest.mark.parametrize(
    ("subject", "message"),
    [
        (None, r"'subject' must be an object with word, start, end, type"),
        ({"word": "ab", "start": 0, "end": 1}, r"'subject' must be an object with word, start"),
        # sentence[-4:2] is "ab" too: a negative start counts from the end, so it is refused.
        ({"word": "ab", "start": -4, "end": 1, "type": "P"}, r"'subject' span -4..1 is outside"),
        ({"word": "ab", "start": "0", "end": 1, "type": "P"}, r"'subject' span 0..1 is outside"),
    ],
)
def test_an_entity_is_an_object_with_an_integer_span_inside_the_sentence(subject, message) -> None:
    # _entity: `isinstance(entity, dict)` (`key not in None` would raise TypeError), every key of ("word", "start", "end", "type"),
    # `isinstance(start, int)` and `0 <= start`.
    task = task_of("klue_re")
    with pytest.raises(LayerftError, match=rf"^f: record 1: {message}"):
        normalise_records(task, "target_task", [relation_record(subject=subject)], "f")


def test_overlapping_entities_name_the_record_and_an_unlabelled_one_is_dropped() -> None:
    # relation.normalise: `LayerftError(f"{where}: {err}")` and `if label is None: return None`.
    task = task_of("klue_re")
    overlap = relation_record(object={"word": "bc", "start": 1, "end": 2, "type": "O"})
    with pytest.raises(LayerftError, match=r"^f: record 1: overlapping subject and object$"):
        normalise_records(task, "target_task", [overlap], "f")
    assert normalise_records(task, "target_task", [relation_record(label=None)], "f") == []


def pair(text_a: str, text_b: str, label: float) -> dict:
    """A normalised sentence-pair record."""
    return {"text_a": text_a, "text_b": text_b, "label": label}


# --- encoders and collators ---------------------------------------------------------------------


@pytest.mark.parametrize("texts", [["abcdefgh"], ["abcdefgh", "ij"]])
def test_a_text_or_pair_is_cut_at_max_length(texts: list[str]) -> None:
    # classification.encode_texts: `truncation=True, max_length=task.max_length`: 10 or 13
    # tokens ([CLS] a..h [SEP] (i j [SEP])) cut to 6, not to the tokenizer's own limit.
    task = task_of("snli", "target_task.max_length=6")
    batch = dict(zip(("text_a", "text_b"), ([t] for t in texts), strict=False)) | {"label": [0]}
    encoded = kind_of(task).encoder(task, TINY)(batch)
    assert len(encoded["input_ids"][0]) == 6 and encoded["labels"] == [0]


def test_a_biencoder_cuts_each_sentence_at_max_length_and_pads_to_the_multiple(tmp_path) -> None:
    # biencoder.encoder: both tokenizer calls take `max_length=task.max_length`: [CLS] a b [SEP].
    task = task_of("klue_sts_biencoder", "target_task.max_length=4")
    encoded = kind_of(task).encoder(task, TINY)(
        {"text_a": ["abcdef"], "text_b": ["abcdefg"], "label": [1.0]}
    )
    assert (len(encoded["input_ids"][0]), len(encoded["input_ids_b"][0])) == (4, 4)
    # PairCollator: `pad_to_multiple_of` on each sentence's padding: longest 4 and 5 -> 8 each.
    rows = [pair("ab", "abc", 1.0), pair("a", "a", 2.0)]
    features = list(
        tokenize(Dataset.from_list(rows), task_of("klue_sts_biencoder"), TINY, tmp_path)
    )
    batch = kind_of(task).collator(TINY, 8)(features)
    assert batch["input_ids"].shape == (2, 8) and batch["input_ids_b"].shape == (2, 8)


def test_relation_marker_warning_counts_and_quotes_the_first_cut_example(caplog) -> None:
    # relation.check_encoded: "%d of %d" is len(cut) of len(rows), and the quoted text is
    # rows[cut[0]]: only the second of two examples lost its object marker (index 0).
    task = task_of("klue_re")
    features = Dataset.from_dict({"subject_index": [3, 5], "object_index": [7, 0]})
    rows = [{"text": "kept"}, {"text": "cut"}]
    with caplog.at_level(logging.WARNING):
        relation.check_encoded(task, "target_task", rows, features)
    assert caplog.messages == [
        "target_task 'klue_re': 1 of 2 training examples have an entity marker past "
        'max_length=256, read as [CLS] (first: "cut"); raise target_task.max_length to keep them'
    ]


def test_missing_classes_are_warned_with_the_number_of_training_examples(caplog) -> None:
    # classification.check_coverage: "(%d training examples)" is len(train), not len(validation).
    task = task_of("snli")
    train, validation = [{"label": 0}] * 2, [{"label": 0}, {"label": 2}, {"label": 1}]
    with caplog.at_level(logging.WARNING):
        classification.check_coverage(task, "target_task", train, validation)
    assert caplog.messages == [
        "target_task train: no examples of neutral, contradiction, which validation has "
        "(2 training examples)"
    ]


# --- heads --------------------------------------------------------------------------------------


def test_mean_pool_averages_only_the_unmasked_tokens() -> None:
    # mean_pool: (hidden * mask).sum / mask.sum: [1, 2] and [3, 4] -> [2, 3]; the padded
    # [100, 100] is left out.
    hidden = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]]])
    assert biencoder.mean_pool(hidden, torch.tensor([[1, 1, 0]])).tolist() == [[2.0, 3.0]]


def test_a_biencoder_scores_score_max_times_the_cosine_of_each_sentence_alone(tmp_path) -> None:
    # BiencoderHead: scores = cosine * score_max and loss = MSE(cosine, label / score_max), with
    # the build_head's score_max (10 here, not the default 5). Each sentence is mean-pooled over
    # its own tokens: the cosine of the sentences encoded one by one, unpadded.
    task = task_of("klue_sts_biencoder", "target_task.biencoder.score_max=10")
    texts = [("ab", "abcdef"), ("abcd", "a")]
    rows = [pair(a, b, label) for (a, b), label in zip(texts, (2.0, 8.0), strict=True)]
    features = list(tokenize(Dataset.from_list(rows), task, TINY, tmp_path))
    batch = kind_of(task).collator(TINY, None)(features)
    head = kind_of(task).build_head(backbone().config.hidden_size, task)
    assert head.score_max == 10

    def alone(text: str) -> torch.Tensor:
        return backbone()(**TINY([text], return_tensors="pt")).last_hidden_state.mean(1)

    with torch.no_grad():
        out = head(backbone(), **batch)
        cosine = torch.cat([torch.cosine_similarity(alone(a), alone(b)) for a, b in texts])
    assert out.scores.tolist() == pytest.approx((10 * cosine).tolist(), abs=1e-5)
    expected = ((cosine - torch.tensor([0.2, 0.8])) ** 2).mean().item()
    assert out.loss.item() == pytest.approx(expected, rel=1e-5)


def test_a_regression_head_scores_a_batch_of_one_as_one_score() -> None:
    # RegressionHead: `.squeeze(-1)`: (1, 1) -> (1,), not a 0-d score (the last dev batch may hold
    # one example); the loss is the squared error (mse_loss), here of the one example.
    task = task_of("klue_sts")
    head = kind_of(task).build_head(backbone().config.hidden_size, task).eval()
    with torch.no_grad():
        out = head(backbone(), **TINY(["ab"], return_tensors="pt"), labels=torch.tensor([2.0]))
    assert out.scores.shape == (1,)
    assert out.loss.item() == pytest.approx((out.scores.item() - 2.0) ** 2, rel=1e-6)


def test_a_fresh_sentence_head_is_robertas_in_training_mode_too() -> None:
    # ClassificationHead: `dropout_first = True` when fresh: dropout on the first token, dense,
    # tanh, dropout, classifier, as RobertaClassificationHead (the same seed draws the same masks
    # only where the dropouts sit where RoBERTa's do).
    task = task_of("snli", "target_task.head_dropout=0.5")
    ours = kind_of(task).build_head(8, task).train()
    config = RobertaConfig(hidden_size=8, num_labels=3, classifier_dropout=0.5)
    roberta = RobertaClassificationHead(config).train()
    roberta.dense.load_state_dict(ours.dense.state_dict())
    roberta.out_proj.load_state_dict(ours.classifier.state_dict())
    hidden = torch.randn(4, 5, 8)
    torch.manual_seed(3)
    expected = roberta(hidden)
    torch.manual_seed(3)
    torch.testing.assert_close(ours.scores(hidden), expected)


def test_a_marker_head_drops_out_before_and_after_its_dense_layer() -> None:
    # MarkerHead: classifier(dropout(tanh(dense(dropout([h_subject; h_object]))))): in training
    # mode the same seed draws the same two masks as this composition (KLUE-RE's head shape).
    task = task_of("klue_re", "target_task.head_dropout=0.5")
    head = kind_of(task).build_head(backbone().config.hidden_size, task).train()
    inputs = dict(TINY(["abc"], return_tensors="pt"))  # [CLS] a b c [SEP]
    with torch.no_grad():
        hidden = backbone()(**inputs).last_hidden_state
        pair = torch.cat([hidden[:, 1], hidden[:, 3]], -1)  # subject at a, object at c
        torch.manual_seed(5)
        expected = head.classifier(head.dropout(torch.tanh(head.dense(head.dropout(pair)))))
        torch.manual_seed(5)
        out = head(backbone(), torch.tensor([1]), torch.tensor([3]), **inputs)
    torch.testing.assert_close(out.logits, expected)


@pytest.mark.parametrize("option", ["snli", "klue_sts", "klue_re"])
def test_each_sentence_head_takes_the_tasks_dropout(option: str) -> None:
    # build_head passes task.head_dropout (0.3 here) to every dropout of the head.
    task = task_of(option, "target_task.head_dropout=0.3")
    head = kind_of(task).build_head(backbone().config.hidden_size, task)
    probabilities = [m.p for m in head.modules() if isinstance(m, torch.nn.Dropout)]
    assert probabilities == [0.3]


@pytest.mark.parametrize("option", ["snli", "klue_re"])
def test_a_classification_loss_is_the_mean_over_the_batch(option: str) -> None:
    # ClassificationHead and MarkerHead: cross_entropy's mean: a zeroed classifier scores every
    # label alike, so each of the 2 examples costs log(number of labels), and so does the mean.
    task = task_of(option)
    head = kind_of(task).build_head(backbone().config.hidden_size, task).eval()
    torch.nn.init.zeros_(head.classifier.weight)
    torch.nn.init.zeros_(head.classifier.bias)
    inputs = dict(TINY(["ab", "cd"], return_tensors="pt"))
    if option == "klue_re":
        inputs |= {"subject_index": torch.tensor([1, 1]), "object_index": torch.tensor([2, 2])}
    with torch.no_grad():
        loss = head(backbone(), labels=torch.tensor([0, 1]), **inputs).loss
    assert loss.item() == pytest.approx(np.log(len(task.label_names)), rel=1e-6)


# --- metric inputs ------------------------------------------------------------------------------


def test_relation_metric_inputs_hold_softmax_probabilities_and_the_no_relation_index() -> None:
    # relation.metric_inputs: `logits.softmax(-1)`: exp(0), exp(ln 2), exp(ln 5) = 1, 2, 5 of 8;
    # no_relation_id is no_relation's index in label_names (1 here, not always 0).
    task = task_of("klue_re", "target_task.label_names=[a,no_relation,b]")
    logits = np.log(np.array([[1.0, 2.0, 5.0], [4.0, 2.0, 2.0]]))
    inputs = relation.metric_inputs(task, EvalPrediction(logits, np.array([2, 1])), None, [])
    probabilities = inputs[MetricInput.class_probabilities]
    assert probabilities["probabilities"] == [
        pytest.approx([0.125, 0.25, 0.625]), pytest.approx([0.5, 0.25, 0.25])
    ]  # fmt: skip
    assert probabilities["no_relation_id"] == 1
    assert inputs[MetricInput.class_ids] == {"predictions": [2, 0], "references": [2, 1]}


def test_regression_metric_inputs_hold_predicted_and_gold_scores() -> None:
    # regression.metric_inputs: predictions from the scores, references from label_ids (reading
    # the scores for both made Pearson 1 for any model).
    task = task_of("klue_sts")
    prediction = EvalPrediction(np.array([1.5, 2.0], dtype=np.float32), np.array([1.0, 3.0]))
    assert regression.metric_inputs(task, prediction, None, []) == {
        MetricInput.scores: {"predictions": [1.5, 2.0], "references": [1.0, 3.0]}
    }


# --- kinds/base.py: the shared helpers ------------------------------------------------------------


def test_a_head_without_labels_returns_no_loss_entry() -> None:
    # Kills `{"loss": loss} | predictions` whatever the loss: the Trainer's prediction step reads
    # every entry of a labelless output as a prediction, None among them.
    logits = torch.zeros(2, 3)
    assert list(head_output(None, logits=logits)) == ["logits"]
    assert list(head_output(torch.tensor(0.5), logits=logits)) == ["loss", "logits"]


def test_the_logits_of_several_prediction_arrays_are_the_first() -> None:
    # Kills `return predictions` for a tuple: a head returning (logits, extra) gave the metric both.
    logits, extra = np.array([[0.1, 0.9]]), np.array([[7.0]])
    assert logits_of(EvalPrediction(predictions=(logits, extra), label_ids=None)) is logits
    assert logits_of(EvalPrediction(predictions=logits, label_ids=None)) is logits


def test_a_text_of_combining_marks_alone_is_blank() -> None:
    # Kills "C" for "CM" in blank(): a text of a lone combining accent (U+0301) and a zero-width
    # space (U+200B, a format character) would train as a sentence; an accented letter is text.
    assert blank("\u0301 \u200b") and blank("")
    assert not blank("e\u0301")
