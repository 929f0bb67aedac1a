"""conlleval: chunk (entity, phrase) precision, recall and F1, as the CoNLL-2000 / 2003 script.

Serves the `injection_task` and `target_task` config groups (`metrics: [conlleval]`).
"""

from layerft.metrics.conll import chunk_scores
from layerft.metrics.module import build_metric

_DESCRIPTION = """
The CoNLL shared tasks' chunk scores, as their evaluation script conlleval (Erik Tjong Kim Sang,
conlleval.pl, version 2004-01-26; https://www.clips.uantwerpen.be/conll2000/chunking/output.html
and /conll2003/ner/) computes its "overall" line, over all chunks of all sentences pooled:
- a chunk starts and ends where conlleval's startOfChunk / endOfChunk say: a tag is split at its
  first '-' into prefix and type ('B-PER' -> B, PER); a chunk starts at B, at I or E after O,
  and at any non-O tag whose type differs from the previous tag's; it ends before B or O after
  B / I, before E, I or O after E, and before any tag of another type. So IOB1 (an I-X opening a
  chunk) and IOB2 read alike, and ill-formed predictions (I-X after O) are read as conlleval
  reads them. A sentence boundary closes every chunk (conlleval reads it as an O line).
- conll_precision = correct chunks / predicted chunks, conll_recall = correct / gold chunks,
  conll_f1 = their harmonic mean (conlleval's FB1). A chunk is correct when a predicted chunk
  has the same first token, last token and type as a gold one.
conlleval prints percentages; these are fractions in [0, 1], 0.0 when undefined (no predicted
or gold chunk). Token accuracy, conlleval's other figure, is token_f1's token_accuracy.
Matches seqeval's default (conlleval-compatible) mode on IOB1 / IOB2 tags.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (list of list of str): predicted tags, one list per sentence ('B-PER', 'O').
    references (list of list of str): gold tags, same shapes.
Returns:
    conll_f1, conll_precision, conll_recall (float): in [0, 1].
"""


def _compute(predictions: list[list[str]], references: list[list[str]]) -> dict[str, float]:
    """conlleval's overall chunk precision, recall and F1, in the stdlib."""
    scores = chunk_scores(predictions, references)
    return {f"conll_{name}": value for name, value in scores.items()}


Conlleval = build_metric("conlleval", _DESCRIPTION, _KWARGS_DESCRIPTION, _compute)
