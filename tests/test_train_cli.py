"""End to end: `python train.py ...` as a user runs it, checked through metrics.json, logs and exit codes.

Every subprocess starts at once in a small pool when the module's first test asks for `runs`, so
the whole file costs about what its runs cost on all cores; each test then reads the runs it needs.
"""

from __future__ import annotations

import json
import math
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from subprocess import CompletedProcess
from typing import Any

import pytest
import yaml
from conftest import REPO, assert_counts_of, dev_examples, run_train, script_env
from wandb_records import read_wandb_records, wandb_items

from layerft.fingerprint import FINGERPRINT_SCHEME, RESULT_NEUTRAL_KEYS
from layerft.run_record import RESULTS_VERSION

# One worker runs this module: its `runs` fixture starts every train.py call of it at once.
pytestmark = [pytest.mark.xdist_group(__name__), pytest.mark.slow]

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
SECRET = "secret-key-abc123"
SECRET_40 = "0123456789abcdef0123456789abcdef01234567"  # a W&B key's shape; 17 chars is too short
CLOSED_PORT = "http://127.0.0.1:9"  # discard port: nothing listens, connections are refused
JOBS = min(4, max(2, os.cpu_count() or 2))  # each run holds a few hundred MB
RUN_KEYS = (
    "run/config_fingerprint",
    "run/seedless_fingerprint",
    "run/choices",
    "run/seed",
    "run/overrides",
    "run/selection_metric",
    "run/higher_is_better",
    "run/sweep",
    "run/data_files",
    "run/data_paths",
    "run/results_version",
    "run/fingerprint_scheme",
    "run/unread_settings",
    "run/file_settings",
    "run/stage1",
)
MEASURED = (
    "runtime",
    "per_second",
    "_seconds",
    "peak_",
    "_rss_",
)  # time and memory vary between identical runs


@dataclass
class Done:
    """One finished train.py call, the folder it ran in, and its metrics.json as it was then."""

    proc: CompletedProcess[str]
    root: Path
    metrics_bytes: bytes | None
    metrics_mtime_ns: int | None
    seconds: float  # wall time of the whole train.py call

    @property
    def run_dir(self) -> Path:
        return self.root / "run"

    @property
    def metrics(self) -> dict[str, Any]:
        assert self.metrics_bytes is not None, self.describe()
        return json.loads(self.metrics_bytes)

    @property
    def log(self) -> str:
        return (self.run_dir / "train.log").read_text()

    def describe(self) -> str:
        return f"rc={self.proc.returncode}\n--- stdout\n{self.proc.stdout}\n--- stderr\n{self.proc.stderr}"


def call(root: Path, args: list[str], env: dict[str, str] | None = None) -> Done:
    start = time.monotonic()
    proc = run_train(args, root, env)
    seconds = time.monotonic() - start
    path = root / "run" / "metrics.json"
    if not path.exists():
        return Done(proc, root, None, None, seconds)
    return Done(proc, root, path.read_bytes(), path.stat().st_mtime_ns, seconds)


# What a killed earlier attempt with W&B leaves in its run dir: run folders and the latest link.
STALE_WANDB = ("offline-run-20200101_000000-stale001", "run-20200101_000001-stale002")


def plant_killed_wandb_attempt(run_dir: Path) -> None:
    """What an earlier attempt with W&B, killed before it finished, left in `run_dir`."""
    folder = run_dir / "wandb"
    for name in STALE_WANDB:
        (folder / name / "files").mkdir(parents=True)
        (folder / name / f"{name.split('-')[-1]}.wandb").write_bytes(b":W&B stale")
    (folder / "latest-run").symlink_to(STALE_WANDB[0])


def plant_file_at_checkpoints(run_dir: Path) -> None:
    """A regular file where the run keeps its checkpoints folder."""
    run_dir.mkdir(parents=True)
    (run_dir / "checkpoints").write_text("not a folder")


def plant_killed_stage1_checkpoint(run_dir: Path) -> None:
    """The stage-1 checkpoint an attempt killed in stage 1 left (its rerun may reuse a stored
    stage 1 instead of training it, or, here, have no stage 1)."""
    checkpoint = run_dir / "checkpoints" / "injection" / "checkpoint-4"
    checkpoint.mkdir(parents=True)
    (checkpoint / "model.safetensors").write_bytes(b"stale weights")
    mine = run_dir / "checkpoints" / "my_bert"  # not layerft's: a user's own, kept
    mine.mkdir()
    (mine / "model.safetensors").write_bytes(b"the user's weights")


def call_after(
    plant: Callable[[Path], None], root: Path, args: list[str], env: dict[str, str] | None = None
) -> Done:
    """`call`, in a run dir that `plant` prepared first."""
    plant(root / "run")
    return call(root, args, env)


@dataclass
class Launch:
    """One `train.py -m` call and its sweep's metrics.json files (bytes, mtime) as they were then."""

    proc: CompletedProcess[str]
    sweep: Path
    files: dict[str, tuple[bytes, int]]  # job folder name -> (bytes, mtime_ns)


def launch(root: Path, args: list[str]) -> Launch:
    proc = run_train(args, root)
    files = {
        p.parent.name: (p.read_bytes(), p.stat().st_mtime_ns)
        for p in root.glob("sweep/*/metrics.json")
    }
    return Launch(proc, root / "sweep", files)


def target_only(shrink: list[str]) -> list[str]:
    return [arg for arg in shrink if not arg.startswith("injection_task.")]


@dataclass
class Tiny:
    """Parameter counts of the tiny BERT's parts, from a run's own composed config."""

    num_layers: int
    hidden: int
    intermediate: int
    labels: dict[str, int]  # task group -> number of labels

    @classmethod
    def of(cls, run_dir: Path) -> Tiny:
        cfg = yaml.safe_load((run_dir / ".hydra" / "config.yaml").read_text())
        tiny = cfg["model"]["tiny"]
        labels = {
            group: len(cfg[group]["label_names"])
            for group in ("injection_task", "target_task")
            if cfg[group] is not None
        }
        return cls(tiny["num_layers"], tiny["hidden_size"], tiny["intermediate_size"], labels)

    @property
    def layer(self) -> int:
        h, i = self.hidden, self.intermediate
        # q, k, v and attention output (h*h + h each), two LayerNorms (2h each), FFN in and out
        return 4 * (h * h + h) + 2 * 2 * h + (h * i + i) + (i * h + h)

    def classification_head(self, labels: int) -> int:
        h = self.hidden
        return (h * h + h) + (h * labels + labels)  # dense h->h, then h->labels

    def tagging_head(self, labels: int) -> int:
        return self.hidden * labels + labels


def user_error_lines(proc: CompletedProcess[str]) -> list[str]:
    return [line for line in proc.stderr.splitlines() if line.startswith("error: ")]


# --- the runs -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """SNLI-shaped jsonl files, each with one fault in its second or third line."""
    folder = tmp_path_factory.mktemp("bad_files")
    good = json.dumps({"premise": "A man sleeps.", "hypothesis": "A man rests.", "label": 0})
    contents = {
        "broken_line3": f'{good}\n{good}\n{{"premise": "A man", "hypothesis": \n{good}\n',
        "label7": good + "\n" + json.dumps({"premise": "a", "hypothesis": "b", "label": 7}) + "\n",
        "no_hypothesis": good + "\n" + json.dumps({"premise": "a", "label": 1}) + "\n",
    }
    paths = {}
    for name, text in contents.items():
        paths[name] = folder / f"{name}.jsonl"
        paths[name].write_text(text)
    return paths


def snli_files(train: Path | str, validation: Path | str | None = None) -> list[str]:
    return [
        "target_task=snli",
        f"target_task.data_files.train={train}",
        f"target_task.data_files.validation={validation or train}",
    ]


# name -> (overrides, strings the one `error:` line must contain); Hydra finds these while
# composing, layerft words them.
COMPOSITION_ERRORS = {
    "misspelt_key": (
        ["target_task.lrr=1"],
        ["unknown config key 'target_task.lrr'", "did you mean 'target_task.lr'?"],
    ),
    "wrong_type": (["target_task.epochs=abc"], ["target_task.epochs", "'abc'", "Float"]),
    "unknown_option": (
        ["target_task=nope"],
        ["target_task=nope: no such option; options: ", "snli", "demo_sentiment"],
    ),
}


# name -> (overrides, strings the one `error:` line must contain); layerft reports these.
# `{name}` stands for the path of that file from `bad_files`.
USER_ERRORS = {
    "schema_check": (["target_task.lr=-1"], ["demo_sentiment", "lr must be > 0", "-1"]),
    "number_for_a_switch": (["trainer.keep_checkpoints=2"], ["keep_checkpoints is true or false"]),
    "missing_file": (
        snli_files("/nonexistent.jsonl"),
        ["target_task.data_files.train: no such file /nonexistent.jsonl"],
    ),
    "malformed_jsonl": (snli_files("{broken_line3}"), ["{broken_line3}:3:", "invalid JSON"]),
    "label_outside_set": (
        snli_files("{label7}"),
        ["{label7}:2: record 2", "label 7", "target_task.label_names", "entailment"],
    ),
    "missing_column": (
        snli_files("{no_hypothesis}"),
        ["{no_hypothesis}:2: record 2", "'hypothesis'"],
    ),
    "hub_unreachable": (
        ["target_task=snli"],
        [
            "stanfordnlp/snli",
            "target_task.data_files.train",
            "target_task=demo_sentiment",
            "injection_task=demo_pos",
        ],
    ),
}


def fill(strings: list[str], files: dict[str, Path]) -> list[str]:
    return [s.format(**files) for s in strings]


def resume_chain(root: Path, shrink: list[str]) -> list[Done]:
    """Run, rerun the same command in the same folder, then rerun it with another seed."""
    return [call(root, shrink), call(root, shrink), call(root, [*shrink, "seed=7"])]


def sweep_chain(root: Path, shrink: list[str]) -> list[Launch]:
    """A grid; the same grid relaunched into its folder with only result-neutral settings
    changed; then another grid (the same jobs in another order) into that folder; then the first
    grid again."""
    grid = ["-m", *shrink, "tuning_mode=full,frozen"]
    neutral = [
        *(a for a in grid if a != "tracker=none"),
        "tracker=wandb",
        "tracker.mode=offline",
        "trainer.progress_bar=true",
        f"cache_dir={root / 'other_cache'}",
    ]
    reordered = ["-m", *shrink, "tuning_mode=frozen,full"]
    return [launch(root, args) for args in (grid, neutral, reordered, grid)]


@pytest.fixture(scope="module")
def runs(
    tmp_path_factory: pytest.TempPathFactory, shrink: list[str], bad_files: dict[str, Path]
) -> Iterator[dict[str, Future]]:
    """Start every train.py call of this module side by side; values are futures of `Done`s."""
    base = tmp_path_factory.mktemp("train_cli")
    no_injection = [*target_only(shrink), "injection_task=none"]
    wandb = [*(a for a in shrink if a != "tracker=none"), "tracker=wandb", "tracker.mode=offline"]
    wandb_auto = [*(a for a in no_injection if a != "tracker=none"), "tracker=wandb"]
    offline = [*wandb_auto, "tracker.mode=offline"]
    overrides = {
        "default": shrink,
        "no_injection": no_injection,
        "none_with_injection_override": [*no_injection, "injection_task.epochs=1"],
        "traceback_on_request": [*shrink, "target_task.lr=-1"],
        "wandb_unreachable": wandb_auto,
        "wandb_unreachable_short_key": wandb_auto,
        "wandb_bad_data": [*wandb, *fill(snli_files("{broken_line3}"), bad_files)],
    }
    env = {
        "traceback_on_request": {"LAYERFT_TRACEBACK": "1"},
        "wandb_unreachable": {"WANDB_API_KEY": SECRET_40, "WANDB_BASE_URL": CLOSED_PORT},
        "wandb_unreachable_short_key": {"WANDB_API_KEY": SECRET, "WANDB_BASE_URL": CLOSED_PORT},
    }
    if SHARED.is_dir():
        snli, klue = SHARED / "snli", SHARED / "klue"
        cap = ["injection_task.max_train_samples=64", "injection_task.max_eval_samples=32"]
        overrides |= {
            "snli": [*no_injection, *snli_files(snli / "train.jsonl", snli / "validation.jsonl")],
            "klue_nli": [
                *no_injection,
                "target_task=klue_nli",
                f"target_task.data_dir={klue / 'klue-nli-v1.1'}",
            ],
            "klue_pos": [
                *shrink,
                "injection_task=klue_pos",
                f"injection_task.data_dir={klue / 'klue-dp-v1.1'}",
                *cap,
            ],
            "klue_ner": [
                *shrink,
                "injection_task=klue_ner",
                f"injection_task.data_dir={klue / 'klue-ner-v1.1'}",
                *cap,
            ],
        }
    for name, (args, _) in {**COMPOSITION_ERRORS, **USER_ERRORS}.items():
        overrides[f"error/{name}"] = [*shrink, *fill(args, bad_files)]
    pool = ThreadPoolExecutor(max_workers=JOBS)
    try:
        # The chains first: they are the longest.
        futures = {
            "resume": pool.submit(resume_chain, base / "resume", shrink),
            "multirun": pool.submit(sweep_chain, base / "multirun", shrink),
            "multirun_failure": pool.submit(
                launch,
                base / "multirun_failure",
                ["-m", *no_injection, "target_task.lr=-1,5e-5"],  # job 0 fails, job 1 runs
            ),
            "wandb": pool.submit(
                call_after,
                plant_killed_wandb_attempt,
                base / "wandb",
                wandb,
                {"WANDB_API_KEY": SECRET},
            ),
            "checkpoints_blocked": pool.submit(
                call_after, plant_file_at_checkpoints, base / "checkpoints_blocked", offline
            ),
            "stale_checkpoints": pool.submit(
                call_after, plant_killed_stage1_checkpoint, base / "stale_checkpoints", no_injection
            ),
        }
        for name, args in overrides.items():
            futures[name] = pool.submit(call, base / name, args, env.get(name))
        yield futures
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def finished(runs: dict[str, Future], name: str) -> Done:
    done = runs[name].result()
    assert done.proc.returncode == 0, done.describe()
    return done


# --- 1. one default run ---------------------------------------------------------------------


def test_default_run_writes_expected_metrics_and_run_files(runs) -> None:
    done = finished(runs, "default")
    metrics, run_dir = done.metrics, done.run_dir
    sizes = Tiny.of(run_dir)
    layers = [f"layer.{i}" for i in range(sizes.num_layers)]
    assert f"results: {run_dir / 'metrics.json'}" in done.proc.stdout.splitlines()

    def stage(name: str, evals: list[str]) -> set[str]:
        keys = [
            "eval_loss",
            "eval_runtime",
            "eval_samples_per_second",
            "eval_steps_per_second",
            *evals,
            "train_loss",
            "train_runtime",
            "train_samples_per_second",
            "train_tokens_per_second",
            "train_paused_seconds",
            "best_step",
            "best_epoch",
            "best_untrained",
            "stage_seconds",
            "peak_rss_mb",
            "train_rss_growth_mb",
            "total_params",
            "trainable_params",
            *(f"trainable_params/{p}" for p in ["embeddings", *layers, "adapters", "head"]),
            *(f"lr/{p}" for p in trained[name]),
        ]
        return {f"{name}/{k}" for k in keys}

    # Every trainable part reports its peak learning rate.
    trained = {"injection": ["embeddings", "layer.0", "head"],
               "target": ["embeddings", *layers[1:], "head"]}  # fmt: skip

    cuda_only = {"injection/peak_cuda_mb", "target/peak_cuda_mb"}
    # On a CPU, torch's threads (float sums' order; the tests run at OMP_NUM_THREADS=1).
    assert metrics.pop("run/cpu_threads", None) == (None if "target/peak_cuda_mb" in metrics else 1)
    assert (metrics.pop("run/device") == "cpu") is ("target/peak_cuda_mb" not in metrics)
    assert set(metrics) - cuda_only == {
        *stage(
            "injection",
            [
                "eval_token_f1",
                "eval_token_accuracy",
                "eval_token_macro_f1",
                "eval_predicted_classes",
            ],
        ),  # fmt: skip
        "injection/num_injected_layers",
        *stage("target", ["eval_accuracy", "eval_macro_f1", "eval_predicted_classes"]),
        *RUN_KEYS,
    }
    run = {key: metrics.pop(key) for key in RUN_KEYS}
    fingerprint = run["run/config_fingerprint"]
    assert isinstance(fingerprint, str) and len(fingerprint) == 16
    int(fingerprint, 16)
    assert (
        run["run/seedless_fingerprint"] != fingerprint
        and len(run["run/seedless_fingerprint"]) == 16
    )
    assert run["run/choices"] == {
        "model": "tiny",
        "injection_task": "demo_pos",
        "target_task": "demo_sentiment",
        "layer_split": "lower1",
        "tuning_mode": "full",
        "lr_schedule": "linear",
        "injection_lr_schedule": "linear",
        "tracker": "none",
    }
    assert run["run/seed"] == 42
    assert run["run/selection_metric"] == "target/eval_accuracy" and run["run/higher_is_better"]
    assert run["run/sweep"] is None  # a single run
    assert run["run/results_version"] == RESULTS_VERSION
    assert run["run/fingerprint_scheme"] == FINGERPRINT_SCHEME
    # Full fine-tuning, uniform schedules, the split's policy=freeze: what it never reads.
    assert run["run/unread_settings"][:4] == [
        "tuning_mode.lora.", "tuning_mode.adapter.", "tuning_mode.layers", "lr_schedule.multipliers."
    ]  # fmt: skip
    assert "layer_split.stage2.lr_multiplier" in run["run/unread_settings"]
    assert run["run/data_files"] == {}  # generated data: no file
    stage1 = run["run/stage1"]  # trained here and stored for reuse, under its content key
    assert stage1["status"] == "trained" and stage1["trained_by"] == str(run_dir)
    assert (Path(stage1["path"]) / "result.json").exists() and Path(stage1["path"]).name == stage1[
        "key"
    ]
    overrides = yaml.safe_load((run_dir / ".hydra" / "overrides.yaml").read_text())
    assert run["run/overrides"] == overrides
    assert "model=tiny" in overrides and "target_task.epochs=1" in overrides
    assert all(isinstance(v, float) and math.isfinite(v) for v in metrics.values()), metrics
    # Scored over the whole dev set; demo_pos has no "O" tag, so its F1 is its accuracy.
    assert_counts_of(metrics["target/eval_accuracy"], dev_examples(done.log, "target_task"))
    # The best checkpoint's dev predictions, one per example, give its accuracy by hand.
    lines = [json.loads(x) for x in (run_dir / "dev_predictions.jsonl").read_text().splitlines()]
    assert len(lines) == dev_examples(done.log, "target_task")
    assert {line["reference"] for line in lines} <= {"negative", "positive"}
    right = sum(line["prediction"] == line["reference"] for line in lines)
    assert metrics["target/eval_accuracy"] == pytest.approx(right / len(lines))
    assert metrics["injection/eval_token_f1"] == metrics["injection/eval_token_accuracy"] > 0
    assert {metrics[f"{s}/lr/head"] for s in ("injection", "target")} == {5e-5}
    positive = [
        "eval_loss",
        "train_loss",
        "train_runtime",
        "train_samples_per_second",
        "peak_rss_mb",
    ]
    for key in positive:
        assert metrics[f"injection/{key}"] > 0 and metrics[f"target/{key}"] > 0, key

    # lower1: stage 1 trains embeddings, layer 0 and a tagging head; stage 2 freezes layer 0.
    layer = sizes.layer
    inj = {p: metrics[f"injection/trainable_params/{p}"] for p in ["embeddings", *layers, "head"]}
    tgt = {p: metrics[f"target/trainable_params/{p}"] for p in ["embeddings", *layers, "head"]}
    assert metrics["injection/num_injected_layers"] == 1.0
    assert inj["layer.0"] == layer
    assert all(inj[p] == 0 for p in layers[1:])
    assert inj["head"] == sizes.tagging_head(sizes.labels["injection_task"])
    assert tgt["layer.0"] == 0
    assert all(tgt[p] == layer for p in layers[1:])
    assert tgt["head"] == sizes.classification_head(sizes.labels["target_task"])
    assert inj["embeddings"] == tgt["embeddings"] > 0
    for name, parts in (("injection", inj), ("target", tgt)):
        assert metrics[f"{name}/trainable_params"] == sum(parts.values())
    assert metrics["injection/total_params"] - metrics["injection/trainable_params"] == 3 * layer
    assert metrics["target/total_params"] - metrics["target/trainable_params"] == layer
    assert (
        metrics["injection/total_params"] - inj["head"]
        == metrics["target/total_params"] - tgt["head"]
    )  # one backbone shape

    config = yaml.safe_load((run_dir / ".hydra" / "config.yaml").read_text())
    assert config["target_task"]["name"] == "demo_sentiment" and config["model"]["name"] == "tiny"
    assert config["target_task"]["epochs"] == 1
    log = done.log
    trainable, total = int(metrics["target/trainable_params"]), int(metrics["target/total_params"])
    assert f"target: {trainable} of {total} parameters train" in log
    assert f"results: {run_dir / 'metrics.json'}" in log
    assert not (run_dir / "checkpoints").exists()  # removed unless trainer.keep_checkpoints

    # The history (and the tracker's) holds the dev curve, then one line of training times as
    # metrics.json has them (evaluations taken out); the best checkpoint's re-scoring is no point
    # of the curve.
    history = [json.loads(line) for line in (run_dir / "history.jsonl").read_text().splitlines()]
    for name in ("injection", "target"):
        lines = [line for line in history if any(k.startswith(f"{name}/") for k in line)]
        *curve, closing = lines
        assert closing[f"{name}/train_runtime"] == metrics[f"{name}/train_runtime"]
        assert closing[f"{name}/train_loss"] == metrics[f"{name}/train_loss"]
        assert not any(k.startswith(f"{name}/eval_") for k in closing)
        assert any(f"{name}/eval_loss" in line for line in curve)
        assert not any(f"{name}/train_runtime" in line for line in curve)
    # The step of the best checkpoint, not the epoch training ended in.
    [best] = re.findall(r"target best checkpoint \(step (\d+)\): (eval_loss=.*)", log)
    assert "epoch=" not in best[1]
    assert (
        int(best[0])
        == max(
            (line for line in history if "target/eval_accuracy" in line),
            key=lambda line: line["target/eval_accuracy"],
        )["step"]
    )


# --- 2. determinism -------------------------------------------------------------------------


def test_same_command_twice_gives_identical_metrics(runs) -> None:
    first = finished(runs, "default").metrics
    second = runs["resume"].result()[0]
    assert second.proc.returncode == 0, second.describe()
    deterministic = {k for k in first if not any(s in k for s in (*MEASURED, "run/"))}
    assert {
        "target/eval_accuracy",
        "target/eval_loss",
        "injection/eval_loss",
        "injection/train_loss",
        "target/train_loss",
    } <= deterministic
    assert {k: second.metrics[k] for k in deterministic} == {k: first[k] for k in deterministic}
    # Their cache_dir differs, which the fingerprint leaves out: it changes no result.
    assert second.metrics["run/config_fingerprint"] == first["run/config_fingerprint"]


# --- 3. multirun ----------------------------------------------------------------------------


def test_multirun_runs_each_tuning_mode_in_its_own_job_dir(runs) -> None:
    first = runs["multirun"].result()[0]
    proc, sweep = first.proc, first.sweep
    assert proc.returncode == 0, proc.stderr
    # and the lock each job held on its config while it trained it (run_folder.config_lock)
    assert sorted(p.name for p in sweep.iterdir() if p.is_dir()) == [".locks", "0", "1"]
    assert not (sweep.parent / "run").exists()
    results = [line for line in proc.stdout.splitlines() if line.startswith("results: ")]
    assert results == [f"results: {sweep / job / 'metrics.json'}" for job in ("0", "1")]
    jobs = {}
    for job in ("0", "1"):
        metrics = json.loads((sweep / job / "metrics.json").read_text())
        jobs[metrics["run/choices"]["tuning_mode"]] = metrics
        assert f"tuning_mode={metrics['run/choices']['tuning_mode']}" in metrics["run/overrides"]
    assert set(jobs) == {"full", "frozen"}
    sizes = Tiny.of(sweep / "1")
    full, frozen = jobs["full"], jobs["frozen"]
    head = sizes.classification_head(sizes.labels["target_task"])
    assert full["target/total_params"] - full["target/trainable_params"] == sizes.layer
    assert frozen["target/trainable_params"] == frozen["target/trainable_params/head"] == head
    frozen_parts = {k: v for k, v in frozen.items() if k.startswith("target/trainable_params/")}
    assert sum(frozen_parts.values()) == head
    # Stage 1 does not depend on stage 2's tuning mode.
    stage1 = [k for k in full if k.startswith("injection/") and not any(s in k for s in MEASURED)]
    assert {k: frozen[k] for k in stage1} == {k: full[k] for k in stage1}


def test_relaunched_grid_skips_jobs_whose_only_change_is_result_neutral(runs) -> None:
    first, relaunched, *_ = runs["multirun"].result()
    assert relaunched.proc.returncode == 0, relaunched.proc.stderr
    assert relaunched.proc.stdout.count("already finished, not rerun") == 2
    assert "parameters train" not in relaunched.proc.stdout  # no stage started
    assert relaunched.files == first.files  # not rewritten either
    sweep = first.sweep
    assert not list(sweep.glob("*/wandb"))  # no tracker run for a skipped job


def test_the_grid_in_another_order_finds_each_result_in_the_other_folder(runs) -> None:
    first, _, reordered, again = runs["multirun"].result()
    sweep = first.sweep
    # Job 0 now lands in the folder of the other job's result: never overwritten, and not a
    # failure either, as its own result is in the other folder.
    assert reordered.proc.returncode == 0, reordered.proc.stderr
    for other in ("1", "0"):
        assert f"already finished in {sweep / other / 'metrics.json'}" in reordered.proc.stdout
    assert not list(sweep.glob("*/failed.json"))
    assert "parameters train" not in reordered.proc.stdout
    assert reordered.files == first.files  # not rewritten
    # Hydra rewrote each folder's .hydra/ for the other job; it is put back to describe its result.
    for job in ("0", "1"):
        recorded = json.loads((sweep / job / "metrics.json").read_text())["run/overrides"]
        overrides = (sweep / job / ".hydra" / "overrides.yaml").read_text()
        assert [o for o in recorded if o.startswith("tuning_mode=")][0] in overrides
    # The first grid again: both finished where they are.
    assert again.proc.returncode == 0, again.proc.stderr
    assert again.proc.stdout.count("already finished, not rerun") == 2
    assert "job failed" not in again.proc.stdout + again.proc.stderr


def test_multirun_goes_on_after_a_failing_job_and_exits_1(runs) -> None:
    done = runs["multirun_failure"].result()
    proc, sweep = done.proc, done.sweep
    assert proc.returncode == 1, proc.stderr
    output = proc.stdout + proc.stderr
    assert "Traceback" not in output  # a user error: one line, as in a single run
    failure = json.loads((sweep / "0" / "failed.json").read_text())
    assert "lr must be > 0, got -1" in failure["run/error"]
    assert not (sweep / "0" / "metrics.json").exists()
    assert set(done.files) == {"1"}  # the job after the failure ran
    assert "target_task.lr=5e-05" in json.loads(done.files["1"][0])["run/overrides"]
    summary = [line for line in output.splitlines() if "job failed: " in line]
    assert len(summary) == 1 and str(sweep / "0" / "failed.json") in summary[0]
    assert f"1 job(s) of {sweep} failed; the others ran" in output


# --- 4. resume ------------------------------------------------------------------------------


def test_rerun_in_same_dir_reuses_finished_metrics_and_another_config_is_refused(runs) -> None:
    first, again, reseeded = runs["resume"].result()
    for done in (first, again):
        assert done.proc.returncode == 0, done.describe()
    metrics_line = f"results: {first.run_dir / 'metrics.json'}"

    assert "already finished" in again.proc.stdout
    assert "parameters train" not in again.proc.stdout  # no stage started
    assert metrics_line in again.proc.stdout.splitlines()
    assert again.metrics_bytes == first.metrics_bytes
    assert again.metrics_mtime_ns == first.metrics_mtime_ns  # not even rewritten

    # Another seed is another config: its result would replace this one, so it does not run.
    assert reseeded.proc.returncode == 2, reseeded.describe()
    assert "Traceback" not in reseeded.proc.stderr
    [line] = user_error_lines(reseeded.proc)
    assert str(first.run_dir / "metrics.json") in line and "hydra.run.dir=" in line
    assert line.endswith("(it differs in seed: 42 -> 7)")  # read from the kept .hydra config
    assert "parameters train" not in reseeded.proc.stdout
    assert reseeded.metrics_bytes == first.metrics_bytes
    assert reseeded.metrics_mtime_ns == first.metrics_mtime_ns
    assert "already finished" in reseeded.log  # one log, appended by all three runs


# --- 5. no injection ------------------------------------------------------------------------


def test_injection_task_none_runs_stage_2_only_with_every_layer_trainable(runs) -> None:
    done = finished(runs, "no_injection")
    metrics = done.metrics
    assert not [k for k in metrics if k.startswith("injection/")]
    sizes = Tiny.of(done.run_dir)
    for i in range(sizes.num_layers):
        assert metrics[f"target/trainable_params/layer.{i}"] == sizes.layer
    assert metrics["target/trainable_params"] == metrics["target/total_params"]
    assert "injection_task train" not in done.proc.stdout and "injection:" not in done.proc.stdout


def test_injection_task_none_with_an_injection_override_is_clean(runs) -> None:
    done = runs["none_with_injection_override"].result()
    assert "Traceback" not in done.proc.stderr
    assert done.proc.returncode == 0, done.proc.stderr
    warning = "injection_task=none: no stage 1, so injection_task.epochs=1 changes nothing"
    assert warning in done.log
    assert "changes nothing" not in finished(runs, "no_injection").log


# --- 6. errors ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(COMPOSITION_ERRORS))
def test_composition_error_names_the_key_without_traceback(runs, name: str) -> None:
    done = runs[f"error/{name}"].result()
    assert done.proc.returncode == 2, done.describe()
    assert "Traceback" not in done.proc.stderr
    [line] = user_error_lines(done.proc)
    for part in COMPOSITION_ERRORS[name][1]:
        assert part in line, (part, line)
    assert done.metrics_bytes is None and not done.run_dir.exists()


@pytest.mark.parametrize("name", list(USER_ERRORS))
def test_user_error_is_one_line_naming_the_fault_without_traceback(
    runs, bad_files, name: str
) -> None:
    done = runs[f"error/{name}"].result()
    expected = fill(USER_ERRORS[name][1], bad_files)
    assert done.proc.returncode == 2, done.describe()
    assert "Traceback" not in done.proc.stderr
    lines = user_error_lines(done.proc)
    assert len(lines) == 1, done.proc.stderr
    for part in expected:
        assert part in lines[0], (part, lines[0])
    # Once on the console (its log line had repeated it); the run's log file keeps it.
    message = lines[0].removeprefix("error: ")
    assert (done.proc.stdout + done.proc.stderr).count(message) == 1, done.describe()
    assert f"[ERROR] - {message}" in (done.run_dir / "train.log").read_text()
    assert "results:" not in done.proc.stdout
    assert done.metrics_bytes is None  # a failed run leaves nothing a rerun would reuse


def test_a_rerun_removes_the_checkpoints_a_killed_attempt_left(runs) -> None:
    # The stage that left them does not train in the rerun, so nothing else would remove them.
    done = finished(runs, "stale_checkpoints")
    assert [p.name for p in (done.run_dir / "checkpoints").iterdir()] == ["my_bert"]
    assert f"removed 1 checkpoint(s) an unfinished attempt left in {done.run_dir}" in done.log


@pytest.mark.parametrize(
    ("sig", "code", "said"),
    [
        (signal.SIGINT, 130, "error: interrupted (Ctrl-C); finished results are kept"),
        (signal.SIGTERM, 143, "error: terminated (SIGTERM); finished results are kept"),
    ],
)
def test_ctrl_c_in_a_run_is_one_line_and_exit_130_and_the_rerun_finishes(
    tmp_path: Path, shrink: list[str], sig: int, code: int, said: str
) -> None:
    # It printed some 160 lines of KeyboardInterrupt traceback through the training stack; SIGTERM
    # (`kill`, SLURM's time limit) ended it where it stood, its tracker run never closed.
    args = [*target_only(shrink), "injection_task=none", f"cache_dir={tmp_path / 'cache'}",
            f"hydra.run.dir={tmp_path / 'run'}"]  # fmt: skip
    wandb = ["tracker=wandb", "tracker.mode=offline"]
    process = subprocess.Popen(
        [sys.executable, str(REPO / "train.py"), *args, *wandb, "target_task.epochs=10000"],
        cwd=tmp_path, env=script_env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        for line in process.stdout:  # Hydra's log: training has begun once a step is logged
            if re.search(r"target step \d+: loss=", line):
                break
        process.send_signal(sig)
        _, err = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == code, err[-3000:]
    assert err.strip().splitlines() == [said]
    assert not (tmp_path / "run" / "metrics.json").exists()
    [run_file] = (tmp_path / "run" / "wandb").glob("offline-run-*/run-*.wandb")
    records = read_wandb_records(run_file)
    exits = [r.exit for r in records if r.WhichOneof("record_type") == "exit"]
    assert [record.exit_code for record in exits] == [1]  # closed as failed, not left crashed
    summary: dict[str, Any] = {}
    for record in records:
        if record.WhichOneof("record_type") == "summary":
            summary |= wandb_items(record.summary.update)
    assert summary["run/error"] == said.removeprefix("error: ").split(";")[0]  # W&B says why
    done = run_train(args, tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / "run" / "metrics.json").exists()


# In train.py's process: SIGTERM once metrics.json is written, before W&B's run is closed.
STOP_AFTER_RESULT = """
import os, runpy, signal, sys
import layerft.run
tidy = layerft.run.remove_stale_runs  # its first call after metrics.json is written
def tidy_then_stop(*args, **kwargs):
    if os.path.exists(os.path.join(args[0], "metrics.json")):
        os.kill(os.getpid(), signal.SIGTERM)
    return tidy(*args, **kwargs)
layerft.run.remove_stale_runs = tidy_then_stop
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def test_a_stop_after_the_result_is_written_closes_its_wandb_run_as_finished(
    tmp_path: Path, shrink: list[str]
) -> None:
    # It closed the run as failed (exit code 1, `run/error`, no final summary when the stop came
    # before it): the rerun reuses the result and logs no W&B run, so none in W&B said finished.
    args = [*target_only(shrink), "injection_task=none", f"cache_dir={tmp_path / 'cache'}",
            f"hydra.run.dir={tmp_path / 'run'}", "tracker=wandb", "tracker.mode=offline"]  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-c", STOP_AFTER_RESULT, str(REPO / "train.py"), *args],
        cwd=tmp_path, env=script_env(tmp_path), capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 143, done.stderr[-3000:]
    assert done.stderr.strip().splitlines() == [
        "error: terminated (SIGTERM); finished results are kept"
    ]
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    [run_file] = (tmp_path / "run" / "wandb").glob("offline-run-*/run-*.wandb")
    records = read_wandb_records(run_file)
    exits = [r.exit for r in records if r.WhichOneof("record_type") == "exit"]
    assert [record.exit_code for record in exits] == [0]
    summary: dict[str, Any] = {}
    for record in records:
        if record.WhichOneof("record_type") == "summary":
            summary |= wandb_items(record.summary.update)
    assert "run/error" not in summary
    assert summary["target/train_loss"] == metrics["target/train_loss"]


def test_a_file_in_the_way_of_the_checkpoints_folder_is_one_error_line(runs) -> None:
    done = runs["checkpoints_blocked"].result()
    assert done.proc.returncode == 2, done.describe()
    assert "Traceback" not in done.proc.stderr
    [line] = user_error_lines(done.proc)
    assert line == f"error: cannot write {done.run_dir / 'checkpoints' / 'target'}: Not a directory"
    assert done.metrics_bytes is None
    # W&B's run says why in the same line (it had the OSError the line is made of)
    [run_file] = (done.run_dir / "wandb").glob("offline-run-*/run-*.wandb")
    summary: dict[str, Any] = {}
    for record in read_wandb_records(run_file):
        if record.WhichOneof("record_type") == "summary":
            summary |= wandb_items(record.summary.update)
    assert summary["run/error"] == "LayerftError: " + line.removeprefix("error: ")


def test_layerft_traceback_env_shows_the_traceback(runs) -> None:
    proc = runs["traceback_on_request"].result().proc
    assert proc.returncode == 2  # still bad input
    assert "Traceback" in proc.stderr
    assert "LayerftError: task 'demo_sentiment': lr must be > 0" in proc.stderr


# --- 7. real data samples -------------------------------------------------------------------


def shared_run(runs, name: str) -> Done:
    if not SHARED.is_dir():
        pytest.skip(f"real data samples not found at {SHARED} (only CI and dev machines have them)")
    return finished(runs, name)


def test_snli_files_run_and_report_dropped_unlabelled_records(runs) -> None:
    done = shared_run(runs, "snli")
    log = done.log
    for split in ("train", "validation"):
        path = SHARED / "snli" / f"{split}.jsonl"
        labels = [json.loads(line)["label"] for line in path.read_text().splitlines() if line]
        dropped = labels.count(-1)
        if dropped:
            assert f"{path}: dropped {dropped} unlabelled records" in log
        else:
            assert f"{path}: dropped" not in log
        assert f"target_task {split}: {len(labels) - dropped} examples from {path}" in log
    sizes = Tiny.of(done.run_dir)
    assert done.metrics["target/trainable_params/head"] == sizes.classification_head(3)
    assert_counts_of(done.metrics["target/eval_accuracy"], dev_examples(log, "target_task"))


def test_klue_nli_release_folder_runs(runs) -> None:
    done = shared_run(runs, "klue_nli")
    folder = SHARED / "klue" / "klue-nli-v1.1"
    for split, file in (
        ("train", "klue-nli-v1.1_train.json"),
        ("validation", "klue-nli-v1.1_dev.json"),
    ):
        count = len(json.loads((folder / file).read_text()))
        assert f"target_task {split}: {count} examples from {folder / file}" in done.log
    assert_counts_of(done.metrics["target/eval_accuracy"], count)  # the dev file, whole
    assert not [k for k in done.metrics if k.startswith("injection/")]


@pytest.mark.parametrize(
    ("name", "folder", "train_file"),
    [
        ("klue_pos", "klue-dp-v1.1", "klue-dp-v1.1_train.tsv"),
        ("klue_ner", "klue-ner-v1.1", "klue-ner-v1.1_train.tsv"),
    ],
)
def test_klue_tagging_injection_runs(runs, name: str, folder: str, train_file: str) -> None:
    done = shared_run(runs, name)
    path = SHARED / "klue" / folder / train_file
    assert f"injection_task train: 64 examples from {path}" in done.log
    assert "injection_task validation: 32 examples from" in done.log
    metrics = done.metrics
    # Learning is tested in test_training.py; here: the metrics exist and POS (no "O" tag) has
    # F1 equal to accuracy, while NER's F1 leaves out the "O" tokens.
    f1, accuracy = metrics["injection/eval_token_f1"], metrics["injection/eval_token_accuracy"]
    assert math.isfinite(f1) and accuracy > 0
    assert (f1 == accuracy) == (name == "klue_pos")
    sizes = Tiny.of(done.run_dir)
    labels = sizes.labels["injection_task"]
    assert metrics["injection/trainable_params/head"] == sizes.tagging_head(labels)
    assert metrics["target/trainable_params/layer.0"] == 0  # injected, then frozen


# --- 8. W&B offline -------------------------------------------------------------------------


def test_wandb_offline_records_config_and_choices_and_never_the_key(runs) -> None:
    done = finished(runs, "wandb")
    offline = list((done.run_dir / "wandb").glob("offline-run-*"))
    assert len(offline) == 1, list((done.run_dir / "wandb").iterdir())
    [log_file] = offline[0].glob("run-*.wandb")
    by_kind: dict[str, list[Any]] = {}
    for record in read_wandb_records(log_file):
        kind = record.WhichOneof("record_type")
        by_kind.setdefault(kind, []).append(getattr(record, kind))
    [run_record] = by_kind["run"]
    config = wandb_items(run_record.config.update)
    for update in by_kind.get("config", []):
        config |= wandb_items(update.update)
    choices = {k: v for k, v in config.items() if k.startswith("choice/")}
    assert choices == {
        "choice/model": "tiny",
        "choice/injection_task": "demo_pos",
        "choice/target_task": "demo_sentiment",
        "choice/layer_split": "lower1",
        "choice/tuning_mode": "full",
        "choice/lr_schedule": "linear",
        "choice/injection_lr_schedule": "linear",
    }  # not the tracker: a setting that cannot change a result
    assert config["layerft/results_version"] == RESULTS_VERSION
    resolved = yaml.safe_load((done.run_dir / ".hydra" / "config.yaml").read_text())
    # ...without the settings the run never reads (left out of its result key too).
    assert "lora" not in config["tuning_mode"] and "multipliers" not in config["lr_schedule"]
    # ...nor those that cannot change its result (a forced rerun, the cache, the tracker's own).
    for unread in [*done.metrics["run/unread_settings"], *RESULT_NEUTRAL_KEYS]:
        *parents, leaf = unread.rstrip(".").split(".")
        node = resolved
        for part in parents:
            node = node[part]
        node.pop(leaf)
    for key, value in resolved.items():
        assert json.loads(json.dumps(config[key])) == value, key
    assert not {"tracker", "cache_dir", "force_rerun", "reuse_stage1"} & set(config)

    summary: dict[str, Any] = {}
    for update in by_kind["summary"]:
        summary |= wandb_items(update.update)
    assert summary["target/eval_accuracy"] == done.metrics["target/eval_accuracy"]
    assert summary["injection/eval_token_f1"] == done.metrics["injection/eval_token_f1"]

    assert_key_nowhere(done, SECRET)


def assert_key_nowhere(done: Done, key: str) -> None:
    """The key is in no output and in no file the run left (run dir, caches, temporary HOME)."""
    assert key not in done.proc.stdout and key not in done.proc.stderr
    scanned = 0
    for folder, _, names in os.walk(done.root):
        for name in names:
            path = Path(folder, name)
            if path.is_symlink() or not path.is_file():
                continue
            scanned += 1
            assert key.encode() not in path.read_bytes(), path
    assert scanned > 10


def test_rerun_removes_the_wandb_run_folders_a_killed_attempt_left(runs) -> None:
    done = finished(runs, "wandb")
    folder = done.run_dir / "wandb"
    assert not [name for name in STALE_WANDB if (folder / name).exists()]
    assert "removed 2 W&B run folder(s) of an unfinished attempt" in done.log
    [run] = folder.glob("offline-run-*")
    assert (folder / "latest-run").resolve() == run.resolve()


@pytest.mark.parametrize(
    ("name", "key"),
    [("wandb_unreachable", SECRET_40), ("wandb_unreachable_short_key", SECRET)],
)
def test_wandb_key_without_a_reachable_host_goes_offline_with_one_warning(
    runs, name: str, key: str
) -> None:
    done = finished(runs, name)
    # W&B alone would wait ~100 s, then fail; measured against the same run without W&B, as the
    # machine's load (the other runs of this module) stretches both.
    alone = finished(runs, "no_injection").seconds
    assert done.seconds < alone + 50, (done.seconds, alone)
    assert "Traceback" not in done.proc.stderr
    output = (done.proc.stdout + done.proc.stderr).splitlines()
    # (on SHRINK's 2 steps the best checkpoint may be step 1, taken after a step at lr 0: warned;
    # the tiny model's character tokenizer fills max_length with a few demo sentences, and on
    # so few steps it may predict one label for every dev example: warned)
    [warning] = [
        line
        for line in output
        if "WARNING" in line and not any(m in line for m in ("at lr 0", "likely cut", "one label"))
    ]
    assert CLOSED_PORT in warning and "offline" in warning, warning
    assert len(list((done.run_dir / "wandb").glob("offline-run-*"))) == 1
    assert_key_nowhere(done, key)


def test_bad_data_stops_the_run_before_a_wandb_run_starts(runs) -> None:
    done = runs["wandb_bad_data"].result()
    assert done.proc.returncode == 2, done.describe()
    assert len(user_error_lines(done.proc)) == 1
    assert not (done.run_dir / "wandb").exists()
