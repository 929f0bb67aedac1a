"""Lines a mutation audit found unguarded in the trainer settings, task-name checks, record errors,
unread and later keys, config differences and config-error hints (each test names the mutation it
kills)."""

from __future__ import annotations

import copy
import dataclasses
import io
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from compose import compose_run
from omegaconf import OmegaConf
from test_audit_fingerprint import resolved

from layerft.config_differences import config_differences
from layerft.config_hints import (
    choice_hint,
    groups_of,
    keys_named,
    searched_folders,
    unquoted_letters_hint,
)
from layerft.errors import LayerftError
from layerft.later_keys import without_later_keys
from layerft.record_errors import placed, spaced
from layerft.trainer_config import TrainerConfig
from layerft.unread_keys import other_kinds_setting, unread_prefix, unread_settings

# --- trainer_config -------------------------------------------------------------------------------


@pytest.mark.parametrize(("cuda", "setting", "multiple"), [(True, None, 8), (False, None, None),
                                                           (False, 64, 64), (True, 1, 1)])  # fmt: skip
def test_the_padding_multiple_is_8_on_a_gpu_and_none_on_a_cpu(
    monkeypatch: pytest.MonkeyPatch, cuda: bool, setting: int | None, multiple: int | None
) -> None:
    # Kills `return 8 if cuda else None` -> `16 if cuda ...` and -> `return 8` (a CPU padding
    # every batch to a multiple of 8: tokens that cost arithmetic and tune no kernel).
    monkeypatch.setattr("torch.cuda.is_available", lambda: cuda)
    assert TrainerConfig(pad_to_multiple_of=setting).resolved_pad_multiple() == multiple


def test_more_processes_than_cpus_get_no_workers_not_a_negative_count(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Kills `max(0, ...)` dropped: 1 CPU // (2 torchrun processes) - 1 = -1, which the data
    # loader refuses ("num_workers option should be non-negative") after the model has loaded.
    monkeypatch.setattr("torch.cuda.is_available", lambda: True)
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: {0}, raising=False)
    monkeypatch.delenv("LAYERFT_JOBS_PER_NODE", raising=False)
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    assert TrainerConfig().resolved_dataloader_workers() == 0


@pytest.mark.parametrize(("setting", "terminal", "bar"), [(None, True, True), (None, False, False),
                                                          (False, True, False), (True, False, True)])  # fmt: skip
def test_the_progress_bar_follows_the_terminal_unless_set(
    monkeypatch: pytest.MonkeyPatch, setting: bool | None, terminal: bool, bar: bool
) -> None:
    # Kills `return sys.stderr.isatty()` -> `return False` (no bar on a terminal) and
    # `if self.progress_bar is not None` -> `if self.progress_bar` (progress_bar=false drew one).
    stderr = io.StringIO()
    stderr.isatty = lambda: terminal  # type: ignore[method-assign]
    monkeypatch.setattr("sys.stderr", stderr)
    assert TrainerConfig(progress_bar=setting).resolved_progress_bar() is bar


# --- task_names -----------------------------------------------------------------------------------


@pytest.mark.parametrize("odd", ["E-PER", "OTHER"])
def test_an_entity_metric_refuses_a_tag_that_is_no_iob2_tag(odd: str) -> None:
    # Kills `O|[BI]-.+` -> `O|[BIE]-.+` (IOBES's E- tags, which conlleval reads as no chunk
    # boundary) and `fullmatch` -> `match` ('OTHER' passed as an 'O' followed by text).
    with pytest.raises(LayerftError) as info:
        compose_run(
            "model=tiny", "injection_task=conll_ner", f"injection_task.label_names=[O,B-PER,{odd}]"
        )
    assert str(info.value) == (
        "injection_task.metrics: 'conlleval' scores entities of IOB2 tags (O, B-<type>, "
        f"I-<type>); label_names has '{odd}' (injection_task=conll_ner)"
    )


# --- record_errors --------------------------------------------------------------------------------


def _task(source: str, **fields: Any) -> SimpleNamespace:
    """The fields of a TaskConfig `placed` reads."""
    base = {"name": "snli", "release_format": "records", "release_rename": {}, "release_files": {}}
    return SimpleNamespace(source=source, **(base | fields))


def test_a_missing_column_the_file_spells_with_spaces_says_so() -> None:
    # Kills spaced's hint dropped: the column list shows ' hypothesis', as if it were there.
    err = LayerftError("f.csv: record 1: no column 'hypothesis' (has premise,  hypothesis)")
    record = {"premise": "a", " hypothesis": "b"}
    assert str(spaced(err, record)) == (
        "f.csv: record 1: no column 'hypothesis' (has premise,  hypothesis); the file names it "
        "' hypothesis', with spaces around it"
    )
    assert spaced(err, {"premise": "a"}) is err


def test_a_hub_records_error_gets_no_release_rename_hint() -> None:
    # Kills `if read_as is not None else ()` dropped: the hub's rows come in the task's own
    # layout (release_rename applies to local files only), so the hint named a rename not applied.
    err = LayerftError("snli: record 3: no column 'label' (has premise, hypothesis)")
    task = _task("hub", release_rename={"gold_label": "label"})
    assert str(placed(err, task, "target_task", "snli", 3)) == str(err)


def test_the_rename_hint_needs_a_missing_column_not_a_mention(tmp_path: Path) -> None:
    # Kills `f"no column '{renamed}'" in message` -> `renamed in message`: a bad label value
    # named the rename of a column the record has, as if the column were missing.
    path = tmp_path / "train.jsonl"
    path.write_text(json.dumps({"premise": "a", "hypothesis": "b", "gold_label": 7}) + "\n")
    err = LayerftError(f"{path}: record 1: label 7 is not in target_task.label_names")
    task = _task("data_files", release_rename={"gold_label": "label"})
    assert str(placed(err, task, "target_task", str(path), 1)) == (
        f"{path}:1: record 1: label 7 is not in target_task.label_names"
    )


# --- unread_keys ----------------------------------------------------------------------------------


def test_a_node_key_covers_its_keys_and_the_node_itself_only() -> None:
    # Kills `key.startswith(u)` -> `key.startswith(u[:-1])` (a sibling whose name extends the
    # node's), `"." in key` dropped (the group choice `injection_task=demo_pos` read as unread)
    # and `or key == u[:-1] and ...` dropped (`tuning_mode.lora={rank:4}` not warned about).
    assert unread_prefix("tuning_mode.lora.rank", ["tuning_mode.lora."])
    assert unread_prefix("tuning_mode.lora", ["tuning_mode.lora."])
    assert not unread_prefix("tuning_mode.loras", ["tuning_mode.lora."])
    assert not unread_prefix("injection_task", ["injection_task."])
    assert unread_prefix("model.pretrained_pooler", ["model.pretrained_pooler"])
    assert not unread_prefix("model.pretrained_pooler.x", ["model.pretrained_pooler"])


def test_other_kinds_settings_are_the_task_nodes_of_either_stage_only() -> None:
    # Kills `key in kind_settings_keys()` -> any node key, and TASK_GROUPS[1:] (stage 1's).
    assert other_kinds_setting("injection_task.spans.")
    assert other_kinds_setting("target_task.parsing.")
    assert not other_kinds_setting("tuning_mode.lora.")
    assert not other_kinds_setting("target_task.spans.n_best")


def _config(injection: str | None, target: str, method: str = "full") -> dict[str, Any]:
    """A resolved config's nodes unread_settings reads: tuning by `method` (its option named so
    too), policy train, uniform schedules, the tasks of these kinds."""
    schedule = {"name": "linear", "scaling": "uniform", "multipliers": {"head": 1.0}}
    task = {"name": "t", "kind": target}
    return {
        "tuning_mode": {"name": method, "method": method},
        "layer_split": {"stage2": {"policy": "train"}},
        "injection_task": None if injection is None else {"name": "i", "kind": injection},
        "target_task": task,
        "lr_schedule": schedule,
        "injection_lr_schedule": schedule,
    }


def test_the_pooler_is_unread_only_where_no_stages_head_reads_it() -> None:
    # Kills `reads_pooler(kinds)` -> `reads_pooler(kinds[:1])` (a tagging stage 1 before a
    # sentence classifier: its pooler called unread) and `' and '.join(kinds)` -> `kinds[0]`.
    pooler = "model.pretrained_pooler"
    read = dict(unread_settings(_config("token_tagging", "sequence_classification")))
    assert pooler not in read
    read = dict(unread_settings(_config("token_tagging", "span_extraction")))
    assert read[pooler] == "token_tagging and span_extraction heads read no pooler"


def test_a_schedule_node_key_ends_in_a_dot_and_stage1_nodes_are_all_named() -> None:
    # Kills `node = "." if Mapping else ""` -> `""` (multipliers={head: 2} not under the unread
    # key) and STAGE1_NODES without "injection_lr_schedule." (its settings warned as read).
    read = dict(unread_settings(_config(None, "sequence_classification")))
    assert read["lr_schedule.multipliers."] == "lr_schedule=linear scales by uniform"
    assert read["lr_schedule.layer_decay"] == "lr_schedule=linear scales by uniform"
    assert read["injection_lr_schedule."] == "injection_task=none: no stage 1"
    assert unread_prefix("lr_schedule.multipliers.head", read)


def test_lora_settings_are_unread_under_every_method_but_lora() -> None:
    # Kills `method != TuningMethod.lora` -> `==`: tuning_mode.lora.rank=4 under full tuning was
    # no warning and changed the result key, and under lora it was called unread.
    read = dict(unread_settings(_config("token_tagging", "sequence_classification")))
    assert read["tuning_mode.lora."] == "tuning_mode=full adds no LoRA"
    lora = dict(unread_settings(_config("token_tagging", "sequence_classification", "lora")))
    assert "tuning_mode.lora." not in lora
    assert lora["tuning_mode.adapter."] == "tuning_mode=lora adds no adapter"


# --- later_keys -----------------------------------------------------------------------------------


def test_a_later_key_at_its_old_value_goes_with_the_node_it_leaves_empty() -> None:
    # Kills `if child == {}` -> never (a kind's settings node, emptied, kept a key), the
    # `task.` spelling dropped from _spellings, and `path[len(at) + 1:]` -> `path[len(at):]`.
    root = {"injection_task": None, "target_task": {"tagging": {"words_column": None}, "lr": 1}}
    assert without_later_keys(root, "") == {"injection_task": None, "target_task": {"lr": 1}}
    task = {"tagging": {"words_column": None, "silver": None}}
    assert without_later_keys(task, "task") == {"tagging": {"silver": None}}
    assert without_later_keys({"tagging": {"words_column": "tokens"}}, "target_task") == {
        "tagging": {"words_column": "tokens"}
    }


# --- config_differences ---------------------------------------------------------------------------


def test_four_differences_are_shown_in_order_and_none_said_to_be_more() -> None:
    # Kills limit 4 -> 3, `len(keys) > limit` -> `>=` ("; and 0 more"), sorted() dropped, and
    # `_spelled` without its bool case (`False -> True`, not as the command line writes it).
    stored = resolved()
    now = resolved("seed=7", "target_task.lr=1e-4", "target_task.epochs=2", "trainer.compile=true")
    assert config_differences(stored, now) == (
        "seed: 42 -> 7; target_task.epochs: 3.0 -> 2.0; target_task.lr: 5e-05 -> 0.0001; "
        "trainer.compile: false -> true"
    )


def test_a_stage_switched_off_is_one_entry() -> None:
    # Kills `(old is None) != (new is None)` -> only old None: stage 1 dropped listed every key
    # of its task and stage-1 groups as `-> absent`.
    assert config_differences(resolved(), resolved("injection_task=none")) == (
        "injection_task: demo_pos -> none"
    )


def test_an_enum_differs_by_its_yaml_name_and_an_empty_node_is_a_value() -> None:
    # Kills `value.name` -> `value.value`: a kept config reads back `reduce_overhead` (OmegaConf
    # saves an enum by name), so its own config differed from itself; and `and value` dropped
    # in _dotted (an empty release_rename left no key, so adding one read as absent -> value).
    now = resolved("trainer.compile_mode=reduce_overhead")
    kept = copy.deepcopy(resolved("trainer.compile_mode=reduce_overhead"))  # cached: a copy
    kept["trainer"]["compile_mode"] = "reduce_overhead"
    assert config_differences(kept, now) == ""
    renamed = resolved("+target_task.release_rename.gold=label")
    assert config_differences(resolved(), renamed) == (
        "target_task.release_rename: {} -> absent; target_task.release_rename.gold: absent -> label"
    )


# --- config_hints ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("override", "written"),
    [("target_task.label_column=감정", "target_task.label_column='감정'"),
     ("target_task.label_names=[부정, 긍정]", "target_task.label_names=['부정','긍정']")],
)  # fmt: skip
def test_letters_outside_ascii_are_quoted_in_the_override_as_written(
    override: str, written: str
) -> None:
    # Kills the key dropped from the hint and `item.strip()` -> `item` (`' 긍정'`, a label with a
    # space the data never has).
    assert unquoted_letters_hint(override) == (
        f'Hydra\'s override grammar reads letters outside ASCII only quoted: write it "{written}"'
    )


@pytest.mark.parametrize(
    "override", ["k=[[가]]", "k=[[가]", "k=가[1", "k='가'", 'k="가"', "k={a: 가}"]
)
def test_no_quoting_hint_where_quotes_would_not_help(override: str) -> None:
    # Kills `count("[") > 1` -> `> 2` (`[[가]` quoted as `['[가']`), the lone-bracket branch
    # dropped and the quote marks dropped from the marks that leave Hydra's own message.
    assert unquoted_letters_hint(override) is None


def test_the_folders_a_search_path_looked_in_are_named_with_what_is_missing(tmp_path) -> None:
    # Kills all(main) -> any(main), "(not found)" of a folder without the group dropped and
    # the missing search folder named as "(not found)" alone.
    (tmp_path / "with" / "tuning_mode").mkdir(parents=True)
    (tmp_path / "without").mkdir()
    lines = [f"\tprovider=main, path=file://{tmp_path}/conf"] + [
        f"\tprovider=command-line, path=file://{tmp_path}/{name}"
        for name in ("with", "without", "gone")
    ]
    assert searched_folders("Could not find\n" + "\n".join(lines), "tuning_mode") == (
        f"; looked in {tmp_path}/conf/tuning_mode ({tmp_path}/conf: not found), "
        f"{tmp_path}/with/tuning_mode, {tmp_path}/without/tuning_mode (not found), "
        f"{tmp_path}/gone/tuning_mode ({tmp_path}/gone: not found)"
    )
    assert searched_folders(lines[0], "tuning_mode") == ""


@dataclasses.dataclass
class _Inner:
    lr: float = 1.0


@dataclasses.dataclass
class _Root:
    hydra: _Inner = dataclasses.field(default_factory=_Inner)
    unset: _Inner | None = None
    a: _Inner = dataclasses.field(default_factory=_Inner)
    lr_max: float = 2.0
    b: _Inner = dataclasses.field(default_factory=_Inner)
    c: _Inner = dataclasses.field(default_factory=_Inner)
    d: _Inner = dataclasses.field(default_factory=_Inner)


def test_keys_named_are_the_first_three_of_that_exact_name_outside_hydra() -> None:
    # Kills found[:3] -> [:2], `key != "hydra"` dropped, `not value._is_none()` dropped (a null
    # node walked: an error inside the error message) and `==` -> `startswith` (lr_max).
    cfg = OmegaConf.structured(_Root)
    assert keys_named(cfg.a, "lr") == ["a.lr", "b.lr", "c.lr"]
    assert keys_named(cfg, "lr_max") == ["lr_max"]
    assert keys_named(None, "lr") == []


def test_the_groups_of_a_schema_include_an_optional_one() -> None:
    # Kills `split(" |")[0]` dropped (injection_task's `TaskConfig | None` left out) and
    # `or [schema]` dropped (a schema no group has named as nothing).
    assert groups_of("TaskConfig") == ["injection_task", "target_task"]
    assert groups_of("SpanConfig") == ["SpanConfig"]


def test_a_close_choice_is_offered_and_a_far_one_is_not() -> None:
    # Kills a stricter cutoff in get_close_matches: 'fp61' (3 of its 4 letters in place) is
    # the misspelling of fp16 this hint exists for.
    reason = "Invalid value 'fp61', expected one of [fp32, bf16, fp16]"
    assert choice_hint(reason) == "; did you mean 'fp16'?"
    assert choice_hint("Invalid value 'xyz', expected one of [fp32, bf16, fp16]") == ""
    assert choice_hint("Value 'x' is not a bool") == ""
