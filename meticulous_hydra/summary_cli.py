"""``meticulous-summary``: the terminal table of recorded runs."""

from __future__ import annotations

import argparse
import difflib
import fnmatch
import json
import os
import shutil
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from . import follow, layout
from .exceptions import UsageError
from .query import QueryError, filter_frame, resolve_column
from .reader import ExperimentReader, experiment_dirs, load_experiments
from .table import is_missing, number, render

if TYPE_CHECKING:
    import pandas as pd

PROG = "meticulous-summary"
_ERROR_STATUSES = ("ERROR", "DIED")
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
        default=["experiments"],
        metavar="ROOT",
        help="experiments root(s), default ./experiments; ROOT/ID shows one run in full",
    )
    p.add_argument(
        "--filter",
        metavar="EXPR",
        help="e.g. \"config.optimizer.lr > 0.01 and status == 'SUCCESS'\"",
    )
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
        help="one row per group: the number of runs and mean ± std of numeric summary columns",
    )
    p.add_argument(
        "--sweep", metavar="ID", help="only the jobs of this sweep ('latest' for the newest)"
    )
    p.add_argument(
        "--all-attempts",
        action="store_true",
        help="every attempt of a re-run sweep job, not just its latest",
    )
    p.add_argument("--status", nargs="+", metavar="S", help="only runs with these statuses")
    p.add_argument("--last", type=int, metavar="N", help="only the N most recent runs")
    p.add_argument(
        "--format",
        default="simple",
        metavar="FMT",
        help="a tabulate format (simple, github, plain, latex, html, ...), csv or json",
    )
    p.add_argument("--output", metavar="FILE", help="write to FILE instead of the terminal")
    p.add_argument("--show", metavar="ID", help="show one run in full")
    follow.add_arguments(p)  # issue 15: --tag, --archived, --curve, --watch
    return p


# -- selecting rows ------------------------------------------------------------


def _column(frame: pd.DataFrame, name: str) -> str:
    try:
        return resolve_column(name, [str(c) for c in frame.columns])
    except QueryError as e:
        raise UsageError(str(e)) from e


def select_rows(frame: pd.DataFrame, args: argparse.Namespace) -> pd.DataFrame:
    if args.sweep:
        sweep_id = args.sweep
        if sweep_id == "latest":
            swept = frame[frame["sweep.id"].notna()]
            if swept.empty:
                raise UsageError("no sweep recorded under this root; drop --sweep")
            sweep_id = swept.sort_values("start_time")["sweep.id"].iloc[-1]
        elif not (frame["sweep.id"] == sweep_id).any():
            known = sorted(frame["sweep.id"].dropna().unique())[-3:]
            raise UsageError(f"no sweep {sweep_id!r}; recent sweeps: {', '.join(known) or 'none'}")
        frame = frame[frame["sweep.id"] == sweep_id]
    if args.status:
        wanted = [s.upper() for s in args.status]
        frame = frame[frame["status"].isin(wanted)]
    if args.filter:
        try:
            frame = filter_frame(frame, args.filter)
        except QueryError as e:
            raise UsageError(str(e)) from e
    if args.last is not None:
        if args.last < 0:
            raise UsageError("--last takes a positive number")
        frame = frame.sort_values("start_time", kind="stable").iloc[
            len(frame) - min(args.last, len(frame)) :
        ]
    return frame


def sort_rows(frame: pd.DataFrame, keys: Sequence[str]) -> pd.DataFrame:
    names, ascending = [], []
    for key in keys:
        descending = key.startswith(("-", "~"))
        names.append(_column(frame, key[1:] if descending else key))
        ascending.append(not descending)
    return frame.sort_values(names, ascending=ascending, kind="stable", na_position="last")


# -- choosing columns ------------------------------------------------------------


def _varying(frame: pd.DataFrame, column: str) -> bool:
    """Two or more different values among the runs that have the key."""
    values = frame[column]
    try:
        return values.nunique() > 1
    except TypeError:
        return values.dropna().astype(str).nunique() > 1


def default_columns(frame: pd.DataFrame) -> list[str]:
    """status, start time, duration, the config that differs between the runs
    shown, every summary column, and the error line where there are errors."""
    cols = ["status", "start_time", "duration"]
    cols += [
        c
        for c in frame.columns
        if c.startswith("config.") and len(frame) > 1 and _varying(frame, c)
    ]
    cols += [c for c in frame.columns if c.startswith("summary.") and frame[c].notna().any()]
    if "attempts" in frame.columns and (frame["attempts"] > 1).any():
        cols.append("attempts")
    if frame["status"].isin(_ERROR_STATUSES).any():
        cols.append("status_detail")
    return cols


def pattern_columns(frame: pd.DataFrame, patterns: Sequence[str]) -> list[str]:
    names = [str(c) for c in frame.columns]
    chosen: list[str] = []
    for pattern in patterns:
        found = [n for n in names if fnmatch.fnmatchcase(n, pattern)]
        if not found and not any(ch in pattern for ch in "*?["):
            found = [_column(frame, pattern)]
        if not found:
            raise UsageError(f"no column matches {pattern!r}; list them with --list-columns")
        chosen += [n for n in found if n not in chosen]
    return chosen


# -- grouping --------------------------------------------------------------------


def group_rows(frame: pd.DataFrame, keys: Sequence[str], for_table: bool) -> pd.DataFrame:
    import pandas as pd  # ~175 ms: loaded when a frame is built, not at import

    names = [_column(frame, k) for k in keys]
    # tuples (list values) and missing values both make pandas' grouping
    # unreliable: group on their text instead
    work = frame.copy()
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
    out = grouped.size().rename("runs").to_frame()
    for c in numeric:
        mean, std = grouped[c].mean(), grouped[c].std()
        if for_table:
            out[c] = [_mean_std(m, s) for m, s in zip(mean, std, strict=True)]
        else:
            out[f"{c}.mean"], out[f"{c}.std"] = mean, std
    return out.reset_index()


def _mean_std(mean: float, std: float) -> str:
    if is_missing(mean):
        return ""
    return number(mean) if is_missing(std) else f"{number(mean)} ± {number(std)}"


# -- rendering ---------------------------------------------------------------------


# -- one experiment ------------------------------------------------------------------


def show_one(path: Path, tail: int = 20) -> str:
    import yaml  # ~13 ms: only to show one run

    if not path.is_dir():
        raise UsageError(f"no experiment folder {path}")
    if path not in experiment_dirs(path.parent):
        raise UsageError(f"{path} is not an experiment folder (no STATUS or metadata.json)")
    exp = ExperimentReader(path)
    meta = exp.metadata
    out = [f"experiment {exp.id}  ({path})", f"status: {exp.status}"]
    if exp.status_detail:
        out.append("  " + exp.status_detail.replace("\n", "\n  "))
    for key in ("description", "start_time", "end_time", "duration", "host", "pid"):
        if meta.get(key) not in (None, ""):
            out.append(f"{key}: {meta[key]}")
    out.append("overrides: " + (" ".join(meta.get("overrides") or []) or "(none)"))
    git = meta.get("git")
    out.append(
        "git: "
        + (
            "(not a git repository)"
            if not git
            else f"{git.get('sha')} on {git.get('branch')}"
            + (" (dirty)" if git.get("dirty") else "")
        )
    )
    out += ["", "config:", yaml.safe_dump(exp.config, sort_keys=False, allow_unicode=True).rstrip()]
    out += ["", "summary:", json.dumps(exp.summary, indent=2, ensure_ascii=False)]
    for name in ("stdout", "stderr"):
        lines = getattr(exp, name).splitlines()[-tail:]
        out += ["", f"{name} (last {len(lines)} lines):", *lines]
    if exp.read_errors:
        out += ["", "read errors: " + "; ".join(exp.read_errors)]
    return "\n".join(out) + "\n"


# -- main ------------------------------------------------------------------------------


def _split_roots(args: argparse.Namespace) -> tuple[list[str], Path | None]:
    """ROOT/ID given as the only root means --show ID."""
    if args.show:
        if len(args.roots) != 1:
            raise UsageError("--show takes one root")
        return args.roots, Path(args.roots[0]) / layout.validate_id(args.show)
    if len(args.roots) == 1:
        path = Path(args.roots[0])
        if path.is_dir() and layout.is_experiment_dir(path):
            return [str(path.parent)], path
    return args.roots, None


def run(argv: Sequence[str] | None = None) -> tuple[str, str | None]:
    """Everything but the printing: the text, and the file to write it to."""
    parser = build_parser()
    args = parser.parse_args(_protect_descending(parser, sys.argv[1:] if argv is None else argv))
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


def _output(args: argparse.Namespace) -> str:
    if args.format not in _EXTRA_FORMATS:
        from tabulate import tabulate_formats  # ~30 ms: only for a table format

        if args.format not in tabulate_formats:
            close = difflib.get_close_matches(
                args.format, [*tabulate_formats, *_EXTRA_FORMATS], n=1
            )
            raise UsageError(
                f"unknown format {args.format!r}" + (f"; did you mean {close[0]}?" if close else "")
            )
    try:
        roots, single = _split_roots(args)
    except layout.InvalidIdError as e:
        raise UsageError(str(e)) from e
    if single is not None:
        return show_one(single)
    try:
        frame = load_experiments(
            roots[0] if len(roots) == 1 else roots, include_archived=args.archived
        )
    except FileNotFoundError as e:
        raise UsageError(str(e)) from e
    if args.list_columns:
        return "\n".join(str(c) for c in frame.columns) + "\n"
    if frame.empty:
        return f"no experiments under {', '.join(roots)} yet\n"
    from .attempts import latest_attempts  # repro14: one row per sweep job, in the table only

    frame = select_rows(latest_attempts(frame, all_attempts=args.all_attempts), args)
    frame = follow.select(frame, args)  # --tag
    table_format = args.format not in _EXTRA_FORMATS
    if args.group_by:
        frame = group_rows(frame, args.group_by, for_table=table_format)
        frame = frame.set_index(frame.columns[0]) if len(args.group_by) == 1 else frame
        if args.sort:
            frame = sort_rows(frame, args.sort)
        if args.columns:
            frame = frame[pattern_columns(frame, args.columns)]
    else:
        if args.sort:
            frame = sort_rows(frame, args.sort)
        if args.all:
            columns = list(frame.columns)
        elif args.columns:
            columns = pattern_columns(frame, args.columns)
        else:
            columns = default_columns(frame)
        frame, columns = follow.decorate(frame, columns, roots, args, chosen=bool(args.columns))
        frame = frame[columns]
    if frame.empty:
        return "no experiments match\n"
    # Fit the terminal when there is one (or COLUMNS says how wide it is);
    # files and pipes get whole values.
    to_terminal = args.output is None and (sys.stdout.isatty() or "COLUMNS" in os.environ)
    width = shutil.get_terminal_size().columns if table_format and to_terminal else None
    return render(frame, args.format, width)


def main(argv: Sequence[str] | None = None) -> int:
    try:
        seconds, argv = follow.split_watch(sys.argv[1:] if argv is None else argv)
    except UsageError as e:
        sys.stderr.write(f"{PROG}: error: {e}\n")
        return 2
    if seconds is not None:
        return follow.watch(seconds, lambda: main(argv))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            text, args_output = run(argv)
        except UsageError as e:
            sys.stderr.write(f"{PROG}: error: {e}\n")
            return 2
    for warning in caught:
        sys.stderr.write(f"{PROG}: warning: {warning.message}\n")
    if args_output:
        try:
            Path(args_output).write_text(text, encoding="utf-8")
        except OSError as e:
            sys.stderr.write(f"{PROG}: error: cannot write {args_output}: {e.strerror or e}\n")
            return 1
    else:
        try:
            sys.stdout.write(text)
            sys.stdout.flush()
        except BrokenPipeError:
            # `meticulous-summary | head`: the reader went away, that's fine
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
