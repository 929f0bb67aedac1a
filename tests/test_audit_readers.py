"""Reader lines a mutation audit found unguarded: SQuAD, KLUE-MRC/RE and KLUE-NER, on hand-made
records (each test names the line it pins)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from layerft.errors import LayerftError
from layerft.readers import HUB_ADAPTERS
from layerft.readers_klue import read_klue_mrc
from layerft.readers_klue_ner import read_klue_ner
from layerft.readers_squad import read_squad, read_squad_v2

CONTEXT = "Paris is wet. Rome is dry."


def _squad(tmp_path: Path, *qas: dict[str, Any], title: str = "Weather") -> Path:
    """A one-paragraph SQuAD release file holding `qas`."""
    document = {"version": "x", "data": [{"title": title, "paragraphs": [
        {"context": CONTEXT, "qas": list(qas)}]}]}  # fmt: skip
    path = tmp_path / "dev.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


def _answerable(qid: str = "q1", **changes: Any) -> dict[str, Any]:
    return {"id": qid, "question": "Which city is wet?",
            "answers": [{"text": "Paris", "answer_start": 0}], "is_impossible": False} | changes  # fmt: skip


# --- SQuAD ------------------------------------------------------------------------------------


def test_squad_v2_plausible_answers_load_whatever_their_offsets(tmp_path: Path) -> None:
    # Decoys are neither trained on nor scored: a misplaced one must not stop the file loading.
    decoys = [{"text": "Rome", "answer_start": 0}, {"text": "dry", "answer_start": 999}]
    unanswerable = {"id": "q2", "question": "Which city is cold?", "answers": [],
                    "is_impossible": True, "plausible_answers": decoys}  # fmt: skip
    records = read_squad_v2(_squad(tmp_path, _answerable(), unanswerable))
    assert records[1]["plausible_answers"] == decoys
    assert records[1]["answers"] == [] and records[1]["is_impossible"] is True


def test_squad_accepts_a_one_space_question(tmp_path: Path) -> None:
    # SQuAD's releases hold a few questions that are one space; they load as they are.
    records = read_squad(_squad(tmp_path, _answerable(question=" ")))
    assert records[0]["question"] == " "


def test_squad_refuses_a_negative_answer_start_that_slicing_from_the_end_would_match(
    tmp_path: Path,
) -> None:
    # CONTEXT[-4:-1] is "dry": a negative offset must not be read from the end of the context.
    assert CONTEXT[-4:-1] == "dry"
    path = _squad(tmp_path, _answerable(answers=[{"text": "dry", "answer_start": -4}]))
    with pytest.raises(LayerftError) as caught:
        read_squad(path)
    assert str(caught.value) == (
        f"{path}:1: q1: answers[0] 'dry' does not match the context at answer_start -4 ('')"
    )


def _hub_row(**changes: Any) -> dict[str, Any]:
    row = {"id": "h1", "title": "Weather", "context": CONTEXT, "question": "Which city is wet?",
           "answers": {"text": ["Paris"], "answer_start": [0]}}  # fmt: skip
    return row | changes


@pytest.mark.parametrize("adapter", ["squad", "squad_v2"])
def test_squad_hub_rows_need_a_title_string_which_may_be_empty(adapter: str) -> None:
    hub_id = {"squad": "rajpurkar/squad", "squad_v2": "rajpurkar/squad_v2"}[adapter]
    row = _hub_row()
    del row["title"]
    with pytest.raises(LayerftError) as caught:
        HUB_ADAPTERS[adapter]([_hub_row(id="h0"), row])
    assert str(caught.value) == f"{hub_id} row 1 (h1): title is missing"
    assert HUB_ADAPTERS[adapter]([_hub_row(title="")])[0]["title"] == ""


# --- KLUE-MRC and KLUE-RE ---------------------------------------------------------------------

KO_CONTEXT = "가나다라마"


def _mrc_qa(**changes: Any) -> dict[str, Any]:
    qa = {"guid": "m1", "question": "무엇인가?", "answers": [{"text": "다라", "answer_start": 2}],
          "is_impossible": False, "question_type": 1}  # fmt: skip
    return qa | changes


def _mrc(tmp_path: Path, qa: dict[str, Any]) -> Path:
    document = {"version": "x", "data": [{"title": "t", "source": "s", "paragraphs": [
        {"context": KO_CONTEXT, "qas": [qa]}]}]}  # fmt: skip
    path = tmp_path / "klue-mrc-v1.1_dev.json"
    path.write_text(json.dumps(document, ensure_ascii=False, indent=4), encoding="utf-8")
    return path


def _hub_mrc(**changes: Any) -> dict[str, Any]:
    row = {"guid": "m1", "title": "t", "context": KO_CONTEXT, "question": "무엇인가?",
           "is_impossible": False, "question_type": 1,
           "answers": {"answer_start": [2], "text": ["다라"]}}  # fmt: skip
    return row | changes


def _line_of(path: Path, needle: str = '"m1"') -> int:
    """The line of `path` where `needle` (by default the question's guid) is written."""
    lines = path.read_text(encoding="utf-8").split("\n")
    return next(n for n, line in enumerate(lines, 1) if needle in line)


def test_klue_mrc_refuses_a_negative_answer_start_that_slicing_from_the_end_would_match(
    tmp_path: Path,
) -> None:
    assert KO_CONTEXT[-2:-1] == "라"
    with pytest.raises(LayerftError) as caught:
        HUB_ADAPTERS["klue_mrc"]([_hub_mrc(answers={"answer_start": [-2], "text": ["라"]})])
    assert str(caught.value) == (
        "klue/klue mrc row 0 (m1): answers[0] '라' does not match the context at answer_start -2 "
        "('')"
    )
    # An unanswerable question's plausible answers are checked as its answers are (in KLUE-MRC).
    qa = _mrc_qa(answers=[], is_impossible=True, question_type=3,
                 plausible_answers=[{"text": "라", "answer_start": -2}])  # fmt: skip
    path = _mrc(tmp_path, qa)
    with pytest.raises(LayerftError) as caught:
        read_klue_mrc(path)
    assert str(caught.value) == (
        f"{path}:{_line_of(path)}: m1: plausible_answers[0] '라' does not match the "
        "context at answer_start -2 ('')"
    )


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"question_type": True}, "question_type is not an integer (got true)"),
        ({"is_impossible": 1}, "is_impossible is not true or false (got 1)"),
        ({"is_impossible": 0}, "is_impossible is not true or false (got 0)"),
        ({"answers": [{"text": "가", "answer_start": False}]},
         "answers[0].answer_start is not an integer (got false)"),
    ],
)  # fmt: skip
def test_klue_mrc_keeps_json_booleans_and_integers_apart(
    tmp_path: Path, changes: dict[str, Any], message: str
) -> None:
    # bool is an int subclass in Python: True must not read as question type 1, nor 1 as true.
    path = _mrc(tmp_path, _mrc_qa(**changes))
    with pytest.raises(LayerftError) as caught:
        read_klue_mrc(path)
    assert str(caught.value) == f"{path}:{_line_of(path)}: m1: {message}"
    hub = {key: value for key, value in changes.items() if key != "answers"}
    if "answers" in changes:
        hub["answers"] = {"answer_start": [False], "text": ["가"]}
    with pytest.raises(LayerftError) as caught:
        HUB_ADAPTERS["klue_mrc"]([_hub_mrc(**hub)])
    assert str(caught.value) == f"klue/klue mrc row 0 (m1): {message}"


def test_klue_re_hub_refuses_a_boolean_offset() -> None:
    row = {"guid": "re-1", "sentence": "가나다",
           "subject_entity": {"word": "나", "start_idx": True, "end_idx": 1, "type": "PER"},
           "object_entity": {"word": "다", "start_idx": 2, "end_idx": 2, "type": "ORG"},
           "label": 0}  # fmt: skip
    with pytest.raises(LayerftError) as caught:
        HUB_ADAPTERS["klue_re"]([row])
    assert str(caught.value) == (
        "klue/klue re row 0 (re-1): subject_entity.start_idx is not an integer (got true)"
    )
    row["subject_entity"]["start_idx"] = 1
    assert HUB_ADAPTERS["klue_re"]([row])[0]["guid"] == "re-1"


# --- KLUE-NER ---------------------------------------------------------------------------------


def _ner(tmp_path: Path, sentence: str, *rows: tuple[str, str]) -> Path:
    path = tmp_path / "klue-ner-v1.1_dev.tsv"
    lines = [f"## ner-1\t{sentence}", *(f"{char}\t{tag}" for char, tag in rows), "", ""]
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def test_klue_ner_refuses_bioes_end_tags(tmp_path: Path) -> None:
    path = _ner(tmp_path, "<가나:LC>다", ("가", "B-LC"), ("나", "E-LC"), ("다", "O"))
    with pytest.raises(LayerftError) as caught:
        read_klue_ner(path)
    assert str(caught.value) == f"{path}:3: tag 'E-LC' is not O, B-<type> or I-<type>"


def test_klue_ner_forgets_a_dropped_space_once_a_character_follows_it(tmp_path: Path) -> None:
    # The space inside '<가 나:LC>' is I-LC; an I-LC may follow such a space directly (KLUE's gold),
    # but once '나' and an O character followed it, a later I-LC is an orphan: refused.
    sentence = "<가 나:LC>다<라:LC>"
    rows = [("가", "B-LC"), (" ", "I-LC"), ("나", "I-LC"), ("다", "O")]
    records = read_klue_ner(_ner(tmp_path, sentence, *rows, ("라", "B-LC")))
    assert records[0]["tags"] == ["B-LC", "I-LC", "O", "B-LC"]
    path = _ner(tmp_path, sentence, *rows, ("라", "I-LC"))
    with pytest.raises(LayerftError) as caught:
        read_klue_ner(path)
    assert (
        str(caught.value) == f"{path}:6: ner-1: I-LC does not follow B-LC or I-LC (previous tag O)"
    )


@pytest.mark.parametrize("value", [13, -1, 12.0, "O"])
def test_klue_ner_hub_refuses_a_tag_id_outside_its_13_classes(value: Any) -> None:
    row = {"sentence": "<가나:DT>다", "tokens": ["가", "나", "다"], "ner_tags": [0, 1, value]}
    with pytest.raises(LayerftError) as caught:
        HUB_ADAPTERS["klue_ner"]([row])
    assert str(caught.value) == (
        f"klue/klue ner row 0: ner_tags value {value!r} is not a class of klue/klue ner"
    )
    assert HUB_ADAPTERS["klue_ner"]([row | {"ner_tags": [0, 1, 12]}])[0]["ner_tags"] == [0, 1, 12]


def test_klue_ner_hub_refuses_a_boolean_tag_id() -> None:
    # True passed isinstance(tag_id, int) and was read as class 1 (I-DT).
    row = {"sentence": "<가나:DT>다", "tokens": ["가", "나", "다"], "ner_tags": [0, True, 12]}
    with pytest.raises(LayerftError, match="ner_tags value True is not a class of klue/klue ner"):
        HUB_ADAPTERS["klue_ner"]([row])
