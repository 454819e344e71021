"""``meticulous show RUN...``: each run in full (what ``meticulous-summary
ROOT/ID`` shows), selected like every other verb's runs."""

from __future__ import annotations

import argparse
import sys

from meticulous_hydra.cli import selection
from meticulous_hydra.cli.summary import show_one


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "show",
        help="runs in full",
        description="Show runs in full: status and its detail, times, overrides, git, tags, "
        "notes, the resolved config, the summary and the last lines of stdout/stderr.",
    )
    p.add_argument("runs", nargs="*", metavar="RUN", help="ids, ranges (3-7) or ROOT/ID")
    p.add_argument("--tail", type=int, default=20, metavar="N", help="lines of stdout/stderr")
    selection.add_arguments(p)
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    runs = selection.select(args.runs, args, include_archived=True)
    sys.stdout.write("\n".join(show_one(run.path, tail=args.tail) for run in runs))
    return 0
