"""The run directory's record: `metrics.json`, written atomically, and the check that lets a rerun skip it."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

METRICS_FILE = "metrics.json"
FINGERPRINT_KEY = "run/config_fingerprint"


def config_fingerprint(config: dict[str, Any]) -> str:
    """A stable hash of the resolved run config (what decides whether a finished run can be reused)."""
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:16]


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    """Write to a temporary file in the same folder, then rename: readers see all of it or none."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(data, handle, indent=2, sort_keys=True)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes it private; results are for everyone to read
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_metrics(run_dir: Path, metrics: dict[str, float], fingerprint: str) -> Path:
    """Write `metrics.json` (flat `<stage>/<name>` keys plus the config fingerprint)."""
    path = run_dir / METRICS_FILE
    write_json_atomic(path, {**metrics, FINGERPRINT_KEY: fingerprint})
    return path


def read_finished(run_dir: Path, fingerprint: str) -> dict[str, float] | None:
    """The metrics of a finished run of this exact config in `run_dir`, or None if it must run."""
    path = run_dir / METRICS_FILE
    try:
        data = json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    if data.pop(FINGERPRINT_KEY, None) != fingerprint:
        return None
    return data
