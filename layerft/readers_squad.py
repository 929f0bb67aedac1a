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
`read_articles` serves KLUE-MRC's release (`layerft/readers_klue.py`) too.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from functools import partial
from pathlib import Path
from typing import Any

from layerft.errors import LayerftError
from layerft.readers_fields import RecordFault, answer_spans, hub_answers, hub_rows, record_field
from layerft.text_files import check_first_time, line_of, read_json_text


def _record(title: str, context: str, qa: Mapping[str, Any], v2: bool) -> dict[str, Any]:
    """One question of either version -> {id, title, context, question, answers[, v2 keys]}."""
    answers = answer_spans(record_field(qa, "answers", list), context, "answers")
    record = {
        "id": qa["id"],
        "title": title,
        "context": context,
        "question": record_field(qa, "question", str, blank_ok=True),
        "answers": answers,
    }
    if not v2:
        if not answers:
            raise RecordFault("has no answers (SQuAD v1.1 has none unanswerable; a v2.0 file?)")
        return record
    is_impossible = record_field(qa, "is_impossible", bool)
    if is_impossible == bool(answers):
        raise RecordFault(
            f"is_impossible is {str(is_impossible).lower()} but it has {len(answers)} answers"
        )
    plausible = answer_spans(
        qa.get("plausible_answers", []), context, "plausible_answers", check_offsets=False
    )
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
        try:
            title = record_field(article, "title", str, f"data[{d}].title", blank_ok=True)
            paragraphs = record_field(article, "paragraphs", list, f"data[{d}].paragraphs")
            for p, paragraph in enumerate(paragraphs):
                where = f"data[{d}].paragraphs[{p}]"
                context = record_field(paragraph, "context", str, f"{where}.context")
                for q, qa in enumerate(record_field(paragraph, "qas", list, f"{where}.qas")):
                    qid = record_field(qa, "id", str, f"{where}.qas[{q}].id")
                    # the needle: the id as the releases write it
                    check_first_time(ids, qid, path, text, '"id": ' + json.dumps(qid), f"id {qid}")
                    try:
                        records.append(_record(title, context, qa, v2))
                    except RecordFault as fault:
                        line = line_of(text, '"id": ' + json.dumps(qid))  # as the releases write it
                        raise LayerftError(f"{path}{line}: {qid}: {fault}") from None
        except RecordFault as fault:
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

    def convert(index: int, row: Mapping[str, Any]) -> dict[str, Any]:
        record_field(row, "id", str)
        answers = hub_answers(row)
        # the hub keeps no is_impossible column
        qa = {**row, "answers": answers, "is_impossible": not answers}
        context = record_field(row, "context", str)
        return _record(record_field(row, "title", str, blank_ok=True), context, qa, v2)

    return partial(hub_rows, hub_id, convert=convert, id_key="id")


hub_squad = _hub_adapter("rajpurkar/squad", v2=False)
"""`rajpurkar/squad` rows -> read_squad's records."""
hub_squad_v2 = _hub_adapter("rajpurkar/squad_v2", v2=True)
"""`rajpurkar/squad_v2` rows -> read_squad_v2's records (plausible_answers: the hub has none)."""
