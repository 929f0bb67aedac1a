"""KLUE-STS/MRC/RE release readers and the hub adapters: record shapes, samples, one-line faults."""

from __future__ import annotations

import copy
import json
import logging
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from compose import compose_run

from layerft.errors import LayerftError
from layerft.readers import HUB_ADAPTERS
from layerft.readers_klue import read_klue_mrc, read_klue_sts
from layerft.readers_klue_ner import KLUE_NER_TAGS
from layerft.readers_klue_re import KLUE_RE_RELATIONS, read_klue_re
from layerft.readers_klue_tsv import read_klue_dp, read_klue_pos

SAMPLES = Path(__file__).resolve().parent / "data" / "klue"
MRC = SAMPLES / "klue-mrc-v1.1"
RE_DIR = SAMPLES / "klue-re-v1.1"

STS_ROW = {
    "guid": "sts-1",
    "source": "handwritten",
    "sentence1": "오늘 회의는 오후 세 시에 시작합니다.",
    "sentence2": "회의가 오후 3시에 열립니다.",
    "labels": {"label": 4.2, "real-label": 4.166666666666667, "binary-label": 1},
    "annotations": {"agreement": "0:0:0:1:3:2", "annotators": ["01"], "annotations": [4]},
}
STS_RECORD = {
    "guid": "sts-1",
    "sentence1": "오늘 회의는 오후 세 시에 시작합니다.",
    "sentence2": "회의가 오후 3시에 열립니다.",
    "label": 4.2,
    "real_label": 4.166666666666667,
    "binary_label": 1,
}


def _dump(tmp_path: Path, name: str, value: Any) -> Path:
    """`value` as indented UTF-8 JSON, as the releases are written."""
    path = tmp_path / name
    path.write_text(json.dumps(value, ensure_ascii=False, indent=4), encoding="utf-8")
    return path


def _load(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


# --- samples and record shapes ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("split", "count", "impossible", "two_answers"), [("train", 24, 6, 6), ("dev", 10, 2, 3)]
)
def test_mrc_samples(split: str, count: int, impossible: int, two_answers: int) -> None:
    records = read_klue_mrc(MRC / f"klue-mrc-v1.1_{split}.json")
    assert len(records) == count
    assert len({r["guid"] for r in records}) == count
    keys = {"guid", "title", "context", "question", "answers", "is_impossible"}
    keys |= {"plausible_answers", "question_type"}
    assert all(r.keys() == keys for r in records)
    unanswerable = [r for r in records if r["is_impossible"]]
    assert len(unanswerable) == impossible
    assert all(r["answers"] == [] and r["plausible_answers"] for r in unanswerable)
    assert all(r["question_type"] == 3 for r in unanswerable)
    assert sum(len(r["answers"]) == 2 for r in records) == two_answers
    # Long contexts: a 64-token window over the question and context must slide to reach answers.
    assert all(len(r["context"]) > 300 for r in records)
    assert sum(a["answer_start"] > 150 for r in records for a in r["answers"]) >= count // 3


def test_mrc_record_shape() -> None:
    records = read_klue_mrc(MRC / "klue-mrc-v1.1_dev.json")
    two, impossible = records[1], records[3]
    context = two["context"]
    assert two == {
        "guid": "hw-mrc_dev_001",
        "title": "국화 전시회 보름간 열려",
        "context": context,
        "question": "가을 국화 전시회의 관람객은 몇 명이었나?",
        "answers": [
            {"text": "4만 7천 명", "answer_start": 184},
            {"text": "4만 7천", "answer_start": 184},
        ],
        "is_impossible": False,
        "plausible_answers": [],
        "question_type": 1,
    }
    assert impossible["answers"] == []
    assert impossible["is_impossible"] is True
    assert impossible["plausible_answers"] == [{"text": "3천 원", "answer_start": 255}]
    assert context[255:259] == "3천 원"


@pytest.mark.parametrize(("split", "count"), [("train", 40), ("dev", 16)])
def test_re_samples(split: str, count: int) -> None:
    records = read_klue_re(RE_DIR / f"klue-re-v1.1_{split}.json")
    assert len(records) == count
    assert all(r.keys() == {"guid", "sentence", "subject", "object", "label"} for r in records)
    labels = {r["label"] for r in records}
    assert "no_relation" in labels
    assert len(labels) >= 5
    assert labels <= set(KLUE_RE_RELATIONS)
    # Subject before object and after it, so a model cannot read the roles off the order.
    orders = {r["subject"]["start"] < r["object"]["start"] for r in records}
    assert orders == {True, False}
    for r in records:
        for entity in (r["subject"], r["object"]):
            assert r["sentence"][entity["start"] : entity["end"] + 1] == entity["word"]


def test_re_record_shape() -> None:
    assert read_klue_re(RE_DIR / "klue-re-v1.1_dev.json")[1] == {
        "guid": "hw-re_dev_001",
        "sentence": "라온게임즈에서 근무하는 유건우는 그림을 그린다.",
        "subject": {"word": "유건우", "start": 13, "end": 15, "type": "PER"},
        "object": {"word": "라온게임즈", "start": 0, "end": 4, "type": "ORG"},
        "label": "per:employee_of",
    }


def test_relation_list_matches_the_release_order() -> None:
    assert len(KLUE_RE_RELATIONS) == 30
    assert _load(RE_DIR / "relation_list.json") == {"relations": list(KLUE_RE_RELATIONS)}
    assert KLUE_RE_RELATIONS[0] == "no_relation"
    assert KLUE_RE_RELATIONS[18] == "per:employee_of"


def test_sts(tmp_path: Path) -> None:
    path = _dump(tmp_path, "klue-sts-v1.1_dev.json", [STS_ROW, {**STS_ROW, "guid": "sts-2"}])
    assert read_klue_sts(path) == [STS_RECORD, {**STS_RECORD, "guid": "sts-2"}]
    assert isinstance(read_klue_sts(path)[0]["binary_label"], int)


@pytest.mark.parametrize(("split", "count"), [("train", 150), ("dev", 50)])
def test_shared_klue_sts(shared_data: Path, split: str, count: int) -> None:
    records = read_klue_sts(shared_data / "klue" / "klue-sts-v1.1" / f"klue-sts-v1.1_{split}.json")
    assert len(records) == count
    for r in records:
        assert r.keys() == STS_RECORD.keys()
        assert isinstance(r["label"], float) and 0 <= r["label"] <= 5
        assert isinstance(r["real_label"], float) and 0 <= r["real_label"] <= 5
        # KLUE's binarisation: paraphrase when the label is 3 or more.
        assert r["binary_label"] == int(r["label"] >= 3)


# --- malformed input -------------------------------------------------------------------------

Mutation = Callable[[Any], None]


def _qa(doc: Any, index: int) -> dict[str, Any]:
    """The index-th question of a MRC document (counting over articles and paragraphs)."""
    qas = [qa for a in doc["data"] for p in a["paragraphs"] for qa in p["qas"]]
    return qas[index]


def _set(path: str, value: Any) -> Mutation:
    """A mutation setting doc[path] (keys and indices separated by '/'); value None deletes."""

    def mutate(doc: Any) -> None:
        *parents, last = [int(k) if k.isdigit() else k for k in path.split("/")]
        for key in parents:
            doc = doc[key]
        if value is None:
            del doc[last]
        else:
            doc[last] = value

    return mutate


def _mrc_answer_start(doc: Any) -> None:
    _qa(doc, 1)["answers"][0]["answer_start"] += 1


def _mrc_plausible(doc: Any) -> None:
    _qa(doc, 3)["plausible_answers"][0]["text"] = "4천 원"


def _mrc_impossible_with_answers(doc: Any) -> None:
    _qa(doc, 0)["is_impossible"] = True


def _mrc_no_answers(doc: Any) -> None:
    _qa(doc, 0)["answers"] = []


def _re_exclusive_end(doc: Any) -> None:
    doc[3]["subject_entity"]["end_idx"] += 1


# (file, mutation, reader, guid or None, message fragment)
MALFORMED: list[tuple[Path, Mutation, Callable[[Path], Any], str | None, str]] = [
    (
        MRC / "klue-mrc-v1.1_dev.json",
        _mrc_answer_start,
        read_klue_mrc,
        "hw-mrc_dev_001",
        "answers[0] '4만 7천 명' does not match the context at answer_start 185 ('만 7천 명이')",
    ),
    (
        MRC / "klue-mrc-v1.1_dev.json",
        _mrc_plausible,
        read_klue_mrc,
        "hw-mrc_dev_003",
        "plausible_answers[0] '4천 원' does not match the context at answer_start 255 ('3천 원')",
    ),
    (
        MRC / "klue-mrc-v1.1_dev.json",
        _mrc_impossible_with_answers,
        read_klue_mrc,
        "hw-mrc_dev_000",
        "is_impossible is true but it has 1 answers",
    ),
    (
        MRC / "klue-mrc-v1.1_dev.json",
        _mrc_no_answers,
        read_klue_mrc,
        "hw-mrc_dev_000",
        "has no answers and is_impossible is false",
    ),
    (
        MRC / "klue-mrc-v1.1_dev.json",
        _set("data/1/paragraphs/0/qas/2/question_type", "3"),
        read_klue_mrc,
        "hw-mrc_dev_006",
        'question_type is not an integer (got "3")',
    ),
    (
        MRC / "klue-mrc-v1.1_dev.json",
        _set("data/0/paragraphs/0/qas/0/question_type", 4),
        read_klue_mrc,
        "hw-mrc_dev_000",
        "question_type 4 is not one of 1 (paraphrase), 2 (multi-sentence reasoning), "
        "3 (unanswerable)",
    ),
    (
        MRC / "klue-mrc-v1.1_dev.json",
        _set("data/2/paragraphs/0/context", None),
        read_klue_mrc,
        None,
        "data[2].paragraphs[0].context is missing",
    ),
    (
        MRC / "klue-mrc-v1.1_dev.json",
        _set("data/0/paragraphs/0/qas/1/guid", None),
        read_klue_mrc,
        None,
        "data[0].paragraphs[0].qas[1].guid is missing",
    ),
    (MRC / "klue-mrc-v1.1_dev.json", _set("data", {}), read_klue_mrc, None, "expected an object"),
    (
        RE_DIR / "klue-re-v1.1_dev.json",
        _re_exclusive_end,
        read_klue_re,
        "hw-re_dev_003",
        "subject_entity.word '누리소프트' does not match sentence[0:5+1] ('누리소프트의'; "
        "end_idx is inclusive)",
    ),
    (
        RE_DIR / "klue-re-v1.1_dev.json",
        _set("5/object_entity/start_idx", 6),
        read_klue_re,
        "hw-re_dev_005",
        "object_entity.word '제주' does not match sentence[6:11+1] ('본사를 제주'",
    ),
    (  # a long field is cut in the message (it had been quoted whole)
        RE_DIR / "klue-re-v1.1_dev.json",
        _set("5/object_entity/word", "제주" * 5000),
        read_klue_re,
        "hw-re_dev_005",
        "object_entity.word '" + "제주" * 38 + "... does not match sentence[",
    ),
    (
        RE_DIR / "klue-re-v1.1_dev.json",
        _set("2/label", "per:employer"),
        read_klue_re,
        "hw-re_dev_002",
        'label "per:employer" is not one of the 30 KLUE-RE relations',
    ),
    (
        RE_DIR / "klue-re-v1.1_dev.json",
        _set("7/label", None),
        read_klue_re,
        "hw-re_dev_007",
        "label is missing",
    ),
    (
        RE_DIR / "klue-re-v1.1_dev.json",
        _set("1/subject_entity/type", ""),
        read_klue_re,
        "hw-re_dev_001",
        "subject_entity.type is empty",
    ),
]


@pytest.mark.parametrize(("source", "mutate", "reader", "guid", "expected"), MALFORMED)
def test_malformed_release_names_file_and_guid(
    tmp_path: Path,
    source: Path,
    mutate: Mutation,
    reader: Callable[[Path], Any],
    guid: str | None,
    expected: str,
) -> None:
    doc = copy.deepcopy(_load(source))
    mutate(doc)
    path = _dump(tmp_path, source.name, doc)
    with pytest.raises(LayerftError) as caught:
        reader(path)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(str(path))
    assert expected in message
    if guid is not None:
        # file:line: guid: ..., the line being where the guid is written.
        line = int(re.match(rf"{re.escape(str(path))}:(\d+): {guid}: ", message)[1])
        assert f'"{guid}"' in path.read_text(encoding="utf-8").split("\n")[line - 1]


def test_a_repeated_guid_names_its_line_and_the_first_ones(tmp_path: Path) -> None:
    # A file concatenated twice or a bad merge would train and score its records twice.
    def lines_of(path: Path, guid: str) -> list[int]:
        text = path.read_text(encoding="utf-8").split("\n")
        return [n for n, line in enumerate(text, 1) if f'"{guid}"' in line]

    sts = _dump(
        tmp_path, "klue-sts-v1.1_train.json", [STS_ROW, STS_ROW | {"guid": "sts-2"}, STS_ROW]
    )
    rows = _load(RE_DIR / "klue-re-v1.1_dev.json")
    relations = _dump(tmp_path, "klue-re-v1.1_dev.json", [*rows, rows[2]])
    doc = _load(MRC / "klue-mrc-v1.1_dev.json")
    doc["data"][-1]["paragraphs"][-1]["qas"].append(_qa(doc, 1))
    mrc = _dump(tmp_path, "klue-mrc-v1.1_dev.json", doc)
    for path, guid, reader in (
        (sts, "sts-1", read_klue_sts),
        (relations, rows[2]["guid"], read_klue_re),
        (mrc, _qa(doc, 1)["guid"], read_klue_mrc),
    ):
        first, second = lines_of(path, guid)
        message = (
            f"{path}:{second}: guid {guid} repeats the record on line {first}; remove one of them"
        )
        with pytest.raises(LayerftError, match=f"^{re.escape(message)}$"):
            reader(path)


STS_MALFORMED: list[tuple[dict[str, Any], str]] = [
    ({"labels": {"real-label": 1.0, "binary-label": 0}}, "sts-2: labels.label is missing"),
    (
        {"labels": {"label": "high", "real-label": 1.0, "binary-label": 0}},
        'sts-2: labels.label "high" is not a number',
    ),
    (
        {"labels": {"label": True, "real-label": 1.0, "binary-label": 0}},
        "sts-2: labels.label true is not a number",
    ),
    (
        {"labels": {"label": 5.5, "real-label": 1.0, "binary-label": 0}},
        "sts-2: labels.label 5.5 is outside 0..5",
    ),
    ({"labels": {"label": 1.0, "binary-label": 0}}, "sts-2: labels.real-label is missing"),
    (
        {"labels": {"label": 1.0, "real-label": None, "binary-label": 0}},
        "sts-2: labels.real-label is null",
    ),
    (
        {"labels": {"label": 1.0, "real-label": 1.0, "binary-label": 2}},
        "sts-2: labels.binary-label 2 is not 0 or 1",
    ),
    ({"labels": None}, "sts-2: labels is null"),
    ({"sentence2": " "}, "sts-2: sentence2 is empty"),
]


@pytest.mark.parametrize(("change", "expected"), STS_MALFORMED)
def test_malformed_sts(tmp_path: Path, change: dict[str, Any], expected: str) -> None:
    bad = {**STS_ROW, "guid": "sts-2", **change}
    path = _dump(tmp_path, "klue-sts-v1.1_train.json", [STS_ROW, bad])
    with pytest.raises(LayerftError) as caught:
        read_klue_sts(path)
    message = str(caught.value)
    assert "\n" not in message
    line = 1 + path.read_text(encoding="utf-8").split('"sts-2"')[0].count("\n")
    assert message.startswith(f"{path}:{line}: {expected}")


@pytest.mark.parametrize("reader", [read_klue_sts, read_klue_mrc, read_klue_re])
@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b'[\n    {"guid": "a"},\n    {"guid": "\xb1\xe8"}\n]\n', "bad.json:3: not UTF-8 text"),
        (b'[\n    {"guid": "a"},\n    {"guid": "b",}\n]\n', "bad.json:3: invalid JSON"),
        (b"", "bad.json: empty file"),
    ],
)
def test_unreadable_files(
    tmp_path: Path, reader: Callable[[Path], Any], data: bytes, expected: str
) -> None:
    path = tmp_path / "bad.json"
    path.write_bytes(data)
    with pytest.raises(LayerftError, match=re.escape(expected)):
        reader(path)


@pytest.mark.parametrize(
    ("reader", "value", "expected"),
    [
        (read_klue_sts, {"guid": "a"}, "expected a JSON array of records (the KLUE-STS release"),
        (read_klue_re, [], "bad.json: no records"),
        (read_klue_re, [{"sentence": "x"}], "bad.json:2: record 1 has no guid"),
        (read_klue_sts, [STS_ROW, 3], "bad.json:22: record 2 is not an object"),
        (read_klue_mrc, [], "expected an object with a 'data' list (the KLUE-MRC layout)"),
        (read_klue_mrc, {"version": "v1.1", "data": []}, "bad.json: no records"),
    ],
)
def test_wrong_layout(
    tmp_path: Path, reader: Callable[[Path], Any], value: Any, expected: str
) -> None:
    with pytest.raises(LayerftError, match=re.escape(expected)):
        reader(_dump(tmp_path, "bad.json", value))


# --- hub adapters ----------------------------------------------------------------------------


def _hub_mrc_rows(path: Path) -> list[dict[str, Any]]:
    """A release MRC file as the hub's `klue/klue` mrc rows (its loader's conversion)."""
    rows = []
    for article in _load(path)["data"]:
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                spans = qa["answers"] + qa.get("plausible_answers", [])
                rows.append(
                    {
                        "title": article["title"],
                        "context": paragraph["context"].strip(),
                        "news_category": article.get("news_category", ""),
                        "source": article["source"],
                        "guid": qa["guid"],
                        "is_impossible": qa["is_impossible"],
                        "question_type": qa["question_type"],
                        "question": qa["question"].strip(),
                        "answers": {
                            "answer_start": [s["answer_start"] for s in spans],
                            "text": [s["text"].strip() for s in spans],
                        },
                    }
                )
    return rows


def _hub_re_rows(path: Path) -> list[dict[str, Any]]:
    """A release RE file as the hub's `klue/klue` re rows: label is a class id."""
    return [{**row, "label": KLUE_RE_RELATIONS.index(row["label"])} for row in _load(path)]


def test_hub_adapters_are_read_only() -> None:
    assert set(HUB_ADAPTERS) == {
        "klue_sts", "klue_mrc", "klue_re", "klue_dp", "klue_pos", "klue_ner", "squad", "squad_v2",
        "conllu",
    }  # fmt: skip
    with pytest.raises(TypeError):
        HUB_ADAPTERS["klue_nli"] = list  # type: ignore[index]


def test_hub_ner_rows_drop_their_spaces_as_the_release_reader_does(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The hub keeps spaces as characters (tagged O, or I- inside an entity: '<2019년 1월:DT>').
    row = {"sentence": "<강릉:LC> 방향 <1 월:DT>", "tokens": list("강릉 방향 1 월"),
           "ner_tags": [2, 3, 12, 12, 12, 12, 0, 1, 1]}  # fmt: skip
    assert HUB_ADAPTERS["klue_ner"]([row]) == [
        {
            "sentence": row["sentence"],
            "tokens": list("강릉방향1월"),
            "ner_tags": [2, 3, 12, 12, 0, 1],
            "words": ["강릉", "방향", "1", "월"],
        }
    ]
    for group in ("injection_task", "target_task"):  # the hub's ids index the tasks' label_names
        task = getattr(compose_run(f"{group}=klue_ner"), group)
        assert tuple(task.label_names) == KLUE_NER_TAGS
    # A space tagged B- is dropped, as KLUE-baseline drops it, and counted in one warning.
    tagged = row | {"ner_tags": [2, 3, 4, 12, 12, 12, 0, 1, 1]}
    with caplog.at_level(logging.WARNING):
        assert HUB_ADAPTERS["klue_ner"]([row, tagged])[1]["ner_tags"] == [2, 3, 12, 12, 0, 1]
    assert [r.getMessage() for r in caplog.records] == [
        "klue/klue ner: 1 whitespace rows tagged B- or I- of an entity not open were dropped, as "
        "KLUE-baseline drops every space, and the I- tags after them kept as KLUE keeps them "
        "(first: row 1, tagged B-OG)"
    ]


def test_hub_sts() -> None:
    row = {key: STS_ROW[key] for key in ("guid", "source", "sentence1", "sentence2", "labels")}
    assert HUB_ADAPTERS["klue_sts"]([row]) == [STS_RECORD]


def test_hub_mrc_hand_written_rows() -> None:
    context = (
        "한결시의 봄꽃 축제는 4월 2일에 열렸다. 방문객은 8천 명이었고 주차 요금은 2천 원이었다."
    )
    rows = [
        {
            "title": "봄꽃 축제",
            "context": context,
            "news_category": "사회",
            "source": "handwritten",
            "guid": "mrc-1",
            "is_impossible": False,
            "question_type": 1,
            "question": "방문객은 몇 명인가?",
            "answers": {"answer_start": [29, 29], "text": ["8천 명", "8천"]},
        },
        {
            "title": "봄꽃 축제",
            "context": context,
            "news_category": "사회",
            "source": "handwritten",
            "guid": "mrc-2",
            "is_impossible": True,
            "question_type": 3,
            "question": "입장료는 얼마인가?",
            "answers": {"answer_start": [44], "text": ["2천 원"]},
        },
    ]
    first, second = HUB_ADAPTERS["klue_mrc"](rows)
    assert first == {
        "guid": "mrc-1",
        "title": "봄꽃 축제",
        "context": context,
        "question": "방문객은 몇 명인가?",
        "answers": [{"text": "8천 명", "answer_start": 29}, {"text": "8천", "answer_start": 29}],
        "is_impossible": False,
        "plausible_answers": [],
        "question_type": 1,
    }
    assert second["answers"] == []
    assert second["plausible_answers"] == [{"text": "2천 원", "answer_start": 44}]


@pytest.mark.parametrize("split", ["train", "dev"])
def test_hub_mrc_matches_the_release_reader(split: str) -> None:
    path = MRC / f"klue-mrc-v1.1_{split}.json"
    assert HUB_ADAPTERS["klue_mrc"](_hub_mrc_rows(path)) == read_klue_mrc(path)


def test_hub_re_hand_written_row() -> None:
    row = {
        "guid": "re-1",
        "sentence": "한결전자에서 일하는 이하람은 기술자다.",
        "subject_entity": {"word": "이하람", "start_idx": 11, "end_idx": 13, "type": "PER"},
        "object_entity": {"word": "한결전자", "start_idx": 0, "end_idx": 3, "type": "ORG"},
        "label": 18,
        "source": "handwritten",
    }
    assert HUB_ADAPTERS["klue_re"]([row]) == [
        {
            "guid": "re-1",
            "sentence": "한결전자에서 일하는 이하람은 기술자다.",
            "subject": {"word": "이하람", "start": 11, "end": 13, "type": "PER"},
            "object": {"word": "한결전자", "start": 0, "end": 3, "type": "ORG"},
            "label": "per:employee_of",
        }
    ]


@pytest.mark.parametrize("split", ["train", "dev"])
def test_hub_re_matches_the_release_reader(split: str) -> None:
    path = RE_DIR / f"klue-re-v1.1_{split}.json"
    assert HUB_ADAPTERS["klue_re"](_hub_re_rows(path)) == read_klue_re(path)


DP_ROW = {
    "sentence": "철수가 밥을 먹었다.",
    "index": [1, 2, 3],
    "word_form": ["철수가", "밥을", "먹었다."],
    "lemma": ["철수 가", "밥 을", "먹 었 다 ."],
    "pos": ["NNP+JKS", "NNG+JKO", "VV+EP+EF+SF"],
    "head": [3, 3, 0],
    "deprel": ["NP_SBJ", "NP_OBJ", "VP"],
}


def test_hub_dp_hand_written_row() -> None:
    assert HUB_ADAPTERS["klue_dp"]([DP_ROW, DP_ROW])[1] == {
        "guid": "row-1",
        "sentence": "철수가 밥을 먹었다.",
        "words": ["철수가", "밥을", "먹었다."],
        "lemmas": ["철수 가", "밥 을", "먹 었 다 ."],
        "pos": ["NNP+JKS", "NNG+JKO", "VV+EP+EF+SF"],
        "heads": [3, 3, 0],
        "deprels": ["NP_SBJ", "NP_OBJ", "VP"],
    }


def test_hub_dp_matches_the_release_reader(shared_data: Path) -> None:
    sentences = read_klue_dp(shared_data / "klue" / "klue-dp-v1.1" / "klue-dp-v1.1_dev.tsv")
    rows = [
        {
            "sentence": s["sentence"],
            "index": list(range(1, len(s["words"]) + 1)),
            "word_form": s["words"],
            "lemma": s["lemmas"],
            "pos": s["pos"],
            "head": s["heads"],
            "deprel": s["deprels"],
        }
        for s in sentences
    ]
    expected = [{**s, "guid": f"row-{i}"} for i, s in enumerate(sentences)]
    assert HUB_ADAPTERS["klue_dp"](rows) == expected
    # klue_pos reads the same hub rows as morphemes and their tags, as from the release file.
    tagged = read_klue_pos(shared_data / "klue" / "klue-dp-v1.1" / "klue-dp-v1.1_dev.tsv")
    assert HUB_ADAPTERS["klue_pos"](rows) == [
        {**s, "guid": f"row-{i}"} for i, s in enumerate(tagged)
    ]


HUB_MALFORMED: list[tuple[str, dict[str, Any], str]] = [
    (
        "klue_mrc",
        {
            "guid": "mrc-9",
            "title": "t",
            "context": "가나다라마",
            "is_impossible": False,
            "question_type": 1,
            "question": "q",
            "answers": {"answer_start": [1], "text": ["다라"]},
        },
        "klue/klue mrc row 0 (mrc-9): answers[0] '다라' does not match the context at "
        "answer_start 1 ('나다')",
    ),
    (
        "klue_mrc",
        {
            "guid": "mrc-9",
            "context": "가나다라마",
            "is_impossible": False,
            "question_type": 1,
            "question": "q",
            "answers": {"answer_start": [1, 2], "text": ["나"]},
        },
        "klue/klue mrc row 0 (mrc-9): answers has 2 answer_start values for 1 texts",
    ),
    (
        "klue_re",
        {
            "guid": "re-9",
            "sentence": "가나다",
            "subject_entity": {"word": "가", "start_idx": 0, "end_idx": 0, "type": "PER"},
            "object_entity": {"word": "다", "start_idx": 2, "end_idx": 2, "type": "ORG"},
            "label": 30,
        },
        "klue/klue re row 0 (re-9): label 30 is outside 0..29",
    ),
    (
        "klue_re",
        {
            "guid": "re-9",
            "sentence": "가나다",
            "subject_entity": {"word": "가", "start_idx": 0, "end_idx": 0, "type": "PER"},
            "object_entity": {"word": "다", "start_idx": 2, "end_idx": 3, "type": "ORG"},
            "label": 0,
        },
        "klue/klue re row 0 (re-9): object_entity.word '다' does not match sentence[2:3+1]",
    ),
    (
        "klue_sts",
        {"guid": "sts-9", "sentence1": "a", "sentence2": "b"},
        "klue/klue sts row 0 (sts-9): labels is missing",
    ),
    ("klue_dp", {**DP_ROW, "head": [3, 3]}, "klue/klue dp row 0: columns differ in length"),
    (
        "klue_dp",
        {**DP_ROW, "head": [3, 5, 0]},
        "klue/klue dp row 0, word 2: HEAD 5 is outside 0..3",
    ),
    (
        "klue_dp",
        {**DP_ROW, "head": [3, 0, 0]},
        "klue/klue dp row 0, word 3: a second root (words [2, 3] have HEAD 0)",
    ),
    (
        "klue_dp",
        {**DP_ROW, "head": [2, 1, 0]},
        "klue/klue dp row 0, word 1: words [1, 2] form a cycle of heads",
    ),
    (
        "klue_dp",
        {**DP_ROW, "index": [1, 3, 2]},
        "klue/klue dp row 0, word 2: expected INDEX 2, got 3",
    ),
    (
        "klue_dp",
        {**DP_ROW, "lemma": ["철수 가", None, "x"]},
        "klue/klue dp row 0, word 2: lemma is not a string (got null)",
    ),
    # A tag the sentence's marks contradict, as in a release file: '의' extends <강릉:LC>.
    (
        "klue_ner",
        {
            "sentence": "<강릉:LC>의 방향",
            "tokens": list("강릉의 방향"),
            "ner_tags": [2, 3, 3, 12, 12, 12],
        },  # fmt: skip
        "klue/klue ner row 0: '의' is tagged I-LC but the sentence marks no entity there",
    ),
]


@pytest.mark.parametrize(("adapter", "row", "expected"), HUB_MALFORMED)
def test_malformed_hub_rows(adapter: str, row: dict[str, Any], expected: str) -> None:
    with pytest.raises(LayerftError) as caught:
        HUB_ADAPTERS[adapter]([row])
    assert expected in str(caught.value)
    assert "\n" not in str(caught.value)


def test_hub_adapter_refuses_no_rows() -> None:
    with pytest.raises(LayerftError, match="klue/klue re: no rows"):
        HUB_ADAPTERS["klue_re"]([])


def test_a_folder_of_klues_release_folders_serves_every_task(shared_data, tmp_path) -> None:
    # KLUE ships a folder per task (klue-nli-v1.1/, klue-dp-v1.1/, ...): the klue_paper grid's
    # one data_dir for every task had to be a folder the user merged them into.
    from layerft.config import check_data_files

    klue = shared_data / "klue"
    run = compose_run("target_task=klue_sts", f"target_task.data_dir={klue}",
                      "injection_task=klue_dp", f"injection_task.data_dir={klue}")  # fmt: skip
    check_data_files(run)
    assert (
        run.target_task.split_file("train") == klue / "klue-sts-v1.1" / "klue-sts-v1.1_train.json"
    )
    assert (
        run.injection_task.split_file("validation")
        == klue / "klue-dp-v1.1" / "klue-dp-v1.1_dev.tsv"
    )
    # A file beside the folders is read first; one in two folders is named, not picked.
    for copy_of in ("a", "b"):
        (tmp_path / copy_of).mkdir()
        for split in ("train", "dev"):
            name = f"klue-sts-v1.1_{split}.json"
            (tmp_path / copy_of / name).write_bytes((klue / "klue-sts-v1.1" / name).read_bytes())
    two = compose_run(
        "target_task=klue_sts", f"target_task.data_dir={tmp_path}", "injection_task=none"
    )
    with pytest.raises(LayerftError) as caught:
        check_data_files(two)
    assert str(caught.value) == (
        f"target_task.data_dir: no klue-sts-v1.1_train.json in {tmp_path} but in each of "
        f"{tmp_path / 'a'}, {tmp_path / 'b'}: give one as target_task.data_dir "
        "(target_task.release_files.train)"
    )
    (tmp_path / "klue-sts-v1.1_train.json").write_bytes(b"[]")
    assert two.target_task.split_file("train") == tmp_path / "klue-sts-v1.1_train.json"
    with pytest.raises(LayerftError, match=r"^target_task.data_dir: no klue-nli-v1.1_train.json in "
                       rf"{re.escape(str(tmp_path))} or a folder inside it \("):  # fmt: skip
        check_data_files(compose_run("target_task=klue_nli", f"target_task.data_dir={tmp_path}", "injection_task=none"))  # fmt: skip


def test_another_tasks_release_file_given_as_data_files_is_named_as_its(shared_data) -> None:
    # klue_nli reading KLUE-STS's file had pointed only at a 'gold_label' the file never had.
    from layerft.data_check import record_error

    sts = shared_data / "klue" / "klue-sts-v1.1"
    run = compose_run("injection_task=none", "target_task=klue_nli",
                      f"target_task.data_files.train={sts / 'klue-sts-v1.1_train.json'}",
                      f"target_task.data_files.validation={sts / 'klue-sts-v1.1_dev.json'}")  # fmt: skip
    error = record_error(run)
    assert error is not None and error.endswith(
        "; a release file of 'klue_sts', 'klue_sts_biencoder' is also named "
        "klue-sts-v1.1_train.json: if this is one, choose that task, not 'klue_nli'"
    ), error
