"""The config schema of the classifier app: structured configs with required
(``???``) values, as the Hydra docs teach."""

from __future__ import annotations

from dataclasses import dataclass, field

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING


@dataclass
class ModelConfig:
    name: str = MISSING
    width: int = 64
    penalty: float = 0.0


@dataclass
class OptimizerConfig:
    name: str = MISSING
    lr: float = MISSING


@dataclass
class DataConfig:
    root: str = "/datasets/digits"
    cache_dir: str = MISSING  # optional: used only when given


@dataclass
class TrackingConfig:
    project: str = "classifier"
    api_key: str = MISSING  # a secret, given only where it is needed


@dataclass
class TrainConfig:
    model: ModelConfig = MISSING
    optimizer: OptimizerConfig = MISSING
    data: DataConfig = field(default_factory=DataConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    epochs: int = 3
    max_stable_lr: float = 1.0
    run_name: str = "${model.name}-lr${optimizer.lr}"
    checkpoint: str = "${hydra:runtime.output_dir}/model.ckpt"
    predictions: str | None = None  # a path relative to the working directory


def register() -> None:
    cs = ConfigStore.instance()
    cs.store(name="train_schema", node=TrainConfig)
    cs.store(group="model", name="model_schema", node=ModelConfig)
    cs.store(group="optimizer", name="optimizer_schema", node=OptimizerConfig)
