"""``meticulous note``: one line appended to the run's ``NOTES`` with time
and user (:mod:`meticulous_hydra.recorder.organise`)."""

from __future__ import annotations

import argparse

from meticulous_hydra.cli import selection
from meticulous_hydra.exceptions import UsageError
from meticulous_hydra.recorder import organise
from meticulous_hydra.recorder.environment import username


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "note",
        help="add a note (kept with time and user; notes never replace each other)",
        description="Append a note to runs' NOTES file.",
    )
    selection.add_runs_and(p, "text", "the note")
    p.set_defaults(func=_note)


def _note(args: argparse.Namespace) -> int:
    selection.require_runs(args, "note", "text")
    if not args.text.strip():
        raise UsageError("the note is empty")
    runs = selection.select(args.runs, args)
    for run in runs:
        organise.add_note(run.path, args.text, username())
    selection.report(runs, runs, "noted", "")
    return 0
