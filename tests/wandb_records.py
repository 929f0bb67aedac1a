"""Reading W&B's offline run files back in tests.

W&B 0.31's Python package no longer ships a reader of `.wandb` files (its Go core writes and reads
them), so this is a small one: the file is a LevelDB-style log of protobuf `Record`s, whose
message type W&B does ship (`wandb.proto.wandb_internal_pb2`).
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

_BLOCK, _FULL, _LAST = 32768, 1, 4


def read_wandb_records(path: Path) -> list[Any]:
    """The protobuf records of a `.wandb` file (a LevelDB-style log: 7-byte header, 32 KiB blocks)."""
    from wandb.proto import wandb_internal_pb2

    data = path.read_bytes()
    assert data[:4] == b":W&B"
    records, pending, pos = [], b"", 7
    while pos + 7 <= len(data):
        if _BLOCK - pos % _BLOCK < 7:  # a block tail too short for a chunk header is padding
            pos += _BLOCK - pos % _BLOCK
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        pending += data[pos + 7 : pos + 7 + length]
        pos += 7 + length
        if kind in (_FULL, _LAST):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            records.append(record)
            pending = b""
    return records


def wandb_items(items: Any) -> dict[str, Any]:
    """A config or summary update's items as a plain dict (values are JSON-encoded)."""
    return {item.key: json.loads(item.value_json) for item in items}


def records_by_kind(path: Path) -> dict[str, list[Any]]:
    """A `.wandb` file's records grouped by type (run, config, history, summary, artifact, ...)."""
    by_kind: dict[str, list[Any]] = {}
    for record in read_wandb_records(path):
        kind = record.WhichOneof("record_type")
        by_kind.setdefault(kind, []).append(getattr(record, kind))
    return by_kind
