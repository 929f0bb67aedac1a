"""sweep.py and Hydra's own settings: overrides of where and how job folders are named refused,
glob() sweeps, `${hydra:...}` values planned as the job resolves them, and grids found through
Hydra's config repository (a `pkg://` search path too)."""

from __future__ import annotations

from pathlib import Path

import pytest

from layerft import sweep as sweep_module
from layerft import sweep_grid

PLAN = ("model=tiny", "tracker=none", "--dry-run")


def own_grid(folder: Path, text: str = "") -> str:
    """A grid `mygrid` (seeds 1 and 2, `text` added under `hydra:`) in `folder`/sweep/, and the
    override that puts `folder` on Hydra's search path."""
    (folder / "sweep").mkdir(parents=True, exist_ok=True)
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
    # A multirun never uses hydra.run.dir; chdir=false is the default.
    grid = own_grid(tmp_path / "mine")
    for override in ("hydra.run.dir=elsewhere", "hydra.job.chdir=false"):
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
        f"error: no grid 'nogrid' in {sweep_grid.CONF / 'sweep'}, pkg://mypkg.conf/sweep; grids: "
        "adapter_study, demo, klue_paper, pgrid"
    )
