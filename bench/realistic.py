"""A root of N runs with the shape a real sweep gives (about 70 columns):
a Hydra sweep of ``examples/train.py`` recorded by the callback (config groups,
per-run paths, the return value, Hydra metadata, failed jobs), replicated to N
runs with each copy's own number and paths.

python bench/realistic.py ROOT N
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
# 2 models x 2 optimizers x 4 learning rates x 3 seeds: 48 jobs, 12 of them diverge
SWEEP = ["model=mlp,resnet", "optimizer=sgd,adam", "optimizer.lr=0.001,0.01,0.1,2.0", "seed=0,1,2"]
# the files whose text names the run's folder
_NAMING = ("config.json", "config.yaml", "metadata.json", ".hydra/hydra.yaml", ".hydra/config.yaml")
_GIT_ENV = {
    "GIT_AUTHOR_NAME": "bench",
    "GIT_AUTHOR_EMAIL": "bench@example.com",
    "GIT_COMMITTER_NAME": "bench",
    "GIT_COMMITTER_EMAIL": "bench@example.com",
}


def sweep(root: Path) -> list[Path]:
    """Record the sweep into ``root`` from a fresh git repo; its run folders."""
    with tempfile.TemporaryDirectory(prefix="meticulous-bench-app-") as tmp:
        app = Path(tmp)
        shutil.copytree(PROJECT / "conf", app / "conf")
        (app / "examples").mkdir()
        shutil.copy(PROJECT / "examples" / "train.py", app / "examples" / "train.py")
        (app / ".gitignore").write_text("multirun/\n")
        env = {**os.environ, **_GIT_ENV}
        for args in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "app"]):
            subprocess.run(["git", *args], cwd=app, env=env, check=True)
        subprocess.run(
            [
                sys.executable,
                "examples/train.py",
                "-m",
                "hydra/callbacks=meticulous",
                f"hydra.callbacks.meticulous.root={root}",
                *SWEEP,
            ],
            cwd=app,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    return sorted((p for p in root.iterdir() if p.name.isdigit()), key=lambda p: int(p.name))


def replicate(template: list[Path], root: Path, n: int) -> None:
    """Fill ``root`` up to ``n`` runs with copies of ``template``, each
    naming its own folder where the original named its own."""
    for number in range(len(template) + 1, n + 1):
        source = template[(number - 1) % len(template)]
        target = root / str(number)
        shutil.copytree(source, target, symlinks=True)
        old, new = f"{source}".encode(), f"{target}".encode()
        for name in _NAMING:
            path = target / name
            if path.exists():
                data = path.read_bytes()
                data = data.replace(old, new).replace(
                    f'"id": "{source.name}"'.encode(), f'"id": "{number}"'.encode()
                )
                path.write_bytes(data)


def make(root: Path, n: int) -> None:
    root = root.absolute()
    template = sweep(root)
    if not template:
        raise RuntimeError("the sweep recorded nothing")
    replicate(template, root, n)


if __name__ == "__main__":
    make(Path(sys.argv[1]), int(sys.argv[2]))
