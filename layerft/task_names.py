"""The names a task option of the `injection_task` / `target_task` groups resolves through a
registry (its metrics, release format and generator), its lists and its recipe's numbers, checked
when the config is built (`TaskConfig.__post_init__`, `layerft/task.py`), not when data loads."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from layerft.demo_data import DEMO_GENERATORS
from layerft.errors import LayerftError
from layerft.kinds import kind_of
from layerft.metrics import metric_spec
from layerft.readers import RELEASE_READERS

DEFAULT_BEST_METRIC = "accuracy"  # TaskConfig.best_metric's

if TYPE_CHECKING:
    from layerft.task import TaskConfig

# More optimizer steps than a run can finish: over 100 days at 100 steps a second.
MAX_STEPS = 10**9
IOB_METRICS = ("conlleval", "klue_ner")  # entity scores: they read tags as IOB2 chunks
_IOB_TAG = re.compile(r"O|[BI]-.+")


def check_lists(task: TaskConfig, where: str) -> None:
    """Lists no run can mean: no metric (blamed on best_metric, "not one of" nothing), a text
    column twice (a text paired with itself), a generated split of no examples, missing (a
    KeyError) or never generated (a negative size was blamed on the data)."""
    if not task.metrics:
        raise LayerftError(f"{where}: metrics must name at least one metric")
    if len(set(task.text_columns)) != len(task.text_columns):
        raise LayerftError(f"{where}: text_columns names a column twice: {task.text_columns}")
    if not task.generator:
        return  # (its sizes unread)
    sizes = task.generator_sizes
    if other := sorted(set(sizes) ^ {"train", "validation"}):
        raise LayerftError(
            f"{where}: generator_sizes.{other[0]}: a generator makes a train and a validation "
            f"split, sized by generator_sizes.train and .validation (got {sorted(sizes)})"
        )
    for split, size in sizes.items():
        if size < 1:
            raise LayerftError(f"{where}: generator_sizes.{split} must be >= 1, got {size}")


def check_registered_names(task: TaskConfig, where: str) -> None:
    """Names resolved through a registry (metrics, release format, generator) must exist, and the
    metrics must be ones the task's kind and labels can feed."""
    keys: list[str] = []
    for name in task.metrics:
        spec = metric_spec(name, f"{where}: metrics")
        if spec.reads not in kind_of(task).provides:
            # True whether the task set it or left metrics at their default.
            default = (
                " (it is also metrics' default: set metrics this kind feeds)"
                if name == "accuracy"
                else ""
            )
            raise LayerftError(
                f"{where}: metrics: '{name}' reads {spec.reads.value}, which a {task.kind.value} "
                f"task does not produce{default}"
            )
        if spec.labels is not None and (other := set(task.label_names) - set(spec.labels)):
            raise LayerftError(
                f"{where}: metrics: '{name}' scores only the labels {', '.join(spec.labels)}; "
                f"label_names has {sorted(other)[0]!r}"
            )
        keys += [key for key in spec.keys if key not in spec.not_scores]
    if "binary_f1" in task.metrics and len(task.label_names) != 2:
        raise LayerftError(
            f"{where}: metrics: 'binary_f1' is the F1 of label_names[1] (the positive class) "
            f"of 2 labels; this task has {len(task.label_names)} (use macro_f1)"
        )
    chunked = [name for name in task.metrics if name in IOB_METRICS]
    odd = [tag for tag in task.label_names if not _IOB_TAG.fullmatch(tag)]
    if chunked and odd:
        raise LayerftError(
            f"{where}: metrics: '{chunked[0]}' scores entities of IOB2 tags (O, B-<type>, "
            f"I-<type>); label_names has {odd[0]!r}"
        )
    if task.best_metric not in keys:
        default = " (the default where a task names none: set best_metric)"
        raise LayerftError(
            f"{where}: best_metric '{task.best_metric}' is not one of {', '.join(keys)}"
            + (default if task.best_metric == DEFAULT_BEST_METRIC else "")
        )
    if task.release_format not in RELEASE_READERS:
        raise LayerftError(
            f"{where}: release_format '{task.release_format}' unknown; use one of "
            f"{', '.join(RELEASE_READERS)}"
        )
    if task.generator is not None and task.generator not in DEMO_GENERATORS:
        raise LayerftError(
            f"{where}: generator '{task.generator}' unknown; use one of "
            f"{', '.join(DEMO_GENERATORS)}"
        )


def check_recipe(task: TaskConfig, where: str) -> None:
    """The recipe's numbers: positive sizes and rates, no run that never ends (more optimizer
    steps than a run can finish) and no weight decay that zeroes or flips the weights."""
    for key in ("lr", "batch_size", "max_length", "evals_per_epoch"):
        if getattr(task, key) <= 0:
            hint = ""
            if key == "lr" and task.lr == 0:  # epochs=0 is the untrained control, at any lr > 0
                hint = (
                    "; epochs=0 already trains nothing: leave its lr > 0"
                    if task.epochs == 0
                    else "; to only evaluate the model as given, set its epochs=0"
                )
            raise LayerftError(f"{where}: {key} must be > 0, got {getattr(task, key)}{hint}")
    for key in ("epochs", "weight_decay", "max_grad_norm"):  # epochs 0: the stage evaluates
        if getattr(task, key) < 0:
            raise LayerftError(f"{where}: {key} must be >= 0, got {getattr(task, key)}")
    if task.epochs > MAX_STEPS:  # an epoch is at least one step
        raise LayerftError(
            f"{where}: epochs must be at most {MAX_STEPS:.0e} (an epoch is at "
            f"least one step; {MAX_STEPS:.0e} steps is no run's length), got {task.epochs:g}"
        )
    if task.lr * task.weight_decay >= 1:  # AdamW's decoupled decay: w *= 1 - lr * weight_decay
        raise LayerftError(
            f"{where}: weight_decay times lr must be < 1, got {task.weight_decay:g} x "
            f"{task.lr:g}: each step would scale the weights by 1 - lr x weight_decay <= 0"
        )
    if not 0 <= task.head_dropout < 1:
        raise LayerftError(f"{where}: head_dropout must be in [0, 1), got {task.head_dropout}")


def check_part_decay(part: str, part_lr: float, decay: float, lr: float, where: str = "") -> None:
    """Refuse a part whose lr (the task's times its multiplier) times weight decay is >= 1: the
    task's own check (check_recipe) does not see a part's multiplier (`where`: its group, `x.`)."""
    if part_lr * decay >= 1:
        raise LayerftError(
            f"{where}weight_decay={decay:g} at {part}'s lr {part_lr:g} (the task's lr {lr:g} "
            "times its multiplier): their product must be < 1, else AdamW zeroes or flips its "
            "weights each step; lower weight_decay or that part's lr multiplier"
        )
