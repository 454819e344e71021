"""``meticulous rerun --failed``: run the jobs of a sweep that did not succeed
again, each with its own overrides, with the code as it is now. The new runs
join the sweep (same sweep id and job number, ``metadata.rerun_of``), so the
summary shows the sweep whole: one row per job, its latest attempt.

Two ``rerun --failed`` at once run each job once: a job is run again only by
the process holding its claim (:func:`claim_job`), and only when no run has
re-run it since the failed jobs were read."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

from meticulous_hydra import layout
from meticulous_hydra.exceptions import UsageError
from meticulous_hydra.reader.attempts import latest_attempts
from meticulous_hydra.reader.reader import load_experiments
from meticulous_hydra.recorder import provenance
from meticulous_hydra.recorder.environment import hostname

from .reproduce import Run, Step, interpreter, job_argv, load_run

# A REQUEUED job is not among them: SLURM runs it again, in its folder.
FAILED = (layout.ERROR, layout.INTERRUPTED, layout.TIMEOUT, layout.DIED)


def failed_jobs(root: Path, sweep: str) -> tuple[str, list[Run], list[Run]]:
    """The sweep's id, the latest attempts of its jobs that did not succeed,
    and those that SLURM requeued (to be left alone)."""
    try:
        frame = load_experiments(root, cache=False)
    except FileNotFoundError as e:
        raise UsageError(str(e)) from e
    swept = frame[frame["sweep.id"].notna()] if not frame.empty else frame
    if swept.empty:
        raise UsageError(f"no sweep recorded under {root}")
    if sweep == "latest":
        sweep = str(swept.sort_values("start_time")["sweep.id"].iloc[-1])
    elif not (swept["sweep.id"] == sweep).any():
        known = sorted(swept["sweep.id"].unique())[-3:]
        raise UsageError(f"no sweep {sweep!r} under {root}; recent sweeps: {', '.join(known)}")
    jobs = latest_attempts(swept[swept["sweep.id"] == sweep])
    jobs = jobs.sort_values("sweep.job_num")
    failed = jobs[jobs["status"].isin(FAILED)]
    requeued = jobs[jobs["status"] == layout.REQUEUED]
    return (
        sweep,
        [load_run(root / str(i)) for i in failed.index],
        [load_run(root / str(i)) for i in requeued.index],
    )


def rerun_step(run: Run) -> Step:
    """The command that runs a failed job again, from its launch directory."""
    _, cwd = run.launch
    env = {
        provenance.ENV_ROOT: str(run.root),
        provenance.ENV_RERUN_OF: run.id,
        provenance.ENV_SWEEP: json.dumps(run.meta.get("sweep"), separators=(",", ":")),
    }
    return Step([interpreter(run), *job_argv(run)], cwd=cwd, env=env)


# -- one attempt per job ------------------------------------------------------------


def _alive(holder: str) -> bool:
    """Whether the process ``host:pid`` holding a claim may still run; one on
    another host can't be checked, so it may."""
    host, _, pid = holder.rpartition(":")
    if host != hostname() or not pid.isdigit():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # someone else's process
    return True


@contextlib.contextmanager
def claim_job(root: Path, run_id: str) -> Iterator[str | None]:
    """Claim the re-run of the failed run ``run_id`` for this process while the
    block runs: yields None when the claim is this process's, else the
    ``host:pid`` of the live process holding it.

    A claim is the symbolic link ``.reruns/<run_id>`` whose target is the
    holder's ``host:pid`` (never followed: a link is created whole or not at
    all, on NFS too, holder included). The holder removes it when done. A
    holder that died (on this host) left a stale claim: the next process takes
    ``<run_id>~2`` (then ``~3``, ...), so that two taking over at once don't
    both win, and a claim is only ever removed by its holder.
    """
    me = f"{hostname()}:{os.getpid()}"
    with layout.own_folder(root, layout.RERUNS_DIR) as fd:
        n = 1
        while True:
            name = run_id if n == 1 else f"{run_id}~{n}"
            try:
                os.symlink(me, name, dir_fd=fd)
                break
            except FileExistsError:
                try:
                    holder = os.readlink(name, dir_fd=fd)
                except FileNotFoundError:
                    continue  # released meanwhile: try it again
                if _alive(holder):
                    yield holder
                    return
                n += 1
    try:
        yield None
    finally:
        with layout.own_folder(root, layout.RERUNS_DIR, create=False) as fd:
            os.unlink(name, dir_fd=fd)
