"""Tee a file descriptor (1 or 2) into a file, below Python.

Pointing the fd at a pipe, rather than swapping ``sys.stdout``, catches what
subprocesses, C extensions and ``os.write`` print too. A pump thread copies
the pipe to the file and to the original terminal in bounded chunks, so a run
printing gigabytes needs no more memory than one chunk.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from pathlib import Path

from .layout import open_append

_CHUNK = 1 << 16
# stop() waits at most this long for the pump to copy what the run wrote.
_DRAIN_TIMEOUT = 5.0


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
    still reaches wherever ``fd`` pointed before.

    Child processes that inherited the pipe may outlive the run and keep it
    open, so the pump can't wait for the end of the pipe to know it copied
    everything: stop() sends a marker through it instead, and returns once
    the pump has passed it. Whatever such children print later still goes
    to the terminal, and to this run's file.
    """

    def __init__(self, fd: int, path: Path) -> None:
        self.fd = fd
        self.path = path
        self._saved: int | None = None
        self._write_end: int | None = None
        self._thread: threading.Thread | None = None
        self._drained = threading.Event()
        # NUL bytes never start a line of text output; random, so never forged
        self._marker = b"\x00meticulous-drain-" + os.urandom(8).hex().encode() + b"\x00"

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
        self._saved, self._write_end = saved, write_end
        self._thread = threading.Thread(
            target=self._pump,
            args=(read_end, out, saved),
            name=f"meticulous-tee-{self.fd}",
            daemon=True,
        )
        self._thread.start()

    def _pump(self, read_end: int, out: int, terminal: int) -> None:
        targets = {"file": out, "terminal": terminal}
        carry = b""
        try:
            while True:
                data = os.read(read_end, _CHUNK)
                if not data:
                    break
                data, carry, reached = self._split_marker(carry + data)
                for name in list(targets):
                    try:
                        _write_all(targets[name], data)
                    except OSError as e:
                        # disk full or terminal gone: the other copy goes on
                        del targets[name]
                        if name == "file" and "terminal" in targets:
                            message = (
                                f"meticulous-hydra: stopped copying output to {self.path}: {e}\n"
                            )
                            with contextlib.suppress(OSError):
                                _write_all(targets["terminal"], message.encode())
                if reached:  # only once what came before the marker is written
                    self._drained.set()
            if carry:
                for fd in targets.values():
                    _write_all(fd, carry)
        except OSError:
            pass
        finally:
            self._drained.set()
            for fd in (read_end, out, terminal):
                try:
                    os.close(fd)
                except OSError:
                    pass

    def _split_marker(self, data: bytes) -> tuple[bytes, bytes, bool]:
        """Remove the drain marker from ``data`` (and say whether it was there);
        hold back a tail that may be the start of one."""
        index = data.find(self._marker)
        reached = index >= 0
        if reached:
            data = data[:index] + data[index + len(self._marker) :]
        tail = data.rfind(b"\x00", max(0, len(data) - len(self._marker) + 1))
        if tail >= 0 and self._marker.startswith(data[tail:]):
            return data[:tail], data[tail:], reached
        return data, b"", reached

    def stop(self) -> None:
        """Point ``fd`` back where it was, once all the run wrote is copied."""
        if self._saved is None:
            return
        _flush_python_streams()
        saved, self._saved = self._saved, None
        os.dup2(saved, self.fd)  # drops the pipe held at fd
        write_end, self._write_end = self._write_end, None
        try:
            os.write(write_end, self._marker)  # shorter than PIPE_BUF: written whole
        finally:
            os.close(write_end)
        self._drained.wait(_DRAIN_TIMEOUT)
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
