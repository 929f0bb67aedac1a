"""Task data: record checks, label mapping, unlabelled rows, tokenization alignment and its cache."""

from __future__ import annotations

import json
import logging
import os
import unicodedata
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from compose import compose_run
from datasets import Dataset
from datasets.arrow_writer import ArrowWriter
from transformers import EvalPrediction

from layerft import evaluation, phase, predictions
from layerft.data import load_task_data
from layerft.errors import LayerftError
from layerft.evaluation import build_compute_metrics
from layerft.predictions import write_partial
from layerft.readers import read_records
from layerft.records import normalise_records, read_split
from layerft.tiny_model import build_tiny_tokenizer
from layerft.tokenized import tokenize

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
SNLI_TEXT = [("premise", pa.string()), ("hypothesis", pa.string())]


def snli_task(tmp_path: Path, train: list[dict], validation: list[dict] | None = None):
    files = {}
    for split, rows in (("train", train), ("validation", validation or train)):
        path = tmp_path / f"{split}.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
        files[split] = path
    return compose_run(
        "model=tiny", "target_task=snli",
        f"target_task.data_files.train={files['train']}",
        f"target_task.data_files.validation={files['validation']}",
    ).target_task  # fmt: skip


def row(label: object, premise: str = "a man sleeps", hypothesis: str = "a man rests") -> dict:
    return {"premise": premise, "hypothesis": hypothesis, "label": label}


def test_labels_by_index_or_name_and_unlabelled_dropped(tmp_path, caplog) -> None:
    task = snli_task(tmp_path, [row(0), row(2), row(-1), row("neutral"), row(None)])
    with caplog.at_level(logging.INFO, logger="layerft.records"):
        rows = normalise_records(
            task, "target_task", [row(0), row(2), row(-1), row("neutral"), row(None)], "f"
        )
    assert [r["label"] for r in rows] == [0, 2, 1]
    assert rows[0] == {"label": 0, "text_a": "a man sleeps", "text_b": "a man rests"}
    assert "dropped 2 unlabelled records" in caplog.text


@pytest.mark.parametrize("suffix", [".parquet", ".jsonl", ".csv"])
def test_pandas_float_labels_are_classes_and_its_null_is_unlabelled(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, suffix: str
) -> None:
    # pandas stores an int column holding a null as float64 and writes 2.0 (-1.0, SNLI's no gold
    # label) and the null as null (an empty cell in a CSV). 2.0 is class 2, not a wrong label.
    labels = [2.0, 0.0, 1.0, None, -1.0]
    path = tmp_path / f"pandas{suffix}"
    if suffix == ".parquet":
        table = {k: [r[k] for r in map(row, labels)] for k in ("premise", "hypothesis", "label")}
        pq.write_table(
            pa.table(table, schema=pa.schema([*SNLI_TEXT, ("label", pa.float64())])), path
        )
    elif suffix == ".jsonl":
        path.write_text("".join(json.dumps(row(label)) + "\n" for label in labels))
    else:
        cells = ["" if label is None else str(label) for label in labels]
        path.write_text("premise,hypothesis,label\n" + "".join(f"a,b,{c}\n" for c in cells))
    task = snli_task(tmp_path, [row(0), row(1)])
    with caplog.at_level(logging.INFO, logger="layerft.records"):
        rows = normalise_records(task, "target_task", read_records(path), path.name)
    assert [r["label"] for r in rows] == [2, 0, 1]
    assert "dropped 2 unlabelled records" in caplog.text


def test_labels_named_by_floats_texts_are_those_names_never_indices(tmp_path: Path) -> None:
    # label_names [-1.0, 0.0, 1.0]: 1.0 is the name "1.0", not index 1 ("0.0"), and -1.0 a class,
    # not SNLI's unlabelled -1; a float of no name stops the run (it had read 2.0 as "1.0").
    path = tmp_path / "scores.jsonl"
    path.write_text("".join(json.dumps(row(label)) + "\n" for label in (1.0, -1.0, 0.0)))
    names = ("target_task.label_names=['-1.0','0.0','1.0']", "target_task.unlabelled_values=[]")
    task = compose_run("model=tiny", "target_task=snli", *names).target_task
    rows = normalise_records(task, "target_task", read_records(path), path.name)
    assert [task.label_names[r["label"]] for r in rows] == ["1.0", "-1.0", "0.0"]
    with pytest.raises(LayerftError, match="record 1: label 2.0 is not in target_task.label_names"):
        normalise_records(task, "target_task", [row(2.0)], path.name)
    # Half-step ratings [0, 0.5, 1, 1.5, 2], read from a CSV as floats: 1.0 is the name "1".
    halves = "target_task.label_names=['0','0.5','1','1.5','2']"
    task = compose_run("model=tiny", "target_task=snli", halves, "target_task.unlabelled_values=[]").target_task  # fmt: skip
    rows = normalise_records(task, "target_task", [row(v) for v in (1.0, 0.5, 2.0, 0.0)], "f")
    assert [task.label_names[r["label"]] for r in rows] == ["1", "0.5", "2", "0"]


@pytest.mark.parametrize(
    ("record", "message"),
    [
        (row(3), "train.jsonl:2: record 2: label 3 is not in target_task.label_names"),
        (row("maybe"), "train.jsonl:2: record 2: label 'maybe' is not in target_task.label_names"),
        (row(True), "label True is not in"),
        (row(2.5), "train.jsonl:2: record 2: label 2.5 is not in target_task.label_names"),
        (row(3.0), "record 2: label 3.0 is not in target_task.label_names"),
        ({"premise": "x", "label": 0}, "train.jsonl:2: record 2: no column 'hypothesis'"),
        # A CSV header written "premise, hypothesis, label": the list of columns hides it.
        ({"premise": "x", " hypothesis": "y", "label": 0}, "the file names it ' hypothesis', with"),
        (row(0, premise=5), "record 2: column 'premise' is not text"),
        (row(0, premise=""), "record 2: column 'premise' is empty; fix or remove the record"),
        (row(0, hypothesis=" \t"), "record 2: column 'hypothesis' is blank \\(only spaces\\)"),
        # BERT's tokenizer removes format characters: the pair trained on its premise alone.
        (row(0, hypothesis="\u200b\xad"), r"'hypothesis' is blank \(only characters tokenizers"),
    ],
)
def test_bad_records_name_file_and_record(tmp_path, record: dict, message: str) -> None:
    task = snli_task(tmp_path, [row(0), record])
    with pytest.raises(LayerftError, match=message):
        load_task_data(task, "target_task", build_tiny_tokenizer(), tmp_path / "cache", seed=0)


def test_a_file_of_columns_is_refused_in_one_short_line(tmp_path: Path) -> None:
    # pandas' `df.to_json(path)` writes one object of columns ({"premise": {"0": ..., ...}}),
    # read as one record: its error printed the whole column, megabytes on one "line".
    path = tmp_path / "columns.json"
    rows = [row(i % 3) for i in range(5000)]
    columns = {
        k: {str(i): r[k] for i, r in enumerate(rows)} for k in ("premise", "hypothesis", "label")
    }
    path.write_text(json.dumps(columns))
    with pytest.raises(LayerftError) as err:
        read_records(path)
    assert str(err.value) == (
        f"{path}: a table in one object (premise, hypothesis, label: 3 objects of the same 5000 "
        "keys), as pandas' df.to_json(path) writes one; write one object per record: "
        "df.to_json(path, orient='records', lines=True)"
    )
    pair = tmp_path / "pair.json"  # one record whose one field is a dict: a record
    pair.write_text('{"translation": {"en": "a", "de": "b"}}')
    assert read_records(pair) == [{"translation": {"en": "a", "de": "b"}}]
    task = compose_run("model=tiny", "target_task=snli").target_task
    column = {"premise": columns["premise"], "hypothesis": "h", "label": "neutral"}  # one record
    with pytest.raises(LayerftError, match="record 1: column 'premise' is not text: {'0'") as err:
        normalise_records(task, "target_task", [column], path.name)
    assert len(str(err.value)) < 200
    long_label = row("neutral " * 10_000)
    with pytest.raises(LayerftError, match="record 1: label 'neutral neutral ") as err:
        normalise_records(task, "target_task", [long_label], path.name)
    assert len(str(err.value)) < 300


def test_one_file_for_train_and_validation_is_warned(tmp_path, caplog) -> None:
    train = [row(i % 3, premise=f"p{i}") for i in range(6)]
    task = snli_task(tmp_path, train)
    task.data_files["validation"] = str(tmp_path / "." / "train.jsonl")  # another spelling
    with caplog.at_level(logging.WARNING, logger="layerft.data"):
        load_task_data(task, "target_task", build_tiny_tokenizer(), tmp_path / "cache", seed=0)
    assert "target_task: train and validation are the same file" in caplog.text


def test_a_missing_data_file_names_its_key(tmp_path, caplog) -> None:
    task = snli_task(tmp_path, [row(0), row(1)])
    task.data_files["validation"] = str(tmp_path / "nope.jsonl")
    with pytest.raises(
        LayerftError, match="^target_task.data_files.validation: no such file .*nope"
    ):
        load_task_data(task, "target_task", build_tiny_tokenizer(), tmp_path / "cache", seed=0)


def test_dev_examples_copied_from_train_are_counted_in_a_warning(tmp_path, caplog) -> None:
    train = [row(i % 3, premise=f"p{i}") for i in range(6)]
    # Two copies (columns in another order, too), one same text with another label, one new.
    dev = [train[1], dict(reversed(train[4].items())), row(2, premise="p0"), row(0, premise="q")]
    task = snli_task(tmp_path, train, dev)
    with caplog.at_level(logging.WARNING, logger="layerft.data"):
        load_task_data(task, "target_task", build_tiny_tokenizer(), tmp_path / "cache", seed=0)
    assert "target_task validation: 2 of 4 examples are copies of training examples" in caplog.text
    assert "repeat an earlier" not in caplog.text


def test_examples_repeated_within_a_split_are_counted_in_a_warning(tmp_path, caplog) -> None:
    # A train file concatenated twice (one copy with its columns in another order); dev repeats
    # one example, and one text under two labels is not a repeat.
    train = [row(i % 3, premise=f"p{i}") for i in range(4)]
    dev = [row(0, premise="q"), row(1, premise="q"), row(0, premise="r"), row(0, premise="r")]
    task = snli_task(tmp_path, train + [dict(reversed(r.items())) for r in train], dev)
    with caplog.at_level(logging.WARNING, logger="layerft.data"):
        load_task_data(task, "target_task", build_tiny_tokenizer(), tmp_path / "cache", seed=0)
    assert [r.getMessage() for r in caplog.records] == [
        "target_task train: 4 of 8 examples repeat an earlier example of the split (same text "
        "and label); unless the data set holds such repeats, a file was concatenated twice or "
        "merged badly",
        "target_task validation: 1 of 4 examples repeat an earlier example of the split (same "
        "text and label); unless the data set holds such repeats, a file was concatenated twice "
        "or merged badly",
    ]


def csv_task(path: Path, rows: str, label_names: str):
    """An SNLI-shaped task reading `rows` (premise, hypothesis, label) from the CSV `path`."""
    path.write_text(f"premise,hypothesis,label\n{rows}")
    return compose_run(
        "model=tiny", "target_task=snli", f"target_task.label_names={label_names}",
        f"target_task.data_files.train={path}", f"target_task.data_files.validation={path}",
    ).target_task  # fmt: skip


def test_integer_label_names_read_integers_as_names(tmp_path) -> None:
    # Sentiment coded -1/0/1 in a CSV: the column reads as ints, which are names, not indices.
    path = tmp_path / "tri.csv"
    task = csv_task(path, "a,b,-1\nc,d,0\ne,f,1\ng,h,\n", "[-1,0,1]")
    rows = normalise_records(task, "target_task", read_records(path), "tri.csv")
    assert [r["label"] for r in rows] == [0, 1, 2]  # the empty cell: unlabelled, dropped
    floats = normalise_records(task, "target_task", [row(-1.0), row(1.0)], "f")  # pandas' floats
    assert [r["label"] for r in floats] == [0, 2]  # names too, never unlabelled or indices
    with pytest.raises(LayerftError, match="record 1: label 2 is not in target_task.label_names"):
        normalise_records(task, "target_task", [row(2)], "f")  # not a name, and never an index


def test_label_codes_with_leading_zeros_in_a_csv_are_their_names(tmp_path) -> None:
    # "01" read from a CSV cell as the number 1 was refused as "label 1 is not in label_names".
    path = tmp_path / "codes.csv"
    task = csv_task(path, "a,b,03\nc,d,01\ne,f,02\n", "['01','02','03']")
    rows = normalise_records(task, "target_task", read_records(path), "codes.csv")
    assert [r["label"] for r in rows] == [2, 0, 1]
    with pytest.raises(LayerftError, match="record 1: label 4 is not in target_task.label_names"):
        normalise_records(task, "target_task", [row(4)], "f")
    signed = csv_task(tmp_path / "signed.csv", "a,b,-01\nc,d,01\n", "['-01','01']")
    rows = normalise_records(signed, "target_task", read_records(tmp_path / "signed.csv"), "s")
    assert [r["label"] for r in rows] == [0, 1]
    # Which one is a CSV's 1? Refused with the config (a CSV's 01 among ['1','01'] was '1').
    for names in ("['01','001']", "['1','01']", "['0','-0']"):
        with pytest.raises(LayerftError, match="are one number to a CSV or TSV reader"):
            compose_run("model=tiny", "target_task=snli", f"target_task.label_names={names}")


def test_a_label_composed_otherwise_is_the_same_name(tmp_path) -> None:
    # Korean labels written decomposed (NFD, as macOS writes file contents it normalises) were
    # refused with a message showing two identical-looking names.
    names = ["부정", "중립", "긍정"]
    task = compose_run(
        "model=tiny",
        "target_task=snli",
        f"target_task.label_names=[{','.join(repr(n) for n in names)}]",
    ).target_task
    decomposed = [row(unicodedata.normalize("NFD", name)) for name in reversed(names)]
    assert decomposed[0]["label"] != names[2]
    rows = normalise_records(task, "target_task", decomposed, "f")
    assert [r["label"] for r in rows] == [2, 1, 0]
    # An unlabelled value too (a diff review: refused beside an identical-looking one).
    task = compose_run(
        "model=tiny", "target_task=snli", f"target_task.label_names=[{','.join(repr(n) for n in names)}]",
        "target_task.unlabelled_values=['없음']",
    ).target_task  # fmt: skip
    unlabelled = row(unicodedata.normalize("NFD", "없음"))
    assert normalise_records(task, "target_task", [unlabelled, row("부정")], "f") == [rows[2]]
    # Canonical equivalence only: a full-width letter is another name (NFKC would match it).
    letters = compose_run("model=tiny", "target_task=snli", "target_task.label_names=[A,B,C]")
    with pytest.raises(LayerftError, match="label 'Ａ' is not in target_task.label_names"):
        normalise_records(letters.target_task, "target_task", [row("Ａ")], "f")


def test_text_composed_otherwise_is_warned_about(tmp_path, caplog) -> None:
    # NFD Korean (separate jamo) is other tokens to a tokenizer that does not normalize
    # (klue/bert-base's WordPiece): it trained on text no dev or test set of the task holds.
    task = snli_task(tmp_path, [row(0)])
    records = [row(0, premise=unicodedata.normalize("NFD", "한국어 문장")), row(1), row(2)]
    with caplog.at_level(logging.WARNING, logger="layerft.records"):
        normalise_records(task, "target_task", records, "f")
    assert "f: 1 of 3 records hold text not in Unicode NFC (letters decomposed" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="layerft.records"):
        normalise_records(task, "target_task", [row(0, premise="한국어 문장 café")], "f")
    assert "NFC" not in caplog.text


def test_published_snli_no_gold_label_rows_are_dropped_and_counted(tmp_path, caplog) -> None:
    # snli_1.0_*.jsonl write '-' for a pair without a gold label; the HF layout writes -1.
    rows = [{"sentence1": "a man sleeps", "sentence2": "a man rests", "gold_label": g}
            for g in ("neutral", "-", "entailment")]  # fmt: skip
    columns = (
        "target_task.text_columns=[sentence1,sentence2]",
        "target_task.label_column=gold_label",
    )
    task = compose_run("model=tiny", "target_task=snli", *columns).target_task
    with caplog.at_level(logging.INFO, logger="layerft.records"):
        kept = normalise_records(task, "target_task", rows, "snli_1.0_dev.jsonl")
    assert [r["label"] for r in kept] == [1, 0]
    assert "snli_1.0_dev.jsonl: dropped 1 unlabelled records" in caplog.text
    other = compose_run(
        "model=tiny", "target_task=snli", *columns, "target_task.unlabelled_values=[]"
    )
    with pytest.raises(
        LayerftError, match=r"record 2: label '-' is not in target_task.label_names"
    ):
        normalise_records(other.target_task, "target_task", rows, "f")
    with pytest.raises(LayerftError, match=r"unlabelled_values \['neutral'\] are also label_names"):
        compose_run("model=tiny", "target_task=snli", "target_task.unlabelled_values=[-,neutral]")
    # unlabelled_values are strings (YAML's [99] too); a JSON or CSV label 99 is an int.
    marked = compose_run("model=tiny", "target_task=snli", "target_task.unlabelled_values=[99]")
    kept = normalise_records(marked.target_task, "target_task", [row(1), row(99), row(99.0)], "f")
    assert [r["label"] for r in kept] == [1]


@pytest.mark.parametrize(
    ("task", "columns", "label"),
    [("snli", "[premise,label]", "label"), ("nsmc", "[label]", "label"),
     ("klue_sts", "[sentence1,real_label]", "real_label"),  # a regression task too
     ("klue_re", "[label]", "label"), ("klue_sts_biencoder", "[sentence1,real_label]", "real_label")],
)  # fmt: skip
def test_a_label_column_among_the_text_columns_is_refused(task, columns, label) -> None:
    # With name labels it trained on the answer (dev accuracy 1.0) and said nothing.
    with pytest.raises(LayerftError, match=rf"include label_column '{label}': the model would"):
        compose_run("model=tiny", f"target_task={task}", f"target_task.text_columns={columns}")


def test_a_release_file_given_as_data_files_names_its_folder(tmp_path: Path) -> None:
    # Read as plain records it has no `real_label`; the error listed its columns and no way out.
    record = {"guid": "g0", "sentence1": "a", "sentence2": "b",
              "labels": {"label": 1.0, "real-label": 3.2, "binary-label": 1}}  # fmt: skip
    release = tmp_path / "klue-sts-v1.1_train.json"
    release.write_text(json.dumps([record]))
    task = compose_run("model=tiny", "target_task=klue_sts", f"target_task.data_files.train={release}").target_task  # fmt: skip
    assert _first_error(task).endswith(
        "no column 'real_label' (has guid, sentence1, sentence2, labels); klue-sts-v1.1_train.json "
        f"is a release file of 'klue_sts': give its folder, target_task.data_dir={tmp_path}"
    )
    # KLUE-MRC's release is one object over many lines: it was "invalid JSON" at line 1
    mrc = tmp_path / "klue-mrc-v1.1_dev.json"
    mrc.write_text(json.dumps({"version": "v1.1", "data": [{"title": "t"}]}, indent=2))
    task = compose_run("model=tiny", "target_task=klue_mrc", f"target_task.data_files.train={mrc}").target_task  # fmt: skip
    assert _first_error(task).endswith(
        f"is a release file of 'klue_mrc': give its folder, target_task.data_dir={tmp_path}"
    )
    mrc.write_text('{\n "version": "v1.1",\n "version": "v1.2"\n}\n')  # as any JSON file: refused
    with pytest.raises(LayerftError, match="version"):
        read_records(mrc)
    other = tmp_path / "sts.json"  # a file of one's own: its columns are the fault
    other.write_text(json.dumps([record]))
    task = compose_run("model=tiny", "target_task=klue_sts", f"target_task.data_files.train={other}").target_task  # fmt: skip
    assert _first_error(task).endswith("(has guid, sentence1, sentence2, labels)")


def _first_error(task, group: str = "target_task") -> str:
    records, origin = read_split(task, group, "train")
    with pytest.raises(LayerftError) as caught:
        normalise_records(task, group, records, origin)
    return str(caught.value)


def test_a_record_error_names_the_line_the_record_starts_on(tmp_path) -> None:
    # The kinds count records; blank lines, a header and a quoted line break put them elsewhere.
    good = json.dumps(row(0))
    jsonl = tmp_path / "train.jsonl"
    jsonl.write_text(f"{good}\n\n{good}\n\n{json.dumps(row(7))}\n")
    csv = tmp_path / "train.csv"
    csv.write_text('premise,hypothesis,label\n"two\nlines",x,0\n\ny,z,9\n')
    for path, place in ((jsonl, "train.jsonl:5: record 3"), (csv, "train.csv:5: record 2")):
        task = compose_run("model=tiny", "target_task=snli",
                           *(f"target_task.data_files.{s}={path}" for s in ("train", "validation"))
                           ).target_task  # fmt: skip
        assert _first_error(task).startswith(f"{path.parent}/{place}: label ")
    # NSMC's published TSV: its id column reads as numbers, and names the record all the same.
    tsv = tmp_path / "ratings.tsv"
    tsv.write_text("id\tdocument\tlabel\n9976970\tgood\t1\n3819312\tbad\t7\n")
    task = compose_run("model=tiny", "target_task=nsmc",
                       *(f"target_task.data_files.{s}={tsv}" for s in ("train", "validation"))
                       ).target_task  # fmt: skip
    assert _first_error(task).startswith(f"{tsv}:3: record 2 (3819312): label 7 ")
    # A release array: the element's line, its guid, and the file's own name of a renamed key.
    folder = tmp_path / "klue"
    folder.mkdir()
    records = [{"guid": f"nli-{i}", "premise": "p", "hypothesis": "h", "gold_label": "neutral"}
               for i in range(3)]  # fmt: skip
    del records[2]["gold_label"]
    for name in ("klue-nli-v1.1_train.json", "klue-nli-v1.1_dev.json"):
        (folder / name).write_text(json.dumps(records, indent=1))
    task = compose_run("model=tiny", "target_task=klue_nli", f"target_task.data_dir={folder}")
    message = _first_error(task.target_task)
    assert message.startswith(f"{folder}/klue-nli-v1.1_train.json:14: record 3 (nli-2): no column")
    assert message.endswith("('label' is target_task.release_rename of the file's 'gold_label')")


def renamed_task(path: Path, source: str, **rename: str):
    """SNLI read from `path` through data_files or data_dir, its columns renamed by `rename`."""
    files = (
        [f"target_task.data_files.{s}={path}" for s in ("train", "validation")]
        if source == "data_files"
        else [f"target_task.data_dir={path.parent}",
              *(f"target_task.release_files.{s}={path.name}" for s in ("train", "validation"))]
    )  # fmt: skip
    renames = [f"+target_task.release_rename.{own}={new}" for own, new in rename.items()]
    return compose_run("model=tiny", "target_task=snli", *files, *renames).target_task


@pytest.mark.parametrize("source", ["data_files", "data_dir"])
def test_release_rename_applies_to_every_local_file(tmp_path, source: str) -> None:
    # The task names columns as renamed; data_files ignored the rename.
    path = tmp_path / "pairs.tsv"
    path.write_text("pair_id\tleft_text\tright_text\tverdict\nx1\ta cat\ta pet\tneutral\n")
    task = renamed_task(path, source, left_text="premise", right_text="hypothesis", verdict="label")
    records, origin = read_split(task, "target_task", "train")
    rows = normalise_records(task, "target_task", records, origin)
    assert rows == [{"text_a": "a cat", "text_b": "a pet", "label": 1}]
    # A rename whose column the file lacks: the column the task misses is named as the rename's.
    task.release_rename = {"gold": "label"}
    task.text_columns = ["left_text", "right_text"]
    assert _first_error(task).endswith(
        "no column 'label' (has pair_id, left_text, right_text, verdict) "
        "('label' is target_task.release_rename of the file's 'gold')"
    )


@pytest.mark.parametrize("source", ["data_files", "data_dir"])
def test_a_rename_onto_a_column_the_record_has_stops_the_run(tmp_path, source: str) -> None:
    # Either of the two 'label' columns was kept, silently.
    path = tmp_path / "train.csv"
    path.write_text("premise,hypothesis,gold,label\np,h,neutral,entailment\n")
    task = renamed_task(path, source, gold="label")
    with pytest.raises(LayerftError) as caught:
        read_split(task, "target_task", "train")
    assert str(caught.value) == (
        f"{path}:2: record 1: target_task.release_rename renames 'gold' to 'label', but the record "
        "also has 'label'; remove one of the two columns from the file or change "
        "target_task.release_rename"
    )
    task.release_rename = {"gold": "label", "label": "silver", "premise": "silver"}
    with pytest.raises(LayerftError, match=r"renames 'label' to 'silver', but the record also "
                       r"has 'premise', renamed to 'silver' too;"):  # fmt: skip
        read_split(task, "target_task", "train")


def test_blank_texts_stop_the_run_unless_the_task_drops_them(tmp_path, caplog) -> None:
    # A blank text trained as [CLS] [SEP]; NSMC's published files hold a few empty reviews.
    path = tmp_path / "reviews.csv"
    path.write_text("id,document,label\n1,good film,1\n2,,0\n3, ,1\n4,bad film,0\n")
    files = [f"target_task.data_files.{split}={path}" for split in ("train", "validation")]
    strict = compose_run("model=tiny", "target_task=ag_news", "target_task.text_columns=[document]",
                      "target_task.label_names=[neg,pos]", *files).target_task  # fmt: skip
    records, _ = read_split(strict, "target_task", "train")
    with pytest.raises(
        LayerftError,
        match=r"^reviews.csv: record 2 \(2\): column 'document' is empty; fix or remove the record, or set target_task.drop_blank_texts=true",
    ):
        normalise_records(strict, "target_task", records, "reviews.csv")
    nsmc = compose_run("model=tiny", "target_task=nsmc", *files).target_task
    assert nsmc.drop_blank_texts
    with caplog.at_level(logging.INFO, logger="layerft.records"):
        rows = normalise_records(nsmc, "target_task", records, "reviews.csv")
    assert [r["text_a"] for r in rows] == ["good film", "bad film"]
    assert "reviews.csv: dropped 2 unlabelled or blank-text records" in caplog.text


def test_a_text_column_of_digits_stays_text_in_a_csv_or_tsv(tmp_path) -> None:
    # Product codes, years: a text column whose every cell is digits, read through the task.
    for name, sep in (("codes.csv", ","), ("codes.tsv", "\t")):
        path = tmp_path / name
        path.write_text(sep.join(["premise", "hypothesis", "label"]) + "\n" + "".join(
            sep.join([f"00{i}", str(1990 + i), str(i % 3)]) + "\n" for i in range(6)
        ))  # fmt: skip
        task = compose_run(
            "model=tiny", "target_task=snli",
            f"target_task.data_files.train={path}", f"target_task.data_files.validation={path}",
        ).target_task  # fmt: skip
        records, _ = read_split(task, "target_task", "train")
        rows = normalise_records(task, "target_task", records, name)
        assert rows[1] == {"text_a": "001", "text_b": "1991", "label": 1}


@pytest.mark.parametrize("source", ["data_files", "data_dir"])
def test_text_columns_of_digits_stay_text_under_their_own_names(tmp_path, source: str) -> None:
    # A release folder read them as numbers ("is not text: 2024"); a renamed one is found by the
    # file's own name.
    path = tmp_path / "codes.csv"
    path.write_text(
        "premise,right_text,label\n" + "".join(f"00{i},{1990 + i},{i % 3}\n" for i in range(6))
    )
    task = renamed_task(path, source, right_text="hypothesis")
    records, origin = read_split(task, "target_task", "train")
    rows = normalise_records(task, "target_task", records, origin)
    assert rows[1] == {"text_a": "001", "text_b": "1991", "label": 1}


def test_content_hash_follows_the_examples_not_the_path(tmp_path) -> None:
    # A stored stage 1 is keyed by it: a file edited in place is other data.
    tokenizer, cache = build_tiny_tokenizer(), tmp_path / "cache"
    train = [row(i % 3, premise=f"p{i}") for i in range(6)]
    task = snli_task(tmp_path, train)
    first = load_task_data(task, "target_task", tokenizer, cache, seed=0).content
    assert load_task_data(task, "target_task", tokenizer, cache, seed=0).content == first
    snli_task(tmp_path, [*train[:-1], row(0, premise="p5")])  # one label changed, same paths
    assert load_task_data(task, "target_task", tokenizer, cache, seed=0).content != first
    snli_task(tmp_path, train)
    task.max_train_samples = 5  # another subset of the same file
    assert load_task_data(task, "target_task", tokenizer, cache, seed=0).content != first


def test_caps_and_pairs_tokenized_without_padding(tmp_path) -> None:
    train = [row(i % 3, premise="p" * (i + 1)) for i in range(10)]
    task = snli_task(tmp_path, train)
    task.max_train_samples, task.max_eval_samples = 4, 3
    data = load_task_data(task, "target_task", build_tiny_tokenizer(), tmp_path / "cache", seed=0)
    assert (len(data.train), len(data.validation)) == (4, 3)
    lengths = [len(ids) for ids in data.train["input_ids"]]
    # [CLS] premise [SEP] hypothesis-without-spaces [SEP]: lengths differ, nothing padded.
    premises = [n - (1 + 1 + len("amanrests") + 1) for n in lengths]
    assert premises == sorted(premises) and set(premises) <= set(range(1, 11))  # in file order
    assert data.train["length"] == lengths
    assert data.train["labels"] == [(n - 1) % 3 for n in premises]
    assert data.train[0]["token_type_ids"][-1] == 1


def premise_lengths(data) -> list[int]:
    return [ids.index(3) - 1 for ids in data.train["input_ids"]]  # tokens before the first [SEP]


def test_capped_samples_are_a_seeded_random_subset_in_file_order(tmp_path) -> None:
    task = snli_task(tmp_path, [row(0, premise="p" * (i + 1)) for i in range(40)])
    task.max_train_samples = 10
    cache, tokenizer = tmp_path / "cache", build_tiny_tokenizer()
    picks = {
        seed: premise_lengths(load_task_data(task, "target_task", tokenizer, cache, seed=seed))
        for seed in (1, 2)
    }
    again = premise_lengths(load_task_data(task, "target_task", tokenizer, cache, seed=1))
    assert again == picks[1]  # deterministic for a seed
    assert picks[1] != picks[2]  # another seed, another subset
    for lengths in picks.values():
        assert len(lengths) == 10 and lengths == sorted(lengths)
        assert lengths != list(range(1, 11))  # not the first rows


@pytest.mark.skipif(not SHARED.is_dir(), reason=f"real data samples not found at {SHARED}")
def test_capped_label_sorted_file_keeps_several_classes(tmp_path) -> None:
    # The AG News sample is sorted by label: its first 50 rows are all Business.
    path = SHARED / "ag_news" / "train.jsonl"
    labels = [json.loads(line)["label"] for line in path.read_text().splitlines()]
    assert len(set(labels[:50])) == 1
    task = compose_run(
        "model=tiny", "target_task=ag_news", f"target_task.data_files.train={path}",
        f"target_task.data_files.validation={SHARED / 'ag_news' / 'test.jsonl'}",
        "target_task.max_train_samples=50",
    ).target_task  # fmt: skip
    for seed in (0, 1, 42):
        data = load_task_data(task, "target_task", build_tiny_tokenizer(), tmp_path, seed=seed)
        assert len(set(data.train["labels"])) >= 3, seed


def test_training_labels_missing_dev_classes_warn(tmp_path, caplog) -> None:
    train = [row(0, premise=f"p{i}") for i in range(4)]
    task = snli_task(tmp_path, train, [row(0, "b"), row(1), row("contradiction")])
    with caplog.at_level(logging.WARNING, logger="layerft.data"):
        load_task_data(task, "target_task", build_tiny_tokenizer(), tmp_path / "cache", seed=0)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, warnings
    assert "target_task" in warnings[0] and "train" in warnings[0]
    assert "neutral, contradiction" in warnings[0] and "entailment" not in warnings[0]


def test_tokenization_is_cached_across_runs(tmp_path) -> None:
    task = snli_task(tmp_path, [row(i % 3) for i in range(6)], [row(1, premise="b")])
    cache = tmp_path / "cache"
    first = load_task_data(task, "target_task", build_tiny_tokenizer(), cache, seed=0)
    files = sorted(cache.glob("*.arrow"))
    assert len(files) == 2  # train and validation
    mtimes = [f.stat().st_mtime_ns for f in files]
    second = load_task_data(task, "target_task", build_tiny_tokenizer(), cache, seed=0)
    assert [f.stat().st_mtime_ns for f in sorted(cache.glob("*.arrow"))] == mtimes  # reused
    assert second.train["input_ids"] == first.train["input_ids"]
    task.max_length = 5  # a change that alters tokenization gets its own files
    load_task_data(task, "target_task", build_tiny_tokenizer(), cache, seed=0)
    assert len(list(cache.glob("*.arrow"))) == 4
    # Another kind's settings do not: no encoder of this kind reads them (a kind's own settings
    # key its files: test_results, test_another_kinds_settings_...).
    task.biencoder.score_max = 4.0
    load_task_data(task, "target_task", build_tiny_tokenizer(), cache, seed=0)
    assert len(list(cache.glob("*.arrow"))) == 4


def test_truncated_cache_entry_is_rebuilt_with_a_warning(tmp_path, caplog) -> None:
    train = [row(i % 3, premise="p" * (i + 1)) for i in range(200)]
    task = snli_task(tmp_path, train, [{**r, "hypothesis": "another"} for r in train])
    cache = tmp_path / "cache"
    expected = load_task_data(task, "target_task", build_tiny_tokenizer(), cache, seed=0).train[:]
    assert not [f for f in cache.iterdir() if f.suffix != ".arrow"]  # no temporary files left
    entry = next(f for f in cache.glob("*.arrow") if len(Dataset.from_file(str(f))) == 200)
    size = entry.stat().st_size
    with entry.open("r+b") as handle:  # a run killed while writing, a full disk, a bad copy
        handle.truncate(size // 2)
    with caplog.at_level(logging.WARNING, logger="layerft.tokenized"):
        second = load_task_data(task, "target_task", build_tiny_tokenizer(), cache, seed=0)
    warnings = [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.WARNING and r.name == "layerft.tokenized"  # not the long texts'
    ]
    assert len(warnings) == 1 and str(entry) in warnings[0], warnings
    assert second.train[:]["input_ids"] == expected["input_ids"]
    assert entry.stat().st_size == size  # rebuilt in place of the broken file


def test_cache_entry_with_too_few_rows_is_rebuilt(tmp_path, caplog) -> None:
    task = snli_task(tmp_path, [row(i % 3) for i in range(6)], [row(1, premise="b")])
    cache = tmp_path / "cache"
    load_task_data(task, "target_task", build_tiny_tokenizer(), cache, seed=0)
    train_entry = next(f for f in cache.glob("*.arrow") if len(Dataset.from_file(str(f))) == 6)
    short = Dataset.from_file(str(train_entry)).data.table.slice(0, 2)  # readable, rows missing
    with ArrowWriter(path=str(tmp_path / "short.arrow")) as writer:
        writer.write_table(short)
    os.replace(tmp_path / "short.arrow", train_entry)
    with caplog.at_level(logging.WARNING, logger="layerft.tokenized"):
        data = load_task_data(task, "target_task", build_tiny_tokenizer(), cache, seed=0)
    assert len(data.train) == 6 and "rebuilding" in caplog.text


def test_a_cache_entry_arrow_fails_to_read_without_a_message_is_rebuilt(
    tmp_path, caplog, monkeypatch
) -> None:
    # Taking the first line of an empty message was an IndexError that failed the run.
    task = snli_task(tmp_path, [row(i % 3) for i in range(6)], [row(1, premise="b")])
    cache = tmp_path / "cache"
    load_task_data(task, "target_task", build_tiny_tokenizer(), cache, seed=0)
    from_file = Dataset.from_file
    refused = []

    def unreadable_once(path: str, *args, **kwargs) -> Dataset:
        if not refused:
            refused.append(path)
            raise pa.ArrowInvalid()
        return from_file(path, *args, **kwargs)

    monkeypatch.setattr(Dataset, "from_file", unreadable_once)
    with caplog.at_level(logging.WARNING, logger="layerft.tokenized"):
        data = load_task_data(task, "target_task", build_tiny_tokenizer(), cache, seed=0)
    assert len(data.train) == 6
    assert [r.getMessage() for r in caplog.records if r.name == "layerft.tokenized"] == [
        f"{refused[0]}: broken tokenization cache entry (ArrowInvalid); rebuilding it"
    ]


@pytest.mark.parametrize("blocked", ["under_a_file", "read_only"])
def test_unwritable_cache_dir_fails_naming_the_folder(tmp_path, blocked: str) -> None:
    task = snli_task(tmp_path, [row(i % 3) for i in range(6)])
    if blocked == "under_a_file":
        (tmp_path / "afile").write_text("not a folder")
        cache = tmp_path / "afile" / "sub"
    else:
        if os.geteuid() == 0:
            pytest.skip("root writes into a read-only folder; under_a_file covers root")
        cache = tmp_path / "ro"
        cache.mkdir()
        cache.chmod(0o555)
    with pytest.raises(LayerftError) as info:
        load_task_data(task, "target_task", build_tiny_tokenizer(), cache, seed=0)
    message = str(info.value)
    assert str(cache) in message and "cache_dir" in message and "\n" not in message


def test_tagging_labels_sit_on_first_subwords(tmp_path) -> None:
    task = compose_run("model=tiny", "injection_task=demo_pos").injection_task
    assert task is not None
    records = [{"tokens": ["ab", "c"], "tags": [1, 4]}]
    encoded = tokenize(Dataset.from_list(records), task, build_tiny_tokenizer(), tmp_path)
    # char tokenizer: [CLS] a b c [SEP] -> word ids None 0 0 1 None
    assert encoded[0]["labels"] == [-100, 1, -100, 4, -100]


@pytest.mark.parametrize(
    ("tokens", "message"),
    [
        ([None, "찰"], "record 1: 'tokens' word 1 is None, not str"),
        (["경", 3.5], "record 1: 'tokens' word 2 is 3.5, not str"),
        (["경", ""], "record 1: 'tokens' word 2 is empty"),
        ([" ", "찰"], r"record 1: 'tokens' word 1 is blank \(only spaces\)"),
        ([], "record 1: column 'tokens' must be a non-empty list"),
        ("경찰", "record 1: column 'tokens' must be a non-empty list"),
    ],
)
def test_tagging_tokens_must_be_words(tokens: object, message: str) -> None:
    # str() made null the word "None"; an empty word gets no subword, so its tag was never scored.
    task = compose_run("model=tiny", "target_task=klue_ner").target_task
    tags = ["B-OG", "I-OG"][: len(tokens)]
    with pytest.raises(LayerftError, match=f"^ner.jsonl: {message}$"):
        normalise_records(task, "target_task", [{"tokens": tokens, "ner_tags": tags}], "ner.jsonl")


def test_generated_demo_validation_never_repeats_training_records(tmp_path) -> None:
    cfg = compose_run("model=tiny")
    task = cfg.target_task
    data = load_task_data(task, "target_task", build_tiny_tokenizer(), tmp_path, seed=0)
    train = {tuple(ids) for ids in data.train["input_ids"]}
    assert not [ids for ids in data.validation["input_ids"] if tuple(ids) in train]
    assert len(data.train) == task.generator_sizes["train"]


def test_dev_predictions_name_the_record_and_id_of_each_example(tmp_path) -> None:
    """Unlabelled records dropped and a seeded sample of the rest: `index` alone could not be
    matched back to the file (a user's review); each line names its record's number and id."""
    records = [{**row(label, premise=f"premise {n}"), "id": f"p{n}"}
               for n, label in enumerate([0, -1, 2, "neutral", None, 1, 0], start=1)]  # fmt: skip
    for split in ("train", "validation"):
        (tmp_path / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    task = compose_run(
        "model=tiny", "target_task=snli", "target_task.max_eval_samples=3",
        *(f"target_task.data_files.{s}={tmp_path / s}.jsonl" for s in ("train", "validation")),
    ).target_task  # fmt: skip
    data = load_task_data(task, "target_task", build_tiny_tokenizer(), tmp_path / "c", seed=3)
    assert len(data.validation_sources) == len(data.validation_rows) == 3
    for source, kept in zip(data.validation_sources, data.validation_rows, strict=True):
        record = records[source["record"] - 1]  # numbered from 1, as messages number them
        assert (record["premise"], record["id"]) == (kept["text_a"], source["id"])
    scorer = build_compute_metrics(
        task, data.validation, data.validation_rows, data.validation_sources
    )
    labels = np.array(data.validation["labels"])
    scorer(EvalPrediction(np.eye(3)[labels], labels))
    write_partial(tmp_path, task, {"validation": scorer})
    text = (tmp_path / "dev_predictions.jsonl.partial").read_text()
    lines = [json.loads(line) for line in text.splitlines()]
    assert [(d["index"], d["record"], d["id"]) for d in lines] == [
        (i, s["record"], s["id"]) for i, s in enumerate(data.validation_sources)
    ]
    assert [d["prediction"] for d in lines] == [d["reference"] for d in lines]


def test_compute_metrics_for_tagging_skips_ignored_positions(tmp_path) -> None:
    # klue_ner's tags as the tags of words (its characters read as words, as before words_column)
    task = compose_run(
        "model=tiny", "injection_task=klue_ner", "injection_task.tagging.words_column=null"
    ).injection_task
    assert task is not None
    o, b_ps = task.label_names.index("O"), task.label_names.index("B-PS")
    labels = np.array([[-100, b_ps, o, -100], [-100, o, o, -100]])
    predicted = np.array([[o, b_ps, b_ps, o], [b_ps, o, o, b_ps]])  # ignored positions are wrong
    logits = np.eye(len(task.label_names))[predicted]
    # Two words each, both tagged (at positions 1 and 2).
    features = Dataset.from_list([{"input_ids": [2, 5, 6, 3], "tagged_words": [0, 1]}] * 2)
    rows = [{"tokens": ["a", "b"], "tags": [b_ps, o]}, {"tokens": ["c", "d"], "tags": [o, o]}]
    compute = build_compute_metrics(task, features, rows)
    metrics = compute(EvalPrediction(predictions=logits, label_ids=labels))
    # Scored tokens: (B-PS->B-PS), (O->B-PS), (O->O), (O->O): 3 of 4 right; non-O: 1 right of 2
    # predicted and 1 reference -> P=1/2, R=1, F1=2/3.
    assert metrics["token_accuracy"] == pytest.approx(0.75)
    assert metrics["token_f1"] == pytest.approx(2 / 3)
    # Items are sentences, each a record's; under a word-level best metric they are words, and
    # no line names a record.
    sourced = build_compute_metrics(task, features, rows, [{"record": 1}, {"record": 2}])
    sourced(EvalPrediction(predictions=logits, label_ids=labels))
    write_partial(tmp_path, task, {"validation": sourced})
    text = (tmp_path / "dev_predictions.jsonl.partial").read_text()
    assert [json.loads(line)["record"] for line in text.splitlines()] == [1, 2]
    task = compose_run(
        "model=tiny", "injection_task=klue_ner", "injection_task.tagging.words_column=null",
        "injection_task.metrics=[accuracy]", "injection_task.best_metric=accuracy",
    ).injection_task  # fmt: skip
    assert task is not None
    sourced = build_compute_metrics(task, features, rows, [{"record": 1}, {"record": 2}])
    sourced(EvalPrediction(predictions=logits, label_ids=labels))
    write_partial(tmp_path, task, {"validation": sourced})
    text = (tmp_path / "dev_predictions.jsonl.partial").read_text()
    assert len(text.splitlines()) == 4 and '"record"' not in text
    # As many words as records (one untagged, the other's two tagged): still words (a diff
    # review: both lines named records 1 and 2, though both words were record 2's).
    one = Dataset.from_list([{"input_ids": [2, 3, 0, 0], "tagged_words": []},
                             {"input_ids": [2, 5, 6, 3], "tagged_words": [0, 1]}])  # fmt: skip
    rows = [{"tokens": ["\u200b"], "tags": [o]}, {"tokens": ["c", "d"], "tags": [o, o]}]
    sourced = build_compute_metrics(task, one, rows, [{"record": 1}, {"record": 2}])
    sourced(EvalPrediction(predictions=logits, label_ids=np.array([[-100] * 4, labels[1]])))
    write_partial(tmp_path, task, {"validation": sourced})
    text = (tmp_path / "dev_predictions.jsonl.partial").read_text()
    assert len(text.splitlines()) == 2 and '"record"' not in text


def test_a_metric_returning_an_undeclared_key_or_no_best_metric_is_one_error(monkeypatch) -> None:
    # A new metric module whose keys differ from its registry entry would overwrite another
    # metric's value (results merge by key), or crash the Trainer on a missing best metric.
    task = compose_run("model=tiny").target_task  # demo_sentiment: accuracy (best), macro_f1
    prediction = EvalPrediction(predictions=np.eye(2)[[0, 1]], label_ids=np.array([0, 1]))
    features = Dataset.from_list([{"x": 0}] * 2)
    for returned, message in [
        ({"accuracy": 0.1, "macro_f1": 0.5}, r"^metric 'accuracy' returned macro_f1, which its"),
        ({}, r"^task 'demo_sentiment': best_metric 'accuracy' was not returned"),
    ]:
        fake = type("Fake", (), {"compute": lambda self, r=returned, **_: r})()
        monkeypatch.setattr(evaluation, "load_metric", lambda name, fake=fake: fake)
        with pytest.raises(LayerftError, match=message):
            build_compute_metrics(task, features, [])(prediction)
    monkeypatch.undo()
    assert build_compute_metrics(task, features, [])(prediction)["accuracy"] == 1.0


def test_a_classifiers_dev_metrics_count_the_classes_it_predicts(tmp_path, caplog) -> None:
    # One class for every dev example is a model that learned one label, whatever its accuracy
    # (here 2/3, the majority's share): the run warns and the sweep table notes it.
    task = compose_run("model=tiny").target_task
    features = Dataset.from_list([{"x": 0}] * 3)
    labels = np.array([0, 0, 1])
    one = build_compute_metrics(task, features, [])(EvalPrediction(np.eye(2)[[0, 0, 0]], labels))
    assert one["accuracy"] == pytest.approx(2 / 3) and one["predicted_classes"] == 1
    two = build_compute_metrics(task, features, [])(EvalPrediction(np.eye(2)[[0, 1, 1]], labels))
    assert two["predicted_classes"] == 2
    # The last call's predictions, as dev_predictions.jsonl writes them: labels by name.
    scorer = build_compute_metrics(task, features, [])
    scorer(EvalPrediction(np.eye(2)[[0, 1, 1]], labels))
    write_partial(tmp_path, task, {"validation": scorer})
    predictions.publish(tmp_path)
    lines = [
        json.loads(line) for line in (tmp_path / "dev_predictions.jsonl").read_text().splitlines()
    ]
    assert [(d["index"], d["prediction"], d["reference"]) for d in lines] == [
        (0, "negative", "negative"), (1, "positive", "negative"), (2, "positive", "positive"),
    ]  # fmt: skip
    with caplog.at_level(logging.WARNING, logger="layerft.phase"):
        phase.warn_one_class("target", {"eval_accuracy": 0.6, "eval_predicted_classes": 2.0})
        assert not caplog.records
        phase.warn_one_class(
            "target", {"eval_predicted_classes": 1.0, "eval_mm_predicted_classes": 1.0}
        )
    assert [r.getMessage() for r in caplog.records] == [
        f"target: the best dev checkpoint predicts one label for everything in {split}: it "
        "learned no more than that label (try another target_task.lr, more epochs or examples)"
        for split in ("validation", "mm")
    ]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            ["target_task.metrics=[token_f1]", "target_task.best_metric=token_f1"],
            "target_task.metrics: 'token_f1' reads tag_sequences, which a sequence_classification "
            "task does not produce (target_task=demo_sentiment)",
        ),
        (
            ["target_task.best_metric=f1"],
            "target_task.best_metric 'f1' is not one of accuracy, macro_f1",
        ),
        # A threshold squad_v2 finds is no score: the largest would have picked the checkpoint.
        (
            ["target_task=squad_v2", "target_task.best_metric=squad_v2_best_f1_thresh"],
            "target_task.best_metric 'squad_v2_best_f1_thresh' is not one of squad_v2_exact, "
            "squad_v2_f1, squad_v2_HasAns_exact, squad_v2_HasAns_f1, squad_v2_NoAns_exact, "
            "squad_v2_NoAns_f1, squad_v2_best_exact, squad_v2_best_f1",
        ),
        (
            ["target_task.metrics=[macro_f1]"],  # best_metric left at its default
            "target_task.best_metric 'accuracy' is not one of macro_f1 (the default where a task "
            "names none: set best_metric)",
        ),
        (
            ["target_task.metrics=[acuracy]"],
            "target_task.metrics: unknown metric 'acuracy'; available: accuracy, macro_f1",
        ),
        (
            ["target_task.release_format=klue_dq"],
            "target_task.release_format 'klue_dq' unknown; use one of records, klue_dp",
        ),
        (["target_task.generator=demo_sentimnt"], "target_task.generator 'demo_sentimnt' unknown"),
        # Metrics that would score something else, silently: one class of three, no entities.
        (
            ["target_task=snli", "target_task.metrics=[binary_f1,accuracy]",
             "target_task.best_metric=binary_f1"],
            "target_task.metrics: 'binary_f1' is the F1 of label_names[1] (the positive class) of "
            "2 labels; this task has 3 (use macro_f1)",
        ),
        (
            ["injection_task=conll_pos", "injection_task.metrics=[conlleval,token_f1]",
             "injection_task.best_metric=conll_f1"],
            "injection_task.metrics: 'conlleval' scores entities of IOB2 tags (O, B-<type>, "
            "I-<type>); label_names has '\"'",
        ),
        # KLUE-NER's char F1 averages over KLUE's 13 tags: other IOB2 tags failed at the first
        # evaluation, after training.
        (
            ["target_task=klue_ner",
             "target_task.label_names=[B-PER,I-PER,B-LC,I-LC,B-OG,I-OG,B-DT,I-DT,B-TI,I-TI,B-QT,I-QT,O]"],
            "target_task.metrics: 'klue_ner' scores only the labels B-PS, I-PS, B-LC, I-LC, B-OG, "
            "I-OG, B-DT, I-DT, B-TI, I-TI, B-QT, I-QT, O; label_names has 'B-PER'",
        ),
        # A task file that leaves metrics at their default, for a kind that cannot feed it.
        (
            ["target_task=klue_sts", "target_task.metrics=[accuracy]",
             "target_task.best_metric=accuracy"],
            "target_task.metrics: 'accuracy' reads class_ids, which a sequence_regression task "
            "does not produce (it is also metrics' default: set metrics this kind feeds)",
        ),
        # A split the task never reads (`dev` is `validation`).
        (
            ["target_task=snli", "+target_task.data_files.dev=x.jsonl"],
            "target_task.data_files.dev: no such split (splits: train, validation; a dev set is "
            "validation, another one is named in extra_eval_splits)",
        ),
    ],
)  # fmt: skip
def test_registry_names_are_checked_when_the_config_is_built(overrides, message) -> None:
    with pytest.raises(LayerftError) as info:
        compose_run("model=tiny", *overrides)
    assert message in str(info.value)


def test_a_null_split_entry_is_a_placeholder_not_an_unknown_split() -> None:
    # glue_mnli's YAML names `mismatched: null` for its extra dev set; without that split it is
    # unread, and Hydra cannot delete a null key from the command line.
    task = compose_run("target_task=glue_mnli", "target_task.extra_eval_splits=[]").target_task
    assert task.extra_eval_splits == []


@pytest.mark.skipif(
    not SHARED.is_dir(), reason="../shared/data (real KLUE samples) is not beside the checkout"
)
def test_klue_release_files_load_as_tasks(tmp_path) -> None:
    tokenizer = build_tiny_tokenizer()
    nli = compose_run(
        "target_task=klue_nli", f"target_task.data_dir={SHARED}/klue/klue-nli-v1.1"
    ).target_task
    data = load_task_data(nli, "target_task", tokenizer, tmp_path, seed=0)
    assert (len(data.train), len(data.validation)) == (300, 90)
    assert sorted(set(data.validation["labels"])) == [0, 1, 2]
    pos = compose_run(
        "injection_task=klue_pos", f"injection_task.data_dir={SHARED}/klue/klue-dp-v1.1"
    ).injection_task
    data = load_task_data(pos, "injection_task", tokenizer, tmp_path, seed=0)
    assert (len(data.train), len(data.validation)) == (300, 100)
    ner = compose_run(
        "injection_task=klue_ner", f"injection_task.data_dir={SHARED}/klue/klue-ner-v1.1"
    ).injection_task
    data = load_task_data(ner, "injection_task", tokenizer, tmp_path, seed=0)
    assert (len(data.train), len(data.validation)) == (300, 100)


def test_unreachable_hub_dataset_names_the_offline_alternatives(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    task = compose_run("target_task=snli").target_task
    with pytest.raises(LayerftError) as info:
        load_task_data(task, "target_task", build_tiny_tokenizer(), tmp_path, seed=0)
    message = str(info.value)
    assert "stanfordnlp/snli" in message and "\n" not in message
    for hint in ("target_task.data_files.train=", "target_task=demo_sentiment"):
        assert hint in message
    assert "data_dir" not in message  # SNLI has no release folder layout


def test_collator_pads_per_batch_to_the_multiple_and_drops_length(tmp_path) -> None:
    task = snli_task(tmp_path, [row(i % 3, premise="p" * (i + 1)) for i in range(5)])
    tokenizer = build_tiny_tokenizer()
    plain = load_task_data(task, "target_task", tokenizer, tmp_path / "cache", seed=0)
    rounded = load_task_data(
        task, "target_task", tokenizer, tmp_path / "cache", pad_to_multiple_of=8, seed=0
    )
    features = [plain.train[i] for i in range(3)]
    assert all("length" in f for f in features)  # kept for the length-grouped sampler
    batch = plain.collator(features)
    assert "length" not in batch
    longest = max(f["length"] for f in features)
    assert batch["input_ids"].shape == (3, longest)  # the batch's longest, not max_length
    assert rounded.collator(features)["input_ids"].shape == (3, -(-longest // 8) * 8)


def test_a_score_column_read_as_text_says_why_its_number_is_refused(tmp_path: Path) -> None:
    # Half its cells words: the column stays text, so the first (good) record was named as "not a
    # finite number: '0.0'" with nothing pointing at the words.
    lines = ["sentence1,sentence2,label", "a,b,0.0", "c,d,high", "e,f,1.5", "g,h,low"]
    (tmp_path / "sts.csv").write_text("\n".join(lines) + "\n")
    files = [f"target_task.data_files.{split}={tmp_path / 'sts.csv'}" for split in ("train", "validation")]  # fmt: skip
    task = compose_run("model=tiny", "target_task=glue_stsb", *files).target_task
    with pytest.raises(LayerftError) as caught:
        load_task_data(task, "target_task", build_tiny_tokenizer(), tmp_path / "c", seed=0)
    assert "record 1: column 'label' is not a finite number: \"0.0\" (a number written as text: in a" in str(caught.value)  # fmt: skip
    assert "half or more of its cells are not numbers; look for those)" in str(caught.value)


@pytest.mark.parametrize("bad", [False, True], ids=["good file", "bad record"])
def test_a_plans_record_check_leaves_logging_as_it_found_it(tmp_path, bad: bool) -> None:
    # It silences what a run would say while it reads; it had then re-enabled every level, over
    # a logging.disable the user (or a notebook) had set.
    from layerft.data_check import record_error

    files = {}
    for split in ("train", "validation"):
        files[split] = tmp_path / f"{split}.jsonl"
        files[split].write_text(json.dumps(row("no such label" if bad else 1)) + "\n")
    run = compose_run("model=tiny", "injection_task=none", "target_task=snli",
                      *(f"target_task.data_files.{s}={p}" for s, p in files.items()))  # fmt: skip
    logging.disable(logging.INFO)
    try:
        assert (record_error(run) is not None) == bad
        assert logging.root.manager.disable == logging.INFO
    finally:
        logging.disable(logging.NOTSET)
