"""Lines a mutation audit of `layerft/speed.py` and `layerft/heads.py` found unguarded: the loss
guard's GPU path (its ring of pinned host copies, read only once each copy has landed), token
totals summed over a distributed run, the host buffer's dtype, the Trainer's loss kwargs, and a
backbone with no encoder. No CUDA device is needed: a fake one stands in for pinned memory and
events, its copies landing in order when their events complete, as on one CUDA stream."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch
from test_audit_training2 import _phase_trainer

from layerft import speed
from layerft.errors import LayerftError
from layerft.heads import encoder_layers, truncate_encoder
from layerft.speed import NonFiniteLossGuard, TokenCounter, device_peak_flops

# --- a fake CUDA device for the loss guard -------------------------------------------------------


class FakeGPU:
    """Pinned host buffers and events: a non-blocking copy lands only when the first event
    recorded after it completes, and events complete in order (one stream)."""

    def __init__(self) -> None:
        self.in_flight: list[tuple[torch.Tensor, int, torch.Tensor]] = []
        self.events: list[FakeEvent] = []

    def empty(self, size: int, dtype: torch.dtype, pin_memory: bool) -> HostBuffer:
        assert pin_memory
        return HostBuffer(self, torch.zeros(size, dtype=dtype))  # 0.0: what a slot held before

    def event(self) -> FakeEvent:
        return FakeEvent(self)

    def catch_up(self) -> None:
        """The GPU finishes everything launched so far."""
        for event in self.events:
            event.complete()


class HostBuffer:
    def __init__(self, gpu: FakeGPU, data: torch.Tensor) -> None:
        self.gpu, self.data = gpu, data

    def __getitem__(self, slot: int) -> HostSlot:
        return HostSlot(self, slot)


class HostSlot:
    def __init__(self, buffer: HostBuffer, slot: int) -> None:
        self.buffer, self.slot = buffer, slot

    def copy_(self, value: torch.Tensor, non_blocking: bool) -> None:
        assert non_blocking
        self.buffer.gpu.in_flight.append((self.buffer.data, self.slot, value))

    def __float__(self) -> float:
        return float(self.buffer.data[self.slot])


class FakeEvent:
    def __init__(self, gpu: FakeGPU) -> None:
        self.gpu, self.done, self.copies = gpu, False, []

    def record(self) -> None:
        self.copies, self.gpu.in_flight = self.gpu.in_flight, []
        self.gpu.events.append(self)

    def complete(self) -> None:
        if not self.done:
            for data, slot, value in self.copies:
                data[slot] = value
            self.done = True

    def query(self) -> bool:
        return self.done

    def synchronize(self) -> None:
        for event in self.gpu.events[: self.gpu.events.index(self) + 1]:
            event.complete()


class CudaLoss:
    """A scalar loss on the (fake) GPU."""

    def __init__(self, value: float) -> None:
        self.value, self.device = value, SimpleNamespace(type="cuda")

    def detach(self) -> CudaLoss:
        return self

    def float(self) -> torch.Tensor:
        return torch.tensor(self.value, dtype=torch.float32)


class TorchWith:
    """`torch` as `layerft.speed` sees it, with some of its attributes replaced."""

    def __init__(self, **replaced: Any) -> None:
        self.replaced = replaced

    def __getattr__(self, name: str) -> Any:
        return self.replaced[name] if name in self.replaced else getattr(torch, name)


@pytest.fixture
def gpu(monkeypatch: pytest.MonkeyPatch) -> FakeGPU:
    fake = FakeGPU()
    monkeypatch.setattr(
        speed, "torch", TorchWith(empty=fake.empty, cuda=SimpleNamespace(Event=fake.event))
    )
    return fake


def record(guard: NonFiniteLossGuard, losses: list[float], first_step: int = 1) -> None:
    for step, value in enumerate(losses, start=first_step):
        guard.record(CudaLoss(value), step)  # type: ignore[arg-type]


# --- the loss guard on a GPU ----------------------------------------------------------------------


def test_the_guard_reads_a_loss_once_its_copy_has_landed_and_names_the_first_bad_step(
    gpu: FakeGPU,
) -> None:
    """Mutations: `while` -> `if` over completed copies (the backlog is settled one a step, so the
    NaN is found late), `popleft` -> `pop` (the newest settled first: step 3 named), no
    `_next_slot += 1` (every loss in slot 0), a new host buffer each step (copies lost)."""
    guard = NonFiniteLossGuard("target", "lower target_task.lr")
    record(guard, [0.5, float("nan"), float("nan")])  # the GPU is behind: nothing has landed
    gpu.catch_up()
    # Step 4 finds steps 1 to 4 landed and checks them in order: step 2 is the first NaN.
    with pytest.raises(LayerftError, match=r"^target stage: training loss is nan at step 2; "):
        record(guard, [0.4], first_step=4)


def test_drain_waits_for_every_copy_before_reading_it(gpu: FakeGPU) -> None:
    """Mutations: drain() or _settle() not synchronizing (a slot read before its copy landed
    holds 0.0, and the infinite loss of step 2 would reach the log)."""
    guard = NonFiniteLossGuard("injection", "lower injection_task.lr")
    record(guard, [0.5, float("inf")])
    with pytest.raises(LayerftError, match=r"^injection stage: training loss is inf at step 2; "):
        guard.drain()


@pytest.mark.parametrize("caught_up", [False, True])
def test_a_full_ring_settles_its_oldest_loss_before_reusing_its_slot(
    gpu: FakeGPU, caught_up: bool
) -> None:
    """Mutations: `len(pending) == RING` -> `> RING` (the step past a full ring waits for nothing
    and overwrites slot 0), and `% RING` -> `% (RING - 1)` (step RING's loss lands in step 1's
    slot, so step 1's NaN is read as step RING's 0.5)."""
    guard = NonFiniteLossGuard("target", "")
    ring = NonFiniteLossGuard.RING  # 64 pending copies, steps 1..64 in slots 0..63
    record(guard, [float("nan")] + [0.5] * (ring - 1))
    if caught_up:
        gpu.catch_up()
    with pytest.raises(
        LayerftError, match=r"^target stage: training loss is nan at step 1, before"
    ):
        record(guard, [0.5], first_step=ring + 1)


def test_a_gradient_norm_shares_the_loss_ring_and_is_read_only_once_landed(gpu: FakeGPU) -> None:
    """Every step's gradient norm goes through the loss's ring (no host sync per step) and is
    named as a norm at its own step. Mutations: the norm read at once (a slot not landed holds
    0.0: nothing raised at step 2's record), its check swapped for the loss's, step off by one."""
    guard = NonFiniteLossGuard("target", "lower target_task.lr")
    guard.record(CudaLoss(0.5), 1)  # type: ignore[arg-type]
    guard.record_grad_norm(CudaLoss(3.0), 1, clipped=True)  # type: ignore[arg-type]
    guard.record(CudaLoss(0.5), 2)  # type: ignore[arg-type]
    guard.record_grad_norm(CudaLoss(float("inf")), 2, clipped=False)  # type: ignore[arg-type]
    assert len(guard._pending) == 4  # nothing landed, nothing waited for
    gpu.catch_up()
    with pytest.raises(LayerftError) as caught:
        guard.record(CudaLoss(0.5), 3)  # type: ignore[arg-type]
    assert str(caught.value) == (
        "target stage: gradient norm is inf at step 2: unclipped, AdamW turns its update into "
        "zeros or NaN; stopped (lower target_task.lr)"
    )
    assert not guard._pending


def test_a_gradient_norm_given_as_a_float_is_checked_at_once() -> None:
    """DeepSpeed hands `_get_grad_norm` a float, no tensor to copy. Mutations: its check dropped,
    or the float sent on to the ring (a float has no device)."""
    guard = NonFiniteLossGuard("target", "lower target_task.lr")
    guard.record_grad_norm(2.5, 1, clipped=True)
    assert not guard._pending
    with pytest.raises(LayerftError) as caught:
        guard.record_grad_norm(float("nan"), 2, clipped=True)
    assert str(caught.value) == (
        "target stage: gradient norm is nan at step 2: clipping turns the gradient into zeros or "
        "NaN; stopped (lower target_task.lr)"
    )


def test_a_large_finite_loss_is_read_exactly_not_as_an_overflow(gpu: FakeGPU) -> None:
    """Mutation: a float16 host buffer (70,000 is above float16's largest finite value, 65,504,
    and would read as inf and stop a healthy phase, e.g. an MSE loss on unscaled targets)."""
    guard = NonFiniteLossGuard("target", "")
    record(guard, [70_000.0, 1.5])
    guard.drain()
    assert float(guard._host[0]) == 70_000.0  # exact in float32 (< 2**24)


# --- token totals over a distributed run -------------------------------------------------------


class FakeCounts:
    """The (real, padded) tensor `totals()` reduces, with the device it was moved to."""

    def __init__(self, values: list[float], device: str = "cpu") -> None:
        self.values, self.device = values, device

    def to(self, device: str) -> FakeCounts:
        return FakeCounts(self.values, device)

    def tolist(self) -> list[float]:
        return self.values


@pytest.mark.parametrize(("backend", "device"), [("nccl", "cuda"), ("gloo", "cpu")])
def test_token_totals_are_summed_over_every_process_on_the_backends_device(
    monkeypatch: pytest.MonkeyPatch, backend: str, device: str
) -> None:
    """Mutations: no all_reduce (one process's tokens reported for the run), the counts kept
    on the CPU under NCCL (which reduces CUDA tensors only), `counts.to(device)` not kept."""
    counter = TokenCounter()
    counter.count(
        {
            "input_ids": torch.zeros(2, 4),
            "attention_mask": torch.tensor([[1, 1, 1, 0], [1, 0, 0, 0]]),
        }
    )  # this process: 3 + 1 = 4 real of 2 * 4 = 8 padded
    reduced: list[str] = []

    def all_reduce(counts: FakeCounts) -> None:
        reduced.append(counts.device)
        counts.values = [counts.values[0] + 6.0, counts.values[1] + 12.0]  # the other process

    distributed = SimpleNamespace(
        is_available=lambda: True, is_initialized=lambda: True, get_backend=lambda: backend,
        all_reduce=all_reduce,
    )  # fmt: skip
    tensor = lambda values, dtype: FakeCounts(list(values))  # noqa: E731
    monkeypatch.setattr(speed, "torch", TorchWith(tensor=tensor, distributed=distributed))
    assert counter.totals() == (10, 20)  # (4 + 6, 8 + 12)
    assert reduced == [device]


# --- the peak table -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "tflops"),
    [
        # GB200 NVL72: 360 PFLOPS BF16 with sparsity over 72 GPUs = 5 per GPU, 2.5 dense; the
        # table read "B200" in the name (2.25), as it would have read "H200" in "GH200".
        ("NVIDIA GB200", 2500),
        # V100 datasheet tensor peaks: SXM2 125, PCIe 112, V100S PCIe 130; all matched "V100".
        ("Tesla V100-PCIE-32GB", 112),
        ("Tesla V100S-PCIE-32GB", 130),
        ("Tesla V100-SXM2-16GB", 125),
        ("NVIDIA B200", 2250),
    ],
)
def test_device_peaks_of_variants_whose_name_holds_another_gpus(name: str, tflops: int) -> None:
    """A variant named after another GPU must get its own datasheet peak (MFU divides by it)."""
    assert device_peak_flops(name) == tflops * 1e12


# --- heads --------------------------------------------------------------------------------------


def test_the_phase_trainer_passes_no_loss_kwargs_to_the_model(tmp_path: Path) -> None:
    """Mutation: `TaskModel.accepts_loss_kwargs = True` (the Trainer would then pass
    num_items_in_batch to the heads, skip dividing the loss by the accumulation steps, and
    multiply it by the number of processes under DDP: heads average their own losses)."""
    trainer = _phase_trainer(tmp_path)
    assert trainer.model_accepts_loss_kwargs is False


def test_a_backbone_with_no_encoder_is_refused_by_name() -> None:
    """Mutations: `getattr(backbone, "encoder", None)` -> `backbone.encoder`, and
    truncate_encoder reading `backbone.encoder.layer` itself (an AttributeError, not the error
    naming the supported encoders)."""
    expected = (
        "backbone Linear has no encoder.layer list; layerft supports BERT-, RoBERTa- and "
        "XLM-R-style encoders"
    )
    with pytest.raises(LayerftError) as info:
        encoder_layers(torch.nn.Linear(2, 2))
    assert str(info.value) == expected
    with pytest.raises(LayerftError) as info:
        truncate_encoder(torch.nn.Linear(2, 2), 1)  # type: ignore[arg-type]
    assert str(info.value) == expected
