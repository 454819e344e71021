"""Rows of experiments into one pandas DataFrame with the dtypes their values call for."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

STANDARD_COLUMNS = (
    "status",
    "status_detail",
    "start_time",
    "end_time",
    "duration",
    "description",
    "git.sha",
    "git.branch",
    "git.dirty",
    "overrides",
    "sweep.id",
    "sweep.job_num",
    "read_error",
)
_GROUP_ORDER = {"config": 1, "summary": 2, "metadata": 3}
_TIME_COLUMNS = ("start_time", "end_time")


def hashable(value: Any) -> Any:
    """Lists become tuples (recursively) so that every cell can be hashed,
    grouped and counted; a dict inside a list becomes its JSON text."""
    if type(value) is list:
        return tuple(hashable(v) for v in value)
    if type(value) is dict:
        return json.dumps(value, sort_keys=True)
    return value


def column_order(names: Sequence[str]) -> list[str]:
    """Standard columns first, then config, summary, metadata and the rest,
    each group in the order first seen."""
    rest = [n for n in names if n not in STANDARD_COLUMNS]
    rest.sort(key=lambda n: _GROUP_ORDER.get(n.partition(".")[0], 4))
    return [*STANDARD_COLUMNS, *rest]


def _retype(series: pd.Series) -> pd.Series:
    """An object column as pandas left it: bools with gaps become ``boolean``,
    numbers mixed with gaps numeric, lists tuples (hashable)."""
    values = series.dropna()
    if values.empty:
        return series
    kinds = set(map(type, values))
    if kinds == {bool}:
        return series.astype("boolean")
    if kinds == {int}:
        return series.astype("Int64")
    if kinds == {int, float}:
        return series.astype("float64")
    if list in kinds or dict in kinds:
        return series.map(hashable, na_action="ignore")
    return series


def _int_columns_with_gaps(frame: pd.DataFrame, rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """Float columns that hold ints in every row that has the key."""
    found = []
    for name in frame.columns:
        column = frame[name]
        if column.dtype != "float64" or not column.hasnans:
            continue
        first = column.first_valid_index()
        if first is None:
            continue
        position = frame.index.get_loc(first)
        if type(rows[position].get(name)) is not int:
            continue
        values = column.dropna()
        if (values == values.round()).all():
            found.append(name)
    return found


def frame_from_rows(rows: Sequence[Mapping[str, Any]], ids: Sequence[Any]) -> pd.DataFrame:
    """One row per experiment, index ``id``; ints stay ints (nullable Int64
    where some runs lack the key), bools stay bools, times are tz-aware."""
    import pandas as pd

    index = pd.Index(list(ids), name="id", dtype="object")
    if rows:
        frame = pd.DataFrame.from_records(list(rows), index=index)
    else:
        frame = pd.DataFrame(index=index)
    frame = frame.reindex(columns=column_order(list(frame.columns)))
    for name in _int_columns_with_gaps(frame, rows):
        frame[name] = frame[name].astype("Int64")
    for name in frame.columns:
        if frame[name].dtype == "object":
            frame[name] = _retype(frame[name])
    for name in _TIME_COLUMNS:
        frame[name] = pd.to_datetime(frame[name], utc=True, format="ISO8601", errors="coerce")
    return frame


def _settle(series: pd.Series) -> pd.Series:
    """Re-derive the dtype of a column from its Python values (after a concat
    mixed parts with different dtypes or gaps)."""
    import pandas as pd

    if isinstance(series.dtype, pd.DatetimeTZDtype):
        return series
    values = series.astype(object).where(series.notna(), None)
    present = values.dropna()
    kinds = set(map(type, present))
    gaps = len(present) < len(values)
    if kinds == {bool}:
        return values.astype("boolean" if gaps else "bool")
    if kinds == {int}:
        return values.astype("Int64" if gaps else "int64")
    if kinds and kinds <= {int, float}:
        return values.astype("float64")
    if kinds == {str}:
        return values.astype("str")
    return values


def patch_frame(
    frame: pd.DataFrame,
    drop: Sequence[Any],
    rows: Sequence[Mapping[str, Any]],
    ids: Sequence[Any],
    sort_key: Any,
) -> pd.DataFrame:
    """``frame`` without the ``drop`` ids, with ``rows`` added, in id order."""
    import pandas as pd

    kept = frame[~frame.index.isin(list(drop))]
    if not rows:
        return kept
    new = frame_from_rows(rows, ids)
    combined = pd.concat([kept, new])
    replaced = frame.index[frame.index.isin(combined.index)]
    if len(replaced) == len(combined):
        combined = combined.reindex(index=replaced)  # same runs, changed: keep the order
    elif len(kept) and sort_key(str(kept.index[-1])) < min(map(sort_key, ids)):
        pass  # new runs after the last one: already in order
    else:
        combined = combined.reindex(index=sorted(combined.index, key=sort_key))
    combined = combined.reindex(columns=column_order(list(combined.columns)))
    for name in combined.columns:
        before = kept[name].dtype if name in kept.columns else None
        added = new[name].dtype if name in new.columns else None
        if before is None or added is None or before != added or combined[name].dtype != before:
            combined[name] = _settle(combined[name])
    combined.index = pd.Index(list(combined.index), name="id", dtype="object")
    return combined
