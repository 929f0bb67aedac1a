"""A sweep's results as one table: every job under a folder, seeds folded into combinations,
`results.csv`, `results.md` and the plots (`layerft/plots.py`).

Serves no config group: `sweep.py` and benchmarks call `aggregate()`. It reads only what each run
writes (`metrics.json`, `failed.json`, `history.jsonl`), never `.hydra/` or a tracker.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from layerft import plots
from layerft.errors import LayerftError
from layerft.results import (
    FAILED_FILE,
    FINGERPRINT_KEY,
    METRICS_FILE,
    RESULT_NEUTRAL_KEYS,
    RUN_PREFIX,
    file_error,
    read_history,
)

log = logging.getLogger(__name__)

DEFAULT_BASELINE = {"injection_task": "none"}  # a row's baseline: the same settings, no stage 1
BOOTSTRAP_RESAMPLES = 10_000
BOOTSTRAP_SEED = 0  # fixed, so the same sweep always gets the same intervals
MIN_PAIRS = 3  # fewer paired seeds get no interval and no verdict
MISSING = "-"  # the value of a setting a job does not have
NOT_SCORES = ("eval_loss", "eval_runtime")  # and `*_per_second`: cost, not quality
OUTPUTS = ("results.csv", "results.md", "failures.csv", *plots.FIGURES)


@dataclass(frozen=True)
class Job:
    """One job of a sweep as its record says: finished (metrics) or failed (error)."""

    run_dir: Path
    mtime: float  # of its record file: of two runs of one config, the newer wins
    fingerprint: str
    settings: dict[str, str]  # choices merged with overrides, minus seed and result-neutral keys
    seed: int
    selection_metric: str
    higher_is_better: bool
    metrics: dict[str, float]  # empty when failed
    error: str | None = None  # "<type>: <message>" when failed


@dataclass
class Combination:
    """The jobs with equal settings: one row of the table."""

    settings: dict[str, str]
    finished: list[Job]
    failed: list[Job]

    @property
    def selection_metric(self) -> str:
        return (self.finished or self.failed)[0].selection_metric

    @property
    def higher_is_better(self) -> bool:
        return (self.finished or self.failed)[0].higher_is_better

    def values(self, key: str) -> dict[int, float]:
        """seed -> the metric, for the finished jobs that report it."""
        return {job.seed: job.metrics[key] for job in self.finished if key in job.metrics}


@dataclass(frozen=True)
class Failure:
    run_dir: Path
    settings: str  # the combination's label (its varied settings)
    seed: int
    error: str


@dataclass
class Aggregate:
    """What `aggregate` wrote: the csv's rows and columns, the failed jobs, the files."""

    rows: list[dict[str, Any]]
    columns: list[str]
    varied: list[str]  # the settings that differ across rows (the first columns)
    failures: list[Failure]
    paths: list[Path]
    markdown: str  # results.md


def aggregate(
    sweep_dir: Path,
    baseline: dict[str, str] | None = None,
    heatmap: tuple[str, str] | None = None,
    extra_metrics: Sequence[str] = (),
) -> Aggregate:
    """Fold the jobs under `sweep_dir` into one row per combination; write the tables and plots.

    `baseline` replaces settings to name each row's baseline (default: injection_task=none);
    `heatmap` names its two settings; `extra_metrics` are metrics.json keys to summarise too.
    """
    jobs = read_jobs(sweep_dir)
    combos = combine(jobs)
    varied = varied_settings(combos)
    combos.sort(key=lambda c: [plots.natural_key(setting(c.settings, k)) for k in varied])
    table = build_table(combos, varied, check_baseline(baseline, jobs), list(extra_metrics))
    plot_rows = [plot_row(c, varied, b) for c, b in zip(combos, table.is_baseline, strict=True)]
    axes = plots.heatmap_axes(plot_rows, varied, heatmap)  # a wrong name fails before any write
    failures = [
        Failure(job.run_dir, label(c.settings, varied), job.seed, job.error or "")
        for c in combos
        for job in c.failed
    ]
    markdown = render_markdown(sweep_dir, table, failures, jobs)
    written = {
        "results.csv": lambda p: p.write_text(csv_text(table.columns, table.rows)),
        "results.md": lambda p: p.write_text(markdown),
    }
    if failures:
        rows = [
            {"run_dir": str(f.run_dir), "settings": f.settings, "seed": f.seed, "error": f.error}
            for f in failures
        ]
        written["failures.csv"] = lambda p: p.write_text(csv_text(list(rows[0]), rows))
    metric = table.selection if table.uniform else "selection metric (per row)"
    for name, figure in plots.draw(plot_rows, varied, metric, axes).items():
        written[name] = lambda p, fig=figure: fig.savefig(p, format="png", dpi=120)
    for name in OUTPUTS:
        if name not in written and (sweep_dir / name).exists():
            # an earlier aggregation's, which would disagree with this table
            (sweep_dir / name).unlink()
    paths = [sweep_dir / name for name in written]
    for path in paths:
        write_atomic(path, written[path.name])
    log.info("sweep results: %s", ", ".join(str(p) for p in paths))
    return Aggregate(table.rows, table.columns, varied, failures, paths, markdown)


# --- reading jobs -----------------------------------------------------------------------------


def read_jobs(sweep_dir: Path) -> list[Job]:
    """Every job under `sweep_dir` at any depth, one per config and per (settings, seed): a finished
    record before a failed one, then the newer."""
    if not sweep_dir.is_dir():
        raise LayerftError(f"no sweep folder {sweep_dir}")
    dirs = sorted({p.parent for name in (METRICS_FILE, FAILED_FILE) for p in sweep_dir.rglob(name)})
    if not dirs:
        raise LayerftError(f"no job in {sweep_dir}: no {METRICS_FILE} or {FAILED_FILE} under it")
    jobs = [read_job(d) for d in dirs]
    jobs = _latest(jobs, lambda job: job.fingerprint)
    return _latest(jobs, lambda job: (tuple(sorted(job.settings.items())), job.seed))


def _latest(jobs: list[Job], same: Callable[[Job], Any]) -> list[Job]:
    kept: dict[Any, Job] = {}
    for job in sorted(jobs, key=lambda j: (j.error is None, j.mtime)):
        if same(job) in kept:
            log.info("%s: a newer record of the same run wins over it", kept[same(job)].run_dir)
        kept[same(job)] = job
    return sorted(kept.values(), key=lambda j: j.run_dir)


def read_job(run_dir: Path) -> Job:
    """The job in `run_dir`: its `metrics.json` if it finished, else its `failed.json`."""
    path = run_dir / METRICS_FILE
    if not path.exists():
        path = run_dir / FAILED_FILE
    try:
        data = json.loads(path.read_text())
    except OSError as err:
        raise file_error("read", path, err) from err
    except json.JSONDecodeError as err:
        raise LayerftError(f"corrupt run record {path}: not JSON ({err})") from None
    try:
        return _job(run_dir, path, data)
    except (KeyError, TypeError, ValueError) as err:
        raise LayerftError(f"corrupt run record {path}: {err}") from None


def _job(run_dir: Path, path: Path, data: Any) -> Job:
    if not isinstance(data, dict):
        raise TypeError("not a JSON object")
    run = {key: data[RUN_PREFIX + key] for key in ("choices", "seed", "overrides")}
    run |= {key: data[RUN_PREFIX + key] for key in ("selection_metric", "higher_is_better")}
    metrics = {k: v for k, v in data.items() if not k.startswith(RUN_PREFIX)}
    bad = [k for k, v in metrics.items() if isinstance(v, bool) or not isinstance(v, int | float)]
    if bad:
        raise ValueError(f"{bad[0]} is not a number")
    finished = path.name == METRICS_FILE
    error, kind = str(data.get("run/error", "(no message)")), data.get("run/error_type")
    if kind and not error.startswith(f"{kind}:"):  # sweep.py writes "<type>: <first line>"
        error = f"{kind}: {error}"
    return Job(
        run_dir,
        path.stat().st_mtime,
        str(data[FINGERPRINT_KEY]),
        job_settings(run["choices"], run["overrides"]),
        int(run["seed"]),
        str(run["selection_metric"]),
        bool(run["higher_is_better"]),
        {k: float(v) for k, v in metrics.items()} if finished else {},
        None if finished else error,
    )


def job_settings(choices: dict[str, str], overrides: list[str]) -> dict[str, str]:
    """Group choices merged with `key=value` overrides, minus seed and keys that change no result."""
    settings = {group: str(option) for group, option in choices.items()}
    for override in overrides:
        key, _, value = override.partition("=")
        # `+key`, `++key`, `~key` (a deletion); `group@package=option` is the package's choice
        settings[key.lstrip("+~").split("@")[-1]] = "(deleted)" if key[0] == "~" else value
    return {key: value for key, value in settings.items() if not _neutral(key)}


def _neutral(key: str) -> bool:
    neutral = ("seed", *RESULT_NEUTRAL_KEYS)
    return key.startswith(("hydra.", "hydra/")) or any(
        key == n or key.startswith(n + ".") for n in neutral
    )


# --- combinations and their rows ---------------------------------------------------------------


def combine(jobs: list[Job]) -> list[Combination]:
    """The jobs grouped by settings (seeds folded), each group's jobs by seed."""
    groups: dict[tuple[tuple[str, str], ...], Combination] = {}
    for job in sorted(jobs, key=lambda j: j.seed):
        combo = groups.setdefault(
            tuple(sorted(job.settings.items())), Combination(job.settings, [], [])
        )
        (combo.finished if job.error is None else combo.failed).append(job)
    return list(groups.values())


def setting(settings: dict[str, str], key: str) -> str:
    return settings.get(key, MISSING)


def varied_settings(combos: list[Combination]) -> list[str]:
    """Settings whose values differ across combinations: groups first, then dotted keys."""
    seen: dict[str, int] = {}
    for combo in combos:
        for key in combo.settings:
            seen.setdefault(key, len(seen))
    varied = [k for k in seen if len({setting(c.settings, k) for c in combos}) > 1]
    return sorted(varied, key=lambda k: ("." in k, seen[k]))


def label(settings: dict[str, str], varied: list[str]) -> str:
    """`key=value,...` over the varied settings: a row's name in plots and the failures list."""
    return ",".join(f"{k}={setting(settings, k)}" for k in varied) or "all"


def check_baseline(baseline: dict[str, str] | None, jobs: list[Job]) -> dict[str, str]:
    """The settings replaced to find a row's baseline; a user's key must be a setting of the sweep."""
    if baseline is None:
        return DEFAULT_BASELINE
    known = {key for job in jobs for key in job.settings}
    unknown = sorted(set(baseline) - known)
    if unknown:
        raise LayerftError(
            f"baseline setting {unknown[0]} is in no job (settings: {', '.join(sorted(known))})"
        )
    return {key: str(value) for key, value in baseline.items()}


def plot_row(combo: Combination, varied: list[str], is_baseline: bool) -> plots.PlotRow:
    """What the plots need of a combination: its scores and stage-2 dev curves, one per seed."""
    curves = [dev_curve(job) for job in combo.finished]
    return plots.PlotRow(
        label(combo.settings, varied),
        {k: setting(combo.settings, k) for k in varied},
        list(combo.values(combo.selection_metric).values()),
        [c for c in curves if c],
        is_baseline,
    )


def dev_curve(job: Job) -> list[tuple[int, float]]:
    """(step, dev selection metric) of stage 2's evaluations. They come before the line holding
    `target/train_runtime`; the evaluation after it re-scores the best checkpoint."""
    try:
        lines = read_history(job.run_dir)
    except (OSError, ValueError) as err:  # a job killed mid-line
        log.warning("%s: no dev curve, its history is unreadable (%s)", job.run_dir, err)
        return []
    curve = []
    for line in lines:
        if "target/train_runtime" in line:
            break
        if job.selection_metric in line:
            curve.append((int(line["step"]), float(line[job.selection_metric])))
    return curve


# --- the table --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Comparison:
    """A row's selection metric against its baseline's, paired by seed (row minus baseline)."""

    verdict: str
    diffs: tuple[float, ...] | None = None  # None: nothing compared
    ci: tuple[float, float] | None = None  # 95% bootstrap interval of the mean difference

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


def compare(combo: Combination, base: Combination | None) -> Comparison:
    """The paired difference to `base` over the seeds both have, its interval and verdict."""
    if base is combo:
        return Comparison("baseline")
    if base is None or base.selection_metric != combo.selection_metric:
        return Comparison("no baseline")
    mine, theirs = combo.values(combo.selection_metric), base.values(combo.selection_metric)
    diffs = np.array([mine[s] - theirs[s] for s in sorted(mine.keys() & theirs.keys())])
    if len(diffs) < MIN_PAIRS:
        return Comparison(f"too few seeds (n={len(diffs)})", tuple(diffs.tolist()))
    low, high = bootstrap_ci(diffs)
    if low <= 0 <= high:
        verdict = "no clear difference"
    else:
        verdict = "better" if (low > 0) == combo.higher_is_better else "worse"
    return Comparison(verdict, tuple(diffs.tolist()), (low, high))


def bootstrap_ci(diffs: np.ndarray) -> tuple[float, float]:
    """95% percentile bootstrap interval of the mean of paired differences (pairs resampled)."""
    rng = np.random.default_rng(BOOTSTRAP_SEED)  # a fresh one per row: rows do not shift each other
    picks = rng.integers(0, len(diffs), size=(BOOTSTRAP_RESAMPLES, len(diffs)))
    low, high = np.percentile(diffs[picks].mean(axis=1), [2.5, 97.5])
    return float(low), float(high)


def summary(name: str, values: list[float]) -> dict[str, Any]:
    """`<name>_mean`, `_std` (sample std; None for one value) and `_n`."""
    n = len(values)
    return {
        f"{name}_mean": float(np.mean(values)) if n else None,
        f"{name}_std": float(np.std(values, ddof=1)) if n > 1 else None,
        f"{name}_n": n,
    }


def is_score(key: str) -> bool:
    """A `<stage>/eval_*` metric that measures quality, not loss, time or speed."""
    stage, _, name = key.partition("/")
    return (
        stage in ("injection", "target")
        and name.startswith("eval_")
        and name not in NOT_SCORES
        and not name.endswith("_per_second")
    )


@dataclass(frozen=True)
class Table:
    """results.csv: per row its varied settings, then mean/std/n per metric, the baseline
    difference, run time, trainable parameters, seeds and failed jobs."""

    combos: list[Combination]  # in row order
    varied: list[str]
    selection: str  # the selection metric's key, or "selection" when rows differ in it
    uniform: bool  # all rows share one selection metric (else a column names each row's)
    metrics: list[str]  # the other metrics summarised, in column order
    constant: dict[str, str]  # settings every job shares
    spec: dict[str, str]  # a row's baseline: its settings with these replaced
    is_baseline: list[bool]  # per row: the baseline of another row
    rows: list[dict[str, Any]]
    columns: list[str]


def build_table(
    combos: list[Combination], varied: list[str], spec: dict[str, str], extra: list[str]
) -> Table:
    """The rows of results.csv, the combinations in the given order."""
    selections = {c.selection_metric for c in combos}
    uniform = len(selections) == 1
    selection = selections.pop() if uniform else "selection"
    keys = {k for c in combos for job in c.finished for k in job.metrics}
    scores = sorted((k for k in keys if is_score(k)), key=lambda k: (k.startswith("injection/"), k))
    metrics = [k for k in scores + [k for k in extra if k in keys] if k != selection]
    metrics = list(dict.fromkeys(metrics))  # an extra metric that is also a score: once
    first = combos[0].settings
    constant = {k: v for k, v in first.items() if all(c.settings.get(k) == v for c in combos)}
    by_settings = {_key(c.settings): c for c in combos}
    bases = [by_settings.get(_key({**c.settings, **spec})) for c in combos]
    rows = []
    for combo, base in zip(combos, bases, strict=True):
        row: dict[str, Any] = {k: setting(combo.settings, k) for k in varied}
        if not uniform:
            row["selection_metric"] = combo.selection_metric
        row |= summary(selection, list(combo.values(combo.selection_metric).values()))
        row |= compare(combo, base).cells()
        for key in metrics:
            row |= summary(key, list(combo.values(key).values()))
        rows.append(row | costs(combo))
    is_baseline = [
        any(b is c and b is not o for b, o in zip(bases, combos, strict=True)) for c in combos
    ]
    return Table(
        combos,
        varied,
        selection,
        uniform,
        metrics,
        constant,
        spec,
        is_baseline,
        rows,
        list(rows[0]),
    )


def costs(combo: Combination) -> dict[str, Any]:
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
        "failed": len(combo.failed),
    }


def _key(settings: dict[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(settings.items()))


def _mean(values: list[float]) -> float | None:
    return float(np.mean(values)) if values else None


# --- files ------------------------------------------------------------------------------------


def render_markdown(sweep_dir: Path, table: Table, failures: list[Failure], jobs: list[Job]) -> str:
    """results.md: what was aggregated, the table (mean ± std (n)), then the failed jobs."""
    first = table.combos[0]
    better = "higher" if first.higher_is_better else "lower"
    spec = ", ".join(f"{k}={v}" for k, v in table.spec.items())
    lines = [
        f"# Sweep results: {sweep_dir}",
        "",
        f"{len(jobs)} jobs ({len(jobs) - len(failures)} finished, {len(failures)} failed) in "
        f"{len(table.rows)} combinations; a cell is mean ± std (n seeds).",
        f"Selection metric: `{table.selection}` ({better} is better)."
        if table.uniform
        else "Selection metric: each row's own (column `selection metric`).",
        f"vs baseline: this row minus its baseline (same settings but {spec}) on the selection "
        f"metric, paired by seed, with a 95% bootstrap interval; a verdict needs {MIN_PAIRS} pairs.",
        "runtime: stage 1 + stage 2 training seconds (a reused stage 1 counts its original time).",
    ]
    if table.constant:
        lines.append(
            "Same in every job: " + ", ".join(f"`{k}={v}`" for k, v in table.constant.items())
        )
    names = table.varied or ["combination"]
    header = [*names, *(["selection metric"] if not table.uniform else [])]
    header += [table.selection, "vs baseline", "verdict", *table.metrics]
    header += ["runtime (s)", "trainable params", "share", "seeds", "failed"]
    lines += ["", _md_line(header), "|" + "---|" * len(header)]
    for row in table.rows:
        cells = [row.get(k, "all") for k in names]
        cells += [row["selection_metric"]] if not table.uniform else []
        cells += [_md_summary(row, table.selection), _md_diff(row), row["verdict"]]
        cells += [_md_summary(row, key) for key in table.metrics]
        cells += [
            "-" if row["runtime_s"] is None else f"{row['runtime_s']:.1f}",
            "-" if row["trainable_params"] is None else f"{row['trainable_params']:,}",
            "-" if row["trainable_share"] is None else f"{100 * row['trainable_share']:.2f}%",
            row["seeds"] or "-",
            str(row["failed"]),
        ]
        lines.append(_md_line(cells))
    lines += ["", "## Failures", ""]
    if not failures:
        lines.append("No job failed.")
    else:
        lines += [_md_line(["job", "settings", "seed", "error"]), "|---|---|---|---|"]
        for failure in failures:
            job = failure.run_dir.relative_to(sweep_dir) if failure.run_dir != sweep_dir else "."
            lines.append(_md_line([str(job), failure.settings, str(failure.seed), failure.error]))
    return "\n".join(lines) + "\n"


def _md_line(cells: list[str]) -> str:
    return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"


def _md_summary(row: dict[str, Any], name: str) -> str:
    mean, std, n = row[f"{name}_mean"], row[f"{name}_std"], row[f"{name}_n"]
    if not n:
        return "-"
    digits = 1 if abs(mean) >= 100 else 4  # run times and memory in MiB; scores in [0, 1]
    text = f"{mean:.{digits}f}" + ("" if std is None else f" ± {std:.{digits}f}")
    return f"{text} ({n})"


def _md_diff(row: dict[str, Any]) -> str:
    if row["diff_mean"] is None:
        return "-"
    text = f"{row['diff_mean']:+.4f}"
    if row["diff_ci_low"] is not None:
        text += f" [{row['diff_ci_low']:+.4f}, {row['diff_ci_high']:+.4f}]"
    return f"{text} ({row['diff_n']})"


def csv_text(columns: list[str], rows: list[dict[str, Any]]) -> str:
    """CSV with a header; None is an empty cell."""
    out = io.StringIO()
    writer = csv.DictWriter(out, columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def write_atomic(path: Path, write: Callable[[Path], Any]) -> None:
    """`write` into a temporary file beside `path`, then rename it there: readers see all of the
    file or none, as with results.write_json_atomic."""
    tmp = None
    try:
        fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.close(fd)
        tmp = Path(name)
        write(tmp)
        with tmp.open("rb") as handle:
            os.fsync(handle.fileno())
        tmp.chmod(0o644)  # mkstemp makes it private; results are for everyone to read
        os.replace(tmp, path)
    except BaseException as err:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        if isinstance(err, OSError):
            raise file_error("write", path, err) from err
        raise
