"""Readers of the GLUE release layout: the TSV files of the GLUE download (`release_format: glue_*`).

Each reader gives the records the hub's `nyu-mll/glue` config gives (the same column names, the
label as its class id in the hub's order, STS-B's score as a float), so one task file reads
either source. Layouts as in the GLUE download and as Hugging Face's `glue.py` loader reads them:

- CoLA: train.tsv / dev.tsv have NO header: source, label (1 acceptable), original label
  ('*' or empty), sentence.
- SST-2: `sentence label`; MRPC: `Quality #1 ID #2 ID #1 String #2 String`; QQP: `id qid1 qid2
  question1 question2 is_duplicate`; STS-B: ten columns with `sentence1 sentence2 score`;
  MNLI: many columns with `sentence1 sentence2 gold_label` (train.tsv, dev_matched.tsv,
  dev_mismatched.tsv); QNLI: `index question sentence label`; RTE, WNLI: `index sentence1
  sentence2 label`. MNLI, QNLI and RTE name their labels; the others give the class id.

Quoting is off: GLUE's TSVs hold unbalanced quote characters inside sentences and never quote a
field (the loader's csv.QUOTE_NONE). Lines end at '\\n' only: a sentence may hold other characters
that str.splitlines would break on.

Serves `release_format: glue_*` of the `target_task` config group (registered in
`layerft/readers.py`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from types import MappingProxyType
from typing import Any

from layerft.errors import LayerftError, shown
from layerft.text_files import read_lines, text_lines

_COLA_COLUMNS = ("source", "label", "original_label", "sentence")
_STSB_RANGE = (0.0, 5.0)


@dataclass(frozen=True)
class GlueLayout:
    """One GLUE task's TSV layout and how its columns become the hub's record fields."""

    texts: Mapping[str, str]  # record field -> TSV column
    label: str  # the TSV column holding the label
    # Class names in the hub's order; empty for a score (STS-B).
    label_names: tuple[str, ...]
    # Whether the TSV gives the label as its class id ("0", "1") rather than its name.
    coded: bool = False
    # Column names of a file without a header row (CoLA); None: the first row is the header.
    columns: tuple[str, ...] | None = None


GLUE_LAYOUTS: Mapping[str, GlueLayout] = MappingProxyType(
    {
        "cola": GlueLayout(
            {"sentence": "sentence"}, "label", ("unacceptable", "acceptable"), True, _COLA_COLUMNS
        ),
        "sst2": GlueLayout({"sentence": "sentence"}, "label", ("negative", "positive"), True),
        "mrpc": GlueLayout(
            {"sentence1": "#1 String", "sentence2": "#2 String"},
            "Quality",
            ("not_equivalent", "equivalent"),
            True,
        ),
        "qqp": GlueLayout(
            {"question1": "question1", "question2": "question2"},
            "is_duplicate",
            ("not_duplicate", "duplicate"),
            True,
        ),
        "stsb": GlueLayout({"sentence1": "sentence1", "sentence2": "sentence2"}, "score", ()),
        "mnli": GlueLayout(
            {"premise": "sentence1", "hypothesis": "sentence2"},
            "gold_label",
            ("entailment", "neutral", "contradiction"),
        ),
        "qnli": GlueLayout(
            {"question": "question", "sentence": "sentence"},
            "label",
            ("entailment", "not_entailment"),
        ),
        "rte": GlueLayout(
            {"sentence1": "sentence1", "sentence2": "sentence2"},
            "label",
            ("entailment", "not_entailment"),
        ),
        "wnli": GlueLayout(
            {"sentence1": "sentence1", "sentence2": "sentence2"},
            "label",
            ("not_entailment", "entailment"),
            True,
        ),
    }
)
"""GLUE task (the hub's config name) -> its release layout."""


def _lines(lines: list[str]) -> list[tuple[int, str]]:
    """(line number, line) of every line that holds a row: a line of only tabs is a row of empty
    fields (refused as one), not a blank line to skip."""
    return [(n, line) for n, line in enumerate(lines, 1) if line.strip() or "\t" in line]


def glue_record_line(layout: GlueLayout, text: str, number: int) -> int | None:
    """The line of record `number` (1-based) in a GLUE TSV's text, for errors found after reading
    (`layerft.readers.record_line`)."""
    rows = _lines(text_lines(text))
    if layout.columns is None:  # the header row holds no record
        rows = rows[1:]
    return rows[number - 1][0] if 1 <= number <= len(rows) else None


def _label(layout: GlueLayout, value: str, where: str) -> int | float:
    """The class id (or STS-B score) of a label field."""
    if not layout.label_names:
        try:
            score = float(value)
        except ValueError:
            score = math.nan
        low, high = _STSB_RANGE
        if not low <= score <= high:  # also rejects nan
            raise LayerftError(
                f"{where}: {layout.label} {shown(value)} is not a score in {low:g}..{high:g}"
            )
        return score
    names = layout.label_names
    allowed = [str(i) for i in range(len(names))] if layout.coded else list(names)
    if value not in allowed:
        raise LayerftError(
            f"{where}: {layout.label} {shown(value)} is not one of {', '.join(allowed)}"
        )
    return allowed.index(value)


def read_glue(layout: GlueLayout, path: Path) -> list[dict[str, Any]]:
    """A GLUE release TSV -> the hub's records: its text fields, `label`, and `idx` (row number)."""
    path = Path(path)
    lines = _lines(read_lines(path))
    if layout.columns is None:
        (number, header_line), *lines = lines
        header = tuple(header_line.split("\t"))
        wanted = [*layout.texts.values(), layout.label]
        missing = [column for column in wanted if column not in header]
        if missing:
            raise LayerftError(
                f"{path}:{number}: header has no column {', '.join(map(repr, missing))} "
                f"(found: {', '.join(header)})"
            )
    else:
        header = layout.columns
    position = {column: header.index(column) for column in [*layout.texts.values(), layout.label]}
    records = []
    for number, line in lines:
        fields = line.split("\t")
        where = f"{path}:{number}"
        if len(fields) != len(header):
            hint = " (a header row? this file has none)" if layout.columns else ""
            raise LayerftError(
                f"{where}: expected {len(header)} tab-separated fields, got {len(fields)}{hint}"
            )
        record: dict[str, Any] = {key: fields[position[c]] for key, c in layout.texts.items()}
        record["label"] = _label(layout, fields[position[layout.label]], where)
        record["idx"] = len(records)
        records.append(record)
    if not records:
        raise LayerftError(f"{path}: no records")
    return records


GLUE_READERS: Mapping[str, Callable[[Path], list[dict[str, Any]]]] = MappingProxyType(
    {f"glue_{task}": partial(read_glue, layout) for task, layout in GLUE_LAYOUTS.items()}
)
"""release_format -> reader, for `layerft.readers.RELEASE_READERS`."""

GLUE_LINE_FINDERS: Mapping[str, Callable[[str, int], int | None]] = MappingProxyType(
    {f"glue_{task}": partial(glue_record_line, layout) for task, layout in GLUE_LAYOUTS.items()}
)
"""release_format -> the line of a record, for `layerft.readers.record_line`."""
