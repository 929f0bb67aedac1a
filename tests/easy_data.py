"""An easy generated topic task in AG News's columns: one keyword in each text names its class.

The tiny random BERT learns it to well above chance in a few seconds, so a test can tell a
trainer that trains from one that does not (a zero learning rate, a skipped step).
"""

from __future__ import annotations

import json
import random
from pathlib import Path

# One keyword per AG News class (World, Sports, Business, Sci/Tech), among shared filler words.
KEYWORDS = ("war", "goal", "bank", "chip")
FILLER = [
    "the",
    "a",
    "cat",
    "dog",
    "sat",
    "ran",
    "on",
    "under",
    "mat",
    "park",
    "big",
    "small",
    "red",
    "blue",
    "old",
    "new",
]
CHANCE = 1 / len(KEYWORDS)


def write_keyword_split(path: Path, size: int, seed: int) -> Path:
    """Write `size` JSON lines of {text, label}; the label is the index of the keyword in the text."""
    rng = random.Random(seed)
    with path.open("w") as out:
        for _ in range(size):
            label = rng.randrange(len(KEYWORDS))
            words = [rng.choice(FILLER) for _ in range(rng.randint(3, 8))]
            words.insert(rng.randrange(len(words) + 1), KEYWORDS[label])
            out.write(json.dumps({"text": " ".join(words), "label": label}) + "\n")
    return path


def keyword_task(folder: Path, train: int = 400, validation: int = 200) -> list[str]:
    """Overrides that make the target task the keyword task, its files written into `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    train_file = write_keyword_split(folder / "train.jsonl", train, seed=0)
    dev_file = write_keyword_split(folder / "validation.jsonl", validation, seed=1)
    return [
        "target_task=ag_news",
        f"target_task.data_files.train={train_file}",
        f"target_task.data_files.validation={dev_file}",
    ]
