"""Which columns the terminal table shows by default, and which it keeps
when the terminal is too narrow for all of them.

The columns are shown in this order: the status, the keys that tell the runs
shown apart (the keys swept, then the other config that differs), the results
(those most runs have first), the error line of failed runs, the description,
tags and attempts; then what tells the runs apart by nothing: config that
follows from the swept keys (``model.depth`` when ``model=`` is swept, a
``run_name`` made of swept values), values naming each run's own place (its
folder, its Hydra output dir, the time it started:
``logs/runs/2024-05-01_12-00-00/ckpt``), start time, duration.

A narrow terminal keeps them in a slightly different order, so that its
first screen answers "which run was best": the status, the leading results
(one that every run with results has, or one per program in a root of
several), the keys, the error line, the other results, and the rest as
shown; what must go goes from that end (:func:`default_layout`).
"""

from __future__ import annotations

import datetime
import os
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from meticulous_hydra import layout

if TYPE_CHECKING:
    import pandas as pd

_CHOICES = "metadata.hydra.choices."
# statuses whose STATUS detail the table shows: why it failed, or why SLURM
# stopped it (its time limit, a requeue)
_TOLD = (layout.ERROR, layout.DIED, layout.TIMEOUT, layout.REQUEUED)
_OUTPUT_DIR = "metadata.hydra.output_dir"
#: At most this many leading results (see :func:`leading_results`).
LEADING_RESULTS = 3
# a date and time of day, as programs put them in folder names:
# 2024-05-01_12-00-00, 20240501-120000, 2024-05-01T12:00:00.123456
_STAMP = re.compile(
    r"(?<!\d)(\d{4})-?(\d{2})-?(\d{2})[T _-]?(\d{2})[:-]?(\d{2})(?:[:-]?(\d{2}))?"
    r"(?:[.,_-]?\d{1,9})?(?!\d)"
)
# a run's own time, written in whatever time zone: within this of its start
_OWN_TIME = datetime.timedelta(hours=38)


def varying(frame: pd.DataFrame, column: str) -> bool:
    """Two or more different values among the runs, a gap counting as a value
    (a key present in only some runs tells them apart)."""
    values = frame[column]
    try:
        return values.nunique(dropna=False) > 1
    except TypeError:
        return values.astype(str).nunique() > 1


def swept_columns(frame: pd.DataFrame) -> list[str]:
    """The columns of the keys the runs' overrides set (``optimizer.lr=0.1``,
    ``+seed=3``, or ``model=resnet`` for a Hydra config group), in the order
    first seen."""
    keys: dict[str, None] = {}
    for overrides in frame["overrides"].dropna().unique():
        for override in overrides if isinstance(overrides, tuple) else ():
            key = str(override).partition("=")[0].lstrip("+~")
            if key and not key.startswith("hydra") and key != layout.OPT_IN_GROUP:
                keys[key] = None
    found = []
    for key in keys:
        for column in (f"config.{key}", f"{_CHOICES}{key}"):
            if column in frame.columns:
                found.append(column)
                break
    return found


def _own_time(match: re.Match[str], start: datetime.datetime | None) -> bool:
    if start is None:
        return False
    try:
        year, month, day, hour, minute, second = (int(g or 0) for g in match.groups())
        stamp = datetime.datetime(year, month, day, hour, minute, second)
    except ValueError:  # not a date after all: 9999-99-99
        return False
    return abs(stamp - start) <= _OWN_TIME


def own_place(value: str, run: str, output_dir: Any, start: datetime.datetime | None) -> str:
    """``value`` with what names its run's own place written as ``<own>``
    (its Hydra output dir, a path component that is its id) and ``<time>``
    (a date and time of day near its start); ``value`` itself when it names
    nothing of its own."""
    if isinstance(output_dir, str) and len(output_dir) > 1 and output_dir in value:
        value = value.replace(output_dir, "<own>")
    if run in value.split(os.sep):
        value = os.sep.join("<own>" if part == run else part for part in value.split(os.sep))
    if any(c.isdigit() for c in value):
        value = _STAMP.sub(lambda m: "<time>" if _own_time(m, start) else m.group(0), value)
    return value


def names_own_place(frame: pd.DataFrame, column: str) -> bool:
    """Whether every value of ``column`` is text naming its run's own place
    (see :func:`own_place`), the same for all once that is left out: the
    values differ between runs (``experiments/7/model.pt``,
    ``logs/runs/2024-05-01_12-00-00``) without telling them apart."""
    values = frame[column].tolist()
    outputs = frame[_OUTPUT_DIR].tolist() if _OUTPUT_DIR in frame.columns else None
    starts = frame["start_time"] if "start_time" in frame.columns else None
    ids = frame.index.get_level_values(-1)
    found: set[str | None] = set()
    for position, value in enumerate(values):
        if not isinstance(value, str):
            if value is None or type(value).__name__ == "NAType" or value != value:
                continue  # a gap
            return False
        start = starts.iloc[position] if starts is not None else None
        if start is not None and start == start:
            start = start.tz_convert(None).to_pydatetime()
        outputs_dir = outputs[position] if outputs is not None else None
        own = own_place(value, str(ids[position]), outputs_dir, start if start == start else None)
        found.add(None if own == value else own)
        if None in found or len(found) > 1:
            return False  # at the first or second run, mostly
    return len(found) == 1


def _codes(values: pd.Series) -> Any:
    import pandas as pd  # ~175 ms: loaded when a frame is built, not at import

    try:
        return pd.factorize(values, use_na_sentinel=False)[0]
    except TypeError:
        return pd.factorize(values.astype(str), use_na_sentinel=False)[0]


def _combine(codes: list[Any]) -> Any:
    import numpy as np  # with pandas: only once a frame exists

    group = np.zeros(len(codes[0]), dtype=np.int64)
    for c in codes:
        group = group * (int(c.max()) + 1) + c
    return group


def follows_from(frame: pd.DataFrame, keys: list[str]) -> Callable[[str], bool]:
    """A test of whether a column's value follows from some of ``keys``: it
    is the same in all runs that share the values of one key, or of all keys
    but one (``model.depth`` follows from ``model``, ``run_name`` from
    ``model`` and ``lr`` whatever the seed). Groupings in which every run is
    alone prove nothing and are not used."""
    import numpy as np  # with pandas: only once a frame exists

    codes = [_codes(frame[k]) for k in keys]
    subsets = [[i] for i in range(len(keys))]
    if len(keys) > 2:
        subsets += [[j for j in range(len(keys)) if j != i] for i in range(len(keys))]
    groupings = []
    for subset in subsets:
        group = _combine([codes[i] for i in subset])
        count = len(np.unique(group))
        if count < len(frame):
            groupings.append((group, count))

    def test(column: str) -> bool:
        if not groupings:
            return False
        values = _codes(frame[column])
        return any(len(np.unique(_combine([group, values]))) == count for group, count in groupings)

    return test


def leading_results(frame: pd.DataFrame, results: list[str]) -> list[str]:
    """The fewest results (at most LEADING_RESULTS) that give every run
    shown with a result one: the one most runs have, then the one most of
    the others have (a root of two programs: one of each)."""
    had = {c: set(frame.index[frame[c].notna().to_numpy()]) for c in results}
    left = set().union(*had.values()) if had else set()
    lead: list[str] = []
    while left and len(lead) < LEADING_RESULTS:
        best = max(results, key=lambda c: len(had[c] & left))  # the first of equals
        lead.append(best)
        left -= had[best]
    return lead


def default_layout(frame: pd.DataFrame) -> tuple[list[str], list[str]]:
    """The table's columns for ``frame`` (the runs shown) in the order they
    are shown, and in the order they are kept when not all fit."""
    several = len(frame) > 1
    config = [c for c in frame.columns if c.startswith("config.")]
    changing = [c for c in config if several and varying(frame, c)]
    swept = [c for c in swept_columns(frame) if several and varying(frame, c)]
    own_place = [c for c in changing if c not in swept and names_own_place(frame, c)]
    follows = follows_from(frame, swept)
    derived = [c for c in changing if c not in swept and c not in own_place and follows(c)]
    others = [c for c in changing if c not in {*swept, *own_place, *derived}]
    results = [c for c in frame.columns if c.startswith("summary.")]
    # those most runs have first: in a root of two programs, each one's own
    # results are empty for the other's runs
    counts = {c: int(frame[c].notna().sum()) for c in results}
    results = sorted((c for c in results if counts[c]), key=lambda c: -counts[c])
    lead = leading_results(frame, results)
    results = [*lead, *(c for c in results if c not in lead)]
    keys = [*swept, *others]
    error = ["status_detail"] if frame["status"].isin(_TOLD).any() else []
    marks = []
    if frame["description"].fillna("").astype(str).str.len().gt(0).any():
        marks.append("description")
    if "tags" in frame.columns and frame["tags"].map(bool).any():
        marks.append("tags")  # issue 15's tags, once a run shown has one
    if "attempts" in frame.columns and (frame["attempts"] > 1).any():
        marks.append("attempts")  # issue 14: a sweep job run again by `meticulous rerun`
    restarts = "metadata.restarts"
    if restarts in frame.columns and (frame[restarts].fillna(0) > 0).any():
        marks.append(restarts)  # issue 22: a job that SLURM requeued, resumed in its folder
    rest = [*marks, *derived, *own_place, "start_time", "duration"]
    shown = ["status", *keys, *results, *error, *rest]
    kept = ["status", *lead, *keys, *error, *results[len(lead) :], *rest]
    return shown, kept


def default_columns(frame: pd.DataFrame) -> list[str]:
    """The table's columns for ``frame`` (the runs shown), in the order shown."""
    return default_layout(frame)[0]
