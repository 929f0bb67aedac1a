"""SQuAD v1.1 and v2.0: the release JSON files and the hub's rows, as span-extraction records.

Serves `release_format: squad | squad_v2` of the `target_task` group (registered in
`layerft/readers.py`). The release layout (train-v1.1.json, dev-v1.1.json, train-v2.0.json,
dev-v2.0.json) is {"version", "data": [{"title", "paragraphs": [{"context", "qas": [{"id",
"question", "answers": [{"text", "answer_start"}], "is_impossible" (v2), "plausible_answers"
(v2, unanswerable questions only)}]}]}]}; the hub's `rajpurkar/squad` and `rajpurkar/squad_v2`
rows are {id, title, context, question, answers: {text: [...], answer_start: [...]}}, an
unanswerable v2 question having empty lists.

Every gold answer must be found in its context at its answer_start. Plausible answers (decoys
of unanswerable questions) are neither trained on nor scored: their shape is checked, their
offsets are not, so a decoy's offset can never stop the official files from loading.
Self-contained (stdlib and LayerftError) because `layerft/readers.py` imports it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from layerft.errors import LayerftError
from layerft.text_files import check_first_time, line_of, read_json_text


class _Fault(Exception):
    """What is wrong with one question; the caller prefixes where it is."""


def _text(record: Any, key: str, name: str, blank_ok: bool = False) -> str:
    """record[key] as a string; blank only if `blank_ok` (SQuAD has a few one-space questions)."""
    value = record.get(key) if isinstance(record, Mapping) else None
    if not isinstance(value, str):
        raise _Fault(f"{name} is not a string (got {json.dumps(value)[:60]})")
    if not blank_ok and not value.strip():
        raise _Fault(f"{name} is empty")
    return value


def _spans(values: Any, context: str, name: str, check_offsets: bool) -> list[dict[str, Any]]:
    """[{text, answer_start}], each (if `check_offsets`) found in `context` at answer_start."""
    if not isinstance(values, list):
        raise _Fault(f"{name} is not a list (got {json.dumps(values)[:60]})")
    spans = []
    for number, span in enumerate(values):
        label = f"{name}[{number}]"
        text = _text(span, "text", f"{label}.text")
        start = span.get("answer_start")
        if isinstance(start, bool) or not isinstance(start, int):
            raise _Fault(f"{label}.answer_start is not an integer (got {json.dumps(start)})")
        found = context[start : start + len(text)] if start >= 0 else ""
        if check_offsets and found != text:
            raise _Fault(
                f"{label} {text!r} does not match the context at answer_start {start} ({found!r})"
            )
        spans.append({"text": text, "answer_start": start})
    return spans


def _record(title: str, context: str, qa: Mapping[str, Any], v2: bool) -> dict[str, Any]:
    """One question of either version -> {id, title, context, question, answers[, v2 keys]}."""
    answers = _spans(qa.get("answers"), context, "answers", check_offsets=True)
    record = {
        "id": qa["id"],
        "title": title,
        "context": context,
        "question": _text(qa, "question", "question", blank_ok=True),
        "answers": answers,
    }
    if not v2:
        if not answers:
            raise _Fault("has no answers (SQuAD v1.1 has none unanswerable; a v2.0 file?)")
        return record
    is_impossible = qa.get("is_impossible")
    if not isinstance(is_impossible, bool):
        raise _Fault(f"is_impossible is not true or false (got {json.dumps(is_impossible)})")
    if is_impossible == bool(answers):
        raise _Fault(
            f"is_impossible is {str(is_impossible).lower()} but it has {len(answers)} answers"
        )
    plausible = _spans(qa.get("plausible_answers", []), context, "plausible_answers", False)
    return record | {"is_impossible": is_impossible, "plausible_answers": plausible}


def read_articles(path: Path, layout: str) -> tuple[str, list[Any]]:
    """A SQuAD-style release file (SQuAD, KLUE-MRC): its text, for error lines, and its `data`
    list of articles; anything else is an error naming `layout`."""
    text, document = read_json_text(path)
    if not isinstance(document, dict) or not isinstance(document.get("data"), list):
        raise LayerftError(f"{path}: expected an object with a 'data' list (the {layout} layout)")
    return text, document["data"]


def _read_release(path: Path, v2: bool) -> list[dict[str, Any]]:
    """A SQuAD release file -> one record per question, in file order."""
    path = Path(path)
    text, articles = read_articles(path, "SQuAD")
    records = []
    ids: set[str] = set()
    for d, article in enumerate(articles):
        where = f"data[{d}]"
        try:
            title = _text(article, "title", f"{where}.title", blank_ok=True)
            paragraphs = article.get("paragraphs")
            if not isinstance(paragraphs, list):
                raise _Fault(f"{where}.paragraphs is not a list")
            for p, paragraph in enumerate(paragraphs):
                where = f"data[{d}].paragraphs[{p}]"
                context = _text(paragraph, "context", f"{where}.context")
                qas = paragraph.get("qas")
                if not isinstance(qas, list):
                    raise _Fault(f"{where}.qas is not a list")
                for q, qa in enumerate(qas):
                    qid = _text(qa, "id", f"{where}.qas[{q}].id")
                    # the needle: the id as the releases write it
                    check_first_time(ids, qid, path, text, '"id": ' + json.dumps(qid), f"id {qid}")
                    try:
                        records.append(_record(title, context, qa, v2))
                    except _Fault as fault:
                        line = line_of(text, '"id": ' + json.dumps(qid))  # as the releases write it
                        raise LayerftError(f"{path}{line}: {qid}: {fault}") from None
        except _Fault as fault:
            raise LayerftError(f"{path}: {fault}") from None
    if not records:
        raise LayerftError(f"{path}: no questions")
    return records


def read_squad(path: Path) -> list[dict[str, Any]]:
    """SQuAD v1.1 release JSON -> {id, title, context, question, answers [{text, answer_start}]}."""
    return _read_release(path, v2=False)


def read_squad_v2(path: Path) -> list[dict[str, Any]]:
    """SQuAD v2.0 release JSON -> read_squad's records plus is_impossible and plausible_answers.

    An unanswerable question has answers [] and is_impossible true; plausible_answers is [] when
    the file has none.
    """
    return _read_release(path, v2=True)


def _hub_adapter(hub_id: str, v2: bool) -> Callable[[list[dict[str, Any]]], list[dict[str, Any]]]:
    """Rows of `hub_id` -> the release reader's records; a fault names the row and its id."""

    def convert(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if not rows:
            raise LayerftError(f"{hub_id}: no rows")
        records = []
        for index, row in enumerate(rows):
            qid = row.get("id") if isinstance(row, Mapping) else None
            named = f" ({qid})" if isinstance(qid, str) else ""
            try:
                _text(row, "id", "id")
                answers = row.get("answers")
                if not isinstance(answers, Mapping):
                    raise _Fault(f"answers is not {{text, answer_start}} (got {answers!r:.60})")
                texts, starts = answers.get("text"), answers.get("answer_start")
                if not (isinstance(texts, list) and isinstance(starts, list)):
                    raise _Fault("answers.text and answers.answer_start must be lists")
                if len(texts) != len(starts):
                    raise _Fault(f"answers has {len(starts)} answer_start for {len(texts)} texts")
                qa = {
                    **row,
                    "answers": [
                        {"text": t, "answer_start": s} for t, s in zip(texts, starts, strict=True)
                    ],
                    "is_impossible": not texts,  # the hub keeps no is_impossible column
                }
                context = _text(row, "context", "context")
                title = _text(row, "title", "title", blank_ok=True)
                records.append(_record(title, context, qa, v2))
            except _Fault as fault:
                raise LayerftError(f"{hub_id} row {index}{named}: {fault}") from None
        return records

    return convert


hub_squad = _hub_adapter("rajpurkar/squad", v2=False)
"""`rajpurkar/squad` rows -> read_squad's records."""
hub_squad_v2 = _hub_adapter("rajpurkar/squad_v2", v2=True)
"""`rajpurkar/squad_v2` rows -> read_squad_v2's records (plausible_answers: the hub has none)."""
