"""The `evaluate.Metric` class of a registered metric, built from its module's texts and compute.

Every module file (`layerft/metrics/<name>/<name>.py`) documents its official definition and
holds a small `_compute`; what its inputs look like follows from the registry's input type, in
one table here, so a new metric of an existing input type writes no features. Module files
import the builder, never a concrete Metric class: `evaluate.loading.import_main_class` takes
the first one in the module's namespace.

Serves no config group: each module file builds its Metric here (`build_metric`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType

import datasets
import evaluate
from datasets.features.features import FeatureType
from evaluate.naming import camelcase_to_snakecase

from layerft.errors import LayerftError
from layerft.metrics import METRICS, MetricInput

_INT = datasets.Value("int64")
_FLOAT = datasets.Value("float64")
_TEXT = datasets.Value("string")

# MetricInput -> the (predictions, references) features evaluate stores and hands to `_compute`;
# other inputs (probabilities, relations, null_score_diffs) are keyword arguments of `_compute`.
FEATURES: Mapping[MetricInput, tuple[FeatureType, FeatureType]] = MappingProxyType(
    {
        MetricInput.class_ids: (_INT, _INT),
        MetricInput.tag_sequences: (datasets.Sequence(_TEXT), datasets.Sequence(_TEXT)),
        MetricInput.every_word_tags: (datasets.Sequence(_TEXT), datasets.Sequence(_TEXT)),
        MetricInput.scores: (_FLOAT, _FLOAT),
        MetricInput.class_probabilities: (_INT, _INT),
        MetricInput.arcs: (datasets.Sequence(_INT), datasets.Sequence(_INT)),
        MetricInput.answers: (_TEXT, datasets.Sequence(_TEXT)),
        MetricInput.scored_answers: (_TEXT, datasets.Sequence(_TEXT)),
    }
)
if set(FEATURES) != set(MetricInput):  # a new input type needs its features here
    raise LayerftError(
        "layerft/metrics/module.py: FEATURES has no entry for input type(s) "
        + ", ".join(sorted(t.value for t in set(MetricInput) - set(FEATURES)))
    )


def build_metric(
    name: str,
    description: str,
    inputs_description: str,
    compute: Callable[..., dict[str, float]],
) -> type[evaluate.Metric]:
    """The Metric subclass of registered metric `name`; `compute` becomes its `_compute`.

    `compute` takes `predictions`, `references` and the metric's other inputs as keywords and
    must be defined in the module file: the class is placed there (its `__module__`), and its
    docstring ends the class's. evaluate names the metric after the class, so the class is
    `name` in CamelCase.
    """
    if name not in METRICS:
        raise LayerftError(f"unknown metric '{name}'; available: {', '.join(METRICS)}")
    class_name = "".join(part.capitalize() for part in name.split("_"))
    if camelcase_to_snakecase(class_name) != name:
        raise LayerftError(
            f"metric '{name}': evaluate would name its class {class_name} "
            f"'{camelcase_to_snakecase(class_name)}'"
        )
    predictions, references = FEATURES[METRICS[name].reads]

    def _info(self: evaluate.Metric) -> evaluate.MetricInfo:
        """Describe the metric and its input features."""
        return evaluate.MetricInfo(
            description=description,
            citation="",
            inputs_description=inputs_description,
            features=datasets.Features({"predictions": predictions, "references": references}),
        )

    # Qualified as if written in the class body: Python's TypeErrors on a missing or unexpected
    # keyword name `<Class>._compute`, as they did when each module spelled out its class.
    _info.__qualname__ = f"{class_name}._info"
    compute.__qualname__ = f"{class_name}._compute"
    metric = type(
        class_name,
        (evaluate.Metric,),
        {
            "__module__": compute.__module__,
            "__qualname__": class_name,
            "__doc__": compute.__doc__,
            "_info": _info,
            "_compute": staticmethod(compute),
        },
    )
    return evaluate.utils.file_utils.add_start_docstrings(description, inputs_description)(metric)
