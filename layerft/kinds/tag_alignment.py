"""How a tagging task's tags meet subword tokens: a word's tag on its first subword, or (KLUE-NER's
layout, `tagging.words_column`) a character's on the first token that starts there and back again;
and which words or characters get no token (cut by max_length, or with no subword) for the
warnings that say so. Gold tags are checked here too: a character record's words spell its
characters and an I- within a word continues an entity; under strict IOB2 no I- opens one.

Serves the `token_tagging` task kind (`layerft/kinds/token_tagging.py`).
"""

from __future__ import annotations

import functools
import itertools
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from layerft.errors import LayerftError, quoted, shown
from layerft.kinds.base import Batch, Record, list_of

if TYPE_CHECKING:
    from datasets import Dataset
    from transformers import PreTrainedTokenizerFast

    from layerft.task import TaskConfig

log = logging.getLogger(__name__)


def word_labels(word_ids: list[int | None], tags: list[int]) -> list[int]:
    """Each word's tag on its first subword; -100 (ignored) on the rest and on special tokens."""
    labels, previous = [], None
    for word in word_ids:
        labels.append(-100 if word is None or word == previous else tags[word])
        previous = word
    return labels


def word_encoder(task: TaskConfig, tokenizer: PreTrainedTokenizerFast):  # noqa: ANN201 - see Kind
    """Pre-split words -> subword ids, tags aligned to first subwords as `labels`, and the words
    that got a label (`tagged_words`)."""

    def encode(batch: Batch) -> Batch:
        encoded = tokenizer(
            batch["tokens"], is_split_into_words=True, truncation=True, max_length=task.max_length
        )
        encoded["labels"] = [
            word_labels(encoded.word_ids(i), tags) for i, tags in enumerate(batch["tags"])
        ]
        # The words that got a label, in order: a word past max_length or with no subword
        # (BERT's cleaning removes control, format and combining characters) gets none.
        encoded["tagged_words"] = [
            list(dict.fromkeys(w for w in encoded.word_ids(i) if w is not None))
            for i in range(len(batch["tags"]))
        ]
        return encoded

    return encode


# Word-start marks a piece may be alone: SentencePiece's (XLM-R, e5) and byte-level BPE's.
_WORD_MARKS = ("\u2581", "\u0120")


def character_spans(
    word_ids: list[int | None],
    offsets: list[tuple[int, int]],
    words: list[str],
    pieces: list[str],
) -> tuple[list[int], list[int]]:
    """Each token's characters as [start, end) in the text's characters (spaces left out), from
    its word and its offsets in that word; -1, -1 for a special token or one with no character of
    its own: a lone word-start mark, which SentencePiece offsets over the first character that the
    next piece reads (KLUE-baseline strips it too)."""
    first = [0]
    for word in words:
        first.append(first[-1] + len(word))
    starts, ends = [], []
    for word, (start, end), piece in zip(word_ids, offsets, pieces, strict=True):
        mark_only = not piece.strip("".join(_WORD_MARKS))
        empty = word is None or start >= end or mark_only
        starts.append(-1 if empty else first[word] + start)
        ends.append(-1 if empty else first[word] + end)
    return starts, ends


def character_labels(starts: list[int], tags: list[int]) -> list[int]:
    """Each token's label: the tag of its first character, where it is the first token to start
    there (WordPiece may split one character); -100 (ignored) otherwise."""
    labels, seen = [], set()
    for start in starts:
        labels.append(-100 if start < 0 or start in seen else tags[start])
        seen.add(start)
    return labels


def character_tags(starts: list[int], ends: list[int], predicted: list[str]) -> dict[int, str]:
    """character -> tag from the tokens' tags: a token's on the character it starts at (the first
    token there), its I- on its later characters (O stays O), as KLUE-baseline aligns them."""
    tags: dict[int, str] = {}
    for start, end, tag in zip(starts, ends, predicted, strict=False):
        if start < 0 or start in tags:
            continue
        tags[start] = tag
        for character in range(start + 1, end):
            tags.setdefault(character, tag if tag == "O" else f"I-{tag[2:]}")
    return tags


def character_encoder(task: TaskConfig, tokenizer: PreTrainedTokenizerFast):  # noqa: ANN202
    """Words -> subword ids; each token's characters (`char_start`, `char_end`), its first
    character's tag as `labels`, and the characters that get a prediction (`tagged_words`)."""

    def encode(batch: Batch) -> Batch:
        encoded = tokenizer(
            batch["words"], is_split_into_words=True, truncation=True,
            max_length=task.max_length, return_offsets_mapping=True,
        )  # fmt: skip
        offsets = encoded.pop("offset_mapping")
        encoded["char_start"], encoded["char_end"], encoded["labels"] = [], [], []
        encoded["tagged_words"] = []
        for i, (words, tags) in enumerate(zip(batch["words"], batch["tags"], strict=True)):
            pieces = tokenizer.convert_ids_to_tokens(encoded["input_ids"][i])
            starts, ends = character_spans(encoded.word_ids(i), offsets[i], words, pieces)
            encoded["char_start"].append(starts)
            encoded["char_end"].append(ends)
            encoded["labels"].append(character_labels(starts, tags))
            encoded["tagged_words"].append(
                sorted(character_tags(starts, ends, ["O"] * len(starts)))
            )
        return encoded

    return encode


def words_of(column: str, record: Record, characters: list[str], where: str) -> list[str]:
    """The record's words, checked to spell its characters (each token one character)."""
    if column not in record:
        raise LayerftError(
            f"{where}: no column '{column}' (tagging.words_column: the text split at whitespace); "
            "give it, or set tagging.words_column=null to read each character as a word"
        )
    words = list_of(record, column, str, where)
    if long := next((t for t in characters if len(t) != 1), None):
        raise LayerftError(
            f"{where}: tagging.words_column: tokens must be single characters, got {shown(long)}"
        )
    if "".join(words) != "".join(characters) or not all(words):
        raise LayerftError(
            f"{where}: column '{column}' does not spell the tokens' characters (spaces left out): "
            f"{' '.join(words)[:40]!r} vs {''.join(characters)[:40]!r}"
        )
    return words


def check_inside_tags(characters: list[str], tags: list[str], words: list[str], where: str) -> None:
    """Fail on an I- tag that continues no entity (after a tag of another type) within a word:
    the release reader refuses it as a lost or mistyped row, and the strict IOB2 metric would read
    it as no entity. At a word's start (the sentence's too) KLUE's gold has such tags, after a
    space that was tagged B- and dropped, so there they are kept, as the reader keeps them."""
    word_starts = set(itertools.accumulate((len(word) for word in words[:-1]), initial=0))
    for index, tag in enumerate(tags):
        before = tags[index - 1] if index else "O"
        if tag.startswith("I-") and before[2:] != tag[2:] and index not in word_starts:
            raise LayerftError(
                f"{where}: character {index + 1} ({characters[index]!r}): {tag} does not follow "
                f"B-{tag[2:]} or I-{tag[2:]} (previous tag {before}) within a word"
            )


STRICT_IOB2_METRICS = ("klue_ner",)  # seqeval's strict IOB2: only a B- tag opens an entity


def check_tag_order(
    task: TaskConfig, tokens: list[str], tags: list[str], words: list[str] | None, where: str
) -> None:
    """Characters with words: `check_inside_tags`. Otherwise, where a strict IOB2 metric scores
    the gold tags, fail on an I- that opens a chunk (IOB1): it would score no entity where the
    file means one (conlleval reads IOB1 as meant). KLUE-NER's release and hub rows pass."""
    if words is not None:
        check_inside_tags(tokens, tags, words, where)
        return
    strict = next((name for name in task.metrics if name in STRICT_IOB2_METRICS), None)
    if strict is None or (task.release_format == "klue_ner" and task.source != "data_files"):
        return
    for index, tag in enumerate(tags):
        before = tags[index - 1] if index else "O"
        if tag.startswith("I-") and before[2:] != tag[2:]:
            raise LayerftError(
                f"{where}: token {index + 1} ({shown(tokens[index])}): {tag} opens an entity "
                f"(previous tag {before}), but '{strict}' scores strict IOB2, where only "
                f"B-{tag[2:]} opens one; IOB1 tags? convert them to IOB2 (KLUE-NER's own, whose "
                "B- fell on a space: name its words column, tagging.words_column)"
            )


def untagged(
    task: TaskConfig, rows: list[Record], features: Dataset, split: str
) -> tuple[Untagged, Untagged]:
    """The words of `rows` without a tag position: cut by max_length, and with no subword."""
    unit = "character" if task.tagging.words_column is not None else "word"  # what is tagged
    cut, empty = Untagged(split, unit), Untagged(split, unit)
    for index, (row, words, ids) in enumerate(
        zip(rows, features["tagged_words"], features["input_ids"], strict=True)
    ):
        # Untagged words after the last tagged one were cut when the input is max_length long.
        last = words[-1] if words else -1
        for word in sorted(set(range(len(row["tags"]))) - set(words)):
            (cut if word > last and len(ids) >= task.max_length else empty).add(index, row, word)
    return cut, empty


@dataclass
class Untagged:
    """Words of one split without a tag position, for one warning: how many, in how many
    sentences."""

    split: str
    unit: str  # what a tag is of: "word", or "character" (tagging.words_column)
    words: int = 0
    sentences: set[int] = field(default_factory=set)
    first: str = ""

    def add(self, index: int, row: Record, word: int) -> None:
        self.words += 1
        self.sentences.add(index)
        if not self.first:  # its sentence, not its row: the rows are those kept, maybe sampled
            sentence = " ".join(row.get("words") or row["tokens"])
            self.first = (
                f"{self.unit} {word + 1} {shown(row['tokens'][word])} of the {self.split} sentence "
                f"{quoted(sentence, 50)}"
            )

    def count(self, why: str) -> str:
        return (
            f"{self.words} {self.unit}s in {len(self.sentences)} {self.split} sentences {why} "
            f"(first: {self.first})"
        )


NO_SUBWORD_FIX = "replace the characters the tokenizer removes (control, format, combining)"


@functools.cache  # once per task and count, not at every evaluation
def warn_untagged(task: str, what: str, fix: str) -> None:
    """Warn once that `what` of `task`'s words get no tag, how each metric scores them, and `fix`."""
    log.warning(
        "%s: %s and are not tagged: conlleval scores each as an \"O\" prediction against its gold "
        "tag, token_f1 and klue_ner leave them out (as KLUE-baseline); %s", task, what, fix,
    )  # fmt: skip
