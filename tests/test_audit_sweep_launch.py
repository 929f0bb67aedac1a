"""Lines a mutation audit of the way sweep.py launches a grid as one Hydra multirun found
unguarded: the sweeper's lists of the combinations it leaves out (each in its own list, spelled as
the sweeper's jobs are), the overrides it refuses, the removal of a never-started job's folder
(never an earlier attempt's files), the one line a stopped launch is reported as, train.py -m's
FailedJobs summary, and the `${hydra:...}` values a plan reads (each test names the mutation it
kills); and a bug: an override with a `+`, `++` or `~` (`++hydra.sweep.subdir=x`) passed every
refusal, and a fixed one was named in each job's folder though the plan's names left it out."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import pytest
from hydra.core.config_store import ConfigStore
from hydra.core.hydra_config import HydraConfig
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf

from layerft import sweep as sweep_module
from layerft import sweep_grid, sweep_hydra, sweep_launch
from layerft.errors import LayerftError
from layerft.sweep_grid import Combination
from layerft.sweep_launch import FailedJobs, check_hydra_overrides, hydra_args
from layerft.sweep_status import LeftOut


def combination(*overrides: str) -> Combination:
    return Combination(list(overrides), "fingerprint", None, ",".join(overrides))


def stored_sweeper() -> dict:
    """The skipping sweeper's config as _skipping_sweeper last stored it."""
    node = ConfigStore.instance().load("hydra/sweeper/layerft_skipping.yaml").node
    return OmegaConf.to_container(node)  # type: ignore[return-value]


# --- the skipping sweeper's lists ----------------------------------------------------------------


def test_each_left_out_combination_goes_to_its_own_list_of_the_sweeper() -> None:
    """Kills passing the lists in another order (blocked <-> stale), or dropping one of them
    (repeats, blocked or stale as []): the sweeper would launch a blocked job (which fails in
    another config's folder), a repeat (twice the training) or a stale one (which stops on its
    changed files), or say the wrong reason for leaving it out."""
    left = LeftOut(
        finished=[combination("seed=1")],
        repeats=[(combination("seed=2"), combination("seed=3"))],
        blocked=[combination("seed=4")],
        stale=[combination("seed=5")],
    )
    assert sweep_launch._skipping_sweeper(False, left) == "hydra/sweeper=layerft_skipping"
    stored = stored_sweeper()
    assert {key: stored[key] for key in ("finished", "repeats", "blocked", "stale")} == {
        "finished": [["seed=1"]],
        "repeats": [["seed=2"]],  # the repeat, not the job whose run serves it
        "blocked": [["seed=4"]],
        "stale": [["seed=5"]],
    }


def test_the_sweepers_lists_leave_out_hydra_overrides_as_its_jobs_do() -> None:
    """Kills dropping `if not o.is_hydra_override()`: Hydra hands the sweeper no `hydra.*`
    override, so with one on the command line (hydra.launcher.n_jobs=2) no listed job would match
    its job, and every finished job would run again."""
    left = LeftOut([combination("seed=1", "hydra.launcher.n_jobs=2", "model=tiny")], [], [], [])
    sweep_launch._skipping_sweeper(False, left)
    assert stored_sweeper()["finished"] == [["seed=1", "model=tiny"]]


def test_a_forced_launch_lists_each_job_with_the_force_rerun_its_jobs_carry() -> None:
    """Kills dropping `+ forced` (or never setting it): hydra_args adds force_rerun=true to every
    job of a forced launch, so a repeat or a blocked combination listed without it would match no
    job, and the repeat would train twice, the blocked one fail in another config's folder."""
    left = LeftOut(
        [], [(combination("seed=1"), combination("seed=2"))], [combination("seed=3")], []
    )
    sweep_launch._skipping_sweeper(True, left)
    stored = stored_sweeper()
    assert stored["repeats"] == [["seed=1", "force_rerun=True"]]
    assert stored["blocked"] == [["seed=3", "force_rerun=True"]]
    sweep_launch._skipping_sweeper(False, left)
    assert stored_sweeper()["repeats"] == [["seed=1"]]


# --- the multirun's command line -----------------------------------------------------------------


def test_the_multiruns_command_line() -> None:
    """Kills a changed or dropped launch override (the job name, the failed_jobs callback
    removed, `sweep` or a fixed setting left in the job folder's name, a swept one taken out of
    it) and `-m` or the grid left out of the command line."""
    args = hydra_args("demo", ["seed=1", "model=tiny"], Path("/s"), force=False)
    assert args == [
        "-m",
        "sweep=demo",
        "hydra.sweep.dir='/s'",
        "hydra.job.name=sweep",
        "hydra.sweep.subdir='${layerft_dirname:${hydra.job.override_dirname}}'",
        # the grid's swept keys name the folder (seed=1 too, one value of the grid's seeds);
        # sweep, force_rerun and the fixed model=tiny do not
        "hydra.job.config.override_dirname.exclude_keys=[force_rerun,model,sweep]",
        "~hydra.callbacks.failed_jobs",
        "seed=1",
        "model=tiny",
    ]
    assert hydra_args("demo", [], Path("/s"), force=True)[-1] == "force_rerun=true"


# --- overrides refused ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "override",
    [
        "hydra.sweep.dir=x",
        "hydra.sweep.subdir=x",
        "hydra.sweep={dir: a}",  # a node above one
        "hydra.job.config.override_dirname.item_sep=_",  # one under one
        "hydra.job.name=x",
        "hydra.output_subdir=x",
    ],
)
def test_every_job_folder_key_is_refused(override: str) -> None:
    """Kills a key dropped from JOB_FOLDER_KEYS, or `overlaps` replaced by equality."""
    with pytest.raises(LayerftError, match=r"^hydra\.[a-z_.]+: sweep\.py "):
        check_hydra_overrides([override])


@pytest.mark.parametrize("override", ["hydra/sweeper=basic", "hydra.sweeper._target_=x.Sweeper"])
def test_another_sweeper_is_refused_chosen_either_way(override: str) -> None:
    """Kills either key dropped from the sweeper check: sweep.py's own sweeper (the one that
    leaves out the finished jobs) would be replaced without a word, and every job rerun."""
    with pytest.raises(LayerftError, match=r"^hydra/sweeper: sweep\.py runs a grid with its own"):
        check_hydra_overrides([override])


@pytest.mark.parametrize(
    ("override", "refused"),
    [
        ("hydra.job.chdir=true", True),
        ("hydra.job.chdir=false,true", True),
        ("hydra.job.chdir=false", False),
        ("hydra.job.chdir=null", False),
        ("hydra.run.dir=x", False),
        ("hydra.sweeper.max_batch_size=2", False),
    ],
)
def test_chdir_is_refused_only_when_some_job_would_change_folder(override, refused) -> None:
    """Kills the chdir condition flipped or loosened (a swept value not counted, null refused)."""
    if refused:
        with pytest.raises(LayerftError, match=r"^hydra\.job\.chdir=true: "):
            check_hydra_overrides([override])
    else:
        check_hydra_overrides([override])


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("++hydra.sweep.subdir=one", "hydra.sweep.subdir: sweep.py names each job's folder"),
        ("++hydra.sweep.dir=/elsewhere", "hydra.sweep.dir: sweep.py picks the sweep folder"),
        ("+hydra.job.name=mine", "hydra.job.name: sweep.py names every job 'sweep'"),
        ("~hydra.output_subdir", "hydra.output_subdir: sweep.py finds each job's config"),
        ("++hydra.job.chdir=true", "hydra.job.chdir=true: sweep.py plans every job"),
        ("++hydra.sweeper._target_=x.Sweeper", "hydra/sweeper: sweep.py runs a grid with its own"),
        ("hydra.sweeper={_target_: x.Sweeper}", "hydra/sweeper: sweep.py runs a grid with its own"),
    ],
)
def test_an_override_with_a_prefix_or_of_a_node_above_is_refused_as_the_key_it_sets(
    override: str, message: str
) -> None:
    """A bug: the refusals compared the override's key element, which keeps its `+`, `++` or `~`
    (`++hydra.sweep.dir`), so `++hydra.sweep.subdir=one` put every job of a planned grid into one
    folder, and `++hydra.sweeper._target_` (or `hydra.sweeper={_target_: ...}`, the node above
    it) replaced sweep.py's sweeper without a word."""
    with pytest.raises(LayerftError) as refused:
        check_hydra_overrides([override])
    assert str(refused.value).startswith(message)


def test_a_fixed_override_with_a_prefix_is_left_out_of_the_job_folders_name() -> None:
    """A bug: launch_overrides excluded a fixed `++target_task.lr=0.001` from the folder names as
    `++target_task.lr`, a key Hydra (which compares the key alone) never matched: each job ran in
    `++target_task.lr=0.001,seed=1` while sweep.py's plan, resume and tables looked in `seed=1`
    (every resume reran the grid)."""
    from hydra._internal.config_loader_impl import get_overrides_dirname
    from hydra.core.override_parser.overrides_parser import OverridesParser

    launch = sweep_hydra.launch_overrides(
        Path("x"), ["++target_task.lr=0.001", "seed=1,2"], {"seed"}
    )
    [excluded] = [
        a for a in launch if a.startswith("hydra.job.config.override_dirname.exclude_keys=")
    ]
    keys = excluded.split("=", 1)[1].strip("[]").split(",")
    job = OverridesParser.create().parse_overrides(
        ["sweep=demo", "++target_task.lr=0.001", "seed=1"]
    )
    assert get_overrides_dirname(job, keys, item_sep=",", kv_sep="=") == "seed=1"


def test_a_key_that_only_begins_like_a_job_folder_key_is_no_such_key() -> None:
    """Kills `key.startswith(f"{known}.")` -> `key.startswith(known)`: `hydra.job.names` (or any
    key whose name begins with another's) is not the key, nor one under it."""
    assert sweep_hydra.overlaps("hydra.job.name", "hydra.job.name")
    assert sweep_hydra.overlaps("hydra.job.name.x", "hydra.job.name")
    assert sweep_hydra.overlaps("hydra.job", "hydra.job.name")
    assert not sweep_hydra.overlaps("hydra.job.names", "hydra.job.name")
    assert not sweep_hydra.overlaps("hydra.job.nam", "hydra.job.name")


def test_the_launchers_slots_are_checked_for_local_parallel_only() -> None:
    """Kills the launcher test flipped: local_parallel's impossible slots passed the plan (its
    launch then refused them), and Hydra's basic launcher, which has no slots, was refused."""
    with pytest.raises(LayerftError, match=r"^hydra\.launcher\.n_jobs must be at least 1, got 0$"):
        sweep_launch.check_launcher(
            "demo", ["hydra/launcher=local_parallel", "hydra.launcher.n_jobs=0"]
        )
    assert "n_jobs" not in sweep_launch.check_launcher("demo", [])


# --- a never-started job's folder ----------------------------------------------------------------


def unstarted(folder: Path) -> Path:
    """A job folder as Hydra makes it for a job that then never starts."""
    (folder / ".hydra").mkdir(parents=True)
    (folder / ".hydra" / "config.yaml").write_text("seed: 1\n")
    (folder / "sweep.log").write_text("")
    return folder


@pytest.mark.parametrize("earlier", ["checkpoints", "metrics.json", "failed.json", "a", "z"])
def test_a_folder_holding_an_earlier_attempts_file_keeps_its_hydra_files_and_logs(
    tmp_path, earlier: str
) -> None:
    """Kills `any(...)` -> `all(...)` (or the earlier attempt's file not counted, wherever the
    folder lists it): the removal went ahead while the folder held an earlier attempt's file,
    deleting its `.hydra` config (what sweep.py reads of a killed job) and its logs, only the
    folder itself staying."""
    folder = unstarted(tmp_path / "job")
    (folder / earlier).mkdir()
    sweep_launch._remove_unstarted(folder)
    assert sorted(p.name for p in folder.iterdir()) == sorted([".hydra", earlier, "sweep.log"])
    assert (folder / ".hydra" / "config.yaml").read_text() == "seed: 1\n"


def test_a_folder_gone_or_never_made_is_left_alone(tmp_path) -> None:
    """Kills dropping `not folder.is_dir()`: a job Hydra made no folder for (or one removed
    meanwhile) turned its stop into a FileNotFoundError."""
    sweep_launch._remove_unstarted(tmp_path / "never")
    sweep_launch._remove_unstarted(None)
    assert list(tmp_path.iterdir()) == []


def test_a_file_appearing_while_the_folder_is_removed_stays(tmp_path, monkeypatch) -> None:
    """Kills `folder.rmdir()` -> `shutil.rmtree(folder)`: a file another sweep on the folder
    wrote meanwhile (its result) would be deleted with it."""
    folder = unstarted(tmp_path / "job")
    real = sweep_launch.shutil.rmtree

    def another_sweep_writes(path, *args, **kwargs) -> None:  # noqa: ANN001, ANN002, ANN003
        real(path, *args, **kwargs)
        if Path(path).name == ".hydra":
            (folder / "metrics.json").write_text("{}")

    monkeypatch.setattr(sweep_launch.shutil, "rmtree", another_sweep_writes)
    sweep_launch._remove_unstarted(folder)
    assert [p.name for p in folder.iterdir()] == ["metrics.json"]


def test_the_removal_of_a_never_started_jobs_folder_is_logged(tmp_path, caplog) -> None:
    """Kills dropping the log line (or logging a folder that stayed)."""
    folder = unstarted(tmp_path / "job")
    with caplog.at_level(logging.INFO, logger="layerft.sweep_launch"):
        sweep_launch._remove_unstarted(folder)
    assert not folder.exists()
    assert caplog.messages == [f"removed {folder}: its job never started (interrupted)"]


def test_a_job_started_after_a_lost_ctrl_c_removes_its_folder_and_stops(
    tmp_path, monkeypatch
) -> None:
    """Kills dropping `_remove_unstarted(_job_folder())` from job(): the folder of a job that
    never ran would stay, and the tables would list it as unfinished."""
    folder = unstarted(tmp_path / "job")
    monkeypatch.setattr(sweep_launch, "interrupted", lambda: True)
    monkeypatch.setattr(sweep_launch, "_job_folder", lambda: folder)
    with pytest.raises(KeyboardInterrupt):
        sweep_launch.job(OmegaConf.create({}))
    assert not folder.exists()


def test_a_job_returns_its_target_score_to_hydra(monkeypatch) -> None:
    """Kills `return metrics.get(...)` -> `return None`: a job's return value is what a sweeper
    that optimises (Hydra's return value) reads."""
    import layerft.hydra_job

    metrics = {"target/eval_accuracy": 0.75, "target/eval_f1": 0.5}
    monkeypatch.setattr(layerft.hydra_job, "run_from_hydra", lambda cfg, **kw: metrics)
    cfg = OmegaConf.create({"target_task": {"best_metric": "f1"}})
    assert sweep_launch.job(cfg) == 0.5
    monkeypatch.setattr(layerft.hydra_job, "run_from_hydra", lambda cfg, **kw: None)
    assert sweep_launch.job(cfg) is None


# --- train.py -m's FailedJobs summary ------------------------------------------------------------


def test_the_summary_names_only_failures_written_during_the_multirun(
    tmp_path, caplog, monkeypatch
) -> None:
    """Kills `before` left empty, `!=` -> `==`, and the count line dropped: a reused sweep
    folder's earlier failures would be counted again (train.py exiting 1 for a run whose every
    job ran), or the new failure missed."""
    monkeypatch.setattr(FailedJobs, "failed", [])  # train.py reads it
    earlier, new = tmp_path / "0", tmp_path / "1"
    for folder in (earlier, new):
        folder.mkdir()
    (earlier / "failed.json").write_text('{"run/error": "ValueError: earlier"}')
    config = OmegaConf.create({"hydra": {"sweep": {"dir": str(tmp_path)}}})
    report = FailedJobs()
    report.on_multirun_start(config)
    (new / "failed.json").write_text('{"run/error": "ValueError: new"}')
    with caplog.at_level(logging.ERROR):
        report.on_multirun_end(config)
    assert FailedJobs.failed == [new]
    assert caplog.messages == [
        f"job failed: ValueError: new ({new / 'failed.json'})",
        f"1 job(s) of {tmp_path} failed; the others ran",
    ]
    caplog.clear()
    report.on_multirun_start(config)
    report.on_multirun_end(config)  # nothing written since
    assert FailedJobs.failed == [] and caplog.messages == []


# --- how a stopped launch is reported ------------------------------------------------------------


def test_a_launch_stopped_by_an_exit_or_a_folder_it_could_not_make_is_one_line(tmp_path) -> None:
    """Kills `not err.code` flipped, the OSError branch dropped, and its action changed: a clean
    sys.exit is no stop, a job folder Hydra could not make is named."""
    assert sweep_launch._stopped_by(SystemExit(0)) is None
    assert sweep_launch._stopped_by(SystemExit(None)) is None
    assert sweep_launch._stopped_by(SystemExit(3)) == "SystemExit: 3"
    made = PermissionError(13, "Permission denied", str(tmp_path / "job"))
    assert sweep_launch._stopped_by(made) == f"cannot create {tmp_path / 'job'}: Permission denied"
    assert sweep_launch._stopped_by(RuntimeError("boom\nmore")) == "RuntimeError: boom"


# --- the grids and the search path ---------------------------------------------------------------


def test_a_search_path_that_is_no_list_of_strings_is_hydras_error() -> None:
    """Kills dropping the check: `hydra.searchpath=x` would be read as the folders of "x"."""
    with pytest.raises(ConfigCompositionException, match="must be a list of strings. Got: x"):
        sweep_hydra.searchpath(["hydra.searchpath=x"])
    assert sweep_hydra.searchpath(["seed=1"]) == []
    assert sweep_hydra.searchpath(["hydra.searchpath=[file://a]"]) == ["file://a"]


def test_the_grids_are_listed_sorted() -> None:
    """Kills the grid list in another order (sweep.py's usage and errors list it)."""
    names = sweep_hydra.grid_names()
    assert names == sorted(names) and {"demo", "adapter_study"} <= set(names)


def test_a_grid_in_two_folders_of_the_search_path_is_the_first_ones(tmp_path) -> None:
    """Kills looking through the search path from its end: the grid named (and checked) would
    be another file than the one Hydra composes."""
    folders = [tmp_path / "first", tmp_path / "second"]
    for folder in folders:
        (folder / "sweep").mkdir(parents=True)
        (folder / "sweep" / "mine.yaml").write_text(
            f"# @package _global_\nseed: {len(str(folder))}\n"
        )
    path = "hydra.searchpath=[" + ",".join(f"file://{f}" for f in folders) + "]"
    name, _ = sweep_hydra.find_grid("mine", [path])
    assert name == str(folders[0] / "sweep" / "mine.yaml")


def test_a_grid_file_hydra_cannot_read_is_one_error_naming_it(tmp_path) -> None:
    """Kills the LayerftError naming the file dropped (`raise`): a grid whose header names two
    packages stopped sweep.py with Hydra's ValueError, naming no file."""
    (tmp_path / "sweep").mkdir()
    (tmp_path / "sweep" / "mine.yaml").write_text("# @package a b\nseed: 1\n")
    with pytest.raises(LayerftError) as caught:
        sweep_hydra.find_grid("mine", [f"hydra.searchpath=[file://{tmp_path}]"])
    assert str(caught.value) == (
        f"{tmp_path / 'sweep' / 'mine.yaml'}: Too many components in '@package a b'"
    )


def test_no_grid_names_the_folders_it_looked_in_and_says_which_are_not_found(tmp_path) -> None:
    """Kills the search path's folders left out of the message, and `available()` flipped: a
    folder that is there was said to be not found, one that is not, said nothing."""
    there, gone = tmp_path / "there", tmp_path / "gone"
    (there / "sweep").mkdir(parents=True)
    path = f"hydra.searchpath=[file://{there},file://{gone}]"
    with pytest.raises(LayerftError) as caught:
        sweep_hydra.find_grid("nogrid", [path])
    assert str(caught.value).startswith(
        f"no grid 'nogrid' in {sweep_grid.CONF / 'sweep'}, {there / 'sweep'}, "
        f"{gone / 'sweep'} ({gone}: not found); grids: "
    )


def test_a_grid_key_the_command_line_sets_too_is_the_command_lines_error(tmp_path, capsys) -> None:
    """Kills dropping `or found.group(1) in given`: a mistyped key that the command line sets as
    well (its value replacing the grid's) was blamed on the grid file."""
    (tmp_path / "sweep").mkdir()
    (tmp_path / "sweep" / "typo.yaml").write_text(
        "# @package _global_\nhydra:\n  sweeper:\n    params:\n      tuning_mod: full,lora\n"
    )
    argv = ["typo", f"hydra.searchpath=[file://{tmp_path}]", "model=tiny", "--dry-run",
            "--dir", str(tmp_path / "out")]  # fmt: skip
    assert sweep_module.main(argv) == 2
    assert capsys.readouterr().err.strip() == (
        f"error: {tmp_path / 'sweep' / 'typo.yaml'}: hydra.sweeper.params: unknown config key "
        "'tuning_mod'; did you mean 'tuning_mode'?"
    )
    assert sweep_module.main([*argv, "tuning_mod=full"]) == 2
    assert capsys.readouterr().err.strip() == (
        "error: unknown config key 'tuning_mod'; did you mean 'tuning_mode'?"
    )


# --- `${hydra:...}` values -----------------------------------------------------------------------


def test_every_hydra_value_is_found_in_lists_too_and_its_key_without_spaces() -> None:
    """Kills skipping lists and `key.strip()` dropped: a `${hydra:job.num}` in a list went
    unchecked (the plan mis-planned it), and `${hydra: job.num }` was not recognised as job.num."""
    cfg = OmegaConf.create({"a": ["x", "${hydra:job.num}"], "b": {"c": "${hydra: job.id }"}})
    assert sweep_hydra.hydra_reads(cfg) == [("a[1]", "job.num"), ("b.c", "job.id")]


def test_a_hydra_value_reading_a_time_is_set_only_at_launch() -> None:
    """Kills dropping the `${now:` check."""
    hydra = OmegaConf.create({"run": {"dir": "outputs/${now:%H}"}, "job": {"name": "sweep"}})
    assert sweep_hydra.unplanned(hydra, "run.dir") == sweep_hydra.LAUNCH_TIME
    assert sweep_hydra.unplanned(hydra, "job.name") is None


def test_a_plan_reads_the_hydra_config_of_a_multirun_and_gives_it_back(tmp_path) -> None:
    """Kills `hydra.mode=MULTIRUN` dropped (a job's `${hydra:mode}` planned as RUN, its
    fingerprint another than the job's) and Hydra's config not given back after each job."""
    (tmp_path / "mine" / "sweep").mkdir(parents=True)
    (tmp_path / "mine" / "sweep" / "mygrid.yaml").write_text(
        "# @package _global_\nhydra:\n  sweeper:\n    params:\n      seed: 1,2\n"
    )
    overrides = [f"hydra.searchpath=[file://{tmp_path / 'mine'}]", "model=tiny", "tracker=none",
                 "tracker.group=${hydra:mode}"]  # fmt: skip
    held = HydraConfig.instance().cfg
    planned = sweep_grid.expand("mygrid", overrides, tmp_path / "out")
    assert [c.resolved["tracker"]["group"] for c in planned if c.resolved] == [
        "RunMode.MULTIRUN"
    ] * 2
    assert HydraConfig.instance().cfg is held


# --- how a stopped launch is reported: run_grid ---------------------------------------------------


NOTHING_LEFT = LeftOut([], [], [], [])


def launch_that(monkeypatch, happen) -> list[list[str]]:  # noqa: ANN001
    """Hydra's multirun replaced by `happen()`; returns the argv each launch ran with."""
    seen: list[list[str]] = []

    def main(**kwargs):  # noqa: ANN003, ANN202
        def wrap(task):  # noqa: ANN001, ANN202
            def run() -> None:
                seen.append(list(sys.argv))
                happen()

            return run

        return wrap

    monkeypatch.setattr(sweep_launch.hydra, "main", main)
    return seen


def test_a_launch_runs_its_command_line_and_gives_back_sys_argv(tmp_path, monkeypatch) -> None:
    """Kills sys.argv left as the multirun's (sweep.py's later steps, and a second run_grid in
    one process, read it) and a launch that ends cleanly reported as stopped."""
    seen = launch_that(monkeypatch, lambda: None)
    argv = list(sys.argv)
    assert sweep_launch.run_grid("demo", ["seed=1"], tmp_path, False, NOTHING_LEFT) is None
    assert sys.argv == argv
    [ran] = seen
    assert ran[1:] == [
        *hydra_args("demo", ["seed=1"], tmp_path, False),
        "hydra/sweeper=layerft_skipping",
    ]


def test_the_launcher_refusing_its_settings_is_raised_not_a_stopped_launch(
    tmp_path, monkeypatch
) -> None:
    """Kills `except LayerftError: raise` turned into a stopped launch's line: bad input (exit
    2, no summary) would read as a sweep stopped early, every job NOT RUN, exit 1."""

    def refuse() -> None:
        raise LayerftError("hydra.launcher.n_jobs must be at least 1, got 0")

    launch_that(monkeypatch, refuse)
    with pytest.raises(LayerftError, match="n_jobs must be at least 1"):
        sweep_launch.run_grid("demo", ["seed=1"], tmp_path, False, NOTHING_LEFT)


@pytest.mark.parametrize(
    ("error", "line"),
    [
        (SystemExit(0), None),
        (SystemExit(1), "SystemExit: 1"),
        (
            PermissionError(13, "Permission denied", "/s/job"),
            "cannot create /s/job: Permission denied",
        ),
        (RuntimeError("a job's failure escaped it"), "RuntimeError: a job's failure escaped it"),
    ],
)
def test_what_stops_a_launch_is_one_line(tmp_path, monkeypatch, error, line) -> None:
    """Kills the stop's line changed, and an error raised instead of reported."""

    def stop() -> None:
        raise error

    launch_that(monkeypatch, stop)
    assert sweep_launch.run_grid("demo", ["seed=1"], tmp_path, False, NOTHING_LEFT) == line


def test_an_error_after_a_stop_is_the_stop(tmp_path, monkeypatch) -> None:
    """Kills `stopped_how() if interrupted() else _stopped_by(err)` -> `_stopped_by(err)`: what
    a SIGTERM set off (a loader worker it ended) was reported in place of the SIGTERM, and a
    launch that ended after a lost stop is that stop."""

    def stop() -> None:
        raise RuntimeError("DataLoader worker (pid 1) exited unexpectedly")

    monkeypatch.setattr(sweep_launch, "interrupted", lambda: True)
    monkeypatch.setattr(sweep_launch, "stopped_how", lambda: "terminated (SIGTERM)")
    launch_that(monkeypatch, stop)
    assert sweep_launch.run_grid("demo", ["seed=1"], tmp_path, False, NOTHING_LEFT) == (
        "terminated (SIGTERM)"
    )
    launch_that(monkeypatch, lambda: None)
    assert sweep_launch.run_grid("demo", ["seed=1"], tmp_path, False, NOTHING_LEFT) == (
        "terminated (SIGTERM)"
    )
