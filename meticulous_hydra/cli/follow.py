"""What the summary table adds for following runs and finding them again:
elapsed time and the last logged values of RUNNING runs, ``--curve KEY``
sparklines, the ``tags`` column, ``--archived``, and ``--watch`` (redraw
until Ctrl-C). ``--tag`` is a selector, :mod:`.selection`'s.

meticulous-summary calls :func:`add_arguments` and :func:`decorate`; its
``main`` hands ``--watch`` to :func:`split_watch` and :func:`watch`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from meticulous_hydra import layout
from meticulous_hydra.exceptions import UsageError
from meticulous_hydra.reader.metrics import last_record, read_records, sparkline

from .table import number

if TYPE_CHECKING:
    import pandas as pd

CURVE_WIDTH = 24
# Files larger than this are sampled at evenly spaced offsets for a sparkline
# instead of read whole: the table stays fast next to a 1 GB metrics.jsonl.
_READ_WHOLE = 4 * 1024 * 1024
_DEFAULT_WATCH = 2.0
_LONGEST_WATCH = 86400.0  # a day: time.sleep() overflows far beyond it


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--archived", action="store_true", help="include archived runs")
    parser.add_argument(
        "--curve",
        nargs="+",
        metavar="KEY",
        help="a sparkline column of this logged metric per run (▁▂▃▄▅▆▇█)",
    )
    parser.add_argument(
        "--watch",
        nargs="?",
        type=float,
        const=_DEFAULT_WATCH,
        metavar="SECONDS",
        help=f"redraw every SECONDS (default {_DEFAULT_WATCH:g}) until Ctrl-C",
    )


# -- columns ------------------------------------------------------------------------


def _folders(frame: pd.DataFrame, roots: Sequence[str]) -> list[Path]:
    if frame.index.nlevels == 1:
        return [Path(roots[0]) / str(i) for i in frame.index]
    return [Path(str(root)) / str(i) for root, i in frame.index]


def _progress(record: dict[str, Any]) -> str:
    parts = [] if record.get("step") is None else [f"step {record['step']}"]
    for key, value in record.items():
        if key in ("step", "time"):
            continue
        if isinstance(value, float):
            value = number(value)
        elif isinstance(value, dict):
            value = json.dumps(value)
        parts.append(f"{key}={value}")
    return " ".join(parts)


def decorate(
    frame: pd.DataFrame,
    columns: list[str],
    roots: Sequence[str],
    args: argparse.Namespace,
    *,
    chosen: bool,
) -> tuple[pd.DataFrame, list[str]]:
    """The frame and columns of the table, with the elapsed time and last
    logged values of RUNNING runs, ``tags`` when any run has one (unless the
    columns were ``chosen``), and the ``--curve`` columns."""
    import pandas as pd

    columns = list(columns)
    running = frame["status"] == layout.RUNNING if "status" in frame.columns else None
    if running is not None and running.any():
        frame = frame.copy()
        folders = _folders(frame, roots)
        now = pd.Timestamp.now(tz="UTC")
        elapsed = (now - frame.loc[running, "start_time"]).dt.total_seconds()
        frame.loc[running, "duration"] = elapsed
        progress = [
            _progress(last_record(folder / layout.METRICS) or {}) if live else ""
            for folder, live in zip(folders, running.tolist(), strict=True)
        ]
        if any(progress):
            frame["progress"] = progress
            if not chosen or "progress" not in columns:
                columns = _after(columns, "duration", "progress")
    tagged = "tags" in frame.columns and frame["tags"].map(lambda t: bool(t) is True).any()
    if not chosen and tagged and "tags" not in columns:
        columns = _after(columns, "duration", "tags")
    if "tags" in columns and getattr(args, "format", None) not in ("csv", "json"):
        frame = frame.copy()
        frame["tags"] = frame["tags"].map(lambda t: " ".join(t) if isinstance(t, tuple) else "")
    for key in getattr(args, "curve", None) or []:
        name = f"curve({key})"
        lines = [_curve(folder, key) for folder in _folders(frame, roots)]
        if not any(lines):
            raise UsageError(f"no run shown logged {key!r}; {_known_keys(frame, roots)}")
        frame = frame.copy() if name not in frame.columns else frame
        frame[name] = lines
        # after the results: a table cut to the terminal's width drops its last columns
        results = [c for c in columns if c.startswith("summary.") or c.startswith("curve(")]
        anchor = results[-1] if results else "progress" if "progress" in columns else "duration"
        columns = _after(columns, anchor, name)
    return frame, columns


def _after(columns: list[str], anchor: str, name: str) -> list[str]:
    columns = [c for c in columns if c != name]
    at = columns.index(anchor) + 1 if anchor in columns else len(columns)
    return [*columns[:at], name, *columns[at:]]


def _known_keys(frame: pd.DataFrame, roots: Sequence[str]) -> str:
    keys: dict[str, None] = {}
    for folder in _folders(frame, roots)[:50]:
        record = last_record(folder / layout.METRICS) or {}
        keys.update(dict.fromkeys(k for k in record if k not in ("step", "time")))
    return f"logged keys: {', '.join(keys)}" if keys else "no run shown logged any metric"


def _value(record: dict[str, Any], key: str) -> Any:
    if key in record:
        return record[key]
    value: Any = record
    for part in key.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _curve(folder: Path, key: str, width: int = CURVE_WIDTH) -> str:
    path = folder / layout.METRICS
    try:
        size = path.stat().st_size
    except OSError:
        return ""
    if size <= _READ_WHOLE:
        values = [_value(r, key) for r in read_records(path)]
    else:
        values = _sampled(path, size, key, width * 4)
    return sparkline([v for v in values if v is not None], width)


def _sampled(path: Path, size: int, key: str, points: int) -> list[Any]:
    """Values of ``key`` from the first line holding it after each of
    ``points`` evenly spaced offsets: a downsampled curve in ``points`` reads."""
    needle = json.dumps(key.split(".")[-1]).encode()
    out = []
    with open(path, "rb") as f:
        for i in range(points):
            f.seek(size * i // points)
            if i:
                f.readline()  # the rest of a line begun before the offset
            for _ in range(64):
                line = f.readline()
                if not line:
                    break
                if needle not in line:
                    continue
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
                if isinstance(record, dict):
                    out.append(_value(record, key))
                    break
    return out


# -- --watch ------------------------------------------------------------------------------


def split_watch(argv: Sequence[str]) -> tuple[float | None, list[str]]:
    """``--watch [SECONDS]`` taken out of ``argv``: (seconds or None, the rest)."""
    rest: list[str] = []
    seconds: float | None = None
    tokens = list(argv)
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if token == "--watch" or token.startswith("--watch="):
            value = token.partition("=")[2]
            if not value and i + 1 < len(tokens) and _is_number(tokens[i + 1]):
                i += 1
                value = tokens[i]
            seconds = _watch_seconds(value) if value else _DEFAULT_WATCH
        else:
            rest.append(token)
        i += 1
    return seconds, rest


def _watch_seconds(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        seconds = float("nan")
    if not 0 < seconds <= _LONGEST_WATCH:  # nan and inf too
        raise UsageError(
            f"--watch takes a number of seconds above 0 and up to {_LONGEST_WATCH:g} "
            f"(a day), not {value}"
        )
    return seconds


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def watch(seconds: float, draw: Callable[[], int], out: Any = None) -> int:
    """Call ``draw`` (which prints the table) every ``seconds`` until Ctrl-C;
    the terminal is left as it was found: cursor shown, exit code 0."""
    out = out or sys.stdout
    terminal = out.isatty()
    try:
        if terminal:
            out.write("\x1b[?25l")  # hide the cursor while redrawing
        while True:
            if terminal:
                out.write("\x1b[H\x1b[2J")  # home, clear
            out.flush()
            code = draw()
            out.write(f"\n{time.strftime('%H:%M:%S')}  every {seconds:g}s; Ctrl-C to stop\n")
            out.flush()
            if code != 0:
                return code
            time.sleep(seconds)
    except KeyboardInterrupt:
        return 0
    finally:
        if terminal:
            out.write("\x1b[?25h")
        try:
            out.write("\n")
            out.flush()
        except (BrokenPipeError, KeyboardInterrupt):
            pass
