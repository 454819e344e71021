"""Facts about the process and the machine it runs on: host, user, versions,
the cluster scheduler and the distributed-training rank."""

from __future__ import annotations

import functools
import getpass
import os
import platform
import socket
import sys
from typing import Any

from meticulous_hydra._version import __version__

# Variables a scheduler or launcher sets, recorded under metadata["slurm"].
_SLURM_VARS = {
    "job_id": "SLURM_JOB_ID",
    "array_job_id": "SLURM_ARRAY_JOB_ID",
    "array_task_id": "SLURM_ARRAY_TASK_ID",
    "job_name": "SLURM_JOB_NAME",
    "nodelist": "SLURM_JOB_NODELIST",
    "partition": "SLURM_JOB_PARTITION",
    "ntasks": "SLURM_NTASKS",
    "procid": "SLURM_PROCID",
    "restart_count": "SLURM_RESTART_COUNT",
    "submit_dir": "SLURM_SUBMIT_DIR",
}
# Global rank, in the order launchers set it: torchrun/Lightning, then SLURM
# tasks, then MPI.
_RANK_VARS = ("RANK", "SLURM_PROCID", "OMPI_COMM_WORLD_RANK", "PMI_RANK")


@functools.cache
def hostname() -> str:
    return socket.gethostname()


def username() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no passwd entry in some containers
        return str(os.getuid())


def global_rank() -> int:
    """This process's global rank in a distributed job; 0 when not distributed.

    LOCAL_RANK alone (torchrun on one node sets RANK too) is trusted only when
    no global rank variable is set.
    """
    for var in (*_RANK_VARS, "LOCAL_RANK"):
        value = os.environ.get(var, "").strip()
        if value.isdigit():
            return int(value)
    return 0


def slurm_info() -> dict[str, str] | None:
    info = {k: os.environ[v] for k, v in _SLURM_VARS.items() if v in os.environ}
    return info or None


@functools.cache
def _dist_version(module: str, dist: str) -> str | None:
    mod = sys.modules.get(module)
    version = getattr(mod, "__version__", None)
    if version:
        return str(version)
    try:
        # ~20 ms, here: only for a module that has no __version__
        from importlib.metadata import version as dist_version

        return dist_version(dist)
    except Exception:
        return None


def command_argv() -> list[str]:
    """The command line as ``python`` would take it again: ``sys.argv``, but
    ``python -m pkg.mod`` stays ``-m pkg.mod`` (``sys.argv[0]`` is then the
    module's file, which can't be run again when it imports relatively)."""
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    if spec is None or not sys.argv:
        return list(sys.argv)
    module = spec.name.removesuffix(".__main__")
    return ["-m", module, *sys.argv[1:]]


def process_metadata() -> dict[str, Any]:
    """The part of metadata.json that describes the process itself."""
    return {
        "argv": command_argv(),
        "cwd": os.getcwd(),
        "host": hostname(),
        "user": username(),
        "pid": os.getpid(),
        "python": {"version": platform.python_version(), "executable": sys.executable},
        "versions": {
            "meticulous-hydra": __version__,
            "hydra-core": _dist_version("hydra", "hydra-core"),
            "omegaconf": _dist_version("omegaconf", "omegaconf"),
        },
        "slurm": slurm_info(),
    }
