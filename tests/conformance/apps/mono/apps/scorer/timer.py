"""The scorer's own Hydra callback."""

from __future__ import annotations

import time
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig


class Timer(Callback):
    def __init__(self, label: str) -> None:
        self.label = label
        self.started = 0.0

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        self.started = time.monotonic()
        print(f"[{self.label}] job started", flush=True)

    def on_job_end(self, config: DictConfig, job_return: Any, **kwargs: Any) -> None:
        print(f"[{self.label}] job took {time.monotonic() - self.started:.1f}s", flush=True)
