"""Score a model: a flat Hydra app (config.yaml beside the script) with a
callback of its own, living in one folder of a monorepo."""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

import meticulous_hydra


@hydra.main(version_base=None, config_path=".", config_name="config")
def score(cfg: DictConfig) -> dict[str, float]:
    exp = meticulous_hydra.current()  # None when recording is off
    print(f"scoring {cfg.model} on {cfg.split}")
    if exp is not None:
        exp.log({"batches": cfg.batches})
    return {"f1": round(0.5 + cfg.batches / 100, 3)}


if __name__ == "__main__":
    score()
