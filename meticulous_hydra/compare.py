"""``meticulous diff A B [C ...]``: one side-by-side table of what differs
between runs (config, overrides and config-group choices, results with deltas
against the first run, status, git, environment), then the code: ``git diff
--stat`` between the runs' commits when the repository has both, and each
run's own recorded diff."""

from __future__ import annotations

import argparse
import os
import subprocess
from collections.abc import Sequence
from typing import Any

from . import layout, selection
from .exceptions import UsageError
from .frame import hashable
from .reader import ExperimentReader, flatten
from .table import number, render

ABSENT = "—"
_EXTRA_FORMATS = ("csv", "json")
# the packages file and Python version repro14 records; read when present
PACKAGES = "packages.txt"


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


# -- gathering ---------------------------------------------------------------------


def _packages(run: ExperimentReader) -> dict[str, str]:
    try:
        text = (run.path / PACKAGES).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return {}
    out = {}
    for line in text.splitlines():
        name, sep, version = line.strip().partition("==")
        if sep and name and not name.startswith("#"):
            out[name.lower()] = version
    return out


def _diffstat(run: ExperimentReader) -> str:
    """The run's own recorded git.diff as 'N files +A -D', or '' without one."""
    try:
        text = (run.path / layout.GIT_DIFF).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    files = added = deleted = 0
    for line in text.splitlines():
        if line.startswith("diff --git "):
            files += 1
        elif line.startswith("+") and not line.startswith("+++"):
            added += 1
        elif line.startswith("-") and not line.startswith("---"):
            deleted += 1
    return f"{files} file{'s' * (files != 1)} +{added} -{deleted}" if files else ""


def facts(run: ExperimentReader) -> dict[str, Any]:
    """Everything diff compares, as flat ``section.key`` -> value."""
    meta = run.metadata
    out: dict[str, Any] = {}
    flatten(run.config, "config", out)
    # a path into the run's own folder differs between any two runs, telling
    # them apart by nothing: it is compared (and shown) relative to the folder
    own = [(str(run.path.absolute()), "<run folder>")]
    out = {k: layout.localise(v, own) for k, v in out.items()}
    hydra = meta.get("hydra") if isinstance(meta.get("hydra"), dict) else {}
    switch = f"+{layout.OPT_IN_GROUP}="  # the recording switch is no setting of the run
    overrides = [o for o in meta.get("overrides") or [] if not str(o).startswith(switch)]
    out["overrides"] = " ".join(overrides)
    for group, choice in sorted((hydra.get("choices") or {}).items()):
        if group != layout.OPT_IN_GROUP:
            out[f"choice.{group}"] = choice
    flatten(run.summary, "summary", out)
    out["status"] = run.status
    duration = meta.get("duration")
    out["duration"] = f"{duration:.1f}s" if isinstance(duration, (int, float)) else duration
    git = meta.get("git") if isinstance(meta.get("git"), dict) else {}
    out["git.sha"] = git.get("sha") and git["sha"][:12]
    out["git.branch"] = git.get("branch")
    out["git.dirty"] = git.get("dirty")
    out["git.diff"] = _diffstat(run) or None
    # untracked source saved with the run (issue 12 #5), when recorded
    out["git.untracked"] = " ".join(git.get("untracked_saved") or []) or None
    python = meta.get("python") if isinstance(meta.get("python"), dict) else {}
    out["python"] = python.get("version")
    versions = meta.get("versions") if isinstance(meta.get("versions"), dict) else {}
    for name, version in versions.items():
        out[f"package.{name.lower()}"] = version
    for name, version in _packages(run).items():
        out[f"package.{name}"] = version
    out["host"] = meta.get("host")
    # outside the config and the summary, None means "not recorded": absent
    return {
        k: hashable(v)
        for k, v in out.items()
        if v is not None or k.startswith(("config.", "summary."))
    }


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
    code_differs = len({_code_key(f) for f in all_facts}) > 1
    out = []
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
                    else ("differs" if _code_key(f) != _code_key(all_facts[0]) else "same")
                    for i, f in enumerate(all_facts)
                ],
            )
        )
    return out


_SECTIONS = ("config.", "overrides", "choice.", "summary.", "status", "duration", "git.", "python")


def _section(key: str) -> int:
    """Keys of one section together, sections in a fixed order (stable sort)."""
    return next((i for i, p in enumerate(_SECTIONS) if key.startswith(p)), len(_SECTIONS))


def _code_key(f: dict[str, Any]) -> tuple[Any, ...]:
    return f.get("git.sha"), f.get("git.diff"), f.get("git.untracked")


def _git(top: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["git", "-C", top, *args], capture_output=True, text=True, check=False, timeout=60
    )


def code_section(runs: Sequence[ExperimentReader], labels: Sequence[str]) -> str:
    """``git diff --stat`` from the first run's commit to each other's, where
    the repository is there and has both commits."""
    first = runs[0].metadata.get("git") or {}
    top, base = first.get("toplevel"), first.get("sha")
    parts = []
    for run, label in zip(runs[1:], labels[1:], strict=True):
        git = run.metadata.get("git") or {}
        sha = git.get("sha")
        if not base or not sha or sha == base:
            continue
        head = f"code from {labels[0]} ({base[:10]}) to {label} ({sha[:10]})"
        repo = next((t for t in (top, git.get("toplevel")) if t and os.path.isdir(t)), None)
        if repo is None:
            parts.append(f"{head}: the repository {top or git.get('toplevel')} is not here")
            continue
        proc = _git(repo, "diff", "--stat", base, sha, "--")
        if proc.returncode != 0:
            parts.append(f"{head}: {repo} does not have both commits")
            continue
        parts.append(f"{head}:\n{proc.stdout.rstrip() or ' (no change)'}")
    for run, label in zip(runs, labels, strict=True):
        stat = _diffstat(run)
        if stat:
            parts.append(
                f"{label} ran with uncommitted changes: {stat} in {run.path / layout.GIT_DIFF}"
            )
    return "\n\n".join(parts)


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
