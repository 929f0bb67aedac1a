"""Peak memory of a training phase: the CUDA allocator's peak on GPU; on CPU the process's peak RSS,
from the kernel's high-water mark where it can be reset, else sampled.

Serves no config group: `layerft/phase.py` measures each phase with `PeakMemory`.
"""

from __future__ import annotations

import re
import threading
from pathlib import Path
from types import TracebackType

import psutil
import torch

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")  # writing "5" resets VmHWM (Linux >= 4.0)


def reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS counter of this process to its current RSS; False where the
    system has none or refuses (not Linux, an older kernel, a sandbox)."""
    try:
        _CLEAR_REFS.write_text("5")
        return kernel_peak_rss() is not None
    except OSError:
        return False


def kernel_peak_rss() -> int | None:
    """This process's peak RSS in bytes since start or the last reset (VmHWM), if the kernel says."""
    try:
        found = re.search(r"^VmHWM:\s+(\d+) kB", _STATUS.read_text(), re.MULTILINE)
    except OSError:
        return None
    return int(found[1]) * 1024 if found else None


class PeakMemory:
    """Context manager; after exit, `metrics()` gives peak RSS (and the CUDA peak on GPU).

    On Linux the kernel keeps the exact peak (VmHWM), reset on entry: no cost, nothing missed. Else
    RSS is sampled every `interval` seconds by a thread: activations live for the whole backward
    pass (hundreds of ms for a CPU step of MiniLM at batch 32), so sampling sees the peak closely.
    Sampling every 5 ms cost 4% of training speed on a 2-core CPU (BENCHMARKS.md): each wake-up
    preempts one of torch's compute threads.
    """

    def __init__(self, interval: float = 0.05) -> None:
        self.interval = interval
        self.peak_rss = 0
        self.start_rss = 0
        self.sampled = False  # True when the kernel's counter could not be used
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
        self.sampled = not reset_peak_rss()
        if self.sampled:
            self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.sampled:
            self._stop.set()
            self._thread.join()
        else:
            self.peak_rss = kernel_peak_rss() or self._process.memory_info().rss

    def metrics(self) -> dict[str, float]:
        """Peaks in MiB; `train_rss_growth_mb` is what training added on top of the loaded model."""
        result = {
            "peak_rss_mb": self.peak_rss / 2**20,
            "train_rss_growth_mb": (self.peak_rss - self.start_rss) / 2**20,
        }
        if torch.cuda.is_available():
            result["peak_cuda_mb"] = torch.cuda.max_memory_allocated() / 2**20
        return result
