"""KLUE-DP: UAS and LAS as KLUE scores them (macro F1 over head ids and relation classes).

Serves the `injection_task` and `target_task` config groups (`metrics: [klue_dp]`).
"""

from layerft.metrics.klue import KLUE_DP_OTHERS_RELATION_ID, dp_attachment_scores
from layerft.metrics.module import build_metric
from layerft.metrics.scores import flatten_arcs

_DESCRIPTION = """
KLUE-DP's official scores, as KLUE-baseline's klue_baseline/metrics/functional.py computes them
(klue_dp_uas_macro_f1, klue_dp_las_macro_f1; run_all.sh selects on these macro variants), over
all eojeols of all sentences pooled:
- uas: sklearn's f1_score(average="macro") with the gold head ids as y_true and the predicted
  ones as y_pred. The classes are head positions (0 = root, i = the i-th eojeol), so this is the
  mean F1 over every head position seen in the gold or the predictions - not the attachment
  accuracy that "UAS" usually names.
- las: the same macro F1 over relation ids, after two KLUE steps: relation ids >= 15 (VP_CMP
  onwards in KLUE's DEPREL list, get_dep_labels() in klue_baseline/data/klue_dp.py) merge into
  one "others" class on both sides, and an eojeol whose predicted head is wrong gets a
  "wrong head" relation that no gold has. That class joins the average with F1 0 whenever any
  head is wrong.
average="micro" gives KLUE's klue_dp_uas_micro_f1 / klue_dp_las_micro_f1 instead, which are
plain accuracies (head correct; head and merged relation correct).
KLUE drops positions whose gold head is -1 (its padding); so does this metric. KLUE excludes no
punctuation: KLUE-DP's units are eojeols, and punctuation is part of the eojeol it touches
("흘렸다."), so there is nothing to exclude. Higher is better. KLUE reports x100; these are in
[0, 1], 0.0 when no eojeol is scored.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (list of list of int): predicted head per eojeol, one list per sentence
        (0 = root, i = the i-th eojeol, 1-based, as in the KLUE-DP release).
    references (list of list of int): gold heads, same shapes; -1 marks padding to skip.
    predicted_relations (list of list of int): predicted relation ids, same shapes, as indices
        into KLUE's DEPREL list (NP = 0, NP_AJT = 1, ...).
    reference_relations (list of list of int): gold relation ids, same shapes.
    average (str): "macro" (default, KLUE's headline) or "micro" (accuracy).
    others_relation_id (int or None): ids >= this merge into one class for LAS; default 15 as
        KLUE; None keeps every relation apart.
    cut_words (list of int or None): per sentence, eojeols cut by max_length; not scored, as
        KLUE-baseline drops them (ud_attachment counts them).
Returns:
    uas, las (float): in [0, 1]; 0.0 when no eojeol is scored.
"""


def _compute(
    predictions: list[list[int]],
    references: list[list[int]],
    predicted_relations: list[list[int]],
    reference_relations: list[list[int]],
    average: str = "macro",
    others_relation_id: int | None = KLUE_DP_OTHERS_RELATION_ID,
    cut_words: list[int] | None = None,  # noqa: ARG001 - KLUE-baseline drops cut eojeols
) -> dict[str, float]:
    """KLUE-DP UAS and LAS (macro F1 as KLUE), numpy only."""
    uas, las = dp_attachment_scores(
        *flatten_arcs("klue_dp", predictions, references, predicted_relations, reference_relations),
        average=average,
        others_relation_id=others_relation_id,
    )
    return {"uas": uas, "las": las}


KlueDp = build_metric("klue_dp", _DESCRIPTION, _KWARGS_DESCRIPTION, _compute)
