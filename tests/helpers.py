"""Helpers shared by the tests: real git repositories in temp dirs, real
subprocesses, and short ways to record a run and read its metadata and status.

Test modules import them with ``from helpers import ...`` (pytest puts this
folder on ``sys.path``); the fixtures built on them are in conftest.py.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

PROJECT = Path(__file__).resolve().parents[1]

# Commits in test repos must not depend on the machine's git config.
GIT_ENV = {
    "GIT_AUTHOR_NAME": "Test",
    "GIT_AUTHOR_EMAIL": "test@example.com",
    "GIT_COMMITTER_NAME": "Test",
    "GIT_COMMITTER_EMAIL": "test@example.com",
    "GIT_CONFIG_NOSYSTEM": "1",
}
os.environ.update(GIT_ENV)


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True
    ).stdout


def make_repo(path: Path, files: dict[str, str] | None = None) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    git(path, "init", "-q", "-b", "main")
    for name, text in (files or {"README": "test repo\n"}).items():
        target = path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(textwrap.dedent(text))
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "initial commit")
    return path


def make_app_repo(path: Path, examples: tuple[str, ...] = ("train.py",)) -> Path:
    """A git repository at ``path`` holding a copy of the example Hydra app's
    conf/ and of ``examples``."""
    path.mkdir(parents=True)
    shutil.copytree(PROJECT / "conf", path / "conf")
    (path / "examples").mkdir()
    for name in examples:
        shutil.copy(PROJECT / "examples" / name, path / "examples" / name)
    return make_repo(path, {".gitignore": "multirun/\noutputs/\n"})


def run_python(
    args: list[str],
    cwd: Path,
    *,
    env: dict[str, str] | None = None,
    timeout: float = 120,
    check: bool = False,
) -> subprocess.CompletedProcess[str]:
    """Run Python like hydra-core's tests do: a subprocess with -Werror."""
    proc = subprocess.run(
        [sys.executable, "-Werror", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
        stdin=subprocess.DEVNULL,
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
        )
    return proc


def write_script(directory: Path, name: str, source: str, *, commit: bool = False) -> Path:
    """Write a dedented script; with ``commit``, commit it to the repo at ``directory``."""
    path = directory / name
    path.write_text(textwrap.dedent(source))
    if commit:
        git(directory, "add", name)
        git(directory, "commit", "-q", "-m", f"add {name}")
    return path


def record(
    root: Path,
    config: dict[str, Any] | None = None,
    summary: dict[str, Any] | None = None,
    status: str | None = None,
    detail: str = "",
    **kw: Any,
) -> Any:
    """Record one finished run in-process (no git, no capture) and return its Experiment."""
    from meticulous_hydra import Experiment

    exp = Experiment(config, root=root, capture_output=False, code_dir=root.parent, **kw)
    if summary:
        exp.summary(summary)
    exp.finish(status, detail)
    return exp


def metadata_of(folder: Path) -> dict[str, Any]:
    """The metadata.json of an experiment folder (named like ``status_of``, so
    that tests keep ``meta`` for the dict)."""
    return json.loads((folder / "metadata.json").read_text())


def status_of(folder: Path) -> tuple[str, str]:
    first, _, rest = (folder / "STATUS").read_text().partition("\n")
    return first, rest


@contextlib.contextmanager
def watchdog(proc: subprocess.Popen, seconds: float = 120):
    """Kill ``proc`` if the block takes longer than ``seconds``: a test that
    reads a child's pipe then fails instead of hanging."""
    timer = threading.Timer(seconds, proc.kill)
    timer.start()
    try:
        yield proc
    finally:
        timer.cancel()


def start_blocked(repo: Path, args: list[str]) -> subprocess.Popen[str]:
    """``python -Werror ARGS`` in ``repo``, in a session of its own (so that a
    signal goes to its whole group, as from a terminal), whose task blocks
    reading the FIFO ``repo/fifo`` (named by ``$BLOCK_FIFO``) until a test
    opens it for writing. Output is piped, as text; waiting for the task to
    be reached is the caller's."""
    fifo = repo / "fifo"
    os.mkfifo(fifo)
    return subprocess.Popen(
        [sys.executable, "-Werror", *args],
        cwd=repo,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        env={**os.environ, "BLOCK_FIFO": str(fifo)},
    )


def nested(depth: int) -> dict:
    """``{"a": {"a": ... {}}}``, ``depth`` levels of mappings."""
    tree: dict = {}
    node = tree
    for _ in range(depth):
        node["a"] = {}
        node = node["a"]
    return tree


def shared_once(tmp_path_factory: Any, name: str, make: Callable[[Path], Any]) -> tuple[Path, Any]:
    """``make(folder)`` run once per test session, even under pytest-xdist,
    whose workers share the parent of their temp dirs: the first worker to
    take the lock runs it, the others wait and reuse the folder and the
    JSON-able value it returned. Tests treat the folder as read-only."""
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent  # .../pytest-N/popen-gwK -> .../pytest-N, one per session
    folder, done = base / f"shared-{name}", base / f"shared-{name}.json"
    with open(base / f"shared-{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if not done.exists():
            folder.mkdir()
            done.write_text(json.dumps(make(folder)))
    return folder, json.loads(done.read_text())


def in_mount_namespace(
    setup: str, command: list[str], cwd: Path
) -> subprocess.CompletedProcess[str]:
    """Run ``command`` in a private mount namespace after the ``setup`` shell lines."""
    if shutil.which("unshare") is None:
        pytest.skip("needs unshare(1)")
    probe = subprocess.run(["unshare", "-m", "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip("needs permission to create mount namespaces (root in CI)")
    script = f'set -e\n{setup}\nexec "$@"'
    return subprocess.run(
        ["unshare", "-m", "sh", "-c", script, "sh", *command],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def go_together(procs: list[subprocess.Popen]) -> None:
    """Wait until each of ``procs`` has printed ``ready``, then tell them all
    ``go`` (a line on stdin): the start line of a race."""
    for proc in procs:
        with watchdog(proc):
            assert proc.stdout.readline() == "ready\n"
    for proc in procs:
        proc.stdin.write("go\n")
        proc.stdin.flush()


LIGHTNING_SHAPE = PROJECT / "tests" / "cli" / "apps" / "lightning_shape"


def make_realistic_root(folder: Path) -> dict[str, Any]:
    """A repository at ``folder/app`` whose ``experiments`` root holds what a
    researcher's holds after a few days: a sweep of the example app (two jobs
    diverge), then sweeps and runs of an app in the lightning-hydra-template's
    shape (timestamped output dirs the app sets itself, paths pointing into
    them, a structured config whose misuse raises a multi-line OmegaConf
    error, 13 results), the last sweep with two failed jobs. Returns
    ``{"app": path of the repository}``."""
    repo = make_app_repo(folder / "app")
    shutil.copytree(LIGHTNING_SHAPE, repo / "lightning")
    (repo / ".gitignore").write_text("multirun/\noutputs/\nlogs/\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "the lightning-shaped app")
    example = ["examples/train.py", "-m", "hydra/callbacks=meticulous"]
    lightning = ["lightning/train.py", "+meticulous=on"]
    sweep = ["lightning/train.py", "-m", "+meticulous=on"]
    launches = [
        [*example, "model=mlp,resnet", "optimizer.lr=0.01,0.1,2.0"],  # 1-6, 3 and 6 diverge
        [*sweep, "model=small,large", "optimizer=adam,sgd"],  # 7-10
        [*sweep, "optimizer.lr=0.01,0.1", "seed=1,2"],  # 11-14
        [*sweep, "db_key=pork"],  # 15: ConfigKeyError, three lines
        [*lightning],  # 16: a single run, in logs/train/runs/<time>
        [*lightning, "seed=7"],  # 17
        [*sweep, "optimizer.lr=0.01,0.1", "fail_at_step=null,5"],  # 18-21
    ]
    for argv in launches:
        run_python(argv, repo)
    return {"app": str(repo)}
