"""``meticulous rm``: move runs to ``ROOT/.trash`` (``restore`` brings them
back); ``--purge`` deletes them, ``--purge --trash`` empties the trash
(:mod:`meticulous_hydra.recorder.organise`)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from meticulous_hydra import layout
from meticulous_hydra.cli import selection
from meticulous_hydra.exceptions import UsageError
from meticulous_hydra.reader.reader import ExperimentReader
from meticulous_hydra.recorder import organise


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "rm",
        help="move runs to ROOT/.trash (restorable); --purge deletes for good",
        description="Move runs aside to ROOT/.trash/ID: `meticulous restore ID` brings them "
        "back, and their numbers are never given to a new run.",
    )
    p.add_argument("runs", nargs="*", metavar="RUN", help="ids, ranges (3-7) or ROOT/ID")
    selection.add_arguments(p)
    p.add_argument("--purge", action="store_true", help="delete for good instead")
    p.add_argument(
        "--trash", action="store_true", help="with --purge: empty the trash (or the RUNs in it)"
    )
    p.add_argument("--yes", "-y", action="store_true", help="do not ask before purging")
    p.add_argument("--force", action="store_true", help="also runs still RUNNING")
    p.set_defaults(func=_rm)


def _confirm(question: str, yes: bool) -> bool:
    if yes:
        return True
    sys.stdout.write(f"{question} [y/N] ")
    sys.stdout.flush()
    answer = sys.stdin.readline()
    if not answer:
        raise UsageError("nothing to answer the question with (no terminal): add --yes")
    return answer.strip().lower() in ("y", "yes")


def _rm(args: argparse.Namespace) -> int:
    if args.trash:
        if not args.purge:
            raise UsageError("--trash goes with --purge (restore brings runs back)")
        return _purge_trash(args)
    runs = selection.select(args.runs, args, include_archived=True)
    if not args.force:
        live = [r for r in runs if ExperimentReader(r.path).status == layout.RUNNING]
        if live:
            raise UsageError(
                f"run {', '.join(r.id for r in live)} is still RUNNING; stop it first, or add --force"
            )
    several = selection.several_roots(runs)
    labels = ", ".join(r.label(several) for r in runs)
    if args.purge:
        if not _confirm(f"delete {len(runs)} run(s) for good ({labels})?", args.yes):
            print("nothing deleted")
            return 1
        for run in runs:
            organise.purge(run.path)
        print(f"deleted {labels}")
        return 0
    for run in runs:
        organise.trash(run.path)
    roots = sorted({str(organise.trash_dir(r.root)) for r in runs})
    print(f"moved {labels} to {', '.join(roots)}; `meticulous restore` brings them back")
    return 0


def _trash_names(root: Path, tokens: Sequence[str]) -> list[str]:
    names = organise.trashed(root)
    if not tokens:
        return names
    # "7" also finds 7~2, 7~3: every removed run that had that id
    chosen: list[str] = []
    for token in tokens:
        base = [n.split("~", 1)[0] for n in names]
        for wanted in selection.expand(
            token,
            root / layout.TRASH_DIR,
            [*names, *base],
            "trashed run",
            see=f"meticulous restore --list --root {root}",
        ):
            chosen += [n for n, b in zip(names, base, strict=True) if wanted in (n, b)]
    return list(dict.fromkeys(chosen))


def _purge_trash(args: argparse.Namespace) -> int:
    root = Path(args.root)
    names = _trash_names(root, args.runs)
    if not names:
        print(f"the trash of {root} is empty")
        return 0
    if not _confirm(f"delete {len(names)} trashed run(s) for good ({', '.join(names)})?", args.yes):
        print("nothing deleted")
        return 1
    for name in names:
        organise.purge(organise.trash_dir(root) / name)
    print(f"deleted {', '.join(names)} from {organise.trash_dir(root)}")
    return 0
