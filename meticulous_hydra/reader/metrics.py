"""metrics.jsonl read back: every run's logged values as one long DataFrame
(:func:`load_metrics`), the last line of a live run read from the end of the
file, and a run's curve as a unicode sparkline.

The long shape (``id``, ``step``, ``time``, ``key``, ``value``) is what a
learning-curve plot wants and joins with ``load_experiments()`` on ``id``; no
line is ever sampled away.
"""

from __future__ import annotations

import json
import math
import os
import stat
import warnings
from collections.abc import Iterable, Sequence
from itertools import chain
from pathlib import Path
from typing import TYPE_CHECKING, Any

from meticulous_hydra import layout
from meticulous_hydra.exceptions import ReadWarning

from .frame import run_id  # the id as load_experiments' index holds it, so the two join

if TYPE_CHECKING:
    import numpy
    import pandas as pd
    from pandas.api.extensions import ExtensionArray

COLUMNS = ("id", "step", "time", "key", "value")
_RESERVED = ("step", "time")
# How much of the end of metrics.jsonl a live run's table row reads at first.
_TAIL_BYTES = 64 * 1024
_TAIL_MAX = 16 * 1024 * 1024


def read_records(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The lines of one metrics.jsonl as dicts; a line cut short by a crash,
    or anything else that is not a JSON object, is skipped. A metrics.jsonl
    that is no regular file (a FIFO, a device) has none, with a ReadWarning."""
    try:
        body = layout.read_file(path, limit=None).strip()
    except FileNotFoundError:
        return []
    except OSError as e:
        warnings.warn(f"{path}: {e.strerror or e}; its metrics are left out", ReadWarning, 2)
        return []
    if not body:
        return []
    try:
        # one parse of the whole file as a JSON array: much faster than line by line
        records = json.loads(b"[" + body.replace(b"\n", b",") + b"]")
    except ValueError:
        records = []
        for line in body.splitlines():
            try:
                records.append(json.loads(line))
            except ValueError:
                continue
    if set(map(type, records)) != {dict}:
        records = [r for r in records if type(r) is dict]
    return records


def _flat(value: Any, prefix: str, out: dict[str, Any]) -> None:
    for k, v in value.items():
        if type(v) is dict:
            _flat(v, f"{prefix}.{k}", out)
        else:
            out[f"{prefix}.{k}"] = v


def _columns(records: list[dict[str, Any]]) -> dict[str, Any]:
    """key -> numpy array of its values (NaN, or None, where a line lacks the
    key); nested dicts are flattened to dotted keys."""
    import numpy as np

    keys = [k for k in dict.fromkeys(chain.from_iterable(records)) if k not in _RESERVED]
    out: dict[str, Any] = {}
    for key in keys:
        values = [r.get(key) for r in records]
        try:
            out[key] = np.array(values, dtype="float64")  # None -> NaN
            continue
        except (TypeError, ValueError):
            pass
        if dict in set(map(type, values)):
            flat = []
            for record in records:
                row: dict[str, Any] = {}
                if type(record.get(key)) is dict:
                    _flat(record[key], key, row)
                elif key in record:
                    row[key] = record[key]
                flat.append(row)
            out.update(_columns(flat))
        else:
            out[key] = np.array(values, dtype=object)
    return out


class _Long:
    """Chunks of the long frame, gathered run by run and joined once."""

    def __init__(self) -> None:
        import numpy as np

        self.np = np
        self.rows: list[Any] = []  # positions into the per-line arrays
        self.keys: list[Any] = []
        self.values: list[Any] = []
        self.line_ids: list[Any] = []
        self.steps: list[Any] = []
        self.times: list[Any] = []
        self.roots: list[Any] = []
        self.numeric = True
        self.offset = 0

    def add(self, run_id: Any, root: str, records: list[dict[str, Any]]) -> None:
        np = self.np
        n = len(records)
        if not n:
            return
        self.line_ids.append(np.full(n, run_id, dtype=object))
        self.roots.append(np.full(n, root, dtype=object))
        self.steps += [r.get("step") for r in records]
        self.times += [r.get("time") for r in records]
        for key, array in _columns(records).items():
            self.numeric = self.numeric and array.dtype != object
            positions = np.arange(n)
            if array.dtype == object:
                present = np.array([key in r or _nested(r, key) for r in records])
            elif np.isnan(array).any():
                # NaN is either a logged NaN (written as null: a value) or a missing key
                present = np.array([key in r or _nested(r, key) for r in records])
            else:
                present = None
            if present is not None:
                positions, array = positions[present], array[present]
            self.rows.append(positions + self.offset)
            self.keys.append(np.full(len(positions), key, dtype=object))
            self.values.append(array)
        self.offset += n

    def frame(self, with_root: bool) -> pd.DataFrame:
        import pandas as pd

        np = self.np
        if not self.rows:
            empty = pd.DataFrame({c: pd.Series(dtype="object") for c in COLUMNS})
            empty["step"] = empty["step"].astype("Int64")
            empty["time"] = pd.to_datetime(empty["time"], utc=True)
            empty["value"] = empty["value"].astype("float64")
            return empty.reindex(columns=["root", *COLUMNS]) if with_root else empty
        rows = np.concatenate(self.rows)
        steps: ExtensionArray | numpy.ndarray = pd.array(self.steps, dtype="object")
        try:
            steps = pd.array(self.steps, dtype="Int64")
        except (TypeError, ValueError):
            pass  # steps that are not integers stay as they were logged
        if not pd.isna(steps).any() and isinstance(steps, pd.arrays.IntegerArray):
            steps = steps.to_numpy(dtype="int64")
        times = _times(self.times)
        values = np.concatenate(
            self.values if self.numeric else [v.astype(object) for v in self.values]
        )
        data = {
            "id": np.concatenate(self.line_ids)[rows],
            "step": steps[rows],
            "time": times.take(rows).reset_index(drop=True),
            "key": np.concatenate(self.keys),
            "value": values,
        }
        if with_root:
            data = {"root": np.concatenate(self.roots)[rows], **data}
        return pd.DataFrame(data)


def _nested(record: dict[str, Any], dotted: str) -> bool:
    """Whether a nested path ``a.b.c`` exists in ``record``."""
    value: Any = record
    for part in dotted.split("."):
        if type(value) is not dict or part not in value:
            return False
        value = value[part]
    return True


def wide_frame(records: list[dict[str, Any]]) -> pd.DataFrame:
    """One run's records one row per line, a column per key; ``time`` a UTC
    datetime, as in the long shape."""
    import pandas as pd  # ~175 ms: only when a frame is asked for

    frame = pd.DataFrame(records)
    if "time" in frame.columns:
        frame["time"] = _times(frame["time"])
    return frame


def _times(values: Any) -> pd.Series:
    """ISO 8601 texts as UTC datetimes (NaT where a line has none)."""
    import pandas as pd

    return pd.to_datetime(
        pd.Series(values, dtype="object"), utc=True, format="ISO8601", errors="coerce"
    )


def frame_of(records: list[dict[str, Any]], name: str) -> pd.DataFrame:
    """One run's records in the long shape."""
    long = _Long()
    long.add(run_id(name), "", records)
    return long.frame(with_root=False)


def runs_frame(runs: Iterable[tuple[str, str, str]], *, with_root: bool) -> pd.DataFrame:
    """The long frame of the metrics of ``runs``, given as (root, id, folder)."""
    long = _Long()
    for root, name, folder in runs:
        long.add(run_id(name), root, read_records(os.path.join(folder, layout.METRICS)))
    return long.frame(with_root=with_root)


# -- the tail of a live run --------------------------------------------------------


def last_record(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The last complete line of a metrics.jsonl, read from the end of the
    file: the cost does not grow with the file. None for no regular file."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)  # a FIFO never blocks
    except OSError:
        return None
    with open(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        return _last_line(f)


def _last_line(f: Any) -> dict[str, Any] | None:
    end = f.seek(0, os.SEEK_END)
    size = _TAIL_BYTES
    while True:
        start = max(0, end - size)
        f.seek(start)
        lines = f.read(end - start).split(b"\n")
        if start > 0:
            lines = lines[1:]  # the first piece may be the end of a longer line
        for line in reversed(lines):
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except ValueError:
                continue  # a line still being written, or cut short
            if type(value) is dict:
                return value
        if start == 0 or size >= _TAIL_MAX:
            return None
        size *= 4


# -- sparklines ------------------------------------------------------------------------

BARS = "▁▂▃▄▅▆▇█"


def sparkline(values: Sequence[float], width: int) -> str:
    """``values`` as at most ``width`` bars, each the mean of its share of the
    points, scaled between the run's own minimum and maximum. Missing and
    non-finite points are skipped."""
    points = [float(v) for v in values if _finite(v)]
    if not points or width <= 0:
        return ""
    if len(points) > width:
        buckets = []
        for i in range(width):
            part = points[i * len(points) // width : (i + 1) * len(points) // width]
            buckets.append(sum(part) / len(part))
        points = buckets
    low, high = min(points), max(points)
    if high == low:
        return BARS[len(BARS) // 2] * len(points)
    scale = (len(BARS) - 1) / (high - low)
    return "".join(BARS[round((p - low) * scale)] for p in points)


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def curve(folder: str | os.PathLike[str], key: str) -> list[float]:
    """The logged values of ``key`` (dotted for nested) in one run, in order."""
    path = Path(folder) / layout.METRICS
    out = []
    for record in read_records(path):
        value = record.get(key)
        if value is None and "." in key:
            value = record
            for part in key.split("."):
                value = value.get(part) if type(value) is dict else None
        if value is not None:
            out.append(value)
    return out
