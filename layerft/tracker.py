"""The `tracker` config group: one Weights & Biases run per train.py run, or none. What a run
logs through (`Tracker`) and its two backends are `layerft/tracker_backends.py`'s.

Credentials never pass through here: W&B reads its key from its own environment or netrc, and
only the composed config (which has no credential keys) is sent; W&B's metadata (which records the
command line) is off when the command line sets a credential (`hydra.job.env_set.WANDB_API_KEY=`).
"""

from __future__ import annotations

import configparser
import contextlib
import logging
import netrc
import os
import shutil
import sys
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from omegaconf import MISSING

from layerft import tracker_backends
from layerft.credentials import is_credential, without_secrets
from layerft.errors import error_line
from layerft.network import unreachable
from layerft.run_record import RESULTS_VERSION
from layerft.tracker_backends import NoTracker, Tracker, WandbTracker, check_wandb_settings

log = logging.getLogger(__name__)


class TrackerBackend(str, Enum):
    none = "none"
    wandb = "wandb"


class TrackerMode(str, Enum):
    auto = "auto"  # online with credentials, offline (files to `wandb sync` later) without
    online = "online"
    offline = "offline"


@dataclass
class TrackerConfig:
    """Schema of one tracker option."""

    name: str = MISSING
    backend: TrackerBackend = MISSING
    project: str = "layerft"
    entity: str | None = None
    mode: TrackerMode = TrackerMode.auto
    group: str | None = None
    tags: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.backend == TrackerBackend.wandb:  # (unread by tracker=none)
            check_wandb_settings(self.project, self.tags)


def has_wandb_credentials(url: str) -> bool:
    """Whether W&B could log in without asking, as far as its files tell: a key (or a token file)
    in the environment, or a key in the netrc file W&B reads ($NETRC, else ~/.netrc, else ~/_netrc)
    for `url`'s host, a W&B host (named wandb or coreweave) or any (`default`). A key W&B then
    does not use costs an online start, which goes offline with a warning."""
    if os.environ.get("WANDB_API_KEY") or os.environ.get("WANDB_IDENTITY_TOKEN_FILE"):
        return True
    named = os.environ.get("NETRC")
    files = [Path(named).expanduser()] if named else [Path.home() / n for n in (".netrc", "_netrc")]
    path = next((file for file in files if file.exists()), None)
    try:  # a file named: no permission check
        hosts = netrc.netrc(str(path)).hosts if path else {}
    except (OSError, UnicodeError, netrc.NetrcParseError):
        return False
    ours = urlsplit(url).netloc
    return any(
        password and (host in (ours, "default") or "wandb" in host or "coreweave" in host)
        for host, (_, _, password) in hosts.items()
    )


def resolve_mode(cfg: TrackerConfig, settings: dict[str, str] | None = None) -> str:
    """The W&B mode: under `auto`, WANDB_MODE, else the `mode` `wandb offline` / `wandb online`
    saved in W&B's settings files (`settings`, read here if None), else whether a key is there."""
    if cfg.mode != TrackerMode.auto:
        return cfg.mode.value
    if os.environ.get("WANDB_MODE"):
        return os.environ["WANDB_MODE"]
    settings = wandb_settings() if settings is None else settings
    if (saved := _SAVED_MODES.get(settings.get("mode", ""))) is not None:
        return saved
    return "online" if has_wandb_credentials(wandb_url(settings)) else "offline"


_SAVED_MODES = {"online": "online", "run": "online", "offline": "offline", "dryrun": "offline",
                "disabled": "disabled"}  # what `mode` may say (run, dryrun: older words)  # fmt: skip


def wandb_url(settings: dict[str, str]) -> str:
    """The W&B host a run talks to: WANDB_BASE_URL, else the `base_url` that `wandb login --host`
    saved in W&B's settings files (`settings`: wandb_settings())."""
    return os.environ.get("WANDB_BASE_URL") or settings.get("base_url") or _default_url()


def _default_url() -> str:
    """The host the installed W&B talks to by default (0.31 moved it to api.forge.coreweave.com)."""
    try:
        return tracker_backends.import_wandb("wandb.sdk.lib.urls").DEFAULT_BASE_URL
    except (ImportError, AttributeError):  # W&B before 0.31 (0.23-0.30: no such name), or none
        return "https://api.wandb.ai"


def wandb_settings() -> dict[str, str]:
    """W&B's settings files as W&B reads them: the global one ($WANDB_CONFIG_DIR/settings, else
    ~/.config/wandb/settings), then the workspace's (wandb/settings in $WANDB_DIR, else here),
    whose keys win; unreadable ones are empty."""
    folder = os.environ.get("WANDB_CONFIG_DIR") or Path.home() / ".config" / "wandb"
    workspace = Path(os.environ.get("WANDB_DIR") or ".") / "wandb" / "settings"
    settings: dict[str, str] = {}
    for path in (Path(folder) / "settings", workspace):
        parser = configparser.ConfigParser(interpolation=None)
        with contextlib.suppress(OSError, UnicodeError, configparser.Error):
            parser.read(path, encoding="utf-8")
            settings |= dict(parser.items("default")) if parser.has_section("default") else {}
    return settings


def wandb_runs(run_dir: Path) -> list[Path]:
    """The W&B run folders in `run_dir`."""
    folder = run_dir / "wandb"
    return [*folder.glob("offline-run-*"), *folder.glob("run-*")]


def remove_stale_runs(
    run_dir: Path, runs: list[Path] | None = None, whose: str = "an unfinished attempt"
) -> None:
    """Delete the W&B run folders `runs` (default: all) that earlier attempts left in `run_dir`
    (a rerun syncs one run)."""
    folder = run_dir / "wandb"
    stale = wandb_runs(run_dir) if runs is None else runs
    latest = folder / "latest-run"
    if not stale and (runs is not None or not latest.is_symlink()):
        return
    for path in stale:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()
    if runs is None:  # all of them: the link points at one of them
        latest.unlink(missing_ok=True)
    log.info("removed %d W&B run folder(s) of %s in %s", len(stale), whose, folder)


def _warn_offline(reason: str) -> None:
    log.warning("W&B: %s; logging offline instead (wandb sync the run later)", reason)


@dataclass(frozen=True)
class TrackedRun:
    """What one W&B run is. `config` and `choices` (as `choice/<group>` keys and tags) describe
    it; `group`: the sweep; `job_type`: the stage layout; `selection`: each stage's selection
    metric (higher is better?), whose W&B summary is its best value so far; `run_id`: a fixed id, so that
    each start resumes the same W&B run (online) or syncs into it (offline)."""

    name: str
    config: dict[str, Any]
    choices: dict[str, str] = field(default_factory=dict)
    group: str | None = None
    job_type: str = "target"
    selection: dict[str, bool] = field(default_factory=dict)
    run_id: str | None = None


def start_tracker(cfg: TrackerConfig, run_dir: Path, tracked: TrackedRun) -> Tracker:
    """Open the W&B run `tracked` in `run_dir`, or return a no-op tracker.

    An online run whose host cannot be reached, or which W&B fails to start, goes offline with one
    warning: tracking never stops an experiment.
    """
    if cfg.backend == TrackerBackend.none:
        return NoTracker()
    settings = wandb_settings()  # read once: both the mode and the host may come from them
    mode = resolve_mode(cfg, settings)
    url = wandb_url(settings)
    if mode == "online" and (reason := unreachable(url)):
        _warn_offline(f"{url} unreachable ({reason})")
        mode = "offline"
    before = set(wandb_runs(run_dir))
    try:
        try:
            run = _init(cfg, run_dir, tracked, mode)
        except Exception as err:  # W&B raises its own errors and plain ones (bad key, timeout)
            if mode != "online":
                raise
            # its type and first line, the API key masked should a library echo it
            _warn_offline(f"online start failed ({without_secrets(error_line(err))})")
            remove_stale_runs(run_dir, [p for p in wandb_runs(run_dir) if p not in before])
            mode = "offline"
            run = _init(cfg, run_dir, tracked, mode)
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM (interrupts) inside either wandb.init
        _close_started_run()
        raise
    log.info("W&B run %s (%s) in %s", run.id, mode, run.dir)
    return WandbTracker(run, tracked.selection)


def _close_started_run() -> None:
    """The run a stop left half-started inside wandb.init, closed as failed saying how it stopped:
    W&B's own exit hook closed it as finished (exit code 0), a stopped job's run looking done."""
    from layerft.interrupts import stopped_how

    wandb = sys.modules.get("wandb")  # None: the stop came before it was imported, no run started
    if wandb is not None and wandb.run is not None:
        WandbTracker(wandb.run).finish(stopped_how())


def _init(cfg: TrackerConfig, run_dir: Path, tracked: TrackedRun, mode: str) -> Any:
    """`wandb.init` of `tracked` in `mode`."""
    wandb = tracker_backends.import_wandb()  # only a W&B run pays for importing it

    choices = sorted(tracked.choices.items())
    # W&B's metadata records the command line: off when that holds a credential.
    secret_in_argv = any(is_credential(arg) for arg in sys.argv[1:])
    return wandb.init(
        project=cfg.project,
        entity=cfg.entity,
        mode=mode,
        dir=str(run_dir),
        name=tracked.name,
        group=cfg.group or tracked.group,
        job_type=tracked.job_type,
        tags=[*cfg.tags, *(f"{g}:{o}"[:64] for g, o in choices)],
        # The results version filters W&B's runs as it marks the tables' rows.
        config={
            **tracked.config,
            **{f"choice/{g}": o for g, o in choices},
            "layerft/results_version": RESULTS_VERSION,
        },
        id=tracked.run_id,
        resume="allow" if tracked.run_id else None,
        reinit="finish_previous",
        settings=wandb.Settings(
            console="off", x_disable_stats=True, silent=True, x_disable_meta=secret_in_argv
        ),
    )
