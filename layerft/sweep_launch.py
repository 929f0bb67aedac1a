"""A grid as one Hydra multirun in this process, and the task function and callback its jobs run:
`job` (each job of `python sweep.py <grid>` and of `train.py -m`: a failure is recorded in the job
folder instead of stopping the sweep) and `FailedJobs` (train.py -m's summary, conf/config.yaml).
`layerft/sweep.py` decides what to launch and reports what came of it.

Serves the `sweep` config group (`run_grid`) and the root config (`job` runs each composed job;
conf/config.yaml lists `FailedJobs` in `hydra.callbacks`).
"""

from __future__ import annotations

import logging
import shutil
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import hydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from hydra_plugins.layerft_launcher.config import LocalParallelConf
from hydra_plugins.layerft_launcher.gpu_slots import planned_slots
from hydra_plugins.layerft_launcher.skipping_sweeper import store_skipping_sweeper
from layerft.config import register_configs
from layerft.config_errors import log_file_error_line
from layerft.errors import LayerftError, error_line, hydra_raises, traceback_wanted
from layerft.file_io import file_error
from layerft.hydra_job import close_job_logs
from layerft.interrupts import interrupted, remembered_interrupts, stopped_how
from layerft.results import FAILED_FILE
from layerft.sweep_grid import (
    CONF,
    SWEEPER_CHOSEN,
    Combination,
    grid_config,
    register_resolvers,
    swept_keys,
)
from layerft.sweep_hydra import launch_overrides, overlaps, split_overrides
from layerft.sweep_records import HYDRA_SUBDIR
from layerft.sweep_status import LeftOut, failed_error
from layerft.task import selection_key

log = logging.getLogger(__name__)

register_resolvers()  # also in a launcher's job process, which unpickles `job` from this module
register_configs()


def job(cfg: DictConfig) -> float | None:
    """One job of a sweep (the Hydra task function of sweep.py, and of `train.py -m`): train.py's
    run, but a failure is recorded in the job folder instead of stopping the sweep."""
    from layerft.hydra_job import run_from_hydra

    if interrupted():  # a Ctrl-C that Python lost while the last job ended: this one never starts
        _remove_unstarted(_job_folder())
        raise KeyboardInterrupt
    metrics = run_from_hydra(cfg, isolate_failures=True)
    if metrics is None:
        return None
    return metrics.get(selection_key("target", cfg.target_task.best_metric))


def _job_folder() -> Path | None:
    """The folder Hydra made for the job it is starting (None outside a Hydra job)."""
    from hydra.core.hydra_config import HydraConfig

    return Path(HydraConfig.get().runtime.output_dir) if HydraConfig.initialized() else None


def _remove_unstarted(folder: Path | None) -> None:
    """Remove the folder Hydra made for a job that will not start (a table would list it as
    unfinished) while it holds only Hydra's files and empty logs; an earlier attempt's stays."""
    if folder is None or not folder.is_dir():
        return
    entries = list(folder.iterdir())
    logs = [path for path in entries if path.suffix == ".log" and not path.stat().st_size]
    if any(path.name != HYDRA_SUBDIR and path not in logs for path in entries):
        return
    for path in logs:
        path.unlink()
    shutil.rmtree(folder / HYDRA_SUBDIR, ignore_errors=True)
    try:
        folder.rmdir()  # not if anything appeared meanwhile (another sweep on the folder)
    except OSError:
        return
    log.info("removed %s: its job never started (interrupted)", folder)


class FailedJobs(Callback):
    """`train.py -m`'s summary (a Hydra callback, conf/config.yaml): when the multirun ends, one line
    per job whose failure it recorded (a `failed.json` new or rewritten since it started, so an
    earlier launch's failures in a reused folder do not count); `failed` tells train.py to exit 1."""

    failed: ClassVar[list[Path]] = []  # the last multirun's failed job folders

    def __init__(self) -> None:
        self.before: dict[Path, int] = {}

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        self.before = failure_stamps(Path(config.hydra.sweep.dir))

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        now = failure_stamps(sweep_dir)
        FailedJobs.failed = sorted(
            p.parent for p, stamp in now.items() if self.before.get(p) != stamp
        )
        for folder in FailedJobs.failed:
            log.error("job failed: %s (%s)", failed_error(folder), folder / FAILED_FILE)
        if FailedJobs.failed:
            log.error("%d job(s) of %s failed; the others ran", len(FailedJobs.failed), sweep_dir)


def failure_stamps(sweep_dir: Path) -> dict[Path, int]:
    """Each job's `failed.json` in the sweep folder and its modification time (ns)."""
    return {path: path.stat().st_mtime_ns for path in sweep_dir.glob(f"*/{FAILED_FILE}")}


# What places a job's folder or names it: sweep.py sets each (hydra_args), and its plan, resume
# and tables find a job in the folder named after its swept settings. The values are why.
JOB_FOLDER_KEYS = {
    "hydra.sweep.dir": "sweep.py picks the sweep folder with --dir <folder>",
    "hydra.sweep.subdir": "sweep.py names each job's folder after its swept settings, where its "
    "plan, resume and tables look for it",
    "hydra.job.config.override_dirname": "sweep.py names each job's folder after its swept "
    "settings, where its plan, resume and tables look for it",
    "hydra.job.name": "sweep.py names every job 'sweep' (its log is sweep.log)",
    "hydra.output_subdir": "sweep.py finds each job's config, started or finished, in its "
    ".hydra folder (a killed job, a refused folder's differences)",
}
# (conf/config.yaml sets it after any grid or option: only the command line changes it)
CHDIR = (
    "hydra.job.chdir=true: sweep.py plans every job from the folder it runs in (a relative "
    "cache_dir or data path would be read from each job's folder instead); leave it false"
)


def check_hydra_overrides(overrides: Sequence[str]) -> None:
    """sweep.py places and names the job folders itself (`--dir`, then one folder per swept
    setting): an override of those settings would send the jobs elsewhere, or every job into one
    folder, while the plan, the summary and the tables read the folders sweep.py named. It also
    runs the grid with its own sweeper, which another one would be replaced by without a word."""
    parsed, _ = split_overrides(overrides)
    for override in parsed:
        # the key it sets, without the `+`, `++` or `~` that get_key_element() keeps (the
        # refusals let `++hydra.sweep.subdir=x` through)
        key = override.key_or_group
        if why := next((w for k, w in JOB_FOLDER_KEYS.items() if overlaps(key, k)), None):
            raise LayerftError(f"{key}: {why}")
        if key == "hydra.job.chdir" and (
            override.is_sweep_override() or override.value() not in (False, None)
        ):  # null: Hydra 1.2+ reads it as false
            raise LayerftError(CHDIR)
        if key == "hydra/sweeper" or overlaps(key, "hydra.sweeper._target_"):
            raise LayerftError(SWEEPER_CHOSEN.format(where="hydra/sweeper"))


def check_launcher(grid: str, overrides: Sequence[str]) -> DictConfig:
    """Refuse the launcher settings its launch would refuse (local_parallel's `n_jobs` and `gpus`),
    before the grid is planned: a dry run that passes is a run whose launcher starts. Returns
    the launcher's node."""
    launcher = grid_config(grid, overrides).hydra.launcher
    if launcher.get("_target_") == LocalParallelConf._target_:
        planned_slots(launcher.n_jobs, launcher.gpus)
    return launcher


def hydra_args(grid: str, overrides: Sequence[str], sweep_dir: Path, force: bool) -> list[str]:
    """The multirun's command line: the grid, its folder, job folders named by swept settings."""
    return [
        "-m",
        f"sweep={grid}",
        *launch_overrides(sweep_dir, overrides, swept_keys(grid, overrides)),
        *(["force_rerun=true"] if force else []),
        *overrides,
    ]


def run_grid(
    grid: str, overrides: Sequence[str], sweep_dir: Path, force: bool, left: LeftOut
) -> str | None:
    """Run the multirun in this process (Hydra's launcher from the config: sequential by default),
    launching none of the combinations `left` out (finished, repeats of another job's config,
    blocked: their folder holds another config's result, or finished on files changed since).

    Whatever stops the launch (a job folder that cannot be made, a job whose failure escaped it,
    Ctrl-C, SIGTERM) comes back as one line, not raised: the jobs that finished are still
    summarised and tabulated. The launcher refusing its settings (`hydra.launcher.n_jobs=0`) is raised."""
    register_configs()
    argv = sys.argv
    sweeper = _skipping_sweeper(force, left)
    sys.argv = [argv[0], *hydra_args(grid, overrides, sweep_dir, force), sweeper]
    try:
        with hydra_raises(), remembered_interrupts():  # hydra_raises: no traceback
            hydra.main(version_base="1.3", config_path=str(CONF), config_name="config")(job)()
            if interrupted():  # lost where it landed, after the last job had started
                return stopped_how()
    except KeyboardInterrupt:  # the launcher has stopped the running jobs
        return close_job_logs(stopped_how())
    except LayerftError:  # the launcher refused its settings (gpu_slots), before any job: bad
        raise  # input, exit 2; a job records its own errors (run_from_hydra)
    # SystemExit: a sys.exit in Hydra or in a job (code 0 is no error)
    except (Exception, SystemExit) as err:
        # after a stop: what it set off (a data-loader worker the same SIGTERM ended)
        return close_job_logs(stopped_how() if interrupted() else _stopped_by(err))
    finally:
        sys.argv = argv
    return None


def _skipping_sweeper(force: bool, left: LeftOut) -> str:
    """The sweeper override that launches none of the combinations given, each spelled as the
    sweeper's jobs are: Hydra hands it the overrides that are not under `hydra`, and hydra_args
    adds `force_rerun=true` to every job when forced."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper

    parser = OverridesParser.create()
    forced: list[str] = []
    if force:
        [[forced]] = BasicSweeper.split_arguments(
            parser.parse_overrides(["force_rerun=true"]), None
        )

    def listed(combinations: Sequence[Combination]) -> list[list[str]]:
        return [
            [o.input_line for o in parser.parse_overrides(c.overrides) if not o.is_hydra_override()]
            + forced
            for c in combinations
        ]

    repeats = [repeat for repeat, _ in left.repeats]
    return store_skipping_sweeper(
        listed(left.finished), listed(repeats), listed(left.blocked), listed(left.stale)
    )


def _stopped_by(err: BaseException) -> str | None:
    """The one line that says what stopped a launch (None: a clean sys.exit)."""
    if isinstance(err, SystemExit) and not err.code:
        return None
    if traceback_wanted():
        traceback.print_exc()
    if isinstance(err, OSError) and err.filename:  # a job folder Hydra could not make
        return str(file_error("create", err.filename, err))
    return log_file_error_line(err) or error_line(err)  # a job's sweep.log Hydra could not open
