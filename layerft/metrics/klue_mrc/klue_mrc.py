"""KLUE-MRC: exact match and KLUE's character-level "ROUGE-W", best over the gold answers.

Serves the `injection_task` and `target_task` config groups (`metrics: [klue_mrc]`).
"""

from layerft.metrics.klue import mrc_scores
from layerft.metrics.module import build_metric

_DESCRIPTION = """
KLUE-MRC's official scores, as KLUE-baseline computes them (klue_mrc_em and klue_mrc_rouge_w in
klue_baseline/metrics/functional.py, on normalize_answer_for_klue_mrc,
rouge_w_score_for_klue_mrc and compute_em_and_rouge_w_score_for_klue_mrc in .../utils.py):
- Normalisation of prediction and every gold answer: lower-case; KLUE's regex substitution (its
  character class is closed early, so it only replaces a quote or bracket directly followed by
  the four characters "()‘’" - kept as is); drop every ASCII punctuation character
  (string.punctuation; 《》, 〈〉 and curly quotes stay); squeeze whitespace runs to one space
  (spaces are kept, not removed).
- exact_match: 1 if the normalised prediction equals a normalised gold answer, else 0.
- rouge_w: despite the name, not a weighted LCS: the length L of the longest common substring of
  prediction and gold (difflib's SequenceMatcher(None, pred, gold).find_longest_match, autojunk
  on, as KLUE), characters as units, precision L/len(pred), recall L/len(gold), F-beta with
  beta = 1. Against an empty gold answer it is 1 if the prediction is empty too, else 0.
Each question takes its best score over its gold answers; an unanswerable question (no gold
answer, an empty list) is scored against [""], so only an empty prediction is right. Gold [""]
means the same. The scores are means over questions (KLUE groups them by question type for
logging only). Higher is better. KLUE reports x100; these are in [0, 1], 0.0 on no questions.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (list of str): predicted answer text per question; "" for "no answer".
    references (list of list of str): gold answer texts per question; [] (or [""]) when the
        question is unanswerable.
Returns:
    exact_match, rouge_w (float): in [0, 1].
"""


def _compute(predictions: list[str], references: list[list[str]]) -> dict[str, float]:
    """KLUE-MRC exact match and character-level ROUGE-W, stdlib only."""
    exact_match, rouge_w = mrc_scores(predictions, references)
    return {"exact_match": exact_match, "rouge_w": rouge_w}


KlueMrc = build_metric("klue_mrc", _DESCRIPTION, _KWARGS_DESCRIPTION, _compute)
