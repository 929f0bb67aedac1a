"""Kill `sweep.py demo` at random moments, resume it, and check that nothing finished is lost.

Usage: python benchmarks/chaos_resume.py [--iterations 25] [--seed 1] [--max-delay 25]
       [--workdir DIR] [-- extra overrides]

First runs `sweep.py demo model=tiny seed=1,2` (8 jobs) uninterrupted into DIR/ref. Then, round
after round (a fresh `--dir` and `cache_dir` each, so stage 1 is stored again), starts the same
command in a process group of its own, waits a random delay (seeded: the printed delays replay
a run; every 4th timed from the start, so planning is hit too, the others from the line where
Hydra launches the jobs, as planning alone can outlast the delay), sends SIGKILL, SIGTERM or
SIGINT in turn to the whole group, and restarts it, until a run ends by itself; rounds go on
until `--iterations` starts. After each start it checks:
  (a) every metrics.json that existed before it is still there, byte for byte, same inode and
      mtime (a finished result is never lost, rewritten or retrained);
  (b) the hidden temporary files and `*.partial` left over (listed, not a failure: none is read
      as a result);
  (c) `sweep.py ... --dry-run` exits 0 without a traceback and marks done exactly the job
      folders holding a metrics.json;
  (d) the restart's `Skipping N of 8 jobs: finished` counts every job done before it;
  and the exit code: 0, -9 after SIGKILL, 143 (SIGTERM) or 130 (SIGINT), or -15/-2 when the
  signal came before the interpreter could handle it. At the end of each round every job's
  metrics (less `run/*` and timings) equal the reference's, results.csv equals the reference's
  but for runtime_s, and no output or job log holds a traceback. Exit code 1 on any violation.
Takes some 10-15 minutes on 2 CPU cores. No timing is asserted.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SIGNALS = [signal.SIGKILL, signal.SIGTERM, signal.SIGINT]
# -15/-2: the signal came before Python installed a handler (interpreter start-up)
EXIT_CODES = {None: [0], "SIGKILL": [-9], "SIGTERM": [143, -15], "SIGINT": [130, -2]}
TIMING = re.compile(r"runtime|per_second|seconds|rss|paused")
violations: list[str] = []


def violate(message: str) -> None:
    violations.append(message)
    print("VIOLATION: " + message, flush=True)


def command(folder: Path, cache: Path, extra: list[str], *flags: str) -> list[str]:
    return [sys.executable, "sweep.py", "demo", "model=tiny", "seed=1,2", f"cache_dir={cache}",
            *extra, "--dir", str(folder), *flags]  # fmt: skip


def metrics_files(folder: Path) -> dict[str, tuple[bytes, int, int]]:
    found = {}
    for path in sorted(folder.glob("*/metrics.json")):
        stat = path.stat()
        found[path.parent.name] = (path.read_bytes(), stat.st_ino, stat.st_mtime_ns)
    return found


def numbers(path: Path) -> dict:
    data = json.loads(path.read_text())
    return {k: v for k, v in data.items() if not k.startswith("run/") and not TIMING.search(k)}


def group_gone(pgid: int, limit: float = 60) -> bool:
    end = time.time() + limit
    while time.time() < end:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.2)
    return False


def leftovers(*roots: Path) -> list[str]:
    return [
        str(p) for root in roots for p in root.rglob("*")
        if "wandb" not in p.parts and ".hydra" not in p.parts
        and (p.name.endswith((".tmp", ".partial", ".old")) or p.parent.name == "stage1"
             and p.name.startswith("."))
    ]  # fmt: skip


def check_dry_run(folder: Path, cache: Path, extra: list[str], done_now: set[str]) -> None:
    done = subprocess.run(
        command(folder, cache, extra, "--dry-run"), cwd=REPO, capture_output=True, text=True
    )
    text = done.stdout + done.stderr
    if done.returncode != 0 or "Traceback" in text:
        violate(f"--dry-run exit code {done.returncode}: {text[-800:]}")
    elif (marked := set(re.findall(r"\[done\] (\S+)", text))) != done_now:
        violate(f"--dry-run marks done {sorted(marked)}; metrics.json in {sorted(done_now)}")


def csv_rows(path: Path) -> list[dict]:
    with path.open() as stream:
        return [
            {k: v for k, v in row.items() if k != "runtime_s"} for row in csv.DictReader(stream)
        ]


def check_round(ref: Path, folder: Path) -> None:
    expected = {p.parent.name: numbers(p) for p in ref.glob("*/metrics.json")}
    got = {p.parent.name: numbers(p) for p in folder.glob("*/metrics.json")}
    if set(expected) != set(got):
        violate(f"{folder}: jobs {sorted(got)}, reference {sorted(expected)}")
    for name in set(expected) & set(got):
        if differ := sorted(k for k in expected[name].keys() | got[name].keys()
                            if expected[name].get(k) != got[name].get(k)):  # fmt: skip
            violate(f"{folder / name}: metrics differ from the reference: {differ}")
    if csv_rows(ref / "results.csv") != csv_rows(folder / "results.csv"):
        violate(f"{folder}/results.csv differs from the reference's")
    for log in [*folder.glob("*/*.log"), *folder.glob("*.log")]:
        if "Traceback" in log.read_text(errors="replace"):
            violate(f"a traceback in {log}")


def start_and_stop(args: argparse.Namespace, rng: random.Random, iteration: int, folder: Path,
                   cache: Path, log: Path) -> tuple[int, str | None, str]:  # fmt: skip
    """One start, stopped by a signal after a random delay unless it ends first."""
    delay = round(rng.uniform(0.3, args.max_delay), 2)
    sig = SIGNALS[iteration % len(SIGNALS)]
    from_launch = iteration % 4 != 3
    with log.open("w") as stream:
        process = subprocess.Popen(
            command(folder, cache, args.overrides), cwd=REPO, stdout=stream,
            stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        started = time.time()
        while from_launch and process.poll() is None and time.time() - started < 300:
            if re.search(r"Launching \d+ jobs|Skipping \d+ of", log.read_text(errors="replace")):
                break
            time.sleep(0.05)
        stopped = None
        try:
            code = process.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, sig)
            stopped = sig.name
            try:
                code = process.wait(timeout=120)
            except subprocess.TimeoutExpired:
                violate(f"start {iteration}: still running 120 s after {sig.name}")
                os.killpg(process.pid, signal.SIGKILL)
                code = process.wait()
    if not group_gone(process.pid):
        violate(f"start {iteration}: its processes outlived it by 60 s")
        os.killpg(process.pid, signal.SIGKILL)
    print(f"start {iteration}: delay {delay} s from {'launch' if from_launch else 'start'}, "
          f"{stopped or 'not stopped'}, exit code {code}", end="", flush=True)  # fmt: skip
    return code, stopped, log.read_text(errors="replace")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=25)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--max-delay", type=float, default=25.0)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/layerft_chaos"))
    parser.add_argument("overrides", nargs="*", help="after --: more overrides for every run")
    args = parser.parse_args()
    os.environ.setdefault("WANDB_MODE", "offline")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # one a script's `&` ignores its children would
    work, rng = args.workdir, random.Random(args.seed)
    ref = work / "ref"
    if not (ref / "results.csv").exists():
        shutil.rmtree(ref, ignore_errors=True)
        subprocess.run(command(ref, work / "cache" / "ref", args.overrides), cwd=REPO, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    iteration, kills = 0, dict.fromkeys((s.name for s in SIGNALS), 0)
    for chaos_round in range(1, 1000):
        folder, cache = work / f"chaos{chaos_round}", work / "cache" / f"chaos{chaos_round}"
        shutil.rmtree(folder, ignore_errors=True)
        shutil.rmtree(cache, ignore_errors=True)
        while True:
            before = metrics_files(folder) if folder.exists() else {}
            log = work / "logs" / f"round{chaos_round}-start{iteration}.log"
            log.parent.mkdir(parents=True, exist_ok=True)
            code, stopped, text = start_and_stop(args, rng, iteration, folder, cache, log)
            after = metrics_files(folder)
            skipped = re.search(r"Skipping (\d+) of \d+ jobs: finished", text)
            print(f"; {len(before)} done before, {len(after)} after", flush=True)
            if stopped:
                kills[stopped] += 1
            if "Traceback" in text:
                violate(f"start {iteration}: a traceback in {log}")
            if code not in EXIT_CODES[stopped] and not (stopped and code == 0):
                violate(f"start {iteration}: exit code {code} after {stopped}")
            for name, (data, inode, mtime) in before.items():
                if name not in after:
                    violate(f"start {iteration}: {name}/metrics.json lost")
                elif after[name] != (data, inode, mtime):
                    violate(f"start {iteration}: {name}/metrics.json rewritten")
            if skipped is not None and int(skipped.group(1)) != len(before):
                violate(f"start {iteration}: skipped {skipped.group(1)} of {len(before)} done")
            if skipped is None and before and "Launching" in text:
                violate(f"start {iteration}: launched without skipping the {len(before)} done")
            if left := leftovers(folder, cache):
                print(f"  left over: {left}")
            check_dry_run(folder, cache, args.overrides, set(after))
            iteration += 1
            if stopped is None or code == 0 and "sweep: 8 finished, 0 failed, 0 not run" in text:
                check_round(ref, folder)
                break
        if iteration >= args.iterations:
            break
    print(f"{iteration} starts in {chaos_round} rounds, signals {kills}, "
          f"{len(violations)} violation(s)")  # fmt: skip
    return 1 if violations else 0


if __name__ == "__main__":
    sys.exit(main())
