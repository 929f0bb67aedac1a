"""The tracker run of a train.py run: the config it shows (less the settings the run never reads),
its name, and opening it in the first process.

Serves the `tracker` config group for `layerft/run.py`; `layerft/tracker.py` talks to W&B.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.types import RunMode
from omegaconf import OmegaConf

from layerft.config import RunConfig
from layerft.config_overrides import override_key
from layerft.fingerprint import RESULT_NEUTRAL_KEYS
from layerft.processes import is_main_process
from layerft.run_record import RunRecord
from layerft.sweep_settings import effective_settings, job_settings
from layerft.task import selection_key
from layerft.tracker import TrackedRun, remove_stale_runs, start_tracker
from layerft.tracker_backends import NoTracker, Tracker


def open_tracker(
    cfg: RunConfig, run_dir: Path, resolved: dict[str, Any], record: RunRecord, keep_earlier: bool
) -> Tracker:
    """The first process's tracker run, after removing what an unfinished attempt left (unless
    `keep_earlier`: a finished result's runs, removed only once its rerun finishes); others get
    none."""
    if not is_main_process():
        return NoTracker()
    if not keep_earlier:
        remove_stale_runs(run_dir)
    selection = {record.selection_metric: record.higher_is_better}
    if cfg.injection_task is not None:
        task = cfg.injection_task
        selection[selection_key("injection", task.best_metric)] = task.best_is_higher
    choices = effective_settings(record.choices).items()
    config = tracked_config(resolved, record.unread)
    config["layerft/combination"] = record.seedless_fingerprint  # its seeds': group them by it
    config["layerft/selection_metric"] = record.selection_metric
    tracked = TrackedRun(
        name=run_name(record, sweep_fixed_keys()),
        config=config,
        choices={g: o for g, o in choices if g not in RESULT_NEUTRAL_KEYS},
        group=record.sweep,
        job_type="injection+target" if cfg.injection_task is not None else "target",
        selection=selection,
    )
    return start_tracker(cfg.tracker, run_dir, tracked)


def tracked_config(resolved: dict[str, Any], unread: tuple[str, ...]) -> dict[str, Any]:
    """The config a tracker shows: without the settings the run never reads and its fingerprint
    leaves out (`unread`, RunRecord.unread; a node for a key ending in "."), as its table row
    and name are. Its one run serves every job of the grid that differs only in them (a baseline
    every layer split, full fine-tuning every LoRA rank): in W&B it belongs to none of their
    values, rather than to whichever the grid listed first. Nor the settings that cannot change
    a result (RESULT_NEUTRAL_KEYS: `force_rerun`, `cache_dir`, the tracker's own), which split
    runs of one config when W&B groups them by config."""
    tracked = copy.deepcopy(resolved)
    for key in (*unread, *RESULT_NEUTRAL_KEYS):
        *parents, leaf = key.rstrip(".").split(".")
        node = tracked
        for part in parents:
            node = node.get(part) if isinstance(node, dict) else None
        # a disabled stage 1 stays null; a neutral key goes, null (progress_bar: auto) or not
        if isinstance(node, dict) and (node.get(leaf) is not None or key in RESULT_NEUTRAL_KEYS):
            node.pop(leaf, None)
    return tracked


NAMED_CHOICES = ("injection_task", "target_task", "layer_split", "tuning_mode")


MAX_RUN_NAME = 128  # W&B refuses a longer run name


def sweep_fixed_keys() -> frozenset[str]:
    """The settings a multirun gives every job alike, which a run's name lists after those it
    sweeps: under sweep.py, the keys its jobs' folder names leave out; under `train.py -m`, its
    command line's overrides that sweep nothing; none outside a multirun."""
    if not HydraConfig.initialized():
        return frozenset()
    hydra = HydraConfig.get()
    excluded = hydra.job.config.override_dirname.exclude_keys  # Hydra's keys: `+a.b`
    if excluded or hydra.mode != RunMode.MULTIRUN:
        return frozenset(override_key(key) for key in excluded)
    return unswept_keys(Path(hydra.sweep.dir) / "multirun.yaml")


def unswept_keys(multirun_yaml: Path) -> frozenset[str]:
    """The keys a `train.py -m` command line sets to one value, read from the `multirun.yaml` its
    sweeper wrote before launching the jobs (a job's own overrides hold one value of each swept
    key, so they cannot tell: two learning rates under long fixed settings were one run name,
    the rate counted in "+N more"). None where the file is missing."""
    if not multirun_yaml.is_file():
        return frozenset()
    overrides = list(OmegaConf.load(multirun_yaml).hydra.overrides.task)
    parsed = OverridesParser.create().parse_overrides(overrides)
    return frozenset(override_key(o.input_line) for o in parsed if not o.is_sweep_override())


def run_name(record: RunRecord, fixed: frozenset[str] = frozenset()) -> str:
    """The tracker's name of a run: its main choices, then every other setting its command line
    changes (`target_task.lr=1e-3`, `model=tiny`; not the seed, the sweep's name, nor a
    result-neutral key such as a credential, nor one the run never reads), those its grid sweeps
    before those it sets alike for every job (`fixed`), then the seed: runs of one sweep that
    differ only in an override differ by name. Settings that would pass MAX_RUN_NAME are counted
    (`+2 more`)."""
    given = {override_key(o) for o in record.overrides}
    settings = job_settings(record.choices, record.overrides, record.unread)
    extra = [
        f"{k}={v}"
        for k, v in sorted(settings.items(), key=lambda item: item[0] in fixed)  # stable
        if k in given and k not in (*NAMED_CHOICES, "sweep")
    ]
    choices = effective_settings(record.choices)  # a baseline names no split (tracked_config)
    head = [*(choices.get(g, "-") for g in NAMED_CHOICES)]
    seed = f"s{record.seed}"
    for shown in range(len(extra), -1, -1):
        more = [f"+{len(extra) - shown} more"] if shown < len(extra) else []
        name = " ".join([*head, *extra[:shown], *more, seed])
        if len(name) <= MAX_RUN_NAME:
            return name
    return name[: MAX_RUN_NAME - len(seed) - 1] + " " + seed
