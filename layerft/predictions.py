"""Stage 2's dev predictions at its best checkpoint, `dev_predictions.jsonl` in the run folder:
one line per item its best metric scores (an example; a tagger's word or sentence, as its metric
reads them; a parser's sentence; a question), the prediction beside the reference, a class by its
label name. For error analysis, and to check a score by hand.

Serves the `target_task` config group. `layerft/phase.py` writes it as `.partial`; `layerft/run.py`
puts it in place with `history.jsonl` when it writes the result, and a forced rerun that does
not finish leaves the result's own (layerft/replaced_result.py sets it aside).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from layerft.file_io import sync_to_disk
from layerft.kinds import kind_of

if TYPE_CHECKING:
    from layerft.evaluation import DevScorer
    from layerft.task import TaskConfig

PREDICTIONS_FILE = "dev_predictions.jsonl"
NAMED = ("class_ids", "class_probabilities")  # MetricInputs of ids of task.label_names


def write_partial(run_dir: Path, task: TaskConfig, scorers: dict[str, DevScorer]) -> None:
    """`dev_predictions.jsonl.partial`: per dev split (`scorers`: split -> its DevScorer), each
    item's index, prediction and reference, and where an item is a record of the split, that
    record's place in it (its number, its id)."""
    lines = []
    for split, scorer in scorers.items():
        inputs = scorer.last
        named = inputs.get("input") in NAMED
        pairs = list(zip(inputs.get("predictions", ()), inputs.get("references", ()), strict=True))
        records = inputs.get("input") not in kind_of(task).part_inputs  # not a tagger's words
        same = records and len(scorer.sources) == len(pairs)
        sources = scorer.sources if same else [{}] * len(pairs)
        for index, (pair, source) in enumerate(zip(pairs, sources, strict=True)):
            prediction, reference = (task.label_names[v] if named else _finite(v) for v in pair)
            lines.append(
                {"split": split, "index": index, **source, "prediction": prediction,
                 "reference": reference}
            )  # fmt: skip
    text = "".join(json.dumps(line, ensure_ascii=False, default=_plain) + "\n" for line in lines)
    (run_dir / f"{PREDICTIONS_FILE}.partial").write_text(text, encoding="utf-8")


def publish(run_dir: Path) -> None:
    """Put the finished run's predictions in place (none written: nothing to do)."""
    partial = run_dir / f"{PREDICTIONS_FILE}.partial"
    if partial.exists():
        sync_to_disk(partial)
        os.replace(partial, run_dir / PREDICTIONS_FILE)


def _finite(value: Any) -> Any:
    """A score as strict JSON takes it: NaN or infinity (a diverged regression) as null."""
    return None if isinstance(value, float) and not math.isfinite(value) else value


def _plain(value: Any) -> Any:
    """A numpy number or array as JSON takes it."""
    return value.tolist() if hasattr(value, "tolist") else str(value)
