"""Seeded synthetic English corpora behind the `generator:` source of the task config groups.

They let the default `python train.py` run offline. Both are built so that a model must read
syntax: POS tags of ambiguous words ("saw", "watch", "like", "that") depend on their context,
and sentiment depends on negation scope and on which clause of a contrast decides.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from types import MappingProxyType

DEMO_SENTIMENT_LABELS: tuple[str, ...] = ("negative", "positive")

_MAX_WORDS = 24
_Tagged = list[tuple[str, str]]


def _pairs(spec: str) -> tuple[tuple[str, str], ...]:
    return tuple((a, b) for a, b in (item.split("/") for item in spec.split()))


# --- part-of-speech grammar (UD English conventions: copula and "did" are AUX, "my" is PRON)
_DETS = ("the", "the", "a", "this", "that", "every")
_POSS = ("my", "his", "her", "our", "their")
# Nouns that double as verbs ("saw", "watch", "book", "play", "walk") make tags contextual.
_NOUNS = _pairs(
    "dog/dogs cat/cats man/men woman/women child/children teacher/teachers city/cities "
    "park/parks house/houses car/cars book/books watch/watches saw/saws play/plays "
    "walk/walks letter/letters river/rivers garden/gardens song/songs bird/birds film/films"
)
_PROPNS = ("anna", "john", "maria", "tom", "paris", "london", "berlin")
_SUBJ_PRONS = (("i", False), ("you", True), ("he", False), ("she", False), ("we", True),
               ("they", True), ("it", False))  # fmt: skip
_OBJ_PRONS = ("me", "you", "him", "her", "us", "them", "it")
_ADJS = ("big", "small", "old", "new", "happy", "red", "quiet", "long", "fast", "hard", "good")
_NUMS = ("two", "three", "four", "five", "ten")
_TRANSITIVE = _pairs(
    "saw/see watched/watch liked/like booked/book played/play found/find took/take "
    "visited/visit cooked/cook opened/open wrote/write loved/love"
)
_INTRANSITIVE = ("ran", "walked", "slept", "arrived", "laughed", "danced", "sang", "left")
_MANNER = ("quickly", "slowly", "quietly", "fast", "hard", "well", "early")
_DEGREE = ("very", "really", "quite", "too")
_PREPS = ("in", "on", "with", "near", "under", "after", "before", "from", "to")
_MODALS = ("will", "can", "could", "should", "might", "would")
_CONTROL = ("wanted", "tried", "hoped", "planned")
_SAY = ("said", "knew", "thought")
_SCONJS = ("because", "although", "when", "if", "before", "after", "while")
_CCONJS = ("and", "but", "or")


def _noun_phrase(rng: random.Random, subject: bool) -> tuple[_Tagged, bool]:
    """Return a tagged noun phrase and whether it is plural (for was/were agreement)."""
    kind = rng.random()
    if kind < 0.2:
        if subject:
            pron, plural = rng.choice(_SUBJ_PRONS)
            return [(pron, "PRON")], plural
        return [(rng.choice(_OBJ_PRONS), "PRON")], False
    if kind < 0.3:
        return [(rng.choice(_PROPNS), "PROPN")], False
    adj = [(rng.choice(_ADJS), "ADJ")] if rng.random() < 0.4 else []
    if kind < 0.4:
        return [(rng.choice(_NUMS), "NUM"), *adj, (rng.choice(_NOUNS)[1], "NOUN")], True
    det = (rng.choice(_POSS), "PRON") if kind < 0.55 else (rng.choice(_DETS), "DET")
    phrase = [det, *adj, (rng.choice(_NOUNS)[0], "NOUN")]
    if kind > 0.92:  # "a city like paris": "like" as a preposition inside a noun phrase
        phrase += [("like", "ADP"), (rng.choice(_PROPNS), "PROPN")]
    return phrase, False


def _predicate(rng: random.Random, plural: bool, nested: bool) -> _Tagged:
    """Return a tagged verb phrase; `nested` forbids further clause embedding."""
    r = rng.random()
    if r < 0.25:
        adv = [(rng.choice(("often", "never", "quickly")), "ADV")] if rng.random() < 0.2 else []
        pp = _prep_phrase(rng) if rng.random() < 0.3 else []
        return [*adv, (rng.choice(_TRANSITIVE)[0], "VERB"), *_noun_phrase(rng, False)[0], *pp]
    if r < 0.55:  # base forms after an auxiliary or "to": "watch", "like", "book" as verbs
        base = (rng.choice(_TRANSITIVE)[1], "VERB")
        obj = _noun_phrase(rng, False)[0]
        if r < 0.38:
            neg = [("not", "PART")] if rng.random() < 0.3 else []
            return [(rng.choice(_MODALS), "AUX"), *neg, base, *obj]
        if r < 0.46:
            return [("did", "AUX"), ("not", "PART"), base, *obj]
        return [(rng.choice(_CONTROL), "VERB"), ("to", "PART"), base, *obj]
    if r < 0.75:
        verb = (rng.choice(_INTRANSITIVE), "VERB")
        tail = rng.random()
        if tail < 0.3:
            return [verb, ("like", "ADP"), *_noun_phrase(rng, False)[0]]
        if tail < 0.6:
            return [verb, (rng.choice(_MANNER), "ADV")]
        return [verb, *_prep_phrase(rng)]
    if r < 0.9 or nested:
        neg = [("not", "PART")] if rng.random() < 0.3 else []
        degree = [(rng.choice(_DEGREE), "ADV")] if rng.random() < 0.3 else []
        return [("were" if plural else "was", "AUX"), *neg, *degree, (rng.choice(_ADJS), "ADJ")]
    return [(rng.choice(_SAY), "VERB"), ("that", "SCONJ"), *_clause(rng, nested=True)]


def _prep_phrase(rng: random.Random) -> _Tagged:
    return [(rng.choice(_PREPS), "ADP"), *_noun_phrase(rng, False)[0]]


def _clause(rng: random.Random, nested: bool) -> _Tagged:
    subject, plural = _noun_phrase(rng, True)
    if not nested and subject[0][1] == "DET" and rng.random() < 0.25:
        # Relative clause: "the dog that saw the cat ..." makes "that" a pronoun.
        subject += [("that", "PRON"), (rng.choice(_TRANSITIVE)[0], "VERB")]
        subject += _noun_phrase(rng, False)[0]
    return subject + _predicate(rng, plural, nested)


def _pos_sentence(rng: random.Random) -> _Tagged:
    main = _clause(rng, nested=False)
    r = rng.random()
    if r < 0.4:
        body = main
    elif r < 0.65:
        body = main + [(rng.choice(_CCONJS), "CCONJ")] + _clause(rng, nested=True)
    elif r < 0.82:
        sub = [(rng.choice(_SCONJS), "SCONJ"), *_clause(rng, nested=True)]
        body = sub + [(",", "PUNCT")] + main
    else:
        body = main + [(rng.choice(_SCONJS), "SCONJ")] + _clause(rng, nested=True)
    body.append(("!" if rng.random() < 0.1 else ".", "PUNCT"))
    # Article agreement is done last, when the following word is known.
    return [
        ("an" if w == "a" and body[i + 1][0][0] in "aeiou" else w, t)
        for i, (w, t) in enumerate(body)
    ]


def generate_demo_pos(num_examples: int, seed: int) -> list[dict[str, list[str]]]:
    """Generate `num_examples` POS-tagged sentences {"tokens", "tags"} from a seeded grammar."""
    rng = random.Random(seed)
    records: list[dict[str, list[str]]] = []
    while len(records) < num_examples:
        sentence = _pos_sentence(rng)
        if len(sentence) <= _MAX_WORDS:
            records.append({"tokens": [w for w, _ in sentence], "tags": [t for _, t in sentence]})
    return records


# --- sentiment: surface polarity words are balanced against labels by negation and contrast
_POSITIVE_ADJS = ("good", "great", "excellent", "brilliant", "wonderful", "lovely", "superb",
                  "amazing", "fantastic", "pleasant")  # fmt: skip
_NEGATIVE_ADJS = ("bad", "awful", "terrible", "dull", "poor", "horrible", "disappointing",
                  "mediocre", "boring", "weak")  # fmt: skip
_POSITIVE_VERBS = _pairs("loved/love enjoyed/enjoy liked/like adored/adore admired/admire")
_NEGATIVE_VERBS = _pairs("hated/hate disliked/dislike despised/despise loathed/loathe")
_TOPICS = ("film", "movie", "plot", "acting", "ending", "soundtrack", "script", "food", "soup",
           "pasta", "dessert", "pizza", "coffee", "service", "staff", "waiter", "hotel", "room",
           "delivery")  # fmt: skip
_REVIEWERS = ("i", "we", "they", "my friend", "my sister", "my parents")
# Low enough that words alone get some plain sentences right (a learning signal early on),
# high enough that a bag-of-words model stays far from a reader of syntax (about 0.6 vs 1.0).
_NEGATION_RATE = 0.3


def _opinion_clause(rng: random.Random, positive: bool, topic: str) -> str:
    """Return a clause about `topic` meaning `positive`; negation flips its surface words."""
    negated = rng.random() < _NEGATION_RATE
    surface_positive = positive != negated
    if rng.random() < 0.6:
        adj = rng.choice(_POSITIVE_ADJS if surface_positive else _NEGATIVE_ADJS)
        degree = "really " if rng.random() < 0.2 else ""
        copula = rng.choice(("was", "is"))
        return f"the {topic} {copula} {'not ' if negated else ''}{degree}{adj}"
    past, base = rng.choice(_POSITIVE_VERBS if surface_positive else _NEGATIVE_VERBS)
    who = rng.choice(_REVIEWERS)
    return f"{who} did not {base} the {topic}" if negated else f"{who} {past} the {topic}"


def _plain(rng: random.Random, positive: bool) -> str:
    return _opinion_clause(rng, positive, rng.choice(_TOPICS))


def _contrast(rng: random.Random, positive: bool) -> str:
    """'X but Y': Y decides, X means the opposite."""
    first, second = rng.sample(_TOPICS, 2)  # two topics, so the clauses do not contradict
    comma = "," if rng.random() < 0.5 else ""
    conceded = _opinion_clause(rng, not positive, first)
    return f"{conceded}{comma} but {_opinion_clause(rng, positive, second)}"


def _concessive(rng: random.Random, positive: bool) -> str:
    """'although X, Y' or 'Y, although X': the main clause Y decides."""
    conj = rng.choice(("although", "though"))
    first, second = rng.sample(_TOPICS, 2)
    conceded = _opinion_clause(rng, not positive, first)
    main = _opinion_clause(rng, positive, second)
    if rng.random() < 0.5:
        return f"{conj} {conceded}, {main}"
    return f"{main}, {conj} {conceded}"


_CONSTRUCTIONS: tuple[tuple[float, Callable[[random.Random, bool], str]], ...] = (
    (0.4, _plain),
    (0.3, _contrast),
    (0.3, _concessive),
)


def generate_demo_sentiment(num_examples: int, seed: int) -> list[dict[str, str]]:
    """Generate `num_examples` balanced {"text", "label"} reviews whose label needs syntax."""
    rng = random.Random(seed)
    # Exactly balanced (within one) in every split, in random order.
    labels = [i % 2 == 1 for i in range(num_examples)]
    rng.shuffle(labels)
    weights = [w for w, _ in _CONSTRUCTIONS]
    records = []
    for positive in labels:
        build = rng.choices([b for _, b in _CONSTRUCTIONS], weights=weights)[0]
        text = build(rng, positive) + "."
        records.append({"text": text, "label": DEMO_SENTIMENT_LABELS[int(positive)]})
    return records


DEMO_GENERATORS: Mapping[str, Callable[[int, int], list[dict]]] = MappingProxyType(
    {"demo_pos": generate_demo_pos, "demo_sentiment": generate_demo_sentiment}
)
