"""``meticulous tag`` and ``untag``: a tag is a file ``TAG.<tag>`` in the run
folder (:mod:`meticulous_hydra.recorder.organise`)."""

from __future__ import annotations

import argparse
import sys

from meticulous_hydra import layout
from meticulous_hydra.cli import selection
from meticulous_hydra.exceptions import UsageError
from meticulous_hydra.recorder import organise


def register(sub: argparse._SubParsersAction) -> None:
    for verb, func, what in (("tag", _tag, "add"), ("untag", _untag, "remove")):
        if verb in sub.choices:
            continue
        p = sub.add_parser(verb, help=f"{what} a tag", description=f"{what.title()} TAG on runs.")
        selection.add_runs_and(p, "tag", "the tag: letters, digits, _ . + = @ -")
        p.set_defaults(func=func)


def _tag_value(tag: str) -> str:
    try:
        return layout.validate_tag(tag)
    except ValueError as e:
        raise UsageError(str(e)) from None


def _tag(args: argparse.Namespace) -> int:
    selection.require_runs(args, "tag", "tag")
    tag = _tag_value(args.tag)
    runs = selection.select(args.runs, args)
    done = [r for r in runs if organise.add_tag(r.path, tag)]
    selection.report(runs, done, f"tagged {tag}:", f"already tagged {tag}")
    if tag in selection.run_names(runs[0].root):  # `meticulous tag 1 2`: a tag forgotten?
        sys.stderr.write(
            f"meticulous tag: note: the tag {tag!r} is also a run id; "
            f"to tag run {tag} too, name it before the tag\n"
        )
    return 0


def _untag(args: argparse.Namespace) -> int:
    selection.require_runs(args, "untag", "tag")
    tag = _tag_value(args.tag)
    runs = selection.select(args.runs, args, include_archived=True)
    done = [r for r in runs if organise.remove_tag(r.path, tag)]
    selection.report(runs, done, f"untagged {tag}:", f"not tagged {tag}")
    return 0
