"""A split's records tokenized without padding (collators pad per batch), cached across runs in
`cache_dir` under a hash of their content, the tokenizer and the encoding settings.

Serves the task groups (`injection_task`, `target_task`) for `layerft/data.py`; the task's kind
(`layerft/kinds/`) does the encoding.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import is_dataclass
from pathlib import Path

import pyarrow as pa
from datasets import Dataset
from transformers import PreTrainedTokenizerFast

from layerft.errors import LayerftError, first_line
from layerft.kinds import kind_of
from layerft.kinds.base import Batch
from layerft.model import tokenizer_fingerprint_source
from layerft.task import TaskConfig

log = logging.getLogger(__name__)


TOKENIZED_FORMAT_VERSION = "4"  # bump when tokenization changes, to invalidate cached files


def tokenized_key(dataset: Dataset, task: TaskConfig, tokenizer: PreTrainedTokenizerFast) -> str:
    """A hash of the tokenized examples' content: the records, the tokenizer and the encoding
    settings (kind, max_length, the kind's settings; another kind's, which no encoder of this one
    reads, at their defaults); a change to an encoder's code bumps TOKENIZED_FORMAT_VERSION."""
    read = kind_of(task).settings
    return hashlib.sha256(
        "\0".join(
            [
                TOKENIZED_FORMAT_VERSION,
                dataset._fingerprint,  # content hash of the normalised records
                tokenizer_fingerprint_source(tokenizer),
                task.kind.value,
                str(task.max_length),
                # Every kind's settings node (spans, tagging, ...), unread ones at their defaults:
                # the key a task's data had before other kinds' settings were unread settings.
                *(
                    repr(value if name in read else type(value)())
                    for name, value in vars(task).items()
                    if is_dataclass(value)
                ),
            ]
        ).encode()
    ).hexdigest()[:24]


def tokenize(
    dataset: Dataset,
    task: TaskConfig,
    tokenizer: PreTrainedTokenizerFast,
    cache_dir: Path,
    key: str | None = None,
) -> Dataset:
    """Tokenize without padding (collators pad per batch); the result is cached across runs under
    its `tokenized_key` (`key`, when the caller has it already: it serialises the tokenizer)."""
    path = cache_dir / f"{key or tokenized_key(dataset, task, tokenizer)}.arrow"
    cached = _read_cached(path, len(dataset))
    if cached is not None:
        return cached
    return _write_cached(dataset, _encoder(task, tokenizer), path, f"tokenizing {task.name}")


def _encoder(
    task: TaskConfig, tokenizer: PreTrainedTokenizerFast
) -> Callable[[Batch, list[int]], Batch]:
    """The batched `datasets.map` function: the kind's encoding plus each feature's length.

    The kind also sees `row_index`, each record's position in its split: a kind that makes several
    features of one record (context windows) points them back at it.
    """
    kind_encode = kind_of(task).encoder(task, tokenizer)

    def encode(batch: Batch, indices: list[int]) -> Batch:
        encoded = kind_encode({**batch, "row_index": indices})
        encoded["length"] = [len(ids) for ids in encoded["input_ids"]]  # for length-grouped batches
        return encoded

    return encode


def _write_cached(
    dataset: Dataset, encode: Callable[[Batch, list[int]], Batch], path: Path, desc: str
) -> Dataset:
    """Map `dataset` into the cache entry `path` atomically and return the entry."""
    # Map into a folder of its own beside the entry, then rename: a run killed mid-write, or two
    # jobs writing the same entry, never leave a partial file under the entry's name; a failed
    # write (a full disk) leaves nothing, datasets' own temporary file (tmpXXXXXXXX) included.
    folder = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        folder = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.stem}."))
        dataset.map(
            encode,
            batched=True,
            with_indices=True,
            remove_columns=dataset.column_names,
            cache_file_name=str(folder / path.name),
            load_from_cache_file=False,
            desc=desc,
        )
        os.replace(folder / path.name, path)
    except OSError as err:
        raise LayerftError(
            f"cannot write tokenized data into cache_dir folder {path.parent} "
            f"({err.strerror or err}); set cache_dir=<a writable folder>"
        ) from err
    finally:
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)
    return Dataset.from_file(str(path))


def _read_cached(path: Path, rows: int) -> Dataset | None:
    """The cached tokenization at `path`, or None when it is absent or broken (then rebuilt)."""
    if not path.is_file():
        return None
    try:
        cached = Dataset.from_file(str(path))
    except (OSError, pa.ArrowException) as err:
        reason = first_line(err)
    else:
        found = len(cached)
        if "example_index" in cached.column_names and found:  # several features per record
            found = cached[-1]["example_index"] + 1
        if found == rows:
            return cached
        reason = f"{found} records, expected {rows}"
    log.warning("%s: broken tokenization cache entry (%s); rebuilding it", path, reason)
    return None
