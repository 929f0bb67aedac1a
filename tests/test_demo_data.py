"""Tests of the synthetic demo corpora: determinism, well-formedness, and that syntax matters."""

from __future__ import annotations

import re
from collections import defaultdict
from itertools import pairwise

import numpy as np
import pytest
from compose import compose_run

from layerft.demo_data import (
    _NEGATIVE_ADJS,
    _NEGATIVE_VERBS,
    _POSITIVE_ADJS,
    _POSITIVE_VERBS,
    DEMO_GENERATORS,
    DEMO_SENTIMENT_LABELS,
    generate_demo_pos,
    generate_demo_sentiment,
)

DEMO_POS_TAGS = compose_run("model=tiny").injection_task.label_names

_POSITIVE_WORDS = set(_POSITIVE_ADJS) | {w for pair in _POSITIVE_VERBS for w in pair}
_NEGATIVE_WORDS = set(_NEGATIVE_ADJS) | {w for pair in _NEGATIVE_VERBS for w in pair}
_POS = "(" + "|".join(_POSITIVE_ADJS) + ")"
_NEG = "(" + "|".join(_NEGATIVE_ADJS) + ")"


@pytest.fixture(scope="module")
def pos_records() -> list[dict[str, list[str]]]:
    return generate_demo_pos(2000, seed=0)


@pytest.fixture(scope="module")
def sentiment_records() -> list[dict[str, str]]:
    return generate_demo_sentiment(3000, seed=0)


@pytest.mark.parametrize("name", ["demo_pos", "demo_sentiment"])
def test_same_seed_same_data_and_other_seed_other_data(name: str) -> None:
    generate = DEMO_GENERATORS[name]
    assert generate(200, 7) == generate(200, 7)
    assert generate(200, 7) != generate(200, 8)
    assert len(generate(37, 1)) == 37
    assert generate(0, 1) == []


def test_generators_table_is_read_only() -> None:
    assert set(DEMO_GENERATORS) == {"demo_pos", "demo_sentiment"}
    with pytest.raises(TypeError):
        DEMO_GENERATORS["other"] = generate_demo_pos  # type: ignore[index]


def test_pos_records_are_well_formed(pos_records: list[dict[str, list[str]]]) -> None:
    seen_tags = set()
    for record in pos_records:
        tokens, tags = record["tokens"], record["tags"]
        assert len(tokens) == len(tags) and 3 <= len(tokens) <= 24
        assert all(re.fullmatch(r"[a-z]+|[.,!]", token) for token in tokens)
        assert tags[-1] == "PUNCT"
        seen_tags.update(tags)
        # Article agreement: "a" never precedes a vowel.
        assert not any(a == "a" and b[0] in "aeiou" for a, b in pairwise(tokens))
    assert seen_tags == set(DEMO_POS_TAGS)
    assert len(DEMO_POS_TAGS) == len(set(DEMO_POS_TAGS))


def test_ambiguous_words_get_tags_from_context(pos_records: list[dict[str, list[str]]]) -> None:
    tags_of = defaultdict(set)
    for record in pos_records:
        for token, tag in zip(record["tokens"], record["tags"], strict=True):
            tags_of[token].add(tag)
    expected = {
        "saw": {"VERB", "NOUN"},
        "watch": {"VERB", "NOUN"},
        "book": {"VERB", "NOUN"},
        "like": {"VERB", "ADP"},
        "that": {"DET", "PRON", "SCONJ"},
        "to": {"PART", "ADP"},
        "before": {"ADP", "SCONJ"},
        "fast": {"ADJ", "ADV"},
    }
    for word, tags in expected.items():
        assert tags_of[word] == tags, word


def test_pos_tags_follow_hand_checked_contexts(pos_records: list[dict[str, list[str]]]) -> None:
    for record in pos_records:
        pairs = list(zip(record["tokens"], record["tags"], strict=True))
        for (w1, t1), (w2, t2) in pairwise(pairs):
            if w1 in ("did", "will", "can", "should", "might", "would", "could"):
                assert t1 == "AUX"
            if (w1, t1) == ("did", "AUX"):
                assert (w2, t2) == ("not", "PART")
            if w2 in ("watch", "saw", "book") and t1 in ("DET", "ADJ", "NUM"):
                assert t2 == "NOUN"
            if w2 in ("watch", "like", "book") and t1 in ("AUX", "PART"):
                assert t2 == "VERB"


@pytest.mark.parametrize("size", [1, 2, 7, 100, 1001])
def test_sentiment_labels_are_balanced(size: int) -> None:
    labels = [r["label"] for r in generate_demo_sentiment(size, seed=size)]
    assert set(labels) <= set(DEMO_SENTIMENT_LABELS)
    assert labels.count("positive") in (size // 2, (size + 1) // 2)


def _read_sentiment(text: str) -> str:
    """Rule-based reader that knows the grammar: find the deciding clause, then negation."""
    sentence = text.removesuffix(".")
    if sentence.startswith(("although ", "though ")):
        main = sentence.split(", ", 1)[1]
    elif ", although " in sentence or ", though " in sentence:
        main = sentence.split(", ", 1)[0]
    elif " but " in sentence:
        main = sentence.split(" but ", 1)[1]
    else:
        main = sentence
    words = main.split()
    positive = any(w in _POSITIVE_WORDS for w in words)
    assert positive != any(w in _NEGATIVE_WORDS for w in words), text
    return DEMO_SENTIMENT_LABELS[int(positive != ("not" in words))]


def test_rule_reader_of_syntax_is_perfect(sentiment_records: list[dict[str, str]]) -> None:
    assert all(len(r["text"].split()) <= 24 for r in sentiment_records)
    for record in sentiment_records:
        assert _read_sentiment(record["text"]) == record["label"], record


@pytest.mark.parametrize(
    ("pattern", "label"),
    [
        (r"the \w+ (was|is) not (really )?good\.", "negative"),
        (r"the \w+ (was|is) (really )?good\.", "positive"),
        (r"(i|we|they|my \w+) did not hate the \w+\.", "positive"),
        (r"(i|we|they|my \w+) loved the \w+\.", "positive"),
        (
            r"the \w+ (was|is) (really )?dull,? but the \w+ (was|is) (really )?brilliant\.",
            "positive",
        ),
        (r".* but the \w+ (was|is) not (really )?\w+\.", None),
        (
            rf"although the \w+ (was|is) (really )?{_POS}, the \w+ (was|is) (really )?{_NEG}\.",
            "negative",
        ),
        (
            rf"though (i|we|they|my \w+) hated the \w+, the \w+ (was|is) (really )?{_POS}\.",
            "positive",
        ),
        (r"the \w+ (was|is) (really )?great, though .*", "positive"),
    ],
)
def test_hand_checked_constructions(
    sentiment_records: list[dict[str, str]], pattern: str, label: str | None
) -> None:
    matched = [r for r in sentiment_records if re.fullmatch(pattern, r["text"])]
    assert matched, pattern
    if label is None:  # "... but X was not ADJ": the negated adjective after "but" decides
        for record in matched:
            adj = record["text"].removesuffix(".").split()[-1]
            assert record["label"] == ("negative" if adj in _POSITIVE_ADJS else "positive")
    else:
        assert {r["label"] for r in matched} == {label}


def _bag_of_words(texts: list[str], vocab: dict[str, int]) -> np.ndarray:
    features = np.zeros((len(texts), len(vocab) + 1))
    features[:, -1] = 1.0  # bias
    for row, text in enumerate(texts):
        for word in re.findall(r"[a-z]+", text):
            if word in vocab:
                features[row, vocab[word]] += 1.0
    return features


def test_bag_of_words_model_cannot_solve_sentiment() -> None:
    train = generate_demo_sentiment(2000, seed=11)
    test = generate_demo_sentiment(1000, seed=12)
    words = sorted({w for r in train for w in re.findall(r"[a-z]+", r["text"])})
    vocab = {w: i for i, w in enumerate(words)}
    x_train = _bag_of_words([r["text"] for r in train], vocab)
    x_test = _bag_of_words([r["text"] for r in test], vocab)
    y_train = np.array([r["label"] == "positive" for r in train], dtype=float)
    y_test = np.array([r["label"] == "positive" for r in test], dtype=float)
    # Unigram logistic regression by full-batch gradient descent, lightly L2-regularised.
    weights = np.zeros(x_train.shape[1])
    for _ in range(2000):
        probs = 1.0 / (1.0 + np.exp(-x_train @ weights))
        weights -= 0.5 * (x_train.T @ (probs - y_train) / len(y_train) + 1e-4 * weights)
    train_accuracy = np.mean((x_train @ weights > 0) == y_train)
    test_accuracy = np.mean((x_test @ weights > 0) == y_test)
    # The model did fit what words can tell (plain sentences) ...
    assert train_accuracy > 0.55
    # ... but stays far from the perfect reader of syntax above.
    assert test_accuracy < 0.75, test_accuracy
