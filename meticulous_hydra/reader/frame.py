"""Rows of experiments into one pandas DataFrame with the dtypes their values
call for, built column by column from the values the JSON gave.

Each column's dtype follows from the kinds of its values alone (never from
the order of the rows, nor from how the frame was put together), so a frame
patched run by run (:func:`patch`, the reader's cache) equals the frame read
afresh, dtype for dtype:

- ints: ``int64``, ``Int64`` where some runs have no value; an int beyond
  int64 keeps the column ``object``, every value exact;
- ints and floats: ``float64``, unless an int is beyond 2**53, which float64
  would round: then ``object``;
- bools: ``bool``, ``boolean`` with gaps; text: pandas' string dtype;
- lists: tuples (hashable), dicts in lists their JSON text; anything mixed:
  ``object``, each value as read.

A missing value is a missing key, a JSON null or a NaN; a column with none
but missing values holds None.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from itertools import chain
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
            return _nested_tuple(value)
        return flat
    if type(value) is dict:
        return json.dumps(value, sort_keys=True)
    return value


def _nested_tuple(value: list[Any]) -> tuple[Any, ...]:
    """:func:`hashable` of a list holding lists or dicts, by a loop: a list
    as deep as JSON allows never exhausts the stack."""
    stack: list[tuple[Any, list[Any]]] = [(iter(value), [])]
    while True:
        items, out = stack[-1]
        for item in items:
            if type(item) is list:
                stack.append((iter(item), []))
                break
            out.append(json.dumps(item, sort_keys=True) if type(item) is dict else item)
        else:
            stack.pop()
            done = tuple(out)
            if not stack:
                return done
            stack[-1][1].append(done)


def column_order(names: Sequence[str]) -> list[str]:
    """Standard columns first, then config, summary, metadata and the rest,
    each group in the order first seen."""
    rest = [n for n in names if n not in STANDARD_COLUMNS]
    rest.sort(key=lambda n: _GROUP_ORDER.get(n.partition(".")[0], 4))
    return [*STANDARD_COLUMNS, *rest]


# -- one column from its values ---------------------------------------------------

_NONE = type(None)
_PLAIN = frozenset({_NONE, bool, int, float, str, tuple, list, dict})
# Within these an int is exact in a float64.
_FLOAT_INT = 2**53


@cache
def _string_dtype() -> Any:
    """The dtype pandas gives text (``str`` from pandas 3, else object)."""
    import pandas as pd

    return pd.Series(["text"]).dtype


def _dtype(tag: str) -> Any:
    import pandas as pd

    if tag in ("none", "object"):
        return pd.api.types.pandas_dtype(object)
    if tag == "str":
        return _string_dtype()
    return pd.api.types.pandas_dtype(tag)


def _decide(kinds: Collection[type], missing: bool) -> str:
    """The dtype (as a tag) of a column whose present values are of ``kinds``."""
    if not kinds:
        return "none"
    if len(kinds) == 1:
        (kind,) = kinds
        if kind is bool:
            return "boolean" if missing else "bool"
        if kind is int:
            return "Int64" if missing else "int64"
        if kind is float:
            return "float64"
        if kind is str:
            return "str"
        return "object"
    return "float64" if set(kinds) == {int, float} else "object"


def _is_nan(value: Any) -> bool:
    return type(value) is float and value != value


def _kinds(values: list[Any]) -> tuple[set[type], bool, list[Any]]:
    """The kinds of the present values, whether any is missing, and the
    values with every missing one (pandas' NA, NaT, a NaN among other
    kinds) made None."""
    kinds = set(map(type, values))
    if not kinds <= _PLAIN:
        import pandas as pd

        odd = [k for k in kinds if k not in _PLAIN]
        if any(pd.isna(v) for v in values if type(v) in odd):  # NA, NaT
            values = [None if type(v) in odd and pd.isna(v) else v for v in values]
            kinds = set(map(type, values))
    if float in kinds and len(kinds - {_NONE}) > 1 and any(map(_is_nan, values)):
        values = [None if _is_nan(v) else v for v in values]
        kinds = set(map(type, values))
    missing = _NONE in kinds
    kinds.discard(_NONE)
    return kinds, missing, values


def _make(values: list[Any], tag: str) -> Any:
    """The array of ``values`` in the dtype of ``tag``."""
    import numpy as np
    import pandas as pd

    if tag == "none":
        return np.full(len(values), None, dtype=object)
    if tag in ("bool", "int64", "float64"):
        return np.array(values, dtype=tag)
    if tag in ("boolean", "Int64"):
        return pd.array(values, dtype=cast(Any, tag))
    if tag == "str":
        return pd.array(values, dtype=_string_dtype())
    return np.fromiter(values, dtype=object, count=len(values))


def column(values: list[Any]) -> tuple[Any, str, list[int]]:
    """The array of one column, its dtype tag, and the positions of the ints
    in a float64 column (what the array no longer tells)."""
    kinds, missing, values = _kinds(values)
    if not kinds <= _PLAIN:  # a reader subclass's own objects: as pandas sees them
        return _inferred(values)
    tag = _decide(kinds, missing)
    if list in kinds or dict in kinds:  # from a reader subclass: flatten made the rest tuples
        values = [hashable(v) for v in values]
    ints: list[int] = []
    if tag == "float64" and int in kinds:
        ints = [i for i, v in enumerate(values) if type(v) is int]
        if not all(-_FLOAT_INT <= values[i] <= _FLOAT_INT for i in ints):
            tag, ints = "object", []
    try:
        return _make(values, tag), tag, ints
    except OverflowError:  # an int beyond int64
        return _make(values, "object"), "object", []


def _inferred(values: list[Any]) -> tuple[Any, str, list[int]]:
    import pandas as pd

    series = pd.Series(values, dtype=object).infer_objects()
    tag = str(series.dtype) if series.dtype.kind in "biuf" else "object"
    return series.array, tag, []


def _times(values: Iterable[Any]) -> Any:
    import pandas as pd

    series = pd.Series(list(values), dtype="object")
    return pd.to_datetime(series, utc=True, format="ISO8601", errors="coerce").array


# -- a whole frame, and what it takes to patch it --------------------------------


@dataclass
class Typed:
    """A frame of runs and what its dtypes no longer tell, which patching it
    as a fresh read would type it needs: the keys of each run's row (which
    columns exist, in which order) and which values of a float64 column were
    ints (whether it stays float64 once the floats are gone)."""

    frame: pd.DataFrame
    #: the distinct key orders of the rows
    keys: list[tuple[str, ...]] = field(default_factory=list)
    #: run folder name -> the index of its row's keys in ``keys``
    key_of: dict[str, int] = field(default_factory=dict)
    #: float64 column -> the run folders whose value is an int
    ints: dict[str, frozenset[str]] = field(default_factory=dict)


def _key_orders(rows: Sequence[Mapping[str, Any]]) -> tuple[list[tuple[str, ...]], list[int]]:
    seen: dict[tuple[str, ...], int] = {}
    of = []
    for row in rows:
        keys = tuple(row)
        at = seen.get(keys)
        if at is None:
            at = seen[keys] = len(seen)
        of.append(at)
    return list(seen), of


def _columns(
    rows: Sequence[Mapping[str, Any]], keys: list[tuple[str, ...]], of: list[int]
) -> dict[str, list[Any]]:
    """The values of each key, one per row (None where a row lacks it).

    Rows with the same keys (most of a root: a sweep's runs) are turned into
    columns at once, their values taken in order rather than looked up one
    by one (a lookup a value, each in another row, costs several times more)."""
    import numpy as np

    groups: dict[int, list[int]] = {}
    for position, at in enumerate(of):
        groups.setdefault(at, []).append(position)
    arrays: dict[str, Any] = {}
    for at, positions in groups.items():
        width = len(keys[at])
        # the group's values row by row into one array (fromiter keeps tuples
        # whole), then a column of it per key, laid into the rows' places
        flat = chain.from_iterable(rows[i].values() for i in positions)
        table = np.fromiter(flat, dtype=object, count=len(positions) * width)
        table = table.reshape(len(positions), width)
        where = np.array(positions)
        for j, key in enumerate(keys[at]):
            array = arrays.get(key)
            if array is None:
                array = arrays[key] = np.full(len(rows), None, dtype=object)
            array[where] = table[:, j]
    return {key: array.tolist() for key, array in arrays.items()}


def build(rows: Sequence[Mapping[str, Any]], names: Sequence[str]) -> Typed:
    """The frame of ``rows`` (of the run folders ``names``) and what patching
    it takes (:class:`Typed`)."""
    import pandas as pd

    keys, of = _key_orders(rows)
    columns = column_order(list(dict.fromkeys(chain.from_iterable(keys))))
    found = _columns(rows, keys, of)
    data: dict[str, Any] = {}
    ints: dict[str, frozenset[str]] = {}
    for name in columns:
        values = found.get(name) or [None] * len(rows)
        if name in _TIME_COLUMNS:
            data[name] = _times(values)
            continue
        data[name], _, positions = column(values)
        if positions:
            ints[name] = frozenset(names[i] for i in positions)
    frame = pd.DataFrame(data, index=id_index(names), columns=columns)
    return Typed(frame, keys, dict(zip(names, of, strict=True)), ints)


def frame_from_rows(rows: Sequence[Mapping[str, Any]], names: Sequence[str]) -> pd.DataFrame:
    """One row per experiment (``names`` are their folders), index ``id``
    (see :func:`id_index`), typed as the module says."""
    return build(rows, names).frame


def _part_kinds(series: pd.Series | None, rows: int, ints: int) -> tuple[set[type], bool]:
    """The kinds of a part of a column (its ``rows`` rows, ``ints`` of them
    ints in a float64 column) and whether a value is missing, read from its
    dtype where that tells."""
    import pandas as pd

    if series is None:
        return set(), rows > 0
    present = int(series.notna().sum())
    missing = present < rows
    kind = series.dtype.kind
    if not present:
        return set(), missing
    if kind == "b":
        return {bool}, missing
    if kind in "iu":
        return {int}, missing
    if kind == "f":
        return ({int} if ints else set()) | ({float} if present > ints else set()), missing
    if isinstance(series.dtype, pd.StringDtype):
        return {str}, missing
    kinds, more, _ = _kinds(series.tolist())
    return kinds, missing or more


def _python(series: pd.Series, ints: Collection[str], names: Sequence[str]) -> list[Any]:
    """The values of a column as the rows had them: None where missing, the
    ints of a float64 column ints again."""
    import pandas as pd

    values = series.astype(object).tolist()
    missing = pd.isna(series).to_numpy().tolist()
    out = [None if gap else v for v, gap in zip(values, missing, strict=True)]
    if ints:
        out = [
            int(v) if n in ints and v is not None else v for v, n in zip(out, names, strict=True)
        ]
    return out


def patch(
    typed: Typed,
    drop: Collection[str],
    rows: Sequence[Mapping[str, Any]],
    names: Sequence[str],
) -> Typed:
    """``typed`` without the runs of folders ``drop``, with ``rows`` (of
    folders ``names``, replacing any already there) added: the frame a fresh
    read of the runs now there gives, in id order."""
    import pandas as pd

    frame = typed.frame
    gone = {run_id(n) for n in chain(drop, names)}
    kept = frame[~frame.index.isin(list(gone))] if gone else frame
    new = build(rows, names)
    if kept.empty:
        return new
    kept_names = [str(i) for i in kept.index]
    # every run's keys, and the columns they make, in id order
    keys = list(typed.keys)
    where = {k: i for i, k in enumerate(keys)}
    key_of = {n: typed.key_of[n] for n in kept_names}
    for name in names:
        own = new.keys[new.key_of[name]]
        if own not in where:
            where[own] = len(keys)
            keys.append(own)
        key_of[name] = where[own]
    combined = pd.concat([kept, new.frame]) if rows else kept
    order = sorted(range(len(combined)), key=list(combined.index).__getitem__)
    if order != list(range(len(combined))):
        combined = combined.take(order)
    all_names = [str(i) for i in combined.index]
    used = [keys[at] for at in dict.fromkeys(key_of[n] for n in all_names)]
    columns = column_order(list(dict.fromkeys(chain.from_iterable(used))))
    combined = combined.reindex(columns=columns)
    kept_set = set(kept_names)
    ints: dict[str, frozenset[str]] = {}
    for name in columns:
        if name in _TIME_COLUMNS:
            continue
        old = kept[name] if name in kept.columns else None
        added = new.frame[name] if rows and name in new.frame.columns else None
        old_ints = typed.ints.get(name, frozenset()) & kept_set
        new_ints = new.ints.get(name, frozenset())
        k1, m1 = _part_kinds(old, len(kept), len(old_ints))
        k2, m2 = _part_kinds(added, len(rows), len(new_ints))
        tag = _decide(k1 | k2, m1 or m2)
        final = _dtype(tag)
        parts = [p for p in (old, added) if p is not None]
        if combined[name].dtype != final:
            fits = False
        elif tag in ("none", "object"):  # values as read, None for missing: both parts had it
            fits = len(parts) == (2 if rows else 1) and all(p.dtype == final for p in parts)
        else:  # a float64 holding ints is exact only where both parts kept track of them
            fits = int not in k1 | k2 or all(p.dtype == final for p in parts)
        if fits:
            if old_ints or new_ints:
                ints[name] = old_ints | new_ints
            continue
        values = _python(old, old_ints, kept_names) if old is not None else [None] * len(kept)
        values += [row.get(name) for row in rows]
        if order != list(range(len(values))):
            values = [values[i] for i in order]
        array, _, positions = column(values)
        combined[name] = array
        if positions:
            ints[name] = frozenset(all_names[i] for i in positions)
    combined.index = pd.Index([run_id(n) for n in all_names], name="id", dtype="object")
    at = {keys.index(k): i for i, k in enumerate(used)}
    return Typed(combined, used, {n: at[key_of[n]] for n in all_names}, ints)
