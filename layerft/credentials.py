"""Command-line overrides whose key names a credential (`+tracker.api_key=`,
`hydra.job.env_set.WANDB_API_KEY=`): their values are masked wherever overrides are recorded."""

from __future__ import annotations

import re
from collections.abc import Iterable

MASK = "***"
# A whole word of the key's last part, so `tokenizer` and `tokens_column` are not credentials.
_CREDENTIAL_WORD = re.compile(
    r"(?:^|[_-])(?:token|key|apikey|secret|password|passwd|auth|authorization|credentials?)(?:$|[_-])",
    re.IGNORECASE,
)


def is_credential(override: str) -> bool:
    """Whether `override` (`key=value`, `+key=value`...) sets a key named like a credential."""
    key, equals, _ = override.partition("=")
    name = key.lstrip("+~").split("@")[0].rsplit(".", 1)[-1]
    return bool(equals) and bool(_CREDENTIAL_WORD.search(name))


def mask_credentials(overrides: Iterable[str]) -> list[str]:
    """The overrides with every credential's value replaced by `***`, as they may be recorded."""
    return [f"{o.partition('=')[0]}={MASK}" if is_credential(o) else o for o in overrides]
