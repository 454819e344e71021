"""Facts about the process and the machine it runs on: host, user, versions,
the cluster scheduler and the distributed-training rank."""

from __future__ import annotations

import functools
import getpass
import os
import platform
import re
import socket
import sys
from typing import Any

from meticulous_hydra import layout
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


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` of this host still runs (a zombie does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            # a zombie has exited and only waits for its parent to reap it
            return f.read().rsplit(b")", 1)[-1].split()[0] != b"Z"
    except OSError:
        return True


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


# What SLURM said the first time it was asked: it sends SIGTERM more than
# once as it ends a job (at a preemption's notice, then with the kill), and
# scontrol may not answer the second time.
_slurm_said: tuple[str, str] | None = None


def sigterm_status() -> tuple[str, str]:
    """The STATUS line and detail that a SIGTERM received now stands for:
    INTERRUPTED, or, in a SLURM job, what SLURM says it is ending the job
    for (:func:`slurm_ending`)."""
    global _slurm_said
    job = os.environ.get("SLURM_JOB_ID", "")
    if _slurm_said is None and job.isdigit():
        import subprocess  # only here: a SIGTERM in a SLURM job

        for _ in range(3):  # SLURM's SIGKILL comes after KillWait (30 s by default)
            try:
                shown = subprocess.run(
                    ["scontrol", "--oneliner", "show", "job", job],
                    capture_output=True,
                    text=True,
                    timeout=5,
                    stdin=subprocess.DEVNULL,
                ).stdout
            except (OSError, subprocess.SubprocessError):
                shown = ""
            _slurm_said = slurm_ending(shown, job, os.environ.get("SLURM_RESTART_COUNT", ""))
            if shown:
                break
    return _slurm_said or (layout.INTERRUPTED, "SIGTERM")


def _job_field(shown: str, name: str) -> str | None:
    match = re.search(rf"(?:^|\s){name}=(\S*)", shown)
    return match.group(1) if match else None


def slurm_ending(shown: str, job: str, restart_count: str = "") -> tuple[str, str] | None:
    """Why SLURM sent SIGTERM to job ``job``, from ``scontrol --oneliner show
    job`` output read then (``restart_count``: the job's SLURM_RESTART_COUNT):
    its time limit (TIMEOUT), a requeue, by ``scontrol requeue`` or preemption
    (REQUEUED: the count of restarts has gone up), or ``scancel``
    (INTERRUPTED); None when the output says none of these."""
    state, reason = _job_field(shown, "JobState"), _job_field(shown, "Reason")
    if state is None:
        return None
    if reason == "TimeLimit" or state == "TIMEOUT":
        limit = _job_field(shown, "TimeLimit") or "?"
        return layout.TIMEOUT, f"SIGTERM: SLURM job {job} reached its time limit ({limit})"
    restarts = _job_field(shown, "Restarts") or "0"
    before = int(restart_count) if restart_count.isdigit() else 0
    if restarts.isdigit() and int(restarts) > before:
        return layout.REQUEUED, f"SIGTERM: SLURM requeued job {job} (restart {restarts})"
    if state in ("CANCELLED", "COMPLETING"):
        return layout.INTERRUPTED, f"SIGTERM: SLURM job {job} cancelled (scancel)"
    return None


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
