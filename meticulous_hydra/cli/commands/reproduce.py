"""``meticulous reproduce RUN``: what changed since a run and the shell
commands that run it again; ``--run`` does it and compares the two runs. The
logic is :mod:`meticulous_hydra.replay.reproduce`'s."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import Any

from meticulous_hydra.cli import selection
from meticulous_hydra.replay.reproduce import (
    build_steps,
    check_commit,
    drift_report,
    find_repo,
    load_run,
    python_now,
    reproduce,
    shell_lines,
)


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "reproduce",
        help="what changed since a run, and the commands that run it again",
        description="Show what changed since RUN (code, Python, packages) and the shell "
        "commands that rebuild its code in a separate git worktree and run it again; "
        "--run does it and compares the two runs.",
    )
    p.add_argument("run", metavar="RUN", help="ID (under --root) or ROOT/ID")
    selection.add_root(p)
    p.add_argument("--repo", help="the git repository to rebuild from (default: the recorded one)")
    p.add_argument("--run", dest="execute", action="store_true", help="rebuild, run and compare")
    p.add_argument("--keep", action="store_true", help="keep the worktree after --run")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    run = load_run(selection.one(args.run, Path(args.root)).path.absolute())
    repo = find_repo(run, args.repo)
    check_commit(repo, run.git["sha"])
    py = python_now(run)
    print("\n".join(drift_report(run, repo, py)))
    steps = build_steps(run, repo, py)
    hint = f"meticulous-reproduce-{run.id}"
    print("\nto run it again:")
    lines = shell_lines(steps, hint)
    lines.append(f'git -C {shlex.quote(str(repo))} worktree remove --force "$WT"')
    print("\n".join("  " + line for line in lines))
    sys.stdout.flush()
    if not args.execute:
        return 0
    print()
    sys.stdout.flush()
    return reproduce(run, repo, steps, args.keep)
