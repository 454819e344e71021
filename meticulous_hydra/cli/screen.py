"""What a terminal shows for a run's recorded output: progress bars redrawn
with ``\\r`` (tqdm) or with cursor moves (rich) as their last frame, not as
thousands of lines; colours and other escape sequences left out.

``meticulous show --tail`` prints the last lines of ``stdout`` and
``stderr`` through :func:`tail`.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

# the end of a big file is enough for its last lines (a redrawn bar makes
# long "lines"); what it starts with up to the first \n or \r may be cut
TAIL_BYTES = 1 << 20
_TAB = 8

# CSI (ESC [ params final), OSC (ESC ] ... BEL or ST), any other escape,
# a C0 control or DEL, or a run of plain text
_TOKEN = re.compile(
    r"\x1b\[(?P<params>[0-?]*)[ -/]*(?P<final>[@-~])"
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?"
    r"|\x1b[ -/]*[0-~]?"
    r"|(?P<control>[\x00-\x1f\x7f])"
    r"|(?P<text>[^\x00-\x1f\x7f]+)"
)


def _count(params: str, default: int = 1) -> int:
    first = params.split(";")[0]
    return int(first) if first.isdigit() and int(first) > 0 else default


def render(text: str) -> list[str]:
    """The lines a terminal of unbounded width shows for ``text``: ``\\r``,
    backspace, tabs, cursor up/down/left/right/column and erasing a line or
    the lines below act as on a terminal; colours and other sequences are
    dropped, as are control characters."""
    lines: list[list[str]] = [[]]
    row = col = 0
    for match in _TOKEN.finditer(text):
        if match["text"] is not None:
            line = lines[row]
            if len(line) < col:
                line.extend(" " * (col - len(line)))
            chunk = match["text"]
            line[col : col + len(chunk)] = chunk
            col += len(chunk)
        elif match["control"] is not None:
            char = match["control"]
            if char == "\n":
                row += 1
                col = 0
                if row == len(lines):
                    lines.append([])
            elif char == "\r":
                col = 0
            elif char == "\b":
                col = max(0, col - 1)
            elif char == "\t":
                col = (col // _TAB + 1) * _TAB
        elif match["final"] is not None:
            row, col = _csi(lines, row, col, match["params"], match["final"])
    out = ["".join(line).rstrip() for line in lines]
    if out and not out[-1]:
        out.pop()  # the text ended with a newline
    return out


def _csi(lines: list[list[str]], row: int, col: int, params: str, final: str) -> tuple[int, int]:
    """Apply one control sequence; the new cursor position."""
    if final == "A":
        row = max(0, row - _count(params))
    elif final in "BE":
        row += _count(params)
        while row >= len(lines):
            lines.append([])
        col = 0 if final == "E" else col
    elif final == "F":
        row, col = max(0, row - _count(params)), 0
    elif final == "C":
        col += _count(params)
    elif final == "D":
        col = max(0, col - _count(params))
    elif final == "G":
        col = _count(params) - 1
    elif final == "K":
        mode = _count(params, 0) if params else 0
        line = lines[row]
        if mode == 0:
            del line[col:]
        elif mode == 1:
            line[: col + 1] = " " * min(col + 1, len(line))
        else:
            line.clear()
    elif final == "J" and (not params or _count(params, 0) in (0, 2, 3)):
        # below the cursor (a redraw's "erase the rest"); a whole-screen
        # erase keeps the lines above as scrollback
        del lines[row][col:]
        del lines[row + 1 :]
    return row, col


def tail(path: Path, count: int) -> list[str]:
    """The last ``count`` lines the file's output shows on a terminal; []
    for a missing or empty file."""
    if count <= 0:
        return []
    try:
        # only a regular file is read (a FIFO or device in its place reads as
        # empty, as the reader has it): opened non-blocking, so a FIFO can't hang
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        with open(fd, "rb") as f:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                return []
            size = f.seek(0, 2)
            start = max(0, size - TAIL_BYTES)
            f.seek(start)
            data = f.read()
    except OSError:
        return []
    if start > 0:
        # from the first line or redraw that starts in what was read: a
        # frame after \r is whole, what came before it may be cut
        cuts = [i for i in (data.find(b"\n"), data.find(b"\r")) if i >= 0]
        data = data[min(cuts) :].removeprefix(b"\n") if cuts else b""
    return render(data.decode("utf-8", "replace"))[-count:]
