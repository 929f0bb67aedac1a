"""Peak memory of a training phase: the CUDA allocator's peak on GPU, sampled process RSS on CPU."""

from __future__ import annotations

import threading
from types import TracebackType

import psutil
import torch


class PeakMemory:
    """Context manager; after exit, `metrics()` gives peak RSS (and the CUDA peak on GPU).

    RSS is sampled every `interval` seconds by a thread: activations live for the whole backward
    pass (hundreds of ms for a CPU step of MiniLM at batch 32), so sampling sees the peak closely.
    Sampling every 5 ms instead cost 4% of training speed on a 2-core CPU (BENCHMARKS.md): each
    wake-up preempts one of torch's compute threads.
    """

    def __init__(self, interval: float = 0.05) -> None:
        self.interval = interval
        self.peak_rss = 0
        self.start_rss = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._process = psutil.Process()

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak_rss = max(self.peak_rss, self._process.memory_info().rss)
            self._stop.wait(self.interval)

    def __enter__(self) -> PeakMemory:
        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
        self.start_rss = self._process.memory_info().rss  # model, data and libraries already loaded
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()

    def metrics(self) -> dict[str, float]:
        """Peaks in MiB; `train_rss_growth_mb` is what training added on top of the loaded model."""
        result = {
            "peak_rss_mb": self.peak_rss / 2**20,
            "train_rss_growth_mb": (self.peak_rss - self.start_rss) / 2**20,
        }
        if torch.cuda.is_available():
            result["peak_cuda_mb"] = torch.cuda.max_memory_allocated() / 2**20
        return result
