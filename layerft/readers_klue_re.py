"""KLUE-RE's JSON release and the hub's `klue/klue` re rows -> records. Serves the task groups'
`release_format: klue_re` (registered in `layerft/readers.py`); the record checks are
`layerft/readers_klue.py`'s."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from layerft.errors import quoted, shown
from layerft.readers_fields import RecordFault, record_field
from layerft.readers_klue import read_release_array

# The 30 KLUE-RE relations in the release's relation_list.json order, which is also the order of the
# class ids in the hub's `klue/klue` re config.
KLUE_RE_RELATIONS: tuple[str, ...] = (
    "no_relation",
    "org:dissolved",
    "org:founded",
    "org:place_of_headquarters",
    "org:alternate_names",
    "org:member_of",
    "org:members",
    "org:political/religious_affiliation",
    "org:product",
    "org:founded_by",
    "org:top_members/employees",
    "org:number_of_employees/members",
    "per:date_of_birth",
    "per:date_of_death",
    "per:place_of_birth",
    "per:place_of_death",
    "per:place_of_residence",
    "per:origin",
    "per:employee_of",
    "per:schools_attended",
    "per:alternate_names",
    "per:parents",
    "per:children",
    "per:siblings",
    "per:spouse",
    "per:other_family",
    "per:colleagues",
    "per:product",
    "per:religion",
    "per:title",
)

# KLUE-RE's six entity types (person, organisation, location, date, other proper noun, other
# number): the model reads an entity's type in its markers ('@ * PER * ... @'), so no other is read.
KLUE_RE_ENTITY_TYPES: tuple[str, ...] = ("PER", "ORG", "LOC", "DAT", "POH", "NOH")


def _entity(row: Mapping[str, Any], key: str, sentence: str) -> dict[str, Any]:
    """A KLUE-RE entity {word, start_idx, end_idx (inclusive), type} checked against `sentence`."""
    entity = record_field(row, key, dict)
    word = record_field(entity, "word", str, f"{key}.word")
    start = record_field(entity, "start_idx", int, f"{key}.start_idx")
    end = record_field(entity, "end_idx", int, f"{key}.end_idx")
    found = sentence[start : end + 1] if 0 <= start <= end < len(sentence) else ""
    if found != word:
        raise RecordFault(
            f"{key}.word {shown(word)} does not match sentence[{start}:{end}+1] ({shown(found)}; "
            "end_idx is inclusive)"
        )
    kind = record_field(entity, "type", str, f"{key}.type")
    if kind not in KLUE_RE_ENTITY_TYPES:
        raise RecordFault(
            f"{key}.type {quoted(kind)} is not one of KLUE-RE's entity types "
            f"({', '.join(KLUE_RE_ENTITY_TYPES)})"
        )
    return {"word": word, "start": start, "end": end, "type": kind}


def _re_record(row: Mapping[str, Any], label: str) -> dict[str, Any]:
    """A KLUE-RE row (release or hub) whose relation is named `label` -> flat record."""
    if label not in KLUE_RE_RELATIONS:
        raise RecordFault(f"label {quoted(label)} is not one of the 30 KLUE-RE relations")
    sentence = record_field(row, "sentence", str)
    return {
        "guid": record_field(row, "guid", str),
        "sentence": sentence,
        "subject": _entity(row, "subject_entity", sentence),
        "object": _entity(row, "object_entity", sentence),
        "label": label,
    }


def read_klue_re(path: Path) -> list[dict[str, Any]]:
    """KLUE-RE release JSON -> {guid, sentence, subject, object, label}.

    subject and object are {word, start, end, type} with end inclusive, as in the release
    (sentence[start:end + 1] == word); label is the relation's name (one of KLUE_RE_RELATIONS).
    """
    return read_release_array(
        Path(path),
        "the KLUE-RE release layout",
        lambda row: _re_record(row, record_field(row, "label", str)),
    )


def hub_re(index: int, row: Mapping[str, Any]) -> dict[str, Any]:
    """A `klue/klue` re row: label is an index into KLUE_RE_RELATIONS."""
    label = record_field(row, "label", int)
    if not 0 <= label < len(KLUE_RE_RELATIONS):
        raise RecordFault(f"label {label} is outside 0..{len(KLUE_RE_RELATIONS) - 1}")
    return _re_record(row, KLUE_RE_RELATIONS[label])
