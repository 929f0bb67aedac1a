"""What a task kind is made of, and the record and batch helpers every kind shares.

A kind (`layerft/kinds/<kind>.py`) owns everything that differs between, say, sentence
classification and dependency parsing: the checks on its task config, the normalised record,
tokenization with label alignment, the collator, the head, and the step from raw dev predictions
to metric inputs. The rest of layerft (data sources, the phase runner, the stages) is kind-blind.

Serves the `injection_task` and `target_task` config groups through every kind (a task's `kind`).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from layerft.errors import LayerftError, shown

if TYPE_CHECKING:
    from datasets import Dataset
    from transformers import EvalPrediction, PreTrainedModel, PreTrainedTokenizerFast

    from layerft.task import TaskConfig


class TaskKind(str, Enum):
    sequence_classification = "sequence_classification"
    dependency_parsing = "dependency_parsing"
    sequence_regression = "sequence_regression"
    biencoder_regression = "biencoder_regression"
    relation_classification = "relation_classification"
    token_tagging = "token_tagging"
    span_extraction = "span_extraction"


Batch = dict[str, list[Any]]
Record = dict[str, Any]
Collator = Callable[[list[dict[str, Any]]], dict[str, Any]]
# metric input type (layerft.metrics.MetricInput value) -> keyword arguments of the metric module
MetricInputs = dict[str, dict[str, Any]]


@dataclass(frozen=True)
class Kind:
    """One task kind: the functions the kind-blind code calls, looked up once by `TaskKind`."""

    name: TaskKind
    # Metric input types this kind can produce (layerft.metrics.MetricInput values).
    provides: frozenset[str]
    # Batch keys holding labels: the Trainer gathers them into `label_ids` for evaluation.
    label_keys: tuple[str, ...]
    # The task config's nodes of kind settings it reads (`spans`); another kind's are unread.
    settings: frozenset[str]
    # Fail on task settings this kind cannot use (called when the config is built).
    check: Callable[[TaskConfig, str], None]
    # One raw record -> the kind's normalised record, or None for an unlabelled one (dropped).
    normalise: Callable[[TaskConfig, str, Record, str], Record | None]
    # A batched `datasets.map` function from normalised records to model features (batches also
    # hold `row_index`, each record's position in its split). Its output is cached under a key of
    # the records, tokenizer, max_length and kind settings (`tokenized.tokenized_key`): editing an
    # encoder's code, bump `tokenized.TOKENIZED_FORMAT_VERSION` or clear the cache.
    encoder: Callable[[TaskConfig, PreTrainedTokenizerFast], Callable[[Batch], Batch]]
    # Pads a list of features into a batch (`pad_to_multiple_of` may be None).
    collator: Callable[[PreTrainedTokenizerFast, int | None], Collator]
    # A fresh head for a backbone of this hidden size. It is called as `head(backbone, **batch)`
    # (it runs the encoder itself: `run_encoder`) and returns `head_output(loss, **predictions)`, the
    # loss None when the batch has no labels.
    build_head: Callable[[int, TaskConfig], nn.Module]
    # Dev predictions (in feature order) -> inputs of each metric input type it provides.
    metric_inputs: Callable[[TaskConfig, EvalPrediction, Dataset, list[Record]], MetricInputs]
    # Warns about normalised training records that miss something dev has (e.g. a class).
    check_coverage: Callable[[TaskConfig, str, list[Record], list[Record]], None] | None = None
    # Warns about what encoding lost of the normalised training records (given with their features).
    check_encoded: Callable[[TaskConfig, str, list[Record], Dataset], None] | None = None
    # The raw column whose text makes an example (None: every record is one): a record repeating
    # an earlier one's text in its split is left out before `normalise` (a silver tagger's corpus).
    distinct_text: Callable[[TaskConfig], str | None] | None = None
    # Metric inputs whose items are parts of a record (a tagger's words), not records:
    # dev_predictions.jsonl names no record beside them.
    part_inputs: frozenset[str] = frozenset()
    # A head of this kind reads a sentence through a pooler (dense+tanh on the first token): called
    # with a fresh head and the checkpoint's pooler dense layer under `model.pretrained_pooler`.
    start_from_pooler: Callable[[nn.Module, nn.Linear], None] | None = None


def field_of(record: Record, column: str, where: str) -> Any:
    """`record[column]`, or an error naming the record and the columns it has."""
    if column not in record:
        raise LayerftError(f"{where}: no column '{column}' (has {', '.join(map(str, record))})")
    return record[column]


def text_of(record: Record, column: str, where: str, blank_ok: bool = False) -> str:
    """`record[column]` when it is a string; not blank unless `blank_ok` (a blank text would
    train as [CLS] [SEP] without a word)."""
    text = field_of(record, column, where)
    if not isinstance(text, str):
        raise LayerftError(f"{where}: column '{column}' is not text: {shown(text)}")
    if not blank_ok and blank(text):
        raise LayerftError(
            f"{where}: column '{column}' is {blank_kind(text)}; fix or remove the record"
        )
    return text


def blank(text: str) -> bool:
    """Whether `text` is only spaces, control, format (U+200B) or combining characters (dropped)."""
    return all(c.isspace() or unicodedata.category(c)[0] in "CM" for c in text)


def blank_kind(text: str) -> str:
    """How a blank text is blank, for messages."""
    if text.strip():  # `blank` but not spaces only
        return f"blank (only characters tokenizers remove: {ascii(text[:6])})"
    return "empty" if not text else "blank (only spaces)"


def list_of(record: Record, column: str, kind: type, where: str) -> list[Any]:
    """`record[column]` as a non-empty list of `kind` values (bools are not ints); a blank
    string gets no subword, so its word's tag or head would vanish from training and scoring."""
    values = field_of(record, column, where)
    if not isinstance(values, list) or not values:
        raise LayerftError(f"{where}: column '{column}' must be a non-empty list")
    for index, value in enumerate(values, 1):
        if isinstance(value, bool) or not isinstance(value, kind):
            raise LayerftError(
                f"{where}: '{column}' word {index} is {shown(value)}, not {kind.__name__}"
            )
        if isinstance(value, str) and not value.strip():
            raise LayerftError(f"{where}: '{column}' word {index} is {blank_kind(value)}")
    return values


def run_encoder(
    backbone: PreTrainedModel,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor | None = None,
    token_type_ids: torch.Tensor | None = None,
) -> torch.Tensor:
    """The backbone's last hidden states, (batch, seq, hidden)."""
    return backbone(
        input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
    ).last_hidden_state


class HeadOutput(dict):
    """A head's output: `loss` (when labels were given) first, then the predictions in order.

    A dict, as the Trainer reads it (the predictions it gathers are the values after `loss`),
    whose entries also read as attributes (`out.loss`, `out.logits`), as transformers' outputs do.
    """

    def __getattr__(self, name: str) -> torch.Tensor:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


def head_output(loss: torch.Tensor | None, **predictions: torch.Tensor) -> HeadOutput:
    """The output of a head; no `loss` entry without labels."""
    return HeadOutput(({"loss": loss} if loss is not None else {}) | predictions)


@dataclass
class DropKeysCollator:
    """Pads a batch without the dataset columns that are no model input.

    `length` must stay in the dataset for the Trainer's length-grouped sampler (which reads it
    only if column removal left it there, and otherwise re-reads every example each time it
    builds a dataloader); kinds keep other bookkeeping columns (example ids, offsets) the same way.
    """

    pad: Collator
    drop: frozenset[str] = frozenset({"length"})

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        return self.pad([{k: v for k, v in f.items() if k not in self.drop} for f in features])


def logits_of(prediction: EvalPrediction) -> Any:
    """The first prediction array (heads return their main scores first)."""
    predictions = prediction.predictions
    return predictions[0] if isinstance(predictions, tuple) else predictions
