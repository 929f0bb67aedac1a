"""Reading a data file's text: the one UTF-8 reader every release-format reader shares.

Serves no config group; `layerft/readers*.py` call it, so every data file fails the same way: a
missing file, an empty one, or bytes that are not UTF-8 give one line naming the file (and line).
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

from layerft.errors import LayerftError
from layerft.json_values import RepeatedKey, UnreadableJson, parse_json

# A cell or column value that is an integer as written (`-3`, `007`), in the text readers.
INTEGER = re.compile(r"[+-]?[0-9]+")
# One that is a number as written (`2`, `-0.5`, `.5`, `1e3`): a .csv/.tsv column of them is numbers.
NUMBER = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def require_file(path: Path) -> None:
    """Fail unless `path` is an existing, non-empty file."""
    if path.is_dir():
        raise LayerftError(f"{path}: a folder, not a data file")
    if not path.is_file():
        raise LayerftError(f"data file not found: {path}")
    if path.stat().st_size == 0:
        raise LayerftError(f"{path}: empty file")


def read_text(path: Path) -> str:
    """Return the file's UTF-8 text (a BOM is dropped); fail on bytes that are not UTF-8, on a
    file with nothing but whitespace, on a NUL byte (which decodes, and would be read as text) and
    on a line after the first that opens with a BOM."""
    require_file(path)
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        at = err.start + len(data) - len(err.object)  # the decoder counts from after a BOM
        line = data.count(b"\n", 0, at) + 1
        raise LayerftError(f"{path}:{line}: not UTF-8 text (byte {at})") from err
    if not text.strip():
        raise LayerftError(f"{path}: empty file")
    if (at := text.find("\0")) >= 0:  # valid UTF-8, but no data set writes one: a damaged file
        line, column = text.count("\n", 0, at) + 1, at - text.rfind("\n", 0, at)
        raise LayerftError(
            f"{path}:{line}: a NUL byte (character {column} of the line): the file is damaged "
            "(a write cut short leaves them) or UTF-16, not UTF-8 text"
        )
    if (at := text.find("\n\ufeff")) >= 0:  # invisible: each reader would blame what follows
        line = text.count("\n", 0, at) + 2
        raise LayerftError(
            f"{path}:{line}: the line opens with a byte-order mark (U+FEFF, invisible): files "
            "joined with cat keep theirs; remove it"
        )
    return text


def read_lines(path: Path) -> list[str]:
    """The file's lines (`read_text`'s) without line ends (`text_lines`)."""
    return text_lines(read_text(path))


def text_lines(text: str) -> list[str]:
    """`text`'s lines without line ends; '\\r\\n' text reads as '\\n' text. Only '\\n' ends a
    line: a text may hold other characters that str.splitlines would break on."""
    return [line.rstrip("\r") for line in text.split("\n")]


def finite_number(value: Any) -> bool:
    """Whether a parsed JSON value is a number other than a bool that is finite as a float (an
    integer too large for a float is not)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def parse_json_file(path: Path, text: str) -> Any:
    """`text`, the whole of the file at `path`, parsed (`parse_json`); invalid JSON names the
    line, an object naming a key twice names the key."""
    try:
        return parse_json(text)
    except json.JSONDecodeError as err:
        raise LayerftError(f"{path}:{err.lineno}: invalid JSON ({err.msg})") from err
    except RepeatedKey as err:
        raise LayerftError(err.message(str(path))) from None
    except UnreadableJson as err:
        line = err.line(text)
        raise LayerftError(err.message(f"{path}:{line}" if line else str(path))) from None


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
