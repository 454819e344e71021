"""Runs as text tables: cells formatted a whole column at a time, fitted to
the terminal by dropping the least important columns, rendered with tabulate
(or as CSV / JSON)."""

from __future__ import annotations

import datetime
import math
import textwrap
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

_MAX_CELL = 40


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
    if value == 0 or (1e-3 <= abs(value) < 1e6):
        return f"{value:.4g}"
    return f"{value:.3e}"


def _duration(seconds: float) -> str:
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


def _cells(column: str, series: pd.Series, width: int) -> list[str]:
    """The column's values as table text, whole columns at a time."""
    import pandas as pd  # ~175 ms: loaded when a frame is built, not at import

    if isinstance(series.dtype, pd.DatetimeTZDtype):
        local = series.dt.tz_convert(datetime.datetime.now().astimezone().tzinfo)
        texts = local.dt.strftime("%Y-%m-%d %H:%M:%S").fillna("").tolist()
    elif column == "duration" and pd.api.types.is_numeric_dtype(series):
        texts = ["" if v != v else _duration(float(v)) for v in series.astype("float64").tolist()]
    elif series.dtype == "float64":
        texts = [
            "" if v != v else number(v) if math.isfinite(v) else str(v) for v in series.tolist()
        ]
    elif pd.api.types.is_integer_dtype(series) or pd.api.types.is_bool_dtype(series):
        texts = series.astype("string").fillna("").tolist()
    else:
        texts = [_cell_text(v) for v in series.tolist()]
    return [t if len(t) <= width else t[: max(width - 1, 1)] + "…" for t in texts]


def _header(column: str, strip: str | None) -> str:
    return column[len(strip) :] if strip and column.startswith(strip) else column


def render_table(frame: pd.DataFrame, fmt: str, width_limit: int | None) -> str:
    """Tabulate ``frame`` (index included); with ``width_limit``, shorten
    cells and drop the columns that don't fit, saying which."""
    from tabulate import tabulate  # ~30 ms: only when a table is drawn

    index_name = str(frame.index.name or "id") if frame.index.nlevels == 1 else "run"
    index = [str(i) if not isinstance(i, tuple) else "/".join(map(str, i)) for i in frame.index]
    columns = [str(c) for c in frame.columns]
    cell_width = _MAX_CELL if width_limit else 10**6
    cells = {c: _cells(c, frame[c], cell_width) for c in columns}
    headers = {c: _header(c, "config.") for c in columns}

    def draw(chosen: list[str]) -> str:
        rows = [[index[i], *(cells[c][i] for c in chosen)] for i in range(len(index))]
        heads = [index_name, *(headers[c] for c in chosen)]
        return tabulate(rows, headers=heads, tablefmt=fmt, disable_numparse=True)

    dropped: list[str] = []
    if width_limit:
        # Estimate with two characters of padding and two of separator per
        # column, then drop the least important columns until it really fits.
        def width(col: str) -> int:
            return max([len(headers[col]), *(len(v) for v in cells[col])]) + 4

        total = max([len(index_name), *(len(i) for i in index)]) + 2
        kept = []
        for c in sorted(columns, key=_priority):
            if total + width(c) <= width_limit:
                kept.append(c)
                total += width(c)
        while True:
            chosen = [c for c in columns if c in kept]
            table = draw(chosen)
            if not kept or max(map(len, table.splitlines())) <= width_limit:
                break
            kept.pop()
        dropped = [c for c in columns if c not in kept]
    else:
        table = draw(columns)
    if dropped:
        shown = ", ".join(dropped[:6]) + (
            f" and {len(dropped) - 6} more" if len(dropped) > 6 else ""
        )
        note = f"({len(dropped)} columns hidden to fit the terminal: {shown}; pick columns with --columns)"
        table += "\n" + textwrap.fill(note, width=max(width_limit or 0, 40), break_on_hyphens=False)
    return table


def _priority(column: str) -> int:
    """Which columns stay when the terminal is narrow: lowest first."""
    # curve(KEY), progress, tags: issue 15's columns, asked for or about live runs
    order = ("status", "curve(", "progress", "summary.", "status_detail", "tags", "config.")
    order += ("duration", "start_time")
    for rank, prefix in enumerate(order):
        if column == prefix or (prefix.endswith((".", "(")) and column.startswith(prefix)):
            return rank
    return len(order)


def render(frame: pd.DataFrame, fmt: str, width_limit: int | None) -> str:
    if fmt == "csv":
        return frame.to_csv()
    if fmt == "json":
        return frame.reset_index().to_json(orient="records", date_format="iso", indent=2) + "\n"
    return render_table(frame, fmt, width_limit) + "\n"
