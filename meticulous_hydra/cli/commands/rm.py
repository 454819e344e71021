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


def _named_or_trashed(args: argparse.Namespace) -> tuple[list[selection.Run], list[str]]:
    """The runs to remove, and the names given that are in the trash already
    (moved there by another process since: no error)."""
    if args.sweep or args.status or args.filter or not args.runs:
        return selection.select(args.runs, args, include_archived=True), []
    runs: list[selection.Run] = []
    gone: list[str] = []
    for token in args.runs:
        try:
            runs += selection.select([token], args, include_archived=True)
        except UsageError as missing:
            root, name = selection.split_token(token, Path(args.root))
            base = [n.split("~", 1)[0] for n in organise.trashed(root)]
            try:
                selection.expand(name, root, base)
            except UsageError:
                raise missing from None
            gone.append(token)
    return list(dict.fromkeys(runs)), gone


def _rm(args: argparse.Namespace) -> int:
    if args.trash:
        if not args.purge:
            raise UsageError("--trash goes with --purge (restore brings runs back)")
        return _purge_trash(args)
    runs, gone = _named_or_trashed(args)
    if not runs:
        print(f"already in the trash: {', '.join(gone)}")
        return 0
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
        done = [run for run in runs if organise.purge(run.path)]
        _report(done, runs, gone, several, "deleted {}")
        return 0
    done = [run for run in runs if organise.trash(run.path) is not None]
    roots = ", ".join(sorted({str(organise.trash_dir(r.root)) for r in done}))
    _report(
        done, runs, gone, several, f"moved {{}} to {roots}; `meticulous restore` brings them back"
    )
    return 0


def _report(
    done: Sequence[selection.Run],
    runs: Sequence[selection.Run],
    trashed: Sequence[str],
    several: bool,
    line: str,
) -> None:
    """What this process did, and what another did first."""
    if done:
        print(line.format(", ".join(r.label(several) for r in done)))
    gone = [r.label(several) for r in runs if r not in done]
    if gone:
        print(f"already gone (moved or deleted by another process): {', '.join(gone)}")
    if trashed:
        print(f"already in the trash: {', '.join(trashed)}")


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
    done = [name for name in names if organise.purge(organise.trash_dir(root) / name)]
    if done:
        print(f"deleted {', '.join(done)} from {organise.trash_dir(root)}")
    gone = [name for name in names if name not in done]
    if gone:
        print(f"already gone (deleted or restored by another process): {', '.join(gone)}")
    return 0
