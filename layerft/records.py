"""A task's records: each split read from its source (local files, a release folder, the hub, the
demo generator) and checked against the task by its kind (`layerft/kinds/`), with every fault
placed at its file, line and record. `layerft/data.py` caps, checks and tokenizes them.

Serves the `injection_task` and `target_task` config groups (`TaskConfig`): where a task's data
comes from and which columns hold what.
"""

from __future__ import annotations

import logging
import unicodedata
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import datasets
from datasets import load_dataset

from layerft.demo_data import DEMO_GENERATORS
from layerft.errors import LayerftError, first_line
from layerft.kinds import kind_of
from layerft.kinds.base import Record
from layerft.network import hub_cache_hint, hub_unreachable
from layerft.readers import HUB_ADAPTERS, RELEASE_READERS, read_records
from layerft.record_errors import placed, spaced
from layerft.task import SPLITS, TaskConfig

log = logging.getLogger(__name__)


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
    origin = f"{_hub_name(task)}[{hub_split}]"
    if (unreachable := _unreachable_hub_error(task, group, origin)) is not None:
        raise unreachable
    try:
        dataset = load_dataset(task.hub_id, task.hub_config, split=hub_split)
    except Exception as err:  # noqa: BLE001 - any failure here means "not reachable"; say what to do
        raise _hub_dataset_error(task, group, origin, first_line(err)) from err
    # The hub's rows of a KLUE task are laid out differently from its release files; convert
    # them to the records the release reader gives, so the kind sees one shape.
    convert = HUB_ADAPTERS.get(task.release_format)
    return (dataset.to_list() if convert is None else convert(dataset.to_list())), origin


def hub_data_error(task: TaskConfig, group: str) -> LayerftError | None:
    """The run's error for a hub dataset it cannot load, as a plan can tell without loading it:
    offline, one the local cache does not hold (datasets resolves it from its cache or fails at
    once, reading no data); online, an unreachable hub (the run's own probe). Else None."""
    if task.hub_id is None:
        return None
    origin = _hub_name(task)
    if not datasets.config.HF_HUB_OFFLINE:
        return _unreachable_hub_error(task, group, origin)
    try:
        datasets.load_dataset_builder(task.hub_id, task.hub_config)
    except Exception as err:  # noqa: BLE001 - any failure here means "not in the cache"
        return _hub_dataset_error(task, group, origin, first_line(err))
    return None


def _hub_name(task: TaskConfig) -> str:
    """`<hub_id>` or `<hub_id>/<hub_config>`, as messages name a hub dataset."""
    return f"{task.hub_id}" + (f"/{task.hub_config}" if task.hub_config else "")


def _unreachable_hub_error(task: TaskConfig, group: str, origin: str) -> LayerftError | None:
    """Online, the hub not answering (asked once per process), or None. datasets' offline mode
    fails fast and reads the HF cache by itself; online mode retries an unreachable hub for half
    a minute, so the hub is asked first."""
    reason = None if datasets.config.HF_HUB_OFFLINE else hub_unreachable()
    return None if reason is None else _hub_dataset_error(task, group, origin, reason)


def _hub_dataset_error(task: TaskConfig, group: str, origin: str, reason: str) -> LayerftError:
    # data_dir only for a task with a release layout (release_files), named by its files.
    files = [name for name in task.release_files.values() if name]
    release = f"or {group}.data_dir=<folder with {', '.join(files)}>, " if files else ""
    return LayerftError(
        f"{group} '{task.name}': could not load hub dataset {origin} ({reason}); offline, set "
        f"{group}.data_files.train=... {group}.data_files.validation=... (json/jsonl/csv/tsv/parquet), "
        f"{release}or use the demo tasks (injection_task=demo_pos, target_task=demo_sentiment), "
        f"{hub_cache_hint(datasets.config.HF_HUB_OFFLINE)}"
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
                raise placed(LayerftError(message), task, group, origin, number)
            row[new] = value
        renamed.append(row)
    return renamed


def _own_text_columns(task: TaskConfig) -> list[str]:
    """The file's own names of the task's text columns (the task names them as renamed)."""
    rename = task.release_rename
    return [
        own for own in (*rename, *task.text_columns) if rename.get(own, own) in task.text_columns
    ]


def source_of(number: int, record: dict[str, Any]) -> dict[str, Any]:
    """A record's place in its split: its number (1 for the first) and its id where it has one
    (KLUE's guid, SQuAD's id, NSMC's, a number), as messages and dev_predictions.jsonl name it."""
    guid = record.get("guid", record.get("id"))
    named = isinstance(guid, str) or type(guid) is int
    return {"record": number, **({"id": guid} if named else {})}


def _in_nfc(value: Any) -> bool:
    """Whether a row's text (a string, or a list of them) is in Unicode NFC."""
    texts = value if isinstance(value, list) else [value]
    return all(unicodedata.is_normalized("NFC", t) for t in texts if isinstance(t, str))


def _where(origin: str, number: int, record: dict[str, Any]) -> str:
    """A record's place in messages: its file, number and guid."""
    source = source_of(number, record)
    return f"{origin}: record {number}" + (f" ({source['id']})" if "id" in source else "")


def normalise_records(
    task: TaskConfig, group: str, records: Iterable[Record], origin: str
) -> list[Record]:
    """Check every record against the task's columns and labels; drop and count unlabelled rows."""
    return [row for _, row in sourced_rows(task, group, records, origin)]


def sourced_rows(
    task: TaskConfig, group: str, records: Iterable[Record], origin: str
) -> list[tuple[dict[str, Any], Record]]:
    """`normalise_records`, each row with its record's place in the split (`source_of`)."""
    kind = kind_of(task)
    normalise = kind.normalise
    distinct = None if kind.distinct_text is None else kind.distinct_text(task)
    rows: list[tuple[dict[str, Any], Record]] = []
    texts: set[str] = set()
    unlabelled = repeats = decomposed = 0
    for number, record in enumerate(records, start=1):
        if distinct is not None and isinstance(text := record.get(distinct), str):
            if text in texts:
                repeats += 1
                continue
            texts.add(text)
        try:
            row = normalise(task, group, record, _where(origin, number, record))
        except LayerftError as err:
            raise placed(spaced(err, record), task, group, origin, number) from None
        if row is None:
            unlabelled += 1
        else:
            rows.append((source_of(number, record), row))
            decomposed += not all(map(_in_nfc, row.values()))
    if unlabelled:
        blank = " or blank-text" if task.drop_blank_texts else ""
        log.info("%s: dropped %d unlabelled%s records", origin, unlabelled, blank)
    if decomposed:
        log.warning(
            "%s: %d of %d records hold text not in Unicode NFC (letters decomposed, as macOS may "
            "write them: Korean as separate jamo); a tokenizer that does not normalize reads them "
            "as other tokens than the composed letters its vocabulary holds: convert the file to "
            "NFC (Python's unicodedata.normalize('NFC', text))",
            origin, decomposed, len(rows),
        )  # fmt: skip
    if repeats:
        log.info(
            "%s: left out %d records whose '%s' repeats an earlier record's: %s '%s' reads each "
            "distinct text once",
            origin, repeats, distinct, group, task.name,
        )  # fmt: skip
    return rows
