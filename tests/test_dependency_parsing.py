"""The dependency_parsing kind: eojeol-subword alignment, decoding, truncation, settings, and a
parser that learns through the real phase runner.

Alignment tests use the tiny character tokenizer: every eojeol longer than one character is
several subwords. The training test writes a small generated treebank in the KLUE-DP release
layout and reads it through the `klue_dp` release reader.
"""

from __future__ import annotations

import logging
import random
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from compose import compose_run
from hydra.errors import ConfigCompositionException
from transformers import EvalPrediction

from layerft.errors import LayerftError
from layerft.kinds import biaffine, kind_of
from layerft.kinds import dependency_parsing as dp
from layerft.metrics import MetricInput, load_metric
from layerft.readers_klue_tsv import read_klue_dp
from layerft.records import normalise_records
from layerft.run import train_stages
from layerft.stage_data import load_stage_data
from layerft.task import TaskConfig
from layerft.tiny_model import build_tiny_backbone, build_tiny_tokenizer

# klue_baseline/data/klue_dp.py get_dep_labels(), copied in its order.
KLUE_DEP_LABELS = [
    "NP", "NP_AJT", "VP", "NP_SBJ", "VP_MOD", "NP_OBJ", "AP", "NP_CNJ", "NP_MOD", "VNP", "DP",
    "VP_AJT", "VNP_MOD", "NP_CMP", "VP_SBJ", "VP_CMP", "VP_OBJ", "VNP_CMP", "AP_MOD", "X_AJT",
    "VP_CNJ", "VNP_AJT", "IP", "X", "X_SBJ", "VNP_OBJ", "VNP_SBJ", "X_OBJ", "AP_AJT", "L",
    "X_MOD", "X_CNJ", "VNP_CNJ", "X_CMP", "AP_CMP", "AP_SBJ", "R", "NP_SVJ",
]  # fmt: skip
# A hand-made sentence: "철수가 빨간 사과를 먹었다." (4 eojeols of 3, 2, 3 and 4 characters).
SENTENCE = {
    "guid": "hand-1",
    "words": ["철수가", "빨간", "사과를", "먹었다."],
    "pos": ["NNP+JKS", "VA+ETM", "NNG+JKO", "VV+EP+EF+SF"],
    "heads": [4, 3, 4, 0],
    "deprels": ["NP_SBJ", "VP_MOD", "NP_OBJ", "VP"],
}
# [CLS] 철 수 가 빨 간 사 과 를 먹 었 다 . [SEP]
STARTS, ENDS = [1, 4, 6, 9], [3, 5, 8, 12]


def klue_dp(*overrides: str) -> TaskConfig:
    cfg = compose_run("model=tiny", "injection_task=klue_dp", *overrides)
    assert cfg.injection_task is not None
    return cfg.injection_task


def encode(task: TaskConfig, *records: dict) -> list[dict]:
    """Normalised and encoded features of `records`, one dict per sentence."""
    rows = normalise_records(task, "injection_task", records, "test")
    batch = {key: [row[key] for row in rows] for key in rows[0]}
    encoded = kind_of(task).encoder(task, build_tiny_tokenizer())(batch)
    return [{key: values[i] for key, values in encoded.items()} for i in range(len(rows))]


# --- alignment --------------------------------------------------------------------------------


def test_config_holds_klue_relations_in_klue_order_and_its_recipe() -> None:
    task = klue_dp()
    assert task.label_names == KLUE_DEP_LABELS
    assert task.label_names[15] == "VP_CMP"  # the klue_dp metric's first "others" relation
    assert (task.metrics, task.best_metric) == (["klue_dp"], "las")
    assert (task.lr, task.epochs, task.batch_size, task.max_length) == (5e-5, 10, 32, 256)
    assert (task.release_format, task.hub_id, task.hub_config) == ("klue_dp", "klue/klue", "dp")
    assert task.parsing.word_subword == dp.WordSubword.first_last


def test_records_keep_words_last_morpheme_pos_heads_and_relation_ids() -> None:
    task = klue_dp()
    rows = normalise_records(task, "injection_task", [SENTENCE], "test")
    tags = task.parsing.pos_tags
    assert rows[0] == {
        "words": SENTENCE["words"],
        "pos": [tags.index("JKS"), tags.index("ETM"), tags.index("JKO"), tags.index("SF")],
        "heads": [4, 3, 4, 0],
        "deprels": [3, 4, 5, 2],
    }


def test_words_align_to_their_first_and_last_subwords() -> None:
    task = klue_dp()
    (feature,) = encode(task, SENTENCE)
    assert len(feature["input_ids"]) == 14
    assert feature["word_starts"] == STARTS and feature["word_ends"] == ENDS
    assert feature["heads"] == [4, 3, 4, 0] and feature["deprels"] == [3, 4, 5, 2]


@pytest.mark.parametrize(
    ("subwords", "positions"),
    [("first", [STARTS]), ("last", [ENDS]), ("first_last", [STARTS, ENDS])],
)
def test_head_reads_each_word_at_the_chosen_subwords_and_the_root_at_cls(
    subwords: str, positions: list[list[int]]
) -> None:
    task = klue_dp(
        f"injection_task.parsing.word_subword={subwords}", "injection_task.parsing.pos_dim=4"
    )
    head = dp.build_head(3, task)
    hidden = torch.arange(14.0)[None, :, None].expand(
        1, 14, 3
    )  # each position's vector = its index
    pos_ids = torch.tensor([[0, 1, 2, 3]])
    vectors = head.word_vectors(hidden, torch.tensor([STARTS]), torch.tensor([ENDS]), pos_ids)
    expected = [torch.tensor([0.0, *p])[:, None].expand(5, 3) for p in positions]
    assert torch.equal(vectors[0, :, : 3 * len(positions)], torch.cat(expected, -1))
    root_pos = head.pos(torch.tensor([len(task.parsing.pos_tags)]))
    assert torch.equal(vectors[0, 0, -4:], root_pos[0])  # the root has its own POS id
    assert torch.equal(vectors[0, 1:, -4:], head.pos(pos_ids[0]))


def test_collator_pads_tokens_and_words_separately() -> None:
    task = klue_dp()
    short = {"words": ["철수가", "잔다."], "pos": ["NNP+JKS", "VV+EF+SF"], "heads": [2, 0],
             "deprels": ["NP_SBJ", "VP"]}  # fmt: skip
    features = [f | {"length": len(f["input_ids"])} for f in encode(task, SENTENCE, short)]
    batch = kind_of(task).collator(build_tiny_tokenizer(), None)(features)
    assert "length" not in batch
    assert batch["input_ids"].shape == (2, 14) and batch["attention_mask"][1].sum() == 8
    assert batch["word_mask"].tolist() == [[True] * 4, [True, True, False, False]]
    assert batch["heads"].tolist() == [[4, 3, 4, 0], [2, 0, -100, -100]]
    assert batch["deprels"].tolist() == [[3, 4, 5, 2], [3, 2, -100, -100]]
    assert batch["word_starts"].tolist() == [STARTS, [1, 4, 0, 0]]
    assert batch["word_ends"].tolist() == [ENDS, [3, 6, 0, 0]]


def test_record_faults_name_the_record() -> None:
    task = klue_dp()
    bad = [
        (SENTENCE | {"heads": [4, 3, 9, 0]}, "word 3 has head 9, outside 0..4"),
        # Not a tree: the release readers refused these, records from a jsonl trained on them.
        (SENTENCE | {"heads": [4, 2, 4, 0]}, "word 2: words [2] form a cycle of heads"),
        (SENTENCE | {"heads": [2, 1, 4, 0]}, "word 1: words [1, 2] form a cycle of heads"),
        (SENTENCE | {"deprels": ["NP_SBJ", "VP_MOD", "NOPE", "VP"]}, "word 3: label 'NOPE'"),
        (SENTENCE | {"pos": ["NNP"]}, "differ in length"),
        ({k: v for k, v in SENTENCE.items() if k != "heads"}, "no column 'heads'"),
        (SENTENCE | {"heads": [4, 3, "4", 0]}, "'heads' word 3 is '4', not int"),
        # An unlisted tag was fed as a shared "unknown" POS id.
        (
            SENTENCE | {"pos": ["NNP+JKS", "VA+XYZ", "NNG+JKO", "VV+EP+EF+SF"]},
            "word 2 ('빨간'): POS 'XYZ' is not in injection_task.parsing.pos_tags (47 tags: NNG, ",
        ),
    ]
    for record, message in bad:
        with pytest.raises(LayerftError, match=rf"^dev\.tsv: record 2.*{re.escape(message)}"):
            normalise_records(task, "injection_task", [SENTENCE, record], "dev.tsv")
    # Two roots make a forest, not a broken tree: a treebank other than KLUE-DP's or UD's may.
    [forest] = normalise_records(task, "injection_task", [SENTENCE | {"heads": [0, 3, 4, 0]}], "f")
    assert forest["heads"] == [0, 3, 4, 0]


def test_every_eojeol_of_the_shared_klue_dp_sample_is_kept(shared_data: Path) -> None:
    task = klue_dp()
    records = read_klue_dp(shared_data / "klue" / "klue-dp-v1.1" / "klue-dp-v1.1_dev.tsv")
    features = encode(task, *records)
    for record, feature in zip(records, features, strict=True):
        assert len(feature["heads"]) == len(record["words"])  # 256 characters hold every sentence
        assert all(
            s <= e for s, e in zip(feature["word_starts"], feature["word_ends"], strict=True)
        )


# --- decoding ---------------------------------------------------------------------------------


def relations_from(table: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
    """`decode`'s relation_scores read from a full (batch, words, 1 + words, relations) table."""

    def at(heads: torch.Tensor) -> torch.Tensor:
        return table.gather(2, heads[..., None, None].expand(-1, -1, 1, table.shape[-1]))[:, :, 0]

    return at


def test_decode_takes_the_best_unmasked_head_and_the_relation_at_that_head() -> None:
    # Sentence 0 has 3 words, sentence 1 has 2 (its third word and candidate 3 are padding).
    word_mask = torch.tensor([[True, True, True], [True, True, False]])
    scores = torch.zeros(2, 3, 4)
    scores[0, 0, 2] = scores[0, 1, 0] = scores[0, 2, 2] = 5.0  # heads 2, root, 2 (a self-loop)
    scores[1, 0, 3] = 9.0  # padding scores best: must not be chosen
    scores[1, 0, 2] = scores[1, 1, 0] = 5.0
    table = torch.zeros(2, 3, 4, 5)
    table[:, :, :, 4] = 1.0  # relation 4 wins at every head except where set below
    table[0, 0, 2, 1] = table[0, 1, 0, 0] = table[0, 2, 2, 3] = 2.0
    table[1, 0, 3, 1] = 9.0  # at the padding head: must not be read
    table[1, 0, 2, 2] = 2.0
    heads, relations = biaffine.decode(
        biaffine.mask_arcs(scores, word_mask), word_mask, relations_from(table)
    )
    assert heads.tolist() == [[2, 0, 2], [2, 0, -100]]
    assert relations.tolist() == [[1, 0, 3], [2, 4, -100]]


def test_evaluation_predicts_from_the_scores_not_from_the_gold_heads() -> None:
    task = klue_dp("injection_task.parsing.arc_space=8", "injection_task.parsing.relation_space=8")
    tokenizer = build_tiny_tokenizer()
    torch.manual_seed(0)
    backbone = build_tiny_backbone(compose_run("model=tiny").model.tiny, len(tokenizer)).eval()
    head = dp.build_head(backbone.config.hidden_size, task).eval()
    for parameter in head.parameters():
        torch.nn.init.normal_(parameter)
    batch = kind_of(task).collator(tokenizer, None)(encode(task, SENTENCE))
    with torch.no_grad():
        gold = head(backbone, **batch)
        other = head(backbone, **batch | {"heads": torch.tensor([[0, 1, 1, 2]])})
        unlabelled = head(
            backbone, **{k: v for k, v in batch.items() if k not in ("heads", "deprels")}
        )
    assert "loss" in gold and "loss" not in unlabelled
    for key in ("heads", "relations"):
        assert torch.equal(gold[key], other[key]) and torch.equal(gold[key], unlabelled[key])


# --- truncation -------------------------------------------------------------------------------


def test_truncation_keeps_the_words_begun_before_max_length() -> None:
    # max_length 9: [CLS] 철 수 가 빨 간 사 과 [SEP]; 사과를 loses its last subword, 먹었다. all.
    (feature,) = encode(klue_dp("injection_task.max_length=9"), SENTENCE)
    assert feature["word_starts"] == [1, 4, 6] and feature["word_ends"] == [3, 5, 7]
    assert feature["heads"] == [4, 3, 4]  # heads still name the cut word: scored, can't be right
    assert len(feature["pos_ids"]) == len(feature["deprels"]) == 3


def test_a_cut_off_gold_head_is_not_trained_on() -> None:
    task = klue_dp("injection_task.max_length=9", "injection_task.parsing.arc_space=8",
                   "injection_task.parsing.relation_space=8")  # fmt: skip
    tokenizer = build_tiny_tokenizer()
    backbone = build_tiny_backbone(compose_run("model=tiny").model.tiny, len(tokenizer)).eval()
    head = dp.build_head(backbone.config.hidden_size, task).eval()
    torch.nn.init.zeros_(head.arc_weight)
    torch.nn.init.zeros_(head.relation_weight)
    batch = kind_of(task).collator(tokenizer, None)(encode(task, SENTENCE))
    out = head(backbone, **batch)
    # Zeroed scorers: uniform over root + 3 words and over the relations, for the one
    # word (빨간 -> 사과를) whose gold head survived; the two words headed by 먹었다. add nothing.
    expected = np.log(4) + np.log(len(task.label_names))
    assert out.loss.item() == pytest.approx(expected, rel=1e-5)


def test_metric_inputs_score_kept_eojeols_and_warn_about_cut_ones(caplog) -> None:
    task = klue_dp()
    rows = [{"heads": [2, 0, 2]}, {"heads": [2, 0, 2, 2, 1]}]  # the second lost 2 eojeols
    padded = [[2, 0, 2, -100], [2, 0, 2, -100]]
    prediction = EvalPrediction(
        predictions=(np.array([[2, 0, 1, -100], [0, 0, 2, -100]]),
                     np.array([[3, 2, 5, -100], [3, 2, 0, -100]])),
        label_ids=(np.array(padded), np.array([[3, 2, 5, -100], [3, 2, 6, -100]])),
    )  # fmt: skip
    with caplog.at_level(logging.WARNING):
        inputs = dp.metric_inputs(task, prediction, None, rows)
    arcs = inputs[MetricInput.arcs]
    assert arcs == {
        "predictions": [[2, 0, 1], [0, 0, 2]],
        "predicted_relations": [[3, 2, 5], [3, 2, 0]],
        "references": [[2, 0, 2], [2, 0, 2]],
        "reference_relations": [[3, 2, 5], [3, 2, 6]],
        "cut_words": [0, 2],
    }
    assert "2 eojeols in 1 dev sentences lie past max_length=256" in caplog.text
    # KLUE-baseline drops the cut eojeols; CoNLL 2018 scores every gold word, so they count wrong.
    scores = load_metric("klue_dp").compute(**arcs, average="micro")
    assert scores == {"uas": pytest.approx(4 / 6), "las": pytest.approx(3 / 6)}
    scores = load_metric("ud_attachment").compute(**arcs)
    assert scores == {"ud_uas": pytest.approx(4 / 8), "ud_las": pytest.approx(3 / 8)}


# --- settings ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("parsing.pos_dim=-1", "parsing.pos_dim must be >= 0, got -1"),
        ("parsing.arc_space=0", "parsing.arc_space must be >= 1, got 0"),
        ("parsing.relation_space=0", "parsing.relation_space must be >= 1, got 0"),
        ("parsing.pos_tags=[]", "parsing.pos_tags is empty"),
        ("parsing.pos_tags=[NNG,NNG]", "parsing.pos_tags has duplicates"),
        ("label_names=[NP]", "label_names needs at least 2 labels"),
    ],
)
def test_bad_parsing_settings_fail_in_one_line_naming_the_key(override: str, message: str) -> None:
    with pytest.raises(LayerftError) as caught:
        klue_dp(f"injection_task.{override}")
    assert str(caught.value).startswith(f"injection_task.{message}")
    assert "\n" not in str(caught.value)


def test_an_unknown_word_subword_fails_at_composition_naming_the_key() -> None:
    with pytest.raises(ConfigCompositionException) as caught:
        klue_dp("injection_task.parsing.word_subword=middle")
    assert str(caught.value) == "Error merging override injection_task.parsing.word_subword=middle"
    assert "first, last, first_last" in str(caught.value.__cause__)


def test_no_pos_feature_builds_a_head_without_pos_embedding() -> None:
    head = dp.build_head(32, klue_dp("injection_task.parsing.pos_dim=0"))
    assert head.pos is None and head.mlp.in_features == 64


# --- it learns --------------------------------------------------------------------------------

# A generated treebank in the KLUE-DP release layout: subjects, objects and adjuncts attach to the
# final verb, a modifier to the word after it.
SUBJECTS = [
    ("철수가", "철수 가", "NNP+JKS"),
    ("영희가", "영희 가", "NNP+JKS"),
    ("학생이", "학생 이", "NNG+JKS"),
]
OBJECTS = [
    ("사과를", "사과 를", "NNG+JKO"),
    ("책을", "책 을", "NNG+JKO"),
    ("편지를", "편지 를", "NNG+JKO"),
]
ADJUNCTS = [
    ("학교에서", "학교 에서", "NNG+JKB"),
    ("어제", "어제", "NNG"),
    ("집에서", "집 에서", "NNG+JKB"),
]
MODIFIERS = [
    ("빨간", "빨갛 ㄴ", "VA+ETM"),
    ("새로운", "새롭 ㄴ", "VA+ETM"),
    ("작은", "작 은", "VA+ETM"),
]
VERBS = [("먹었다.", "먹 었 다 .", "VV+EP+EF+SF"), ("읽었다.", "읽 었 다 .", "VV+EP+EF+SF")]


def treebank_sentence(rng: random.Random) -> list[tuple[str, str, str, str]]:
    """(word, lemma, pos, deprel) per eojeol, heads implied: modifier -> next, others -> verb."""
    parts = [[(*rng.choice(SUBJECTS), "NP_SBJ")]]
    if rng.random() < 0.6:
        parts.append([(*rng.choice(ADJUNCTS), "NP_AJT")])
    obj = [(*rng.choice(OBJECTS), "NP_OBJ")]
    if rng.random() < 0.6:
        obj.insert(0, (*rng.choice(MODIFIERS), "VP_MOD"))
    parts.append(obj)
    rng.shuffle(parts)
    return [word for part in parts for word in part] + [(*rng.choice(VERBS), "VP")]


def write_treebank(path: Path, sentences: int, seed: int) -> None:
    rng = random.Random(seed)
    lines = ["## 칼럼명 : INDEX\tWORD_FORM\tLEMMA\tPOS\tHEAD\tDEPREL"]
    for number in range(sentences):
        words = treebank_sentence(rng)
        lines.append(f"## gen-{seed}-{number}\t{' '.join(w[0] for w in words)}")
        for index, (word, lemma, pos, deprel) in enumerate(words, 1):
            head = index + 1 if deprel == "VP_MOD" else 0 if deprel == "VP" else len(words)
            lines.append(f"{index}\t{word}\t{lemma}\t{pos}\t{head}\t{deprel}")
        lines.append("")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def train_parser(tmp_path: Path, *overrides: str) -> tuple[dict[str, float], list]:
    """Stage 1 on the generated treebank (stage 2 only evaluates): metrics and every log."""
    data_dir = tmp_path / "treebank"
    data_dir.mkdir(parents=True, exist_ok=True)
    write_treebank(data_dir / "klue-dp-v1.1_train.tsv", 96, seed=1)
    write_treebank(data_dir / "klue-dp-v1.1_dev.tsv", 40, seed=2)
    cfg = compose_run(
        "model=tiny", "tracker=none", f"cache_dir={tmp_path / 'cache'}", "injection_task=klue_dp",
        f"injection_task.data_dir={data_dir}", "injection_task.max_length=48",
        "injection_task.epochs=3", "injection_task.batch_size=16", "injection_task.evals_per_epoch=1",
        "injection_task.parsing.arc_space=64", "injection_task.parsing.relation_space=32",
        "injection_task.parsing.pos_dim=16", "target_task.generator_sizes.train=32",
        "target_task.generator_sizes.validation=32", "target_task.epochs=0", *overrides,
    )  # fmt: skip
    logs: list = []
    metrics, _ = train_stages(
        cfg, load_stage_data(cfg), tmp_path / "run", lambda n, s: logs.append((s, n))
    )
    return metrics, logs


def test_parser_learns_the_treebank_and_a_zero_lr_does_not(tmp_path) -> None:
    learned, logs = train_parser(tmp_path / "a", "injection_task.lr=3e-3")
    frozen, _ = train_parser(tmp_path / "b", "injection_task.lr=1e-9")
    losses = [numbers["injection/loss"] for _, numbers in logs if "injection/loss" in numbers]
    # Measured: losses 4.07, 0.17, 0.008 (logged once an epoch); UAS/LAS 1.0/1.0 learned, and
    # 0.18/0.0 at lr 1e-9 (macro F1 over head positions, as KLUE scores UAS).
    assert len(losses) == 3 and losses[-1] < 0.1 * losses[0]
    assert learned["injection/eval_uas"] >= 0.9 and learned["injection/eval_las"] >= 0.9
    assert frozen["injection/eval_uas"] <= 0.3 and frozen["injection/eval_las"] <= 0.1


def test_the_scorers_start_in_klue_baselines_ranges() -> None:
    # KLUE-baseline draws U as (labels, dependent, head) and each linear term as (labels,
    # features) with xavier_uniform_, biases 0: drawn as one 2-D matrix, the arc scorer started
    # 16x wider, and stage 1 trained from there.
    task = klue_dp()
    head = dp.build_head(768, task)
    arc, relation = task.parsing.arc_space, task.parsing.relation_space
    labels = len(task.label_names)

    def bound(fan_in: int, fan_out: int) -> float:
        return (6 / (fan_in + fan_out)) ** 0.5

    def assert_spans(weights: torch.Tensor, fan_in: int, fan_out: int) -> None:
        assert 0.95 * bound(fan_in, fan_out) < weights.abs().max() <= bound(fan_in, fan_out)

    assert_spans(head.arc_weight[:arc], arc * arc, arc)  # U (1, arc, arc)
    assert_spans(head.arc_weight[arc], arc, 1)
    blocks = head.relation_weight.detach().view(relation + 1, labels, relation + 1)
    assert_spans(blocks[:relation, :, :relation], relation * relation, labels * relation)
    assert_spans(blocks[:relation, :, relation], relation, labels)
    assert_spans(blocks[relation, :, :relation], relation, labels)
    assert torch.equal(blocks[relation, :, relation], torch.zeros(labels))
    # Each U_r is its own draw: the blocks are not copies of one another.
    assert not torch.equal(blocks[:relation, 0, :relation], blocks[:relation, 1, :relation])
