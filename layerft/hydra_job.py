"""A Hydra job as a layerft run (train.py's body, and each job of a multirun): its choices and
overrides recorded, its config checked and warned about, run in Hydra's output folder; in a
multirun a failure is recorded in the job folder instead of raised.

Serves the root config as Hydra composes it; `layerft/run.py` runs the checked `RunConfig`.
Called by train.py and sweep.py's jobs (`run_from_hydra`), and by the `local_parallel` launcher for
a job process that died (`record_dead_job`, which needs no training stack).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import sys
import traceback
import warnings
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from layerft.config import (
    GROUP_OF_KEY,
    RunConfig,
    check_option_names,
    data_files,
    resolve_config,
    to_run_config,
)
from layerft.config_overrides import check_overrides, override_key
from layerft.credentials import mask_credentials, without_secrets
from layerft.errors import user_errors_exit
from layerft.file_settings import file_settings, shadowed_options
from layerft.interrupts import interrupted
from layerft.layer_split import InjectedPolicy
from layerft.model_files import model_folder, planned_model_folder
from layerft.processes import is_main_process
from layerft.results import METRICS_FILE, metrics_stamp, read_record, record_failure
from layerft.run_record import FILE_SETTINGS_KEY, FINGERPRINT_KEY, RunRecord
from layerft.task import selection_key
from layerft.tuning_mode import TuningMethod
from layerft.unread_keys import unread_prefix, unread_settings

log = logging.getLogger(__name__)


def warn_inert_overrides(cfg: RunConfig, overrides: list[str]) -> None:
    """Say so when a command-line override sets a key this run's choices never read
    (`tuning_mode.lora.rank=4` under tuning_mode=full): the run is not the variant it names."""
    reasons: dict[str, list[str]] = {}  # why -> its overrides; one override, one (first) reason
    unread = unread_settings(dataclasses.asdict(cfg))
    for override in overrides:
        key = override_key(override)
        for prefix, why in unread:
            if unread_prefix(key, (prefix,)):
                reasons.setdefault(why, []).append(override)
                break
    for why, unused in reasons.items():
        verb = "changes" if len(unused) == 1 else "change"
        log.warning("%s, so %s %s nothing", why, " ".join(unused), verb)
    warn_split_multiplier(cfg, overrides)


def warn_split_multiplier(cfg: RunConfig, overrides: list[str]) -> None:
    """The split's lr_multiplier as an option file sets it (the command line's is warned about
    above): read by policy=scale alone, and under it 1 is policy=train."""
    if cfg.injection_task is None or cfg.tuning_mode.method == TuningMethod.frozen:
        return
    stage2, name = cfg.layer_split.stage2, cfg.layer_split.name
    given = any(override_key(o) == "layer_split.stage2.lr_multiplier" for o in overrides)
    if stage2.policy != InjectedPolicy.scale and stage2.lr_multiplier != 1 and not given:
        log.warning(
            "layer_split=%s sets stage2.lr_multiplier=%g, which policy=%s never reads (only "
            "policy=scale does)", name, stage2.lr_multiplier, stage2.policy.value,
        )  # fmt: skip
    elif stage2.policy == InjectedPolicy.scale and stage2.lr_multiplier == 1:
        log.warning(
            "layer_split=%s: policy=scale with lr_multiplier=1 trains the injected layers at the "
            "task's rate, as policy=train; set layer_split.stage2.lr_multiplier", name,
        )  # fmt: skip


def job_entries(cfg: DictConfig, hydra: DictConfig) -> dict[str, Any]:
    """What a job's record says before its config is checked: group choices, overrides (a
    credential's value masked), seed, sweep and the keys its grid or experiment file sets (a
    failure of an invalid config records these)."""
    multirun = hydra.mode == RunMode.MULTIRUN
    return {
        "run/choices": {
            override_key(group): str(option)
            for group, option in hydra.runtime.choices.items()
            if override_key(group) in GROUP_OF_KEY
        },
        "run/overrides": mask_credentials(list(hydra.overrides.task)),
        "run/seed": cfg.get("seed"),
        # the W&B group
        "run/sweep": hydra.runtime.choices.get("sweep") or (hydra.sweep.dir if multirun else None),
        FILE_SETTINGS_KEY: file_settings(cfg, hydra),
    }


def build_run_record(
    run_cfg: RunConfig, resolved: dict[str, Any], entries: dict[str, Any], convert: bool = True
) -> RunRecord:
    """The record of a checked config, from its `job_entries`; its model's folder found as the run
    finds it (a converted one written on first use), or, not `convert`, as a sweep's plan does."""
    task = run_cfg.target_task
    selection = (selection_key("target", task.best_metric), task.best_is_higher)
    find = model_folder if convert else planned_model_folder
    return RunRecord.of(
        resolved, entries["run/choices"], entries["run/overrides"], selection, entries["run/sweep"],
        data_files(run_cfg), find(run_cfg.model, Path(run_cfg.cache_dir).expanduser()),
        entries.get(FILE_SETTINGS_KEY),
    )  # fmt: skip


def record_dead_job(
    cfg: DictConfig,
    hydra: DictConfig,
    job_dir: Path,
    error: Exception,
    before: tuple[int, int] | None,
) -> None:
    """Record a multirun job whose process died without a result (killed, out of host memory) in
    its `failed.json`, as a failure inside the job is recorded: the sweep lists it as failed and
    a rerun runs it again. `cfg` is the job's task config, `hydra` its `hydra` node, `before` the
    job folder's metrics.json as it was when the process started (`metrics_stamp`). One that died
    after writing its own result (a new metrics.json, of its config) is finished, not failed:
    only warned about."""
    entries = job_entries(cfg, hydra)
    with contextlib.suppress(Exception):  # an invalid config: the entries above; its log says why
        record = build_run_record(to_run_config(cfg), resolve_config(cfg), entries, convert=False)
        entries = record.entries()
    fingerprint = entries.get(FINGERPRINT_KEY)
    recorded = _recorded_fingerprint(job_dir)
    if fingerprint is not None and metrics_stamp(job_dir) != before and recorded == fingerprint:
        log.warning("%s: its process died after writing its result, which is kept", job_dir)
        return
    record_failure(job_dir, entries, error)


def _recorded_fingerprint(job_dir: Path) -> str | None:
    try:
        record = read_record(job_dir)
    except (OSError, ValueError):  # none, or unreadable
        return None
    return record.get(FINGERPRINT_KEY) if isinstance(record, dict) else None


def run_from_hydra(cfg: DictConfig, isolate_failures: bool = False) -> dict[str, float] | None:
    """train.py's body: validate the composed config and run it in Hydra's output directory.

    `isolate_failures` (the jobs of a multirun): any error is recorded in the job folder's
    `failed.json` and None returned, so that the sweep goes on; KeyboardInterrupt still stops it.
    """
    hydra = HydraConfig.get()
    run_dir = Path(hydra.runtime.output_dir)
    # As Hydra wrote them for this job, before a second launch given its folder rewrites them
    # (run_claim): read before the imports below, which take seconds.
    subdir = hydra.output_subdir
    hydra_files = (
        {p.name: p.read_bytes() for p in (run_dir / subdir).glob("*.yaml")} if subdir else {}
    )
    # Here, not above: the training stack, which recording a dead job (record_dead_job) needs none of.
    from layerft.run import run

    quiet_libraries()
    overrides = list(hydra.overrides.task)
    sweep_dir = hydra.sweep.dir if hydra.mode == RunMode.MULTIRUN else None
    entries = job_entries(cfg, hydra)
    for line in shadowed_options(hydra):
        log.warning("%s", line)
    try:
        with user_errors_exit(reraise=isolate_failures):
            run_cfg = to_run_config(cfg)
            # Before the files' names: `target_task.name=foo` is the line's, not the file's
            check_overrides(cfg, overrides)
            check_option_names(cfg, hydra.runtime.choices)
            resolved = resolve_config(cfg)
            warn_inert_overrides(run_cfg, overrides)
            record = build_run_record(run_cfg, resolved, entries)
            entries = record.entries()
            metrics, result_dir = run(run_cfg, run_dir, resolved, record, sweep_dir, hydra_files)
    except Exception as err:
        if interrupted():  # set off by the stop: a data-loader worker the same SIGTERM ended
            raise KeyboardInterrupt from err
        if not isolate_failures:
            _raise_masked(err)
        if is_main_process():
            record_failure(run_dir, entries, err)
        return None
    if is_main_process():
        print(f"results: {result_dir / METRICS_FILE}")  # another job folder's, when found there
    return metrics


def _raise_masked(err: Exception) -> None:
    """Re-raise a single run's error for Hydra to print, unless its text holds a W&B key or hub
    token from the environment (a library echoed one): then print it masked, exit code 1."""
    text = "".join(traceback.format_exception(err)).rstrip()
    if without_secrets(text) == text:
        raise err
    print(without_secrets(text), file=sys.stderr)
    raise SystemExit(1) from None


def quiet_libraries() -> None:
    """Keep library chatter (load reports, progress bars, upstream deprecations) out of the log."""
    import datasets
    import transformers

    # peft reads this deprecated attribute wrapping a model (LoRA): not the user's to act on.
    warnings.filterwarnings(
        "ignore", message="`is_gradient_checkpointing` is deprecated", category=FutureWarning
    )
    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    datasets.disable_progress_bars()
    datasets.logging.set_verbosity_error()


def close_job_logs(how: str) -> str:
    """The log files a stopped job left on the root logger, closed with a line saying how it
    stopped (`how`, returned): Hydra's launcher detaches a job's handlers only once the job
    returns, so after a Ctrl-C or SIGTERM the sweep's own summary and tables went on into the
    stopped job's log, which said nothing of the stop."""
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, logging.FileHandler)]:
        handler.handle(root.makeRecord(__name__, logging.WARNING, __file__, 0, "job stopped: %s", (how,), None))  # fmt: skip
        root.removeHandler(handler)
        handler.close()
    return how
