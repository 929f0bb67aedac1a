"""What the dependency-parsing head adds to a stage-1 training step, against the tagging head.

One process builds both stage-1 models as `train.py` would (same backbone, same split: the
`klue_pos` tagging head and the `klue_dp` parser head) on the same KLUE-DP sentences (klue_pos
reads their morphemes, klue_dp their eojeols). Every batch is padded to max_length, so both
backbones see the same (batch, max_length) input and the difference is the head, its features and
its collator. A step is collation + forward + backward + gradient clipping + AdamW, timed on the
same batches for both heads; runs of a few steps alternate between the heads (the order rotates
each repeat) after a discarded warm-up step each, and medians are reported (shared machines drift).

    python benchmarks/dp_head_speed.py                      # model=minilm, batch 32, max_length 128
    python benchmarks/dp_head_speed.py --repeats 8 -- layer_split=lower_half

Everything after `--` is a layerft override applied to both tasks' runs.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from layerft.config import RunConfig, register_configs, to_run_config  # noqa: E402
from layerft.data import TaskData, load_task_data  # noqa: E402
from layerft.hydra_job import quiet_libraries  # noqa: E402
from layerft.lr_schedule import build_optimizer  # noqa: E402
from layerft.model import load_tokenizer  # noqa: E402
from layerft.parts import parameter_parts  # noqa: E402
from layerft.stage_models import build_injection_model, seed_everything  # noqa: E402

TASKS = ("klue_pos", "klue_dp")


def compose_config(task: str, args: argparse.Namespace) -> RunConfig:
    """The run config with `task` as stage 1, reading the KLUE-DP release folder."""
    register_configs()
    overrides = [
        f"model={args.model}", "tracker=none", f"injection_task={task}",
        f"injection_task.data_dir={args.data_dir}", f"injection_task.batch_size={args.batch_size}",
        f"injection_task.max_length={args.max_length}", *args.overrides,
    ]  # fmt: skip
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        return to_run_config(compose("config", overrides=overrides))


class Stage1Steps:
    """Training steps of one task's stage-1 model over fixed batches (in file order)."""

    def __init__(self, cfg: RunConfig, data: TaskData, batch_size: int, batches: int) -> None:
        assert cfg.injection_task is not None
        seed_everything(cfg.seed)
        self.model, _ = build_injection_model(cfg)
        self.model.train()
        self.optimizer = build_optimizer(
            self.model, parameter_parts(self.model), cfg.injection_task.lr, 0.0, {}, fused=True
        )
        self.collate = data.collator
        rows = [data.train[i] for i in range(min(len(data.train), batch_size * batches))]
        self.features = [rows[i : i + batch_size] for i in range(0, len(rows), batch_size)]
        self.next = 0

    def step(self) -> float:
        """One training step on the next batch; its wall time in ms."""
        features = self.features[self.next % len(self.features)]
        self.next += 1
        start = time.perf_counter()
        batch = self.collate(features)
        loss = self.model(**batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return 1000 * (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="minilm")
    parser.add_argument(
        "--data-dir", type=Path, default=REPO.parent / "shared/data/klue/klue-dp-v1.1"
    )
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=6, help="alternating runs per head")
    parser.add_argument("--steps", type=int, default=3, help="timed steps per run")
    parser.add_argument("overrides", nargs="*", help="layerft overrides (after --)")
    args = parser.parse_args()
    quiet_libraries()
    runners: dict[str, Stage1Steps] = {}
    with tempfile.TemporaryDirectory() as cache:
        for task in TASKS:
            cfg = compose_config(task, args)
            assert cfg.injection_task is not None
            data = load_task_data(
                cfg.injection_task, "injection_task", load_tokenizer(cfg.model), Path(cache),
                pad_to_multiple_of=args.max_length, seed=cfg.seed,
            )  # fmt: skip
            runners[task] = Stage1Steps(cfg, data, args.batch_size, args.steps)
    for runner in runners.values():
        runner.step()  # warm-up, discarded
    times: dict[str, list[float]] = {task: [] for task in TASKS}
    for repeat in range(args.repeats):
        order = TASKS if repeat % 2 == 0 else TASKS[::-1]
        for task in order:
            times[task] += [runners[task].step() for _ in range(args.steps)]
    medians = {task: statistics.median(values) for task, values in times.items()}
    shape = f"model={args.model}, batch {args.batch_size} x {args.max_length} tokens"
    print(f"stage-1 training step, {shape}, {torch.get_num_threads()} threads, "
          f"{args.repeats} x {args.steps} steps per head")  # fmt: skip
    for task in TASKS:
        spread = f"{min(times[task]):.0f}-{max(times[task]):.0f}"
        head = sum(p.numel() for p in runners[task].model.head.parameters())
        print(
            f"  {task:9s} median {medians[task]:7.1f} ms/step (range {spread}), head params {head:,}"
        )
    print(f"  klue_dp / klue_pos: {medians['klue_dp'] / medians['klue_pos']:.3f}")


if __name__ == "__main__":
    main()
