"""A `local_parallel` job whose process died without sending its JobReturn: a layerft job's death
recorded in its failed.json, and the JobReturn filled in as Hydra's run_job fills it.
`local_parallel.py` (the launcher) calls these when a job process ends without a result.

Serves `hydra/launcher=local_parallel`. Hydra's plugin scan imports this module, so it imports
layerft.hydra_job (and with it torch) only when a death is recorded.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

from hydra.core.utils import JobReturn, JobStatus
from omegaconf import DictConfig, OmegaConf, open_dict, read_write


def task_config(config: DictConfig) -> DictConfig:
    """A job's config without its `hydra` node, as run_job hands it to the task function."""
    task_cfg = copy.deepcopy(config)
    with read_write(task_cfg), open_dict(task_cfg):
        del task_cfg["hydra"]
    return task_cfg


def record_dead_job(
    task_cfg: DictConfig,
    hydra: DictConfig,
    job_dir: Path,
    error: Exception,
    before: tuple[int, int] | None,
) -> bool:
    """A layerft job's death in its failed.json (layerft.hydra_job.record_dead_job); False for
    another Hydra app's job (no `target_task`), which only the FAILED JobReturn reports."""
    if "target_task" not in task_cfg:
        return False
    from layerft.hydra_job import record_dead_job as record  # only here: it imports torch

    record(task_cfg, hydra, job_dir, error, before)
    return True


def job_return(
    task_cfg: DictConfig,
    hydra: DictConfig,
    overrides: list[str],
    job_dir: Path,
    status: JobStatus,
    value: Any,
) -> JobReturn:
    """The JobReturn of a job whose process never sent one, filled as run_job fills it."""
    return JobReturn(
        overrides=overrides,
        cfg=task_cfg,
        hydra_cfg=OmegaConf.create({"hydra": hydra}),
        working_dir=str(job_dir) if hydra.job.chdir else os.getcwd(),
        task_name=str(hydra.job.name),
        status=status,
        _return_value=value,
    )
