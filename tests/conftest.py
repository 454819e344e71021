"""Shared fixtures: real git repositories in temp dirs (helpers.py has the
functions they are built on)."""

from __future__ import annotations

import os
import signal
import tempfile
from pathlib import Path

import pytest
from helpers import make_app_repo, make_realistic_root, make_repo, shared_once

# Our own code never uses a module path from before the parts had folders.
os.environ["METICULOUS_HYDRA_OLD_PATHS"] = "error"
# The reader's per-user cache goes to a folder of this test session, not ~/.cache.
os.environ["METICULOUS_HYDRA_CACHE_DIR"] = tempfile.mkdtemp(prefix="meticulous-cache-")
# A suite started in the background (`make test &`, nohup) inherits SIGINT
# ignored, and so would every child it starts: the Ctrl-C tests need what a
# terminal gives, the default. A handler is reset to the default on exec.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)
# No terminal width from outside: pytest-xdist's workers get COLUMNS=80, and
# meticulous-summary takes COLUMNS for a terminal to fit (tests that want one
# set COLUMNS themselves). Subprocesses inherit this environment too.
os.environ.pop("COLUMNS", None)
os.environ.pop("LINES", None)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A committed git repository with nothing in it but a README."""
    return make_repo(tmp_path / "repo")


@pytest.fixture
def app_repo(tmp_path: Path) -> Path:
    """A git repository holding a copy of the example Hydra app (conf/ + examples/)."""
    return make_app_repo(tmp_path / "app")


@pytest.fixture(scope="session")
def realistic_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The ``experiments`` root of helpers.make_realistic_root, made once per
    test session (read-only: copy it to change it)."""
    _, made = shared_once(tmp_path_factory, "realistic-root", make_realistic_root)
    return Path(made["app"]) / "experiments"
