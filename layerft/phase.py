"""The one phase runner both stages use: train a TaskModel on TaskData and report its best dev metrics.

transformers' Trainer underneath gives mixed precision, DDP under torchrun/accelerate, length-grouped
batches and checkpointing; layerft supplies the optimizer's parameter groups and the metrics.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

import torch
from transformers import Trainer, TrainerCallback, TrainingArguments
from transformers.trainer_callback import PrinterCallback

from layerft.data import TaskData
from layerft.evaluation import build_compute_metrics
from layerft.heads import TaskModel
from layerft.lr_schedule import ScheduleConfig, build_optimizer, build_scheduler, total_steps
from layerft.memory import PeakMemory
from layerft.parts import count_parameters, parameter_parts
from layerft.task import TaskConfig

log = logging.getLogger(__name__)

MetricSink = Callable[[dict[str, float], int], None]


class Precision(str, Enum):
    fp32 = "fp32"
    bf16 = "bf16"
    fp16 = "fp16"


@dataclass
class TrainerConfig:
    """Settings of the phase runner shared by both stages."""

    precision: Precision = Precision.fp32
    group_by_length: bool = False  # measured slower on an H100 with short inputs; see BENCHMARKS.md
    keep_checkpoints: bool = False
    progress_bar: bool = False
    dataloader_workers: int = 0
    # Batches are padded to the longest example, rounded up to this multiple; null: 8 on a GPU
    # (few distinct shapes for its kernels to tune for), none on a CPU (every token costs).
    pad_to_multiple_of: int | None = None

    def resolved_pad_multiple(self) -> int | None:
        """The padding multiple to use on this machine."""
        if self.pad_to_multiple_of is not None:
            return self.pad_to_multiple_of
        return 8 if torch.cuda.is_available() else None


class _ForwardLogs(TrainerCallback):
    """Send the Trainer's logs to the tracker as `<stage>/<name>` (its own W&B reporting is off)."""

    def __init__(self, stage: str, sink: MetricSink) -> None:
        self.stage, self.sink = stage, sink

    def on_log(self, args, state, control, logs=None, **kwargs):  # noqa: ANN001 - Trainer's hook
        if logs and state.is_world_process_zero:
            numbers = {
                f"{self.stage}/{k}": float(v)
                for k, v in logs.items()
                if isinstance(v, (int, float))
            }
            self.sink(numbers, state.global_step)
            shown = ", ".join(
                f"{k}={v:.4g}" for k, v in logs.items() if isinstance(v, (int, float))
            )
            log.info("%s step %d: %s", self.stage, state.global_step, shown)


class _EvalClock(TrainerCallback):
    """Seconds spent in dev evaluations during training (the Trainer's train_runtime includes them)."""

    def __init__(self) -> None:
        self.seconds = 0.0

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):  # noqa: ANN001 - Trainer's hook
        self.seconds += float((metrics or {}).get("eval_runtime", 0.0))


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
    optimizer = build_optimizer(model, parts_of, task.lr, task.weight_decay, lr_multipliers)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    num_steps = total_steps(len(data.train), task.batch_size, task.epochs, world)
    steps_per_epoch = math.ceil(len(data.train) / (task.batch_size * world))
    eval_steps = max(1, steps_per_epoch // task.evals_per_epoch)
    checkpoints = output_dir / "checkpoints" / stage
    args = TrainingArguments(
        output_dir=str(checkpoints),
        max_steps=num_steps,  # the scheduler below is built for exactly this many steps
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
        greater_is_better=True,
        logging_steps=eval_steps,
        report_to="none",
        seed=seed,
        data_seed=seed,
        bf16=trainer_cfg.precision == Precision.bf16,
        fp16=trainer_cfg.precision == Precision.fp16,
        train_sampling_strategy="group_by_length" if trainer_cfg.group_by_length else "random",
        dataloader_num_workers=trainer_cfg.dataloader_workers,
        disable_tqdm=not trainer_cfg.progress_bar,
        remove_unused_columns=False,  # tokenized sets hold model inputs + `length` (see DropLengthCollator)
    )
    trainer = Trainer(
        model=model,
        args=args,
        data_collator=data.collator,
        train_dataset=data.train,
        eval_dataset=data.validation,
        compute_metrics=build_compute_metrics(task),
        optimizers=(optimizer, build_scheduler(schedule, optimizer, num_steps)),
        callbacks=[_ForwardLogs(stage, sink), eval_clock := _EvalClock()],
    )
    trainer.remove_callback(PrinterCallback)  # _ForwardLogs logs instead of raw dict prints
    with PeakMemory() as memory:
        train_output = trainer.train()
    best = trainer.evaluate()  # the best checkpoint is loaded back at the end of train()
    if not trainer_cfg.keep_checkpoints and trainer.is_world_process_zero():
        shutil.rmtree(checkpoints, ignore_errors=True)
        with contextlib.suppress(OSError):
            checkpoints.parent.rmdir()  # only if no other stage kept its checkpoints
    metrics = {k: float(v) for k, v in best.items() if k.startswith("eval_") and k != "eval_epoch"}
    # Speed of training alone: the dev evaluations inside train() are timed and taken out.
    runtime = float(train_output.metrics["train_runtime"]) - eval_clock.seconds
    metrics["train_runtime"] = runtime
    metrics["train_eval_seconds"] = eval_clock.seconds
    # Examples actually seen: only the last batch of an epoch is short.
    epochs_done, steps_left = divmod(trainer.state.global_step, steps_per_epoch)
    seen = epochs_done * len(data.train) + min(
        steps_left * task.batch_size * world, len(data.train)
    )
    metrics["train_samples_per_second"] = seen / runtime
    metrics["train_loss"] = float(train_output.metrics["train_loss"])
    metrics.update(memory.metrics())
    metrics.update({k: float(v) for k, v in counts.items()})
    return {f"{stage}/{k}": v for k, v in metrics.items()}
