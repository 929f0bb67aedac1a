"""The sweeper of `python sweep.py <grid>`: Hydra's basic sweeper, without the jobs sweep.py found
finished.

sweep.py fingerprints every combination to plan the sweep, so before the launch it knows which have
a finished result. Launched anyway, each of them costs Hydra two compositions (it validates the
batch, then composes the job) and the job its imports, only for the job to find its result and
return: most of a resumed sweep's start. sweep.py stores this sweeper's config with the finished
jobs for its launch (`store_skipping_sweeper`); a job it does not list is launched as before (and
skips itself if it is finished). It also leaves out a job whose config an earlier job of the grid
runs (a baseline under each of several layer splits: no split is read without stage 1), which a
parallel launcher would otherwise train at the same time, a job whose folder holds another
config's result, which it would refuse to overwrite (its failure recorded in that folder), and a
job finished on data or model files changed since, which would stop on them.

A `glob()` sweep lists the options of the run's search path too (`hydra.searchpath`), which
Hydra 1.3's sweeper leaves out (hydra issue #1942) though its jobs compose with them: what sweep.py
planned (`searched_loader`, layerft/sweep_hydra.py).

Serves the `sweep` config group: sweep.py launches each grid with this sweeper
(`hydra/sweeper=layerft_skipping`).
"""

# No `from __future__ import annotations`: Hydra's plugin scan runs this module before it is in
# sys.modules, where @dataclass looks up string annotations.
import copy
import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from hydra._internal.config_loader_impl import ConfigLoaderImpl
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.config_loader import ConfigLoader
from hydra.core.config_store import ConfigStore
from hydra.core.override_parser.types import Override

log = logging.getLogger(__name__)

NAME = "layerft_skipping"  # `hydra/sweeper=layerft_skipping`, stored by sweep.py for each launch
GRID_GROUP = "sweep"  # the group choosing the grid: in the sweeper's jobs, not in the listed ones
SEARCHPATH = "hydra.searchpath in command-line"  # the provider Hydra names its folders by


@dataclass
class SkippingSweeperConf:
    _target_: str = "hydra_plugins.layerft_launcher.skipping_sweeper.SkippingSweeper"
    max_batch_size: int | None = None  # as BasicSweeper's: jobs per launch, null for all
    params: dict[str, str] | None = None
    # The jobs not to launch: each one's overrides, less the grid's choice (`sweep=<grid>`).
    finished: list[list[str]] = field(default_factory=list)
    repeats: list[list[str]] = field(default_factory=list)  # the run of an earlier job
    blocked: list[list[str]] = field(default_factory=list)  # their folder: another config's result
    stale: list[list[str]] = field(default_factory=list)  # finished on files changed since


def store_skipping_sweeper(
    finished: Sequence[Sequence[str]],
    repeats: Sequence[Sequence[str]] = (),
    blocked: Sequence[Sequence[str]] = (),
    stale: Sequence[Sequence[str]] = (),
) -> str:
    """Store this sweeper's config with `finished`, `repeats`, `blocked` and `stale` as the jobs
    to skip; returns the override that chooses it."""
    node = SkippingSweeperConf(
        finished=[list(job) for job in finished],
        repeats=[list(job) for job in repeats],
        blocked=[list(job) for job in blocked],
        stale=[list(job) for job in stale],
    )
    ConfigStore.instance().store(group="hydra/sweeper", name=NAME, node=node, provider="layerft")
    return f"hydra/sweeper={NAME}"


def searched_loader(loader: ConfigLoader, folders: Sequence[str]) -> ConfigLoader:
    """A config loader whose repository holds the search path's `folders` too, where Hydra puts
    them to compose a config (after the others, before the structured schema): what it lists (a
    glob()'s options, the grids) is then what composes."""
    if not folders:
        return loader
    path = copy.deepcopy(loader.get_search_path())
    schema = path.get_path().pop(-1)
    for folder in folders:
        path.append(provider=SEARCHPATH, path=folder)
    path.append(provider=str(schema.provider), path=str(schema.path))
    return ConfigLoaderImpl(config_search_path=path)


class SkippingSweeper(BasicSweeper):
    """BasicSweeper leaving out the `finished` jobs, in batches as full as before."""

    def __init__(
        self,
        max_batch_size: int | None,
        params: dict[str, str] | None = None,
        finished: Sequence[Sequence[str]] = (),
        repeats: Sequence[Sequence[str]] = (),
        blocked: Sequence[Sequence[str]] = (),
        stale: Sequence[Sequence[str]] = (),
    ) -> None:
        super().__init__(max_batch_size, params)
        self.finished = {frozenset(job) for job in finished}
        # Counted: a value repeated in a sweep list makes jobs of identical overrides, the first
        # of them the run that serves the others.
        self.repeats = Counter(frozenset(job) for job in repeats)
        self.blocked = {frozenset(job) for job in blocked}
        self.stale = {frozenset(job) for job in stale}

    def split_arguments(  # type: ignore[override]  # BasicSweeper's is static; sweep() calls self.
        self, overrides: list[Override], max_batch_size: int | None
    ) -> list[list[list[str]]]:
        if self.hydra_context is not None and self.config is not None:  # set up to sweep
            folders = list(self.config.hydra.searchpath)
            options = searched_loader(self.hydra_context.config_loader, folders)
            for override in overrides:  # what a glob() lists
                override.config_loader = options
        [jobs] = BasicSweeper.split_arguments(overrides, None)
        reasons = {
            "finished": "finished (sweep.py --force reruns them)",
            "repeat": "the run of an earlier job of the grid (the same config)",
            "blocked": "their folder holds another config's result (blocked)",
            "stale": "finished on data or model files changed since (sweep.py --force reruns them)",
        }
        left_out = self.left_out(jobs)
        for why, reason in reasons.items():
            if skipped := sum(why == job_why for job_why in left_out):
                log.info("Skipping %d of %d jobs: %s", skipped, len(jobs), reason)
        kept = [job for job, why in zip(jobs, left_out, strict=True) if why is None]
        if not kept:  # no batch (a launcher may refuse an empty one)
            return []
        return list(BasicSweeper.split_overrides_to_chunks(kept, max_batch_size))

    def left_out(self, jobs: Sequence[Sequence[str]]) -> list[str | None]:
        """Why each job is left out ("finished", "repeat", "blocked", "stale"), or None. Of the jobs with
        one set of overrides, the last ones are the repeats (the first is the run serving them)."""
        total = Counter(self.listed(job) for job in jobs)
        seen: Counter[frozenset[str]] = Counter()
        why: list[str | None] = []
        for job in jobs:
            listed = self.listed(job)
            seen[listed] += 1
            if listed in self.finished:
                why.append("finished")
            elif listed in self.stale:
                why.append("stale")
            elif seen[listed] > total[listed] - self.repeats[listed]:
                why.append("repeat")
            else:
                why.append("blocked" if listed in self.blocked else None)
        return why

    @staticmethod
    def listed(job: Sequence[str]) -> frozenset[str]:
        """A job's overrides as sweep.py lists them (without the grid's choice), in any order."""
        return frozenset(o for o in job if o.split("=", 1)[0] != GRID_GROUP)
