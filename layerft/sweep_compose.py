"""A grid job's config as Hydra composes it, composed once per choice of config groups
(`JobComposer`), and whether the stage 1 it needs is already stored (`stage1_stored`): what
`layerft/sweep_grid.py`'s `expand` plans each combination from.

Serves the `sweep` config group (conf/sweep/<grid>.yaml), as `layerft/sweep_grid.py` does.
"""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from hydra import compose
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from omegaconf import DictConfig, open_dict

from layerft.config_errors import CONFIG_ERRORS

if TYPE_CHECKING:
    from layerft.stage1 import Stage1Store

log = logging.getLogger(__name__)


class JobComposer:
    """Each job's config as `compose("config", [f"sweep={grid}", *job])` returns it, composing
    once per choice of config groups (composing takes ~0.4 s, and most of a grid's axes are
    values: seeds, rates).

    Hydra composes a config in two steps: the groups the overrides choose (its defaults list),
    then every other override applied to that config in command-line order
    (`_apply_overrides_to_config`). The first step is shared by every job choosing the same
    groups; the second is done here on a copy, as Hydra does it. Anything this does not mirror
    exactly (an override that fails, a group only Hydra knew) is composed by Hydra itself, so its
    errors are Hydra's own.
    """

    def __init__(self, grid: str) -> None:
        from hydra.core.global_hydra import GlobalHydra

        self.grid = grid
        self.repo = GlobalHydra.instance().config_loader().repository  # type: ignore[attr-defined]
        # the groups' config (without `hydra`) and the groups it chose, by the overrides composed
        self.bases: dict[tuple[str, ...], tuple[DictConfig, set[str]]] = {}

    def compose(self, job: Sequence[str]) -> DictConfig:
        from hydra._internal.config_loader_impl import ConfigLoaderImpl

        values: list[Override] = []
        groups_and_hydra: list[str] = []
        for override in OverridesParser.create().parse_overrides(list(job)):
            if self.applied_after(override):
                values.append(override)
            else:
                groups_and_hydra.append(override.input_line)
        composed = tuple(groups_and_hydra)
        try:
            if composed not in self.bases:
                base = compose(
                    "config", overrides=[f"sweep={self.grid}", *composed], return_hydra_config=True
                )
                groups = set(base.hydra.runtime.choices)
                with open_dict(base):
                    del base["hydra"]
                self.bases[composed] = base, groups
            base, groups = self.bases[composed]
            if not groups & {o.key_or_group for o in values}:
                cfg = copy.deepcopy(base)
                ConfigLoaderImpl._apply_overrides_to_config(values, cfg)
                return cfg
        except CONFIG_ERRORS:
            pass  # Hydra's own message, from composing the job whole
        return compose("config", overrides=[f"sweep={self.grid}", *job])

    def applied_after(self, override: Override) -> bool:
        """An override Hydra applies to the composed config (not a group choice, not under `hydra`,
        whose node the shared config drops)."""
        return (
            not override.is_sweep_override()
            and not override.is_hydra_override()
            and (
                isinstance(override.value(), dict)
                or not self.repo.group_exists(override.key_or_group)
            )
        )


def stage1_stored(
    store: Stage1Store,
    settings_digest: str,
    warned: set[Path],
    model_files: dict[str, str] | None = None,
) -> bool:
    """Whether the store holds a stage 1 trained with these settings; a stored folder without its
    weights (which the run would stop on) is warned about once, not counted. With `model_files`
    (the model's, as the run keys them: none for a hub id or tiny), only one keyed by those files
    counts (Stage1Key.model_files: one stored from other files, or before files were keyed, the
    run trains again); None: the plan cannot read them yet (a converted folder not written)."""
    from layerft.stage1 import RESULT_FILE, WEIGHTS_FILE

    complete, damaged = store.stored_with_settings(settings_digest)
    for folder in sorted(set(damaged) - warned):
        warned.add(folder)
        log.warning(
            "stored stage-1 result %s has no %s: a run on that data stops there; remove the folder "
            "to train it again",
            folder,
            WEIGHTS_FILE,
        )
    return any(model_files is None or _keyed_files(f / RESULT_FILE) in (None, model_files)
               for f in complete)  # fmt: skip


def _keyed_files(result: Path) -> dict[str, str] | None:
    """The model files a stored stage 1's key holds (none before they were keyed); None where
    its record cannot be read (the run names it, should it load it)."""
    try:
        key = json.loads(result.read_text(encoding="utf-8"))["key"]
        return dict(key.get("model_files", {}))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
