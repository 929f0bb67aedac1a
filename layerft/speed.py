"""What a training phase counts while it runs: tokens seen, non-finite losses, and the device's peak.

Both counters work without a host synchronisation per step: on a GPU a `.item()` in the step
stalls the CPU until the GPU has caught up, so the next step's kernels are launched late.

Serves no config group: `layerft/phase.py` and `layerft/phase_trainer.py` count with these.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

import torch

from layerft.errors import LayerftError

# Dense bf16/fp16 tensor-core peaks (no sparsity), in FLOP/s, from the vendors' datasheets. More
# specific names come first: "H100 PCIe" must match before "H100".
DEVICE_PEAK_FLOPS: tuple[tuple[str, float], ...] = (
    ("H100 PCIe", 756e12),
    ("H100 NVL", 835e12),
    ("H100", 989e12),  # SXM (e.g. "NVIDIA H100 80GB HBM3")
    ("H200 NVL", 835e12),
    ("GH200", 989e12),  # before "H200", which its name holds
    ("H200", 989e12),  # SXM
    ("GB200", 2500e12),  # before "B200": 360 PFLOP/s with sparsity over an NVL72's 72 GPUs
    ("B200", 2250e12),
    ("A100", 312e12),
    ("L40S", 362e12),
    ("L40", 181e12),
    ("L4", 121e12),
    ("RTX 4090", 165e12),
    ("V100-PCIE", 112e12),  # fp16 only, as every V100
    ("V100S", 130e12),  # PCIe
    ("V100", 125e12),  # SXM2
)


def device_peak_flops(device_name: str) -> float | None:
    """The dense bf16 peak of a GPU named `device_name`, or None if layerft does not know it."""
    for key, flops in DEVICE_PEAK_FLOPS:
        if key in device_name:
            return flops
    return None


def model_flops_utilization(
    total_params: int, padded_tokens: int, seconds: float, peak_flops: float, world: int = 1
) -> float:
    """Model FLOPs (6 per parameter per padded token: forward 2, backward 4) per second per device,
    over the device's peak."""
    return 6 * total_params * padded_tokens / seconds / (peak_flops * world)


class TokenCounter:
    """Real (unpadded) and padded tokens of the training batches a process has seen."""

    def __init__(self) -> None:
        self.padded = 0
        self._real: torch.Tensor | int = 0  # stays on the batch's device until read

    def count(self, batch: Mapping[str, Any]) -> None:
        """Add one batch. On a GPU the batch is there already: its real-token count stays a device
        tensor until `totals()` reads it, so counting adds no host sync. Every encoder input
        counts: `input_ids` and, for a bi-encoder's second sentence, `input_ids_b`."""
        for key, ids in batch.items():
            if not key.startswith("input_ids"):
                continue
            mask = batch.get("attention_mask" + key.removeprefix("input_ids"))
            self.padded += ids.numel()
            self._real = self._real + (mask.sum() if mask is not None else ids.numel())

    def totals(self) -> tuple[int, int]:
        """(real, padded) tokens over every process of a distributed run."""
        counts = torch.tensor([int(self._real), self.padded], dtype=torch.float64)
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            backend = torch.distributed.get_backend()
            device = "cuda" if backend == "nccl" else "cpu"
            counts = counts.to(device)
            torch.distributed.all_reduce(counts)
        real, padded = counts.tolist()
        return int(real), int(padded)


# A copy in flight: (step, ring slot, its event, the check of the value copied into that slot)
Pending = tuple[int, int, Any, Callable[[int, float], None]]


class NonFiniteLossGuard:
    """Stops a phase at the first non-finite training loss, naming the stage and step.

    On a GPU each step's loss is copied into pinned host memory without blocking, and read once
    the copy's event has completed: a few steps late at most, and the CPU never waits for the
    GPU. `drain()` waits for every pending copy; the phase calls it before anything logs,
    evaluates or saves, so no NaN reaches a log, a checkpoint or metrics.json.
    """

    RING = 64  # pending copies; the GPU is never that many steps behind the CPU

    def __init__(
        self, stage: str, hint: str, unchanged_hint: str = "", unchanged_steps: int = 1
    ) -> None:
        # `hint`: what to change when updates broke the weights; `unchanged_hint`: when the
        # model as built already gives a non-finite loss (before any update); `unchanged_steps`:
        # the steps whose loss is the model as built's (2 when step 1 runs at lr 0)
        self.stage, self.hint, self.unchanged_hint = stage, hint, unchanged_hint or hint
        self.unchanged_steps = unchanged_steps
        self._host: torch.Tensor | None = None
        self._pending: deque[Pending] = deque()
        self._next_slot = 0

    def record(self, loss: torch.Tensor, step: int) -> None:
        """Note the loss of optimizer step `step` (1-based); raise if it is known to be non-finite."""
        self._record(loss, step, self._check)

    def record_grad_norm(self, norm: torch.Tensor | float, step: int, clipped: bool) -> None:
        """Note the gradient norm of optimizer step `step`, through the loss's ring: every step's,
        not only a logged one's, without a host sync either."""
        if isinstance(norm, (int, float)):  # DeepSpeed's, already a float
            self.check_grad_norm(norm, step, clipped)
            return
        self._record(norm, step, lambda at, value: self.check_grad_norm(value, at, clipped))

    def _record(self, value: torch.Tensor, step: int, check: Callable[[int, float], None]) -> None:
        if value.device.type != "cuda":
            check(step, float(value))
            return
        if self._host is None:
            self._host = torch.empty(self.RING, dtype=torch.float32, pin_memory=True)
        if len(self._pending) == self.RING:
            self._settle(self._pending.popleft(), wait=True)
        slot = self._next_slot % self.RING
        self._next_slot += 1
        self._host[slot].copy_(value.detach().float(), non_blocking=True)
        event = torch.cuda.Event()
        event.record()
        self._pending.append((step, slot, event, check))
        while self._pending and self._pending[0][2].query():
            self._settle(self._pending.popleft(), wait=False)

    def check_dev_loss(self, loss: float, step: int) -> None:
        """Stop when a dev evaluation's loss is not finite: the last update broke the weights,
        even if no training step has run on them yet."""
        if not math.isfinite(loss):
            if step < self.unchanged_steps:  # before training (epochs=0), or after a step at lr 0
                raise LayerftError(
                    f"{self.stage} stage: dev loss is {loss} before any update{self._lr_0(step)}; "
                    f"stopped ({self.unchanged_hint})"
                )
            raise LayerftError(
                f"{self.stage} stage: dev loss is {loss} after step {step}: the weights diverged; "
                f"stopped ({self.hint})"
            )

    def check_grad_norm(self, norm: Any, step: int, clipped: bool) -> None:
        """Stop when a step's gradient norm is not finite: clipping scales such a gradient to
        zeros (or NaN), and unclipped (`max_grad_norm=0`, whose norm the Trainer computes too) AdamW's
        second moment overflows, its update zero (or NaN); so the step trains nothing, the loss
        may stay finite, the run learning nothing without a word (a `lora.alpha` of 1e30)."""
        if isinstance(norm, (int, float)) and not math.isfinite(norm):
            self._pending.clear()
            why = "clipping turns the gradient" if clipped else "unclipped, AdamW turns its update"
            raise LayerftError(
                f"{self.stage} stage: gradient norm is {norm} at step {step}: {why} into zeros "
                f"or NaN; stopped ({self.hint})"
            )

    @staticmethod
    def _lr_0(done: int) -> str:
        """Why no update has acted after `done` steps: the first runs at lr 0 (warmup's start)."""
        return " (step 1 ran at lr 0, warmup's start)" if done else ""

    def drain(self) -> None:
        """Check every loss still in flight (one synchronisation)."""
        while self._pending:
            self._settle(self._pending.popleft(), wait=True)

    def _settle(self, pending: Pending, wait: bool) -> None:
        step, slot, event, check = pending
        if wait:
            event.synchronize()
        assert self._host is not None
        check(step, float(self._host[slot]))

    def _check(self, step: int, value: float) -> None:
        if not math.isfinite(value):
            self._pending.clear()
            if step <= self.unchanged_steps:  # of the weights as built: no update has acted yet
                raise LayerftError(
                    f"{self.stage} stage: training loss is {value} at step {step}, before any "
                    f"update{self._lr_0(step - 1)}; stopped ({self.unchanged_hint})"
                )
            raise LayerftError(
                f"{self.stage} stage: training loss is {value} at step {step}; stopped ({self.hint})"
            )
