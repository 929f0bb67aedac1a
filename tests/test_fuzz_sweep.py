"""sweep.py's own command line and grid files, as a fuzzing pass found them mishandled: each is now
one `error:` line naming the option, key, grid or file at fault and exit 2, before a job runs."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import SHRINK, run_sweep

from layerft import sweep as sweep_module

PLAN = ("model=tiny", "tracker=none", "--dry-run")


def grid_file(folder: Path, name: str, params: str) -> str:
    """A grid `name` in `folder`/sweep/ whose `hydra.sweeper.params:` line is followed by `params`;
    the override that puts `folder` on Hydra's search path."""
    (folder / "sweep").mkdir(parents=True, exist_ok=True)
    (folder / "sweep" / f"{name}.yaml").write_text(
        f"# @package _global_\nhydra:\n  sweeper:\n    params:{params}\n"
    )
    return f"hydra.searchpath=[file://{folder}]"


def refusal(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    """The one stderr line of sweep.py refusing `argv` with exit 2."""
    assert sweep_module.main(argv) == 2
    [line] = capsys.readouterr().err.splitlines()
    return line


@pytest.mark.parametrize("params", [" [seed, 1]", " seed=1,2"])
def test_grid_params_that_are_no_mapping_are_refused_naming_the_file(
    tmp_path: Path, params: str
) -> None:
    """`params: [seed, 1]` or `params: seed=1,2` was an AttributeError traceback ('list' object
    has no attribute 'items'), exit 1."""
    grid = grid_file(tmp_path / "mine", "listed", params)
    proc = run_sweep(["listed", grid, *PLAN, "--dir", "out"], tmp_path)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert proc.stderr.strip() == (
        f"error: {tmp_path / 'mine' / 'sweep' / 'listed.yaml'}: a grid starts with "
        "'# @package _global_' and sets hydra.sweeper.params (key: comma list); see "
        "conf/sweep/demo.yaml"
    )


@pytest.mark.parametrize("name", ["a=b", "a,b"])
def test_a_grid_name_hydra_cannot_read_as_one_option_is_refused_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    """A grid file named `a=b.yaml` stopped on Hydra's "mismatched input '='", which names no
    grid; `a,b.yaml` on "Ambiguous value ... add --multirun to your command line"."""
    grid = grid_file(tmp_path / "mine", name, "\n      seed: 1,2")
    line = refusal(capsys, [name, grid, *PLAN, "--dir", str(tmp_path / "out")])
    assert line.startswith(f"error: grid '{name}': Hydra cannot read that name as one option"), line


def test_a_sweep_override_picking_another_grid_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`sweep.py demo sweep=mine` planned (and ran) grid mine's params into demo's folder,
    without demo's tasks, exit 0 and no word."""
    grid = grid_file(tmp_path / "mine", "mine", "\n      seed: 4,5")
    line = refusal(capsys, ["demo", grid, "sweep=mine", *PLAN, "--dir", str(tmp_path / "out")])
    assert line.startswith("error: sweep=mine: sweep.py's first argument names the grid"), line


@pytest.mark.parametrize("override", ["hydra.sweeper.params.seed=4,5", "hydra.sweeper.params={}"])
def test_an_override_of_the_grids_params_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], override: str
) -> None:
    """`hydra.sweeper.params.seed=4,5` swept a key of that name beside the grid's seeds (24
    combinations, half of them another's run, folders named `hydra.sweeper.params.seed=4,...`);
    `hydra.sweeper.params={}` was ignored; both exit 0."""
    key = override.split("=")[0]
    line = refusal(capsys, ["demo", override, *PLAN, "--dir", str(tmp_path / "out")])
    assert line.startswith(f"error: {key}: a grid's params are its file's"), line


def test_a_dir_inside_a_file_is_refused_by_the_dry_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--dir afile/sub --dry-run` listed the plan, exit 0; the run itself then refused it."""
    (tmp_path / "afile").write_text("")
    line = refusal(capsys, ["demo", *PLAN, "--dir", str(tmp_path / "afile" / "sub")])
    assert line == (
        f"error: --dir {tmp_path / 'afile' / 'sub'}: cannot use it as the sweep folder "
        f"({tmp_path / 'afile'} is not a folder)"
    )


def test_the_default_sweep_folder_is_not_named_as_a_dir_never_given(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without --dir, a file where multirun_outputs/demo belongs was refused as `--dir ...`."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "multirun_outputs").mkdir()
    (tmp_path / "multirun_outputs" / "demo").write_text("")
    line = refusal(capsys, ["demo", *PLAN])
    assert line == "error: the sweep folder multirun_outputs/demo: not a folder"


def test_baseline_with_no_setting_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--baseline` with no key=value (its settings forgotten, or written before it) gave the
    default baseline without a word, exit 0, in a sweep and in `sweep.py aggregate`."""
    line = refusal(capsys, ["demo", *PLAN, "--dir", str(tmp_path / "out"), "--baseline"])
    assert line.startswith("error: --baseline takes key=value settings, got none"), line
    (tmp_path / "empty").mkdir()
    line = refusal(capsys, ["aggregate", str(tmp_path / "empty"), "--baseline"])
    assert line.startswith("error: --baseline takes key=value settings, got none"), line


def test_a_heatmap_setting_of_one_value_is_refused_before_a_job_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--heatmap injection_task model` with model=tiny in every job passed the plan: every job
    trained, then the tables refused it ('heatmap needs two different varied settings') and
    sweep.py exited 2."""
    out = tmp_path / "out"
    args = ["demo", *SHRINK, "seed=1", "--dir", str(out), "--dry-run"]
    heatmap = ["--heatmap", "injection_task"]
    line = refusal(capsys, [*args, "tuning_mode=full", *heatmap, "model"])
    assert line == "error: --heatmap model: every job has model=tiny; name a setting that varies"
    line = refusal(capsys, [*args, "tuning_mode=full", *heatmap, "tuning_mode"])
    assert line.startswith("error: --heatmap tuning_mode: every job has tuning_mode=full"), line
    # one the grid varies passes
    assert sweep_module.main([*args, "tuning_mode=full,lora", *heatmap, "tuning_mode"]) == 0
    assert not out.exists()


@pytest.mark.parametrize("name", ["demo.yaml", "../sweep/mine"])
def test_a_grid_named_by_its_file_or_a_path_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    """`sweep.py demo.yaml` ran demo into multirun_outputs/demo.yaml/, where a resume of `demo`
    never looks; `sweep.py ../sweep/mine` ran a grid of the search path into ./sweep/mine, outside
    multirun_outputs/; both exit 0."""
    grid = grid_file(tmp_path / "mine", "mine", "\n      seed: 4,5")
    line = refusal(capsys, [name, grid, *PLAN])
    assert line.startswith(f"error: grid '{name}': name it as sweep.py lists it"), line


def test_an_empty_folder_path_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--dir ''` was the current folder (a sweep wrote its job folders and tables there), and
    `sweep.py aggregate ''` tabled every record under it and wrote its tables there; exit 0."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as stopped:  # argparse's refusal of the option's value
        sweep_module.main(["demo", *PLAN, "--dir", ""])
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert "error: argument --dir: an empty path" in err, err
    line = refusal(capsys, ["aggregate", ""])
    assert line == "error: aggregate '': an empty path; name the sweep folder ('.' for this one)"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            ["--baseline", "injection_task=none", "injection_task=demo_pos"],
            "--baseline injection_task: given twice (none, demo_pos); give one",
        ),
        (["--baseline", "=none"], "--baseline takes key=value settings, got '=none'"),
        (["--best-of", "tuning_mode", "tuning_mode"], "--best-of tuning_mode: named twice"),
    ],
)
def test_a_table_option_naming_a_key_twice_or_none_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], options: list[str], message: str
) -> None:
    """A key given twice to --baseline kept the last value without a word (exit 0); `=none` was
    refused as 'baseline setting  is in no job' only by the tables, a key named twice to
    --best-of was taken once; in a sweep's plan and in `sweep.py aggregate` alike."""
    line = refusal(capsys, ["demo", *PLAN, "--dir", str(tmp_path / "out"), *options])
    assert line.startswith(f"error: {message}"), line
    (tmp_path / "empty").mkdir()
    line = refusal(capsys, ["aggregate", str(tmp_path / "empty"), *options])
    assert line.startswith(f"error: {message}"), line


@pytest.mark.parametrize("name", ["1", "true", "ünï"])
def test_a_grid_name_hydra_reads_as_no_option_name_says_how_to_rename_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    """`1` and `true` were refused as 'sweep=1: a config group takes an option's name; ~sweep
    chooses none', an override the command never gave; `ünï` was told to rename its file without
    '=', ',', brackets, quotes or '$', none of which it holds."""
    grid = grid_file(tmp_path / "mine", name, "\n      seed: 1,2")
    line = refusal(capsys, [name, grid, *PLAN, "--dir", str(tmp_path / "out")])
    assert line == (
        f"error: grid '{name}': Hydra cannot read that name as one option (sweep={name}); rename "
        "its file with ASCII letters, digits, '-', '_' and '.' (not a number, true or null)"
    )


def test_a_baseline_value_given_twice_in_two_spellings_is_one_value(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--baseline target_task.lr=0.0001 target_task.lr=1e-4` was refused as given twice,
    though every table reads both spellings as one value."""
    swept = ["target_task.lr=1e-4,2e-4", "seed=1"]
    options = ["--baseline", "target_task.lr=0.0001", "target_task.lr=1e-4"]
    assert sweep_module.main(["demo", *PLAN, *swept, "--dir", str(tmp_path / "out"), *options]) == 0
    assert "error" not in capsys.readouterr().err
