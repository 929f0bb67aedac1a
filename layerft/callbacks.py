"""The Trainer callbacks of the phase runner: logs to the tracker, the clock of pauses in
training, a labelled progress bar, the non-finite loss checks, and a Ctrl-C Python lost.

Serves no config group: `layerft/phase_trainer.py` puts these on each stage's Trainer.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from transformers import TrainerCallback
from transformers.trainer_callback import ProgressCallback

from layerft.errors import LayerftError
from layerft.interrupts import stop_if_interrupted
from layerft.speed import NonFiniteLossGuard

log = logging.getLogger(__name__)

MetricSink = Callable[[dict[str, float], int], None]


class ForwardLogs(TrainerCallback):
    """Send the Trainer's logs to the tracker as `<stage>/<name>` (its own W&B reporting is off).

    Only what happens during training goes to the tracker's history: train()'s closing times
    include its evaluations and saves (the phase sends corrected ones), and the evaluations
    after `train_done` re-score the best checkpoint, which plotted at the last step would read
    as the model's final score (they reach the tracker's summary through the phase's metrics).
    """

    def __init__(self, stage: str, sink: MetricSink, lr: float) -> None:
        self.stage, self.sink, self.lr = stage, sink, lr
        self.train_done = False

    def on_log(self, args, state, control, logs=None, lr_scheduler=None, **kwargs):  # noqa: ANN001 - Trainer's hook
        if not logs or not state.is_world_process_zero:
            return
        numbers = {k: float(v) for k, v in logs.items() if isinstance(v, (int, float))}
        if "learning_rate" in numbers and lr_scheduler is not None:
            numbers["learning_rate"] = self.task_lr(numbers["learning_rate"], lr_scheduler)
        if self.train_done:
            numbers.pop("epoch", None)  # where training ended, not the best checkpoint's
        shown = ", ".join(f"{k}={v:.4g}" for k, v in numbers.items())
        if self.train_done:
            log.info("%s best checkpoint (step %s): %s", self.stage, state.best_global_step, shown)
        elif "train_runtime" in numbers:
            log.info("%s step %d: %s (the Trainer's times)", self.stage, state.global_step, shown)
        else:
            self.sink({f"{self.stage}/{k}": v for k, v in numbers.items()}, state.global_step)
            log.info("%s step %d: %s", self.stage, state.global_step, shown)

    def task_lr(self, logged: float, lr_scheduler) -> float:  # noqa: ANN001 - a torch scheduler
        """The task's lr as scheduled at the logged step: the Trainer logs the rate the first
        optimizer group applied, which under per-part multipliers is some part's (the embeddings'
        0.1x under discriminative); every group follows one schedule, so scale it back."""
        base = lr_scheduler.base_lrs[0]
        return self.lr * logged / base if base else logged


class PauseClock(TrainerCallback):
    """Seconds train() spends on dev evaluations and best-checkpoint saves instead of training.

    A save always follows an evaluation (save_steps == eval_steps), so it lasts from the end of
    the evaluation to `on_save`.
    """

    def __init__(self) -> None:
        self.seconds = 0.0
        self._evaluated_at: float | None = None

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):  # noqa: ANN001 - Trainer's hook
        self.seconds += float((metrics or {}).get("eval_runtime", 0.0))
        self._evaluated_at = time.perf_counter()

    def on_save(self, args, state, control, **kwargs):  # noqa: ANN001 - Trainer's hook
        if self._evaluated_at is not None:
            self.seconds += time.perf_counter() - self._evaluated_at
            self._evaluated_at = None


class StageProgress(ProgressCallback):
    """The Trainer's progress bar, labelled with the stage; log lines report the numbers."""

    def __init__(self, stage: str) -> None:
        super().__init__()
        self.stage = stage

    def on_train_begin(self, args, state, control, **kwargs):  # noqa: ANN001 - Trainer's hook
        super().on_train_begin(args, state, control, **kwargs)
        if self.training_bar is not None:
            self.training_bar.set_description(self.stage)

    def on_log(self, args, state, control, logs=None, **kwargs):  # noqa: ANN001 - Trainer's hook
        pass  # ForwardLogs writes them as log lines


class GuardCheckpoints(TrainerCallback):
    """Settle every pending loss and gradient-norm check before the Trainer logs, evaluates or
    saves, check each dev loss before its checkpoint can be saved, and under fp16 count the
    steps its loss scaler skipped."""

    # fp16's scaler halves its scale at each skipped step: 32 in a row take 2**16 to 2**-16, past
    # any overflow a finite gradient's scaling explains (its usual start skips a handful)
    MAX_SKIPPED = 32

    def __init__(self, guard: NonFiniteLossGuard) -> None:
        self.guard = guard
        # whether fp16's scaler skipped the step just taken: the Trainer's accelerator knows; the
        # hooks' `optimizer` is the one given to the Trainer, not accelerate's wrapper of it
        self.step_was_skipped: Callable[[], bool] = lambda: False
        self.skipped = 0  # optimizer steps fp16's loss scaler skipped in a row
        self.taken = False  # whether any step of the phase updated the weights

    def on_step_end(self, args, state, control, **kwargs):  # noqa: ANN001 - Trainer's hook
        if args.fp16:  # its scaler synced already to decide: reading its verdict costs nothing
            self._count_skips(state, self.step_was_skipped())
        if (
            control.should_log
            or control.should_evaluate
            or control.should_save
            or state.global_step >= state.max_steps
        ):
            self.guard.drain()

    def _count_skips(self, state, skipped: bool) -> None:  # noqa: ANN001 - the TrainerState
        """Stop when fp16's loss scaler skipped MAX_SKIPPED steps in a row, or every step of the
        phase: the gradients overflow at any scale, and the weights have not changed since."""
        self.skipped = self.skipped + 1 if skipped else 0
        self.taken = self.taken or not skipped
        step, last = state.global_step, state.global_step >= state.max_steps
        if self.skipped >= self.MAX_SKIPPED or (last and not self.taken):
            stage, first = self.guard.stage, step - self.skipped + 1
            # Fewer than MAX_SKIPPED: the scale may only have been too high still (it starts
            # at 2**16 and halves per skip), not the gradients infinite at every scale
            why = (
                "infinite or NaN gradients at every scale"
                if self.skipped >= self.MAX_SKIPPED
                else "gradients overflowing at each scale tried; it starts at 2**16 and halves "
                "at each skip, so a phase this short may end before a scale that fits"
            )
            raise LayerftError(
                f"{stage} stage: fp16's loss scaler skipped steps {first} to {step} ({why}), the "
                f"weights unchanged since; stopped (use trainer.precision=bf16 or fp32, or "
                f"{self.guard.hint})"
            )

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):  # noqa: ANN001 - Trainer's hook
        self.guard.check_dev_loss(float((metrics or {}).get("eval_loss", 0.0)), state.global_step)


class StopOnInterrupt(TrainerCallback):
    """Raise a remembered Ctrl-C that Python lost (`layerft/interrupts.py`) at the next training
    step or dev batch: the run stops within a step, not when its job ends."""

    def on_step_end(self, args, state, control, **kwargs):  # noqa: ANN001 - Trainer's hook
        stop_if_interrupted()

    def on_prediction_step(self, args, state, control, **kwargs):  # noqa: ANN001 - Trainer's hook
        stop_if_interrupted()
