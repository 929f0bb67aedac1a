"""One combination end to end: compose -> validate -> [stage 1] -> transplant -> stage 2 -> record."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import datasets
import transformers
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from layerft.callbacks import MetricSink
from layerft.config import GROUP_SCHEMAS, RunConfig, drop_disabled_stages, to_run_config
from layerft.data import TaskData, load_task_data
from layerft.errors import LayerftError
from layerft.heads import TaskModel, build_task_model, encoder_layers
from layerft.layer_split import (
    InjectedWeights,
    apply_injected_policy,
    extract_injected,
    frozen_injected_layers,
    injected_parts,
    prepare_injection_model,
    resolve_num_lower,
    transplant,
)
from layerft.lr_schedule import combine_multipliers, part_lr_multipliers
from layerft.model import check_max_length, load_backbone, load_tokenizer
from layerft.parts import layer_part, set_trainable
from layerft.phase import run_phase
from layerft.results import (
    HistoryFile,
    RunRecord,
    read_finished,
    run_dir_errors,
    write_metrics,
)
from layerft.task import TaskConfig
from layerft.tracker import NoTracker, Tracker, remove_stale_runs, start_tracker
from layerft.tuning_mode import apply_tuning_mode

log = logging.getLogger(__name__)


def seed_everything(seed: int) -> None:
    """The one place the run's seed reaches torch, numpy and random (before each model is built)."""
    transformers.set_seed(seed)


@dataclass(frozen=True)
class StageData:
    """Both stages' checked, tokenized data (no stage-1 data without an injection task)."""

    target: TaskData
    injection: TaskData | None


def load_stage_data(cfg: RunConfig) -> StageData:
    """Both tasks' data, read and checked first: bad data costs no stage-1 run and no tracker run."""
    cache_dir = Path(cfg.cache_dir).expanduser()
    for task, group in ((cfg.target_task, "target_task"), (cfg.injection_task, "injection_task")):
        if task is not None:
            check_max_length(cfg.model, task, group, cache_dir)
    tokenizer = load_tokenizer(cfg.model, cache_dir)
    cache = cache_dir / "tokenized"
    target = _load(cfg, cfg.target_task, "target_task", tokenizer, cache)
    if cfg.injection_task is None:
        return StageData(target, None)
    return StageData(target, _load(cfg, cfg.injection_task, "injection_task", tokenizer, cache))


def train_stages(
    cfg: RunConfig, data: StageData, run_dir: Path, sink: MetricSink
) -> dict[str, float]:
    """Stage 1 (if any) into the lower layers, then stage 2 on a fresh backbone; all metrics."""
    metrics: dict[str, float] = {}
    injected = None
    if data.injection is not None:
        injected, stage1 = run_injection(cfg, data.injection, run_dir, sink)
        metrics.update(stage1)
    metrics.update(run_target(cfg, data.target, injected, run_dir, sink))
    return metrics


def _load(cfg: RunConfig, task: TaskConfig, group: str, tokenizer: Any, cache: Path) -> TaskData:
    return load_task_data(
        task, group, tokenizer, cache, cfg.trainer.resolved_pad_multiple(), seed=cfg.seed
    )


def _fresh_model(cfg: RunConfig, task: TaskConfig) -> TaskModel:
    seed_everything(cfg.seed)
    return build_task_model(load_backbone(cfg.model, Path(cfg.cache_dir).expanduser()), task)


def build_injection_model(cfg: RunConfig) -> tuple[TaskModel, int]:
    """The stage-1 model, shaped for the split, with only its stage-1 parts trainable."""
    assert cfg.injection_task is not None
    model = _fresh_model(cfg, cfg.injection_task)
    split = cfg.layer_split.stage1
    num_lower = resolve_num_lower(split, len(encoder_layers(model.backbone)))
    set_trainable(model, prepare_injection_model(model, split, num_lower))
    return model, num_lower


def build_target_model(
    cfg: RunConfig, injected: InjectedWeights | None
) -> tuple[TaskModel, dict[str, float]]:
    """The stage-2 model (injected weights transplanted, tuning mode, the split's policy on top)
    and its per-part lr multipliers (the schedule's times the split's)."""
    model = _fresh_model(cfg, cfg.target_task)
    depth = len(encoder_layers(model.backbone))
    if injected is None:
        apply_tuning_mode(model, cfg.tuning_mode, frozen_layers=set())
        return model, part_lr_multipliers(cfg.lr_schedule, depth, injected=[])
    split = cfg.layer_split.stage2
    transplant(model, injected, split)
    apply_tuning_mode(model, cfg.tuning_mode, frozen_injected_layers(split, injected))
    parts = injected_parts(split, len(injected.layers))
    policy = apply_injected_policy(model, split, parts)
    return model, combine_multipliers(part_lr_multipliers(cfg.lr_schedule, depth, parts), policy)


def run_injection(
    cfg: RunConfig, data: TaskData, run_dir: Path, sink: MetricSink
) -> tuple[InjectedWeights, dict[str, float]]:
    """Stage 1: train embeddings, the lower layers and a head on the injection task."""
    assert cfg.injection_task is not None
    model, num_lower = build_injection_model(cfg)
    lr_multipliers = part_lr_multipliers(
        cfg.injection_lr_schedule,
        len(encoder_layers(model.backbone)),
        injected=[layer_part(i) for i in range(num_lower)],
    )
    metrics = run_phase(
        "injection", model, data, cfg.injection_task, cfg.injection_lr_schedule, lr_multipliers,
        cfg.trainer, cfg.seed, run_dir, sink,
    )  # fmt: skip
    metrics["injection/num_injected_layers"] = float(num_lower)
    return extract_injected(model, cfg.layer_split.stage1, num_lower), metrics


def run_target(
    cfg: RunConfig,
    data: TaskData,
    injected: InjectedWeights | None,
    run_dir: Path,
    sink: MetricSink,
) -> dict[str, float]:
    """Stage 2: fresh backbone and head, injected layers transplanted, tuning mode and policy applied."""
    model, lr_multipliers = build_target_model(cfg, injected)
    return run_phase(
        "target", model, data, cfg.target_task, cfg.lr_schedule, lr_multipliers,
        cfg.trainer, cfg.seed, run_dir, sink,
    )  # fmt: skip


def is_main_process() -> bool:
    """Under torchrun every process runs train.py; only the first one records (files, tracker)."""
    return int(os.environ.get("RANK", "0")) == 0


def run(
    cfg: RunConfig,
    run_dir: Path,
    resolved: dict[str, Any],
    record: RunRecord,
    sweep_dir: str | None,  # the multirun's folder (the W&B group); None for a single run
) -> dict[str, float]:
    """Run one combination unless this directory already holds its finished metrics."""
    dir_key = "hydra.sweep.dir" if sweep_dir else "hydra.run.dir"
    finished = read_finished(run_dir, record.fingerprint, dir_key)
    if finished is not None:
        log.info("already finished, not rerun: %s", run_dir / "metrics.json")
        return finished
    data = load_stage_data(cfg)
    with run_dir_errors(run_dir):  # a read-only or full disk, a file in the way: one line
        tracker = open_tracker(cfg, run_dir, resolved, record, sweep_dir)
        history = HistoryFile(run_dir)

        def sink(metrics: dict[str, float], step: int) -> None:
            history.log(metrics, step)
            tracker.log(metrics, step)

        failed = True
        try:
            metrics = train_stages(cfg, data, run_dir, sink)
            if is_main_process():
                log.info("results: %s", write_metrics(run_dir, metrics, record))
            tracker.summarize(metrics)
            failed = False
        finally:
            tracker.finish(failed)  # closed even when a stage crashes
    return metrics


def open_tracker(
    cfg: RunConfig,
    run_dir: Path,
    resolved: dict[str, Any],
    record: RunRecord,
    sweep_dir: str | None,
) -> Tracker:
    """The first process's tracker run, after removing what an unfinished attempt left; others get none."""
    if not is_main_process():
        return NoTracker()
    remove_stale_runs(run_dir)
    parts = ("injection_task", "target_task", "layer_split", "tuning_mode")
    name = " ".join(record.choices.get(g, "-") for g in parts)
    return start_tracker(
        cfg.tracker, run_dir, resolved, record.choices, f"{name} s{cfg.seed}", sweep_dir
    )


def quiet_libraries() -> None:
    """Keep library chatter (load reports, progress bars) out of the run log."""
    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    datasets.disable_progress_bars()
    datasets.logging.set_verbosity_error()


@contextlib.contextmanager
def user_errors_exit() -> Iterator[None]:
    """Turn a LayerftError into one line on stderr and exit code 2 (LAYERFT_TRACEBACK=1 shows it all)."""
    try:
        yield
    except LayerftError as err:
        if os.environ.get("LAYERFT_TRACEBACK"):
            raise
        log.error("%s", err)
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(2) from None


def resolve_config(cfg: DictConfig) -> dict[str, Any]:
    """The composed config as plain data, a disabled stage 1 as null: what is hashed and tracked."""
    resolved = OmegaConf.to_container(drop_disabled_stages(cfg), resolve=True)
    assert isinstance(resolved, dict)
    return resolved


def warn_unused_stage1_overrides(cfg: RunConfig, overrides: list[str]) -> None:
    """Say so when `injection_task.*` overrides meet `injection_task=none` (allowed, so that one
    grid can mix stage-1 tasks and none, but they change nothing)."""
    unused = [o for o in overrides if o.lstrip("+~").startswith("injection_task.")]
    if cfg.injection_task is None and unused:
        log.warning("injection_task=none: no stage 1, so %s change nothing", " ".join(unused))


def run_from_hydra(cfg: DictConfig) -> dict[str, float]:
    """train.py's body: validate the composed config and run it in Hydra's output directory."""
    quiet_libraries()
    hydra = HydraConfig.get()
    with user_errors_exit():
        run_cfg = to_run_config(cfg)
        resolved = resolve_config(cfg)
        choices = {
            group.split("@")[-1]: str(option)
            for group, option in hydra.runtime.choices.items()
            if group.split("@")[-1] in {*GROUP_SCHEMAS, "injection_lr_schedule"}
        }
        overrides = list(hydra.overrides.task)
        warn_unused_stage1_overrides(run_cfg, overrides)
        sweep_dir = hydra.sweep.dir if hydra.mode == RunMode.MULTIRUN else None
        selection = (
            f"target/eval_{run_cfg.target_task.best_metric}",
            run_cfg.target_task.best_is_higher,
        )
        record = RunRecord.of(resolved, choices, overrides, selection)
        metrics = run(run_cfg, Path(hydra.runtime.output_dir), resolved, record, sweep_dir)
    if is_main_process():
        print(f"results: {Path(hydra.runtime.output_dir) / 'metrics.json'}")
    return metrics
