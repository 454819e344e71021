"""A training app in the lightning-hydra-template's shape, for the table's
tests: timestamped output dirs set by the app (``hydra.run.dir``,
``hydra.sweep.dir``), ``paths.output_dir``, ``trainer.default_root_dir`` and
``callbacks.model_checkpoint.dirpath`` pointing into them, a structured config
group whose misuse raises a multi-line OmegaConf error, and many results."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from pathlib import Path

import hydra
from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig


@dataclass
class MySQLConfig:
    driver: str = "mysql"
    host: str = "localhost"
    port: int = 3306


ConfigStore.instance().store(group="db", name="mysql", node=MySQLConfig)


@hydra.main(version_base="1.3", config_path="configs", config_name="train")
def train(cfg: DictConfig) -> dict[str, float]:
    if cfg.db_key:  # reading a key the schema lacks: ConfigAttributeError, three lines
        print(cfg.db[cfg.db_key])
    rng = random.Random(cfg.seed)
    loss, steps = 2.0, cfg.trainer.max_epochs * 10
    for step in range(steps):
        if cfg.fail_at_step is not None and step == cfg.fail_at_step:
            raise FloatingPointError(f"loss is nan at step {step}")
        loss *= math.exp(-cfg.optimizer.lr * cfg.model.lr_scale) + 0.01 * rng.random()
    checkpoints = Path(cfg.callbacks.model_checkpoint.dirpath)
    checkpoints.mkdir(parents=True, exist_ok=True)
    (checkpoints / "last.ckpt").write_text("weights\n")
    acc = max(0.0, 1.0 - loss / 2)
    return {
        "final_loss": loss,
        "final_acc": acc,
        "val_loss": loss * 1.1,
        "val_acc": acc * 0.98,
        "test_loss": loss * 1.15,
        "test_acc": acc * 0.97,
        "best_epoch": cfg.trainer.max_epochs - 1,
        "epochs_run": cfg.trainer.max_epochs,
        "steps": steps,
        "lr_final": cfg.optimizer.lr * 0.1,
        "grad_norm": 0.5 + rng.random(),
        "params": cfg.model.params,
        "throughput": 1000.0 + 100 * rng.random(),
    }


if __name__ == "__main__":
    train()
