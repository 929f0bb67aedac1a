"""The metric registry: packaged `evaluate` modules, loadable offline by name, and what feeds them.

Each metric is a local module folder (`layerft/metrics/<name>/<name>.py`) plus one registry entry:
the keys it returns, whether higher is better, and the input type it reads. A task kind says
which input types it produces, so a metric a kind cannot feed fails when the config is built.

Serves the `injection_task` and `target_task` config groups: a task's `metrics` name entries here,
checked when its `TaskConfig` is built.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING

from layerft.errors import LayerftError
from layerft.metrics.klue import KLUE_NER_LABELS

if TYPE_CHECKING:
    import evaluate

METRICS_DIR: Path = Path(__file__).resolve().parent


# How many labels a classifier or tagger predicted on a dev set (`<stage>/eval_predicted_classes`,
# beside its scores; layerft/evaluation.py): one is a model that learned no more than a single
# label (phase.warn_one_class, a note in the sweep table).
PREDICTED_CLASSES = "predicted_classes"


class MetricInput(str, Enum):
    """What a metric module's `compute` takes; each task kind produces some of these."""

    class_ids = "class_ids"  # predictions, references: flat label ids
    tag_sequences = "tag_sequences"  # predictions, references: per-sentence tag strings
    # tag_sequences over every word of the sentence: a word the model does not tag (past
    # max_length, or with no subword) is an "O" prediction against its gold tag
    every_word_tags = "every_word_tags"
    scores = "scores"  # predictions, references: real-valued scores
    # predictions, references: label ids; probabilities: per-class lists; no_relation_id: int
    class_probabilities = "class_probabilities"
    # per sentence: predictions, references: head per word (0 = root, i = i-th word);
    # predicted_relations, reference_relations: relation id per word; cut_words: per sentence,
    # the words past max_length left out (klue_dp skips them, ud_attachment counts them wrong)
    arcs = "arcs"
    answers = "answers"  # predictions: answer texts ("" = none); references: gold texts each
    # answers' keys plus null_score_diffs: null score minus best span score per question
    scored_answers = "scored_answers"


@dataclass(frozen=True)
class MetricSpec:
    """A packaged metric: the keys its `compute` returns and the input type it reads."""

    keys: tuple[str, ...]
    reads: MetricInput
    higher_is_better: bool = True
    # The only label names it scores, as its official definition does (None: any).
    labels: tuple[str, ...] | None = None
    # Keys it returns that are no score (a threshold it found): never a task's best_metric.
    not_scores: tuple[str, ...] = ()


def _registry(**specs: MetricSpec) -> Mapping[str, MetricSpec]:
    """The registry, refusing a key returned by two metrics (results are merged by key)."""
    seen: dict[str, str] = {}
    for name, spec in specs.items():
        if not (METRICS_DIR / name / f"{name}.py").is_file():
            raise LayerftError(f"metric '{name}' has no module {METRICS_DIR / name / name}.py")
        for key in spec.keys:
            if key in seen:
                raise LayerftError(f"metric key '{key}' is returned by both {seen[key]} and {name}")
            seen[key] = name
    return MappingProxyType(specs)


METRICS: Mapping[str, MetricSpec] = _registry(
    accuracy=MetricSpec(("accuracy",), MetricInput.class_ids),
    macro_f1=MetricSpec(("macro_f1",), MetricInput.class_ids),
    token_f1=MetricSpec(
        ("token_f1", "token_accuracy", "token_macro_f1"), MetricInput.tag_sequences
    ),
    # KLUE's official metrics, as KLUE-baseline computes them (each module's description).
    klue_dp=MetricSpec(("uas", "las"), MetricInput.arcs),
    klue_mrc=MetricSpec(("exact_match", "rouge_w"), MetricInput.answers),
    klue_ner=MetricSpec(
        ("entity_f1", "char_f1"), MetricInput.tag_sequences, labels=KLUE_NER_LABELS
    ),
    klue_re=MetricSpec(("re_micro_f1", "auprc"), MetricInput.class_probabilities),
    klue_sts=MetricSpec(("pearsonr", "f1"), MetricInput.scores),
    # GLUE's official metrics (layerft/metrics/glue.py).
    matthews_correlation=MetricSpec(("matthews_correlation",), MetricInput.class_ids),
    binary_f1=MetricSpec(("binary_f1",), MetricInput.class_ids),
    pearson_spearman=MetricSpec(("pearson", "spearman"), MetricInput.scores),
    # SQuAD's official scripts (layerft/metrics/squad_official.py).
    squad=MetricSpec(("squad_exact_match", "squad_f1"), MetricInput.answers),
    squad_v2=MetricSpec(
        (
            "squad_v2_exact",
            "squad_v2_f1",
            "squad_v2_HasAns_exact",
            "squad_v2_HasAns_f1",
            "squad_v2_NoAns_exact",
            "squad_v2_NoAns_f1",
            "squad_v2_best_exact",
            "squad_v2_best_exact_thresh",
            "squad_v2_best_f1",
            "squad_v2_best_f1_thresh",
        ),
        MetricInput.scored_answers,
        not_scores=("squad_v2_best_exact_thresh", "squad_v2_best_f1_thresh"),
    ),
    # CoNLL's: conlleval's chunk F1 (CoNLL-2000/2003), CoNLL 2018 UD attachment (gold words).
    # conlleval scores every token of the file, so it reads every word.
    conlleval=MetricSpec(
        ("conll_f1", "conll_precision", "conll_recall"), MetricInput.every_word_tags
    ),
    ud_attachment=MetricSpec(("ud_uas", "ud_las"), MetricInput.arcs),
)


def metric_spec(name: str, key: str = "metrics") -> MetricSpec:
    """The registry entry of `name`; `key` (the config key that named it) is in the error."""
    if name not in METRICS:
        raise LayerftError(f"{key}: unknown metric '{name}'; available: {', '.join(METRICS)}")
    return METRICS[name]


def load_metric(name: str) -> evaluate.EvaluationModule:
    """Load a packaged metric by name from its local module directory (works offline)."""
    if name not in METRICS:
        raise LayerftError(f"unknown metric '{name}'; available: {', '.join(METRICS)}")
    return _load_cached(name)


@functools.cache
def _load_cached(name: str) -> evaluate.EvaluationModule:
    """Load once per process: evaluate copies and hashes the script on every load."""
    # Imported here so that `import layerft.metrics` stays cheap (evaluate pulls in datasets).
    import evaluate

    # keep_in_memory: inputs are already gathered lists, so evaluate's on-disk Arrow cache would
    # only add file writes and lock contention between concurrent jobs on one machine.
    try:
        return evaluate.load(str(METRICS_DIR / name), keep_in_memory=True)
    except OSError as err:  # it copies the module into HF_HOME's modules/ first
        raise LayerftError(
            f"metric '{name}': evaluate could not copy its module to {err.filename or '?'} "
            f"({err.strerror or err}); set HF_HOME (or HF_MODULES_CACHE) to a writable folder"
        ) from err
