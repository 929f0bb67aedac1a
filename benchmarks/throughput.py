"""Training throughput side by side, in one process: layerft's phase runner, a plain `transformers`
Trainer script as a user would write it, and a raw PyTorch loop over batches already on the device.

All three train the same model (a fresh copy each run), on the same tokenized examples, at the same
batch size, for one epoch (or `--steps N` optimizer steps at every batch size). Runs are interleaved (the order rotates each repeat) after one discarded
warm-up run of each, and the medians are reported, since shared machines drift.

    # CPU (the issue's figure): MiniLM on the shared SNLI sample
    python benchmarks/throughput.py --batch-sizes 32 -- model=minilm target_task=snli \
        target_task.data_files.train=../shared/data/snli/train.jsonl \
        target_task.data_files.validation=../shared/data/snli/validation.jsonl
    # GPU: a BERT-base-shaped model at a fixed 128 tokens, bf16
    python benchmarks/throughput.py --batch-sizes 32 256 --pad-to 128 --precision bf16 --compile \
        -- model=tiny model.tiny.hidden_size=768 ... target_task.generator_sizes.train=6400

Everything after `--` is a layerft override (injection_task=none and tracker=none are implied).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import gc
import json
import math
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import torch
from hydra import compose, initialize_config_dir
from transformers import Trainer, TrainerCallback, TrainingArguments

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from layerft import phase, phase_trainer  # noqa: E402
from layerft.config import RunConfig, register_configs, to_run_config  # noqa: E402
from layerft.data import TaskData, load_task_data  # noqa: E402
from layerft.heads import TaskModel, build_task_model  # noqa: E402
from layerft.hydra_job import quiet_libraries  # noqa: E402
from layerft.model import load_backbone, load_tokenizer  # noqa: E402
from layerft.phase import Phase, run_phase  # noqa: E402
from layerft.stage_models import seed_everything  # noqa: E402

Pipeline = Callable[[int], dict[str, float]]
DataFor = Callable[[int], TaskData]  # batch size -> the examples of a run

# Called after every optimizer step of every pipeline (FirstStepClock, the raw loop): --profile
# puts its profiler's step() here for one run.
STEP_HOOKS: list[Callable[[], None]] = []


def compose_config(overrides: list[str], precision: str, pad_to: int | None) -> RunConfig:
    """The layerft config of the benchmark: one epoch of the target task, dev evaluated once."""
    register_configs()
    fixed = ["injection_task=none", "tracker=none", "target_task.epochs=1",
             "target_task.evals_per_epoch=1", f"trainer.precision={precision}",
             "trainer.progress_bar=false"]  # fmt: skip
    if pad_to is not None:
        fixed.append(f"trainer.pad_to_multiple_of={pad_to}")
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        return to_run_config(compose("config", overrides=[*fixed, *overrides]))


def fresh_model(cfg: RunConfig) -> TaskModel:
    """The same freshly initialised model for every pipeline and run."""
    seed_everything(cfg.seed)
    return build_task_model(load_backbone(cfg.model), cfg.target_task)


def layerft_pipeline(
    cfg: RunConfig, data_for: DataFor, compile_encoder: bool, blocking_copies: bool = False
) -> Pipeline:
    """layerft's phase runner with its defaults: samples/s as it reports them in metrics.json.
    `blocking_copies`: batches copied to the GPU blocking, as before layerft's default changed."""

    def run(batch_size: int) -> dict[str, float]:
        # Copies: the pipelines of one process share `cfg`.
        task = dataclasses.replace(cfg.target_task, batch_size=batch_size)
        trainer = dataclasses.replace(cfg.trainer, compile=compile_encoder)
        data = data_for(batch_size)
        copies = blocking_phase_copies() if blocking_copies else contextlib.nullcontext()
        with tempfile.TemporaryDirectory() as out, clocked_phase_trainer() as clock, copies:
            target = Phase(
                stage="target", task=task, schedule=cfg.lr_schedule, lr_multipliers={},
                trainer=trainer, seed=cfg.seed, output_dir=Path(out),
                sink=lambda numbers, step: None,
            )  # fmt: skip
            metrics = run_phase(target, fresh_model(cfg), data)
        speed = metrics["target/train_samples_per_second"]
        # The training time layerft reports (its evaluations taken out), split as the plain
        # Trainer's is: where layerft's gap to the raw loop lies, start-up or every step.
        result = {"samples_per_second": speed, **clock.figures(len(data.train) / speed)}
        if "target/mfu" in metrics:
            result["mfu"] = metrics["target/mfu"]
        return result

    return run


@contextlib.contextmanager
def clocked_phase_trainer() -> Iterator[FirstStepClock]:
    """The phase runner's Trainer with a FirstStepClock among its callbacks, for one run."""
    clock = FirstStepClock()

    class Clocked(phase_trainer.PhaseTrainer):
        def __init__(self, *args, callbacks=(), **kwargs) -> None:  # noqa: ANN002, ANN003
            super().__init__(*args, callbacks=[*callbacks, clock], **kwargs)

    with mock.patch.object(phase_trainer, "PhaseTrainer", Clocked):
        yield clock


def blocking_phase_copies() -> contextlib.AbstractContextManager:
    """The phase runner's batches copied to the GPU blocking (a host sync per batch), for one run."""
    original = phase.training_arguments

    def blocking(*args, **kwargs) -> TrainingArguments:  # noqa: ANN002, ANN003
        arguments = original(*args, **kwargs)
        arguments.accelerator_config.non_blocking = False
        return arguments

    return mock.patch.object(phase, "training_arguments", blocking)


class FirstStepClock(TrainerCallback):
    """Where a Trainer's `train_runtime` goes: its first step (data-loader start, first batch,
    the optimizer's state), the mean of the steps between, and its last step with the end of the
    run (the data-loader workers' shutdown, the last log). Synchronises the GPU at the start of
    training and after the first and the second-to-last step: the overlap of the steps between is
    left alone, and both ends carry what a run pays once."""

    def __init__(self) -> None:
        self.marks: list[float] = []
        self.steps = 0

    def _mark(self) -> None:
        synchronize(torch.device("cuda" if torch.cuda.is_available() else "cpu"))
        self.marks.append(time.perf_counter())

    def on_train_begin(self, args, state, control, **kwargs):  # noqa: ANN001 - Trainer's hook
        self._mark()

    def on_step_end(self, args, state, control, **kwargs):  # noqa: ANN001 - Trainer's hook
        for hook in STEP_HOOKS:
            hook()
        self.steps += 1
        if self.steps in (1, state.max_steps - 1):
            self._mark()

    def figures(self, runtime: float) -> dict[str, float]:
        """The step_split of a run whose training took `runtime` seconds (the Trainer's)."""
        if len(self.marks) < 3:
            return {}
        start, first, penultimate = self.marks
        return step_split(runtime, first - start, penultimate - first, self.steps)


def step_split(runtime: float, first: float, between: float, steps: int) -> dict[str, float]:
    """A run of `steps` steps: its first step in seconds, the mean of steps 2 to n-1 in ms (from
    `between`, their seconds), and its last step with the run's end in seconds (the rest of
    `runtime`); none for under 3 steps."""
    if steps < 3:
        return {}
    return {"first_step_s": first, "later_step_ms": 1000 * between / (steps - 2),
            "last_step_s": runtime - first - between}  # fmt: skip


def plain_trainer_pipeline(
    cfg: RunConfig, data_for: DataFor, tokenizer, pad_to: int | None
) -> Pipeline:  # noqa: ANN001
    """What a user writes instead: Trainer defaults (fused AdamW, linear schedule, clipping at 1)."""

    def run(batch_size: int) -> dict[str, float]:
        task, data = cfg.target_task, data_for(batch_size)
        bf16 = cfg.trainer.precision.value == "bf16"
        with tempfile.TemporaryDirectory() as out:
            args = TrainingArguments(
                output_dir=out, per_device_train_batch_size=batch_size, num_train_epochs=1,
                learning_rate=task.lr, bf16=bf16, fp16=cfg.trainer.precision.value == "fp16",
                # Without CUDA the Trainer refuses bf16 unless told to train on the CPU (its
                # autocast there), as layerft's phase runner tells it.
                use_cpu=bf16 and not torch.cuda.is_available(), eval_strategy="no",
                save_strategy="no", report_to="none", seed=cfg.seed, disable_tqdm=True,
                # TaskModel.forward takes **batch, so the Trainer cannot tell its inputs from the
                # signature; data.collator (DataCollatorWithPadding) drops the `length` column.
                remove_unused_columns=False,
            )  # fmt: skip
            trainer = Trainer(
                model=fresh_model(cfg),
                args=args,
                train_dataset=data.train,
                data_collator=data.collator,
                callbacks=[clock := FirstStepClock()],
            )
            output = trainer.train()
        runtime = output.metrics["train_runtime"]
        return {"samples_per_second": len(data.train) / runtime, **clock.figures(runtime)}

    return run


def raw_loop_pipeline(cfg: RunConfig, data_for: DataFor, compile_encoder: bool) -> Pipeline:
    """forward, backward, clip, fused AdamW step, over batches collated and moved beforehand."""
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(cfg.trainer.precision.value)

    def run(batch_size: int) -> dict[str, float]:
        data = data_for(batch_size)
        generator = torch.Generator().manual_seed(cfg.seed)
        order = torch.randperm(len(data.train), generator=generator).tolist()
        batches = [
            {k: v.to(device) for k, v in data.collator([data.train[i] for i in chunk]).items()}
            for chunk in (order[s : s + batch_size] for s in range(0, len(order), batch_size))
        ]
        model = fresh_model(cfg).to(device).train()
        if compile_encoder:
            model.backbone.compile()
        optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.target_task.lr, fused=True)
        synchronize(device)
        start = time.perf_counter()
        marks = [start]
        for step, batch in enumerate(batches):
            with torch.autocast(
                device.type, dtype=dtype or torch.float32, enabled=dtype is not None
            ):
                loss = model(**batch).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            for hook in STEP_HOOKS:
                hook()
            if step in (0, len(batches) - 2):  # as FirstStepClock splits a Trainer's run
                synchronize(device)
                marks.append(time.perf_counter())
        synchronize(device)
        runtime = time.perf_counter() - start
        split = {}
        if len(marks) == 3:
            split = step_split(runtime, marks[1] - start, marks[2] - marks[1], len(batches))
        return {"samples_per_second": len(data.train) / runtime, **split}

    return run


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def measure(
    pipelines: dict[str, Pipeline], batch_size: int, repeats: int, deadline: float,
    results: dict[str, dict], save: Callable[[], None],
) -> None:  # fmt: skip
    """One warm-up run of each pipeline (its wall time kept: for a compiled pipeline it includes
    the compilation), then `repeats` rounds in rotating order. No run starts after `deadline`
    (a perf_counter time); a pipeline that raises is reported and left out of later rounds.
    Fills `results` (pipeline -> its runs) and calls `save` after every run, so a run cut short
    keeps what it measured."""
    names = list(pipelines)
    results.update({name: {"runs": []} for name in names})

    def attempt(name: str, label: str) -> dict[str, float] | None:
        # A timed run lasts about as long as the pipeline's last one: none that would overrun.
        last = results[name]["runs"][-1:] or [results[name].get("warm_up", {})]
        expected = last[0].get("wall_seconds", 0.0)
        if time.perf_counter() + expected > deadline:
            print(f"  {name} {label}: skipped, out of time", flush=True)
            return None
        started = time.perf_counter()
        try:
            figures = pipelines[name](batch_size)
        except Exception as error:  # noqa: BLE001 - one pipeline's failure is a result too
            results[name]["error"] = f"{label}: {type(error).__name__}: {error}"[:500]
            print(f"  {name} {label}: FAILED {results[name]['error']}", flush=True)
            gc.collect()  # a failed run's model and batches, before the next pipeline's
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            return None
        figures["wall_seconds"] = time.perf_counter() - started
        print(f"  {name} {label}: {figures}", flush=True)
        return figures

    for name in names:
        if (figures := attempt(name, "warm-up")) is not None:
            results[name]["warm_up"] = figures
        save()
    for repeat in range(repeats):
        for name in names[repeat % len(names) :] + names[: repeat % len(names)]:
            if "error" in results[name] or "warm_up" not in results[name]:
                continue
            if (figures := attempt(name, f"#{repeat}")) is not None:
                results[name]["runs"].append(figures)
            save()


# What makes the CPU wait for the GPU: CUDA runtime calls that block, and the aten ops that read
# a device value on the host (`.item()`, a tensor's truth value, a CPU copy of a GPU tensor).
SYNC_CALLS = ("cudaStreamSynchronize", "cudaDeviceSynchronize", "cudaEventSynchronize",
              "cudaMemcpy", "aten::_local_scalar_dense", "aten::is_nonzero")  # fmt: skip


def device_busy_us(averages: Iterable[Any]) -> float:
    """The device's self time in the profiler's averages: its kernels and copies, as the profiler's
    "Self CUDA time total" counts them."""
    # Not the GPU-side spans of user annotations (each step's `ProfilerStep*`, the optimizer's
    # `Optimizer.step#...`), which cover kernels counted already, and the gaps between them: the
    # steps' spans doubled the busy time (the H100 call of 2026-12-05 reported 141 ms busy in 73 ms
    # steps), the optimizer's added about 1 ms a step (9% of it at batch 32).
    return sum(
        e.self_device_time_total
        for e in averages
        if e.device_type != torch.autograd.DeviceType.CPU
        and not getattr(e, "is_user_annotation", False)
        and not e.key.startswith("ProfilerStep")
    )


PROFILE_MIN_STEPS = 7  # profile_run records steps 5 to n-2: one at least


def profile_run(pipeline: Pipeline, batch_size: int, steps: int) -> tuple[dict[str, float], str]:
    """One more run of `pipeline` under torch.profiler, recording optimizer steps 5 to n-2 (the
    first ones start the data loader and compile, the last one ends the run): per step, its wall
    time, the GPU's busy time (kernels and copies) and the calls that wait for the GPU; with the
    op tables (by the device's self time, then the CPU's) as text."""
    from torch.profiler import ProfilerActivity, profile, schedule

    active = steps - PROFILE_MIN_STEPS + 1
    if active < 1:
        raise ValueError(
            f"--profile needs runs of at least {PROFILE_MIN_STEPS} steps, these have {steps}"
        )
    activities = [ProfilerActivity.CPU]
    if torch.cuda.is_available():
        activities.append(ProfilerActivity.CUDA)
    recorder = profile(
        activities=activities, schedule=schedule(wait=2, warmup=2, active=active, repeat=1)
    )
    with recorder:
        STEP_HOOKS.append(recorder.step)
        try:
            pipeline(batch_size)
        finally:
            STEP_HOOKS.remove(recorder.step)
    averages = recorder.key_averages()
    spans = [e for e in averages if e.key == "ProfilerStep*"]  # the recorded steps, as one
    profiled = spans[0].count if spans else 0  # `active`, unless the run ended early

    def per_step(total: float) -> float:
        return total / profiled if profiled else math.nan

    figures = {
        "steps": profiled,
        "step_ms": per_step(spans[0].cpu_time_total / 1000) if spans else math.nan,
        "device_busy_ms_per_step": per_step(device_busy_us(averages) / 1000),
        **{f"{name}_per_step": per_step(sum(e.count for e in averages if e.key == name))
           for name in SYNC_CALLS},
    }  # fmt: skip
    by_device = "self_device_time_total" if torch.cuda.is_available() else "self_cpu_time_total"
    tables = (
        f"{json.dumps(figures, indent=1)}\n\nby {by_device}:\n"
        f"{averages.table(sort_by=by_device, row_limit=30)}\n\nby self_cpu_time_total:\n"
        f"{averages.table(sort_by='self_cpu_time_total', row_limit=30)}\n"
    )
    return figures, tables


def profile_all(
    pipelines: dict[str, Pipeline], batch_size: int, steps: int, deadline: float,
    results: dict[str, dict], path: Path,
) -> None:  # fmt: skip
    """profile_run for each pipeline that ran, while `deadline` allows: its figures go to
    results[name]["profile"], its op tables to the end of the text file `path` (one file for a
    whole benchmark: a GPU call brings back few files), then a table of the figures is printed."""
    rows = []
    for name, pipeline in pipelines.items():
        runs = results[name]["runs"]
        if "error" in results[name] or not runs:
            continue
        if time.perf_counter() + 1.5 * runs[-1]["wall_seconds"] > deadline:  # the profiler's toll
            print(f"  {name} profile: skipped, out of time", flush=True)
            continue
        figures, tables = profile_run(pipeline, batch_size, steps)
        with path.open("a") as file:
            file.write(f"==== {name}, batch {batch_size}\n{tables}\n")
        results[name]["profile"] = figures
        syncs = ", ".join(
            f"{call} {figures[f'{call}_per_step']:g}"
            for call in SYNC_CALLS if figures[f"{call}_per_step"]
        )  # fmt: skip
        rows.append(
            f"| {batch_size} | {name} | {figures['step_ms']:.1f} | "
            f"{figures['device_busy_ms_per_step']:.1f} | {syncs or 'none'} |"
        )
    print("\nprofiled (steps 5 to n-2, profiler overhead included):")
    print("| batch | pipeline | step, ms | GPU busy, ms | waiting calls per step |")
    print("|---|---|---|---|---|")
    print("\n".join(rows), flush=True)


def summarise(results: dict[str, dict], batch_size: int) -> list[str]:
    """Markdown rows: median samples/s, the ratio to the plain Trainer, the spread, the MFU, the
    first step's seconds, the mean of the steps between in ms, the last step's seconds, and the
    warm-up run's wall time (compilation included)."""
    plain_runs = results.get("plain Trainer", {}).get("runs", [])
    plain = statistics.median(r["samples_per_second"] for r in plain_runs) if plain_runs else None
    rows = []
    for name, result in results.items():
        warm = result.get("warm_up", {}).get("wall_seconds")
        warm = f"{warm:.1f}" if warm is not None else "-"
        if not result["runs"]:
            why = result.get("error", "no timed run")
            rows.append(f"| {batch_size} | {name} | - | - | {why} | - | - | {warm} |")
            continue
        if "error" in result:  # failed after timed runs: theirs are shown, and the failure
            warm += f"; then failed, {result['error']}"
        speeds = sorted(r["samples_per_second"] for r in result["runs"])
        mfus = [r["mfu"] for r in result["runs"] if "mfu" in r]
        median = statistics.median(speeds)
        ratio = f"{median / plain:.2f}x" if plain else "-"
        mfu = f"{100 * statistics.median(mfus):.1f}%" if mfus else "-"
        split = [r for r in result["runs"] if "first_step_s" in r]
        steps = "-"
        if split:
            first = statistics.median(r["first_step_s"] for r in split)
            later = statistics.median(r["later_step_ms"] for r in split)
            steps = f"{first:.3f} / {later:.1f}"
            if all("last_step_s" in r for r in split):
                steps += f" / {statistics.median(r['last_step_s'] for r in split):.3f}"
        rows.append(
            f"| {batch_size} | {name} | {median:,.1f} | {ratio} | "
            f"{speeds[0]:,.1f}-{speeds[-1]:,.1f} ({len(speeds)}) | {mfu} | {steps} | {warm} |"
        )
    return rows


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[32])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--precision", choices=["fp32", "bf16", "fp16"], default="fp32")
    parser.add_argument("--pad-to", type=int, default=None, help="pad every batch to this multiple")
    parser.add_argument("--compile", action="store_true", help="add trainer.compile=true runs")
    parser.add_argument(
        "--variant", action="append", default=[], metavar="NAME=OVERRIDE[,OVERRIDE]",
        help="add a layerft pipeline with these overrides, e.g. workers4=trainer.dataloader_workers=4",
    )  # fmt: skip
    parser.add_argument(
        "--blocking-copies", action="store_true",
        help="add a layerft pipeline whose batches are copied to the GPU blocking, as before "
        "layerft copied them without blocking (a host sync per batch)",
    )  # fmt: skip
    parser.add_argument("--json", type=Path, default=None, help="write every run's figures here")
    parser.add_argument(
        "--budget", type=float, default=None,
        help="seconds for the whole measurement: the first batch size, where compiled pipelines "
        "compile cold, gets 60%% of it, the others share what is left equally; no run starts that "
        "would end after its batch size's share, as long as the pipeline's last run took",
    )  # fmt: skip
    parser.add_argument(
        "--steps", type=int, default=None,
        help="optimizer steps per run at every batch size (the first steps x batch examples); "
        "default: one epoch of the whole training set. Equal steps at every batch size separate "
        "per-run costs from per-example ones",
    )  # fmt: skip
    parser.add_argument(
        "--profile", type=Path, default=None, metavar="FILE",
        help="after the timed runs of each batch size, one more run of each pipeline under "
        "torch.profiler: its op tables go to the end of FILE, its step time, GPU busy time and "
        "host syncs per step to the output and the JSON",
    )  # fmt: skip
    parser.add_argument("overrides", nargs="*")
    return parser


def _pipelines(
    args: argparse.Namespace, cfg: RunConfig, data_for: DataFor, tokenizer: Any
) -> dict[str, Pipeline]:
    """The pipelines to measure, by name: the three, then those the options add."""
    pipelines = {
        "layerft": layerft_pipeline(cfg, data_for, compile_encoder=False),
        "plain Trainer": plain_trainer_pipeline(cfg, data_for, tokenizer, args.pad_to),
        "raw loop": raw_loop_pipeline(cfg, data_for, compile_encoder=False),
    }
    if args.compile:
        pipelines["layerft, trainer.compile=true"] = layerft_pipeline(cfg, data_for, True)
        pipelines["raw loop, compiled"] = raw_loop_pipeline(cfg, data_for, True)
    if args.blocking_copies:
        pipelines["layerft, blocking copies"] = layerft_pipeline(
            cfg, data_for, compile_encoder=False, blocking_copies=True
        )
        if args.compile:  # where the GPU's step is shortest, and a sync per step costs most
            pipelines["layerft, trainer.compile=true, blocking copies"] = layerft_pipeline(
                cfg, data_for, compile_encoder=True, blocking_copies=True
            )
    for variant in args.variant:
        name, overrides = variant.split("=", 1)
        variant_cfg = compose_config(
            [*args.overrides, *overrides.split(",")], args.precision, args.pad_to
        )
        pipelines[f"layerft, {name}"] = layerft_pipeline(
            variant_cfg, data_for, compile_encoder=variant_cfg.trainer.compile
        )
    return pipelines


def main() -> None:
    parser = _parser()
    args = parser.parse_args()
    if args.steps is not None and args.steps < 1:
        parser.error(f"--steps must be at least 1, got {args.steps}")
    # Found only after every timed run otherwise: a GPU call's minutes spent for a traceback.
    if args.profile is not None and args.steps is not None and args.steps < PROFILE_MIN_STEPS:
        parser.error(f"--profile needs --steps {PROFILE_MIN_STEPS} or more, got {args.steps}")

    quiet_libraries()
    cfg = compose_config(args.overrides, args.precision, args.pad_to)
    tokenizer = load_tokenizer(cfg.model)
    cache = Path(cfg.cache_dir).expanduser() / "tokenized"
    data = load_task_data(
        cfg.target_task,
        "target_task",
        tokenizer,
        cache,
        cfg.trainer.resolved_pad_multiple(),
        seed=cfg.seed,
    )
    if args.steps is not None and args.steps * max(args.batch_sizes) > len(data.train):
        parser.error(
            f"--steps {args.steps} at batch {max(args.batch_sizes)} needs "
            f"{args.steps * max(args.batch_sizes)} training examples; the set has {len(data.train)}"
        )
    # One epoch (no --steps) at the largest batch is the shortest run --profile gets: as above.
    epoch = math.ceil(len(data.train) / max(args.batch_sizes))
    if args.profile is not None and args.steps is None and epoch < PROFILE_MIN_STEPS:
        parser.error(
            f"--profile needs runs of {PROFILE_MIN_STEPS} steps or more; one epoch of "
            f"{len(data.train)} examples at batch {max(args.batch_sizes)} is {epoch} (set --steps)"
        )

    def data_for(batch_size: int) -> TaskData:
        if args.steps is None:
            return data
        return dataclasses.replace(data, train=data.train.select(range(args.steps * batch_size)))

    pipelines = _pipelines(args, cfg, data_for, tokenizer)
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else "CPU"
    print(f"{device}, torch {torch.__version__}, {len(data.train)} examples, {args.precision}")
    rows, everything = [], {}
    started = time.perf_counter()

    def save() -> None:
        if args.json:  # whole or not at all: a time limit may kill the process while it writes
            partial = args.json.with_name(args.json.name + ".partial")
            partial.write_text(json.dumps({"device": device, "runs": everything}, indent=1))
            os.replace(partial, args.json)

    for index, batch_size in enumerate(args.batch_sizes):
        print(f"batch {batch_size}:", flush=True)
        deadline = math.inf
        if args.budget is not None:
            left = args.budget - (time.perf_counter() - started)
            remaining = len(args.batch_sizes) - index
            share = 0.6 if index == 0 and remaining > 1 else 1 / remaining
            deadline = time.perf_counter() + left * share
        results = everything[batch_size] = {}
        measure(pipelines, batch_size, args.repeats, deadline, results, save)
        rows += summarise(results, batch_size)
        if args.profile is not None:
            steps = args.steps or math.ceil(len(data.train) / batch_size)
            profile_all(pipelines, batch_size, steps, deadline, results, args.profile)
            save()
        # After each batch size: a run cut short by a time limit keeps what it measured.
        print(
            "\n| batch | pipeline | samples/s (median) | vs plain Trainer | range (runs) | MFU "
            "| first step, s / steps 2 to n-1, ms / last step, s | warm-up run, s |"
        )
        print("|---|---|---|---|---|---|---|---|")
        print("\n".join(rows), flush=True)


if __name__ == "__main__":
    main()
