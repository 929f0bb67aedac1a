"""A row's baseline: the `--baseline` settings checked against the jobs, and the row each row is
compared with (its settings with those replaced; where no row has exactly them, the one that
leaves a setting at the value the other spells out, as its job folder's composed config says).

Serves no config group: `layerft/aggregate.py` pairs the rows of `layerft/sweep_table.py` with it.
The composed config is read from the job folder's Hydra files (`.hydra/finished/`, which a skipped
rerun cannot rewrite, else `.hydra/`), so `sweep.py aggregate` still needs no config.
"""

from __future__ import annotations

import json
from pathlib import Path

from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException
from yaml import YAMLError

from layerft.errors import LayerftError
from layerft.sweep_job import Job, SettingsKey, settings_key
from layerft.sweep_settings import effective_settings, setting_value, spelled_as_in, without_stage1
from layerft.sweep_table import MISSING, TableRow, setting
from layerft.unread_keys import unread_prefix

DEFAULT_BASELINE = {"injection_task": "none"}  # a row's baseline: the same settings, no stage 1


def check_baseline(baseline: dict[str, str] | None, jobs: list[Job]) -> dict[str, str]:
    """The settings replaced to find a row's baseline; a user's key=value must be a job's setting
    (a typo in the value would leave every row without a baseline, and without a word), or the
    value that every job leaving it unset holds in its composed config (then `-`)."""
    if baseline is None:
        return DEFAULT_BASELINE
    known = {key for job in jobs for key in job.settings}
    unknown = sorted(set(baseline) - known)
    if unknown:
        raise LayerftError(
            f"baseline setting {unknown[0]} is in no job (settings: {', '.join(sorted(known))})"
        )
    spec = {key: spelled_as_in(jobs, key, str(value)) for key, value in baseline.items()}
    for key, value in spec.items():
        values = {setting(job.settings, key) for job in jobs}
        leaving = [job for job in jobs if setting(job.settings, key) == MISSING]
        if value not in values and leaving and ComposedConfigs().hold(leaving, {key: value}):
            # the value the jobs that leave it unset hold (a grid given the key later, in a
            # folder of its earlier results: `target_task.lr=5e-5`, the task's own)
            spec[key] = MISSING
        elif value not in values:
            unset = f", or {MISSING} (not set: its options' value)" if MISSING in values else ""
            raise LayerftError(
                f"baseline {key}={baseline[key]} is in no job; give one of the values the jobs "
                f"have: {', '.join(sorted(values - {MISSING}))}{unset}"
            )
    return spec


def baselines(combos: list[TableRow], spec: dict[str, str]) -> list[TableRow | None]:
    """Each row's baseline row under `spec` (itself for a baseline row), or None."""
    rows = {settings_key(c.settings): c for c in combos}
    configs = ComposedConfigs()
    return [baseline_of(c, rows, spec, configs) for c in combos]


def baseline_of(
    combo: TableRow,
    rows: dict[SettingsKey, TableRow],
    spec: dict[str, str],
    configs: ComposedConfigs,
) -> TableRow | None:
    """The row (of `rows`, by their settings_key) with `combo`'s settings, `spec`'s replacing them,
    minus the settings that row's runs never read (its `unread`: the full fine-tuning row is the
    baseline of every LoRA rank's row under `--baseline tuning_mode=full`)."""
    replaced = {**combo.settings, **spec}  # `key=-`: the row that leaves key unset
    wanted = effective_settings({k: v for k, v in replaced.items() if v != MISSING})
    if (exact := rows.get(settings_key(wanted))) is not None:  # the row with exactly those first
        return exact
    for base in rows.values():
        if base.unread:
            kept = {k: v for k, v in wanted.items() if not unread_prefix(k, base.unread)}
            if kept == base.settings:
                return base
    if combo.settings.get("injection_task") == "none" != wanted.get("injection_task"):
        # A row without stage 1 has no stage-1 settings (`--baseline injection_task=klue_dp`):
        # the one row with stage 1 that differs from it only in those (at the baseline's where it
        # gives any, `layer_split=all`); several: none
        shared = without_stage1(wanted)
        given = {k: v for k, v in wanted.items() if k not in shared}.items()
        found = [b for b in rows.values()
                 if without_stage1(b.settings) == shared and given <= b.settings.items()]  # fmt: skip
        return found[0] if len(found) == 1 else None
    return at_same_values(combo, wanted, rows, spec, configs)


def at_same_values(
    combo: TableRow,
    wanted: dict[str, str],
    rows: dict[SettingsKey, TableRow],
    spec: dict[str, str],
    configs: ComposedConfigs,
) -> TableRow | None:
    """The row that differs from `wanted` only where one of the two leaves a key at the value the
    other spells out, as its jobs' configs say: `target_task.lr=5e-5` beside a baseline that left
    the task's own 5e-5 (a grid extended later, its repeat of the baseline skipped as finished).
    Never on a key of the baseline's own (`spec`): `--baseline key=-` asks for the unset row."""
    for base in rows.values():
        ours = {k: v for k, v in wanted.items() if k not in base.settings}
        theirs = {k: v for k, v in base.settings.items() if k not in wanted}
        if (
            base is combo
            or not (ours or theirs)
            or any(key in spec for key in [*ours, *theirs])
            or any(base.settings[k] != v for k, v in wanted.items() if k in base.settings)
        ):
            continue
        jobs = combo.finished + combo.failed
        if configs.hold(base.finished + base.failed, ours) and configs.hold(jobs, theirs):
            return base
    return None


HYDRA_FILES = (Path(".hydra") / "finished" / "config.yaml", Path(".hydra") / "config.yaml")


class ComposedConfigs:
    """The job folders' composed configs, each read once per table (and only for a row no row
    pairs with exactly, and its candidates)."""

    def __init__(self) -> None:
        self._read: dict[Path, DictConfig | None] = {}

    def hold(self, jobs: list[Job], settings: dict[str, str]) -> bool:
        """Whether the jobs' configs hold each setting's value: at least one job's config is
        readable, and each readable one holds every value (`5e-05` holds `5e-5`)."""
        if not settings:
            return True
        readable = False
        for job in jobs:
            if job.run_dir not in self._read:
                self._read[job.run_dir] = _config(job.run_dir)
            if (config := self._read[job.run_dir]) is None:
                continue
            readable = True
            for key, text in settings.items():
                found = _text(config, key)
                if found is None or setting_value(found) != setting_value(text):
                    return False
        return readable


def _config(run_dir: Path) -> DictConfig | None:
    for name in HYDRA_FILES:
        try:
            config = OmegaConf.load(run_dir / name)
        except FileNotFoundError:
            continue
        except (OSError, YAMLError, OmegaConfBaseException):
            return None
        return config if isinstance(config, DictConfig) else None
    return None


def _text(config: DictConfig, key: str) -> str | None:
    """The value at `key` as an override would spell it (a list as JSON, which setting_value reads
    as the override grammar does), or None (none there, not resolvable, or a mapping)."""
    try:
        value = OmegaConf.select(config, key, throw_on_resolution_failure=False)
    except OmegaConfBaseException:
        return None
    if isinstance(value, ListConfig):
        return json.dumps(OmegaConf.to_container(value, resolve=True))
    if isinstance(value, bool):
        return str(value).lower()
    return None if value is None or not isinstance(value, int | float | str) else str(value)
