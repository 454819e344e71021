"""``meticulous archive`` and ``unarchive``: an ``ARCHIVED`` file hides a run
from the table and ``load_experiments`` (:mod:`meticulous_hydra.recorder.organise`)."""

from __future__ import annotations

import argparse

from meticulous_hydra.cli import selection
from meticulous_hydra.recorder import organise


def register(sub: argparse._SubParsersAction) -> None:
    for verb, func in (("archive", _archive), ("unarchive", _unarchive)):
        if verb in sub.choices:
            continue
        p = sub.add_parser(
            verb,
            help="hide runs from the table and load_experiments"
            if verb == "archive"
            else "show archived runs again",
        )
        p.add_argument("runs", nargs="*", metavar="RUN", help="ids, ranges (3-7) or ROOT/ID")
        selection.add_arguments(p)
        p.set_defaults(func=func)


def _archive(args: argparse.Namespace) -> int:
    runs = selection.select(args.runs, args)
    done = [r for r in runs if organise.set_archived(r.path, True)]
    selection.report(runs, done, "archived", "already archived")
    return 0


def _unarchive(args: argparse.Namespace) -> int:
    runs = selection.select(args.runs, args, include_archived=True)
    done = [r for r in runs if organise.set_archived(r.path, False)]
    selection.report(runs, done, "unarchived", "not archived")
    return 0
