"""Tee a file descriptor (1 or 2) into a file, below Python.

Pointing the fd at a pipe, rather than swapping ``sys.stdout``, catches what
subprocesses, C extensions and ``os.write`` print too. A pump thread copies
the pipe to the file and to the original terminal in bounded chunks, so a run
printing gigabytes needs no more memory than one chunk.
"""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

from .layout import open_append

_CHUNK = 1 << 16
# How long stop() waits for the pump after restoring the fd. A child process
# that inherited the pipe keeps it open; the pump then carries on by itself.
_JOIN_TIMEOUT = 5.0


def _flush_python_streams() -> None:
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):
            pass


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


class FdTee:
    """Copy everything written to ``fd`` into ``path`` (appending) while it
    still reaches wherever ``fd`` pointed before."""

    def __init__(self, fd: int, path: Path) -> None:
        self.fd = fd
        self.path = path
        self._saved: int | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        _flush_python_streams()
        out = open_append(self.path)
        try:
            saved = os.dup(self.fd)
        except OSError:
            os.close(out)  # fd is closed: nothing to capture
            return
        read_end, write_end = os.pipe()
        os.dup2(write_end, self.fd)
        os.close(write_end)
        self._saved = saved
        self._thread = threading.Thread(
            target=self._pump,
            args=(read_end, out, saved, self.path),
            name=f"meticulous-tee-{self.fd}",
            daemon=True,
        )
        self._thread.start()

    @staticmethod
    def _pump(read_end: int, out: int, terminal: int, out_path: Path) -> None:
        terminal_ok = True
        file_ok = True
        try:
            while True:
                data = os.read(read_end, _CHUNK)
                if not data:
                    break
                if file_ok:
                    try:
                        _write_all(out, data)
                    except OSError as e:
                        # Disk full or the like: the program's own output must
                        # keep flowing, so only the copy stops.
                        file_ok = False
                        data = (
                            f"meticulous-hydra: stopped copying output to {out_path}: {e}\n".encode()
                            + data
                        )
                if terminal_ok:
                    try:
                        _write_all(terminal, data)
                    except OSError:
                        terminal_ok = False  # terminal went away: keep the file going
        finally:
            for fd in (read_end, out, terminal):
                try:
                    os.close(fd)
                except OSError:
                    pass

    def stop(self) -> None:
        """Point ``fd`` back where it was and let the pump drain the pipe."""
        if self._saved is None:
            return
        _flush_python_streams()
        saved, self._saved = self._saved, None
        # dup2 closes our pipe's write end held at fd: the pump sees EOF once
        # no child holds a copy of it.
        os.dup2(saved, self.fd)
        if self._thread is not None:
            self._thread.join(_JOIN_TIMEOUT)
            self._thread = None


class StreamTee:
    """Copy what Python writes to ``sys.<name>`` into ``path`` when that stream
    does not end in the file descriptor (Jupyter, IDEs, pytest's capture);
    the fd-level tee then misses it."""

    def __init__(self, name: str, path: Path) -> None:
        self.name = name
        self.path = path
        self._original: object | None = None
        self._wrapper: _TeeStream | None = None

    @staticmethod
    def needed(name: str, fd: int) -> bool:
        stream = getattr(sys, name)
        try:
            return stream.fileno() != fd
        except (AttributeError, OSError, ValueError):
            return True

    def start(self) -> None:
        self._original = getattr(sys, self.name)
        self._wrapper = _TeeStream(self._original, open_append(self.path))
        setattr(sys, self.name, self._wrapper)

    def stop(self) -> None:
        if self._wrapper is None:
            return
        if getattr(sys, self.name) is self._wrapper:
            setattr(sys, self.name, self._original)
        self._wrapper.close_copy()
        self._wrapper = None


class _TeeStream:
    """A text stream that writes to ``original`` and, encoded, to ``fd``;
    everything else is the original's."""

    def __init__(self, original: object, fd: int) -> None:
        self._original = original
        self._fd: int | None = fd

    def write(self, text: str) -> int:
        result = self._original.write(text)  # type: ignore[attr-defined]
        if self._fd is not None:
            try:
                _write_all(self._fd, text.encode("utf-8", "replace"))
            except OSError:
                self.close_copy()  # disk full: the program's own output goes on
        return result

    def writelines(self, lines: list[str]) -> None:
        for line in lines:
            self.write(line)

    def close_copy(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)

    def __getattr__(self, name: str) -> object:
        return getattr(self._original, name)
