"""sweep.py and Hydra's own settings: overrides of where and how job folders are named refused,
glob() sweeps, `${hydra:...}` values planned as the job resolves them, and grids found through
Hydra's config repository (a `pkg://` search path too)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import run_sweep
from easy_data import write_keyword_split
from omegaconf import OmegaConf

from layerft import sweep as sweep_module
from layerft import sweep_grid
from layerft.file_settings import file_settings, setting_text, shadowed_options
from layerft.tuning_mode import TuningMethod

PLAN = ("model=tiny", "tracker=none", "--dry-run")


def own_grid(folder: Path, text: str = "", tuning_mode: str | None = None) -> str:
    """A grid `mygrid` (seeds 1 and 2, `text` added under `hydra:`) in `folder`/sweep/, with a
    copy of tuning_mode=full named `tuning_mode` beside it, and the override that puts `folder` on
    Hydra's search path."""
    (folder / "sweep").mkdir(parents=True, exist_ok=True)
    if tuning_mode:
        (folder / "tuning_mode").mkdir(exist_ok=True)
        full = (sweep_grid.CONF / "tuning_mode" / "full.yaml").read_text()
        (folder / "tuning_mode" / f"{tuning_mode}.yaml").write_text(
            full.replace("name: full", f"name: {tuning_mode}")
        )
    (folder / "sweep" / "mygrid.yaml").write_text(
        f"# @package _global_\nhydra:\n  sweeper:\n    params:\n      seed: 1,2\n{text}"
    )
    return f"hydra.searchpath=[file://{folder}]"


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("hydra.sweep.subdir=foo", "hydra.sweep.subdir: sweep.py names each job's folder"),
        ("hydra.sweep={dir: a, subdir: b}", "hydra.sweep: sweep.py picks the sweep folder"),
        (
            "hydra.job.config.override_dirname.kv_sep=:",
            "hydra.job.config.override_dirname.kv_sep: sweep.py names each job's folder",
        ),
        (
            "hydra.job.config.override_dirname.exclude_keys=[seed]",
            "hydra.job.config.override_dirname.exclude_keys: sweep.py names each job's folder",
        ),
        ("hydra.job.name=mine", "hydra.job.name: sweep.py names every job 'sweep'"),
        ("hydra.output_subdir=null", "hydra.output_subdir: sweep.py finds each job's config"),
        ("hydra.job.chdir=true", "hydra.job.chdir=true: sweep.py plans every job from the folder"),
        ("hydra.job.chdir=true,false", "hydra.job.chdir=true: sweep.py plans every job from"),
    ],
)
def test_an_override_of_where_a_job_folder_is_or_its_name_is_refused(
    tmp_path, capsys, override, message
) -> None:
    # The run had written every job into <dir>/foo/, later jobs failing as "holds the result of
    # another config"; with chdir, each job had trained its own stage 1 in its own folder.
    grid = own_grid(tmp_path / "mine")
    argv = ["mygrid", grid, override, *PLAN, "--dir", str(tmp_path / "out")]
    assert sweep_module.main(argv) == 2
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith(f"error: {message}"), line


def test_hydra_settings_that_leave_the_job_folders_alone_are_taken(tmp_path, capsys) -> None:
    # A multirun never uses hydra.run.dir; chdir=false is the default (null reads as false).
    grid = own_grid(tmp_path / "mine")
    for override in ("hydra.run.dir=elsewhere", "hydra.job.chdir=false", "hydra.job.chdir=null"):
        assert sweep_module.main(["mygrid", grid, override, *PLAN, "--dir", str(tmp_path)]) == 0
        assert capsys.readouterr().out.splitlines()[-1] == "0 done, 2 to run"


def test_a_grid_of_a_package_on_the_search_path_is_found(tmp_path, capsys, monkeypatch) -> None:
    # `train.py sweep=pgrid 'hydra.searchpath=[pkg://mypkg.conf]'` found it; sweep.py had looked
    # in file:// folders only ("no grid 'pgrid' in .../conf/sweep").
    conf = tmp_path / "mypkg" / "conf"
    own_grid(conf)
    (conf / "sweep" / "mygrid.yaml").rename(conf / "sweep" / "pgrid.yaml")
    for package in (conf.parent, conf):
        (package / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))
    searchpath = "hydra.searchpath=[pkg://mypkg.conf]"
    assert sweep_module.main(["pgrid", searchpath, *PLAN, "--dir", str(tmp_path / "out")]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "0 done, 2 to run"
    assert sweep_module.main(["nogrid", searchpath, *PLAN]) == 2
    assert capsys.readouterr().err.strip() == (
        f"error: no grid 'nogrid' in {sweep_grid.CONF / 'sweep'}, pkg://mypkg.conf/sweep; did you "
        "mean 'pgrid'? grids: adapter_study, demo, klue_paper, pgrid"
    )


def test_a_glob_sweep_lists_its_groups_options_those_of_the_search_path_too(
    tmp_path, capsys
) -> None:
    # It had stopped with "error: ConfigLoader is not set"; train.py -m expanded it over conf/
    # alone (hydra issue #1942), though its jobs compose with the search path.
    grid = own_grid(tmp_path / "mine", tuning_mode="fuller")
    argv = ["mygrid", grid, "seed=1", "tuning_mode=glob(fu*)", *PLAN, "--dir", str(tmp_path)]
    assert sweep_module.main(argv) == 0
    planned = [line.split()[1] for line in capsys.readouterr().out.splitlines() if "[todo]" in line]
    assert planned == ["seed=1,tuning_mode=full", "seed=1,tuning_mode=fuller"]


def test_the_sweeper_launches_the_glob_options_sweep_py_planned(tmp_path) -> None:
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.types import HydraContext
    from omegaconf import OmegaConf

    # here, not above: Hydra's plugin scan (in an earlier test) runs its module again
    from hydra_plugins.layerft_launcher.skipping_sweeper import SkippingSweeper

    own_grid(tmp_path / "mine", tuning_mode="fuller")
    sweeper = SkippingSweeper(None, finished=[["tuning_mode=full"]])
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(sweep_grid.CONF), version_base="1.3"):
        loader = GlobalHydra.instance().config_loader()
        sweeper.hydra_context = HydraContext(config_loader=loader, callbacks=None)  # type: ignore[arg-type]
        sweeper.config = OmegaConf.create(
            {"hydra": {"searchpath": [f"file://{tmp_path / 'mine'}"]}}
        )
        # as BasicSweeper.sweep parses them: with Hydra's config loader, which lists conf/ alone
        overrides = OverridesParser.create(config_loader=loader).parse_overrides(
            ["tuning_mode=glob(fu*)"]
        )
        assert sweeper.split_arguments(overrides, None) == [[["tuning_mode=fuller"]]]
    GlobalHydra.instance().clear()


def test_hydra_values_and_a_glob_sweep_run_as_planned(tmp_path) -> None:
    # `${hydra:...}` had stopped the plan ("HydraConfig was not set", no key named); train.py
    # resolves them. Planned as the job resolves them, a rerun finds every job done.
    grid = own_grid(tmp_path / "mine", tuning_mode="fuller")
    (tmp_path / "data").mkdir()
    for split, size in (("train", 64), ("validation", 32)):
        write_keyword_split(tmp_path / "data" / f"{split}.jsonl", size, seed=0)
    args = ["mygrid", grid, "seed=1", "tuning_mode=glob(fu*)", "injection_task=none",
            "model=tiny", "tracker=none", "target_task=ag_news", "target_task.epochs=1",
            "target_task.data_files.train=${hydra:runtime.cwd}/data/train.jsonl",
            "target_task.data_files.validation=${hydra:runtime.cwd}/data/validation.jsonl",
            "tracker.group=${hydra:job.name}", "--dir", "out"]  # fmt: skip
    plans = []
    for extra in (["--dry-run"], [], ["--dry-run"]):
        done = run_sweep([*args, *extra], tmp_path)
        assert done.returncode == 0, done.stderr[-3000:]
        plans.append(done.stdout.splitlines()[-1])
    assert plans[0] == "0 done, 2 to run" and plans[2] == "2 done, 0 to run"
    for folder in ("seed=1,tuning_mode=full", "seed=1,tuning_mode=fuller"):
        metrics = json.loads((tmp_path / "out" / folder / "metrics.json").read_text())
        assert metrics["run/data_paths"]["target_task.train"] == f"{tmp_path}/data/train.jsonl"


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("${hydra:job.num}", "its number in the launch, which finished jobs left out change"),
        ("a${hydra:job}", "its number in the launch"),  # the node holding it
        ("${hydra:run.dir}", "the time of its launch"),  # outputs/${now:...}
        ("${hydra:overrides.task}", "the overrides as the sweeper lists them (--force adds one)"),
    ],
)
def test_a_hydra_value_only_the_launch_sets_is_refused_naming_its_key(
    tmp_path, capsys, value, why
) -> None:
    grid = own_grid(tmp_path / "mine")
    argv = ["mygrid", grid, f"tracker.group='{value}'", *PLAN, "--dir", str(tmp_path)]
    assert sweep_module.main(argv) == 2
    [line] = capsys.readouterr().err.splitlines()
    key = value[value.index("$") :]
    assert line.startswith(
        f"error: tracker.group: {key} is set only when the job is launched ({why}"
    )


def test_a_hydra_value_naming_the_job_folder_is_planned_as_the_job_resolves_it(tmp_path) -> None:
    grid = own_grid(tmp_path / "mine")
    overrides = [grid, "model=tiny", "tracker.group=${hydra:runtime.output_dir}|${hydra:sweep.dir}"]
    planned = sweep_grid.expand("mygrid", overrides, tmp_path / "out")
    assert [c.resolved["tracker"]["group"] for c in planned if c.resolved] == [
        f"{tmp_path / 'out' / f'seed={seed}'}|{tmp_path / 'out'}" for seed in (1, 2)
    ]


def test_the_keys_a_grid_file_sets_are_recorded_less_overridden_ones_and_credentials(
    tmp_path: Path,
) -> None:
    # results.md names them (file_settings_lines): no choice or override does.
    (tmp_path / "sweep").mkdir()
    (tmp_path / "sweep" / "g.yaml").write_text(
        "# @package _global_\ndefaults:\n  - override /model: tiny\n"
        "target_task:\n  max_length: 48\n  epochs: 2\ntracker:\n  api_key: s3cret\n"
        "flag: true\nsizes: [1, 2]\nhydra:\n  sweeper:\n    params:\n      seed: 1,2\n"
    )
    cfg = OmegaConf.create(
        {"target_task": {"max_length": 48, "epochs": 3}, "tracker": {"api_key": "s3cret"},
         "flag": True, "sizes": [1, 2]}
    )  # fmt: skip
    sources = [
        {"path": "hydra.conf", "schema": "pkg", "provider": "hydra"},
        {"path": str(tmp_path), "schema": "file", "provider": "main"},
    ]
    hydra = OmegaConf.create(
        {"runtime": {"choices": {"sweep": "g", "experiment": None}, "config_sources": sources},
         "overrides": {"task": ["target_task.epochs=3"]}}
    )  # fmt: skip
    assert file_settings(cfg, hydra) == {
        "target_task.max_length": "48", "tracker.api_key": "***", "flag": "true", "sizes": "[1,2]",
    }  # fmt: skip
    # A value that does not resolve is the run's to report (it had stopped the multirun here);
    # a schema's choice reads as Hydra takes it.
    cfg.target_task.max_length = "${oc.env:LAYERFT_NO_SUCH_VARIABLE}"
    assert "target_task.max_length" not in file_settings(cfg, hydra)
    assert setting_text(TuningMethod.lora) == "lora"
    # A file of another package sets keys elsewhere; none chosen, none found.
    (tmp_path / "sweep" / "g.yaml").write_text("target_task:\n  max_length: 48\n")
    assert file_settings(cfg, hydra) == {}
    # Its header as Hydra parses it, not the words anywhere in the file.
    hydra.runtime.choices.sweep, cfg.target_task.max_length = "g", 48
    header = "# not like the grids, whose header is # @package _global_"
    (tmp_path / "sweep" / "g.yaml").write_text(f"{header}\ntarget_task:\n  max_length: 48\n")
    assert file_settings(cfg, hydra) == {}
    (tmp_path / "sweep" / "g.yaml").write_text(
        "# @package _global_\ntarget_task:\n  max_length: 48\n"
    )
    assert file_settings(cfg, hydra) == {"target_task.max_length": "48"}
    hydra.runtime.choices.sweep = None
    assert file_settings(cfg, hydra) == {}


def test_table_options_are_checked_before_a_job_runs(tmp_path: Path, capsys, plans_once) -> None:
    # `--baseline tuning_mode=full seed=1` took seed=1 (meant to narrow the grid) as a baseline
    # setting: every job trained, then the table was refused. A typo waited as long.
    # Every main() below runs whole, but plans a grid (same overrides, same folder) once: the
    # plan reads no table option, and nothing here changes what it reads.
    out = tmp_path / "out"
    # seed=1: the grid's 4 jobs of one seed
    args = ["demo", "model=tiny", "tracker=none", "seed=1", "--dir", str(out)]
    refused = {
        ("--baseline", "tuning_mode=full", "seed=1"): "--baseline seed: a row folds its seeds",
        ("--baseline", "tuning_mode=ful"): "--baseline tuning_mode=ful: no job has it (the grid's and the folder's: full, lora)",
        ("--heatmap", "tuning_mode", "lr_schedul"): "--heatmap lr_schedul: no job of the grid sets it",
        ("--baseline", "tuning_mode"): "--baseline takes key=value settings, got 'tuning_mode'",
        ("--best-of", "target_task.l"): "--best-of target_task.l: no job of the grid sets it",
        ("--best-of", "seed"): "--best-of seed: a row folds its seeds",
        ("--heatmap", "tuning_mode", "tuning_mode"): "--heatmap tuning_mode tuning_mode: name two different settings",
    }  # fmt: skip
    for options, message in refused.items():
        assert sweep_module.main([*args, *options]) == 2, options
        assert capsys.readouterr().err.startswith(f"error: {message}"), options
    assert not out.exists()  # nothing ran
    line = sweep_module.main([*args, "--baseline", "seed=1"]) and capsys.readouterr().err
    assert line.strip().endswith("Hydra overrides go before --baseline, --heatmap and --best-of, which take every value after them")  # fmt: skip
    assert sweep_module.main([*args, "--dry-run", "--best-of", "tuning_mode"]) == 0
    # Given twice, --baseline keeps both; right ones plan.
    options = ["--baseline", "tuning_mode=full", "--heatmap", "tuning_mode", "seed", "--baseline", "injection_task=demo_pos"]  # fmt: skip
    assert sweep_module.parse_args([*args, *options]).baseline == ["tuning_mode=full", "injection_task=demo_pos"]  # fmt: skip
    assert sweep_module.main([*args, "--dry-run", *options[:2], "--heatmap", "tuning_mode", "injection_task"]) == 0  # fmt: skip
    # `-` (unset) where an earlier record of the folder leaves the swept key unset: as the tables take it
    (out / "old").mkdir(parents=True)
    (out / "old" / "metrics.json").write_text(json.dumps({
        "run/choices": {"tuning_mode": "full"}, "run/seed": 1, "run/overrides": [], "run/config_fingerprint": "f",
        "run/selection_metric": "target/eval_accuracy", "run/higher_is_better": True, "target/eval_accuracy": 0.5,
    }))  # fmt: skip
    swept = [*args, "target_task.lr=1e-4,3e-5", "--dry-run"]
    assert sweep_module.main([*swept, "--baseline", "target_task.lr=-"]) == 0
    assert sweep_module.main([*swept, "--baseline", "target_task.lr=0.0001"]) == 0  # as 1e-4
    assert sweep_module.main([*swept, "--baseline", "target_task.lr=2e-5"]) == 2
    assert (
        "error: --baseline target_task.lr=2e-5: no job has it (the grid's and the folder's: -, 0.0001, 3e-05)"
        in capsys.readouterr().err
    )
    assert len(plans_once) == 2  # the grid, and the grid with its learning rates


def test_an_option_of_ones_own_that_a_shipped_one_shadows_is_named(tmp_path: Path) -> None:
    # Hydra reads the first folder on its search path that holds `target_task/nsmc.yaml`: one's
    # own copy pointing at local files was never read, and the run failed on the hub instead.
    shipped, mine = tmp_path / "conf", tmp_path / "mine"
    for folder, name in ((shipped, "nsmc"), (mine, "nsmc"), (mine, "own"), (mine, "warm")):
        group = "lr_schedule" if name == "warm" else "target_task"
        (folder / group).mkdir(parents=True, exist_ok=True)
        (folder / group / f"{name}.yaml").write_text(f"name: {name}\n")
    (shipped / "lr_schedule").mkdir()
    (shipped / "lr_schedule" / "warm.yaml").write_text("name: warm\n")
    sources = [{"path": "hydra.conf", "schema": "pkg", "provider": "hydra"},
               {"path": str(shipped), "schema": "file", "provider": "main"},
               {"path": str(mine), "schema": "file", "provider": "command-line"}]  # fmt: skip
    choices = {"target_task": "nsmc", "lr_schedule@injection_lr_schedule": "warm", "hydra/launcher": "basic", "experiment": None}  # fmt: skip
    hydra = OmegaConf.create({"runtime": {"choices": choices, "config_sources": sources}})
    assert shadowed_options(hydra) == [
        f"{mine}/target_task/nsmc.yaml is not read: target_task=nsmc reads {shipped}/target_task/"
        "nsmc.yaml (earlier on the search path); give yours a name of its own",
        f"{mine}/lr_schedule/warm.yaml is not read: lr_schedule=warm reads {shipped}/lr_schedule/"
        "warm.yaml (earlier on the search path); give yours a name of its own",
    ]
    hydra.runtime.choices.target_task = "own"  # only in one's own folder: read, nothing to say
    assert len(shadowed_options(hydra)) == 1
    # conf/ named again under another spelling is no folder of its own
    again = {"path": f"{shipped}/../conf", "schema": "file", "provider": "command-line"}
    hydra.runtime.config_sources = [sources[1], again]
    assert shadowed_options(hydra) == []
