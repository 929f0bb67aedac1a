"""Task data: a task's records (read and checked by `layerft/records.py`) capped, checked as data
sets (repeats, dev examples copied from train, label coverage) and tokenized (cached across runs,
`layerft/tokenized.py`).

Every source ends in the same raw records; the task's kind (`layerft/kinds/`) normalises them
(e.g. sequence classification -> {"text_a", "text_b"?, "label"}; token tagging -> {"tokens",
"tags"}), encodes them and pads them. This module is kind-blind.

Serves the `injection_task` and `target_task` config groups (`TaskConfig`) for `layerft/run.py`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from datasets import Dataset
from transformers import PreTrainedTokenizerFast

from layerft.errors import LayerftError
from layerft.kinds import kind_of
from layerft.kinds.base import Collator, Record
from layerft.records import read_split, sourced_rows
from layerft.task import SPLITS, TaskConfig
from layerft.tokenized import tokenize, tokenized_key

log = logging.getLogger(__name__)


@dataclass
class EvalSplit:
    """A further dev set (`extra_eval_splits`): its tokenized features and normalised records,
    and where each record was in its split (`records.source_of`)."""

    features: Dataset
    rows: list[Record]
    sources: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class TaskData:
    """Tokenized train and validation sets, the collator that pads them per batch, and the
    normalised validation records (metrics that score examples, not features, read them) with
    where each was in its split (`records.source_of`: dev_predictions.jsonl names them so)."""

    train: Dataset
    validation: Dataset
    collator: Collator
    validation_rows: list[Record]
    validation_sources: list[dict[str, Any]] = field(default_factory=list)
    # The task's extra_eval_splits by name, scored with the best checkpoint.
    extra_eval: dict[str, EvalSplit] = field(default_factory=dict)
    # A hash of every split's examples as tokenized (part of a stored stage 1's key).
    content: str = ""


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
    rows, sources = _checked_rows(task, group, seed)
    kind = kind_of(task)
    records = {split: Dataset.from_list(split_rows) for split, split_rows in rows.items()}
    keys = {split: tokenized_key(dataset, task, tokenizer) for split, dataset in records.items()}
    tokenized = {
        split: tokenize(dataset, task, tokenizer, cache_dir, keys[split])
        for split, dataset in records.items()
    }
    if kind.check_encoded is not None:
        kind.check_encoded(task, group, rows["train"], tokenized["train"])
    return TaskData(
        tokenized["train"],
        tokenized["validation"],
        kind.collator(tokenizer, pad_to_multiple_of),
        rows["validation"],
        sources["validation"],
        {
            name: EvalSplit(tokenized[name], rows[name], sources[name])
            for name in task.extra_eval_splits
        },
        hashlib.sha256(json.dumps(keys, sort_keys=True).encode()).hexdigest()[:24],
    )


def _checked_rows(
    task: TaskConfig, group: str, seed: int
) -> tuple[dict[str, list[Record]], dict[str, list[dict[str, Any]]]]:
    """Each split's records read, checked and capped (`seed` picks the rows kept), and where each
    kept one was in its split."""
    if task.source == "data_files" and task.data_dir:
        log.warning(
            "%s: data_files is set, so %s.data_dir=%s is not read (the first source set is; "
            "%s.data_files.train=null %s.data_files.validation=null unsets the files)",
            group, group, task.data_dir, group, group,
        )  # fmt: skip
    raw = {split: read_split(task, group, split) for split in (*SPLITS, *task.extra_eval_splits)}
    if task.source == "generator":
        raw["validation"] = _drop_seen(raw["train"], raw["validation"])
    elif task.source in ("data_files", "data_dir"):
        train_file, dev_file = (Path(raw[split][1]).resolve() for split in SPLITS)
        if train_file == dev_file:
            log.warning(
                "%s: train and validation are the same file (%s): dev scores will measure the "
                "training data",
                group,
                train_file,
            )
    rows, sources = {}, {}
    for split, (records, origin) in raw.items():
        limit = task.max_train_samples if split == "train" else task.max_eval_samples
        kept = select_rows(sourced_rows(task, group, records, origin), limit, seed)
        sources[split], rows[split] = [place for place, _ in kept], [row for _, row in kept]
        if not rows[split]:
            raise LayerftError(f"{group} '{task.name}': {origin} has no labelled records")
        log.info("%s %s: %d examples from %s", group, split, len(rows[split]), origin)
    if task.source != "generator":  # its dev set already leaves out what train holds
        _warn_repeats(group, rows)
    kind = kind_of(task)
    if kind.check_coverage is not None:
        kind.check_coverage(task, group, rows["train"], rows["validation"])
    return rows, sources


def select_rows(rows: list[Any], limit: int | None, seed: int) -> list[Any]:
    """A seeded random `limit` of `rows`, in file order (files are often sorted by label)."""
    if limit is None or limit >= len(rows):
        return rows
    kept = sorted(random.Random(seed).sample(range(len(rows)), limit))
    return [rows[i] for i in kept]


def _identity(record: dict[str, Any]) -> str:
    """A record's content, whatever the order of its columns: equal for copies."""
    return repr(sorted(record.items()))


def _drop_seen(
    train: tuple[list[dict[str, Any]], str], validation: tuple[list[dict[str, Any]], str]
) -> tuple[list[dict[str, Any]], str]:
    # A grammar repeats short sentences; scoring on sentences seen in training would flatter.
    seen = {_identity(r) for r in train[0]}
    return [r for r in validation[0] if _identity(r) not in seen], validation[1]


def _warn_repeats(group: str, rows: dict[str, list[dict[str, Any]]]) -> None:
    """Say how many examples each split repeats within itself, and each evaluation split shares
    with train (same text and label): a file concatenated twice or merged badly trains or scores
    its records twice, and a dev set holding training examples flatters its scores."""
    identities = {split: [_identity(r) for r in split_rows] for split, split_rows in rows.items()}
    seen = set(identities["train"])
    for split, split_rows in identities.items():
        repeats = len(split_rows) - len(set(split_rows))
        if repeats:
            log.warning(
                "%s %s: %d of %d examples repeat an earlier example of the split (same text and "
                "label); unless the data set holds such repeats, a file was concatenated twice or "
                "merged badly",
                group, split, repeats, len(split_rows),
            )  # fmt: skip
        copies = 0 if split == "train" else sum(i in seen for i in split_rows)
        if copies:
            log.warning(
                "%s %s: %d of %d examples are copies of training examples (same text and "
                "label); their scores measure memory, not generalisation",
                group, split, copies, len(split_rows),
            )  # fmt: skip
