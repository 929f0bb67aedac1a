"""Silver morpheme labels for Korean text from the Kiwi analyser (kiwipiepy, the `korean` extra).

Kiwi's analyses stand in for gold POS tags where a task has none (injection_task=korean_morph):
each text becomes its morphemes' forms and tags, as `Kiwi().tokenize` gives them.

Serves the task config groups' `tagging: {silver: kiwi}` (`injection_task=korean_morph`), through
the `token_tagging` kind.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from layerft.errors import LayerftError

# Every tag Kiwi emits, from kiwipiepy's documentation ("태그 목록", kiwipiepy 0.24.1), whose set
# has not changed since 0.20.0 added Z_SIOT. Kiwi's own additions to the Sejong set: XSM, SSO,
# SSC, SB, UN, W_*, Z_CODA, Z_SIOT (only with saisiot=True), USER0-4 (only with a user dictionary
# that uses them). Since 0.12.0 VV, VA, VX and XSA may carry -R (regular) or -I (irregular
# conjugation): tokenize gives e.g. 걷/VV-I for 걸었다.
KIWI_TAGS: tuple[str, ...] = (
    *("NNG", "NNP", "NNB", "NR", "NP"),
    *("VV", "VA", "VX", "VCP", "VCN"),
    *("MM", "MAG", "MAJ", "IC"),
    *("JKS", "JKC", "JKG", "JKO", "JKB", "JKV", "JKQ", "JX", "JC"),
    *("EP", "EF", "EC", "ETN", "ETM"),
    *("XPN", "XSN", "XSV", "XSA", "XSM", "XR"),
    *("SF", "SP", "SS", "SSO", "SSC", "SE", "SO", "SW", "SL", "SH", "SN", "SB"),
    "UN",
    *("W_URL", "W_EMAIL", "W_HASHTAG", "W_MENTION", "W_SERIAL", "W_EMOJI"),
    *("Z_CODA", "Z_SIOT"),
    *("USER0", "USER1", "USER2", "USER3", "USER4"),
    *("VV-R", "VV-I", "VA-R", "VA-I", "VX-R", "VX-I", "XSA-R", "XSA-I"),
)

MISSING_EXTRA = (
    "injection_task=korean_morph needs kiwipiepy, in the optional 'korean' extra: "
    "pip install -e '.[korean]' (or pip install kiwipiepy)"
)


@cache
def _kiwi() -> Any:
    """One Kiwi analyser per process: loading its model takes about two seconds."""
    try:
        from kiwipiepy import Kiwi
    except ImportError as err:
        raise LayerftError(MISSING_EXTRA) from err
    return Kiwi()


def silver_morphemes(texts: list[str]) -> list[tuple[list[str], list[str]]]:
    """Kiwi's (morpheme forms, POS tags) for each text, in order; a blank text gives ([], [])."""
    # Passing the whole list lets Kiwi analyse it as one batch.
    return [
        ([token.form for token in tokens], [token.tag for token in tokens])
        for tokens in _kiwi().tokenize(texts)
    ]
