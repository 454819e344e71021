"""``meticulous rerun``: run runs again, selected like every verb's; ``--failed``
those that did not succeed (alone: the latest sweep's failed jobs). A sweep
job's new run joins its sweep. The logic is :mod:`meticulous_hydra.replay.rerun`'s."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from meticulous_hydra import layout
from meticulous_hydra.cli import selection
from meticulous_hydra.exceptions import UsageError
from meticulous_hydra.reader.reader import experiment_names
from meticulous_hydra.replay.reproduce import Run, new_runs, run_step, shell_line
from meticulous_hydra.replay.rerun import claim_job, latest_of, rerun_step


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "rerun",
        help="run runs again (a sweep's failed jobs into the same sweep)",
        description="Run runs again, each with its own overrides and the code as it is now: "
        "the runs named, or chosen by --sweep/--status/--filter/--tag; a sweep job's "
        "new run joins its sweep. --failed: those whose latest attempt did not succeed "
        "(ERROR, INTERRUPTED, TIMEOUT, DIED); alone, the failed jobs of the latest sweep. "
        "A job that SLURM requeued (REQUEUED) is never run again: SLURM runs it, in its folder.",
    )
    p.add_argument("runs", nargs="*", metavar="RUN", help="ids, ranges (3-7) or ROOT/ID")
    p.add_argument("--failed", action="store_true", help="only the runs that did not succeed")
    selection.add_arguments(p)
    p.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    if not args.runs and not selection.filtering(args):
        if not args.failed:
            raise UsageError(
                "which runs? meticulous rerun RUN..., --sweep/--status/--filter/--tag, "
                "or --failed for the failed jobs of the latest sweep"
            )
        args.sweep = "latest"
    chosen = selection.select(args.runs, args, include_archived=True)
    roots = list(dict.fromkeys(r.root.absolute() for r in chosen))
    seen = {root: set(experiment_names(root)) for root in roots}  # before the runs are read
    runs, requeued = latest_of([r.path.absolute() for r in chosen], failed=args.failed)
    for run in requeued:
        print(f"# {_job(run)}run {run.id}: {run.status}, SLURM runs it again: left alone")
    sweeps = {str((run.meta.get("sweep") or {}).get("id")) for run in runs}
    # the jobs of one sweep, or runs
    jobs = len(sweeps) == 1 and "None" not in sweeps and bool(args.sweep)
    what, kind = (f"sweep {sweeps.pop()}: ", "job") if jobs else ("", "run")
    if not runs:
        done = "no other run failed" if requeued else "every run chosen succeeded"
        print(f"{done}, nothing to run again")
        return 0
    print(f"{what}{len(runs)} {kind}(s) to run again")
    worst = 0
    for run in runs:
        print(f"# {_job(run)}run {run.id} ({run.status})")
        if args.dry_run:
            print(shell_line(rerun_step(run)))
            continue
        status = None
        with claim_job(run.root, run.id) as holder:
            if holder is None:
                status = _rerun(run.root, run, seen[run.root])
        if holder is not None:
            print(f"skipped: another `meticulous rerun` ({holder}) is running it")
        elif status is not None and status != layout.SUCCESS:
            worst = 1
    return worst


def _job(run: Run) -> str:
    job = (run.meta.get("sweep") or {}).get("job_num")
    return "" if job is None else f"job {job}, "


def _rerun(root: Path, run: Run, seen: set[str]) -> str | None:
    """Run ``run`` again (its claim held); its new run's status, or None when
    another process ran it since the runs were read."""
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
