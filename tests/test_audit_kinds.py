"""Kind lines a mutation audit found unguarded: extractive QA decoding and encoding, tag alignment
and the dependency parser's alignment and head, on tiny hand-made inputs whose expected values are
derived by hand in the comments (each test names the line it pins)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from compose import compose_run

from layerft.errors import LayerftError
from layerft.kinds import KINDS, TaskKind, kind_of, token_tagging
from layerft.kinds import dependency_parsing as dp
from layerft.kinds.biaffine import word_spans
from layerft.kinds.span_decoding import max_context_owner, scored_answer
from layerft.kinds.span_encoding import answer_tokens, cut_questions
from layerft.kinds.span_extraction import SpanConfig
from layerft.kinds.tag_alignment import character_labels, character_spans, word_labels
from layerft.records import normalise_records
from layerft.tiny_model import build_tiny_backbone, build_tiny_tokenizer

TINY = build_tiny_tokenizer()  # one token per character, spaces none

# --- span decoding ------------------------------------------------------------------------------

# "abcde" as one window: [CLS] a b c d e [SEP], positions 1..5 hold characters 0..4.
ABCDE = "abcde"
ABCDE_OFFSETS = [None, (0, 1), (1, 2), (2, 3), (3, 4), (4, 5), None]


def test_a_tokens_context_in_a_window_counts_the_tokens_on_its_shorter_side() -> None:
    # max_context_owner: min(i, n - 1 - i), SQuAD's _new_check_is_max_context (num_right_context
    # = span end - position, the end inclusive). Two windows of 4 tokens, stride 2: window 0 holds
    # tokens 0-3, window 1 tokens 2-5. Token 2 is i=2 in window 0 (min(2, 1) = 1) and i=0 in
    # window 1 (min(0, 3) = 0): window 0. Token 3 is i=3 in window 0 (min(3, 0) = 0) and i=1 in
    # window 1 (min(1, 2) = 1): window 1. (Counting n - i on the right would tie token 3 at 1 + 0.04
    # in both windows and give it to window 0.)
    assert max_context_owner([4, 4], 2).tolist() == [0, 0, 0, 1, 1, 1]
    # Three windows of 5, stride 2 (tokens 0-4, 2-6, 4-8): token 3 is i=3/1 -> 1, 1: a tie, the
    # earlier window 0; token 4 is i=4/2/0 -> 0, 2, 0: window 1; token 5 is i=3/1 -> 1, 1: window
    # 1; token 6 is i=4/2 -> 0, 2: window 2.
    assert max_context_owner([5, 5, 5], 2).tolist() == [0, 0, 0, 0, 1, 1, 2, 2, 2]


def test_n_best_keeps_that_many_start_candidates() -> None:
    # span_decoding: the n-best starts are `[: spans.n_best]`. Starts: d 5, b 3; ends: c 4, a 2;
    # [CLS] -10 + -10. With n_best=2 the candidates are starts {d, b} x ends {c, a}: only b..c
    # is not reversed, 3 + 4 = 7, so "bc", null - best = -20 - 7. With n_best=1 only d..c, reversed.
    start = np.array([-10.0, 0, 3, 0, 5, 0, 0])
    end = np.array([-10.0, 2, 0, 4, 0, 0, 0])
    spans = SpanConfig(n_best=2, max_answer_length=5)
    assert scored_answer([start], [end], [ABCDE_OFFSETS], ABCDE, spans) == ("bc", -27.0)
    spans = SpanConfig(n_best=1, max_answer_length=5)
    assert scored_answer([start], [end], [ABCDE_OFFSETS], ABCDE, spans) == ("", float("inf"))


def test_a_null_score_that_only_ties_the_best_span_leaves_the_answer() -> None:
    # span_decoding: "" only when null - best span `>` the threshold (transformers' utils_qa and
    # KLUE: score_null - best_non_null > threshold). Null 1 + 1 = 2; span "c" 1 + 1 = 2: the
    # difference 0 does not exceed the default threshold 0.
    start = np.array([1.0, 0, 0, 1, 0, 0, 0])
    end = np.array([1.0, 0, 0, 1, 0, 0, 0])
    spans = SpanConfig(null_score_threshold=0.0)
    assert scored_answer([start], [end], [ABCDE_OFFSETS], ABCDE, spans) == ("c", 0.0)
    spans = SpanConfig(null_score_threshold=-0.5)  # 0 > -0.5: no answer
    assert scored_answer([start], [end], [ABCDE_OFFSETS], ABCDE, spans) == ("", 0.0)


# --- span encoding ------------------------------------------------------------------------------


def test_an_answer_that_fills_the_window_from_its_first_to_its_last_character_is_inside() -> None:
    # answer_tokens: inside when offsets[first][0] `<=` start_char and offsets[last][1] `>=`
    # end_char. "abc" at characters 0-3 of a window holding exactly "abc" (positions 1-3): the
    # answer at a context's very first character is no "not in this window" [CLS].
    offsets = [None, (0, 1), (1, 2), (2, 3), None]
    assert answer_tokens(offsets, 0, 3) == (1, 3)
    assert answer_tokens(offsets, 0, 1) == (1, 1)  # "a"
    # A later window starting at character 4 ("efg" of "abcdefg", after [CLS] q [SEP]).
    later = [None, None, None, (4, 5), (5, 6), (6, 7), None]
    assert answer_tokens(later, 4, 5) == (3, 3)
    assert answer_tokens(later, 3, 5) == (0, 0)  # "de": begins before the window


def test_questions_are_cut_after_their_leading_spaces_are_dropped() -> None:
    # cut_questions: `q.lstrip()` (run_qa strips them too); then the text up to the end of the
    # limit-th token: "  ab cd" -> "ab cd" -> tokens a b c d, limit 3 -> "ab c".
    assert cut_questions(TINY, ["  ab cd", " ab"], 3) == ["ab c", "ab"]


# --- tag alignment ------------------------------------------------------------------------------


def test_a_words_tag_is_on_its_first_subword_only() -> None:
    # word_labels: -100 on special tokens and on a word's later subwords (`word == previous`).
    assert word_labels([None, 0, 0, 1, 2, 2, 2, None], [5, 7, 9]) == [
        -100, 5, -100, 7, 9, -100, -100, -100,
    ]  # fmt: skip
    # Through the kind's encoder: the tiny tokenizer reads "EU" as e, u and "x" as x.
    task = compose_run("model=tiny", "injection_task=conll_ner").injection_task
    record = {"tokens": ["EU", "x"], "ner_tags": ["B-ORG", "O"]}
    [row] = normalise_records(task, "injection_task", [record], "train")
    encoded = KINDS[TaskKind.token_tagging].encoder(task, TINY)({k: [v] for k, v in row.items()})
    b_org, o = task.label_names.index("B-ORG"), task.label_names.index("O")
    assert encoded["labels"][0] == [-100, b_org, -100, o, -100]
    assert encoded["tagged_words"][0] == [0, 1]


def test_the_tagging_loss_leaves_out_positions_labelled_minus_100() -> None:
    # TaggingHead: cross_entropy(..., ignore_index=-100), the label of special tokens and later
    # subwords (and the collator's padding). A zeroed classifier scores every tag alike, so each
    # labelled position costs log(number of tags), and the -100 ones nothing.
    task = compose_run("model=tiny", "injection_task=conll_ner").injection_task
    backbone = build_tiny_backbone(compose_run("model=tiny").model.tiny, len(TINY)).eval()
    head = token_tagging.build_head(backbone.config.hidden_size, task).eval()
    torch.nn.init.zeros_(head.classifier.weight)
    torch.nn.init.zeros_(head.classifier.bias)
    inputs = TINY(["eu x"], return_tensors="pt")  # [CLS] e u x [SEP]
    labels = torch.tensor([[-100, 1, -100, 0, -100]])
    with torch.no_grad():
        loss = head(backbone, labels=labels, **inputs).loss
    assert loss.item() == pytest.approx(np.log(len(task.label_names)), rel=1e-6)


def test_a_lone_word_mark_and_a_token_of_no_width_get_no_character() -> None:
    # character_spans: -1, -1 for a token with no character of its own: a lone SentencePiece
    # "\u2581" offset over the character the next piece reads (`mark_only`), and a token whose
    # offsets are empty (`start >= end`). Word "가나" (characters 0-1): <s> \u2581 가 나 </s>.
    pieces = ["<s>", "\u2581", "가", "나", "</s>"]
    offsets = [(0, 0), (0, 1), (0, 1), (1, 2), (0, 0)]
    starts, ends = character_spans([None, 0, 0, 0, None], offsets, ["가나"], pieces)
    assert (starts, ends) == ([-1, -1, 0, 1, -1], [-1, -1, 1, 2, -1])
    # The first character's tag goes to 가, not to the mark before it.
    assert character_labels(starts, [3, 4]) == [-100, -100, 3, 4, -100]
    # Words "ab", "c": a zero-width piece at b's end gets nothing; c is character 2 (no space).
    pieces = ["[CLS]", "a", "b", "x", "c", "[SEP]"]
    offsets = [(0, 0), (0, 1), (1, 2), (2, 2), (0, 1), (0, 0)]
    starts, ends = character_spans([None, 0, 0, 0, 1, None], offsets, ["ab", "c"], pieces)
    assert (starts, ends) == ([-1, 0, 1, -1, 2, -1], [-1, 1, 2, -1, 3, -1])


# --- dependency parsing -------------------------------------------------------------------------

# Two eojeols, "b" the root; POS tags outside KLUE's list.
UNLISTED_POS = {"guid": "g", "words": ["a", "b"], "pos": ["FOO", "BAR+BAZ"], "heads": [2, 0],
                "deprels": ["NP", "VP"]}  # fmt: skip


def test_without_a_pos_feature_the_pos_column_is_not_checked() -> None:
    # pos_ids: `if not task.parsing.pos_dim: return [0] * len(words)`: with no POS feature
    # (KLUE-baseline's --no_pos) a tag outside parsing.pos_tags is never read, so it stops nothing.
    task = compose_run("model=tiny", "injection_task=klue_dp", "injection_task.parsing.pos_dim=0")
    [row] = normalise_records(task.injection_task, "injection_task", [UNLISTED_POS], "train")
    assert row["pos"] == [0, 0]
    task = compose_run("model=tiny", "injection_task=klue_dp")
    with pytest.raises(LayerftError, match=r"word 1 \('a'\): POS 'FOO' is not in"):
        normalise_records(task.injection_task, "injection_task", [UNLISTED_POS], "train")


def test_a_word_without_subwords_borrows_the_last_subword_before_it() -> None:
    # word_spans: `previous = ends.get(word, previous)`: word 1 has no token ([CLS] a a c [SEP]
    # for words 0, 1, 2), so it is read at word 0's last subword, position 2, not at [CLS].
    assert word_spans([None, 0, 0, 2, None], 3, True) == ([1, 2, 3], [2, 2, 3])
    # Truncated: the words up to the last one with a subword (word 1 of 3).
    assert word_spans([None, 0, 1, 1, None], 3, False) == ([1, 2], [1, 3])


def test_padded_words_are_no_candidate_heads_in_the_loss() -> None:
    # BiaffineParsingHead.forward: `mask_arcs(scores, word_mask)`. With zeroed scorers every
    # candidate scores alike: each of the 2 words picks among root + 2 words (log 3) and among
    # the relations (log R), whether or not the batch pads the sentence to 4 words.
    task = dp_task("injection_task.parsing.arc_space=8", "injection_task.parsing.relation_space=8")
    tokenizer = build_tiny_tokenizer()
    backbone = build_tiny_backbone(compose_run("model=tiny").model.tiny, len(tokenizer)).eval()
    head = dp.build_head(backbone.config.hidden_size, task).eval()
    torch.nn.init.zeros_(head.arc_weight)
    torch.nn.init.zeros_(head.relation_weight)
    record = {"guid": "s", "words": ["철수가", "잔다."], "pos": ["NNP+JKS", "VV+EF+SF"],
              "heads": [2, 0], "deprels": ["NP_SBJ", "VP"]}  # fmt: skip
    [row] = normalise_records(task, "injection_task", [record], "train")
    encoded = kind_of(task).encoder(task, tokenizer)({k: [v] for k, v in row.items()})
    batch = kind_of(task).collator(tokenizer, None)([{k: v[0] for k, v in encoded.items()}])
    padded = dict(batch)
    for key, fill in (*dp.WORD_PADDING.items(), ("word_mask", False)):
        padded[key] = torch.cat([batch[key], torch.full((1, 2), fill, dtype=batch[key].dtype)], 1)
    expected = np.log(3) + np.log(len(task.label_names))
    with torch.no_grad():
        assert head(backbone, **batch).loss.item() == pytest.approx(expected, rel=1e-5)
        out = head(backbone, **padded)
    assert out.loss.item() == pytest.approx(expected, rel=1e-5)
    assert out.heads[0, 2:].tolist() == [-100, -100]


def dp_task(*overrides: str):  # noqa: ANN201 - a TaskConfig
    return compose_run("model=tiny", "injection_task=klue_dp", *overrides).injection_task


@pytest.mark.parametrize("names", ["[O,NN]", "[B-PS,I-PS]"])
def test_words_column_needs_both_an_o_tag_and_a_b_tag(names: str) -> None:
    # token_tagging.check: BIO needs "O" `or` fails, and a B- type `or` fails: O without any B-
    # tag, or B-/I- without O, is no BIO set a subword's tag can spread over.
    with pytest.raises(LayerftError, match=r"label_names must be BIO tags"):
        compose_run(
            "target_task=klue_ner", f"target_task.label_names={names}",
            "target_task.best_metric=token_f1", "target_task.metrics=[token_f1]",
        )  # fmt: skip


@pytest.mark.parametrize("tags", [["O"], ["B-ORG", "O", "O"]])
def test_tokens_and_tags_of_different_lengths_are_named(tags: list[str]) -> None:
    # token_tagging.normalise: `len(tokens) != len(tags)`: one tag too many would otherwise be
    # dropped silently (word_labels reads tags[word] per word), one too few fail in the encoder.
    task = compose_run("model=tiny", "injection_task=conll_ner").injection_task
    record = {"tokens": ["EU", "x"], "ner_tags": tags}
    with pytest.raises(LayerftError, match=r"'tokens' and 'ner_tags' must be lists of equal"):
        normalise_records(task, "injection_task", [record], "train")


def test_gold_tags_keep_a_repeated_sentence_that_carries_its_text() -> None:
    # token_tagging.distinct_text: only a silver tagger drops repeated texts; a gold treebank's
    # records that carry their text (conll_ner's text_columns is [text]) are all kept.
    task = compose_run("model=tiny", "injection_task=conll_ner").injection_task
    record = {"tokens": ["EU", "x"], "ner_tags": ["B-ORG", "O"], "text": "EU x"}
    rows = normalise_records(task, "injection_task", [record, dict(record)], "train")
    assert len(rows) == 2
