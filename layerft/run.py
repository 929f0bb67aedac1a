"""One combination end to end: compose -> validate -> [stage 1] -> transplant -> stage 2 -> record."""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import logging
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import datasets
import torch
import transformers
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from layerft.callbacks import MetricSink
from layerft.config import (
    GROUP_SCHEMAS,
    RunConfig,
    check_option_names,
    check_switch_overrides,
    data_files,
    override_key,
    resolve_config,
    to_run_config,
)
from layerft.credentials import mask_credentials
from layerft.data import TaskData, load_task_data
from layerft.errors import LayerftError, user_errors_exit
from layerft.file_lock import lock_unless_done
from layerft.heads import TaskModel, build_task_model, encoder_layers
from layerft.layer_split import (
    InjectedPolicy,
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
from layerft.model import check_max_length, encoder_depth, load_backbone, load_tokenizer
from layerft.parts import layer_part, set_trainable
from layerft.phase import remove_unfinished_checkpoints, run_phase
from layerft.processes import rank, world_size
from layerft.results import (
    FAILED_FILE,
    METRICS_FILE,
    HistoryFile,
    RunRecord,
    changed_data,
    config_differences,
    read_finished,
    read_record,
    reads_pooler,
    record_failure,
    run_dir_errors,
    unread_prefix,
    unread_settings,
    write_metrics,
)
from layerft.stage1 import Stage1Key, Stage1Outcome, Stage1Store, obtain_stage1
from layerft.sweep_records import effective_settings, job_settings
from layerft.task import TaskConfig
from layerft.tracker import NoTracker, Tracker, remove_stale_runs, start_tracker, wandb_runs
from layerft.tuning_mode import TuningMethod, adapted_layers, apply_tuning_mode

log = logging.getLogger(__name__)
# The stages' names: run_phase's `stage`, their metrics' prefix, their checkpoint folders.
STAGES = ("injection", "target")


def seed_everything(seed: int) -> None:
    """The one place the run's seed reaches torch, numpy and random (before each model is built)."""
    transformers.set_seed(seed)


@dataclass(frozen=True)
class StageData:
    """Both stages' checked, tokenized data (no stage-1 data without an injection task)."""

    target: TaskData
    injection: TaskData | None


def load_stage_data(cfg: RunConfig) -> StageData:
    """Both tasks' data, read and checked first: bad data costs no stage-1 run and no tracker run
    (nor does a tuning mode that the split leaves no layer to adapt)."""
    cache_dir = Path(cfg.cache_dir).expanduser()
    check_mode_fits_split(cfg, cache_dir)
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
    outcome = obtain_stage1(store, Stage1Key.of(cfg, data.content), train, run_dir, ranks)
    if ranks[1] > 1 and torch.distributed.is_initialized():
        torch.distributed.barrier()  # stage 2 starts together, after the first process stored stage 1
    if not outcome.trained:
        for line in outcome.result.history:
            sink({k: v for k, v in line.items() if k != "step"}, int(line["step"]))
    return outcome


def check_mode_fits_split(cfg: RunConfig, cache_dir: Path) -> None:
    """An adapter or LoRA mode whose every layer the split freezes (`layer_split=all` with
    `stage2.policy=freeze` and `tuning_mode=top_adapter`) fails here, not after stage 1."""
    if cfg.injection_task is None or not cfg.tuning_mode.method.adds_modules:
        return
    depth = encoder_depth(cfg.model, cache_dir)  # its config, which check_max_length reads too
    injected = resolve_num_lower(cfg.layer_split.stage1, depth)
    adapted_layers(cfg.tuning_mode, depth, frozen_injected_layers(cfg.layer_split.stage2, injected))


def _load(cfg: RunConfig, task: TaskConfig, group: str, tokenizer: Any, cache: Path) -> TaskData:
    return load_task_data(
        task, group, tokenizer, cache, cfg.trainer.resolved_pad_multiple(), seed=cfg.seed
    )


def _fresh_model(cfg: RunConfig, task: TaskConfig) -> TaskModel:
    seed_everything(cfg.seed)
    pooler = cfg.model.pretrained_pooler and reads_pooler([task.kind.value])  # else not loaded
    backbone = load_backbone(cfg.model, Path(cfg.cache_dir).expanduser(), pooler=pooler)
    return build_task_model(backbone, task)


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
    apply_tuning_mode(model, cfg.tuning_mode, frozen_injected_layers(split, len(injected.layers)))
    parts = injected_parts(split, injected)
    policy = apply_injected_policy(model, split, parts)
    return model, combine_multipliers(part_lr_multipliers(cfg.lr_schedule, depth, parts), policy)


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
    metrics = run_phase(
        "injection", model, data, cfg.injection_task, cfg.injection_lr_schedule, lr_multipliers,
        cfg.trainer, cfg.seed, run_dir, sink,
    )  # fmt: skip
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
    metrics = run_phase(
        "target", model, data, cfg.target_task, cfg.lr_schedule, lr_multipliers,
        cfg.trainer, cfg.seed, run_dir, sink,
    )  # fmt: skip
    metrics["target/stage_seconds"] = time.perf_counter() - started  # build, train, evaluate
    return metrics


def is_main_process() -> bool:
    """Under torchrun every process runs train.py; only the first one records (files, tracker)."""
    return rank() == 0


def run(
    cfg: RunConfig,
    run_dir: Path,
    resolved: dict[str, Any],
    record: RunRecord,
    sweep_dir: str | None,  # the multirun's folder; None for a single run
) -> tuple[dict[str, float], Path]:
    """Run one combination unless its finished metrics exist: in this directory, or (in a
    multirun) in another job folder of the same sweep. `force_rerun` redoes it. Returns the
    metrics and the folder holding them."""
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
        return train_and_record(cfg, run_dir, resolved, record, replacing)


LOCKS_DIR = ".locks"  # in a multirun's folder: a lock per config fingerprint, held while trained

Result = tuple[dict[str, float], Path]  # a run's metrics and the folder holding them


@contextlib.contextmanager
def config_lock(
    sweep_dir: str | None, record: RunRecord, finished: Callable[[], Result | None]
) -> Iterator[Result | None]:
    """Hold the multirun's lock on this config while this job trains it, unless another job that
    holds it produces the config's result first (`finished()` looks for it, every few seconds
    while waiting and once after taking the lock): then that result is yielded, else None. Jobs
    of one grid that are one config (a baseline crossed with layer splits, settings it never
    reads) then train it once, also when a parallel launcher starts them together, as they would
    one after another; the waiting job holds its launcher slot meanwhile.

    No lock outside a multirun, nor under torchrun: its processes must train together, and one
    waiting for the lock would stall the others in their first collective. A file system without
    locks, or a lock file this job cannot open: one warning, and the job trains unlocked. On NFS
    mounted with node-local locks (`local_lock=flock`), jobs on two nodes do not see each other's.
    """
    if sweep_dir is None or world_size() > 1:
        yield None
        return

    def waiting(holder: str) -> None:
        log.info("this config is being trained by %s; waiting for its result", holder or "a job")

    def unlockable(reason: str) -> None:
        log.warning("%s: a repeat of this config started beside this job may train it too", reason)

    path = Path(sweep_dir) / LOCKS_DIR / f"{record.fingerprint}.lock"
    with lock_unless_done(path, finished, waiting, unlockable) as served:
        yield served


def train_and_record(
    cfg: RunConfig, run_dir: Path, resolved: dict[str, Any], record: RunRecord, replacing: bool
) -> Result:
    """Train both stages and record the result in `run_dir` (the first process: metrics.json, the
    kept Hydra files, the tracker run); `replacing`: a forced rerun of a finished result there."""
    cfg.trainer.check_device()  # before minutes of data loading and model building
    data = load_stage_data(cfg)
    with run_dir_errors(run_dir):  # a read-only or full disk, a file in the way: one line
        if not replacing and is_main_process():
            remove_unfinished_checkpoints(run_dir, STAGES)
        earlier_runs = wandb_runs(run_dir) if replacing else []
        tracker = open_tracker(cfg, run_dir, resolved, record, keep_earlier=replacing)
        history = HistoryFile(run_dir)

        def sink(metrics: dict[str, float], step: int) -> None:
            history.log(metrics, step)
            tracker.log(metrics, step)

        failed = True
        try:
            metrics, stage1 = train_stages(cfg, data, run_dir, sink)
            if stage1 is not None:
                tracker.stage1(stage1)
            if is_main_process():
                extra = {"run/stage1": stage1.entry() if stage1 else {"status": "none"}}
                keep_hydra_files(run_dir)  # first: a kept copy is never older than the metrics
                history.publish()
                log.info("results: %s", write_metrics(run_dir, metrics, record, extra))
                (run_dir / FAILED_FILE).unlink(missing_ok=True)  # an earlier attempt's failure
                remove_stale_runs(run_dir, earlier_runs, "the result this run replaced")
            tracker.summarize(metrics)
            failed = False
        finally:
            tracker.finish(failed)  # closed even when a stage crashes
    return metrics, run_dir


def previous_result(
    run_dir: Path, record: RunRecord, sweep_dir: str | None, resolved: dict[str, Any] | None = None
) -> tuple[dict[str, float], Path] | None:
    """The finished metrics of this config and their folder: here or a sibling job folder of the
    sweep.

    A folder holding another config's result is refused only when this config's result is found
    nowhere in the sweep (`train.py -m` numbers its job folders, so a narrowed grid's job 0 may
    land in the folder of another finished job)."""
    hint = new_folder_hint(sweep_dir)
    try:
        finished = read_finished(run_dir, record.fingerprints, hint)
    except LayerftError as refused:
        if is_main_process():  # Hydra rewrote them for this job; the folder keeps its own
            restore_hydra_files(run_dir)
        if sweep_dir is None or (elsewhere := found_elsewhere(sweep_dir, record, run_dir)) is None:
            # the kept config stays beside it
            raise explained(refused, run_dir, resolved) from refused
        return read_result(elsewhere, record, hint)
    if finished is not None:
        if is_main_process():
            restore_hydra_files(run_dir)
        check_same_data(run_dir, record, hint)
        log.info("already finished, not rerun: %s", run_dir / METRICS_FILE)
        return finished, run_dir
    if sweep_dir is None or (elsewhere := found_elsewhere(sweep_dir, record, run_dir)) is None:
        return None
    remove_if_only_hydra_files(run_dir)
    return read_result(elsewhere, record, hint)


def explained(
    refused: LayerftError, run_dir: Path, resolved: dict[str, Any] | None
) -> LayerftError:
    """A refusal to overwrite another config's result, with the keys where this config differs
    from it, read from the copy of its Hydra config kept beside it (when there is one)."""
    record = hydra_record(run_dir)
    kept = record / "finished" / "config.yaml" if record is not None else None
    if resolved is None or kept is None or not kept.is_file():
        return refused
    try:
        differences = config_differences(resolve_config(OmegaConf.load(kept)), resolved)
    except Exception:  # noqa: BLE001 - an unreadable or older config only loses the detail
        return refused
    if not differences:  # not in the config: the process count (torchrun), an older layerft
        return refused
    return LayerftError(f"{refused} (it differs in {differences})")


def read_result(folder: Path, record: RunRecord, hint: str) -> tuple[dict[str, float], Path] | None:
    """The finished metrics of `record`'s config in `folder`, with the folder."""
    finished = read_finished(folder, record.fingerprints, hint)
    if finished is None:
        return None
    check_same_data(folder, record, hint)
    return finished, folder


def check_same_data(folder: Path, record: RunRecord, hint: str) -> None:
    """A finished result of this config computed on other data (a data file edited or replaced
    in place since) is neither reported as this run's nor overwritten: an error saying so."""
    changed = changed_data(read_record(folder), record.data_files)
    if changed:
        raise LayerftError(
            f"{folder / METRICS_FILE} is this config's result on other data: the file of "
            f"{', '.join(changed)} changed since (its bytes' sha256); replace it with force_rerun=true (sweep.py "
            f"--force), or run in a new folder ({hint})"
        )


def found_elsewhere(sweep_dir: str, record: RunRecord, run_dir: Path) -> Path | None:
    """Another job folder of the sweep holding this config's finished result (logged), or None."""
    from layerft.sweep import finished_elsewhere

    elsewhere = finished_elsewhere(Path(sweep_dir), record.fingerprints, run_dir)
    if elsewhere is not None:
        log.info("already finished in %s, not rerun", elsewhere / METRICS_FILE)
    return elsewhere


def new_folder_hint(sweep_dir: str | None) -> str:
    """How to pick another folder for this run (named in a refusal to overwrite)."""
    if sweep_dir is None:
        return "hydra.run.dir=<new folder>"
    return "sweep.py ... --dir <new folder>, or hydra.sweep.dir=<new folder> with train.py -m"


def hydra_record(run_dir: Path) -> Path | None:
    """Where Hydra wrote this job's config (`hydra.output_subdir`); None outside Hydra or when off."""
    if not HydraConfig.initialized() or HydraConfig.get().output_subdir is None:
        return None
    return run_dir / HydraConfig.get().output_subdir


def keep_hydra_files(run_dir: Path) -> None:
    """Copy the finished run's `.hydra/*.yaml` into `.hydra/finished/` (written, then renamed).

    Hydra rewrites them for every launch before the job starts, so a skipped rerun (same config,
    but result-neutral settings such as the tracker changed) would leave `.hydra/config.yaml`
    describing a run that never happened here; `restore_hydra_files` puts these back."""
    record = hydra_record(run_dir)
    if record is None or not record.is_dir():
        return
    try:
        tmp = Path(tempfile.mkdtemp(dir=record, prefix=".finished."))
        for path in record.glob("*.yaml"):
            shutil.copy2(path, tmp / path.name)
        shutil.rmtree(record / "finished", ignore_errors=True)
        tmp.rename(record / "finished")
    except OSError as err:  # the results are written; only this copy of the config is missing
        log.warning("could not keep a copy of %s (%s)", record, err)


def restore_hydra_files(run_dir: Path) -> None:
    """Put back the `.hydra/*.yaml` of the run that wrote this folder's metrics."""
    record = hydra_record(run_dir)
    kept = record / "finished" if record is not None else None
    if kept is None or not kept.is_dir():
        return  # finished before layerft kept a copy, or outside Hydra
    try:
        for path in kept.glob("*.yaml"):
            shutil.copy2(path, record / path.name)
    except OSError as err:
        log.warning("could not restore %s from %s (%s)", record, kept, err)


def remove_if_only_hydra_files(run_dir: Path) -> None:
    """Remove a job folder Hydra made for a combination already finished elsewhere (it holds
    only `.hydra/` and the job's log)."""
    entries = list(run_dir.iterdir()) if run_dir.is_dir() else []
    if entries and all(e.name == ".hydra" or e.suffix == ".log" for e in entries):
        shutil.rmtree(run_dir, ignore_errors=True)


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
        selection[f"injection/eval_{task.best_metric}"] = task.best_is_higher
    job_type = "injection+target" if cfg.injection_task is not None else "target"
    return start_tracker(
        cfg.tracker, run_dir, tracked_config(resolved, record.unread),
        effective_settings(record.choices),
        run_name(record), record.sweep, job_type, selection,
    )  # fmt: skip


def tracked_config(resolved: dict[str, Any], unread: tuple[str, ...]) -> dict[str, Any]:
    """The config a tracker shows: without the settings the run never reads and its fingerprint
    leaves out (`unread`, RunRecord.unread; a node for a key ending in "."), as its table row
    and name are. Its one run serves every job of the grid that differs only in them (a baseline
    every layer split, full fine-tuning every LoRA rank): in W&B it belongs to none of their
    values, rather than to whichever the grid listed first."""
    tracked = copy.deepcopy(resolved)
    for key in unread:
        *parents, leaf = key.rstrip(".").split(".")
        node = tracked
        for part in parents:
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict) and node.get(leaf) is not None:  # a disabled stage 1 stays null
            del node[leaf]
    return tracked


NAMED_CHOICES = ("injection_task", "target_task", "layer_split", "tuning_mode")
MAX_RUN_NAME = 128  # W&B refuses a longer run name


def run_name(record: RunRecord) -> str:
    """The tracker's name of a run: its main choices, then every other setting its command line
    changes (`target_task.lr=1e-3`, `model=tiny`; not the seed, the sweep's name, nor a
    result-neutral key such as a credential, nor one the run never reads), then the seed: runs of
    one sweep that differ only in an override differ by name. Settings that would pass
    MAX_RUN_NAME are counted (`+2 more`)."""
    given = {override_key(o) for o in record.overrides}
    settings = job_settings(record.choices, record.overrides, record.unread)
    extra = [
        f"{k}={v}" for k, v in settings.items() if k in given and k not in (*NAMED_CHOICES, "sweep")
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


def quiet_libraries() -> None:
    """Keep library chatter (load reports, progress bars) out of the run log."""
    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    datasets.disable_progress_bars()
    datasets.logging.set_verbosity_error()


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
    credential's value masked), seed and sweep (a failure of an invalid config records these)."""
    multirun = hydra.mode == RunMode.MULTIRUN
    return {
        "run/choices": {
            group.split("@")[-1]: str(option)
            for group, option in hydra.runtime.choices.items()
            if group.split("@")[-1] in {*GROUP_SCHEMAS, "injection_lr_schedule"}
        },
        "run/overrides": mask_credentials(list(hydra.overrides.task)),
        "run/seed": cfg.get("seed"),
        # the W&B group
        "run/sweep": hydra.runtime.choices.get("sweep") or (hydra.sweep.dir if multirun else None),
    }


def run_record(run_cfg: RunConfig, resolved: dict[str, Any], entries: dict[str, Any]) -> RunRecord:
    """The record of a checked config, from its `job_entries`."""
    selection = (
        f"target/eval_{run_cfg.target_task.best_metric}",
        run_cfg.target_task.best_is_higher,
    )
    return RunRecord.of(
        resolved, entries["run/choices"], entries["run/overrides"], selection, entries["run/sweep"],
        data_files(run_cfg),
    )  # fmt: skip


def record_dead_job(cfg: DictConfig, hydra: DictConfig, job_dir: Path, error: Exception) -> None:
    """Record a multirun job whose process died without a result (killed, out of host memory) in
    its `failed.json`, as a failure inside the job is recorded: the sweep lists it as failed and
    a rerun runs it again. `cfg` is the job's task config, `hydra` its `hydra` node."""
    entries = job_entries(cfg, hydra)
    with contextlib.suppress(Exception):  # an invalid config: the entries above; its log says why
        entries = run_record(to_run_config(cfg), resolve_config(cfg), entries).entries()
    record_failure(job_dir, entries, error)


def run_from_hydra(cfg: DictConfig, isolate_failures: bool = False) -> dict[str, float] | None:
    """train.py's body: validate the composed config and run it in Hydra's output directory.

    `isolate_failures` (the jobs of a multirun): any error is recorded in the job folder's
    `failed.json` and None returned, so that the sweep goes on; KeyboardInterrupt still stops it.
    """
    quiet_libraries()
    hydra = HydraConfig.get()
    run_dir = Path(hydra.runtime.output_dir)
    overrides = list(hydra.overrides.task)
    sweep_dir = hydra.sweep.dir if hydra.mode == RunMode.MULTIRUN else None
    entries = job_entries(cfg, hydra)
    try:
        with user_errors_exit(reraise=isolate_failures):
            check_option_names(cfg, hydra.runtime.choices)
            run_cfg = to_run_config(cfg)
            check_switch_overrides(cfg, overrides)
            resolved = resolve_config(cfg)
            warn_inert_overrides(run_cfg, overrides)
            record = run_record(run_cfg, resolved, entries)
            entries = record.entries()
            metrics, result_dir = run(run_cfg, run_dir, resolved, record, sweep_dir)
    except Exception as err:
        if not isolate_failures:
            raise
        if is_main_process():
            record_failure(run_dir, entries, err)
        return None
    if is_main_process():
        print(f"results: {result_dir / METRICS_FILE}")  # another job folder's, when found there
    return metrics
