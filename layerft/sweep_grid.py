"""A named grid of conf/sweep/ (or of a folder on the search path, `hydra.searchpath=[file://<dir>]`
or `[pkg://<package>]`: found by `layerft/sweep_hydra.py`) as its combinations: each job's
overrides, composed config, fingerprint and stage-1 key, without running anything (`sweep.py
--dry-run` and the plan of a sweep that runs). Job folders are named here (`job_dirname`, the
`layerft_dirname` resolver); `layerft/sweep_compose.py` composes each job's config.

Serves the `sweep` config group (conf/sweep/<grid>.yaml: `hydra.sweeper.params`).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydra import compose, initialize_config_dir
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig, ListConfig, OmegaConf

from layerft.config import check_data_files, data_files, resolve_config, to_run_config
from layerft.config_errors import CONF
from layerft.config_overrides import check_overrides
from layerft.errors import LayerftError
from layerft.file_io import file_sha256
from layerft.fingerprint import config_fingerprint, earlier_fingerprints
from layerft.model_files import model_file_digests, planned_model_folder
from layerft.model_limits import check_planned_split
from layerft.sweep_compose import JobComposer
from layerft.sweep_hydra import (
    find_grid,
    hydra_loader,
    job_hydra_config,
    launch_overrides,
    named_in_grid,
    split_overrides,
    swept_params,
)

MAX_DIRNAME = 120
OUTPUTS = Path("multirun_outputs")  # where a grid's sweep folder is by default (`--dir` elsewhere)
SWEEPER_CHOSEN = (
    "{where}: sweep.py runs a grid with its own sweeper (Hydra's basic one, less the finished "
    "jobs); for another sweeper run train.py -m"
)


def job_dirname(override_dirname: str) -> str:
    """A job folder's name from Hydra's `override_dirname` of its swept settings: path separators
    replaced, long names cut with a hash of the whole (so distinct settings never share a folder),
    also where non-ASCII letters make it longer than twice MAX_DIRNAME in bytes (a file name may
    have 255: a swept Korean data path had failed as "File name too long")."""
    name = re.sub(r"[/\\\s]+", "_", override_dirname).strip("._") or "default"
    if len(name) > MAX_DIRNAME or len(name.encode()) > 2 * MAX_DIRNAME:
        digest = hashlib.sha256(override_dirname.encode()).hexdigest()[:10]
        head = name[: MAX_DIRNAME - 11].encode()[: 2 * MAX_DIRNAME - 11]
        name = f"{head.decode(errors='ignore')}-{digest}"  # a letter cut in two is left out
    return name


def job_folder(combination: Combination) -> str:
    """The name of a combination's job folder (its label; a grid that sweeps nothing: Hydra's)."""
    return job_dirname("") if combination.label == "(defaults)" else combination.label


def register_resolvers() -> None:
    """Register `${layerft_dirname:...}` (job_dirname), which job folder names are built with."""
    if not OmegaConf.has_resolver("layerft_dirname"):
        OmegaConf.register_new_resolver("layerft_dirname", job_dirname)


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
    # Why its run would stop on what it reads (an unset or missing local file; a bad record; a hub
    # data set or model it cannot load), or None: sweep.py refuses to launch it (check_launched_inputs)
    input_error: str | None = None
    # Its config, resolved (what its fingerprint hashes): what a blocked one differs in
    resolved: dict[str, Any] | None = field(default=None, repr=False, compare=False)
    # The local folder its model is read from, and its files' sha256 by name (RunRecord's)
    model_folder: str | None = None
    model_files: dict[str, str] = field(default_factory=dict)

    @property
    def fingerprints(self) -> tuple[str, ...]:
        return (self.fingerprint, *self.earlier_fingerprints)


def check_grid(grid: str, overrides: Sequence[str] = ()) -> None:
    """The grid exists, is YAML, and is a global package with `hydra.sweeper.params` (without them
    Hydra's error is about a key 'sweep' in the config), for sweep.py's sweeper (it chooses none).
    Read as Hydra reads `sweep=<grid>` (a YAML error names the file): its header is the `# @`
    lines it starts with (blank lines between them; an ordinary comment ends it)."""
    path, loaded = find_grid(grid, overrides)
    data = OmegaConf.to_container(loaded.config, resolve=False)
    sweeper = data.get("hydra") if isinstance(data, dict) else None
    sweeper = sweeper.get("sweeper") if isinstance(sweeper, dict) else None
    if loaded.header.get("package") != "_global_" or not (
        isinstance(sweeper, dict) and isinstance(sweeper.get("params", ()), dict | None)
    ):  # params a list or a string: an AttributeError traceback below
        raise LayerftError(
            f"{path}: a grid starts with '# @package _global_' and sets hydra.sweeper.params "
            "(key: comma list); see conf/sweep/demo.yaml"
        )
    for key, value in (sweeper["params"] or {}).items():  # Hydra passes a list as one value:
        if isinstance(value, list | dict) and not _takes_a_list(grid, overrides, key, value):
            raise LayerftError(  # right for a list-valued key, not as a list of values
                f"{path}: hydra.sweeper.params.{key} is a YAML {type(value).__name__}, which Hydra "
                f"passes as one value; give its values as a comma list ({key}: a,b)"
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


def _takes_a_list(grid: str, overrides: Sequence[str], key: str, value: Any) -> bool:
    """Whether a grid's key holds a list where it is composed (`tuning_mode.lora.target_modules`)."""
    node = OmegaConf.select(grid_config(grid, overrides), str(key), default=None)
    plain = isinstance(value, list) and not any(isinstance(v, list | dict) for v in value)
    return plain and isinstance(node, ListConfig)  # a list of lists would be one value too


def grid_config(grid: str, overrides: Sequence[str]) -> DictConfig:
    """The grid composed with the fixed overrides, with its `hydra` node (sweeper, launcher)."""
    from hydra.core.global_hydra import GlobalHydra

    _, fixed = split_overrides(overrides)
    GlobalHydra.instance().clear()
    with (
        named_in_grid(grid, overrides),
        initialize_config_dir(config_dir=str(CONF), version_base="1.3"),
    ):
        args = [f"sweep={grid}", *(o.input_line for o in fixed if o.input_line)]
        base = compose("config", overrides=args, return_hydra_config=True)
    GlobalHydra.instance().clear()
    return base


def grid_params(grid: str, overrides: Sequence[str]) -> dict[str, str]:
    """The grid file's sweeper params (key -> comma list), composed with the fixed overrides."""
    base = grid_config(grid, overrides)
    return swept_params(grid, base.hydra.sweeper.params or {}, overrides)


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
    with hydra_loader(overrides) as loader:  # a glob() lists its group's options through it
        parsed = OverridesParser.create(config_loader=loader).parse_overrides([*params, *overrides])
        [jobs] = BasicSweeper.split_arguments(parsed, None)
    swept = set(grid_keys) | {o.get_key_element() for o in parsed if o.is_sweep_override()}
    return jobs, swept


def expand(
    grid: str, overrides: Sequence[str], sweep_dir: Path | None = None, cpu_threads: Any = "any"
) -> list[Combination]:
    """Every combination the grid (narrowed or extended by `overrides`) runs into `sweep_dir`
    (default multirun_outputs/<grid>, where a `${hydra:...}` value naming a folder points), in
    Hydra's order; `cpu_threads`: what its jobs train at (gpu_slots.job_cpu_threads; "any":
    stage1_store.ANY_THREADS)."""
    from hydra.core.global_hydra import GlobalHydra

    combinations = []
    warned: set[Path] = set()  # damaged stage-1 folders named once
    with named_in_grid(grid, overrides):
        jobs, swept = grid_jobs(grid, overrides)
        launch = launch_overrides(sweep_dir or OUTPUTS / grid, overrides, swept)
        register_resolvers()  # the job folder's, which a `${hydra:runtime.output_dir}` reads
        with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
            composer = JobComposer(grid)
            for job in jobs:
                cfg = composer.compose(job)
                with job_hydra_config(cfg, [f"sweep={grid}", *job], launch):
                    combinations.append(plan_job(cfg, job, swept, warned, cpu_threads))
    GlobalHydra.instance().clear()
    return combinations


def plan_job(
    cfg: DictConfig, job: list[str], swept: set[str], warned: set[Path], cpu_threads: Any
) -> Combination:
    """A job of the grid, from its composed config: what expand() plans it as."""
    from layerft.data_check import record_error
    from layerft.model_hub import hub_model_error
    from layerft.stage1_key import Stage1Key
    from layerft.stage1_store import Stage1Store

    run_cfg = to_run_config(cfg)
    check_overrides(cfg, job)
    stage1 = Stage1Key.of(run_cfg).settings_digest() if run_cfg.injection_task else None
    cache_dir = Path(run_cfg.cache_dir).expanduser()
    model = planned_model_folder(run_cfg.model, cache_dir)
    files = model_file_digests(model)
    # No folder yet (converted on first use; a package not installed stops the run): no key known
    known = model is not None or (run_cfg.model.converted or run_cfg.model.package) is None
    store, reused = Stage1Store(cache_dir), stage1 if run_cfg.reuse_stage1 else None
    stored = bool(reused and store.holds(reused, warned, files if known else None, cpu_threads))
    # As Hydra's override_dirname (the lines sorted) through job_dirname: the folder's name.
    swept_lines = sorted(o for o in job if o.split("=", 1)[0] in swept)
    label = job_dirname(",".join(swept_lines)) if swept_lines else ""
    resolved = resolve_config(cfg)
    digests = {split: file_sha256(path) for split, path in data_files(run_cfg).items()}
    try:
        check_planned_split(run_cfg, model)  # (the model's depth as the plan can read it)
        check_data_files(run_cfg)
        input_error = record_error(run_cfg)  # a bad record would fail every job reading it
    except LayerftError as err:
        input_error = str(err)
    if input_error is None and (unavailable := hub_model_error(run_cfg.model)) is not None:
        input_error = str(unavailable)
    return Combination(
        job, config_fingerprint(resolved), stage1, label or "(defaults)", stored, digests,
        run_cfg.force_rerun, earlier_fingerprints(resolved), input_error, resolved,
        None if model is None else str(model), files,
    )  # fmt: skip
