"""Which runs a command acts on, the same for the table and every verb: ids
(``3``), ranges (``3-7``), ``ROOT/ID`` paths under ``--root``, and
``--sweep ID|latest``, ``--status S[,S]``, ``--filter EXPR`` and
``--tag TAG[,TAG]``, which narrow the runs named, or pick from the whole root
when none are named (:func:`select_rows`).
"""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from meticulous_hydra import layout
from meticulous_hydra.exceptions import LinkRefused, QueryError, UsageError
from meticulous_hydra.reader.reader import describe_ids, experiment_names, load_experiments

from .query import filter_frame

if TYPE_CHECKING:
    import pandas as pd

_RANGE = re.compile(r"(\d+)-(\d+)")
DEFAULT_ROOT = "experiments"


@dataclass(frozen=True)
class Run:
    """One selected run: its root and id."""

    root: Path
    id: str

    @property
    def path(self) -> Path:
        return self.root / self.id

    def label(self, several_roots: bool) -> str:
        return str(self.path) if several_roots else self.id


def add_root(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """``--root``, the same for every verb and the table."""
    parser.add_argument(
        "--root",
        default=DEFAULT_ROOT,
        metavar="ROOT",
        help="experiments root for bare ids (default ./experiments)",
    )


def add_filters(parser: argparse.ArgumentParser | argparse._ArgumentGroup, many: bool) -> None:
    """``--sweep``, ``--status``, ``--filter`` and ``--tag``, the same for
    every verb and the table; ``many``: the table's ``--status`` and ``--tag``
    also take several words (a verb's would swallow the runs after them)."""
    parser.add_argument(
        "--sweep", metavar="ID", help="only the jobs of this sweep ('latest' for the newest)"
    )
    several: dict[str, Any] = {"nargs": "+"} if many else {}
    parser.add_argument(
        "--status",
        metavar="S[,S]",
        help="only runs with these statuses, e.g. ERROR,DIED (any case)",
        **several,
    )
    parser.add_argument(
        "--filter", metavar="EXPR", help="e.g. \"optimizer.lr > 0.01 and status == 'SUCCESS'\""
    )
    parser.add_argument(
        "--tag",
        dest="tags",
        metavar="TAG[,TAG]",
        help="only runs carrying every one of these tags",
        **several,
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The selection options every verb shares (the runs themselves are the
    verb's positional arguments)."""
    group = parser.add_argument_group("selecting runs")
    add_root(group)
    add_filters(group, many=False)
    group.add_argument(
        "--archived",
        action="store_true",
        help="--sweep/--status/--filter/--tag include archived runs",
    )


def words(values: str | Sequence[str] | None) -> list[str]:
    """``ERROR,DIED``, ``["ERROR", "DIED"]``, ``["ERROR,DIED"]``: the words."""
    if values is None:
        return []
    given = [values] if isinstance(values, str) else values
    return [w.strip() for v in given for w in v.split(",") if w.strip()]


def filtering(args: argparse.Namespace) -> bool:
    """Whether any of --sweep, --status, --filter, --tag was given."""
    return bool(args.sweep or args.status or args.filter or getattr(args, "tags", None))


def select_rows(frame: pd.DataFrame, args: argparse.Namespace) -> pd.DataFrame:
    """The rows of ``frame`` that ``--sweep``, ``--status``, ``--filter``,
    ``--tag`` (and the table's ``--last``) choose."""
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
    statuses = [s.upper() for s in words(args.status)]
    statuses_known = (*layout.STATUSES, layout.DIED, layout.UNKNOWN)
    for status in statuses:
        if status not in statuses_known:  # else a typo reads as "no such runs"
            failed = (
                "; failed runs: --status ERROR,DIED,TIMEOUT" if status.startswith("FAIL") else ""
            )
            raise UsageError(
                f"unknown status {status!r}; a run is {', '.join(statuses_known)}{failed}"
            )
    if statuses:
        frame = frame[frame["status"].isin(statuses)]
    if args.filter:
        try:
            frame = filter_frame(frame, args.filter)
        except QueryError as e:
            raise UsageError(str(e)) from e
    for tag in words(getattr(args, "tags", None)):
        if "tags" not in frame.columns:  # a reader subclass's rows without them
            frame = frame.iloc[:0]
            break
        carries = frame["tags"].map(lambda t, tag=tag: isinstance(t, tuple) and tag in t)
        frame = frame[carries.astype(bool)]
    last = getattr(args, "last", None)
    if last is not None:
        if last < 1:
            raise UsageError("--last takes a positive number")
        # the most recently started runs, shown in id order
        recent = frame.sort_values("start_time", kind="stable", na_position="first")
        frame = recent.iloc[len(recent) - min(last, len(recent)) :].sort_index(kind="stable")
    return frame


def add_runs_and(parser: argparse.ArgumentParser, last: str, help_last: str) -> None:
    parser.add_argument("runs", nargs="*", metavar="RUN", help="ids, ranges (3-7) or ROOT/ID")
    parser.add_argument(last, help=help_last)
    add_arguments(parser)


def run_names(root: Path) -> list[str]:
    try:
        return experiment_names(root)
    except FileNotFoundError as e:
        raise UsageError(str(e)) from None


def split_token(token: str, default_root: Path) -> tuple[Path, str]:
    """The root and the name ``token`` (an id, a range or ``ROOT/ID``) stands for."""
    if "/" in token or os.sep in token:
        path = Path(token.rstrip("/" + os.sep))
        return path.parent, path.name
    return default_root, token


def expand(
    token: str, root: Path, names: Sequence[str], what: str = "run", see: str = ""
) -> list[str]:
    """The names of ``names`` that ``token`` (an id or a range) stands for."""
    if token in names:
        return [token]
    match = _RANGE.fullmatch(token)
    if match:
        low, high = sorted(int(g) for g in match.groups())
        found = [n for n in names if layout.is_numbered(n) and low <= int(n) <= high]
        if found:
            return found
        raise UsageError(f"no {what} numbered {low} to {high} under {root}")
    known = f"ids {describe_ids(names)}" if names else "there are none"
    see = see or f"meticulous-summary {root}"
    raise UsageError(f"no {what} {token!r} under {root} ({known}); see {see}")


def one(token: str, default_root: Path) -> Run:
    """The one run ``token`` (an id or ``ROOT/ID``) names, for verbs that act on one."""
    root, name = split_token(token, default_root)
    names = expand(name, root, run_names(root))
    if len(names) != 1:
        raise UsageError(f"{token!r} names {len(names)} runs; give one id or ROOT/ID")
    return _no_links([Run(root, names[0])])[0]


def select(
    tokens: Sequence[str], args: argparse.Namespace, *, include_archived: bool = False
) -> list[Run]:
    """The runs ``tokens`` and the selection options name, in the order given
    (filters alone: in id order). Raises UsageError when nothing is named or
    nothing matches."""
    default_root = Path(args.root)
    named: list[Run] = []
    listing: dict[Path, list[str]] = {}
    for token in tokens:
        root, name = split_token(token, default_root)
        if root not in listing:
            listing[root] = run_names(root)
        named += [Run(root, n) for n in expand(name, root, listing[root])]
    named = list(dict.fromkeys(named))
    if not tokens and not filtering(args):
        raise UsageError(
            "name the runs: ids (3 5), ranges (3-7), ROOT/ID, or --sweep/--status/--filter/--tag"
        )
    if not filtering(args):
        return _no_links(named)
    roots = list(dict.fromkeys(r.root for r in named)) if named else [default_root]
    # named runs are looked for even when archived: naming one is explicit
    chosen = {
        Run(root, str(i))
        for root in roots
        for i in _filtered(root, args, include_archived or args.archived or bool(named))
    }
    if named:
        picked = [r for r in named if r in chosen]
    else:
        picked = [Run(default_root, n) for n in run_names(default_root)]
        picked = [r for r in picked if r in chosen]
    if not picked:
        raise UsageError("no runs match the selection")
    return _no_links(picked)


def _no_links(runs: list[Run]) -> list[Run]:
    """``runs``, refusing a run folder that is a symbolic link: a verb never
    follows one, to read what it will change or to write."""
    for run in runs:
        if run.path.is_symlink():
            raise LinkRefused(
                f"{run.path} is a symbolic link (to {os.readlink(run.path)}), not a run folder "
                f"of {run.root}: meticulous acts only on the folders in the root; name the "
                "folder it points to instead"
            )
    return runs


def _filtered(root: Path, args: argparse.Namespace, include_archived: bool) -> list[str]:
    try:
        frame = load_experiments(root, include_archived=include_archived)
    except FileNotFoundError as e:
        raise UsageError(str(e)) from None
    if frame.empty:
        return []
    return [str(i) for i in select_rows(frame, args).index]


def several_roots(runs: Sequence[Run]) -> bool:
    return len({r.root for r in runs}) > 1


# -- what the housekeeping verbs say ------------------------------------------------


def report(runs: Sequence[Run], done: Sequence[Run], verb: str, already: str) -> None:
    several = several_roots(runs)
    if done:
        print(f"{verb} " + ", ".join(r.label(several) for r in done))
    rest = [r for r in runs if r not in done]
    if rest:
        print(f"{already}: " + ", ".join(r.label(several) for r in rest))


def require_runs(args: argparse.Namespace, verb: str, last: str) -> None:
    """``meticulous tag 1``: the one word went to the tag, not to the runs."""
    if not args.runs and not filtering(args):
        value = getattr(args, last)
        raise UsageError(
            f"which runs? meticulous {verb} RUN... {last.upper()} takes the runs first "
            f"({value!r} was taken as the {last}), or --sweep/--status/--filter/--tag"
        )
