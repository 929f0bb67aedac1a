"""Reader lines a second mutation audit found unguarded: CSV/TSV data files, JSON records, KLUE's
TSV and RE releases and the shared field checks, on tiny hand-made files (each test names the
mutation it kills)."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
from test_audit_readers import _answerable, _squad
from test_klue_readers import DP_ROW
from test_readers import DP_HEADER, _dp_rows, _write

from layerft.errors import LayerftError
from layerft.readers import HUB_ADAPTERS, read_records, record_line
from layerft.readers_klue_re import read_klue_re
from layerft.readers_klue_tsv import pos_records, read_klue_dp
from layerft.readers_squad import read_squad


def _error(path: Path) -> str:
    """The one-line error reading `path` raises."""
    with pytest.raises(LayerftError) as caught:
        read_records(path)
    return str(caught.value)


# --- CSV and TSV ------------------------------------------------------------------------------


def test_a_csv_header_opening_with_hashes_gets_no_klue_hint_when_it_has_columns(
    tmp_path: Path,
) -> None:
    # Kills `_release_hint` without `len(header) == 1`: '## note' is a column of two, not KLUE's
    # one-field comment line.
    path = _write(tmp_path, "train.csv", "## note,b\n1,2,3\n")
    assert _error(path) == f"{path}:2: expected 2 fields, got 3"


def test_a_one_hash_comment_is_not_named_as_klues_release_header(tmp_path: Path) -> None:
    # Kills `startswith("#")` for `startswith("##")` in `_release_hint`.
    path = _write(tmp_path, "train.tsv", "# comment\n1\t2\n")
    assert _error(path) == f"{path}:2: expected 1 fields, got 2"


def test_a_header_of_two_columns_is_not_said_to_read_as_one(tmp_path: Path) -> None:
    # Kills `_separator_hint` without `len(header) == 1`: the header 'text<TAB>x,label' is two
    # comma-separated columns, the first holding a tab; the row of three is the fault.
    path = _write(tmp_path, "train.csv", "text\tx,label\n1,2,3\n")
    assert _error(path) == f"{path}:2: expected 2 fields, got 3"


def test_a_quoted_csv_column_name_holding_a_comma_reads(tmp_path: Path) -> None:
    # Kills `_separator_hint` without `separator != delimiter`: one quoted column 'a,b' is a
    # valid one-column CSV, not a file separated otherwise than its extension says.
    assert read_records(_write(tmp_path, "one.csv", '"a,b"\nx\n')) == [{"a,b": "x"}]
    path = _write(tmp_path, "two.csv", '"a,b"\nx,y\n')
    assert _error(path) == f"{path}:2: expected 1 fields, got 2"


def test_a_header_spanning_lines_is_named_by_its_first_line_when_it_reads_as_one_field(
    tmp_path: Path,
) -> None:
    # Kills `header_line = reader.line_num` for `first`: the quoted header opens on line 1.
    path = _write(tmp_path, "semi.csv", '"a\nb;c"\n1\n')
    assert _error(path).startswith(f"{path}:1: every row reads as one field")


def test_a_column_error_in_a_header_spanning_lines_names_the_line_of_the_column(
    tmp_path: Path,
) -> None:
    # Kills `_check_header(path, row, first)`: the header spans lines 1-2 and the repeated 'c'
    # is on line 2.
    path = _write(tmp_path, "train.csv", '"a\nb",c,c\n1,2,3\n')
    assert _error(path) == f"{path}:2: column 3 'c' repeats an earlier one"


def test_a_row_of_too_many_fields_spanning_lines_is_named_by_the_line_it_ends_on(
    tmp_path: Path,
) -> None:
    # Kills `{first}` for `{reader.line_num}` in the field-count error: the row spans lines 2-3
    # and its extra field ',2' is on line 3.
    path = _write(tmp_path, "train.csv", 'a,b\n"x\ny",1,2\n')
    assert _error(path) == f"{path}:3: expected 2 fields, got 3"


def test_a_tsv_warning_counts_records_not_fields(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Kills `len(found)` for the number of distinct records: one record holds two quoted fields.
    path = _write(tmp_path, "pandas.tsv", 'a\tb\nplain\tx\n"x ""q"" y"\t"""z"""\n')
    with caplog.at_level(logging.WARNING):
        records = read_records(path)
    assert records[1] == {"a": '"x ""q"" y"', "b": '"""z"""'}
    [message] = [r.getMessage() for r in caplog.records]
    assert message.startswith(
        f"{path}:3: 1 of 2 records hold a field that looks quoted by a CSV writer (first: "
        """record 2, column 'a': "x ""q"" y"), kept as written"""
    )


# --- shared field checks ----------------------------------------------------------------------


def test_a_span_that_is_no_object_is_named_by_its_index(tmp_path: Path) -> None:
    # Kills `rpartition('.')[2]` for `[0]` in `record_field`: 'answers[0].text' is looked up in
    # answers[0], which is the fault, not 'text'.
    path = _squad(tmp_path, _answerable(answers=["Paris"]))
    with pytest.raises(LayerftError) as caught:
        read_squad(path)
    assert str(caught.value) == f"{path}:1: q1: answers[0] is not an object"


# --- KLUE's TSV releases ----------------------------------------------------------------------


def _dp_error(tmp_path: Path, text: str) -> str:
    """The one-line error reading `text` as a KLUE-DP release file (dp.tsv) raises."""
    path = _write(tmp_path, "dp.tsv", text)
    with pytest.raises(LayerftError) as caught:
        read_klue_dp(path)
    return str(caught.value).removeprefix(f"{path}")


def test_a_comment_between_a_sentence_header_and_its_rows_is_skipped(tmp_path: Path) -> None:
    # Kills `elif current is not None:` (dropping `and current.rows`): a '##' line before the
    # sentence's first row is a comment, not a sentence cut short.
    text = DP_HEADER + "## s1\t가\n## note\n1\t가\t가\tNNG\t0\tNP\n"
    [record] = read_klue_dp(_write(tmp_path, "dp.tsv", text))
    assert (record["guid"], record["words"], record["heads"]) == ("s1", ["가"], [0])


def test_a_row_of_only_tabs_is_a_malformed_row_not_a_blank_line(tmp_path: Path) -> None:
    # Kills `if not line.strip():` (dropping `"\t" not in line`): read as a blank line, the row
    # of five tabs would end the sentence and be lost without a word.
    text = _dp_rows("1\t가\t가\tNNG\t0\tNP", "\t\t\t\t\t")
    assert _dp_error(tmp_path, text) == ":8: INDEX '' is not an integer"


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        ("1\t가\t가\tNNG\t0\t ", ":7: DEPREL is empty"),  # kills dropping ("DEPREL", deprel)
        ("1\t \t가\tNNG\t0\tNP", ":7: WORD_FORM is empty"),  # kills dropping ("WORD_FORM", word)
    ],
)
def test_a_blank_dp_column_is_named(tmp_path: Path, row: str, expected: str) -> None:
    assert _dp_error(tmp_path, _dp_rows(row)) == expected


def _sentences(unsplit: int, eojeols: int) -> list[dict[str, object]]:
    """One sentence of `eojeols` eojeols, the first `unsplit` of them with one LEMMA morpheme for
    two POS tags (kept whole), the others one morpheme and one tag each."""
    pos = ["NNG+JKS"] * unsplit + ["NNG"] * (eojeols - unsplit)
    return [{"guid": "s1", "words": ["가"] * eojeols, "lemmas": ["가"] * eojeols, "pos": pos}]


@pytest.mark.parametrize(
    ("unsplit", "eojeols"),
    [
        (10, 10),  # 10 is not more than max(1% of 10, 10) = 10: kills `>=` for `>`
        (11, 1200),  # 11 is not more than max(1% of 1200, 10) = 12: kills dropping the share
    ],
)
def test_klue_pos_keeps_up_to_the_limit_of_eojeols_whole_with_a_warning(
    unsplit: int, eojeols: int, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        [record] = pos_records(_sentences(unsplit, eojeols), "dp.tsv")
    assert record["tokens"] == ["가"] * eojeols
    assert record["tags"] == ["NNG"] * eojeols  # each eojeol kept whole takes its first tag
    [message] = [r.getMessage() for r in caplog.records]
    assert message.startswith(f"dp.tsv: {unsplit} eojeol(s) whose LEMMA morphemes and POS tags")


def test_klue_pos_stops_past_one_percent_of_many_eojeols() -> None:
    # 13 > max(1% of 1200, 10) = 12; kills dropping `_MAX_UNSPLIT_SHARE * eojeols` the other way
    # round only together with the test above (which pins 11 as kept).
    with pytest.raises(LayerftError) as caught:
        pos_records(_sentences(13, 1200), "dp.tsv")
    assert str(caught.value).startswith(
        "dp.tsv: 13 of 1200 eojeols have a different number of LEMMA morphemes and POS tags "
        "(first: s1 '가')"
    )


# --- hub rows -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        # kills dropping `isinstance(value, bool) or`: JSON's true is no INDEX (the mutant
        # names it as the text 'True' instead)
        ({"index": [1, True, 3]}, "word 2: index is not an integer (got true)"),
        # kills dropping the `has no words` check: a sentence of no words is no record
        (
            {"index": [], "word_form": [], "lemma": [], "pos": [], "head": [], "deprel": []},
            "has no words",
        ),
    ],
)
def test_a_malformed_hub_dp_row_is_named(changes: dict[str, Any], expected: str) -> None:
    with pytest.raises(LayerftError) as caught:
        HUB_ADAPTERS["klue_dp"]([DP_ROW, DP_ROW | changes])
    separator = ", " if expected.startswith("word") else ": "
    assert str(caught.value) == f"klue/klue dp row 1{separator}{expected}"


def test_a_hub_dp_rows_own_guid_is_kept() -> None:
    # Kills `f"row-{index}"` for `row.get("guid") or f"row-{index}"`.
    first, second = HUB_ADAPTERS["klue_dp"]([DP_ROW | {"guid": "dp-7"}, DP_ROW])
    assert (first["guid"], second["guid"]) == ("dp-7", "row-1")


# --- JSON records -----------------------------------------------------------------------------


def test_json_lines_skip_a_line_of_spaces_and_count_it_when_placing_records(
    tmp_path: Path,
) -> None:
    # Kills `if not line:` (dropping `or line.isspace()`) in `_parse_json_lines` and `if line)` in
    # `json_record_line`: line 2 is three spaces, so record 2 is on line 3.
    path = _write(tmp_path, "data.jsonl", '{"a": 1}\n   \n{"a": 2}\n')
    assert read_records(path) == [{"a": 1}, {"a": 2}]
    assert [record_line(path, "records", n) for n in (1, 2, 3)] == [1, 3, None]


def test_a_json_array_after_blank_space_is_an_array(tmp_path: Path) -> None:
    # Kills `text.startswith("[")` for `text.lstrip().startswith("[")` in `read_json` and in
    # `json_record_line`, and `number` for `number - 1` there: the array opens on line 1, its
    # records 1 and 2 on lines 2 and 3 (line 1, ' [', would be record 1 read as JSON lines).
    path = _write(tmp_path, "dev.json", ' [\n  {"a": 1},\n  {"a": 2}\n]\n')
    assert read_records(path) == [{"a": 1}, {"a": 2}]
    assert [record_line(path, "records", n) for n in (1, 2)] == [2, 3]


def test_a_json_file_of_one_number_is_named_as_no_object(tmp_path: Path) -> None:
    # Kills `is not None` for `isinstance(whole, dict)`: 5 is one JSON value but no record.
    path = _write(tmp_path, "data.json", "5\n")
    assert _error(path) == f"{path}:1: expected a JSON object, got int"


@pytest.mark.parametrize(
    "text",
    [
        # one record of one object field (a translation pair): kills `max(1, ..)` for `max(2, ..)`
        '{"translation": {"en": "hi", "ko": "안녕"}}\n',
        # 2 objects of the same keys among 3 fields is a record: kills `< 2` for `< max(2, ..)`
        '{"a": {"x": 1}, "b": {"x": 2}, "c": 5}\n',
        # objects of different keys are a record's fields: kills dropping `any(k != keys[0] ..)`
        '{"a": {"x": 1}, "b": {"y": 2}}\n',
        # two records, each of two objects: kills dropping `more or`
        '{"a": {"x": 1}, "b": {"x": 2}}\n{"a": {"x": 3}, "b": {"x": 4}}\n',
    ],
)
def test_records_holding_objects_are_not_taken_for_a_pandas_table(
    tmp_path: Path, text: str
) -> None:
    path = _write(tmp_path, "data.json", text)
    assert read_records(path) == [json.loads(line) for line in text.splitlines()]


def test_a_key_named_twice_in_one_object_over_lines_is_named(tmp_path: Path) -> None:
    # Kills `if True:` for `isinstance(err.__cause__, JSONDecodeError)` in `_whole_object`: the
    # object is JSON, and its own error (not the JSON-lines reading's 'invalid JSON') stands.
    path = _write(tmp_path, "data.json", '{"a": 1,\n "a": 2}\n')
    assert _error(path) == f"{path}: an object names 'a' twice (which value is meant?)"


def test_a_table_of_four_columns_is_listed_without_an_ellipsis(tmp_path: Path) -> None:
    # Kills `>= 4` for `> 4`: all four names are shown.
    path = _write(
        tmp_path, "data.json", '{"a": {"x": 1}, "b": {"x": 2}, "c": {"x": 2}, "d": {"x": 2}}'
    )
    assert _error(path).startswith(
        f"{path}: a table in one object (a, b, c, d: 4 objects of the same 1 keys)"
    )


def test_a_parquet_file_the_system_cannot_read_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Kills `except pa.ArrowException` for `except (pa.ArrowException, OSError)`: a plain OSError
    # (a permission refused, a failing disk; not reproducible as root) is one line, no traceback.
    import pyarrow.parquet as pq

    def refuse(*_: Any, **__: Any) -> None:
        raise PermissionError("Permission denied")

    monkeypatch.setattr(pq, "read_table", refuse)
    path = _write(tmp_path, "data.parquet", "PAR1")
    assert _error(path) == f"{path}: not a readable Parquet file (Permission denied)"


# --- KLUE-RE ----------------------------------------------------------------------------------


def _re_row(**changes: Any) -> dict[str, Any]:
    """A KLUE-RE release record: subject '가' at 0..0, object '다' at 2..2 of '가나다'."""
    return {"guid": "re-9", "sentence": "가나다",
            "subject_entity": {"word": "가", "start_idx": 0, "end_idx": 0, "type": "PER"},
            "object_entity": {"word": "다", "start_idx": 2, "end_idx": 2, "type": "ORG"},
            "label": "no_relation"} | changes  # fmt: skip


def test_a_klue_re_negative_start_is_not_read_from_the_sentences_end(tmp_path: Path) -> None:
    # Kills dropping `0 <=` from `0 <= start <= end < len(sentence)`: '가나다'[-1:3] is '다'.
    entity = {"word": "다", "start_idx": -1, "end_idx": 2, "type": "ORG"}
    path = _write(tmp_path, "re.json", json.dumps([_re_row(object_entity=entity)], indent=1))
    with pytest.raises(LayerftError) as caught:
        read_klue_re(path)
    assert str(caught.value) == (
        f"{path}:3: re-9: object_entity.word '다' does not match sentence[-1:2+1] (''; end_idx "
        "is inclusive)"
    )


def test_a_negative_hub_re_label_is_refused_not_read_as_the_last_relation() -> None:
    # Kills dropping `0 <=` from `0 <= label < 30`: KLUE_RE_RELATIONS[-1] is 'per:title'.
    assert HUB_ADAPTERS["klue_re"]([_re_row(label=29)])[0]["label"] == "per:title"
    with pytest.raises(LayerftError) as caught:
        HUB_ADAPTERS["klue_re"]([_re_row(label=29), _re_row(guid="re-10", label=-1)])
    assert str(caught.value) == "klue/klue re row 1 (re-10): label -1 is outside 0..29"


def test_a_hub_re_row_without_a_guid_is_named() -> None:
    # Kills `row.get("guid")` for `record_field(row, "guid", str)` in `_re_record`: a record
    # without its guid would load as guid None.
    row = _re_row(label=0)
    del row["guid"]
    with pytest.raises(LayerftError) as caught:
        HUB_ADAPTERS["klue_re"]([_re_row(label=0), row])
    assert str(caught.value) == "klue/klue re row 1: guid is missing"
