"""Token counts, the loss guard on CPU tensors, and the MFU formula and peak table."""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch

from layerft.errors import LayerftError
from layerft.speed import (
    NonFiniteLossGuard,
    TokenCounter,
    device_peak_flops,
    model_flops_utilization,
)


def test_token_counter_counts_real_and_padded_tokens() -> None:
    counter = TokenCounter()
    counter.count(
        {
            "input_ids": torch.zeros(2, 4),
            "attention_mask": torch.tensor([[1, 1, 1, 0], [1, 0, 0, 0]]),
        }
    )
    counter.count({"input_ids": torch.zeros(1, 3)})  # no mask: every token is real
    assert counter.totals() == (7, 11)


def test_token_counter_counts_both_sentences_of_a_biencoder_batch() -> None:
    counter = TokenCounter()
    counter.count(
        {
            "input_ids": torch.zeros(2, 3),
            "attention_mask": torch.tensor([[1, 1, 1], [1, 1, 0]]),
            "input_ids_b": torch.zeros(2, 4),
            "attention_mask_b": torch.tensor([[1, 1, 1, 1], [1, 0, 0, 0]]),
            "labels": torch.zeros(2),
        }
    )
    assert counter.totals() == (10, 14)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_guard_stops_at_the_step_whose_loss_is_not_finite(bad: float) -> None:
    guard = NonFiniteLossGuard("injection", "lower injection_task.lr")
    guard.record(torch.tensor(0.5), 1)
    with pytest.raises(
        LayerftError, match=rf"^injection stage: training loss is {bad} at step 2; "
    ):
        guard.record(torch.tensor(bad), 2)


def test_mfu_of_a_bert_base_step_against_the_h100_peak() -> None:
    # The figure: BERT-base (110M) at 128 tokens, 4,756 samples/s on an H100 is 40%.
    peak = device_peak_flops("NVIDIA H100 80GB HBM3")
    assert peak == 989e12
    mfu = model_flops_utilization(110_000_000, 4756 * 128, 1.0, peak)
    assert mfu == pytest.approx(6 * 110e6 * 4756 * 128 / 989e12) and 0.40 < mfu < 0.41
    assert model_flops_utilization(110_000_000, 4756 * 128 * 2, 1.0, peak, world=2) == mfu


def test_peak_table_matches_specific_names_first() -> None:
    assert device_peak_flops("NVIDIA H100 PCIe") == 756e12
    assert device_peak_flops("NVIDIA H200") == 989e12
    assert device_peak_flops("NVIDIA H200 NVL") == 835e12
    assert device_peak_flops("NVIDIA A100-SXM4-80GB") == 312e12
    assert device_peak_flops("Some Future GPU") is None


def test_the_profiled_gpu_busy_time_counts_kernels_not_the_spans_of_annotations() -> None:
    # The GPU-side spans of each step (ProfilerStep*) and of the optimizer (Optimizer.step#...)
    # cover kernels counted already: the H100 call of 2026-12-05 reported 141 ms busy in 73 ms
    # steps, and 13.4 ms (not 12.3) at batch 32 once the steps' spans were left out.
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from throughput import device_busy_us

    cuda, cpu = torch.autograd.DeviceType.CUDA, torch.autograd.DeviceType.CPU

    def event(key: str, us: float, device: Any = cuda, annotation: bool = False) -> Any:
        return SimpleNamespace(
            key=key, self_device_time_total=us, device_type=device, is_user_annotation=annotation
        )

    averages = [
        event("ProfilerStep*", 3_007, annotation=True),
        event("Optimizer.step#AdamW.step", 47, annotation=True),
        event("Optimizer.step#AdamW.step", 0, device=cpu, annotation=True),
        event("aten::mm", 624, device=cpu),  # the op on the host: its kernels are counted below
        event("nvjet_sm90_tst_256x128", 218),
        event("Memcpy HtoD (Pinned -> Device)", 5),
    ]
    assert device_busy_us(averages) == 223


def throughput_refusal(monkeypatch: pytest.MonkeyPatch, capsys: Any, *argv: str) -> str:
    """The one line benchmarks/throughput.py exits 2 with, run with `argv` (measuring fails)."""
    import throughput

    monkeypatch.setattr(sys, "argv", ["throughput.py", *argv])
    monkeypatch.setattr(throughput, "_pipelines", lambda *a: pytest.fail("measured"))
    with pytest.raises(SystemExit) as exit_:
        throughput.main()
    assert exit_.value.code == 2
    return capsys.readouterr().err.splitlines()[-1]


def test_throughput_refuses_profiling_runs_too_short_before_measuring(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Else profile_run raised only after every timed run: a GPU call's minutes for a traceback.
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    import throughput

    monkeypatch.setattr(throughput, "compose_config", lambda *a: pytest.fail("composed"))
    assert throughput_refusal(monkeypatch, capsys, "--steps", "6", "--profile", "p.txt") == (
        "throughput.py: error: --profile needs --steps 7 or more, got 6"
    )


def test_throughput_refuses_profiling_an_epoch_too_short_before_measuring(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Without --steps a run is one epoch: 20 examples at batch 4 are 5 steps, which profile_run
    # refused only after every timed run.
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    import throughput

    cfg = SimpleNamespace(
        cache_dir="cache", model=None, target_task=None, seed=0,
        trainer=SimpleNamespace(resolved_pad_multiple=lambda: None),
    )  # fmt: skip
    monkeypatch.setattr(throughput, "quiet_libraries", lambda: None)
    monkeypatch.setattr(throughput, "compose_config", lambda *a: cfg)
    monkeypatch.setattr(throughput, "load_tokenizer", lambda model: None)
    monkeypatch.setattr(
        throughput, "load_task_data", lambda *a, **k: SimpleNamespace(train=[0] * 20)
    )
    argv = ("--batch-sizes", "2", "4", "--profile", "p.txt")
    assert throughput_refusal(monkeypatch, capsys, *argv) == (
        "throughput.py: error: --profile needs runs of 7 steps or more; one epoch of 20 examples "
        "at batch 4 is 5 (set --steps)"
    )
