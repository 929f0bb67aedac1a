"""Dependency parsing over eojeols (KLUE-DP): a head and a relation per word, biaffine-scored.

Follows KLUE-baseline's DPTransformer (klue_baseline/models/dependency_parsing.py) and its
features (klue_baseline/data/klue_dp.py); the head, loss, decoding and what they leave out of
KLUE's model are `layerft/kinds/biaffine.py`. The last morpheme's POS tag is an input feature.

Punctuation: KLUE-DP's units are eojeols, and punctuation belongs to the eojeol it touches
("보도했다."), so every eojeol is scored, as KLUE does. Truncation: eojeols whose first subword
falls past max_length get no head: klue_dp skips them (KLUE-baseline's metrics drop them), and
ud_attachment counts them wrong (CoNLL 2018 scores every gold word); `metric_inputs` warns. An
eojeol whose gold head was cut off is scored (its head can only be wrong) but not trained on.

Serves the `injection_task` and `target_task` config groups (`kind: dependency_parsing`).
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from layerft.errors import LayerftError, shown
from layerft.kinds.base import (
    Batch,
    DropKeysCollator,
    Kind,
    MetricInputs,
    Record,
    TaskKind,
    field_of,
    list_of,
)
from layerft.kinds.biaffine import PADDING, BiaffineParsingHead, WordSubword, word_spans
from layerft.kinds.labels import check_label_names, label_id
from layerft.metrics import MetricInput
from layerft.readers_conllu import check_tree

if TYPE_CHECKING:
    from datasets import Dataset
    from transformers import DataCollatorWithPadding, EvalPrediction, PreTrainedTokenizerFast

    from layerft.task import TaskConfig

log = logging.getLogger(__name__)

# The Sejong tag set as KLUE-DP uses it (MM split into MMA/MMD/MMN), as in klue_pos.yaml.
KLUE_POS_TAGS: tuple[str, ...] = (
    "NNG", "NNP", "NNB", "NP", "NR", "VV", "VA", "VX", "VCP", "VCN", "MMA", "MMD", "MMN", "MAG",
    "MAJ", "IC", "JKS", "JKC", "JKG", "JKO", "JKB", "JKV", "JKQ", "JX", "JC", "EP", "EF", "EC",
    "ETN", "ETM", "XPN", "XSN", "XSV", "XSA", "XR", "SF", "SP", "SS", "SE", "SO", "SW", "SL", "SH",
    "SN", "NA", "NF", "NV",
)  # fmt: skip
TOKEN_KEYS = ("input_ids", "attention_mask", "token_type_ids")
# Word-level feature -> its padding value (positions 0 and tag 0 are valid; `word_mask` says
# which words are real).
WORD_PADDING = {
    "word_starts": 0,
    "word_ends": 0,
    "pos_ids": 0,
    "heads": PADDING,
    "deprels": PADDING,
}


@dataclass
class ParsingConfig:
    """`<task>.parsing`: the parser head's settings (KLUE-baseline's defaults)."""

    word_subword: WordSubword = WordSubword.first_last
    # Record column of the POS feature: KLUE-DP's `pos`; a CoNLL-U treebank's `upos` or `xpos`.
    pos_column: str = "pos"
    # Tags of the last morpheme's POS feature; a word whose tag is not listed stops the run.
    pos_tags: list[str] = field(default_factory=lambda: list(KLUE_POS_TAGS))
    pos_dim: int = 256  # 0: no POS feature (KLUE-baseline's --no_pos)
    arc_space: int = 512
    relation_space: int = 256


def check(task: TaskConfig, where: str) -> None:
    """Relations as label_names; head sizes and a POS tag list the head can be built from."""
    check_label_names(task, where)
    parsing = task.parsing
    if parsing.pos_dim < 0:
        raise LayerftError(f"{where}: parsing.pos_dim must be >= 0, got {parsing.pos_dim}")
    for key in ("arc_space", "relation_space"):
        if getattr(parsing, key) < 1:
            raise LayerftError(f"{where}: parsing.{key} must be >= 1, got {getattr(parsing, key)}")
    if parsing.pos_dim and not parsing.pos_tags:
        raise LayerftError(f"{where}: parsing.pos_tags is empty (set parsing.pos_dim=0 for no POS)")
    if len(set(parsing.pos_tags)) != len(parsing.pos_tags):
        raise LayerftError(f"{where}: parsing.pos_tags has duplicates")


def normalise(task: TaskConfig, group: str, record: Record, where: str) -> Record:
    """{"words": [str], "pos": [pos id], "heads": [int], "deprels": [relation id]}, one per eojeol."""
    words = list_of(record, "words", str, where)
    pos = list_of(record, task.parsing.pos_column, str, where)
    heads = list_of(record, "heads", int, where)
    deprels = field_of(record, "deprels", where)
    if not isinstance(deprels, list) or not len(words) == len(pos) == len(heads) == len(deprels):
        raise LayerftError(
            f"{where}: 'words', '{task.parsing.pos_column}', 'heads' and 'deprels' differ in length"
        )
    for index, head in enumerate(heads, 1):
        if not 0 <= head <= len(words):
            raise LayerftError(f"{where}: word {index} has head {head}, outside 0..{len(words)}")
    # No word its own head and no cycle, for records from any source (a jsonl of them, the hub),
    # as the release readers check theirs; a second root is left to them (KLUE-DP and UD have one
    # per sentence; other treebanks may not).
    wheres = [f"{where}, word {index}" for index in range(1, len(heads) + 1)]
    check_tree(heads, wheres, one_root=False)
    return {
        "words": words,
        "pos": pos_ids(task, group, words, pos, where),
        "heads": heads,
        "deprels": [
            label_id(d, task, group, f"{where}, word {i}") for i, d in enumerate(deprels, 1)
        ],
    }


def pos_ids(
    task: TaskConfig, group: str, words: list[str], pos: list[str], where: str
) -> list[int]:
    """Each word's POS feature id: its last morpheme's tag (KLUE; UPOS has no '+'); all 0 when the
    head has no POS feature. An unlisted tag stops the run, as it does in klue_pos: mapping it to a
    shared "unknown" id hid a wrong tag set or a corrupted column."""
    if not task.parsing.pos_dim:
        return [0] * len(words)
    tags = task.parsing.pos_tags
    ids = []
    for index, (word, tag) in enumerate(zip(words, pos, strict=True), 1):
        last = tag.split("+")[-1]
        if last not in tags:
            raise LayerftError(
                f"{where}, word {index} ({shown(word)}): POS {shown(last)} is not in "
                f"{group}.parsing.pos_tags "
                f"({len(tags)} tags: {', '.join(tags[:8])}{', ...' if len(tags) > 8 else ''})"
            )
        ids.append(tags.index(last))
    return ids


def encoder(task: TaskConfig, tokenizer: PreTrainedTokenizerFast):  # noqa: ANN201 - see Kind
    """Eojeols -> subword ids, plus per kept word its subword positions, POS, head and relation."""

    def encode(batch: Batch) -> Batch:
        encoded = tokenizer(
            batch["words"], is_split_into_words=True, truncation=True, max_length=task.max_length
        )
        columns: dict[str, list[list[int]]] = {key: [] for key in WORD_PADDING}
        for i, words in enumerate(batch["words"]):
            complete = not encoded.encodings[i].overflowing
            starts, ends = word_spans(encoded.word_ids(i), len(words), complete)
            kept = len(starts)
            columns["word_starts"].append(starts)
            columns["word_ends"].append(ends)
            for key, source in (("pos_ids", "pos"), ("heads", "heads"), ("deprels", "deprels")):
                columns[key].append(batch[source][i][:kept])
        encoded.update(columns)
        return encoded

    return encode


@dataclass
class ParsingCollator:
    """Pads token-level inputs with the tokenizer, word-level ones to the batch's most words."""

    tokens: DataCollatorWithPadding

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        batch = self.tokens([{k: f[k] for k in TOKEN_KEYS if k in f} for f in features])
        counts = [len(f["heads"]) for f in features]
        width = max(counts)
        for key, fill in WORD_PADDING.items():
            batch[key] = torch.tensor(
                [f[key] + [fill] * (width - n) for f, n in zip(features, counts, strict=True)],
                dtype=torch.long,
            ).view(len(features), width)  # (batch, words), also when no sentence kept a word
        batch["word_mask"] = torch.arange(width) < torch.tensor(counts)[:, None]
        return batch


def collator(
    tokenizer: PreTrainedTokenizerFast, pad_to_multiple_of: int | None
) -> DropKeysCollator:
    """Pad subword ids per batch and word-level features per batch (golds with -100)."""
    from transformers import DataCollatorWithPadding  # here: a config needs none of transformers

    return DropKeysCollator(
        ParsingCollator(DataCollatorWithPadding(tokenizer, pad_to_multiple_of=pad_to_multiple_of))
    )


def build_head(hidden_size: int, task: TaskConfig) -> nn.Module:
    """A fresh parser head."""
    return BiaffineParsingHead(hidden_size, len(task.label_names), task.parsing, task.head_dropout)


def metric_inputs(
    task: TaskConfig, prediction: EvalPrediction, features: Dataset, rows: list[Record]
) -> MetricInputs:
    """Predicted and gold heads and relation ids per sentence, over the scored (kept) eojeols."""
    predicted_heads, predicted_relations = (np.asarray(p) for p in prediction.predictions)
    gold_heads, gold_relations = (np.asarray(g) for g in prediction.label_ids)
    scored = gold_heads != PADDING  # (sentences, words)
    cut = [len(r["heads"]) - int(s.sum()) for r, s in zip(rows, scored, strict=True)]
    if any(cut):
        _warn_cut(task.name, task.max_length, sum(cut), sum(map(bool, cut)))
    return {
        MetricInput.arcs: {
            name: [row[keep].tolist() for row, keep in zip(values, scored, strict=True)]
            for name, values in (
                ("predictions", predicted_heads),
                ("predicted_relations", predicted_relations),
                ("references", gold_heads),
                ("reference_relations", gold_relations),
            )
        }
        | {"cut_words": cut}
    }


@functools.cache  # once per task and count, not at every evaluation
def _warn_cut(task: str, max_length: int, words: int, sentences: int) -> None:
    log.warning(
        "%s: %d eojeols in %d dev sentences lie past max_length=%d (raise it to parse them): "
        "klue_dp skips them (as KLUE-baseline), ud_attachment counts them wrong", task, words,
        sentences, max_length,
    )  # fmt: skip


KIND = Kind(
    name=TaskKind.dependency_parsing,
    provides=frozenset({MetricInput.arcs}),
    label_keys=("heads", "deprels"),
    settings=frozenset({"parsing"}),
    check=check,
    normalise=normalise,
    encoder=encoder,
    collator=collator,
    build_head=build_head,
    metric_inputs=metric_inputs,
)
