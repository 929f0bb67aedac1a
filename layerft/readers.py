"""Readers behind a task's data: local `data_files` by extension, release files by
`release_format`, hub rows by the task's hub adapter: the registries. Each source's readers are in
their own module (`readers_records`, `readers_delimited`, `readers_klue`, `readers_klue_tsv`, `readers_klue_ner`,
`readers_glue`, `readers_squad`, `readers_conll`, `readers_conllu`).

Every malformed input raises LayerftError with one line naming the file and, for text formats,
the line number, so a user can open the file at the fault.

Serves the task config groups' `data_files` and `release_format` (release files and hub rows):
`layerft/records.py` reads every source through these registries, `layerft/task_names.py` checks the
names.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from functools import partial
from pathlib import Path
from types import MappingProxyType
from typing import Any

from layerft import readers_conll, readers_conllu
from layerft.errors import LayerftError
from layerft.readers_delimited import delimited_record_line, read_delimited
from layerft.readers_fields import hub_rows
from layerft.readers_glue import GLUE_LINE_FINDERS, GLUE_READERS
from layerft.readers_klue import hub_mrc, read_klue_mrc, read_klue_sts, sts_record
from layerft.readers_klue_ner import hub_ner_rows, read_klue_ner
from layerft.readers_klue_re import hub_re, read_klue_re
from layerft.readers_klue_tsv import (
    block_record_line,
    hub_dp,
    pos_records,
    read_klue_dp,
    read_klue_pos,
)
from layerft.readers_records import json_record_line, read_json, read_jsonl, read_parquet
from layerft.readers_squad import hub_squad, hub_squad_v2, read_squad, read_squad_v2
from layerft.text_files import read_text

HUB_ADAPTERS: Mapping[str, Callable[[list[dict[str, Any]]], list[dict[str, Any]]]] = (
    MappingProxyType(
        {
            "klue_sts": partial(hub_rows, "klue/klue sts", convert=lambda _, row: sts_record(row)),
            "klue_mrc": partial(hub_rows, "klue/klue mrc", convert=hub_mrc),
            "klue_re": partial(hub_rows, "klue/klue re", convert=hub_re),
            "klue_dp": partial(hub_rows, "klue/klue dp", convert=hub_dp),
            # KLUE-DP's rows, as morphemes and their POS tags (`read_klue_pos`).
            "klue_pos": lambda rows: pos_records(
                hub_rows("klue/klue dp", rows, convert=hub_dp), "klue/klue dp"
            ),
            "klue_ner": hub_ner_rows,
            "squad": hub_squad,
            "squad_v2": hub_squad_v2,
            "conllu": readers_conllu.hub_ud_rows,
        }
    )
)
"""Rows of a hub data set (`klue/klue`'s configs, `rajpurkar/squad[_v2]`, `universal_dependencies`),
by release_format -> the release readers' records."""


DELIMITERS: Mapping[str, str] = MappingProxyType({".csv": ",", ".tsv": "\t"})
_RECORD_READERS: Mapping[str, Callable[[Path], list[dict[str, Any]]]] = MappingProxyType(
    {".json": read_json, ".jsonl": read_jsonl, ".parquet": read_parquet}
)


def read_records(path: Path, text_columns: Collection[str] = ()) -> list[dict[str, Any]]:
    """Read a local data file by extension: .json (array or lines), .jsonl, .csv, .tsv, .parquet.

    CSV and TSV cells are text; `text_columns` stay text, other columns of numbers become numbers.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in DELIMITERS:
        return read_delimited(path, DELIMITERS[suffix], text_columns)
    reader = _RECORD_READERS.get(suffix)
    if reader is None:
        supported = ", ".join(sorted([*_RECORD_READERS, *DELIMITERS]))
        raise LayerftError(
            f"{path}: unsupported data file extension {path.suffix!r} (supported: {supported})"
        )
    return reader(path)


def record_line(path: Path, release_format: str, number: int) -> int | None:
    """The line on which record `number` (1-based, in its reader's order) starts, where a format
    keeps one record per line, row, sentence block or array element; None for the others (SQuAD's
    and KLUE-MRC's nested questions, CoNLL, Parquet) and for a file no longer readable.
    It only places an error found after reading, so it reads the file again."""
    name = path.suffix.lower() if release_format == "records" else release_format
    finder = _LINE_FINDERS.get(name)
    try:
        return None if finder is None else finder(read_text(path), number)
    except (OSError, ValueError, LayerftError):
        return None


_LINE_FINDERS: Mapping[str, Callable[[str, int], int | None]] = MappingProxyType(
    {
        ".json": json_record_line,
        ".jsonl": json_record_line,
        **{suffix: delimited_record_line(d) for suffix, d in DELIMITERS.items()},
        "klue_sts": json_record_line,
        "klue_re": json_record_line,
        **dict.fromkeys(("klue_dp", "klue_pos", "klue_ner"), block_record_line),
        **GLUE_LINE_FINDERS,
    }
)


RELEASE_READERS: Mapping[str, Callable[[Path], list[dict[str, Any]]]] = MappingProxyType(
    {
        "records": read_records,
        "klue_dp": read_klue_dp,
        "klue_pos": read_klue_pos,
        "klue_ner": read_klue_ner,
        "klue_sts": read_klue_sts,
        "klue_mrc": read_klue_mrc,
        "klue_re": read_klue_re,
        **GLUE_READERS,
        "squad": read_squad,
        "squad_v2": read_squad_v2,
        "conll2003": readers_conll.read_conll2003,
        "conllu": readers_conllu.read_conllu,
    }
)
