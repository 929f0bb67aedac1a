"""One run at a time in a run folder: the claim a run holds on its folder while it trains, so a
second train.py given the same `hydra.run.dir` stops at once with one line. Before, the two mixed
their history and checkpoints, the later launch's Hydra files described the earlier run's
result, and the run that finished second overwrote the other's (`results.check_still_ours`
still guards that where the file system has no locks).

Serves no config group: `layerft/run.py` claims the folder of each run it trains.
"""

from __future__ import annotations

import contextlib
import errno
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from layerft.errors import LayerftError
from layerft.file_io import file_error
from layerft.file_lock import held_lock
from layerft.run_folder import RUN_LOCK, hydra_record

log = logging.getLogger(__name__)

NO_LOCKS = (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS)  # NFS without lockd, some FUSE mounts


@dataclass(frozen=True)
class Claim:
    """A run's hold on its folder: how to name another folder in a refusal (`hint`), and its
    Hydra files as its job started (a later launch given the same folder rewrites them before
    it is refused)."""

    run_dir: Path
    hint: str
    hydra_files: dict[str, bytes] = field(default_factory=dict)

    def put_back_hydra_files(self) -> None:
        """Write this run's Hydra files back where a later launch rewrote them."""
        record = hydra_record(self.run_dir)
        for name, content in self.hydra_files.items() if record is not None else ():
            path = record / name
            with contextlib.suppress(OSError):  # as keep_hydra_files: the results come first
                if not path.is_file() or path.read_bytes() != content:
                    path.write_bytes(content)


@contextlib.contextmanager
def claimed_folder(
    run_dir: Path, hint: str, hold: bool = True, hydra_files: dict[str, bytes] | None = None
) -> Iterator[Claim]:
    """Hold `run_dir` while this run trains there (`hold`: the first process; torchrun's others
    share its folder); another run holding it stops this one with one line. `hydra_files`: the
    run's Hydra files as its job started (hydra_job reads them first thing; none outside Hydra)."""

    def busy(holder: str) -> None:
        raise LayerftError(
            f"{run_dir} is in use by another run ({holder or 'another process'}); run this one in "
            f"another folder ({hint})"
        )

    path = run_dir / RUN_LOCK
    with contextlib.ExitStack() as stack:
        if hold:
            try:
                stack.enter_context(held_lock(path, busy))  # a read-only folder: one line
                stack.callback(path.unlink, missing_ok=True)  # before the lock is let go
            except OSError as err:  # flock's own
                if err.errno not in NO_LOCKS:
                    raise file_error("write", path, err) from err
                # held_lock made the file before flock failed: no lock file outlives the run, which
                # a later run would read as a killed run's
                stack.callback(path.unlink, missing_ok=True)
                log.warning(
                    "%s: no file locks (%s); a second run there is not stopped", run_dir, err
                )
        yield Claim(run_dir, hint, dict(hydra_files or {}))
