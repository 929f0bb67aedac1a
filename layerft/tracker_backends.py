"""What a run logs through (`Tracker`) and the two backends of the `tracker` config group behind
it: `NoTracker` (tracker=none, files only) and `WandbTracker` (one W&B run).
`layerft/tracker.py` holds the group's schema and opens one (`start_tracker`).
"""

from __future__ import annotations

import contextlib
import importlib
import io
import math
import os
import sys
from types import ModuleType
from typing import TYPE_CHECKING, Any, Protocol

from layerft.credentials import without_secrets
from layerft.errors import LayerftError
from layerft.run_record import ERROR_KEY

# What wandb.init takes as its mode, from WANDB_MODE too (run, dryrun: older words).
WANDB_MODES = ("online", "offline", "disabled", "shared", "run", "dryrun")

if TYPE_CHECKING:
    from layerft.stage1 import Stage1Outcome


def import_wandb(module: str = "wandb") -> ModuleType:
    """`import wandb` (or one of its modules), leaving none of its modules behind where a Ctrl-C or
    SIGTERM cuts the package's import short: Python keeps the submodules loaded so far, and every
    later import of it in the process (the stopped job's run closed, the sweep's results run)
    failed on them, "partially initialized module 'wandb' has no attribute 'errors'": a traceback
    and exit code 1 instead of the stop's line."""
    try:
        return importlib.import_module(module)
    except BaseException:
        if "wandb" not in sys.modules:  # the package's own import failed, not only `module`'s
            for name in [name for name in sys.modules if name.split(".")[0] == "wandb"]:
                del sys.modules[name]
        raise


class Tracker(Protocol):
    def log(self, metrics: dict[str, float], step: int) -> None: ...
    def stage1(self, outcome: Stage1Outcome, produced: bool) -> None: ...
    def summarize(self, metrics: dict[str, float]) -> None: ...
    def finish(self, error: str | None = None) -> None: ...


class NoTracker:
    """tracker=none: files only."""

    def log(self, metrics: dict[str, float], step: int) -> None:
        pass

    def stage1(self, outcome: Stage1Outcome, produced: bool) -> None:
        pass

    def summarize(self, metrics: dict[str, float]) -> None:
        pass

    def finish(self, error: str | None = None) -> None:
        pass


class WandbTracker:
    """A W&B run whose per-stage metrics each follow their own step axis (`<stage>/step`), and
    whose summary holds each selection metric's best value so far (`selection`: its key, whether
    higher is better), a plain number whether the run finishes or not."""

    def __init__(self, run: Any, selection: dict[str, bool] | None = None) -> None:
        self.run = run
        self.stages: set[str] = set()
        self.selection = dict(selection or {})
        self.best: dict[str, float] = {}

    def log(self, metrics: dict[str, float], step: int) -> None:
        for stage in {key.split("/")[0] for key in metrics} - self.stages:
            self.run.define_metric(f"{stage}/step")
            self.run.define_metric(f"{stage}/*", step_metric=f"{stage}/step")
            # W&B gives a metric defined by name no glob's step axis: its own, and no summary
            # of W&B's (its "max" is a {"max": x} that a finished run's summary overwrote)
            for key in (k for k in self.selection if k.startswith(f"{stage}/")):
                self.run.define_metric(key, step_metric=f"{stage}/step", summary="none")
            self.stages.add(stage)
        for stage in {key.split("/")[0] for key in metrics}:
            metrics = {**metrics, f"{stage}/step": step}
        self.run.log(metrics)
        for key, higher in self.selection.items():
            if key in metrics and self._improves(key, metrics[key], higher):
                self.best[key] = metrics[key]
                self.run.summary[key] = metrics[key]

    def _improves(self, key: str, value: float, higher: bool) -> bool:
        """Whether `value` beats the best so far (NaN never does: a constant prediction's r)."""
        best = self.best.get(key)
        if math.isnan(value):
            return False
        return best is None or (value > best if higher else value < best)

    def stage1(self, outcome: Stage1Outcome, produced: bool) -> None:
        """The stage-1 result as an artifact: logged (output) by the run that trained it (`produced`:
        also by a forced rerun in that run's folder, which removes that run's record), used
        (input) by every run that reused it, so the dashboard shows the lineage.

        The artifact references the stored files (file:// with checksums) instead of uploading
        weights. Offline, W&B refuses `use_artifact`; the draft artifact is then recorded with
        `use_after_commit`, which is what `use_artifact` does online with a draft, and `wandb sync`
        links it to the same version (same files, same digest).
        """
        wandb = import_wandb()

        result = outcome.result
        if not result.stored:  # reuse_stage1=false: nothing on disk to link
            return
        artifact = wandb.Artifact(
            f"stage1-{result.path.name}", type="stage1", metadata={"metrics": result.metrics}
        )
        with contextlib.redirect_stderr(io.StringIO()):  # its checksum note, printed regardless
            artifact.add_reference(result.path.resolve().as_uri(), name="stage1")
        if produced:
            self.run.log_artifact(artifact)
        elif not self.run.settings._offline:
            self.run.use_artifact(artifact)
        else:
            self.run._log_artifact(
                artifact, aliases=[], is_user_created=True, use_after_commit=True
            )

    def summarize(self, metrics: dict[str, float]) -> None:
        self.run.summary.update(metrics)

    def finish(self, error: str | None = None) -> None:
        """Close the run: finished, or failed with `error` (its one line, as failed.json has it) in
        the summary's `run/error`, so that W&B says why."""
        if error is not None:
            self.run.summary[ERROR_KEY] = without_secrets(error)
        self.run.finish(exit_code=0 if error is None else 1)


def check_wandb_settings(project: str, tags: list[str]) -> None:
    """Refuse a project name or tag that wandb.init would refuse with a traceback, after stage 1
    (W&B's own rules: a project of at most 128 characters, none of `/\\#?%:`; tags of 1 to 64),
    and a WANDB_MODE it refuses (W&B reads it whatever the tracker's `mode` says)."""
    if (mode := os.environ.get("WANDB_MODE")) and mode not in WANDB_MODES:
        raise LayerftError(
            f"WANDB_MODE={mode!r} is no W&B mode ({', '.join(WANDB_MODES)}); set one, or unset it"
        )
    if len(project) > 128 or (bad := sorted(set(project) & set("/\\#?%:"))):
        why = "is over 128 characters" if len(project) > 128 else f"holds {''.join(bad)!r}"
        raise LayerftError(f"tracker: project {project!r} {why}, which W&B refuses")
    for tag in tags:
        if not 1 <= len(tag) <= 64:
            raise LayerftError(
                f"tracker: tags hold {tag[:70]!r}, of {len(tag)} characters; W&B takes 1 to 64"
            )
