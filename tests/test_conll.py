"""CoNLL-2003 tagging (conll_pos, conll_chunk, conll_ner) and UD parsing (ud_dp): readers, the
conlleval and ud_attachment metrics, the task options, and both through train.py on model=tiny.

The samples in tests/data/conll2003/ and tests/data/ud/ are made-up sentences in the releases'
layouts (written by tests/data/write_conll_ud.py).
"""

from __future__ import annotations

import json
import logging
import random
from pathlib import Path

import numpy as np
import pytest
from compose import compose_run
from conftest import run_train
from transformers import EvalPrediction

from layerft.data import load_task_data
from layerft.errors import LayerftError
from layerft.kinds import token_tagging
from layerft.metrics import MetricInput, load_metric
from layerft.metrics.conll import chunks
from layerft.model import load_tokenizer
from layerft.readers import HUB_ADAPTERS, RELEASE_READERS
from layerft.readers_conll import iob1_to_iob2, read_conll2003
from layerft.readers_conllu import read_conllu
from layerft.records import normalise_records, read_split
from layerft.task import TaskConfig

DATA = Path(__file__).resolve().parent / "data"
CONLL = DATA / "conll2003"
UD = DATA / "ud"

# The hub's conll2003 ClassLabel names (huggingface/datasets datasets/conll2003/conll2003.py).
HUB_POS = [
    '"', "''", "#", "$", "(", ")", ",", ".", ":", "``", "CC", "CD", "DT", "EX", "FW", "IN", "JJ",
    "JJR", "JJS", "LS", "MD", "NN", "NNP", "NNPS", "NNS", "NN|SYM", "PDT", "POS", "PRP", "PRP$",
    "RB", "RBR", "RBS", "RP", "SYM", "TO", "UH", "VB", "VBD", "VBG", "VBN", "VBP", "VBZ", "WDT",
    "WP", "WP$", "WRB",
]  # fmt: skip
HUB_CHUNK = [
    "O", "B-ADJP", "I-ADJP", "B-ADVP", "I-ADVP", "B-CONJP", "I-CONJP", "B-INTJ", "I-INTJ",
    "B-LST", "I-LST", "B-NP", "I-NP", "B-PP", "I-PP", "B-PRT", "I-PRT", "B-SBAR", "I-SBAR",
    "B-UCP", "I-UCP", "B-VP", "I-VP",
]  # fmt: skip
HUB_NER = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC"]
UPOS = [
    "ADJ", "ADP", "ADV", "AUX", "CCONJ", "DET", "INTJ", "NOUN", "NUM", "PART", "PRON", "PROPN",
    "PUNCT", "SCONJ", "SYM", "VERB", "X",
]  # fmt: skip


def task(name: str, *overrides: str) -> TaskConfig:
    cfg = compose_run("model=tiny", f"injection_task={name}", *overrides)
    assert cfg.injection_task is not None
    return cfg.injection_task


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# --- CoNLL-2003 reader ------------------------------------------------------------------------

CONLL_TEXT = """-DOCSTART- -X- O O

EU NNP I-NP I-ORG
rejects VBZ I-VP O
German JJ I-NP I-MISC
call NN I-NP O
. . O O


Peter NNP I-NP I-PER
Blackburn NNP I-NP I-PER
-DOCSTART- -X- -X- O
Smith NNP I-NP I-PER
Jones NNP B-NP B-PER
in IN I-PP O
Sarnia NNP I-NP I-LOC
"""


def test_conll2003_sentences_split_at_blank_and_docstart_lines_with_iob2_tags(tmp_path) -> None:
    # Two blank lines in a row, a -DOCSTART- line right after a sentence (no blank line), either
    # -DOCSTART- form (the release's '-X- O O', the hub files' '-X- -X- O'), no final blank line.
    records = read_conll2003(write(tmp_path, "eng.train", CONLL_TEXT))
    assert [r["guid"] for r in records] == ["1-1", "1-2", "2-1"]
    assert records[0] == {
        "guid": "1-1",
        "tokens": ["EU", "rejects", "German", "call", "."],
        "pos_tags": ["NNP", "VBZ", "JJ", "NN", "."],
        "chunk_tags": ["B-NP", "B-VP", "B-NP", "I-NP", "O"],
        "ner_tags": ["B-ORG", "O", "B-MISC", "O", "O"],
    }
    assert records[1]["tokens"] == ["Peter", "Blackburn"]
    assert records[1]["ner_tags"] == ["B-PER", "I-PER"]
    # IOB1's B- (a chunk right after one of the same type) stays B-; the I- before it opens one.
    assert records[2]["chunk_tags"] == ["B-NP", "B-NP", "B-PP", "B-NP"]
    assert records[2]["ner_tags"] == ["B-PER", "B-PER", "O", "B-LOC"]


def test_conll2003_reads_crlf_files_and_the_hub_layout_alike(tmp_path) -> None:
    iob2 = CONLL_TEXT.replace("I-NP I-ORG", "B-NP B-ORG").replace("\n", "\r\n")
    assert read_conll2003(write(tmp_path, "train.txt", iob2)) == read_conll2003(
        write(tmp_path, "eng.train", CONLL_TEXT)
    )


@pytest.mark.parametrize(
    ("iob1", "iob2"),
    [
        (["I-PER", "I-PER", "B-PER", "O", "I-LOC"], ["B-PER", "I-PER", "B-PER", "O", "B-LOC"]),
        (["I-ORG", "I-LOC", "I-LOC"], ["B-ORG", "B-LOC", "I-LOC"]),  # a type change opens one
        (["O", "I-NP", "B-NP", "I-NP"], ["O", "B-NP", "B-NP", "I-NP"]),
        ([], []),
    ],
)
def test_iob1_to_iob2_by_hand(iob1: list[str], iob2: list[str]) -> None:
    assert iob1_to_iob2(iob1) == iob2


def random_tags(rng: random.Random, length: int, types: str = "AB") -> list[str]:
    return [rng.choice(["O"] + [f"{p}-{t}" for p in "BI" for t in types]) for _ in range(length)]


def test_iob1_to_iob2_keeps_every_chunk_and_leaves_iob2_unchanged() -> None:
    rng = random.Random(0)
    for _ in range(300):
        tags = random_tags(rng, rng.randint(0, 12))
        converted = iob1_to_iob2(tags)
        assert chunks([converted]) == chunks([tags])  # conlleval reads both the same
        assert all(
            not t.startswith("I-") or p[2:] == t[2:]
            for p, t in zip(["O", *converted], converted, strict=False)
        )  # IOB2: every I- continues a chunk of its type
        assert iob1_to_iob2(converted) == converted


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "EU NNP I-NP\n",
            r"eng.train:1: expected 4 space-separated fields \(WORD POS CHUNK NER\), got 3",
        ),
        (
            "EU NNP I-NP I-ORG\nx NN NP O\n",
            r"eng.train:2: CHUNK tag 'NP' is not O, B-<type> or I-<type>",
        ),
        ("EU NNP I-NP I-ORG\n\nx NN I-NP E-PER\n", r"eng.train:3: NER tag 'E-PER'"),
        ("-DOCSTART- -X- O O\n\n", r"eng.train: no sentences"),
        ("\n\n", r"eng.train: empty file"),
    ],
)
def test_conll2003_faults_name_file_line_and_field(tmp_path, text: str, message: str) -> None:
    with pytest.raises(LayerftError, match=message):
        read_conll2003(write(tmp_path, "eng.train", text))


def test_conll2003_sample_files_read_and_every_tag_is_in_the_hub_label_order() -> None:
    train, dev = read_conll2003(CONLL / "eng.train"), read_conll2003(CONLL / "eng.testa")
    assert (len(train), len(dev)) == (120, 40)
    for column, names in (("pos_tags", HUB_POS), ("chunk_tags", HUB_CHUNK), ("ner_tags", HUB_NER)):
        assert {tag for r in train + dev for tag in r[column]} <= set(names)
    # The sample keeps the release's IOB1 quirks: an I- opening chunks, B- after a same-type chunk.
    raw = (CONLL / "eng.train").read_text()
    assert "-DOCSTART- -X- O O" in raw and " B-NP " in raw and " B-ORG\n" in raw


# --- CoNLL-U reader ---------------------------------------------------------------------------

CONLLU_TEXT = """# newdoc id = doc-1
# sent_id = s-1
# text = I cannot go.
1	I	I	PRON	PRP	Case=Nom	4	nsubj	4:nsubj	_
2-3	cannot	_	_	_	_	_	_	_	_
2	can	can	AUX	MD	VerbForm=Fin	4	aux	4:aux	_
3	not	not	PART	RB	_	4	advmod	4:advmod	_
4	go	go	VERB	VB	VerbForm=Inf	0	root	0:root	SpaceAfter=No
5	.	.	PUNCT	.	_	4	punct	4:punct	_

# a comment that is not a key = value pair
1	Mary	Mary	PROPN	NNP	_	2	nsubj	2:nsubj	_
2	likes	like	VERB	VBZ	_	0	root	0:root	_
3	my	my	PRON	PRP$	_	4	nmod:poss	4:nmod:poss	_
4	tea	tea	NOUN	NN	_	2	obj	2:obj	_
5	and	and	CCONJ	CC	_	6	cc	5.1:cc	_
6	John	John	PROPN	NNP	_	2	conj	5.1:nsubj	_
6.1	likes	like	VERB	VBZ	_	_	_	2:conj:and	CopyOf=2
7	coffee	coffee	NOUN	NN	_	6	orphan	6.1:obj	_

"""


def test_conllu_words_skip_multiword_tokens_and_empty_nodes_and_keep_universal_relations(
    tmp_path,
) -> None:
    first, second = read_conllu(write(tmp_path, "x-ud-dev.conllu", CONLLU_TEXT))
    assert first == {
        "guid": "s-1",
        "text": "I cannot go.",
        "words": ["I", "can", "not", "go", "."],
        "lemmas": ["I", "can", "not", "go", "."],
        "upos": ["PRON", "AUX", "PART", "VERB", "PUNCT"],
        "xpos": ["PRP", "MD", "RB", "VB", "."],
        "heads": [4, 4, 4, 0, 4],
        "deprels": ["nsubj", "aux", "advmod", "root", "punct"],
    }
    # No sent_id or text comment: a guid from the file name and position, the words as text.
    assert second["guid"] == "x-ud-dev-2"
    assert second["text"] == "Mary likes my tea and John coffee"
    assert second["heads"] == [2, 0, 4, 2, 6, 2, 6]
    assert second["deprels"] == ["nsubj", "root", "nmod", "obj", "cc", "conj", "orphan"]


def test_conllu_samples_hold_comments_multiword_tokens_empty_nodes_and_subtypes() -> None:
    raw = (UD / "en_ewt-ud-train.conllu").read_text()
    assert all(mark in raw for mark in ("# newdoc id", "# sent_id", "# text", "\n2-3\t", "\n5.1\t"))
    assert "nmod:poss" in raw and "SpaceAfter=No" in raw
    train, dev = (
        read_conllu(UD / "en_ewt-ud-train.conllu"),
        read_conllu(UD / "en_ewt-ud-dev.conllu"),
    )
    assert (len(train), len(dev)) == (120, 40)
    relations = task("ud_dp").label_names
    assert {d for r in train + dev for d in r["deprels"]} <= set(relations)
    assert {p for r in train + dev for p in r["upos"]} <= set(UPOS)


GOOD_WORD = "1\tgo\tgo\tVERB\tVB\t_\t0\troot\t_\t_"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "1\tgo\tgo\tVERB\tVB\t_\t0\troot\t_\n",
            r"d.conllu:1: expected 10 tab-separated columns \(ID FORM",
        ),
        (
            f"{GOOD_WORD}\n3\tx\tx\tX\tX\t_\t1\tdep\t_\t_\n",
            r"d.conllu:2: ID '3' out of order \(expected 2\)",
        ),
        (
            "1\tgo\tgo\tVERB\tVB\t_\tone\troot\t_\t_\n",
            r"d.conllu:1: HEAD 'one' is not a word ID or 0",
        ),
        (f"{GOOD_WORD}\n2\tx\tx\tX\tX\t_\t5\tdep\t_\t_\n", r"d.conllu:2: HEAD 5 is outside 0..2"),
        (
            f"{GOOD_WORD}\n2\tx\tx\tX\tX\t_\t0\tdep\t_\t_\n",
            r"d.conllu:2: a second root \(words \[1, 2\] have HEAD 0\)",
        ),
        (
            f"{GOOD_WORD}\n2\tx\tx\tX\tX\t_\t2\tdep\t_\t_\n",
            r"d.conllu:2: words \[2\] form a cycle of heads",
        ),
        (
            "1\tgo\tgo\tVERB\tVB\t_\t2\troot\t_\t_\n2\tx\tx\tX\tX\t_\t3\tdep\t_\t_\n"
            "3\tx\tx\tX\tX\t_\t1\tdep\t_\t_\n",
            r"d.conllu:1: words \[1, 2, 3\] form a cycle of heads",
        ),
        ("1\tgo\tgo\t_\tVB\t_\t0\troot\t_\t_\n", r"d.conllu:1: UPOS is empty \('_'\)"),
        ("1\tgo\tgo\tVERB\tVB\t_\t0\t_\t_\t_\n", r"d.conllu:1: DEPREL is empty"),
        ("1-1\tgo\t_\t_\t_\t_\t_\t_\t_\t_\n", r"d.conllu:1: multiword token ID '1-1'"),
        ("x\tgo\tgo\tVERB\tVB\t_\t0\troot\t_\t_\n", r"d.conllu:1: ID 'x' is not a word ID"),
        (f"{GOOD_WORD}\n# late\n", r"d.conllu:2: comment line inside a sentence"),
        ("# sent_id = a\n\n", r"d.conllu:1: sentence has no word lines"),
    ],
)
def test_conllu_faults_name_file_line_and_field(tmp_path, text: str, message: str) -> None:
    with pytest.raises(LayerftError, match=message):
        read_conllu(write(tmp_path, "d.conllu", text))


def test_hub_universal_dependencies_rows_become_the_files_records(tmp_path) -> None:
    # As the hub's loader (conllu.parse_incr) lays out the first sentence above: the multiword
    # token kept with upos '_' (id 13) and head 'None', upos as ClassLabel ids.
    row = {
        "idx": "s-1", "text": "I cannot go.",
        "tokens": ["I", "cannot", "can", "not", "go", "."],
        "lemmas": ["I", "_", "can", "not", "go", "."],
        "upos": [11, 13, 17, 7, 16, 1],
        "xpos": ["PRP", None, "MD", "RB", "VB", "."],
        "feats": ["x"] * 6,
        "head": ["4", "None", "4", "4", "0", "4"],
        "deprel": ["nsubj", "_", "aux", "advmod", "root", "punct"],
        "deps": ["x"] * 6, "misc": ["x"] * 6,
    }  # fmt: skip
    [record] = HUB_ADAPTERS["conllu"]([row])
    assert record == read_conllu(write(tmp_path, "d.conllu", CONLLU_TEXT))[0]
    with pytest.raises(LayerftError, match=r"universal_dependencies row 0: expected lists of one"):
        HUB_ADAPTERS["conllu"]([{**row, "head": ["0"]}])


def test_hub_sources_of_ud_dp_and_conll_ner_read_through_their_adapters(monkeypatch) -> None:
    from datasets import Dataset

    from layerft import records as records_module

    ud_row = {
        "idx": "s-1", "text": "Go.", "tokens": ["Go", "."], "lemmas": ["go", "."],
        "upos": [16, 1], "xpos": ["VB", "."], "feats": ["_", "_"], "head": ["0", "1"],
        "deprel": ["root", "punct"], "deps": ["_", "_"], "misc": ["_", "_"],
    }  # fmt: skip
    ner_row = {"id": "0", "tokens": ["EU"], "pos_tags": [22], "chunk_tags": [11], "ner_tags": [3]}
    monkeypatch.setattr(records_module.datasets.config, "HF_HUB_OFFLINE", True)
    for name, row, origin in (
        ("ud_dp", ud_row, "universal_dependencies/en_ewt[train]"),
        ("conll_ner", ner_row, "eriktks/conll2003[train]"),
    ):
        monkeypatch.setattr(
            records_module, "load_dataset", lambda *a, row=row, **k: Dataset.from_list([row])
        )
        records, where = read_split(task(name), "injection_task", "train")
        assert where == origin
        rows = normalise_records(task(name), "injection_task", records, where)
        assert len(rows) == 1
    assert records == [ner_row]  # the hub's ids index the hub-ordered label_names
    assert rows[0]["tags"] == [3]


# --- metrics ----------------------------------------------------------------------------------


def conlleval(predictions: list[list[str]], references: list[list[str]]) -> dict[str, float]:
    return load_metric("conlleval").compute(predictions=predictions, references=references)


def test_conlleval_by_hand() -> None:
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "I-ORG", "I-ORG"]]
    # PER right; LOC typed ORG; the ORG cut short: 1 of 3 predicted, 1 of 3 gold.
    pred = [["B-PER", "I-PER", "O", "B-ORG"], ["B-ORG", "I-ORG", "O"]]
    assert conlleval(pred, gold) == pytest.approx(
        {"conll_f1": 1 / 3, "conll_precision": 1 / 3, "conll_recall": 1 / 3}
    )
    # conlleval reads an I- after O as a chunk's start (IOB1), and a type change as a new chunk.
    pred = [["I-PER", "I-PER", "O", "I-LOC"], ["I-ORG", "I-ORG", "I-ORG"]]
    assert conlleval(pred, gold)["conll_f1"] == 1.0
    pred = [["B-PER", "I-LOC", "O", "O"], ["O", "O", "O"]]  # 2 predicted, 0 right
    assert conlleval(pred, gold) == {"conll_f1": 0.0, "conll_precision": 0.0, "conll_recall": 0.0}
    # B- after a chunk of its type opens another (4 predicted: PER split in two), and a type
    # change too (the I-LOC after B-PER): 3 right of 4 predicted, of 3 gold.
    pred = [["B-PER", "I-PER", "B-PER", "I-LOC"], ["B-ORG", "I-ORG", "I-ORG"]]
    assert conlleval(pred, gold) == pytest.approx(
        {"conll_f1": 6 / 7, "conll_precision": 3 / 4, "conll_recall": 1.0}
    )
    # A chunk never runs across sentences.
    assert chunks([["I-A"], ["I-A"]]) == {(0, 0, 0, "A"), (1, 0, 0, "A")}
    assert conlleval([["O"]], [["O"]]) == {
        "conll_f1": 0.0,
        "conll_precision": 0.0,
        "conll_recall": 0.0,
    }


# Some draws have no predicted or no gold entity: seqeval scores 0 there, as conlleval does, and
# warns that the ratio is undefined; that case is part of what is compared.
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.UndefinedMetricWarning")
def test_conlleval_matches_seqeval_on_random_tags() -> None:
    seqeval = pytest.importorskip(
        "seqeval.metrics", reason="seqeval is the reference (pip install seqeval)"
    )
    rng = random.Random(1)
    for _ in range(200):
        lengths = [rng.randint(1, 10) for _ in range(rng.randint(1, 6))]
        gold = [random_tags(rng, n, "ABC") for n in lengths]
        pred = [random_tags(rng, n, "ABC") for n in lengths]
        ours = conlleval(pred, gold)
        assert ours["conll_f1"] == pytest.approx(seqeval.f1_score(gold, pred))
        assert ours["conll_precision"] == pytest.approx(seqeval.precision_score(gold, pred))
        assert ours["conll_recall"] == pytest.approx(seqeval.recall_score(gold, pred))


def test_conlleval_scores_untagged_words_as_o_and_the_log_counts_them(caplog) -> None:
    # MiniLM's BERT tokenizer gives the zero-width space no subword; max_length 6 cuts 'Paris'.
    conll = task("conll_ner", "injection_task.max_length=6")
    tokenizer = load_tokenizer(compose_run("model=minilm").model)
    names = list(conll.label_names)
    gold = [["B-PER", "I-PER", "I-PER"], ["B-ORG", "O", "B-MISC", "O", "B-LOC"]]
    rows = [
        {"tokens": ["John", "\u200b", "Smith"], "tags": [names.index(t) for t in gold[0]]},
        {"tokens": ["EU", "rejects", "German", "call", "Paris"],
         "tags": [names.index(t) for t in gold[1]]},
    ]  # fmt: skip
    features = token_tagging.encoder(conll, tokenizer)(
        {"tokens": [r["tokens"] for r in rows], "tags": [r["tags"] for r in rows]}
    )
    labels = np.full((2, 6), -100)
    for i, sentence in enumerate(features["labels"]):
        labels[i, : len(sentence)] = sentence
    # A model right on every word it tags.
    logits = np.eye(len(names))[np.where(labels == -100, 0, labels)]
    with caplog.at_level(logging.WARNING):
        inputs = token_tagging.metric_inputs(conll, EvalPrediction(logits, labels), features, rows)
    every_word = inputs[MetricInput.every_word_tags]
    assert every_word == {
        "predictions": [["B-PER", "O", "I-PER"], ["B-ORG", "O", "B-MISC", "O", "O"]],
        "references": gold,
    }
    # klue_ner and token_f1 keep to the tagged words, as KLUE-baseline.
    assert inputs[MetricInput.tag_sequences]["references"] == [
        ["B-PER", "I-PER"], ["B-ORG", "O", "B-MISC", "O"]
    ]  # fmt: skip
    # Gold PER[0:3] ORG MISC LOC; predicted PER[0:1] PER[2:3] ORG MISC: 2 right of 4, of 4.
    assert conlleval(**every_word) == pytest.approx(
        {"conll_f1": 0.5, "conll_precision": 0.5, "conll_recall": 0.5}
    )
    fix = 'conlleval scores each as an "O" prediction against its gold tag, token_f1 and '
    assert [r.getMessage() for r in caplog.records] == [
        "conll_ner: 1 words in 1 dev sentences lie past max_length=6 (first: word 5 'Paris' of "
        'the dev sentence "EU rejects German call Paris") and are not tagged: '
        f"{fix}klue_ner leave them out (as KLUE-baseline); "
        "raise max_length to tag them",
        "conll_ner: 1 words in 1 dev sentences have no subword (first: word 2 '\\u200b' of the "
        'dev sentence "John \u200b Smith") and are not tagged: '
        f"{fix}klue_ner leave them out (as KLUE-baseline); replace "
        "the characters the tokenizer removes (control, format, combining)",
    ]


def test_training_words_with_no_subword_are_counted_in_a_warning(tmp_path, caplog) -> None:
    # Their tags are never trained on; words cut by max_length are plain truncation, not warned.
    rows = [
        {"tokens": ["John", "\u200b", "Smith"], "ner_tags": ["B-PER", "I-PER", "I-PER"]},
        {"tokens": ["EU", "rejects", "German", "call", "Paris"],
         "ner_tags": ["B-ORG", "O", "B-MISC", "O", "B-LOC"]},
    ]  # fmt: skip
    dev = {"tokens": ["Paris"], "ner_tags": ["B-LOC"]}
    files = {
        split: write(tmp_path, f"{split}.jsonl", "".join(json.dumps(r) + "\n" for r in records))
        for split, records in (("train", rows), ("validation", [dev]))
    }
    conll = task(
        "conll_ner", "injection_task.max_length=6",
        f"injection_task.data_files.train={files['train']}",
        f"injection_task.data_files.validation={files['validation']}",
    )  # fmt: skip
    tokenizer = load_tokenizer(compose_run("model=minilm").model)
    with caplog.at_level(logging.WARNING):
        load_task_data(conll, "injection_task", tokenizer, tmp_path / "cache", seed=0)
    assert [r.getMessage() for r in caplog.records] == [
        "injection_task 'conll_ner': 1 words in 1 training sentences have no subword (first: "
        "word 2 '\\u200b' of the training sentence \"John \u200b Smith\") and are not trained on; "
        "replace the characters the "
        "tokenizer removes (control, format, combining)"
    ]


def ud_attachment(pred_heads, gold_heads, pred_rels, gold_rels) -> dict[str, float]:
    return load_metric("ud_attachment").compute(
        predictions=pred_heads,
        references=gold_heads,
        predicted_relations=pred_rels,
        reference_relations=gold_rels,
    )


def test_ud_attachment_by_hand() -> None:
    # 7 words, the punctuation included: heads right on 5 (words 1, 2, 4, 5, 7); of those,
    # relations right on 4 (word 5's wrong). Word 3's relation is right but its head is not.
    gold_heads, gold_rels = [[2, 0, 2, 5], [0, 1, 1]], [[1, 0, 2, 3], [0, 4, 5]]
    pred_heads, pred_rels = [[2, 0, 1, 5], [0, 2, 1]], [[1, 0, 2, 3], [1, 4, 5]]
    scores = ud_attachment(pred_heads, gold_heads, pred_rels, gold_rels)
    assert scores == pytest.approx({"ud_uas": 5 / 7, "ud_las": 4 / 7})
    assert ud_attachment([], [], [], []) == {"ud_uas": 0.0, "ud_las": 0.0}
    with pytest.raises(ValueError, match="sentence 0 has 1 predicted heads but 2"):
        ud_attachment([[0]], [[0, 1]], [[0]], [[0, 1]])


def test_ud_attachment_counts_words_cut_by_max_length_as_wrong() -> None:
    # conll18_ud_eval.py scores every gold word: 3 of 5 attached, the 2 cut ones got no head.
    scores = load_metric("ud_attachment").compute(
        predictions=[[2, 0, 2]], references=[[2, 0, 2]], predicted_relations=[[0, 1, 2]],
        reference_relations=[[0, 1, 2]], cut_words=[2],
    )  # fmt: skip
    assert scores == pytest.approx({"ud_uas": 3 / 5, "ud_las": 3 / 5})
    assert load_metric("ud_attachment").compute(
        predictions=[[]], references=[[]], predicted_relations=[[]], reference_relations=[[]],
        cut_words=[1],
    ) == {"ud_uas": 0.0, "ud_las": 0.0}  # fmt: skip


def test_ud_attachment_scores_universal_relations_of_two_conllu_files(tmp_path) -> None:
    # conll18_ud_eval.py on gold words: a system file that differs only in relation subtypes
    # scores LAS 1; one wrong head costs both scores one word in 12.
    gold = read_conllu(write(tmp_path, "gold.conllu", CONLLU_TEXT))
    system_text = CONLLU_TEXT.replace("\tnsubj\t4:nsubj", "\tnsubj:pass\t4:nsubj")
    system_text = system_text.replace(
        "4\ttea\ttea\tNOUN\tNN\t_\t2\tobj", "4\ttea\ttea\tNOUN\tNN\t_\t6\tobj"
    )
    system = read_conllu(write(tmp_path, "system.conllu", system_text))
    relations = task("ud_dp").label_names

    def ids(records: list[dict]) -> tuple[list, list]:
        return [r["heads"] for r in records], [
            [relations.index(d) for d in r["deprels"]] for r in records
        ]

    (pred_heads, pred_rels), (gold_heads, gold_rels) = ids(system), ids(gold)
    scores = ud_attachment(pred_heads, gold_heads, pred_rels, gold_rels)
    assert scores == pytest.approx({"ud_uas": 11 / 12, "ud_las": 11 / 12})


def test_ud_attachment_equals_word_accuracy_on_random_trees() -> None:
    rng = np.random.default_rng(0)
    sizes = rng.integers(1, 9, 50)
    gold = [rng.integers(0, n + 1, n).tolist() for n in sizes]
    pred = [
        [h if rng.random() < 0.7 else int(rng.integers(0, len(g) + 1)) for h in g] for g in gold
    ]
    gold_rels = [rng.integers(0, 5, len(g)).tolist() for g in gold]
    pred_rels = [
        [r if rng.random() < 0.8 else int(rng.integers(0, 5)) for r in g] for g in gold_rels
    ]
    flat = lambda xs: np.concatenate([np.asarray(x) for x in xs])  # noqa: E731
    heads_right = flat(pred) == flat(gold)
    scores = ud_attachment(pred, gold, pred_rels, gold_rels)
    assert scores["ud_uas"] == pytest.approx(heads_right.mean())
    assert scores["ud_las"] == pytest.approx(
        (heads_right & (flat(pred_rels) == flat(gold_rels))).mean()
    )


# --- task options -----------------------------------------------------------------------------


def test_every_new_task_option_composes_with_the_hub_label_orders() -> None:
    expected = {
        "conll_pos": ("pos_tags", HUB_POS, ["token_f1"], "token_accuracy"),
        "conll_chunk": ("chunk_tags", HUB_CHUNK, ["token_f1", "conlleval"], "token_accuracy"),
        "conll_ner": ("ner_tags", HUB_NER, ["conlleval", "token_f1"], "conll_f1"),
    }
    for name, (column, labels, metrics, best) in expected.items():
        conll = task(name)
        assert (conll.kind.value, conll.tags_column, conll.label_names) == (
            "token_tagging",
            column,
            labels,
        )
        assert (conll.metrics, conll.best_metric, conll.best_is_higher) == (metrics, best, True)
        assert (conll.hub_id, conll.release_format, conll.source) == (
            "eriktks/conll2003",
            "conll2003",
            "hub",
        )
        assert conll.release_files == {"train": "eng.train", "validation": "eng.testa"}
        hub_layout = task(
            name, f"injection_task.data_dir={CONLL}", "injection_task.release_files.train=train.txt",
            "injection_task.release_files.validation=valid.txt",
        )  # fmt: skip
        assert hub_layout.source == "data_dir" and hub_layout.release_files["train"] == "train.txt"
    ud = task("ud_dp")
    assert (ud.kind.value, ud.metrics, ud.best_metric) == (
        "dependency_parsing",
        ["ud_attachment"],
        "ud_las",
    )
    assert (ud.hub_id, ud.hub_config, ud.release_format) == (
        "universal_dependencies",
        "en_ewt",
        "conllu",
    )
    assert ud.parsing.pos_column == "upos" and ud.parsing.pos_tags == UPOS
    assert (
        len(ud.label_names) == 37 and "nmod" in ud.label_names and "nmod:poss" not in ud.label_names
    )
    other = task("ud_dp", "injection_task.hub_config=fr_gsd", "injection_task.parsing.pos_column=xpos",
                 "injection_task.parsing.pos_tags=[NN,VB]", "injection_task.release_files.train=fr_gsd-ud-train.conllu")  # fmt: skip
    assert (other.hub_config, other.parsing.pos_column, other.parsing.pos_tags) == (
        "fr_gsd",
        "xpos",
        ["NN", "VB"],
    )
    assert compose_run("model=tiny", "injection_task=ud_dp").injection_task.parsing.pos_dim == 256
    assert set(RELEASE_READERS) >= {"conll2003", "conllu"}
    with pytest.raises(
        LayerftError, match="metrics: 'ud_attachment' reads arcs, which a token_tagging"
    ):
        task("conll_ner", "injection_task.metrics=[ud_attachment]")


@pytest.mark.parametrize("name", ["conll_pos", "conll_chunk", "conll_ner"])
def test_conll_sample_normalises_into_each_tagging_task(name: str) -> None:
    conll = task(name, f"injection_task.data_dir={CONLL}")
    records, origin = read_split(conll, "injection_task", "validation")
    rows = normalise_records(conll, "injection_task", records, origin)
    assert len(rows) == 40
    first = records[0]
    assert [conll.label_names[i] for i in rows[0]["tags"]] == first[conll.tags_column]


def test_hub_conll2003_rows_are_read_by_label_index() -> None:
    conll = task("conll_ner")
    row = {"id": "0", "tokens": ["EU", "rejects"], "pos_tags": [22, 42], "chunk_tags": [11, 21],
           "ner_tags": [3, 0]}  # fmt: skip
    [normalised] = normalise_records(conll, "injection_task", [row], "eriktks/conll2003")
    assert normalised == {"tokens": ["EU", "rejects"], "tags": [3, 0]}


def test_ud_dp_feeds_upos_to_the_parser_and_the_column_is_configurable(tmp_path) -> None:
    [record] = read_conllu(write(tmp_path, "d.conllu", CONLLU_TEXT))[:1]
    ud = task("ud_dp")
    [row] = normalise_records(ud, "injection_task", [record], "d.conllu")
    assert row["pos"] == [UPOS.index(p) for p in ["PRON", "AUX", "PART", "VERB", "PUNCT"]]
    assert row["deprels"] == [ud.label_names.index(d) for d in record["deprels"]]
    xpos = task(
        "ud_dp", "injection_task.parsing.pos_column=xpos", "injection_task.parsing.pos_tags=[MD,VB]"
    )
    with pytest.raises(
        LayerftError, match=r"^d.conllu: record 1 \(s-1\), word 1 \('I'\): POS 'PRP' is not in "
    ):
        normalise_records(xpos, "injection_task", [record], "d.conllu")
    xpos.parsing.pos_tags = ["MD", "VB", "PRP", "RB", "."]
    [row] = normalise_records(xpos, "injection_task", [record], "d.conllu")
    assert row["pos"] == [2, 0, 3, 1, 4]
    missing = task("ud_dp", "injection_task.parsing.pos_column=tags")
    with pytest.raises(LayerftError, match=r"d.conllu.*no column 'tags'"):
        normalise_records(missing, "injection_task", [record], "d.conllu")


# --- end to end through train.py --------------------------------------------------------------

TARGET = (
    "target_task.generator_sizes.train=32", "target_task.generator_sizes.validation=32",
    "target_task.epochs=0",
)  # fmt: skip


def train(tmp_path: Path, *args: str) -> dict[str, float]:
    result = run_train(["model=tiny", "tracker=none", *TARGET, *args], tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads((tmp_path / "run" / "metrics.json").read_text())


def test_ud_dp_from_conllu_files_through_train_py(tmp_path) -> None:
    ud = (
        "injection_task=ud_dp", f"injection_task.data_dir={UD}", "injection_task.max_length=64",
        "injection_task.batch_size=16", "injection_task.parsing.arc_space=64",
        "injection_task.parsing.relation_space=32", "injection_task.parsing.pos_dim=16",
    )  # fmt: skip
    learned = train(tmp_path / "a", *ud, "injection_task.epochs=5", "injection_task.lr=3e-3")
    untrained = train(tmp_path / "b", *ud, "injection_task.epochs=0")
    for metrics in (learned, untrained):
        assert {"injection/eval_ud_uas", "injection/eval_ud_las"} <= set(metrics)
        assert 0 <= metrics["injection/eval_ud_las"] <= metrics["injection/eval_ud_uas"] <= 1
    # Measured: UAS / LAS 1.0 / 1.0 after 5 epochs; 0.15 / 0.0 untrained.
    assert learned["injection/eval_ud_uas"] >= 0.9 and learned["injection/eval_ud_las"] >= 0.9
    assert untrained["injection/eval_ud_uas"] <= 0.4 and untrained["injection/eval_ud_las"] <= 0.2
    # A part's peak learning rate is of a stage that trained: none where no stage did (epochs=0
    # reported the configured rates as if it had).
    rates = {
        stage: [k for k in untrained if k.startswith(f"{stage}/lr/")]
        for stage in ("injection", "target")
    }
    assert rates == {"injection": [], "target": []}
    assert learned["injection/lr/layer.0"] == 3e-3 and "target/lr/head" not in learned


def test_conll_ner_from_the_release_files_through_train_py(tmp_path) -> None:
    ner = ("injection_task=conll_ner", f"injection_task.data_dir={CONLL}", "injection_task.max_length=64",
           "injection_task.batch_size=16")  # fmt: skip
    learned = train(tmp_path / "a", *ner, "injection_task.epochs=5", "injection_task.lr=3e-3")
    untrained = train(tmp_path / "b", *ner, "injection_task.epochs=0")
    keys = {
        "injection/eval_conll_f1",
        "injection/eval_conll_precision",
        "injection/eval_conll_recall",
    }
    for metrics in (learned, untrained):
        assert keys | {"injection/eval_token_accuracy"} <= set(metrics)
        assert all(0 <= metrics[key] <= 1 for key in keys)
    # Measured: entity F1 0.94 after 5 epochs; 0.05 untrained.
    assert learned["injection/eval_conll_f1"] >= 0.8
    assert untrained["injection/eval_conll_f1"] <= 0.3
