"""Run one layer-wise fine-tuning combination (`-m` for a grid). See conf/config.yaml for the defaults."""

import sys
from pathlib import Path

from layerft.interrupts import interrupted_exit

# Ctrl-C or SIGTERM while the training stack loads (its first seconds) is the same one line as in
# the run, not a traceback through torch's imports (nor, for SIGTERM, a silent end)
with interrupted_exit():
    import hydra
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode
    from omegaconf import DictConfig

    from layerft.config import check_data_files, register_configs, to_run_config
    from layerft.config_errors import config_errors_exit
    from layerft.config_overrides import check_overrides, deletion_error
    from layerft.console import console_checked, guard_console, undecoded_input
    from layerft.credential_overrides import credential_override_error
    from layerft.errors import user_errors_exit
    from layerft.processes import quick_exit
    from layerft.results import METRICS_FILE
    from layerft.sweep_launch import FailedJobs, job
    from layerft.task import selection_key

register_configs()


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> float | None:
    """Return stage 2's best dev score, so Hydra sweepers can optimise it. In a multirun a failing
    job writes `failed.json`, returns None and the next job runs."""
    if HydraConfig.get().mode == RunMode.MULTIRUN:
        return job(cfg)
    with user_errors_exit():
        check_before_loading(cfg)
    from layerft.hydra_job import run_from_hydra

    metrics = run_from_hydra(cfg)
    assert metrics is not None  # failures exit in a single run
    return metrics[selection_key("target", cfg.target_task.best_metric)]


def check_before_loading(cfg: DictConfig) -> None:
    """Stop on bad input before the training stack loads (seconds), in the order the runner checks
    it: the config, its on/off switches, the device, then every data file. A run folder holding a
    result is the runner's (a finished one is reported even if its data has moved since)."""
    hydra_cfg = HydraConfig.get()
    run_cfg = to_run_config(cfg)
    check_overrides(cfg, list(hydra_cfg.overrides.task))
    if not (Path(hydra_cfg.runtime.output_dir) / METRICS_FILE).exists():
        run_cfg.trainer.check_device()
        check_data_files(run_cfg)


if __name__ == "__main__":
    quick_exit()
    guard_console()
    arguments = sys.argv[1:]
    refused = undecoded_input() or credential_override_error(arguments) or deletion_error(arguments)
    if refused:  # before Hydra
        print(f"error: {refused}", file=sys.stderr)
        sys.exit(2)
    with console_checked():
        with config_errors_exit(), user_errors_exit(), interrupted_exit():
            main()
        sys.exit(1 if FailedJobs.failed else 0)
