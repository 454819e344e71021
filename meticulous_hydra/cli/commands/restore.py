"""``meticulous restore``: bring runs back from ``ROOT/.trash``
(:mod:`meticulous_hydra.recorder.organise`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from meticulous_hydra import layout
from meticulous_hydra.cli import selection
from meticulous_hydra.exceptions import UsageError
from meticulous_hydra.recorder import organise


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("restore", help="bring runs back from ROOT/.trash")
    p.add_argument("runs", nargs="*", metavar="RUN", help="ids or ranges in the trash")
    selection.add_root(p)
    p.add_argument("--list", action="store_true", help="list the trash")
    p.set_defaults(func=_restore)


def _restore(args: argparse.Namespace) -> int:
    root = Path(args.root)
    if args.list or not args.runs:
        names = organise.trashed(root)
        print("\n".join(names) if names else f"the trash of {root} is empty")
        return 0
    names = organise.trashed(root)
    chosen: list[str] = []
    for token in args.runs:
        # the plain id first: 7 restores .trash/7; 7~2 must be named
        chosen += selection.expand(
            token,
            root / layout.TRASH_DIR,
            names,
            "trashed run",
            see=f"meticulous restore --list --root {root}",
        )
    restored = []
    for name in dict.fromkeys(chosen):
        try:
            restored.append(organise.restore(root, name).name)
        except FileExistsError as e:
            raise UsageError(
                f"{e.args[0]} exists: a run has that id already; remove it first"
            ) from None
    print(f"restored {', '.join(restored)} to {root}")
    return 0
