"""Command-line overrides whose key names a credential (`+tracker.api_key=`,
`hydra.job.env_set.WANDB_API_KEY=`): their values are masked wherever overrides are recorded, and
in the config dumps Hydra writes (ScrubCredentials). One set as a setting of the app's config is
refused instead (`layerft/credential_overrides.py`).

Serves the root config: conf/config.yaml runs `ScrubCredentials` as one of its `hydra.callbacks`;
`layerft/hydra_job.py` and `layerft/sweep_tracker.py` record overrides masked.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override, OverrideType
from hydra.errors import HydraException
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

MASK = "***"
# what a library may echo into an error, masked there (without_secrets)
SECRET_VARIABLES = ("WANDB_API_KEY", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")
# A whole word of the key's last part, so `tokenizer` and `tokens_column` are not credentials;
# in camelCase too (`accessToken`, `apiKey`).
_CREDENTIAL_WORD = re.compile(
    r"(?:^|[_-])(?:token|key|apikey|secret|password|passwd|auth|authorization|credentials?)(?:$|[_-])",
    re.IGNORECASE,
)
_CREDENTIAL_CAMEL_WORD = re.compile(
    r"(?<=[a-z0-9])(?:Token|Key|ApiKey|Secret|Password|Passwd|Auth|Authorization|Credentials?)"
    r"(?=$|[A-Z0-9_-])"
)


def is_credential(override: str) -> bool:
    """Whether `override` (`key=value`, `+key=value`...) sets a key named like a credential, or
    sets `hydra.job.env_set` to a dict holding one."""
    return names_credential_key(override) or bool(env_set_credentials(override))


def names_credential_key(override: str) -> bool:
    """Whether `override` (`key=value`) sets a key whose last part is named like a credential."""
    key, equals, _ = override.partition("=")
    return bool(equals) and names_credential(key.lstrip("+~").split("@")[0].rsplit(".", 1)[-1])


def names_credential(name: str) -> bool:
    """Whether a key's name (`WANDB_API_KEY`, an `env_set` variable) is a credential's."""
    return bool(_CREDENTIAL_WORD.search(name) or _CREDENTIAL_CAMEL_WORD.search(name))


def without_secrets(text: str) -> str:
    """`text` with the W&B key and a hub token from the environment masked, should a library have
    echoed one into an error; a value under 8 characters (no real key) masks nothing, where it
    would have masked every `a` of the text."""
    for name in SECRET_VARIABLES:
        if len(secret := os.environ.get(name, "").strip()) >= 8:
            text = text.replace(secret, MASK)
    return text


def mask_credentials(overrides: Iterable[str]) -> list[str]:
    """The overrides with every credential's value replaced by `***`, as they may be recorded."""
    return [mask_override(override) for override in overrides]


def mask_override(override: str) -> str:
    """`override` with its credential's value (or those of its `env_set` dict) as `***`."""
    if names_credential_key(override):
        return f"{override.partition('=')[0]}={MASK}"
    return _rewrite_env_set(override, mask=True)


def _override_secrets(node: Any, secrets: set[str]) -> None:
    """Collect the values of credential overrides and `env_set` credentials anywhere in `node`."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "env_set" and isinstance(value, dict):
                secrets.update(
                    str(v) for k, v in value.items() if v is not None and names_credential(str(k))
                )
            _override_secrets(value, secrets)
    elif isinstance(node, list):
        for item in node:
            if isinstance(item, str) and names_credential_key(item):
                secrets.add(item.partition("=")[2])
            elif isinstance(item, str):
                secrets.update(env_set_credentials(item).values())
            else:
                _override_secrets(item, secrets)


def _masked(node: Any, secrets: set[str]) -> Any:
    """`node` with credential overrides masked (also inside a comma-joined `override_dirname`)
    and every scalar equal to a credential's value replaced by MASK."""
    if isinstance(node, dict):
        return {key: _masked(value, secrets) for key, value in node.items()}
    if isinstance(node, list):
        return [_masked(item, secrets) for item in node]
    if isinstance(node, str):
        if node in secrets:
            return MASK
        if (masked := _rewrite_env_set(node, mask=True)) != node:  # an env_set dict
            return masked
        parts = node.split(",")
        if any(is_credential(part) for part in parts):
            return ",".join(mask_credentials(parts))
    elif node is not None and str(node) in secrets:
        return MASK
    return node


def move_env_set_credentials(config: DictConfig) -> list[str]:
    """Take each credential out of a multirun's master config (`hydra.job.env_set`, and the
    `hydra.job.env_set.<KEY>=` overrides each job's config is composed from again) into this
    process's environment; the names moved."""
    env_set = config.hydra.job.env_set
    moved = [str(k) for k in env_set if names_credential(str(k)) and env_set[k] is not None]
    # Read unresolved: an override such as `hydra.sweep.subdir='${...}'` must stay as given.
    overrides = OmegaConf.to_container(config.hydra.overrides.hydra, resolve=False)
    assert isinstance(overrides, list)
    kept = [
        _without_env_set_credentials(str(o)) for o in overrides if not names_credential_key(str(o))
    ]
    with read_write(config), open_dict(config):
        for name in moved:
            os.environ[name] = str(env_set[name])
            del env_set[name]
        config.hydra.overrides.hydra = kept
    return moved


def parsed_override(override: str) -> Override | None:
    """`override` as Hydra parses it, or None where it is no override (Hydra refuses it itself, or
    a recorded string is a piece of one)."""
    try:
        return OverridesParser.create().parse_override(override)
    except HydraException:
        return None


_PREFIXES = {OverrideType.CHANGE: "", OverrideType.ADD: "+", OverrideType.FORCE_ADD: "++"}


def _env_set_dict(override: str) -> Override | None:
    """`override` parsed, where it sets `hydra.job.env_set` to a dict
    (`++hydra.job.env_set={WANDB_API_KEY:...,OMP_NUM_THREADS:1}`); else None."""
    if "env_set" not in override or "=" not in override:
        return None
    parsed = parsed_override(override)
    if (
        parsed is None
        or parsed.key_or_group != "hydra.job.env_set"
        or not isinstance(parsed._value, dict)
    ):
        return None
    return parsed if parsed.type in _PREFIXES else None


def env_set_credentials(override: str) -> dict[str, str]:
    """The credentials (name -> value) an `env_set` dict override sets; {} for any other."""
    parsed = _env_set_dict(override)
    if parsed is None:
        return {}
    value = parsed.value()
    assert isinstance(value, dict)
    return {str(k): str(v) for k, v in value.items() if names_credential(str(k)) and v is not None}


def _rewrite_env_set(override: str, mask: bool) -> str:
    """`override`, or, where it sets `hydra.job.env_set` to a dict holding credentials, the same
    with each credential's value masked, or (`mask=False`) left out."""
    parsed = _env_set_dict(override)
    if parsed is None:
        return override
    value = parsed._value  # as parsed: quoted strings stay quoted when written back
    assert isinstance(value, dict)
    if not any(names_credential(str(k)) for k in value):
        return override
    rewritten = {
        k: MASK if names_credential(str(k)) else v
        for k, v in value.items()
        if mask or not names_credential(str(k))
    }
    text = dataclasses.replace(parsed, _value=rewritten).get_value_element_as_str()
    return f"{_PREFIXES[parsed.type]}{parsed.key_or_group}={text}"


def _without_env_set_credentials(override: str) -> str:
    """`override`, or, where it sets `hydra.job.env_set` to a dict holding credentials, the same
    without them."""
    return _rewrite_env_set(override, mask=False)


def scrub_config_file(path: Path) -> bool:
    """Mask the credentials a config dump Hydra wrote (`.hydra/*.yaml`, `multirun.yaml`) holds:
    credential overrides, `hydra.job.env_set` credentials, and any value equal to one of them.
    Rewrites the file (whole or not at all) only if it held one; whether it did."""
    import yaml

    try:
        text = path.read_text(encoding="utf-8")
        data = yaml.safe_load(text)
    except (OSError, yaml.YAMLError):  # absent (no output_subdir) or not Hydra's: nothing to scrub
        return False
    secrets: set[str] = set()
    _override_secrets(data, secrets)
    secrets.discard("")
    if not secrets:
        return False
    masked = _masked(data, secrets)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        # Plain YAML, as Hydra's (safe_load read it, so this cannot fail on it).
        yaml.safe_dump(masked, out, sort_keys=False, allow_unicode=True)
    os.replace(tmp, path)
    return True


class ScrubCredentials(Callback):
    """A Hydra callback: the config dumps Hydra writes before a job starts (`.hydra/*.yaml`, and a
    multirun's `multirun.yaml`) keep no credential given on the command line.

    A multirun's credentials in `hydra.job.env_set` leave its config before anything is written:
    they move to this process's environment, which every job inherits (run here, or started by
    local_parallel, submitit_local or SLURM's sbatch), so `multirun.yaml` and the job files a
    parallel launcher pickles into the sweep folder never hold them."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        move_env_set_credentials(config)

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        hydra = HydraConfig.get()
        if hydra.output_subdir is not None:
            for name in ("config.yaml", "hydra.yaml", "overrides.yaml"):
                scrub_config_file(Path(hydra.runtime.output_dir, hydra.output_subdir, name))
        if hydra.mode == RunMode.MULTIRUN:
            scrub_config_file(Path(hydra.sweep.dir, "multirun.yaml"))

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        # A multirun that started no job (all finished) still had its multirun.yaml written.
        scrub_config_file(Path(config.hydra.sweep.dir, "multirun.yaml"))
