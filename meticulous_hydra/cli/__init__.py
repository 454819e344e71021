"""The command line: ``meticulous VERB`` (here) and ``meticulous-summary``
(:mod:`.summary`, the table of runs, drawn by :mod:`.columns`, :mod:`.query`,
:mod:`.table` and :mod:`.follow`). :mod:`.selection` picks the runs a verb acts on.

Each verb lives in its own module under ``commands/``, thin over the logic of
its part, and exposes ``register(subparsers)``: it
adds its sub-parser and sets ``func`` (called with the parsed namespace,
returning the exit code). Modules load only when their verb runs, so
``meticulous --help`` stays fast. User errors raise ``UsageError`` and end here
as one line on stderr with exit code 2; a change the disk refuses
(``ChangeError``) or a link refused (``LinkRefused``), as one line with exit
code 1.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from importlib import import_module

from meticulous_hydra.exceptions import ChangeError, RecordingError, UsageError

from .output import printable, printed_safely, quietly, warnings_as_lines

PROG = "meticulous"

# verb -> (module that registers it, one line for --help). A verb whose module
# is not there yet is simply not offered.
VERBS: dict[str, tuple[str, str]] = {
    "summary": ("summary", "the table of runs (same as meticulous-summary)"),
    "show": (
        "commands.show",
        "runs in full: status, overrides, git, tags, notes, config, summary, output",
    ),
    "reproduce": (
        "commands.reproduce",
        "what changed since a run, and the commands that run it again",
    ),
    "rerun": ("commands.rerun", "run runs again (--failed: those that did not succeed)"),
    "diff": ("commands.diff", "what differs between runs: config, results, code, environment"),
    "tag": ("commands.tag", "tag runs: meticulous tag 3 5-7 best"),
    "untag": ("commands.tag", "remove a tag"),
    "note": ("commands.note", "add a note to runs (kept with time and user)"),
    "archive": ("commands.archive", "hide runs from the table and load_experiments"),
    "unarchive": ("commands.archive", "show archived runs again"),
    "rm": ("commands.rm", "move runs to ROOT/.trash (restorable); --purge deletes"),
    "restore": ("commands.restore", "bring removed runs back from the trash"),
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
    return quietly(lambda: _main(argv))  # `| head`: the reader may go at any line


def _main(argv: Sequence[str] | None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        sys.stdout.write(f"usage: {PROG} VERB [options]\n\nverbs:\n{_verb_list()}\n")
        return 0 if argv else 2
    verb = argv[0]
    if verb == "summary":  # the table keeps its own parser and options
        from .summary import main as summary_main

        return summary_main(argv[1:])
    if verb not in VERBS:
        sys.stderr.write(f"{PROG}: error: unknown verb {verb!r}; one of: {', '.join(VERBS)}\n")
        return 2
    # options may come anywhere: `meticulous tag 3 --root runs best`
    args = verb_parser(verb).parse_intermixed_args(argv[1:])
    try:
        # what the record says never acts on the terminal
        with printed_safely(), warnings_as_lines(f"{PROG} {verb}"):
            return int(args.func(args) or 0)
    except UsageError as e:
        sys.stderr.write(f"{PROG} {verb}: error: {printable(str(e))}\n")
        return 2
    except (ChangeError, RecordingError) as e:
        # the disk refused (read-only, full), or a link where a run should be
        sys.stderr.write(f"{PROG} {verb}: error: {e}\n")
        return 1
