"""`python sweep.py <grid>`: a named grid of conf/sweep/ as one Hydra multirun into
`multirun_outputs/<grid>/`, resumable and failure-isolated, aggregated at the end.

- Each combination's job directory is named after its swept settings (`seed=1,tuning_mode=lora`);
  a job whose config already has a finished result anywhere in the sweep folder is not launched
  (the key is the config fingerprint, layerft/results.py), so a rerun only runs what is missing.
- A job that fails (an exception, a NaN loss, out of memory) writes `failed.json` and the sweep
  goes on; the summary lists failures and the exit code is 1 if any combination is not finished.
- `--dry-run` lists the combinations, the distinct stage-1 trainings they need, and which are done.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import hashlib
import json
import logging
import re
import sys
import tempfile
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import hydra
import yaml
from hydra import compose, initialize_config_dir
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf, open_dict

from hydra_plugins.layerft_launcher.skipping_sweeper import store_skipping_sweeper
from layerft.config import (
    CONFIG_ERRORS,
    check_switch_overrides,
    composition_error_line,
    data_files,
    register_configs,
    resolve_config,
    to_run_config,
)

if TYPE_CHECKING:
    from layerft.aggregate import Aggregate
    from layerft.stage1 import Stage1Store
    from layerft.tracker import TrackerConfig
from layerft.credentials import mask_credentials
from layerft.errors import LayerftError, error_line, hydra_raises, traceback_wanted
from layerft.file_lock import held_lock
from layerft.interrupts import interrupted, remembered_interrupts, stop_if_interrupted
from layerft.results import (
    FAILED_FILE,
    FINGERPRINT_KEY,
    METRICS_FILE,
    RESULTS_VERSION,
    changed_data,
    config_fingerprint,
    earlier_fingerprints,
    file_error,
    file_sha256,
    migrated_fingerprints,
    older_results,
    read_record,
    results_version,
    write_json_atomic,
)

log = logging.getLogger(__name__)

CONF = Path(__file__).resolve().parents[1] / "conf"
OUTPUTS = Path("multirun_outputs")
MAX_DIRNAME = 120
LOCK_FILE = ".sweep.lock"  # held by the sweep.py running the folder's grid
INTERRUPTED = "interrupted (Ctrl-C)"
SWEEPER_CHOSEN = (
    "{where}: sweep.py runs a grid with its own sweeper (Hydra's basic one, less the finished "
    "jobs); for another sweeper run train.py -m"
)


def job_dirname(override_dirname: str) -> str:
    """A job folder's name from Hydra's `override_dirname` of its swept settings: path separators
    replaced, long names cut with a hash of the whole (so distinct settings never share a folder)."""
    name = re.sub(r"[/\\\s]+", "_", override_dirname).strip("._") or "default"
    if len(name) > MAX_DIRNAME:
        digest = hashlib.sha256(override_dirname.encode()).hexdigest()[:10]
        name = f"{name[: MAX_DIRNAME - 11]}-{digest}"
    return name


def register_resolvers() -> None:
    if not OmegaConf.has_resolver("layerft_dirname"):
        OmegaConf.register_new_resolver("layerft_dirname", job_dirname)


register_resolvers()  # also in a launcher's job process, which unpickles `job` from this module
register_configs()


# --- the grid ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Combination:
    """One job of the grid: its overrides, config fingerprint and stage-1 key (None: no stage 1)."""

    overrides: list[str]
    fingerprint: str
    stage1: str | None
    label: str  # its swept settings, as its job folder is named
    # Whether its stage-1 store holds a result with these stage-1 settings (reused if the data is
    # unchanged: only the run itself reads the data and knows).
    stage1_stored: bool = False
    # sha256 of each local data file it reads, by `<group>.<split>` (RunRecord.data_files)
    data_files: dict[str, str] = field(default_factory=dict)
    force_rerun: bool = False  # its config redoes a finished result (run.run)
    # What earlier fingerprint schemes called its config (RunRecord.earlier_fingerprints)
    earlier_fingerprints: tuple[str, ...] = ()

    @property
    def fingerprints(self) -> tuple[str, ...]:
        return (self.fingerprint, *self.earlier_fingerprints)


def grid_names() -> list[str]:
    return sorted(path.stem for path in (CONF / "sweep").glob("*.yaml"))


def check_grid(grid: str) -> None:
    """The grid exists, is YAML, and is a global package with `hydra.sweeper.params` (without them
    Hydra's error is about a key 'sweep' in the config), for sweep.py's sweeper (it chooses none)."""
    if grid not in grid_names():
        raise LayerftError(
            f"no grid '{grid}' in {CONF / 'sweep'}; grids: {', '.join(grid_names())}"
        )
    path = CONF / "sweep" / f"{grid}.yaml"
    with path.open(encoding="utf-8") as stream:  # a YAML error names the file
        text = stream.read()
        stream.seek(0)
        data = yaml.safe_load(stream)
    sweeper = data.get("hydra") if isinstance(data, dict) else None
    sweeper = sweeper.get("sweeper") if isinstance(sweeper, dict) else None
    if not re.search(r"^#\s*@package\s+_global_\s*$", text, re.M) or not (
        isinstance(sweeper, dict) and "params" in sweeper
    ):
        raise LayerftError(
            f"{path}: a grid starts with '# @package _global_' and sets hydra.sweeper.params "
            "(key: comma list); see conf/sweep/demo.yaml"
        )
    defaults = data.get("defaults")
    chosen = [
        key
        for entry in (defaults if isinstance(defaults, list) else [])
        if isinstance(entry, dict)
        for key in entry
        if isinstance(key, str) and key.split()[-1].lstrip("/") == "hydra/sweeper"
    ]
    if chosen or "_target_" in sweeper:
        raise LayerftError(SWEEPER_CHOSEN.format(where=f"{path}: hydra/sweeper"))


def split_overrides(overrides: Sequence[str]) -> tuple[list[Override], list[Override]]:
    """Parsed command-line overrides, and those of them that are fixed (not swept)."""
    parsed = OverridesParser.create().parse_overrides(list(overrides))
    return parsed, [o for o in parsed if not o.is_sweep_override()]


def grid_params(grid: str, overrides: Sequence[str]) -> dict[str, str]:
    """The grid file's sweeper params (key -> comma list), composed with the fixed overrides."""
    from hydra.core.global_hydra import GlobalHydra

    _, fixed = split_overrides(overrides)
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        args = [f"sweep={grid}", *(o.input_line for o in fixed if o.input_line)]
        base = compose("config", overrides=args, return_hydra_config=True)
    GlobalHydra.instance().clear()
    return {str(k): str(v) for k, v in (base.hydra.sweeper.params or {}).items()}


def swept_keys(grid: str, overrides: Sequence[str]) -> set[str]:
    """Keys that vary in the grid (its params and sweep overrides): they name the job folders."""
    parsed, _ = split_overrides(overrides)
    return set(grid_params(grid, overrides)) | {
        o.get_key_element() for o in parsed if o.is_sweep_override()
    }


def grid_jobs(grid: str, overrides: Sequence[str]) -> tuple[list[list[str]], set[str]]:
    """Each job's overrides (the grid's params crossed with `overrides`, in Hydra's order), and
    the keys that vary (as swept_keys(), without composing the grid's params again)."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper

    grid_keys = grid_params(grid, overrides)
    params = [f"{k}={v}" for k, v in grid_keys.items()]
    parsed = OverridesParser.create().parse_overrides([*params, *overrides])
    [jobs] = BasicSweeper.split_arguments(parsed, None)
    swept = set(grid_keys) | {o.get_key_element() for o in parsed if o.is_sweep_override()}
    return jobs, swept


def expand(grid: str, overrides: Sequence[str]) -> list[Combination]:
    """Every combination the grid (narrowed or extended by `overrides`) runs, in Hydra's order."""
    from hydra.core.global_hydra import GlobalHydra

    from layerft.stage1 import Stage1Key, Stage1Store

    jobs, swept = grid_jobs(grid, overrides)
    combinations = []
    warned: set[Path] = set()  # damaged stage-1 folders named once
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        composer = JobComposer(grid)
        for job in jobs:
            cfg = composer.compose(job)
            run_cfg = to_run_config(cfg)
            check_switch_overrides(cfg, job)
            stage1 = Stage1Key.of(run_cfg).settings_digest() if run_cfg.injection_task else None
            store = Stage1Store(Path(run_cfg.cache_dir).expanduser())
            stored = bool(stage1 and run_cfg.reuse_stage1 and stage1_stored(store, stage1, warned))
            # As Hydra's override_dirname (the lines sorted) through job_dirname: the folder's name.
            swept_lines = sorted(o for o in job if o.split("=", 1)[0] in swept)
            label = job_dirname(",".join(swept_lines)) if swept_lines else ""
            resolved = resolve_config(cfg)
            digests = {split: file_sha256(path) for split, path in data_files(run_cfg).items()}
            combinations.append(
                Combination(
                    job,
                    config_fingerprint(resolved),
                    stage1,
                    label or "(defaults)",
                    stored,
                    digests,
                    run_cfg.force_rerun,
                    earlier_fingerprints(resolved),
                )
            )
    GlobalHydra.instance().clear()
    return combinations


class JobComposer:
    """Each job's config as `compose("config", [f"sweep={grid}", *job])` returns it, composing
    once per choice of config groups (composing takes ~0.4 s, and most of a grid's axes are
    values: seeds, rates).

    Hydra composes a config in two steps: the groups the overrides choose (its defaults list),
    then every other override applied to that config in command-line order
    (`_apply_overrides_to_config`). The first step is shared by every job choosing the same
    groups; the second is done here on a copy, as Hydra does it. Anything this does not mirror
    exactly (an override that fails, a group only Hydra knew) is composed by Hydra itself, so its
    errors are Hydra's own.
    """

    def __init__(self, grid: str) -> None:
        from hydra.core.global_hydra import GlobalHydra

        self.grid = grid
        self.repo = GlobalHydra.instance().config_loader().repository  # type: ignore[attr-defined]
        # the groups' config (without `hydra`) and the groups it chose, by the overrides composed
        self.bases: dict[tuple[str, ...], tuple[DictConfig, set[str]]] = {}

    def compose(self, job: Sequence[str]) -> DictConfig:
        from hydra._internal.config_loader_impl import ConfigLoaderImpl

        values: list[Override] = []
        groups_and_hydra: list[str] = []
        for override in OverridesParser.create().parse_overrides(list(job)):
            if self.applied_after(override):
                values.append(override)
            else:
                groups_and_hydra.append(override.input_line)
        composed = tuple(groups_and_hydra)
        try:
            if composed not in self.bases:
                base = compose(
                    "config", overrides=[f"sweep={self.grid}", *composed], return_hydra_config=True
                )
                groups = set(base.hydra.runtime.choices)
                with open_dict(base):
                    del base["hydra"]
                self.bases[composed] = base, groups
            base, groups = self.bases[composed]
            if not groups & {o.key_or_group for o in values}:
                cfg = copy.deepcopy(base)
                ConfigLoaderImpl._apply_overrides_to_config(values, cfg)
                return cfg
        except CONFIG_ERRORS:
            pass  # Hydra's own message, from composing the job whole
        return compose("config", overrides=[f"sweep={self.grid}", *job])

    def applied_after(self, override: Override) -> bool:
        """An override Hydra applies to the composed config (not a group choice, not under `hydra`,
        whose node the shared config drops)."""
        return (
            not override.is_sweep_override()
            and not override.is_hydra_override()
            and (
                isinstance(override.value(), dict)
                or not self.repo.group_exists(override.key_or_group)
            )
        )


def stage1_stored(store: Stage1Store, settings_digest: str, warned: set[Path]) -> bool:
    """Whether the store holds a stage 1 trained with these settings; a stored folder without its
    weights (which the run would stop on) is warned about once, not counted."""
    from layerft.stage1 import WEIGHTS_FILE

    complete, damaged = store.stored_with_settings(settings_digest)
    for folder in sorted(set(damaged) - warned):
        warned.add(folder)
        log.warning(
            "stored stage-1 result %s has no %s: a run on that data stops there; remove the folder "
            "to train it again",
            folder,
            WEIGHTS_FILE,
        )
    return bool(complete)


# --- what the sweep folder holds -----------------------------------------------------------------


def job_records(sweep_dir: Path, name: str) -> dict[str, Path]:
    """fingerprint -> job folder, for every `name` file (metrics.json, failed.json) in the sweep."""
    found: dict[str, Path] = {}
    for path in sorted(sweep_dir.glob(f"*/{name}"), key=lambda p: p.stat().st_mtime):
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
            fingerprint = record.get(FINGERPRINT_KEY)
        except (OSError, ValueError, AttributeError):
            continue  # a corrupt file counts as not finished; the job reruns and replaces it
        if isinstance(fingerprint, str):
            found[fingerprint] = path.parent
            if (migrated := migrated_fingerprints(path.parent, record)) is not None:
                found[migrated[0]] = path.parent  # an earlier scheme's record, as this one keys it
    return found


def finished_elsewhere(
    sweep_dir: Path, fingerprints: tuple[str, ...], run_dir: Path
) -> Path | None:
    """Another job folder of the sweep holding this config's finished result (`fingerprints`:
    RunRecord's)."""
    records = job_records(sweep_dir, METRICS_FILE)
    for folder in (records.get(fingerprint) for fingerprint in fingerprints):
        if folder is not None and folder.resolve() != run_dir.resolve():
            return folder
    return None


# --- entry points ---------------------------------------------------------------------------------


def job(cfg: DictConfig) -> float | None:
    """One job of a sweep (the Hydra task function of sweep.py, and of `train.py -m`): train.py's
    run, but a failure is recorded in the job folder instead of stopping the sweep."""
    from layerft.run import run_from_hydra

    stop_if_interrupted()  # a Ctrl-C that Python lost while the last job ended
    metrics = run_from_hydra(cfg, isolate_failures=True)
    if metrics is None:
        return None
    return metrics.get(f"target/eval_{cfg.target_task.best_metric}")


class FailedJobs(Callback):
    """`train.py -m`'s summary (a Hydra callback, conf/config.yaml): when the multirun ends, one line
    per job whose failure it recorded (a `failed.json` new or rewritten since it started, so an
    earlier launch's failures in a reused folder do not count); `failed` tells train.py to exit 1."""

    failed: ClassVar[list[Path]] = []  # the last multirun's failed job folders

    def __init__(self) -> None:
        self.before: dict[Path, int] = {}

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        self.before = failure_stamps(Path(config.hydra.sweep.dir))

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        now = failure_stamps(sweep_dir)
        FailedJobs.failed = sorted(
            p.parent for p, stamp in now.items() if self.before.get(p) != stamp
        )
        for folder in FailedJobs.failed:
            log.error("job failed: %s (%s)", failed_error(folder), folder / FAILED_FILE)
        if FailedJobs.failed:
            log.error("%d job(s) of %s failed; the others ran", len(FailedJobs.failed), sweep_dir)


def failure_stamps(sweep_dir: Path) -> dict[Path, int]:
    """Each job's `failed.json` in the sweep folder and its modification time (ns)."""
    return {path: path.stat().st_mtime_ns for path in sweep_dir.glob(f"*/{FAILED_FILE}")}


def failed_error(folder: Path) -> str:
    """The error line a failed job recorded."""
    return str(json.loads((folder / FAILED_FILE).read_text(encoding="utf-8")).get("run/error", ""))


def hydra_args(grid: str, overrides: Sequence[str], sweep_dir: Path, force: bool) -> list[str]:
    """The multirun's command line: the grid, its folder, job folders named by swept settings."""
    swept = swept_keys(grid, overrides)
    _, fixed = split_overrides(overrides)
    excluded = sorted({"sweep", "force_rerun", *(o.get_key_element() for o in fixed)} - swept)
    return [
        "-m",
        f"sweep={grid}",
        f"hydra.sweep.dir={sweep_dir}",
        "hydra.sweep.subdir='${layerft_dirname:${hydra.job.override_dirname}}'",
        f"hydra.job.config.override_dirname.exclude_keys=[{','.join(excluded)}]",
        "~hydra.callbacks.failed_jobs",  # train.py's summary; sweep.py prints its own
        *(["force_rerun=true"] if force else []),
        *overrides,
    ]


def run_grid(
    grid: str,
    overrides: Sequence[str],
    sweep_dir: Path,
    force: bool,
    finished: Sequence[Combination] = (),
    repeats: Sequence[Combination] = (),
) -> str | None:
    """Run the multirun in this process (Hydra's launcher from the config: sequential by default),
    launching none of the `finished` combinations nor the `repeats` (`repeated_runs`).

    Whatever stops the launch (a job folder that cannot be made, a job whose failure escaped it,
    Ctrl-C) comes back as one line, not raised: the jobs that finished are still summarised and
    tabulated."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper

    register_configs()
    argv = sys.argv
    # as the sweeper gets them: Hydra hands it the overrides that are not under `hydra`
    parser = OverridesParser.create()

    forced: list[str] = []  # hydra_args adds it to every job; spelled as the sweeper's jobs are
    if force:
        [[forced]] = BasicSweeper.split_arguments(
            parser.parse_overrides(["force_rerun=true"]), None
        )

    def listed(combinations: Sequence[Combination]) -> list[list[str]]:
        return [
            [o.input_line for o in parser.parse_overrides(c.overrides) if not o.is_hydra_override()]
            + forced
            for c in combinations
        ]

    sweeper = store_skipping_sweeper(listed(finished), listed(repeats))
    sys.argv = [argv[0], *hydra_args(grid, overrides, sweep_dir, force), sweeper]
    try:
        with hydra_raises(), remembered_interrupts():  # hydra_raises: no traceback
            hydra.main(version_base="1.3", config_path=str(CONF), config_name="config")(job)()
        if interrupted():  # lost where it landed, after the last job had started
            return INTERRUPTED
    except KeyboardInterrupt:  # the launcher has stopped the running jobs
        return INTERRUPTED
    # SystemExit: a sys.exit in Hydra or in a job (code 0 is no error)
    except (Exception, SystemExit) as err:
        if isinstance(err, SystemExit) and not err.code:
            return None
        if traceback_wanted():
            traceback.print_exc()
        if isinstance(err, OSError) and err.filename:  # a job folder Hydra could not make
            return str(file_error("create", err.filename, err))
        return error_line(err)
    finally:
        sys.argv = argv
    return None


def repeated_runs(
    combinations: Sequence[Combination],
    skipped: Sequence[Combination],
    blocked: Sequence[Combination] = (),
) -> list[tuple[Combination, Combination]]:
    """The combinations, of those not `skipped`, whose config another one launched runs, each with
    that one: its result serves both (found by fingerprint), so only the first is launched; a
    `blocked` one (its folder holds another config's result, so its job stops) is not that first
    while another can be."""
    launching = [c for c in combinations if not any(c is s for s in skipped)]
    first: dict[str, Combination] = {}
    for combination in sorted(launching, key=lambda c: any(c is b for b in blocked)):
        first.setdefault(combination.fingerprint, combination)
    return [(c, first[c.fingerprint]) for c in launching if first[c.fingerprint] is not c]


@dataclass(frozen=True)
class Status:
    done: list[tuple[Combination, Path]]
    failed: list[tuple[Combination, Path, str]]
    missing: list[Combination]
    # Finished on a data file changed since (the splits named): the job stops on it
    # (run.check_same_data) until --force reruns it.
    stale: list[tuple[Combination, Path, list[str]]] = field(default_factory=list)
    # Of `done`: those computed by an older layerft (results.RESULTS_VERSION), with their version.
    older: list[tuple[Combination, Path, int]] = field(default_factory=list)
    # Of `missing`: those whose job folder holds another config's result (an option's YAML
    # edited since?), which its job never overwrites: it stops with an error naming the keys.
    blocked: list[tuple[Combination, Path]] = field(default_factory=list)


def status(combinations: list[Combination], sweep_dir: Path, since_ns: int | None = None) -> Status:
    """Which combinations have a finished result, a recorded failure, or nothing, in the folder.

    `since_ns` (a --force sweep's start): only a result written since then counts as finished, so
    a forced rerun that failed or never ran is not reported by the result it was to replace.
    """
    finished = job_records(sweep_dir, METRICS_FILE)
    if since_ns is not None:
        finished = {
            fingerprint: folder
            for fingerprint, folder in finished.items()
            if (folder / METRICS_FILE).stat().st_mtime_ns >= since_ns
        }
    failures = job_records(sweep_dir, FAILED_FILE)
    done, failed, missing, stale, older, blocked = [], [], [], [], [], []
    for combination in combinations:
        if (folder := _first_of(combination.fingerprints, finished)) is not None:
            record = read_record(folder)
            if changed := changed_data(record, combination.data_files):
                stale.append((combination, folder, changed))
            else:
                done.append((combination, folder))
                if (version := results_version(record)) < RESULTS_VERSION:
                    older.append((combination, folder, version))
        elif (folder := _first_of(combination.fingerprints, failures)) is not None:
            failed.append((combination, folder, failed_error(folder)))
        else:
            missing.append(combination)
            folder = sweep_dir / job_folder(combination)
            if another_config_result(folder):
                blocked.append((combination, folder))
    return Status(done, failed, missing, stale, older, blocked)


def _first_of(fingerprints: tuple[str, ...], folders: dict[str, Path]) -> Path | None:
    """The folder of the first of `fingerprints` that `folders` holds."""
    return next((folders[f] for f in fingerprints if f in folders), None)


def job_folder(combination: Combination) -> str:
    """The name of a combination's job folder (its label; a grid that sweeps nothing: Hydra's)."""
    return job_dirname("") if combination.label == "(defaults)" else combination.label


def another_config_result(folder: Path) -> bool:
    """Whether `folder` holds a readable result (of another config, where its combination is not
    finished): a damaged metrics.json is set aside and redone, not blocking."""
    try:
        record = read_record(folder)
    except (OSError, ValueError):
        return False
    return isinstance(record, dict) and FINGERPRINT_KEY in record


def print_plan(combinations: list[Combination], sweep_dir: Path, force: bool) -> None:
    """The dry run: combinations, distinct stage-1 trainings, which are done."""
    state = status(combinations, sweep_dir)
    stage1 = {c.stage1 for c in combinations if c.stage1}
    stored = {c.stage1 for c in combinations if c.stage1_stored}
    kept = f" ({len(stored)} stored, reused if their data is unchanged)" if stored else ""
    distinct = len({c.fingerprint for c in combinations})
    runs = f" ({distinct} distinct runs)" if distinct < len(combinations) else ""
    print(f"{len(combinations)} combinations{runs}, {len(stage1)} distinct stage-1 trainings{kept}")
    # Marks by combination: repeats of one config share a fingerprint, not a folder.
    marks = {} if force else {id(c): "done" for c, _ in state.done}
    for combination, _ in state.blocked:
        marks[id(combination)] = "blocked: its folder holds another config's result"
    for combination, _, version in [] if force else state.older:
        marks[id(combination)] = f"done by results version {version}"
    for combination, _, changed in [] if force else state.stale:
        marks[id(combination)] = f"done on other data: {', '.join(changed)} changed"
    skipped = [] if force else [c for c, _ in state.done if not c.force_rerun]
    served_by = {
        id(repeat): run
        for repeat, run in repeated_runs(combinations, skipped, [c for c, _ in state.blocked])
    }
    for combination in combinations:
        s1 = f"stage1 {combination.stage1}" if combination.stage1 else "no stage 1"
        s1 += ", stored" if combination.stage1_stored else ""
        if (run := served_by.get(id(combination))) is not None:  # not launched: one run serves both
            s1 += f"; the run of {run.label}"
        print(f"  [{marks.get(id(combination), 'todo')}] {combination.label}  ({s1})")
    done = 0 if force else len(state.done)
    # Neither stale nor blocked jobs count as to run: each stops with an error (noted below).
    todo = len(combinations) - done - (0 if force else len(state.stale)) - len(served_by)
    todo -= len(state.blocked)
    served = f" ({len(served_by)} served by another job's run)" if served_by else ""
    print(f"{done} done, {todo} to run{served}{' (--force)' if force else ''}")
    if state.stale and not force:
        print(
            f"{len(state.stale)} done on data files changed since: each stops with an error; "
            "rerun them with --force (overrides can narrow the grid to them)"
        )
    if state.older and not force:
        print(older_note(state.older))
    if state.blocked:
        print(blocked_note(state.blocked))


def blocked_note(blocked: list[tuple[Combination, Path]]) -> str:
    """One line on combinations whose job folder holds another config's result."""
    return (
        f"{len(blocked)} blocked: the job folder holds the result of another config (an option's "
        "YAML edited since?), which is never overwritten, --force or not: each stops with an "
        "error naming the keys that differ; run the grid in a new --dir, or delete those "
        f"folders to redo them ({', '.join(str(folder) for _, folder in blocked[:3])}"
        f"{', ...' if len(blocked) > 3 else ''})"
    )


def older_note(older: list[tuple[Combination, Path, int]]) -> str:
    """One line on finished results an older layerft computed: reused, and what changed since."""
    return (
        f"{len(older)} done by an older layerft ({older_results(min(v for _, _, v in older))}): "
        "reused as they are; --force reruns them (overrides can narrow the grid to them)"
    )


def print_summary(state: Status) -> None:
    stale = f", {len(state.stale)} on changed data" if state.stale else ""
    print(
        f"sweep: {len(state.done)} finished, {len(state.failed)} failed, {len(state.missing)} not "
        f"run{stale}"
    )
    for combination, folder, error in state.failed:
        print(f"  FAILED {combination.label}: {error} ({folder / FAILED_FILE})")
    for combination, folder, changed in state.stale:
        print(
            f"  ON CHANGED DATA {combination.label}: {', '.join(changed)} changed since its result "
            f"({folder / METRICS_FILE}); --force reruns it"
        )
    for combination in state.missing:
        print(f"  NOT RUN {combination.label}")
    if state.older:
        print(older_note(state.older))


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="sweep.py",
        description="Run a named grid of conf/sweep/ (or aggregate a sweep folder).",
        epilog="python sweep.py aggregate <dir> [--baseline key=value ...]: tables and plots only",
    )
    parser.add_argument("grid", help=f"one of: {', '.join(grid_names())}; or 'aggregate'")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides narrowing or extending it")
    parser.add_argument("--dry-run", action="store_true", help="list combinations, run nothing")
    parser.add_argument("--force", action="store_true", help="rerun finished combinations too")
    parser.add_argument(
        "--dir", type=Path, help="the sweep folder (default multirun_outputs/<grid>)"
    )
    parser.add_argument(
        "--baseline",
        nargs="*",
        default=None,
        help="settings of the baseline row, key=value (default: injection_task=none)",
    )
    parser.add_argument("--heatmap", nargs=2, default=None, help="the two settings of the heatmap")
    return parser.parse_intermixed_args(argv)  # overrides may follow options


def main(argv: Sequence[str]) -> int:
    logging.basicConfig(
        level=logging.INFO, format="[%(asctime)s][%(name)s][%(levelname)s] - %(message)s"
    )
    args = parse_args(argv)
    try:
        if args.grid == "aggregate":
            if len(args.overrides) != 1 or args.dry_run or args.force or args.dir:
                raise LayerftError(
                    "usage: python sweep.py aggregate <sweep folder> [--baseline ...] "
                    "[--heatmap a b] (no --dry-run, --force or --dir)"
                )
            sweep_dir = Path(args.overrides[0])
            relog_results_table(sweep_dir, aggregate_dir(sweep_dir, args.baseline, args.heatmap))
            return 0
        check_grid(args.grid)
        check_hydra_overrides(args.overrides)
        sweep_dir = args.dir or OUTPUTS / args.grid
        if sweep_dir.exists() and not sweep_dir.is_dir():
            raise LayerftError(f"--dir {sweep_dir}: not a folder")
        combinations = expand(args.grid, args.overrides)
        if args.dry_run:
            print_plan(combinations, sweep_dir, args.force)
            return 0
        with sweep_lock(sweep_dir):
            started_ns = time.time_ns()
            before = status(combinations, sweep_dir)
            if before.blocked:
                log.warning("%s", blocked_note(before.blocked))
            finished = [] if args.force else before.done
            skipped = [c for c, _ in finished if not c.force_rerun]
            blocked = [c for c, _ in before.blocked]
            repeats = [repeat for repeat, _ in repeated_runs(combinations, skipped, blocked)]
            stopped = run_grid(args.grid, args.overrides, sweep_dir, args.force, skipped, repeats)
            state = status(combinations, sweep_dir, started_ns if args.force else None)
            print_summary(state)
            if stopped:
                print(f"error: the sweep stopped early: {stopped}", file=sys.stderr)
            if job_records(sweep_dir, METRICS_FILE):  # this grid's or earlier ones': tables match
                tabled(args.grid, args.overrides, sweep_dir, args.baseline, args.heatmap)
        if stopped == INTERRUPTED:
            return 130  # as a shell reports a command stopped by Ctrl-C
        return 0 if not stopped and not (state.failed or state.missing or state.stale) else 1
    except LayerftError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except (*CONFIG_ERRORS, AssertionError) as err:
        line = composition_error_line(err)
        if line is None:
            raise
        print(f"error: {line}", file=sys.stderr)
        return 2


def check_hydra_overrides(overrides: Sequence[str]) -> None:
    """sweep.py names the sweep folder itself (`--dir`): a `hydra.sweep.dir=` override would send
    the jobs elsewhere while the summary and tables read the `--dir` folder. It also runs the grid
    with its own sweeper, which another one would be replaced by without a word."""
    parsed, _ = split_overrides(overrides)
    keys = {o.get_key_element() for o in parsed}
    if "hydra.sweep.dir" in keys:
        raise LayerftError("hydra.sweep.dir: sweep.py picks the sweep folder with --dir <folder>")
    if keys & {"hydra/sweeper", "hydra.sweeper._target_"}:
        raise LayerftError(SWEEPER_CHOSEN.format(where="hydra/sweeper"))


def sweep_lock(sweep_dir: Path) -> contextlib.AbstractContextManager[None]:
    """Hold the sweep folder's lock while its grid runs: a second sweep.py on the same folder would
    run the same jobs at once, each removing the other's checkpoints and W&B folders."""
    path = sweep_dir / LOCK_FILE
    try:
        sweep_dir.mkdir(parents=True, exist_ok=True)
        path.touch()  # an existing file's time: it succeeds in a folder that takes no new file
        tempfile.TemporaryFile(dir=sweep_dir).close()  # so the job folders can be made
    except OSError as err:
        raise LayerftError(
            f"--dir {sweep_dir}: cannot use it as the sweep folder ({err.strerror or err})"
        ) from None

    def refuse(holder: str) -> None:
        raise LayerftError(
            f"{sweep_dir} is in use by another sweep.py ({holder or 'another process'}); wait for "
            "it to end or choose another --dir"
        )

    return held_lock(path, refuse)


def aggregate_dir(
    sweep_dir: Path, baseline: list[str] | None, heatmap: list[str] | None
) -> Aggregate:
    """Write results.csv / results.md / plots for a sweep folder (layerft/aggregate.py)."""
    from layerft.aggregate import aggregate

    bad = [item for item in baseline or [] if "=" not in item]
    if bad:
        raise LayerftError(f"--baseline takes key=value settings, got '{bad[0]}'")
    pairs = dict(item.split("=", 1) for item in baseline) if baseline else None
    result = aggregate(sweep_dir, baseline=pairs, heatmap=tuple(heatmap) if heatmap else None)
    for path in result.paths:
        print(f"wrote {path}")
    return result


RESULTS_RUN_FILE = ".results_run.json"  # the grid and tracker of the folder's W&B results run


def relog_results_table(sweep_dir: Path, result: Aggregate) -> None:
    """`sweep.py aggregate`: the new table into the folder's W&B results run, as the grid's last
    `sweep.py <grid>` logged it (RESULTS_RUN_FILE); a results run logged by an earlier layerft,
    which wrote no such file, keeps its table (warned)."""
    from layerft.tracker import TrackerConfig, wandb_runs

    path = sweep_dir / RESULTS_RUN_FILE
    if not path.exists():
        if wandb_runs(sweep_dir):
            log.warning(
                "%s: its W&B results run still holds the table of the last `python sweep.py "
                "<grid>` call, which recorded no %s (rerun that call to update it)",
                sweep_dir,
                RESULTS_RUN_FILE,
            )
        return
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
        schema = OmegaConf.structured(TrackerConfig)
        tracker = OmegaConf.to_object(OmegaConf.merge(schema, stored["tracker"]))
        grid, overrides = str(stored["grid"]), [str(o) for o in stored["overrides"]]
    except (OSError, ValueError, KeyError, TypeError, *CONFIG_ERRORS) as err:
        raise LayerftError(
            f"{path}: not the record of a W&B results run ({error_line(err)}); delete it to "
            "leave that run's table as it is"
        ) from None
    publish_results_table(grid, overrides, tracker, sweep_dir, result)  # type: ignore[arg-type]


def tabled(
    grid: str,
    overrides: Sequence[str],
    sweep_dir: Path,
    baseline: list[str] | None,
    heatmap: list[str] | None,
) -> None:
    """A sweep's tables and their W&B run after it ran; with no result to table (each on changed
    data, which the summary lists) a warning: the exit code stays the sweep's."""
    from layerft.aggregate import NothingToTable

    try:
        result = aggregate_dir(sweep_dir, baseline, heatmap)
    except NothingToTable as err:
        log.warning("%s", err)
        return
    log_results_table(grid, overrides, sweep_dir, result)


def log_results_table(
    grid: str, overrides: Sequence[str], sweep_dir: Path, result: Aggregate
) -> None:
    """With tracker=wandb, one more W&B run in the sweep's group (job type `aggregate`) holding
    the results table as a W&B Table and the plots as images.

    Every call logs to the same run (its id is the sweep folder's), and the folders of earlier
    calls are removed once this one finishes: a sweep resumed ten times has one results run.
    """
    from hydra.core.global_hydra import GlobalHydra

    from layerft.tracker import TrackerBackend

    _, fixed = split_overrides(overrides)
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        args = [f"sweep={grid}", *(o.input_line for o in fixed if o.input_line)]
        tracker_cfg = to_run_config(compose("config", overrides=args)).tracker
    GlobalHydra.instance().clear()
    if tracker_cfg.backend != TrackerBackend.wandb:
        return
    masked = mask_credentials(overrides)
    tracker = OmegaConf.to_container(OmegaConf.structured(tracker_cfg), enum_to_str=True)
    write_json_atomic(
        sweep_dir / RESULTS_RUN_FILE, {"grid": grid, "overrides": masked, "tracker": tracker}
    )
    publish_results_table(grid, masked, tracker_cfg, sweep_dir, result)


def publish_results_table(
    grid: str, overrides: list[str], tracker_cfg: TrackerConfig, sweep_dir: Path, result: Aggregate
) -> None:
    """Log the table and plots into the folder's W&B results run (`overrides` masked)."""
    import wandb

    from layerft.tracker import remove_stale_runs, start_tracker, wandb_runs

    # What the table's difference columns compare with, which differs between aggregations.
    config = {
        "sweep": grid,
        "overrides": overrides,
        "baseline": result.baseline,
        "heatmap": list(result.heatmap) if result.heatmap else None,
    }
    earlier = wandb_runs(sweep_dir)
    run_id = "results-" + hashlib.sha256(str(sweep_dir.resolve()).encode()).hexdigest()[:16]
    tracker = start_tracker(
        tracker_cfg, sweep_dir, config, {}, f"{grid} results", grid, "aggregate", {}, run_id
    )
    table = wandb.Table(
        columns=result.columns, data=[[row.get(c) for c in result.columns] for row in result.rows]
    )
    images = {f"plots/{p.stem}": wandb.Image(str(p)) for p in result.paths if p.suffix == ".png"}
    tracker.run.log({"results": table, **images})  # type: ignore[attr-defined]
    tracker.finish(failed=False)
    remove_stale_runs(sweep_dir, earlier, whose="earlier aggregations")
