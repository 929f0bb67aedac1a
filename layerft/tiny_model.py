"""The `tiny` backbone of the `model` group: a random BERT of a given shape, its weights a fixed
function of `init_seed`, and a character-level tokenizer built in code (tests and quick runs,
no download). `layerft/model.py` loads them for `model=tiny`; transformers is imported where they
are built, not above, as there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import nn

if TYPE_CHECKING:
    from transformers import BertModel, PreTrainedTokenizerFast


SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")


@dataclass
class TinyConfig:
    """Shape of the random `tiny` BERT; its weights are a fixed function of `init_seed`."""

    hidden_size: int = 32
    num_layers: int = 4
    num_heads: int = 2
    intermediate_size: int = 64
    max_position_embeddings: int = 512
    init_seed: int = 0


def build_tiny_tokenizer() -> PreTrainedTokenizerFast:
    """A character-level tokenizer built in code: ASCII, Latin-1 letters and Hangul syllables."""
    from tokenizers import Regex, Tokenizer, normalizers, pre_tokenizers, processors
    from tokenizers.models import WordLevel
    from transformers import PreTrainedTokenizerFast

    chars = [chr(c) for c in range(33, 127)] + [chr(c) for c in range(0xC0, 0x180)]
    chars += [chr(c) for c in range(0xAC00, 0xD7A4)] + list("‘’“”·…")
    vocab = {token: i for i, token in enumerate([*SPECIAL_TOKENS, *dict.fromkeys(chars)])}
    tokenizer = Tokenizer(WordLevel(vocab, unk_token="[UNK]"))
    # Lowercase only: BERT's accent stripping would decompose Hangul into jamo.
    tokenizer.normalizer = normalizers.Sequence([normalizers.NFC(), normalizers.Lowercase()])
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Split(Regex("."), "isolated")]
    )
    cls, sep = vocab["[CLS]"], vocab["[SEP]"]
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls), ("[SEP]", sep)],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        name_or_path="layerft-tiny-chars",
        model_max_length=512,
        pad_token="[PAD]",
        unk_token="[UNK]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        model_input_names=["input_ids", "token_type_ids", "attention_mask"],
    )


def build_tiny_backbone(cfg: TinyConfig, vocab_size: int, pooler: bool = False) -> BertModel:
    """A small random BERT whose weights depend only on `cfg` (it plays the pre-trained model;
    `pooler` adds a random pooler, drawn after the rest, which stays as without it)."""
    from transformers import BertConfig, BertModel
    from transformers.models.bert.modeling_bert import BertPooler

    config = BertConfig(
        vocab_size=vocab_size,
        hidden_size=cfg.hidden_size,
        num_hidden_layers=cfg.num_layers,
        num_attention_heads=cfg.num_heads,
        intermediate_size=cfg.intermediate_size,
        max_position_embeddings=cfg.max_position_embeddings,
    )
    # Both stages must start from identical "pre-trained" weights, whatever the run's RNG state.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.init_seed)
        model = BertModel(config, add_pooling_layer=False)
        if pooler:
            model.pooler = BertPooler(config)
            nn.init.normal_(model.pooler.dense.weight, std=config.initializer_range)
            nn.init.zeros_(model.pooler.dense.bias)
        return model
