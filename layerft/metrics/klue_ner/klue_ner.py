"""KLUE-NER: entity-level macro F1 (strict IOB2) and character-level macro F1, as KLUE scores them.

Serves the `injection_task` and `target_task` config groups (`metrics: [klue_ner]`).
"""

import numpy as np

from layerft.metrics.klue import KLUE_NER_LABELS, ner_char_macro_f1, ner_entity_macro_f1
from layerft.metrics.module import build_metric
from layerft.metrics.scores import flatten_aligned

_DESCRIPTION = """
KLUE-NER's official scores, as KLUE-baseline's klue_baseline/metrics/functional.py computes them
(klue_ner_entity_macro_f1, klue_ner_char_macro_f1), on per-character BIO tags (whitespace
removed, as KLUE aligns its predictions to characters):
- entity_f1: seqeval's f1_score(average="macro", mode="strict", scheme=IOB2). Entities are
  maximal runs B-X I-X*; a stray I-X (after O or after another type) starts nothing and is
  dropped. An entity counts only if type, start and end all match. The score is the unweighted
  mean of per-type F1 over every type found in the gold or the predictions (a type only ever
  predicted scores 0). Reimplemented here; seqeval is not a dependency.
- char_f1: sklearn's f1_score over characters with labels = KLUE's whole label list and
  average="macro", zero_division=True. Despite KLUE's docstring ("except O tag") the list
  includes "O", so "O" is averaged in; a label absent from both sides scores 1.0, and a label
  only in one side scores 0.
Both are higher-is-better. KLUE reports x100; these are in [0, 1].
KLUE flattens all sentences into one sequence in which each is framed by its [CLS] and [SEP]
positions, gold "O". char_f1 scores those 2 positions per sentence too, as "O" on both sides (the
model's tag there is not passed in; a trained model tags them "O"): they raise the "O" class's F1
whenever "O" is not already perfect, so leaving them out gave a lower number than KLUE's.
entity_f1 is scored per sentence, which is the same number (an "O" ends or opens no entity).
With no entity on either side seqeval returns NaN; entity_f1 is 0.0 then. On no characters both
are 0.0.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (list of list of str): predicted per-character BIO tags, one list per sentence.
    references (list of list of str): gold per-character tags, same shapes.
    label_list (list of str or None): the labels char_f1 averages over; default KLUE's 13
        (B-/I- of PS, LC, OG, DT, TI, QT, and O). Every tag must be in it.
Returns:
    entity_f1, char_f1 (float): in [0, 1].
"""


def _compute(
    predictions: list[list[str]],
    references: list[list[str]],
    label_list: list[str] | None = None,
) -> dict[str, float]:
    """KLUE-NER entity and character macro F1, numpy only."""
    flat_pred, flat_true = flatten_aligned("klue_ner", "tags", predictions, references)
    if not flat_true:
        return {"entity_f1": 0.0, "char_f1": 0.0}
    labels = KLUE_NER_LABELS if label_list is None else tuple(label_list)
    # KLUE's [CLS] and [SEP] of every sentence: gold "O", predicted "O" (see _DESCRIPTION).
    frame = ["O", "O"] * len(references)
    return {
        "entity_f1": ner_entity_macro_f1(predictions, references),
        "char_f1": ner_char_macro_f1(
            np.asarray(flat_pred + frame, dtype=object),
            np.asarray(flat_true + frame, dtype=object),
            labels,
        ),
    }


KlueNer = build_metric("klue_ner", _DESCRIPTION, _KWARGS_DESCRIPTION, _compute)
