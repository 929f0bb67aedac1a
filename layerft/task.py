"""The `injection_task` and `target_task` config groups: a task is data, not code.

A task option names where its data comes from, which columns hold what, its label set, its
metrics and its training recipe. Code differs only by `kind`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from omegaconf import MISSING

from layerft.errors import LayerftError


class TaskKind(str, Enum):
    sequence_classification = "sequence_classification"
    token_tagging = "token_tagging"


def _splits() -> dict[str, str | None]:
    # Keys exist (as null) so `task.data_files.train=...` overrides need no `+`.
    return {"train": None, "validation": None}


@dataclass
class TaskConfig:
    """Schema of one task option; every default lives here."""

    name: str = MISSING
    enabled: bool = True  # false only for injection_task=none (the run then has no stage 1)
    kind: TaskKind = MISSING
    # Data source: the first one set wins, in this order.
    data_files: dict[str, str | None] = field(default_factory=_splits)
    data_dir: str | None = None
    generator: str | None = None
    hub_id: str | None = None
    # Details of each source.
    release_files: dict[str, str | None] = field(default_factory=_splits)
    release_format: str = "records"
    release_rename: dict[str, str] = field(default_factory=dict)
    generator_sizes: dict[str, int] = field(
        default_factory=lambda: {"train": 1000, "validation": 200}
    )
    hub_config: str | None = None
    hub_splits: dict[str, str] = field(
        default_factory=lambda: {"train": "train", "validation": "validation"}
    )
    # Columns, as named after `release_rename`.
    text_columns: list[str] = field(default_factory=lambda: ["text"])
    label_column: str = "label"
    tokens_column: str = "tokens"
    tags_column: str = "tags"
    label_names: list[str] = MISSING
    # Metrics (local evaluate modules) and which one picks the best dev checkpoint.
    metrics: list[str] = field(default_factory=lambda: ["accuracy"])
    best_metric: str = "accuracy"
    # Recipe.
    lr: float = 5e-5
    epochs: float = 3.0
    batch_size: int = 32
    max_length: int = 128
    max_train_samples: int | None = None
    max_eval_samples: int | None = None
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    evals_per_epoch: int = 4
    head_dropout: float = 0.1

    def __post_init__(self) -> None:
        where = f"task '{self.name}'"
        if self.kind == TaskKind.sequence_classification and not 1 <= len(self.text_columns) <= 2:
            raise LayerftError(
                f"{where}: text_columns must name 1 or 2 columns, got {self.text_columns}"
            )
        if len(self.label_names) < 2:
            raise LayerftError(f"{where}: label_names needs at least 2 labels")
        if len(set(self.label_names)) != len(self.label_names):
            raise LayerftError(f"{where}: label_names has duplicates")
        for key in ("lr", "batch_size", "max_length", "evals_per_epoch"):
            if getattr(self, key) <= 0:
                raise LayerftError(f"{where}: {key} must be > 0, got {getattr(self, key)}")
        for key in (
            "epochs",
            "weight_decay",
            "max_grad_norm",
        ):  # epochs 0: the stage only evaluates
            if getattr(self, key) < 0:
                raise LayerftError(f"{where}: {key} must be >= 0, got {getattr(self, key)}")
        if not 0 <= self.head_dropout < 1:
            raise LayerftError(f"{where}: head_dropout must be in [0, 1), got {self.head_dropout}")
        for key in ("max_train_samples", "max_eval_samples"):
            value = getattr(self, key)
            if value is not None and value <= 0:
                raise LayerftError(f"{where}: {key} must be > 0 or null, got {value}")

    @property
    def source(self) -> str:
        """Which data source this task reads: data_files, data_dir, generator or hub."""
        if any(self.data_files.values()):
            return "data_files"
        if self.data_dir:
            return "data_dir"
        if self.generator:
            return "generator"
        if self.hub_id:
            return "hub"
        raise LayerftError(
            f"task '{self.name}': no data source; set data_files.train/validation or data_dir"
        )
