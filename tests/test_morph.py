"""korean_morph silver labels: Kiwi's morphemes and tags, its tag list, the missing-extra error."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest
from compose import compose_run

from layerft import morph
from layerft.errors import LayerftError
from layerft.morph import MISSING_EXTRA, silver_morphemes

# Every tag Kiwi emits: the korean_morph task's labels.
KIWI_TAGS = compose_run("model=tiny", "injection_task=korean_morph").injection_task.label_names

needs_kiwi = pytest.mark.skipif(
    importlib.util.find_spec("kiwipiepy") is None,
    reason="kiwipiepy is not installed (optional 'korean' extra: pip install -e '.[korean]')",
)


def _pairs(text: str) -> list[tuple[str, str]]:
    forms, tags = silver_morphemes([text])[0]
    return list(zip(forms, tags, strict=True))


def _adjacent(pairs: list[tuple[str, str]], *expected: tuple[str, str]) -> bool:
    """`expected` occurs in `pairs` as a contiguous run."""
    n = len(expected)
    return any(tuple(pairs[i : i + n]) == expected for i in range(len(pairs) - n + 1))


def test_tag_list_is_unique_and_covers_the_sejong_core() -> None:
    assert len(set(KIWI_TAGS)) == len(KIWI_TAGS) == 68
    assert {"NNG", "NNP", "VV", "VA", "XSV", "XSA", "JKS", "JKO", "EP", "EF", "SF"} <= set(
        KIWI_TAGS
    )
    assert {"VV-I", "VA-R", "XSM", "Z_CODA", "W_URL"} <= set(KIWI_TAGS)


@needs_kiwi
def test_own_sentences() -> None:
    # A 하다 verb splits into its noun and the verb-deriving suffix: 공부/NNG 하/XSV 었/EP 다/EF.
    pairs = _pairs("학생들이 도서관에서 열심히 공부했다.")
    assert _adjacent(pairs, ("공부", "NNG"), ("하", "XSV"), ("었", "EP"), ("다", "EF"))
    assert pairs[-1] == (".", "SF")
    # An irregular verb is tagged with -I and its dictionary form: 걸었다 -> 걷/VV-I.
    assert _adjacent(_pairs("길을 걸었다."), ("걷", "VV-I"), ("었", "EP"))
    assert silver_morphemes([]) == []
    assert silver_morphemes(["", "  "]) == [([], []), ([], [])]


@needs_kiwi
def test_kiwi_only_tags() -> None:
    text = "자세한 내용은 http://example.com 이나 help@example.com 에 #문의 😀 《안내》 먹었엌"
    tags = {tag for tag in silver_morphemes([text])[0][1]}
    assert {"W_URL", "W_EMAIL", "W_HASHTAG", "W_EMOJI", "SSO", "SSC", "Z_CODA"} <= tags
    assert tags <= set(KIWI_TAGS)


@needs_kiwi
def test_klue_nli_sample(shared_data: Path) -> None:
    path = shared_data / "klue" / "klue-nli-v1.1" / "klue-nli-v1.1_train.json"
    records = json.loads(path.read_text(encoding="utf-8"))
    texts = [text for r in records for text in (r["premise"], r["hypothesis"])]
    analyses = silver_morphemes(texts)
    assert len(analyses) == len(texts)
    for text, (forms, tags) in zip(texts, analyses, strict=True):
        assert len(forms) == len(tags) > 0, text
        assert all(form.strip() for form in forms), text
        assert set(tags) <= set(KIWI_TAGS), text
    by_guid = dict(zip((r["guid"] for r in records), analyses[::2], strict=True))
    # '10명이 함께 사용하기 불편함없이 만족했다.': 사용하기 -> 사용/NNG 하/XSV 기/ETN.
    forms, tags = by_guid["klue-nli-v1_dev_00001"]
    pairs = list(zip(forms, tags, strict=True))
    assert pairs[:3] == [("10", "SN"), ("명", "NNB"), ("이", "JKS")]
    assert _adjacent(pairs, ("사용", "NNG"), ("하", "XSV"), ("기", "ETN"))


def test_missing_extra_is_one_clear_line(monkeypatch: pytest.MonkeyPatch) -> None:
    morph._kiwi.cache_clear()
    # None in sys.modules makes `import kiwipiepy` raise ImportError, as if it were not installed.
    monkeypatch.setitem(sys.modules, "kiwipiepy", None)
    try:
        with pytest.raises(LayerftError) as caught:
            silver_morphemes(["안녕하세요."])
    finally:
        morph._kiwi.cache_clear()
    message = str(caught.value)
    assert message == MISSING_EXTRA
    assert "\n" not in message
    assert "injection_task=korean_morph" in message
    assert "pip install -e '.[korean]'" in message
