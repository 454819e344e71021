"""``meticulous-summary``: the terminal table of recorded runs."""

from __future__ import annotations

import argparse
import difflib
import fnmatch
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, cast

from meticulous_hydra import layout
from meticulous_hydra.exceptions import UsageError
from meticulous_hydra.reader.attempts import latest_attempts
from meticulous_hydra.reader.frame import run_id
from meticulous_hydra.reader.reader import (
    ExperimentReader,
    describe_ids,
    experiment_dirs,
    experiment_names,
    load_experiments,
)
from meticulous_hydra.recorder import organise

from . import follow, screen, selection
from .columns import default_layout
from .names import short_names
from .output import printable, quietly, warnings_as_lines
from .query import QueryError, resolve_column
from .selection import select_rows
from .table import FAST_FORMATS, is_missing, number, render

if TYPE_CHECKING:
    import pandas as pd

PROG = "meticulous-summary"
_ERROR_STATUSES = (layout.ERROR, layout.DIED, layout.TIMEOUT)
_EXTRA_FORMATS = ("csv", "json")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # argparse names the unknown option but suggests nothing (before 3.12)
        if message.startswith("unrecognized arguments:"):
            unknown = message.split(":", 1)[1].split()
            options = [o for a in self._actions for o in a.option_strings]
            for word in unknown:
                close = difflib.get_close_matches(word.split("=")[0], options, n=1)
                if close:
                    message += f" (did you mean {close[0]}?)"
                    break
        self.exit(2, f"{PROG}: error: {message}; see {PROG} --help\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog=PROG,
        description="Show recorded runs as a table: the settings that differ between them, and their results.",
        epilog="Columns are named status, duration, config.<key>, summary.<key>, metadata.<key>, ...; "
        "config. and summary. may be left out where the name is unambiguous.",
    )
    p.add_argument(
        "roots",
        nargs="*",
        metavar="ROOT|RUN",
        help="experiments root(s) (default: --root); or runs: ids and ranges (3 5-7) of --root, "
        "or ROOT/ID; one run is shown in full",
    )
    selection.add_root(p)
    selection.add_filters(p, many=True)
    p.add_argument(
        "--columns",
        nargs="+",
        metavar="PATTERN",
        help="columns to show, as glob patterns, in order",
    )
    p.add_argument("--all", action="store_true", help="show every column")
    p.add_argument("--list-columns", action="store_true", help="print the column names and exit")
    p.add_argument(
        "--sort",
        nargs="+",
        metavar="COL",
        help="sort by these columns; -COL (or ~COL) for descending",
    )
    p.add_argument(
        "--group-by",
        nargs="+",
        metavar="COL",
        help="one row per group: n runs, how many failed, and mean ± std of the numeric "
        "summary columns over the successful ones",
    )
    p.add_argument(
        "--all-attempts",
        action="store_true",
        help="every attempt of a re-run sweep job, not just its latest",
    )
    p.add_argument("--last", type=int, metavar="N", help="only the N most recent runs")
    p.add_argument(
        "--format",
        default="simple",
        metavar="FMT",
        help="a tabulate format (simple, github, plain, latex, html, ...), or csv or json "
        "(every column unless --columns, exact values)",
    )
    p.add_argument("--output", metavar="FILE", help="write to FILE instead of the terminal")
    p.add_argument("--show", metavar="ID", help="show one run in full")
    p.add_argument(
        "--no-pager",
        action="store_true",
        help="don't page a table taller than the terminal ($PAGER, default 'less -FRSX')",
    )
    follow.add_arguments(p)  # issue 15: --archived, --curve, --watch
    return p


# -- selecting rows ------------------------------------------------------------

#: The run id: the index (its ``id`` level with several roots), not a column.
ID = "id"


def _column(frame: pd.DataFrame, name: str) -> str:
    try:
        return resolve_column(name, [str(c) for c in frame.columns])
    except QueryError as e:
        raise UsageError(str(e)) from e


def sort_rows(frame: pd.DataFrame, keys: Sequence[str]) -> pd.DataFrame:
    names, ascending = [], []
    for key in keys:
        descending = key.startswith(("-", "~"))
        name = key[1:] if descending else key
        if name == ID and ID not in frame.columns:
            names.append(ID)  # pandas sorts on an index level by its name
        else:
            try:
                names.append(_column(frame, name))
            except UsageError:
                if not any(str(c).endswith(".mean") for c in frame.columns):
                    raise
                names.append(_column(frame, f"{name}.mean"))  # a statistic of --group-by
        ascending.append(not descending)
    return frame.sort_values(names, ascending=ascending, kind="stable", na_position="last")


# -- choosing columns ------------------------------------------------------------


def pattern_columns(frame: pd.DataFrame, patterns: Sequence[str]) -> list[str]:
    """The columns named by ``patterns``: names (full or printed) or glob
    patterns matched against both."""
    names = [str(c) for c in frame.columns]
    printed = short_names(names)
    chosen: list[str] = []
    for pattern in patterns:
        if pattern == ID and ID not in names:
            continue  # the id is the index, always shown
        found = [
            n
            for n in names
            if fnmatch.fnmatchcase(n, pattern) or fnmatch.fnmatchcase(printed[n], pattern)
        ]
        if not found and not any(ch in pattern for ch in "*?["):
            found = [_column(frame, pattern)]
        if not found:
            raise UsageError(f"no column matches {pattern!r}; list them with --list-columns")
        chosen += [n for n in found if n not in chosen]
    return chosen


# -- grouping --------------------------------------------------------------------


def group_rows(frame: pd.DataFrame, keys: Sequence[str]) -> pd.DataFrame:
    """One row per group: the key columns, ``n`` runs, how many ``failed``
    (ERROR, DIED or TIMEOUT), and ``<col>.mean`` / ``<col>.std`` of every numeric
    summary column over the group's successful runs."""
    import pandas as pd  # ~175 ms: loaded when a frame is built, not at import

    names = [_column(frame, k) for k in keys]
    # tuples (list values) and missing values both make pandas' grouping
    # unreliable: group on their text instead
    work = frame[[*names, "status"]].copy()
    for n in names:
        work[n] = work[n].map(
            lambda v: "" if is_missing(v) else str(v) if isinstance(v, tuple) else v
        )
    numeric = [
        c
        for c in frame.columns
        if c.startswith("summary.")
        and pd.api.types.is_numeric_dtype(frame[c])
        and not pd.api.types.is_bool_dtype(frame[c])
    ]
    grouped = work.groupby(names, sort=True, dropna=False)
    out = grouped.size().rename("n").to_frame()
    out["failed"] = grouped["status"].agg(lambda s: int(s.isin(_ERROR_STATUSES).sum()))
    ok = frame["status"] == "SUCCESS"
    stats = frame.loc[ok, numeric].groupby([work.loc[ok, n] for n in names], dropna=False)
    mean, std = stats.mean(), stats.std()
    for c in numeric:
        out[f"{c}.mean"] = mean[c].reindex(out.index) if c in mean else float("nan")
        out[f"{c}.std"] = std[c].reindex(out.index) if c in std else float("nan")
    out = out.reset_index()
    # their mean and std print as integers where they are whole (mean_std_text)
    out.attrs["integers"] = [c for c in numeric if pd.api.types.is_integer_dtype(frame[c])]
    out.attrs["keys"] = names
    return out


def mean_std_text(frame: pd.DataFrame) -> pd.DataFrame:
    """``<col>.mean`` and ``<col>.std`` as one ``<col>`` column of ``mean ± std``
    text; those of integer results (``frame.attrs["integers"]``) as integers
    where they are whole (``3 ± 0``)."""
    out = frame.copy()
    integers = set(frame.attrs.get("integers", ()))
    for column in [c for c in frame.columns if str(c).endswith(".mean")]:
        base = str(column)[: -len(".mean")]
        std = frame.get(f"{base}.std")
        pairs = zip(frame[column], std if std is not None else [None] * len(frame), strict=True)
        texts = [_mean_std(m, s, whole=base in integers) for m, s in pairs]
        at = cast(int, out.columns.get_loc(column))  # an int: group_rows' columns are unique
        out.insert(at, base, texts)
        out = out.drop(columns=[c for c in (column, f"{base}.std") if c in out.columns])
    return out


def _mean_std(mean: float, std: float | None, *, whole: bool = False) -> str:
    def text(value: float) -> str:
        return str(int(value)) if whole and float(value).is_integer() else number(value)

    if is_missing(mean):
        return ""
    return text(mean) if std is None or is_missing(std) else f"{text(mean)} ± {text(std)}"


# -- one experiment ------------------------------------------------------------------


def list_columns(columns: list[str]) -> str:
    """One line a column, in the table's order: its name as the table prints it
    (and every option takes it), then its full name where that is longer (the
    name in CSV and JSON exports and in ``load_experiments``)."""
    names = short_names(columns)
    width = max((len(names[c]) for c in columns if names[c] != c), default=0)
    lines = [names[c] if names[c] == c else f"{names[c]:<{width}}  {c}" for c in columns]
    return "".join(printable(line) + "\n" for line in lines)


def show_one(path: Path, tail: int = 20) -> str:
    import yaml  # ~13 ms: only to show one run

    if not path.is_dir():
        raise UsageError(_missing_run(path) or f"no experiment folder {path}")
    if path not in experiment_dirs(path.parent):
        raise UsageError(
            f"{path} is not a run folder (a run holds {layout.RUN_MARKER} and {layout.METADATA})"
        )
    exp = ExperimentReader(path)
    meta = exp.metadata
    out = [f"experiment {exp.id}  ({path})", f"status: {exp.status}"]
    if exp.status_detail:
        out.append("  " + exp.status_detail.replace("\n", "\n  "))
    for key in ("description", "start_time", "end_time", "duration", "host", "pid"):
        if meta.get(key) not in (None, ""):
            out.append(f"{key}: {meta[key]}")
    out.append("overrides: " + (" ".join(layout.texts(meta.get("overrides"))) or "(none)"))
    git = layout.block(meta, "git")
    out.append(
        "git: "
        + (
            "(not a git repository)"
            if not git
            else f"{git.get('sha')} on {git.get('branch')}"
            + (" (dirty)" if git.get("dirty") else "")
        )
    )
    marks = organise.markers(str(path))
    if marks["tags"]:
        out.append("tags: " + ", ".join(marks["tags"]))
    if marks["archived"]:
        out.append("archived: yes (meticulous unarchive to show it in the table)")
    notes_file = path / layout.NOTES
    notes = (
        organise.parse_notes(notes_file.read_text(encoding="utf-8", errors="replace"))
        if marks["notes"]
        else []
    )
    out += ["notes:"] * bool(notes)
    out += [f"  {n.time or '?'} {n.user or '?'}: {n.text}" for n in notes]
    out += ["", "config:", yaml.safe_dump(exp.config, sort_keys=False, allow_unicode=True).rstrip()]
    out += ["", "summary:", json.dumps(exp.summary, indent=2, ensure_ascii=False)]
    captured = meta.get("capture")
    one_terminal = isinstance(captured, dict) and captured.get("stderr") == layout.CAPTURE_IN_STDOUT
    for name in (layout.STDOUT, layout.STDERR):
        if name == layout.STDERR and one_terminal:
            out += ["", f"{name}: (in stdout: both went to one terminal, pipe or file)"]
            continue
        # progress bars as their last frame, colours left out (cli/screen.py)
        lines = screen.tail(path / name, tail)
        if not lines:
            out += ["", f"{name}: (empty)"]
            continue
        plural = "" if len(lines) == 1 else "s"
        out += ["", f"{name} (last {len(lines)} line{plural}):", *lines]
    if exp.read_errors:
        out += ["", "read errors: " + "; ".join(exp.read_errors)]
    return printable("\n".join(out), keep="\n\t") + "\n"


# -- main ------------------------------------------------------------------------------

#: Options taking several values, which would swallow a root written after them.
_MULTI_VALUE = ("columns", "sort", "group_by", "status", "tags")
_NUMBERED = re.compile(r"\d+(-\d+)?")


def _reclaim_roots(args: argparse.Namespace) -> None:
    """``--columns 'summary.*' experiments`` or ``--status ERROR 3-7``:
    argparse gives ``experiments`` and ``3-7`` to the option; a trailing value
    that is a folder, a run number or a range is a root or a run."""
    moved: list[str] = []
    for option in _MULTI_VALUE:
        values = getattr(args, option)
        while (
            values
            and len(values) > 1
            and (os.path.isdir(values[-1]) or _NUMBERED.fullmatch(values[-1]))
        ):
            moved.insert(0, values.pop())
    args.roots = [*(args.roots or []), *moved] or [args.root]


def _missing_run(path: Path) -> str | None:
    """For ROOT/ID that does not exist while ROOT holds runs: the message."""
    try:
        layout.validate_id(path.name)
    except layout.InvalidIdError:
        return None
    if path.exists() or not path.parent.is_dir():
        return None
    names = experiment_names(path.parent)
    if not names:
        return None
    return f"no run {path.name} in {path.parent} (its runs: {describe_ids(names)})"


def _split_roots(args: argparse.Namespace) -> tuple[list[str], dict[str, list[str]] | None]:
    """The roots to read and, when runs were named (``ROOT/ID``, or ids and
    ranges of ``--root``), the folder names to show of each root."""
    if args.show:
        if len(args.roots) != 1:
            raise UsageError("--show takes one root")
        return args.roots, {args.roots[0]: [layout.validate_id(args.show)]}
    picked: dict[str, list[str]] = {}
    roots: list[str] = []
    for given in args.roots:
        path = Path(given)
        message = _missing_run(path)
        if message:
            raise UsageError(message)
        if path.is_dir() and layout.is_experiment_dir(path):
            picked.setdefault(str(path.parent), []).append(path.name)
        elif not path.exists() and _run_of_root(given, args.root):
            # ids and ranges, as every verb takes them
            root = Path(args.root)
            names = selection.expand(given, root, selection.run_names(root))
            picked.setdefault(str(root), []).extend(names)
        else:
            roots.append(given)
    if not picked:
        return roots, None
    if roots:
        raise UsageError(
            f"give experiments roots or runs (ids, ranges, ROOT/ID), not both ({roots[0]})"
        )
    return list(picked), {root: list(dict.fromkeys(names)) for root, names in picked.items()}


def _run_of_root(token: str, root: str) -> bool:
    """Whether ``token``, which is no folder here, names runs of ``root``: a
    number or a range, or the id of one of its runs."""
    if os.sep in token or "/" in token or not os.path.isdir(root):
        return False
    return bool(_NUMBERED.fullmatch(token)) or token in selection.run_names(Path(root))


def _picked_rows(frame: pd.DataFrame, picked: dict[str, list[str]]) -> pd.DataFrame:
    wanted: list[Any]
    if frame.index.nlevels == 1:
        (names,) = picked.values()
        wanted = [run_id(n) for n in names]
    else:
        wanted = [(root, run_id(n)) for root, names in picked.items() for n in names]
    # an archived run is not in the frame unless --archived
    return frame.loc[[w for w in wanted if w in frame.index]]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = build_parser()
    args = parser.parse_args(_protect_descending(parser, sys.argv[1:] if argv is None else argv))
    _reclaim_roots(args)
    return args


def run(argv: Sequence[str] | None = None) -> tuple[str, str | None]:
    """Everything but the printing: the text, and the file to write it to."""
    args = parse_args(argv)
    return _output(args), args.output


def _protect_descending(parser: argparse.ArgumentParser, argv: Sequence[str]) -> list[str]:
    """``--sort -loss`` means descending, but argparse would take ``-loss``
    for an option: pass it on as ``~loss``."""
    options = {o for a in parser._actions for o in a.option_strings}
    out, in_sort = [], False
    for token in argv:
        descending = len(token) > 1 and token[0] == "-" and token[1] not in "-0123456789"
        if in_sort and descending and token not in options:
            out.append("~" + token[1:])
            continue
        if token.startswith("-"):
            in_sort = token == "--sort"
        out.append(token)
    return out


def _check_format(fmt: str) -> None:
    if fmt in _EXTRA_FORMATS or fmt in FAST_FORMATS:
        return  # without importing tabulate
    from tabulate import tabulate_formats  # ~30 ms: only for the other table formats

    if fmt not in tabulate_formats:
        ours = [*_EXTRA_FORMATS, *FAST_FORMATS]
        close = difflib.get_close_matches(fmt, [*ours, *tabulate_formats], n=1)
        hint = (
            f"did you mean {close[0]}?"
            if close
            else f"use {', '.join(ours)} or another of tabulate's (grid, pipe, latex, html, ...)"
        )
        raise UsageError(f"unknown format {fmt!r}; {hint}")


def _shaped(args: argparse.Namespace, selecting: bool = True) -> bool:
    """Whether an option asks for rows of a table (``--format``, ``--columns``,
    ...) or, with ``selecting``, narrows the rows: one run named is then no
    longer shown in full as it stands."""
    table = (args.columns, args.all, args.sort, args.group_by, args.curve, args.list_columns)
    return (
        any(table)
        or args.format != "simple"
        or (selecting and (selection.filtering(args) or args.last is not None))
    )


def _output(args: argparse.Namespace) -> str:
    _check_format(args.format)
    try:
        roots, picked = _split_roots(args)
    except layout.InvalidIdError as e:
        raise UsageError(str(e)) from e
    one = None  # the run, when one only is named
    if picked is not None and len(roots) == 1 and len(picked[roots[0]]) == 1:
        one = Path(roots[0]) / picked[roots[0]][0]
    if one is not None and (args.show or not _shaped(args)):
        return show_one(one)
    try:
        frame = load_experiments(
            roots[0] if len(roots) == 1 else roots, include_archived=args.archived
        )
    except FileNotFoundError as e:
        raise UsageError(str(e)) from e
    if args.list_columns:
        return list_columns([str(c) for c in frame.columns])
    if frame.empty:
        return f"no experiments under {', '.join(roots)} yet\n"
    if picked is not None:
        frame = _picked_rows(frame, picked)
    else:  # repro14: one row per sweep job, its latest attempt
        frame = latest_attempts(frame, all_attempts=args.all_attempts)
    frame = select_rows(frame, args)
    if one is not None and not _shaped(args, selecting=False) and len(frame) == 1:
        return show_one(one)  # the selectors keep the run named: in full
    export = args.format in _EXTRA_FORMATS
    priority: list[str] = []
    if args.group_by:
        frame = group_rows(frame, args.group_by)
        keys = frame.attrs["keys"]
        if args.sort:
            frame = sort_rows(frame, args.sort)
        if not export:
            frame = mean_std_text(frame)
        if args.columns:  # the keys name each group, as an id names a run: always shown
            chosen = pattern_columns(frame, args.columns)
            frame = frame[[*keys, *(c for c in chosen if c not in keys)]]
        names = short_names(str(c) for c in frame.columns)
    else:
        # a name means one column whatever is on screen: among them all
        names = short_names(str(c) for c in frame.columns)
        if args.sort:
            frame = sort_rows(frame, args.sort)
        if args.columns:
            columns = priority = pattern_columns(frame, args.columns)
        elif args.all or export:  # an export is not a view: every column
            columns = list(frame.columns)
        else:
            columns, priority = default_layout(frame)
        frame, columns = follow.decorate(frame, columns, roots, args, chosen=bool(args.columns))
        frame = frame[columns]
    if not len(frame.index):  # not frame.empty: --columns id leaves rows and no column
        return "no experiments match\n"
    # Fit the terminal when there is one (or COLUMNS says how wide it is);
    # files and pipes get whole values; --all every column, however wide.
    to_terminal = args.output is None and (sys.stdout.isatty() or "COLUMNS" in os.environ)
    width = shutil.get_terminal_size().columns if not export and to_terminal else None
    return render(
        frame,
        args.format,
        width,
        index=not args.group_by,
        priority=priority,
        names=names,
        fit=not args.all,
    )


# -- the pager -------------------------------------------------------------------------


def _pager(text: str, args: argparse.Namespace) -> str | None:
    """The pager command for ``text``, as git chooses: only for a terminal,
    and only when the text is taller than it."""
    if args.no_pager or args.output or not sys.stdout.isatty():
        return None
    if text.count("\n") < shutil.get_terminal_size().lines:
        return None
    command = os.environ.get("PAGER", "less -FRSX").strip()
    return None if command in ("", "cat") else command


def page(text: str, command: str) -> bool:
    """Show ``text`` through ``command`` (a shell command line, like $PAGER);
    False when the pager can't be started."""
    try:
        proc = subprocess.Popen(command, shell=True, stdin=subprocess.PIPE)
    except OSError:
        return False
    try:
        assert proc.stdin is not None
        proc.stdin.write(text.encode("utf-8", "replace"))
        proc.stdin.close()
    except BrokenPipeError:
        pass  # the user quit the pager early
    while True:
        try:
            proc.wait()
            break
        except KeyboardInterrupt:
            continue  # Ctrl-C belongs to the pager (less uses it), as in git
    return proc.returncode != 127  # 127: the shell did not find the pager


def main(argv: Sequence[str] | None = None) -> int:
    return quietly(lambda: _main(argv))  # `| head`: the reader may go at any line


def _main(argv: Sequence[str] | None) -> int:
    try:
        seconds, argv = follow.split_watch(sys.argv[1:] if argv is None else argv)
    except UsageError as e:
        sys.stderr.write(f"{PROG}: error: {printable(str(e))}\n")
        return 2
    if seconds is not None:
        # a redrawn table must not stop in a pager
        return follow.watch(seconds, lambda: _main([*argv, "--no-pager"]))
    with warnings_as_lines(PROG):
        try:
            args = parse_args(argv)
            text = _output(args)
        except UsageError as e:
            sys.stderr.write(f"{PROG}: error: {printable(str(e))}\n")
            return 2
    if args.output:
        try:
            Path(args.output).write_text(text, encoding="utf-8")
        except OSError as e:
            sys.stderr.write(f"{PROG}: error: cannot write {args.output}: {e.strerror or e}\n")
            return 1
        return 0
    if args.format != "csv" or sys.stdout.isatty():
        # values from the record never act on the terminal (a CSV to a file or
        # a pipe stays exact; JSON escapes them in its own way)
        text = printable(text, keep="\n\t")
    pager = _pager(text, args)
    if pager is not None:
        sys.stdout.flush()
        if page(text, pager):
            return 0
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
