"""The checks of one record's fields that the release readers share (KLUE's JSON and TSV
releases, SQuAD), and the loop that converts a hub data set's rows with them.

Serves the task groups' `release_format` readers (`layerft/readers.py` registers them). A check
raises RecordFault with what is wrong; the reader that knows where the record is (file and line,
or hub row and id) turns it into one LayerftError line.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from layerft.errors import LayerftError, quoted, shown


class RecordFault(Exception):
    """What is wrong with one record; the caller prefixes where the record is."""


KIND_WORDS: Mapping[type, str] = MappingProxyType(
    {str: "a string", int: "an integer", bool: "true or false", list: "a list", dict: "an object"}
)


def record_field(
    record: Any, key: str, kind: type, name: str = "", *, blank_ok: bool = False
) -> Any:
    """record[key] if present and of type `kind` (`object`: any); a string must not be blank
    unless `blank_ok` (SQuAD has a few one-space questions)."""
    name = name or key
    if not isinstance(record, Mapping):
        raise RecordFault(f"{name.rpartition('.')[0] or 'record'} is not an object")
    value = record.get(key)
    if value is None:
        raise RecordFault(f"{name} is {'null' if key in record else 'missing'}")
    # bool is an int subclass in Python; JSON keeps them apart.
    wrong_bool = isinstance(value, bool) and kind is not bool
    if kind is not object and (wrong_bool or not isinstance(value, kind)):
        raise RecordFault(f"{name} is not {KIND_WORDS[kind]} (got {quoted(value)})")
    if isinstance(value, str) and not blank_ok and not value.strip():
        raise RecordFault(f"{name} is empty")
    return value


def answer_spans(
    values: Any, context: str, name: str, *, check_offsets: bool = True
) -> list[dict[str, Any]]:
    """A list of {text, answer_start}; each (if `check_offsets`) found in `context` at its
    answer_start."""
    if not isinstance(values, list):
        raise RecordFault(f"{name} is not a list (got {quoted(values)})")
    spans = []
    for number, span in enumerate(values):
        label = f"{name}[{number}]"
        text = record_field(span, "text", str, f"{label}.text")
        start = record_field(span, "answer_start", int, f"{label}.answer_start")
        # Not a negative start: slicing from the context's end could match the text.
        found = context[start : start + len(text)] if start >= 0 else ""
        if check_offsets and found != text:
            raise RecordFault(
                f"{label} {shown(text)} does not match the context at answer_start {start} "
                f"({shown(found)})"
            )
        spans.append({"text": text, "answer_start": start})
    return spans


def hub_answers(row: Mapping[str, Any]) -> list[dict[str, Any]]:
    """A hub row's `answers` column, {text: [...], answer_start: [...]} (SQuAD's and KLUE-MRC's
    loaders), as the release layout's list of {text, answer_start}; offsets not yet checked."""
    answers = record_field(row, "answers", dict)
    starts = record_field(answers, "answer_start", list, "answers.answer_start")
    texts = record_field(answers, "text", list, "answers.text")
    if len(starts) != len(texts):
        raise RecordFault(f"answers has {len(starts)} answer_start values for {len(texts)} texts")
    return [{"text": t, "answer_start": s} for t, s in zip(texts, starts, strict=True)]


def hub_rows(
    source: str,
    rows: list[dict[str, Any]],
    convert: Callable[[int, Mapping[str, Any]], dict],
    id_key: str = "guid",
) -> list[dict[str, Any]]:
    """Convert each row of the hub data set `source` (`klue/klue sts`); a fault names the row and
    its `id_key`."""
    if not rows:
        raise LayerftError(f"{source}: no rows")
    records = []
    for index, row in enumerate(rows):
        try:
            if not isinstance(row, Mapping):
                raise RecordFault(f"is not a mapping (got {type(row).__name__})")
            records.append(convert(index, row))
        except RecordFault as fault:
            named = row.get(id_key) if isinstance(row, Mapping) else None
            named = f" ({named})" if isinstance(named, str) else ""
            raise LayerftError(f"{source} row {index}{named}: {fault}") from None
    return records
