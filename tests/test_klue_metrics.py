"""KLUE metric modules: hand-computed values, KLUE's edge cases and parity with the libraries KLUE calls."""

import numpy as np
import pytest
from sklearn.metrics import auc, f1_score, precision_recall_curve

from layerft.metrics import load_metric
from layerft.metrics.klue import KLUE_NER_LABELS, iob2_entities, normalize_mrc_answer

# sklearn warns (UndefinedMetricWarning) on the ill-defined cases these tests exercise on purpose.
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


# --- klue_sts -----------------------------------------------------------------------------------


def test_sts_hand_computed() -> None:
    # x = 1 2 3 4, y = 1 3 2 4; both means 2.5: dx = -1.5 -0.5 0.5 1.5, dy = -1.5 0.5 -0.5 1.5
    # sum dx*dy = 2.25 - 0.25 - 0.25 + 2.25 = 4; sum dx^2 = sum dy^2 = 5 -> r = 4/5
    # >= 3: predicted positive at x = 3, 4; gold positive at y = 3, 4 (positions 1, 3)
    # tp 1 (position 3), 2 predicted, 2 true -> F1 2*1/(2+2) = 1/2 (with > 3 it would be 1)
    result = load_metric("klue_sts").compute(predictions=[1, 2, 3, 4], references=[1, 3, 2, 4])
    assert result == {"pearsonr": pytest.approx(0.8), "f1": pytest.approx(0.5)}


def test_sts_threshold_is_inclusive_on_both_sides() -> None:
    # Positive iff score >= 3.0: preds 3.0 2.9 3.5 -> 1 0 1; golds 3.0 3.0 2.99 -> 1 1 0
    # tp 1 (first pair), 2 predicted, 2 true -> F1 2/4 = 1/2; with > 3.0: tp 0 -> 0
    result = load_metric("klue_sts").compute(
        predictions=[3.0, 2.9, 3.5], references=[3.0, 3.0, 2.99]
    )
    assert result["f1"] == pytest.approx(0.5)


def test_sts_edge_cases() -> None:
    metric = load_metric("klue_sts")
    # A constant side leaves r undefined (scipy: NaN): 0.0 here. Gold 4, 5 -> 2 positives,
    # predictions all 3 -> 2 positives, tp 2 -> F1 1.
    assert metric.compute(predictions=[3.0, 3.0], references=[4.0, 5.0]) == {
        "pearsonr": 0.0,
        "f1": 1.0,
    }
    # Nothing reaches 3 on either side: F1 0/0 -> 0 (sklearn's zero_division); r = 1.
    result = metric.compute(predictions=[0.5, 1.0, 2.0], references=[0.0, 1.0, 2.5])
    assert result["f1"] == 0.0
    assert metric.compute(predictions=[], references=[]) == {"pearsonr": 0.0, "f1": 0.0}
    assert metric.compute(predictions=[2.0], references=[4.0]) == {"pearsonr": 0.0, "f1": 0.0}


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_sts_matches_scipy_and_sklearn(seed: int) -> None:
    pearsonr = pytest.importorskip("scipy.stats").pearsonr
    rng = np.random.default_rng(seed)
    n = int(rng.integers(3, 80))
    # Rounded to one decimal as KLUE's gold, so some scores land exactly on 3.0.
    references = rng.uniform(0, 5, n).round(1)
    predictions = np.clip(references + rng.normal(0, 1, n), 0, 5).round(1)
    result = load_metric("klue_sts").compute(predictions=predictions, references=references)
    assert result["pearsonr"] == pytest.approx(pearsonr(predictions, references)[0], abs=1e-12)
    expected_f1 = f1_score(
        np.where(references >= 3, 1, 0), np.where(predictions >= 3, 1, 0), average="binary"
    )
    assert result["f1"] == pytest.approx(expected_f1, abs=1e-12)


# --- klue_dp ------------------------------------------------------------------------------------

# Two sentences, flattened below as positions 0-5.
DP_GOLD_HEADS = [[2, 4, 4, 0], [2, 0]]
DP_PRED_HEADS = [[2, 4, 1, 0], [2, 0]]  # position 2 has the wrong head
DP_GOLD_RELS = [[3, 5, 1, 2], [0, 2]]
DP_PRED_RELS = [[3, 1, 1, 2], [0, 16]]  # 16 >= 15: merged into "others"


def dp_compute(pred_heads, gold_heads, pred_rels, gold_rels, **kwargs) -> dict[str, float]:
    return load_metric("klue_dp").compute(
        predictions=pred_heads,
        references=gold_heads,
        predicted_relations=pred_rels,
        reference_relations=gold_rels,
        **kwargs,
    )


def test_dp_hand_computed_macro() -> None:
    # UAS: gold heads 2 4 4 0 2 0, predicted 2 4 1 0 2 0; classes = head ids {0, 1, 2, 4}
    # F1 = 2tp/(n_true + n_pred): 0 -> 4/4 = 1, 1 -> 0/1 = 0, 2 -> 4/4 = 1, 4 -> 2/3
    # UAS = (1 + 0 + 1 + 2/3)/4 = 2/3
    # LAS: gold 3 5 1 2 0 2; predicted 3 1 1 2 0 16 -> position 2's head is wrong, so its
    # relation becomes WRONG; 16 becomes OTHERS -> 3 1 WRONG 2 0 OTHERS
    # classes {0, 1, 2, 3, 5, WRONG, OTHERS}: 0 -> 1, 1 -> 0/2 = 0, 2 -> 2/3, 3 -> 1, 5 -> 0,
    # WRONG -> 0, OTHERS -> 0; LAS = (1 + 2/3 + 1)/7 = 8/21
    result = dp_compute(DP_PRED_HEADS, DP_GOLD_HEADS, DP_PRED_RELS, DP_GOLD_RELS)
    assert result == {"uas": pytest.approx(2 / 3), "las": pytest.approx(8 / 21)}


def test_dp_micro_is_attachment_accuracy() -> None:
    # Heads right at 5 of 6 positions; head and merged relation right at positions 0, 3, 4
    result = dp_compute(DP_PRED_HEADS, DP_GOLD_HEADS, DP_PRED_RELS, DP_GOLD_RELS, average="micro")
    assert result == {"uas": pytest.approx(5 / 6), "las": pytest.approx(1 / 2)}


def test_dp_wrong_head_class_joins_the_las_average() -> None:
    # Heads: gold 0 1, predicted 0 0 -> UAS classes 0 (tp 1, 1 true, 2 predicted: 2/3), 1 (0)
    # LAS: gold 2 0, predicted 2 WRONG -> classes 2 (1), 0 (0), WRONG (0) -> 1/3, not 1/2
    result = dp_compute([[0, 0]], [[0, 1]], [[2, 0]], [[2, 0]])
    assert result == {"uas": pytest.approx(1 / 3), "las": pytest.approx(1 / 3)}


def test_dp_rare_relations_merge_from_id_15() -> None:
    # Heads right. 15 and 16 both become OTHERS -> a match (LAS 1); kept apart they are two
    # classes with F1 0 each.
    assert dp_compute([[0]], [[0]], [[16]], [[15]])["las"] == 1.0
    assert dp_compute([[0]], [[0]], [[16]], [[15]], others_relation_id=None)["las"] == 0.0
    # 14 is not rare: gold 14 vs OTHERS -> two classes, F1 0 each
    assert dp_compute([[0]], [[0]], [[15]], [[14]])["las"] == 0.0


def test_dp_skips_gold_padding() -> None:
    # KLUE pads with -1 and drops those positions, whatever was predicted there.
    padded = dp_compute(
        [[2, 4, 1, 0, 7], [2, 0, 3]],
        [[2, 4, 4, 0, -1], [2, 0, -1]],
        [[3, 1, 1, 2, 9], [0, 16, 4]],
        [[3, 5, 1, 2, -1], [0, 2, -1]],
    )
    assert padded == {"uas": pytest.approx(2 / 3), "las": pytest.approx(8 / 21)}


def test_dp_edge_cases() -> None:
    # Single eojeol, right head and relation: one class each, F1 1.
    assert dp_compute([[0]], [[0]], [[2]], [[2]]) == {"uas": 1.0, "las": 1.0}
    assert dp_compute([], [], [], []) == {"uas": 0.0, "las": 0.0}
    assert dp_compute([[-1]], [[-1]], [[-1]], [[-1]]) == {"uas": 0.0, "las": 0.0}
    with pytest.raises(ValueError, match="sentence 0 has 1 predicted heads but 2 reference"):
        dp_compute([[0]], [[0, 1]], [[2]], [[2, 0]])
    with pytest.raises(ValueError, match="one relation per gold head"):
        dp_compute([[0, 1]], [[0, 1]], [[2]], [[2]])
    with pytest.raises(ValueError, match="average must be"):
        dp_compute([[0]], [[0]], [[2]], [[2]], average="weighted")


def klue_dp_reference(pred_heads, gold_heads, pred_types, gold_types, average: str) -> tuple:
    """KLUE-baseline's klue_dp_{uas,las}_{macro,micro}_f1, step by step, on sklearn."""
    index = np.flatnonzero(gold_heads == -1)
    pred_heads, gold_heads = np.delete(pred_heads, index), np.delete(gold_heads, index)
    index = np.flatnonzero(gold_types == -1)
    pred_types, gold_types = np.delete(pred_types, index), np.delete(gold_types, index)
    uas = f1_score(gold_heads.tolist(), pred_heads.tolist(), average=average)
    pred_types = np.where(pred_types >= 15, -3, pred_types)
    gold_types = np.where(gold_types >= 15, -3, gold_types)
    pred_types[np.nonzero(pred_heads != gold_heads)] = -2
    return uas, f1_score(gold_types.tolist(), pred_types.tolist(), average=average)


@pytest.mark.parametrize("average", ["macro", "micro"])
@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_dp_matches_klue_procedure_on_sklearn(seed: int, average: str) -> None:
    # A padded batch as KLUE's collator builds it: gold -1 past each sentence's end.
    rng = np.random.default_rng(seed)
    batch, width = 6, 12
    lengths = rng.integers(1, width + 1, size=batch)
    gold_heads = np.full((batch, width), -1)
    gold_types = np.full((batch, width), -1)
    for row, n in enumerate(lengths):
        gold_heads[row, :n] = rng.integers(0, n + 1, size=n)
        gold_types[row, :n] = rng.integers(0, 38, size=n)
    noisy = rng.random((batch, width)) < 0.4
    pred_heads = np.where(
        noisy | (gold_heads < 0), rng.integers(0, width + 1, (batch, width)), gold_heads
    )
    pred_types = np.where(
        rng.random((batch, width)) < 0.4, rng.integers(0, 38, (batch, width)), gold_types.clip(0)
    )
    result = dp_compute(
        pred_heads.tolist(),
        gold_heads.tolist(),
        pred_types.tolist(),
        gold_types.tolist(),
        average=average,
    )
    uas, las = klue_dp_reference(
        pred_heads.ravel(), gold_heads.ravel(), pred_types.ravel(), gold_types.ravel(), average
    )
    assert result["uas"] == pytest.approx(uas, abs=1e-12)
    assert result["las"] == pytest.approx(las, abs=1e-12)


# --- klue_ner -----------------------------------------------------------------------------------

NER_REFS = [["B-PS", "I-PS", "O", "B-LC", "I-LC"], ["B-DT", "O", "O"]]
NER_PREDS = [["B-PS", "I-PS", "O", "B-LC", "O"], ["I-DT", "O", "B-PS"]]


def test_ner_hand_computed() -> None:
    # Gold entities: PS[0:2], LC[3:5] | DT[0:1]. Predicted: PS[0:2], LC[3:4] | PS[2:3]; the stray
    # I-DT opens nothing in strict IOB2.
    # Per type 2tp/(n_true + n_pred): DT 0/1 = 0, LC 0/2 = 0 (end differs), PS 2/3
    # entity_f1 = (0 + 0 + 2/3)/3 = 2/9
    # Characters (8): gold  B-PS I-PS O B-LC I-LC B-DT O O
    #                 pred  B-PS I-PS O B-LC O    I-DT O B-PS
    # plus KLUE's [CLS]/[SEP] of each sentence: 4 more "O" on both sides.
    # B-PS 2/3, I-PS 1, B-LC 1, I-LC 0, B-DT 0, I-DT 0, O: tp 2+4, 3+4 true, 3+4 pred -> 6/7;
    # B-OG I-OG B-TI I-TI B-QT I-QT never seen -> 1 each (zero_division=True), 6 in all
    # char_f1 = (2/3 + 1 + 1 + 6/7 + 6)/13 = (200/21)/13 = 200/273 ("O" included, as KLUE's code)
    result = load_metric("klue_ner").compute(predictions=NER_PREDS, references=NER_REFS)
    assert result == {"entity_f1": pytest.approx(2 / 9), "char_f1": pytest.approx(200 / 273)}


def test_ner_strict_iob2_entities() -> None:
    assert iob2_entities(["B-PS", "I-PS", "B-PS", "O", "I-LC", "B-LC", "I-PS"]) == [
        ("PS", 0, 2),
        ("PS", 2, 3),
        ("LC", 5, 6),
    ]
    # An entity running to the end of the sentence is closed there.
    assert iob2_entities(["O", "B-QT", "I-QT"]) == [("QT", 1, 3)]
    assert iob2_entities(["I-PS", "I-PS"]) == []


def test_ner_edge_cases() -> None:
    metric = load_metric("klue_ner")
    # No entity anywhere: seqeval's macro is NaN (0.0 here); every entity label is absent
    # (1 each) and O is perfect -> char_f1 1.
    all_outside = metric.compute(predictions=[["O", "O"]], references=[["O", "O"]])
    assert all_outside == {"entity_f1": 0.0, "char_f1": 1.0}
    # A type only predicted joins the average with 0: PS 1, LC 0 -> 1/2.
    result = metric.compute(predictions=[["B-PS", "B-LC"]], references=[["B-PS", "O"]])
    assert result["entity_f1"] == pytest.approx(0.5)
    assert metric.compute(predictions=[], references=[]) == {"entity_f1": 0.0, "char_f1": 0.0}
    assert metric.compute(predictions=[[]], references=[[]]) == {"entity_f1": 0.0, "char_f1": 0.0}
    with pytest.raises(ValueError, match="invalid IOB2 tag 'E-PS'"):
        metric.compute(predictions=[["E-PS"]], references=[["O"]])
    with pytest.raises(ValueError, match=r"tags \['B-XX'\] are not in the label list"):
        metric.compute(predictions=[["B-XX"]], references=[["O"]])
    with pytest.raises(ValueError, match="sentence 0 has 1 predicted tags but 2 reference"):
        metric.compute(predictions=[["O"]], references=[["O", "O"]])


def test_ner_custom_label_list() -> None:
    # Only these three labels are averaged: B-PER 1, I-PER 0/1 = 0, O (with [CLS]/[SEP]): tp 3,
    # 3 true, 4 pred -> 6/7; char_f1 = (1 + 0 + 6/7)/3 = 13/21
    result = load_metric("klue_ner").compute(
        predictions=[["B-PER", "O", "O"]],
        references=[["B-PER", "I-PER", "O"]],
        label_list=["B-PER", "I-PER", "O"],
    )
    assert result["char_f1"] == pytest.approx(13 / 21)


def random_ner(seed: int) -> tuple[list[list[str]], list[list[str]]]:
    """Sentences of tags skewed to O and a few types, so spans overlap and break often."""
    rng = np.random.default_rng(seed)
    pool = np.array(["O", "O", "O", "B-PS", "I-PS", "B-LC", "I-LC", "B-DT", "I-DT"])
    refs = [list(rng.choice(pool, size=n)) for n in rng.integers(1, 15, size=5)]
    preds = [[t if rng.random() < 0.6 else str(rng.choice(pool)) for t in s] for s in refs]
    return preds, refs


def klue_ner_char_macro_f1(preds: np.ndarray, labels: np.ndarray, label_list: list[str]) -> float:
    """KLUE-baseline's klue_baseline/metrics/functional.py, as it stands (x100 included)."""
    label_indices = list(range(len(label_list)))
    preds = np.array(preds).flatten().tolist()
    trues = np.array(labels).flatten().tolist()
    return f1_score(trues, preds, labels=label_indices, average="macro", zero_division=True) * 100.0


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_ner_char_f1_is_klue_baselines_on_framed_sentences(seed: int) -> None:
    preds, refs = random_ner(seed)
    result = load_metric("klue_ner").compute(predictions=preds, references=refs)
    # KLUE's input: label ids over one flat sequence, each sentence framed by [CLS]/[SEP], gold
    # "O", which the model tags "O".
    index = {label: i for i, label in enumerate(KLUE_NER_LABELS)}
    framed = [[index[t] for s in side for t in ["O", *s, "O"]] for side in (preds, refs)]
    expected = klue_ner_char_macro_f1(*map(np.array, framed), list(KLUE_NER_LABELS)) / 100
    assert result["char_f1"] == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_ner_entity_f1_matches_seqeval(seed: int) -> None:
    seqeval_metrics = pytest.importorskip("seqeval.metrics")
    iob2 = pytest.importorskip("seqeval.scheme").IOB2
    preds, refs = random_ner(seed)
    result = load_metric("klue_ner").compute(predictions=preds, references=refs)
    # KLUE's call: one flat sequence, each sentence framed by the gold "O" of [CLS]/[SEP].
    flat_refs = [t for s in refs for t in ["O", *s, "O"]]
    flat_preds = [t for s in preds for t in ["O", *s, "O"]]
    expected = seqeval_metrics.f1_score(
        [flat_refs], [flat_preds], average="macro", mode="strict", scheme=iob2
    )
    assert result["entity_f1"] == pytest.approx(expected, abs=1e-12)


# --- klue_re ------------------------------------------------------------------------------------


def test_re_hand_computed() -> None:
    # no_relation = 0. gold 0 1 2 2 0 3, predicted 0 1 2 0 1 3
    # predicted relations (not 0): positions 1 2 4 5 -> 4; gold relations: 1 2 3 5 -> 4
    # correct relations: 1 2 5 -> 3; micro F1 = 2*3/(4 + 4) = 3/4 (accuracy would be 4/6)
    probabilities = np.eye(4)[[0, 1, 2, 0, 1, 3]] * 0.7 + 0.075
    result = load_metric("klue_re").compute(
        predictions=[0, 1, 2, 0, 1, 3], references=[0, 1, 2, 2, 0, 3], probabilities=probabilities
    )
    assert result["re_micro_f1"] == pytest.approx(3 / 4)


def test_re_auprc_hand_computed() -> None:
    # Class 0: gold 1 0 1, scores 0.9 0.4 0.3. Thresholds high to low: tp 1 1 2, fp 0 1 1 ->
    # precision 1 1/2 2/3, recall 1/2 1/2 1. sklearn's curve (recall falling, closed at
    # (0, 1)): recall 1 1/2 1/2 0, precision 2/3 1/2 1 1.
    # Trapezoids: (1 - 1/2)(2/3 + 1/2)/2 = 7/24, 0, (1/2 - 0)(1 + 1)/2 = 1/2 -> 19/24
    # (average precision would be 1/2*1 + 1/2*2/3 = 5/6).
    # Class 1: gold 0 1 0, scores 0.1 0.6 0.7 -> high to low: tp 0 1 1, fp 1 1 2 ->
    # precision 0 1/2 1/3, recall 0 1 1; curve: recall 1 1 0 0, precision 1/3 1/2 0 1
    # Trapezoids: 0, (1 - 0)(1/2 + 0)/2 = 1/4, 0 -> 1/4
    # auprc = (19/24 + 1/4)/2 = 25/48
    result = load_metric("klue_re").compute(
        predictions=[0, 1, 1],
        references=[0, 1, 0],
        probabilities=[[0.9, 0.1], [0.4, 0.6], [0.3, 0.7]],
    )
    assert result["auprc"] == pytest.approx(25 / 48)


def test_re_edge_cases() -> None:
    metric = load_metric("klue_re")
    # Only no_relation anywhere: micro F1 over the other labels is 0/0 -> 0.
    result = metric.compute(predictions=[0, 0], references=[0, 0], probabilities=[[0.8, 0.2]] * 2)
    assert result["re_micro_f1"] == 0.0
    # Class 1 has no gold example: sklearn sets recall to 1 -> area 0.5 for it.
    # Class 0: every example positive -> precision 1 at every threshold -> area 1.
    assert result["auprc"] == pytest.approx((1 + 0.5) / 2)
    # A single relation class, always right: F1 1.
    result = metric.compute(predictions=[2, 2], references=[2, 2], probabilities=np.eye(3)[[2, 2]])
    assert result["re_micro_f1"] == 1.0
    # no_relation moved to id 2: gold 2 1, predicted 1 1 -> 2 predicted, 1 true, 1 correct -> 2/3
    result = metric.compute(
        predictions=[1, 1], references=[2, 1], probabilities=np.eye(3)[[1, 1]], no_relation_id=2
    )
    assert result["re_micro_f1"] == pytest.approx(2 / 3)
    assert metric.compute(predictions=[], references=[], probabilities=[]) == {
        "re_micro_f1": 0.0,
        "auprc": 0.0,
    }
    with pytest.raises(ValueError, match="reference ids must lie in"):
        metric.compute(predictions=[0], references=[5], probabilities=[[0.5, 0.5]])


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_re_matches_sklearn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n, n_classes = int(rng.integers(5, 120)), int(rng.integers(2, 8))
    references = rng.integers(0, n_classes, size=n)
    logits = rng.normal(size=(n, n_classes)) + 2 * np.eye(n_classes)[references]
    # Rounded so that tied scores (one threshold in sklearn's curve) occur.
    probabilities = np.round(np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True), 2)
    predictions = probabilities.argmax(axis=1)
    result = load_metric("klue_re").compute(
        predictions=predictions, references=references, probabilities=probabilities
    )
    expected_f1 = f1_score(
        references, predictions, average="micro", labels=list(range(1, n_classes))
    )
    assert result["re_micro_f1"] == pytest.approx(expected_f1, abs=1e-12)
    areas = []
    for c in range(n_classes):
        precision, recall, _ = precision_recall_curve(references == c, probabilities[:, c])
        areas.append(auc(recall, precision))
    assert result["auprc"] == pytest.approx(np.mean(areas), abs=1e-12)


# --- klue_mrc -----------------------------------------------------------------------------------


def test_mrc_normalisation_follows_klue() -> None:
    # Lower-case, ASCII punctuation dropped, whitespace squeezed but kept.
    assert normalize_mrc_answer("  1,000 Won! ") == "1000 won"
    # 《》 and curly quotes are not ASCII punctuation: they stay.
    assert normalize_mrc_answer("《서울》") == "《서울》"
    assert normalize_mrc_answer("‘서울’") == "‘서울’"
    # KLUE's regex only fires on a quote/bracket followed by "()‘’" (its misplaced bracket).
    assert normalize_mrc_answer("《()‘’서울") == "서울"


def test_mrc_hand_computed() -> None:
    # 1. "서울특별시" vs "서울": common substring 2 -> P 2/5, R 2/2 -> 2*(2/5)/(7/5) = 4/7; EM 0
    # 2. "1,000원" -> "1000원", equal to the first gold -> EM 1, ROUGE 1
    # 3. unanswerable (no gold) and empty prediction -> EM 1, ROUGE 1
    # 4. unanswerable and "답" predicted -> 0, 0
    # 5. empty prediction for an answerable question -> 0, 0
    # EM = 2/5; ROUGE-W = (4/7 + 1 + 1)/5 = 18/35
    result = load_metric("klue_mrc").compute(
        predictions=["서울특별시", "1,000원", "", "답", ""],
        references=[["서울"], ["1000원", "천 원"], [], [], ["답"]],
    )
    assert result == {"exact_match": pytest.approx(2 / 5), "rouge_w": pytest.approx(18 / 35)}


def test_mrc_character_level_rouge_cases() -> None:
    metric = load_metric("klue_mrc")
    # Spaces are characters: "김 철수 씨" (6) vs "김철수" (3): longest common substring "철수"
    # -> P 2/6, R 2/3 -> 2*(2/9)/(1/3 + 2/3) = 4/9
    assert metric.compute(predictions=["김 철수 씨"], references=[["김철수"]])["rouge_w"] == (
        pytest.approx(4 / 9)
    )
    # 《》 stay in the answer: "《서울》" (4) vs "서울" (2): P 1/2, R 1 -> 2/3; EM 0
    result = metric.compute(predictions=["《서울》"], references=[["서울"]])
    assert result == {"exact_match": 0.0, "rouge_w": pytest.approx(2 / 3)}
    # Best over gold answers: "서울" vs "서울역" (P 1, R 2/3 -> 4/5) and "서울" (1) -> 1
    result = metric.compute(predictions=["서울"], references=[["서울역", "서울"]])
    assert result == {"exact_match": 1.0, "rouge_w": 1.0}
    # Gold [""] is the same as no gold answer.
    assert metric.compute(predictions=[""], references=[[""]]) == {
        "exact_match": 1.0,
        "rouge_w": 1.0,
    }
    # A prediction that normalises to "" (only punctuation) counts as "no answer".
    assert metric.compute(predictions=["..."], references=[[]])["exact_match"] == 1.0
    assert metric.compute(predictions=[], references=[]) == {"exact_match": 0.0, "rouge_w": 0.0}
