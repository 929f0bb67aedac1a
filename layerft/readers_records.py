"""Local data files (a task's `data_files`: .json, .jsonl, .parquet; .csv and .tsv in
`readers_delimited`) -> records, and where each record's line is for an error found after reading.

Serves the task groups' `data_files` (and `release_format: records`): `layerft/readers.py` picks
the reader by extension (`read_records`) and registers the line finders. Every malformed input
raises LayerftError with one line naming the file and, for text formats, the line number, so a
user can open the file at the fault.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from layerft.errors import LayerftError
from layerft.json_values import RepeatedKey, UnreadableJson, parse_json
from layerft.text_files import (
    check_first_line,
    parse_json_file,
    read_text,
    repeat_error,
    require_file,
)

_JSON_SPACE = re.compile(r"[ \t\n\r]*")


def nonempty(path: Path, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Return `records`; a file that parses to nothing is a mistake, not an empty split."""
    if not records:
        raise LayerftError(f"{path}: no records")
    return records


def _parse_json_lines(path: Path, text: str, hint: str = "") -> list[dict[str, Any]]:
    """One JSON object per line; blank lines are skipped. A guid repeats no earlier record's."""
    records = []
    guid_lines: dict[str, int] = {}
    for number, line in enumerate(text.split("\n"), 1):
        if not line or line.isspace():
            continue
        try:
            record = parse_json(line)
        except json.JSONDecodeError as err:  # one line: its number, not the parser's
            raise LayerftError(f"{path}:{number}: invalid JSON ({err.msg}){hint}") from err
        except (RepeatedKey, UnreadableJson) as err:
            raise LayerftError(err.message(f"{path}:{number}")) from None
        if not isinstance(record, dict):
            kind = type(record).__name__
            raise LayerftError(f"{path}:{number}: expected a JSON object, got {kind}")
        guid = record.get("guid")
        if isinstance(guid, str):
            check_first_line(guid_lines, guid, number, path, f"guid {guid}")
        records.append(record)
    return nonempty(path, records)


def array_element_line(text: str, index: int) -> int:
    """Line on which element `index` of the valid JSON array in `text` starts."""
    decoder = json.JSONDecoder()
    pos = text.index("[") + 1
    for _ in range(index):
        _, pos = decoder.raw_decode(text, _JSON_SPACE.match(text, pos).end())
        pos = text.index(",", pos) + 1
    return text.count("\n", 0, _JSON_SPACE.match(text, pos).end()) + 1


def read_json(path: Path) -> list[dict[str, Any]]:
    """A JSON array of objects (KLUE releases), or JSON lines if the text does not open with '['
    (one object over several lines: one record)."""
    text = read_text(path)
    if not text.lstrip().startswith("["):
        hint = " (a .json file holds a JSON array of objects or one JSON object per line)"
        try:
            return _not_a_table(path, _parse_json_lines(path, text, hint))
        except LayerftError:
            # One object over several lines (KLUE-MRC's and SQuAD's releases): one record, as on
            # one line, whose missing columns the record checks name with the file's way out
            if isinstance(whole := _whole_object(path, text), dict):
                return _not_a_table(path, [whole])
            raise
    records = parse_json_file(path, text)
    guids: set[str] = set()  # KLUE's arrays (NLI, YNAT) name each record by a guid
    for number, record in enumerate(records, 1):
        if not isinstance(record, dict):
            line = array_element_line(text, number - 1)
            kind = type(record).__name__
            raise LayerftError(f"{path}:{line}: record {number} is not an object (got {kind})")
        check_new_guid(path, text, record.get("guid"), guids)
    return nonempty(path, records)


def _not_a_table(path: Path, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The records, unless they are one object of objects of the same keys: a table by columns
    (pandas' `df.to_json(path)`) or by rows (`orient='index'`), refused saying how to write
    records."""
    [first, *more] = records
    keys = [set(value) for value in first.values() if isinstance(value, dict)]
    if more or len(keys) < max(2, len(first)) or any(k != keys[0] for k in keys):
        return records  # one record of one dict field (a translation pair) is a record
    fields = ", ".join(list(first)[:4]) + (", ..." if len(first) > 4 else "")
    raise LayerftError(
        f"{path}: a table in one object ({fields}: {len(first)} objects of the same "
        f"{len(keys[0])} keys), as pandas' df.to_json(path) writes one; write one object per "
        "record: df.to_json(path, orient='records', lines=True)"
    )


def _whole_object(path: Path, text: str) -> Any:
    """The text as one JSON value, parsed as any file is (`parse_json_file`: a key named twice is
    its error), or None where it is no JSON value."""
    try:
        return parse_json_file(path, text)
    except LayerftError as err:
        if isinstance(err.__cause__, json.JSONDecodeError):  # not JSON: the JSON-lines error stands
            return None
        raise


def check_new_guid(path: Path, text: str, guid: Any, seen: set[str]) -> None:
    """A release's guid (a string) must not repeat within its file; other values are not guids."""
    if not isinstance(guid, str):
        return
    if guid in seen:  # its lines: where `"guid": <it>` is written (not where a label equals it)
        written = re.escape(json.dumps(guid, ensure_ascii=False))
        raise repeat_error(path, text, re.compile(r'"guid"\s*:\s*' + written), f"guid {guid}")
    seen.add(guid)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """JSON lines."""
    return _parse_json_lines(path, read_text(path))


def read_parquet(path: Path) -> list[dict[str, Any]]:
    """A Parquet table, one record per row."""
    import pyarrow as pa  # here: a config needs none of it
    import pyarrow.parquet as pq

    require_file(path)
    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as err:
        reason = " ".join(str(err).split())
        raise LayerftError(f"{path}: not a readable Parquet file ({reason})") from err
    return nonempty(path, table.to_pylist())


def json_record_line(text: str, number: int) -> int | None:
    """The line of the `number`th record (1: the first) of a JSON array or JSON-lines text, None
    past its last."""
    if text.lstrip().startswith("["):
        return array_element_line(text, number - 1)
    filled = (n for n, line in enumerate(text.split("\n"), 1) if line and not line.isspace())
    return next((n for i, n in enumerate(filled, 1) if i == number), None)
