"""Labels as a classification-like kind reads them: a record's label given by name or index
(numbers read from CSV, floats pandas wrote, names composed otherwise), and the checks on a
task's label_names.

Serves the `injection_task` and `target_task` config groups through the kinds that classify
(sequence and relation classification, token tagging, dependency relations).
"""

from __future__ import annotations

import re
import unicodedata
from typing import TYPE_CHECKING, Any

from layerft.errors import LayerftError, shown

if TYPE_CHECKING:
    from layerft.task import TaskConfig


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
        # "01" among ["01", "02"]: a CSV or TSV reader read the cell as the number 1.
        padded = [i for i, name in enumerate(names) if integer_text(name) == integer]
        if len(padded) == 1:
            return padded[0]
    elif isinstance(value, str) and value in names:
        return names.index(value)
    elif isinstance(value, str) and (composed := nfc(value)) in (
        canonical := list(map(nfc, names))
    ):
        return canonical.index(composed)  # the same letters composed otherwise (macOS writes NFD)
    elif integer is not None and 0 <= integer < len(names):
        return integer
    booleans = {"True", "False"} & set(names)
    raise LayerftError(
        f"{where}: label {shown(value)} is not in {group}.label_names "
        f"({len(names)} labels: {', '.join(names[:8])}{', ...' if len(names) > 8 else ''})"
        + (": YAML reads unquoted yes, no, on, off as booleans; quote them" if booleans else "")
    )


def integer_text(name: str) -> int | None:
    """The integer a label name is the text of (`01` -> 1), or None."""
    return int(name) if re.fullmatch(r"[+-]?[0-9]+", name) else None


def nfc(text: str) -> str:
    """`text` in Unicode NFC: the same letters composed one way (macOS may write NFD)."""
    return unicodedata.normalize("NFC", text)


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
    return any(integer_text(name) is not None for name in task.label_names)


def check_label_names(task: TaskConfig, where: str) -> None:
    """A classification-like kind needs at least two distinct labels."""
    if len(task.label_names) < 2:
        raise LayerftError(f"{where}: label_names needs at least 2 labels")
    if len(set(task.label_names)) != len(task.label_names):
        raise LayerftError(f"{where}: label_names has duplicates")
    seen: dict[int, str] = {}
    for name in task.label_names:
        if (number := integer_text(name)) is not None and seen.setdefault(number, name) != name:
            raise LayerftError(
                f"{where}: label_names {seen[number]!r} and {name!r} are one number to a CSV or "
                f"TSV reader (both read as {number}); rename one"
            )


def check_label_unread(task: TaskConfig, where: str) -> None:
    """The label column is none of the text columns: the model would read the answer."""
    if task.label_column in task.text_columns:
        raise LayerftError(
            f"{where}: text_columns {task.text_columns} include label_column "
            f"'{task.label_column}': the model would read the answer"
        )
