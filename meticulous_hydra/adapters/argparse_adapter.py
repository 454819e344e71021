"""``args, exp = record(parser)``: the recorder for any argparse script."""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from typing import Any

from meticulous_hydra.exceptions import RecordingError
from meticulous_hydra.layout import to_jsonable
from meticulous_hydra.recorder.environment import command_argv
from meticulous_hydra.recorder.experiment import Experiment
from meticulous_hydra.recorder.redact import DEFAULT_PATTERNS, Redactor

_GROUP_MARK = "_meticulous_group"
# The group's options: (name, is a flag, help). Each lands in the Namespace as
# "meticulous_<name>", a dest that can't clash with the script's own.
_OPTIONS = (
    (
        "experiments_dir",
        False,
        "root folder of the numbered experiment folders (default: %(default)s)",
    ),
    (
        "experiment_id",
        False,
        "record into this id instead of the next number; resumes it if it exists",
    ),
    ("description", False, "a note stored with the run"),
    ("allow_dirty", True, "record even with uncommitted changes (the diff is saved)"),
    ("norecord", True, "run without recording anything"),
)
_PREFIX = "meticulous_"


def add_meticulous_group(
    parser: argparse.ArgumentParser,
    *,
    experiments_dir: str = "experiments",
    experiment_id: str | None = None,
    description: str = "",
    allow_dirty: bool = False,
    norecord: bool = False,
) -> None:
    """Add the ``meticulous`` argument group (once per parser); keyword
    arguments set its defaults."""
    if not getattr(parser, _GROUP_MARK, False):
        group = parser.add_argument_group("meticulous", "recording of this run by meticulous-hydra")
        for name, flag, text in _OPTIONS:
            option = "--" + name.replace("_", "-")
            if flag:
                group.add_argument(option, dest=_PREFIX + name, action="store_true", help=text)
            else:
                group.add_argument(option, dest=_PREFIX + name, metavar=name.upper(), help=text)
        setattr(parser, _GROUP_MARK, True)
    given = locals()  # the keyword arguments above, by name
    parser.set_defaults(**{_PREFIX + name: given[name] for name, _, _ in _OPTIONS})


def _typed_default(action: argparse.Action, default: Any) -> Any:
    # argparse runs string defaults through the type converter, as if typed.
    if isinstance(default, str) and callable(action.type):
        try:
            return action.type(default)
        except Exception:
            return default
    return default


def _defaults(parser: argparse.ArgumentParser, namespace: argparse.Namespace) -> dict[str, Any]:
    """The value each dest would have had if nothing were given on the command line.

    Read from the parser's actions, never by re-parsing a shortened command
    line (which breaks on required options and positionals placed anywhere).
    Subparsers contribute the defaults of the subcommand that was chosen.
    """
    out: dict[str, Any] = {}
    for action in parser._actions:
        if action.dest == argparse.SUPPRESS:
            continue
        if isinstance(action, argparse._SubParsersAction):
            chosen = (
                getattr(namespace, action.dest, None) if action.dest != argparse.SUPPRESS else None
            )
            out[action.dest] = None
            for name, sub in action.choices.items():
                if chosen is None or name == chosen:
                    for key, value in _defaults(sub, namespace).items():
                        out.setdefault(key, value)
            continue
        default = parser._defaults.get(action.dest, action.default)
        if default is argparse.SUPPRESS:
            continue  # absent unless given: present means it was given
        out[action.dest] = _typed_default(action, default)
    for key, value in parser._defaults.items():
        out.setdefault(key, value)
    return out


def _format_value(value: Any) -> str:
    """A value as Hydra writes it in an override: ``null``, ``true``, ``[a,b]``."""
    value = to_jsonable(value, strict=False)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ",".join(_format_value(v) for v in value) + "]"
    return str(value)


def changed_arguments(parser: argparse.ArgumentParser, namespace: argparse.Namespace) -> list[str]:
    """``key=value`` for every argument whose value differs from its default."""
    defaults = _defaults(parser, namespace)
    missing = object()
    return [
        f"{key}={_format_value(value)}"
        for key, value in vars(namespace).items()
        if not key.startswith(_PREFIX) and defaults.get(key, missing) != value
    ]


def record(
    parser: argparse.ArgumentParser,
    argv: Sequence[str] | None = None,
    *,
    experiments_dir: str = "experiments",
    experiment_id: str | None = None,
    description: str = "",
    allow_dirty: bool = False,
    norecord: bool = False,
    capture_output: bool = True,
    redact: Sequence[str] | None = DEFAULT_PATTERNS,
) -> tuple[argparse.Namespace, Any]:
    """Parse ``argv`` (default ``sys.argv[1:]``) and start recording the run.

    Returns the script's Namespace (without the meticulous options) and the
    :class:`~meticulous_hydra.Experiment`. ``--help`` and parse errors exit as
    argparse does, before anything is created; a run that can't be recorded
    (uncommitted changes, bad id, ...) exits with a one-line error.
    """
    add_meticulous_group(
        parser,
        experiments_dir=experiments_dir,
        experiment_id=experiment_id,
        description=description,
        allow_dirty=allow_dirty,
        norecord=norecord,
    )
    namespace = parser.parse_args(argv)
    options = {name: getattr(namespace, _PREFIX + name) for name, _, _ in _OPTIONS}
    overrides = changed_arguments(parser, namespace)
    for name in options:
        delattr(namespace, _PREFIX + name)
    try:
        exp = Experiment._for_adapter(
            vars(namespace),
            root=options["experiments_dir"],
            experiment_id=options["experiment_id"],
            description=options["description"] or "",
            allow_dirty=options["allow_dirty"],
            norecord=options["norecord"],
            capture_output=capture_output,
            overrides=overrides,
            metadata={
                "adapter": "argparse",
                "launch": {"argv": Redactor(redact).argv(command_argv()), "cwd": os.getcwd()},
            },
            redact=redact,
            allow_dirty_hint="--allow-dirty",
        )
    except RecordingError as e:
        parser.exit(1, f"{parser.prog}: meticulous-hydra: {e}\n")
    return namespace, exp
