"""Rows of experiments into one pandas DataFrame with the dtypes their values call for."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

from meticulous_hydra import layout

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


class TextId(str):
    """A custom (not numbered) run id in the index: a ``str`` that sorts after
    every numbered id, so that an index mixing ints and names still sorts
    (1, 2, 10, baseline) with plain ``sort_index()``."""

    __slots__ = ()

    # str's own comparisons take any object (NotImplemented for a non-str);
    # the stubs take str only, hence the ignores
    def __lt__(self, other: object) -> bool:
        return False if isinstance(other, int) else str.__lt__(self, other)  # type: ignore[operator]

    def __le__(self, other: object) -> bool:
        return False if isinstance(other, int) else str.__le__(self, other)  # type: ignore[operator]

    def __gt__(self, other: object) -> bool:
        return True if isinstance(other, int) else str.__gt__(self, other)  # type: ignore[operator]

    def __ge__(self, other: object) -> bool:
        return True if isinstance(other, int) else str.__ge__(self, other)  # type: ignore[operator]

    def __reduce__(self) -> tuple[Any, ...]:
        return (TextId, (str(self),))


def run_id(name: str) -> int | str:
    """The index value of the run in folder ``name``: an int for a numbered
    run (``"3"`` -> 3), the name itself (a :class:`TextId`) for a custom id.
    ``str(run_id(name)) == name`` always: a name like ``007`` stays text."""
    if layout.is_numbered(name) and str(int(name)) == name:
        return int(name)
    return TextId(name)


def id_index(names: Iterable[str]) -> pd.Index:
    """The ``id`` index of the runs in these folders: an object index holding
    ints for numbered runs and str for custom ids."""
    import pandas as pd

    return pd.Index([run_id(n) for n in names], name="id", dtype="object")


def hashable(value: Any) -> Any:
    """Lists become tuples (recursively) so that every cell can be hashed,
    grouped and counted; a dict inside a list becomes its JSON text."""
    if type(value) is list:
        flat = tuple(value)
        try:
            hash(flat)  # a list of plain values, by far the most common: done
        except TypeError:
            return tuple(hashable(v) for v in value)
        return flat
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
        # an int: the index (one id per folder name) is unique
        position = cast(int, frame.index.get_loc(first))
        if type(rows[position].get(name)) is not int:
            continue
        values = column.dropna()
        if (values == values.round()).all():
            found.append(name)
    return found


def frame_from_rows(rows: Sequence[Mapping[str, Any]], names: Sequence[str]) -> pd.DataFrame:
    """One row per experiment (``names`` are their folders), index ``id``
    (see :func:`id_index`); ints stay ints (nullable Int64 where some runs
    lack the key), bools stay bools, times are tz-aware."""
    import pandas as pd

    index = id_index(names)
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
    # cast: pandas-stubs 2.3 (the ones for Python 3.10) refuse None here
    values = series.astype(object).where(series.notna(), cast(Any, None))
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
    drop: Sequence[str],
    rows: Sequence[Mapping[str, Any]],
    names: Sequence[str],
) -> pd.DataFrame:
    """``frame`` without the runs of folders ``drop``, with ``rows`` (of
    folders ``names``) added, in id order."""
    import pandas as pd

    kept = frame[~frame.index.isin([run_id(n) for n in drop])]
    if not rows:
        return kept
    new = frame_from_rows(rows, names)
    combined = pd.concat([kept, new])
    replaced = frame.index[frame.index.isin(combined.index)]
    if len(replaced) == len(combined):
        combined = combined.reindex(index=replaced)  # same runs, changed: keep the order
    elif len(kept) and kept.index[-1] < min(new.index):
        pass  # new runs after the last one: already in order
    else:
        combined = combined.reindex(index=sorted(combined.index))
    combined = combined.reindex(columns=column_order(list(combined.columns)))
    for name in combined.columns:
        before = kept[name].dtype if name in kept.columns else None
        added = new[name].dtype if name in new.columns else None
        if before is None or added is None or before != added or combined[name].dtype != before:
            combined[name] = _settle(combined[name])
    combined.index = pd.Index(list(combined.index), name="id", dtype="object")
    return combined
