"""The `injection_task` and `target_task` config groups: a task is data, not code.

A task option names where its data comes from, which columns hold what, its label set, its
metrics and its training recipe. Code differs only by `kind` (one module per kind in
`layerft/kinds/`).
"""

from __future__ import annotations

import glob
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from omegaconf import MISSING

from layerft.errors import LayerftError
from layerft.kinds import TaskKind, kind_of
from layerft.kinds.biencoder_regression import BiencoderConfig
from layerft.kinds.dependency_parsing import ParsingConfig
from layerft.kinds.relation_classification import RelationConfig
from layerft.kinds.sequence_regression import RegressionConfig
from layerft.kinds.span_extraction import SpanConfig
from layerft.kinds.token_tagging import TaggingConfig
from layerft.metrics import metric_spec
from layerft.task_names import (
    DEFAULT_BEST_METRIC,
    check_lists,
    check_recipe,
    check_registered_names,
)

__all__ = ["TaskConfig", "TaskKind"]

SPLITS = ("train", "validation")  # every task's; `extra_eval_splits` adds dev sets
_SPLIT_NAME = re.compile(r"[a-z][a-z0-9_]*")  # it becomes part of metric keys


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
    label_names: list[str] = field(default_factory=list)  # empty for scores (regression)
    # Sentence (pair) classification: label values that mark a record without a gold label, which
    # is dropped and counted like null or -1 (SNLI's published files write '-').
    unlabelled_values: list[str] = field(default_factory=list)
    # Sentence (pair) classification and regression: drop and count records whose text is blank
    # instead of stopping the run (NSMC's published files hold a few empty reviews).
    drop_blank_texts: bool = False
    # Settings of one kind each (layerft/kinds/<kind>.py); the other kinds ignore them.
    tagging: TaggingConfig = field(default_factory=TaggingConfig)
    relation: RelationConfig = field(default_factory=RelationConfig)
    regression: RegressionConfig = field(default_factory=RegressionConfig)
    biencoder: BiencoderConfig = field(default_factory=BiencoderConfig)
    spans: SpanConfig = field(default_factory=SpanConfig)
    parsing: ParsingConfig = field(default_factory=ParsingConfig)
    # Further dev sets, scored with the best checkpoint at the end of the stage (MNLI's
    # mismatched dev set): each name is looked up like `validation` in the source's split map
    # (data_files, release_files or hub_splits); its metrics are `eval_<name>_<metric>`.
    extra_eval_splits: list[str] = field(default_factory=list)
    # Metrics (local evaluate modules) and which one picks the best dev checkpoint.
    metrics: list[str] = field(default_factory=lambda: ["accuracy"])
    best_metric: str = DEFAULT_BEST_METRIC
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
        check_lists(self, where)
        kind_of(self).check(self, where)
        check_registered_names(self, where)
        check_recipe(self, where)
        for name in self.extra_eval_splits:
            if not _SPLIT_NAME.fullmatch(name) or name in ("train", "validation"):
                raise LayerftError(
                    f"{where}: extra_eval_splits: {name!r} must be a lowercase name other than "
                    "train and validation"
                )
        if len(set(self.extra_eval_splits)) != len(self.extra_eval_splits):
            raise LayerftError(f"{where}: extra_eval_splits has duplicates")
        splits = (*SPLITS, *self.extra_eval_splits)
        # The user's files (a release layout may name files of splits a run does not read); a
        # null entry is a placeholder (glue_mnli's mismatched, for extra_eval_splits).
        named = [s for s, path in self.data_files.items() if path is not None]
        if unknown := [s for s in named if s not in splits]:
            raise LayerftError(
                f"{where}: data_files.{unknown[0]}: no such split (splits: {', '.join(splits)}; "
                "a dev set is validation, another one is named in extra_eval_splits)"
            )
        for key in ("max_train_samples", "max_eval_samples"):
            value = getattr(self, key)
            if value is not None and value <= 0:
                raise LayerftError(f"{where}: {key} must be > 0 or null, got {value}")

    @property
    def best_is_higher(self) -> bool:
        """Whether a larger best_metric is better."""
        return next(
            metric_spec(name).higher_is_better
            for name in self.metrics
            if self.best_metric in metric_spec(name).keys
        )

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

    def split_file(self, split: str) -> Path | None:
        """The local file a split reads (data_files, or data_dir's release file); None for
        generated and hub data, or a split without a file."""
        if self.source == "data_files":
            path = self.data_files.get(split)
            return Path(path).expanduser() if path else None
        if self.source == "data_dir" and (name := self.release_files.get(split)):
            folder = Path(self.data_dir or "").expanduser()
            inside = _inside(folder, name)  # KLUE ships a folder per task: a folder of them serves
            return inside[0] if len(inside) == 1 and not (folder / name).exists() else folder / name
        return None

    def existing_file(self, group: str, split: str) -> Path:
        """The local file a split reads (data_files or data_dir), failing on one that is unset or
        missing with the key to set: what reading the split and train.py's early check both say."""
        path = self.split_file(split)
        if self.source == "data_files":
            if path is None:
                raise LayerftError(
                    f"{group}.data_files.{split} is not set (give a file for every split)"
                )
            if not os.path.exists(path):  # never raises: a name too long is no such file either
                where = "" if path.is_absolute() else f" (in {Path.cwd()}, where the run started)"
                raise LayerftError(f"{group}.data_files.{split}: no such file {path}{where}")
            if path.is_dir():
                raise LayerftError(f"{group}.data_files.{split}: {path} is a folder, not a file")
            return path
        assert self.source == "data_dir", "generated and hub data have no local file"
        if path is None:
            raise LayerftError(
                f"{group}.release_files.{split} is not set: task '{self.name}' has no release "
                f"folder layout for {group}.data_dir; give files with {group}.data_files.{split}=..."
            )
        folder = path.parent
        if not folder.is_dir():  # "no x.json in <a file>" named the wrong fault
            what = "a file" if folder.exists() else "no such folder"
            where = "" if folder.is_absolute() else f" (in {Path.cwd()}, where the run started)"
            raise LayerftError(
                f"{group}.data_dir: {folder}: {what}{where}; it should be the release folder "
                f"holding {path.name}"
            )
        if not path.exists() or path.is_dir():
            what = "a folder" if path.exists() else "no"
            inside = ", ".join(str(p.parent) for p in _inside(path.parent, path.name))
            if path.exists():
                where = ""
            elif inside:
                where = f" but in each of {inside}: give one as {group}.data_dir"
            else:
                where = " or a folder inside it"
            raise LayerftError(
                f"{group}.data_dir: {what} {path.name} in {path.parent}{where} "
                f"({group}.release_files.{split})"
            )
        return path

    def check_files(self, group: str) -> None:
        """Fail on the first split whose local file is unset or missing (no-op for generated and
        hub data): train.py checks this before seconds of imports."""
        if self.source in ("data_files", "data_dir"):
            for split in (*SPLITS, *self.extra_eval_splits):
                self.existing_file(group, split)

    def local_files(self, group: str) -> dict[str, Path]:
        """`<group>.<split>` -> the file it reads, for each split with an existing local file: what
        a finished result records the sha256 of (a data file edited in place leaves the config and
        its fingerprint as they were)."""
        files = {}
        for split in (*SPLITS, *self.extra_eval_splits):
            path = self.split_file(split)
            if path is not None and path.is_file():
                files[f"{group}.{split}"] = path
        return files


def selection_key(stage: str, best_metric: str) -> str:
    """The metrics key of a task's best dev score as `stage` (injection, target) reports it: what
    a sweep selects and compares runs by."""
    return f"{stage}/eval_{best_metric}"


def _inside(folder: Path, name: str) -> list[Path]:
    """The files `name` in the folders directly inside `folder` (none if it is no folder)."""
    if not folder.is_dir():
        return []
    return sorted(path for path in folder.glob(f"*/{glob.escape(name)}") if path.is_file())
