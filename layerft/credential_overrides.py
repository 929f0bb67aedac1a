"""A credential given as a setting of the app's config on the command line (`+wandb_api_key=`,
`+wandb={api_key:...}`) is refused before Hydra writes or logs it: train.py and sweep.py check their
arguments here. Hydra's own `hydra.job.env_set.<NAME>=` is masked instead (`layerft/credentials.py`).

Serves the root config, as `layerft/config_overrides.py` does: none of its settings may hold a
credential.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from layerft.credentials import names_credential, names_credential_key, parsed_override

# Hydra's flags whose value is the next argument (`-cd <folder>`), which is no override.
FLAGS_WITH_VALUE = frozenset(
    {"-cp", "--config-path", "-cn", "--config-name", "-cd", "--config-dir", "-c", "--cfg",
     "-p", "--package", "--experimental-rerun"}
)  # fmt: skip


def app_overrides(arguments: Sequence[str]) -> Iterator[str]:
    """The overrides among a script's arguments: neither Hydra's flags (nor their values) nor
    `hydra.` keys."""
    flag_value = False
    for argument in arguments:
        if flag_value or argument.startswith("-"):
            flag_value = argument in FLAGS_WITH_VALUE
        elif not argument.partition("=")[0].lstrip("+~").startswith("hydra."):
            yield argument


def credential_override_error(arguments: Sequence[str]) -> str | None:
    """The error for a command-line setting of the app's config that is, or holds, a key named
    like a credential (`+wandb_api_key=...`, `+wandb={api_key:...}`), or None. No layerft setting
    takes one, so it could only fail as an unknown key, but Hydra writes its value into
    `.hydra/*.yaml` and prints it in a multirun's launch lines before layerft could refuse it.
    Hydra's own `hydra.job.env_set.<NAME>=` is the way in on the command line."""
    for argument in app_overrides(arguments):
        key = argument.partition("=")[0]
        if names_credential_key(argument) or _holds_credential_key(argument):
            return (
                f"{key}: no layerft setting takes a credential; set it in the environment "
                "(WANDB_API_KEY, HF_TOKEN) or as hydra.job.env_set.<NAME>=..., which no file or "
                "log records"
            )
    return None


def _holds_credential_key(override: str) -> bool:
    """Whether `override` sets a dict with a key, at any depth, named like a credential."""
    if "{" not in override:
        return False
    parsed = parsed_override(override)
    return parsed is not None and _nests_credential_key(parsed.value())


def _nests_credential_key(value: Any) -> bool:
    if isinstance(value, dict):
        return any(names_credential(str(k)) or _nests_credential_key(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_nests_credential_key(item) for item in value)
    return False
