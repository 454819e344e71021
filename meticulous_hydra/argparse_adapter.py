"""``args, exp = record(parser)``: the recorder for any argparse script."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from .layout import to_jsonable
from .redact import DEFAULT_PATTERNS

_GROUP_MARK = "_meticulous_group"
# option name -> (dest, kind); dests are prefixed so they never clash with the script's
_OPTIONS = {
    "--experiments-dir": ("meticulous_experiments_dir", "value"),
    "--experiment-id": ("meticulous_experiment_id", "value"),
    "--description": ("meticulous_description", "value"),
    "--allow-dirty": ("meticulous_allow_dirty", "flag"),
    "--norecord": ("meticulous_norecord", "flag"),
}
_HELP = {
    "--experiments-dir": "root folder of the numbered experiment folders (default: %(default)s)",
    "--experiment-id": "record into this id instead of the next number; resumes it if it exists",
    "--description": "a note stored with the run",
    "--allow-dirty": "record even with uncommitted changes (the diff is saved)",
    "--norecord": "run without recording anything",
}


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
    defaults = {
        "meticulous_experiments_dir": experiments_dir,
        "meticulous_experiment_id": experiment_id,
        "meticulous_description": description,
        "meticulous_allow_dirty": allow_dirty,
        "meticulous_norecord": norecord,
    }
    if not getattr(parser, _GROUP_MARK, False):
        group = parser.add_argument_group("meticulous", "recording of this run by meticulous-hydra")
        for option, (dest, kind) in _OPTIONS.items():
            if kind == "flag":
                group.add_argument(option, dest=dest, action="store_true", help=_HELP[option])
            else:
                group.add_argument(
                    option,
                    dest=dest,
                    metavar=option[2:].upper().replace("-", "_"),
                    help=_HELP[option],
                )
        setattr(parser, _GROUP_MARK, True)
    parser.set_defaults(**defaults)


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
        if not key.startswith("meticulous_") and defaults.get(key, missing) != value
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
    from .experiment import Experiment
    from .layout import RecordingError

    add_meticulous_group(
        parser,
        experiments_dir=experiments_dir,
        experiment_id=experiment_id,
        description=description,
        allow_dirty=allow_dirty,
        norecord=norecord,
    )
    namespace = parser.parse_args(argv)
    options = {dest: getattr(namespace, dest) for dest, _ in _OPTIONS.values()}
    overrides = changed_arguments(parser, namespace)
    for dest in options:
        delattr(namespace, dest)
    try:
        exp = Experiment(
            vars(namespace),
            root=options["meticulous_experiments_dir"],
            experiment_id=options["meticulous_experiment_id"],
            description=options["meticulous_description"] or "",
            allow_dirty=options["meticulous_allow_dirty"],
            norecord=options["meticulous_norecord"],
            capture_output=capture_output,
            overrides=overrides,
            metadata={"adapter": "argparse"},
            redact=redact,
            allow_dirty_hint="--allow-dirty",
        )
    except RecordingError as e:
        parser.exit(1, f"{parser.prog}: meticulous-hydra: {e}\n")
    return namespace, exp
