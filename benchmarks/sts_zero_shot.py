"""Zero-shot KLUE-STS: Pearson of the cosine of mean-pooled sentence embeddings with the gold scores.

    python benchmarks/sts_zero_shot.py [--cache-dir DIR]

No training: a quick look at whether a backbone's untouched encoder separates similar Korean
sentences, for model=e5_small_offline (e5's `query: ` prefix) and model=minilm, on the shared
KLUE-STS samples (train and dev files).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from hydra import compose, initialize_config_dir
from transformers import AutoModel, AutoTokenizer

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from layerft.config import register_configs, to_run_config  # noqa: E402
from layerft.e5_offline import mean_pooled_embeddings  # noqa: E402
from layerft.model import ModelConfig, resolve_model_path  # noqa: E402

KLUE_STS = REPO.parent / "shared" / "data" / "klue" / "klue-sts-v1.1"
PREFIXES = {"e5_small_offline": "query: ", "minilm": ""}


def model_config(name: str) -> ModelConfig:
    """The `model=<name>` option as a run composes it."""
    register_configs()
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        return to_run_config(compose("config", overrides=[f"model={name}"])).model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache-dir", type=Path, default=Path("~/.cache/layerft").expanduser())
    args = parser.parse_args()
    rows = [
        row
        for split in ("train", "dev")
        for row in json.loads((KLUE_STS / f"klue-sts-v1.1_{split}.json").read_text())
    ]
    gold = np.array([row["labels"]["real-label"] for row in rows])
    for model_name, prefix in PREFIXES.items():
        folder = resolve_model_path(model_config(model_name), args.cache_dir)
        tokenizer = AutoTokenizer.from_pretrained(folder)
        model = AutoModel.from_pretrained(folder, add_pooling_layer=False).eval()
        first, second = (
            mean_pooled_embeddings(model, tokenizer, [prefix + row[key] for row in rows])
            for key in ("sentence1", "sentence2")
        )
        cosines = (first * second).sum(1).numpy()
        print(f"{model_name}: n={len(rows)} pearson={np.corrcoef(cosines, gold)[0, 1]:.4f}")


if __name__ == "__main__":
    main()
