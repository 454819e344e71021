"""``meticulous rerun --failed``: run the jobs of a sweep that did not succeed
again, each with its own overrides, with the code as it is now. The new runs
join the sweep (same sweep id and job number, ``metadata.rerun_of``), so the
summary shows the sweep whole: one row per job, its latest attempt."""

from __future__ import annotations

import json
from pathlib import Path

from meticulous_hydra import layout
from meticulous_hydra.exceptions import UsageError
from meticulous_hydra.reader.attempts import latest_attempts
from meticulous_hydra.reader.reader import load_experiments
from meticulous_hydra.recorder import provenance

from .reproduce import Run, Step, interpreter, job_argv, load_run

FAILED = (layout.ERROR, layout.INTERRUPTED, layout.DIED)


def failed_jobs(root: Path, sweep: str) -> tuple[str, list[Run]]:
    """The sweep's id and the latest attempts of its jobs that did not succeed."""
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
    failed = jobs[jobs["status"].isin(FAILED)].sort_values("sweep.job_num")
    return sweep, [load_run(root / str(i)) for i in failed.index]


def rerun_step(run: Run) -> Step:
    """The command that runs a failed job again, from its launch directory."""
    _, cwd = run.launch
    env = {
        provenance.ENV_ROOT: str(run.root),
        provenance.ENV_RERUN_OF: run.id,
        provenance.ENV_SWEEP: json.dumps(run.meta.get("sweep"), separators=(",", ":")),
    }
    return Step([interpreter(run), *job_argv(run)], cwd=cwd, env=env)
