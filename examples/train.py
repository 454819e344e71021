"""A toy training script with a Hydra config, recorded by meticulous-hydra.

python examples/train.py hydra/callbacks=meticulous optimizer=adam
python examples/train.py -m hydra/callbacks=meticulous model=mlp,resnet optimizer.lr=0.01,0.1,1.0
"""

from __future__ import annotations

import enum
import math
import random
from dataclasses import dataclass
from pathlib import Path

import hydra
from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig

import meticulous_hydra


class Split(enum.Enum):
    TRAIN = 1
    VALID = 2


@dataclass
class DataConfig:
    name: str = "synthetic"
    root: Path = Path("/datasets/synthetic")
    n_samples: int = 1000
    noise: float = 0.1
    split: Split = Split.TRAIN


ConfigStore.instance().store(group="data", name="synthetic", node=DataConfig)


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def train(cfg: DictConfig) -> dict[str, float]:
    rng = random.Random(cfg.seed)
    exp = meticulous_hydra.current()  # None when the callback is not enabled
    step_size = cfg.optimizer.lr * cfg.model.lr_scale
    loss = 2.0 + cfg.data.noise
    print(f"training {cfg.run_name} for {cfg.epochs} epochs")
    for epoch in range(cfg.epochs):
        if step_size > cfg.max_stable_lr:
            loss *= 10
            if loss > 1e3:
                raise FloatingPointError(f"loss diverged to {loss:.3g} at epoch {epoch}")
        else:
            loss *= math.exp(-5 * step_size) + 0.02 * rng.random()
        if exp is not None:
            exp.log({"loss": loss}, step=epoch)
        print(f"epoch {epoch}: loss {loss:.4f}")
    with open(cfg.checkpoint, "w") as f:
        f.write(f"weights of {cfg.run_name}\n")
    return {"loss": loss, "accuracy": max(0.0, 1.0 - loss / 3)}


if __name__ == "__main__":
    train()
