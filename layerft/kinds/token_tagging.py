"""Token tagging (POS, NER, morphology): a tag per word, read from the word's first subword.

How tags meet subwords (and characters, KLUE-NER's layout) is `layerft/kinds/tag_alignment.py`.

Serves the `injection_task` and `target_task` config groups (`kind: token_tagging`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from layerft.errors import LayerftError
from layerft.kinds.base import (
    DropKeysCollator,
    HeadOutput,
    Kind,
    MetricInputs,
    Record,
    TaskKind,
    field_of,
    head_output,
    list_of,
    logits_of,
    run_encoder,
    text_of,
)
from layerft.kinds.labels import check_label_names, label_id
from layerft.kinds.tag_alignment import (
    NO_SUBWORD_FIX,
    character_encoder,
    character_tags,
    check_tag_order,
    untagged,
    warn_untagged,
    word_encoder,
    words_of,
)
from layerft.metrics import MetricInput
from layerft.morph import silver_morphemes

if TYPE_CHECKING:
    from datasets import Dataset
    from transformers import EvalPrediction, PreTrainedTokenizerFast

    from layerft.task import TaskConfig

log = logging.getLogger(__name__)


class SilverTagger(str, Enum):
    kiwi = "kiwi"  # Kiwi's morphemes and POS tags (kiwipiepy, the `korean` extra)


@dataclass
class TaggingConfig:
    """Tagging settings: gold tags from the data, or silver ones from an analyser."""

    # Set: tokens and tags come from this analyser run over text_columns[0] of each record, so
    # any Korean corpus (a target task's own) can be the injection corpus.
    silver: SilverTagger | None = None
    # Set: the tokens are the characters of a text (its spaces left out) and this column holds
    # its words (the text split at whitespace). The encoder reads the words, as the text is
    # written, and tags each subword by its first character; a prediction spreads back over the
    # subword's characters (its B- as I- past the first), as KLUE-baseline does for KLUE-NER.
    words_column: str | None = None


def check(task: TaskConfig, where: str) -> None:
    """A tag set; one text column when tags are silver."""
    check_label_names(task, where)
    if task.tagging.words_column is not None:
        if task.tagging.silver is not None:
            raise LayerftError(f"{where}: set tagging.words_column or tagging.silver, not both")
        inside = [f"I-{tag[2:]}" for tag in task.label_names if tag.startswith("B-")]
        if "O" not in task.label_names or not inside:
            raise LayerftError(
                f"{where}: tagging.words_column spreads a subword's tag over its characters: "
                "label_names must be BIO tags (O, B-<type>, I-<type>)"
            )
        if missing := [tag for tag in inside if tag not in task.label_names]:
            raise LayerftError(
                f"{where}: tagging.words_column: label_names lack {', '.join(missing)}, the tag "
                "a B- subword gives its later characters"
            )
    if task.tagging.silver is not None and len(task.text_columns) != 1:
        raise LayerftError(
            f"{where}: text_columns must name the 1 column the silver tagger reads, got "
            f"{task.text_columns}"
        )


def normalise(task: TaskConfig, group: str, record: Record, where: str) -> Record:
    """{"tokens": [str], "tags": [tag id]}, one tag per token."""
    if task.tagging.silver is not None:
        tokens, tags = silver_morphemes([text_of(record, task.text_columns[0], where)])[0]
    else:
        tokens = list_of(record, task.tokens_column, str, where)
        tags = field_of(record, task.tags_column, where)
    if not isinstance(tags, list) or len(tokens) != len(tags):
        raise LayerftError(
            f"{where}: '{task.tokens_column}' and '{task.tags_column}' must be lists of equal length"
        )
    normalised = {"tokens": tokens, "tags": [label_id(t, task, group, where) for t in tags]}
    names = [task.label_names[tag] for tag in normalised["tags"]]
    if task.tagging.words_column is not None:
        normalised["words"] = words_of(task.tagging.words_column, record, tokens, where)
    check_tag_order(task, tokens, names, normalised.get("words"), where)
    return normalised


def distinct_text(task: TaskConfig) -> str | None:
    """A silver tagger's examples are the distinct texts of its column: the same text gets the
    same tags, so a repeat (KLUE-NLI's release gives each premise for three hypotheses) would
    only weight it more."""
    return task.text_columns[0] if task.tagging.silver is not None else None


def encoder(task: TaskConfig, tokenizer: PreTrainedTokenizerFast):  # noqa: ANN201 - see Kind
    """Pre-split words -> subword ids, tags aligned to first subwords as `labels` (with
    `tagging.words_column`: the words -> subwords, tagged by their first characters)."""
    if task.tagging.words_column is not None:
        return character_encoder(task, tokenizer)
    return word_encoder(task, tokenizer)


def collator(
    tokenizer: PreTrainedTokenizerFast, pad_to_multiple_of: int | None
) -> DropKeysCollator:
    """Pad input ids, and labels with -100; the tagged words are for metric_inputs only."""
    from transformers import DataCollatorForTokenClassification  # here: a config needs none of it

    return DropKeysCollator(
        DataCollatorForTokenClassification(tokenizer, pad_to_multiple_of=pad_to_multiple_of),
        drop=frozenset({"length", "tagged_words", "char_start", "char_end"}),
    )


class TaggingHead(nn.Module):
    """A linear tag classifier on every token; labels of -100 (non-first subwords) are ignored."""

    def __init__(self, hidden_size: int, num_labels: int, dropout: float) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(hidden_size, num_labels)

    def forward(
        self, backbone: nn.Module, labels: torch.Tensor | None = None, **inputs: torch.Tensor
    ) -> HeadOutput:
        logits = self.classifier(
            self.dropout(run_encoder(backbone, **inputs))
        )  # (batch, seq, tags)
        loss = None
        if labels is not None:
            loss = nn.functional.cross_entropy(
                logits.flatten(0, 1), labels.flatten(), ignore_index=-100
            )
        return head_output(loss, logits=logits)


def build_head(hidden_size: int, task: TaskConfig) -> nn.Module:
    """A fresh tagging head."""
    return TaggingHead(hidden_size, len(task.label_names), task.head_dropout)


def metric_inputs(
    task: TaskConfig, prediction: EvalPrediction, features: Dataset, rows: list[Record]
) -> MetricInputs:
    """Argmax tags at the scored positions: flat ids, and tag strings per sentence, of the tagged
    words only and of every word (an untagged word as an "O" prediction)."""
    predicted = np.asarray(logits_of(prediction)).argmax(-1)  # (batch, seq)
    names = np.asarray(task.label_names)
    if task.tagging.words_column is not None:  # the tokens' tags spread over their characters
        tagged, gold = [], []
        for row, tokens, starts, ends in zip(
            rows, predicted, features["char_start"], features["char_end"], strict=True
        ):
            by_character = character_tags(starts, ends, names[tokens[: len(starts)]].tolist())
            tagged.append([by_character[c] for c in sorted(by_character)])
            gold.append([names[row["tags"][c]] for c in sorted(by_character)])
    else:
        labels = np.asarray(prediction.label_ids)
        keep = labels != -100
        tagged = [names[p[k]].tolist() for p, k in zip(predicted, keep, strict=True)]
        gold = [names[r[k]].tolist() for r, k in zip(labels, keep, strict=True)]
    every_pred: list[list[str]] = []
    for row, words, tags in zip(rows, features["tagged_words"], tagged, strict=True):
        sentence = ["O"] * len(row["tags"])
        for word, tag in zip(words, tags, strict=True):
            sentence[word] = tag
        every_pred.append(sentence)
    index = {name: i for i, name in enumerate(task.label_names)}
    cut, empty = untagged(task, rows, features, "dev")
    if cut.words:
        warn_untagged(task.name, cut.count(f"lie past max_length={task.max_length}"),
                       "raise max_length to tag them")  # fmt: skip
    if empty.words:
        warn_untagged(task.name, empty.count("have no subword"), NO_SUBWORD_FIX)
    return {
        MetricInput.class_ids: {
            "predictions": [index[tag] for sentence in tagged for tag in sentence],
            "references": [index[tag] for sentence in gold for tag in sentence],
        },
        # KLUE-baseline scores only the characters that fit (its gold is cut to the predictions),
        # so klue_ner and token_f1 read the tagged words.
        MetricInput.tag_sequences: {"predictions": tagged, "references": gold},
        # conlleval defines its score over every token: an untagged word keeps its gold chunk in
        # the recall's denominator.
        MetricInput.every_word_tags: {
            "predictions": every_pred,
            "references": [names[row["tags"]].tolist() for row in rows],
        },
    }


def check_encoded(task: TaskConfig, group: str, rows: list[Record], features: Dataset) -> None:
    """Warns about training words with no subword: their tags are never trained on (words past
    max_length are cut as in any truncated input)."""
    _, empty = untagged(task, rows, features, "training")
    if empty.words:
        log.warning(
            "%s '%s': %s and are not trained on; %s", group, task.name,
            empty.count("have no subword"), NO_SUBWORD_FIX,
        )  # fmt: skip


KIND = Kind(
    name=TaskKind.token_tagging,
    provides=frozenset(
        {MetricInput.class_ids, MetricInput.tag_sequences, MetricInput.every_word_tags}
    ),
    part_inputs=frozenset({MetricInput.class_ids}),  # its words
    label_keys=("labels",),
    settings=frozenset({"tagging"}),
    check=check,
    normalise=normalise,
    encoder=encoder,
    collator=collator,
    build_head=build_head,
    metric_inputs=metric_inputs,
    check_encoded=check_encoded,
    distinct_text=distinct_text,
)
