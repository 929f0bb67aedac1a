"""KLUE's TSV releases as sentence blocks (`read_blocks`, KLUE-NER's too), and KLUE-DP's (also
read as morpheme POS tagging) and the hub's `klue/klue` dp rows -> records. Serves the task groups'
`release_format: klue_dp | klue_pos` (registered in `layerft/readers.py`).

A release file is sentence blocks: a '## <guid>\t<sentence>' line, then one tab-separated row per
eojeol (DP) or character (NER, `layerft/readers_klue_ner.py`). A fault names the file and line
(a hub row: its index).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from layerft import readers_conllu
from layerft.errors import LayerftError, quoted
from layerft.readers_fields import KIND_WORDS, RecordFault, record_field
from layerft.text_files import INTEGER, check_first_line, read_lines, text_lines

log = logging.getLogger(__name__)

_SENTENCE_HEADER = re.compile(r"## (\S+)\t(.*)")
_DP_COLUMNS = ("INDEX", "WORD_FORM", "LEMMA", "POS", "HEAD", "DEPREL")


@dataclass
class Block:
    """One '## <guid>\\t<sentence>' line and its rows, each with its line number."""

    guid: str
    sentence: str
    line: int
    rows: list[tuple[int, list[str]]] = field(default_factory=list)


def read_blocks(path: Path, columns: tuple[str, ...]) -> list[Block]:
    """Split a KLUE release TSV into sentences, checking every row's column count."""
    blocks: list[Block] = []
    current: Block | None = None
    comment = 0  # the line number of the last '##' line read as a comment
    for number, line in enumerate(read_lines(path), 1):
        if line.startswith("##"):
            header = _SENTENCE_HEADER.fullmatch(line)
            comment = 0 if header else number
            if header:
                current = Block(header[1], header[2], number)
                blocks.append(current)
            elif current is not None and current.rows:  # comments open a file, not a sentence
                raise LayerftError(
                    f"{path}:{number}: a '##' line inside a sentence: no '## <guid>\\t<sentence>' "
                    "header (a tab must follow the guid), and no blank line ends the sentence before it"
                )
            continue
        # Not strip(): a NER row for a space character is ' \tO'.
        if "\t" not in line and not line.strip():
            current = None
            continue
        if current is None and comment == number - 1:  # a header with a space for its tab
            raise LayerftError(
                f"{path}:{comment}: rows follow a '##' line that is no '## <guid>\\t<sentence>' "
                "header (a tab must follow the guid)"
            )
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
    if not INTEGER.fullmatch(value):
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
    readers_conllu.check_tree(heads, [where for where, _ in rows])
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
        for block in read_blocks(path, _DP_COLUMNS)
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


def block_record_line(text: str, number: int) -> int | None:
    """The line of the `number`th sentence header (1: the first) of a block file, None past its last."""
    lines = enumerate(text_lines(text), 1)
    headers = (n for n, line in lines if _SENTENCE_HEADER.fullmatch(line))
    return next((n for i, n in enumerate(headers, 1) if i == number), None)
