"""Lines a mutation audit found unguarded in config handling, grids and model surgery: override
keys and refusals, Hydra error lines, job folder names, a grid's plan (labels, stored stage 1,
input errors), encoder truncation, layer splits, adapters, atomic writes and data-file text (each
test names the mutation it kills)."""

from __future__ import annotations

import hashlib
import math
import os
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from compose import compose_config, compose_run
from hydra.errors import HydraException
from omegaconf.errors import OmegaConfBaseException
from tokenizers import normalizers

from layerft import file_io, memory, model_hub
from layerft.adapters import AdapterConfig, BottleneckAdapter, Nonlinearity, add_adapters
from layerft.charsmap import build_precompiled_charsmap
from layerft.config_errors import composition_error_line, config_error_line
from layerft.config_overrides import check_overrides, override_key
from layerft.errors import LayerftError
from layerft.heads import TaskModel, encoder_layers, truncate_encoder
from layerft.layer_split import Stage1Split
from layerft.model_limits import check_planned_split
from layerft.parts import adapter_layers, count_parameters, parameter_parts, set_trainable
from layerft.stage1_store import Stage1Store
from layerft.sweep_grid import check_grid, expand, job_dirname
from layerft.tiny_model import TinyConfig, build_tiny_backbone

# --- config_overrides ----------------------------------------------------------------------------


def test_override_key_drops_every_prefix_and_the_package_group() -> None:
    # Kills `split("@")[-1]` -> `[0]` and `lstrip("+~")` -> `lstrip("+")`.
    assert override_key("lr_schedule@injection_lr_schedule=cosine") == "injection_lr_schedule"
    assert override_key("++lr_schedule@injection_lr_schedule=cosine") == "injection_lr_schedule"
    assert override_key("~injection_task") == "injection_task"
    assert override_key("+target_task.lr=1e-4") == "target_task.lr"
    assert override_key("seed") == "seed"


def test_a_deleted_group_without_a_none_option_gets_no_none_hint() -> None:
    # Kills the `has_none_option` hint given to every group: tuning_mode has no none.yaml.
    cfg = compose_config("model=tiny", "~tuning_mode")
    with pytest.raises(LayerftError) as info:
        check_overrides(cfg, ["model=tiny", "~tuning_mode"])
    assert str(info.value) == (
        "~tuning_mode: a run keeps its tuning_mode option (results and tables are named by it), "
        "so it cannot be deleted"
    )


# --- config_errors -------------------------------------------------------------------------------


def test_a_misspelt_key_of_a_mapping_gets_the_close_key_not_the_plus_hint() -> None:
    # Kills `if not close and known_mapping(...)` -> `if known_mapping(...)`: a close key of a
    # mapping (klue_nli's release_rename holds gold_label) is the likely fix, not `+key=...`.
    with pytest.raises((HydraException, OmegaConfBaseException)) as info:
        compose_config("target_task=klue_nli", "target_task.release_rename.gold_labl=label")
    assert config_error_line(info.value) == (
        "unknown config key 'target_task.release_rename.gold_labl'; did you mean "
        "'target_task.release_rename.gold_label'?"
    )


def _apply_overrides_to_config() -> None:
    # Named as Hydra's frame, holding an override, raising an assertion that is not OmegaConf's.
    override = SimpleNamespace(input_line="model.tiny.hidden_size=8")
    assert override is None, "a bug in the code applying it"


def test_another_assertion_while_applying_an_override_is_not_a_null_node_line() -> None:
    # Kills dropping the "Unexpected type for root" check: any assertion raised while Hydra
    # applied an override would be reported as a null node above its key, not as a bug.
    with pytest.raises(AssertionError) as info:
        _apply_overrides_to_config()
    assert composition_error_line(info.value) is None


# --- sweep_grid: job folders, grid files, the plan ----------------------------------------------


def test_a_job_folder_name_replaces_whitespace_and_never_climbs_out() -> None:
    # Kills dropping `\s` from the replaced characters and `.` from the stripped ones (`..` was
    # the sweep folder's parent).
    assert job_dirname("target_task.data_dir=../data/a b,seed=1") == (
        "target_task.data_dir=.._data_a_b,seed=1"
    )
    assert job_dirname("x=a\tb") == "x=a_b"
    assert job_dirname("..") == job_dirname(".") == job_dirname("/") == "default"
    assert job_dirname("../x") == "x"


def test_a_long_job_folder_name_is_cut_at_120_with_ten_hex_digits_of_the_whole() -> None:
    # Kills `>` -> `>=`, MAX_DIRNAME changed, the digest's length, and hashing the replaced name
    # (which `a/b` and `a b` share) instead of Hydra's override_dirname.
    exact = "x=" + "a" * 118
    assert job_dirname(exact) == exact
    long = "x=" + "a" * 300
    digest = hashlib.sha256(long.encode()).hexdigest()[:10]
    assert job_dirname(long) == f"x={'a' * 107}-{digest}"
    assert len(job_dirname(long)) == 120
    slash, space = "x=" + "a" * 200 + "/b", "x=" + "a" * 200 + " b"
    assert job_dirname(slash)[:-11] == job_dirname(space)[:-11]
    assert job_dirname(slash) != job_dirname(space)


def grid_folder(tmp_path: Path, name: str, sweeper: str) -> Path:
    """A search-path folder holding grid `name` (conf/sweep's layout) with `sweeper`'s lines."""
    folder = tmp_path / "grids"
    (folder / "sweep").mkdir(parents=True)
    text = f"# @package _global_\nhydra:\n  sweeper:\n{sweeper}"
    (folder / "sweep" / f"{name}.yaml").write_text(text)
    return folder


def test_a_grid_naming_its_sweepers_target_is_refused(tmp_path: Path) -> None:
    # Kills `if chosen or "_target_" in sweeper` -> `if chosen`: a sweeper chosen by its
    # `_target_` would be replaced by sweep.py's own without a word.
    folder = grid_folder(
        tmp_path, "mine",
        "    _target_: hydra._internal.core_plugins.basic_sweeper.BasicSweeper\n"
        "    params:\n      seed: 1,2\n",
    )  # fmt: skip
    with pytest.raises(LayerftError) as info:
        check_grid("mine", [f"hydra.searchpath=[file://{folder}]"])
    assert str(info.value) == (
        f"{folder / 'sweep' / 'mine.yaml'}: hydra/sweeper: sweep.py runs a grid with its own "
        "sweeper (Hydra's basic one, less the finished jobs); for another sweeper run train.py -m"
    )


def test_a_plans_labels_stored_stage1_and_input_errors(tmp_path: Path, monkeypatch) -> None:
    # Kills dropping the grid's params from the swept keys (labels without them), dropping
    # `run_cfg.reuse_stage1` from `stored`, and a hub model error replacing a data-file error.
    asked: list[object] = []
    monkeypatch.setattr(
        Stage1Store, "holds", lambda self, key, warned, files, threads: asked.append(files) or True
    )
    monkeypatch.setattr(model_hub, "hub_model_error", lambda cfg: LayerftError("model gone"))
    missing = "injection_task.data_files.train=/no/such.jsonl"
    overrides = ["model=tiny", "tracker=none", f"cache_dir={tmp_path}", "seed=1", missing]
    plan = expand("demo", [*overrides, "reuse_stage1=true,false"], tmp_path / "sweep")
    no_file = "injection_task.data_files.train: no such file /no/such.jsonl"
    got = {(c.label, c.stage1_stored, c.input_error) for c in plan}
    assert got == {
        (f"injection_task={task},reuse_stage1={reuse},seed=1,tuning_mode={mode}",
         task == "demo_pos" and reuse == "True", no_file if task == "demo_pos" else "model gone")
        for task in ("none", "demo_pos") for reuse in ("True", "False") for mode in ("full", "lora")
    }  # fmt: skip
    assert asked == [{}, {}]  # model=tiny: its (empty) files key the stored stage 1


def test_a_plan_refuses_a_parts_weight_decay_in_either_stage(tmp_path: Path) -> None:
    """A part's lr x weight_decay >= 1 failed as its stage began (stage 2's after stage 1 had
    trained); the plan passed it. Mutation: check_planned_split not checking it, or only with
    an injection stage."""
    overrides = ["model=tiny", "tracker=none", f"cache_dir={tmp_path}", "tuning_mode=full",
                 "lr_schedule=discriminative", "lr_schedule.multipliers.head=1e5",
                 "target_task.weight_decay=1"]  # fmt: skip
    plan = expand("demo", overrides, tmp_path / "sweep")
    assert {c.label.split(",")[0] for c in plan} == {
        "injection_task=none",
        "injection_task=demo_pos",
    }
    assert {c.input_error for c in plan} == {
        "target_task.weight_decay=1 at head's lr 5 (the task's lr 5e-05 times its multiplier): "
        "their product must be < 1, else AdamW zeroes or flips its weights each step; lower "
        "weight_decay or that part's lr multiplier"
    }


def test_a_target_only_plan_ignores_its_unused_stage1_split(tmp_path: Path) -> None:
    """Mutation: check_planned_split checking stage 1's split without an injection stage."""
    overrides = ["model=tiny", "tracker=none", f"cache_dir={tmp_path}",
                 "layer_split.stage1.num_lower=99"]  # fmt: skip
    check_planned_split(compose_run(*overrides, "injection_task=none"), None)
    with pytest.raises(LayerftError) as caught:
        check_planned_split(compose_run(*overrides), None)
    assert str(caught.value) == "layer_split.stage1.num_lower=99 exceeds the model's 4 layers"


def test_a_converted_model_not_yet_converted_plans_its_stage1_by_settings_alone(
    tmp_path: Path, monkeypatch
) -> None:
    # Kills `files if known else None` -> `files`: with no folder yet, the plan cannot tell the
    # run's model files, so the store must not be asked to match an empty set of them.
    asked: list[object] = []
    monkeypatch.setattr(
        Stage1Store, "holds", lambda self, key, warned, files, threads: asked.append(files) or True
    )
    overrides = ["model=e5_small_offline", "tracker=none", f"cache_dir={tmp_path}", "seed=1"]
    plan = expand("demo", [*overrides, "tuning_mode=full"], tmp_path / "sweep")
    assert [c.model_folder for c in plan] == [None, None]
    assert [c.stage1_stored for c in plan] == [False, True] and asked == [None]


# --- heads ---------------------------------------------------------------------------------------


def tiny_backbone(num_layers: int = 3) -> torch.nn.Module:
    return build_tiny_backbone(TinyConfig(hidden_size=8, num_layers=num_layers, num_heads=2,
                                          intermediate_size=16), vocab_size=20)  # fmt: skip


def test_truncating_the_encoder_keeps_its_lowest_layers_and_says_so_in_its_config() -> None:
    # Kills keeping the top layers (`[-num_layers:]`) and not updating num_hidden_layers (a head
    # on the split saved with the full depth in its config).
    backbone = tiny_backbone(3)
    bottom_two = list(backbone.encoder.layer)[:2]
    truncate_encoder(backbone, 2)
    assert list(backbone.encoder.layer) == bottom_two
    assert isinstance(backbone.encoder.layer, torch.nn.ModuleList)
    assert backbone.config.num_hidden_layers == 2


def test_an_encoder_whose_layers_are_no_module_list_is_refused() -> None:
    # Kills `if not isinstance(layers, nn.ModuleList)` -> `if layers is None`: a plain list of
    # layers would not be saved or moved with the model.
    odd = SimpleNamespace(encoder=SimpleNamespace(layer=[torch.nn.Linear(2, 2)]))
    with pytest.raises(LayerftError) as info:
        encoder_layers(odd)  # type: ignore[arg-type]
    assert str(info.value) == (
        "backbone SimpleNamespace has no encoder.layer list; layerft supports BERT-, RoBERTa- "
        "and XLM-R-style encoders"
    )


# --- memory --------------------------------------------------------------------------------------


def test_the_kernel_peak_is_read_from_vmhwm_in_kib(tmp_path: Path, monkeypatch) -> None:
    # Kills `* 1024` -> `* 1000`, and reading another line (VmRSS) or none.
    status = tmp_path / "status"
    status.write_text("Name:\tpython\nVmPeak:\t  9999 kB\nVmHWM:\t    1234 kB\nVmRSS:\t  77 kB\n")
    monkeypatch.setattr(memory, "_STATUS", status)
    assert memory.kernel_peak_rss() == 1234 * 1024
    status.write_text("Name:\tpython\nVmRSS:\t  77 kB\n")
    assert memory.kernel_peak_rss() is None
    monkeypatch.setattr(memory, "_STATUS", tmp_path / "gone")
    assert memory.kernel_peak_rss() is None


def test_a_reset_counts_only_where_the_kernel_then_reports_a_peak(
    tmp_path: Path, monkeypatch
) -> None:
    # Kills `return kernel_peak_rss() is not None` -> `return True`: a system that takes the
    # write but keeps no VmHWM must be sampled instead.
    clear_refs, status = tmp_path / "clear_refs", tmp_path / "status"
    monkeypatch.setattr(memory, "_CLEAR_REFS", clear_refs)
    monkeypatch.setattr(memory, "_STATUS", status)
    status.write_text("VmRSS:\t  77 kB\n")
    assert memory.reset_peak_rss() is False and clear_refs.read_text() == "5"
    status.write_text("VmHWM:\t  88 kB\n")
    assert memory.reset_peak_rss() is True
    monkeypatch.setattr(memory, "_CLEAR_REFS", tmp_path / "no" / "clear_refs")
    assert memory.reset_peak_rss() is False


def test_a_phases_peak_is_the_kernels_and_its_growth_is_above_the_start(monkeypatch) -> None:
    # Kills `kernel_peak_rss() or rss` -> rss alone, and the growth measured from 0.
    monkeypatch.setattr(memory, "reset_peak_rss", lambda: True)
    monkeypatch.setattr(memory, "kernel_peak_rss", lambda: 2**40)  # above any real RSS
    with memory.PeakMemory() as peak:
        pass
    assert not peak.sampled and peak.peak_rss == 2**40
    peak.start_rss = 2**39
    assert peak.metrics() == {"peak_rss_mb": 2**20, "train_rss_growth_mb": 2**19}


# --- file_io -------------------------------------------------------------------------------------


def test_json_is_written_sorted_indented_and_nan_refused_leaving_the_earlier_file(
    tmp_path: Path,
) -> None:
    # Kills `sort_keys`/`indent` changed and `allow_nan=False` dropped (NaN is no JSON).
    path = tmp_path / "metrics.json"
    file_io.write_json_atomic(path, {"b": 1, "a": [2.5]})
    assert path.read_text() == '{\n  "a": [\n    2.5\n  ],\n  "b": 1\n}'
    with pytest.raises(ValueError, match="Out of range float values are not JSON compliant"):
        file_io.write_json_atomic(path, {"a": math.nan})
    assert path.read_text() == '{\n  "a": [\n    2.5\n  ],\n  "b": 1\n}'
    assert os.listdir(tmp_path) == ["metrics.json"]


def test_an_atomic_write_is_synced_before_its_rename_and_readable_by_all(
    tmp_path: Path, monkeypatch
) -> None:
    # Kills dropping the fsync (in sync_to_disk) and the chmod: mkstemp's files are 0600.
    path = tmp_path / "results.md"
    synced: list[tuple[str, bool]] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        synced.append((Path(os.readlink(f"/proc/self/fd/{fd}")).name, path.exists()))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    file_io.write_atomic(path, lambda tmp: tmp.write_text("table"))
    [(name, published)] = synced
    assert name.startswith(".results.md.") and name.endswith(".tmp") and not published
    assert path.read_text() == "table" and path.stat().st_mode & 0o777 == 0o644


def test_a_write_the_os_refuses_is_one_line_naming_the_path(tmp_path: Path) -> None:
    # Kills turning the OSError into a LayerftError only for another path, or not at all.
    (tmp_path / "file").write_text("")
    path = tmp_path / "file" / "results.md"
    with pytest.raises(LayerftError) as info:
        file_io.write_all_atomic({tmp_path / "ok.md": lambda t: t.write_text("x"),
                                  path: lambda t: t.write_text("y")})  # fmt: skip
    assert str(info.value) == f"cannot write {path}: File exists"
    assert os.listdir(tmp_path) == ["file"]  # the first was staged, not renamed, and removed


def test_a_files_digest_follows_an_edit_that_keeps_its_size(tmp_path: Path) -> None:
    # Kills keying the digest cache by size alone (mtime dropped): a same-size edit kept the
    # old digest, and a sweep took changed data for the data its results were trained on.
    path = tmp_path / "train.jsonl"
    path.write_text("aaaa")
    first = file_io.file_sha256(path)
    path.write_text("bbbb")
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    assert first == hashlib.sha256(b"aaaa").hexdigest()
    assert file_io.file_sha256(path) == hashlib.sha256(b"bbbb").hexdigest()


# --- parts and layer_split -----------------------------------------------------------------------


def tiny_task_model(num_layers: int = 2) -> TaskModel:
    return TaskModel(tiny_backbone(num_layers), torch.nn.Linear(8, 2))


def test_parameter_counts_are_exact_and_list_no_other_part_where_none_is() -> None:
    # Kills counting tensors instead of their elements and listing `other` where no parameter is.
    model = tiny_task_model(2)
    total = sum(p.numel() for p in model.parameters())
    set_trainable(model, ["layer.1", "head"])
    layer1 = sum(p.numel() for p in model.backbone.encoder.layer[1].parameters())
    assert count_parameters(model, parameter_parts(model)) == {
        "total_params": total, "trainable_params": layer1 + 18,
        "trainable_params/embeddings": 0, "trainable_params/layer.0": 0,
        "trainable_params/layer.1": layer1, "trainable_params/adapters": 0,
        "trainable_params/head": 18,
    }  # fmt: skip


def test_adapters_are_keyed_by_the_layer_that_holds_them() -> None:
    # Kills numbering the layers top first in adapter_layers (layer 0's adapters scaled as 1's).
    model = tiny_task_model(2)
    added = add_adapters(encoder_layers(model.backbone), [0], AdapterConfig(bottleneck=2))
    keys = adapter_layers(model)
    assert len(keys) == 4 * len(added) == 8  # attention and ffn: down and up, weight and bias
    assert set(keys.values()) == {"layer.0.adapters"}


def test_a_split_setting_both_num_lower_and_fraction_is_refused() -> None:
    # Kills `(num_lower is None) == (fraction is None)` -> both None only.
    with pytest.raises(LayerftError, match="^layer_split: set exactly one of num_lower, fraction"):
        Stage1Split(num_lower=2, fraction=0.5)


# --- adapters ------------------------------------------------------------------------------------


def test_an_adapters_width_rounds_down_and_is_at_least_one() -> None:
    # Kills dropping `max(1, ...)` (a zero-width adapter) and `int` -> `round`.
    assert AdapterConfig(reduction_factor=64.0).width(32) == 1
    assert AdapterConfig(reduction_factor=12.0).width(32) == 2  # 2.67
    assert AdapterConfig(bottleneck=5, reduction_factor=64.0).width(32) == 5


def test_an_adapter_applies_its_nonlinearity_between_down_and_up() -> None:
    # Kills `up(act(down(x)))` -> `up(down(x))`: relu zeroes a negative bottleneck.
    adapter = BottleneckAdapter(2, AdapterConfig(bottleneck=1, nonlinearity=Nonlinearity.relu))
    with torch.no_grad():
        adapter.down.weight.copy_(torch.tensor([[-1.0, -1.0]]))
        adapter.up.weight.copy_(torch.tensor([[1.0], [1.0]]))
    hidden = torch.tensor([[[1.0, 1.0]]])
    assert adapter(hidden).tolist() == [[[1.0, 1.0]]]
    assert adapter(-hidden).tolist() == [[[1.0, 1.0]]]  # -1 + relu(2) * 1


def test_an_adapters_weights_are_drawn_at_its_init_std() -> None:
    # Kills a fixed std in place of `cfg.init_std`: init_std=0 gives an exact identity.
    adapter = BottleneckAdapter(4, AdapterConfig(bottleneck=2, init_std=0.0))
    assert not adapter.down.weight.any() and not adapter.up.weight.any()


def test_a_grid_param_with_one_value_still_names_its_job_folders(tmp_path: Path) -> None:
    # Kills dropping the grid's params from grid_jobs' swept keys: `seed: 1` is no sweep
    # override, yet the grid sets it and Hydra names the job folder by it.
    folder = grid_folder(
        tmp_path, "one", "    params:\n      seed: 1\n      tuning_mode: full,lora\n"
    )
    overrides = [f"hydra.searchpath=[file://{folder}]", "model=tiny", "injection_task=none"]
    plan = expand("one", [*overrides, "tracker=none", f"cache_dir={tmp_path}"], tmp_path / "out")
    assert [c.label for c in plan] == ["seed=1,tuning_mode=full", "seed=1,tuning_mode=lora"]


def test_the_sampler_keeps_the_highest_rss_it_saw(monkeypatch) -> None:
    # Kills `max(peak, rss)` -> the last sample: RSS falls back after the phase's peak.
    peak = memory.PeakMemory(interval=0.0)
    samples = iter([100, 500, 200])

    def memory_info() -> SimpleNamespace:
        rss = next(samples)
        if rss == 200:
            peak._stop.set()
        return SimpleNamespace(rss=rss)

    monkeypatch.setattr(peak, "_process", SimpleNamespace(memory_info=memory_info))
    peak._sample()
    assert peak.peak_rss == 500


# --- charsmap (its only other test is in a module marked slow) ----------------------------------


def test_a_precompiled_charsmap_maps_characters_sharing_utf8_prefixes() -> None:
    # Kills a dropped HAS_LEAF bit, an array cut short of `base | 0xFF`, replacements without
    # their NUL, and keys with a NUL or empty let through (tests/test_e5_offline.py is slow-only).
    table = {"Ａ": "A", "Ｂ": "BB", "ａ": "", "한": "韓", "항": "港", "…": "...", "\t": " "}
    normaliser = normalizers.Precompiled(build_precompiled_charsmap(table))
    assert normaliser.normalize_str("ＡＢａx한항국…\t") == "ABBx韓港국... "
    for bad in ({"": "x"}, {"a\0": "x"}):
        with pytest.raises(ValueError, match="^keys must be non-empty and contain no NUL byte$"):
            build_precompiled_charsmap(bad)


@pytest.mark.parametrize("factor", [0.0, 1e-308, 0.99])
def test_an_adapter_reduction_factor_below_one_is_refused(factor: float) -> None:
    # Zero divided the hidden size by zero at build time, 1e-308 overflowed int() (after stage 1),
    # and below 1 the "bottleneck" is wider than the layer.
    with pytest.raises(LayerftError) as info:
        AdapterConfig(reduction_factor=factor)
    assert str(info.value) == (
        "adapter: reduction_factor must be >= 1 (the width is hidden size / factor; "
        f"tuning_mode.adapter.bottleneck sets any width), got {factor}"
    )
    assert AdapterConfig(reduction_factor=1.0).width(32) == 32
    with pytest.raises(LayerftError, match=r"^adapter: init_std must be >= 0, got -0.001$"):
        AdapterConfig(init_std=-1e-3)
    assert AdapterConfig(init_std=0.0).init_std == 0.0
