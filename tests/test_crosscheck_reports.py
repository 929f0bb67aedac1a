"""An independent recount of every number the sweep tables report, from the records alone.

A grid of fake records (2 injection tasks x 2 tuning modes x 2 learning rates x 4 seeds, random
scores, one failed seed and one seed missing from a baseline row) is aggregated with
`--best-of target_task.lr`; every cell of results.csv, results.md and best.csv is then recomputed
here in plain Python (no layerft code): the mean, sample std (ddof=1) and n of each score, the
paired difference from the baseline row over the seeds both have, its 95% t interval with n-1
degrees of freedom (Student's quantiles from scipy, not layerft's table), the verdict, the costs
columns, the markdown rounding, the row order, and best.csv's choice (higher or lower is better),
candidates and difference from the baseline's best. The end-to-end cross-check of a real demo
grid (model=tiny, 4 seeds) found every such number matching; this keeps the recount as a test.
"""

from __future__ import annotations

import csv
import math
import random
import re
from pathlib import Path

import pytest
from test_aggregate import ACC, write_job

from layerft.aggregate import aggregate

F1 = "target/eval_macro_f1"
LOSS = "target/eval_loss"
SEEDS = (1, 2, 3, 4)
CELLS = [
    (inj, mode, lr)
    for inj in ("none", "demo_pos")
    for mode in ("full", "lora")
    for lr in ("5e-5", "1e-3")
]
FAILED = ("demo_pos", "lora", "5e-5", 2)  # its seed 2 failed
MISSING = ("none", "full", "1e-3", 3)  # a baseline row without seed 3
# Student's t 0.975 quantiles with 2 and 3 degrees of freedom (scipy.stats.t.ppf)
T_975 = {2: 4.302652729911275, 3: 3.182446305284263}


def write_grid(root: Path, selection: str, higher: bool) -> dict[tuple[str, str, str], dict]:
    """The fake records; returns, per cell, seed -> its metrics (failed seeds absent)."""
    rng = random.Random(20261207)
    records: dict[tuple[str, str, str], dict] = {}
    for cell in CELLS:
        inj, mode, lr = cell
        records[cell] = {}
        for seed in SEEDS:
            if (*cell, seed) == MISSING:
                continue
            path = root / "-".join(cell) / str(seed)
            common = dict(
                metric=selection,
                higher_is_better=higher,
                overrides=(f"target_task.lr={lr}",),
                injection_task=inj,
                tuning_mode=mode,
            )
            if (*cell, seed) == FAILED:
                write_job(path, seed, error="RuntimeError: boom", **common)
                continue
            metrics = {
                ACC: rng.uniform(0.4, 0.9),
                F1: rng.uniform(0.3, 0.9),
                LOSS: rng.uniform(0.2, 1.0),
                "target/train_runtime": rng.uniform(1.0, 100.0),
                "target/trainable_params": 1001.0 if mode == "lora" else 4000.0,
                "target/total_params": 4000.0,
            }
            if inj != "none":
                metrics["injection/train_runtime"] = rng.uniform(1.0, 50.0)
            write_job(path, seed, metrics=metrics, **common)
            records[cell][seed] = metrics
    return records


def mean_std_n(values: list[float]) -> tuple[float | None, float | None, int]:
    n = len(values)
    if not n:
        return None, None, 0
    mean = sum(values) / n
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else None
    return mean, std, n


def paired(mine: dict, theirs: dict, key: str, higher: bool) -> tuple:
    """mean, low, high, n, verdict of `mine` minus `theirs` over their common seeds."""
    seeds = sorted(mine.keys() & theirs.keys())
    diffs = [mine[s][key] - theirs[s][key] for s in seeds]
    n = len(diffs)
    mean = sum(diffs) / n
    if n < 3:
        return mean, None, None, n, f"too few seeds (n={n})"
    sd = math.sqrt(sum((d - mean) ** 2 for d in diffs) / (n - 1))
    half = T_975[n - 1] * sd / math.sqrt(n)
    low, high = mean - half, mean + half
    if low <= 0 <= high:
        verdict = "no clear difference"
    else:
        verdict = "better" if (low > 0) == higher else "worse"
    return mean, low, high, n, verdict


def cell_text(mean: float | None, std: float | None, n: int) -> str:
    if not n:
        return "-"
    return f"{mean:.4f}" + ("" if std is None else f" ± {std:.4f}") + f" ({n})"


def num(text: str) -> float | None:
    return None if text == "" else float(text)


def check_row(row: dict, seeds: dict, base: dict | None, selection: str, higher: bool) -> None:
    """One results.csv (or best.csv) row against the records of its cell and its baseline's."""
    scores = [k for k in (ACC, F1) if k != selection]  # the other score columns
    for key in (selection, *scores):
        mean, std, n = mean_std_n([seeds[s][key] for s in sorted(seeds)])
        assert num(row[f"{key}_mean"]) == pytest.approx(mean, abs=1e-12), key
        assert num(row[f"{key}_std"]) == pytest.approx(std, abs=1e-12), key
        assert int(row[f"{key}_n"]) == n, key
    assert row["seeds"] == " ".join(map(str, sorted(seeds)))
    runtimes = [
        m.get("injection/train_runtime", 0.0) + m["target/train_runtime"] for m in seeds.values()
    ]
    assert float(row["runtime_s"]) == pytest.approx(sum(runtimes) / len(runtimes), abs=1e-9)
    params = [m["target/trainable_params"] for m in seeds.values()]
    assert int(row["trainable_params"]) == round(sum(params) / len(params))
    shares = [m["target/trainable_params"] / m["target/total_params"] for m in seeds.values()]
    assert float(row["trainable_share"]) == pytest.approx(sum(shares) / len(shares), abs=1e-12)
    if base is None:
        assert row["verdict"] == "baseline"
        assert row["diff_mean"] == row["diff_n"] == ""
        return
    for key, prefix in ((selection, ""), *((k, f"{k}_") for k in scores)):
        mean, low, high, n, verdict = paired(seeds, base, key, higher if key == selection else True)
        assert num(row[f"{prefix}diff_mean"]) == pytest.approx(mean, abs=1e-12), key
        assert num(row[f"{prefix}diff_ci_low"]) == pytest.approx(low, abs=1e-4), key
        assert num(row[f"{prefix}diff_ci_high"]) == pytest.approx(high, abs=1e-4), key
        assert int(row[f"{prefix}diff_n"]) == n, key
        assert row[f"{prefix}verdict"] == verdict, key


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def key_of(row: dict[str, str]) -> tuple[str, str, str]:
    return row["injection_task"], row["tuning_mode"], row["target_task.lr"]


@pytest.mark.parametrize(("selection", "higher"), [(ACC, True), (LOSS, False)])
def test_every_reported_number_matches_an_independent_recount(
    tmp_path: Path, selection: str, higher: bool
) -> None:
    records = write_grid(tmp_path, selection, higher)
    aggregate(tmp_path, best_of=["target_task.lr"])

    # results.csv: one row per cell, in natural order (text, then numbers as numbers)
    rows = read_csv(tmp_path / "results.csv")
    order = sorted(CELLS, key=lambda c: (c[0], c[1], float(c[2])))
    assert [key_of(r) for r in rows] == order
    for row in rows:
        inj, mode, lr = key_of(row)
        base = None if inj == "none" else records["none", mode, lr]
        check_row(row, records[inj, mode, lr], base, selection, higher)
        failed = sum((inj, mode, lr, s) == FAILED for s in SEEDS)
        assert int(row["failed"]) == failed

    # results.md: each row's selection cell, difference and verdict as recounted, rounded
    markdown = (tmp_path / "results.md").read_text(encoding="utf-8")
    assert "31 jobs (30 finished, 1 failed) in 8 combinations" in markdown
    for inj, mode, lr in CELLS:
        seeds = records[inj, mode, lr]
        cell = cell_text(*mean_std_n([seeds[s][selection] for s in sorted(seeds)]))
        # the first table's line (the second, "vs baseline on the other scores", starts alike)
        line = next(x for x in markdown.splitlines() if x.startswith(f"| {inj} | {mode} | {lr} | "))
        cells = line.split(" | ")[3:6]
        assert cells[0] == cell, (inj, mode, lr)
        if inj == "none":
            assert cells[1:] == ["-", "baseline"]
            continue
        mean, low, high, n, verdict = paired(seeds, records["none", mode, lr], selection, higher)
        assert cells[2] == verdict
        # layerft's quantiles are 4-decimal constants (3.1824 for 3.18245): an endpoint at a
        # rounding boundary may print 1 off in its last digit (-0.9098 for the exact -0.90985)
        shown = [float(v) for v in re.findall(r"[-+]\d\.\d{4}", cells[1])]
        assert shown == pytest.approx([mean, low, high], abs=1.5e-4), cells[1]
        assert cells[1].endswith(f"] ({n})") and cells[1].startswith(f"{mean:+.4f} [")

    # best.csv: each (injection task, mode) at the rate with the best mean selection metric
    def mean_of(cell: tuple[str, str, str]) -> float:
        seeds = records[cell]
        return sum(m[selection] for m in seeds.values()) / len(seeds)

    best = {}
    for inj in ("demo_pos", "none"):
        for mode in ("full", "lora"):
            cells = [(inj, mode, lr) for lr in ("5e-5", "1e-3")]  # table order
            pick = (max if higher else min)(cells, key=mean_of)  # the first of equals
            best[inj, mode] = pick
    best_rows = read_csv(tmp_path / "best.csv")
    assert [(r["injection_task"], r["tuning_mode"]) for r in best_rows] == list(best)
    for row in best_rows:
        inj, mode = row["injection_task"], row["tuning_mode"]
        pick = best[inj, mode]
        assert row["target_task.lr"] == pick[2]
        base = None if inj == "none" else records[best["none", mode]]
        check_row(row, records[pick], base, selection, higher)
        candidates = []
        for lr in ("5e-5", "1e-3"):
            cell = (inj, mode, lr)
            failed = sum((*cell, s) == FAILED for s in SEEDS)
            extra = f", {failed} failed" if failed else ""
            candidates.append(f"{lr}: {mean_of(cell):.4f} ({len(records[cell])}{extra})")
        assert row["candidates"] == "; ".join(candidates)
