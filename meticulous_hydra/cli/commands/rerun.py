"""``meticulous rerun --failed``: run a sweep's failed jobs again, into the
same sweep. The logic is :mod:`meticulous_hydra.replay.rerun`'s."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from meticulous_hydra import layout
from meticulous_hydra.cli import selection
from meticulous_hydra.reader.reader import experiment_names
from meticulous_hydra.replay.reproduce import Run, new_runs, run_step, shell_line
from meticulous_hydra.replay.rerun import claim_job, failed_jobs, rerun_step


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "rerun",
        help="run the failed jobs of a sweep again, into the same sweep",
        description="Run the jobs of a sweep whose latest attempt did not succeed "
        "(ERROR, INTERRUPTED, TIMEOUT, DIED) again, each with its own overrides and the code "
        "as it is now; the new runs join the sweep. A job that SLURM requeued (REQUEUED) is "
        "never run again: SLURM runs it, in its folder.",
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
    seen = set(experiment_names(root))  # before the failed jobs are read
    sweep, runs, requeued = failed_jobs(root, args.sweep)
    for run in requeued:
        print(
            f"# job {run.meta['sweep'].get('job_num')}, run {run.id}: {run.status}, SLURM runs "
            "it again: left alone"
        )
    if not runs:
        done = "no other job failed" if requeued else "every job succeeded"
        print(f"sweep {sweep}: {done}, nothing to run again")
        return 0
    print(f"sweep {sweep}: {len(runs)} job(s) to run again")
    worst = 0
    for run in runs:
        print(f"# job {run.meta['sweep'].get('job_num')}, run {run.id} ({run.status})")
        if args.dry_run:
            print(shell_line(rerun_step(run)))
            continue
        status = None
        with claim_job(root, run.id) as holder:
            if holder is None:
                status = _rerun(root, run, seen)
        if holder is not None:
            print(f"skipped: another `meticulous rerun` ({holder}) is running it")
        elif status is not None and status != layout.SUCCESS:
            worst = 1
    return worst


def _rerun(root: Path, run: Run, seen: set[str]) -> str | None:
    """Run the job of ``run`` again (its claim held); its new run's status, or
    None when another process ran it since the failed jobs were read."""
    done = new_runs(root, seen, "rerun_of", run.id)
    if done:
        print(f"skipped: another `meticulous rerun` ran it meanwhile (run {done[-1].id})")
        return None
    step = rerun_step(run)
    print(shell_line(step))
    sys.stdout.flush()
    before = {p.name for p in root.iterdir()}
    code = run_step(step)
    # only the holder of the claim re-runs this job: its new run is this one's
    made = new_runs(root, before, "rerun_of", run.id)
    status = made[-1].status if made else "not recorded"
    print(f"-> run {made[-1].id if made else '-'}: {status} (exit code {code})")
    return status
