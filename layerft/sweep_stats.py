"""A table row against its baseline row: paired differences over the seeds both have, their 95%
paired t interval and a verdict; the mean ± std summary of a row's values; and its costs (run
time, trainable parameters), seeds and failed jobs (`costs`).

Serves no config group: `layerft/sweep_table.py` fills each row's cells with these.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from layerft.metrics import METRICS

if TYPE_CHECKING:
    from layerft.sweep_table import TableRow

MIN_PAIRS = 3  # fewer paired seeds get no interval and no verdict
NO_SPREAD = "same difference at every seed: no interval"
# Student's t 0.975 quantile by degrees of freedom (1-30); above 30 its Cornish-Fisher expansion,
# within 1e-4 there. A bootstrap interval is too narrow at a few seeds: with 3 pairs it is always
# [min, max], which leaves out 0 whenever the three differences share a sign (1 in 4 under no effect).
T_975 = (
    12.7062,
    4.3027,
    3.1824,
    2.7764,
    2.5706,
    2.4469,
    2.3646,
    2.3060,
    2.2622,
    2.2281,
    2.2010,
    2.1788,
    2.1604,
    2.1448,
    2.1314,
    2.1199,
    2.1098,
    2.1009,
    2.0930,
    2.0860,
    2.0796,
    2.0739,
    2.0687,
    2.0639,
    2.0595,
    2.0555,
    2.0518,
    2.0484,
    2.0452,
    2.0423,
)


@dataclass(frozen=True)
class Comparison:
    """A row's selection metric against its baseline's, paired by seed (row minus baseline)."""

    verdict: str
    diffs: tuple[float, ...] | None = None  # None: nothing compared
    ci: tuple[float, float] | None = None  # 95% paired t interval of the mean difference

    def cells(self) -> dict[str, Any]:
        low, high = self.ci or (None, None)
        mean = float(np.mean(self.diffs)) if self.diffs else None
        n = None if self.diffs is None else len(self.diffs)
        return {
            "diff_mean": mean,
            "diff_ci_low": low,
            "diff_ci_high": high,
            "diff_n": n,
            "verdict": self.verdict,
        }


def compare(
    combo: TableRow, base: TableRow | None, compared: bool, metric: str | None = None
) -> Comparison:
    """The paired difference to `base` over the seeds both have, its interval and verdict
    (`compared`: another row has this one as its baseline), on the selection metric or another
    score both rows report (`metric`)."""
    # Said as such: "too few seeds (n=0)" hid that a whole row failed, as "baseline of no row"
    # did for a baseline row (whose rows say "all 3 baseline jobs failed")
    if not combo.finished:
        return Comparison(all_failed(len(combo.failed), "job"))
    if base is combo:
        return Comparison("baseline" if compared else "baseline of no row")
    if base is None:
        return Comparison("no baseline")
    if not base.finished:  # before its metric: a job refused before its config was checked has ""
        return Comparison(all_failed(len(base.failed), "baseline job"))
    if base.selection_metric != combo.selection_metric:
        return Comparison("no baseline")
    if metric == combo.selection_metric:  # a row of its own selection metric: compared above
        return Comparison("")
    key = metric or combo.selection_metric
    mine, theirs = combo.values(key), base.values(key)
    if not (mine and theirs):  # another score: a stage-1 one beside a row without stage 1
        return Comparison("not in both" if mine or theirs else "")
    higher = combo.higher_is_better if metric is None else score_is_higher(metric)
    diffs = np.array([mine[s] - theirs[s] for s in sorted(mine.keys() & theirs.keys())])
    if len(diffs) < MIN_PAIRS:
        return Comparison(f"too few seeds (n={len(diffs)})", tuple(diffs.tolist()))
    if not np.isfinite(diffs).all():  # a record not written by layerft (it refuses NaN)
        return Comparison("a score is not finite", tuple(diffs.tolist()))
    if no_spread(diffs):  # a zero-width interval said "better" of, e.g., a seed-independent eval
        return Comparison(NO_SPREAD, tuple(diffs.tolist()))
    low, high = paired_t_interval(diffs)
    if low <= 0 <= high:
        verdict = "no clear difference"
    else:
        verdict = "better" if (low > 0) == higher else "worse"
    return Comparison(verdict, tuple(diffs.tolist()), (low, high))


def score_is_higher(key: str) -> bool:
    """Whether more is better of a score (`target/eval_f1`, `target/eval_mm_accuracy` of a further
    dev set), as its metric's registry entry says."""
    name = key.partition("/eval_")[2]
    return all(
        spec.higher_is_better
        for spec in METRICS.values()
        if any(name == k or name.endswith(f"_{k}") for k in spec.keys)
    )


def no_spread(diffs: np.ndarray) -> bool:
    """Every pair differs by the same amount (up to float rounding): the seeds do not vary these
    runs' difference, so they are no replicates to put an interval on (a t interval has zero
    width: it called a difference certain that one seed alone would show)."""
    return float(np.ptp(diffs)) <= 1e-9 * max(1.0, float(np.max(np.abs(diffs))))


def all_failed(count: int, what: str) -> str:
    """ "all 3 jobs failed", or "its 1 job failed"."""
    return f"its 1 {what} failed" if count == 1 else f"all {count} {what}s failed"


def paired_t_interval(diffs: np.ndarray) -> tuple[float, float]:
    """95% interval of the mean of paired differences: mean ± t(0.975, n-1) · sd / √n."""
    n = len(diffs)
    mean = float(np.mean(diffs))
    half = t_975(n - 1) * float(np.std(diffs, ddof=1)) / np.sqrt(n)
    return mean - half, mean + half


def t_975(df: int) -> float:
    """Student's t 0.975 quantile with `df` degrees of freedom."""
    if df <= len(T_975):
        return T_975[df - 1]
    z = 1.959964
    return z + (z**3 + z) / (4 * df) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)


def summary(name: str, values: list[float]) -> dict[str, Any]:
    """`<name>_mean`, `_std` (sample std; None for one value) and `_n`."""
    n = len(values)
    std = float(np.std(values, ddof=1)) if n > 1 else None
    # Equal scores: np.std's rounding (1.4e-16 for three 0.7s) is no spread for results.md to show
    if std and all(v == values[0] for v in values):
        std = 0.0
    return {
        f"{name}_mean": float(np.mean(values)) if n else None,
        f"{name}_std": std,
        f"{name}_n": n,
    }


def costs(combo: TableRow) -> dict[str, Any]:
    """Mean run time of both stages, trainable parameters and their share, seeds, failed jobs."""
    runtimes = [
        job.metrics.get("injection/train_runtime", 0.0) + job.metrics["target/train_runtime"]
        for job in combo.finished
        if "target/train_runtime" in job.metrics
    ]
    params = combo.values("target/trainable_params")
    totals = combo.values("target/total_params")
    return {
        "runtime_s": _mean(runtimes),
        "trainable_params": round(np.mean(list(params.values()))) if params else None,
        "trainable_share": _mean([params[s] / totals[s] for s in params if totals.get(s)]),
        "seeds": " ".join(str(job.seed) for job in combo.finished),
        # A later attempt's failure whose seed the row averages is in the notes, not a failure.
        "failed": combo.failed_count(),
    }


def _mean(values: list[float]) -> float | None:
    return float(np.mean(values)) if values else None
