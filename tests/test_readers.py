"""Readers: every format round-trips from a tiny fixture, every fault names its file and line."""

from __future__ import annotations

import csv
import logging
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from layerft.errors import LayerftError
from layerft.readers import RELEASE_READERS, read_records, record_line
from layerft.readers_conll import read_conll2003
from layerft.readers_conllu import read_conllu
from layerft.readers_glue import GLUE_READERS
from layerft.readers_klue import read_klue_mrc, read_klue_sts
from layerft.readers_klue_ner import read_klue_ner
from layerft.readers_klue_re import read_klue_re
from layerft.readers_klue_tsv import read_klue_dp, read_klue_pos
from layerft.readers_squad import read_squad, read_squad_v2

# The release header: its column-name line holds real tabs, yet is a comment, not a sentence.
DP_HEADER = (
    "## 토큰, 띄어쓰기 구분자 : \\t\n"
    "## 토큰 구분자 : \\n\n"
    "## 문장 구분자 : \\n\\n\n"
    "## 주석 : ##\n"
    "## 칼럼명 : INDEX\tWORD_FORM\tLEMMA\tPOS\tHEAD\tDEPREL\n"
)
DP_TEXT = DP_HEADER + (
    "## dp-1\t철수가 밥을 먹었다.\n"
    "1\t철수가\t철수 가\tNNP+JKS\t3\tNP_SBJ\n"
    "2\t밥을\t밥 을\tNNG+JKO\t3\tNP_OBJ\n"
    "3\t먹었다.\t먹 었 다 .\tVV+EP+EF+SF\t0\tVP\n"
    "\n"
    "## dp-2\t3% 올랐다.\n"
    "1\t3%\t0\tSN+SW\t2\tNP\n"
    "2\t올랐다.\t오르 았 다 .\tVV+EP+EF+SF\t0\tVP\n"
    "\n"
)
NER_HEADER = (
    "## 토큰, 레이블 구분자 : \\t\n"
    "## 토큰 구분자 : \\n\n"
    "## 문장 구분자 : \\n\\n\n"
    "## 주석 : ##\n"
    "## 컬럼명 : CHAR\tNE_TAG\n"
)
# The space inside '<1월 2일:DT>' is tagged I-DT, as in the release.
NER_TEXT = NER_HEADER + (
    "## ner-1\t<철수:PS> <1월 2일:DT>에\n"
    "철\tB-PS\n수\tI-PS\n \tO\n1\tB-DT\n월\tI-DT\n \tI-DT\n2\tI-DT\n일\tI-DT\n에\tO\n"
    "\n"
    "## ner-2\t네 !\n"
    "네\tO\n \tO\n!\tO\n"
)


def _write(tmp_path: Path, name: str, text: str) -> Path:
    """Write `text` as UTF-8 to tmp_path/name."""
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_json_array(tmp_path: Path) -> None:
    path = _write(tmp_path, "dev.json", '[\n  {"guid": "a", "label": 1},\n  {"guid": "b"}\n]\n')
    assert read_records(path) == [{"guid": "a", "label": 1}, {"guid": "b"}]


def test_json_lines_in_json_and_jsonl(tmp_path: Path) -> None:
    text = '{"text": "x", "label": 0}\n\n{"text": "y", "label": 2}\n'
    expected = [{"text": "x", "label": 0}, {"text": "y", "label": 2}]
    assert read_records(_write(tmp_path, "a.json", text)) == expected
    assert read_records(_write(tmp_path, "a.jsonl", text)) == expected


def test_csv_types_columns_like_hugging_face(tmp_path: Path) -> None:
    text = 'id,text,label,score\n007,"a, quoted ""b""",1,0.5\n8,plain,0,2\n\n'
    assert read_records(_write(tmp_path, "train.csv", text)) == [
        {"id": 7, "text": 'a, quoted "b"', "label": 1, "score": 0.5},
        {"id": 8, "text": "plain", "label": 0, "score": 2.0},
    ]


def test_csv_stray_cell_in_a_number_column_stays_itself(tmp_path: Path) -> None:
    # One odd cell does not retype its column, so the check that rejects it names its record.
    text = "text,label,score\na,1,3\nb,2.5,3.5\nc,Sports,4\nd,2,\n"
    assert [r["label"] for r in read_records(_write(tmp_path, "train.csv", text))] == [
        1, 2.5, "Sports", 2,
    ]  # fmt: skip
    assert [r["score"] for r in read_records(tmp_path / "train.csv")] == [3, 3.5, 4, None]
    names = "name,label\nx,World\ny,Sports\nz,2\n"  # mostly text: a stray number stays text
    assert [r["label"] for r in read_records(_write(tmp_path, "names.csv", names))] == [
        "World", "Sports", "2",
    ]  # fmt: skip


def test_csv_empty_cell_in_a_number_column_is_null(tmp_path: Path) -> None:
    text = "text,label,score,note\na,1,0.5,\nb,,,x\n"
    assert read_records(_write(tmp_path, "train.csv", text)) == [
        {"text": "a", "label": 1, "score": 0.5, "note": ""},  # a text column keeps ""
        {"text": "b", "label": None, "score": None, "note": "x"},
    ]


def test_csv_cell_spanning_lines_is_one_text_and_a_warning_naming_its_lines(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = _write(tmp_path, "train.csv", 'text,label\n"one\ntwo",1\nthree,0\n"four\n\nfive",1\n')
    with caplog.at_level(logging.WARNING):
        records = read_records(path)
    assert records == [
        {"text": "one\ntwo", "label": 1},
        {"text": "three", "label": 0},
        {"text": "four\n\nfive", "label": 1},
    ]
    assert [r.getMessage() for r in caplog.records] == [
        f"{path}:2-3: 2 row(s) hold a quoted cell that spans lines, read as one text with its line "
        "breaks; an unbalanced quote would instead have merged the rows between into one record"
    ]


def test_tsv_keeps_quotes_literal(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    text = 'id\tdocument\tlabel\n1\t"최고 \'명작\t1\n2\tx1\t0\n3\t"명작"\t1\n'
    with caplog.at_level(logging.WARNING):
        assert read_records(_write(tmp_path, "ratings.tsv", text)) == [
            {"id": 1, "document": "\"최고 '명작", "label": 1},
            {"id": 2, "document": "x1", "label": 0},
            {"id": 3, "document": '"명작"', "label": 1},  # a review in quotes: no CSV quoting
        ]
    assert not caplog.records


def _nsmc_tsv(shared_data: Path, tmp_path: Path, name: str, **writer: Any) -> tuple[Path, list]:
    """The NSMC sample as a .tsv written by `csv.writer(**writer)`, and its records (text ids)."""
    records = read_records(shared_data / "nsmc" / "train.jsonl")
    path = tmp_path / name
    with path.open("w", encoding="utf-8", newline="") as file:
        out = csv.writer(file, delimiter="\t", lineterminator="\n", **writer)
        out.writerows([["id", "document", "label"], *([r[k] for k in r] for r in records)])
    return path, records


def test_tsv_as_its_release_is_written_reads_exactly_and_quietly(
    shared_data: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # NSMC's ratings files: quotes are text, unbalanced or wrapping a review, never quoting.
    path, records = _nsmc_tsv(shared_data, tmp_path, "ratings.tsv", quoting=csv.QUOTE_NONE,
                              quotechar=None)  # fmt: skip
    assert sum('"' in r["document"] for r in records) >= 5
    with caplog.at_level(logging.WARNING):
        assert read_records(path, text_columns=["id", "document"]) == records
    assert not caplog.records


def test_tsv_quoted_by_a_csv_writer_is_read_as_written_and_warned_once(
    shared_data: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # pandas' to_csv(sep="\t") quotes a field holding a quote; a .tsv is read unquoted.
    path, records = _nsmc_tsv(shared_data, tmp_path, "pandas.tsv")
    with caplog.at_level(logging.WARNING):
        read = read_records(path, text_columns=["id", "document"])
    changed = [n for n, (a, b) in enumerate(zip(records, read, strict=True), 1) if a != b]
    assert len(changed) == 5
    first = read[changed[0] - 1]["document"]
    assert first == '"' + records[changed[0] - 1]["document"].replace('"', '""') + '"'
    [message] = [r.getMessage() for r in caplog.records]
    assert message.startswith(
        f"{path}:{changed[0] + 1}: 5 of 300 records hold a field that looks quoted by a CSV "
        f"writer (first: record {changed[0]}, column 'document': {first[:57]}...), kept as written"
    )
    assert "a .tsv file is read unquoted" in message and "or as .csv or .jsonl" in message


def test_parquet(tmp_path: Path) -> None:
    path = tmp_path / "train.parquet"
    pq.write_table(pa.table({"text": ["a", "b"], "label": [0, 1]}), path)
    assert read_records(path) == [{"text": "a", "label": 0}, {"text": "b", "label": 1}]


def test_record_line_of_a_sentence_block_skips_the_release_header(tmp_path: Path) -> None:
    path = _write(tmp_path, "klue-dp-v1.1_dev.tsv", DP_TEXT)
    assert [record_line(path, "klue_dp", n) for n in (1, 2, 3)] == [6, 11, None]
    assert record_line(path, "klue_mrc", 1) is None  # nested questions: no line of their own


def test_klue_dp(tmp_path: Path) -> None:
    assert read_klue_dp(_write(tmp_path, "klue-dp-v1.1_dev.tsv", DP_TEXT)) == [
        {
            "guid": "dp-1",
            "sentence": "철수가 밥을 먹었다.",
            "words": ["철수가", "밥을", "먹었다."],
            "lemmas": ["철수 가", "밥 을", "먹 었 다 ."],
            "pos": ["NNP+JKS", "NNG+JKO", "VV+EP+EF+SF"],
            "heads": [3, 3, 0],
            "deprels": ["NP_SBJ", "NP_OBJ", "VP"],
        },
        {
            "guid": "dp-2",
            "sentence": "3% 올랐다.",
            "words": ["3%", "올랐다."],
            "lemmas": ["0", "오르 았 다 ."],
            "pos": ["SN+SW", "VV+EP+EF+SF"],
            "heads": [2, 0],
            "deprels": ["NP", "VP"],
        },
    ]


def test_klue_pos_splits_morphemes_and_falls_back_on_count_mismatch(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # '3%' has one lemma ('0') for two tags: it stays one token, its word form, with its first tag.
    path = _write(tmp_path, "klue-dp-v1.1_dev.tsv", DP_TEXT)
    with caplog.at_level(logging.WARNING):
        records = read_klue_pos(path)
    assert [r.getMessage() for r in caplog.records] == [
        f"{path}: 1 eojeol(s) whose LEMMA morphemes and POS tags differ in number kept whole, "
        "tagged with their first tag (first: dp-2 '3%')"
    ]
    assert records == [
        {
            "guid": "dp-1",
            "tokens": ["철수", "가", "밥", "을", "먹", "었", "다", "."],
            "tags": ["NNP", "JKS", "NNG", "JKO", "VV", "EP", "EF", "SF"],
        },
        {
            "guid": "dp-2",
            "tokens": ["3%", "오르", "았", "다", "."],
            "tags": ["SN", "VV", "EP", "EF", "SF"],
        },
    ]


def test_klue_ner_drops_whitespace(tmp_path: Path) -> None:
    assert read_klue_ner(_write(tmp_path, "klue-ner-v1.1_dev.tsv", NER_TEXT)) == [
        {
            "guid": "ner-1",
            "sentence": "<철수:PS> <1월 2일:DT>에",
            "tokens": ["철", "수", "1", "월", "2", "일", "에"],
            "tags": ["B-PS", "I-PS", "B-DT", "I-DT", "I-DT", "I-DT", "O"],
            "words": ["철수", "1월", "2일에"],
        },
        {"guid": "ner-2", "sentence": "네 !", "tokens": ["네", "!"], "tags": ["O", "O"],
         "words": ["네", "!"]},
    ]  # fmt: skip


# KLUE-NER v1.1 dev line 95154 (klue-ner-v1_dev_01601-wikitree): the mark '< 24살:QT>' takes in
# the space before it, so the space is B-QT and '24살' is I-QT. A space of another type comes next.
NER_TAGGED_SPACES = NER_HEADER + (
    "## ner-1\t최근< 24살:QT>이\n"
    "최\tO\n근\tO\n \tB-QT\n2\tI-QT\n4\tI-QT\n살\tI-QT\n이\tO\n"
    "\n"
    "## ner-2\t<철수:PS> 씨\n"
    "철\tB-PS\n수\tI-PS\n \tI-LC\n씨\tO\n"
)


def test_klue_ner_drops_a_tagged_space_and_keeps_the_orphan_run_as_klue(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = _write(tmp_path, "klue-ner-v1.1_dev.tsv", NER_TAGGED_SPACES)
    with caplog.at_level(logging.WARNING):
        records = read_klue_ner(path)
    assert [(r["tokens"], r["tags"]) for r in records] == [
        (list("최근24살이"), ["O", "O", "I-QT", "I-QT", "I-QT", "O"]),
        (list("철수씨"), ["B-PS", "I-PS", "O"]),
    ]
    assert [r.getMessage() for r in caplog.records] == [
        f"{path}: 2 whitespace rows tagged B- or I- of an entity not open were dropped, as "
        "KLUE-baseline drops every space, and the I- tags after them kept as KLUE keeps them "
        "(first: line 9, ner-1, tagged B-QT)"
    ]


def test_release_readers_is_read_only() -> None:
    assert dict(RELEASE_READERS) == {
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
        "conll2003": read_conll2003,
        "conllu": read_conllu,
    }
    with pytest.raises(TypeError):
        RELEASE_READERS["other"] = read_records  # type: ignore[index]


def _dp_rows(*rows: str) -> str:
    """A DP file with the release header and one sentence made of `rows` (sentence on line 6)."""
    return DP_HEADER + "## s1\t가 나\n" + "".join(row + "\n" for row in rows)


def _ner_rows(*rows: str) -> str:
    """A NER file with the release header and one sentence made of `rows` (sentence on line 6)."""
    return NER_HEADER + "## s1\t가 나\n" + "".join(row + "\n" for row in rows)


Reader = Callable[[Path], list[dict[str, Any]]]

MALFORMED: list[tuple[str, str, Reader, str]] = [
    ("data.jsonl", '{"a": 1}\n{"a": 2,}\n', read_records, "data.jsonl:2: invalid JSON"),
    ("data.jsonl", '{"a": 1}\n\n[1]\n', read_records, "data.jsonl:3: expected a JSON object"),
    ("data.json", '{"a": 1}\n{"a" 2}\n', read_records, "data.json:2: invalid JSON"),
    (
        "dev.json",
        '[\n  {"a": 1},\n  {"a": 2}\n  {"a": 3}\n]\n',
        read_records,
        "dev.json:4: invalid JSON (Expecting ',' delimiter)",
    ),
    (
        "dev.json",
        '[\n  {"a": 1},\n  {"a": [1,\n 2]},\n  3\n]\n',
        read_records,
        "dev.json:5: record 3 is not an object",
    ),
    ("dev.json", "[]\n", read_records, "dev.json: no records"),
    # Half of a UTF-16 pair is no character (UTF-8 cannot hold it); a whole pair is one.
    (
        "data.jsonl",
        '{"a": "\\ud83d\\ude00 ok"}\n{"a": "cut \\ud83d"}\n',
        read_records,
        "data.jsonl:2: a string holds \\ud83d, half of a UTF-16 surrogate pair",
    ),
    (
        "dev.json",
        '[\n  {"a": "x"},\n  {"a": "\\uDE00 y"}\n]\n',
        read_records,
        "dev.json:3: a string holds \\ude00, half",
    ),
    (  # the lone half's line, not that of a whole pair with the same high half before it
        "dev.json",
        '[\n  {"a": "\\ud83d\\ude00"},\n  {"a": "\\ud83d y"}\n]\n',
        read_records,
        "dev.json:3: a string holds \\ud83d, half",
    ),
    (
        "data.jsonl",
        '{"a": 1}\n{"a": ' + "9" * 5000 + "}\n",
        read_records,
        "data.jsonl:2: a number too long",
    ),
    (
        "data.jsonl",
        '{"a": 1}\n{"a": ' + "[" * 100_000 + "\n",
        read_records,
        "data.jsonl:2: JSON nested too deeply",
    ),
    ("train.csv", "a,b,c\n1,2,3\n\n4,5\n", read_records, "train.csv:4: expected 3 fields, got 2"),
    ("train.csv", "a,b,a\n1,2,3\n", read_records, "train.csv:1: column 3 'a' repeats"),
    ("train.csv", "a,b\n", read_records, "train.csv: no records"),
    ("train.tsv", "a\tb\n1\t2\t3\n", read_records, "train.tsv:2: expected 2 fields, got 3"),
    (  # a file separated otherwise than its extension says: its header read as one column
        "tab.csv",
        "text\tlabel\nhi\t0\na, b\t1\n",
        read_records,
        "tab.csv:3: expected 1 fields, got 2 (the header was read as one column though it holds "
        "tabs: a .csv file is read comma-separated, a .tsv tab-separated; name it .tsv)",
    ),
    (  # no row holds a comma either: every row is one field
        "semi.csv",
        "text;label\nhi;0\nho;1\n",
        read_records,
        "semi.csv:1: every row reads as one field (the header was read as one column though it "
        "holds ';': a .csv file is read comma-separated, a .tsv tab-separated; write it "
        "comma-separated (.csv) or tab-separated (.tsv))",
    ),
    (
        "comma.tsv",
        "\ntext,label\nhi,0\n",
        read_records,
        "comma.tsv:2: every row reads as one field (the header was read as one column though it "
        "holds commas: a .csv file is read comma-separated, a .tsv tab-separated; name it .csv)",
    ),
    (  # KLUE's release TSV given as data_files: its '## ' comment read as a header
        "klue-dp-v1.1_train.tsv",
        _dp_rows("1\t가\t가\tNNG\t0\tNP"),
        read_records,
        "klue-dp-v1.1_train.tsv:5: expected 1 fields, got 6 (its first line is a '##' comment, "
        "as in KLUE's release .tsv files: give their folder as the task's data_dir, not data_files)",
    ),
    ("empty.jsonl", "", read_records, "empty.jsonl: empty file"),
    ("blank.csv", "\n  \n", read_records, "blank.csv: empty file"),
    ("data.parquet", "not parquet", read_records, "data.parquet: not a readable Parquet file"),
    ("data.xml", "<a/>", read_records, "supported: .csv, .json, .jsonl, .parquet, .tsv"),
    (
        "dp.tsv",
        _dp_rows("1\t가\t가\tNNG\t0\tNP", "2\t나\t나\tNNG"),
        read_klue_dp,
        "dp.tsv:8: expected 6 tab-separated columns (INDEX WORD_FORM LEMMA POS HEAD DEPREL), got 4",
    ),
    (
        "dp.tsv",
        _dp_rows("1\t가\t가\tNNG\t\tNP"),
        read_klue_dp,
        "dp.tsv:7: HEAD '' is not an integer",
    ),
    (
        "dp.tsv",
        _dp_rows("1\t가\t가\tNNG\t0\tNP", "3\t나\t나\tNNG\t1\tNP"),
        read_klue_dp,
        "dp.tsv:8: expected INDEX 2, got 3",
    ),
    (
        "dp.tsv",
        _dp_rows("1\t가\t가\tNNG\t0\tNP", "2\t나\t나\tNNG\t5\tNP"),
        read_klue_dp,
        "dp.tsv:8: HEAD 5 is outside 0..2",
    ),
    ("dp.tsv", _dp_rows("1\t가\t가\tNNG+\t0\tNP"), read_klue_dp, "dp.tsv:7: POS 'NNG+'"),
    ("dp.tsv", _dp_rows("1\t가\t \tNNG\t0\tNP"), read_klue_pos, "dp.tsv:7: LEMMA is empty"),
    (
        "dp.tsv",
        _dp_rows("1\t가\t가\tNNG\t0\tNP", "", "2\t나\t나\tNNG\t1\tNP"),
        read_klue_dp,
        "dp.tsv:9: row outside a sentence",
    ),
    (  # a header written with a space for its tab, and no blank line before it: read as a comment
        "dp.tsv",
        _dp_rows("1\t가\t가\tNNG\t0\tNP", "## s2 나", "1\t나\t나\tNNG\t0\tNP"),
        read_klue_dp,
        "dp.tsv:8: a '##' line inside a sentence: no '## <guid>\\t<sentence>' header (a tab",
    ),
    (  # the same after a blank line: named as the header it was meant to be, not its first row
        "dp.tsv",
        _dp_rows("1\t가\t가\tNNG\t0\tNP", "", "## s2 나", "1\t나\t나\tNNG\t0\tNP"),
        read_klue_dp,
        "dp.tsv:9: rows follow a '##' line that is no '## <guid>\\t<sentence>' header (a tab",
    ),
    (
        "dp.tsv",
        DP_HEADER + "## s1\t가\n\n## s2\t나\n",
        read_klue_dp,
        "dp.tsv:6: sentence s1 has no",
    ),
    ("dp.tsv", DP_HEADER, read_klue_dp, "dp.tsv: no '## <guid>"),
    ("ner.tsv", _ner_rows("가\tO", "나\tO\tO"), read_klue_ner, "ner.tsv:8: expected 2 tab-sep"),
    ("ner.tsv", _ner_rows("가\tO", "나\tX-PS"), read_klue_ner, "ner.tsv:8: tag 'X-PS'"),
    ("ner.tsv", _ner_rows("가나\tO"), read_klue_ner, "ner.tsv:7: CHAR must be one character"),
    (
        "dp.tsv",
        _dp_rows("1\t가\t가\tNNG\t0\tNP", "", "## s1\t가 나", "1\t가\t가\tNNG\t0\tNP"),
        read_klue_dp,
        "dp.tsv:9: s1 repeats the sentence on line 6; remove one of them",
    ),
    (
        "nli.json",
        '[{"guid": "n-1", "label": 0},\n {"guid": "n-2", "label": 1},\n {"guid": "n-1", "label": 0}]',
        read_records,
        "nli.json:3: guid n-1 repeats the record on line 1; remove one of them",
    ),
    # The rows must spell the sentence '가 나': a lost row, a lost last row, an extra row.
    (
        "ner.tsv",
        _ner_rows("가\tO", "나\tO"),
        read_klue_ner,
        "ner.tsv:8: s1: the CHAR rows differ from the sentence (marks removed) at character 2: "
        "rows '나', sentence ' 나' (a lost or extra row?)",
    ),
    (
        "ner.tsv",
        _ner_rows("가\tO", " \tO"),
        read_klue_ner,
        "ner.tsv:8: s1: the CHAR rows differ "
        "from the sentence (marks removed) at character 3: rows '', sentence '나'",
    ),
    (
        "ner.tsv",
        _ner_rows("가\tO", " \tO", "나\tO", "다\tO"),
        read_klue_ner,
        "ner.tsv:10: s1: the CHAR rows differ from the sentence (marks removed) at character 4: "
        "rows '다', sentence ''",
    ),
    (
        "ner.tsv",
        _ner_rows("가\tI-PS", " \tO", "나\tO"),
        read_klue_ner,
        "ner.tsv:7: s1: I-PS does not follow B-PS or I-PS (previous tag O)",
    ),
    (
        "ner.tsv",
        _ner_rows("가\tB-OG", " \tO", "나\tI-PS"),
        read_klue_ner,
        "ner.tsv:9: s1: I-PS does not follow B-PS or I-PS (previous tag B-OG)",
    ),
    # Tags the sentence's marks contradict: an entity retyped, erased, extended by a row.
    (
        "ner.tsv",
        NER_HEADER + "## s1\t<가:PS> 나\n가\tB-OG\n \tO\n나\tO\n",
        read_klue_ner,
        "ner.tsv:7: s1: '가' is tagged B-OG but the sentence marks <가:PS>",
    ),
    (
        "ner.tsv",
        NER_HEADER + "## s1\t<가:PS> 나\n가\tO\n \tO\n나\tO\n",
        read_klue_ner,
        "ner.tsv:7: s1: '가' is tagged O but the sentence marks <가:PS>",
    ),
    (
        "ner.tsv",
        NER_HEADER + "## s1\t<가:PS> 나\n가\tB-PS\n \tO\n나\tI-PS\n",
        read_klue_ner,
        "ner.tsv:9: s1: '나' is tagged I-PS but the sentence marks no entity there",
    ),
    # JSON lines name records by guid as arrays do; no object names a key twice.
    (  # its lines are the records', though a label spells the guid on line 1
        "nli.jsonl",
        '{"guid": "n-0", "label": "n-1"}\n{"guid": "n-1", "label": 1}\n{"guid": "n-2"}\n'
        '{"guid": "n-1", "label": 0}\n',
        read_records,
        "nli.jsonl:4: guid n-1 repeats the record on line 2; remove one of them",
    ),
    (
        "nli.json",
        '[{"guid": "n-0", "label": "n-1"},\n {"guid": "n-1", "label": 1},\n {"guid":"n-1"}]',
        read_records,
        "nli.json:3: guid n-1 repeats the record on line 2; remove one of them",
    ),
    # A guid (KLUE's key) repeats in no format: CSV and TSV as JSON (a number when all digits).
    (
        "own.csv",
        'guid,text,label\n9,a,0\n\n10,b,1\n11,"c\nd",0\n10,e,1\n',
        read_records,
        "own.csv:7: guid 10 repeats the record on line 4; remove one of them",
    ),
    (
        "own.tsv",
        "guid\ttext\ng-1\ta\ng-1\tb\n",
        read_records,
        "own.tsv:3: guid g-1 repeats the record on line 2; remove one of them",
    ),
    (
        "snli.jsonl",
        '{"label": 1}\n{"label": 1, "text": "a", "label": 2}\n',
        read_records,
        "snli.jsonl:2: an object names 'label' twice (which value is meant?)",
    ),
    (
        "dev.json",
        '[{"a": 1},\n {"guid": "g-2", "a": 1, "a": 2}]',
        read_records,
        "dev.json: an object (guid g-2) names 'a' twice",
    ),
    # Text after a closing quote is not glued to the cell; the row is named by its first line.
    (
        "train.csv",
        'text,label\n"a" b,1\n',
        read_records,
        "train.csv:2: malformed row (',' expected after '\"')",
    ),
    (
        "train.csv",
        'text,label\n"ok",1\n"unclosed,0\nplain,1\nmore "x" here,0\n',
        read_records,
        "train.csv:3: malformed row (',' expected after '\"', read to line 5: an unbalanced quote?)",
    ),
    # LEMMA and POS counts differ in every eojeol: not the release's columns (a handful differ).
    (
        "dp.tsv",
        _dp_rows(
            "1\t가\t가\tNNG+JKS\t0\tNP", *(f"{i}\t나\t나\tNNG+JKS\t1\tNP" for i in range(2, 12))
        ),
        read_klue_pos,
        "dp.tsv: 11 of 11 eojeols have a different number of LEMMA morphemes and POS tags "
        "(first: s1 '가'); KLUE-DP's release has a handful",
    ),
]


@pytest.mark.parametrize(("name", "text", "reader", "expected"), MALFORMED)
def test_malformed_input_names_file_and_line(
    tmp_path: Path, name: str, text: str, reader: Reader, expected: str
) -> None:
    path = _write(tmp_path, name, text)
    with pytest.raises(LayerftError) as caught:
        reader(path)
    message = str(caught.value)
    assert expected in message
    assert "\n" not in message


def test_a_folder_given_as_a_data_file_is_named_as_one(tmp_path: Path) -> None:
    folder = tmp_path / "train.jsonl"
    folder.mkdir()
    with pytest.raises(LayerftError, match=rf"^{re.escape(str(folder))}: a folder, not a data"):
        read_records(folder)


def test_undecodable_bytes_name_their_line(tmp_path: Path) -> None:
    path = tmp_path / "data.jsonl"
    path.write_bytes(b'{"a": 1}\n{"a": "\xff"}\n')
    with pytest.raises(LayerftError, match=r"data\.jsonl:2: not UTF-8"):
        read_records(path)


@pytest.mark.parametrize("reader", [read_records, read_klue_dp, read_klue_pos, read_klue_ner])
def test_missing_file(tmp_path: Path, reader: Reader) -> None:
    with pytest.raises(LayerftError, match="data file not found: .*nope.json"):
        reader(tmp_path / "nope.json")


@pytest.mark.parametrize(
    ("relative", "count", "keys"),
    [
        ("klue/klue-nli-v1.1/klue-nli-v1.1_train.json", 300, {"premise", "gold_label"}),
        ("klue/klue-nli-v1.1/klue-nli-v1.1_dev.json", 90, {"premise", "gold_label"}),
        ("klue/klue-sts-v1.1/klue-sts-v1.1_train.json", 150, {"sentence1", "labels"}),
        ("klue/klue-sts-v1.1/klue-sts-v1.1_dev.json", 50, {"sentence1", "labels"}),
        ("snli/train.jsonl", 300, {"premise", "hypothesis", "label"}),
        ("snli/validation.jsonl", 100, {"premise", "hypothesis", "label"}),
        ("ag_news/train.jsonl", 200, {"text", "label"}),
        ("ag_news/test.jsonl", 60, {"text", "label"}),
        ("nsmc/train.jsonl", 300, {"id", "document", "label"}),
        ("nsmc/test.jsonl", 100, {"id", "document", "label"}),
    ],
)
def test_shared_records(shared_data: Path, relative: str, count: int, keys: set[str]) -> None:
    records = read_records(shared_data / relative)
    assert len(records) == count
    assert all(keys <= record.keys() for record in records)


@pytest.mark.parametrize(
    ("split", "count", "guid", "words", "heads"),
    [
        (
            "dev",
            100,
            "klue-dp-v1_dev_00300_wikitree",
            ["같은날", "중국", "매체"],
            [21, 3, 4, 21, 6, 7, 8, 9, 19, 13, 13, 13, 15, 15, 16, 17, 19, 19, 20, 21, 0],
        ),
        (
            "train",
            300,
            "klue-dp-v1_dev_00000_wikitree",
            ["'K팝스타3’", "유희열이", "홍정희의", "탈락에", "눈물을", "흘렸다."],
            [2, 6, 4, 6, 6, 0],
        ),
    ],
)
def test_shared_klue_dp(
    shared_data: Path, split: str, count: int, guid: str, words: list[str], heads: list[int]
) -> None:
    path = shared_data / "klue" / "klue-dp-v1.1" / f"klue-dp-v1.1_{split}.tsv"
    sentences = read_klue_dp(path)
    assert len(sentences) == count
    first = sentences[0]
    assert (first["guid"], first["words"][: len(words)], first["heads"]) == (guid, words, heads)
    pos = read_klue_pos(path)
    assert [record["guid"] for record in pos] == [sentence["guid"] for sentence in sentences]
    assert all(len(record["tokens"]) == len(record["tags"]) for record in pos)


def test_shared_klue_pos_mismatch_row(shared_data: Path) -> None:
    path = shared_data / "klue" / "klue-dp-v1.1" / "klue-dp-v1.1_train.tsv"
    record = next(r for r in read_klue_pos(path) if r["guid"] == "klue-dp-v1_dev_00244_wikitree")
    at = record["tokens"].index("3%")
    assert record["tags"][at] == "SN"
    assert record["tokens"][at + 1 : at + 3] == ["포인트", "("]


@pytest.mark.parametrize(("split", "count"), [("train", 300), ("dev", 100)])
def test_shared_klue_ner(shared_data: Path, split: str, count: int) -> None:
    sentences = read_klue_ner(shared_data / "klue" / "klue-ner-v1.1" / f"klue-ner-v1.1_{split}.tsv")
    assert len(sentences) == count
    for sentence in sentences:
        plain = re.sub(r"<([^<>]+):(?:PS|LC|OG|DT|TI|QT)>", r"\1", sentence["sentence"])
        assert "".join(sentence["tokens"]) == "".join(plain.split())
        assert len(sentence["tags"]) == len(sentence["tokens"])
        assert set(sentence["tags"]) <= {"O"} | {
            f"{bio}-{kind}" for bio in "BI" for kind in ("PS", "LC", "OG", "DT", "TI", "QT")
        }


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("own.jsonl", '{"id": "d1", "q": "a"}\n{"id": "d1", "q": "b"}\n'),
        ("own.json", '[{"id": 5, "q": "a"},\n {"id": 5, "q": "b"}]'),
        ("own.csv", "id,q\nd1,a\nd1,b\n"),
    ],
)
def test_a_repeated_id_is_read(tmp_path: Path, name: str, text: str) -> None:
    # Only a guid is a record's own key: an id may name a document several records share (README).
    assert [r["q"] for r in read_records(_write(tmp_path, name, text))] == ["a", "b"]


@pytest.mark.parametrize(
    ("name", "text", "read"),
    [
        ("own.csv", "guid,q\n7,a\n007,b\n", ["a", "b"]),
        ("own.tsv", "guid\tq\n7\ta\n007\tb\n", ["a", "b"]),
        ("own.csv", "guid,q\n,a\n,b\nx,c\n", ["a", "b", "c"]),
    ],
)
def test_guids_that_read_as_one_number_are_two_guids(
    tmp_path: Path, name: str, text: str, read: list[str]
) -> None:
    # The guid check read the cell as a number: `007` repeated `7` (a legal file refused, its
    # message naming `guid 7` at the line of 007); an empty cell names no record.
    assert [r["q"] for r in read_records(_write(tmp_path, name, text))] == read
