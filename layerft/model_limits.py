"""What the backbone of the `model` config group can hold, read from its config without loading
weights: its positions, depth and width, and the checks a task's `max_length`, the layer split and
the tuning mode must pass before any data loads (a sweep's plan runs the split's too). Loading is
`layerft/model.py`'s."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from layerft.errors import LayerftError
from layerft.layer_split import frozen_injected_layers, resolve_num_lower
from layerft.model import ModelConfig, from_pretrained
from layerft.model_files import TOKENIZER_FILES, files_folder
from layerft.part_decay import check_part_weight_decay
from layerft.task import TaskConfig
from layerft.trainer_config import TrainerConfig
from layerft.tuning_mode import TuningMethod, adapted_layers

if TYPE_CHECKING:
    from layerft.config import RunConfig

log = logging.getLogger(__name__)

# Model types whose position ids start after the padding index (fairseq's make_positions):
# a sequence of n tokens uses positions pad+1 .. pad+n.
POSITIONS_AFTER_PADDING = frozenset({"roberta", "xlm-roberta", "camembert"})


def backbone_config(cfg: ModelConfig, cache_dir: Path | None = None) -> Any | None:
    """The backbone's transformers config (its config.json, no weights); None for `model=tiny`.
    A run reads it once for every check below."""
    if cfg.tiny is not None:
        return None
    from transformers import AutoConfig

    return from_pretrained(AutoConfig, cfg, cache_dir)


def max_sequence_length(cfg: ModelConfig, cache_dir: Path | None = None) -> int:
    """How many tokens one sequence may hold on this backbone (read from its config, no weights)."""
    return _positions(cfg, backbone_config(cfg, cache_dir))


def _positions(cfg: ModelConfig, config: Any | None) -> int:
    """max_sequence_length of the backbone whose config (backbone_config) is `config`."""
    if cfg.tiny is not None:
        return cfg.tiny.max_position_embeddings
    positions = getattr(config, "max_position_embeddings", None)
    if positions is None:
        raise LayerftError(f"model '{cfg.name}': its config names no max_position_embeddings")
    if config.model_type in POSITIONS_AFTER_PADDING:
        return positions - config.pad_token_id - 1
    return positions


def encoder_depth(cfg: ModelConfig, config: Any | None) -> int:
    """How many encoder layers the backbone whose config (backbone_config) is `config` has."""
    if cfg.tiny is not None:
        return cfg.tiny.num_layers
    return int(config.num_hidden_layers)


def check_mode_fits_split(cfg: RunConfig, config: Any | None) -> None:
    """An adapter or LoRA mode whose every layer the split freezes (`layer_split=all` with
    `stage2.policy=freeze` and `tuning_mode=top_adapter`) fails here, not after stage 1."""
    if cfg.injection_task is None or not cfg.tuning_mode.method.reads_layers:
        return
    depth = encoder_depth(cfg.model, config)  # `config`: backbone_config's
    injected = resolve_num_lower(cfg.layer_split.stage1, depth)
    adapted_layers(cfg.tuning_mode, depth, frozen_injected_layers(cfg.layer_split.stage2, injected))


def check_planned_split(cfg: RunConfig, folder: Path | None) -> None:
    """The split's layers, and each part's lr x weight_decay, against the model's depth as a
    sweep's plan can read it, loading nothing (tiny's, or `folder`'s config.json; else no check):
    every job of such a config would fail."""
    config = None
    if cfg.model.tiny is None and folder is None:
        return
    if cfg.model.tiny is None:
        try:
            depth = json.loads((folder / "config.json").read_text())["num_hidden_layers"]
        except (TypeError, OSError, ValueError, KeyError):
            return
        config = SimpleNamespace(num_hidden_layers=depth)
    if cfg.injection_task is not None:
        resolve_num_lower(cfg.layer_split.stage1, encoder_depth(cfg.model, config))
        check_mode_fits_split(cfg, config)
    check_part_weight_decay(cfg, encoder_depth(cfg.model, config))


def warn_wide_mode(cfg: RunConfig, config: Any | None) -> None:
    """Say so when a LoRA rank or an adapter bottleneck is as wide as the layers it adapts (the
    model's hidden size): the run is then no low-rank update, or no bottleneck (and slow)."""
    mode = cfg.tuning_mode
    hidden = cfg.model.tiny.hidden_size if cfg.model.tiny is not None else config.hidden_size
    if mode.method == TuningMethod.lora and mode.lora.rank >= hidden:
        width, key, what = mode.lora.rank, "lora.rank", "a low-rank update"
    elif mode.method == TuningMethod.adapter and mode.adapter.width(hidden) >= hidden:
        width, what = mode.adapter.width(hidden), "a bottleneck"
        key = "adapter.bottleneck" if mode.adapter.bottleneck else "adapter.reduction_factor"
    else:
        return
    log.warning(
        "tuning_mode.%s gives a width of %d, at least the model's hidden size %d (model '%s'): "
        "it is no longer %s", key, width, hidden, cfg.model.name, what,
    )  # fmt: skip


def check_tokenizer_fits(
    cfg: ModelConfig, tokenizer: Any, config: Any | None, cache_dir: Path | None = None
) -> None:
    """Fail when the tokenizer does not fit the backbone's embeddings: more tokens than it has
    (an id past them stops training with an IndexError deep in torch), or far fewer (a folder
    without its tokenizer's files gives transformers' empty BERT tokenizer, 5 tokens, which reads
    every word as [UNK] and trains without a word of complaint). `config`: backbone_config's."""
    if config is None:
        return
    embeddings = getattr(config, "vocab_size", None)
    if embeddings is None or embeddings // 2 <= len(tokenizer) <= embeddings:
        return
    folder = files_folder(cfg, cache_dir)  # a package's, a converted one, a hub id's snapshot
    where = cfg.hub_id or folder or cfg.package or cfg.converted
    known = f"model '{cfg.name}': its tokenizer knows {len(tokenizer)} tokens for the model's"
    known += f" {embeddings} embeddings"
    if len(tokenizer) > embeddings:
        raise LayerftError(
            f"{known}: a token id past {embeddings - 1} has no embedding; {where}'s tokenizer is "
            "not the one its weights were trained with"
        )
    if folder is not None and any(any(folder.glob(name)) for name in TOKENIZER_FILES):
        # the files of a smaller vocabulary than the weights'
        raise LayerftError(
            f"{known}, so most embeddings would go unused; {where}'s tokenizer files are not the "
            "ones its weights were trained with"
        )
    raise LayerftError(
        f"{known}, so text would read as unknown tokens; {where} lacks the tokenizer's files "
        "(tokenizer.json, or vocab.txt / a sentencepiece model, with tokenizer_config.json)"
    )


def check_max_length(
    cfg: ModelConfig, task: TaskConfig, group: str, config: Any | None, trainer: TrainerConfig
) -> None:
    """Fail before any data loads when `task.max_length`, or a batch padded to the trainer's
    multiple, needs more positions than the model has (`config`: backbone_config's)."""
    limit = _positions(cfg, config)
    if task.max_length > limit:
        raise LayerftError(
            f"{group}.max_length={task.max_length} exceeds the model's {limit} positions "
            f"(model '{cfg.name}')"
        )
    multiple = trainer.resolved_pad_multiple()
    padded = -(-task.max_length // multiple) * multiple if multiple else 0
    # A RuntimeError in the position embeddings at the first such batch; a RoBERTa-style model
    # puts padding at its padding index, so only its whole table bounds a padded batch.
    if cfg.tiny is None and config.model_type in POSITIONS_AFTER_PADDING:
        limit = config.max_position_embeddings
    if padded > limit:
        given = "" if trainer.pad_to_multiple_of else " (null: 8 on a GPU)"
        raise LayerftError(
            f"trainer.pad_to_multiple_of={multiple}{given} pads {group}.max_length="
            f"{task.max_length} to {padded} tokens, past the model's {limit} positions "
            f"(model '{cfg.name}'); set trainer.pad_to_multiple_of=1, or another max_length"
        )


def check_room_for_text(tokenizer: Any, task: TaskConfig, group: str) -> None:
    """Fail when `task.max_length` holds no token of each text (of a pair, with two text columns)
    beside the special tokens: below their count a fast tokenizer does not truncate at all, so long
    inputs would outgrow the model's positions; one more, and a pair task trains on one of its two
    texts (with a warning). A biencoder, which encodes its two texts apart, is held to the pair's."""
    pair = len(task.text_columns) > 1
    specials = tokenizer.num_special_tokens_to_add(pair=pair)
    if task.max_length < specials + 1 + pair:
        raise LayerftError(
            f"{group}.max_length={task.max_length} leaves no room for a token of "
            f"{'each text' if pair else 'the text'}: the tokenizer adds up to {specials} special "
            f"tokens (to {'a pair of texts' if pair else 'one text'}) and does not truncate below "
            f"that; set it to at least {specials + 1 + pair}"
        )


def warn_unrun_code(cfg: ModelConfig, config: Any | None) -> None:
    """Warn, once per run, when the model's config (`config`: backbone_config's) names code of its
    own (`auto_map`) that transformers builds the model without: model.trust_remote_code is off
    and its model_type is one transformers knows, so the run trains transformers' class, not the
    folder's code."""
    if config is None or cfg.trust_remote_code:
        return
    if auto_map := getattr(config, "auto_map", None):
        log.warning(
            "model '%s': its config.json names its own code (auto_map %s), which runs only with "
            "model.trust_remote_code=true; this run uses transformers' own %s classes",
            cfg.name, json.dumps(auto_map), config.model_type,
        )  # fmt: skip
