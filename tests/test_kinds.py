"""Task kinds: the registry, and each kind added for KLUE (regression, bi-encoder, relations,
silver tags) learning an easy task through the real phase runner on model=tiny."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from compose import compose_run
from datasets import Dataset
from easy_data import keyword_task, pair_task, relation_task
from transformers import EvalPrediction

from layerft import records as records_module
from layerft.data import load_task_data
from layerft.errors import LayerftError, quoted
from layerft.kinds import KINDS, TaskKind, kind_of, tag_alignment
from layerft.kinds.relation_classification import mark
from layerft.metrics import MetricInput
from layerft.model import load_tokenizer
from layerft.records import normalise_records, read_split
from layerft.run import train_stages
from layerft.stage_data import load_stage_data
from layerft.tiny_model import build_tiny_tokenizer
from layerft.tokenized import tokenize

CONF = Path(__file__).resolve().parents[1] / "conf"
# Dev scored once an epoch in the learning checks, not 4 times: evaluations and saves were ~1/4
# of each run, and the best of 5 still separates a trained model from one at lr 1e-9.
ONCE = "target_task.evals_per_epoch=1"


def train(tmp_path: Path, *overrides: str) -> dict[str, float]:
    """Stage 2 alone on model=tiny with `overrides`; its metrics."""
    cfg = compose_run(
        "model=tiny", "tracker=none", "injection_task=none", f"cache_dir={tmp_path / 'cache'}",
        *overrides,
    )  # fmt: skip
    metrics, _ = train_stages(cfg, load_stage_data(cfg), tmp_path / "run", lambda n, s: None)
    return metrics


def test_every_kind_has_a_module_and_every_task_option_builds() -> None:
    assert set(KINDS) == set(TaskKind)
    kinds = set()
    for group in ("injection_task", "target_task"):
        for option in sorted((CONF / group).glob("*.yaml")):
            if option.stem != "none":
                cfg = compose_run(f"{group}={option.stem}")
                kinds.add(getattr(cfg, group).kind)
    assert kinds == set(TaskKind)  # every kind is used by a shipped task


# --- regression (klue_sts) and bi-encoder (klue_sts_biencoder) -------------------------------


def test_cross_encoder_regression_learns_scores(tmp_path) -> None:
    task = pair_task(tmp_path / "data", "klue_sts", compare=False)
    recipe = ("target_task.epochs=5", "target_task.lr=1e-3", "target_task.batch_size=16", ONCE)
    learned = train(tmp_path / "a", *task, *recipe)
    untrained = train(tmp_path / "b", *task, *recipe, "target_task.epochs=0")
    # Measured: Pearson 0.76 after 5 epochs; -0.08 at lr 1e-9.
    assert learned["target/eval_pearsonr"] >= 0.5
    assert untrained["target/eval_pearsonr"] <= 0.2


def test_biencoder_learns_which_pairs_match(tmp_path) -> None:
    task = pair_task(tmp_path / "data", "klue_sts_biencoder", compare=True)
    recipe = ("target_task.epochs=5", "target_task.lr=5e-3", "target_task.batch_size=16", ONCE)
    learned = train(tmp_path / "a", *task, *recipe)
    untrained = train(tmp_path / "b", *task, *recipe, "target_task.epochs=0")
    # Measured: Pearson 0.92, F1 0.98 after 5 epochs; Pearson 0.19 at lr 1e-9.
    assert learned["target/eval_pearsonr"] >= 0.7
    assert untrained["target/eval_pearsonr"] <= 0.4


def test_biencoder_encodes_and_pads_each_sentence_alone(tmp_path) -> None:
    cfg = compose_run("model=tiny", "target_task=klue_sts_biencoder")
    tokenizer = build_tiny_tokenizer()
    rows = [
        {"text_a": "ab", "text_b": "abcdef", "label": 1.0},
        {"text_a": "abcd", "text_b": "a", "label": 4.0},
    ]
    encoded = tokenize(Dataset.from_list(rows), cfg.target_task, tokenizer, tmp_path)
    batch = records_module.kind_of(cfg.target_task).collator(tokenizer, None)(list(encoded))
    # [CLS] + chars + [SEP]: the first sentences pad to 6, the second ones to 8.
    assert batch["input_ids"].shape == (2, 6) and batch["input_ids_b"].shape == (2, 8)
    assert batch["attention_mask_b"].tolist()[1] == [1, 1, 1, 0, 0, 0, 0, 0]
    assert batch["labels"].tolist() == [1.0, 4.0] and "length" not in batch


def test_regression_rejects_a_label_set_and_non_numeric_scores(tmp_path) -> None:
    with pytest.raises(LayerftError, match=r"target_task.label_names must be empty"):
        compose_run("model=tiny", "target_task=klue_sts", "target_task.label_names=[a,b]")
    task = compose_run("model=tiny", "target_task=klue_sts").target_task
    record = {"sentence1": "a", "sentence2": "b", "real_label": "high"}
    with pytest.raises(LayerftError, match=r"f: record 1: column 'real_label' is not a finite"):
        normalise_records(task, "target_task", [record], "f")
    # An integer too large for a float (JSON has no limit) is no score either: it overflowed.
    record["real_label"] = 10**400
    with pytest.raises(LayerftError, match=r"f: record 1: column 'real_label' is not a finite"):
        normalise_records(task, "target_task", [record], "f")


def test_a_score_outside_the_tasks_range_names_the_record_and_an_open_range_takes_it() -> None:
    task = compose_run("model=tiny", "target_task=klue_sts").target_task
    assert task.regression.score_range == [0, 5]  # KLUE's F1 thresholds 0-5 scores at 3
    records = [{"sentence1": "a", "sentence2": "b", "real_label": s} for s in (0.0, 5.0, 7.5)]
    with pytest.raises(
        LayerftError, match=r"^f: record 3: column 'real_label' score 7.5 is outside"
    ):
        normalise_records(task, "target_task", records, "f")
    task = compose_run(
        "model=tiny", "target_task=klue_sts", "target_task.regression.score_range=null"
    ).target_task
    assert [r["label"] for r in normalise_records(task, "target_task", records, "f")] == [0, 5, 7.5]


@pytest.mark.parametrize(
    ("option", "override", "message"),
    [
        ("klue_sts", "target_task.regression.score_range=[5,0]", r"must be \[low, high\]"),
        ("klue_sts", "target_task.regression.score_range=[1]", r"must be \[low, high\]"),
        ("klue_sts_biencoder", "target_task.biencoder.score_max=4", r"above biencoder.score_max 4"),
    ],
)
def test_a_score_range_that_cannot_hold_is_refused(
    option: str, override: str, message: str
) -> None:
    with pytest.raises(LayerftError, match=rf"^target_task.regression.score_range.*{message}"):
        compose_run("model=tiny", f"target_task={option}", override)


# --- relations (klue_re) ------------------------------------------------------------------------


def test_typed_markers_wrap_both_entities_in_either_order() -> None:
    sentence = "kim works at acme."
    subject = {"word": "acme", "start": 13, "end": 16, "type": "ORG"}
    obj = {"word": "kim", "start": 0, "end": 2, "type": "PER"}
    text, subject_at, object_at = mark(sentence, subject, obj)
    assert text == "# ^ PER ^ kim # works at @ * ORG * acme @."
    assert (text[subject_at], text[object_at]) == ("@", "#")


def test_relation_features_point_at_the_markers(tmp_path, caplog) -> None:
    task = compose_run("model=tiny", "target_task=klue_re").target_task
    record = {
        "sentence": "kim works at acme",
        "subject": {"word": "kim", "start": 0, "end": 2, "type": "PER"},
        "object": {"word": "acme", "start": 13, "end": 16, "type": "ORG"},
        "label": "per:employee_of",
    }
    rows = normalise_records(task, "target_task", [record], "f")
    [encoded] = tokenize(Dataset.from_list(rows), task, build_tiny_tokenizer(), tmp_path)
    # Character tokenizer: after [CLS], one token per non-space character of the marked text.
    text = rows[0]["text"]
    for key in ("subject", "object"):
        before = text[: rows[0][f"{key}_char"]].replace(" ", "")
        assert encoded[f"{key}_index"] == 1 + len(before)
    assert encoded["labels"] == task.label_names.index("per:employee_of")
    # A marker past max_length is read at [CLS], with one warning for the split, instead of
    # failing the run.
    short = compose_run("model=tiny", "target_task=klue_re", "target_task.max_length=12")
    features = tokenize(
        Dataset.from_list(rows * 3), short.target_task, build_tiny_tokenizer(), tmp_path
    )
    assert features[0]["subject_index"] > 0 and features[0]["object_index"] == 0
    with caplog.at_level(logging.WARNING):
        kind_of(short.target_task).check_encoded(
            short.target_task, "target_task", rows * 3, features
        )
    assert caplog.messages == [
        "target_task 'klue_re': 3 of 3 training examples have an entity marker past "
        'max_length=12, read as [CLS] (first: "@ * PER * kim @ works at # ^ ORG ^ acme #"); '
        "raise target_task.max_length to keep them"
    ]


def test_relation_records_are_checked_against_the_sentence() -> None:
    task = compose_run("model=tiny", "target_task=klue_re").target_task
    record = {
        "sentence": "kim works at acme",
        "subject": {"word": "kim", "start": 0, "end": 2, "type": "PER"},
        "object": {"word": "acme", "start": 12, "end": 15, "type": "ORG"},
        "label": "per:employee_of",
    }
    with pytest.raises(LayerftError, match=r"f: record 1: 'object' word 'acme' is not sentence"):
        normalise_records(task, "target_task", [record], "f")
    with pytest.raises(LayerftError, match=r"relation.no_relation 'none' is not in label_names"):
        compose_run("model=tiny", "target_task=klue_re", "target_task.relation.no_relation=none")


def test_relation_classification_learns_the_keyword_relation(tmp_path) -> None:
    task = relation_task(tmp_path / "data")
    recipe = ("target_task.epochs=5", "target_task.lr=5e-3", "target_task.batch_size=16", ONCE)
    learned = train(tmp_path / "a", *task, *recipe)
    untrained = train(tmp_path / "b", *task, *recipe, "target_task.epochs=0")
    # Measured: micro F1 (no_relation left out) 0.90 after 5 epochs; 0.22 at lr 1e-9.
    assert learned["target/eval_re_micro_f1"] >= 0.8
    assert untrained["target/eval_re_micro_f1"] <= 0.4


def test_klue_re_release_sample_loads_as_its_task(tmp_path) -> None:
    folder = Path(__file__).resolve().parent / "data" / "klue" / "klue-re-v1.1"
    task = compose_run("model=tiny", "target_task=klue_re", f"target_task.data_dir={folder}")
    data = load_task_data(task.target_task, "target_task", build_tiny_tokenizer(), tmp_path, seed=0)
    assert (len(data.train), len(data.validation)) == (40, 16)


# --- silver morphology (korean_morph) and hub rows --------------------------------------------


def test_korean_morph_tags_any_text_column_with_kiwi() -> None:
    pytest.importorskip("kiwipiepy", reason="the optional 'korean' extra (kiwipiepy) is absent")
    task = compose_run("model=tiny", "injection_task=korean_morph").injection_task
    assert task is not None
    [row] = normalise_records(task, "injection_task", [{"premise": "나는 학교에 갔다."}], "f")
    tags = [task.label_names[i] for i in row["tags"]]
    assert row["tokens"][:4] == ["나", "는", "학교", "에"]
    assert tags[:4] == ["NP", "JX", "NNG", "JKB"] and tags[-1] == "SF"


def test_korean_morph_reads_each_distinct_text_once(tmp_path, shared_data, caplog) -> None:
    """KLUE-NLI's release gives each premise for three hypotheses: tagged and trained once each
    (and counted in the log, never warned about as a file concatenated twice)."""
    pytest.importorskip("kiwipiepy", reason="the optional 'korean' extra (kiwipiepy) is absent")
    folder = shared_data / "klue" / "klue-nli-v1.1"
    task = compose_run(
        "model=tiny", "injection_task=korean_morph", f"injection_task.data_dir={folder}"
    ).injection_task
    assert task is not None
    premises = {
        split: {
            r["premise"] for r in json.loads((folder / f"klue-nli-v1.1_{split}.json").read_text())
        }
        for split in ("train", "dev")
    }
    with caplog.at_level(logging.INFO, logger="layerft"):
        data = load_task_data(task, "injection_task", build_tiny_tokenizer(), tmp_path, seed=0)
    assert (len(data.train), len(data.validation)) == (len(premises["train"]), len(premises["dev"]))
    assert len(premises["train"]) < 300  # the sample's 300 pairs repeat premises
    assert "repeats an earlier record's" in caplog.text
    assert "repeat an earlier example" not in caplog.text


def test_only_a_silver_tagger_leaves_repeated_texts_out() -> None:
    pytest.importorskip("kiwipiepy", reason="the optional 'korean' extra (kiwipiepy) is absent")
    task = compose_run("model=tiny", "injection_task=korean_morph").injection_task
    assert task is not None
    records = [{"premise": "나는 갔다."}, {"premise": "너는 왔다."}, {"premise": "나는 갔다."}]
    assert len(normalise_records(task, "injection_task", records, "f")) == 2
    gold = compose_run("model=tiny", "injection_task=demo_pos").injection_task
    assert gold is not None
    words = {"tokens": ["the", "dog"], "tags": ["DET", "NOUN"]}
    assert len(normalise_records(gold, "injection_task", [words, dict(words)], "f")) == 2


def test_hub_rows_become_the_release_readers_records(monkeypatch) -> None:
    task = compose_run("model=tiny", "target_task=klue_sts").target_task
    hub_row = {
        "guid": "g1", "source": "x", "sentence1": "a", "sentence2": "b",
        "labels": {"label": 3.1, "real-label": 3.14, "binary-label": 1},
    }  # fmt: skip
    monkeypatch.setattr(records_module.datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(
        records_module, "load_dataset", lambda *a, **k: Dataset.from_list([hub_row] * 2)
    )
    records, origin = read_split(task, "target_task", "train")
    assert origin == "klue/klue/sts[train]"
    assert records[0]["real_label"] == pytest.approx(3.14) and records[0]["sentence1"] == "a"


def test_heads_return_outputs_that_read_as_attributes() -> None:
    cfg = compose_run("model=tiny", "target_task=klue_sts")
    from layerft.heads import build_task_model
    from layerft.model import load_backbone

    model = build_task_model(load_backbone(cfg.model), cfg.target_task)
    out = model(input_ids=torch.tensor([[2, 5, 6, 3]]), labels=torch.tensor([2.0]))
    assert out.loss.ndim == 0 and out.scores.shape == (1,)
    assert list(out) == ["loss", "scores"]  # the Trainer takes what follows `loss` as predictions


# --- the paper's presets ------------------------------------------------------------------------


def test_klue_paper_preset_is_the_papers_setup() -> None:
    cfg = compose_run("experiment=klue_paper")
    assert cfg.model.hub_id == "klue/bert-base"
    assert cfg.injection_task is not None and cfg.injection_task.name == "klue_dp"
    split = cfg.layer_split
    assert (split.stage1.num_lower, split.stage1.head.value, split.stage2.policy.value) == (
        1,
        "top",
        "freeze",
    )
    assert split.stage1.train_embeddings and not split.stage2.transplant_embeddings
    assert cfg.lr_schedule.shape.value == "linear" and cfg.lr_schedule.warmup_ratio == 0.1


def test_klue_paper_grid_expands_to_valid_runs() -> None:
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        params = compose(
            "config", overrides=["sweep=klue_paper"], return_hydra_config=True
        ).hydra.sweeper.params
    assert dict(params) == {
        "injection_task": "none,klue_dp",
        "target_task": "klue_mrc,klue_nli,klue_sts,klue_ner,klue_re,klue_ynat",
        "seed": "1,2,3",
    }
    for injection in params.injection_task.split(","):
        for target in params.target_task.split(","):
            cfg = compose_run(
                "sweep=klue_paper", f"injection_task={injection}", f"target_task={target}"
            )
            assert cfg.target_task.name == target and cfg.model.hub_id == "klue/bert-base"
            lr = 3e-5 if target == "klue_mrc" else 5e-5
            assert (cfg.target_task.lr, cfg.target_task.epochs) == (lr, 3)


@pytest.mark.slow
def test_dp_injection_then_sts_from_the_klue_release_files(tmp_path, shared_data) -> None:
    """The issue's command, on model=tiny and one epoch a stage: the paper's pipeline offline."""
    from conftest import run_train

    klue = shared_data / "klue"
    result = run_train(
        [
            "model=tiny", "tracker=none",
            "injection_task=klue_dp", f"injection_task.data_dir={klue / 'klue-dp-v1.1'}",
            "target_task=klue_sts", f"target_task.data_dir={klue / 'klue-sts-v1.1'}",
            "injection_task.epochs=1", "target_task.epochs=1", "injection_task.max_length=128",
        ],
        tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    for key in (
        "injection/eval_uas",
        "injection/eval_las",
        "target/eval_pearsonr",
        "target/eval_f1",
    ):
        assert key in metrics, sorted(metrics)
    assert metrics["injection/num_injected_layers"] == 1
    assert "injection_task train: 300 examples" in result.stderr + result.stdout


# --- characters tagged, words read (tagging.words_column: klue_ner) -----------------------------


def character_task(**settings: str):  # noqa: ANN201 - a TaskConfig
    overrides = [f"target_task.{k}={v}" for k, v in settings.items()]
    return compose_run("target_task=klue_ner", *overrides).target_task


def encode_characters(task, tokenizer, words: list[str], tags: list[str]) -> tuple[Dataset, dict]:
    """One record through normalise and the kind's encoder, as training and evaluation see it."""
    record = {"tokens": list("".join(words)), "ner_tags": tags, "words": words}
    [row] = normalise_records(task, "target_task", [record], "dev")
    encoded = KINDS[TaskKind.token_tagging].encoder(task, tokenizer)(
        {k: [v] for k, v in row.items()}
    )
    return Dataset.from_dict(encoded), row


def test_klue_ner_reads_words_and_tags_each_subword_by_its_first_character() -> None:
    # KLUE-baseline tokenizes the sentence as written and gives a subword its first character's tag;
    # reading each character as a word (layerft before) lost the spaces and the word pieces.
    task = character_task()
    tokenizer = load_tokenizer(compose_run("model=minilm").model)
    words = ["John", "Smith", "visited", "Seoul."]
    tags = ["B-PS", "I-PS", "I-PS", "I-PS"] + ["I-PS"] * 5 + ["O"] * 7 + ["B-LC"] + ["I-LC"] * 4
    tags += ["O"]
    features, row = encode_characters(task, tokenizer, words, tags)
    pieces = tokenizer.convert_ids_to_tokens(features["input_ids"][0])
    assert pieces == ["[CLS]", "john", "smith", "visited", "seoul", ".", "[SEP]"]
    names = [None if i < 0 else task.label_names[i] for i in features["labels"][0]]
    assert names == [None, "B-PS", "I-PS", "O", "B-LC", "O", None]
    assert features["tagged_words"][0] == list(range(len(tags)))

    # Predictions spread back over each subword's characters: its B- as I- past the first.
    def scored(predicted: list[str]) -> dict:
        ids = [task.label_names.index(t) for t in predicted]
        logits = np.eye(len(task.label_names))[[ids]]
        prediction = EvalPrediction(predictions=logits, label_ids=np.array(features["labels"]))
        return KINDS[TaskKind.token_tagging].metric_inputs(task, prediction, features, [row])

    gold = scored(["O", "B-PS", "I-PS", "O", "B-LC", "O", "O"])
    assert gold[MetricInput.tag_sequences]["predictions"] == [tags]
    assert gold[MetricInput.tag_sequences]["references"] == [tags]
    wrong = scored(["O", "B-PS", "B-OG", "O", "O", "O", "O"])[MetricInput.tag_sequences]
    assert wrong["predictions"][0][4:10] == ["B-OG", "I-OG", "I-OG", "I-OG", "I-OG", "O"]
    assert wrong["predictions"][0][16:] == ["O"] * 6


def test_a_character_split_into_several_subwords_is_trained_and_scored_once() -> None:
    # MiniLM's uncased WordPiece decomposes Hangul into jamo: 강 is three tokens at one character.
    task = character_task()
    tokenizer = load_tokenizer(compose_run("model=minilm").model)
    features, row = encode_characters(task, tokenizer, ["강수", "연"], ["B-PS", "I-PS", "I-PS"])
    starts = features["char_start"][0]
    assert starts == [-1, 0, 0, 0, 1, 1, 2, 2, 2, -1]
    b_ps, i_ps = task.label_names.index("B-PS"), task.label_names.index("I-PS")
    assert features["labels"][0] == [-100, b_ps, -100, -100, i_ps, -100, i_ps, -100, -100, -100]
    assert features["tagged_words"][0] == [0, 1, 2]


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ({"tokens": list("ab"), "ner_tags": ["O", "O"], "words": ["a", "c"]},
         r"column 'words' does not spell the tokens' characters \(spaces left out\): 'a c' vs 'ab'"),
        ({"tokens": ["ab"], "ner_tags": ["O"], "words": ["ab"]},
         r"tokens must be single characters, got 'ab'"),
        ({"tokens": ["a"], "ner_tags": ["O"]}, r"no column 'words'"),
        # An I- that continues no entity within a word: a lost or mistyped tag.
        ({"tokens": list("abcd"), "ner_tags": ["O", "B-LC", "I-LC", "I-PS"], "words": ["ab", "cd"]},
         r"^train: record 1: character 4 \('d'\): I-PS does not follow B-PS or I-PS \(previous "
         r"tag I-LC\) within a word"),
    ],
)  # fmt: skip
def test_words_that_do_not_spell_the_characters_fail_naming_the_record(record, message) -> None:
    with pytest.raises(LayerftError, match=message):
        normalise_records(character_task(), "target_task", [record], "train")


def word_ner_task(tmp_path: Path, *overrides: str):  # noqa: ANN201 - a TaskConfig
    """KLUE-NER's labels and metrics over words of a user's own file (no character layout)."""
    path = tmp_path / "train.jsonl"
    files = [f"target_task.data_files.{split}={path}" for split in ("train", "validation")]
    words = "target_task.tagging.words_column=null"
    return compose_run("target_task=klue_ner", words, *files, *overrides).target_task


STRICT = (
    "'klue_ner' scores strict IOB2, where only B-{0} opens one; IOB1 tags? convert them to IOB2 "
    "(KLUE-NER's own, whose B- fell on a space: name its words column, tagging.words_column)"
)


@pytest.mark.parametrize(
    ("tags", "fault"),
    [
        (["I-PS", "I-PS", "O", "O"], "token 1 ('John'): I-PS opens an entity (previous tag O)"),
        (["B-PS", "I-PS", "O", "I-LC"], "token 4 ('Seoul'): I-LC opens an entity (previous tag O)"),
        (["B-PS", "I-OG", "O", "O"], "token 2 ('Smith'): I-OG opens an entity (previous tag B-PS)"),
        # the first token's previous tag is O, never the last token's
        (["I-PS", "O", "O", "B-PS"], "token 1 ('John'): I-PS opens an entity (previous tag O)"),
    ],
)
def test_iob1_gold_tags_are_refused_where_klue_ner_scores_them(tmp_path, tags, fault) -> None:
    # Strict IOB2 reads no entity at an opening I-: the gold would be scored as another sentence.
    record = {"tokens": ["John", "Smith", "visited", "Seoul"], "ner_tags": tags}
    with pytest.raises(LayerftError) as caught:
        normalise_records(word_ner_task(tmp_path), "target_task", [record], "train")
    kind = fault.split(": ")[1].split()[0][2:]
    assert str(caught.value) == f"train: record 1: {fault}, but " + STRICT.format(kind)
    # conlleval reads IOB1 as meant (layerft/metrics/conlleval/conlleval.py), and IOB2 passes.
    conll = word_ner_task(
        tmp_path, "target_task.metrics=[conlleval]", "target_task.best_metric=conll_f1"
    )
    assert (
        normalise_records(conll, "target_task", [record], "train")[0]["tokens"] == record["tokens"]
    )
    iob2 = {**record, "ner_tags": ["B-PS", "I-PS", "O", "B-LC"]}
    assert len(normalise_records(word_ner_task(tmp_path), "target_task", [iob2], "train")) == 1


def test_the_real_klue_ner_sample_passes_as_words(shared_data: Path) -> None:
    folder = shared_data / "klue" / "klue-ner-v1.1"
    task = compose_run(
        "target_task=klue_ner", "target_task.tagging.words_column=null",
        f"target_task.data_dir={folder}",
    ).target_task  # fmt: skip
    records, origin = read_split(task, "target_task", "validation")
    assert len(normalise_records(task, "target_task", records, origin)) == 100


def test_klue_ners_own_rows_keep_an_i_tag_after_a_dropped_space_as_words() -> None:
    # KLUE's gold opens '24살' with I-QT (its space's B-QT dropped): its reader keeps that, so the
    # strict IOB2 check leaves the release's and hub's rows alone; only a user's data_files is checked.
    task = compose_run("target_task=klue_ner", "target_task.tagging.words_column=null").target_task
    assert task.source != "data_files"
    tags = ["O", "O", "I-QT", "I-QT", "I-QT"]
    record = {"tokens": list("최근24살"), "ner_tags": tags}
    [row] = normalise_records(task, "target_task", [record], "train")
    assert [task.label_names[tag] for tag in row["tags"]] == tags


@pytest.mark.parametrize(
    ("tokens", "tags", "words"),
    [
        # KLUE-NER v1.1 dev '최근< 24살:QT>': the space before '24' is B-QT and dropped, so '2' is
        # an I-QT after O. The release reader keeps it (tests/test_readers.py), so does a jsonl.
        (list("최근24살이"), ["O", "O", "I-QT", "I-QT", "I-QT", "O"], ["최근", "24살이"]),
        # The same after a space that opened the sentence.
        (list("24살"), ["I-QT", "I-QT", "I-QT"], ["24살"]),
    ],
)
def test_an_i_tag_after_a_space_is_kept_as_klue_keeps_it(tokens, tags, words) -> None:
    task = character_task()
    record = {"tokens": tokens, "ner_tags": tags, "words": words}
    [row] = normalise_records(task, "target_task", [record], "train")
    assert [task.label_names[tag] for tag in row["tags"]] == tags


def test_an_i_tag_after_a_space_is_kept_in_a_users_jsonl_with_words(tmp_path: Path) -> None:
    # With words, only check_inside_tags judges: KLUE's I- after a dropped B- space is kept in a
    # user's data_files too (the strict IOB2 check, which exempts only the release, is not run).
    path = tmp_path / "train.jsonl"
    files = [f"target_task.data_files.{split}={path}" for split in ("train", "validation")]
    task = compose_run("target_task=klue_ner", *files).target_task
    tags = ["O", "O", "I-QT", "I-QT", "I-QT", "O"]
    record = {"tokens": list("최근24살이"), "ner_tags": tags, "words": ["최근", "24살이"]}
    [row] = normalise_records(task, "target_task", [record], "train")
    assert [task.label_names[tag] for tag in row["tags"]] == tags


def test_words_column_needs_bio_tags() -> None:
    with pytest.raises(LayerftError, match=r"label_names must be BIO tags"):
        character_task(label_names="[NN,VV]", best_metric="token_f1", metrics="[token_f1]")
    with pytest.raises(LayerftError, match=r"label_names lack I-PS, the tag a B- subword gives"):
        character_task(label_names="[B-PS,O]", best_metric="token_f1", metrics="[token_f1]")


def test_texts_cut_at_max_length_and_an_unread_data_dir_are_warned(tmp_path: Path, caplog) -> None:
    # Truncation changes what a classifier reads; tagging counted its cut words, sentences did not.
    overrides = [*keyword_task(tmp_path / "data", train=40, validation=20), "model=tiny"]
    task = compose_run(*overrides, "target_task.max_length=30", f"target_task.data_dir={tmp_path}")
    with caplog.at_level(logging.WARNING):
        data = load_task_data(
            task.target_task, "target_task", build_tiny_tokenizer(), tmp_path / "c", seed=0
        )
    lengths = [len(ids) for ids in data.train["input_ids"]]
    cut = sum(length >= 30 for length in lengths)
    assert 0 < cut < len(lengths)
    # The first cut text is quoted (the rows are sampled: a row number would name no record).
    records = [json.loads(line) for line in (tmp_path / "data" / "train.jsonl").open()]
    first = records[next(i for i, n in enumerate(lengths) if n >= 30)]["text"]  # all 40, in order
    messages = [r.getMessage() for r in caplog.records]
    assert (
        f"target_task 'ag_news': {cut} of 40 training examples ({100 * cut / 40:.1f}%) fill "
        f"max_length=30 tokens, so were likely cut (first: {quoted(first, 50)}); raise "
        "target_task.max_length to keep more of them"
    ) in messages
    assert (
        f"target_task: data_files is set, so target_task.data_dir={tmp_path} is not read (the "
        "first source set is; target_task.data_files.train=null "
        "target_task.data_files.validation=null unsets the files)"
    ) in messages
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        load_task_data(
            compose_run(*overrides, "target_task.max_length=128").target_task, "target_task",
            build_tiny_tokenizer(), tmp_path / "c", seed=0,
        )  # fmt: skip
    assert not [r for r in caplog.records if "max_length" in r.getMessage()]


def test_characters_past_max_length_are_counted_as_characters() -> None:
    task = character_task(max_length="4")  # [CLS] john smith [SEP]
    tokenizer = load_tokenizer(compose_run("model=minilm").model)
    words, tags = ["John", "Smith", "ok"], ["B-PS"] + ["I-PS"] * 8 + ["O", "O"]
    features, row = encode_characters(task, tokenizer, words, tags)
    cut, empty = tag_alignment.untagged(task, [row], features, "dev")
    assert cut.count("lie past max_length=4") == (
        "2 characters in 1 dev sentences lie past max_length=4 (first: character 10 'o' of the "
        'dev sentence "John Smith ok")'
    )
    assert not empty.words


def test_a_characters_tag_is_its_first_tokens_and_later_pieces_continue_it() -> None:
    # Two tokens starting at one character (a character split in pieces): the first one's tag.
    from layerft.kinds.tag_alignment import character_tags

    assert character_tags([0, 0], [1, 1], ["B-PS", "O"]) == {0: "B-PS"}
    assert character_tags([0, 2], [2, 3], ["B-PS", "O"]) == {0: "B-PS", 1: "I-PS", 2: "O"}
    assert character_tags([-1, 0], [0, 1], ["B-LC", "O"]) == {0: "O"}  # a token of no character
