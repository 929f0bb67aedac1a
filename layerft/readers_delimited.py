"""Local .csv and .tsv data files (a task's `data_files`) -> records, and where each record's line
is for an error found after reading.

Serves the task groups' `data_files`: `layerft/readers.py` picks this reader for .csv (comma-
separated, double quotes honoured) and .tsv (tab-separated, quotes literal). Every malformed row
raises LayerftError with one line naming the file and line.
"""

from __future__ import annotations

import csv
import io
import logging
import re
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any, NamedTuple

from layerft.errors import LayerftError, cut
from layerft.readers_records import nonempty
from layerft.text_files import INTEGER, NUMBER, check_first_line, read_text

log = logging.getLogger(__name__)

# A field a CSV writer quoted: in quotes, each inner quote doubled, at least one (see
# `_warn_csv_quoted`).
_CSV_QUOTED = re.compile(r'"(?:[^"]|"")*""(?:[^"]|"")*"', re.S)


def _convert_column(values: list[str]) -> list[Any]:
    """A column that holds mostly numbers becomes numbers cell by cell (ints where a cell is an
    int), else it stays text. Typing cell by cell keeps a stray cell ("2.5" or "Sports" among
    class ids) as itself, so the check that rejects it names its record, not a good record whose
    `2` a column-wide type made `2.0` or `'2'`. In a column of numbers an empty cell is null (a
    missing label: the record is unlabelled)."""
    filled = [value for value in values if value]
    if sum(bool(NUMBER.fullmatch(value)) for value in filled) * 2 <= len(filled):
        return values
    return [_number(value) if value else None for value in values]


def _number(value: str) -> int | float | str:
    """An int or float cell as that number; any other cell as its text."""
    if INTEGER.fullmatch(value):
        return int(value)
    return float(value) if NUMBER.fullmatch(value) else value


def _release_hint(header: list[str]) -> str:
    """Where a header is KLUE's `## ...` comment line: which key reads such a file."""
    if len(header) == 1 and header[0].startswith("##"):
        return (
            " (its first line is a '##' comment, as in KLUE's release .tsv files: give their "
            "folder as the task's data_dir, not data_files)"
        )
    return ""


# Another separator that a field read whole may hold: its name, and where such a file belongs.
_SEPARATORS = {
    "\t": ("tabs", "name it .tsv"),
    ",": ("commas", "name it .csv"),
    ";": ("';'", "write it comma-separated (.csv) or tab-separated (.tsv)"),
}


def _separator_hint(delimiter: str, header: list[str]) -> str:
    """Why fields miscount in a file separated otherwise than its extension says: its header read
    as one field that holds another separator."""
    for separator, (name, fix) in _SEPARATORS.items():
        if len(header) == 1 and separator != delimiter and separator in header[0]:
            return (
                f" (the header was read as one column though it holds {name}: a .csv file is read "
                f"comma-separated, a .tsv tab-separated; {fix})"
            )
    return ""


def read_delimited(
    path: Path, delimiter: str, text_columns: Collection[str] = ()
) -> list[dict[str, Any]]:
    """A header row naming the columns, then one record per row; blank lines are skipped.

    CSV honours double quotes; TSV does not, because raw TSV corpora (NSMC's ratings files) hold
    unbalanced quotes inside reviews and never quote a field (a file that looks quoted by a CSV
    writer is read as written, and warned about). A column of numbers becomes numbers,
    except `text_columns`: a text may be digits ("42", a code, a year).
    """
    table = _read_table(path, delimiter)
    header, rows = table.header, table.rows
    if len(header) == 1 and (hint := _separator_hint(delimiter, header)):
        raise LayerftError(f"{path}:{table.header_line}: every row reads as one field{hint}")
    if table.spanning:
        log.warning(
            "%s:%s: %d row(s) hold a quoted cell that spans lines, read as one text with its line "
            "breaks; an unbalanced quote would instead have merged the rows between into one "
            "record", path, table.spanning[0], len(table.spanning),
        )  # fmt: skip
    if delimiter == "\t":
        _warn_csv_quoted(path, header, rows, table.lines)
    columns = [
        [row[i] for row in rows]
        if name in text_columns
        else _convert_column([row[i] for row in rows])
        for i, name in enumerate(header)
    ]
    records = [dict(zip(header, values, strict=True)) for values in zip(*columns, strict=True)]
    first: dict[str, int] = {}  # a guid (KLUE's key) repeats no earlier record's, as in JSON
    if "guid" in header:  # its cell as written: `007` and `7` are two guids, though both read 7
        at = header.index("guid")
        for row, line in zip(rows, table.lines, strict=True):
            if guid := row[at]:  # an empty cell names no record
                check_first_line(first, guid, line, path, f"guid {guid}")
    return nonempty(path, records)


class _Table(NamedTuple):
    """A delimited file's rows as read: the header and the line it is on, the other rows and the
    line each starts on, and the lines of each row whose quoted cell spans lines."""

    header: list[str]
    header_line: int
    rows: list[list[str]]
    lines: list[int]
    spanning: list[str]


def _read_table(path: Path, delimiter: str) -> _Table:
    """The file's non-blank rows, each as long as the header, whose names are unique."""
    reader = _rows_of(read_text(path), delimiter)
    header: list[str] = []
    header_line = 0
    rows: list[list[str]] = []
    lines: list[int] = []
    spanning: list[str] = []
    read_to = 0  # the last line of the rows read
    try:
        for row in reader:
            first, read_to = read_to + 1, reader.line_num
            if not row:
                continue
            if first < read_to:
                spanning.append(f"{first}-{read_to}")
            if not header_line:
                _check_header(path, row, reader.line_num)
                header, header_line = row, first
            elif len(row) != len(header):
                hint = _release_hint(header) or _separator_hint(delimiter, header)
                raise LayerftError(
                    f"{path}:{reader.line_num}: expected {len(header)} fields, got {len(row)}{hint}"
                )
            else:
                rows.append(row)
                lines.append(first)
    except csv.Error as err:  # named by the line its row starts on: where a quote opened
        reason = (
            str(err)
            if reader.line_num == read_to + 1
            else (f"{err}, read to line {reader.line_num}: an unbalanced quote?")
        )
        raise LayerftError(f"{path}:{read_to + 1}: malformed row ({reason})") from err
    assert header_line  # read_text rejected a file with no non-blank line
    return _Table(header, header_line, rows, lines, spanning)


def _check_header(path: Path, header: list[str], line: int) -> None:
    """Fail on an empty or repeated column name."""
    for column, name in enumerate(header, 1):
        if not name or header.index(name) != column - 1:
            problem = "is empty" if not name else f"{name!r} repeats an earlier one"
            raise LayerftError(f"{path}:{line}: column {column} {problem}")


def _warn_csv_quoted(
    path: Path, header: list[str], rows: list[list[str]], lines: list[int]
) -> None:
    """Warn, once per file, when fields look quoted as a CSV writer quotes a field holding a quote
    (pandas' `to_csv(sep="\\t")`): read unquoted, they keep their outer quotes and doubled ones.
    One inner `""` is required: a raw review may well be `"in quotes"`, and a field a writer quoted
    for its tab or line break splits its row instead (a field-count error)."""
    found = [
        (number, name, cell)
        for number, row in enumerate(rows, 1)
        for name, cell in zip(header, row, strict=True)
        if cell.startswith('"') and _CSV_QUOTED.fullmatch(cell)
    ]
    if found:
        number, name, cell = found[0]
        log.warning(
            "%s:%d: %d of %d records hold a field that looks quoted by a CSV writer (first: "
            "record %d, column '%s': %s), kept as written, its outer and doubled quotes included: "
            "a .tsv file is read unquoted, as NSMC's and KLUE's release files are written; write "
            "it unquoted (pandas: to_csv(path, sep='\\t', quoting=csv.QUOTE_NONE)) or as .csv or "
            ".jsonl",
            path, lines[number - 1], len({n for n, _, _ in found}), len(rows), number, name,
            cut(cell),
        )  # fmt: skip


def _rows_of(text: str, delimiter: str) -> Any:
    """A csv reader of `text`: CSV honours double quotes, TSV does not (see `read_delimited`)."""
    quoting = csv.QUOTE_MINIMAL if delimiter == "," else csv.QUOTE_NONE
    # strict: text after a closing quote is an error, not glued to the cell
    return csv.reader(
        io.StringIO(text, newline=""), delimiter=delimiter, quoting=quoting, strict=True
    )


def delimited_record_line(delimiter: str) -> Callable[[str, int], int | None]:
    """A function giving the line of a CSV or TSV text's `number`th record (1: the first after the
    header), None past its last."""

    def line_of(text: str, number: int) -> int | None:
        reader = _rows_of(text, delimiter)
        rows, start = -1, 1  # the header is row 0
        for row in reader:
            if row:  # blank lines read as [] and are skipped
                rows += 1
                if rows == number:
                    return start
            start = reader.line_num + 1
        return None

    return line_of
