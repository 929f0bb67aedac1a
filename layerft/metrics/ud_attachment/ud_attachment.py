"""UAS and LAS as the CoNLL 2018 UD shared task scores them, for gold tokenisation.

Serves the `injection_task` and `target_task` config groups (`metrics: [ud_attachment]`).
"""

from layerft.metrics.conll import attachment_scores
from layerft.metrics.module import build_metric
from layerft.metrics.scores import flatten_arcs

_DESCRIPTION = """
Dependency attachment scores as the CoNLL 2018 shared task's evaluation script defines them
(conll18_ud_eval.py, v1.2, UFAL; https://universaldependencies.org/conll18/evaluation.html):
- ud_uas: words whose predicted HEAD is the gold head / all words;
- ud_las: words whose predicted HEAD and DEPREL are both gold / all words.
Every syntactic word counts, punctuation included (multiword token lines and empty nodes are not
words, as in the script). DEPREL is compared on its universal part only: the script drops
subtypes ('nmod:poss' -> 'nmod'); layerft's CoNLL-U reader (layerft/readers_conllu.py) does so
when it reads the treebank, so the relation ids given here are ids of universal relations.
The script reports precision, recall and F1 over aligned words; with the gold tokenisation that
a parser given gold words has, every word aligns and all three equal these accuracies.
Words past max_length (the parser never saw them) count as wrong: the script scores every gold
word, so leaving them out, as klue_dp does after KLUE-baseline, would raise both scores.
Fractions in [0, 1] (the script prints x100); 0.0 when no word is scored.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (list of list of int): predicted head per word, one list per sentence
        (0 = root, i = the i-th word, 1-based as CoNLL-U IDs).
    references (list of list of int): gold heads, same shapes.
    predicted_relations (list of list of int): predicted relation ids, same shapes.
    reference_relations (list of list of int): gold relation ids (universal relations).
    cut_words (list of int or None): per sentence, the gold words cut by max_length and left
        out of the lists above; each counts as wrong.
Returns:
    ud_uas, ud_las (float): in [0, 1].
"""


def _compute(
    predictions: list[list[int]],
    references: list[list[int]],
    predicted_relations: list[list[int]],
    reference_relations: list[list[int]],
    cut_words: list[int] | None = None,
) -> dict[str, float]:
    """CoNLL 2018 UAS and LAS over all words, numpy only."""
    arcs = flatten_arcs(
        "ud_attachment", predictions, references, predicted_relations, reference_relations
    )
    uas, las = attachment_scores(*arcs, unattached=sum(cut_words or ()))
    return {"ud_uas": uas, "ud_las": las}


UdAttachment = build_metric("ud_attachment", _DESCRIPTION, _KWARGS_DESCRIPTION, _compute)
