"""Schema of `hydra/launcher=local_parallel`, registered when Hydra scans its plugins."""

# No `from __future__ import annotations`: Hydra's plugin scan runs this module before it is in
# sys.modules, where @dataclass looks up string annotations.
from dataclasses import dataclass

from hydra.core.config_store import ConfigStore


@dataclass
class LocalParallelConf:
    """Run a multirun's jobs on this machine, each in a fresh Python process, `n_jobs` at a time."""

    _target_: str = "hydra_plugins.layerft_launcher.local_parallel.LocalParallelLauncher"
    # Jobs running at once. null: one per GPU in `gpus`, or 1 without GPUs (a CPU job already
    # uses every core). Each job's torch gets its own thread count (at most the CPUs) / n_jobs
    # threads unless OMP_NUM_THREADS is set.
    n_jobs: int | None = None
    # GPUs to pin jobs to, one running job per GPU (its CUDA_VISIBLE_DEVICES). null: the
    # entries of CUDA_VISIBLE_DEVICES if set, else every GPU torch sees; []: no pinning.
    gpus: list[int] | None = None


ConfigStore.instance().store(
    group="hydra/launcher", name="local_parallel", node=LocalParallelConf, provider="layerft"
)
