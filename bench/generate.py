"""Write N realistic runs with the project's own recorder, for the benchmarks.

Each run has a config of about 30 leaves (nested groups, lists, strings,
floats), 5 summary metrics, and every 50th run fails.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

from meticulous_hydra import Experiment


def config_for(i: int, rng: random.Random) -> dict:
    return {
        "model": {
            "name": rng.choice(["mlp", "resnet", "vit"]),
            "depth": rng.choice([18, 34, 50]),
            "width": rng.choice([64, 128, 256]),
            "dropout": round(rng.random() * 0.5, 3),
            "activation": "gelu",
            "hidden": [rng.choice([64, 128]), 64],
        },
        "optimizer": {
            "name": rng.choice(["sgd", "adam"]),
            "lr": 10 ** rng.uniform(-4, -1),
            "momentum": 0.9,
            "weight_decay": 1e-4,
            "betas": [0.9, 0.999],
            "schedule": {"name": "cosine", "warmup_steps": 500, "min_lr": 1e-6},
        },
        "data": {
            "name": "cifar10",
            "path": "/datasets/cifar10",
            "batch_size": rng.choice([64, 128, 256]),
            "num_workers": 8,
            "augment": {"flip": True, "crop": 32, "mixup": rng.random() < 0.5},
        },
        "trainer": {"epochs": 100, "precision": "bf16", "grad_clip": 1.0, "log_every": 50},
        "seed": i % 5,
        "run_name": f"run-{i}",
        "output_dir": f"/scratch/runs/{i}",
        "notes": "baseline sweep",
        "debug": False,
    }


def generate(root: Path, n: int, seed: int = 0) -> None:
    rng = random.Random(seed)
    for i in range(n):
        # git_state=None: no git calls (adapters' plumbing, off the public signature)
        exp = Experiment._for_adapter(
            config_for(i, rng),
            root=root,
            capture_output=False,
            git_state=None,
            overrides=[f"seed={i % 5}", f"model.name={rng.choice(['mlp', 'vit'])}"],
        )
        if i % 50 == 49:
            exp.finish(
                "ERROR",
                "Traceback (most recent call last):\n  ...\nRuntimeError: CUDA out of memory",
            )
            continue
        loss = rng.random()
        exp.summary(
            {
                "loss": loss,
                "accuracy": 1 - loss / 2,
                "val": {"loss": loss * 1.1, "accuracy": 1 - loss / 1.8},
                "epochs_run": rng.randint(50, 100),
            }
        )
        exp.finish()


if __name__ == "__main__":
    generate(Path(sys.argv[1]), int(sys.argv[2]), seed=int(sys.argv[3]) if len(sys.argv) > 3 else 0)
