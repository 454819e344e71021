"""Shared fixtures: real git repositories in temp dirs and real subprocesses."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import threading
from pathlib import Path

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
# The reader's per-user cache goes to a folder of this test session, not ~/.cache.
os.environ["METICULOUS_HYDRA_CACHE_DIR"] = tempfile.mkdtemp(prefix="meticulous-cache-")


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


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A committed git repository with nothing in it but a README."""
    return make_repo(tmp_path / "repo")


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


@pytest.fixture
def app_repo(tmp_path: Path) -> Path:
    """A git repository holding a copy of the example Hydra app (conf/ + examples/)."""
    return make_app(tmp_path / "app")


def make_app(root: Path, scripts: tuple[str, ...] = ("train.py",)) -> Path:
    """A git repository at ``root`` with conf/ and these examples/ scripts."""
    root.mkdir()
    shutil.copytree(PROJECT / "conf", root / "conf")
    (root / "examples").mkdir()
    for name in scripts:
        shutil.copy(PROJECT / "examples" / name, root / "examples" / name)
    return make_repo(root, {".gitignore": "multirun/\noutputs/\n"})


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
