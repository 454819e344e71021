"""Entry point of the trainer package: ``python -m trainer.train alpha=0.5``."""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from .losses import smoothed


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> float:
    loss = smoothed(cfg.loss, cfg.alpha)
    print(f"smoothed loss {loss}")
    return loss


if __name__ == "__main__":
    main()
