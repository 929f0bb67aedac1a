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
