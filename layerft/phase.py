"""The one phase runner both stages use: train a TaskModel on TaskData and report its best dev metrics.

transformers' Trainer underneath gives mixed precision, DDP under torchrun/accelerate, length-grouped
batches and checkpointing; layerft supplies the optimizer's parameter groups and the metrics.
"""

from __future__ import annotations

import contextlib
import logging
import math
import shutil
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import torch
from datasets import Dataset
from torch.utils.data import Sampler, SequentialSampler
from transformers import Trainer, TrainingArguments
from transformers.trainer_callback import PrinterCallback, ProgressCallback

from layerft.callbacks import ForwardLogs, GuardCheckpoints, MetricSink, PauseClock, StageProgress
from layerft.data import TaskData
from layerft.errors import LayerftError
from layerft.evaluation import build_compute_metrics
from layerft.heads import TaskModel
from layerft.kinds import kind_of
from layerft.lr_schedule import (
    ScheduleConfig,
    build_optimizer,
    build_scheduler,
    part_learning_rates,
    total_steps,
    warmup_steps,
)
from layerft.memory import PeakMemory
from layerft.parts import count_parameters, parameter_parts
from layerft.processes import rank, world_size
from layerft.replaced_result import remove_trainer_checkpoints
from layerft.results import CHECKPOINTS_DIR
from layerft.speed import (
    NonFiniteLossGuard,
    TokenCounter,
    device_peak_flops,
    model_flops_utilization,
)
from layerft.task import TaskConfig
from layerft.trainer_config import Precision, TrainerConfig

log = logging.getLogger(__name__)

FUSED_ADAMW_DEVICES = frozenset({"cuda", "cpu"})  # one kernel per step instead of one per tensor


class _PhaseTrainer(Trainer):
    """The Trainer, counting tokens and watching the loss of every step without a host sync."""

    def __init__(self, *args: Any, guard: NonFiniteLossGuard, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.guard = guard
        self.tokens = TokenCounter()

    def training_step(self, model, inputs, num_items_in_batch=None):  # noqa: ANN001 - Trainer's hook
        self.tokens.count(inputs)
        loss = super().training_step(model, inputs, num_items_in_batch)
        self.guard.record(loss, self.state.global_step + 1)
        return loss

    def _get_eval_sampler(self, eval_dataset: Dataset) -> Sampler | None:
        """Dev sets in their order: each kind pairs predictions with its records by position, and
        the Trainer sorts dev sets by length too under group_by_length (tagging then crashed and
        span scores were read against other questions' contexts)."""
        if eval_dataset is None:
            return None
        # Several processes: the Trainer's sharding, which gathers predictions in order.
        return SequentialSampler(eval_dataset) if self.args.world_size <= 1 else None


def _training_arguments(
    task: TaskConfig, trainer_cfg: TrainerConfig, seed: int, checkpoints: Path, num_steps: int,
    eval_steps: int,
) -> TrainingArguments:  # fmt: skip
    workers = trainer_cfg.resolved_dataloader_workers()
    return TrainingArguments(
        output_dir=str(checkpoints),
        max_steps=num_steps,  # the scheduler is built for exactly this many steps
        per_device_train_batch_size=task.batch_size,
        per_device_eval_batch_size=task.batch_size * 2,
        learning_rate=task.lr,
        max_grad_norm=task.max_grad_norm,
        eval_strategy="steps",
        eval_steps=eval_steps,
        save_strategy="steps",
        save_steps=eval_steps,
        save_total_limit=1,
        save_only_model=True,
        load_best_model_at_end=True,
        metric_for_best_model=task.best_metric,
        greater_is_better=task.best_is_higher,
        label_names=list(kind_of(task).label_keys),
        logging_steps=eval_steps,
        # Its per-step isnan check syncs with the GPU every step; NonFiniteLossGuard stops the
        # run instead of hiding the step.
        logging_nan_inf_filter=False,
        report_to="none",
        seed=seed,
        data_seed=seed,
        bf16=trainer_cfg.precision == Precision.bf16,
        fp16=trainer_cfg.precision == Precision.fp16,
        train_sampling_strategy="group_by_length" if trainer_cfg.group_by_length else "random",
        dataloader_num_workers=workers,
        # Not persistent: a persistent loader draws its workers' seed from the global generator
        # only once, where a fresh one draws at every evaluation and epoch, so keeping workers
        # would shift dropout and change results with trainer.dataloader_workers (result-neutral).
        dataloader_persistent_workers=False,
        dataloader_pin_memory=torch.cuda.is_available(),
        # Pinned batches copied to the GPU without blocking: a blocking copy waits for the stream,
        # i.e. for every step already queued, which is a host sync per batch (accelerate#2685).
        accelerator_config={"non_blocking": torch.cuda.is_available()},
        # Several processes without CUDA: accelerate then sets up gloo DDP (each process its shard
        # of every batch, gradients all-reduced); without it each process would train on the same
        # batches alone. bf16 without CUDA is the CPU's bf16 autocast (the Trainer refuses it on
        # any other device). Else one process keeps the Trainer's own device (a Mac's MPS).
        use_cpu=not torch.cuda.is_available()
        and (world_size() > 1 or trainer_cfg.precision == Precision.bf16),
        disable_tqdm=not trainer_cfg.resolved_progress_bar(),
        remove_unused_columns=False,  # tokenized sets hold model inputs + `length` (see DropKeysCollator)
    )


# Keys evaluate() returns that are no dev metric: the epoch, and the model's set-up time, which
# the Trainer reports when evaluate() comes first (epochs=0).
NOT_SCORES = frozenset({"eval_epoch", "eval_model_preparation_time"})


def run_phase(
    stage: str,
    model: TaskModel,
    data: TaskData,
    task: TaskConfig,
    schedule: ScheduleConfig,
    lr_multipliers: Mapping[str, float],
    trainer_cfg: TrainerConfig,
    seed: int,
    output_dir: Path,
    sink: MetricSink,
) -> dict[str, float]:
    """Train, keep the best dev checkpoint, and return its metrics plus speed and parameter counts."""
    parts_of = parameter_parts(model)
    counts = count_parameters(model, parts_of)
    log.info(
        "%s: %d of %d parameters train (%s)",
        stage,
        counts["trainable_params"],
        counts["total_params"],
        ", ".join(f"{k.split('/')[1]}={v}" for k, v in counts.items() if "/" in k and v),
    )
    trainer_cfg.check_device()
    world = world_size()
    num_steps = total_steps(len(data.train), task.batch_size, task.epochs, world)
    steps_per_epoch = math.ceil(len(data.train) / (task.batch_size * world))
    eval_steps = max(1, steps_per_epoch // task.evals_per_epoch)
    checkpoints = output_dir / CHECKPOINTS_DIR / stage
    args = _training_arguments(task, trainer_cfg, seed, checkpoints, num_steps, eval_steps)
    optimizer = build_optimizer(
        model, parts_of, task.lr, task.weight_decay, lr_multipliers,
        fused=args.device.type in FUSED_ADAMW_DEVICES,
    )  # fmt: skip
    part_lrs = {part.split("/")[0]: lr for part, lr in part_learning_rates(optimizer).items()}
    log.info("%s: lr per part: %s", stage, ", ".join(f"{p}={v:.3g}" for p, v in part_lrs.items()))
    if trainer_cfg.compile:
        model.backbone.compile(mode=trainer_cfg.compile_mode.value)
    group = f"{stage}_task"
    clipping = (
        f"or clip gradients: {group}.max_grad_norm is 0 (off); 1.0 is usual"
        if task.max_grad_norm == 0
        else f"or {group}.max_grad_norm={task.max_grad_norm:g} (the norm gradients are clipped to)"
    )
    guard = NonFiniteLossGuard(stage, f"lower {group}.lr={task.lr:g}, {clipping}")
    trainer = _PhaseTrainer(
        model=model,
        args=args,
        data_collator=data.collator,
        train_dataset=data.train,
        eval_dataset=data.validation,
        compute_metrics=build_compute_metrics(task, data.validation, data.validation_rows),
        optimizers=(optimizer, build_scheduler(schedule, optimizer, num_steps)),
        callbacks=[
            forward := ForwardLogs(stage, sink, task.lr),
            pauses := PauseClock(),
            GuardCheckpoints(guard),
        ],
        guard=guard,
    )
    trainer.remove_callback(PrinterCallback)  # ForwardLogs logs instead of raw dict prints
    if trainer.pop_callback(ProgressCallback) is not None:
        trainer.add_callback(StageProgress(stage))
    completed = False
    try:
        with PeakMemory() as memory:
            train_output = trainer.train() if num_steps else None
        paused = pauses.seconds  # before the final evaluation, which train() did not time
        forward.train_done = bool(num_steps)  # without training, its one evaluation is the curve
        best = trainer.evaluate()  # the best checkpoint is loaded back at the end of train()
        for name, split in data.extra_eval.items():  # the same checkpoint on further dev sets
            trainer.compute_metrics = build_compute_metrics(task, split.features, split.rows)
            best |= trainer.evaluate(split.features, metric_key_prefix=f"eval_{name}")
        completed = True
    finally:
        if not trainer_cfg.keep_checkpoints:
            remove_checkpoints(checkpoints, synchronise=completed and world > 1)
    metrics = {
        k: float(v) for k, v in best.items() if k.startswith("eval_") and k not in NOT_SCORES
    }
    for key, value in metrics.items():
        if not math.isfinite(value):
            raise LayerftError(f"{stage} stage: dev {key} is {value} for the best checkpoint")
    if train_output is not None:
        speed = _speed(trainer, train_output.metrics, paused, len(data.train), steps_per_epoch,
                       task.batch_size * world, counts["total_params"], world)  # fmt: skip
        if rank() == 0:  # after the dev evaluations: this line closes the dev curve in a history
            sink({f"{stage}/{k}": v for k, v in speed.items()}, trainer.state.global_step)
        metrics.update(speed)
        if (best_step := trainer.state.best_global_step) is not None:  # the dev metrics' checkpoint
            metrics.update(best_step=float(best_step), best_epoch=best_step / steps_per_epoch)
        if best_step == 1 and warmup_steps(schedule, num_steps) > 0:
            log.warning(
                "%s: the best dev checkpoint is step 1, taken after a step at lr 0 (warmup starts "
                "from 0): the model as given; %s",
                stage,
                "its only step trained nothing" if num_steps == 1 else "no later one beat it",
            )
    else:  # epochs=0: the phase only evaluates the model it was given
        metrics.update(train_runtime=0.0, train_paused_seconds=0.0, best_step=0.0, best_epoch=0.0)
    metrics.update(memory.metrics())
    metrics.update({k: float(v) for k, v in counts.items()})
    metrics.update({f"lr/{part}": lr for part, lr in part_lrs.items()})
    return {f"{stage}/{k}": v for k, v in metrics.items()}


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


def _speed(
    trainer: _PhaseTrainer, train_metrics: Mapping[str, float], paused: float,
    num_examples: int, steps_per_epoch: int, global_batch: int, total_params: int, world: int,
) -> dict[str, float]:  # fmt: skip
    """Loss and speed of training alone: evaluations and saves inside train() are taken out."""
    runtime = float(train_metrics["train_runtime"]) - paused
    # Examples actually seen: only the last batch of an epoch is short.
    epochs_done, steps_left = divmod(trainer.state.global_step, steps_per_epoch)
    seen = epochs_done * num_examples + min(steps_left * global_batch, num_examples)
    real, padded = trainer.tokens.totals()
    speed = {
        "train_loss": float(train_metrics["train_loss"]),
        "train_runtime": runtime,
        "train_paused_seconds": paused,
        "train_samples_per_second": seen / runtime,
        "train_tokens_per_second": real / runtime,
    }
    if torch.cuda.is_available():
        peak = device_peak_flops(torch.cuda.get_device_name())
        if peak is not None:
            speed["mfu"] = model_flops_utilization(total_params, padded, runtime, peak, world)
            speed["mfu_peak_tflops"] = peak / 1e12
    return speed
