"""What every command prints: text from the record with its control
characters escaped (:func:`printable`: a note, a tag, a config value, a
status detail can hold terminal escapes), and what it does when the reader
of its output goes away (``meticulous reproduce 1 | head -1``, :func:`quietly`):
it stops there, quietly, with exit code 0, as ``head`` expects."""

from __future__ import annotations

import contextlib
import io
import os
import re
import sys
import warnings
from collections.abc import Callable, Iterator
from functools import lru_cache
from typing import Any, TextIO


def quietly(command: Callable[[], int]) -> int:
    """``command()``, its printing flushed; 0 when its output pipe closed."""
    try:
        code = command()
        sys.stdout.flush()
        return code
    except BrokenPipeError:
        # what is still buffered would fail again when Python flushes at exit
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return 0


_ESCAPES = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}


@lru_cache(maxsize=8)
def _controls(keep: str) -> re.Pattern[str]:
    # C0 and C1 controls and DEL (a terminal acts on them: colours, cursor
    # moves, titles, the clipboard), and the bidirectional overrides that
    # show text in another order than it is
    kept = "".join(f"\\x{ord(c):02x}" for c in keep)
    pattern = "[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]"
    return re.compile(f"(?![{kept}]){pattern}" if kept else pattern)


def _escape(match: re.Match[str]) -> str:
    char = match.group(0)
    code = ord(char)
    return _ESCAPES.get(char) or (f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")


def printable(text: str, keep: str = "") -> str:
    """``text`` safe to write to a terminal: control characters (but those in
    ``keep``, say ``"\\n"``) written as escapes, ``\\x1b``, ``\\t``,
    ``\\u202e``. Everything printed that came from a file goes through it: a
    note, a tag, a config value, a summary key, a status detail."""
    pattern = _controls(keep)
    return pattern.sub(_escape, text) if pattern.search(text) else text


# what json.dumps leaves raw in its strings (it escapes C0 controls itself)
_RAW_IN_JSON = re.compile("[\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def safe_json(text: str) -> str:
    """JSON text (from ``json.dumps``) with the control characters it leaves
    raw in its strings written as ``\\uXXXX``: the same data once parsed,
    harmless on a terminal."""
    return _RAW_IN_JSON.sub(lambda m: f"\\u{ord(m.group(0)):04x}", text)


class _Printable(io.TextIOBase):
    """A text stream that writes through :func:`printable` (newlines and tabs kept)."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        self._stream.write(printable(text, keep="\n\t"))
        return len(text)

    def flush(self) -> None:
        self._stream.flush()

    def fileno(self) -> int:
        return self._stream.fileno()

    def isatty(self) -> bool:
        return self._stream.isatty()


@contextlib.contextmanager
def printed_safely() -> Iterator[None]:
    """Everything printed to stdout in the block goes through :func:`printable`."""
    saved: Any = sys.stdout
    sys.stdout = _Printable(saved)
    try:
        yield
    finally:
        sys.stdout = saved


@contextlib.contextmanager
def warnings_as_lines(prog: str) -> Iterator[None]:
    """Each warning in the block (a run read incompletely) as one line on
    stderr, ``PROG: warning: ...``, escaped: not Python's report of it, with
    a file and line of ours and its source line."""

    def show(message: Warning | str, *_: Any, **__: Any) -> None:
        sys.stderr.write(f"{prog}: warning: {printable(str(message))}\n")

    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = show
        yield
