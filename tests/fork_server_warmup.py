"""The last module the test fork server (`script_fork.PRELOAD`) imports, after the training stack:
what every forked `train.py`/`sweep.py` would otherwise redo in each child.

- layerft's metric modules, loaded once (`evaluate.load` copies, hashes and imports each one:
  about 0.3 s a metric in every run);
- `gc.freeze()`: the half a million objects of those imports leave the garbage collector's view,
  so each full collection (the Trainer makes one per `train()`, through accelerate's
  `free_memory`) takes microseconds instead of about 0.3 s.

Neither changes what a run computes: the metric modules are the ones the run would load, and
frozen objects are only never collected (they live as long as the server anyway).
"""

from __future__ import annotations

import gc

from layerft.metrics import METRICS, load_metric

for _name in METRICS:
    load_metric(_name)
gc.freeze()
