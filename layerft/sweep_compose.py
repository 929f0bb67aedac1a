"""A grid job's config as Hydra composes it, composed once per choice of config groups
(`JobComposer`): what `layerft/sweep_grid.py`'s `expand` plans each combination from.

Serves the `sweep` config group (conf/sweep/<grid>.yaml), as `layerft/sweep_grid.py` does.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Sequence

from hydra import compose
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from omegaconf import DictConfig, open_dict

from layerft.config_errors import CONFIG_ERRORS
from layerft.file_settings import shadowed_options

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
        # An option file of one's own folder that a shipped one of its name hides (file_settings).
        self.shadowed: set[str] = set()

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
                for line in set(shadowed_options(base.hydra)) - self.shadowed:
                    log.warning("%s", line)  # the plan says it once; each job, as it runs
                    self.shadowed.add(line)
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
