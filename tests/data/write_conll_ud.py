"""Writes tests/data/conll2003/ and tests/data/ud/: made-up English sentences from a few templates.

Run from the repository root (`python tests/data/write_conll_ud.py`); the output is committed, so
tests never run it. CoNLL-2003 files take the original release's layout (eng.train / eng.testa:
"WORD POS CHUNK NER", IOB1 chunk and entity tags, '-DOCSTART- -X- O O' between documents);
CoNLL-U files take UD_English-EWT's (en_ewt-ud-{train,dev}.conllu: '# newdoc id', '# sent_id',
'# text' comments, subtyped relations, a multiword token, an empty node, SpaceAfter=No).
"""

from __future__ import annotations

import random
from pathlib import Path

DATA = Path(__file__).resolve().parent

# --- CoNLL-2003 -------------------------------------------------------------------------------
# Names start with letters that give away their type, so that a tiny model with a character
# tokenizer (it reads each word's first character) can learn the task.
PERSONS = [("Anna", "Berg"), ("Carl", "Dorn"), ("Emil", "Falk"), ("Greta", "Holm"), ("Ida", "Juhl")]
ORGS = [["Norvex"], ["Ortega", "Bank"], ["Pellum"], ["Quorra", "Group"], ["Rastel"]]
PLACES = [["Sarnia"], ["Yarvik"], ["Ulmdorf"], ["Velna", "City"], ["Wexmoor"]]
NATIONS = ["Kalesian", "Lundish", "Mirovan"]  # MISC adjectives
DAYS = ["Monday", "Tuesday", "Friday"]

# A phrase: (chunk type or None, [(word, POS, entity type or None, entity number)]).
Phrase = tuple[str | None, list[tuple[str, str, str | None, int]]]


def _said(rng: random.Random) -> list[Phrase]:
    first, last = rng.choice(PERSONS)
    org, place = rng.choice(ORGS), rng.choice(PLACES)
    return [
        ("NP", [(first, "NNP", "PER", 1), (last, "NNP", "PER", 1)]),
        ("VP", [("said", "VBD", None, 0)]),
        ("NP", [("it", "PRP", None, 0)]),
        ("VP", [("would", "MD", None, 0), ("buy", "VB", None, 0)]),
        ("NP", [(word, "NNP", "ORG", 2) for word in org]),
        ("PP", [("in", "IN", None, 0)]),
        ("NP", [(word, "NNP", "LOC", 3) for word in place]),
        (None, [(".", ".", None, 0)]),
    ]


def _visited(rng: random.Random) -> list[Phrase]:
    first, last = rng.choice(PERSONS)
    return [
        ("NP", [(first, "NNP", "PER", 1), (last, "NNP", "PER", 1)]),
        ("PP", [("of", "IN", None, 0)]),
        ("NP", [(word, "NNP", "ORG", 2) for word in rng.choice(ORGS)]),
        ("VP", [("visited", "VBD", None, 0)]),
        ("NP", [(word, "NNP", "LOC", 3) for word in rng.choice(PLACES)]),
        ("PP", [("on", "IN", None, 0)]),
        ("NP", [(rng.choice(DAYS), "NNP", None, 0)]),
        (None, [(".", ".", None, 0)]),
    ]


def _beat(rng: random.Random) -> list[Phrase]:
    # "beat <team> <score>": two adjacent NPs, so the second one opens with B-NP in IOB1.
    return [
        ("NP", [("The", "DT", None, 0), (rng.choice(NATIONS), "JJ", "MISC", 1), ("team", "NN", None, 0)]),
        ("VP", [("beat", "VBD", None, 0)]),
        ("NP", [(word, "NNP", "ORG", 2) for word in rng.choice(ORGS)]),
        ("NP", [(f"{rng.randint(1, 4)}-{rng.randint(0, 1)}", "CD", None, 0)]),
        ("PP", [("in", "IN", None, 0)]),
        ("NP", [(word, "NNP", "LOC", 3) for word in rng.choice(PLACES)]),
        (None, [(".", ".", None, 0)]),
    ]  # fmt: skip


def _result(rng: random.Random) -> list[Phrase]:
    # A results line, "<team> <team> <goals> <goals>": two adjacent ORG entities (B-ORG in IOB1).
    home, away = rng.sample(ORGS, 2)
    return [
        ("NP", [(word, "NNP", "ORG", 1) for word in home]),
        ("NP", [(word, "NNP", "ORG", 2) for word in away]),
        ("NP", [(str(rng.randint(0, 4)), "CD", None, 0)]),
        ("NP", [(str(rng.randint(0, 4)), "CD", None, 0)]),
    ]


def iob1_lines(phrases: list[Phrase]) -> list[str]:
    """'WORD POS CHUNK NER' lines with IOB1 tags: B- only right after a chunk of the same type."""
    lines = []
    previous_chunk: str | None = None
    previous_entity: tuple[str | None, int] = (None, 0)
    for chunk, words in phrases:
        for position, (word, pos, entity, number) in enumerate(words):
            if chunk is None:
                chunk_tag = "O"
            else:
                opens_after_same = position == 0 and previous_chunk == chunk
                chunk_tag = ("B-" if opens_after_same else "I-") + chunk
            if entity is None:
                ner_tag = "O"
            else:
                same_type = previous_entity[0] == entity and previous_entity[1] != number
                ner_tag = ("B-" if same_type else "I-") + entity
            lines.append(f"{word} {pos} {chunk_tag} {ner_tag}")
            previous_entity = (entity, number)
        previous_chunk = chunk
    return lines


def write_conll2003(path: Path, sentences: int, seed: int) -> None:
    rng = random.Random(seed)
    templates = [_said, _visited, _beat, _result]
    lines: list[str] = []
    for number in range(sentences):
        if number % 10 == 0:
            lines += ["-DOCSTART- -X- O O", ""]
        lines += [*iob1_lines(rng.choice(templates)(rng)), ""]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


# --- CoNLL-U ----------------------------------------------------------------------------------
# A template: (FORM, LEMMA, UPOS, XPOS, FEATS, HEAD, DEPREL, MISC) per word; '{slot}' forms are
# filled from SLOTS (with the lemma equal to the form, lower-cased).
TEMPLATES: list[list[tuple[str, ...]]] = [
    [
        ("The", "the", "DET", "DT", "Definite=Def|PronType=Art", "2", "det", "_"),
        ("{animal}", "", "NOUN", "NN", "Number=Sing", "3", "nsubj", "_"),
        ("sat", "sit", "VERB", "VBD", "Mood=Ind|Tense=Past|VerbForm=Fin", "0", "root", "_"),
        ("on", "on", "ADP", "IN", "_", "6", "case", "_"),
        ("the", "the", "DET", "DT", "Definite=Def|PronType=Art", "6", "det", "_"),
        ("{thing}", "", "NOUN", "NN", "Number=Sing", "3", "obl", "SpaceAfter=No"),
        (".", ".", "PUNCT", ".", "_", "3", "punct", "_"),
    ],
    [
        ("She", "she", "PRON", "PRP", "Case=Nom|Gender=Fem|Number=Sing|Person=3|PronType=Prs", "2", "nsubj", "_"),
        ("bought", "buy", "VERB", "VBD", "Mood=Ind|Tense=Past|VerbForm=Fin", "0", "root", "_"),
        ("a", "a", "DET", "DT", "Definite=Ind|PronType=Art", "5", "det", "_"),
        ("{colour}", "", "ADJ", "JJ", "Degree=Pos", "5", "amod", "_"),
        ("{thing}", "", "NOUN", "NN", "Number=Sing", "2", "obj", "SpaceAfter=No"),
        (".", ".", "PUNCT", ".", "_", "2", "punct", "_"),
    ],
    [
        ("My", "my", "PRON", "PRP$", "Number=Sing|Person=1|Poss=Yes|PronType=Prs", "2", "nmod:poss", "_"),
        ("{animal}", "", "NOUN", "NN", "Number=Sing", "4", "nsubj:pass", "_"),
        ("was", "be", "AUX", "VBD", "Mood=Ind|Tense=Past|VerbForm=Fin", "4", "aux:pass", "_"),
        ("bitten", "bite", "VERB", "VBN", "Tense=Past|VerbForm=Part|Voice=Pass", "0", "root", "_"),
        ("yesterday", "yesterday", "NOUN", "NN", "Number=Sing", "4", "obl:tmod", "SpaceAfter=No"),
        (".", ".", "PUNCT", ".", "_", "4", "punct", "_"),
    ],
    [
        ("He", "he", "PRON", "PRP", "Case=Nom|Gender=Masc|Number=Sing|Person=3|PronType=Prs", "2", "nsubj", "_"),
        ("picked", "pick", "VERB", "VBD", "Mood=Ind|Tense=Past|VerbForm=Fin", "0", "root", "_"),
        ("up", "up", "ADP", "RP", "_", "2", "compound:prt", "_"),
        ("the", "the", "DET", "DT", "Definite=Def|PronType=Art", "5", "det", "_"),
        ("{thing}", "", "NOUN", "NN", "Number=Sing", "2", "obj", "SpaceAfter=No"),
        (".", ".", "PUNCT", ".", "_", "2", "punct", "_"),
    ],
]  # fmt: skip
# "I cannot go.": 'cannot' is one token of two words (a multiword token line 2-3).
MULTIWORD = [
    ("1", "I", "I", "PRON", "PRP", "Case=Nom|Number=Sing|Person=1|PronType=Prs", "4", "nsubj", "_", "_"),
    ("2-3", "cannot", "_", "_", "_", "_", "_", "_", "_", "_"),
    ("2", "can", "can", "AUX", "MD", "VerbForm=Fin", "4", "aux", "_", "_"),
    ("3", "not", "not", "PART", "RB", "_", "4", "advmod", "_", "_"),
    ("4", "{verb}", "", "VERB", "VB", "VerbForm=Inf", "0", "root", "_", "SpaceAfter=No"),
    ("5", ".", ".", "PUNCT", ".", "_", "4", "punct", "_", "_"),
]  # fmt: skip
# "Mary likes tea and John coffee.": gapping; the elided verb is an empty node (5.1, enhanced
# graph only), the basic tree promotes John (conj) and attaches coffee to it (orphan).
GAPPING = [
    ("1", "Mary", "Mary", "PROPN", "NNP", "Number=Sing", "2", "nsubj", "2:nsubj", "_"),
    ("2", "likes", "like", "VERB", "VBZ", "Mood=Ind|Number=Sing|Person=3|Tense=Pres|VerbForm=Fin", "0", "root", "0:root", "_"),
    ("3", "{drink}", "", "NOUN", "NN", "Number=Sing", "2", "obj", "2:obj", "_"),
    ("4", "and", "and", "CCONJ", "CC", "_", "5", "cc", "5.1:cc", "_"),
    ("5", "John", "John", "PROPN", "NNP", "Number=Sing", "2", "conj", "5.1:nsubj", "_"),
    ("5.1", "likes", "like", "VERB", "VBZ", "_", "_", "_", "2:conj:and", "CopyOf=2"),
    ("6", "{drink2}", "", "NOUN", "NN", "Number=Sing", "5", "orphan", "5.1:obj", "SpaceAfter=No"),
    ("7", ".", ".", "PUNCT", ".", "_", "2", "punct", "2:punct", "_"),
]  # fmt: skip
SLOTS = {
    "animal": ["cat", "dog", "horse", "goat"],
    "thing": ["mat", "book", "car", "lamp", "chair"],
    "colour": ["red", "blue", "green", "old"],
    "verb": ["go", "stay", "swim", "sing"],
    "drink": ["tea", "milk", "juice"],
    "drink2": ["coffee", "water", "soda"],
}


def _fill(form: str, lemma: str, rng: random.Random) -> tuple[str, str]:
    if form.startswith("{"):
        form = rng.choice(SLOTS[form[1:-1]])
        lemma = form.lower()
    return form, lemma


def _text(rows: list[tuple[str, ...]]) -> str:
    """The sentence text: token forms (multiword tokens once), spaces unless SpaceAfter=No."""
    text, skip_to = "", 0
    for row in rows:
        token_id, form, misc = row[0], row[1], row[9]
        if "." in token_id or (token_id.isdigit() and int(token_id) <= skip_to):
            continue
        if "-" in token_id:
            skip_to = int(token_id.split("-")[1])
        text += form + ("" if "SpaceAfter=No" in misc else " ")
    return text.rstrip()


def conllu_sentence(rng: random.Random) -> list[tuple[str, ...]]:
    """Ten columns per line of one sentence, drawn from the templates."""
    choice = rng.randrange(len(TEMPLATES) + 2)
    if choice < len(TEMPLATES):
        rows = []
        for index, (form, lemma, upos, xpos, feats, head, deprel, misc) in enumerate(
            TEMPLATES[choice], 1
        ):
            form, lemma = _fill(form, lemma, rng)
            deps = f"{head}:{deprel}"
            rows.append((str(index), form, lemma, upos, xpos, feats, head, deprel, deps, misc))
        return rows
    template = MULTIWORD if choice == len(TEMPLATES) else GAPPING
    rows = []
    for row in template:
        form, lemma = _fill(row[1], row[2], rng)
        deps = row[8] if row[8] != "_" or "-" in row[0] else f"{row[6]}:{row[7]}"
        rows.append((row[0], form, lemma, *row[3:8], deps, row[9]))
    return rows


def write_conllu(path: Path, split: str, sentences: int, seed: int) -> None:
    rng = random.Random(seed)
    lines: list[str] = []
    for number in range(1, sentences + 1):
        if number % 8 == 1:
            lines.append(f"# newdoc id = handwritten-{split}-{number // 8 + 1:03d}")
        rows = conllu_sentence(rng)
        lines.append(f"# sent_id = handwritten-{split}-{number:04d}")
        lines.append(f"# text = {_text(rows)}")
        lines += ["\t".join(row) for row in rows]
        lines.append("")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    (DATA / "conll2003").mkdir(exist_ok=True)
    (DATA / "ud").mkdir(exist_ok=True)
    write_conll2003(DATA / "conll2003" / "eng.train", 120, seed=1)
    write_conll2003(DATA / "conll2003" / "eng.testa", 40, seed=2)
    write_conllu(DATA / "ud" / "en_ewt-ud-train.conllu", "train", 120, seed=1)
    write_conllu(DATA / "ud" / "en_ewt-ud-dev.conllu", "dev", 40, seed=2)
