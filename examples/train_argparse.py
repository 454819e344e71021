"""A plain argparse training script, recorded with one line: ``record(parser)``.

python examples/train_argparse.py data/ --lr 0.05 --layers 128 64
python examples/train_argparse.py data/ --norecord      # run without recording
"""

from __future__ import annotations

import argparse
import math
import random
from pathlib import Path

from meticulous_hydra import record


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Train a toy model.")
    parser.add_argument("data", type=Path, help="folder with the training data")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=0.01, help="learning rate")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-cuda", action="store_true", help="train on the CPU")
    parser.add_argument("--optimizer", choices=["sgd", "adam"], default="sgd")
    parser.add_argument(
        "--layers", type=int, nargs="+", default=[64, 64], help="hidden layer sizes"
    )
    return parser


def main() -> None:
    args, exp = record(build_parser())
    rng = random.Random(args.seed)
    loss = 2.0
    for epoch in range(args.epochs):
        loss *= math.exp(-args.lr * len(args.layers)) * (1 + 0.01 * rng.random())
        exp.log({"loss": loss}, step=epoch)
        print(f"epoch {epoch}: loss {loss:.4f}")
    exp.summary({"loss": loss})
    with exp.open("model.txt", "w") as f:
        f.write(f"layers={args.layers} optimizer={args.optimizer}\n")


if __name__ == "__main__":
    main()
