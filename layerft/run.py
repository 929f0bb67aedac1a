"""One checked combination end to end: [stage 1] -> transplant -> stage 2 -> record (its config
composed and checked by `layerft/hydra_job.py`, both stages' data read by `layerft/stage_data.py`,
each stage's model built by `layerft/stage_models.py`).

Serves the root config (`RunConfig`): every group's settings meet here, each passed to the module
of its group."""

from __future__ import annotations

import logging
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch

from layerft import predictions
from layerft.callbacks import MetricSink
from layerft.config import RunConfig
from layerft.data import TaskData
from layerft.errors import LayerftError, error_line
from layerft.file_io import run_dir_error, run_dir_errors
from layerft.forced_rerun import noted_forced_rerun
from layerft.heads import encoder_layers
from layerft.hub_data import hub_data_entries
from layerft.interrupts import interrupted, stopped_how
from layerft.layer_split import InjectedWeights, extract_injected
from layerft.lr_schedule import part_lr_multipliers
from layerft.model_files import hub_entries, model_file_digests, model_folder
from layerft.parts import layer_part
from layerft.phase import Phase, remove_unfinished_checkpoints, run_phase
from layerft.processes import cpu_threads, device_name, is_main_process, rank, world_size
from layerft.results import (
    FAILED_FILE,
    HistoryFile,
    check_still_ours,
    read_finished,
    write_metrics,
)
from layerft.run_claim import Claim, claimed_folder
from layerft.run_folder import (
    Result,
    config_lock,
    explained,
    hydra_record,
    keep_hydra_files,
    new_folder_hint,
    previous_result,
)
from layerft.run_record import CPU_THREADS_KEY, DEVICE_KEY, RunRecord
from layerft.run_tracker import open_tracker
from layerft.stage1 import Stage1Outcome, obtain_stage1
from layerft.stage1_key import Stage1Key
from layerft.stage1_store import Stage1Store
from layerft.stage_data import StageData, load_stage_data
from layerft.stage_models import build_injection_model, build_target_model
from layerft.tracker import remove_stale_runs, wandb_runs
from layerft.trainer_config import Precision

log = logging.getLogger(__name__)
# The stages' names: Phase.stage, their metrics' prefix, their checkpoint folders.
STAGES = ("injection", "target")


def train_stages(
    cfg: RunConfig, data: StageData, run_dir: Path, sink: MetricSink
) -> tuple[dict[str, float], Stage1Outcome | None]:
    """Stage 1 (if any, trained or reused) into the lower layers, then stage 2 on a fresh
    backbone: all metrics, and where stage 1 came from."""
    metrics: dict[str, float] = {}
    injected, outcome = None, None
    if data.injection is not None:
        outcome = stage1_for(cfg, data.injection, run_dir, sink)
        injected = outcome.result.injected
        metrics.update(outcome.result.metrics)
    metrics.update(run_target(cfg, data.target, injected, run_dir, sink))
    return metrics, outcome


def stage1_for(cfg: RunConfig, data: TaskData, run_dir: Path, sink: MetricSink) -> Stage1Outcome:
    """This run's stage 1: the stored result of its key, or trained now (and stored). A reused
    result's logged steps are replayed into this run's history and tracker."""
    store = Stage1Store(Path(cfg.cache_dir).expanduser()) if cfg.reuse_stage1 else None

    def train() -> tuple[InjectedWeights, dict[str, float], list[dict[str, float]]]:
        history: list[dict[str, float]] = []

        def recording(metrics: dict[str, float], step: int) -> None:
            history.append({"step": step, **metrics})
            sink(metrics, step)

        injected, metrics = run_injection(cfg, data, run_dir, recording)
        return injected, metrics, history

    ranks = (rank(), world_size())
    # Hashed once per process (the run's record did it): here only the files' sizes and mtimes.
    model = model_file_digests(model_folder(cfg.model, Path(cfg.cache_dir).expanduser()))
    outcome = obtain_stage1(store, Stage1Key.of(cfg, data.content, model), train, run_dir, ranks)
    if ranks[1] > 1 and torch.distributed.is_initialized():
        torch.distributed.barrier()  # stage 2 starts together, after the first process stored stage 1
    if not outcome.trained:
        for line in outcome.result.history:
            sink({k: v for k, v in line.items() if k != "step"}, int(line["step"]))
    return outcome


def run_injection(
    cfg: RunConfig, data: TaskData, run_dir: Path, sink: MetricSink
) -> tuple[InjectedWeights, dict[str, float]]:
    """Stage 1: train embeddings, the lower layers and a head on the injection task."""
    assert cfg.injection_task is not None
    started = time.perf_counter()
    model, num_lower = build_injection_model(cfg)
    lr_multipliers = part_lr_multipliers(
        cfg.injection_lr_schedule,
        len(encoder_layers(model.backbone)),
        injected=[layer_part(i) for i in range(num_lower)],
    )
    phase = Phase(
        stage="injection", task=cfg.injection_task, schedule=cfg.injection_lr_schedule,
        lr_multipliers=lr_multipliers, trainer=cfg.trainer, seed=cfg.seed, output_dir=run_dir,
        sink=sink,
    )  # fmt: skip
    metrics = run_phase(phase, model, data)
    metrics["injection/num_injected_layers"] = float(num_lower)
    injected = extract_injected(model, cfg.layer_split.stage1, num_lower)
    metrics["injection/stage_seconds"] = time.perf_counter() - started  # build, train, evaluate
    return injected, metrics


def run_target(
    cfg: RunConfig,
    data: TaskData,
    injected: InjectedWeights | None,
    run_dir: Path,
    sink: MetricSink,
) -> dict[str, float]:
    """Stage 2: fresh backbone and head, injected layers transplanted, tuning mode and policy applied."""
    started = time.perf_counter()
    model, lr_multipliers = build_target_model(cfg, injected)
    phase = Phase(
        stage="target", task=cfg.target_task, schedule=cfg.lr_schedule,
        lr_multipliers=lr_multipliers, trainer=cfg.trainer, seed=cfg.seed, output_dir=run_dir,
        sink=sink, mode_scale=cfg.tuning_mode.scale_setting(),
        mode_init=cfg.tuning_mode.init_setting(),
    )  # fmt: skip
    metrics = run_phase(phase, model, data)
    metrics["target/stage_seconds"] = time.perf_counter() - started  # build, train, evaluate
    return metrics


def run(
    cfg: RunConfig,
    run_dir: Path,
    resolved: dict[str, Any],
    record: RunRecord,
    sweep_dir: str | None,
    hydra_files: dict[str, bytes] | None = None,
) -> tuple[dict[str, float], Path]:
    """Run one combination unless its finished metrics exist: in this directory, or (in a
    multirun, `sweep_dir` its folder; None for a single run) in another job folder of the same
    sweep. `force_rerun` redoes it. Returns the metrics and the folder holding them.
    `hydra_files`: the job's Hydra files as it started (run_claim; none outside Hydra)."""
    replacing = False  # a forced rerun of a finished result: its files stay until this one ends
    if cfg.force_rerun:  # a finished result of this config is redone; another config's never
        try:
            replacing = (
                read_finished(run_dir, record.fingerprints, new_folder_hint(sweep_dir)) is not None
            )
        except LayerftError as refused:
            raise explained(refused, run_dir, resolved) from refused
    elif (previous := previous_result(run_dir, record, sweep_dir, resolved)) is not None:
        return previous

    def finished() -> Result | None:  # by a repeat of this config started beside this job
        return None if cfg.force_rerun else previous_result(run_dir, record, sweep_dir, resolved)

    with config_lock(sweep_dir, record, finished) as served:
        if served is not None:  # its result is this job's, as if it had run first
            return served
        noted = replacing and is_main_process()  # what it leaves if it dies: forced_rerun.py
        hint = new_folder_hint(sweep_dir)
        claimed = claimed_folder(run_dir, hint, is_main_process(), hydra_files)
        with (
            claimed as claim,
            noted_forced_rerun(run_dir, hydra_record(run_dir)) if noted else nullcontext(),
        ):
            return train_and_record(cfg, run_dir, resolved, record, replacing, claim)


def train_and_record(
    cfg: RunConfig, run_dir: Path, resolved: dict[str, Any], record: RunRecord, replacing: bool,
    claim: Claim | None = None,
) -> Result:  # fmt: skip
    """Train both stages and record the result in `run_dir` (the first process: metrics.json, the
    kept Hydra files, the tracker run); `replacing`: a forced rerun of a finished result there;
    `claim`: this run's hold on the folder (run_claim)."""
    claim = claim or Claim(run_dir, new_folder_hint(None))
    cfg.trainer.check_device()  # before minutes of data loading and model building
    data = load_stage_data(cfg)
    # The commit of each hub data set as just read: a job of another config or sweep that loads
    # the data set online while this one trains would move the cache's `refs/main` on
    data_commits = hub_data_entries(
        {"injection_task": cfg.injection_task, "target_task": cfg.target_task}
    )
    with run_dir_errors(run_dir):  # a read-only or full disk, a file in the way: one line
        if not replacing and is_main_process():
            remove_unfinished_checkpoints(run_dir, STAGES)
        earlier_runs = wandb_runs(run_dir) if replacing else []
        tracker = open_tracker(cfg, run_dir, resolved, record, keep_earlier=replacing)
        history = HistoryFile(run_dir)

        def sink(metrics: dict[str, float], step: int) -> None:
            history.log(metrics, step)
            tracker.log(metrics, step)

        recorded = False  # metrics.json written: the result is finished whatever stops it now
        try:
            metrics, stage1 = train_stages(cfg, data, run_dir, sink)
            if stage1 is not None:
                tracker.stage1(stage1, stage1.produced_in(run_dir))
            if is_main_process():
                check_still_ours(run_dir, record, claim.hint)
                claim.put_back_hydra_files()  # before they are kept beside the metrics
                extra = {"run/stage1": stage1.entry() if stage1 else {"status": "none"}}
                extra |= hub_entries(cfg.model)  # downloaded by now
                extra[DEVICE_KEY] = device_name(cfg.trainer.precision == Precision.bf16)
                extra |= data_commits
                if (threads := cpu_threads()) is not None:  # float sums' order on a CPU
                    extra[CPU_THREADS_KEY] = threads
                keep_hydra_files(run_dir)  # first: a kept copy is never older than the metrics
                history.publish()
                predictions.publish(run_dir)
                log.info("results: %s", write_metrics(run_dir, metrics, record, extra))
                recorded = True
                (run_dir / FAILED_FILE).unlink(missing_ok=True)  # an earlier attempt's failure
                remove_stale_runs(run_dir, earlier_runs, "the result this run replaced")
            tracker.summarize(metrics)
        except BaseException as err:
            stopped = isinstance(err, KeyboardInterrupt) or interrupted()  # or what it set off
            if recorded and stopped:  # its rerun reuses it, logging no W&B run: this one is it
                tracker.summarize(metrics)
                tracker.finish()
                raise
            why = stopped_how() if stopped else error_line(run_dir_error(run_dir, err))
            tracker.finish(why)  # closed even when a stage crashes, saying why as failed.json will
            raise
        tracker.finish()
    return metrics, run_dir
