"""A sweep's W&B results run: one run in the sweep's group (job type `aggregate`) holding the
results table and plots, logged by `sweep.py <grid>` and updated by `sweep.py aggregate`.

Serves the `tracker` config group as the grid's jobs read it (`tracker=wandb`); with any other
backend nothing is logged.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf, open_dict

from layerft.config import to_run_config
from layerft.config_errors import CONFIG_ERRORS
from layerft.credentials import mask_credentials
from layerft.errors import LayerftError, error_line
from layerft.file_io import write_json_atomic
from layerft.sweep_grid import CONF, register_resolvers
from layerft.sweep_hydra import hydra_config_set, launch_overrides, split_overrides
from layerft.tracker_backends import import_wandb

if TYPE_CHECKING:
    from layerft.aggregate import Aggregate
    from layerft.tracker import TrackerConfig

log = logging.getLogger(__name__)


RESULTS_RUN_FILE = ".results_run.json"  # the grid and tracker of the folder's W&B results run


def relog_results_table(sweep_dir: Path, result: Aggregate) -> None:
    """`sweep.py aggregate`: the new table into the folder's W&B results run, as the grid's last
    `sweep.py <grid>` logged it (RESULTS_RUN_FILE); a results run logged by an earlier layerft,
    which wrote no such file, keeps its table (warned)."""
    from layerft.tracker import TrackerConfig, wandb_runs

    path = sweep_dir / RESULTS_RUN_FILE
    if not path.exists():
        if wandb_runs(sweep_dir):
            log.warning(
                "%s: its W&B results run still holds the table of the last `python sweep.py "
                "<grid>` call, which recorded no %s (rerun that call to update it)",
                sweep_dir,
                RESULTS_RUN_FILE,
            )
        return
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
        schema = OmegaConf.structured(TrackerConfig)
        tracker = OmegaConf.to_object(OmegaConf.merge(schema, stored["tracker"]))
        grid, overrides = str(stored["grid"]), [str(o) for o in stored["overrides"]]
    except (OSError, ValueError, KeyError, TypeError, *CONFIG_ERRORS) as err:
        raise LayerftError(
            f"{path}: not the record of a W&B results run ({error_line(err)}); delete it to "
            "leave that run's table as it is"
        ) from None
    publish_results_table(grid, overrides, tracker, sweep_dir, result)  # type: ignore[arg-type]


def log_results_table(
    grid: str, overrides: Sequence[str], sweep_dir: Path, result: Aggregate
) -> None:
    """With tracker=wandb, one more W&B run in the sweep's group (job type `aggregate`) holding
    the results table as a W&B Table and the plots as images.

    Every call logs to the same run (its id is the sweep folder's), and the folders of earlier
    calls are removed once this one finishes: a sweep resumed ten times has one results run.
    """
    from hydra.core.global_hydra import GlobalHydra

    from layerft.tracker import TrackerBackend

    _, fixed = split_overrides(overrides)
    register_resolvers()  # the job folder's name, in launch_overrides
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        # as its jobs were launched: a `${hydra:...}` value (`tracker.group=${hydra:job.name}`)
        # resolves as theirs did (those of one job: as in a job that swept nothing)
        args = [*launch_overrides(sweep_dir, overrides, ()), f"sweep={grid}"]
        args += [o.input_line for o in fixed if o.input_line]
        full = compose("config", overrides=args, return_hydra_config=True)
        cfg = copy.deepcopy(full)  # as run_job hands a job its config: without the `hydra` node
        with open_dict(cfg):
            del cfg["hydra"]
        with hydra_config_set(full):
            tracker_cfg = to_run_config(cfg).tracker
    GlobalHydra.instance().clear()
    if tracker_cfg.backend != TrackerBackend.wandb:
        return
    masked = mask_credentials(overrides)
    tracker = OmegaConf.to_container(OmegaConf.structured(tracker_cfg), enum_to_str=True)
    write_json_atomic(
        sweep_dir / RESULTS_RUN_FILE, {"grid": grid, "overrides": masked, "tracker": tracker}
    )
    publish_results_table(grid, masked, tracker_cfg, sweep_dir, result)


def publish_results_table(
    grid: str, overrides: list[str], tracker_cfg: TrackerConfig, sweep_dir: Path, result: Aggregate
) -> None:
    """Log the table and plots into the folder's W&B results run (`overrides` masked)."""
    from layerft.tracker import TrackedRun, remove_stale_runs, start_tracker, wandb_runs

    # What the table's difference columns compare with, and the grid's combinations it lacks (not
    # run), which differ between aggregations.
    config = {
        "sweep": grid,
        "overrides": overrides,
        "baseline": result.baseline,
        "heatmap": list(result.heatmap) if result.heatmap else None,
        "not_run": result.not_run,
        # Started, no record (killed, still running): in no row, and not in not_run either
        "unfinished": [_under(path, sweep_dir) for path in result.unfinished],
        "best_of": result.best_of or None,
    }
    wandb = import_wandb()
    earlier = wandb_runs(sweep_dir)
    run_id = "results-" + hashlib.sha256(str(sweep_dir.resolve()).encode()).hexdigest()[:16]
    tracked = TrackedRun(f"{grid} results", config, group=grid, job_type="aggregate", run_id=run_id)
    tracker = start_tracker(tracker_cfg, sweep_dir, tracked)
    tables = {"results": (result.columns, result.rows)}
    if result.best is not None:  # best.csv
        tables["best"] = (result.best.columns, result.best.rows)
    logged: dict[str, Any] = {
        name: wandb.Table(columns=columns, data=[[row.get(c) for c in columns] for row in rows])
        for name, (columns, rows) in tables.items()
    }
    logged |= {f"plots/{p.stem}": wandb.Image(str(p)) for p in result.paths if p.suffix == ".png"}
    tracker.run.log(logged)  # type: ignore[attr-defined]
    tracker.finish()
    remove_stale_runs(sweep_dir, earlier, whose="earlier aggregations")


def _under(path: Path, sweep_dir: Path) -> str:
    """A job folder as results.md names it: relative to the sweep folder."""
    return str(path.relative_to(sweep_dir)) if path.is_relative_to(sweep_dir) else str(path)
