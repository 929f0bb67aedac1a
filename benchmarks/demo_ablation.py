"""Ablate why injection costs the offline demo accuracy, and print a Markdown table of the results.

Every variant (a named list of overrides of the defaults of `python train.py`) runs once per seed,
each in its own process, one after another:

    python train.py tracker=none seed=S hydra.run.dir=<out>/<variant>/s<S> cache_dir=<out>/cache \
        <variant overrides>

The grid measured in BENCHMARKS.md (section "The offline demo"; every variant but `gentle`):

    HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 WANDB_MODE=offline \
        python benchmarks/demo_ablation.py --out /tmp/ablation --variants none paper \
        zero_steps_freeze zero_steps_train inject_train inject_embeddings inject_no_embeddings

Runs whose metrics.json already exists are not rerun, so an interrupted grid finishes what is
missing when started again. `--variants` picks a subset, `--table-only` only reads `--out`.
The table gives the mean and sample standard deviation over `--seeds`; `--extra-seeds` (42 by
default) also run for `none` and `paper` and are listed per seed but left out of the means.
It also checks that `zero_steps_train` reproduces `none` exactly (stage-2 metrics, timings aside).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BASELINE = "none"
VARIANTS: dict[str, list[str]] = {
    "none": ["injection_task=none"],
    "paper": [],  # the defaults: demo_pos into layer 0, frozen in stage 2
    "zero_steps_freeze": ["injection_task.epochs=0"],
    "zero_steps_train": ["injection_task.epochs=0", "layer_split.stage2.policy=train"],
    "inject_train": ["layer_split.stage2.policy=train"],
    "inject_embeddings": ["layer_split.stage2.transplant_embeddings=true"],
    "inject_no_embeddings": ["layer_split.stage1.train_embeddings=false"],
    "gentle": ["injection_task.lr=1e-5"],
}
EXTRA_SEED_VARIANTS = ("none", "paper")
TARGET = "target/eval_accuracy"
INJECTION = "injection/eval_token_f1"
# Keys that measure time or memory, not what was learned: left out of the exactness check.
TIMING_MARKERS = ("runtime", "per_second", "paused", "rss", "cuda", "mfu")
OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "WANDB_MODE": "offline"}

Results = dict[str, dict[int, dict[str, float]]]  # variant -> seed -> metrics


def run_dir(out: Path, variant: str, seed: int) -> Path:
    """Where one run writes its Hydra output and metrics.json."""
    return out / variant / f"s{seed}"


def command(out: Path, variant: str, seed: int) -> list[str]:
    """The train.py command line of one run."""
    return [
        sys.executable, str(REPO / "train.py"), "tracker=none", f"seed={seed}",
        f"hydra.run.dir={run_dir(out, variant, seed)}", f"cache_dir={out / 'cache'}",
        *VARIANTS[variant],
    ]  # fmt: skip


def planned_runs(variants: list[str], seeds: list[int], extra: list[int]) -> list[tuple[str, int]]:
    """(variant, seed) in running order: seed by seed, so a cut-short grid still has every variant."""
    runs = [(v, s) for s in seeds for v in variants]
    return runs + [(v, s) for s in extra for v in variants if v in EXTRA_SEED_VARIANTS]


def run_all(out: Path, runs: list[tuple[str, int]]) -> None:
    """Run every missing (variant, seed), one process at a time, logging to <run dir>.log."""
    env = {**os.environ, **OFFLINE_ENV}
    start = time.perf_counter()
    for done, (variant, seed) in enumerate(runs):
        target = run_dir(out, variant, seed)
        if (target / "metrics.json").exists():
            print(f"[{done + 1}/{len(runs)}] {variant} s{seed}: exists, skipped", flush=True)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        began = time.perf_counter()
        with open(target.parent / f"s{seed}.log", "w") as log:
            code = subprocess.run(
                command(out, variant, seed), stdout=log, stderr=subprocess.STDOUT, env=env
            ).returncode
        status = "ok" if code == 0 else f"FAILED (exit {code})"
        print(
            f"[{done + 1}/{len(runs)}] {variant} s{seed}: {status} in "
            f"{time.perf_counter() - began:.0f} s (grid {time.perf_counter() - start:.0f} s)",
            flush=True,
        )


def read_results(out: Path) -> Results:
    """Every finished run under `out`."""
    results: Results = {}
    for variant in VARIANTS:
        for path in sorted((out / variant).glob("s*/metrics.json")):
            seed = int(path.parent.name[1:])
            results.setdefault(variant, {})[seed] = json.loads(path.read_text())
    return results


def mean_std(values: list[float]) -> str:
    """`mean ± sample std` (just the mean for one value, `-` for none)."""
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}"


def table(results: Results, seeds: list[int]) -> str:
    """A Markdown table, one row per variant; means over `seeds`, every seed listed."""
    header = (
        "| variant | overrides | stage-1 `eval_token_f1` | stage-2 `eval_accuracy` "
        f"(seeds {', '.join(map(str, seeds))}) | per seed | Δ vs `{BASELINE}` (paired) |"
    )
    lines = [header, "|---|---|---|---|---|---|"]
    baseline = results.get(BASELINE, {})
    for variant, runs in results.items():
        main = [s for s in seeds if s in runs]
        f1 = [runs[s][INJECTION] for s in main if INJECTION in runs[s]]
        accuracy = [runs[s][TARGET] for s in main]
        per_seed = ", ".join(f"s{s} {runs[s][TARGET]:.3f}" for s in sorted(runs))
        paired = [runs[s][TARGET] - baseline[s][TARGET] for s in main if s in baseline]
        delta = "-" if variant == BASELINE else _signed(paired)
        overrides = " ".join(f"`{o}`" for o in VARIANTS[variant]) or "(defaults)"
        f1_cell = f"{statistics.mean(f1):.3f}" if f1 else "-"
        cells = [f"`{variant}`", overrides, f1_cell, mean_std(accuracy), per_seed, delta]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _signed(values: list[float]) -> str:
    if not values:
        return "-"
    text = f"{statistics.mean(values):+.3f}"
    return text + (f" ± {statistics.stdev(values):.3f}" if len(values) > 1 else "")


def learned_metrics(metrics: dict[str, float]) -> dict[str, float]:
    """The stage-2 metrics that do not measure time or memory."""
    return {
        k: v
        for k, v in metrics.items()
        if k.startswith("target/") and not any(m in k for m in TIMING_MARKERS)
    }


def exactness(results: Results, variant: str = "zero_steps_train") -> list[str]:
    """Per seed: does `variant` reproduce the baseline's stage-2 metrics exactly (timings aside)?"""
    lines = []
    for seed, metrics in sorted(results.get(variant, {}).items()):
        base = results.get(BASELINE, {}).get(seed)
        if base is None:
            continue
        ours, theirs = learned_metrics(metrics), learned_metrics(base)
        differ = sorted(
            k
            for k in ours.keys() | theirs.keys()
            if not (k in ours and k in theirs and _same(ours[k], theirs[k]))
        )
        verdict = "identical" if not differ else "differs in " + ", ".join(differ)
        lines.append(f"{variant} vs {BASELINE}, seed {seed}: {len(ours)} target metrics, {verdict}")
    return lines


def _same(a: float, b: float) -> bool:
    return a == b or (math.isnan(a) and math.isnan(b))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("/tmp/ablation"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--extra-seeds", type=int, nargs="*", default=[42])
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    parser.add_argument("--table-only", action="store_true")
    args = parser.parse_args()
    out = args.out.resolve()
    if not args.table_only:
        start = time.perf_counter()
        run_all(out, planned_runs(args.variants, args.seeds, args.extra_seeds))
        print(f"grid wall time: {time.perf_counter() - start:.0f} s", flush=True)
    results = read_results(out)
    print(table(results, args.seeds))
    for line in exactness(results):
        print(line)


if __name__ == "__main__":
    main()
