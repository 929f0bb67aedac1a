"""Backbones: the number of positions a model takes, and the dtype its weights load in."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import huggingface_hub
import pytest
import torch
from compose import compose_run
from transformers import BertConfig, BertModel, RobertaConfig, RobertaModel

from layerft import model as model_module
from layerft.errors import LayerftError
from layerft.model import ModelConfig, load_backbone, load_tokenizer
from layerft.model_limits import (
    backbone_config,
    check_max_length,
    check_room_for_text,
    check_tokenizer_fits,
    max_sequence_length,
    warn_unrun_code,
)
from layerft.stage_data import load_stage_data
from layerft.trainer_config import TrainerConfig


@pytest.fixture(scope="module")
def roberta_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small RoBERTa-shaped model in the Hugging Face layout: 66 position embeddings, pad id 1."""
    folder = tmp_path_factory.mktemp("roberta")
    config = RobertaConfig(
        vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=32, max_position_embeddings=66, pad_token_id=1,
    )  # fmt: skip
    RobertaModel(config, add_pooling_layer=False).save_pretrained(folder)
    return folder


def test_positions_of_tiny_and_of_a_package_model() -> None:
    assert max_sequence_length(compose_run("model=tiny").model) == 512
    tiny = compose_run("model=tiny", "model.tiny.max_position_embeddings=64").model
    assert max_sequence_length(tiny) == 64
    assert max_sequence_length(compose_run("model=minilm").model) == 512  # BERT: all of them


def test_roberta_positions_start_after_the_padding_index(roberta_dir: Path) -> None:
    cfg = ModelConfig(name="roberta", hub_id=str(roberta_dir))
    usable = max_sequence_length(cfg)
    assert usable == 66 - 1 - 1
    # The model itself agrees: `usable` tokens run, one more indexes past the position table.
    model = RobertaModel.from_pretrained(roberta_dir, add_pooling_layer=False)
    model(input_ids=torch.full((1, usable), 5))
    with pytest.raises((IndexError, RuntimeError)):
        model(input_ids=torch.full((1, usable + 1), 5))


def test_max_length_beyond_the_positions_fails_naming_the_key(roberta_dir: Path) -> None:
    cfg = compose_run("model=tiny", "target_task.max_length=600")
    unpadded = TrainerConfig()  # (on a CPU: no multiple)
    with pytest.raises(LayerftError) as info:
        check_max_length(cfg.model, cfg.target_task, "target_task", None, unpadded)
    assert str(info.value) == (
        "target_task.max_length=600 exceeds the model's 512 positions (model 'tiny')"
    )
    task = compose_run("model=tiny").target_task
    check_max_length(cfg.model, task, "target_task", None, unpadded)  # 64 fits
    roberta = ModelConfig(name="roberta", hub_id=str(roberta_dir))
    task = compose_run("target_task.max_length=65").target_task
    with pytest.raises(LayerftError, match=r"max_length=65 exceeds the model's 64 positions"):
        check_max_length(roberta, task, "target_task", backbone_config(roberta), unpadded)


def test_a_batch_padded_past_the_positions_fails_naming_the_multiple(
    roberta_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A BERT-style model: a RuntimeError in the position embeddings at the first such batch
    cfg = compose_run("model=tiny", "model.tiny.max_position_embeddings=64", "target_task.max_length=60")  # fmt: skip
    check_max_length(cfg.model, cfg.target_task, "target_task", None, TrainerConfig(pad_to_multiple_of=16))  # fmt: skip
    with pytest.raises(LayerftError) as info:
        check_max_length(cfg.model, cfg.target_task, "target_task", None, TrainerConfig(pad_to_multiple_of=13))  # fmt: skip
    assert str(info.value) == (
        "trainer.pad_to_multiple_of=13 pads target_task.max_length=60 to 65 tokens, past the "
        "model's 64 positions (model 'tiny'); set trainer.pad_to_multiple_of=1, or another "
        "max_length"
    )
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # null pads to 8 on a GPU
    cfg = compose_run("model=tiny", "model.tiny.max_position_embeddings=62", "target_task.max_length=60")  # fmt: skip
    with pytest.raises(
        LayerftError, match=r"^trainer.pad_to_multiple_of=8 \(null: 8 on a GPU\) pads"
    ):
        check_max_length(cfg.model, cfg.target_task, "target_task", None, TrainerConfig())
    # A RoBERTa-style model pads at its padding index: only its whole table (66) bounds a batch
    roberta = ModelConfig(name="roberta", hub_id=str(roberta_dir))
    config = backbone_config(roberta)
    task = compose_run("target_task.max_length=60").target_task
    check_max_length(roberta, task, "target_task", config, TrainerConfig(pad_to_multiple_of=13))
    with pytest.raises(LayerftError, match=r"to 67 tokens, past the model's 66 positions"):
        check_max_length(roberta, task, "target_task", config, TrainerConfig(pad_to_multiple_of=67))


@pytest.mark.parametrize("group", ["target_task", "injection_task"])
def test_max_length_with_no_room_beside_the_special_tokens_fails_before_data_loads(
    group: str,
) -> None:
    # Below the special tokens' count a fast tokenizer leaves a text whole: a 600-token review
    # at max_length=1 overran the position table mid-training, after a warning that it was cut.
    cfg = compose_run("model=tiny", "injection_task=demo_pos", f"{group}.max_length=2")
    with pytest.raises(LayerftError) as info:
        load_stage_data(cfg)
    assert str(info.value) == (
        f"{group}.max_length=2 leaves no room for a token of the text: the tokenizer adds up to 2 "
        "special tokens (to one text) and does not truncate below that; set it to at least 3"
    )
    tokenizer = load_tokenizer(cfg.model)
    check_room_for_text(tokenizer, compose_run(f"{group}.max_length=3").target_task, group)
    # At 4 a pair keeps one text: `[CLS] [SEP] x [SEP]` trained SNLI on hypotheses alone.
    pair = ("target_task=snli", "target_task.max_length=4")
    with pytest.raises(LayerftError) as info:
        check_room_for_text(tokenizer, compose_run(*pair).target_task, group)
    assert str(info.value) == (
        f"{group}.max_length=4 leaves no room for a token of each text: the tokenizer adds up to 3 "
        "special tokens (to a pair of texts) and does not truncate below that; set it to at least 5"
    )
    check_room_for_text(tokenizer, compose_run("target_task=snli", "target_task.max_length=5").target_task, group)  # fmt: skip
    assert len(tokenizer("a b c d e f", truncation=True, max_length=1)["input_ids"]) == 8  # whole


def test_weights_load_in_float32(tmp_path: Path) -> None:
    # transformers 5 keeps a checkpoint's dtype by default; AdamW on bf16 master weights degrades.
    config = BertConfig(
        vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=32,
    )  # fmt: skip
    BertModel(config, add_pooling_layer=False).to(torch.bfloat16).save_pretrained(
        tmp_path, safe_serialization=True
    )
    model = load_backbone(ModelConfig(name="bf16", hub_id=str(tmp_path)))
    assert {p.dtype for p in model.parameters()} == {torch.float32}


def tiny_bert_config(folder: Path) -> BertConfig:
    """A one-layer BERT config, saved in `folder` as a model folder's config.json."""
    config = BertConfig(
        vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=32,
    )  # fmt: skip
    config.save_pretrained(folder)
    return config


def test_a_local_folder_without_safetensors_or_a_missing_one_says_so(tmp_path: Path) -> None:
    # Neither is the network's fault: the messages name the folder, never the hub or its cache.
    config = tiny_bert_config(tmp_path)
    torch.save(
        BertModel(config, add_pooling_layer=False).state_dict(), tmp_path / "pytorch_model.bin"
    )
    with pytest.raises(LayerftError) as info:
        load_backbone(ModelConfig(name="bin", hub_id=str(tmp_path)))
    message = str(info.value)
    assert message.startswith(f"model 'bin': could not load the folder {tmp_path} (")
    assert "safetensors only" in message and "Hugging Face cache" not in message
    missing = tmp_path / "nowhere"
    with pytest.raises(LayerftError, match=f"^model 'x': model.hub_id {missing}: no such folder$"):
        load_backbone(ModelConfig(name="x", hub_id=str(missing)))


def test_a_folder_without_the_tokenizers_files_fails_before_data_loads(tmp_path: Path) -> None:
    # transformers 5 builds an empty BERT tokenizer (5 tokens) from such a folder: every word was
    # [UNK], and the run trained and finished without a word.
    config = BertConfig(
        vocab_size=300, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=32,
    )  # fmt: skip
    BertModel(config, add_pooling_layer=False).save_pretrained(tmp_path)
    cfg = compose_run("model=minilm", "model.package=null", f"model.hub_id={tmp_path}")
    with pytest.raises(LayerftError) as info:
        load_stage_data(cfg)
    assert str(info.value) == (
        f"model 'minilm': its tokenizer knows 5 tokens for the model's 300 embeddings, so text "
        f"would read as unknown tokens; {tmp_path} lacks the tokenizer's files (tokenizer.json, or "
        "vocab.txt / a sentencepiece model, with tokenizer_config.json)"
    )
    minilm = compose_run("model=minilm").model  # a whole tokenizer: 30522 tokens, 30522 embeddings
    check_tokenizer_fits(minilm, load_tokenizer(minilm), backbone_config(minilm))


@pytest.mark.parametrize("vocab_size", [300, 100_000])
def test_a_folder_with_another_models_tokenizer_fails_before_data_loads(tmp_path, vocab_size):
    # Weights of 300 embeddings with MiniLM's 30,522-token tokenizer: training stopped with torch's
    # "IndexError: index out of range in self"; of 100,000, most would go unused.
    config = BertConfig(
        vocab_size=vocab_size, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=32,
    )  # fmt: skip
    BertModel(config, add_pooling_layer=False).save_pretrained(tmp_path)
    minilm = compose_run("model=minilm").model
    load_tokenizer(minilm).save_pretrained(tmp_path)
    cfg = compose_run("model=minilm", "model.package=null", f"model.hub_id={tmp_path}")
    with pytest.raises(LayerftError) as info:
        load_stage_data(cfg)
    known = (
        f"model 'minilm': its tokenizer knows 30522 tokens for the model's {vocab_size} embeddings"
    )
    assert str(info.value) == (
        f"{known}: a token id past 299 has no embedding; {tmp_path}'s tokenizer is not the one its "
        "weights were trained with"
        if vocab_size == 300
        else f"{known}, so most embeddings would go unused; {tmp_path}'s tokenizer files are not "
        "the ones its weights were trained with"
    )


def _weights_and_minilm_tokenizer(folder: Path, vocab_size: int) -> None:
    """Weights of `vocab_size` embeddings beside MiniLM's tokenizer (30,522 tokens)."""
    config = BertConfig(
        vocab_size=vocab_size, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=32,
    )  # fmt: skip
    BertModel(config, add_pooling_layer=False).save_pretrained(folder)
    load_tokenizer(compose_run("model=minilm").model).save_pretrained(folder)


def test_a_packages_or_hub_snapshots_smaller_tokenizer_is_named_as_such(tmp_path, monkeypatch):
    # The tokenizer files were looked for under `package` (or the hub id) taken as a path from the
    # working folder: found nowhere, so the message said they were missing, not mismatched.
    package = tmp_path / "site" / "layerft_test_vocab_pkg"
    (package / "model").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    _weights_and_minilm_tokenizer(package / "model", 100_000)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    snapshot = tmp_path / "hub" / "models--acme--big-vocab" / "snapshots" / ("1" * 40)
    _weights_and_minilm_tokenizer(snapshot, 100_000)
    (snapshot.parents[1] / "refs").mkdir()
    (snapshot.parents[1] / "refs" / "main").write_text("1" * 40)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    known = "its tokenizer knows 30522 tokens for the model's 100000 embeddings, so most"
    for source, where in (
        ("model.package=layerft_test_vocab_pkg", package.resolve() / "model"),
        ("model.hub_id=acme/big-vocab", "acme/big-vocab"),
    ):
        model = compose_run("model=minilm", "model.package=null", source).model
        with pytest.raises(LayerftError) as info:
            check_tokenizer_fits(model, load_tokenizer(model), backbone_config(model), tmp_path)
        assert str(info.value) == (
            f"model 'minilm': {known} embeddings would go unused; {where}'s tokenizer files are "
            "not the ones its weights were trained with"
        )


@pytest.mark.parametrize(
    "config_json", [None, {"hidden_size": 16}], ids=["no config.json", "no model_type"]
)
def test_a_folder_transformers_cannot_build_from_names_the_folder_and_what_it_needs(
    tmp_path: Path, config_json: dict[str, int] | None
) -> None:
    # transformers raises ValueError here (not OSError as for missing weights): still one line.
    if config_json is not None:
        (tmp_path / "config.json").write_text(json.dumps(config_json))
    with pytest.raises(LayerftError) as info:
        max_sequence_length(ModelConfig(name="odd", hub_id=str(tmp_path)))
    assert str(info.value) == (
        f"model 'odd': could not load the folder {tmp_path} (Unrecognized model in {tmp_path}. "
        "Should have a `model_type` key in its config.json.); it needs config.json, the "
        "tokenizer's files and model.safetensors (weights load as safetensors only: convert a "
        ".bin with safetensors.torch.save_file)"
    )


def test_a_folder_with_custom_code_is_refused_naming_trust_remote_code(tmp_path: Path) -> None:
    tiny_bert_config(tmp_path)
    custom = json.loads((tmp_path / "config.json").read_text())
    custom |= {"model_type": "evil", "auto_map": {"AutoConfig": "evil.EvilConfig"}}
    (tmp_path / "config.json").write_text(json.dumps(custom))
    (tmp_path / "evil.py").write_text(f"open({str(tmp_path / 'ran')!r}, 'w')\n")
    with pytest.raises(LayerftError) as info:
        max_sequence_length(ModelConfig(name="evil", hub_id=str(tmp_path)))
    assert str(info.value) == (
        f"model 'evil': {tmp_path} contains custom code (auto_map); set "
        "model.trust_remote_code=true only if you trust it, as that runs the folder's code"
    )
    assert not (tmp_path / "ran").exists()


def test_custom_code_a_known_model_type_loads_without_is_warned_about(tmp_path, caplog) -> None:
    # transformers builds its own BertModel for model_type bert, silently ignoring auto_map.
    config = tiny_bert_config(tmp_path)
    BertModel(config, add_pooling_layer=False).save_pretrained(tmp_path)
    custom = json.loads((tmp_path / "config.json").read_text())
    custom |= {"vocab_size": 30522, "auto_map": {"AutoModel": "modeling_x.XModel"}}
    (tmp_path / "config.json").write_text(json.dumps(custom))
    (tmp_path / "modeling_x.py").write_text(f"open({str(tmp_path / 'ran')!r}, 'w')\n")
    minilm = compose_run("model=minilm").model
    load_tokenizer(minilm).save_pretrained(tmp_path)
    cfg = compose_run("model=minilm", "model.package=null", f"model.hub_id={tmp_path}")
    with caplog.at_level(logging.WARNING, logger="layerft.model_limits"):
        load_stage_data(cfg)  # once per run, before its data loads
    assert [r.getMessage() for r in caplog.records if r.name == "layerft.model_limits"] == [
        "model 'minilm': its config.json names its own code (auto_map {\"AutoModel\": "
        '"modeling_x.XModel"}), which runs only with model.trust_remote_code=true; this run '
        "uses transformers' own bert classes"
    ]
    assert not (tmp_path / "ran").exists()
    del custom["auto_map"]
    (tmp_path / "config.json").write_text(json.dumps(custom))
    caplog.clear()
    warn_unrun_code(cfg.model, backbone_config(cfg.model))
    assert not caplog.records


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """HF_HUB_OFFLINE, as CI sets it: no reachability check of the hub before the loader runs."""
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)


def test_a_mistyped_relative_folder_is_named_as_one(tmp_path, monkeypatch, offline) -> None:
    # `models/minilmm` is read as a hub id (no ./ before it): the error blamed the hub alone.
    monkeypatch.chdir(tmp_path)
    tiny_bert_config(tmp_path / "models" / "minilm")  # a folder of model folders
    (tmp_path / "klue" / "nli").mkdir(parents=True)  # a data folder named as a hub organisation
    for hub_id, typo in (("models/minilmm", True), ("org/model", False), ("klue/bert", False)):
        with pytest.raises(LayerftError) as info:
            max_sequence_length(ModelConfig(name="m", hub_id=hub_id))
        hint = f"; no folder {hub_id} either (models holds model folders); offline,"
        assert hint in str(info.value) if typo else "either (" not in str(info.value), info.value


def test_an_unreadable_folder_beside_a_mistyped_one_leaves_the_error_one_line(
    tmp_path, monkeypatch, offline
) -> None:
    # `data/` on a mounted volume holds a `lost+found` only root may read: the hint's look into
    # the folders beside `data/bert` raised PermissionError, a traceback instead of the message.
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data" / "lost+found").mkdir(parents=True)
    is_file = Path.is_file

    def unreadable(path: Path) -> bool:
        if "lost+found" in path.parts:
            raise PermissionError(13, "Permission denied", str(path))
        return is_file(path)

    monkeypatch.setattr(Path, "is_file", unreadable)
    with pytest.raises(LayerftError) as info:
        max_sequence_length(ModelConfig(name="m", hub_id="data/bert"))
    assert "could not load 'data/bert'" in str(info.value) and "either (" not in str(info.value)


@pytest.mark.parametrize("status", [401, 403])
def test_a_hub_refusal_says_authentication_or_access_not_connection(status: int, offline) -> None:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        http = RuntimeError("Client error")  # huggingface_hub's HfHubHTTPError carries `response`
        http.response = SimpleNamespace(status_code=status)  # type: ignore[attr-defined]
        raise OSError("There was a specific connection error when trying to load x:") from http

    cfg = ModelConfig(name="gated", hub_id="org/gated")
    with pytest.raises(LayerftError) as info:
        model_module.from_pretrained(SimpleNamespace(from_pretrained=refuse), cfg, None)
    assert str(info.value) == (
        f"model 'gated': the hub refused 'org/gated' (HTTP {status}: authentication or access); "
        "check HF_TOKEN, or accept the model's terms on its page"
    )


def test_a_hub_model_without_safetensors_names_revision_and_conversion(offline) -> None:
    def bin_only(*args: Any, **kwargs: Any) -> Any:  # transformers' words for it
        raise OSError(
            "org/old does not appear to have a file named model.safetensors. Please do not set "
            "`use_safetensors=True`."
        )

    cfg = ModelConfig(name="old", hub_id="org/old")
    with pytest.raises(LayerftError) as info:
        model_module.from_pretrained(SimpleNamespace(from_pretrained=bin_only), cfg, None)
    message = str(info.value)
    assert message.startswith("model 'old': 'org/old' has no model.safetensors at revision main")
    assert (
        "model.revision" in message
        and "offline" not in message
        and "use_safetensors" not in message
    )


def test_the_revision_asked_and_remote_code_off_reach_from_pretrained(tmp_path: Path) -> None:
    # A pinned revision (a safetensors PR ref) that never reached the hub call loaded main.
    from layerft.model import from_pretrained

    calls: list[tuple[str, dict[str, Any]]] = []

    class Loader:
        @staticmethod
        def from_pretrained(path: str, **kwargs: Any) -> str:
            calls.append((path, kwargs))
            return "loaded"

    cfg = ModelConfig(name="x", hub_id=str(tmp_path), revision="refs/pr/1")
    assert from_pretrained(Loader, cfg, None) == "loaded"
    [(path, kwargs)] = calls
    assert (path, kwargs["revision"], kwargs["trust_remote_code"]) == (
        str(tmp_path),
        "refs/pr/1",
        False,
    )
