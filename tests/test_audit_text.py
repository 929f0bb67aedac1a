"""Audit of the shared text reader (layerft/text_files.py), Kiwi's silver morphemes
(layerft/morph.py) and the charsmap trie's unique bases (layerft/charsmap.py): behaviour the
other tests left unchecked, each test killing a mutation that survived them."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import pytest
from tokenizers import normalizers

from layerft.charsmap import build_precompiled_charsmap
from layerft.errors import LayerftError
from layerft.readers import read_records
from layerft.readers_glue import GLUE_READERS
from layerft.readers_klue import read_klue_sts

needs_kiwi = pytest.mark.skipif(
    importlib.util.find_spec("kiwipiepy") is None,
    reason="kiwipiepy is not installed (optional 'korean' extra)",
)

STS_ROW = {
    "guid": "sts-1",
    "sentence1": "오늘 회의는 오후 세 시에 시작합니다.",
    "sentence2": "회의가 오후 3시에 열립니다.",
    "labels": {"label": 4.2, "real-label": 4.166666666666667, "binary-label": 1},
}


def _raises(path: Path, message: str, read=read_records) -> None:
    with pytest.raises(LayerftError, match=f"^{re.escape(message)}$"):
        read(path)


# --- text_files: reading the bytes -----------------------------------------------------------


def test_an_empty_parquet_file_is_named_an_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "train.parquet"
    path.write_bytes(b"")
    _raises(path, f"{path}: empty file")


def test_a_byte_that_is_not_utf8_is_named_by_line_and_offset(tmp_path: Path) -> None:
    path = tmp_path / "train.jsonl"
    path.write_bytes(b'{"a": 1}\n{"b": "\xff"}\n')
    _raises(path, f"{path}:2: not UTF-8 text (byte 16)")
    # After a BOM: the decoder counted from after it, 3 bytes short, a line short here.
    path.write_bytes(b"\xef\xbb\xbfa\n\xff\n")
    _raises(path, f"{path}:2: not UTF-8 text (byte 5)")


def test_a_crlf_glue_file_reads_as_its_lf_form(tmp_path: Path) -> None:
    lf, crlf = tmp_path / "lf.tsv", tmp_path / "crlf.tsv"
    lf.write_text("sentence\tlabel\ngood film\t1\nbad film\t0\n", encoding="utf-8")
    crlf.write_bytes(lf.read_bytes().replace(b"\n", b"\r\n"))
    read = GLUE_READERS["glue_sst2"]
    assert (
        read(crlf)
        == read(lf)
        == [
            {"sentence": "good film", "label": 1, "idx": 0},
            {"sentence": "bad film", "label": 0, "idx": 1},
        ]
    )


def test_only_a_newline_ends_a_line_not_other_unicode_line_breaks(tmp_path: Path) -> None:
    path = tmp_path / "train.tsv"
    text = "one\u2028two\x1cthree\x85four"
    path.write_text(f"sentence\tlabel\n{text}\t1\n", encoding="utf-8")
    assert GLUE_READERS["glue_sst2"](path) == [{"sentence": text, "label": 1, "idx": 0}]


# --- json_values: JSON that parses into no usable value --------------------------------------


@pytest.mark.parametrize(
    "line", ['{"text": "a", "text": "b"}', '{"guid": 7, "text": "a", "text": "b"}']
)
def test_a_repeated_key_names_no_guid_where_the_object_has_no_string_guid(
    tmp_path: Path, line: str
) -> None:
    # Only a string is a guid (as for a repeated record); 7 is no record's name.
    path = tmp_path / "train.jsonl"
    path.write_text(line + "\n", encoding="utf-8")
    _raises(path, f"{path}:1: an object names 'text' twice (which value is meant?)")


def test_a_too_long_number_is_one_line_without_python_advice(tmp_path: Path) -> None:
    path = tmp_path / "train.jsonl"
    path.write_text('{"label": 1}\n{"label": ' + "9" * 5000 + "}\n", encoding="utf-8")
    with pytest.raises(LayerftError) as caught:
        read_records(path)
    message = str(caught.value)
    assert message.startswith(f"{path}:2: a number too long to read (")
    assert message.endswith("5000 digits)")
    assert ";" not in message and "set_int_max_str_digits" not in message


def test_a_lone_surrogate_in_a_key_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "train.jsonl"
    path.write_text('{"text": "a"}\n{"\\ud800": "b"}\n', encoding="utf-8")
    with pytest.raises(LayerftError, match=rf"^{re.escape(str(path))}:2: a string holds \\ud800,"):
        read_records(path)


def test_a_lone_low_surrogate_is_found_on_its_line_not_in_an_earlier_pair(
    tmp_path: Path,
) -> None:
    # Line 2 holds a whole pair (an emoji) ending in \ude00; line 3 holds \ude00 alone.
    path = tmp_path / "train.json"
    path.write_text('[\n{"text": "\\ud83d\\ude00"},\n{"text": "x\\ude00"}\n]\n', encoding="utf-8")
    with pytest.raises(LayerftError, match=rf"^{re.escape(str(path))}:3: a string holds \\ude00,"):
        read_records(path)


def test_a_lone_surrogate_is_not_found_in_text_after_an_escaped_backslash(tmp_path: Path) -> None:
    # Line 2's string is the text C:\ud800 (an escaped backslash, then letters); line 3 holds the
    # lone surrogate. Line 2 was named.
    path = tmp_path / "train.json"
    path.write_text('[\n{"t": "C:\\\\ud800"},\n{"t": "\\ud800"}\n]\n', encoding="utf-8")
    with pytest.raises(LayerftError, match=rf"^{re.escape(str(path))}:3: a string holds \\ud800,"):
        read_records(path)
    # The text \ud800 (escaped backslash, then letters) then a lone \udc00: no high half before it
    path.write_text('[\n{"t": "x"},\n{"t": "\\\\ud800\\udc00"}\n]\n', encoding="utf-8")
    with pytest.raises(LayerftError, match=rf"^{re.escape(str(path))}:3: a string holds \\udc00,"):
        read_records(path)
    # Only a low half right after a high one pairs with it: not one a letter later, nor a high.
    for written in ("\\ud800x\\udc00", "\\ud800\\ud801"):
        path.write_text(f'[\n{{"t": "a"}},\n{{"t": "{written}"}}\n]\n', encoding="utf-8")
        with pytest.raises(
            LayerftError, match=rf"^{re.escape(str(path))}:3: a string holds \\ud800,"
        ):
            read_records(path)
    # An escaped backslash, then the escape itself: found there.
    path.write_text('[\n{"t": "a"},\n{"t": "\\\\\\ud800"}\n]\n', encoding="utf-8")
    with pytest.raises(LayerftError, match=rf"^{re.escape(str(path))}:3: a string holds \\ud800,"):
        read_records(path)


@pytest.mark.parametrize(
    ("written", "shown"),
    [("Infinity", "Infinity"), ("-Infinity", "-Infinity"), ("1" * 400, "111")],
    ids=["Infinity", "-Infinity", "400 digits"],
)
def test_an_sts_score_not_finite_as_a_float_is_not_a_number(
    tmp_path: Path, written: str, shown: str
) -> None:
    path = tmp_path / "klue-sts-v1.1_train.json"
    text = json.dumps([STS_ROW], ensure_ascii=False, indent=4).replace("4.2", written)
    path.write_text(text, encoding="utf-8")
    with pytest.raises(LayerftError) as caught:
        read_klue_sts(path)
    message = str(caught.value)
    assert message.startswith(f"{path}:3: sts-1: labels.label {shown}")
    assert message.endswith(" is not a number")


# --- text_files: which .csv/.tsv cells are numbers -------------------------------------------


@pytest.mark.parametrize(
    ("cells", "values"),
    [
        (["-1", "0", "+2"], [-1, 0, 2]),
        ([".5", "-.25", "1."], [0.5, -0.25, 1.0]),
        (["1e3", "2.5E-1", "-4e+0"], [1000.0, 0.25, -4.0]),
    ],
)
def test_a_csv_column_of_numbers_as_written_reads_as_numbers(
    tmp_path: Path, cells: list[str], values: list[float]
) -> None:
    path = tmp_path / "train.csv"
    path.write_text("text,label\n" + "".join(f"t{i},{c}\n" for i, c in enumerate(cells)))
    labels = [record["label"] for record in read_records(path)]
    assert labels == values
    assert [type(label) for label in labels] == [type(value) for value in values]


# --- charsmap: no two nodes share a base -------------------------------------------------------


def test_a_charsmap_leaves_characters_sharing_a_utf8_prefix_with_two_keys_alone() -> None:
    # '｛' (EF BD 9B) and '９' (EF BC 99): with a base shared by their parents, a lookup of '；'
    # (EF BC 9B) or 'ｙ' (EF BD 99) fell onto the other key's leaf and was replaced.
    normaliser = normalizers.Precompiled(build_precompiled_charsmap({"｛": "{", "９": "9"}))
    assert normaliser.normalize_str("｛９；ｙ") == "{9；ｙ"


# --- morph -------------------------------------------------------------------------------------


@needs_kiwi
def test_silver_morphemes_of_a_long_text_are_all_given() -> None:
    from layerft.morph import silver_morphemes

    [(forms, tags)] = silver_morphemes(["사과. " * 100])
    assert forms == ["사과", "."] * 100
    assert tags == ["NNG", "SF"] * 100
