"""Peak memory of a phase (layerft/memory.py): the kernel's exact peak where it can be reset, a
sampling thread elsewhere; both see memory training adds and later frees."""

from __future__ import annotations

import time

import numpy as np
import pytest

from layerft import memory
from layerft.memory import PeakMemory

MIB = 2**20
needs_kernel_peak = pytest.mark.skipif(
    not memory.reset_peak_rss(), reason="no resettable peak RSS here (/proc/self/clear_refs)"
)


def touch(mib: int) -> np.ndarray:
    return np.ones(mib * MIB // 8)  # written, so resident


@needs_kernel_peak
def test_the_kernel_peak_sees_a_brief_allocation_and_needs_no_thread() -> None:
    touch(400)  # an earlier peak, before the phase: must not count
    with PeakMemory() as peak:
        block = touch(200)
        del block  # freed at once: a sampler waking every 50 ms would likely miss it
    assert not peak.sampled and not peak._thread.is_alive() and peak._thread.ident is None
    growth = peak.metrics()["train_rss_growth_mb"]
    assert 190 <= growth < 300, growth


def test_without_the_kernel_peak_a_thread_samples_what_is_held(monkeypatch) -> None:
    monkeypatch.setattr(memory, "reset_peak_rss", lambda: False)
    with PeakMemory(interval=0.01) as peak:
        block = touch(200)
        time.sleep(0.2)  # held across many samples
        del block
    assert peak.sampled and not peak._thread.is_alive()
    growth = peak.metrics()["train_rss_growth_mb"]
    assert 190 <= growth < 300, growth
