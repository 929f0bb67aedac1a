"""Task heads as transformers builds them: `model.pretrained_pooler` (sentence heads start from the
checkpoint's pooler, as BERT's do), and losses under mixed precision."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch
from compose import compose_config, compose_run
from transformers import BertConfig, BertForSequenceClassification, BertModel

from layerft.config import resolve_config
from layerft.errors import LayerftError
from layerft.fingerprint import config_fingerprint
from layerft.heads import build_task_model
from layerft.model import ModelConfig, load_backbone
from layerft.stage1_key import Stage1Key
from layerft.stage_models import fresh_model
from layerft.task import TaskConfig


def bert_folder(folder: Path, pooler: bool) -> Path:
    """A small BERT in the Hugging Face layout, with or without pooler weights."""
    config = BertConfig(
        vocab_size=60, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=32,
    )  # fmt: skip
    torch.manual_seed(0)
    model = BertModel(config, add_pooling_layer=pooler)
    if pooler:  # unlike a fresh one, far from anything a head would start at
        torch.nn.init.normal_(model.pooler.dense.weight, std=0.5)
        torch.nn.init.normal_(model.pooler.dense.bias, std=0.5)
    model.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def with_pooler(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return bert_folder(tmp_path_factory.mktemp("bert"), pooler=True)


def task(name: str) -> TaskConfig:
    return compose_run(f"target_task={name}").target_task


def model_of(folder: Path, pretrained_pooler: bool) -> torch.nn.Module:
    cfg = ModelConfig(name="bert", hub_id=str(folder), pretrained_pooler=pretrained_pooler)
    return load_backbone(cfg)


@pytest.mark.parametrize("target", ["demo_sentiment", "klue_sts"])
def test_a_sentence_head_is_bert_for_sequence_classification(with_pooler: Path, target) -> None:
    # Same checkpoint, same classifier: the same outputs, in training mode too (the same seed
    # draws the same dropout masks only where the dropout sits where BERT's does).
    ours = build_task_model(model_of(with_pooler, True), task(target))
    num_labels = 1 if target == "klue_sts" else 2
    bert = BertForSequenceClassification.from_pretrained(with_pooler, num_labels=num_labels)
    bert.classifier.load_state_dict(head_classifier(ours).state_dict())
    ids = torch.randint(5, 60, (3, 7))
    mask = torch.ones_like(ids)
    for mode in (False, True):
        ours.train(mode), bert.train(mode)
        torch.manual_seed(1)
        expected = bert(input_ids=ids, attention_mask=mask).logits
        torch.manual_seed(1)
        output = ours(input_ids=ids, attention_mask=mask)
        got = output["scores"] if target == "klue_sts" else output["logits"]
        torch.testing.assert_close(got, expected.squeeze(-1) if num_labels == 1 else expected)
    # The head owns the pooler: the backbone has none, so no part counts it twice.
    assert not any("pooler" in name for name, _ in ours.backbone.named_parameters())
    assert sum("dense" in name for name, _ in ours.head.named_parameters()) == 2


def head_classifier(model: torch.nn.Module) -> torch.nn.Linear:
    head = model.head
    return (head.head if hasattr(head, "head") else head).classifier


def test_without_it_the_head_starts_fresh_and_the_checkpoints_pooler_is_unused(
    with_pooler: Path,
) -> None:
    saved = BertModel.from_pretrained(with_pooler).pooler.dense.weight
    ours = build_task_model(model_of(with_pooler, False), task("demo_sentiment"))
    assert ours.head.dense.weight.shape == saved.shape
    assert not torch.equal(ours.head.dense.weight, saved)
    with_it = build_task_model(model_of(with_pooler, True), task("demo_sentiment"))
    assert torch.equal(with_it.head.dense.weight, saved)


def test_a_token_head_drops_the_pooler(with_pooler: Path) -> None:
    tagging = compose_run("injection_task=demo_pos").injection_task
    model = build_task_model(model_of(with_pooler, True), tagging)
    assert not any("pooler" in name for name, _ in model.named_parameters())


def test_a_checkpoint_without_a_pooler_fails_naming_the_key(tmp_path: Path) -> None:
    folder = bert_folder(tmp_path, pooler=False)
    with pytest.raises(LayerftError) as info:
        model_of(folder, True)
    assert str(info.value) == (
        f"model 'bert': model.pretrained_pooler=true, but {folder} has no pooler weights "
        "(pooler.dense.bias, pooler.dense.weight missing); set model.pretrained_pooler=false "
        "for a fresh sentence head"
    )


def test_tiny_gets_a_random_pooler_and_keeps_its_other_weights() -> None:
    fresh = build_task_model(load_backbone(compose_run("model=tiny").model), task("demo_sentiment"))
    cfg = compose_run("model=tiny", "model.pretrained_pooler=true")
    pooled = build_task_model(load_backbone(cfg.model), cfg.target_task)
    assert torch.equal(
        fresh.backbone.encoder.layer[-1].output.dense.weight,
        pooled.backbone.encoder.layer[-1].output.dense.weight,
    )
    assert not torch.equal(fresh.head.dense.weight, pooled.head.dense.weight)


def test_the_paper_s_backbone_starts_from_its_pooler_and_minilm_does_not() -> None:
    # MiniLM's checkpoint has a pooler, but an untrained one: its bias is all zeros.
    assert compose_run("model=klue_bert_base").model.pretrained_pooler
    assert compose_run("model=bert_base_uncased").model.pretrained_pooler
    assert not compose_run("model=minilm").model.pretrained_pooler


def fingerprint(*overrides: str) -> str:
    return config_fingerprint(resolve_config(compose_config(*overrides)))


@pytest.mark.parametrize(
    ("target", "changes"), [("klue_nli", True), ("klue_sts", True), ("klue_ner", False)]
)
def test_the_key_changes_the_fingerprint_only_where_a_head_reads_it(target, changes) -> None:
    # A result it does not change keeps its fingerprint (and a resumed sweep reuses it); one it
    # changes reruns.
    on = fingerprint("model=klue_bert_base", f"target_task={target}")
    off = fingerprint(
        "model=klue_bert_base", f"target_task={target}", "model.pretrained_pooler=false"
    )
    assert (on != off) == changes


def test_a_stage1_of_a_token_task_keeps_its_key() -> None:
    def key(*overrides: str) -> str:
        cfg = compose_run("model=klue_bert_base", "injection_task=klue_dp", *overrides)
        return Stage1Key.of(cfg).settings_digest()

    assert key() == key("model.pretrained_pooler=false")


def test_a_regression_loss_under_bf16_keeps_the_gold_scores_exact() -> None:
    # Under autocast the head's scores are bf16: rounding the gold to them made 4.2857 read 4.28125.
    model = build_task_model(load_backbone(compose_run("model=tiny").model), task("klue_sts"))
    ids = torch.randint(5, 60, (4, 6))
    labels = torch.tensor([0.0, 1.4, 4.2857, 4.9])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        output = model(input_ids=ids, attention_mask=torch.ones_like(ids), labels=labels)
    assert output["scores"].dtype == torch.bfloat16
    expected = torch.nn.functional.mse_loss(output["scores"].float(), labels)
    assert output["loss"].item() == pytest.approx(expected.item(), rel=1e-6)


def test_only_a_head_that_reads_the_pooler_needs_its_weights(tmp_path: Path) -> None:
    # bert_base_uncased sets pretrained_pooler; a checkpoint without pooler weights still runs
    # token tasks (where the key changes nothing, as its warning says), and fails a sentence head.
    folder = bert_folder(tmp_path, pooler=False)
    cfg = compose_run(
        "model=bert_base_uncased", f"model.hub_id={folder}", "injection_task=demo_pos"
    )
    assert cfg.model.pretrained_pooler and cfg.injection_task is not None
    tagger = fresh_model(cfg, cfg.injection_task)
    assert not any("pooler" in name for name, _ in tagger.named_parameters())
    with pytest.raises(LayerftError, match=r"model.pretrained_pooler=true, but .* has no pooler"):
        fresh_model(cfg, cfg.target_task)


def test_the_run_seed_sets_the_heads_initial_weights(tmp_path: Path) -> None:
    # Seeds are the sweep's replicates: each must start its head elsewhere, and the same seed
    # from the same place (seed_everything in fresh_model, the one place a run seeds).
    cfg = compose_run("model=tiny", f"cache_dir={tmp_path}")

    def head(seed: int) -> torch.Tensor:
        model = fresh_model(dataclasses.replace(cfg, seed=seed), cfg.target_task)
        return torch.cat([p.detach().flatten() for p in model.head.parameters()])

    assert torch.equal(head(1), head(1))
    assert not torch.equal(head(1), head(2))
