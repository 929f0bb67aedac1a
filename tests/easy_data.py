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


def write_pair_split(path: Path, size: int, seed: int, compare: bool) -> Path:
    """`size` JSON lines of {sentence1, sentence2, score}. compare: 5 when both sentences name the
    same keyword, else 0 (a bi-encoder learns it fast, the tiny cross-encoder does not); else 5
    when the first names war or goal, else 0."""
    rng = random.Random(seed)

    def sentence(keyword: str) -> str:
        words = [rng.choice(FILLER) for _ in range(rng.randint(2, 5))]
        words.insert(rng.randrange(len(words) + 1), keyword)
        return " ".join(words)

    with path.open("w") as out:
        for _ in range(size):
            first = rng.choice(KEYWORDS)
            second = first if rng.random() < 0.5 else rng.choice(KEYWORDS)
            row = {
                "sentence1": sentence(first),
                "sentence2": sentence(second),
                "score": 5.0 if (first == second if compare else first in KEYWORDS[:2]) else 0.0,
            }
            out.write(json.dumps(row) + "\n")
    return path


def pair_task(
    folder: Path, option: str, compare: bool, train: int = 400, validation: int = 200
) -> list[str]:
    """Overrides that make target task `option` (klue_sts, klue_sts_biencoder) a keyword-pair
    task, its files written into `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    train_file = write_pair_split(folder / "train.jsonl", train, seed=0, compare=compare)
    dev_file = write_pair_split(folder / "validation.jsonl", validation, seed=1, compare=compare)
    return [
        f"target_task={option}",
        f"target_task.data_files.train={train_file}",
        f"target_task.data_files.validation={dev_file}",
        "target_task.label_column=score",
    ]


# A relation named by the keyword between two names: "X war Y" -> relation 0, and so on.
RELATIONS = ("no_relation", "org:founded", "per:employee_of", "per:origin")
NAMES = ("kim", "lee", "park", "choi", "jung", "kang")


def write_relation_split(path: Path, size: int, seed: int) -> Path:
    """`size` JSON lines in KLUE-RE's reader shape; the keyword between the entities is the label."""
    rng = random.Random(seed)
    with path.open("w") as out:
        for _ in range(size):
            label = rng.randrange(len(RELATIONS))
            first, second = rng.sample(NAMES, 2)
            head = " ".join(rng.choice(FILLER) for _ in range(rng.randint(0, 3)))
            prefix = f"{head} " if head else ""
            sentence = f"{prefix}{first} {KEYWORDS[label]} {second} {rng.choice(FILLER)}"
            spans = {}
            for name in (first, second):
                start = sentence.index(f"{name} " if name == first else f" {name} ") + (
                    0 if name == first else 1
                )
                spans[name] = {"word": name, "start": start, "end": start + len(name) - 1}
            # The subject comes second in half of the sentences.
            subject, obj = (first, second) if rng.random() < 0.5 else (second, first)
            row = {
                "sentence": sentence,
                "subject": spans[subject] | {"type": "PER"},
                "object": spans[obj] | {"type": "ORG"},
                "label": RELATIONS[label],
            }
            out.write(json.dumps(row) + "\n")
    return path


def relation_task(folder: Path, train: int = 400, validation: int = 200) -> list[str]:
    """Overrides that make target task klue_re the keyword-relation task (4 of its relations)."""
    folder.mkdir(parents=True, exist_ok=True)
    train_file = write_relation_split(folder / "train.jsonl", train, seed=0)
    dev_file = write_relation_split(folder / "validation.jsonl", validation, seed=1)
    return [
        "target_task=klue_re",
        f"target_task.data_files.train={train_file}",
        f"target_task.data_files.validation={dev_file}",
        f"target_task.label_names=[{','.join(RELATIONS)}]",
    ]
