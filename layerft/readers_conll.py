"""Reader of CoNLL-2003 files (`release_format: conll2003`, the tagging tasks conll_pos /
conll_chunk / conll_ner), registered in `layerft/readers.py`. CoNLL-U (Universal Dependencies)
files and hub rows are `layerft/readers_conllu.py`'s. Every fault is one LayerftError naming the
file, the line and the field.

Serves the task config groups' `release_format: conll2003`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from layerft.errors import LayerftError
from layerft.text_files import read_lines

# CoNLL-2003: WORD POS CHUNK NER, separated by single spaces.
CONLL2003_COLUMNS = ("WORD", "POS", "CHUNK", "NER")
_IOB_TAG = re.compile(r"O|[BI]-\S+")
_DOCSTART = "-DOCSTART-"


def nonempty_sentences(path: Path, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`records`; a file without one sentence is a mistake, not an empty split."""
    if not records:
        raise LayerftError(f"{path}: no sentences")
    return records


def iob1_to_iob2(tags: list[str]) -> list[str]:
    """IOB1 (I-X may open a chunk; B-X only right after a chunk of type X) -> IOB2 (B-X opens every
    chunk). An I-X that does not continue a chunk of type X starts one; IOB2 input is unchanged."""
    converted = []
    previous = "O"
    for tag in tags:
        if tag.startswith("I-") and previous[2:] != tag[2:]:
            tag = "B-" + tag[2:]
        converted.append(tag)
        previous = tag
    return converted


def read_conll2003(path: Path) -> list[dict[str, Any]]:
    """CoNLL-2003 file (eng.train / eng.testa / eng.testb, or train.txt / valid.txt / test.txt)
    -> one record per sentence: {guid, tokens, pos_tags, chunk_tags, ner_tags}, tags as strings.

    One token a line, "WORD POS CHUNK NER" separated by spaces; a blank line ends a sentence;
    a '-DOCSTART-' line separates documents and is no sentence. The original release tags chunks
    and entities in IOB1, the hub's `conll2003` in IOB2; both are read as IOB2 (`iob1_to_iob2`, a
    no-op on IOB2), so local files and the hub give the same tags and B- always opens a chunk.
    guid is '<document>-<sentence>', both counted from 1 in the file.
    """
    path = Path(path)
    records: list[dict[str, Any]] = []
    rows: list[list[str]] = []
    document, sentence, blank = 0, 0, False

    def close() -> None:
        nonlocal rows, sentence
        if rows:
            sentence += 1
            tokens, pos, chunks, entities = (list(column) for column in zip(*rows, strict=True))
            records.append(
                {
                    "guid": f"{max(document, 1)}-{sentence}",
                    "tokens": tokens,
                    "pos_tags": pos,
                    "chunk_tags": iob1_to_iob2(chunks),
                    "ner_tags": iob1_to_iob2(entities),
                }
            )
        rows = []

    lines = read_lines(path)
    for number, line in enumerate(lines, 1):
        if not line.strip():
            close()
            blank = blank or number < len(lines)  # the "" after a final line end is no blank line
            continue
        fields = line.split()
        if fields[0] == _DOCSTART:
            close()
            document, sentence = document + 1, 0
            continue
        where = f"{path}:{number}"
        if len(fields) != len(CONLL2003_COLUMNS):
            raise LayerftError(
                f"{where}: expected {len(CONLL2003_COLUMNS)} space-separated fields "
                f"({' '.join(CONLL2003_COLUMNS)}), got {len(fields)}"
            )
        for name, tag in zip(CONLL2003_COLUMNS[2:], fields[2:], strict=True):
            if not _IOB_TAG.fullmatch(tag):
                raise LayerftError(f"{where}: {name} tag {tag!r} is not O, B-<type> or I-<type>")
        rows.append(fields)
    close()
    if not blank:
        _check_sentence_ends(path, records)
    return nonempty_sentences(path, records)


def _check_sentence_ends(path: Path, records: list[dict[str, Any]]) -> None:
    """A file of no blank line is read as one sentence per document: refused when a sentence holds
    a sentence end ('.' tagged '.') before its last token (`grep -v '^$'` of a release file)."""
    for record in records:
        if "." in record["pos_tags"][:-1]:
            raise LayerftError(
                f"{path}: no blank line ends a sentence, and sentence {record['guid']} holds a "
                "sentence end before its last token: did the file lose its blank lines?"
            )
