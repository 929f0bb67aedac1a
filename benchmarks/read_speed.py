"""How long `read_records` takes on large local files: seconds per file and tree.

Usage: python benchmarks/read_speed.py [--repeats 3] TREE [TREE ...]

Writes three generated files to a temporary folder (~285k SNLI-like records with a guid: JSON
lines, the same as a JSON array, and as CSV without the guid), then reads each with
`layerft.readers.read_records` in a fresh process per tree, interleaved; prints the fastest of
`repeats` reads (file reading is what is timed: the process start and imports are not).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

RECORDS = 285_000
TIMER = (
    "import sys, time; from layerft.readers import read_records; "
    "start = time.perf_counter(); n = len(read_records(sys.argv[1])); "
    "print(time.perf_counter() - start, n)"
)


def write_files(folder: Path) -> list[Path]:
    records = [
        {
            "guid": f"snli-{i:07d}",
            "premise": f"A person in a blue shirt is riding a bicycle down street number {i}.",
            "hypothesis": f"Someone rides a bike {i % 97} times.",
            "label": i % 3,
        }
        for i in range(RECORDS)
    ]
    lines, array, table = folder / "big.jsonl", folder / "big.json", folder / "big.csv"
    lines.write_text("".join(json.dumps(r) + "\n" for r in records))
    array.write_text(json.dumps(records, indent=1))
    with table.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["premise", "hypothesis", "label"])
        writer.writerows([r["premise"], r["hypothesis"], r["label"]] for r in records)
    return [lines, array, table]


def seconds(tree: Path, path: Path) -> float:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    done = subprocess.run(
        [sys.executable, "-c", TIMER, str(path)], env=env, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise SystemExit(f"{tree}: {path.name}: {done.stderr[-500:]}")
    elapsed, count = done.stdout.split()
    assert int(count) == RECORDS, count
    return float(elapsed)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("trees", nargs="+", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        files = write_files(Path(folder))
        times: dict[tuple[Path, Path], list[float]] = {}
        for _ in range(args.repeats):
            for path in files:
                for tree in args.trees:
                    times.setdefault((path, tree), []).append(seconds(tree.resolve(), path))
        print(f"fastest of {args.repeats} reads, seconds ({RECORDS} records)")
        print("| file | " + " | ".join(str(t) for t in args.trees) + " |")
        print("|---|" + "---|" * len(args.trees))
        for path in files:
            size = path.stat().st_size / 1e6
            cells = [f"{min(times[path, t]):.2f}" for t in args.trees]
            print(f"| {path.name} ({size:.0f} MB) | " + " | ".join(cells) + " |")
