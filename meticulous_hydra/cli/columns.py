"""Which columns the terminal table shows by default, most telling first.

The table drops columns from the end of this list when the terminal is too
narrow, so the order is the priority: what tells the runs shown apart comes
first (the keys swept, then the other config that differs, then the results
and the error line), and what tells them apart by nothing comes last: config
that follows from the swept keys (``model.depth`` when ``model=`` is swept, a
``run_name`` made of swept values), values naming each run's own folder,
start time, duration.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from meticulous_hydra import layout

if TYPE_CHECKING:
    import pandas as pd

_CHOICES = "metadata.hydra.choices."
# statuses whose STATUS detail the table shows: why it failed, or why SLURM
# stopped it (its time limit, a requeue)
_TOLD = (layout.ERROR, layout.DIED, layout.TIMEOUT, layout.REQUEUED)


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


def names_own_folder(frame: pd.DataFrame, column: str) -> bool:
    """Whether every value of ``column`` is text naming its run's own folder
    (``.../experiments/7/model.pt`` in run 7): such values differ between runs
    without telling them apart."""
    values = frame[column]
    first = values.first_valid_index()
    if first is None:
        return False
    first_id = first[-1] if isinstance(first, tuple) else first
    value = values.loc[first]
    if not isinstance(value, str) or str(first_id) not in value.split(os.sep):
        return False  # the cheap test, before looking at every run
    ids = frame.index.get_level_values(-1)
    return all(
        isinstance(v, str) and str(i) in v.split(os.sep)
        for v, i in zip(values.tolist(), ids, strict=True)
        if v is not None and v == v
    )


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


def default_columns(frame: pd.DataFrame) -> list[str]:
    """The table's columns for ``frame`` (the runs shown), most telling first."""
    several = len(frame) > 1
    config = [c for c in frame.columns if c.startswith("config.")]
    changing = [c for c in config if several and varying(frame, c)]
    swept = [c for c in swept_columns(frame) if several and varying(frame, c)]
    own_folder = [c for c in changing if c not in swept and names_own_folder(frame, c)]
    follows = follows_from(frame, swept)
    derived = [c for c in changing if c not in swept and c not in own_folder and follows(c)]
    others = [c for c in changing if c not in {*swept, *own_folder, *derived}]
    results = [c for c in frame.columns if c.startswith("summary.") and frame[c].notna().any()]
    cols = ["status", *swept, *others, *results]
    if frame["status"].isin(_TOLD).any():
        cols.append("status_detail")
    if frame["description"].fillna("").astype(str).str.len().gt(0).any():
        cols.append("description")
    if "tags" in frame.columns and frame["tags"].map(bool).any():
        cols.append("tags")  # issue 15's tags, once a run shown has one
    if "attempts" in frame.columns and (frame["attempts"] > 1).any():
        cols.append("attempts")  # issue 14: a sweep job run again by `meticulous rerun`
    restarts = "metadata.restarts"
    if restarts in frame.columns and (frame[restarts].fillna(0) > 0).any():
        cols.append(restarts)  # issue 22: a job that SLURM requeued, resumed in its folder
    return [*cols, *derived, *own_folder, "start_time", "duration"]
