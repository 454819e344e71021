"""Tee a file descriptor (1 or 2) into a file, below Python.

Pointing the fd at a pipe, rather than swapping ``sys.stdout``, catches what
subprocesses, C extensions and ``os.write`` print too. A pump thread copies
the pipe to the file and to the original terminal in bounded chunks, so a run
printing gigabytes needs no more memory than one chunk. A run ends only once
the pump has written all of it where it belongs, however slow the reader;
child processes still holding the pipe then are left to a relay process.
"""

from __future__ import annotations

import contextlib
import os
import select
import subprocess
import sys
import threading
from pathlib import Path

from meticulous_hydra.layout import open_append

_CHUNK = 1 << 16


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
        try:
            written = os.write(fd, view)
        except BlockingIOError:
            # a terminal or pipe some other program made non-blocking: wait
            # until it takes more, as a blocking write would
            _wait_writable(fd)
            continue
        view = view[written:]


def _wait_writable(fd: int) -> None:
    if hasattr(select, "poll"):  # select() can't take fds above 1023
        poller = select.poll()
        poller.register(fd, select.POLLOUT)
        poller.poll()
    else:
        select.select([], [fd], [])


def _copy(data: bytes, targets: dict[str, int], path: str) -> None:
    """Write ``data`` to each target; one that fails is dropped and the
    other goes on (disk full: the program's own output keeps flowing)."""
    for name in list(targets):
        try:
            _write_all(targets[name], data)
        except OSError as e:
            del targets[name]
            if name == "file" and "terminal" in targets:
                message = f"meticulous-hydra: stopped copying output to {path}: {e}\n"
                with contextlib.suppress(OSError):
                    _write_all(targets["terminal"], message.encode())


def _writers_remain(read_end: int) -> bool:
    """Whether some process still holds the write end of the pipe."""
    if not hasattr(select, "poll"):
        return True
    poller = select.poll()
    poller.register(read_end, select.POLLIN)
    # POLLHUP: no writer left, so reading to the end can't block
    return not any(events & select.POLLHUP for _, events in poller.poll(0))


def _copy_to_end(read_end: int, targets: dict[str, int], path: str) -> None:
    while data := os.read(read_end, _CHUNK):
        _copy(data, targets, path)


def relay(read_end: int, out: int, terminal: int, path: str) -> None:
    """Copy the pipe to the file and the terminal (-1: no longer copied to)
    until no process holds it any more: run in a process of its own when
    children outlive a run."""
    targets = {name: fd for name, fd in (("file", out), ("terminal", terminal)) if fd >= 0}
    with contextlib.suppress(OSError):
        _copy_to_end(read_end, targets, path)


_RELAY = (
    "import sys; sys.path.insert(0, sys.argv[1]); from meticulous_hydra.recorder.capture import relay; "
    "relay(*map(int, sys.argv[2:5]), sys.argv[5])"
)


def _hand_over(read_end: int, targets: dict[str, int], path: str) -> bool:
    """Start a detached process that carries on copying the pipe, for the
    children still holding it; False if it can't be started."""
    if not sys.executable:
        return False
    package_parent = str(Path(__file__).resolve().parents[2])
    fds = (read_end, targets.get("file", -1), targets.get("terminal", -1))
    relay_cmd = [sys.executable, "-I", "-S", "-c", _RELAY, package_parent, *map(str, fds), path]
    try:
        # sh starts the relay in the background and exits at once: the relay
        # is no process's child to reap or wait for, and outlives this one; in
        # a session of its own, Ctrl-C on the terminal does not end it.
        subprocess.run(
            ["/bin/sh", "-c", '"$@" &', "sh", *relay_cmd],
            pass_fds=[fd for fd in fds if fd >= 0],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return True


class FdTee:
    """Copy everything written to ``fd`` into ``path`` (appending) while it
    still reaches wherever ``fd`` pointed before.

    stop() returns once every byte written before it is in the file and has
    been written, with blocking writes, where ``fd`` pointed: however slowly
    that pipe is read, nothing is lost when the process exits right after.
    Child processes that inherited the pipe may outlive the run and keep it
    open, so the pump can't wait for the end of the pipe to know it copied
    everything: stop() sends a marker through it instead. If such children
    still hold the pipe after the marker, a detached relay process takes it
    over, so that what they print later still reaches the terminal (and
    this run's file), even after this process has exited.
    """

    def __init__(self, fd: int, path: Path) -> None:
        self.fd = fd
        self.path = path
        self._saved: int | None = None
        self._write_end: int | None = None
        self._thread: threading.Thread | None = None
        self._drained = threading.Event()
        self._released = threading.Event()
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
        path = str(self.path)
        fds = [read_end, out, terminal]
        try:
            carry = b""
            found = False
            while not found:
                data = os.read(read_end, _CHUNK)
                if not data:
                    break
                data, carry, found = self._split_marker(carry + data)
                _copy(data, targets, path)
            _copy(carry, targets, path)
            # Whatever comes now is from children that inherited the pipe.
            self._released.wait()
            if _writers_remain(read_end):
                if _hand_over(read_end, targets, path):
                    return
                self._drained.set()  # no relay: copy on while this process lives
            _copy_to_end(read_end, targets, path)
        except OSError:
            pass
        finally:
            # closed first: the pipe of an enclosing run, held here as the
            # terminal, must have no writer left once stop() has returned
            for fd in fds:
                with contextlib.suppress(OSError):
                    os.close(fd)
            self._drained.set()

    def _split_marker(self, data: bytes) -> tuple[bytes, bytes, bool]:
        """Remove the drain marker from ``data``, saying whether it was there;
        hold back a tail that may be the start of one."""
        index = data.find(self._marker)
        if index >= 0:
            return data[:index] + data[index + len(self._marker) :], b"", True
        tail = data.rfind(b"\x00", max(0, len(data) - len(self._marker) + 1))
        if tail >= 0 and self._marker.startswith(data[tail:]):
            return data[:tail], data[tail:], False
        return data, b"", False

    def stop(self) -> None:
        """Point ``fd`` back where it was, once all the run wrote is copied.

        No time limit: a reader of the terminal's pipe that is slow holds
        the run's end up exactly as long as it would hold the program's own
        writes without recording.
        """
        if self._saved is None:
            return
        _flush_python_streams()
        saved, self._saved = self._saved, None
        os.dup2(saved, self.fd)  # drops the pipe held at fd
        write_end, self._write_end = self._write_end, None
        assert write_end is not None  # start() sets it with _saved
        try:
            # shorter than PIPE_BUF: written whole; a pump that died has set
            # _drained already
            with contextlib.suppress(OSError):
                os.write(write_end, self._marker)
        finally:
            os.close(write_end)
            self._released.set()
        self._drained.wait()
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
