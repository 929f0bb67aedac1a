"""Readers behind a task's data: local `data_files` by extension, release files by `release_format`.

Every malformed input raises LayerftError with one line naming the file and, for text formats,
the line number, so a user can open the file at the fault.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from layerft.errors import LayerftError

_INT = re.compile(r"[+-]?[0-9]+")
_FLOAT = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_JSON_SPACE = re.compile(r"[ \t\n\r]*")
# A guid has no spaces; header comments such as '## 칼럼명 : INDEX\tWORD_FORM...' do.
_SENTENCE_HEADER = re.compile(r"## (\S+)\t(.*)")
_BIO_TAG = re.compile(r"O|[BI]-\S+")
_DP_COLUMNS = ("INDEX", "WORD_FORM", "LEMMA", "POS", "HEAD", "DEPREL")
_NER_COLUMNS = ("CHAR", "TAG")


def _require_file(path: Path) -> None:
    """Fail unless `path` is an existing, non-empty file."""
    if not path.is_file():
        raise LayerftError(f"data file not found: {path}")
    if path.stat().st_size == 0:
        raise LayerftError(f"{path}: empty file")


def _read_text(path: Path) -> str:
    """Return the file's UTF-8 text (a BOM is dropped); fail on bytes that are not UTF-8."""
    _require_file(path)
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise LayerftError(f"{path}:{line}: not UTF-8 text (byte {err.start})") from err
    if not text.strip():
        raise LayerftError(f"{path}: empty file")
    return text


def _nonempty(path: Path, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Return `records`; a file that parses to nothing is a mistake, not an empty split."""
    if not records:
        raise LayerftError(f"{path}: no records")
    return records


def _parse_json_lines(path: Path, text: str, hint: str = "") -> list[dict[str, Any]]:
    """One JSON object per line; blank lines are skipped."""
    records = []
    for number, line in enumerate(text.split("\n"), 1):
        if not line or line.isspace():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise LayerftError(f"{path}:{number}: invalid JSON ({err.msg}){hint}") from err
        if not isinstance(record, dict):
            kind = type(record).__name__
            raise LayerftError(f"{path}:{number}: expected a JSON object, got {kind}")
        records.append(record)
    return _nonempty(path, records)


def _array_element_line(text: str, index: int) -> int:
    """Line on which element `index` of the valid JSON array in `text` starts."""
    decoder = json.JSONDecoder()
    pos = text.index("[") + 1
    for _ in range(index):
        _, pos = decoder.raw_decode(text, _JSON_SPACE.match(text, pos).end())
        pos = text.index(",", pos) + 1
    return text.count("\n", 0, _JSON_SPACE.match(text, pos).end()) + 1


def _read_json(path: Path) -> list[dict[str, Any]]:
    """A JSON array of objects (KLUE releases), or JSON lines if the text does not open with '['."""
    text = _read_text(path)
    if not text.lstrip().startswith("["):
        hint = " (a .json file holds a JSON array of objects or one JSON object per line)"
        return _parse_json_lines(path, text, hint)
    try:
        records = json.loads(text)
    except json.JSONDecodeError as err:
        raise LayerftError(f"{path}:{err.lineno}: invalid JSON ({err.msg})") from err
    for number, record in enumerate(records, 1):
        if not isinstance(record, dict):
            line = _array_element_line(text, number - 1)
            kind = type(record).__name__
            raise LayerftError(f"{path}:{line}: record {number} is not an object (got {kind})")
    return _nonempty(path, records)


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    """JSON lines."""
    return _parse_json_lines(path, _read_text(path))


def _convert_column(values: list[str]) -> list[Any]:
    """Ints if every value is an int, else floats if every value is a number, else the strings."""
    if all(_INT.fullmatch(value) for value in values):
        return [int(value) for value in values]
    if all(_FLOAT.fullmatch(value) for value in values):
        return [float(value) for value in values]
    return values


def _read_delimited(path: Path, delimiter: str) -> list[dict[str, Any]]:
    """A header row naming the columns, then one record per row; blank lines are skipped.

    CSV honours double quotes; TSV does not, because raw TSV corpora (NSMC's ratings files) hold
    unbalanced quotes inside reviews and never quote a field.
    """
    quoting = csv.QUOTE_MINIMAL if delimiter == "," else csv.QUOTE_NONE
    reader = csv.reader(
        io.StringIO(_read_text(path), newline=""), delimiter=delimiter, quoting=quoting
    )
    header: list[str] | None = None
    rows: list[list[str]] = []
    try:
        for row in reader:
            if not row:
                continue
            if header is None:
                header = row
                for column, name in enumerate(header, 1):
                    if not name or header.index(name) != column - 1:
                        problem = "is empty" if not name else f"{name!r} repeats an earlier one"
                        raise LayerftError(f"{path}:{reader.line_num}: column {column} {problem}")
            elif len(row) != len(header):
                raise LayerftError(
                    f"{path}:{reader.line_num}: expected {len(header)} fields, got {len(row)}"
                )
            else:
                rows.append(row)
    except csv.Error as err:
        raise LayerftError(f"{path}:{reader.line_num}: malformed row ({err})") from err
    assert header is not None  # _read_text rejected a file with no non-blank line
    columns = [_convert_column([row[i] for row in rows]) for i in range(len(header))]
    return _nonempty(
        path, [dict(zip(header, values, strict=True)) for values in zip(*columns, strict=True)]
    )


def _read_parquet(path: Path) -> list[dict[str, Any]]:
    """A Parquet table, one record per row."""
    _require_file(path)
    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as err:
        reason = " ".join(str(err).split())
        raise LayerftError(f"{path}: not a readable Parquet file ({reason})") from err
    return _nonempty(path, table.to_pylist())


_RECORD_READERS: Mapping[str, Callable[[Path], list[dict[str, Any]]]] = MappingProxyType(
    {
        ".csv": partial(_read_delimited, delimiter=","),
        ".json": _read_json,
        ".jsonl": _read_jsonl,
        ".parquet": _read_parquet,
        ".tsv": partial(_read_delimited, delimiter="\t"),
    }
)


def read_records(path: Path) -> list[dict[str, Any]]:
    """Read a local data file by extension: .json (array or lines), .jsonl, .csv, .tsv, .parquet."""
    path = Path(path)
    reader = _RECORD_READERS.get(path.suffix.lower())
    if reader is None:
        supported = ", ".join(_RECORD_READERS)
        raise LayerftError(
            f"{path}: unsupported data file extension {path.suffix!r} (supported: {supported})"
        )
    return reader(path)


@dataclass
class _Block:
    """One '## <guid>\\t<sentence>' line and its rows, each with its line number."""

    guid: str
    sentence: str
    line: int
    rows: list[tuple[int, list[str]]] = field(default_factory=list)


def _read_blocks(path: Path, columns: tuple[str, ...]) -> list[_Block]:
    """Split a KLUE release TSV into sentences, checking every row's column count."""
    blocks: list[_Block] = []
    current: _Block | None = None
    for number, raw_line in enumerate(_read_text(path).split("\n"), 1):
        line = raw_line.rstrip("\r")
        if line.startswith("##"):
            header = _SENTENCE_HEADER.fullmatch(line)
            if header:
                current = _Block(header[1], header[2], number)
                blocks.append(current)
            continue
        # Not strip(): a NER row for a space character is ' \tO'.
        if "\t" not in line and not line.strip():
            current = None
            continue
        if current is None:
            raise LayerftError(
                f"{path}:{number}: row outside a sentence "
                "(expected a '## <guid>\\t<sentence>' line before it)"
            )
        fields = line.split("\t")
        if len(fields) != len(columns):
            raise LayerftError(
                f"{path}:{number}: expected {len(columns)} tab-separated columns "
                f"({' '.join(columns)}), got {len(fields)}"
            )
        current.rows.append((number, fields))
    if not blocks:
        raise LayerftError(f"{path}: no '## <guid>\\t<sentence>' lines found")
    for block in blocks:
        if not block.rows:
            raise LayerftError(f"{path}:{block.line}: sentence {block.guid} has no rows")
    return blocks


def _parse_int(value: str, name: str, where: str) -> int:
    """`value` as an int, or an error naming the column."""
    if not _INT.fullmatch(value):
        raise LayerftError(f"{where}: {name} {value!r} is not an integer")
    return int(value)


def read_klue_dp(path: Path) -> list[dict[str, Any]]:
    """KLUE-DP release TSV -> one record per sentence.

    Keys: guid, sentence, words (WORD_FORM), lemmas (LEMMA), pos (POS), heads (HEAD as int; 0 is
    the root), deprels (DEPREL); one list entry per eojeol.
    """
    path = Path(path)
    records = []
    for block in _read_blocks(path, _DP_COLUMNS):
        words, lemmas, pos, heads, deprels = [], [], [], [], []
        for number, (index, word, lemma, tags, head, deprel) in block.rows:
            where = f"{path}:{number}"
            if _parse_int(index, "INDEX", where) != len(words) + 1:
                raise LayerftError(f"{where}: expected INDEX {len(words) + 1}, got {index}")
            for name, value in (("WORD_FORM", word), ("LEMMA", lemma), ("DEPREL", deprel)):
                if not value.strip():
                    raise LayerftError(f"{where}: {name} is empty")
            if "" in tags.split("+"):
                raise LayerftError(f"{where}: POS {tags!r} has an empty tag")
            words.append(word)
            lemmas.append(lemma)
            pos.append(tags)
            heads.append(_parse_int(head, "HEAD", where))
            deprels.append(deprel)
        for (number, _), head in zip(block.rows, heads, strict=True):
            if not 0 <= head <= len(words):
                raise LayerftError(f"{path}:{number}: HEAD {head} is outside 0..{len(words)}")
        records.append(
            {
                "guid": block.guid,
                "sentence": block.sentence,
                "words": words,
                "lemmas": lemmas,
                "pos": pos,
                "heads": heads,
                "deprels": deprels,
            }
        )
    return records


def read_klue_pos(path: Path) -> list[dict[str, Any]]:
    """KLUE-DP release TSV -> morpheme-level POS tagging records {guid, tokens, tags}.

    Each eojeol's LEMMA split on spaces gives its morphemes, its POS split on '+' their tags. The
    release does not always agree with itself: in KLUE-DP v1.1 dev (klue-dp-v1_dev_00244) the
    eojeol '3%' has LEMMA '0' and POS 'SN+SW'. When the morpheme and tag counts differ, the
    eojeol becomes one token, its WORD_FORM, tagged with its first POS tag: no sentence is lost
    and the tag set stays closed.
    """
    records = []
    for sentence in read_klue_dp(Path(path)):
        tokens: list[str] = []
        tags: list[str] = []
        for word, lemma, pos in zip(
            sentence["words"], sentence["lemmas"], sentence["pos"], strict=True
        ):
            morphemes, morpheme_tags = lemma.split(), pos.split("+")
            if len(morphemes) != len(morpheme_tags):
                morphemes, morpheme_tags = [word], morpheme_tags[:1]
            tokens += morphemes
            tags += morpheme_tags
        records.append({"guid": sentence["guid"], "tokens": tokens, "tags": tags})
    return records


def read_klue_ner(path: Path) -> list[dict[str, Any]]:
    """KLUE-NER release TSV -> {guid, sentence, tokens (chars), tags (BIO)}, whitespace dropped.

    "sentence" keeps the release's '<entity:TYPE>' marks. The release tags a space inside an
    entity I-<type> ('<2019년 1월:DT>'), so a whitespace character may also carry the I- tag of the
    entity it sits in; dropping it leaves the BIO sequence intact. Any other tag on it is an error.
    """
    path = Path(path)
    records = []
    for block in _read_blocks(path, _NER_COLUMNS):
        tokens: list[str] = []
        tags: list[str] = []
        for number, (char, tag) in block.rows:
            where = f"{path}:{number}"
            if len(char) != 1:
                raise LayerftError(f"{where}: CHAR must be one character, got {char!r}")
            if not _BIO_TAG.fullmatch(tag):
                raise LayerftError(f"{where}: tag {tag!r} is not O, B-<type> or I-<type>")
            if not char.isspace():
                tokens.append(char)
                tags.append(tag)
                continue
            entity = tags[-1][2:] if tags else ""
            if tag != "O" and not (tag.startswith("I-") and tag[2:] == entity):
                raise LayerftError(
                    f"{where}: whitespace tagged {tag!r}; expected O or the I- tag of the "
                    f"entity it sits in ({'I-' + entity if entity else 'none open'})"
                )
        records.append(
            {"guid": block.guid, "sentence": block.sentence, "tokens": tokens, "tags": tags}
        )
    return records


RELEASE_READERS: Mapping[str, Callable[[Path], list[dict[str, Any]]]] = MappingProxyType(
    {
        "records": read_records,
        "klue_dp": read_klue_dp,
        "klue_pos": read_klue_pos,
        "klue_ner": read_klue_ner,
    }
)
