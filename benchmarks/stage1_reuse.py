"""What a grid sharing one stage 1 costs: one injection setting x six stage-2 settings (the six
tuning modes) as one `sweep.py` run, against the sum of its stages' own times.

    python benchmarks/stage1_reuse.py --out /tmp/stage1_reuse [--no-reuse] [-- overrides...]

Prints the sweep's wall time, stage 1's time (`injection/stage_seconds` of the job that trained it:
model build, training, evaluations), the six `target/stage_seconds`, and the ratio
wall / (stage 1 + six stage 2). `--no-reuse` also runs the grid with `reuse_stage1=false` (every
job retrains stage 1) for comparison. Default: model=minilm on the demo tasks, seed 1.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MODES = "full,frozen,top_adapter,layerwise_adapter,lora,bitfit"


def run(out: Path, name: str, overrides: list[str]) -> tuple[float, list[dict]]:
    """Run the grid into out/name; its wall time and every job's metrics.json."""
    sweep_dir = out / name
    command = [
        sys.executable, str(REPO / "sweep.py"), "demo", "injection_task=demo_pos", "seed=1",
        f"tuning_mode={MODES}", "tracker=none", f"cache_dir={out / name}-cache",
        "--dir", str(sweep_dir), *overrides,
    ]  # fmt: skip
    started = time.perf_counter()
    with (out / f"{name}.log").open("w") as log:
        subprocess.run(command, check=True, stdout=log, stderr=subprocess.STDOUT)
    wall = time.perf_counter() - started
    jobs = [json.loads(p.read_text()) for p in sorted(sweep_dir.glob("*/metrics.json"))]
    return wall, jobs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("/tmp/stage1_reuse"))
    parser.add_argument("--no-reuse", action="store_true", help="also run with reuse_stage1=false")
    parser.add_argument("overrides", nargs="*", default=["model=minilm"])
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    if any(args.out.glob("shared*")):
        sys.exit(f"{args.out} holds an earlier run: pick an empty --out")

    wall, jobs = run(args.out, "shared", args.overrides)
    assert len(jobs) == 6, f"{len(jobs)} jobs finished"
    trained = [j for j in jobs if j["run/stage1"]["status"] == "trained"]
    assert len(trained) == 1, "stage 1 was not trained exactly once"
    stage1 = trained[0]["injection/stage_seconds"]
    stage2 = [j["target/stage_seconds"] for j in jobs]
    print(f"grid: 1 stage 1 x {len(jobs)} stage-2 settings ({MODES}); {' '.join(args.overrides)}")
    print(f"stage 1 (trained once): {stage1:.1f} s")
    print("stage 2: " + ", ".join(f"{s:.1f}" for s in stage2) + f" s (sum {sum(stage2):.1f} s)")
    print(f"sweep wall time: {wall:.1f} s")
    print(f"ratio wall / (stage 1 + sum of stage 2): {wall / (stage1 + sum(stage2)):.3f}")
    if args.no_reuse:
        wall_no, jobs_no = run(args.out, "no_reuse", [*args.overrides, "reuse_stage1=false"])
        retrained = sum(j["injection/stage_seconds"] for j in jobs_no)
        print(f"reuse_stage1=false: wall {wall_no:.1f} s ({len(jobs_no)} stage-1 trainings, "
              f"{retrained:.1f} s of stage 1); shared / not shared: {wall / wall_no:.3f}")  # fmt: skip


if __name__ == "__main__":
    main()
