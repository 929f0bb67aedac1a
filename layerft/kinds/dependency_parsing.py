"""Dependency parsing over eojeols (KLUE-DP): a head and a relation per word, biaffine-scored.

Follows KLUE-baseline's DPTransformer (klue_baseline/models/dependency_parsing.py) and its
features (klue_baseline/data/klue_dp.py):
- a word is read from its first and last subwords' hidden states, concatenated (KLUE's
  `resize_outputs`; `parsing.word_subword` picks first or last alone), the root from [CLS];
- the POS tag of the word's last morpheme (POS split on '+', last) is an embedded input feature;
- a biaffine arc scorer over candidate heads (0 = root, i = the i-th word) and a bilinear
  relation classifier on (dependent, head) pairs (Dozat & Manning 2017); loss = arc cross-entropy
  + relation cross-entropy with the relation scored at the gold head, each averaged over words;
- decoding: head = argmax over the candidates, padding masked; self-loops are not masked (KLUE
  does not mask them either); relation = argmax at the predicted head.
KLUE's BiLSTM encoder and LSTM decoder between the transformer and the scorers are left out: the
scorers read the encoder directly, so stage 1 puts what parsing needs into the encoder's layers
(the point of injection) and the head stays cheap (see benchmarks/dp_head_speed.py).

Punctuation: KLUE-DP's units are eojeols, and punctuation belongs to the eojeol it touches
("보도했다."), so every eojeol is scored, as KLUE does. Truncation: eojeols whose first subword
falls past max_length are not scored, as in KLUE-baseline (its features stop at max_seq_length
and its metrics drop the -1 labels); `metric_inputs` warns with their number. An eojeol whose
gold head was cut off is still scored (its head can only be wrong, as in KLUE) but not trained on.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from layerft.errors import LayerftError
from layerft.kinds.base import (
    Batch,
    DropKeysCollator,
    HeadOutput,
    Kind,
    MetricInputs,
    Record,
    TaskKind,
    check_label_names,
    field_of,
    head_output,
    label_id,
    list_of,
    run_encoder,
)
from layerft.metrics import MetricInput
from layerft.readers_conll import check_tree

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
PADDING = -100  # gold and predicted word-level ids past a sentence's end (the Trainer's own pad)
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


class WordSubword(str, Enum):
    """Which subword hidden states stand for a word."""

    first = "first"
    last = "last"
    first_last = "first_last"  # both, concatenated (KLUE-baseline's bpe_head_mask/bpe_tail_mask)


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
                f"{where}, word {index} ({word!r}): POS {last!r} is not in {group}.parsing.pos_tags "
                f"({len(tags)} tags: {', '.join(tags[:8])}{', ...' if len(tags) > 8 else ''})"
            )
        ids.append(tags.index(last))
    return ids


def word_spans(
    word_ids: list[int | None], num_words: int, complete: bool
) -> tuple[list[int], list[int]]:
    """Token positions of each kept word's first and last subword.

    All words are kept when the encoding is `complete` (not truncated); else those up to the last
    word with a subword left. A word without subwords (the tokenizer dropped all its characters)
    borrows the position of the token before it.
    """
    starts: dict[int, int] = {}
    ends: dict[int, int] = {}
    for position, word in enumerate(word_ids):
        if word is not None:
            starts.setdefault(word, position)
            ends[word] = position
    kept = num_words if complete else max(starts, default=-1) + 1
    first, last, previous = [], [], 0  # 0: [CLS]
    for word in range(kept):
        previous = ends.get(word, previous)
        first.append(starts.get(word, previous))
        last.append(previous)
    return first, last


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


def mask_arcs(scores: torch.Tensor, word_mask: torch.Tensor) -> torch.Tensor:
    """Arc scores (batch, words, 1 + words) with padded candidate heads at the dtype's minimum."""
    candidates = torch.cat([word_mask.new_ones(word_mask.shape[0], 1), word_mask], 1)
    return scores.masked_fill(~candidates[:, None, :], torch.finfo(scores.dtype).min)


def decode(
    scores: torch.Tensor,
    word_mask: torch.Tensor,
    relation_scores: Callable[[torch.Tensor], torch.Tensor],
) -> tuple[torch.Tensor, torch.Tensor]:
    """(heads, relations), each (batch, words), -100 past each sentence: the best-scoring head
    in masked arc `scores`, then the best relation that `relation_scores(heads)` gives there."""
    heads = scores.argmax(-1)
    relations = relation_scores(heads).argmax(-1)
    return heads.masked_fill(~word_mask, PADDING), relations.masked_fill(~word_mask, PADDING)


def with_one(x: torch.Tensor) -> torch.Tensor:
    """(..., n) -> (..., n + 1): a constant 1 appended, for the biaffine terms' linear parts."""
    return torch.cat([x, x.new_ones(*x.shape[:-1], 1)], -1)


def _xavier(*shape: int) -> torch.Tensor:
    """A tensor of `shape` drawn as nn.init.xavier_uniform_ draws it (fans from that shape)."""
    return nn.init.xavier_uniform_(torch.empty(*shape))


class BiaffineParsingHead(nn.Module):
    """Biaffine arcs and bilinear relations over word vectors read from the encoder."""

    def __init__(
        self, hidden_size: int, num_relations: int, parsing: ParsingConfig, dropout: float
    ) -> None:
        super().__init__()
        self.subwords = parsing.word_subword
        self.root_pos = len(parsing.pos_tags)  # the root's own POS id, after the tags
        width = hidden_size * (2 if self.subwords == WordSubword.first_last else 1)
        self.pos = nn.Embedding(self.root_pos + 1, parsing.pos_dim) if parsing.pos_dim else None
        self.dropout = nn.Dropout(dropout)
        self.spaces = [parsing.arc_space, parsing.arc_space]
        self.spaces += [parsing.relation_space, parsing.relation_space]
        # The four MLPs (arc/relation x dependent/head) as one matmul.
        self.mlp = nn.Linear(width + parsing.pos_dim, sum(self.spaces))
        # Biaffine weights over [x; 1], so they hold the linear terms and biases too.
        # Arc: [dependent; 1] U head (the 1-row scores how likely a word heads anything).
        self.arc_weight = nn.Parameter(torch.empty(parsing.arc_space + 1, parsing.arc_space))
        # Relation r: [dependent; 1] U_r [head; 1], all relations as one matrix.
        self.num_relations = num_relations
        side = parsing.relation_space + 1
        self.relation_weight = nn.Parameter(torch.empty(side, num_relations * side))
        # Xavier-uniform, as KLUE-baseline's BiAttention and BiLinear, on the shapes they have there
        # (their fans set the range): U as (labels, dependent, head), each linear term as
        # (labels, features), the biases 0. Not Dozat & Manning's zeros: from tied scores, argmax
        # would follow an optimizer's first step of any size.
        arc, relation, labels = parsing.arc_space, parsing.relation_space, num_relations
        with torch.no_grad():
            self.arc_weight[:arc] = _xavier(1, arc, arc)[0]
            self.arc_weight[arc] = _xavier(1, arc)[0]  # the head's linear term
            blocks = self.relation_weight.view(side, labels, side)  # [dependent, r, head]
            blocks[:relation, :, :relation] = _xavier(labels, relation, relation).transpose(0, 1)
            blocks[:relation, :, relation] = _xavier(labels, relation).T  # the dependent's term
            blocks[relation, :, :relation] = _xavier(labels, relation)  # the head's term
            blocks[relation, :, relation] = 0.0  # the bias

    def word_vectors(
        self, hidden: torch.Tensor, starts: torch.Tensor, ends: torch.Tensor, pos_ids: torch.Tensor
    ) -> torch.Tensor:
        """(batch, seq, hidden) -> (batch, 1 + words, features): the root ([CLS]) then each word."""
        root = starts.new_zeros(starts.shape[0], 1)
        positions = {
            WordSubword.first: [starts],
            WordSubword.last: [ends],
            WordSubword.first_last: [starts, ends],
        }[self.subwords]
        parts = []
        for words in positions:
            index = torch.cat([root, words], 1)  # (batch, 1 + words)
            parts.append(hidden.gather(1, index[..., None].expand(-1, -1, hidden.shape[-1])))
        if self.pos is not None:
            parts.append(self.pos(torch.cat([root + self.root_pos, pos_ids], 1)))
        return torch.cat(parts, -1)

    def relation_scores(
        self, dependents: torch.Tensor, heads: torch.Tensor, chosen: torch.Tensor
    ) -> torch.Tensor:
        """Relation scores (batch, words, relations) of each word with the head `chosen` for it."""
        head = with_one(heads.gather(1, chosen[..., None].expand(-1, -1, heads.shape[-1])))
        # Not nn.Bilinear: its backward (trilinear) is ~40x slower on CPU than these matmuls.
        left = (with_one(dependents) @ self.relation_weight).unflatten(-1, (self.num_relations, -1))
        # (batch, words, relations, side) @ (batch, words, side, 1)
        return (left @ head[..., None]).squeeze(-1)

    def forward(
        self,
        backbone: nn.Module,
        word_starts: torch.Tensor,
        word_ends: torch.Tensor,
        word_mask: torch.Tensor,
        pos_ids: torch.Tensor,
        heads: torch.Tensor | None = None,
        deprels: torch.Tensor | None = None,
        **inputs: torch.Tensor,
    ) -> HeadOutput:
        hidden = run_encoder(backbone, **inputs)  # (batch, seq, hidden)
        x = self.dropout(self.word_vectors(hidden, word_starts, word_ends, pos_ids))
        projected = self.dropout(nn.functional.elu(self.mlp(x)))
        arc_dep, arc_head, rel_dep, rel_head = projected.split(self.spaces, -1)
        arc_dep, rel_dep = arc_dep[:, 1:], rel_dep[:, 1:]  # the root depends on nothing
        scores = (with_one(arc_dep) @ self.arc_weight) @ arc_head.transpose(1, 2)
        scores = mask_arcs(scores, word_mask)  # (batch, words, 1 + words)
        loss = None
        if heads is not None and deprels is not None:
            # Padding, and gold heads cut off by truncation (no vector to score them at).
            known = (heads >= 0) & (heads <= word_mask.sum(1, keepdim=True))
            words = known.sum().clamp(min=1)
            arc_loss = nn.functional.cross_entropy(
                scores.flatten(0, 1).float(), heads.masked_fill(~known, PADDING).flatten(),
                ignore_index=PADDING, reduction="sum",
            )  # fmt: skip
            relations = self.relation_scores(rel_dep, rel_head, heads.masked_fill(~known, 0))
            relation_loss = nn.functional.cross_entropy(
                relations.flatten(0, 1).float(), deprels.masked_fill(~known, PADDING).flatten(),
                ignore_index=PADDING, reduction="sum",
            )  # fmt: skip
            loss = (arc_loss + relation_loss) / words
            if self.training:
                return head_output(loss)  # the Trainer reads no predictions while training
        predicted, relations = decode(
            scores, word_mask, functools.partial(self.relation_scores, rel_dep, rel_head)
        )
        return head_output(loss, heads=predicted, relations=relations)


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
    }


@functools.cache  # once per task and count, not at every evaluation
def _warn_cut(task: str, max_length: int, words: int, sentences: int) -> None:
    log.warning(
        "%s: %d eojeols in %d dev sentences lie past max_length=%d and are not scored (as in "
        "KLUE-baseline); raise max_length to score them", task, words, sentences, max_length,
    )  # fmt: skip


KIND = Kind(
    name=TaskKind.dependency_parsing,
    provides=frozenset({MetricInput.arcs}),
    label_keys=("heads", "deprels"),
    check=check,
    normalise=normalise,
    encoder=encoder,
    collator=collator,
    build_head=build_head,
    metric_inputs=metric_inputs,
)
