"""``meticulous rerun --failed``: run the jobs of a sweep that did not succeed
again, each with its own overrides, with the code as it is now. The new runs
join the sweep (same sweep id and job number, ``metadata.rerun_of``), so the
summary shows the sweep whole: one row per job, its latest attempt."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from . import layout, provenance, selection
from .attempts import latest_attempts
from .exceptions import UsageError
from .reader import load_experiments
from .reproduce import Run, Step, interpreter, job_argv, load_run, new_runs, run_step, shell_line

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


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "rerun",
        help="run the failed jobs of a sweep again, into the same sweep",
        description="Run the jobs of a sweep whose latest attempt did not succeed "
        "(ERROR, INTERRUPTED, DIED) again, each with its own overrides and the code as it "
        "is now; the new runs join the sweep.",
    )
    p.add_argument(
        "--failed", action="store_true", required=True, help="the jobs that did not succeed"
    )
    p.add_argument("--sweep", default="latest", metavar="ID", help="sweep id, or latest (default)")
    selection.add_root(p)
    p.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    root = Path(args.root).absolute()
    sweep, runs = failed_jobs(root, args.sweep)
    if not runs:
        print(f"sweep {sweep}: every job succeeded, nothing to run again")
        return 0
    print(f"sweep {sweep}: {len(runs)} job(s) to run again")
    worst = 0
    for run in runs:
        step = rerun_step(run)
        print(f"# job {run.meta['sweep'].get('job_num')}, run {run.id} ({run.status})")
        print(shell_line(step))
        sys.stdout.flush()
        if args.dry_run:
            continue
        before = {p.name for p in root.iterdir()}
        code = run_step(step)
        made = new_runs(root, before, "rerun_of", run.id)
        status = made[-1].status if made else "not recorded"
        print(f"-> run {made[-1].id if made else '-'}: {status} (exit code {code})")
        if status != layout.SUCCESS:
            worst = 1
    return worst
