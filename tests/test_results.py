"""The run record: which config keys decide whether a finished run is reused, and metrics.json itself."""

from __future__ import annotations

import copy
import errno
import functools
import hashlib
import json
import logging
import os
import stat
import tempfile
from pathlib import Path
from typing import Any

import pytest
from compose import CONF, compose_config, compose_run
from conftest import SHRINK
from datasets import Dataset
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from layerft import hydra_job, later_keys, record_migration, run_folder, run_tracker
from layerft import run as run_module
from layerft.config import resolve_config
from layerft.config_differences import config_differences
from layerft.config_overrides import override_key
from layerft.data_changes import changed_data, changed_since
from layerft.errors import LayerftError
from layerft.file_io import file_sha256, run_dir_errors, write_json_atomic
from layerft.fingerprint import (
    FINGERPRINT_SCHEME,
    RESULT_NEUTRAL_KEYS,
    config_fingerprint,
    earlier_fingerprints,
    seedless_fingerprint,
)
from layerft.forced_rerun import NOTE_FILE, noted_forced_rerun
from layerft.kinds.base import TaskKind
from layerft.model import load_tokenizer
from layerft.results import read_finished, record_failure, write_metrics
from layerft.run_folder import new_folder_hint
from layerft.run_record import (
    FILE_SETTINGS_KEY,
    FINGERPRINT_KEY,
    FINGERPRINT_SCHEME_KEY,
    RESULTS_CHANGES,
    RESULTS_VERSION,
    RESULTS_VERSION_KEY,
    SEEDLESS_FINGERPRINT_KEY,
    UNREAD_KEY,
    RunRecord,
)
from layerft.stage1_key import Stage1Key
from layerft.stage_data import load_stage_data
from layerft.tokenized import tokenized_key
from layerft.tracker import wandb_runs
from layerft.unread_keys import unread_settings

BASE = ("model=tiny",)

# Every result-neutral key, and overrides that change only it.
NEUTRAL = {
    "tracker": [
        "tracker=none",
        "tracker.project=other",
        "tracker.mode=offline",
        "tracker.tags=[a]",
    ],
    "cache_dir": ["cache_dir=/elsewhere/cache"],
    "trainer.keep_checkpoints": ["trainer.keep_checkpoints=true"],
    "trainer.progress_bar": ["trainer.progress_bar=true"],
    "trainer.dataloader_workers": ["trainer.dataloader_workers=2"],
    "reuse_stage1": ["reuse_stage1=false"],
    "force_rerun": ["force_rerun=true"],
}
HYDRA_ONLY = ["hydra.run.dir=/elsewhere/run", "hydra.job_logging.root.level=WARNING"]

# Overrides that change what a run measures.
RESULT_CHANGING = [
    "seed=7",
    "target_task.lr=1e-4",
    "model=minilm",
    "model.tiny.hidden_size=64",
    "target_task.max_length=96",
    "target_task=snli",
    "injection_task=none",
    "injection_task.epochs=2",
    "layer_split=lower_half",
    "tuning_mode=frozen",
    "lr_schedule=cosine",
    "trainer.precision=bf16",
    "trainer.pad_to_multiple_of=8",
    "target_task.data_files.train=/data/a.jsonl",
]


@functools.cache  # composing costs; callers only read the result
def resolved(*overrides: str) -> dict[str, Any]:
    """The resolved config train.py would hash for these overrides."""
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return resolve_config(compose("config", overrides=[*BASE, *overrides]))


def test_every_result_neutral_key_is_in_the_config_and_covered_here() -> None:
    assert set(NEUTRAL) == set(RESULT_NEUTRAL_KEYS)
    config = resolved()
    for dotted in RESULT_NEUTRAL_KEYS:
        node: Any = config
        for key in dotted.split("."):
            assert key in node, dotted
            node = node[key]


@pytest.mark.parametrize(
    "override", [o for overrides in NEUTRAL.values() for o in overrides] + HYDRA_ONLY
)
def test_result_neutral_override_keeps_the_fingerprint(override: str) -> None:
    assert resolved(override) != resolved() or override in HYDRA_ONLY  # it does change the config
    assert config_fingerprint(resolved(override)) == config_fingerprint(resolved())


@pytest.mark.parametrize("override", RESULT_CHANGING)
def test_result_changing_override_changes_the_fingerprint(override: str) -> None:
    assert config_fingerprint(resolved(override)) != config_fingerprint(resolved())


@pytest.mark.parametrize("override", RESULT_CHANGING)
def test_the_seedless_fingerprint_changes_with_all_but_the_seed(override: str) -> None:
    # A row of a sweep table averages seeds: it must see a config that differs in anything else
    changed = seedless_fingerprint(resolved(override)) != seedless_fingerprint(resolved())
    assert changed == (override != "seed=7")


# Settings a run without stage 1 never reads: one fingerprint for all their values (scheme 2).
UNREAD_WITHOUT_STAGE1 = [
    "layer_split=lower_half",
    "layer_split=all",
    "layer_split.stage2.policy=scale",
    "lr_schedule@injection_lr_schedule=cosine",
    "injection_lr_schedule.warmup_ratio=0.2",
]


@pytest.mark.parametrize("override", UNREAD_WITHOUT_STAGE1)
def test_a_run_without_stage1_has_one_fingerprint_whatever_its_split(override: str) -> None:
    # A grid crossing injection_task=none with layer_split trains the baseline once, not per split
    # (the sweep finds the finished fingerprint in the first split's folder).
    baseline = resolved("injection_task=none")
    other = resolved("injection_task=none", override)
    assert other != baseline  # the override does reach the config
    assert config_fingerprint(other) == config_fingerprint(baseline)
    assert seedless_fingerprint(other) == seedless_fingerprint(baseline)
    # ...which scheme 1 told apart: those records are found by their own fingerprints.
    assert earlier_fingerprints(other) != earlier_fingerprints(baseline)
    # With a stage 1 they change what is measured.
    assert config_fingerprint(resolved(override)) != config_fingerprint(resolved())


# A setting its choices never read, with those choices (scheme 3): the key it is unread under.
UNREAD_BY_CHOICE = [
    (["tuning_mode=full"], "tuning_mode.lora.rank=4", "tuning_mode.lora."),
    (["tuning_mode=bitfit"], "tuning_mode.lora.target_modules=[query]", "tuning_mode.lora."),
    (["tuning_mode=lora"], "tuning_mode.adapter.reduction_factor=8", "tuning_mode.adapter."),
    (["tuning_mode=full"], "tuning_mode.layers=top", "tuning_mode.layers"),
    (["lr_schedule=linear"], "lr_schedule.layer_decay=0.5", "lr_schedule.layer_decay"),
    (["lr_schedule=cosine"], "lr_schedule.multipliers.head=2", "lr_schedule.multipliers."),
    (["lr_schedule=discriminative"], "lr_schedule.layer_decay=0.5", "lr_schedule.layer_decay"),
    (["lr_schedule=layerwise_decay"], "lr_schedule.multipliers.encoder=0.3",
     "lr_schedule.multipliers."),
    ([], "injection_lr_schedule.layer_decay=0.5", "injection_lr_schedule.layer_decay"),
    ([], "layer_split.stage2.lr_multiplier=0.5", "layer_split.stage2.lr_multiplier"),
    (["tuning_mode=frozen", "layer_split.stage2.policy=scale"],
     "layer_split.stage2.lr_multiplier=0.5", "layer_split.stage2.lr_multiplier"),
]  # fmt: skip


@pytest.mark.parametrize(("choices", "override", "unread"), UNREAD_BY_CHOICE)
def test_a_setting_its_choices_never_read_keeps_the_fingerprint(choices, override, unread) -> None:
    # A grid crossing tuning_mode=full,lora with tuning_mode.lora.rank=4,8 trains full fine-tuning
    # once: the rank hashes at its default where nothing reads it.
    plain, other = resolved(*choices), resolved(*choices, override)
    assert other != plain  # the override does reach the config
    assert config_fingerprint(other) == config_fingerprint(plain)
    assert seedless_fingerprint(other) == seedless_fingerprint(plain)
    # ...which scheme 2 told apart: its records of `other` are found by their own fingerprint.
    assert config_fingerprint(other, scheme=2) in earlier_fingerprints(other)
    assert earlier_fingerprints(plain) == ()  # at the defaults: as scheme 2 keyed it
    record = RunRecord.of(other, {}, [override], ("target/eval_accuracy", True))
    assert unread in record.unread and record.entries()[UNREAD_KEY] == list(record.unread)


# Spellings of one data file (train.py opens `Path(path)`), then of other files or other keys.
SAME_FILE = {
    "target_task.data_files.train": ["data/a.jsonl", "./data/a.jsonl", "data//a.jsonl",
                                     "data/./a.jsonl", "data/a.jsonl/"],
    "target_task.data_dir": ["klue/nli", "klue/nli/", "./klue//nli"],
    "injection_task.data_files.validation": ["/d/dev.tsv", "/d/./dev.tsv", "/d//dev.tsv"],
}  # fmt: skip
OTHER_FILE = {
    "target_task.data_files.train": ["data/a.jsonl", "/data/a.jsonl", "x/../data/a.jsonl",
                                     "'~/data/a.jsonl'", "data/a.json"],
    "target_task.data_dir": ["klue/nli", "klue/nli2", "/klue/nli"],
}  # fmt: skip


@pytest.mark.parametrize("key", SAME_FILE)
def test_a_data_path_keys_its_result_as_it_is_read(key: str) -> None:
    # `./data/a.jsonl` and `data/a.jsonl` open one file: a run of one finds the other's result
    # (scheme 4), where scheme 3 called it another config's.
    configs = [resolved("target_task=snli", f"{key}={path}") for path in SAME_FILE[key]]
    assert len({json.dumps(c, sort_keys=True) for c in configs}) == len(configs)  # they differ
    assert len({config_fingerprint(c) for c in configs}) == 1
    assert len({seedless_fingerprint(c) for c in configs}) == 1
    assert config_differences(configs[0], configs[-1]) == ""
    as_given = {config_fingerprint(c, scheme=3) for c in configs}
    assert len(as_given) == len(configs)
    # A record of the earlier scheme is found under its own spelling, and the path already
    # spelled as read keeps its fingerprint.
    assert all(config_fingerprint(c, scheme=3) in earlier_fingerprints(c) for c in configs[1:])
    assert earlier_fingerprints(configs[0]) == ()


@pytest.mark.parametrize("key", OTHER_FILE)
def test_a_data_path_naming_another_file_keys_another_result(key: str) -> None:
    # Lexical only: `x/../data` is not `data` where x is a link, `~` is someone's home, and a
    # relative path keys the same data wherever the project moves, an absolute one does not.
    configs = [resolved("target_task=snli", f"{key}={path}") for path in OTHER_FILE[key]]
    assert len({config_fingerprint(c) for c in configs}) == len(configs)


def test_a_scheme_3_record_of_a_respelt_path_is_migrated_from_its_kept_config(
    tmp_path: Path,
) -> None:
    from layerft.fingerprint import unhashed_settings
    from layerft.record_migration import KEPT_CONFIG, migrated_fingerprints

    respelt = ["target_task=snli", "target_task.data_files.train=./data//a.jsonl"]
    (tmp_path / KEPT_CONFIG).parent.mkdir(parents=True)
    OmegaConf.save(compose_config(*respelt), tmp_path / KEPT_CONFIG)
    config = resolve_config(compose_config(*respelt))
    record = {FINGERPRINT_KEY: config_fingerprint(config, scheme=3), FINGERPRINT_SCHEME_KEY: 3,
              "run/choices": {"target_task": "snli"}, "run/overrides": respelt}  # fmt: skip
    as_read = resolve_config(
        compose_config("target_task=snli", "target_task.data_files.train=data/a.jsonl")
    )
    assert record[FINGERPRINT_KEY] != config_fingerprint(as_read)
    migrated = migrated_fingerprints(tmp_path, record)
    assert migrated == (
        config_fingerprint(as_read),
        seedless_fingerprint(as_read),
        unhashed_settings(as_read),
    )
    # Only a record that set a data path otherwise than as read is migrated.
    plain = [respelt[0], "target_task.data_files.train=data/a.jsonl"]
    assert migrated_fingerprints(tmp_path, {**record, "run/overrides": plain}) is None
    assert migrated_fingerprints(tmp_path, {**record, FINGERPRINT_SCHEME_KEY: 4}) is None
    # A path an option's YAML spelt so (no override names it): the kept config says so, read for a
    # record of local data (its seeds had otherwise been two configs in a table row).
    from_yaml = {
        **record,
        "run/overrides": respelt[:1],
        "run/data_paths": {"target_task.train": "/d"},
    }
    assert migrated_fingerprints(tmp_path, from_yaml) == migrated
    assert migrated_fingerprints(tmp_path, {**from_yaml, "run/data_paths": {}}) is None
    OmegaConf.save(compose_config(*plain), tmp_path / KEPT_CONFIG)  # spelt as read: no migration
    assert migrated_fingerprints(tmp_path, from_yaml) is None


def test_a_scheme_2_record_is_migrated_from_its_kept_config_read_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import layerft.config
    from layerft.record_migration import KEPT_CONFIG, migrated_fingerprints

    reads: list[Any] = []
    resolve = layerft.config.resolve_config
    monkeypatch.setattr(layerft.config, "resolve_config", lambda c: reads.append(c) or resolve(c))
    overrides = ["injection_task=none", "tuning_mode=full", "tuning_mode.lora.rank=4"]
    (tmp_path / KEPT_CONFIG).parent.mkdir(parents=True)
    OmegaConf.save(compose_config(*overrides), tmp_path / KEPT_CONFIG)
    config = resolve_config(compose_config(*overrides))
    record = {FINGERPRINT_KEY: config_fingerprint(config, scheme=2), FINGERPRINT_SCHEME_KEY: 2,
              "run/choices": {"tuning_mode": "full"}, "run/overrides": overrides}  # fmt: skip
    migrated = (config_fingerprint(config), seedless_fingerprint(config), unhashed(config))
    assert migrated[0] == config_fingerprint(resolve_config(compose_config(*overrides[:2])))
    assert migrated_fingerprints(tmp_path, record) == migrated
    assert migrated_fingerprints(tmp_path, record) == migrated
    assert len(reads) == 1  # the plan, each job and the table ask: the file is read once
    # A kept config edited since is read again, and is no longer the record's.
    OmegaConf.save(
        compose_config(*overrides[:2], "tuning_mode.lora.rank=16"), tmp_path / KEPT_CONFIG
    )
    assert migrated_fingerprints(tmp_path, record) is None and len(reads) == 2
    # Records that need no migration read nothing: this scheme's, or without such an override.
    assert migrated_fingerprints(tmp_path, {**record, FINGERPRINT_SCHEME_KEY: 3}) is None
    assert migrated_fingerprints(tmp_path, {**record, "run/overrides": overrides[:2]}) is None
    warmup = [*overrides[:2], "lr_schedule.warmup_ratio=0.2"]  # read under every choice
    assert migrated_fingerprints(tmp_path, {**record, "run/overrides": warmup}) is None
    assert len(reads) == 2
    # A node above such a key, or a key deciding whether one is read, may key it otherwise too.
    for key in (
        "layer_split.stage2",
        "tuning_mode.lora",
        "tuning_mode.method",
        "+lr_schedule.scaling=linear",
    ):
        assert record_migration._may_key_otherwise(override_key(key)), key
    for key in ("tuning_mode", "lr_schedule.shape", "layer_split.stage2.transplant_embeddings"):
        assert not record_migration._may_key_otherwise(key), key


def unhashed(config: dict[str, Any]) -> tuple[str, ...]:
    return RunRecord.of(config, {}, [], ("target/eval_accuracy", True)).unread


def built_stages(*overrides: str) -> dict[str, Any]:
    """What each stage builds from this config before training: the stage-2 model (weights,
    trainable parameters) and both stages' optimizer groups (lr, weight decay, parameters)."""
    import torch

    from layerft.heads import encoder_layers
    from layerft.layer_split import extract_injected
    from layerft.lr_schedule import build_optimizer, part_lr_multipliers
    from layerft.parts import layer_part, parameter_parts
    from layerft.stage_models import build_injection_model, build_target_model

    cfg = compose_run(*BASE, *overrides)

    def groups(model: torch.nn.Module, lr: float, multipliers: dict[str, float]) -> list[Any]:
        names = {id(p): n for n, p in model.named_parameters()}
        optimizer = build_optimizer(model, parameter_parts(model), lr, 0.01, multipliers)
        return [(g["lr"], g["weight_decay"], sorted(names[id(p)] for p in g["params"]))
                for g in optimizer.param_groups]  # fmt: skip

    built: dict[str, Any] = {}
    injected = None
    if cfg.injection_task is not None:
        stage1, num_lower = build_injection_model(cfg)
        depth = len(encoder_layers(stage1.backbone))
        lower = [layer_part(i) for i in range(num_lower)]
        multipliers = part_lr_multipliers(cfg.injection_lr_schedule, depth, injected=lower)
        built["stage1_groups"] = groups(stage1, cfg.injection_task.lr, multipliers)
        injected = extract_injected(stage1, cfg.layer_split.stage1, num_lower)
    model, multipliers = build_target_model(cfg, injected)
    built["stage2_groups"] = groups(model, cfg.target_task.lr, multipliers)
    built["trainable"] = sorted(n for n, p in model.named_parameters() if p.requires_grad)
    built["weights"] = model.state_dict()
    built["shapes"] = {name: tuple(value.shape) for name, value in built["weights"].items()}
    return built


@pytest.mark.slow
@pytest.mark.parametrize(("choices", "override", "unread"), UNREAD_BY_CHOICE)
def test_a_setting_hashed_at_its_default_changes_nothing_a_run_builds(
    choices, override, unread
) -> None:
    # The guard on scheme 3: were a key it hashes at its default read after all, two runs would
    # share a fingerprint and one would reuse the other's result. Same model, same weights, same
    # trainable parameters, same optimizer groups in both stages.
    plain, other = built_stages(*choices), built_stages(*choices, override)
    plain_weights, other_weights = plain.pop("weights"), other.pop("weights")
    assert plain_weights.keys() == other_weights.keys()
    assert all(t.equal(other_weights[k]) for k, t in plain_weights.items())
    assert other == plain


def shipped_options() -> list[str]:
    """Every shipped option of the groups whose unread keys scheme 3 hashes at their defaults."""
    groups = {"tuning_mode": "tuning_mode", "lr_schedule": "lr_schedule",
              "lr_schedule@injection_lr_schedule": "lr_schedule", "layer_split": "layer_split"}  # fmt: skip
    return [f"{key}={path.stem}" for key, folder in groups.items()
            for path in sorted((CONF / folder).glob("*.yaml"))]  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize("injection", ["injection_task=none", "injection_task=demo_pos"])
def test_every_shipped_option_keeps_its_scheme_2_fingerprint(injection: str) -> None:
    # Scheme 3 hashes unread keys at their schema defaults: an option file that set one elsewhere
    # would change the key of every stored result of that option.
    for option in shipped_options():
        config = resolved(injection, option)
        assert config_fingerprint(config, scheme=2) == config_fingerprint(config), option


# The same settings where the choices read them: other runs.
READ_BY_CHOICE = [
    (["tuning_mode=lora"], "tuning_mode.lora.rank=4"),
    (["tuning_mode=top_adapter"], "tuning_mode.adapter.reduction_factor=8"),
    (["tuning_mode=lora"], "tuning_mode.layers=top"),
    (["lr_schedule=layerwise_decay"], "lr_schedule.layer_decay=0.5"),
    (["lr_schedule=discriminative"], "lr_schedule.multipliers.head=2"),
    (["injection_lr_schedule.scaling=layerwise_decay"], "injection_lr_schedule.layer_decay=0.5"),
    (["layer_split.stage2.policy=scale"], "layer_split.stage2.lr_multiplier=0.5"),
    # Unread, but hashed: shipped splits set it (fingerprint.AT_DEFAULT_WHEN_UNREAD).
    (["tuning_mode=frozen"], "layer_split.stage2.policy=train"),
]


@pytest.mark.slow
@pytest.mark.parametrize(("choices", "override"), READ_BY_CHOICE)
def test_a_setting_its_choices_read_changes_the_fingerprint(choices, override) -> None:
    plain, other = resolved(*choices), resolved(*choices, override)
    assert config_fingerprint(other) != config_fingerprint(plain)
    record = RunRecord.of(other, {}, [override], ("target/eval_accuracy", True))
    assert not any(override.startswith(key) for key in record.unread)
    if "tuning_mode=frozen" not in choices:  # built_stages tells these apart (it can fail above)
        built, changed = built_stages(*choices), built_stages(*choices, override)
        del built["weights"], changed["weights"]
        assert built != changed


def test_another_kinds_settings_change_no_key_name_or_tracked_config_and_are_warned(caplog) -> None:
    # A classification target's span settings, a tagging injection's parser settings: a grid
    # crossing tasks of two kinds with doc_stride=64,128 trained each classification task twice.
    inert = ["target_task.spans.doc_stride=64", "injection_task.parsing.arc_space=64"]
    plain, other = resolved(), resolved(*inert)
    assert config_fingerprint(other) == config_fingerprint(plain)
    assert seedless_fingerprint(other) == seedless_fingerprint(plain)
    assert earlier_fingerprints(other) == (config_fingerprint(other, scheme=4),)  # its old key
    assert earlier_fingerprints(plain) == ()
    this = RunRecord.of(other, {}, inert, ("target/eval_accuracy", True))
    assert {"target_task.spans.", "injection_task.parsing.", "target_task.tagging."} <= set(
        this.unread
    )
    assert "injection_task.tagging." not in this.unread  # demo_pos tags: it reads them
    tracked = run_tracker.tracked_config(other, this.unread)
    assert "spans" not in tracked["target_task"] and "parsing" not in tracked["injection_task"]
    assert "tagging" in tracked["injection_task"]
    assert (
        Stage1Key.of(compose_run(*BASE, *inert)).settings_digest()
        == Stage1Key.of(compose_run(*BASE)).settings_digest()
    )
    # Nor the data half of the stage-1 key: its tokenized data's key (tokenized_key) hashed them.
    small = [*BASE, "injection_task.generator_sizes.train=16", "injection_task.generator_sizes.validation=8"]  # fmt: skip
    stage1 = [load_stage_data(compose_run(*small, *more)).injection for more in ([], inert)]
    assert stage1[0] is not None and stage1[1] is not None
    assert (
        Stage1Key.of(compose_run(*small, *inert), stage1[1].content).digest()
        == Stage1Key.of(compose_run(*small), stage1[0].content).digest()
    )
    records, tokenizer = Dataset.from_list([{"x": 1}]), load_tokenizer(compose_run(*BASE).model)
    squad = [compose_run(*BASE, "target_task=squad", *more).target_task for more in
             ([], ["target_task.parsing.arc_space=64"], ["target_task.spans.doc_stride=64"])]  # fmt: skip
    keys = [tokenized_key(records, task, tokenizer) for task in squad]
    assert keys[0] == keys[1] != keys[2]  # a span task's tokens depend on its doc_stride
    # ... and on the tokenizer and the kind: another vocabulary or encoder is other token ids
    other = load_tokenizer(compose_run(*BASE).model)
    other.add_tokens(["zzqxv"])
    assert tokenized_key(records, squad[0], other) != keys[0]
    assert tokenized_key(records, squad[0], load_tokenizer(compose_run(*BASE).model)) == keys[0]
    as_classes = copy.copy(squad[0])  # the same settings read by another kind's encoder
    as_classes.kind = TaskKind.sequence_classification
    assert tokenized_key(records, as_classes, tokenizer) != keys[0]
    for kind, setting in zip(["target_task=squad", "injection_task=klue_dp"], inert, strict=True):
        # under a task of the kind that reads it: another run
        assert config_fingerprint(resolved(kind, setting)) != config_fingerprint(resolved(kind))
    caplog.clear()  # the data's warnings
    with caplog.at_level(logging.WARNING):
        hydra_job.warn_inert_overrides(compose_run(*BASE, *inert), inert)
    assert sorted(r.getMessage() for r in caplog.records) == [
        "injection_task.kind=token_tagging reads no parsing settings, so "
        "injection_task.parsing.arc_space=64 changes nothing",
        "target_task.kind=sequence_classification reads no spans settings, so "
        "target_task.spans.doc_stride=64 changes nothing",
    ]


def test_a_run_with_stage1_had_its_fingerprint_under_every_scheme() -> None:
    assert earlier_fingerprints(resolved()) == ()


def test_a_record_of_an_earlier_fingerprint_scheme_is_this_configs_result(tmp_path: Path) -> None:
    config = resolved("injection_task=none", "layer_split=all")
    (earlier,) = earlier_fingerprints(config)
    write_metrics(tmp_path, {"target/eval_accuracy": 0.5}, record(earlier))
    this = RunRecord.of(config, CHOICES, list(OVERRIDES), ("target/eval_accuracy", True))
    assert this.fingerprints == (config_fingerprint(config), earlier)
    hint = "hydra.run.dir=<new folder>"
    assert read_finished(tmp_path, this.fingerprints, hint) == {"target/eval_accuracy": 0.5}
    with pytest.raises(LayerftError, match="holds the result of another config"):
        read_finished(tmp_path, (this.fingerprint,), hint)


@pytest.mark.parametrize(
    ("overrides", "fingerprint", "earlier"),
    [
        ([], "09508c9dfcfca1fe", None),
        # Scheme 1 hashed its (unread) layer split and stage-1 schedule.
        (["model=tiny", "injection_task=none"], "00d128a359bd6332", "6101437f154ac0f8"),
        (["target_task=snli"], "ae6988a098993a71", None),
        (["target_task=nsmc"], "1ae8fe9cbe3a64f0", None),
        (["target_task=squad"], "82f2c9ef9c1ce8d2", None),
        (["target_task=klue_mrc", "injection_task=klue_dp"], "afa8ab7c6ccf2657", None),
        # Scheme 2 hashed the settings its choices never read (scheme 3: at their defaults). A
        # change to unread_keys.unread_settings or AT_DEFAULT_WHEN_UNREAD changes these: a new scheme.
        (
            ["tuning_mode.lora.rank=4", "lr_schedule.layer_decay=0.5"],
            "09508c9dfcfca1fe",
            "78f79a08f5b4b216",
        ),
        # No stage 1 and an unread setting: schemes 1, 2 and 3 each gave another value.
        (
            ["model=tiny", "injection_task=none", "tuning_mode.lora.rank=4"],
            "00d128a359bd6332",
            ("e666486c59f1d344", "19a9e8045d594279"),
        ),
        (["tuning_mode=lora"], "ccd24c52514f1352", None),
        (
            ["tuning_mode=lora", "tuning_mode.adapter.reduction_factor=8"],
            "ccd24c52514f1352",
            "f59a5544bfa90ac2",
        ),
    ],
)
def test_the_config_fingerprint_of_a_real_config_keeps_its_value(
    overrides, fingerprint, earlier
) -> None:
    # Finished results are found by it: a new hash turns every stored result into "another
    # config" that a resumed sweep refuses. A new schema key at the value that does what its
    # absence did belongs in LATER_KEYS (layerft/later_keys.py: then this value holds); one that
    # changes no result, in RESULT_NEUTRAL_KEYS or RECORD_CHOICE_KEYS. Changing this value on
    # purpose reruns every stored result.
    resolved = resolve_config(compose_config(*overrides))
    assert config_fingerprint(resolved) == fingerprint
    assert seedless_fingerprint(resolved) != fingerprint
    expected = earlier if isinstance(earlier, tuple) else () if earlier is None else (earlier,)
    assert earlier_fingerprints(resolved) == expected


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        ([], "ff2c21a8a8fd4a41"),
        (["injection_task=klue_dp"], "0e6351d199f46a78"),
        (["injection_task=klue_ner"], "9b6049281327c794"),
    ],
)
def test_the_stage1_key_of_a_real_config_keeps_its_value(overrides, key) -> None:
    # Stored stage 1s are found by it, as finished results by the fingerprint above. stage1_key.FORMAT
    # 2: the parser's scorers start as KLUE-baseline's (every stored stage 1 retrains once); klue_ner
    # reads words (tagging.words_column).
    assert Stage1Key.of(compose_run(*overrides)).settings_digest() == key


# --- keys added to the config after results were stored (later_keys.LATER_KEYS) -------------------


def test_a_key_added_later_at_its_old_meaning_keys_nothing(monkeypatch) -> None:
    # A schedule shape's new parameter and a kind's new settings node, at their defaults: every
    # stored result keeps its fingerprint (it was "another config", and every stage 1 retrained).
    config = resolved("injection_task=demo_pos")
    before = config_fingerprint(config)
    grown = json.loads(json.dumps(config))
    grown["lr_schedule"]["power"] = 1.0
    grown["injection_task"]["multilabel"] = {"threshold": 0.5}
    assert config_fingerprint(grown) != before  # as any new key, without its line
    later = {**later_keys.LATER_KEYS, "schedule.power": 1.0, "task.multilabel.threshold": 0.5}
    monkeypatch.setattr(later_keys, "LATER_KEYS", later)
    assert config_fingerprint(grown) == before
    grown["lr_schedule"]["power"] = 2.0  # another value: another config
    assert config_fingerprint(grown) != before


def test_a_stage1_key_leaves_out_keys_added_later_at_their_old_meaning(monkeypatch) -> None:
    key = Stage1Key.of(compose_run("injection_task=demo_pos"))
    data = key.data()
    later = {
        "trainer.precision": data["trainer"]["precision"],
        "schedule.warmup_ratio": data["schedule"]["warmup_ratio"],
        "layer_split.stage1.num_lower": data["split"]["num_lower"],
        "model.hub_id": data["model"]["hub_id"],
        "injection_task.max_length": data["task"]["max_length"],  # one stage's spelling
    }
    monkeypatch.setattr(later_keys, "LATER_KEYS", later)
    data = key.data()
    assert "precision" not in data["trainer"] and "warmup_ratio" not in data["schedule"]
    assert "num_lower" not in data["split"] and "hub_id" not in data["model"]
    assert "max_length" not in data["task"]


# --- metrics.json ---------------------------------------------------------------------------

CHOICES = {"model": "tiny", "tuning_mode": "full"}
OVERRIDES = ["model=tiny", "seed=3"]


def record(fingerprint: str = "0123456789abcdef") -> RunRecord:
    return RunRecord(
        fingerprint, "fedcba9876543210", CHOICES, 3, OVERRIDES, "target/eval_accuracy", True, "grid"
    )


def test_metrics_json_describes_its_run_and_a_rerun_reads_back_only_metrics(tmp_path: Path) -> None:
    path = write_metrics(tmp_path, {"target/eval_accuracy": 0.5}, record())
    assert json.loads(path.read_text()) == {
        "target/eval_accuracy": 0.5,
        FINGERPRINT_KEY: "0123456789abcdef",
        SEEDLESS_FINGERPRINT_KEY: "fedcba9876543210",
        "run/choices": CHOICES,
        "run/seed": 3,
        "run/overrides": OVERRIDES,
        "run/selection_metric": "target/eval_accuracy",
        "run/higher_is_better": True,
        "run/sweep": "grid",
        "run/data_files": {},
        "run/data_paths": {},
        "run/results_version": RESULTS_VERSION,
        FINGERPRINT_SCHEME_KEY: FINGERPRINT_SCHEME,
        UNREAD_KEY: [],
        FILE_SETTINGS_KEY: {},
    }
    assert read_finished(tmp_path, ("0123456789abcdef",), "hydra.run.dir=<new folder>") == {
        "target/eval_accuracy": 0.5
    }


@pytest.mark.parametrize("version", [None, 1, RESULTS_VERSION])
def test_a_result_an_older_layerft_computed_is_reused_with_a_warning(
    tmp_path: Path, caplog, version
) -> None:
    path = write_metrics(tmp_path, {"target/eval_accuracy": 0.5}, record())
    data = json.loads(path.read_text())
    del data["run/results_version"]
    path.write_text(json.dumps(data | ({} if version is None else {RESULTS_VERSION_KEY: version})))
    with caplog.at_level(logging.WARNING, logger="layerft.results"):
        metrics = read_finished(tmp_path, ("0123456789abcdef",), "hydra.run.dir=<new folder>")
    assert metrics == {"target/eval_accuracy": 0.5}  # never redone unasked
    if version == RESULTS_VERSION:
        assert not caplog.records
    else:
        assert [r.getMessage() for r in caplog.records] == [
            f"{path} was computed by an older layerft (results version 1, now {RESULTS_VERSION}; "
            f"changed since: {RESULTS_CHANGES[2]}): reused as it is; force_rerun=true (sweep.py "
            "--force) reruns it"
        ]


def test_a_result_on_a_data_file_edited_since_is_refused_naming_the_split(tmp_path: Path) -> None:
    # The config (paths) and its fingerprint stay as they were: the old scores were reported as
    # this run's.
    train, dev = tmp_path / "train.jsonl", tmp_path / "dev.jsonl"
    train.write_text('{"premise": "a", "hypothesis": "b", "label": 0}\n')
    dev.write_text('{"premise": "c", "hypothesis": "d", "label": 1}\n')
    overrides = ["model=tiny", "injection_task=none", "target_task=snli",
                 f"target_task.data_files.train={train}", f"target_task.data_files.validation={dev}"]  # fmt: skip
    entries = {"run/choices": {}, "run/overrides": [], "run/sweep": None}

    def record_now() -> RunRecord:
        cfg = compose_config(*overrides)
        return hydra_job.build_run_record(compose_run(*overrides), resolve_config(cfg), entries)

    first = record_now()
    assert sorted(first.data_files) == ["target_task.train", "target_task.validation"]
    run_dir = tmp_path / "run"
    write_metrics(run_dir, {"target/eval_accuracy": 0.5}, first)
    assert run_folder.previous_result(run_dir, first, None) == (
        {"target/eval_accuracy": 0.5},
        run_dir,
    )
    dev.write_text('{"premise": "c", "hypothesis": "d", "label": 2}\n')
    edited = record_now()
    assert edited.fingerprint == first.fingerprint and edited.data_files != first.data_files
    # The record keeps each file's path: a table compares it without the config.
    assert first.data_paths == {
        "target_task.train": str(train.resolve()),
        "target_task.validation": str(dev.resolve()),
    }
    stored = json.loads((run_dir / "metrics.json").read_text())
    assert changed_since(stored) == ["target_task.validation"]
    with pytest.raises(LayerftError) as caught:
        run_folder.previous_result(run_dir, edited, None)
    assert str(caught.value) == (
        f"{run_dir / 'metrics.json'} is this config's result on other data: the file of "
        "target_task.validation changed since (its bytes' sha256); replace it with force_rerun=true (sweep.py "
        "--force), or run in a new folder (hydra.run.dir=<new folder>)"
    )
    # A split whose file is gone is not compared (nor a result written before files were recorded).
    dev.unlink()
    assert run_folder.previous_result(run_dir, record_now(), None) is not None


def test_changed_data_compares_only_the_splits_a_record_kept() -> None:
    # A result written before a split's file was recorded (or before any were) is not refused for it.
    record = {"run/data_files": {"target_task.train": "a", "target_task.validation": "b"}}
    now = {"target_task.train": "a", "target_task.validation": "c", "target_task.test": "d"}
    assert changed_data(record, now) == ["target_task.validation"]
    assert changed_data({}, now) == []


def test_config_differences_name_the_keys_a_refused_folder_differs_in() -> None:
    # A result refused as another config's: the message says which keys, e.g. a field the code
    # added (absent from the stored config) rather than a real conflict.
    stored, now = resolved("seed=1"), resolved("seed=2", "target_task.lr=1e-4")
    del stored["lr_schedule"]["warmup_ratio"]
    stored["tracker"] = {"name": "wandb"}  # result-neutral: not a difference
    assert config_differences(stored, now) == (
        "lr_schedule.warmup_ratio: absent -> 0.1; seed: 1 -> 2; target_task.lr: 5e-05 -> 0.0001"
    )
    assert config_differences(stored, now, limit=1) == (
        "lr_schedule.warmup_ratio: absent -> 0.1; and 2 more"
    )
    assert config_differences(now, now) == ""  # e.g. only the process count differs
    # A stage switched on is one entry, not one per field of its task; `none` as one chooses it
    assert config_differences(resolved("injection_task=none"), resolved()) == (
        "injection_task: none -> demo_pos"
    )


def test_a_refusal_names_the_differences_read_from_the_kept_config(tmp_path, monkeypatch) -> None:
    kept = tmp_path / ".hydra" / "finished"
    kept.mkdir(parents=True)
    OmegaConf.save(compose_config("model=tiny"), kept / "config.yaml")
    monkeypatch.setattr(run_folder, "hydra_record", lambda run_dir: run_dir / ".hydra")
    refused = LayerftError("refused")
    reseeded = resolve_config(compose_config("model=tiny", "seed=7"))
    assert str(run_folder.explained(refused, tmp_path, reseeded)) == (
        "refused (it differs in seed: 42 -> 7)"
    )
    # An enum as the YAML spells it (the kept config reads back as names): it said
    # `linear -> ScheduleShape.cosine`.
    other = resolve_config(compose_config("model=tiny", "lr_schedule=cosine", "tuning_mode=frozen"))
    assert str(run_folder.explained(refused, tmp_path, other)) == (
        "refused (it differs in lr_schedule.name: linear -> cosine; lr_schedule.shape: linear -> "
        "cosine; tuning_mode.method: full -> frozen; tuning_mode.name: full -> frozen)"
    )
    # Nothing in the config differs (torchrun's process count): the refusal as it was, not "()".
    same = resolve_config(compose_config("model=tiny"))
    assert run_folder.explained(refused, tmp_path, same) is refused


def test_record_of_a_resolved_config_takes_its_seed_and_fingerprint() -> None:
    config = resolved("seed=5")
    run_record = RunRecord.of(config, CHOICES, ["seed=5"], ("target/eval_loss", False))
    assert run_record.seed == 5
    assert run_record.fingerprint == config_fingerprint(config)
    assert run_record.seedless_fingerprint == seedless_fingerprint(config)
    assert (run_record.selection_metric, run_record.higher_is_better) == ("target/eval_loss", False)


def test_an_empty_run_dir_has_no_finished_run(tmp_path: Path) -> None:
    assert read_finished(tmp_path, ("0123456789abcdef",), "hydra.run.dir=<new folder>") is None


@pytest.mark.parametrize(
    "content",
    [
        None,  # written by write_metrics with another fingerprint
        '{"target/eval_accuracy": 0.5}',  # no fingerprint
    ],
)
def test_another_configs_result_is_refused_naming_the_folder_and_the_way_out(
    tmp_path: Path, content: str | None
) -> None:
    if content is None:
        write_metrics(tmp_path, {"target/eval_accuracy": 0.5}, record("ffffffffffffffff"))
    else:
        (tmp_path / "metrics.json").write_text(content)
    before = (tmp_path / "metrics.json").read_bytes()
    with pytest.raises(LayerftError) as caught:
        read_finished(tmp_path, ("0123456789abcdef",), new_folder_hint(str(tmp_path)))
    message = str(caught.value)
    assert "\n" not in message
    assert str(tmp_path / "metrics.json") in message
    # A job of sweep.py picks its folder with --dir (hydra.sweep.dir would be overruled by it).
    assert (
        "sweep.py ... --dir <new folder>, or hydra.sweep.dir=<new folder> with train.py" in message
    )
    assert (tmp_path / "metrics.json").read_bytes() == before


def test_a_refused_run_puts_back_the_hydra_config_of_the_result_it_keeps(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_metrics(tmp_path, {"target/eval_accuracy": 0.5}, record("ffffffffffffffff"))
    (tmp_path / ".hydra" / "finished").mkdir(parents=True)
    (tmp_path / ".hydra" / "finished" / "overrides.yaml").write_text("- seed=1\n")  # the result's
    (tmp_path / ".hydra" / "overrides.yaml").write_text(
        "- seed=2\n"
    )  # Hydra's, for the refused run
    monkeypatch.setattr(run_folder, "hydra_record", lambda run_dir: run_dir / ".hydra")
    with pytest.raises(LayerftError, match=f"^{tmp_path} holds the result of another config "):
        run_folder.previous_result(tmp_path, record(), sweep_dir=None)
    assert (tmp_path / ".hydra" / "overrides.yaml").read_text() == "- seed=1\n"


def test_a_result_another_run_wrote_in_the_folder_meanwhile_is_never_overwritten(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two train.py given one folder (seeds 1 and 2) where it cannot be locked (run_claim stops the
    # second at its start elsewhere): the run that finished second overwrote the other's
    # finished result, both saying "results: .../metrics.json" (hostile-environment review).
    overrides = ["model=tiny", "tracker=none", "injection_task=none", "seed=1"]
    mine = RunRecord.of(resolved(*overrides), CHOICES, overrides, ("target/eval_accuracy", True))

    def the_other_run_finishes_first(cfg, data, run_dir, sink):  # noqa: ANN001, ANN202
        write_metrics(run_dir, {"target/eval_accuracy": 0.25}, record("ffffffffffffffff"))
        (run_dir / "history.jsonl").write_text('{"step": 1}\n')
        return {"target/eval_accuracy": 0.75}, None

    monkeypatch.setattr(run_module, "train_stages", the_other_run_finishes_first)
    cfg = compose_run(*overrides, f"cache_dir={tmp_path / 'cache'}")
    with pytest.raises(LayerftError) as refused:
        run_module.train_and_record(cfg, tmp_path, resolved(*overrides), mine, replacing=False)
    assert str(refused.value) == (
        f"{tmp_path} came to hold the result of another config ({tmp_path / 'metrics.json'}) "
        "while this run trained: it is kept, and this run's result is not written; run this one "
        "in a new folder (hydra.run.dir=<new folder>)"
    )
    assert json.loads((tmp_path / "metrics.json").read_text())["target/eval_accuracy"] == 0.25
    assert (tmp_path / "history.jsonl").read_text() == '{"step": 1}\n'  # nor its history


def test_a_result_found_in_another_job_folder_is_reported_with_that_folder(tmp_path: Path) -> None:
    # train.py -m over a reversed grid: this config's job 0 finished earlier as job 3
    write_metrics(tmp_path / "3", {"target/eval_accuracy": 0.5}, record())
    (tmp_path / "0" / ".hydra").mkdir(parents=True)
    # A forced rerun died in that folder: what it left goes there too.
    with pytest.raises(RuntimeError), noted_forced_rerun(tmp_path / "3"):
        (tmp_path / "3" / "history.jsonl.partial").write_text("")
        raise RuntimeError("killed")
    found = run_folder.previous_result(tmp_path / "0", record(), str(tmp_path))
    assert found == ({"target/eval_accuracy": 0.5}, tmp_path / "3")
    assert not (tmp_path / "3" / "history.jsonl.partial").exists()


# --- a read-only or full disk ---------------------------------------------------------------


def fail_with(code: int) -> Any:
    def fail(*args: Any, **kwargs: Any) -> Any:
        raise OSError(code, os.strerror(code))

    return fail


def test_full_disk_keeps_the_earlier_metrics_json_and_no_temporary_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_metrics(tmp_path, {"target/eval_accuracy": 0.5}, record())
    before = path.read_bytes()
    monkeypatch.setattr(os, "fsync", fail_with(errno.ENOSPC))  # the data does not fit
    with pytest.raises(LayerftError) as caught:
        write_json_atomic(path, {"target/eval_accuracy": 0.9})
    assert str(caught.value) == f"cannot write {path}: No space left on device"
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


def test_written_results_are_readable_by_everyone(tmp_path: Path) -> None:
    # mkstemp makes its file private (0600): a results folder others read would hide them.
    path = tmp_path / "metrics.json"
    write_json_atomic(path, {"target/eval_accuracy": 0.5})
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_read_only_folder_is_one_error_naming_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "mkstemp", fail_with(errno.EROFS))
    path = tmp_path / "metrics.json"
    with pytest.raises(LayerftError, match=f"^cannot write {path}: Read-only file system$"):
        write_json_atomic(path, {})
    assert list(tmp_path.iterdir()) == []


def test_a_file_where_the_run_dir_should_be_is_one_error(tmp_path: Path) -> None:
    (tmp_path / "taken").write_text("")
    path = tmp_path / "taken" / "run" / "metrics.json"
    with pytest.raises(LayerftError, match=f"^cannot write {path}: Not a directory$"):
        write_json_atomic(path, {})


def test_a_failure_that_cannot_be_recorded_is_logged_and_does_not_stop_the_sweep(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(tempfile, "mkstemp", fail_with(errno.EROFS))  # the disk that failed the job
    record_failure(tmp_path, {}, LayerftError(f"cannot write {tmp_path}/history.jsonl.partial"))
    assert [r.getMessage() for r in caplog.records] == [
        f"job failed ({tmp_path}): cannot write {tmp_path}/history.jsonl.partial",
        f"the failure is not recorded (cannot write {tmp_path / 'failed.json'}: Read-only file "
        "system); the job counts as not run",
    ]
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("err", "line"),
    [(KeyError(), "KeyError"), (ValueError("bad\nmore"), "ValueError: bad")],
    ids=["no message", "two lines"],
)
def test_a_failure_reads_back_as_its_type_and_first_line(
    tmp_path: Path, err: Exception, line: str
) -> None:
    # Without a message it had read back as "KeyError: KeyError" in the table of failures.
    from layerft.sweep_job import read_job

    record_failure(tmp_path, {"run/choices": {}, "run/seed": 1, "run/overrides": []}, err)
    assert json.loads((tmp_path / "failed.json").read_text())["run/error"] == line
    assert read_job(tmp_path).error == line


# '{}' (a chaos review's hand edit) was "the result of another config": every rerun failed.
@pytest.mark.parametrize("content", ['{"target/eval_acc', "[1, 2]", "{}"])
def test_a_damaged_metrics_json_is_set_aside_and_the_run_redone(
    tmp_path: Path, content: str, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "metrics.json").write_text(content)
    with caplog.at_level(logging.WARNING, logger="layerft.results"):
        assert read_finished(tmp_path, ("0123456789abcdef",), "hydra.run.dir=<new folder>") is None
    assert not (tmp_path / "metrics.json").exists()
    assert (tmp_path / "metrics.json.corrupt").read_text() == content  # kept, not deleted
    assert f"{tmp_path / 'metrics.json'} is not " in caplog.text and "redone" in caplog.text


def test_a_second_damaged_metrics_json_is_kept_beside_the_first(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # The second set-aside had replaced the first metrics.json.corrupt: a damaged copy was lost.
    for content in ("[1]", "{}", '{"target/eval_acc'):
        (tmp_path / "metrics.json").write_text(content)
        with caplog.at_level(logging.WARNING, logger="layerft.results"):
            assert read_finished(tmp_path, ("0123456789abcdef",), "hydra.run.dir=<new>") is None
    assert {p.name: p.read_text() for p in tmp_path.iterdir()} == {
        "metrics.json.corrupt": "[1]",
        "metrics.json.corrupt.1": "{}",
        "metrics.json.corrupt.2": '{"target/eval_acc',
    }
    assert caplog.messages[-1].endswith(": kept as metrics.json.corrupt.2; the run is redone")


def test_a_metrics_json_another_process_set_aside_is_not_said_to_be_kept_twice(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two processes of the run read one damaged file; the other sets it aside first. This one's
    # move found nothing, yet it warned "kept as metrics.json.corrupt.1", a file never written.
    read_text = Path.read_text

    def raced(self: Path, *args: Any, **kwargs: Any) -> str:
        text = read_text(self, *args, **kwargs)
        if self.name == "metrics.json":
            os.replace(self, self.with_name("metrics.json.corrupt"))
        return text

    (tmp_path / "metrics.json").write_text("[1]")
    monkeypatch.setattr(Path, "read_text", raced)
    with caplog.at_level(logging.WARNING, logger="layerft.results"):
        assert read_finished(tmp_path, ("0123456789abcdef",), "hydra.run.dir=<new>") is None
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json.corrupt"]
    assert caplog.messages == []


def test_a_damaged_metrics_json_never_replaces_a_dangling_corrupt_link(tmp_path: Path) -> None:
    # exists() is False for a link to nothing: the set-aside replaced the link, not kept beside it.
    (tmp_path / "metrics.json.corrupt").symlink_to(tmp_path / "gone")
    (tmp_path / "metrics.json").write_text("[1]")
    assert read_finished(tmp_path, ("0123456789abcdef",), "hydra.run.dir=<new>") is None
    assert (tmp_path / "metrics.json.corrupt").readlink() == tmp_path / "gone"
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "metrics.json.corrupt",
        "metrics.json.corrupt.1",
    ]
    assert (tmp_path / "metrics.json.corrupt.1").read_text() == "[1]"


def test_an_unreadable_metrics_json_is_one_error(tmp_path: Path) -> None:
    (tmp_path / "metrics.json").mkdir()
    with pytest.raises(LayerftError, match="cannot read .*metrics.json: Is a directory"):
        read_finished(tmp_path, ("0123456789abcdef",), "hydra.run.dir=<new folder>")


@pytest.mark.parametrize(
    ("filename", "converted"), [("run/checkpoints/target", True), ("elsewhere/x", False)]
)
def test_only_failures_under_the_run_dir_become_user_errors(
    tmp_path: Path, filename: str, converted: bool
) -> None:
    run_dir = tmp_path / "run"
    err = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(tmp_path / filename))
    with pytest.raises(LayerftError if converted else OSError) as caught, run_dir_errors(run_dir):
        raise err
    if converted:
        message = f"cannot write {tmp_path / filename}: No space left on device"
        assert str(caught.value) == message
    else:
        assert caught.value is err


def test_metrics_json_is_strict_json_and_refuses_nan(tmp_path) -> None:
    path = tmp_path / "metrics.json"
    with pytest.raises(ValueError, match="not JSON compliant"):
        write_json_atomic(path, {"target/eval_loss": float("nan")})
    assert list(tmp_path.iterdir()) == []  # neither the file nor its temporary


# --- a forced rerun ----------------------------------------------------------------------------


def test_a_forced_rerun_that_dies_leaves_the_finished_result_whole(tmp_path, monkeypatch) -> None:
    # --force redoes a finished result; until the new one is written, the old metrics, history
    # and W&B run stay as they were (a killed or failed rerun must not leave them mismatched).
    overrides = [
        *SHRINK, "injection_task=none", "tracker=wandb", "tracker.mode=offline",
        f"cache_dir={tmp_path / 'cache'}",
    ]  # fmt: skip
    resolved_cfg = resolve_config(compose_config(*overrides))
    record = RunRecord.of(resolved_cfg, {}, [], ("target/eval_accuracy", True))
    run_dir = tmp_path / "run"
    run_module.run(compose_run(*overrides), run_dir, resolved_cfg, record, None)
    finished = {name: (run_dir / name).read_bytes() for name in ("metrics.json", "history.jsonl")}
    [first_run] = wandb_runs(run_dir)

    def dies(cfg, data, folder, sink):  # noqa: ANN001, ANN202 - train_stages' signature
        sink({"target/loss": 9.0}, 1)
        raise RuntimeError("killed mid-stage")

    forced = compose_run(*overrides, "force_rerun=true")
    monkeypatch.setattr(run_module, "train_stages", dies)
    with pytest.raises(RuntimeError, match="killed mid-stage"):
        run_module.run(forced, run_dir, resolved_cfg, record, None)
    assert {name: (run_dir / name).read_bytes() for name in finished} == finished
    assert first_run in wandb_runs(run_dir)
    monkeypatch.undo()
    # What it left beside the result (its W&B run, partial history) goes when the next run finds
    # that result: its note's lock went with it.
    assert len(wandb_runs(run_dir)) == 2 and (run_dir / "history.jsonl.partial").exists()
    assert (run_dir / NOTE_FILE).exists()
    assert (
        run_module.run(compose_run(*overrides), run_dir, resolved_cfg, record, None)[1] == run_dir
    )
    assert wandb_runs(run_dir) == [first_run] and not (run_dir / "history.jsonl.partial").exists()
    assert not (run_dir / NOTE_FILE).exists()
    run_module.run(forced, run_dir, resolved_cfg, record, None)  # finishes: replaces all of it
    assert (run_dir / "metrics.json").read_bytes() != finished["metrics.json"]
    assert len(wandb_runs(run_dir)) == 1 and first_run not in wandb_runs(run_dir)
    assert not (run_dir / "history.jsonl.partial").exists() and not (run_dir / NOTE_FILE).exists()


def test_a_data_files_sha256_covers_every_block(tmp_path: Path) -> None:
    data = os.urandom(3 * (1 << 20) + 12345)  # several read blocks and a partial last one
    path = tmp_path / "train.jsonl"
    path.write_bytes(data)
    assert file_sha256(path) == hashlib.sha256(data).hexdigest()


def test_the_unread_settings_of_a_config_kept_before_a_schedule_key_existed() -> None:
    # A schedule parameter added later (README: a shape's own parameter) is absent from the
    # configs kept beside older results: reading them raised KeyError, which hid why a run's
    # folder holds another config's result.
    resolved = resolve_config(compose_config("model=tiny", "lr_schedule=linear"))
    del resolved["lr_schedule"]["layer_decay"]
    assert ("lr_schedule.layer_decay", "lr_schedule=linear scales by uniform") in unread_settings(
        resolved
    )
