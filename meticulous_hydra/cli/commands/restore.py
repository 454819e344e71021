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
    back: list[str] = []  # named, and restored by another process since
    for token in args.runs:
        try:
            # the plain id first: 7 restores .trash/7; 7~2 must be named
            chosen += selection.expand(
                token,
                root / layout.TRASH_DIR,
                names,
                "trashed run",
                see=f"meticulous restore --list --root {root}",
            )
        except UsageError as missing:
            try:
                back += selection.expand(token, root, selection.run_names(root))
            except UsageError:
                raise missing from None
    restored, gone = [], []
    for name in dict.fromkeys(chosen):
        try:
            where = organise.restore(root, name)
        except FileExistsError as e:
            raise UsageError(
                f"{e.args[0]} exists: a run has that id already; remove it first"
            ) from None
        if where is not None:
            restored.append(where.name)
        elif (root / name.split("~", 1)[0]).exists():
            back.append(name)
        else:
            gone.append(name)
    if restored:
        print(f"restored {', '.join(restored)} to {root}")
    if back:
        print(f"already restored by another process: {', '.join(back)}")
    if gone:
        print(f"no longer in the trash (deleted by another process): {', '.join(gone)}")
    return 0
