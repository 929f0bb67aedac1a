"""KLUE's TSV releases (KLUE-DP, also read as morpheme POS tagging, and KLUE-NER) and the hub's
`klue/klue` dp and ner rows -> records. Serves the task groups' `release_format: klue_dp |
klue_pos | klue_ner` (registered in `layerft/readers.py`).

A release file is sentence blocks: a '## <guid>\t<sentence>' line, then one tab-separated row per
eojeol (DP) or character (NER). A fault names the file and line (a hub row: its index).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from layerft import readers_conll
from layerft.errors import LayerftError, quoted
from layerft.readers_klue import KIND_WORDS, RecordFault, hub_rows, record_field
from layerft.text_files import check_first_line, read_lines, text_lines

log = logging.getLogger(__name__)

_INT = re.compile(r"[+-]?[0-9]+")
_SENTENCE_HEADER = re.compile(r"## (\S+)\t(.*)")
_BIO_TAG = re.compile(r"O|[BI]-\S+")
_NER_MARK = re.compile(r"<([^<>]*?):([A-Z]+)>")  # '<경찰:OG>' in a KLUE-NER sentence
_DP_COLUMNS = ("INDEX", "WORD_FORM", "LEMMA", "POS", "HEAD", "DEPREL")
_NER_COLUMNS = ("CHAR", "TAG")


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
    return pos_records(read_klue_dp(Path(path)), str(path))


def pos_records(sentences: list[dict[str, Any]], source: str) -> list[dict[str, Any]]:
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


_HUB_DP_COLUMNS = ("index", "word_form", "lemma", "pos", "head", "deprel")


def hub_dp(index: int, row: Mapping[str, Any]) -> dict[str, Any]:
    """A `klue/klue` dp row: one list per column, no guid (it becomes 'row-<index>')."""
    sentence = record_field(row, "sentence", str)
    columns = [record_field(row, name, list) for name in _HUB_DP_COLUMNS]
    lengths = {name: len(column) for name, column in zip(_HUB_DP_COLUMNS, columns, strict=True)}
    if len(set(lengths.values())) != 1:
        raise RecordFault(f"columns differ in length ({lengths})")
    if not columns[0]:
        raise RecordFault("has no words")
    rows = []
    for word, values in enumerate(zip(*columns, strict=True), 1):
        where = f"klue/klue dp row {index}, word {word}"
        for name, value in zip(_HUB_DP_COLUMNS, values, strict=True):
            kind = int if name in ("index", "head") else str
            if isinstance(value, bool) or not isinstance(value, kind):
                raise LayerftError(
                    f"{where}: {name} is not {KIND_WORDS[kind]} (got {quoted(value)})"
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
        raise RecordFault("needs lists 'tokens' and 'ner_tags' of one length")
    kept: list[tuple[str, int]] = []
    for char, tag_id in zip(tokens, ids, strict=True):
        if not isinstance(tag_id, int) or not 0 <= tag_id < len(KLUE_NER_TAGS):
            raise RecordFault(f"ner_tags value {tag_id!r} is not a class of klue/klue ner")
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
            raise RecordFault(fault[1])
    return {
        "sentence": sentence,
        "tokens": [char for char, _ in kept],
        "ner_tags": [tag_id for _, tag_id in kept],
        "words": "".join(tokens).split(),
    }


def hub_ner_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The hub's `klue/klue` ner rows, with one warning for their entity-tagged spaces."""
    dropped: list[str] = []
    records = hub_rows("ner", rows, convert=partial(_hub_ner, dropped))
    _warn_tagged_spaces("klue/klue ner", dropped)
    return records


def block_record_line(text: str, number: int) -> int | None:
    lines = enumerate(text_lines(text), 1)
    headers = (n for n, line in lines if _SENTENCE_HEADER.fullmatch(line))
    return next((n for i, n in enumerate(headers, 1) if i == number), None)
