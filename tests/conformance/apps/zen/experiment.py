"""Run a hydra-zen task from Python, as notebooks and driver scripts do:
``python experiment.py twice|sweep|dirty``."""

from __future__ import annotations

import sys

from hydra_zen import launch, make_config, zen

import meticulous_hydra

RECORD = "hydra/callbacks=meticulous"
Config = make_config(lr=0.1, epochs=2)


def fit(lr: float, epochs: int) -> float:
    exp = meticulous_hydra.current()  # None when recording is off
    print(f"fitting lr={lr} in experiment {exp and exp.id}")
    if lr > 1:
        raise FloatingPointError(f"diverged at lr={lr}")
    loss = round(1 / (1 + epochs * lr), 4)
    if exp is not None:
        exp.log({"loss": loss})
    return loss


def main(mode: str) -> None:
    task = zen(fit)
    if mode == "twice":  # and a failed one between
        for lr in (0.2, 5.0, 0.3):
            try:
                job = launch(Config, task, overrides=[RECORD, f"lr={lr}"], version_base="1.3")
            except FloatingPointError as e:
                print(f"failed: {e}")
            else:
                print(f"returned {job.return_value}")
        print(f"current() after: {meticulous_hydra.current()}")
    elif mode == "sweep":
        jobs = launch(
            Config, task, overrides=[RECORD, "lr=0.1,0.5"], multirun=True, version_base="1.3"
        )
        print(f"returned {[j.return_value for j in jobs[0]]}")
    elif mode == "dirty":
        try:
            launch(Config, task, overrides=[RECORD], version_base="1.3")
        except meticulous_hydra.DirtyRepoError as e:
            print(f"refused: {type(e).__name__}")
        allow = "hydra.callbacks.meticulous.allow_dirty=true"
        job = launch(Config, task, overrides=[RECORD, allow], version_base="1.3")
        print(f"then returned {job.return_value}")


if __name__ == "__main__":
    main(sys.argv[1])
