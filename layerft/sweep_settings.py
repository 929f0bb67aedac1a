"""A job's settings as a sweep names and compares them: its group choices and command-line values,
less the seed, the result-neutral keys and the ones its run never reads; a number's spellings
(`1e-4`, `0.0001`) as one value, shown one way.

Serves no config group: `layerft/sweep_job.py` and `layerft/sweep_records.py` read jobs with these
settings, `layerft/run_tracker.py` names a run by them.
"""

from __future__ import annotations

import json
import math
from dataclasses import replace
from functools import cache
from typing import TYPE_CHECKING, Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException

from layerft.fingerprint import RESULT_NEUTRAL_KEYS, STAGE1_ONLY_GROUPS
from layerft.unread_keys import unread_prefix

if TYPE_CHECKING:
    from layerft.sweep_job import Job


def job_settings(
    choices: dict[str, str], overrides: list[str], unread: tuple[str, ...] = ()
) -> dict[str, str]:
    """Group choices merged with `key=value` overrides, minus seed, keys that change no result,
    and the `unread` keys (RunRecord.unread: a run with LoRA's rank set under tuning_mode=full is
    the run without it)."""
    settings = {group: str(option) for group, option in choices.items()}
    for override in overrides:
        key, _, value = override.partition("=")
        # `+key`, `++key`, `~key` (a deletion); `group@package=option` is the package's choice
        settings[key.lstrip("+~").split("@")[-1]] = "(deleted)" if key[0] == "~" else value
    return effective_settings(
        {k: v for k, v in settings.items() if not _neutral(k) and not unread_prefix(k, unread)}
    )


def effective_settings(settings: dict[str, str]) -> dict[str, str]:
    """The settings without `injection_task.*`, the layer split and the stage-1 schedule under
    `injection_task=none`: a disabled stage 1 leaves the config (`config.drop_disabled_stages`)
    and its fingerprint (fingerprint.STAGE1_ONLY_GROUPS), so these settings change nothing, and runs
    that differ only in them are one run, one row, the baseline of every stage-1 row alike."""
    if settings.get("injection_task") != "none":
        return settings
    return without_stage1(settings)


def without_stage1(settings: dict[str, str]) -> dict[str, str]:
    """The settings but stage 1's own (`injection_task.*`, the layer split, the stage-1 schedule);
    `injection_task` itself stays."""
    unread = ("injection_task.", *STAGE1_ONLY_GROUPS, *(f"{g}." for g in STAGE1_ONLY_GROUPS))
    return {k: v for k, v in settings.items() if not (k in unread or k.startswith(unread))}


def _neutral(key: str) -> bool:
    neutral = ("seed", *RESULT_NEUTRAL_KEYS)
    return key.startswith(("hydra.", "hydra/")) or any(
        key == n or key.startswith(n + ".") for n in neutral
    )


@cache  # a sweep repeats few texts; parsing one takes a tenth of a millisecond
def setting_value(text: str) -> str | int | float:
    """What a setting's text compares as: the number Hydra's override grammar reads in it (`1e-4`,
    `0.0001`, `1.0e-4` and `1_000`), a list as JSON of the values it reads (`[query, value]` is
    `[query,value]`), else the text (a quoted "1e-4", `true`, `null`, a name).

    `3` and `3.0` are one value: what a resolved config holds decides, and for a float field
    OmegaConf turns 3 into 3.0 while an int field refuses 3.0; both spellings run the same config.
    On a str field (`model.revision=1` vs `=1.0`) they are two configs; `read_sweep` then warns.
    """
    try:
        value = _override_parser().parse_override(f"x={text}").value()
    except HydraException:  # no override value: `(deleted)`
        return text
    if isinstance(value, list):  # `[query,value]`, `[query, value]`, `["query", "value"]`
        return json.dumps(value)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return text
    return "nan" if value != value else value  # NaN equals no number, not even itself


@cache
def _override_parser() -> OverridesParser:
    return OverridesParser.create()


def same_spelling(jobs: list[Job]) -> list[Job]:
    """The jobs with each setting's number spelled one way: the shortest spelling among the jobs
    and its exponent form (`compact`), then the first in text order (`1e-4` over `0.0001`, `1E-4`
    over `1e-4`), so the job order changes no row's name."""
    spellings: dict[tuple[str, Any], str] = {}
    for job in jobs:
        for key, text in job.settings.items():
            slot = (key, setting_value(text))
            spellings[slot] = min(
                spellings.get(slot, text), compact(text), key=lambda t: (len(t), t)
            )
    return [
        replace(job, settings={k: spellings[k, setting_value(v)] for k, v in job.settings.items()})
        for job in jobs
    ]


def compact(text: str) -> str:
    """A float's text in exponent form where that is shorter and its exponent 3 or more either
    way (`10000.0`, `5e-05` as Hydra's sweeper writes a grid's `1e4`, `5e-5`: `1e4`, `5e-5`),
    else as it is (`0.1`, `100.0`, an int, a name)."""
    value = setting_value(text)
    if not isinstance(value, float) or not math.isfinite(value) or value == 0:
        return text
    digits = next(n for n in range(17) if float(f"{value:.{n}e}") == value)
    mantissa, exponent = f"{value:.{digits}e}".split("e")
    short = f"{mantissa}e{int(exponent)}"
    return short if abs(int(exponent)) >= 3 and len(short) < len(text) else text


def same_settings_per_config(jobs: list[Job]) -> list[Job]:
    """The jobs of one config (seedless fingerprint) with the settings they all spell alike: a key
    that one of them sets on its command line and another leaves at its option's value
    (`target_task.lr=5e-5`, the task's own) is the option's value, unnamed, in both, so their seeds
    make one row (paired with the same baseline as before), not two that read as if it differed."""
    common: dict[str, dict[str, str]] = {}
    for job in jobs:
        if (config := job.seedless_fingerprint) is not None:
            shared = common.setdefault(config, job.settings)
            common[config] = {k: v for k, v in shared.items() if job.settings.get(k) == v}
    return [
        job
        if job.seedless_fingerprint is None
        else replace(job, settings=common[job.seedless_fingerprint])
        for job in jobs
    ]


def spelled_as_in(jobs: list[Job], key: str, text: str) -> str:
    """`text` as the jobs spell the same value of setting `key` (`0.0001` -> `1e-4`), else `text`."""
    value = setting_value(text)
    spellings = {job.settings[key] for job in jobs if key in job.settings}
    return next((s for s in sorted(spellings) if setting_value(s) == value), text)
