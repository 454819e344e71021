"""``args, exp = record(parser)``: the recorder for any argparse script."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any

from meticulous_hydra.exceptions import RecordingError
from meticulous_hydra.layout import to_jsonable
from meticulous_hydra.recorder.environment import command_argv
from meticulous_hydra.recorder.experiment import Experiment
from meticulous_hydra.recorder.redact import DEFAULT_PATTERNS, REDACTED, Redactor

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


# -- the command line, redacted by what argparse made of it ------------------------


def _option(parser: argparse.ArgumentParser, token: str) -> tuple[list[Any], str | None] | None:
    """What argparse takes ``token`` for: None for a positional, else the
    actions it may name (one, or several when ambiguous; none for an option
    the parser doesn't know) and the value attached to it (``--opt=V``,
    ``-oV``). The rules of ``ArgumentParser._parse_optional``, read from the
    parser's option strings."""
    chars = parser.prefix_chars
    if not token or token[0] not in chars:
        return None
    actions = parser._option_string_actions
    if token in actions:
        return [actions[token]], None
    if len(token) == 1:
        return None
    name, sep, value = token.partition("=")
    if sep and name in actions:
        return [actions[name]], value
    found: list[tuple[Any, str | None]] = []
    if token[1] in chars:  # --long: a unique abbreviation, with =value or not
        if parser.allow_abbrev:
            found = [(a, value if sep else None) for o, a in actions.items() if o.startswith(name)]
    else:  # -x: a short option with its value attached, or a -long one abbreviated
        for option, action in actions.items():
            if option == token[:2]:
                found.append((action, token[2:]))
            elif option.startswith(token):
                found.append((action, None))
    unique = {id(action): (action, attached) for action, attached in found}
    if len(unique) == 1:
        return [a for a, _ in unique.values()], found[0][1]
    if unique:  # ambiguous (argparse refuses it): the =value, if any, is hidden with them
        return [a for a, _ in unique.values()], value if sep and token[1] in chars else None
    negative = parser._negative_number_matcher.match(token)
    if (negative and not parser._has_negative_number_optionals) or " " in token:
        return None
    return [], None


def _takes(action: Any, following: list[str], is_option: Any) -> int:
    """How many of the ``following`` tokens ``action`` consumes as its values."""
    nargs = action.nargs
    if nargs == argparse.REMAINDER:
        return len(following)
    if nargs is None:
        return 1
    if isinstance(nargs, int):
        return nargs
    free = 0  # values run up to the next option (or --)
    while free < len(following) and following[free] != "--" and not is_option(following[free]):
        free += 1
    return min(free, 1) if nargs == argparse.OPTIONAL else free


def _flag_chain(parser: argparse.ArgumentParser, token: str, action: Any, attached: str) -> Any:
    """``-vpS``: flags that take no value, then the option that takes the
    rest. Returns that last action and its attached value (None when the
    value comes in the next tokens), or None if the chain is not one."""
    chars = parser.prefix_chars
    while action.nargs == 0 and attached and token[1] not in chars:
        action = parser._option_string_actions.get(token[0] + attached[0])
        if action is None:
            return None
        attached = attached[1:]
    return action, attached or None


def redact_parsed_argv(
    parser: argparse.ArgumentParser, args: Sequence[str], redactor: Redactor
) -> list[str]:
    """``args`` as ``parser`` read them, with the values of every secret
    option hidden however they were typed: its short alias, a value attached
    (``-pS``), an abbreviation (``--db-pass S``), ``--opt=S``, flags combined
    before it (``-vpS``), every value of ``nargs="+"``. An option is secret by
    its destination or by any of its option strings; a subcommand's options
    are read by its own parser."""

    def secret(action: Any) -> bool:
        names = [action.dest, *(o.lstrip(parser.prefix_chars) for o in action.option_strings)]
        return any(redactor.matches(str(n)) for n in names)

    def is_option(token: str) -> bool:
        return _option(parser, token) is not None

    subcommands = {
        name: sub
        for action in parser._actions
        if isinstance(action, argparse._SubParsersAction)
        for name, sub in action.choices.items()
    }
    out: list[str] = []
    tokens = list(args)
    i = 0
    while i < len(tokens):
        token = tokens[i]
        i += 1
        if token == "--":
            out += tokens[i - 1 :]
            break
        found = _option(parser, token)
        if found is None:
            out.append(token)
            if token in subcommands:  # the rest is the subcommand's
                out += redact_parsed_argv(subcommands[token], tokens[i:], redactor)
                break
            continue
        actions, attached = found
        hidden = any(secret(a) for a in actions)  # ambiguous: hide if any may be secret
        if len(actions) == 1 and attached is not None:
            chain = _flag_chain(parser, token, actions[0], attached)
            if chain is not None:
                last, attached = chain
                hidden = secret(last)
                actions = [last]
        if attached is not None:
            out.append(token[: len(token) - len(attached)] + REDACTED if hidden else token)
            continue
        out.append(token)
        n = _takes(actions[0], tokens[i:], is_option) if len(actions) == 1 else 0
        out += [REDACTED if hidden else t for t in tokens[i : i + n]]
        i += n
    return out


def _recorded_argv(parser: argparse.ArgumentParser, redactor: Redactor) -> list[str]:
    """The process's command line, its arguments redacted as ``parser``
    reads them (the arguments it parsed are ``sys.argv[1:]``, unless
    ``record()`` was given others: the parser's rules are then the best
    guess), then by the generic rules."""
    command = command_argv()
    tail = len(sys.argv) - 1
    head, args = command[: len(command) - tail], command[len(command) - tail :]
    return redactor.argv([*head, *redact_parsed_argv(parser, args, redactor)])


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
    redactor = Redactor(redact)
    recorded_argv = _recorded_argv(parser, redactor)
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
                "argv": recorded_argv,
                "launch": {"argv": recorded_argv, "cwd": os.getcwd()},
            },
            redact=redact,
            allow_dirty_hint="--allow-dirty",
        )
    except RecordingError as e:
        parser.exit(1, f"{parser.prog}: meticulous-hydra: {e}\n")
    return namespace, exp
