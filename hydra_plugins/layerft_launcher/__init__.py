"""layerft's Hydra plugins: the launcher `hydra/launcher=local_parallel` (config.py,
local_parallel.py, gpu_slots.py, dead_job.py) and sweep.py's sweeper (skipping_sweeper.py).

Hydra finds them because `hydra_plugins` is a namespace package: this folder joins it from the
repository root (the script's folder when running `python train.py`) or from site-packages.
"""
