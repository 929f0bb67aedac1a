"""Task data: read a task's source, check and normalise its records, tokenize with a cross-run cache.

Every source ends in the same normalised records, so only the task kind changes the code path:
sequence classification -> {"text_a", "text_b"?, "label"}; token tagging -> {"tokens", "tags"}.
"""

from __future__ import annotations

import hashlib
import logging
import os
import random
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import datasets
import pyarrow as pa
from datasets import Dataset, load_dataset
from transformers import (
    DataCollatorForTokenClassification,
    DataCollatorWithPadding,
    PreTrainedTokenizerFast,
)

from layerft.demo_data import DEMO_GENERATORS
from layerft.errors import LayerftError
from layerft.model import first_line, hub_unreachable, tokenizer_fingerprint_source
from layerft.readers import RELEASE_READERS, read_records
from layerft.task import TaskConfig, TaskKind

log = logging.getLogger(__name__)

SPLITS = ("train", "validation")
TOKENIZED_FORMAT_VERSION = "1"  # bump when tokenization changes, to invalidate cached files


@dataclass
class TaskData:
    """Tokenized train and validation sets with the collator that pads them per batch."""

    train: Dataset
    validation: Dataset
    collator: Callable[[list[dict[str, Any]]], dict[str, Any]]


def load_task_data(
    task: TaskConfig,
    group: str,
    tokenizer: PreTrainedTokenizerFast,
    cache_dir: Path,
    pad_to_multiple_of: int | None = None,
    *,
    seed: int,
) -> TaskData:
    """Read, check, cap and tokenize both splits of `task` (`group` names it in messages).

    `seed` (the run's) picks the rows kept under max_train_samples / max_eval_samples.
    """
    raw = {split: read_split(task, group, split) for split in SPLITS}
    if task.source == "generator":
        raw["validation"] = _drop_seen(raw["train"], raw["validation"])
    rows = {}
    for split, (records, origin) in raw.items():
        limit = task.max_train_samples if split == "train" else task.max_eval_samples
        rows[split] = select_rows(normalise_records(task, group, records, origin), limit, seed)
        if not rows[split]:
            raise LayerftError(f"{group} '{task.name}': {origin} has no labelled records")
        log.info("%s %s: %d examples from %s", group, split, len(rows[split]), origin)
    if task.kind == TaskKind.sequence_classification:
        warn_missing_classes(task, group, rows["train"], rows["validation"])
    tokenized = {
        split: tokenize(Dataset.from_list(split_rows), task, tokenizer, cache_dir)
        for split, split_rows in rows.items()
    }
    pad: Callable[[list[dict[str, Any]]], dict[str, Any]]
    if task.kind == TaskKind.token_tagging:
        pad = DataCollatorForTokenClassification(tokenizer, pad_to_multiple_of=pad_to_multiple_of)
    else:
        pad = DataCollatorWithPadding(tokenizer, pad_to_multiple_of=pad_to_multiple_of)
    return TaskData(tokenized["train"], tokenized["validation"], DropLengthCollator(pad))


def select_rows(rows: list[dict[str, Any]], limit: int | None, seed: int) -> list[dict[str, Any]]:
    """A seeded random `limit` of `rows`, in file order (files are often sorted by label)."""
    if limit is None or limit >= len(rows):
        return rows
    kept = sorted(random.Random(seed).sample(range(len(rows)), limit))
    return [rows[i] for i in kept]


def warn_missing_classes(
    task: TaskConfig, group: str, train: list[dict[str, Any]], validation: list[dict[str, Any]]
) -> None:
    """Warn when training has no example of a class that dev scores (a sorted file, a small cap)."""
    missing = {r["label"] for r in validation} - {r["label"] for r in train}
    if missing:
        names = ", ".join(task.label_names[i] for i in sorted(missing))
        log.warning(
            "%s train: no examples of %s, which validation has (%d training examples)",
            group, names, len(train),
        )  # fmt: skip


@dataclass
class DropLengthCollator:
    """Pads a batch without the `length` column.

    `length` must stay in the dataset for the Trainer's length-grouped sampler (which reads it
    only if column removal left it there, and otherwise re-reads every example each time it
    builds a dataloader), but it is no model input.
    """

    pad: Callable[[list[dict[str, Any]]], dict[str, Any]]

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        return self.pad([{k: v for k, v in f.items() if k != "length"} for f in features])


def read_split(task: TaskConfig, group: str, split: str) -> tuple[list[dict[str, Any]], str]:
    """Raw records of one split and a name for where they came from (used in messages)."""
    source = task.source
    if source == "data_files":
        path = task.data_files.get(split)
        if not path:
            raise LayerftError(
                f"{group}.data_files.{split} is not set (give a file for every split)"
            )
        resolved = Path(path).expanduser()
        return read_records(resolved), str(resolved)
    if source == "data_dir":
        name = task.release_files.get(split)
        if not name:
            raise LayerftError(f"{group}.release_files.{split} is not set")
        if task.release_format not in RELEASE_READERS:
            known = ", ".join(RELEASE_READERS)
            raise LayerftError(
                f"{group}.release_format '{task.release_format}' unknown; use one of {known}"
            )
        path = Path(task.data_dir or "").expanduser() / name
        records = RELEASE_READERS[task.release_format](path)
        return [_rename(r, task.release_rename) for r in records], str(path)
    if source == "generator":
        if task.generator not in DEMO_GENERATORS:
            known = ", ".join(DEMO_GENERATORS)
            raise LayerftError(f"{group}.generator '{task.generator}' unknown; use one of {known}")
        # Fixed seeds: the demo data is part of the task, not of the run's randomness.
        seed = SPLITS.index(split)
        return DEMO_GENERATORS[task.generator](
            task.generator_sizes[split], seed
        ), f"{task.generator}:{split}"
    return _read_hub_split(task, group, split)


def _read_hub_split(task: TaskConfig, group: str, split: str) -> tuple[list[dict[str, Any]], str]:
    hub_split = task.hub_splits[split]
    origin = (
        f"{task.hub_id}" + (f"/{task.hub_config}" if task.hub_config else "") + f"[{hub_split}]"
    )
    # datasets' offline mode fails fast and reads the HF cache by itself; online mode retries an
    # unreachable hub for half a minute, so ask the hub once first.
    reason = None if datasets.config.HF_HUB_OFFLINE else hub_unreachable()
    if reason is not None:
        raise _hub_dataset_error(task, group, origin, reason)
    try:
        dataset = load_dataset(task.hub_id, task.hub_config, split=hub_split)
    except Exception as err:  # noqa: BLE001 - any failure here means "not reachable"; say what to do
        raise _hub_dataset_error(task, group, origin, first_line(err)) from err
    return dataset.to_list(), origin


def _hub_dataset_error(task: TaskConfig, group: str, origin: str, reason: str) -> LayerftError:
    return LayerftError(
        f"{group} '{task.name}': could not load hub dataset {origin} ({reason}); offline, set "
        f"{group}.data_files.train=... {group}.data_files.validation=... (json/jsonl/csv/tsv/parquet), "
        f"or {group}.data_dir=... for a KLUE release folder, or use the demo tasks "
        "(injection_task=demo_pos, target_task=demo_sentiment), or set HF_HUB_OFFLINE=1 to load "
        "it from the Hugging Face cache"
    )


def _rename(record: dict[str, Any], mapping: dict[str, str]) -> dict[str, Any]:
    return {mapping.get(k, k): v for k, v in record.items()}


def _drop_seen(
    train: tuple[list[dict[str, Any]], str], validation: tuple[list[dict[str, Any]], str]
) -> tuple[list[dict[str, Any]], str]:
    # A grammar repeats short sentences; scoring on sentences seen in training would flatter.
    seen = {repr(sorted(r.items())) for r in train[0]}
    return [r for r in validation[0] if repr(sorted(r.items())) not in seen], validation[1]


def normalise_records(
    task: TaskConfig, group: str, records: Iterable[dict[str, Any]], origin: str
) -> list[dict[str, Any]]:
    """Check every record against the task's columns and label set; drop and count unlabelled rows."""
    label_index = {name: i for i, name in enumerate(task.label_names)}
    rows: list[dict[str, Any]] = []
    unlabelled = 0
    for number, record in enumerate(records, start=1):
        where = f"{origin}: record {number}"
        if task.kind == TaskKind.sequence_classification:
            label = _field(record, task.label_column, where)
            if label is None or label == -1:
                unlabelled += 1
                continue
            row = {"label": _label_id(label, label_index, task, group, where)}
            for key, column in zip(("text_a", "text_b"), task.text_columns, strict=False):
                text = _field(record, column, where)
                if not isinstance(text, str):
                    raise LayerftError(f"{where}: column '{column}' is not text: {text!r}")
                row[key] = text
        else:
            tokens = _field(record, task.tokens_column, where)
            tags = _field(record, task.tags_column, where)
            if (
                not isinstance(tokens, list)
                or not isinstance(tags, list)
                or len(tokens) != len(tags)
            ):
                raise LayerftError(
                    f"{where}: '{task.tokens_column}' and '{task.tags_column}' must be lists of equal length"
                )
            ids = [_label_id(tag, label_index, task, group, where) for tag in tags]
            row = {"tokens": [str(t) for t in tokens], "tags": ids}
        rows.append(row)
    if unlabelled:
        log.info("%s: dropped %d unlabelled records", origin, unlabelled)
    return rows


def _field(record: dict[str, Any], column: str, where: str) -> Any:
    if column not in record:
        raise LayerftError(f"{where}: no column '{column}' (has {', '.join(map(str, record))})")
    return record[column]


def _label_id(
    value: Any, label_index: dict[str, int], task: TaskConfig, group: str, where: str
) -> int:
    """A label given as a name or as an index into label_names (bools are neither)."""
    if isinstance(value, str) and value in label_index:
        return label_index[value]
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < len(label_index):
        return value
    raise LayerftError(
        f"{where}: label {value!r} is not in {group}.label_names "
        f"({len(label_index)} labels: {', '.join(task.label_names[:8])}"
        f"{', ...' if len(label_index) > 8 else ''})"
    )


def tokenize(
    dataset: Dataset, task: TaskConfig, tokenizer: PreTrainedTokenizerFast, cache_dir: Path
) -> Dataset:
    """Tokenize without padding (collators pad per batch); the result is cached across runs."""
    key = hashlib.sha256(
        "\0".join(
            [
                TOKENIZED_FORMAT_VERSION,
                dataset._fingerprint,  # content hash of the normalised records
                tokenizer_fingerprint_source(tokenizer),
                task.kind.value,
                str(task.max_length),
            ]
        ).encode()
    ).hexdigest()[:24]
    path = cache_dir / f"{key}.arrow"
    cached = _read_cached(path, len(dataset))
    if cached is not None:
        return cached
    return _write_cached(dataset, _encoder(task, tokenizer), path, f"tokenizing {task.name}")


Batch = dict[str, list[Any]]


def _encoder(task: TaskConfig, tokenizer: PreTrainedTokenizerFast) -> Callable[[Batch], Batch]:
    """The batched `datasets.map` function that encodes records of the task's kind."""

    def encode_pairs(batch: Batch) -> Batch:
        texts = [batch["text_a"]] + ([batch["text_b"]] if "text_b" in batch else [])
        encoded = tokenizer(*texts, truncation=True, max_length=task.max_length)
        encoded["labels"] = batch["label"]
        return encoded

    def encode_words(batch: Batch) -> Batch:
        encoded = tokenizer(
            batch["tokens"], is_split_into_words=True, truncation=True, max_length=task.max_length
        )
        # Only the first subword of each word carries its tag; the rest are ignored (-100).
        encoded["labels"] = [
            _first_subword_labels(encoded.word_ids(i), tags) for i, tags in enumerate(batch["tags"])
        ]
        return encoded

    def encode(batch: Batch) -> Batch:
        kind_encode = encode_words if task.kind == TaskKind.token_tagging else encode_pairs
        encoded = kind_encode(batch)
        encoded["length"] = [len(ids) for ids in encoded["input_ids"]]  # for length-grouped batches
        return encoded

    return encode


def _write_cached(
    dataset: Dataset, encode: Callable[[Batch], Batch], path: Path, desc: str
) -> Dataset:
    """Map `dataset` into the cache entry `path` atomically and return the entry."""
    # Map into a temporary name beside the entry, then rename: a run killed mid-write, or two
    # jobs writing the same entry, never leave a partial file under the entry's name.
    temporary = path.with_name(f"{path.stem}.{uuid.uuid4().hex}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        dataset.map(
            encode,
            batched=True,
            remove_columns=dataset.column_names,
            cache_file_name=str(temporary),
            load_from_cache_file=False,
            desc=desc,
        )
        os.replace(temporary, path)
    except OSError as err:
        raise LayerftError(
            f"cannot write tokenized data into cache_dir folder {path.parent} "
            f"({err.strerror or err}); set cache_dir=<a writable folder>"
        ) from err
    return Dataset.from_file(str(path))


def _read_cached(path: Path, rows: int) -> Dataset | None:
    """The cached tokenization at `path`, or None when it is absent or broken (then rebuilt)."""
    if not path.is_file():
        return None
    try:
        cached = Dataset.from_file(str(path))
    except (OSError, pa.ArrowException) as err:
        reason = str(err).splitlines()[0]
    else:
        if len(cached) == rows:
            return cached
        reason = f"{len(cached)} rows, expected {rows}"
    log.warning("%s: broken tokenization cache entry (%s); rebuilding it", path, reason)
    return None


def _first_subword_labels(word_ids: list[int | None], tags: list[int]) -> list[int]:
    labels, previous = [], None
    for word in word_ids:
        labels.append(-100 if word is None or word == previous else tags[word])
        previous = word
    return labels
