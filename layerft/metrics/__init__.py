"""The metric registry: packaged `evaluate` modules, loadable offline by name, and what feeds them.

Each metric is a local module folder (`layerft/metrics/<name>/<name>.py`) plus one registry entry:
the keys it returns and the range of each, whether higher is better, and the input type it reads. A task kind says
which input types it produces, so a metric a kind cannot feed fails when the config is built.

Serves the `injection_task` and `target_task` config groups: a task's `metrics` name entries here,
checked when its `TaskConfig` is built.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
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
    # key -> (lowest, highest) value it can return, as its module's definition says; a key with
    # none (a threshold, a metric that declares none) is never range-checked when read back.
    ranges: Mapping[str, tuple[float, float]] = field(default_factory=dict)


# The ranges the packaged metrics return in: fractions (KLUE's and SQuAD's scripts print x100;
# their modules here return fractions) and correlations.
FRACTION = (0.0, 1.0)
CORRELATION = (-1.0, 1.0)
# How far past its range float rounding may put a score (an unclipped correlation, a mean of ones)
RANGE_SLACK = 1e-9


_SQUAD_V2_KEYS = (
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
)
_SQUAD_V2_THRESHOLDS = ("squad_v2_best_exact_thresh", "squad_v2_best_f1_thresh")


def _fractions(*keys: str) -> dict[str, tuple[float, float]]:
    return dict.fromkeys(keys, FRACTION)


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
        if stray := sorted(set(spec.ranges) - set(spec.keys)):
            raise LayerftError(
                f"metric '{name}' declares a range of {stray}, keys it never returns"
            )
    return MappingProxyType(specs)


METRICS: Mapping[str, MetricSpec] = _registry(
    accuracy=MetricSpec(("accuracy",), MetricInput.class_ids, ranges=_fractions("accuracy")),
    macro_f1=MetricSpec(("macro_f1",), MetricInput.class_ids, ranges=_fractions("macro_f1")),
    token_f1=MetricSpec(
        ("token_f1", "token_accuracy", "token_macro_f1"),
        MetricInput.tag_sequences,
        ranges=_fractions("token_f1", "token_accuracy", "token_macro_f1"),
    ),
    # KLUE's official metrics, as KLUE-baseline computes them (each module's description).
    klue_dp=MetricSpec(("uas", "las"), MetricInput.arcs, ranges=_fractions("uas", "las")),
    klue_mrc=MetricSpec(
        ("exact_match", "rouge_w"), MetricInput.answers, ranges=_fractions("exact_match", "rouge_w")
    ),
    klue_ner=MetricSpec(
        ("entity_f1", "char_f1"),
        MetricInput.tag_sequences,
        labels=KLUE_NER_LABELS,
        ranges=_fractions("entity_f1", "char_f1"),
    ),
    klue_re=MetricSpec(
        ("re_micro_f1", "auprc"),
        MetricInput.class_probabilities,
        ranges=_fractions("re_micro_f1", "auprc"),
    ),
    klue_sts=MetricSpec(
        ("pearsonr", "f1"), MetricInput.scores, ranges={"pearsonr": CORRELATION, "f1": FRACTION}
    ),
    # GLUE's official metrics (layerft/metrics/glue.py).
    matthews_correlation=MetricSpec(
        ("matthews_correlation",),
        MetricInput.class_ids,
        ranges={"matthews_correlation": CORRELATION},
    ),
    binary_f1=MetricSpec(("binary_f1",), MetricInput.class_ids, ranges=_fractions("binary_f1")),
    pearson_spearman=MetricSpec(
        ("pearson", "spearman"),
        MetricInput.scores,
        ranges={"pearson": CORRELATION, "spearman": CORRELATION},
    ),
    # SQuAD's official scripts (layerft/metrics/squad_official.py).
    squad=MetricSpec(
        ("squad_exact_match", "squad_f1"),
        MetricInput.answers,
        ranges=_fractions("squad_exact_match", "squad_f1"),
    ),
    squad_v2=MetricSpec(
        _SQUAD_V2_KEYS,
        MetricInput.scored_answers,
        not_scores=_SQUAD_V2_THRESHOLDS,  # null-score thresholds: any real number
        ranges=_fractions(*(k for k in _SQUAD_V2_KEYS if k not in _SQUAD_V2_THRESHOLDS)),
    ),
    # CoNLL's: conlleval's chunk F1 (CoNLL-2000/2003), CoNLL 2018 UD attachment (gold words).
    # conlleval scores every token of the file, so it reads every word.
    conlleval=MetricSpec(
        ("conll_f1", "conll_precision", "conll_recall"),
        MetricInput.every_word_tags,
        ranges=_fractions("conll_f1", "conll_precision", "conll_recall"),
    ),
    ud_attachment=MetricSpec(
        ("ud_uas", "ud_las"), MetricInput.arcs, ranges=_fractions("ud_uas", "ud_las")
    ),
)


def metric_range(key: str) -> tuple[float, float] | None:
    """The range of a `metrics.json` score (`target/eval_accuracy`, `target/eval_mm_accuracy` of a
    further dev set) as its metric declares it; None where no metric's declared range covers it
    (a loss, a speed figure, a threshold, a metric that declares none)."""
    name = key.partition("/eval_")[2]
    # A further dev set's name prefixes the key (`eval_token_accuracy`: token_f1's, or accuracy
    # on a dev set called `token`): every metric it may be must declare a range, and the widest
    # bounds stand, so no legal score is refused.
    found = [
        spec.ranges.get(k)
        for spec in METRICS.values()
        for k in spec.keys
        if name and (name == k or name.endswith(f"_{k}"))
    ]
    if not found or None in found:
        return None
    return min(low for low, _ in found), max(high for _, high in found)  # type: ignore[misc]


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
