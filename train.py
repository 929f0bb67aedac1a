"""Run one layer-wise fine-tuning combination (`-m` for a grid). See conf/config.yaml for the defaults."""

import hydra
from omegaconf import DictConfig

from layerft.config import register_configs
from layerft.run import run_from_hydra

register_configs()


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> float:
    """Return stage 2's best dev score, so Hydra sweepers can optimise it."""
    metrics = run_from_hydra(cfg)
    return metrics[f"target/eval_{cfg.target_task.best_metric}"]


if __name__ == "__main__":
    main()
