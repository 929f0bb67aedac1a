"""Readers of CoNLL-U (Universal Dependencies) files and of the hub's `universal_dependencies`
rows (`release_format: conllu`, the task ud_dp), registered in `layerft/readers.py`, and the
dependency-tree check (`check_tree`) that KLUE-DP's reader and the dependency_parsing kind also
use. CoNLL-2003 is `layerft/readers_conll.py`'s. Every fault is one LayerftError naming the file,
the line and the field.

Serves the task config groups' `release_format: conllu`, and the `dependency_parsing` kind
(`check_tree`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from layerft.errors import LayerftError
from layerft.readers_conll import nonempty_sentences
from layerft.text_files import check_first_line, read_lines

# CoNLL-U: https://universaldependencies.org/format.html
CONLLU_COLUMNS = ("ID", "FORM", "LEMMA", "UPOS", "XPOS", "FEATS", "HEAD", "DEPREL", "DEPS", "MISC")
_WORD_ID = re.compile(r"[1-9][0-9]*")
_MULTIWORD_ID = re.compile(r"([1-9][0-9]*)-([1-9][0-9]*)")
_EMPTY_NODE_ID = re.compile(r"[0-9]+\.[1-9][0-9]*")
_HEAD = re.compile(r"0|[1-9][0-9]*")
# The hub's `universal_dependencies` upos ClassLabel, in its order ("_": a multiword token).
HUB_UPOS: tuple[str, ...] = (
    "NOUN", "PUNCT", "ADP", "NUM", "SYM", "SCONJ", "ADJ", "PART", "DET", "CCONJ", "PROPN",
    "PRON", "X", "_", "ADV", "INTJ", "VERB", "AUX",
)  # fmt: skip


def universal_relation(deprel: str) -> str:
    """The universal part of a UD relation: 'nmod:poss' -> 'nmod' (CoNLL 2018 scores only that)."""
    return deprel.split(":")[0]


def _conllu_word(fields: list[str], expected: int, where: str) -> dict[str, Any]:
    """One word line of a CoNLL-U sentence, checked; the heads' range is checked per sentence."""
    if fields[0] != str(expected):
        raise LayerftError(f"{where}: ID {fields[0]!r} out of order (expected {expected})")
    for column in ("FORM", "UPOS", "DEPREL"):
        value = fields[CONLLU_COLUMNS.index(column)]
        if not value.strip() or (column != "FORM" and value == "_"):
            raise LayerftError(f"{where}: {column} is empty ({value!r})")
    head = fields[CONLLU_COLUMNS.index("HEAD")]
    if not _HEAD.fullmatch(head):
        raise LayerftError(f"{where}: HEAD {head!r} is not a word ID or 0")
    return dict(zip(CONLLU_COLUMNS, fields, strict=True))


def check_tree(heads: list[int], wheres: list[str], one_root: bool = True) -> None:
    """Fail unless the heads (1-based, 0 the root) form one tree: each in range, exactly one root
    (unless not `one_root`: a forest), no word its own head and no cycle. A parser trained on
    anything else learns wrong arcs."""
    for where, head in zip(wheres, heads, strict=True):
        if not 0 <= head <= len(heads):
            raise LayerftError(f"{where}: HEAD {head} is outside 0..{len(heads)}")
    roots = [word for word, head in enumerate(heads, 1) if head == 0]
    if one_root and len(roots) > 1:
        raise LayerftError(f"{wheres[roots[1] - 1]}: a second root (words {roots} have HEAD 0)")
    reaches_root = {0}
    for word in range(1, len(heads) + 1):
        path: list[int] = []
        while word not in reaches_root:
            if word in path:
                cycle = path[path.index(word) :]
                raise LayerftError(
                    f"{wheres[word - 1]}: words {sorted(cycle)} form a cycle of heads"
                )
            path.append(word)
            word = heads[word - 1]
        reaches_root.update(path)


def _conllu_record(guid: str, text: str | None, words: list[tuple[str, dict[str, Any]]]) -> dict:
    """A sentence's words -> {guid, text, words, lemmas, upos, xpos, heads, deprels}."""
    check_tree([int(word["HEAD"]) for _, word in words], [where for where, _ in words])
    column = {name: [word[name] for _, word in words] for name in CONLLU_COLUMNS}
    return {
        "guid": guid,
        "text": text if text is not None else " ".join(column["FORM"]),
        "words": column["FORM"],
        "lemmas": column["LEMMA"],
        "upos": column["UPOS"],
        "xpos": column["XPOS"],
        "heads": [int(head) for head in column["HEAD"]],
        "deprels": [universal_relation(deprel) for deprel in column["DEPREL"]],
    }


def read_conllu(path: Path) -> list[dict[str, Any]]:
    """CoNLL-U file (any UD treebank, e.g. en_ewt-ud-train.conllu) -> one record per sentence:
    {guid, text, words, lemmas, upos, xpos, heads, deprels}, one list entry per syntactic word.

    Ten tab-separated columns a line; '#' lines before a sentence are comments ('# sent_id = x'
    gives the guid, else '<file>-<n>'; '# text = ...' the text); a blank line ends a sentence.
    Words are the lines with an integer ID, as the CoNLL 2018 evaluation counts them: multiword
    token lines (ID '3-4', the surface form 'don't' of words 3 and 4) and empty nodes (ID '5.1',
    enhanced graphs only) are skipped. HEAD is an int (0: the root); DEPREL keeps only its
    universal part ('nmod:poss' -> 'nmod'), the relation set the shared task scores LAS over.
    """
    path = Path(path)
    records: list[dict[str, Any]] = []
    first: dict[str, int] = {}  # a sent_id -> the line its sentence starts on
    for block in _sentence_blocks(path):
        guid, text, words = _conllu_sentence(path, block)
        if guid:  # UD's sent_ids are unique in a treebank: a repeat is a bad merge
            check_first_line(first, guid, block[0][0], path, f"sent_id {guid}", "sentence")
        records.append(_conllu_record(guid or f"{path.stem}-{len(records) + 1}", text, words))
    return nonempty_sentences(path, records)


def _sentence_blocks(path: Path) -> Iterator[list[tuple[int, str]]]:
    """The file's sentences: runs of non-blank lines, each line with its number."""
    block: list[tuple[int, str]] = []
    for number, line in enumerate(read_lines(path), 1):
        if line.strip():
            block.append((number, line))
        elif block:
            yield block
            block = []
    if block:
        yield block


def _conllu_sentence(
    path: Path, block: list[tuple[int, str]]
) -> tuple[str | None, str | None, list[tuple[str, dict[str, Any]]]]:
    """One sentence's sent_id, text and word lines (each with its place in the file)."""
    guid: str | None = None
    text: str | None = None
    words: list[tuple[str, dict[str, Any]]] = []
    for number, line in block:
        where = f"{path}:{number}"
        if line.startswith("#"):
            if words:
                raise LayerftError(
                    f"{where}: comment line inside a sentence (a blank line missing?)"
                )
            key, _, value = line[1:].partition("=")
            if key.strip() == "sent_id":
                guid = value.strip()
            elif key.strip() == "text":
                text = value.strip()
            continue
        fields = line.split("\t")
        if len(fields) != len(CONLLU_COLUMNS):
            raise LayerftError(
                f"{where}: expected {len(CONLLU_COLUMNS)} tab-separated columns "
                f"({' '.join(CONLLU_COLUMNS)}), got {len(fields)}"
            )
        if _is_word(fields[0], len(words), where):
            words.append((where, _conllu_word(fields, len(words) + 1, where)))
    if not words:
        raise LayerftError(f"{path}:{block[0][0]}: sentence has no word lines (integer IDs)")
    return guid, text, words


def _is_word(line_id: str, num_words: int, where: str) -> bool:
    """Whether a line's ID is a word's; an empty node's or a multiword token's is not."""
    if _EMPTY_NODE_ID.fullmatch(line_id):
        return False
    if span := _MULTIWORD_ID.fullmatch(line_id):
        if int(span[1]) != num_words + 1 or int(span[2]) <= int(span[1]):
            raise LayerftError(
                f"{where}: multiword token ID {line_id!r} must be <next word>-<later word> "
                f"(next word is {num_words + 1})"
            )
        return False
    if not _WORD_ID.fullmatch(line_id):
        raise LayerftError(
            f"{where}: ID {line_id!r} is not a word ID (1, 2, ...), a multiword token "
            "range (3-4) or an empty node (5.1)"
        )
    return True


def _hub_ud_row(index: int, row: Mapping[str, Any]) -> dict[str, Any]:
    """A hub `universal_dependencies` row -> read_conllu's record.

    The hub's loader keeps multiword tokens and empty nodes in its lists (no ID column): their
    HEAD is the string 'None'. Words are the entries whose HEAD is an integer, as in the files.
    """
    where = f"universal_dependencies row {index}"
    lists = {key: row.get(key) for key in ("tokens", "lemmas", "upos", "xpos", "head", "deprel")}
    lengths = {key: len(value) if isinstance(value, list) else None for key, value in lists.items()}
    if None in lengths.values() or len(set(lengths.values())) != 1:
        raise LayerftError(f"{where}: expected lists of one length, got lengths {lengths}")
    words = []
    for entry, (form, lemma, upos, xpos, head, deprel) in enumerate(
        zip(*lists.values(), strict=True), 1
    ):
        if not (isinstance(head, str) and _HEAD.fullmatch(head)):
            continue
        if isinstance(upos, int) and not isinstance(upos, bool) and 0 <= upos < len(HUB_UPOS):
            upos = HUB_UPOS[upos]
        fields = [str(len(words) + 1), form, lemma, upos, xpos or "_", "_", head, deprel, "_", "_"]
        if not all(isinstance(value, str) for value in fields):
            raise LayerftError(f"{where}, entry {entry}: a column is not a string ({fields})")
        words.append((f"{where}, entry {entry}", _conllu_word(fields, len(words) + 1, where)))
    if not words:
        raise LayerftError(f"{where}: no words (no entry with an integer head)")
    guid = row.get("idx")
    return _conllu_record(str(guid) if guid is not None else f"row-{index}", row.get("text"), words)


def hub_ud_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows of the hub's `universal_dependencies` (any treebank config) -> read_conllu's records."""
    if not rows:
        raise LayerftError("universal_dependencies: no rows")
    return [_hub_ud_row(index, row) for index, row in enumerate(rows)]
