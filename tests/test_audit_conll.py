"""Reader lines a mutation audit found unguarded: CoNLL-2003, CoNLL-U (multiword tokens, empty
nodes, the hub's rows) and CSV/TSV data files, on tiny hand-made files (each test names the line
it pins)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from layerft.errors import LayerftError
from layerft.readers import read_records, record_line
from layerft.readers_conll import read_conll2003
from layerft.readers_conllu import hub_ud_rows, read_conllu


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_bytes(text.encode("utf-8"))  # as written: no newline translation
    return path


# --- CoNLL-2003 -------------------------------------------------------------------------------

EU = "EU NNP B-NP B-ORG"
PETER = "Peter NNP B-NP B-PER"


def test_conll2003_without_docstart_counts_its_document_from_1(tmp_path: Path) -> None:
    # read_conll2003: guid '<document>-<sentence>', both counted from 1 (`max(document, 1)`): a
    # file with no -DOCSTART- line is document 1, not 0.
    records = read_conll2003(write(tmp_path, "train.txt", f"{EU}\n\n{PETER}\n"))
    assert [r["guid"] for r in records] == ["1-1", "1-2"]


def test_conll2003_reads_the_last_sentence_of_a_file_without_a_final_newline(
    tmp_path: Path,
) -> None:
    # read_conll2003: the `close()` after the loop; a file ending "...B-PER" with no line end.
    records = read_conll2003(write(tmp_path, "train.txt", f"{EU}\n\n{PETER}"))
    assert [r["tokens"] for r in records] == [["EU"], ["Peter"]]


@pytest.mark.parametrize("blank", [" ", "\t", "  \t "])
def test_conll2003_a_line_of_whitespace_ends_a_sentence(tmp_path: Path, blank: str) -> None:
    # read_conll2003: `if not line.strip()`: a line holding only spaces or tabs is a blank line.
    records = read_conll2003(write(tmp_path, "train.txt", f"{EU}\n{blank}\n{PETER}\n"))
    assert [r["tokens"] for r in records] == [["EU"], ["Peter"]]
    assert [r["guid"] for r in records] == ["1-1", "1-2"]


def test_conll2003_a_line_with_a_fifth_field_is_named(tmp_path: Path) -> None:
    # read_conll2003: the field count must be exactly 4 (`!=`), more as well as fewer.
    path = write(tmp_path, "eng.train", f"{EU}\nx NN B-NP O extra\n")
    with pytest.raises(
        LayerftError, match=r"eng\.train:2: expected 4 space-separated fields .*got 5"
    ):
        read_conll2003(path)


@pytest.mark.parametrize("tag", ["ORG", "Other", "OB-PER", "B-", "I-"])
def test_conll2003_a_tag_must_be_a_whole_iob_tag(tmp_path: Path, tag: str) -> None:
    # read_conll2003: `_IOB_TAG.fullmatch` (not `match`, which reads "ORG" as "O" and more) on
    # `O|[BI]-\S+` (a type of at least one character: "B-" names no entity type).
    path = write(tmp_path, "eng.train", f"{EU}\nx NN B-NP {tag}\n")
    with pytest.raises(LayerftError, match=rf"eng\.train:2: NER tag '{tag}' is not O, B-<type>"):
        read_conll2003(path)


# --- CoNLL-U ----------------------------------------------------------------------------------


def conllu_line(*fields: str) -> str:
    return "\t".join(fields) + "\n"


def test_conllu_a_multiword_token_must_start_at_the_next_word(tmp_path: Path) -> None:
    # _is_word: a multiword range begins at the next word (`int(span[1]) != num_words + 1`):
    # "2-3" before word 1 spans words that are not next.
    text = (
        conllu_line("2-3", "cannot", *"________")
        + conllu_line("1", "I", "I", "PRON", "PRP", "_", "2", "nsubj", "_", "_")
        + conllu_line("2", "can", "can", "AUX", "MD", "_", "0", "root", "_", "_")
        + conllu_line("3", "not", "not", "PART", "RB", "_", "2", "advmod", "_", "_")
    )
    with pytest.raises(LayerftError, match=r"d\.conllu:1: multiword token ID '2-3' must be .*"
                       r"\(next word is 1\)"):  # fmt: skip
        read_conllu(write(tmp_path, "d.conllu", text))


def test_conllu_an_underscore_is_a_form_not_an_empty_field(tmp_path: Path) -> None:
    # _conllu_word: "_" is empty for UPOS and DEPREL, but FORM "_" is the word "_" (EWT has it).
    text = conllu_line("1", "_", "_", "SYM", "NFP", "_", "0", "root", "_", "_")
    [record] = read_conllu(write(tmp_path, "d.conllu", text))
    assert record["words"] == ["_"] and record["upos"] == ["SYM"]


GO = conllu_line("1", "go", "go", "VERB", "VB", "_", "0", "root", "_", "_")


def test_conllu_a_text_comment_keeps_its_own_equals_signs(tmp_path: Path) -> None:
    # _conllu_sentence: a comment splits at its first '=' (`partition`): "# text = x = 5" is the
    # text "x = 5", not "5".
    text = "# sent_id = a=1\n# text = x = 5\n" + GO
    [record] = read_conllu(write(tmp_path, "d.conllu", text))
    assert (record["guid"], record["text"]) == ("a=1", "x = 5")


@pytest.mark.parametrize("end", ["", "\n"])
def test_conllu_the_last_sentence_needs_no_blank_line_after_it(tmp_path: Path, end: str) -> None:
    # _sentence_blocks: the block left at the end of the file is a sentence (`if block: yield`).
    text = GO + "\n" + GO.rstrip("\n") + end
    records = read_conllu(write(tmp_path, "d.conllu", text))
    assert [r["words"] for r in records] == [["go"], ["go"]]


# --- CSV / TSV --------------------------------------------------------------------------------


def test_a_column_half_of_numbers_stays_text(tmp_path: Path) -> None:
    # _convert_column: numbers only where they are more than half the filled cells (`* 2 <=`):
    # "1" and "x" are one of two, so the column stays text; "1", "2", "x" are two of three.
    half = read_records(write(tmp_path, "half.csv", "code\n1\nx\n"))
    assert [r["code"] for r in half] == ["1", "x"]
    most = read_records(write(tmp_path, "most.csv", "code\n1\n2\nx\n"))
    assert [r["code"] for r in most] == [1, 2, "x"]


def test_whole_numbers_read_as_ints_and_text_columns_stay_text(tmp_path: Path) -> None:
    # _number: an int cell is an int (class ids), not a float equal to it; `text_columns` keep a
    # column of digits as written ("007" stays "007", not 7).
    path = write(tmp_path, "train.csv", "text,label,score\n007,1,0.5\n42,0,2\n")
    records = read_records(path, text_columns=["text"])
    assert records == [
        {"text": "007", "label": 1, "score": 0.5},
        {"text": "42", "label": 0, "score": 2},
    ]
    assert [type(r["label"]) for r in records] == [int, int]
    assert [type(r["score"]) for r in records] == [float, int]
    assert [r["text"] for r in read_records(path)] == [7, 42]  # not a text column: numbers


def test_an_empty_column_name_is_named(tmp_path: Path) -> None:
    # _check_header: `if not name`: a header "text,,label" has no name for column 2.
    path = write(tmp_path, "train.csv", "text,,label\na,b,1\n")
    with pytest.raises(LayerftError, match=r"train\.csv:1: column 2 is empty"):
        read_records(path)


def test_a_csv_records_line_counts_blank_lines_and_cells_that_span_lines(tmp_path: Path) -> None:
    # delimited_record_line: a record starts on the line after the previous row's last line
    # (`reader.line_num + 1`). Line 1 header, 2 record 1, 3 blank, 4-5 record 2 (its quoted cell
    # spans two lines), 6 record 3.
    path = write(tmp_path, "train.csv", 'text,label\na,1\n\n"b\nc",0\nd,1\n')
    assert [record_line(path, "records", n) for n in (1, 2, 3, 4)] == [2, 4, 6, None]
    tsv = write(tmp_path, "train.tsv", "text\tlabel\n\na\t1\nb\t0\n")
    assert [record_line(tsv, "records", n) for n in (1, 2)] == [3, 4]


def test_a_tsv_field_quoted_by_a_csv_writer_is_warned_at_its_own_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # _warn_csv_quoted: the warning names the line the record is on (`lines[number - 1]`), past a
    # blank line: header 1, blank 2, record 1 on 3, record 2 (quoted as pandas quotes) on 4.
    path = write(tmp_path, "train.tsv", 'text\tlabel\n\na\t1\n"x ""y"""\t0\n')
    with caplog.at_level(logging.WARNING):
        records = read_records(path)
    assert [r["text"] for r in records] == ["a", '"x ""y"""']  # read as written
    [message] = [r.getMessage() for r in caplog.records]
    assert message.startswith(f"{path}:4: 1 of 2 records hold a field that looks quoted")


def test_a_hub_word_without_xpos_reads_as_underscore() -> None:
    # _hub_ud_row: `xpos or "_"`: treebanks without language-specific tags give None per word
    # on the hub, which a file writes as "_".
    row = {"idx": "s", "text": "go", "tokens": ["go"], "lemmas": ["go"], "upos": ["VERB"],
           "xpos": [None], "head": ["0"], "deprel": ["root"]}  # fmt: skip
    [record] = hub_ud_rows([row])
    assert (record["words"], record["xpos"], record["heads"]) == (["go"], ["_"], [0])
