"""Config mistakes through a real `python train.py` call: one `error:` line naming the key, exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import REPO, run_sweep, run_train

# Imports that take seconds and that only training needs (CPU, this VM: a bad key was reported
# after ~10 s with them, ~5 s without; transformers' package alone, tokenizers and pyarrow another
# 0.8 s of `import layerft.config`).
TRAINING_STACK = {"transformers", "tokenizers", "huggingface_hub", "pyarrow", "peft", "datasets"}
MISSING_FILES = [
    "target_task.data_files.train=/no.jsonl",
    "target_task.data_files.validation=/no.jsonl",
]


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error: ")]


def test_added_unknown_key_fails_the_run(tmp_path: Path) -> None:
    proc = run_train(["model=tiny", "tracker=none", "+target_task.lrr=1e-4"], tmp_path)
    assert proc.returncode == 2, proc.stderr
    lines = error_lines(proc.stderr)
    assert len(lines) == 1 and "target_task.lrr" in lines[0], proc.stderr
    assert not (tmp_path / "run" / "metrics.json").exists()


def test_hydra_errors_are_one_line_and_exit_2(tmp_path: Path) -> None:
    # Hydra itself prints these over several lines and exits 1.
    proc = run_train(["model=tiny", "target_task=snlii"], tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert error_lines(proc.stderr) == [proc.stderr.strip()]
    assert "target_task=snlii: no such option; did you mean 'snli'?" in proc.stderr
    # HYDRA_FULL_ERROR: Hydra's own report, as its users know it.
    proc = run_train(["model=tiny", "trainer.lerning_rate=1"], tmp_path, {"HYDRA_FULL_ERROR": "1"})
    assert proc.returncode == 1 and "Traceback" in proc.stderr, proc.stderr


@pytest.mark.parametrize(
    ("script", "args"),
    [
        ("train.py", ["model=tiny", "~seed"]),  # a KeyError's traceback from the fingerprint
        ("train.py", ["-m", "model=tiny", "tracker=none", "~reuse_stage1", "seed=1,2"]),
        ("train.py", ["--cfg", "job", "~trainer"]),  # a KeyError's traceback composing
        ("sweep.py", ["demo", "model=tiny", "~seed", "--dry-run"]),  # Hydra's `Key 'seed' not in`
        ("sweep.py", ["demo", "model=tiny", "~cache_dir=x", "--dry-run"]),  # a traceback
    ],
)
def test_deleting_a_setting_every_run_reads_is_one_line_and_exit_2(tmp_path, script, args) -> None:
    proc = run_train(args, tmp_path) if script == "train.py" else run_sweep(args, tmp_path)
    assert proc.returncode == 2, proc.stderr[-2000:]
    [deleted] = [arg for arg in args if arg.startswith("~")]
    key = deleted.lstrip("~").split("=")[0]
    value = "trainer.<key>=<value>" if key == "trainer" else f"{key}=<value>"
    assert error_lines(proc.stderr) == [proc.stderr.strip()], proc.stderr[-2000:]
    assert proc.stderr.strip() == (
        f"error: {deleted}: every run reads {key}, so it cannot be deleted; set {value} instead"
    )
    assert not list(tmp_path.glob("**/.hydra"))  # refused before Hydra wrote a thing


def test_an_options_name_set_for_a_multirun_job_is_refused_as_the_lines(tmp_path: Path) -> None:
    # A job checked the option's file first: "its file sets name: foo", which it did not.
    proc = run_train(["-m", "model=tiny", "tracker=none", "target_task.name=foo"], tmp_path)
    assert proc.returncode == 1, proc.stderr[-2000:]
    failure = json.loads((tmp_path / "sweep" / "0" / "failed.json").read_text())
    assert failure["run/error"] == (
        "LayerftError: target_task.name=foo: an option's name is its file's (messages, stage-1 "
        "keys and results name it by that); choose another with target_task=<option>"
    )


def test_an_unknown_key_beside_a_deleted_group_is_one_line(tmp_path: Path) -> None:
    # The hint's search for keys of that name walked into the deleted group's `???`: a traceback.
    proc = run_train(["model=tiny", "~tracker", "trainer.epochs=1"], tmp_path)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert proc.stderr.strip() == (
        "error: unknown config key 'trainer.epochs'; "
        "did you mean 'injection_task.epochs' or 'target_task.epochs'?"
    )


def test_an_option_missing_from_ones_own_folder_names_the_folders_looked_in(tmp_path) -> None:
    # It said only "no such option" for a folder mistyped, or given as the group's own folder.
    (tmp_path / "conf" / "target_task").mkdir(parents=True)
    for where, note in [
        (f"hydra.searchpath=[file://{tmp_path / 'cnf'}]", f" ({tmp_path / 'cnf'}: not found)"),
        (f"hydra.searchpath=[file://{tmp_path / 'conf' / 'target_task'}]", " (not found)"),
    ]:
        proc = run_train(["model=tiny", where, "target_task=mine"], tmp_path)
        assert proc.returncode == 2, proc.stderr
        [line] = error_lines(proc.stderr)
        looked = where.split("file://")[1].rstrip("]") + "/target_task" + note
        assert line.startswith("error: target_task=mine: no such option; options: ag_news, ")
        assert line.endswith(f"; looked in {REPO / 'conf' / 'target_task'}, {looked}")
    proc = run_train(["model=tiny", "target_task=mine"], tmp_path)
    assert "looked in" not in proc.stderr  # conf/ alone: as before


def test_help_says_how_to_run_and_lists_the_groups_not_the_whole_config(tmp_path: Path) -> None:
    # Hydra's stock --help printed the composed config, some 360 lines, and no word of sweep.py.
    proc = run_train(["--help"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("layerft: one layer-wise fine-tuning run")
    assert any(line.startswith("python sweep.py <grid>") for line in lines)
    assert "tuning_mode: bitfit, frozen, full, layerwise_adapter, lora, top_adapter" in lines
    assert len(lines) < 40 and "target_task:" not in lines[-1]
    # A folder of one's own: its options were listed nowhere (--help ignores hydra.searchpath).
    (tmp_path / "mine" / "target_task").mkdir(parents=True)
    (tmp_path / "mine" / "target_task" / "my_nli.yaml").write_text("name: my_nli\n")
    assert "--help --config-dir <dir>" in proc.stdout
    proc = run_train(["--help", "--config-dir", str(tmp_path / "mine")], tmp_path)
    groups = [line for line in proc.stdout.splitlines() if line.startswith("target_task: ")]
    assert groups and "my_nli" in groups[0].split(", ") and "snli" in groups[0], proc.stdout


@pytest.mark.slow
@pytest.mark.parametrize(
    "command",
    [
        ["train.py", "model=tiny", "target_task.lrr=1"],
        ["train.py", "model=tiny", "seed=-1"],  # a value its schema refuses
        ["train.py", "model=tiny", "target_task=snli", *MISSING_FILES],  # a missing data file
        ["sweep.py", "demo", "target_task.lrr=1", "--dry-run"],
    ],
)
def test_a_bad_config_is_reported_before_the_training_stack_loads(tmp_path, command) -> None:
    importtime = {"PYTHONPROFILEIMPORTTIME": "1"}  # python -X importtime: one stderr line each
    if command[0] == "train.py":
        proc = run_train(command[1:], tmp_path, importtime)
    else:
        proc = run_sweep(command[1:], tmp_path, importtime)
    assert proc.returncode == 2 and len(error_lines(proc.stderr)) == 1, proc.stderr[-2000:]
    loaded = {
        line.rsplit("|", 1)[1].strip()
        for line in proc.stderr.splitlines()
        if line.startswith("import time:")
    }
    assert "layerft.config" in loaded  # the imports are seen
    assert not loaded & TRAINING_STACK


@pytest.mark.parametrize(
    ("args", "folder"),
    [
        (["hydra.run.dir={file}/run"], "run"),
        (["-m", "seed=1", "hydra.sweep.dir={file}/sweep"], "sweep"),
    ],
)
def test_an_output_folder_hydra_cannot_create_is_one_line_and_exit_2(
    tmp_path, args, folder
) -> None:
    # Hydra creates it before layerft runs, and failed with its traceback and exit code 1.
    (file := tmp_path / "a_file").write_text("")
    proc = run_train([*(a.format(file=file) for a in args), "model=tiny", "tracker=none"], tmp_path)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert error_lines(proc.stderr) == [proc.stderr.strip()]
    assert f"{file / folder}: cannot create this output folder (Not a directory)" in proc.stderr


def test_a_finished_run_is_found_under_another_spelling_of_its_data_paths(tmp_path: Path) -> None:
    # `./data//train.jsonl` and `data/train.jsonl` open one file. A run given the first, recorded
    # by a layerft of fingerprint scheme 3 (which called them two configs), is the second's result
    # (found through the config kept beside it), not "another config" whose folder is refused.
    from omegaconf import OmegaConf

    from layerft.config import resolve_config
    from layerft.fingerprint import config_fingerprint, seedless_fingerprint

    line = json.dumps({"premise": "A man sleeps.", "hypothesis": "A man rests.", "label": 0})
    (tmp_path / "data").mkdir()
    for name in ("train", "dev"):
        (tmp_path / "data" / f"{name}.jsonl").write_text((line + "\n") * 8)
    args = ["model=tiny", "tracker=none", "injection_task=none", "target_task.epochs=1",
            "target_task=snli"]  # fmt: skip
    spelt = ["target_task.data_files.train=./data//train.jsonl",
             "target_task.data_files.validation=data/dev.jsonl/"]  # fmt: skip
    assert run_train([*args, *spelt], tmp_path).returncode == 0
    config = resolve_config(
        OmegaConf.load(tmp_path / "run" / ".hydra" / "finished" / "config.yaml")
    )
    path = tmp_path / "run" / "metrics.json"
    record = json.loads(path.read_text())
    record |= {"run/fingerprint_scheme": 3,
               "run/config_fingerprint": config_fingerprint(config, scheme=3),
               "run/seedless_fingerprint": seedless_fingerprint(config, scheme=3)}  # fmt: skip
    path.write_text(json.dumps(record))
    as_read = ["target_task.data_files.train=data/train.jsonl",
               "target_task.data_files.validation=data/dev.jsonl"]  # fmt: skip
    again = run_train([*args, *as_read], tmp_path)
    assert again.returncode == 0 and "already finished, not rerun" in again.stdout, again.stderr


def test_a_finished_run_is_reported_though_its_data_moved_and_faults_keep_their_order(
    tmp_path: Path,
) -> None:
    # train.py checks data files before the training stack loads, but a run folder holding a
    # result is the runner's: a finished run is reported as before, another config's result
    # refused as before; and an on/off switch set to 2 is still reported first (review S).
    line = json.dumps({"premise": "A man sleeps.", "hypothesis": "A man rests.", "label": 0})
    train, dev = tmp_path / "train.jsonl", tmp_path / "dev.jsonl"
    for path in (train, dev):
        path.write_text((line + "\n") * 8)
    args = ["model=tiny", "tracker=none", "injection_task=none", "target_task.epochs=1",
            "target_task=snli", f"target_task.data_files.train={train}",
            f"target_task.data_files.validation={dev}"]  # fmt: skip
    assert run_train(args, tmp_path).returncode == 0
    dev.rename(tmp_path / "moved.jsonl")
    again = run_train(args, tmp_path)
    assert again.returncode == 0 and "already finished, not rerun" in again.stdout, again.stderr
    for extra, message in (
        (["seed=7"], "holds the result of another config"),
        (
            ["trainer.keep_checkpoints=2", "hydra.run.dir=other"],
            "keep_checkpoints is true or false",
        ),
        (["hydra.run.dir=other"], f"target_task.data_files.validation: no such file {dev}"),
    ):
        proc = run_train([*args, *extra], tmp_path)
        assert proc.returncode == 2 and message in " ".join(error_lines(proc.stderr)), proc.stderr
