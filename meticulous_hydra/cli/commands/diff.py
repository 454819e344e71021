"""``meticulous diff A B [C ...]``: one side-by-side table of what differs
between runs (config, overrides and config-group choices, results with deltas
against the first run, status, git, environment), then the code: ``git diff
--stat`` between the runs' commits when the repository has both, and each
run's own recorded diff. What is compared is :mod:`meticulous_hydra.reader.compare`'s."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from meticulous_hydra.cli import selection
from meticulous_hydra.cli.table import number, render
from meticulous_hydra.exceptions import UsageError
from meticulous_hydra.reader.compare import code_key, code_section, facts
from meticulous_hydra.reader.reader import ExperimentReader

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
    csv and json."""
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
                delta = value - first
                cell += f" ({'+' if delta > 0 else '-'}{number(abs(delta))})"
            cells.append(cell)
        out.append((key + (" [type changed]" if typed else ""), cells))
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


_SECTIONS = ("config.", "overrides", "choice.", "summary.", "status", "duration", "git.", "python")


def _section(key: str) -> int:
    """Keys of one section together, sections in a fixed order (stable sort)."""
    return next((i for i, p in enumerate(_SECTIONS) if key.startswith(p)), len(_SECTIONS))


def diff(runs: Sequence[selection.Run], *, show_all: bool = False, fmt: str = "simple") -> str:
    import pandas as pd

    several = selection.several_roots(runs)
    labels = [r.label(several) for r in runs]
    readers = [ExperimentReader(r.path) for r in runs]
    found = rows(readers, show_all, exact=fmt in _EXTRA_FORMATS)
    if not found:
        return f"runs {', '.join(labels)} do not differ\n"
    frame = pd.DataFrame(
        [cells for _, cells in found],
        index=pd.Index([k for k, _ in found], name="key"),
        columns=labels,
    )
    text = render(frame, fmt, None)
    if fmt in _EXTRA_FORMATS:
        return text
    code = code_section(readers, labels)
    return text + (f"\n{code}\n" if code else "")
