"""tests/slurm needs the cluster of tests/slurm/start.sh: without it, every
test here is skipped for one reason, which ``pytest -ra`` shows once (CI sets
``METICULOUS_SLURM=required``, and then it is an error)."""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from pathlib import Path

import pytest

HERE = Path(__file__).parent


def no_cluster() -> str | None:
    """Why the cluster of tests/slurm/start.sh can't be used here, or None."""
    if shutil.which("sbatch") is None:
        return "SLURM is not installed"
    try:
        shown = subprocess.run(
            ["sinfo", "-h", "-o", "%P"], capture_output=True, text=True, timeout=15
        )
    except (OSError, subprocess.SubprocessError) as e:
        return f"sinfo failed: {e}"
    if shown.returncode != 0:
        last = (shown.stderr.strip().splitlines() or ["no output"])[-1]
        return f"no SLURM controller answers ({last})"
    if not {"debug*", "low", "high"} <= set(shown.stdout.split()):
        return "the cluster is not tests/slurm/start.sh's (partitions debug, low, high)"
    return None


@functools.cache
def skip_reason() -> str | None:
    why = no_cluster()
    if why is None:
        return None
    return f"no SLURM cluster: {why}; `make test-slurm` starts one (as root) and runs these"


def pytest_configure(config: pytest.Config) -> None:
    # in the main process, before any worker starts: one clear error
    required = os.environ.get("METICULOUS_SLURM") == "required"
    if required and not hasattr(config, "workerinput") and skip_reason():
        raise pytest.UsageError(skip_reason())


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    ours = [item for item in items if HERE in item.path.parents]
    reason = skip_reason() if ours else None
    if reason is None:
        return
    # a mark added here (not a module's pytestmark) folds into one line of -ra
    skip = pytest.mark.skip(reason=reason)
    for item in ours:
        item.add_marker(skip)
