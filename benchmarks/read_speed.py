"""How long `read_records` takes on large local files: seconds per file and tree.

Usage: python benchmarks/read_speed.py [--repeats 3] TREE [TREE ...]

Writes three generated files to a temporary folder (285,000 SNLI-like records with a guid: JSON
lines, the same as a JSON array, and as CSV without the guid), then reads each with
`layerft.readers.read_records` (where trees before and after the readers split both have it) in a fresh process per tree, interleaved; prints the median of
`repeats` reads (file reading is what is timed: the process start and imports are not).
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from config_errors import compare  # benchmarks/, this script's folder

RECORDS = 285_000
TIMER = (
    "import sys, time; from layerft.readers import read_records; "
    "start = time.perf_counter(); n = len(read_records(sys.argv[1])); "
    "print(time.perf_counter() - start, n)"
)
SCRATCH = Path(tempfile.mkdtemp(prefix="read_speed-"))
COMMANDS = {
    "JSON lines (49 MB)": ["big.jsonl"],
    "JSON array (52 MB)": ["big.json"],
    "CSV (30 MB)": ["big.csv"],
}


def write_files() -> None:
    records = [
        {
            "guid": f"snli-{i:07d}",
            "premise": f"A person in a blue shirt is riding a bicycle down street number {i}.",
            "hypothesis": f"Someone rides a bike {i % 97} times.",
            "label": i % 3,
        }
        for i in range(RECORDS)
    ]
    (SCRATCH / "big.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    (SCRATCH / "big.json").write_text(json.dumps(records, indent=1))
    with (SCRATCH / "big.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["premise", "hypothesis", "label"])
        writer.writerows([r["premise"], r["hypothesis"], r["label"]] for r in records)


def seconds(tree: Path, args: list[str]) -> float:
    """Seconds `read_records` takes on the file named by `args` with `tree`'s layerft."""
    if not (SCRATCH / "big.csv").exists():
        write_files()
    env = {**os.environ, "PYTHONPATH": str(tree)}
    command = [sys.executable, "-c", TIMER, str(SCRATCH / args[0])]
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{tree}: {args[0]}: {done.stderr[-500:]}")
    elapsed, count = done.stdout.split()
    assert int(count) == RECORDS, count
    return float(elapsed)


if __name__ == "__main__":
    compare(COMMANDS, seconds, __doc__)
