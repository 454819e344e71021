"""Runs as text tables: cells formatted a whole column at a time (control
characters escaped: :func:`printable`), headed by the columns' printed names
(:mod:`.names`), fitted to the terminal by dropping the least telling
columns, rendered with tabulate; or exported whole as CSV / JSON."""

from __future__ import annotations

import csv
import datetime
import io
import json
import math
import re
import textwrap
from collections.abc import Mapping, Sequence
from itertools import repeat
from typing import TYPE_CHECKING, Any

from meticulous_hydra import layout

from .names import short_names
from .output import printable, safe_json

if TYPE_CHECKING:
    import pandas as pd

_MAX_CELL = 40
_MIN_CUT = 16  # a text column is cut down to this to fit, rather than dropped
# a number as the table prints it, or --group-by's "mean ± std" of numbers
_NUMBER = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:e[-+]?\d+)?|[-+]?inf|nan"
_NUMBER_TEXT = re.compile(rf"(?:{_NUMBER})(?: ± (?:{_NUMBER}))?")


def is_missing(value: Any) -> bool:
    import pandas as pd  # ~175 ms: loaded when a frame is built, not at import

    if value is None:
        return True
    if isinstance(value, (tuple, list, dict)):
        return False
    try:
        return bool(pd.isna(value))  # NaN, NaT, pd.NA
    except (TypeError, ValueError):
        return False


def number(value: float) -> str:
    """A float for a table: 4 significant digits, and still a float (``2.0``)."""
    if value == 0 or (1e-3 <= abs(value) < 1e6):
        text = f"{value:.4g}"
        # ".4g" writes 2.0 as "2" and 123456.0 as "1.235e+05"
        return text if "." in text or "e" in text else text + ".0"
    return f"{value:.3e}"


def duration(seconds: float) -> str:
    """``<10ms``, ``0.31s``, ``12.5s``, ``3m05s``, ``2h01m``."""
    if seconds < 0.01:
        return "<10ms"
    if seconds < 1:
        return f"{seconds:.2f}s"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def _cell_text(value: Any) -> str:
    if value is None or type(value).__name__ in ("NAType", "NaTType"):
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        if value != value:
            return ""
        return number(value) if math.isfinite(value) else str(value)
    if isinstance(value, tuple):
        return "[" + ", ".join(str(v) for v in value) + "]"
    return str(value).replace("\n", " ")


def _is_number(series: pd.Series) -> bool:
    import pandas as pd  # loaded already: a frame is being drawn

    dtype = series.dtype
    return pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype)


def _number_texts(cells: list[str]) -> bool:
    """Whether a column of text holds numbers only (``--group-by``'s
    statistics): aligned right, and never cut, as numbers are."""
    present = [c for c in cells if c]
    return bool(present) and all(_NUMBER_TEXT.fullmatch(c) for c in present)


def _cells(column: str, series: pd.Series, width: int) -> list[str]:
    """The column's values as table text: each distinct value formatted once."""
    import numpy as np  # with pandas (~175 ms): loaded when a frame is built, not at import
    import pandas as pd

    if isinstance(series.dtype, pd.DatetimeTZDtype):
        local = series.dt.tz_convert(datetime.datetime.now().astimezone().tzinfo)
        return local.dt.strftime("%Y-%m-%d %H:%M:%S").fillna("").tolist()
    uniques: pd.Index | np.ndarray
    try:
        codes, uniques = pd.factorize(series)
    except TypeError:  # an unhashable value, from a reader subclass
        codes, uniques = np.arange(len(series)), series.to_numpy(dtype=object)
    values = uniques.tolist()
    if column == "duration" and pd.api.types.is_numeric_dtype(series):
        texts = [duration(float(v)) for v in values]
    elif pd.api.types.is_integer_dtype(series) or pd.api.types.is_bool_dtype(series):
        texts = [str(v) for v in values]
    else:
        texts = [printable(_cell_text(v)) for v in values]
    texts = [t if len(t) <= width else t[: max(width - 1, 1)] + "…" for t in texts]
    texts.append("")  # code -1: a missing value
    return np.array(texts, dtype=object)[codes].tolist()


FAST_FORMATS = ("simple", "plain", "github")


def fast_table(
    columns: list[list[str]], heads: list[str], fmt: str, right: Sequence[bool] = ()
) -> str | None:
    """What ``tabulate(rows, heads, fmt, disable_numparse=True, colalign=...)``
    prints for the FAST_FORMATS, the columns flagged in ``right`` aligned
    right, built a column at a time: tabulate looks at every cell for its
    type and its invisible characters, which takes most of a second on 10,000
    runs. None when a cell is not plain ASCII (wide characters, terminal
    codes), which is left to tabulate."""
    if not all(h.isascii() and h.isprintable() for h in heads):
        return None
    widths = []
    for head, cells in zip(heads, columns, strict=True):
        joined = "".join(cells)
        if not (joined.replace("…", "").isascii() and joined.isprintable()):
            return None
        widths.append(max(len(head) + 2, max(map(len, cells), default=0)))
    # pad a column at a time, then join rows: all in C, no per-cell Python
    # no rows: tabulate aligns no header right
    flags = list(right) if any(columns) else []
    pads = [str.rjust if r else str.ljust for r in flags + [False] * (len(heads) - len(flags))]
    padded = [list(map(p, c, repeat(w))) for p, c, w in zip(pads, columns, widths, strict=True)]
    header = [p(h, w) for p, h, w in zip(pads, heads, widths, strict=True)]
    if fmt == "github":
        rows = ["| " + row + " |" for row in map(" | ".join, [header, *zip(*padded, strict=True)])]
        rows.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
        return "\n".join(rows)
    rows = list(map(str.rstrip, map("  ".join, [header, *zip(*padded, strict=True)])))
    if fmt == "simple":
        rows.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(rows)


def _kept_first(column: str) -> int:
    """Columns kept before all others when the terminal is narrow: the
    status, and issue 15's columns asked for (``--curve``) or about live runs
    (``progress``)."""
    return 0 if column == "status" or column == "progress" or column.startswith("curve(") else 1


def _hidden_note(hidden: list[str], heads: dict[str, str], width: int) -> str:
    named = ", ".join(heads[c] for c in hidden[:6])
    more = f" and {len(hidden) - 6} more" if len(hidden) > 6 else ""
    count = f"{len(hidden)} column{'s' if len(hidden) > 1 else ''}"
    note = f"({count} hidden to fit the terminal: {named}{more}; --columns NAME... or --all shows them)"
    return textwrap.fill(note, width=max(width, 40), break_on_hyphens=False)


def render_table(
    frame: pd.DataFrame,
    fmt: str,
    width_limit: int | None,
    *,
    index: bool = True,
    priority: Sequence[str] = (),
    names: Mapping[str, str] | None = None,
    fit: bool = True,
) -> str:
    """Tabulate ``frame`` (with its index unless ``index`` is off), headed by
    ``names`` (full name -> printed name; :func:`.names.short_names` of the
    columns by default). With ``width_limit``, cells are cut to 40 characters
    and, when ``fit``, the table is fitted to the width: long text cut to the
    room left, and the columns that don't fit dropped, saying which. Columns
    are kept in the order of ``priority`` (the status, ``--curve`` and
    ``progress`` first, columns not in it last, in the order shown); the
    first that does not fit and all after it go."""
    if index:
        index_name = str(frame.index.name or "id") if frame.index.nlevels == 1 else "run"
        ids = [
            printable(str(i) if not isinstance(i, tuple) else "/".join(map(str, i)))
            for i in frame.index
        ]
        first = [[i] for i in ids]
        first_heads = [index_name]
    else:
        first, first_heads = [[] for _ in range(len(frame))], []
    columns = [str(c) for c in frame.columns]
    cell_width = _MAX_CELL if width_limit and fit else 10**6  # --all: whole values
    cells = {c: _cells(c, frame[c], cell_width) for c in columns}
    heads = {c: printable((names or short_names(columns)).get(c, c)) for c in columns}

    # numbers aligned right, as pandas and a spreadsheet show them
    numbers = {c for c in columns if _is_number(frame[c]) or _number_texts(cells[c])}

    def draw(chosen: list[str]) -> str:
        head_row = [*first_heads, *(heads[c] for c in chosen)]
        right = [False] * len(first_heads) + [c in numbers for c in chosen]
        if fmt in FAST_FORMATS:
            by_column = [[r[0] for r in first]] if index else []
            text = fast_table([*by_column, *(cells[c] for c in chosen)], head_row, fmt, right)
            if text is not None:
                return text
        from tabulate import tabulate  # ~30 ms: only for the other formats

        rows = [[*first[i], *(cells[c][i] for c in chosen)] for i in range(len(frame))]
        align = ["right" if r else "left" for r in right]
        return tabulate(rows, headers=head_row, tablefmt=fmt, disable_numparse=True, colalign=align)

    if not width_limit or not fit:
        return draw(columns)
    # The widths of the fast formats, exactly (other formats: about), then
    # drawn to check, dropping the least telling column until it fits.
    sep = 3 if fmt == "github" else 2 if fmt in FAST_FORMATS else 4

    def width(col: str) -> int:
        return max([len(heads[col]) + 2, *(len(v) for v in cells[col])])

    first_width = max([0, *(len(h) + 2 for h in first_heads), *(len(r[0]) for r in first if r)])
    total = (first_width if index else -sep) + (4 if fmt == "github" else 0)
    rank = {c: i for i, c in enumerate(priority)}
    order = sorted(columns, key=lambda c: (_kept_first(c), rank.get(c, len(rank))))
    kept: list[str] = []
    for c in order:
        room = width_limit - total - sep
        if width(c) > room >= max(_MIN_CUT, len(heads[c]) + 2) and c not in numbers:
            # long text (an error line, a path): cut to the room left
            cells[c] = [t if len(t) <= room else t[: room - 1] + "…" for t in cells[c]]
        if total + sep + width(c) > width_limit:
            break
        kept.append(c)
        total += sep + width(c)
    while True:
        table = draw([c for c in columns if c in kept])
        if not kept or max(map(len, table.splitlines())) <= width_limit:
            break
        kept.pop()  # the least telling
    hidden = [c for c in order if c not in kept]
    return table + ("\n" + _hidden_note(hidden, heads, width_limit) if hidden else "")


def _export_value(value: Any) -> Any:
    """A cell as plain JSON data: times in ISO 8601, lists as lists, gaps as None."""
    if value is None or type(value).__name__ in ("NAType", "NaTType"):
        return None
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, tuple):
        return [_export_value(v) for v in value]
    if isinstance(value, float) and value != value:
        return None
    if hasattr(value, "item"):  # a numpy scalar
        return _export_value(value.item())
    return value


def export_records(frame: pd.DataFrame, *, index: bool = True) -> tuple[list[str], list[list[Any]]]:
    """Column names and rows of plain values, at full precision."""
    names = [str(c) for c in frame.columns]
    columns = [[_export_value(v) for v in frame[c].astype(object).tolist()] for c in frame.columns]
    if index:
        levels = list(frame.index.names) if frame.index.nlevels > 1 else [frame.index.name or "id"]
        values = frame.index.tolist() if frame.index.nlevels > 1 else [(i,) for i in frame.index]
        names = [str(n) for n in levels] + names
        columns = [[_export_value(v[k]) for v in values] for k in range(len(levels))] + columns
    return names, [list(row) for row in zip(*columns, strict=True)] if columns else []


def _csv_text(value: Any) -> Any:
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    return "" if value is None else repr(value) if isinstance(value, float) else value


def render(
    frame: pd.DataFrame, fmt: str, width_limit: int | None, *, index: bool = True, **table: Any
) -> str:
    """The text of ``frame`` in ``fmt``: a tabulate format (fitted to
    ``width_limit`` when given; ``table`` are :func:`render_table`'s
    ``priority``, ``names`` and ``fit``), or ``csv`` / ``json``, whose values
    are exact and whose columns have their full names."""
    if fmt == "csv":
        names, rows = export_records(frame, index=index)
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(names)
        writer.writerows([_csv_text(v) for v in row] for row in rows)
        return out.getvalue()
    if fmt == "json":
        names, rows = export_records(frame, index=index)
        records = [dict(zip(names, row, strict=True)) for row in rows]
        return safe_json(layout.dumps_json(layout.to_jsonable(records, strict=False))) + "\n"
    return render_table(frame, fmt, width_limit, index=index, **table) + "\n"
