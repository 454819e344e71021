"""Train a toy classifier: the shape of a real Hydra project (config groups,
a structured schema, a checkpoint in the output dir, a float objective)."""

from __future__ import annotations

import math
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf
from schema import register

import meticulous_hydra

register()


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def train(cfg: DictConfig) -> float:
    exp = meticulous_hydra.current()  # None when recording is off
    lr = cfg.optimizer.lr
    print(f"training {cfg.run_name}")
    if not OmegaConf.is_missing(cfg.data, "cache_dir"):
        print(f"caching to {cfg.data.cache_dir}")
    if lr > cfg.max_stable_lr:
        raise FloatingPointError(f"loss diverged at lr={lr}")
    loss = (math.log10(lr) + 1) ** 2 + cfg.model.penalty
    for epoch in range(cfg.epochs):
        if exp is not None:
            exp.log({"loss": loss + 1 / (epoch + 1)}, step=epoch)
    print(f"final loss {loss:.4f}")
    Path(cfg.checkpoint).write_text(f"weights of {cfg.run_name}\n")
    if cfg.predictions:
        Path(cfg.predictions).write_text("id,label\n0,3\n")
    return loss


if __name__ == "__main__":
    train()
