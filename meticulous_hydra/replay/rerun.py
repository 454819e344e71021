"""``meticulous rerun``: run runs again, each with its own overrides and the
code as it is now; ``--failed`` those that did not succeed. A sweep job's new
run joins its sweep (same sweep id and job number, ``metadata.rerun_of``), so
the summary shows the sweep whole: one row per job, its latest attempt; a
single run's new run is a run of its own with ``metadata.rerun_of``.

Two ``rerun`` at once run each job once: a job is run again only by the
process holding its claim (:func:`claim_job`), and only when no run has
re-run it since the runs were read."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

from meticulous_hydra import layout
from meticulous_hydra.reader.attempts import latest_attempts
from meticulous_hydra.reader.frame import run_id
from meticulous_hydra.reader.reader import load_experiments
from meticulous_hydra.recorder import provenance
from meticulous_hydra.recorder.environment import hostname

from .reproduce import Run, Step, interpreter, job_argv, load_run

# A REQUEUED job is not among them: SLURM runs it again, in its folder.
FAILED = (layout.ERROR, layout.INTERRUPTED, layout.TIMEOUT, layout.DIED)


def latest_of(folders: Sequence[Path], *, failed: bool = False) -> tuple[list[Run], list[Run]]:
    """Each run of ``folders``, or for a sweep job its latest attempt, once,
    in the order given (with ``failed`` only those that did not succeed); and
    apart, those SLURM requeued, which it runs again itself (to be left alone)."""
    chosen: dict[Path, None] = {}
    requeued: dict[Path, None] = {}
    for root in dict.fromkeys(f.parent for f in folders):
        frame = load_experiments(root, cache=False, include_archived=True)
        latest = latest_attempts(frame)
        job = frame["sweep.id"].astype(str) + "\0" + frame["sweep.job_num"].astype(str)
        swept = frame["sweep.id"].notna() & frame["sweep.job_num"].notna()
        latest_of_job = {job[i]: i for i in latest.index if swept[i]}
        for folder in (f for f in folders if f.parent == root):
            i = run_id(folder.name)
            if i in frame.index:
                i = latest_of_job.get(job[i], i) if swept[i] else i
                status = frame.at[i, "status"]
                if status == layout.REQUEUED:
                    requeued[root / str(i)] = None
                elif not failed or status in FAILED:
                    chosen[root / str(i)] = None
    return [load_run(f) for f in chosen], [load_run(f) for f in requeued]


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
