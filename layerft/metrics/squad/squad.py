"""SQuAD v1.1's official exact match and F1 (evaluate-v1.1.py), best over the gold answers.

Serves the `injection_task` and `target_task` config groups (`metrics: [squad]`).
"""

from layerft.metrics.module import build_metric
from layerft.metrics.squad_official import v1_scores

_DESCRIPTION = """
SQuAD v1.1's official scores, as evaluate-v1.1.py computes them (normalize_answer, f1_score,
exact_match_score, metric_max_over_ground_truths; the copy in huggingface/evaluate's
metrics/squad/compute_score.py):
- Normalisation of prediction and every gold answer: lower-case; drop every ASCII punctuation
  character (string.punctuation); replace the words a, an, the by a space; squeeze whitespace.
- squad_exact_match: 1 if the normalised prediction equals a normalised gold answer, else 0.
- squad_f1: F1 of the bags of whitespace tokens of the normalised texts (precision over the
  prediction's tokens, recall over the gold's); 0 when they share no token, which includes
  both sides being empty (v1.1's quirk; v2.0 scores that 1).
Each question takes its best score over its gold answers; the scores are means over questions.
A question without gold answers (v1.1 has none) is scored against [""]. Higher is better. The
official script prints x100; these are in [0, 1], 0.0 on no questions. The keys carry the
metric's name because layerft merges every metric's keys into one dict (klue_mrc has
exact_match, klue_sts f1).
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (list of str): predicted answer text per question.
    references (list of list of str): gold answer texts per question.
Returns:
    squad_exact_match, squad_f1 (float): in [0, 1].
"""


def _compute(predictions: list[str], references: list[list[str]]) -> dict[str, float]:
    """SQuAD v1.1 exact match and token F1, stdlib only."""
    scores = v1_scores(predictions, references)
    return {"squad_exact_match": scores["exact_match"], "squad_f1": scores["f1"]}


Squad = build_metric("squad", _DESCRIPTION, _KWARGS_DESCRIPTION, _compute)
