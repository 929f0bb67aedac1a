"""KLUE's JSON releases (KLUE-STS, KLUE-MRC) and the hub's `klue/klue` sts and mrc rows -> records.
Serves the task groups' `release_format: klue_sts | klue_mrc` (registered in `layerft/readers.py`;
KLUE-RE: `layerft/readers_klue_re.py`).

A fault in a record names the file, the line and the record's guid (a hub row: its index and
guid; the field checks are `layerft/readers_fields.py`'s); `read_release_array` serves KLUE-RE too.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from layerft.errors import LayerftError, quoted
from layerft.readers_fields import RecordFault, answer_spans, hub_answers, record_field
from layerft.readers_records import array_element_line, check_new_guid, nonempty
from layerft.readers_squad import read_articles
from layerft.text_files import finite_number, line_of, read_json_text


def _score(labels: Mapping[str, Any], key: str) -> float:
    """labels[key] as a float in 0..5."""
    value = record_field(labels, key, object, f"labels.{key}")
    if not finite_number(value):
        raise RecordFault(f"labels.{key} {quoted(value)} is not a number")
    if not 0 <= value <= 5:
        raise RecordFault(f"labels.{key} {value} is outside 0..5")
    return float(value)


def read_release_array(
    path: Path, layout: str, convert: Callable[[dict[str, Any]], dict[str, Any]]
) -> list[dict[str, Any]]:
    """A release JSON array of records with a guid each, each converted by `convert`; a fault
    names the file, the record's line and its guid."""
    text, rows = read_json_text(path)
    if not isinstance(rows, list):
        raise LayerftError(f"{path}: expected a JSON array of records ({layout})")
    records = []
    guids: set[str] = set()
    for number, row in enumerate(rows, 1):
        guid = row.get("guid") if isinstance(row, dict) else None
        if not isinstance(guid, str) or not guid.strip():
            # Located only now: finding a line rescans the array up to the record.
            line = array_element_line(text, number - 1)
            problem = "has no guid" if isinstance(row, dict) else "is not an object"
            raise LayerftError(f"{path}:{line}: record {number} {problem}")
        check_new_guid(path, text, guid, guids)
        try:
            records.append(convert(row))
        except RecordFault as fault:
            line = line_of(text, json.dumps(guid, ensure_ascii=False))
            raise LayerftError(f"{path}{line}: {guid}: {fault}") from None
    return nonempty(path, records)


def sts_record(row: Mapping[str, Any]) -> dict[str, Any]:
    """A KLUE-STS row (release or hub: labels.{label, real-label, binary-label}) -> flat record."""
    labels = record_field(row, "labels", dict)
    binary = record_field(labels, "binary-label", object, "labels.binary-label")
    if isinstance(binary, bool) or binary not in (0, 1) or not isinstance(binary, int):
        raise RecordFault(f"labels.binary-label {quoted(binary)} is not 0 or 1")
    return {
        "guid": record_field(row, "guid", str),
        "sentence1": record_field(row, "sentence1", str),
        "sentence2": record_field(row, "sentence2", str),
        "label": _score(labels, "label"),
        "real_label": _score(labels, "real-label"),
        "binary_label": binary,
    }


def read_klue_sts(path: Path) -> list[dict[str, Any]]:
    """KLUE-STS release JSON -> {guid, sentence1, sentence2, label, real_label, binary_label}.

    label is labels.label (0-5), real_label labels.real-label (the annotators' mean, 0-5),
    binary_label labels.binary-label (0 or 1; KLUE sets 1 for label >= 3).
    """
    return read_release_array(Path(path), "the KLUE-STS release layout", sts_record)


def _mrc_record(title: str, context: str, qa: Mapping[str, Any]) -> dict[str, Any]:
    """One KLUE-MRC question in the release layout -> flat record."""
    is_impossible = record_field(qa, "is_impossible", bool)
    answers = answer_spans(record_field(qa, "answers", list), context, "answers")
    if is_impossible and answers:
        raise RecordFault(f"is_impossible is true but it has {len(answers)} answers")
    if not is_impossible and not answers:
        raise RecordFault("has no answers and is_impossible is false")
    return {
        "guid": record_field(qa, "guid", str),
        "title": title,
        "context": context,
        "question": record_field(qa, "question", str),
        "answers": answers,
        "is_impossible": is_impossible,
        "plausible_answers": answer_spans(
            qa.get("plausible_answers", []), context, "plausible_answers"
        ),
        "question_type": _question_type(qa),
    }


QUESTION_TYPES = {1: "paraphrase", 2: "multi-sentence reasoning", 3: "unanswerable"}
"""KLUE-MRC's question types (the KLUE paper, section 3.7)."""


def _question_type(qa: Mapping[str, Any]) -> int:
    """A question's question_type, one of QUESTION_TYPES (another value: not KLUE-MRC's file).
    Whether type 3 is exactly the impossible questions is not checked: no release file here to
    confirm it on, and layerft reads the type for nothing else."""
    value = record_field(qa, "question_type", int)
    if value not in QUESTION_TYPES:
        named = ", ".join(f"{k} ({v})" for k, v in QUESTION_TYPES.items())
        raise RecordFault(f"question_type {value} is not one of {named}")
    return value


def _title(article: Mapping[str, Any], name: str) -> str:
    """An article's title; the hub's loader treats it as optional, so a missing one is ''."""
    title = article.get("title", "")
    if not isinstance(title, str):
        raise RecordFault(f"{name} is not a string (got {quoted(title)})")
    return title


def read_klue_mrc(path: Path) -> list[dict[str, Any]]:
    """KLUE-MRC release JSON (SQuAD 2.0 style) -> one record per question.

    Keys: guid, title, context, question, answers [{text, answer_start}] (empty when is_impossible),
    is_impossible, plausible_answers [{text, answer_start}] (an unanswerable question's decoy spans;
    empty when absent), question_type (1 paraphrase, 2 multi-sentence reasoning, 3 unanswerable).
    Every answer and plausible answer must be found in the context at its answer_start.
    """
    path = Path(path)
    text, articles = read_articles(path, "KLUE-MRC")
    records = []
    guids: set[str] = set()
    for d, article in enumerate(articles):
        try:
            paragraphs = record_field(article, "paragraphs", list, f"data[{d}].paragraphs")
            title = _title(article, f"data[{d}].title")
            for p, paragraph in enumerate(paragraphs):
                where = f"data[{d}].paragraphs[{p}]"
                context = record_field(paragraph, "context", str, f"{where}.context")
                for q, qa in enumerate(record_field(paragraph, "qas", list, f"{where}.qas")):
                    guid = record_field(qa, "guid", str, f"{where}.qas[{q}].guid")
                    check_new_guid(path, text, guid, guids)
                    try:
                        records.append(_mrc_record(title, context, qa))
                    except RecordFault as fault:
                        line = line_of(text, json.dumps(guid, ensure_ascii=False))
                        raise LayerftError(f"{path}{line}: {guid}: {fault}") from None
        except RecordFault as fault:
            # Above a question's guid, the fault names its place in the JSON (data[0].paragraphs).
            raise LayerftError(f"{path}: {fault}") from None
    return nonempty(path, records)


def hub_mrc(index: int, row: Mapping[str, Any]) -> dict[str, Any]:
    """A `klue/klue` mrc row: answers is {answer_start: [...], text: [...]}."""
    spans = hub_answers(row)
    is_impossible = record_field(row, "is_impossible", bool)
    # The hub's loader appended plausible_answers to answers: an unanswerable question's spans
    # are its plausible answers.
    qa = {
        **row,
        "answers": [] if is_impossible else spans,
        "plausible_answers": spans if is_impossible else [],
    }
    return _mrc_record(_title(row, "title"), record_field(row, "context", str), qa)
