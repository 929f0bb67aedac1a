"""A sweep's table: jobs with equal settings folded into one row (seeds as samples), each row's
summaries, costs and paired difference to its baseline row.

Serves no config group: `layerft/aggregate.py` builds it, `layerft/sweep_report.py` renders it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from layerft.errors import LayerftError
from layerft.metrics import METRICS, PREDICTED_CLASSES
from layerft.sweep_job import Job, SettingsKey, settings_key
from layerft.sweep_notes import notes
from layerft.sweep_settings import effective_settings
from layerft.sweep_stats import compare, costs, summary
from layerft.unread_keys import unread_prefix

MISSING = "-"  # the value of a setting a job does not have
# Cost, not quality: dev loss and time (also an extra dev set's: `eval_mismatched_loss`), speed;
# and what a metric returns beside its scores (squad_v2's thresholds).
NOT_SCORE_ENDINGS = ("_loss", "_runtime", "_per_second", "_time", PREDICTED_CLASSES) + tuple(
    key for spec in METRICS.values() for key in spec.not_scores
)


@dataclass
class TableRow:
    """The jobs with equal settings: one row of the table."""

    settings: dict[str, str]
    finished: list[Job]
    failed: list[Job]
    unread: tuple[str, ...] = ()  # the settings its runs never read (Job.unread)

    @property
    def selection_metric(self) -> str:
        return (self.finished or self.failed)[0].selection_metric

    @property
    def higher_is_better(self) -> bool:
        return (self.finished or self.failed)[0].higher_is_better

    def seeds_by_config(self) -> list[list[int]]:
        """The finished jobs' seeds, one list per config (seedless fingerprint; a record written
        before it existed is left out): more than one list is a row that mixes configs."""
        groups: dict[str, list[int]] = {}
        for job in self.finished:
            if job.seedless_fingerprint is not None:
                groups.setdefault(job.seedless_fingerprint, []).append(job.seed)
        return list(groups.values())

    def seeds_with(self, stage: str, ending: str) -> list[int]:
        """Seeds with a `stage` metric ending in `ending` at 1 (sweep_notes.FLAGS: a best checkpoint
        that predicts one label for a dev set's every example, or is the model as given)."""
        return sorted(
            job.seed
            for job in self.finished
            if any(
                k.startswith(f"{stage}/") and k.endswith(ending) and v == 1
                for k, v in job.metrics.items()
            )  # fmt: skip
        )

    def later_failed_seeds(self) -> list[int]:
        """Seeds of later attempts that failed while the row averages an earlier result of theirs
        (a later attempt of another config refused in a folder has no result here: a failure)."""
        finished = {job.seed for job in self.finished}
        return sorted(job.seed for job in self.failed if job.later_attempt and job.seed in finished)

    def failed_count(self) -> int:
        """Its failed jobs, less later attempts whose seed it averages an earlier result of."""
        return len(self.failed) - len(self.later_failed_seeds())

    def older_seeds(self) -> list[int]:
        """Seeds whose result an older layerft computed (run_record.RESULTS_VERSION)."""
        return sorted(job.seed for job in self.finished if job.older)

    def cpu_threads(self) -> dict[int, int]:
        """seed -> the CPU threads its finished job computed at, for those that record one."""
        return {job.seed: job.cpu_threads for job in self.finished if job.cpu_threads is not None}

    def devices(self) -> dict[int, str]:
        """seed -> what its finished job trained on, for those that record it."""
        return {job.seed: job.device for job in self.finished if job.device is not None}

    def values(self, key: str) -> dict[int, float]:
        """seed -> the metric, for the finished jobs that report it."""
        return {job.seed: job.metrics[key] for job in self.finished if key in job.metrics}


@dataclass(frozen=True)
class Failure:
    """A failed job as the failures list names it."""

    run_dir: Path
    settings: str  # the combination's label (its varied settings)
    seed: int
    error: str


def combine(jobs: list[Job]) -> list[TableRow]:
    """The jobs grouped by settings (seeds folded), each group's jobs by seed."""
    groups: dict[SettingsKey, TableRow] = {}
    for job in sorted(jobs, key=lambda j: j.seed):
        combo = groups.setdefault(settings_key(job.settings), TableRow(job.settings, [], []))
        # Seeds written before fingerprint scheme 3 list none (Job.unread): the row's is their union.
        combo.unread = tuple(dict.fromkeys([*combo.unread, *job.unread]))
        (combo.finished if job.error is None else combo.failed).append(job)
    return list(groups.values())


def check_settings(option: str, keys: Sequence[str], combos: list[TableRow]) -> None:
    """Each of an option's `keys` is a setting of some row (a typo would draw or choose nothing)."""
    if unknown := [k for k in keys if not any(k in c.settings for c in combos)]:
        known = sorted({k for c in combos for k in c.settings})
        raise LayerftError(f"{option} {unknown[0]}: no job sets it (settings: {', '.join(known)})")


def setting(settings: dict[str, str], key: str) -> str:
    """A job's value of setting `key`, MISSING where it has none."""
    return settings.get(key, MISSING)


def varied_settings(combos: list[TableRow]) -> list[str]:
    """Settings whose values differ across combinations: groups first, then dotted keys. A row
    where a setting does not apply (`injection_task.*` under injection_task=none) counts no value
    of it: one value wherever it applies is the same in every job, not a varied setting."""
    seen: dict[str, int] = {}
    for combo in combos:
        for key in combo.settings:
            seen.setdefault(key, len(seen))
    varied = [
        key
        for key in seen
        if len({setting(c.settings, key) for c in combos if applies(c, key)}) > 1
    ]
    return sorted(varied, key=lambda k: ("." in k, seen[k]))


def applies(combo: TableRow, key: str) -> bool:
    """Whether setting `key` changes the runs of a row: neither one they never read (Job.unread)
    nor one that `effective_settings` would drop."""
    settings = combo.settings
    if key in settings:
        return True
    return not unread_prefix(key, combo.unread) and key in effective_settings(
        {**settings, key: MISSING}
    )


def label(settings: dict[str, str], varied: list[str]) -> str:
    """`key=value,...` over the varied settings: a row's name in plots and the failures list."""
    return ",".join(f"{k}={setting(settings, k)}" for k in varied) or "all"


def is_score(key: str) -> bool:
    """A `<stage>/eval_*` metric that measures quality, not loss, time or speed."""
    stage, _, name = key.partition("/")
    return (
        stage in ("injection", "target")
        and name.startswith("eval_")
        and not name.endswith(NOT_SCORE_ENDINGS)
    )


@dataclass(frozen=True)
class Table:
    """results.csv: per row its varied settings, then mean/std/n per metric, the baseline
    difference, run time, trainable parameters, seeds, failed jobs and notes (what the numbers
    hide)."""

    combos: list[TableRow]  # in row order
    varied: list[str]
    selection: str  # the selection metric's key, or "selection" when rows differ in it
    uniform: bool  # all rows share one selection metric (else a column names each row's)
    metrics: list[str]  # the other metrics summarised, in column order
    constant: dict[str, str]  # settings every job shares
    applying: dict[str, str]  # settings every job shares where they apply (the others lack them)
    spec: dict[str, str]  # a row's baseline: its settings with these replaced
    is_baseline: list[bool]  # per row: the baseline of another row
    rows: list[dict[str, Any]]
    columns: list[str]

    @property
    def higher_is_better(self) -> bool | None:
        """Of the rows' one selection metric, None where they differ (a row whose jobs all failed
        before their config validated has none to say)."""
        if not self.uniform:
            return None
        return next((c.higher_is_better for c in self.combos if c.selection_metric), True)


def build_table(
    combos: list[TableRow],
    varied: list[str],
    spec: dict[str, str],
    bases: list[TableRow | None],
    extra: list[str],
) -> Table:
    """The rows of results.csv, the combinations in the given order, each beside its baseline
    row (`bases`, of sweep_baseline.baselines: None where it has none) under `spec`."""
    # A row whose every job failed before its config validated has none ("").
    selections = {c.selection_metric for c in combos if c.selection_metric} or {""}
    uniform = len(selections) == 1
    selection = selections.pop() if uniform else "selection"
    keys = {k for c in combos for job in c.finished for k in job.metrics}
    scores = sorted((k for k in keys if is_score(k)), key=lambda k: (k.startswith("injection/"), k))
    metrics = [k for k in scores + [k for k in extra if k in keys] if k != selection]
    metrics = list(dict.fromkeys(metrics))  # an extra metric that is also a score: once
    same = {k: v for c in combos for k, v in c.settings.items() if k not in varied}
    constant = {k: v for k, v in same.items() if all(k in c.settings for c in combos)}
    applying = {k: v for k, v in same.items() if k not in constant}
    is_baseline = [
        any(b is c and b is not o for b, o in zip(bases, combos, strict=True)) for c in combos
    ]
    rows = []
    for combo, base, compared in zip(combos, bases, is_baseline, strict=True):
        row: dict[str, Any] = {k: setting(combo.settings, k) for k in varied}
        if not uniform:
            row["selection_metric"] = combo.selection_metric
        row |= summary(selection, list(combo.values(combo.selection_metric).values()))
        row |= compare(combo, base, compared).cells()
        for key in metrics:
            row |= summary(key, list(combo.values(key).values()))
            if is_score(key):  # its paired difference too (results.md's second table)
                cells = compare(combo, base, compared, key).cells()
                row |= {f"{key}_{name}": value for name, value in cells.items()}
        rows.append(
            row
            | costs(combo)
            | {"notes": "; ".join(notes(combo, base, label(combo.settings, varied)))}
        )
    return Table(
        combos,
        varied,
        selection,
        uniform,
        metrics,
        constant,
        applying,
        spec,
        is_baseline,
        rows,
        list(rows[0]),
    )
