"""Task data: read a task's source, check and normalise its records, tokenize them (cached across
runs, `layerft/tokenized.py`).

Every source ends in the same raw records; the task's kind (`layerft/kinds/`) normalises them
(e.g. sequence classification -> {"text_a", "text_b"?, "label"}; token tagging -> {"tokens",
"tags"}), encodes them and pads them. This module is kind-blind.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import datasets
from datasets import Dataset, load_dataset
from transformers import PreTrainedTokenizerFast

from layerft.demo_data import DEMO_GENERATORS
from layerft.errors import LayerftError
from layerft.kinds import kind_of
from layerft.kinds.base import Collator, Record
from layerft.network import first_line, hub_cache_hint, hub_unreachable
from layerft.readers import HUB_ADAPTERS, RELEASE_READERS, record_line
from layerft.readers_records import read_records
from layerft.task import SPLITS, TaskConfig
from layerft.tokenized import tokenize, tokenized_key

log = logging.getLogger(__name__)


@dataclass
class EvalSplit:
    """A further dev set (`extra_eval_splits`): its tokenized features and normalised records."""

    features: Dataset
    rows: list[Record]


@dataclass
class TaskData:
    """Tokenized train and validation sets, the collator that pads them per batch, and the
    normalised validation records (metrics that score examples, not features, read them)."""

    train: Dataset
    validation: Dataset
    collator: Collator
    validation_rows: list[Record]
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
    rows = {}
    for split, (records, origin) in raw.items():
        limit = task.max_train_samples if split == "train" else task.max_eval_samples
        rows[split] = select_rows(normalise_records(task, group, records, origin), limit, seed)
        if not rows[split]:
            raise LayerftError(f"{group} '{task.name}': {origin} has no labelled records")
        log.info("%s %s: %d examples from %s", group, split, len(rows[split]), origin)
    if task.source != "generator":  # its dev set already leaves out what train holds
        _warn_repeats(group, rows)
    kind = kind_of(task)
    if kind.check_coverage is not None:
        kind.check_coverage(task, group, rows["train"], rows["validation"])
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
        {name: EvalSplit(tokenized[name], rows[name]) for name in task.extra_eval_splits},
        hashlib.sha256(json.dumps(keys, sort_keys=True).encode()).hexdigest()[:24],
    )


def select_rows(rows: list[dict[str, Any]], limit: int | None, seed: int) -> list[dict[str, Any]]:
    """A seeded random `limit` of `rows`, in file order (files are often sorted by label)."""
    if limit is None or limit >= len(rows):
        return rows
    kept = sorted(random.Random(seed).sample(range(len(rows)), limit))
    return [rows[i] for i in kept]


def read_split(task: TaskConfig, group: str, split: str) -> tuple[list[dict[str, Any]], str]:
    """Raw records of one split and a name for where they came from (used in messages)."""
    source = task.source
    if source in ("data_files", "data_dir"):
        path = task.existing_file(group, split)
        file_format = "records" if source == "data_files" else task.release_format
        return _read_file(task, group, path, file_format), str(path)
    if source == "generator":
        if split not in SPLITS:
            raise LayerftError(
                f"{group}: a generated task has no '{split}' split (extra_eval_splits)"
            )
        # Fixed seeds: the demo data is part of the task, not of the run's randomness.
        seed = SPLITS.index(split)
        assert task.generator is not None  # `source` said so; the name was checked in TaskConfig
        return DEMO_GENERATORS[task.generator](
            task.generator_sizes[split], seed
        ), f"{task.generator}:{split}"
    return _read_hub_split(task, group, split)


def _read_hub_split(task: TaskConfig, group: str, split: str) -> tuple[list[dict[str, Any]], str]:
    hub_split = task.hub_splits.get(split)
    if not hub_split:
        raise LayerftError(f"{group}.hub_splits.{split} is not set")
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
    # The hub's rows of a KLUE task are laid out differently from its release files; convert
    # them to the records the release reader gives, so the kind sees one shape.
    convert = HUB_ADAPTERS.get(task.release_format)
    return (dataset.to_list() if convert is None else convert(dataset.to_list())), origin


def _hub_dataset_error(task: TaskConfig, group: str, origin: str, reason: str) -> LayerftError:
    # data_dir only for a task with a release layout (release_files), named by its files.
    files = [name for name in task.release_files.values() if name]
    release = f"or {group}.data_dir=<folder with {', '.join(files)}>, " if files else ""
    return LayerftError(
        f"{group} '{task.name}': could not load hub dataset {origin} ({reason}); offline, set "
        f"{group}.data_files.train=... {group}.data_files.validation=... (json/jsonl/csv/tsv/parquet), "
        f"{release}or use the demo tasks (injection_task=demo_pos, target_task=demo_sentiment), "
        f"{hub_cache_hint()}"
    )


def _read_file(task: TaskConfig, group: str, path: Path, read_as: str) -> list[dict[str, Any]]:
    """A local file's records, read by the `read_as` release reader and renamed."""
    if read_as == "records":  # csv or tsv: the text columns stay text (a text of digits)
        records = read_records(path, text_columns=_own_text_columns(task))
    else:
        records = RELEASE_READERS[read_as](path)
    return _renamed(task, group, records, str(path))


def _renamed(
    task: TaskConfig, group: str, records: list[dict[str, Any]], origin: str
) -> list[dict[str, Any]]:
    """A local file's records with their columns renamed by `release_rename` (the hub's rows are
    in the layout the task names already); a rename onto a column the record has is an error,
    since keeping either of the two would silently train on a column nobody chose."""
    mapping = task.release_rename
    if not mapping:
        return records
    renamed = []
    for number, record in enumerate(records, start=1):
        row: dict[str, Any] = {}
        for own, value in record.items():
            new = mapping.get(own, own)
            if new in row:
                other = next(k for k in record if k != own and mapping.get(k, k) == new)
                moved, kept = (own, other) if own != new else (other, own)
                also = "" if kept == new else f", renamed to '{new}' too"
                message = (
                    f"{_where(origin, number, record)}: {group}.release_rename renames '{moved}' "
                    f"to '{new}', but the record also has '{kept}'{also}; remove one of the two "
                    f"columns from the file or change {group}.release_rename"
                )
                raise _placed(LayerftError(message), task, group, origin, number)
            row[new] = value
        renamed.append(row)
    return renamed


def _own_text_columns(task: TaskConfig) -> list[str]:
    """The file's own names of the task's text columns (the task names them as renamed)."""
    rename = task.release_rename
    return [
        own for own in (*rename, *task.text_columns) if rename.get(own, own) in task.text_columns
    ]


def _where(origin: str, number: int, record: dict[str, Any]) -> str:
    """A record's place in messages: its file, number and guid."""
    guid = record.get("guid", record.get("id"))  # KLUE's guid, SQuAD's id, NSMC's (a number)
    named = isinstance(guid, str) or type(guid) is int
    return f"{origin}: record {number}" + (f" ({guid})" if named else "")


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


def normalise_records(
    task: TaskConfig, group: str, records: Iterable[Record], origin: str
) -> list[Record]:
    """Check every record against the task's columns and labels; drop and count unlabelled rows."""
    kind = kind_of(task)
    normalise = kind.normalise
    distinct = None if kind.distinct_text is None else kind.distinct_text(task)
    rows: list[Record] = []
    texts: set[str] = set()
    unlabelled = repeats = 0
    for number, record in enumerate(records, start=1):
        if distinct is not None and isinstance(text := record.get(distinct), str):
            if text in texts:
                repeats += 1
                continue
            texts.add(text)
        try:
            row = normalise(task, group, record, _where(origin, number, record))
        except LayerftError as err:
            raise _placed(err, task, group, origin, number) from None
        if row is None:
            unlabelled += 1
        else:
            rows.append(row)
    if unlabelled:
        blank = " or blank-text" if task.drop_blank_texts else ""
        log.info("%s: dropped %d unlabelled%s records", origin, unlabelled, blank)
    if repeats:
        log.info(
            "%s: left out %d records whose '%s' repeats an earlier record's: %s '%s' reads each "
            "distinct text once",
            origin, repeats, distinct, group, task.name,
        )  # fmt: skip
    return rows


def _placed(
    err: LayerftError, task: TaskConfig, group: str, origin: str, number: int
) -> LayerftError:
    """A record's error with the line the record starts on in its file (the kinds know only its
    number), and the file's own name of a column a release renames."""
    message = str(err)
    read_as = {"data_files": "records", "data_dir": task.release_format}.get(task.source)
    line = None if read_as is None else record_line(Path(origin), read_as, number)
    if line is not None:
        message = message.replace(f"{origin}: record", f"{origin}:{line}: record", 1)
    for own, renamed in task.release_rename.items() if read_as is not None else ():
        if f"no column '{renamed}'" in message:
            message += f" ('{renamed}' is {group}.release_rename of the file's '{own}')"
    return LayerftError(message)
