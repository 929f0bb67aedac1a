"""Lines a mutation audit of what keys a result and what a sweep checks before its first job found
unguarded: the plan's check of every data file (the file a relative path opens, its size and its
time, the task settings and the stage it was checked for, the target first, each split and stage
it reads past a hub target, a missing file and a silver tagger's texts left to the run, the hub's
mode and stage, the logs it keeps quiet), the fingerprint's schemes (each rule from its scheme on,
the seedless value, `~` kept as given, the settings named unhashed), and the data each stage reads
(its stage's name, the trainer's padding multiple, the tokenized folder of the user's cache_dir,
the tokenizer read from there). Each test names the mutation it kills."""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import os
from pathlib import Path
from typing import Any

import datasets
import pytest
from compose import compose_config, compose_run

from layerft import data_check
from layerft.config import RunConfig, resolve_config
from layerft.data_check import record_error
from layerft.errors import LayerftError
from layerft.fingerprint import FINGERPRINT_SCHEME, config_fingerprint, seedless_fingerprint
from layerft.stage_data import load_stage_data

GOOD = "".join(
    json.dumps({"text": f"t{i}", "label": ("negative", "positive")[i % 2]}) + "\n" for i in range(4)
)
# As long as GOOD, a label not in label_names on its first line (record 1).
BAD = GOOD.replace('"negative"', '"negativx"', 1)
NOT_A_LABEL = "record 1: label 'negativx' is not in {}.label_names"


@pytest.fixture(autouse=True)
def fresh_checks(monkeypatch) -> None:
    """Each test starts with no file checked (the plan's cache lives as long as the process)."""
    monkeypatch.setattr(data_check, "_CHECKED", {})


def sentiment(train: Path | str, dev: Path | str, *more: str) -> RunConfig:
    """A run of demo_sentiment on these files (no stage 1)."""
    return compose_run(
        "model=tiny", "injection_task=none", "target_task=demo_sentiment",
        f"target_task.data_files.train={train}", f"target_task.data_files.validation={dev}", *more,
    )  # fmt: skip


def files(folder: Path, train: str, dev: str = GOOD) -> tuple[Path, Path]:
    folder.mkdir(exist_ok=True)
    (folder / "train.jsonl").write_text(train)
    (folder / "dev.jsonl").write_text(dev)
    return folder / "train.jsonl", folder / "dev.jsonl"


def set_mtime(path: Path, mtime_ns: int) -> None:
    os.utime(path, ns=(mtime_ns, mtime_ns))


# --- data_check: which file, as it is now ---------------------------------------------------------


def test_a_file_edited_to_another_size_within_its_time_is_checked_again(tmp_path: Path) -> None:
    """Kills the key without `stat.st_size`: a file rewritten within the clock's resolution (or
    its time put back, as `cp -p` and rsync do) kept the earlier file's verdict."""
    train, dev = files(tmp_path, GOOD)
    set_mtime(train, 1_000_000_000_000_000_000)
    run = sentiment(train, dev)
    assert record_error(run) is None
    train.write_text(BAD + '{"text": "more", "label": "positive"}\n')
    set_mtime(train, 1_000_000_000_000_000_000)
    error = record_error(run)
    assert error is not None and NOT_A_LABEL.format("target_task") in error, error


def test_a_file_edited_to_the_same_size_is_checked_again(tmp_path: Path) -> None:
    """Kills the key without `stat.st_mtime_ns`: one label fixed or broken in place (the same
    number of bytes) kept the earlier file's verdict."""
    train, dev = files(tmp_path, GOOD)
    set_mtime(train, 1_000_000_000_000_000_000)
    run = sentiment(train, dev)
    assert record_error(run) is None
    train.write_text(BAD)
    set_mtime(train, 1_000_000_001_000_000_000)
    error = record_error(run)
    assert error is not None and NOT_A_LABEL.format("target_task") in error, error
    train.write_text(GOOD)
    set_mtime(train, 1_000_000_002_000_000_000)
    assert record_error(run) is None


def test_a_relative_path_is_the_file_in_the_folder_the_plan_runs_in(tmp_path, monkeypatch) -> None:
    """Kills `str(path.resolve())` -> `str(path)`: `data/train.jsonl` planned from another folder
    (a notebook's chdir) is another file, even of the same size and time."""
    for name, train in (("good", GOOD), ("bad", BAD)):
        for path in files(tmp_path / name, train):
            set_mtime(path, 1_000_000_000_000_000_000)
    run = sentiment("train.jsonl", "dev.jsonl")
    monkeypatch.chdir(tmp_path / "good")
    assert record_error(run) is None
    monkeypatch.chdir(tmp_path / "bad")
    error = record_error(run)
    assert error is not None and error.startswith("train.jsonl:1: record 1: ")
    assert NOT_A_LABEL.format("target_task") in error


def test_a_file_is_checked_again_for_other_task_settings(tmp_path: Path) -> None:
    """Kills the key without the task's settings (and `label_names` in RECIPE): the same file
    under other label_names (a grid crossing them) kept the verdict of the first."""
    train, dev = files(tmp_path, BAD)
    assert record_error(sentiment(train, dev)) is not None
    widened = sentiment(train, dev, "target_task.label_names=[negative,positive,negativx]")
    assert record_error(widened) is None


def test_a_file_both_stages_read_is_named_for_the_stage_that_reads_it(tmp_path: Path) -> None:
    """Kills the key without its group: the file checked for the target task, then read by
    another run's stage 1, was reported as `target_task.label_names`."""
    run = sentiment(*files(tmp_path / "bad", BAD))
    assert NOT_A_LABEL.format("target_task") in str(record_error(run))
    bad = run.target_task
    good = sentiment(*files(tmp_path / "good", GOOD))
    error = record_error(dataclasses.replace(good, injection_task=bad))
    assert error is not None and NOT_A_LABEL.format("injection_task") in error, error


def test_the_target_tasks_files_are_checked_first(tmp_path: Path) -> None:
    """Kills the injection task checked first: the docstring's order, which names the target's
    bad file where both stages' are bad."""
    run = sentiment(*files(tmp_path, BAD))
    error = record_error(dataclasses.replace(run, injection_task=run.target_task))
    assert error is not None and NOT_A_LABEL.format("target_task") in error, error


def test_a_hub_target_leaves_the_injection_tasks_files_checked(tmp_path, monkeypatch) -> None:
    """Kills `continue` -> `return None` after a hub task: a target read from the hub (as snli is
    by default) let a bad stage-1 file through to every job."""
    monkeypatch.setattr(data_check, "_hub_error", lambda task, group: None)
    hub = compose_run("model=tiny", "injection_task=none", "target_task=snli")
    assert hub.target_task.source == "hub"
    bad = sentiment(*files(tmp_path, BAD)).target_task
    error = record_error(dataclasses.replace(hub, injection_task=bad))
    assert error is not None and NOT_A_LABEL.format("injection_task") in error, error


def test_an_extra_eval_split_is_checked(tmp_path: Path) -> None:
    """Kills `(*SPLITS, *task.extra_eval_splits)` -> `SPLITS`: a bad extra dev set failed every
    job after training, at its evaluation."""
    train, dev = files(tmp_path, GOOD)
    (tmp_path / "test.jsonl").write_text(BAD)
    extra = ("target_task.extra_eval_splits=[test]", f"+target_task.data_files.test={tmp_path / 'test.jsonl'}")  # fmt: skip
    error = record_error(sentiment(train, dev, *extra))
    assert error is not None and error.startswith(f"{tmp_path / 'test.jsonl'}:1: record 1: "), error


def test_a_missing_file_is_left_to_the_check_that_names_it(tmp_path: Path) -> None:
    """Kills `path is None or not path.is_file()` -> `path is None`: a missing file (a plan's
    record check met before check_data_files) raised FileNotFoundError out of the plan."""
    train, _ = files(tmp_path, GOOD)
    assert record_error(sentiment(train, tmp_path / "missing.jsonl")) is None


def test_the_check_says_no_warning_the_run_says_itself(tmp_path, caplog) -> None:
    """Kills `logging.disable(logging.WARNING)` -> `INFO`: the plan repeated, per file, the
    warnings each job's run gives when it reads it (here: text not in Unicode NFC)."""
    decomposed = json.dumps({"text": "\u1100\u1161", "label": "negative"}) + "\n"
    train, dev = files(tmp_path, decomposed + GOOD)
    with caplog.at_level(logging.INFO):
        assert record_error(sentiment(train, dev)) is None
    assert caplog.records == []


def test_a_silver_taggers_texts_are_left_to_its_run(tmp_path, monkeypatch) -> None:
    """Kills the silver tagger's skip dropped: the plan would tag every text of a Kiwi corpus,
    each job's own work, before the first job starts."""
    from layerft import records

    def unread(*args: object) -> None:
        raise AssertionError("read at plan time")

    monkeypatch.setattr(records, "read_split", unread)
    train, dev = files(tmp_path, '{"premise": "사과"}\n', '{"premise": "배"}\n')
    run = compose_run(
        "model=tiny", "injection_task=korean_morph", f"injection_task.data_files.train={train}",
        f"injection_task.data_files.validation={dev}",
    )  # fmt: skip
    assert run.target_task.source == "generator" and record_error(run) is None


# --- data_check: the hub ---------------------------------------------------------------------------


@pytest.fixture
def hub_check(tmp_path, monkeypatch) -> dict[str, object]:
    """The hub check with an empty cache folder, and hub_data_error answering by `state`."""
    from layerft import records

    cache = tmp_path / "datasets"
    cache.mkdir()
    set_mtime(cache, 1_000_000_000_000_000_000)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", cache)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    state: dict[str, object] = {"cache": cache, "error": True, "calls": 0}

    def hub_data_error(task, group: str) -> LayerftError | None:
        state["calls"] = int(state["calls"]) + 1  # type: ignore[call-overload]
        logging.getLogger("datasets").warning("Using the latest cached version")
        return LayerftError(f"{group} '{task.name}': unreachable") if state["error"] else None

    monkeypatch.setattr(records, "hub_data_error", hub_data_error)
    return state


def snli() -> RunConfig:
    return compose_run("model=tiny", "injection_task=none", "target_task=snli")


def test_a_hub_dataset_is_checked_again_online(hub_check, monkeypatch) -> None:
    """Kills the hub key without `offline`: HF_HUB_OFFLINE lifted kept the offline refusal."""
    assert record_error(snli()) == "target_task 'snli': unreachable"
    hub_check["error"] = False
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", False)
    assert record_error(snli()) is None
    assert record_error(snli()) is None and hub_check["calls"] == 2  # once per state


def test_a_hub_dataset_is_named_for_the_stage_that_reads_it(hub_check, tmp_path) -> None:
    """Kills the hub key without its group: the dataset refused for one run's target was named
    `target_task` for another run's stage 1."""
    assert record_error(snli()) == "target_task 'snli': unreachable"
    good = sentiment(*files(tmp_path, GOOD))
    run = dataclasses.replace(good, injection_task=snli().target_task)
    assert record_error(run) == "injection_task 'snli': unreachable"


def test_a_hub_dataset_is_checked_again_for_other_release_files(tmp_path, monkeypatch) -> None:
    """The hub key without release_files: the refusal of a run's offline hub dataset, whose hint
    names the files a data_dir holds, was given again to a run expecting other files."""
    (tmp_path / "datasets").mkdir()
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "datasets")
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets, "load_dataset_builder", lambda *args: {}["not cached"])
    sst2 = ("model=tiny", "injection_task=none", "target_task=glue_sst2")
    own = compose_run(*sst2, "target_task.release_files.train=own_train.tsv")
    assert "<folder with train.tsv, dev.tsv" in str(record_error(compose_run(*sst2)))
    assert "<folder with own_train.tsv, dev.tsv" in str(record_error(own))


def test_the_hub_check_says_no_warning_the_run_says_itself(hub_check, caplog) -> None:
    """Kills `_errors_only()` dropped around hub_data_error: "Using the latest cached version",
    once per dataset, the run's to say."""
    hub_check["error"] = False
    with caplog.at_level(logging.INFO):
        assert record_error(snli()) is None
    assert caplog.records == []


# --- fingerprint: what keys a result ----------------------------------------------------------------


@functools.cache  # composing costs; callers only read the result
def resolved(*overrides: str) -> dict[str, Any]:
    """The resolved config train.py would hash for these overrides (on the tiny model)."""
    return resolve_config(compose_config("model=tiny", *overrides))


# Each scheme's rule, with the scheme it came in: from it on, `plain` and `other` key one result;
# before it, two (their records found by the fingerprint their own scheme gave them).
SCHEME_RULES = [
    (2, ["injection_task=none"], ["injection_task=none", "layer_split=lower_half"]),
    (3, ["tuning_mode=full"], ["tuning_mode=full", "tuning_mode.lora.rank=4"]),
    (4, ["target_task=snli", "target_task.data_files.train=data/a.jsonl"],
     ["target_task=snli", "target_task.data_files.train=./data//a.jsonl"]),
    (5, [], ["target_task.spans.doc_stride=64"]),
]  # fmt: skip


@pytest.mark.parametrize(("since", "plain", "other"), SCHEME_RULES)
def test_each_schemes_rule_holds_from_its_scheme_on(since: int, plain, other) -> None:
    """Kills each `scheme >= n` shifted (`> 2`, `> 3`, `>= 4` for the kinds' settings, `>= 5`
    for the data paths): a record an earlier scheme wrote would be looked for under a fingerprint
    that scheme never gave it, and redone."""
    plain, other = resolved(*plain), resolved(*other)
    same = [
        config_fingerprint(other, scheme) == config_fingerprint(plain, scheme)
        for scheme in range(1, FINGERPRINT_SCHEME + 1)
    ]
    assert same == [scheme >= since for scheme in range(1, FINGERPRINT_SCHEME + 1)]
    assert [
        seedless_fingerprint(other, scheme) == seedless_fingerprint(plain, scheme)
        for scheme in range(1, FINGERPRINT_SCHEME + 1)
    ] == same


def test_the_seedless_fingerprint_of_a_real_config_keeps_its_value() -> None:
    """Kills `del kept["seed"]` -> `kept["seed"] = None`: one value for all seeds still, but
    another than the one stored in every metrics.json, which a sweep table groups seeds by."""
    plain = resolve_config(compose_config())
    assert seedless_fingerprint(plain) == "e2148df3fbf8bfbf"
    assert seedless_fingerprint(resolve_config(compose_config("seed=7"))) == "e2148df3fbf8bfbf"


# --- stage_data: what each stage reads ------------------------------------------------------------

SMALL = (
    "model=tiny", "tracker=none", "target_task.generator_sizes.train=16",
    "target_task.generator_sizes.validation=8", "injection_task.generator_sizes.train=16",
    "injection_task.generator_sizes.validation=8",
)  # fmt: skip


def test_the_injection_tasks_data_is_named_as_its_own(tmp_path: Path) -> None:
    """Kills the injection task's data loaded as "target_task": its bad record was reported
    under the target task's keys."""
    (tmp_path / "pos.jsonl").write_text(json.dumps({"tokens": ["a", "b"], "tags": ["DET", "XX"]}) + "\n")  # fmt: skip
    cfg = compose_run(
        *SMALL, f"cache_dir={tmp_path / 'cache'}",
        *(f"injection_task.data_files.{split}={tmp_path / 'pos.jsonl'}" for split in ("train", "validation")),
    )  # fmt: skip
    with pytest.raises(LayerftError) as caught:
        load_stage_data(cfg)
    assert "injection_task" in str(caught.value) and "target_task" not in str(caught.value)
    assert "'XX' is not in injection_task.label_names" in str(caught.value)


def test_both_stages_are_padded_to_the_trainers_multiple(tmp_path: Path) -> None:
    """Kills `cfg.trainer.resolved_pad_multiple()` -> None: trainer.pad_to_multiple_of=64 (8 on
    a GPU by default) would pad each batch to its longest example only."""
    cfg = compose_run(*SMALL, f"cache_dir={tmp_path}", "trainer.pad_to_multiple_of=64")
    data = load_stage_data(cfg)
    assert data.injection is not None
    for stage in (data.target, data.injection):
        batch = stage.collator([stage.train[i] for i in range(2)])
        assert batch["input_ids"].shape[1] == 64


def test_tokenized_data_is_cached_in_its_folder_of_the_users_cache_dir(
    tmp_path: Path, monkeypatch
) -> None:
    """Kills `.expanduser()` dropped (a folder named `~` in the folder the run started in) and
    `cache_dir / "tokenized"` -> `cache_dir` (the tokenized sets among the stored stage 1s)."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    load_stage_data(compose_run(*SMALL, "cache_dir='~/cache'"))
    assert not (tmp_path / "~").exists()
    assert [path.name for path in (tmp_path / "home" / "cache").iterdir()] == ["tokenized"]
    assert any((tmp_path / "home" / "cache" / "tokenized").iterdir())


def test_the_tokenizer_is_read_from_the_runs_cache_dir(tmp_path: Path, monkeypatch) -> None:
    """Kills `load_tokenizer(cfg.model, cache_dir)` -> `load_tokenizer(cfg.model)`: a model
    converted on first use lives under cache_dir, and without it its tokenizer is refused ("it
    needs a cache_dir") after its config was read from there."""
    from layerft import stage_data

    seen: list[Path | None] = []

    def load_tokenizer(model, cache_dir: Path | None = None):  # noqa: ANN202 - the real one's
        seen.append(cache_dir)
        return real(model, cache_dir)

    real = stage_data.load_tokenizer
    monkeypatch.setattr(stage_data, "load_tokenizer", load_tokenizer)
    load_stage_data(compose_run(*SMALL, f"cache_dir={tmp_path}", "injection_task=none"))
    assert seen == [tmp_path]


def test_a_home_relative_data_path_keys_the_same_result_for_every_home(monkeypatch) -> None:
    """Kills `spelled_as_read` -> `Path(path).expanduser()`: `~/data/a.jsonl` would hash as this
    user's home, so a stored result (scheme 4 kept `~` as given) would be redone, and a sweep
    folder shared between users keyed apart."""
    overrides = ("target_task=snli", "target_task.data_files.train='~/data/a.jsonl'")
    monkeypatch.setenv("HOME", "/home/a")
    one = config_fingerprint(resolve_config(compose_config("model=tiny", *overrides)))
    monkeypatch.setenv("HOME", "/home/b")
    assert config_fingerprint(resolve_config(compose_config("model=tiny", *overrides))) == one


def test_the_settings_the_fingerprint_leaves_out_are_named_unhashed() -> None:
    """Kills `_LEFT_OUT_WHEN_UNREAD` dropped from unhashed_settings (and its pooler): a run without
    stage 1 (or a pooler no head reads) serves every split (every pooler), so the sweep table
    must name its row without them (RunRecord.unread), not split it by a value it never read."""
    from layerft.fingerprint import unhashed_settings

    baseline = unhashed_settings(resolved("injection_task=none"))
    assert {"injection_task.", "injection_lr_schedule.", "layer_split."} <= set(baseline)
    tagging = resolve_config(compose_config("model=klue_bert_base", "target_task=klue_ner"))
    assert "model.pretrained_pooler" in unhashed_settings(tagging)
    assert "model.pretrained_pooler" not in unhashed_settings(
        resolve_config(compose_config("model=klue_bert_base"))
    )
