"""SentencePiece's precompiled character map, built from a code point -> string table.

Serves `model=e5_small_offline` (layerft/e5_offline.py): `tokenizers.normalizers.Precompiled` is the
one normaliser that applies a many-entry character table, and it only reads SentencePiece's binary
form. That form is `uint32 trie size in bytes`, a darts-clone double-array trie over the UTF-8
keys whose values are offsets into the second part, and the replacements, each NUL-terminated.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping

# darts-clone unit bits: a unit is a leaf (bit 31, value in bits 0-30) or an inner unit holding
# its label (bits 0-7), whether a key ends here (bit 8) and its children's offset (bits 10-31).
IS_LEAF = 1 << 31
HAS_LEAF = 1 << 8
MAX_OFFSET = 1 << 21  # larger offsets need darts-clone's shifted encoding; this trie stays small


def build_precompiled_charsmap(table: Mapping[str, str]) -> bytes:
    """The precompiled charsmap that replaces each key of `table` by its value (keys non-empty)."""
    replacements = bytearray()
    values: dict[bytes, int] = {}
    for key, value in sorted(table.items()):
        values[key.encode()] = len(replacements)
        replacements += value.encode() + b"\0"
    units = build_double_array(values)
    trie = struct.pack(f"<{len(units)}I", *units)
    return struct.pack("<I", len(trie)) + trie + bytes(replacements)


def build_double_array(values: Mapping[bytes, int]) -> list[int]:
    """A darts-clone double array mapping each byte string to its value (< 2**31).

    Children of the node at `pos` live at `base ^ label`, `base = pos ^ offset`; a key's value
    sits in a leaf unit at `base ^ 0`. Bases are unique, so a missing label never lands on a
    unit carrying that label.
    """
    if any(not key or 0 in key for key in values):
        raise ValueError("keys must be non-empty and contain no NUL byte")
    units = [0]
    used = {0}  # the root's slot
    bases: set[int] = set()
    # (position of the node, keys below it with the prefix already consumed stripped)
    pending: list[tuple[int, dict[bytes, int]]] = [(0, dict(values))]
    while pending:
        pos, below = pending.pop()
        children: dict[int, dict[bytes, int]] = {}
        ending: int | None = None
        for key, value in below.items():
            if key:
                children.setdefault(key[0], {})[key[1:]] = value
            else:
                ending = value
        labels = sorted(children) + ([0] if ending is not None else [])
        base = _free_base(labels, used, bases)
        bases.add(base)
        size = (base | 0xFF) + 1  # every `base ^ byte` a lookup may probe must exist
        units.extend([0] * max(0, size - len(units)))
        offset = pos ^ base
        if offset >= MAX_OFFSET:
            raise ValueError("double array too large for the plain offset encoding")
        units[pos] |= offset << 10 | (HAS_LEAF if ending is not None else 0)
        for label in labels:
            used.add(base ^ label)
        if ending is not None:
            units[base] = IS_LEAF | ending
        for label, rest in children.items():
            units[base ^ label] = label
            pending.append((base ^ label, rest))
    return units


def _free_base(labels: list[int], used: set[int], bases: set[int]) -> int:
    # Walk the free slots upward for the first label; the rest must fit around it.
    slot = 1
    while True:
        if slot not in used:
            base = slot ^ labels[0]
            if base not in bases and all(base ^ label not in used for label in labels):
                return base
        slot += 1
