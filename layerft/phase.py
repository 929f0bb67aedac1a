"""The one phase runner both stages use: train a TaskModel on TaskData and report its best dev metrics.

transformers' Trainer underneath gives mixed precision, DDP under torchrun/accelerate, length-grouped
batches and checkpointing; layerft supplies the optimizer's parameter groups and the metrics
(`layerft/phase_trainer.py`: the Trainer's arguments, subclass, its set-up with layerft's
callbacks and the speed report).

Serves the root config's `trainer` node (`TrainerConfig`), with `layerft/phase_trainer.py`; each
stage's task and schedule come from `layerft/run.py`.
"""

from __future__ import annotations

import contextlib
import logging
import math
import shutil
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from layerft.callbacks import ForwardLogs, MetricSink, PauseClock
from layerft.data import TaskData
from layerft.errors import LayerftError
from layerft.evaluation import build_compute_metrics
from layerft.heads import TaskModel
from layerft.lr_schedule import (
    ScheduleConfig,
    build_optimizer,
    build_scheduler,
    part_learning_rates,
    warmup_steps,
)
from layerft.memory import PeakMemory
from layerft.metrics import PREDICTED_CLASSES
from layerft.parts import bottom_up, count_parameters, parameter_parts
from layerft.phase_trainer import (
    FUSED_ADAMW_DEVICES,
    PhaseSteps,
    PhaseTrainer,
    build_phase_trainer,
    phase_speed,
    training_arguments,
)
from layerft.predictions import write_partial
from layerft.processes import rank, short_socket_folder, world_size
from layerft.replaced_result import remove_trainer_checkpoints
from layerft.results import BEST_UNTRAINED, CHECKPOINTS_DIR
from layerft.task import TaskConfig
from layerft.trainer_config import TrainerConfig

log = logging.getLogger(__name__)

# Keys evaluate() returns that are no dev metric: the epoch, and the model's set-up time, which
# the Trainer reports when evaluate() comes first (epochs=0).
NOT_SCORES = frozenset({"eval_epoch", "eval_model_preparation_time"})


@dataclass(frozen=True)
class Phase:
    """What one stage trains with: its task, schedule, per-part learning-rate multipliers, the
    run's trainer settings and seed; `output_dir` holds its checkpoints (and stage 2's dev
    predictions), `sink` receives its logged metrics."""

    stage: str
    task: TaskConfig
    schedule: ScheduleConfig
    lr_multipliers: Mapping[str, float]
    trainer: TrainerConfig
    seed: int
    output_dir: Path
    sink: MetricSink
    mode_scale: str = ""  # the tuning mode's setting scaling what its modules add (a NaN's error)
    mode_init: str = ""  # the one the model as built depends on (a NaN before any update)


def run_phase(phase: Phase, model: TaskModel, data: TaskData) -> dict[str, float]:
    """Train, keep the best dev checkpoint, and return its metrics plus speed and parameter counts."""
    stage, task, world = phase.stage, phase.task, world_size()
    parts_of = parameter_parts(model)
    counts = count_parameters(model, parts_of)
    _log_counts(stage, counts)
    phase.trainer.check_device()
    steps = PhaseSteps.of(len(data.train), task, world, stage)
    checkpoints = phase.output_dir / CHECKPOINTS_DIR / stage
    args = training_arguments(task, phase.trainer, phase.seed, checkpoints, steps)
    if args.dataloader_num_workers:
        short_socket_folder()  # where workers send batches: else a long TMPDIR hung the run
    optimizer = build_optimizer(
        model, parts_of, task.lr, task.weight_decay, phase.lr_multipliers,
        fused=args.device.type in FUSED_ADAMW_DEVICES,
    )  # fmt: skip
    part_lrs = bottom_up({p.split("/")[0]: lr for p, lr in part_learning_rates(optimizer).items()})
    log.info("%s: lr per part: %s", stage, ", ".join(f"{p}={v:.3g}" for p, v in part_lrs.items()))
    if phase.trainer.compile:
        model.backbone.compile(mode=phase.trainer.compile_mode.value)
    scheduler = build_scheduler(phase.schedule, optimizer, steps.num_steps)
    forward, pauses = ForwardLogs(stage, phase.sink, task.lr), PauseClock()
    trainer = build_phase_trainer(
        stage, model, args, data, task, (optimizer, scheduler), forward, pauses,
        mode_scale=phase.mode_scale, mode_init=phase.mode_init,
    )  # fmt: skip
    completed = False
    try:
        with PeakMemory() as memory:
            train_output = trainer.train() if steps.num_steps else None
        paused = pauses.seconds  # before the final evaluation, which train() did not time
        # without training, its one evaluation is the curve
        forward.train_done = bool(steps.num_steps)
        best = _evaluate_best(stage, trainer, data, task, phase.output_dir)
        completed = True
    finally:
        if not phase.trainer.keep_checkpoints:
            remove_checkpoints(checkpoints, synchronise=completed and world > 1)
    metrics = _dev_scores(stage, best)
    warn_one_class(stage, metrics)
    if train_output is None:  # epochs=0: the phase only evaluates the model it was given
        metrics.update(train_runtime=0.0, train_paused_seconds=0.0, best_step=0.0, best_epoch=0.0)
    else:
        speed = phase_speed(
            trainer, train_output.metrics, paused, steps, counts["total_params"], world
        )
        metrics.update(_trained(phase, trainer, speed, steps))
        metrics.update({f"lr/{part}": lr for part, lr in part_lrs.items()})  # each part's peak
    metrics.update(memory.metrics())
    metrics.update({k: float(v) for k, v in counts.items()})
    return {f"{stage}/{k}": v for k, v in metrics.items()}


def _trained(
    phase: Phase, trainer: PhaseTrainer, speed: dict[str, float], steps: PhaseSteps
) -> dict[str, float]:
    """A trained phase's speed and best step, the speed logged too (after the dev evaluations:
    this line closes the dev curve in a history)."""
    if rank() == 0:
        phase.sink({f"{phase.stage}/{k}": v for k, v in speed.items()}, trainer.state.global_step)
    metrics = dict(speed)
    if (best_step := trainer.state.best_global_step) is not None:  # the dev metrics' checkpoint
        metrics.update(best_step=float(best_step), best_epoch=best_step / steps.steps_per_epoch)
    untrained = best_step == 1 and warmup_steps(phase.schedule, steps.num_steps) > 0
    if untrained:
        _warn_best_is_first_step(phase.stage, steps.num_steps)
    metrics[BEST_UNTRAINED] = float(untrained)  # a table notes it (sweep_table.notes)
    return metrics


def _evaluate_best(
    stage: str, trainer: PhaseTrainer, data: TaskData, task: TaskConfig, output_dir: Path
) -> dict[str, float]:
    """The dev metrics of the best checkpoint (train() loaded it back at its end), on each further
    dev set too; stage 2's dev predictions are written beside the run's results to come."""
    best = trainer.evaluate()
    scorers = {"validation": trainer.compute_metrics}  # its dev predictions
    for name, split in data.extra_eval.items():  # the same checkpoint on further dev sets
        trainer.compute_metrics = build_compute_metrics(
            task, split.features, split.rows, split.sources
        )
        best |= trainer.evaluate(split.features, metric_key_prefix=f"eval_{name}")
        scorers[name] = trainer.compute_metrics
    if stage == "target" and rank() == 0:
        write_partial(output_dir, task, scorers)
    return best


def _log_counts(stage: str, counts: Mapping[str, int]) -> None:
    log.info(
        "%s: %d of %d parameters train (%s)",
        stage,
        counts["trainable_params"],
        counts["total_params"],
        ", ".join(f"{k.split('/')[1]}={v}" for k, v in counts.items() if "/" in k and v),
    )


def _dev_scores(stage: str, best: Mapping[str, Any]) -> dict[str, float]:
    """The dev scores among what evaluate() returned for the best checkpoint; all finite."""
    scores = {k: float(v) for k, v in best.items() if k.startswith("eval_") and k not in NOT_SCORES}
    for key, value in scores.items():
        if not math.isfinite(value):
            raise LayerftError(f"{stage} stage: dev {key} is {value} for the best checkpoint")
    return scores


def warn_one_class(stage: str, scores: Mapping[str, float]) -> None:
    """Say so when the best checkpoint predicts one label for every example (every word, of a
    tagger) of a dev set: its scores are that label's share, whatever the setting compared."""
    for key, value in scores.items():
        if key.endswith(f"_{PREDICTED_CLASSES}") and value == 1:
            split = key.removesuffix(PREDICTED_CLASSES).removeprefix("eval_").strip("_")
            log.warning(
                "%s: the best dev checkpoint predicts one label for everything in %s: it learned "
                "no more than that label (try another %s_task.lr, more epochs or examples)",
                stage, split or "validation", stage,
            )  # fmt: skip


def _warn_best_is_first_step(stage: str, num_steps: int) -> None:
    log.warning(
        "%s: the best dev checkpoint is step 1, taken after a step at lr 0 (warmup starts "
        "from 0): the model as given; %s",
        stage,
        "its only step trained nothing" if num_steps == 1 else "no later one beat it",
    )


def remove_unfinished_checkpoints(run_dir: Path, stages: Iterable[str]) -> None:
    """Remove the stages' checkpoints an unfinished attempt left in `run_dir` (a killed run keeps
    its stages' best checkpoints; a rerun that reuses a stored stage 1 would not overwrite them).
    Only `checkpoints/<stage>/checkpoint-<step>` folders, the Trainer's: anything else a user
    keeps under `checkpoints/` stays."""
    if removed := remove_trainer_checkpoints(run_dir / CHECKPOINTS_DIR, stages):
        log.info("removed %d checkpoint(s) an unfinished attempt left in %s", removed, run_dir)


def remove_checkpoints(checkpoints: Path, synchronise: bool) -> None:
    """The first process removes the stage's checkpoints, once every process is done with them.

    The rank is torchrun's `RANK` (0 without torchrun); the barrier keeps the first process from
    removing a checkpoint another one still writes or loads.
    """
    if synchronise and torch.distributed.is_initialized():
        torch.distributed.barrier()
    if rank() != 0:
        return
    shutil.rmtree(checkpoints, ignore_errors=True)
    with contextlib.suppress(OSError):
        checkpoints.parent.rmdir()  # only if no other stage kept its checkpoints
