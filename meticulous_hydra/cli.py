"""``meticulous``: verbs that act on the record (show, diff, reproduce, rerun,
tag, note, archive, rm, ...).

Each verb lives in its own module, which exposes ``register(subparsers)``: it
adds its sub-parser and sets ``func`` (called with the parsed namespace,
returning the exit code). Modules load only when their verb runs, so
``meticulous --help`` stays fast. User errors raise ``UsageError`` and end here
as one line on stderr with exit code 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from importlib import import_module

from .exceptions import UsageError

PROG = "meticulous"

# verb -> (module that registers it, one line for --help). A verb whose module
# is not there yet is simply not offered.
VERBS: dict[str, tuple[str, str]] = {
    "summary": ("summary_cli", "the table of runs (same as meticulous-summary)"),
    "show": ("show", "runs in full: status, overrides, git, tags, notes, config, summary, output"),
    "reproduce": ("reproduce", "what changed since a run, and the commands that run it again"),
    "rerun": ("rerun", "run the failed jobs of a sweep again, into the same sweep"),
    "diff": ("compare", "what differs between runs: config, results, code, environment"),
    "tag": ("organise_cli", "tag runs: meticulous tag 3 5-7 best"),
    "untag": ("organise_cli", "remove a tag"),
    "note": ("organise_cli", "add a note to runs (kept with time and user)"),
    "archive": ("organise_cli", "hide runs from the table and load_experiments"),
    "unarchive": ("organise_cli", "show archived runs again"),
    "rm": ("organise_cli", "move runs to ROOT/.trash (restorable); --purge deletes"),
    "restore": ("organise_cli", "bring removed runs back from the trash"),
}


def _parsers(verbs: Sequence[str]) -> tuple[argparse.ArgumentParser, argparse._SubParsersAction]:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Act on recorded runs. `meticulous VERB --help` tells more.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="verb", metavar="VERB", title="verbs")
    for verb in verbs:
        if verb == "summary":  # dispatched to meticulous-summary as it is
            continue
        module, _ = VERBS[verb]
        import_module(f".{module}", __package__).register(sub)
    return parser, sub


def build_parser(verbs: Sequence[str] | None = None) -> argparse.ArgumentParser:
    return _parsers(list(VERBS) if verbs is None else verbs)[0]


def verb_parser(verb: str) -> argparse.ArgumentParser:
    """The parser of one verb (its prog is ``meticulous VERB``)."""
    return _parsers([verb])[1].choices[verb]


def _verb_list() -> str:
    width = max(map(len, VERBS))
    return "\n".join(f"  {verb:<{width}}  {line}" for verb, (_, line) in VERBS.items())


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        sys.stdout.write(f"usage: {PROG} VERB [options]\n\nverbs:\n{_verb_list()}\n")
        return 0 if argv else 2
    verb = argv[0]
    if verb == "summary":  # the table keeps its own parser and options
        from .summary_cli import main as summary_main

        return summary_main(argv[1:])
    if verb not in VERBS:
        sys.stderr.write(f"{PROG}: error: unknown verb {verb!r}; one of: {', '.join(VERBS)}\n")
        return 2
    # options may come anywhere: `meticulous tag 3 --root runs best`
    args = verb_parser(verb).parse_intermixed_args(argv[1:])
    try:
        return int(args.func(args) or 0)
    except UsageError as e:
        sys.stderr.write(f"{PROG} {verb}: error: {e}\n")
        return 2
