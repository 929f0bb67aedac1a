"""On a CUDA device: the loss guard's no-sync path, the token counter, and a phase that learns in
bf16 with its batches pinned and copied to the GPU without blocking."""

from __future__ import annotations

import pytest
import torch
from easy_data import keyword_task
from test_training import LEARNS, train

from layerft import phase
from layerft.errors import LayerftError
from layerft.speed import NonFiniteLossGuard, TokenCounter, device_peak_flops

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


@pytest.fixture
def keyword(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    return keyword_task(tmp_path_factory.mktemp("keyword"))


def test_a_phase_learns_in_bf16_and_non_blocking_copies_change_no_number(
    tmp_path, keyword, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not torch.cuda.is_bf16_supported():
        pytest.skip(f"{torch.cuda.get_device_name()} has no bf16")
    bf16 = (*keyword, *LEARNS, "trainer.precision=bf16")
    learned, _ = train(tmp_path / "a", *bf16)
    # As on a CPU (test_training): 0.6 is beyond what a model that learned nothing reaches.
    assert learned["target/eval_accuracy"] >= 0.6
    if device_peak_flops(torch.cuda.get_device_name()) is not None:
        assert learned["target/mfu"] > 0

    original = phase.training_arguments

    def blocking(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        arguments = original(*args, **kwargs)
        assert arguments.dataloader_pin_memory and arguments.accelerator_config.non_blocking
        arguments.accelerator_config.non_blocking = False
        return arguments

    monkeypatch.setattr(phase, "training_arguments", blocking)
    before, _ = train(tmp_path / "b", *bf16)
    # The same steps on the same data; only atomics in the GPU's backward may reorder sums.
    assert learned["target/train_loss"] == pytest.approx(before["target/train_loss"], rel=0.02)
    assert learned["target/eval_accuracy"] == pytest.approx(
        before["target/eval_accuracy"], abs=0.05
    )
