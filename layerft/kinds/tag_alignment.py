"""How a tagging task's tags meet subword tokens: a word's tag on its first subword, or (KLUE-NER's
layout, `tagging.words_column`) a character's on the first token that starts there and back again;
and which words or characters get no token (cut by max_length, or with no subword) for the
warnings that say so.

Serves the `token_tagging` task kind (`layerft/kinds/token_tagging.py`).
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from layerft.errors import quoted
from layerft.kinds.base import Batch, Record

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
                f"{self.unit} {word + 1} {row['tokens'][word]!r} of the {self.split} sentence "
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
    log.warning(
        "%s: %s and are not tagged: conlleval scores each as an \"O\" prediction against its gold "
        "tag, token_f1 and klue_ner leave them out (as KLUE-baseline); %s", task, what, fix,
    )  # fmt: skip
