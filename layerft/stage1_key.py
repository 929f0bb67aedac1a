"""The stage-1 cache key (`Stage1Key`): exactly what a stage-1 result depends on, as plain data and
as the digest that names its folder in the store (`layerft/stage1_store.py`). A sweep plans its
stage-1 trainings by the settings half of it before any data is read (`layerft/sweep_grid.py`).

Serves the root config (`RunConfig`): `Stage1Key.of` takes the model, injection task,
`injection_lr_schedule`, the split's stage 1, trainer settings and seed from it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from layerft.fingerprint import (
    RESULT_NEUTRAL_KEYS,
    drop_unread_pooler,
    keyed_task,
    kind_settings_as_read,
    schema_default,
)
from layerft.later_keys import without_later_keys
from layerft.layer_split import Stage1Split
from layerft.lr_schedule import ScheduleConfig, unread_schedule_keys
from layerft.processes import cpu_threads, world_size
from layerft.task import TaskConfig

if TYPE_CHECKING:
    from layerft.config import RunConfig

FORMAT = 2  # bump when what is stored, or how stage 1 trains, changes incompatibly
_NEUTRAL_TRAINER = {
    key.split(".", 1)[1] for key in RESULT_NEUTRAL_KEYS if key.startswith("trainer.")
}


@dataclass(frozen=True)
class Stage1Key:
    """Everything a stage-1 result depends on, and nothing else: the backbone, the injection task
    and its schedule, the split's stage-1 part, the trainer settings that change results, the seed.
    Stage 2's settings (target task, tuning mode, its schedule, `layer_split.stage2`) are not in it.
    """

    model: Any  # ModelConfig
    task: TaskConfig
    schedule: ScheduleConfig  # injection_lr_schedule
    split: Stage1Split
    trainer: Any  # TrainerConfig
    seed: int
    # A hash of the task's training and dev examples as tokenized (`TaskData.content`): an edited
    # file at the same path is other data. None while planning a sweep, before data is read.
    content: str | None = None
    # Processes training together (torchrun): batch_size is per process, so this sets the global
    # batch and the step count. Left out of the key at 1, so single-process keys stay as they were.
    world_size: int = 1
    # (name, sha256) of each file of the local folder the model is read from (model_files): a
    # checkpoint re-exported or fine-tuned in place is another start. Keyed with the data, as the
    # plan cannot always read them (a converted folder not written yet); none (a hub id, tiny):
    # left out of the key.
    model_files: tuple[tuple[str, str], ...] = ()
    # torch's threads on a CPU (processes.cpu_threads): a stage 1 trained at another count differs
    # from about the 7th digit, so reusing it would give a run other numbers than its own training
    # (a local_parallel job trains at CPUs / n_jobs). Keyed with the data, as the plan's process
    # is not the job's; none on a GPU, nor under torchrun (its processes, on nodes of other core
    # counts, would key stage 1 apart and part ways, one training while another trains stage 2).
    cpu_threads: int | None = None

    @classmethod
    def of(
        cls, cfg: RunConfig, content: str | None = None, model_files: dict[str, str] | None = None
    ) -> Stage1Key:
        """The key of this run's stage 1 (it must have an injection task) on data `content`, from
        a model whose folder holds `model_files` (model_files.model_file_digests)."""
        assert cfg.injection_task is not None
        return cls(
            model=cfg.model,
            task=cfg.injection_task,
            schedule=cfg.injection_lr_schedule,
            split=cfg.layer_split.stage1,
            trainer=cfg.trainer,
            seed=cfg.seed,
            content=content,
            world_size=world_size(),
            model_files=tuple(sorted((model_files or {}).items())),
            cpu_threads=cpu_threads() if world_size() == 1 else None,
        )

    def data(self) -> dict[str, Any]:
        """The key as plain JSON-able data (what is hashed and stored beside the result)."""
        data = {field.name: _plain(getattr(self, field.name)) for field in dataclasses.fields(self)}
        data["trainer"] = {k: v for k, v in data["trainer"].items() if k not in _NEUTRAL_TRAINER}
        kind_settings_as_read(data["task"], "injection_task")  # another kind's: as read
        data["task"] = keyed_task(data["task"])
        data["schedule"] = _schedule_as_read(data["schedule"])
        drop_unread_pooler(data["model"], [data["task"]["kind"]])
        for name, at in _CONFIG_PATHS.items():  # keys added later, at their old meaning
            without_later_keys(data[name], at)
        if self.world_size == 1:
            del data["world_size"]
        data["model_files"] = dict(self.model_files)
        if not self.model_files:
            del data["model_files"]
        if self.cpu_threads is None:
            del data["cpu_threads"]
        data["format"] = FORMAT
        return data

    def settings_digest(self) -> str:
        """A stable short hash of the settings (`data()` but the data, the model's files and the
        CPU threads): which combinations of a sweep share a stage 1."""
        settings = {k: v for k, v in self.data().items() if k not in _KEYED_WITH_DATA}
        return hashlib.sha256(
            json.dumps(settings, sort_keys=True, default=str).encode()
        ).hexdigest()[:16]

    def digest(self) -> str:
        """The result's folder name: the settings' digest, then the data's (`<settings>-<data>`),
        which covers the model's files and the CPU threads where there are any."""
        assert self.content is not None, "a stored stage 1 is keyed by its data too"
        data = self.content
        if self.model_files or self.cpu_threads is not None:
            inputs = [self.content, self.model_files]
            inputs += [] if self.cpu_threads is None else [self.cpu_threads]
            data = hashlib.sha256(json.dumps(inputs).encode()).hexdigest()
        return f"{self.settings_digest()}-{data[:12]}"


# What the key holds beside the settings: known once a job runs, not to a sweep's plan.
_KEYED_WITH_DATA = ("content", "model_files", "cpu_threads")
# Where each part of the key sits in the run's config.
_CONFIG_PATHS = {
    "task": "injection_task",  # `task.` keys: keyed_task
    "model": "model",
    "schedule": "injection_lr_schedule",
    "split": "layer_split.stage1",
    "trainer": "trainer",
}


def _plain(value: Any) -> Any:
    return dataclasses.asdict(value) if dataclasses.is_dataclass(value) else value


def _schedule_as_read(schedule: dict[str, Any]) -> dict[str, Any]:
    """A plain stage-1 schedule with the settings its scaling never reads at their schema defaults
    (as the run's fingerprint hashes them from scheme 3): a stage 1 trained on a uniform schedule
    is one result whatever its `layer_decay`. A schedule that leaves them at their defaults, as
    every shipped option does, keeps its key."""
    schedule = dict(schedule)
    for key in unread_schedule_keys(schedule):
        schedule[key] = schema_default(f"injection_lr_schedule.{key}")
    return schedule
