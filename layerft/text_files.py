"""Reading a data file's text: the one UTF-8 reader every release-format reader shares.

Serves no config group; `layerft/readers*.py` call it, so every data file fails the same way: a
missing file, an empty one, or bytes that are not UTF-8 give one line naming the file (and line).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from layerft.errors import LayerftError


def require_file(path: Path) -> None:
    """Fail unless `path` is an existing, non-empty file."""
    if not path.is_file():
        raise LayerftError(f"data file not found: {path}")
    if path.stat().st_size == 0:
        raise LayerftError(f"{path}: empty file")


def read_text(path: Path) -> str:
    """Return the file's UTF-8 text (a BOM is dropped); fail on bytes that are not UTF-8 and on a
    file with nothing but whitespace."""
    require_file(path)
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise LayerftError(f"{path}:{line}: not UTF-8 text (byte {err.start})") from err
    if not text.strip():
        raise LayerftError(f"{path}: empty file")
    return text


def read_lines(path: Path) -> list[str]:
    """The file's lines (`read_text`'s) without line ends; '\\r\\n' files read as '\\n' ones."""
    return [line.rstrip("\r") for line in read_text(path).split("\n")]


class RepeatedKey(ValueError):
    """A JSON object naming one key twice: `json` keeps the last value, which may not be meant."""

    def __init__(self, key: str, guid: Any) -> None:
        super().__init__(key, guid)
        self.key, self.guid = key, guid

    def message(self, where: str) -> str:
        named = f" (guid {self.guid})" if isinstance(self.guid, str) else ""
        return f"{where}: an object{named} names {self.key!r} twice (which value is meant?)"


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    record = dict(pairs)
    if len(record) != len(pairs):
        seen: set[str] = set()
        key = next(key for key, _ in pairs if key in seen or seen.add(key))
        raise RepeatedKey(key, record.get("guid"))
    return record


# One decoder: `json.loads` with a hook builds a new one per call (per line of a JSON-lines file).
_DECODER = json.JSONDecoder(object_pairs_hook=_unique_keys)


def parse_json(text: str) -> Any:
    """`json.loads`, refusing an object that repeats a key (RepeatedKey)."""
    return _DECODER.decode(text)


def parse_json_file(path: Path, text: str) -> Any:
    """`text`, the whole of the file at `path`, parsed (`parse_json`); invalid JSON names the
    line, an object naming a key twice names the key."""
    try:
        return parse_json(text)
    except json.JSONDecodeError as err:
        raise LayerftError(f"{path}:{err.lineno}: invalid JSON ({err.msg})") from err
    except RepeatedKey as err:
        raise LayerftError(err.message(str(path))) from None


def read_json_text(path: Path) -> tuple[str, Any]:
    """The file's text (kept to name the line of a bad record later) and its parsed JSON value
    (`parse_json_file`)."""
    text = read_text(path)
    return text, parse_json_file(path, text)


def check_first_time(
    seen: set[str], key: str, path: Path, text: str, needle: str, name: str
) -> None:
    """Add a record's `key` (its guid or id) to `seen`; met a second time in one file, it stops the
    run, naming the record `name` and both lines (where `needle`, the key as written, sits)."""
    if key in seen:
        raise repeat_error(path, text, re.compile(re.escape(needle)), name)
    seen.add(key)


def check_first_line(
    first: dict[str, int], key: str, line: int, path: Path, name: str, what: str = "record"
) -> None:
    """`check_first_time` where each record's line is known: `first` maps a key (a guid) to the
    line of its record; met a second time, it stops the run naming both lines."""
    if key in first:
        raise _repeated(path, line, name, first[key], what)
    first[key] = line


def _repeated(path: Path, line: int, name: str, first: int, what: str) -> LayerftError:
    return LayerftError(
        f"{path}:{line}: {name} repeats the {what} on line {first}; remove one of them"
    )


def repeat_error(path: Path, text: str, needle: re.Pattern[str], name: str) -> LayerftError:
    """A file concatenated twice or a bad merge, whose records would train and be scored twice:
    the error names the lines of the first two matches of `needle` (the key as written)."""
    found = [match.start() for _, match in zip(range(2), needle.finditer(text), strict=False)]
    lines = [text.count("\n", 0, at) + 1 for at in found]
    if len(lines) == 2 and lines[0] != lines[1]:
        return _repeated(path, lines[1], name, lines[0], "record")
    # SQuAD's releases are one line of JSON: no line tells the two apart.
    return LayerftError(f"{path}: {name} appears twice; remove one of them")


def line_of(text: str, needle: str) -> str:
    """':<line>' where `needle` first appears in `text` (to name a record's line in an error), or
    '' if it does not."""
    at = text.find(needle)
    return f":{text.count(chr(10), 0, at) + 1}" if at >= 0 else ""
