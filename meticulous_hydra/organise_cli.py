"""The housekeeping verbs of ``meticulous``: tag, untag, note, archive,
unarchive, rm and restore. The files they write are :mod:`.organise`'s."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from . import layout, organise, selection
from .environment import username
from .exceptions import UsageError
from .reader import ExperimentReader
from .selection import Run


def _runs_and(parser: argparse.ArgumentParser, last: str, help_last: str) -> None:
    parser.add_argument("runs", nargs="*", metavar="RUN", help="ids, ranges (3-7) or ROOT/ID")
    parser.add_argument(last, help=help_last)
    selection.add_arguments(parser)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add every verb of this family not added yet."""
    verbs: dict[str, Callable[[argparse._SubParsersAction], None]] = {
        "tag": _register_tag,
        "untag": _register_tag,
        "note": _register_note,
        "archive": _register_archive,
        "unarchive": _register_archive,
        "rm": _register_rm,
        "restore": _register_restore,
    }
    for verb, add in verbs.items():
        if verb not in subparsers.choices:
            add(subparsers)


def _register_tag(sub: argparse._SubParsersAction) -> None:
    for verb, func, what in (("tag", _tag, "add"), ("untag", _untag, "remove")):
        if verb in sub.choices:
            continue
        p = sub.add_parser(verb, help=f"{what} a tag", description=f"{what.title()} TAG on runs.")
        _runs_and(p, "tag", "the tag: letters, digits, _ . + = @ -")
        p.set_defaults(func=func)


def _register_note(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "note",
        help="add a note (kept with time and user; notes never replace each other)",
        description="Append a note to runs' NOTES file.",
    )
    _runs_and(p, "text", "the note")
    p.set_defaults(func=_note)


def _register_archive(sub: argparse._SubParsersAction) -> None:
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


def _register_rm(sub: argparse._SubParsersAction) -> None:
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


def _register_restore(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("restore", help="bring runs back from ROOT/.trash")
    p.add_argument("runs", nargs="*", metavar="RUN", help="ids or ranges in the trash")
    selection.add_root(p)
    p.add_argument("--list", action="store_true", help="list the trash")
    p.set_defaults(func=_restore)


# -- the verbs ------------------------------------------------------------------


def _say(runs: Sequence[Run], done: Sequence[Run], verb: str, already: str) -> None:
    several = selection.several_roots(runs)
    if done:
        print(f"{verb} " + ", ".join(r.label(several) for r in done))
    rest = [r for r in runs if r not in done]
    if rest:
        print(f"{already}: " + ", ".join(r.label(several) for r in rest))


def _runs_named(args: argparse.Namespace, verb: str, last: str) -> None:
    """``meticulous tag 1``: the one word went to the tag, not to the runs."""
    if not args.runs and not (args.sweep or args.status or args.filter):
        value = getattr(args, last)
        raise UsageError(
            f"which runs? meticulous {verb} RUN... {last.upper()} takes the runs first "
            f"({value!r} was taken as the {last}), or --sweep/--status/--filter"
        )


def _tag_value(tag: str) -> str:
    try:
        return layout.validate_tag(tag)
    except ValueError as e:
        raise UsageError(str(e)) from None


def _tag(args: argparse.Namespace) -> int:
    _runs_named(args, "tag", "tag")
    tag = _tag_value(args.tag)
    runs = selection.select(args.runs, args)
    done = [r for r in runs if organise.add_tag(r.path, tag)]
    _say(runs, done, f"tagged {tag}:", f"already tagged {tag}")
    if tag in selection.run_names(runs[0].root):  # `meticulous tag 1 2`: a tag forgotten?
        sys.stderr.write(
            f"meticulous tag: note: the tag {tag!r} is also a run id; "
            f"to tag run {tag} too, name it before the tag\n"
        )
    return 0


def _untag(args: argparse.Namespace) -> int:
    _runs_named(args, "untag", "tag")
    tag = _tag_value(args.tag)
    runs = selection.select(args.runs, args, include_archived=True)
    done = [r for r in runs if organise.remove_tag(r.path, tag)]
    _say(runs, done, f"untagged {tag}:", f"not tagged {tag}")
    return 0


def _note(args: argparse.Namespace) -> int:
    _runs_named(args, "note", "text")
    if not args.text.strip():
        raise UsageError("the note is empty")
    runs = selection.select(args.runs, args)
    for run in runs:
        organise.add_note(run.path, args.text, username())
    _say(runs, runs, "noted", "")
    return 0


def _archive(args: argparse.Namespace) -> int:
    runs = selection.select(args.runs, args)
    done = [r for r in runs if organise.set_archived(r.path, True)]
    _say(runs, done, "archived", "already archived")
    return 0


def _unarchive(args: argparse.Namespace) -> int:
    runs = selection.select(args.runs, args, include_archived=True)
    done = [r for r in runs if organise.set_archived(r.path, False)]
    _say(runs, done, "unarchived", "not archived")
    return 0


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
