"""On a CUDA device: the loss guard's no-sync path, and a phase that trains in bf16."""

from __future__ import annotations

import pytest
import torch

from layerft.errors import LayerftError
from layerft.speed import NonFiniteLossGuard, TokenCounter

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


def test_guard_names_the_first_non_finite_step_without_syncing_each_step() -> None:
    guard = NonFiniteLossGuard("target", "lower target_task.lr")
    losses = [torch.tensor(float(v), device="cuda") for v in (0.7, 0.6, 0.5, float("nan"), 0.4)]
    with pytest.raises(LayerftError, match=r"^target stage: training loss is nan at step 4;"):
        for step, loss in enumerate(losses, start=1):
            guard.record(loss * 1.0, step)
        guard.drain()


def test_guard_passes_finite_losses_and_wraps_its_ring() -> None:
    guard = NonFiniteLossGuard("injection", "")
    for step in range(1, 3 * NonFiniteLossGuard.RING):
        guard.record(torch.rand((), device="cuda"), step)
    guard.drain()


def test_token_counter_counts_real_and_padded_tokens_on_the_device() -> None:
    counter = TokenCounter()
    mask = torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0]], device="cuda")
    for _ in range(3):
        counter.count({"input_ids": torch.zeros_like(mask), "attention_mask": mask})
    assert counter.totals() == (15, 24)
