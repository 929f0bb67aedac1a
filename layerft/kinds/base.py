"""What a task kind is made of, and the record and batch helpers every kind shares.

A kind (`layerft/kinds/<kind>.py`) owns everything that differs between, say, sentence
classification and dependency parsing: the checks on its task config, the normalised record,
tokenization with label alignment, the collator, the head, and the step from raw dev predictions
to metric inputs. The rest of layerft (data sources, the phase runner, the stages) is kind-blind.

Serves the `injection_task` and `target_task` config groups through every kind (a task's `kind`).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from layerft.errors import LayerftError

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
        raise LayerftError(f"{where}: column '{column}' is not text: {text!r}")
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
                f"{where}: '{column}' word {index} is {value!r}, not {kind.__name__}"
            )
        if isinstance(value, str) and not value.strip():
            raise LayerftError(f"{where}: '{column}' word {index} is {blank_kind(value)}")
    return values


def label_id(value: Any, task: TaskConfig, group: str, where: str) -> int:
    """A label given as a name or as an index into label_names (bools are neither). When some names
    are integers (`[-1, 0, 1]`, star ratings), an integer label is a name, never an index: a CSV
    column of such names reads as numbers, and reading 1 as the index of the name "0" would shift
    every class. A whole float (2.0) is that integer (see `whole_number`), unless some names are
    floats' texts (`[-1.0, 0.0, 1.0]`): then a float label is one of them, or an integer's name
    (`1.0` among `[0, 0.5, 1]`), never an index."""
    names = task.label_names
    integer = whole_number(value)
    if isinstance(value, float) and any(re.fullmatch(FLOAT_TEXT, name) for name in names):
        if str(value) in names:
            return names.index(str(value))
        if integer is None or str(integer) not in names:  # 1.0 among [0, 0.5, 1] is "1"
            integer = None
    if integer is not None and numeric_label_names(task):
        if str(integer) in names:
            return names.index(str(integer))
    elif isinstance(value, str) and value in names:
        return names.index(value)
    elif integer is not None and 0 <= integer < len(names):
        return integer
    booleans = {"True", "False"} & set(names)
    raise LayerftError(
        f"{where}: label {value!r} is not in {group}.label_names "
        f"({len(names)} labels: {', '.join(names[:8])}{', ...' if len(names) > 8 else ''})"
        + (": YAML reads unquoted yes, no, on, off as booleans; quote them" if booleans else "")
    )


FLOAT_TEXT = r"[+-]?([0-9]+\.[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?|[+-]?[0-9]+[eE][+-]?[0-9]+"


def whole_number(value: Any) -> int | None:
    """`value` as an int where it is a whole number (an int, not a bool, or a float such as 2.0),
    else None. pandas stores an integer column that holds a null as floats, so its parquet, jsonl
    and csv files write class 2 as 2.0 (and the null as null: an unlabelled record)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def numeric_label_names(task: TaskConfig) -> bool:
    """Whether a label name is an integer's text, so that integer labels are names."""
    return any(re.fullmatch(r"[+-]?[0-9]+", name) for name in task.label_names)


def check_label_names(task: TaskConfig, where: str) -> None:
    """A classification-like kind needs at least two distinct labels."""
    if len(task.label_names) < 2:
        raise LayerftError(f"{where}: label_names needs at least 2 labels")
    if len(set(task.label_names)) != len(task.label_names):
        raise LayerftError(f"{where}: label_names has duplicates")


def check_label_unread(task: TaskConfig, where: str) -> None:
    """The label column is none of the text columns: the model would read the answer."""
    if task.label_column in task.text_columns:
        raise LayerftError(
            f"{where}: text_columns {task.text_columns} include label_column "
            f"'{task.label_column}': the model would read the answer"
        )


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
