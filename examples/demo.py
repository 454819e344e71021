"""What `make demo` runs: a real sweep of the example app, then the summary table.

The sweep runs under the joblib launcher, 18 jobs on 2 workers: 6 settings
(model x learning rate), each repeated over 3 seeds. The largest learning rate
makes the loss diverge, so the table shows failed runs next to good ones, and
``--group-by`` gives each setting's mean ± std over its seeds.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
JOBS = 2 * 3 * 3  # model x optimizer.lr x seed


def _runs(root: str) -> set[str]:
    folder = Path(root)
    return {p.name for p in folder.iterdir() if p.name.isdigit()} if folder.is_dir() else set()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--root", default="experiments", help="experiments root (default: %(default)s)"
    )
    args = parser.parse_args()
    root = str(Path(args.root).absolute())
    sweep = [
        sys.executable,
        str(HERE / "train.py"),
        "-m",
        "hydra/callbacks=meticulous",
        f"hydra.callbacks.meticulous.root={root}",
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
        "model=mlp,resnet",
        "optimizer.lr=0.01,0.1,2.0",
        "seed=0,1,2",
    ]
    before = _runs(root)
    print("$", " ".join(sweep[1:]), flush=True)
    rc = subprocess.call(sweep)
    recorded = len(_runs(root) - before)
    if recorded != JOBS:
        print(
            f"\nthe sweep recorded {recorded} runs, not {JOBS}: see its message above", flush=True
        )
        return 1
    # joblib stops at the first failed job (its traceback is Hydra's): say so
    # only when a job failed
    why = ": Hydra reports the diverged jobs" if rc else ""
    print(f"\n(the sweep exited with {rc}{why}; all {JOBS} are recorded)\n", flush=True)
    summary = Path(sys.executable).with_name("meticulous-summary")
    for extra in ([], ["--group-by", "model.name", "optimizer.lr"]):
        command = [str(summary), root, "--sweep", "latest", "--no-pager", *extra]
        # the command as typed from here, to see the table again
        print("$ meticulous-summary", args.root, " ".join(command[2:]), flush=True)
        if subprocess.call(command) != 0:
            return 1
        print(flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
