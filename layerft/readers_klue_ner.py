"""KLUE-NER's release TSV (one row per character, BIO tags; the sentence line keeps
'<entity:TYPE>' marks) and the hub's `klue/klue` ner rows -> records. Serves the task groups'
`release_format: klue_ner` (registered in `layerft/readers.py`); the sentence blocks are read as
`layerft/readers_klue_tsv.py` reads KLUE-DP's.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from functools import partial
from pathlib import Path
from typing import Any

from layerft.errors import LayerftError
from layerft.readers_fields import RecordFault, hub_rows
from layerft.readers_klue_tsv import Block, read_blocks

log = logging.getLogger(__name__)


_BIO_TAG = re.compile(r"O|[BI]-\S+")


_NER_MARK = re.compile(r"<([^<>]*?):([A-Z]+)>")  # '<경찰:OG>' in a KLUE-NER sentence


_NER_COLUMNS = ("CHAR", "TAG")


def _check_spelling(path: Path, block: Block) -> None:
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


def _check_marks(path: Path, block: Block) -> None:
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
    for block in read_blocks(path, _NER_COLUMNS):
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
        if (
            isinstance(tag_id, bool)
            or not isinstance(tag_id, int)
            or not 0 <= tag_id < len(KLUE_NER_TAGS)
        ):
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
    records = hub_rows("klue/klue ner", rows, convert=partial(_hub_ner, dropped))
    _warn_tagged_spaces("klue/klue ner", dropped)
    return records
