"""The dependency parser's head: biaffine arcs and bilinear relations over word vectors (Dozat &
Manning 2017, as KLUE-baseline's DPTransformer scores them), its decoding, and where in the
subwords it reads each word:
- a word is read from its first and last subwords' hidden states, concatenated (KLUE's
  `resize_outputs`; `parsing.word_subword` picks first or last alone), the root from [CLS];
- a biaffine arc scorer over candidate heads (0 = root, i = the i-th word) and a bilinear
  relation classifier on (dependent, head) pairs; loss = arc cross-entropy + relation
  cross-entropy with the relation scored at the gold head, each averaged over words;
- decoding: head = argmax over the candidates, padding masked; self-loops are not masked (KLUE
  does not mask them either); relation = argmax at the predicted head.
KLUE's BiLSTM encoder and LSTM decoder between the transformer and the scorers are left out: the
scorers read the encoder directly, so stage 1 puts what parsing needs into the encoder's layers
(the point of injection) and the head stays cheap (see benchmarks/dp_head_speed.py).

Serves the `dependency_parsing` task kind (`layerft/kinds/dependency_parsing.py`), whose
`<task>.parsing` settings (ParsingConfig) size it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from enum import Enum
from typing import TYPE_CHECKING

import torch
from torch import nn

from layerft.kinds.base import HeadOutput, head_output, run_encoder

if TYPE_CHECKING:
    from layerft.kinds.dependency_parsing import ParsingConfig

PADDING = -100  # gold and predicted word-level ids past a sentence's end (the Trainer's own pad)


class WordSubword(str, Enum):
    """Which subword hidden states stand for a word."""

    first = "first"
    last = "last"
    first_last = "first_last"  # both, concatenated (KLUE-baseline's bpe_head_mask/bpe_tail_mask)


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
        self.subwords = WordSubword(parsing.word_subword)
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
