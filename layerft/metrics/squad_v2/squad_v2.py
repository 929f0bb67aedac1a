"""SQuAD v2.0's official scores (evaluate-v2.0.py): EM and F1, HasAns / NoAns, best threshold.

Serves the `injection_task` and `target_task` config groups (`metrics: [squad_v2]`).
"""

from layerft.metrics.module import build_metric
from layerft.metrics.squad_official import v2_scores

_DESCRIPTION = """
SQuAD v2.0's official scores, as evaluate-v2.0.py (rajpurkar/SQuAD-explorer) computes them:
- Normalisation as v1.1 (lower-case, drop string.punctuation, drop a/an/the, squeeze spaces).
- A question is answerable (HasAns) when it has a gold answer. Its gold texts are those that
  normalise to something; if none do, and for every unanswerable question (NoAns), the gold is
  [""], so only an empty prediction ("no answer") is right.
- exact: 1 if the normalised prediction equals a normalised gold text. f1: F1 of the bags of
  tokens; if either side has no tokens, 1 when both have none, else 0. Best over the gold texts,
  mean over questions: squad_v2_exact, squad_v2_f1.
- squad_v2_HasAns_exact / _f1 and squad_v2_NoAns_exact / _f1: the same means over the
  answerable and the unanswerable questions; left out when there are none (as the script).
- The no-answer threshold is the span kind's decoding (spans.null_score_threshold: "" when the
  null score minus the best span's score exceeds it): predictions arrive thresholded, and
  the script's own step (apply_no_ans_threshold) is not repeated. With null_score_diffs (per
  question, the script's na_probs), find_best_thresh: squad_v2_best_exact / _f1 are the
  best scores any threshold on it would give, squad_v2_best_exact_thresh / _f1_thresh that
  threshold (a logit difference, not a fraction: a value for spans.null_score_threshold).
The script's counts (total, HasAns_total, NoAns_total) and its precision-recall analysis are
left out. The script prints x100; these scores are in [0, 1]. Higher is better.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (list of str): predicted answer text per question; "" for "no answer".
    references (list of list of str): gold answer texts per question; [] or [""] when the
        question is unanswerable.
    null_score_diffs (list of float, optional): null score minus best span score per question
        (inf when no span was a candidate); without it the best_* keys are left out.
Returns:
    squad_v2_exact, squad_v2_f1, squad_v2_HasAns_exact, squad_v2_HasAns_f1, squad_v2_NoAns_exact,
    squad_v2_NoAns_f1 (float in [0, 1]); squad_v2_best_exact, squad_v2_best_f1 (in [0, 1]) and
    squad_v2_best_exact_thresh, squad_v2_best_f1_thresh (logit differences).
"""


def _compute(
    predictions: list[str],
    references: list[list[str]],
    null_score_diffs: list[float] | None = None,
) -> dict[str, float]:
    """SQuAD v2.0 exact match and token F1 with the no-answer breakdown, stdlib only."""
    scores = v2_scores(predictions, references, null_score_diffs)
    return {f"squad_v2_{key}": value for key, value in scores.items()}


SquadV2 = build_metric("squad_v2", _DESCRIPTION, _KWARGS_DESCRIPTION, _compute)
