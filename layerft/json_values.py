"""JSON text parsed into a usable value, or refused with a reason: an object naming a key twice
(`RepeatedKey`), a string holding a lone UTF-16 surrogate, nesting Python cannot recurse
through, an integer too long to convert (`UnreadableJson`, each able to say on which line).

Serves no config group: `layerft/text_files.py` names the file and line for every reader.
"""

from __future__ import annotations

import json
import re
from typing import Any


class RepeatedKey(ValueError):
    """A JSON object naming one key twice: `json` keeps the last value, which may not be meant."""

    def __init__(self, key: str, guid: Any) -> None:
        super().__init__(key, guid)
        self.key, self.guid = key, guid

    def message(self, where: str) -> str:
        named = f" (guid {self.guid})" if isinstance(self.guid, str) else ""
        return f"{where}: an object{named} names {self.key!r} twice (which value is meant?)"


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    record = dict(pairs)
    if len(record) != len(pairs):
        seen: set[str] = set()
        key = next(key for key, _ in pairs if key in seen or seen.add(key))
        raise RepeatedKey(key, record.get("guid"))
    return record


# One decoder: `json.loads` with a hook builds a new one per call (per line of a JSON-lines file).
_DECODER = json.JSONDecoder(object_pairs_hook=_unique_keys)


# A \\uXXXX escape of a UTF-16 surrogate: the only way a JSON text decoded from UTF-8 can give a
# string holding one (a lone one, when it is not half of a pair).
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
_SURROGATE = re.compile("[\ud800-\udfff]")
# Any escape of a JSON string, read left to right: a \uXXXX (its code, group 1), or \\, \" ...
_ESCAPE = re.compile(r"\\(?:u([0-9a-fA-F]{4})|.)")


def _is_half(code: int, high: bool) -> bool:
    """Whether `code` is a high (D800-DBFF) or low (DC00-DFFF) surrogate."""
    return 0xD800 <= code < 0xDC00 if high else 0xDC00 <= code <= 0xDFFF


class UnreadableJson(ValueError):
    """JSON that parses into no usable value; `message(where)` says why, `line(text)` where in the
    whole `text` it is (None: the file as a whole)."""

    def message(self, where: str) -> str:
        raise NotImplementedError

    def line(self, text: str) -> int | None:
        return None


class LoneSurrogate(UnreadableJson):
    """A string holding half of a UTF-16 pair (`"\\ud800"`): no text, and nothing can store it as
    UTF-8 (the tokenized cache's Arrow files, a tracker)."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code, self.escape = code, f"\\u{code:04x}"

    def message(self, where: str) -> str:
        return (
            f"{where}: a string holds {self.escape}, half of a UTF-16 surrogate pair, which is no "
            "character (text cut inside an emoji?)"
        )

    def line(self, text: str) -> int | None:
        """The line of its first escape that is no half of a pair: a high one without a low one
        right after it, a low one without a high one right before it. Escapes are read left to
        right, so the text `\\ud800` (an escaped backslash, then letters) is none."""
        escapes = [(m.start(), m.end(), m[1]) for m in _ESCAPE.finditer(text)]
        high = self.code < 0xDC00
        for i, (start, end, code) in enumerate(escapes):
            if code is None or int(code, 16) != self.code:
                continue
            j = i + 1 if high else i - 1
            beside = escapes[j] if 0 <= j < len(escapes) else None
            paired = beside is not None and (beside[0] == end if high else beside[1] == start)
            if not (paired and beside[2] is not None and _is_half(int(beside[2], 16), not high)):
                return text.count("\n", 0, start) + 1
        return None


class TooDeep(UnreadableJson):
    """JSON nested deeper than Python's parser recurses."""

    def message(self, where: str) -> str:
        return f"{where}: JSON nested too deeply to read"


class LongNumber(UnreadableJson):
    """An integer longer than Python converts from text (`sys.get_int_max_str_digits()`)."""

    def message(self, where: str) -> str:
        return f"{where}: a number too long to read ({str(self.args[0]).split(';')[0]})"


def parse_json(text: str) -> Any:
    """`json.loads`, refusing an object that repeats a key (RepeatedKey), and JSON that gives no
    usable value (UnreadableJson): a string holding a lone surrogate, nesting Python cannot
    recurse through, an integer too long to convert."""
    try:
        value = _DECODER.decode(text)
    except RecursionError:
        raise TooDeep() from None
    except (json.JSONDecodeError, RepeatedKey):
        raise
    except ValueError as err:  # "Exceeds the limit (4300 digits) for integer string conversion"
        raise LongNumber(str(err)) from None
    # Only a \uD800-\uDFFF escape gives a surrogate (the text was decoded from UTF-8).
    if _SURROGATE_ESCAPE.search(text) and (lone := _lone_surrogate(value)) is not None:
        raise LoneSurrogate(ord(lone))
    return value


def _lone_surrogate(value: Any) -> str | None:
    """A surrogate character in a string of the parsed `value`, if any (a pair decodes to one
    character, so any left is lone)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if found := _SURROGATE.search(item):
                return found.group()
        elif isinstance(item, dict):
            stack.extend([*item.keys(), *item.values()])
        elif isinstance(item, list):
            stack.extend(item)
    return None
