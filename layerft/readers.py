"""Readers behind a task's data: local `data_files` by extension, release files by `release_format`.

Every malformed input raises LayerftError with one line naming the file and, for text formats,
the line number, so a user can open the file at the fault.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from types import MappingProxyType
from typing import Any

from layerft import readers_conll
from layerft.errors import LayerftError, quoted
from layerft.readers_glue import GLUE_LINE_FINDERS, GLUE_READERS
from layerft.readers_squad import (
    hub_squad,
    hub_squad_v2,
    read_articles,
    read_squad,
    read_squad_v2,
)
from layerft.text_files import (
    RepeatedKey,
    UnreadableJson,
    check_first_line,
    finite_number,
    line_of,
    parse_json,
    parse_json_file,
    read_json_text,
    read_lines,
    read_text,
    repeat_error,
    require_file,
    text_lines,
)

log = logging.getLogger(__name__)

_INT = re.compile(r"[+-]?[0-9]+")
_FLOAT = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_JSON_SPACE = re.compile(r"[ \t\n\r]*")
# A guid has no spaces; header comments such as '## 칼럼명 : INDEX\tWORD_FORM...' do.
_SENTENCE_HEADER = re.compile(r"## (\S+)\t(.*)")
_BIO_TAG = re.compile(r"O|[BI]-\S+")
_NER_MARK = re.compile(r"<([^<>]*?):([A-Z]+)>")  # '<경찰:OG>' in a KLUE-NER sentence
_DP_COLUMNS = ("INDEX", "WORD_FORM", "LEMMA", "POS", "HEAD", "DEPREL")
_NER_COLUMNS = ("CHAR", "TAG")


def _nonempty(path: Path, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
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
    text = read_text(path)
    if not text.lstrip().startswith("["):
        hint = " (a .json file holds a JSON array of objects or one JSON object per line)"
        return _parse_json_lines(path, text, hint)
    records = parse_json_file(path, text)
    guids: set[str] = set()  # KLUE's arrays (NLI, YNAT) name each record by a guid
    for number, record in enumerate(records, 1):
        if not isinstance(record, dict):
            line = _array_element_line(text, number - 1)
            kind = type(record).__name__
            raise LayerftError(f"{path}:{line}: record {number} is not an object (got {kind})")
        _check_new_guid(path, text, record.get("guid"), guids)
    return _nonempty(path, records)


def _check_new_guid(path: Path, text: str, guid: Any, seen: set[str]) -> None:
    """A release's guid (a string) must not repeat within its file; other values are not guids."""
    if not isinstance(guid, str):
        return
    if guid in seen:  # its lines: where `"guid": <it>` is written (not where a label equals it)
        written = re.escape(json.dumps(guid, ensure_ascii=False))
        raise repeat_error(path, text, re.compile(r'"guid"\s*:\s*' + written), f"guid {guid}")
    seen.add(guid)


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    """JSON lines."""
    return _parse_json_lines(path, read_text(path))


def _convert_column(values: list[str]) -> list[Any]:
    """A column that holds mostly numbers becomes numbers cell by cell (ints where a cell is an
    int), else it stays text. Typing cell by cell keeps a stray cell ("2.5" or "Sports" among
    class ids) as itself, so the check that rejects it names its record, not a good record whose
    `2` a column-wide type made `2.0` or `'2'`. In a column of numbers an empty cell is null (a
    missing label: the record is unlabelled)."""
    filled = [value for value in values if value]
    if sum(bool(_FLOAT.fullmatch(value)) for value in filled) * 2 <= len(filled):
        return values
    return [_number(value) if value else None for value in values]


def _number(value: str) -> int | float | str:
    """An int or float cell as that number; any other cell as its text."""
    if _INT.fullmatch(value):
        return int(value)
    return float(value) if _FLOAT.fullmatch(value) else value


def _read_delimited(
    path: Path, delimiter: str, text_columns: Collection[str] = ()
) -> list[dict[str, Any]]:
    """A header row naming the columns, then one record per row; blank lines are skipped.

    CSV honours double quotes; TSV does not, because raw TSV corpora (NSMC's ratings files) hold
    unbalanced quotes inside reviews and never quote a field. A column of numbers becomes numbers,
    except `text_columns`: a text may be digits ("42", a code, a year).
    """
    reader = _rows_of(read_text(path), delimiter)
    header: list[str] | None = None
    rows: list[list[str]] = []
    spanning: list[str] = []  # the lines of each row whose quoted cell spans lines
    read_to = 0  # the last line of the rows read
    try:
        for row in reader:
            first, read_to = read_to + 1, reader.line_num
            if not row:
                continue
            if first < read_to:
                spanning.append(f"{first}-{read_to}")
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
    except csv.Error as err:  # named by the line its row starts on: where a quote opened
        reason = (
            str(err)
            if reader.line_num == read_to + 1
            else (f"{err}, read to line {reader.line_num}: an unbalanced quote?")
        )
        raise LayerftError(f"{path}:{read_to + 1}: malformed row ({reason})") from err
    assert header is not None  # read_text rejected a file with no non-blank line
    if spanning:
        log.warning(
            "%s:%s: %d row(s) hold a quoted cell that spans lines, read as one text with its line "
            "breaks; an unbalanced quote would instead have merged the rows between into one "
            "record", path, spanning[0], len(spanning),
        )  # fmt: skip
    columns = [
        [row[i] for row in rows]
        if name in text_columns
        else _convert_column([row[i] for row in rows])
        for i, name in enumerate(header)
    ]
    return _nonempty(
        path, [dict(zip(header, values, strict=True)) for values in zip(*columns, strict=True)]
    )


def _rows_of(text: str, delimiter: str) -> Any:
    """A csv reader of `text`: CSV honours double quotes, TSV does not (see `_read_delimited`)."""
    quoting = csv.QUOTE_MINIMAL if delimiter == "," else csv.QUOTE_NONE
    # strict: text after a closing quote is an error, not glued to the cell
    return csv.reader(
        io.StringIO(text, newline=""), delimiter=delimiter, quoting=quoting, strict=True
    )


def _read_parquet(path: Path) -> list[dict[str, Any]]:
    """A Parquet table, one record per row."""
    import pyarrow as pa  # here: a config needs none of it
    import pyarrow.parquet as pq

    require_file(path)
    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as err:
        reason = " ".join(str(err).split())
        raise LayerftError(f"{path}: not a readable Parquet file ({reason})") from err
    return _nonempty(path, table.to_pylist())


_DELIMITERS: Mapping[str, str] = MappingProxyType({".csv": ",", ".tsv": "\t"})
_RECORD_READERS: Mapping[str, Callable[[Path], list[dict[str, Any]]]] = MappingProxyType(
    {".json": _read_json, ".jsonl": _read_jsonl, ".parquet": _read_parquet}
)


def read_records(path: Path, text_columns: Collection[str] = ()) -> list[dict[str, Any]]:
    """Read a local data file by extension: .json (array or lines), .jsonl, .csv, .tsv, .parquet.

    CSV and TSV cells are text; `text_columns` stay text, other columns of numbers become numbers.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in _DELIMITERS:
        return _read_delimited(path, _DELIMITERS[suffix], text_columns)
    reader = _RECORD_READERS.get(suffix)
    if reader is None:
        supported = ", ".join(sorted([*_RECORD_READERS, *_DELIMITERS]))
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
    for number, line in enumerate(read_lines(path), 1):
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
    first: dict[str, int] = {}
    for block in blocks:
        if not block.rows:
            raise LayerftError(f"{path}:{block.line}: sentence {block.guid} has no rows")
        check_first_line(first, block.guid, block.line, path, block.guid, "sentence")
    return blocks


def _parse_int(value: str, name: str, where: str) -> int:
    """`value` as an int, or an error naming the column."""
    if not _INT.fullmatch(value):
        raise LayerftError(f"{where}: {name} {value!r} is not an integer")
    return int(value)


def _dp_record(guid: str, sentence: str, rows: list[tuple[str, list[str]]]) -> dict[str, Any]:
    """One KLUE-DP sentence from its (where, [INDEX, WORD_FORM, LEMMA, POS, HEAD, DEPREL]) rows."""
    words, lemmas, pos, heads, deprels = [], [], [], [], []
    for where, (index, word, lemma, tags, head, deprel) in rows:
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
    readers_conll.check_tree(heads, [where for where, _ in rows])
    return {
        "guid": guid,
        "sentence": sentence,
        "words": words,
        "lemmas": lemmas,
        "pos": pos,
        "heads": heads,
        "deprels": deprels,
    }


def read_klue_dp(path: Path) -> list[dict[str, Any]]:
    """KLUE-DP release TSV -> one record per sentence.

    Keys: guid, sentence, words (WORD_FORM), lemmas (LEMMA), pos (POS), heads (HEAD as int; 0 is
    the root), deprels (DEPREL); one list entry per eojeol.
    """
    path = Path(path)
    return [
        _dp_record(
            block.guid, block.sentence, [(f"{path}:{number}", row) for number, row in block.rows]
        )
        for block in _read_blocks(path, _DP_COLUMNS)
    ]


def read_klue_pos(path: Path) -> list[dict[str, Any]]:
    """KLUE-DP release TSV -> morpheme-level POS tagging records {guid, tokens, tags}.

    Each eojeol's LEMMA split on spaces gives its morphemes, its POS split on '+' their tags. The
    release does not always agree with itself: in KLUE-DP v1.1 dev (klue-dp-v1_dev_00244) the
    eojeol '3%' has LEMMA '0' and POS 'SN+SW'. When the morpheme and tag counts differ, the
    eojeol becomes one token, its WORD_FORM, tagged with its first POS tag: no sentence is lost
    and the tag set stays closed. Such eojeols are counted in a warning; more than 1% of them
    (and more than 10) is not the release (a LEMMA column without its spaces, say) and stops the
    run.
    """
    return _pos_records(read_klue_dp(Path(path)), str(path))


def _pos_records(sentences: list[dict[str, Any]], source: str) -> list[dict[str, Any]]:
    """KLUE-DP sentence records (from `source`) -> POS tagging records (see read_klue_pos)."""
    unsplit: list[str] = []  # '<guid> <word>' of each eojeol kept whole
    records = [_pos_record(sentence, unsplit) for sentence in sentences]
    if unsplit:
        eojeols = sum(len(sentence["words"]) for sentence in sentences)
        if len(unsplit) > max(_MAX_UNSPLIT_SHARE * eojeols, _MAX_UNSPLIT):
            raise LayerftError(
                f"{source}: {len(unsplit)} of {eojeols} eojeols have a different number of LEMMA "
                f"morphemes and POS tags (first: {unsplit[0]}); KLUE-DP's release has a handful: "
                "are the LEMMA and POS columns KLUE-DP's?"
            )
        log.warning(
            "%s: %d eojeol(s) whose LEMMA morphemes and POS tags differ in number kept whole, "
            "tagged with their first tag (first: %s)", source, len(unsplit), unsplit[0],
        )  # fmt: skip
    return records


# More eojeols kept whole than both of these is not KLUE-DP's release (its v1.1 dev file: 1 in
# 6,115 of the shared sample, the '3%' above).
_MAX_UNSPLIT_SHARE = 0.01
_MAX_UNSPLIT = 10


def _pos_record(sentence: Mapping[str, Any], unsplit: list[str]) -> dict[str, Any]:
    """A KLUE-DP sentence record -> its morphemes and their POS tags (see read_klue_pos); an
    eojeol kept whole is added to `unsplit`."""
    tokens: list[str] = []
    tags: list[str] = []
    for word, lemma, pos in zip(
        sentence["words"], sentence["lemmas"], sentence["pos"], strict=True
    ):
        morphemes, morpheme_tags = lemma.split(), pos.split("+")
        if len(morphemes) != len(morpheme_tags):
            unsplit.append(f"{sentence['guid']} {word!r}")
            morphemes, morpheme_tags = [word], morpheme_tags[:1]
        tokens += morphemes
        tags += morpheme_tags
    return {"guid": sentence["guid"], "tokens": tokens, "tags": tags}


def _check_spelling(path: Path, block: _Block) -> None:
    """The CHAR rows of a KLUE-NER sentence spell its header sentence without the entity marks."""
    spelt = "".join(char for _, (char, _) in block.rows)
    sentence = _NER_MARK.sub(r"\1", block.sentence)
    if spelt == sentence:
        return
    at = next(
        (i for i, (a, b) in enumerate(zip(spelt, sentence, strict=False)) if a != b),
        min(len(spelt), len(sentence)),
    )
    number = block.rows[min(at, len(block.rows) - 1)][0]
    raise LayerftError(
        f"{path}:{number}: {block.guid}: the CHAR rows differ from the sentence (marks removed) "
        f"at character {at + 1}: rows {spelt[at : at + 10]!r}, sentence {sentence[at : at + 10]!r}"
        " (a lost or extra row?)"
    )


def _contradicted_tag(sentence: str, rows: list[tuple[str, str]]) -> tuple[int, str] | None:
    """The first of a KLUE-NER sentence's (char, tag) rows, which spell it without its marks,
    whose tag its `<text:TYPE>` marks contradict, and why; None if none does.

    A tagged character has the type of the mark it sits in, O outside every mark: otherwise an
    entity erased, retyped or extended by a row would train and score quietly. Types, not B-/I-,
    are compared: the marks cannot say where an entity adjoining another of its type begins, and a
    mark may take in a space (`< 24살:QT>`). Spaces are dropped, whatever their tag."""
    marks: list[str] = []  # per character of the sentence without marks: the mark it sits in
    end = 0
    for match in _NER_MARK.finditer(sentence):
        marks += [""] * (match.start() - end) + [match.group(0)] * len(match.group(1))
        end = match.end()
    marks += [""] * (len(sentence) - end)
    for index, ((char, tag), mark) in enumerate(zip(rows, marks, strict=True)):
        entity = _NER_MARK.fullmatch(mark).group(2) if mark else "O"
        if not char.isspace() and (tag[2:] if tag != "O" else "O") != entity:
            where = f"the sentence marks {mark}" if mark else "the sentence marks no entity there"
            return index, f"{char!r} is tagged {tag} but {where}"
    return None


def _check_marks(path: Path, block: _Block) -> None:
    """No tag of a KLUE-NER sentence (spelt as its header, `_check_spelling`) is one its marks
    contradict (`_contradicted_tag`)."""
    fault = _contradicted_tag(block.sentence, [row for _, row in block.rows])
    if fault is not None:
        index, problem = fault
        raise LayerftError(f"{path}:{block.rows[index][0]}: {block.guid}: {problem}")


def _space_may_carry(tag: str, previous: str | None) -> bool:
    """Whether a whitespace character after one tagged `previous` carries no tag of its own: O, or
    the I- tag of the entity it sits in (dropping the space then leaves the BIO sequence intact)."""
    return tag == "O" or (previous is not None and previous != "O" and tag == f"I-{previous[2:]}")


def _warn_tagged_spaces(source: str, dropped: list[str]) -> None:
    """One line for the whitespace rows that opened an entity or switched its type (KLUE-NER v1.1
    dev '최근< 24살:QT>': the space is B-QT): dropped as KLUE-baseline drops every space, so the
    I- run after one stays orphaned in the gold, as in KLUE's (strict IOB2 opens no entity there)."""
    if dropped:
        log.warning(
            "%s: %d whitespace rows tagged B- or I- of an entity not open were dropped, as "
            "KLUE-baseline drops every space, and the I- tags after them kept as KLUE keeps them "
            "(first: %s)", source, len(dropped), dropped[0],
        )  # fmt: skip


def read_klue_ner(path: Path) -> list[dict[str, Any]]:
    """KLUE-NER release TSV -> {guid, sentence, tokens (chars), tags (BIO), words (the sentence
    split at whitespace, marks removed)}, whitespace dropped.

    "sentence" keeps the release's '<entity:TYPE>' marks. Every whitespace row is dropped, as
    KLUE-baseline does, whatever its tag: a space inside an entity is tagged I-<type>
    ('<2019년 1월:DT>'), and two of KLUE-NER v1.1 dev's carry B- (a mark that takes in the space
    before it); those are counted in one warning, and the I- run that follows one is kept as it is.
    The CHAR rows must spell the sentence (marks removed), and any other I- tag must continue its
    type: a lost or extra row, or an orphan I- (which the strict IOB2 metric reads differently),
    would otherwise train and score quietly.
    """
    path = Path(path)
    records = []
    dropped: list[str] = []
    for block in _read_blocks(path, _NER_COLUMNS):
        tokens: list[str] = []
        tags: list[str] = []
        space = "O"  # the tag of the row before when that was a whitespace row
        for number, (char, tag) in block.rows:
            where = f"{path}:{number}"
            if len(char) != 1:
                raise LayerftError(f"{where}: CHAR must be one character, got {char!r}")
            if not _BIO_TAG.fullmatch(tag):
                raise LayerftError(f"{where}: tag {tag!r} is not O, B-<type> or I-<type>")
            if char.isspace():
                if not _space_may_carry(tag, tags[-1] if tags else None):
                    dropped.append(f"line {number}, {block.guid}, tagged {tag}")
                space = tag
                continue
            previous = tags[-1] if tags else "O"
            # An I- after a dropped space of its type is KLUE's gold; anywhere else, a lost row.
            if tag.startswith("I-") and tag[2:] not in (previous[2:], space[2:]):
                raise LayerftError(
                    f"{where}: {block.guid}: {tag} does not follow B-{tag[2:]} or I-{tag[2:]} "
                    f"(previous tag {previous})"
                )
            tokens.append(char)
            tags.append(tag)
            space = "O"
        _check_spelling(path, block)
        _check_marks(path, block)
        words = "".join(char for _, (char, _) in block.rows).split()
        records.append(
            {"guid": block.guid, "sentence": block.sentence, "tokens": tokens, "tags": tags,
             "words": words}
        )  # fmt: skip
    _warn_tagged_spaces(str(path), dropped)
    return records


# The 30 KLUE-RE relations in the release's relation_list.json order, which is also the order of the
# class ids in the hub's `klue/klue` re config.
KLUE_RE_RELATIONS: tuple[str, ...] = (
    "no_relation",
    "org:dissolved",
    "org:founded",
    "org:place_of_headquarters",
    "org:alternate_names",
    "org:member_of",
    "org:members",
    "org:political/religious_affiliation",
    "org:product",
    "org:founded_by",
    "org:top_members/employees",
    "org:number_of_employees/members",
    "per:date_of_birth",
    "per:date_of_death",
    "per:place_of_birth",
    "per:place_of_death",
    "per:place_of_residence",
    "per:origin",
    "per:employee_of",
    "per:schools_attended",
    "per:alternate_names",
    "per:parents",
    "per:children",
    "per:siblings",
    "per:spouse",
    "per:other_family",
    "per:colleagues",
    "per:product",
    "per:religion",
    "per:title",
)


class _Fault(Exception):
    """What is wrong with one record; the caller prefixes where the record is."""


_KIND_WORDS: Mapping[type, str] = MappingProxyType(
    {str: "a string", int: "an integer", bool: "true or false", list: "a list", dict: "an object"}
)


def _field(record: Any, key: str, kind: type, name: str = "") -> Any:
    """record[key] if present and of type `kind` (`object`: any); a string must not be blank."""
    name = name or key
    if not isinstance(record, Mapping):
        raise _Fault(f"{name.rpartition('.')[0] or 'record'} is not an object")
    value = record.get(key)
    if value is None:
        raise _Fault(f"{name} is missing")
    # bool is an int subclass in Python; JSON keeps them apart.
    wrong_bool = isinstance(value, bool) and kind is not bool
    if kind is not object and (wrong_bool or not isinstance(value, kind)):
        raise _Fault(f"{name} is not {_KIND_WORDS[kind]} (got {quoted(value)})")
    if isinstance(value, str) and not value.strip():
        raise _Fault(f"{name} is empty")
    return value


def _score(labels: Mapping[str, Any], key: str) -> float:
    """labels[key] as a float in 0..5."""
    value = _field(labels, key, object, f"labels.{key}")
    if not finite_number(value):
        raise _Fault(f"labels.{key} {quoted(value)} is not a number")
    if not 0 <= value <= 5:
        raise _Fault(f"labels.{key} {value} is outside 0..5")
    return float(value)


def _read_release_array(
    path: Path, layout: str, convert: Callable[[dict[str, Any]], dict[str, Any]]
) -> list[dict[str, Any]]:
    """A release JSON array of records with a guid each, each converted by `convert`."""
    text, rows = read_json_text(path)
    if not isinstance(rows, list):
        raise LayerftError(f"{path}: expected a JSON array of records ({layout})")
    records = []
    guids: set[str] = set()
    for number, row in enumerate(rows, 1):
        guid = row.get("guid") if isinstance(row, dict) else None
        if not isinstance(guid, str) or not guid.strip():
            # Located only now: finding a line rescans the array up to the record.
            line = _array_element_line(text, number - 1)
            problem = "has no guid" if isinstance(row, dict) else "is not an object"
            raise LayerftError(f"{path}:{line}: record {number} {problem}")
        _check_new_guid(path, text, guid, guids)
        try:
            records.append(convert(row))
        except _Fault as fault:
            line = line_of(text, json.dumps(guid, ensure_ascii=False))
            raise LayerftError(f"{path}{line}: {guid}: {fault}") from None
    return _nonempty(path, records)


def _sts_record(row: Mapping[str, Any]) -> dict[str, Any]:
    """A KLUE-STS row (release or hub: labels.{label, real-label, binary-label}) -> flat record."""
    labels = _field(row, "labels", dict)
    binary = _field(labels, "binary-label", object, "labels.binary-label")
    if isinstance(binary, bool) or binary not in (0, 1) or not isinstance(binary, int):
        raise _Fault(f"labels.binary-label {quoted(binary)} is not 0 or 1")
    return {
        "guid": _field(row, "guid", str),
        "sentence1": _field(row, "sentence1", str),
        "sentence2": _field(row, "sentence2", str),
        "label": _score(labels, "label"),
        "real_label": _score(labels, "real-label"),
        "binary_label": binary,
    }


def read_klue_sts(path: Path) -> list[dict[str, Any]]:
    """KLUE-STS release JSON -> {guid, sentence1, sentence2, label, real_label, binary_label}.

    label is labels.label (0-5), real_label labels.real-label (the annotators' mean, 0-5),
    binary_label labels.binary-label (0 or 1; KLUE sets 1 for label >= 3).
    """
    return _read_release_array(Path(path), "the KLUE-STS release layout", _sts_record)


def _spans(values: Any, context: str, name: str) -> list[dict[str, Any]]:
    """A list of {text, answer_start}, each found in `context` at its answer_start."""
    if not isinstance(values, list):
        raise _Fault(f"{name} is not a list (got {quoted(values)})")
    spans = []
    for number, span in enumerate(values):
        label = f"{name}[{number}]"
        text = _field(span, "text", str, f"{label}.text")
        start = _field(span, "answer_start", int, f"{label}.answer_start")
        found = context[start : start + len(text)] if start >= 0 else ""
        if found != text:
            raise _Fault(
                f"{label} {text!r} does not match the context at answer_start {start} ({found!r})"
            )
        spans.append({"text": text, "answer_start": start})
    return spans


def _mrc_record(title: str, context: str, qa: Mapping[str, Any]) -> dict[str, Any]:
    """One KLUE-MRC question in the release layout -> flat record."""
    is_impossible = _field(qa, "is_impossible", bool)
    answers = _spans(_field(qa, "answers", list), context, "answers")
    if is_impossible and answers:
        raise _Fault(f"is_impossible is true but it has {len(answers)} answers")
    if not is_impossible and not answers:
        raise _Fault("has no answers and is_impossible is false")
    return {
        "guid": _field(qa, "guid", str),
        "title": title,
        "context": context,
        "question": _field(qa, "question", str),
        "answers": answers,
        "is_impossible": is_impossible,
        "plausible_answers": _spans(qa.get("plausible_answers", []), context, "plausible_answers"),
        "question_type": _field(qa, "question_type", int),
    }


def _title(article: Mapping[str, Any], name: str) -> str:
    """An article's title; the hub's loader treats it as optional, so a missing one is ''."""
    title = article.get("title", "")
    if not isinstance(title, str):
        raise _Fault(f"{name} is not a string (got {quoted(title)})")
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
            paragraphs = _field(article, "paragraphs", list, f"data[{d}].paragraphs")
            title = _title(article, f"data[{d}].title")
            for p, paragraph in enumerate(paragraphs):
                where = f"data[{d}].paragraphs[{p}]"
                context = _field(paragraph, "context", str, f"{where}.context")
                for q, qa in enumerate(_field(paragraph, "qas", list, f"{where}.qas")):
                    guid = _field(qa, "guid", str, f"{where}.qas[{q}].guid")
                    _check_new_guid(path, text, guid, guids)
                    try:
                        records.append(_mrc_record(title, context, qa))
                    except _Fault as fault:
                        line = line_of(text, json.dumps(guid, ensure_ascii=False))
                        raise LayerftError(f"{path}{line}: {guid}: {fault}") from None
        except _Fault as fault:
            # Above a question's guid, the fault names its place in the JSON (data[0].paragraphs).
            raise LayerftError(f"{path}: {fault}") from None
    return _nonempty(path, records)


def _entity(row: Mapping[str, Any], key: str, sentence: str) -> dict[str, Any]:
    """A KLUE-RE entity {word, start_idx, end_idx (inclusive), type} checked against `sentence`."""
    entity = _field(row, key, dict)
    word = _field(entity, "word", str, f"{key}.word")
    start = _field(entity, "start_idx", int, f"{key}.start_idx")
    end = _field(entity, "end_idx", int, f"{key}.end_idx")
    found = sentence[start : end + 1] if 0 <= start <= end < len(sentence) else ""
    if found != word:
        raise _Fault(
            f"{key}.word {word!r} does not match sentence[{start}:{end}+1] ({found!r}; "
            "end_idx is inclusive)"
        )
    kind = _field(entity, "type", str, f"{key}.type")
    return {"word": word, "start": start, "end": end, "type": kind}


def _re_record(row: Mapping[str, Any], label: str) -> dict[str, Any]:
    """A KLUE-RE row (release or hub) whose relation is named `label` -> flat record."""
    if label not in KLUE_RE_RELATIONS:
        raise _Fault(f"label {quoted(label)} is not one of the 30 KLUE-RE relations")
    sentence = _field(row, "sentence", str)
    return {
        "guid": _field(row, "guid", str),
        "sentence": sentence,
        "subject": _entity(row, "subject_entity", sentence),
        "object": _entity(row, "object_entity", sentence),
        "label": label,
    }


def read_klue_re(path: Path) -> list[dict[str, Any]]:
    """KLUE-RE release JSON -> {guid, sentence, subject, object, label}.

    subject and object are {word, start, end, type} with end inclusive, as in the release
    (sentence[start:end + 1] == word); label is the relation's name (one of KLUE_RE_RELATIONS).
    """
    return _read_release_array(
        Path(path),
        "the KLUE-RE release layout",
        lambda row: _re_record(row, _field(row, "label", str)),
    )


def _hub_rows(
    config: str, rows: list[dict[str, Any]], convert: Callable[[int, Mapping[str, Any]], dict]
) -> list[dict[str, Any]]:
    """Convert each row of the hub's `klue/klue` `config`; a fault names the row and its guid."""
    if not rows:
        raise LayerftError(f"klue/klue {config}: no rows")
    records = []
    for index, row in enumerate(rows):
        try:
            if not isinstance(row, Mapping):
                raise _Fault(f"is not a mapping (got {type(row).__name__})")
            records.append(convert(index, row))
        except _Fault as fault:
            guid = row.get("guid") if isinstance(row, Mapping) else None
            named = f" ({guid})" if isinstance(guid, str) else ""
            raise LayerftError(f"klue/klue {config} row {index}{named}: {fault}") from None
    return records


def _hub_mrc(index: int, row: Mapping[str, Any]) -> dict[str, Any]:
    """A `klue/klue` mrc row: answers is {answer_start: [...], text: [...]}."""
    answers = _field(row, "answers", dict)
    starts = _field(answers, "answer_start", list, "answers.answer_start")
    texts = _field(answers, "text", list, "answers.text")
    if len(starts) != len(texts):
        raise _Fault(f"answers has {len(starts)} answer_start values for {len(texts)} texts")
    spans = [{"text": t, "answer_start": s} for t, s in zip(texts, starts, strict=True)]
    is_impossible = _field(row, "is_impossible", bool)
    # The hub's loader appended plausible_answers to answers: an unanswerable question's spans
    # are its plausible answers.
    qa = {
        **row,
        "answers": [] if is_impossible else spans,
        "plausible_answers": spans if is_impossible else [],
    }
    return _mrc_record(_title(row, "title"), _field(row, "context", str), qa)


def _hub_re(index: int, row: Mapping[str, Any]) -> dict[str, Any]:
    """A `klue/klue` re row: label is an index into KLUE_RE_RELATIONS."""
    label = _field(row, "label", int)
    if not 0 <= label < len(KLUE_RE_RELATIONS):
        raise _Fault(f"label {label} is outside 0..{len(KLUE_RE_RELATIONS) - 1}")
    return _re_record(row, KLUE_RE_RELATIONS[label])


_HUB_DP_COLUMNS = ("index", "word_form", "lemma", "pos", "head", "deprel")


def _hub_dp(index: int, row: Mapping[str, Any]) -> dict[str, Any]:
    """A `klue/klue` dp row: one list per column, no guid (it becomes 'row-<index>')."""
    sentence = _field(row, "sentence", str)
    columns = [_field(row, name, list) for name in _HUB_DP_COLUMNS]
    lengths = {name: len(column) for name, column in zip(_HUB_DP_COLUMNS, columns, strict=True)}
    if len(set(lengths.values())) != 1:
        raise _Fault(f"columns differ in length ({lengths})")
    if not columns[0]:
        raise _Fault("has no words")
    rows = []
    for word, values in enumerate(zip(*columns, strict=True), 1):
        where = f"klue/klue dp row {index}, word {word}"
        for name, value in zip(_HUB_DP_COLUMNS, values, strict=True):
            kind = int if name in ("index", "head") else str
            if isinstance(value, bool) or not isinstance(value, kind):
                raise LayerftError(
                    f"{where}: {name} is not {_KIND_WORDS[kind]} (got {quoted(value)})"
                )
        # As strings, the words go through the same checks as the release's TSV rows.
        rows.append((where, [str(value) for value in values]))
    return _dp_record(row.get("guid") or f"row-{index}", sentence, rows)


# The class order of the hub's `klue/klue` ner `ner_tags` (and of the tasks' label_names).
KLUE_NER_TAGS = ("B-DT", "I-DT", "B-LC", "I-LC", "B-OG", "I-OG", "B-PS", "I-PS", "B-QT", "I-QT",
                 "B-TI", "I-TI", "O")  # fmt: skip


def _hub_ner(dropped: list[str], index: int, row: Mapping[str, Any]) -> dict[str, Any]:
    """A hub KLUE-NER row as `read_klue_ner` gives the sentence: its characters keep spaces,
    which are dropped here whatever their tag, as the release reader does; one that opens an
    entity or switches its type is added to `dropped` for `_warn_tagged_spaces`."""
    tokens, ids = row.get("tokens"), row.get("ner_tags")
    if not isinstance(tokens, list) or not isinstance(ids, list) or len(tokens) != len(ids):
        raise _Fault("needs lists 'tokens' and 'ner_tags' of one length")
    kept: list[tuple[str, int]] = []
    for char, tag_id in zip(tokens, ids, strict=True):
        if not isinstance(tag_id, int) or not 0 <= tag_id < len(KLUE_NER_TAGS):
            raise _Fault(f"ner_tags value {tag_id!r} is not a class of klue/klue ner")
        if not (isinstance(char, str) and char.isspace()):
            kept.append((char, tag_id))
            continue
        tag = KLUE_NER_TAGS[tag_id]
        if not _space_may_carry(tag, KLUE_NER_TAGS[kept[-1][1]] if kept else None):
            dropped.append(f"row {index}, tagged {tag}")
    sentence = row.get("sentence")
    # Checked where the characters spell the sentence, as the release's rows must: a hub copy
    # that spells it otherwise is left as it is (no real row could be seen offline to compare).
    if isinstance(sentence, str) and "".join(tokens) == _NER_MARK.sub(r"\1", sentence):
        rows = [(char, KLUE_NER_TAGS[tag_id]) for char, tag_id in zip(tokens, ids, strict=True)]
        fault = _contradicted_tag(sentence, rows)
        if fault is not None:
            raise _Fault(fault[1])
    return {
        "sentence": sentence,
        "tokens": [char for char, _ in kept],
        "ner_tags": [tag_id for _, tag_id in kept],
        "words": "".join(tokens).split(),
    }


def _hub_ner_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The hub's `klue/klue` ner rows, with one warning for their entity-tagged spaces."""
    dropped: list[str] = []
    records = _hub_rows("ner", rows, convert=partial(_hub_ner, dropped))
    _warn_tagged_spaces("klue/klue ner", dropped)
    return records


HUB_ADAPTERS: Mapping[str, Callable[[list[dict[str, Any]]], list[dict[str, Any]]]] = (
    MappingProxyType(
        {
            "klue_sts": partial(_hub_rows, "sts", convert=lambda _, row: _sts_record(row)),
            "klue_mrc": partial(_hub_rows, "mrc", convert=_hub_mrc),
            "klue_re": partial(_hub_rows, "re", convert=_hub_re),
            "klue_dp": partial(_hub_rows, "dp", convert=_hub_dp),
            # KLUE-DP's rows, as morphemes and their POS tags (`read_klue_pos`).
            "klue_pos": lambda rows: _pos_records(
                _hub_rows("dp", rows, convert=_hub_dp), "klue/klue dp"
            ),
            "klue_ner": _hub_ner_rows,
            "squad": hub_squad,
            "squad_v2": hub_squad_v2,
            "conllu": readers_conll.hub_ud_rows,
        }
    )
)
"""Rows of the hub's `klue/klue` configs (sts, mrc, re, dp) -> the release readers' records."""


def record_line(path: Path, release_format: str, number: int) -> int | None:
    """The line on which record `number` (1-based, in its reader's order) starts, where a format
    keeps one record per line, row, sentence block or array element; None for the others (SQuAD's
    and KLUE-MRC's nested questions, CoNLL, Parquet) and for a file no longer readable.
    It only places an error found after reading, so it reads the file again."""
    name = path.suffix.lower() if release_format == "records" else release_format
    finder = _LINE_FINDERS.get(name)
    try:
        return None if finder is None else finder(read_text(path), number)
    except (OSError, ValueError, LayerftError):
        return None


def _json_record_line(text: str, number: int) -> int | None:
    if text.lstrip().startswith("["):
        return _array_element_line(text, number - 1)
    filled = (n for n, line in enumerate(text.split("\n"), 1) if line and not line.isspace())
    return next((n for i, n in enumerate(filled, 1) if i == number), None)


def _delimited_record_line(delimiter: str) -> Callable[[str, int], int | None]:
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


def _block_record_line(text: str, number: int) -> int | None:
    lines = enumerate(text_lines(text), 1)
    headers = (n for n, line in lines if _SENTENCE_HEADER.fullmatch(line))
    return next((n for i, n in enumerate(headers, 1) if i == number), None)


_LINE_FINDERS: Mapping[str, Callable[[str, int], int | None]] = MappingProxyType(
    {
        ".json": _json_record_line,
        ".jsonl": _json_record_line,
        **{suffix: _delimited_record_line(d) for suffix, d in _DELIMITERS.items()},
        "klue_sts": _json_record_line,
        "klue_re": _json_record_line,
        **dict.fromkeys(("klue_dp", "klue_pos", "klue_ner"), _block_record_line),
        **GLUE_LINE_FINDERS,
    }
)


RELEASE_READERS: Mapping[str, Callable[[Path], list[dict[str, Any]]]] = MappingProxyType(
    {
        "records": read_records,
        "klue_dp": read_klue_dp,
        "klue_pos": read_klue_pos,
        "klue_ner": read_klue_ner,
        "klue_sts": read_klue_sts,
        "klue_mrc": read_klue_mrc,
        "klue_re": read_klue_re,
        **GLUE_READERS,
        "squad": read_squad,
        "squad_v2": read_squad_v2,
        "conll2003": readers_conll.read_conll2003,
        "conllu": readers_conll.read_conllu,
    }
)
