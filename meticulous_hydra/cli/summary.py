"""``meticulous-summary``: the terminal table of recorded runs."""

from __future__ import annotations

import argparse
import difflib
import fnmatch
import json
import os
import shutil
import subprocess
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn, cast

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

from . import follow
from .columns import default_columns
from .query import QueryError, filter_frame, resolve_column
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
        metavar="ROOT",
        help="experiments root(s), default ./experiments; ROOT/ID shows one run in full, "
        "several ROOT/ID those runs",
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
        help="one row per group: n runs, how many failed, and mean ± std of the numeric "
        "summary columns over the successful ones",
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
    follow.add_arguments(p)  # issue 15: --tag, --archived, --curve, --watch
    return p


# -- selecting rows ------------------------------------------------------------

#: The run id: the index (its ``id`` level with several roots), not a column.
ID = "id"


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
        # the most recently started runs, shown in id order
        recent = frame.sort_values("start_time", kind="stable", na_position="first")
        frame = recent.iloc[len(recent) - min(args.last, len(recent)) :].sort_index(kind="stable")
    return frame


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
    names = [str(c) for c in frame.columns]
    chosen: list[str] = []
    for pattern in patterns:
        if pattern == ID and ID not in names:
            continue  # the id is the index, always shown
        found = [n for n in names if fnmatch.fnmatchcase(n, pattern)]
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
    return out.reset_index()


def mean_std_text(frame: pd.DataFrame) -> pd.DataFrame:
    """``<col>.mean`` and ``<col>.std`` as one ``<col>`` column of ``mean ± std`` text."""
    out = frame.copy()
    for column in [c for c in frame.columns if str(c).endswith(".mean")]:
        base = str(column)[: -len(".mean")]
        std = frame.get(f"{base}.std")
        pairs = zip(frame[column], std if std is not None else [None] * len(frame), strict=True)
        at = cast(int, out.columns.get_loc(column))  # an int: group_rows' columns are unique
        out.insert(at, base, [_mean_std(m, s) for m, s in pairs])
        out = out.drop(columns=[c for c in (column, f"{base}.std") if c in out.columns])
    return out


def _mean_std(mean: float, std: float | None) -> str:
    if is_missing(mean):
        return ""
    return number(mean) if std is None or is_missing(std) else f"{number(mean)} ± {number(std)}"


# -- one experiment ------------------------------------------------------------------


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
    for name in ("stdout", "stderr"):
        lines = getattr(exp, name).splitlines()[-tail:]
        if not lines:
            out += ["", f"{name}: (empty)"]
            continue
        plural = "" if len(lines) == 1 else "s"
        out += ["", f"{name} (last {len(lines)} line{plural}):", *lines]
    if exp.read_errors:
        out += ["", "read errors: " + "; ".join(exp.read_errors)]
    return "\n".join(out) + "\n"


# -- main ------------------------------------------------------------------------------

#: Options taking several values, which would swallow a root written after them.
_MULTI_VALUE = ("columns", "sort", "group_by", "status")


def _reclaim_roots(args: argparse.Namespace) -> None:
    """``--columns 'summary.*' experiments``: argparse gives ``experiments``
    to --columns; a trailing value that is a folder is a root."""
    moved: list[str] = []
    for option in _MULTI_VALUE:
        values = getattr(args, option)
        while values and len(values) > 1 and os.path.isdir(values[-1]):
            moved.insert(0, values.pop())
    args.roots = [*(args.roots or []), *moved] or ["experiments"]


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
    """The roots to read and, when run folders were given (``ROOT/ID``), the
    folder names to show of each root."""
    if args.show:
        if len(args.roots) != 1:
            raise UsageError("--show takes one root")
        return args.roots, {args.roots[0]: [layout.validate_id(args.show)]}
    picked: dict[str, list[str]] = {}
    for given in args.roots:
        path = Path(given)
        message = _missing_run(path)
        if message:
            raise UsageError(message)
        if path.is_dir() and layout.is_experiment_dir(path):
            picked.setdefault(str(path.parent), []).append(path.name)
    if not picked:
        return args.roots, None
    if sum(map(len, picked.values())) != len(args.roots):
        raise UsageError("give experiments roots or run folders (ROOT/ID), not both")
    return list(picked), picked


def _picked_rows(frame: pd.DataFrame, picked: dict[str, list[str]]) -> pd.DataFrame:
    if frame.index.nlevels == 1:
        (names,) = picked.values()
        return frame.loc[[run_id(n) for n in names]]
    return frame.loc[[(root, run_id(n)) for root, names in picked.items() for n in names]]


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
        close = difflib.get_close_matches(fmt, [*tabulate_formats, *_EXTRA_FORMATS], n=1)
        raise UsageError(
            f"unknown format {fmt!r}" + (f"; did you mean {close[0]}?" if close else "")
        )


def _output(args: argparse.Namespace) -> str:
    _check_format(args.format)
    try:
        roots, picked = _split_roots(args)
    except layout.InvalidIdError as e:
        raise UsageError(str(e)) from e
    if picked is not None and len(roots) == 1 and len(picked[roots[0]]) == 1:
        return show_one(Path(roots[0]) / picked[roots[0]][0])
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
    if picked is not None:
        frame = _picked_rows(frame, picked)
    else:  # repro14: one row per sweep job, its latest attempt
        frame = latest_attempts(frame, all_attempts=args.all_attempts)
    frame = select_rows(frame, args)
    export = args.format in _EXTRA_FORMATS
    frame = follow.select(frame, args)  # --tag
    if args.group_by:
        frame = group_rows(frame, args.group_by)
        if args.sort:
            frame = sort_rows(frame, args.sort)
        if not export:
            frame = mean_std_text(frame)
        if args.columns:
            frame = frame[pattern_columns(frame, args.columns)]
    else:
        if args.sort:
            frame = sort_rows(frame, args.sort)
        if args.columns:
            columns = pattern_columns(frame, args.columns)
        elif args.all or export:  # an export is not a view: every column
            columns = list(frame.columns)
        else:
            columns = default_columns(frame)
        frame, columns = follow.decorate(frame, columns, roots, args, chosen=bool(args.columns))
        frame = frame[columns]
    if frame.empty:
        return "no experiments match\n"
    # Fit the terminal when there is one (or COLUMNS says how wide it is);
    # files and pipes get whole values.
    to_terminal = args.output is None and (sys.stdout.isatty() or "COLUMNS" in os.environ)
    width = shutil.get_terminal_size().columns if not export and to_terminal else None
    return render(frame, args.format, width, index=not args.group_by)


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
    try:
        seconds, argv = follow.split_watch(sys.argv[1:] if argv is None else argv)
    except UsageError as e:
        sys.stderr.write(f"{PROG}: error: {e}\n")
        return 2
    if seconds is not None:
        # a redrawn table must not stop in a pager
        return follow.watch(seconds, lambda: main([*argv, "--no-pager"]))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            args = parse_args(argv)
            text = _output(args)
        except UsageError as e:
            sys.stderr.write(f"{PROG}: error: {e}\n")
            return 2
    for warning in caught:
        sys.stderr.write(f"{PROG}: warning: {warning.message}\n")
    if args.output:
        try:
            Path(args.output).write_text(text, encoding="utf-8")
        except OSError as e:
            sys.stderr.write(f"{PROG}: error: cannot write {args.output}: {e.strerror or e}\n")
            return 1
        return 0
    pager = _pager(text, args)
    if pager is not None:
        sys.stdout.flush()
        if page(text, pager):
            return 0
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:
        # `meticulous-summary | head`: the reader went away, that's fine
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
