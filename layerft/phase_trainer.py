"""The Trainer as the phase runner (`layerft/phase.py`) sets it up: its arguments, the trainer
subclass that counts tokens and guards the loss, the stage's Trainer built with layerft's callbacks,
and the speed it reports for a trained phase.
Serves the trainer config group (`TrainerConfig`) with phase.py."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from datasets import Dataset
from torch.utils.data import Sampler, SequentialSampler
from transformers import Trainer, TrainingArguments
from transformers.trainer_callback import PrinterCallback, ProgressCallback

from layerft.callbacks import (
    ForwardLogs,
    GuardCheckpoints,
    PauseClock,
    StageProgress,
    StopOnInterrupt,
)
from layerft.data import TaskData
from layerft.errors import LayerftError
from layerft.evaluation import build_compute_metrics
from layerft.heads import TaskModel
from layerft.kinds import kind_of
from layerft.lr_schedule import total_steps
from layerft.processes import cpu_over_mps
from layerft.speed import (
    NonFiniteLossGuard,
    TokenCounter,
    device_peak_flops,
    model_flops_utilization,
)
from layerft.task import TaskConfig
from layerft.task_names import MAX_STEPS
from layerft.trainer_config import Precision, TrainerConfig

FUSED_ADAMW_DEVICES = frozenset({"cuda", "cpu"})  # one kernel per step instead of one per tensor


@dataclass(frozen=True)
class PhaseSteps:
    """How a phase's training examples divide into optimizer steps, over every process."""

    num_examples: int
    global_batch: int  # examples per step: the task's batch_size in each process
    steps_per_epoch: int
    num_steps: int  # of the whole phase (its epochs may be fractional)
    eval_steps: int  # between dev evaluations (and checkpoints)

    @classmethod
    def of(cls, num_examples: int, task: TaskConfig, world: int, stage: str) -> PhaseSteps:
        global_batch = task.batch_size * world
        steps_per_epoch = math.ceil(num_examples / global_batch)
        num_steps = total_steps(num_examples, task.batch_size, task.epochs, world)
        if num_steps > MAX_STEPS:
            raise LayerftError(
                f"{stage}_task.epochs={task.epochs:g} over {num_examples} examples, {global_batch} a "
                f"step, is {num_steps:.3g} optimizer steps, more than {MAX_STEPS:.0e} (no run's length)"
            )
        return cls(
            num_examples=num_examples,
            global_batch=global_batch,
            steps_per_epoch=steps_per_epoch,
            num_steps=num_steps,
            eval_steps=max(1, steps_per_epoch // task.evals_per_epoch),
        )


class PhaseTrainer(Trainer):
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

    def _get_grad_norm(self, model, grad_norm=None):  # noqa: ANN001, ANN202 - Trainer's hook
        # Every step's norm through the loss's ring (the Trainer reads a logged step's); not fp16's,
        # whose scaler skips a step of infinite gradients (GuardCheckpoints counts the skips)
        grad_norm, step = super()._get_grad_norm(model, grad_norm), self.state.global_step + 1
        if grad_norm is not None and not self.args.fp16:
            self.guard.record_grad_norm(grad_norm, step, self.args.max_grad_norm > 0)
        return grad_norm

    def _get_eval_sampler(self, eval_dataset: Dataset) -> Sampler | None:
        """Dev sets in their order: each kind pairs predictions with its records by position, and
        the Trainer sorts dev sets by length too under group_by_length (tagging then crashed and
        span scores were read against other questions' contexts)."""
        if eval_dataset is None:
            return None
        # Several processes: the Trainer's sharding, which gathers predictions in order.
        return SequentialSampler(eval_dataset) if self.args.world_size <= 1 else None


def training_arguments(
    task: TaskConfig, trainer_cfg: TrainerConfig, seed: int, checkpoints: Path, steps: PhaseSteps
) -> TrainingArguments:
    """The Trainer's arguments for one phase: its batch, evaluation and save cadence, precision,
    data loading and device."""
    workers, eval_steps = trainer_cfg.resolved_dataloader_workers(), steps.eval_steps
    return TrainingArguments(
        output_dir=str(checkpoints),
        max_steps=steps.num_steps,  # the scheduler is built for exactly this many steps
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
        # processes.cpu_over_mps decides, so that run/device names the device trained on.
        use_cpu=not torch.cuda.is_available()
        and cpu_over_mps(trainer_cfg.precision == Precision.bf16),
        disable_tqdm=not trainer_cfg.resolved_progress_bar(),
        remove_unused_columns=False,  # tokenized sets hold model inputs + `length` (see DropKeysCollator)
    )


def phase_speed(
    trainer: PhaseTrainer, train_metrics: Mapping[str, float], paused: float, steps: PhaseSteps,
    total_params: int, world: int,
) -> dict[str, float]:  # fmt: skip
    """Loss and speed of training alone: evaluations and saves inside train() are taken out."""
    runtime = float(train_metrics["train_runtime"]) - paused
    # Examples actually seen: only the last batch of an epoch is short.
    epochs_done, steps_left = divmod(trainer.state.global_step, steps.steps_per_epoch)
    seen = epochs_done * steps.num_examples + min(
        steps_left * steps.global_batch, steps.num_examples
    )
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


def build_phase_trainer(
    stage: str,
    model: TaskModel,
    args: TrainingArguments,
    data: TaskData,
    task: TaskConfig,
    optimizers: tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler],
    forward: ForwardLogs,
    pauses: PauseClock,
    mode_scale: str = "",
    mode_init: str = "",
) -> PhaseTrainer:
    """The stage's Trainer: its dev metrics, optimizer and schedule, layerft's callbacks in place
    of the Trainer's printing (`forward` logs, `pauses` times evaluations and saves; the tuning
    mode's scale and init settings for its loss guard's errors)."""
    # Step 1's lr is 0 at warmup's start: a nil update, so step 2's loss is the model as built's
    unchanged_steps = 1 if any(optimizers[1].get_last_lr()) else 2
    guard = _loss_guard(stage, task, mode_scale, mode_init, unchanged_steps)
    checks = GuardCheckpoints(guard)
    trainer = PhaseTrainer(
        model=model,
        args=args,
        data_collator=data.collator,
        train_dataset=data.train,
        eval_dataset=data.validation,
        compute_metrics=build_compute_metrics(
            task, data.validation, data.validation_rows, data.validation_sources
        ),
        optimizers=optimizers,
        callbacks=[forward, pauses, checks, StopOnInterrupt()],
        guard=guard,
    )
    checks.step_was_skipped = lambda: trainer.accelerator.optimizer_step_was_skipped
    trainer.remove_callback(PrinterCallback)  # ForwardLogs logs instead of raw dict prints
    if trainer.pop_callback(ProgressCallback) is not None:
        trainer.add_callback(StageProgress(stage))
    return trainer


def _loss_guard(
    stage: str,
    task: TaskConfig,
    mode_scale: str = "",
    mode_init: str = "",
    unchanged_steps: int = 1,
) -> NonFiniteLossGuard:
    """The stage's guard against a NaN or infinite loss, its error naming the settings to change
    (`mode_scale`: the tuning mode's setting that scales what its modules add, if any; `mode_init`:
    the one the model as built depends on, named for a non-finite loss before any update)."""
    group = f"{stage}_task"
    clipping = (
        f"or clip gradients: {group}.max_grad_norm is 0 (off); 1.0 is usual"
        if task.max_grad_norm == 0
        else f"or {group}.max_grad_norm={task.max_grad_norm:g} (the norm gradients are clipped to)"
    )
    scaled = f", or {mode_scale}" if mode_scale else ""
    return NonFiniteLossGuard(
        stage,
        f"lower {group}.lr={task.lr:g}, {clipping}{scaled}",
        f"not {group}.lr: the model as built gives it; check {mode_init or 'its weights'}",
        unchanged_steps,
    )
