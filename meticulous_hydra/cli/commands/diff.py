"""``meticulous diff A B [C ...]``: one side-by-side table of what differs
between runs (config, overrides and config-group choices, results with deltas
against the first run, status, git, environment), its rows named as the
table names its columns (:mod:`meticulous_hydra.cli.names`); then the code:
``git diff --stat`` between the runs' commits when the repository has both,
each run's own recorded diff and untracked code, and the packages that
differ. What is compared is :mod:`meticulous_hydra.reader.compare`'s."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from meticulous_hydra.cli import selection
from meticulous_hydra.cli.names import short_names
from meticulous_hydra.cli.table import number, printable, render
from meticulous_hydra.exceptions import UsageError
from meticulous_hydra.reader.compare import PACKAGE, code_key, code_section, facts
from meticulous_hydra.reader.reader import ExperimentReader, load_experiments

ABSENT = "—"
_EXTRA_FORMATS = ("csv", "json")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "diff",
        help="what differs between runs",
        description="Compare runs side by side: config, overrides and choices, summary "
        "(deltas against the first run), status, git, environment.",
    )
    p.add_argument("runs", nargs="*", metavar="RUN", help="two or more: ids, ranges or ROOT/ID")
    selection.add_arguments(p)
    p.add_argument("--all", action="store_true", help="show equal keys too")
    p.add_argument(
        "--format", default="simple", metavar="FMT", help="a tabulate format, csv or json"
    )
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    _check_format(args.format)
    runs = selection.select(args.runs, args, include_archived=True)
    if len(runs) < 2:
        raise UsageError("diff needs two runs or more")
    print(diff(runs, show_all=args.all, fmt=args.format), end="")
    return 0


def _check_format(fmt: str) -> None:
    if fmt in _EXTRA_FORMATS:
        return
    from tabulate import tabulate_formats

    if fmt not in tabulate_formats:
        raise UsageError(
            f"unknown format {fmt!r}; one of {', '.join([*tabulate_formats, 'csv', 'json'])}"
        )


# -- comparing -----------------------------------------------------------------------


def _kind(value: Any) -> str:
    return type(value).__name__


def _text(value: Any) -> str:
    if value is _MISSING:
        return ABSENT
    if value is None:
        return "null"
    if isinstance(value, float):
        return number(value)
    if isinstance(value, tuple):
        return "[" + ", ".join(map(str, value)) + "]"
    return str(value)


_MISSING = object()


def _numeric(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def rows(
    runs: Sequence[ExperimentReader], show_all: bool, *, exact: bool = False
) -> list[tuple[str, list[Any]]]:
    """(key, one cell per run) for every key that differs (all with ``show_all``);
    with ``exact`` the cells are the values themselves (None where absent), for
    csv and json. A config key whose values differ in type (``1`` and ``"1"``)
    has each cell marked with its type."""
    all_facts = [facts(r) for r in runs]
    keys = sorted(dict.fromkeys(k for f in all_facts for k in f), key=_section)
    code_differs = len({code_key(f) for f in all_facts}) > 1
    out: list[tuple[str, list[Any]]] = []
    for key in keys:
        values = [f.get(key, _MISSING) for f in all_facts]
        differs = len({repr(v) for v in values}) > 1
        if not differs and not show_all:
            continue
        present = [v for v in values if v is not _MISSING and v is not None]
        # 1 and 1.0, or 0.1 and "0.1", look alike but are not the same setting
        typed = key.startswith("config.") and len({_kind(v) for v in present}) > 1
        if exact:
            out.append((key, [None if v is _MISSING else v for v in values]))
            continue
        cells = []
        for i, value in enumerate(values):
            cell = _text(value)
            if typed and value is not _MISSING and value is not None:
                cell += f" ({_kind(value)})"
            first = values[0]
            if (
                i
                and key.startswith("summary.")
                and _numeric(value)
                and _numeric(first)
                and value != first
            ):
                delta = abs(value - first)
                shown = (
                    str(delta) if isinstance(delta, int) else number(delta)
                )  # 780123, not 7.801e+05
                cell += f" ({'+' if value > first else '-'}{shown})"
            cells.append(cell)
        out.append((key, cells))
    if show_all or code_differs:
        out.append(
            (
                "code",
                [
                    ""
                    if i == 0
                    else ("differs" if code_key(f) != code_key(all_facts[0]) else "same")
                    for i, f in enumerate(all_facts)
                ],
            )
        )
    return out


_SECTIONS = (
    "config.",
    "overrides",
    "metadata.hydra.choices.",
    "summary.",
    "status",
    "duration",
    "git.",
    "metadata.python",
    "metadata.versions.",
    PACKAGE,
)


def _section(key: str) -> int:
    """Keys of one section together, sections in a fixed order (stable sort)."""
    return next((i for i, p in enumerate(_SECTIONS) if key.startswith(p)), len(_SECTIONS))


def _columns(runs: Sequence[selection.Run]) -> list[str]:
    """The columns of the runs' roots: a row is named as the table names it."""
    names: dict[str, None] = {}
    for root in dict.fromkeys(r.root for r in runs):
        names.update(dict.fromkeys(map(str, load_experiments(root, include_archived=True).columns)))
    return list(names)


def _below(found: list[tuple[str, list[Any]]], labels: list[str]) -> str:
    """What differs but is no column of the table: untracked code saved and
    the packages; the code itself is in the code section."""
    parts = []
    cells = dict(found)
    for label, saved in zip(labels, cells.get("git.untracked", []), strict=False):
        if saved not in (ABSENT, "null", ""):
            parts.append(f"{label} ran with untracked code saved: {saved}")
    packages = [(k[len(PACKAGE) :], c) for k, c in found if k.startswith(PACKAGE)]
    if packages:
        width = max(len(name) for name, _ in packages)
        lines = [f"  {name:<{width}}  " + "  ".join(c) for name, c in packages]
        parts.append(f"packages ({', '.join(labels)}):\n" + "\n".join(lines))
    return "\n\n".join(parts)


def diff(runs: Sequence[selection.Run], *, show_all: bool = False, fmt: str = "simple") -> str:
    import pandas as pd

    several = selection.several_roots(runs)
    labels = [r.label(several) for r in runs]
    readers = [ExperimentReader(r.path) for r in runs]
    exact = fmt in _EXTRA_FORMATS  # every fact, by its full name
    found = rows(readers, show_all, exact=exact)
    below = ""
    if not exact:
        # the rows that are columns, named as the table prints them; the rest below
        printed = short_names(_columns(runs))
        below = "\n\n".join(
            p
            for p in (
                code_section(readers, labels),
                _below([r for r in found if r[0] not in printed], labels),
            )
            if p
        )
        found = [(printed[k], cells) for k, cells in found if k in printed]
    if not found and not below:
        return f"runs {', '.join(labels)} do not differ\n"
    frame = pd.DataFrame(
        [cells for _, cells in found],
        index=pd.Index([k for k, _ in found], name="key"),
        columns=labels,
    )
    text = render(frame, fmt, None) if found else ""
    return text + (f"\n{printable(below, keep=chr(10))}\n" if below else "")
