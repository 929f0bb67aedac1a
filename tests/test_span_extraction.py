"""Span extraction (KLUE-MRC): windows over long contexts with their answer positions, decoding
hand-built logits back to answer texts, training on the release-layout samples, bad settings.

The character tokenizer (`build_tiny_tokenizer`: every non-space character a subword) makes
token positions easy to reason about: a context token is a character of the context.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pytest
from compose import compose_run
from datasets import Dataset
from datasets.arrow_writer import ArrowWriter
from transformers import EvalPrediction

from layerft.errors import LayerftError
from layerft.evaluation import build_compute_metrics
from layerft.kinds.span_decoding import scored_answers
from layerft.kinds.span_extraction import SpanConfig, collator, encoder, normalise
from layerft.run import train_stages
from layerft.stage_data import load_stage_data
from layerft.stage_models import build_target_model
from layerft.task import TaskConfig, TaskKind
from layerft.tiny_model import build_tiny_tokenizer
from layerft.tokenized import tokenize

MRC_DATA = Path(__file__).resolve().parent / "data" / "klue" / "klue-mrc-v1.1"
TOKENIZER = build_tiny_tokenizer()
LETTERS = "abcdefghijklmnopqrstuvwxyz"


def mrc_task(max_length: int = 40, **spans: float) -> TaskConfig:
    """A span task on the normalised records' columns (short questions, windows every 16)."""
    return TaskConfig(
        name="mrc", kind=TaskKind.span_extraction, text_columns=["question", "context"],
        label_column="answers", metrics=["klue_mrc"], best_metric="rouge_w",
        max_length=max_length,
        spans=SpanConfig(**({"max_query_length": 8, "doc_stride": 16, "unanswerable": True} | spans)),
    )  # fmt: skip


def record(question: str, context: str, *answers: str) -> dict:
    """A release-reader record whose answers are found in the context by text."""
    return {
        "question": question, "context": context, "is_impossible": not answers,
        "answers": [{"text": a, "answer_start": context.index(a)} for a in answers],
    }  # fmt: skip


def encode(task: TaskConfig, records: list[dict]) -> dict[str, list]:
    """The kind's features of `records` (one encoder batch), as columns."""
    rows = [normalise(task, "target_task", r, f"record {i}") for i, r in enumerate(records, 1)]
    batch = {key: [row[key] for row in rows] for key in rows[0]}
    return encoder(task, TOKENIZER)(batch | {"row_index": list(range(len(rows)))})


def window_text(features: dict[str, list], feature: int) -> str:
    """The context characters a window holds (the tokenizer drops nothing but spaces)."""
    tokens = TOKENIZER.convert_ids_to_tokens(features["input_ids"][feature])
    return "".join(
        t for t, o in zip(tokens, features["offset_mapping"][feature], strict=True) if o is not None
    )


# --- encoding ---------------------------------------------------------------------------------


def test_windows_step_by_doc_stride_and_positions_sit_on_the_answer_or_cls() -> None:
    # 14 positions: [CLS] q [SEP] <10 context tokens> [SEP]; windows start every 4 tokens.
    task = mrc_task(max_length=14, doc_stride=4, max_query_length=1)
    features = encode(task, [record("qq", LETTERS, "jklm"), record("q", "ab c", "c")])
    # The question is cut to its first token; the second record fits one window.
    windows = [window_text(features, f) for f in range(len(features["input_ids"]))]
    assert windows == [
        LETTERS[0:10], LETTERS[4:14], LETTERS[8:18], LETTERS[12:22], LETTERS[16:26], "abc"
    ]  # fmt: skip
    assert features["example_index"] == [0, 0, 0, 0, 0, 1]
    for f, window in enumerate(windows[:5]):
        start, end = features["start_positions"][f], features["end_positions"][f]
        if "jklm" in window:  # windows 1 and 2 hold it whole; 0 and 3 only in part
            tokens = TOKENIZER.convert_ids_to_tokens(features["input_ids"][f][start : end + 1])
            assert "".join(tokens) == "jklm"
            offsets = features["offset_mapping"][f]
            assert LETTERS[offsets[start][0] : offsets[end][1]] == "jklm"
        else:
            assert start == end == 0, window
    assert [window for window in windows if "jklm" in window] == [LETTERS[4:14], LETTERS[8:18]]
    # Offsets only on context tokens: [CLS], the question and both [SEP] have None.
    assert [i for i, o in enumerate(features["offset_mapping"][0]) if o is None] == [0, 1, 2, 13]
    assert features["start_positions"][5] == 5  # "c" after [CLS] q [SEP] a b
    assert list(features) == [
        "input_ids", "token_type_ids", "attention_mask", "start_positions", "end_positions",
        "example_index", "offset_mapping",
    ]  # fmt: skip


def test_unanswerable_questions_train_on_cls_and_spaced_answers_map_to_their_tokens() -> None:
    task = mrc_task(max_length=40)
    context = "The fair drew 4만 2천 명 on Sunday."
    features = encode(task, [record("How many?", context, "4만 2천 명"), record("Who?", context)])
    start, end = features["start_positions"][0], features["end_positions"][0]
    offsets = features["offset_mapping"][0]
    assert context[offsets[start][0] : offsets[end][1]] == "4만 2천 명"  # spaces are no tokens
    assert end - start + 1 == 5  # 4, 만, 2, 천, 명
    assert features["start_positions"][1] == features["end_positions"][1] == 0


def test_windows_point_at_their_record_across_map_batches(tmp_path) -> None:
    task = mrc_task(max_length=14, doc_stride=4, max_query_length=1)
    records = [record("q", LETTERS[: 8 + i % 7], "c") for i in range(1100)]  # 1000 per batch
    rows = [normalise(task, "t", r, "r") for r in records]
    features = tokenize(Dataset.from_list(rows), task, TOKENIZER, tmp_path)
    windows = [1 if 8 + i % 7 <= 10 else 2 for i in range(1100)]  # 10 context tokens each
    assert features["example_index"] == [i for i, n in enumerate(windows) for _ in range(n)]


def test_records_whose_answers_do_not_match_the_context_are_named() -> None:
    task = mrc_task()
    bad = record("q", "abc def", "def") | {"guid": "mrc-7"}
    bad["answers"][0]["answer_start"] = 3
    message = r"^file: record 2: answer 'def' does not match context\[3:6\] \(' de'\)$"
    with pytest.raises(LayerftError, match=message):
        normalise(task, "target_task", bad, "file: record 2")
    impossible = record("q", "abc", "b") | {"is_impossible": True}
    with pytest.raises(LayerftError, match="is_impossible is true but it has 1 answers"):
        normalise(task, "target_task", impossible, "record 1")
    with pytest.raises(LayerftError, match="column 'answers' must be a list of"):
        normalise(task, "target_task", record("q", "abc") | {"answers": "b"}, "record 1")
    # SQuAD has one-space questions; a blank context has nothing to answer from.
    assert normalise(task, "target_task", record(" ", "abc", "b"), "record 1")["question"] == " "
    with pytest.raises(LayerftError, match=r"record 1: column 'context' is blank \(only spaces\)"):
        normalise(task, "target_task", record("q", "  "), "record 1")
    # A blank answer has no token: it trained on a start after its end (the release reader
    # refuses it too); a context of characters the tokenizer removes had no window to answer in.
    spaced = record("q", "ab cd", " ")
    spaced["answers"][0]["answer_start"] = 2
    with pytest.raises(LayerftError, match="record 1: an answer needs a non-blank text"):
        normalise(task, "target_task", spaced, "record 1")
    unseen = record("q", "\u200b\u200b", "\u200b")
    with pytest.raises(LayerftError, match=r"'context' is blank \(only characters tokenizers"):
        normalise(task, "target_task", unseen, "record 1")


# --- decoding ---------------------------------------------------------------------------------

# 14 positions, question "q": windows of 10 context tokens starting every 5 (0, 5, 10, 15, 20).
DECODE = {"max_length": 14, "doc_stride": 5, "max_query_length": 1}


class Logits:
    """Start/end logits of `base` for the windows of one record, set by context character."""

    def __init__(self, context: str, task: TaskConfig, base: float = 0.0) -> None:
        self.context, self.task = context, task
        self.features = encode(task, [record("q", context)])
        shape = (len(self.features["input_ids"]), task.max_length + 6)
        # Beyond each window's length: what other batches pad with; it must never be read.
        self.start, self.end = np.full(shape, 50.0), np.full(shape, 50.0)
        for f, ids in enumerate(self.features["input_ids"]):
            self.start[f, : len(ids)] = self.end[f, : len(ids)] = base

    def position(self, window: int, char: int) -> int:
        offsets = self.features["offset_mapping"][window]
        return next(p for p, o in enumerate(offsets) if o is not None and o[0] == char)

    def span(self, window: int, text: str, start: float, end: float) -> None:
        """Score the span of `text` (found in the context) in `window`."""
        first = self.context.index(text)
        self.start[window, self.position(window, first)] = start
        self.end[window, self.position(window, first + len(text) - 1)] = end

    def null(self, window: int, score: float) -> None:
        self.start[window, 0] = self.end[window, 0] = score / 2

    def answer(self, **spans: float) -> str:
        task = self.task
        if spans:
            task = mrc_task(task.max_length, **(vars(task.spans) | spans))
        ((text, _),) = scored_answers(
            self.start, self.end, self.features["example_index"],
            self.features["offset_mapping"], [self.context], task.spans,
        )  # fmt: skip
        return text


def test_an_answer_across_a_window_boundary_is_read_from_the_window_that_holds_it() -> None:
    logits = Logits(LETTERS, mrc_task(**DECODE))
    # "ijklm" (8-12): window 0 (0-9) ends inside it, window 1 (5-14) holds it whole.
    logits.span(0, "ij", 3.0, 3.0)  # the best window 0 can do: a cut answer
    logits.span(1, "ijklm", 4.0, 4.0)
    assert logits.answer() == "ijklm"


def test_the_best_span_is_chosen_across_windows_whichever_comes_first() -> None:
    logits = Logits(LETTERS, mrc_task(**DECODE))
    logits.span(0, "cd", 2.0, 2.0)
    logits.span(3, "tuv", 2.5, 2.0)
    assert logits.answer() == "tuv"
    logits.span(0, "cd", 2.0, 3.0)
    assert logits.answer() == "cd"


def test_a_token_starts_answers_only_in_the_window_where_it_has_most_context() -> None:
    logits = Logits(LETTERS, mrc_task(**DECODE))
    # "h" (7) is 2 tokens from window 0's end and 2 from window 1's start (window 2 lacks it): a
    # tie, which the earlier window wins; "n" (13) has 1 / 3 tokens of context in windows 1 / 2.
    logits.span(1, "hi", 5.0, 5.0)
    logits.span(0, "hij", 4.0, 4.0)
    assert logits.answer() == "hij"
    logits.span(1, "no", 9.0, 9.0)
    logits.span(2, "nop", 8.0, 8.0)
    assert logits.answer() == "nop"


def test_subword_spans_come_back_as_the_exact_characters_of_the_context() -> None:
    context = "On 8 May, Seoul  Jazz Fest. opened."
    logits = Logits(context, mrc_task(max_length=40))
    logits.span(0, "Seoul  Jazz Fest.", 3.0, 3.0)  # lower-cased tokens, two spaces, a period
    assert logits.answer() == "Seoul  Jazz Fest."


def test_unanswerable_when_the_null_score_beats_the_best_span_by_more_than_the_threshold() -> None:
    logits = Logits(LETTERS, mrc_task(**DECODE))
    logits.span(1, "lmn", 2.0, 2.0)  # 4.0; "l" has most context in window 1
    for window in range(5):
        logits.null(window, 5.0)
    assert logits.answer() == ""
    logits.null(3, 4.5)  # the smallest null score over the windows counts
    assert logits.answer() == ""
    assert logits.answer(null_score_threshold=1.0) == "lmn"
    logits.null(4, 3.5)
    assert logits.answer() == "lmn"


def test_long_spans_reversed_spans_and_spans_in_the_question_are_excluded() -> None:
    logits = Logits(LETTERS, mrc_task(**DECODE), base=-10.0)  # null score -20
    logits.start[:, 1] = logits.end[:, 1] = 10.0  # the question's token
    logits.span(0, "cdefghi", 6.0, 6.0)  # 7 tokens
    logits.span(0, "de", 1.0, 2.0)
    logits.end[0, logits.position(0, 1)] = 9.0  # ends at "b", before every strong start
    assert logits.answer() == "cdefghi"
    assert logits.answer(max_answer_length=6) == "cde"  # 6 + 2 beats "defghi", 1 + 6
    assert logits.answer(max_answer_length=6, n_best=1) == ""  # one start, one end: "c".."b"


def test_compute_metrics_scores_answers_against_gold_texts_and_empty_for_unanswerable() -> None:
    task = mrc_task(**DECODE)
    gold = [("cd", "cde"), (), ()]
    rows = [normalise(task, "t", record("q", LETTERS, *g), "r") for g in gold]
    logits = [Logits(LETTERS, task) for _ in gold]
    logits[0].span(0, "cde", 3.0, 3.0)
    for window in range(5):
        logits[1].null(window, 7.0)  # right: no answer
    logits[2].span(1, "kl", 3.0, 3.0)  # answers an unanswerable question
    features = Dataset.from_dict(
        {
            "example_index": [r for r in range(3) for _ in range(5)],
            "offset_mapping": logits[0].features["offset_mapping"] * 3,
        }
    )
    start = np.concatenate([one.start for one in logits])
    end = np.concatenate([one.end for one in logits])
    compute = build_compute_metrics(task, features, rows)
    metrics = compute(EvalPrediction((start, end), (np.zeros(15), np.zeros(15))))
    assert metrics == pytest.approx({"exact_match": 2 / 3, "rouge_w": 2 / 3})


def test_the_loss_does_not_depend_on_how_far_a_batch_is_padded() -> None:
    model, _ = build_target_model(compose_run("model=tiny", "target_task=klue_mrc"), None)
    model.eval()
    task = mrc_task(max_length=40)
    features = encode(task, [record("When?", "It opened on 8 May.", "8 May")])
    feature = {key: values[0] for key, values in features.items()}
    losses = [
        model(**collator(TOKENIZER, multiple)([feature])).loss.item() for multiple in (None, 64)
    ]
    assert losses[0] == pytest.approx(losses[1], rel=1e-6)


# --- through the stages -----------------------------------------------------------------------

# The release samples (24/10 questions, contexts of 300-370 characters) in windows of 93
# characters every 64: each record makes 3 or 4 features.
SAMPLES = ("model=tiny", "tracker=none", "injection_task=none", "target_task=klue_mrc",
           f"target_task.data_dir={MRC_DATA}", "target_task.max_length=128",
           "target_task.spans.doc_stride=64", "target_task.spans.max_query_length=32")  # fmt: skip


def test_release_samples_load_as_windows_pointing_back_at_their_records(tmp_path, caplog) -> None:
    cfg = compose_run(*SAMPLES, f"cache_dir={tmp_path}")
    data = load_stage_data(cfg).target
    rows = data.validation_rows
    index = data.validation["example_index"]
    assert len(rows) == 10 and len(index) >= 3 * len(rows)
    assert sorted(set(index)) == list(range(10)) and index == sorted(index)
    answered = 0
    for feature in data.validation:
        row = rows[feature["example_index"]]
        start, end = feature["start_positions"], feature["end_positions"]
        if start:
            offsets = feature["offset_mapping"]
            assert row["context"][offsets[start][0] : offsets[end][1]] == row["answer_texts"][0]
            answered += 1
    assert answered >= 7  # the answerable dev questions, in one window or more
    # Several features per record: a reloaded cache entry is whole, a short one is rebuilt.
    with caplog.at_level(logging.WARNING, logger="layerft.tokenized"):
        again = load_stage_data(cfg).target
    assert not [r for r in caplog.records if r.name == "layerft.tokenized"]
    assert again.validation["example_index"] == index
    entry = next(
        f for f in (tmp_path / "tokenized").glob("*.arrow") if len(Dataset.from_file(str(f))) == len(index)
    )  # fmt: skip
    # Only whole records can be counted: the last one's windows all go.
    short = Dataset.from_file(str(entry)).data.table.slice(0, len(index) - index.count(9))
    with ArrowWriter(path=str(tmp_path / "short.arrow")) as writer:
        writer.write_table(short)
    os.replace(tmp_path / "short.arrow", entry)
    with caplog.at_level(logging.WARNING, logger="layerft.tokenized"):
        rebuilt = load_stage_data(cfg).target
    assert "9 records, expected 10" in caplog.text
    assert rebuilt.validation["example_index"] == index


def test_the_kind_trains_on_the_release_samples_and_its_loss_falls(tmp_path) -> None:
    cfg = compose_run(*SAMPLES, f"cache_dir={tmp_path / 'cache'}", "target_task.epochs=4",
                      "target_task.lr=2e-3", "target_task.batch_size=16")  # fmt: skip
    logs: list[tuple[int, dict[str, float]]] = []
    metrics, _ = train_stages(cfg, load_stage_data(cfg), tmp_path / "run",
                           lambda numbers, step: logs.append((step, numbers)))  # fmt: skip
    losses = [numbers["target/loss"] for _, numbers in logs if "target/loss" in numbers]
    assert len(losses) >= 4
    # Measured: 4.39 -> 1.70 (seed 42); ln(128) = 4.85 is an untrained window's loss.
    assert losses[-1] < losses[0] - 1.5
    assert 0.0 <= metrics["target/eval_exact_match"] <= metrics["target/eval_rouge_w"] <= 1.0
    assert np.isfinite(metrics["target/eval_loss"])


# --- settings ---------------------------------------------------------------------------------


BAD_SETTINGS = {
    "spans.doc_stride=0": "spans.doc_stride must be >= 1, got 0",
    "spans.n_best=0": "spans.n_best must be >= 1, got 0",
    "spans.max_answer_length=-1": "spans.max_answer_length must be >= 1, got -1",
    "spans.max_query_length=0": "spans.max_query_length must be >= 1, got 0",
    "spans.null_score_threshold=nan": "spans.null_score_threshold must be a finite number, got nan",
    # max_length 512 - 64 question tokens - 4 special tokens: a longer step skips context.
    "spans.doc_stride=445": "spans.doc_stride=445 must be <= max_length - "
    "spans.max_query_length - 4 = 444",
    "spans.max_query_length=508": "spans.max_query_length=508 leaves no context tokens in "
    "max_length=512",
    "text_columns=[context]": "text_columns must name the question and the context column",
    "label_names=[a,b]": "label_names must be empty for span extraction",
}


@pytest.mark.parametrize(("override", "message"), BAD_SETTINGS.items())
def test_bad_span_settings_fail_in_one_line_naming_the_key(override: str, message: str) -> None:
    with pytest.raises(LayerftError) as caught:
        compose_run("model=tiny", "target_task=klue_mrc", f"target_task.{override}")
    assert str(caught.value).startswith(f"target_task.{message}")
    assert str(caught.value).endswith("(target_task=klue_mrc)") and "\n" not in str(caught.value)


def test_a_misspelt_span_setting_is_named_with_the_closest_key() -> None:
    with pytest.raises(LayerftError, match=r"^unknown config key 'target_task\.spans\.n_bets'; "
                       r"did you mean 'target_task\.spans\.n_best'\?$"):  # fmt: skip
        compose_run("model=tiny", "target_task=klue_mrc", "+target_task.spans.n_bets=3")
