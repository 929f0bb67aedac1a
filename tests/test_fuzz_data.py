"""Gaps a fuzzing pass over the data readers found: corrupted copies of the shared real-format
samples (and tiny hand-made files) that read without a word. Each test names the corruption."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from layerft.errors import LayerftError
from layerft.readers import HUB_ADAPTERS, read_records
from layerft.readers_conll import read_conll2003
from layerft.readers_conllu import read_conllu
from layerft.readers_klue_ner import read_klue_ner
from layerft.readers_klue_re import read_klue_re
from layerft.readers_klue_tsv import read_klue_dp

NUL = "a NUL byte (character {} of the line): the file is damaged (a write cut short leaves them) "
NUL += "or UTF-16, not UTF-8 text"


def _error(read: Any, path: Path) -> str:
    """The one-line error `read(path)` raises."""
    with pytest.raises(LayerftError) as caught:
        read(path)
    return str(caught.value)


# --- NUL bytes: valid UTF-8, so they were read as text ----------------------------------------


def test_a_nul_byte_in_a_klue_dp_word_form_is_named(shared_data: Path, tmp_path: Path) -> None:
    # Was: the sentence trained with a word form '홍정\0희의' (train.py ran to its results).
    text = (shared_data / "klue/klue-dp-v1.1/klue-dp-v1.1_train.tsv").read_text(encoding="utf-8")
    path = tmp_path / "klue-dp-v1.1_train.tsv"
    path.write_text(text.replace("3\t홍정희의", "3\t홍정\0희의", 1), encoding="utf-8")
    assert _error(read_klue_dp, path) == f"{path}:9: " + NUL.format(5)


def test_a_nul_byte_in_a_klue_ner_sentence_and_its_row_is_named(
    shared_data: Path, tmp_path: Path
) -> None:
    # Was: the same NUL in the header's sentence and in its CHAR row agreed, and it trained on it.
    text = (shared_data / "klue/klue-ner-v1.1/klue-ner-v1.1_train.tsv").read_text(encoding="utf-8")
    path = tmp_path / "klue-ner-v1.1_train.tsv"
    path.write_text(text.replace("경", "\0", 2), encoding="utf-8")
    assert _error(read_klue_ner, path) == f"{path}:6: " + NUL.format(36)


@pytest.mark.parametrize("name", ["train.tsv", "train.csv"])
def test_a_nul_byte_in_a_delimited_data_file_is_named(tmp_path: Path, name: str) -> None:
    # Was: the text 'go\0od' read as the review's text.
    sep = "\t" if name.endswith(".tsv") else ","
    path = tmp_path / name
    path.write_text(f"text{sep}label\nfine{sep}1\ngo\0od{sep}0\n", encoding="utf-8")
    assert _error(read_records, path) == f"{path}:3: " + NUL.format(3)


def test_a_utf16_file_without_a_bom_is_named_not_read_as_columns(tmp_path: Path) -> None:
    # UTF-16 of ASCII decodes as UTF-8 with a NUL after every character: it was read as a column
    # 'l\0a\0b\0e\0l\0' and failed on a missing 'label', naming nothing of the cause.
    path = tmp_path / "train.tsv"
    path.write_bytes("label\ttext\n1\tgood\n".encode("utf-16-le"))
    assert _error(read_records, path) == f"{path}:1: " + NUL.format(2)


# --- KLUE-RE entity types: the model reads them in its markers ('@ * PER * ...') ------------------


def _re_rows(**subject: Any) -> list[dict[str, Any]]:
    """Two KLUE-RE release records of '가나다' (subject '가', object '다'); `subject` changes the
    second one's subject_entity."""
    entity = {"word": "가", "start_idx": 0, "end_idx": 0, "type": "PER"}
    return [
        {"guid": f"re-{n}", "sentence": "가나다", "label": "no_relation",
         "subject_entity": entity | (subject if n else {}),
         "object_entity": {"word": "다", "start_idx": 2, "end_idx": 2, "type": "ORG"}}
        for n in range(2)
    ]  # fmt: skip


@pytest.mark.parametrize("kind", ["XXX", "per", "PER ", "PERSON"])
def test_a_klue_re_entity_type_outside_klues_six_is_named(tmp_path: Path, kind: str) -> None:
    # Was: read, and written into the input as '@ * XXX * 가 @'.
    path = tmp_path / "klue-re-v1.1_train.json"
    path.write_text(json.dumps(_re_rows(type=kind), ensure_ascii=False, indent=1), "utf-8")
    assert _error(read_klue_re, path) == (
        f"{path}:20: re-1: subject_entity.type {json.dumps(kind)} is not one of KLUE-RE's entity "
        "types (PER, ORG, LOC, DAT, POH, NOH)"
    )


def test_klue_re_reads_each_of_its_six_entity_types(tmp_path: Path) -> None:
    rows = [
        row
        for kind in ("PER", "ORG", "LOC", "DAT", "POH", "NOH")
        for row in _re_rows(type=kind)[1:]
    ]
    for n, row in enumerate(rows):
        row["guid"] = f"re-{n}"
    path = tmp_path / "klue-re-v1.1_train.json"
    path.write_text(json.dumps(rows, ensure_ascii=False), "utf-8")
    kinds = [record["subject"]["type"] for record in read_klue_re(path)]
    assert kinds == ["PER", "ORG", "LOC", "DAT", "POH", "NOH"]


def test_a_hub_re_entity_type_outside_klues_six_is_named() -> None:
    rows = [row | {"label": 0} for row in _re_rows(type="xx")]
    with pytest.raises(LayerftError) as caught:
        HUB_ADAPTERS["klue_re"](rows)
    assert str(caught.value) == (
        'klue/klue re row 1 (re-1): subject_entity.type "xx" is not one of KLUE-RE\'s entity '
        "types (PER, ORG, LOC, DAT, POH, NOH)"
    )


# --- CoNLL-U sent_ids: the record's id ------------------------------------------------------------

UD_SENTENCE = "# sent_id = {}\n# text = Go now\n1\tGo\tgo\tVERB\tVB\t_\t0\troot\t_\t_\n"
UD_SENTENCE += "2\tnow\tnow\tADV\tRB\t_\t1\tadvmod\t_\t_\n"


def test_a_repeated_conllu_sent_id_is_named(tmp_path: Path) -> None:
    # Was: both sentences read under one id, as a treebank merged twice trains on each twice.
    path = tmp_path / "en_ewt-ud-train.conllu"
    path.write_text("\n".join(UD_SENTENCE.format(n) for n in ("s1", "s2", "s1")), "utf-8")
    assert _error(read_conllu, path) == (
        f"{path}:11: sent_id s1 repeats the sentence on line 1; remove one of them"
    )


def test_conllu_sentences_without_a_sent_id_are_not_repeats(tmp_path: Path) -> None:
    path = tmp_path / "train.conllu"
    path.write_text("\n".join(UD_SENTENCE.format("") for _ in range(2)), "utf-8")
    assert [record["guid"] for record in read_conllu(path)] == ["train-1", "train-2"]


# --- a byte-order mark opening a later line: invisible, so every reader blamed what followed it ----


def test_a_bom_opening_a_klue_dp_sentence_header_is_named(
    shared_data: Path, tmp_path: Path
) -> None:
    # Was: "row outside a sentence (expected a '## <guid>\t<sentence>' line before it)", at a
    # header that looks whole (`cat a.tsv b.tsv` of files written with a BOM).
    text = (shared_data / "klue/klue-dp-v1.1/klue-dp-v1.1_train.tsv").read_text(encoding="utf-8")
    path = tmp_path / "klue-dp-v1.1_train.tsv"
    path.write_text(text.replace("\n## klue-dp-v1_dev_00001", "\n\ufeff## klue-dp-v1_dev_00001"))
    assert _error(read_klue_dp, path) == (
        f"{path}:14: the line opens with a byte-order mark (U+FEFF, invisible): files joined with "
        "cat keep theirs; remove it"
    )


@pytest.mark.parametrize("name", ["train.jsonl", "train.tsv"])
def test_a_bom_opening_a_later_line_of_records_is_named(tmp_path: Path, name: str) -> None:
    # Was: 'invalid JSON (Expecting value)' at a line that reads as valid JSON; in a .tsv the
    # first column's value took the BOM silently.
    path = tmp_path / name
    rows = ['{"text": "a", "label": 0}', '{"text": "b", "label": 1}']
    if name.endswith(".tsv"):
        rows = ["text\tlabel", "a\t0", "b\t1"]
    path.write_text("\ufeff" + "\n".join(rows[:-1] + ["\ufeff" + rows[-1]]) + "\n", "utf-8")
    assert _error(read_records, path) == (
        f"{path}:{len(rows)}: the line opens with a byte-order mark (U+FEFF, invisible): files "
        "joined with cat keep theirs; remove it"
    )


def test_a_bom_inside_a_text_is_text(tmp_path: Path) -> None:
    path = tmp_path / "train.jsonl"
    path.write_text('{"text": "\ufeffa", "label": 0}\n{"text": "b", "label": 1}\n', "utf-8")
    assert read_records(path)[0]["text"] == "\ufeffa"


# --- lost blank lines ------------------------------------------------------------------------


def test_a_conll2003_file_that_lost_its_blank_lines_is_named(tmp_path: Path) -> None:
    # `grep -v '^$'` of eng.train: 120 sentences in 12 documents read as 12 'sentences' of up to
    # ~100 tokens, and trained without a word.
    source = Path(__file__).parent / "data" / "conll2003" / "eng.train"
    path = tmp_path / "eng.train"
    lines = source.read_text(encoding="utf-8").splitlines(keepends=True)
    path.write_text("".join(line for line in lines if line.strip()), "utf-8")
    assert _error(read_conll2003, path) == (
        f"{path}: no blank line ends a sentence, and sentence 1-1 holds a sentence end before its "
        "last token: did the file lose its blank lines?"
    )
