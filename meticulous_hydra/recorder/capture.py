"""Tee file descriptors 1 and 2 into the run's files, below Python.

Pointing an fd at a pipe, rather than swapping ``sys.stdout``, catches what
subprocesses, C extensions and ``os.write`` print too. A pump thread copies
the pipe to the file and to where the fd pointed before, in bounded chunks,
so a run printing gigabytes needs no more memory than one chunk. A run ends
only once the pump has written all of it where it belongs, however slow the
reader; child processes still holding the pipe then are left to a relay
process.

The program must not notice (docs/FORMAT.md, ``capture``):

- an fd that is a terminal gets a pseudo-terminal instead of a pipe, with the
  terminal's settings and size (followed on SIGWINCH), so ``isatty()``,
  colours and progress bars stay;
- fds 1 and 2 on one terminal, pipe or file (``2>&1``) share one tee, so the
  output keeps the order in which both streams were written, and the
  ``stdout`` file holds both in that order;
- once the real fd is gone (``| head -1`` exited, the terminal hung up), the
  pipe is closed, so the program and its children get EPIPE/SIGPIPE (EIO)
  at their next write, as they would without recording;
- an fd that was closed when Python started stays closed;
- a file that can't be written (a full disk) stops being copied to, and the
  program's output goes on.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import select
import signal
import stat
import subprocess
import sys
import termios
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from meticulous_hydra import layout

_CHUNK = 1 << 16
# the real fd is gone: its reader exited (EPIPE) or its terminal hung up (EIO)
_GONE = (errno.EPIPE, errno.EIO)
DISK_FULL = (errno.ENOSPC, errno.EDQUOT)
# how often a terminal's size is compared with the pseudo-terminal's, for
# when the SIGWINCH handler is not ours (an app installed its own later)
_SIZE_POLL = 0.1

# What a copier tells of (FdTee's ``event``): the file failed for want of
# room, or otherwise; the real fd's reader went away, or its terminal hung up.
DISK, FILE, BROKEN_PIPE, HANGUP = "disk", "file", "broken pipe", "hangup"

# How an fd is captured (metadata ``capture``, docs/FORMAT.md).
PIPE, TERMINAL, CLOSED = layout.CAPTURE_PIPE, layout.CAPTURE_TERMINAL, layout.CAPTURE_CLOSED
IN_STDOUT = layout.CAPTURE_IN_STDOUT  # stderr shares stdout's terminal


def _flush_python_streams() -> None:
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError, AttributeError):
            pass


def _high(fd: int) -> int:
    """``fd`` moved to 3 or above (close-on-exec): an fd of ours never takes
    the place of a closed 0, 1 or 2, where the program's next open() lands."""
    if fd > 2:
        return fd
    try:
        return fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 3)
    finally:
        os.close(fd)


def _is_open(fd: int) -> bool:
    try:
        fcntl.fcntl(fd, fcntl.F_GETFD)
    except OSError:
        return False
    return True


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            written = os.write(fd, view)
        except BlockingIOError:
            # a terminal or pipe some other program made non-blocking: wait
            # until it takes more, as a blocking write would
            _wait(fd, select.POLLOUT)
            continue
        view = view[written:]


def _wait(fd: int, event: int, timeout: float | None = None) -> bool:
    """Whether ``fd`` is ready for ``event`` (or hung up) within ``timeout``."""
    poller = select.poll()  # select() can't take fds above 1023
    poller.register(fd, event)
    return bool(poller.poll(None if timeout is None else timeout * 1000))


@contextlib.contextmanager
def _no_sigpipe() -> Any:
    """A write to a pipe nobody reads fails with EPIPE here instead of
    killing the process (the app may have set SIGPIPE to SIG_DFL)."""
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGPIPE})
    try:
        yield
    finally:
        if signal.SIGPIPE not in old and signal.SIGPIPE in signal.sigpending():
            signal.sigtimedwait({signal.SIGPIPE}, 0)
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


# -- terminal sizes --------------------------------------------------------------------


def _size(fd: int) -> bytes:
    return fcntl.ioctl(fd, termios.TIOCGWINSZ, b"\0" * 8)


class _Size:
    """Keeps a pseudo-terminal (its master) the size of a real terminal."""

    def __init__(self, terminal: int, master: int) -> None:
        self.terminal = terminal
        self.master = master
        self._lock = threading.RLock()  # RLock: a handler may interrupt its own thread
        self._due = 0.0
        self.sync()

    def sync(self) -> bool:
        """Copy the size; whether it changed."""
        with self._lock:
            self._due = time.monotonic() + _SIZE_POLL
            try:
                size = _size(self.terminal)
                if size == _size(self.master):
                    return False
                fcntl.ioctl(self.master, termios.TIOCSWINSZ, size)
            except OSError:
                return False
            return True

    def poll(self) -> None:
        """Sync if due: what the SIGWINCH handler does, for when it is not
        ours. A Python handler installed since then ran with the old size:
        it gets one more SIGWINCH now that the size is right."""
        if time.monotonic() < self._due or not self.sync():
            return
        handler = signal.getsignal(signal.SIGWINCH)
        if callable(handler) and handler != _WINCH.handle:
            with contextlib.suppress(OSError):
                os.kill(os.getpid(), signal.SIGWINCH)


class _Winch:
    """The one SIGWINCH handler of the process while pseudo-terminals are
    relayed: it resizes them, then calls the handler that was there before."""

    def __init__(self) -> None:
        self.sizes: list[_Size] = []
        self.previous: Any = None
        self.installed = False

    def add(self, size: _Size) -> None:
        self.sizes.append(size)
        if self.installed or threading.current_thread() is not threading.main_thread():
            return  # off the main thread only polling follows the size
        previous = signal.getsignal(signal.SIGWINCH)
        if previous is None:
            return  # a handler installed outside Python: it can't be put back
        self.previous = signal.signal(signal.SIGWINCH, self.handle)
        if not callable(previous):
            # nobody handled SIGWINCH: system calls it interrupts restart,
            # as they did when it was ignored
            signal.siginterrupt(signal.SIGWINCH, False)
        self.installed = True

    def remove(self, size: _Size) -> None:
        if size in self.sizes:
            self.sizes.remove(size)
        if self.sizes or not self.installed:
            return
        if threading.current_thread() is threading.main_thread():
            self.installed = False
            # put back only what is still ours: an app's handler stays
            if signal.getsignal(signal.SIGWINCH) == self.handle:
                signal.signal(signal.SIGWINCH, self.previous)

    def handle(self, signum: int, frame: Any) -> None:
        for size in list(self.sizes):  # outermost first: nested runs relay in turn
            size.sync()
        if callable(self.previous):
            self.previous(signum, frame)


_WINCH = _Winch()


def _open_pty(terminal: int) -> tuple[int, int]:
    """A pseudo-terminal (master, slave) set up as ``terminal`` is: its modes,
    but no output processing (the real terminal does it, once: the bytes on
    screen are the same), and its size."""
    master, slave = os.openpty()
    try:
        master, slave = _high(master), _high(slave)
        attrs = termios.tcgetattr(terminal)
        attrs[1] &= ~termios.OPOST
        termios.tcsetattr(slave, termios.TCSANOW, attrs)
        fcntl.ioctl(master, termios.TIOCSWINSZ, _size(terminal))
        return master, slave
    except OSError:
        os.close(master)
        os.close(slave)
        raise


# -- copying -----------------------------------------------------------------------------


class _Copier:
    """Copies what comes out of ``source`` (a pipe's read end or a
    pseudo-terminal's master) to the file ``out`` and to ``real``, where
    the fd pointed before; ``notice`` (an fd, -1 for none) is the real
    stderr, for our own messages."""

    def __init__(
        self,
        source: int,
        out: int,
        real: int,
        path: str,
        *,
        notice: int = -1,
        name: str = "",
        size: _Size | None = None,
        event: Callable[[str, str], None] | None = None,
    ) -> None:
        self.source = source
        self.targets = {n: fd for n, fd in (("file", out), ("real", real)) if fd >= 0}
        self.path = path
        self.notice = notice
        self.name = name or os.path.basename(path)
        self.size = size
        self.event = event
        self.delivered = 0  # bytes written to the real fd
        self.gone = False

    def read(self) -> bytes:
        """The next chunk; b"" at the end of the pipe, or once no process
        holds the pseudo-terminal any more (EIO)."""
        if self.size is None:
            return os.read(self.source, _CHUNK)
        # A pseudo-terminal gives at most 4 KiB a read: what is there is read
        # at once (the master is non-blocking) and copied as one chunk.
        chunks: list[bytes] = []
        total = 0
        while total < _CHUNK:
            try:
                data = os.read(self.source, _CHUNK - total)
            except BlockingIOError:
                if chunks:
                    break
                # idle: the size is checked now and then while waiting
                if not _wait(self.source, select.POLLIN, _SIZE_POLL):
                    self.size.poll()
                continue
            except OSError as e:
                if e.errno != errno.EIO:
                    raise
                break  # the end: what came before it first, then b""
            chunks.append(data)
            total += len(data)
        self.size.poll()
        return b"".join(chunks)

    def copy(self, data: bytes) -> bool:
        """Write ``data`` to the file, then the real fd; False once the real
        fd is gone (then nothing more must be read)."""
        if not data:
            return True
        out = self.targets.get("file")
        if out is not None:
            try:
                _write_all(out, data)
            except OSError as e:
                del self.targets["file"]
                self._file_failed(e, out)
        real = self.targets.get("real")
        if real is not None:
            try:
                _write_all(real, data)
                self.delivered += len(data)
            except OSError as e:
                del self.targets["real"]
                if e.errno in _GONE:
                    self._real_gone(e)
                    return False
                # the real fd fails otherwise (its disk is full): the file
                # still gets the output
        return True

    def copy_to_end(self) -> None:
        while (data := self.read()) and self.copy(data):
            pass

    def _file_failed(self, e: OSError, out: int) -> None:
        why = "the disk filled" if e.errno in DISK_FULL else "it could not be written"
        try:
            end = f"the file stops at byte {os.fstat(out).st_size}"
        except OSError:
            end = "the file stops there"
        text = f"{self.name}: {why} ({e.strerror or e}): {end}"
        self._say(f"meticulous-hydra: stopped copying output to {self.path}: {e.strerror or e}")
        self._tell(DISK if e.errno in DISK_FULL else FILE, text)

    def _real_gone(self, e: OSError) -> None:
        self.gone = True
        pipe = e.errno == errno.EPIPE
        if pipe:
            what = f"broken pipe: its reader went away after {self.delivered} bytes"
            then = "EPIPE (or SIGPIPE)"
        else:
            what, then = f"its terminal hung up after {self.delivered} bytes", "EIO"
        self._tell(
            BROKEN_PIPE if pipe else HANGUP,
            f"{self.name}: {what}; writes after that fail with {then}, as without recording",
        )

    def _say(self, line: str) -> None:
        if self.notice >= 0:
            with contextlib.suppress(OSError):
                _write_all(self.notice, (line + "\n").encode("utf-8", "replace"))

    def _tell(self, kind: str, text: str) -> None:
        if self.event is not None:
            self.event(kind, text)


def _writers_remain(read_end: int) -> bool:
    """Whether some process still holds the write end of the pipe (the
    slave of the pseudo-terminal)."""
    poller = select.poll()
    poller.register(read_end, select.POLLIN)
    # POLLHUP: no writer left, so reading to the end can't block
    return not any(events & select.POLLHUP for _, events in poller.poll(0))


def relay(source: int, out: int, real: int, notice: int, path: str, follow: int) -> None:
    """Copy ``source`` to the file and the real fd (-1: not copied to) until
    no process holds it any more: run in a process of its own when children
    (or the program an exec started) outlive a run. ``follow``: keep the
    pseudo-terminal the real terminal's size."""
    size = _Size(real, source) if follow and real >= 0 else None
    copier = _Copier(source, out, real, path, notice=notice, size=size)
    with contextlib.suppress(OSError):
        copier.copy_to_end()


_RELAY = (
    "import sys; sys.path.insert(0, sys.argv[1]); from meticulous_hydra.recorder.capture import relay; "
    "relay(*map(int, sys.argv[2:6]), sys.argv[6], int(sys.argv[7]))"
)


def _hand_over(copier: _Copier) -> bool:
    """Start a detached process that carries on copying, for the processes
    still holding the pipe; False if it can't be started."""
    if not sys.executable:
        return False
    package_parent = str(Path(__file__).resolve().parents[2])
    fds = (
        copier.source,
        copier.targets.get("file", -1),
        copier.targets.get("real", -1),
        copier.notice,
    )
    follow = "1" if copier.size is not None else "0"
    relay_cmd = [
        sys.executable, "-I", "-S", "-c", _RELAY, package_parent, *map(str, fds), copier.path, follow,
    ]  # fmt: skip
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
    """Copy everything written to ``fds`` (one fd, or 1 and 2 sharing one
    terminal) into ``path`` (appending) while it still reaches where the
    first of them pointed before.

    With ``terminal`` (and that fd a terminal), the fds get a
    pseudo-terminal rather than a pipe. ``notice`` is an fd for our own
    messages (the real stderr); ``event(kind, text)`` hears of a file that
    failed (kind DISK or FILE) and of a real fd that is gone (BROKEN_PIPE,
    HANGUP).

    stop() returns once every byte written before it is in the file and has
    been written, with blocking writes, where the fd pointed: however slowly
    that pipe is read, nothing is lost when the process exits right after.
    Child processes that inherited the pipe may outlive the run and keep it
    open, so the pump can't wait for the end of the pipe to know it copied
    everything: stop() sends a marker through it instead. If such children
    still hold the pipe after the marker, a detached relay process takes it
    over, so that what they print later still reaches the terminal (and
    this run's file), even after this process has exited.
    """

    def __init__(
        self,
        fd: int | tuple[int, ...],
        path: Path,
        *,
        terminal: bool = False,
        notice: int = -1,
        event: Callable[[str, str], None] | None = None,
    ) -> None:
        self.fds = (fd,) if isinstance(fd, int) else tuple(fd)
        self.fd = self.fds[0]
        self.path = path
        self.terminal = terminal
        self.notice = notice
        self.event = event
        self.mode: str | None = None  # PIPE or TERMINAL once started
        self._saved: int | None = None
        self._others: dict[int, int] = {}  # the fds but the first, as they were
        self._write_end: int | None = None
        self._copier: _Copier | None = None
        self._size: _Size | None = None
        self._thread: threading.Thread | None = None
        self._drained = threading.Event()
        self._released = threading.Event()
        # NUL bytes never start a line of text output; random, so never forged
        self._marker = b"\x00meticulous-drain-" + os.urandom(8).hex().encode() + b"\x00"

    @property
    def name(self) -> str:
        return os.path.basename(self.path)

    def start(self) -> None:
        _flush_python_streams()
        try:
            saved = _high(os.dup(self.fd))
        except OSError:
            return  # fd is closed: nothing to capture
        try:
            out = _high(layout.open_append(self.path))
        except OSError:
            os.close(saved)
            raise
        read_end = write_end = -1
        if self.terminal and os.isatty(saved):
            try:
                read_end, write_end = _open_pty(saved)
            except OSError:
                pass  # no pseudo-terminal to be had: a pipe, as for a file
            else:
                os.set_blocking(read_end, False)  # see _Copier.read
                self._size = _Size(saved, read_end)
                _WINCH.add(self._size)
        if read_end < 0:
            read_end, write_end = map(_high, os.pipe())
        self.mode = TERMINAL if self._size is not None else PIPE
        # each fd is put back as it was: fd 2 may be another open of fd 1's file
        self._others = {fd: _high(os.dup(fd)) for fd in self.fds[1:]}
        for fd in self.fds:
            os.dup2(write_end, fd)
        self._saved, self._write_end, self._real = saved, write_end, saved
        self._copier = _Copier(
            read_end,
            out,
            saved,
            str(self.path),
            notice=self.notice,
            name=self.name,
            size=self._size,
            event=self.event,
        )
        self._thread = threading.Thread(
            target=self._pump, name=f"meticulous-tee-{self.fd}", daemon=True
        )
        self._thread.start()

    def _pump(self) -> None:
        copier = self._copier
        assert copier is not None
        # a write to a reader that has gone fails here with EPIPE, whatever
        # the app made of SIGPIPE: the app gets it at its own next write
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGPIPE})
        try:
            carry = b""
            found = False
            while not found and not copier.gone:
                data = copier.read()
                if not data:
                    break
                data, carry, found = self._split_marker(carry + data)
                copier.copy(data)
            if copier.gone:
                # closed now, not at stop(): the program and its children
                # get EPIPE (EIO) at their next write, as without us
                self._close_source()
            else:
                copier.copy(carry)
            # Whatever comes now is from children that inherited the pipe.
            self._released.wait()
            if copier.gone:
                return
            if _writers_remain(copier.source):
                if _hand_over(copier):
                    return
                # no relay: copy on while this process lives
                self._keeps_real = True
                self._drained.set()
            copier.copy_to_end()
        except OSError:
            pass
        finally:
            self._close_source()
            out = copier.targets.get("file")
            if out is not None:
                with contextlib.suppress(OSError):
                    os.close(out)
            if self._keeps_real and self._real is not None:
                with contextlib.suppress(OSError):
                    os.close(self._real)
            self._drained.set()

    # stop() closes the real fd once the pump is done with it, unless the
    # pump copies on after stop() (no relay process could be started)
    _keeps_real = False
    _real: int | None = None

    def _close_source(self) -> None:
        copier = self._copier
        if copier is not None and copier.source >= 0:
            source, copier.source = copier.source, -1
            with contextlib.suppress(OSError):
                os.close(source)

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
        """Point the fds back where they were, once all the run wrote is copied.

        No time limit: a reader of the terminal's pipe that is slow holds
        the run's end up exactly as long as it would hold the program's own
        writes without recording.
        """
        self._end(restore=True)

    def hand_over(self) -> None:
        """Leave the fds on the pipe (an exec is about to replace this
        process) and hand the pipe to a relay process once all written so
        far is copied: what the exec'd program writes reaches the real fd
        and the file too."""
        self._end(restore=False)

    def _end(self, *, restore: bool) -> None:
        if self._saved is None:
            return
        _flush_python_streams()
        saved, self._saved = self._saved, None
        others, self._others = self._others, {}
        for fd in self.fds:
            if restore:
                os.dup2(others.get(fd, saved), fd)  # drops the pipe held at fd
            if fd in others:
                os.close(others[fd])
        if self._size is not None:
            _WINCH.remove(self._size)
        write_end, self._write_end = self._write_end, None
        assert write_end is not None and self._copier is not None
        try:
            # shorter than PIPE_BUF: written whole; a pump that died has set
            # _drained already, one whose real fd is gone closed the pipe
            if not self._copier.gone:
                with contextlib.suppress(OSError), _no_sigpipe():
                    os.write(write_end, self._marker)
        finally:
            os.close(write_end)
            self._released.set()
        self._drained.wait()
        if not self._keeps_real:
            # closed before returning: the pipe of an enclosing run, held
            # here as the real fd, has no writer left once stop() returns
            os.close(saved)
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
        if stream is None:
            return False  # closed when Python started: nothing is written
        try:
            return stream.fileno() != fd
        except (AttributeError, OSError, ValueError):
            return True

    def start(self) -> None:
        self._original = getattr(sys, self.name)
        self._wrapper = _TeeStream(self._original, _high(layout.open_append(self.path)))
        setattr(sys, self.name, self._wrapper)

    def stop(self) -> None:
        if self._wrapper is None:
            return
        if getattr(sys, self.name) is self._wrapper:
            setattr(sys, self.name, self._original)
        self._wrapper.close_copy()
        self._wrapper = None

    hand_over = stop


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


# -- both streams ------------------------------------------------------------------------

_STREAMS = ((1, "stdout", layout.STDOUT), (2, "stderr", layout.STDERR))


def _where(fd: int, python_stream: object) -> str:
    """PIPE, TERMINAL or CLOSED: how fd 1 (2) is to be captured. An fd that
    was closed when Python started (its ``sys.__stdout__`` is None) stays
    closed: whatever holds its number now is some file the program opened."""
    if python_stream is None or not _is_open(fd):
        return CLOSED
    return TERMINAL if os.isatty(fd) else PIPE


def _one_destination(a: int, b: int) -> bool:
    """Whether ``a`` and ``b`` write to one stream whose order can be seen: the
    same terminal, pipe or file (not /dev/null, which keeps nothing)."""
    try:
        sa, sb = os.fstat(a), os.fstat(b)
    except OSError:
        return False
    if stat.S_ISCHR(sa.st_mode) and not os.isatty(a):
        return False
    return (sa.st_dev, sa.st_ino, sa.st_rdev) == (sb.st_dev, sb.st_ino, sb.st_rdev)


def plan() -> dict[str, str]:
    """How each stream will be captured, decided before the run's start
    files are written (metadata ``capture``): PIPE, TERMINAL or CLOSED, and
    IN_STDOUT for stderr when fds 1 and 2 are one terminal, pipe or file
    (``2>&1``): one tee for both keeps the order in which they were written,
    which two pumps, one per fd, would not."""
    kinds = {name: _where(fd, getattr(sys, f"__{name}__")) for fd, name, _ in _STREAMS}
    if kinds["stdout"] == kinds["stderr"] != CLOSED and _one_destination(1, 2):
        kinds["stderr"] = IN_STDOUT
    return kinds


class Capture:
    """The capture of one run's fds 1 and 2 (and of ``sys.stdout`` and
    ``sys.stderr`` where they don't end in them) into ``folder``'s
    ``stdout`` and ``stderr``, as ``kinds`` (from :func:`plan`) says.

    ``notes`` (a list it appends to) gathers what the run's status detail
    must say: a file the disk had no room for, a real fd that went away."""

    def __init__(self, folder: Path, kinds: dict[str, str], notes: list[str] | None = None) -> None:
        self.folder = folder
        self.kinds = dict(kinds)
        self.notes = notes if notes is not None else []
        self._tees: list[FdTee | StreamTee] = []
        self._notice = -1
        self._on_gone: Callable[[str, str], None] | None = None

    def start(self, on_gone: Callable[[str, str], None] | None = None) -> None:
        """Start capturing; ``on_gone(kind, text)`` is called (in a pump
        thread) when a real fd went away (BROKEN_PIPE or HANGUP)."""
        self._on_gone = on_gone
        if self.kinds.get("stderr") != CLOSED:
            with contextlib.suppress(OSError):
                self._notice = _high(os.dup(2))
        try:
            self._start_tees()
        except BaseException:
            self.stop()  # the fds as they were
            raise

    def _start_tees(self) -> None:
        for fd, name, file in _STREAMS:
            kind = self.kinds.get(name, CLOSED)
            if kind in (IN_STDOUT, CLOSED):
                os.close(layout.open_append(self.folder / file))  # there, empty
                continue  # stdout's tee serves fd 2 too, or nothing to capture
            fds = (1, 2) if fd == 1 and self.kinds.get("stderr") == IN_STDOUT else (fd,)
            tee = FdTee(
                fds,
                self.folder / file,
                terminal=kind == TERMINAL,
                notice=self._notice,
                event=self._event,
            )
            tee.start()
            self._tees.append(tee)
            if tee.mode == PIPE and kind == TERMINAL:
                self.kinds[name] = PIPE  # no pseudo-terminal to be had
        for fd, name, file in _STREAMS:
            if StreamTee.needed(name, fd):
                target = layout.STDOUT if self.kinds.get(name) == IN_STDOUT else file
                stream = StreamTee(name, self.folder / target)
                stream.start()
                self._tees.append(stream)

    def _event(self, kind: str, text: str) -> None:
        self.notes.append(text)
        if kind in (BROKEN_PIPE, HANGUP) and self._on_gone is not None:
            self._on_gone(kind, text)

    def notice(self, line: str) -> None:
        """Write a line of ours to the real stderr (not into the run's files)."""
        if self._notice >= 0:
            with contextlib.suppress(OSError):
                _write_all(self._notice, (line + "\n").encode("utf-8", "replace"))
        elif sys.stderr is not None:
            with contextlib.suppress(OSError, ValueError):
                sys.stderr.write(line + "\n")
                sys.stderr.flush()

    def stop(self) -> None:
        self._end(hand_over=False)

    def hand_over(self) -> None:
        """For an exec: leave the fds on the pipes, handed to relay processes."""
        self._end(hand_over=True)

    def _end(self, *, hand_over: bool) -> None:
        for tee in reversed(self._tees):
            if hand_over:
                tee.hand_over()
            else:
                tee.stop()
        self._tees.clear()
        notice, self._notice = self._notice, -1
        if notice >= 0:
            os.close(notice)
