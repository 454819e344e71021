"""Output capture (capture.py): every byte reaches the terminal or pipe, and the file."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import os
import select
import signal
import struct
import subprocess
import sys
import termios
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers import run_python, status_of, watchdog, write_script

from meticulous_hydra.recorder import capture
from meticulous_hydra.recorder.capture import FdTee


def _pending(fd: int) -> int:
    """Bytes waiting in a pipe, unread."""
    return struct.unpack("i", fcntl.ioctl(fd, termios.FIONREAD, b"\0\0\0\0"))[0]


@pytest.mark.parametrize(
    ("blocking", "ending"),
    [(True, b""), (False, b""), (True, b"\0\0")],
    ids=["blocking", "non-blocking", "ends-in-NUL"],
)
def test_stop_returns_only_once_a_slow_reader_can_have_everything(
    tmp_path: Path, blocking: bool, ending: bytes
) -> None:
    # The "terminal" is a pipe that this test reads slowly, in small pieces;
    # stop() runs in another thread. When stop() has returned, every byte must
    # already be in the pipe or read: a process exits right after it. Another
    # program sharing the terminal may have made it non-blocking. Output that
    # ends in NUL bytes (the drain marker's first byte) is not held back.
    read_end, terminal = os.pipe()
    os.set_blocking(terminal, blocking)
    # The pump reads the pipe in 64 KiB chunks: the last 60 KiB then come
    # with the drain marker, while the terminal is full.
    payload = bytes(range(256)) * (4096 * 2 + 240) + ending
    tee = FdTee(terminal, tmp_path / "out")
    tee.start()

    def run() -> None:
        view = memoryview(payload)
        while view:  # into the pump's pipe
            view = view[os.write(terminal, view) :]
        tee.stop()

    writer = threading.Thread(target=run)
    writer.start()
    received = bytearray()
    try:
        while writer.is_alive():
            if select.select([read_end], [], [], 0.05)[0]:
                received += os.read(read_end, 1024)
        at_stop = len(received) + _pending(read_end)
        os.set_blocking(read_end, False)
        while _pending(read_end):
            received += os.read(read_end, 1 << 16)
    finally:
        os.close(read_end)
        os.close(terminal)
    assert at_stop == len(payload)
    assert received == payload
    assert (tmp_path / "out").read_bytes() == payload


BIG_OUTPUT = """
import argparse, sys
from meticulous_hydra import record
p = argparse.ArgumentParser()
p.add_argument("--i", type=int)
args, exp = record(p)
line = (str(args.i) * 99)[:99] + "\\n"
sys.stdout.write(line * 50_450)  # 5 MB, the last 64 KiB chunk nearly full
sys.stdout.write("end\\n")  # still in Python's buffer when the run ends
"""


def _expected(i: int) -> bytes:
    return ((str(i) * 99)[:99] + "\n").encode() * 50_450 + b"end\n"


def _slow_read(fd: int, total: int) -> tuple[int, str]:
    """Read a pipe like `(sleep 0.3; wc -c)` on a busy machine: the last
    192 KiB at 1 KiB in 2 ms, slower than a process takes to exit. Returns
    the length and digest of what was read."""
    digest = hashlib.sha256()
    got = 0
    while chunk := os.read(fd, 1 << 16 if total - got > 3 << 16 else 1024):
        digest.update(chunk)
        got += len(chunk)
        if total - got <= 3 << 16:
            time.sleep(0.002)  # the slow consumer, not a synchronisation
    return got, digest.hexdigest()


def test_all_output_reaches_slow_pipes_of_parallel_runs(repo: Path) -> None:
    # `python big.py | (sleep 0.3; wc -c)` lost the last chunk in 2 of 15
    # runs: four runs at once, each stdout a pipe read slowly at the end.
    write_script(repo, "big.py", BIG_OUTPUT, commit=True)
    expected = [(len(_expected(i)), hashlib.sha256(_expected(i)).hexdigest()) for i in range(4)]
    procs = [
        subprocess.Popen(
            [sys.executable, "big.py", "--i", str(i)],
            cwd=repo,
            stdout=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
        )
        for i in range(4)
    ]
    outputs: list[tuple[int, str]] = [(0, "")] * 4

    def read(i: int) -> None:
        outputs[i] = _slow_read(procs[i].stdout.fileno(), expected[i][0])  # type: ignore[union-attr]

    readers = [threading.Thread(target=read, args=(i,)) for i in range(4)]
    with contextlib.ExitStack() as stack:
        for proc, reader in zip(procs, readers, strict=True):
            stack.enter_context(watchdog(proc))
            reader.start()
        for proc, reader in zip(procs, readers, strict=True):
            reader.join()
            assert proc.wait() == 0
            proc.stdout.close()  # type: ignore[union-attr]
    assert outputs == expected  # (length, sha256) of each run's output
    files = (repo / "experiments").glob("[0-9]*/stdout")
    recorded = sorted((f.stat().st_size, hashlib.sha256(f.read_bytes()).hexdigest()) for f in files)
    assert recorded == sorted(expected)


def test_a_child_that_outlives_the_process_still_reaches_the_pipe(tmp_path: Path) -> None:
    write_script(
        tmp_path,
        "outlive.py",
        """
        import os, sys
        from meticulous_hydra import Experiment
        exp = Experiment({}, code_dir=".")
        # a helper that prints once this process has exited (its stdin then ends)
        r, w = os.pipe()
        code = "import sys; sys.stdin.read(); print('after the parent exited', flush=True)"
        os.posix_spawn(sys.executable, [sys.executable, "-c", code], os.environ,
                       file_actions=[(os.POSIX_SPAWN_DUP2, r, 0)])
        os.close(r)
        print("run output", flush=True)
        """,
    )
    # the pipe ends when its last holder is gone: the child, then the relay
    proc = run_python(["outlive.py"], tmp_path, check=True)
    assert proc.stdout.splitlines() == ["run output", "after the parent exited"]
    folder = tmp_path / "experiments" / "1"
    assert status_of(folder)[0] == "SUCCESS"
    assert (folder / "stdout").read_text() == "run output\nafter the parent exited\n"


def _until(condition: Callable[[], bool], what: str, seconds: float = 30) -> None:
    """Wait for ``condition`` (checked after each short wait), failing after ``seconds``."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"never happened: {what}"
        threading.Event().wait(0.01)


def _read_all(fd: int) -> bytes:
    out = b""
    while select.select([fd], [], [], 0)[0]:
        try:
            chunk = os.read(fd, 1 << 16)
        except OSError:  # EIO: the other side is closed
            break
        if not chunk:
            break
        out += chunk
    return out


def test_a_terminal_gets_a_pseudo_terminal_set_up_as_it(tmp_path: Path) -> None:
    # The "real terminal" is a pseudo-terminal of this test (its master read
    # here), the fd teed is its slave.
    master, terminal = os.openpty()
    fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", 33, 77, 0, 0))
    real_attrs = termios.tcgetattr(terminal)
    tee = FdTee(terminal, tmp_path / "out", terminal=True)
    tee.start()
    try:
        assert tee.mode == "terminal" and os.isatty(terminal)
        assert os.ttyname(terminal) != os.ttyname(master)  # another one: ours
        attrs = termios.tcgetattr(terminal)
        assert attrs[1] == real_attrs[1] & ~termios.OPOST  # the real one post-processes
        assert [attrs[i] for i in (0, 2, 3)] == [real_attrs[i] for i in (0, 2, 3)]
        assert tuple(os.get_terminal_size(terminal)) == (77, 33)
        # a resize: followed at once by the handler, and within 0.1 s without it
        fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", 20, 50, 0, 0))
        capture._WINCH.handle(signal.SIGWINCH, None)
        assert tuple(os.get_terminal_size(terminal)) == (50, 20)
        fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", 21, 51, 0, 0))
        _until(lambda: tuple(os.get_terminal_size(terminal)) == (51, 21), "the size followed")
        os.write(terminal, b"a\tb\n\r\x1b[32mc\x00\n")
    finally:
        tee.stop()
    shown = _read_all(master)
    os.close(master)
    os.close(terminal)
    # the same bytes on screen as without the pseudo-terminal: ONLCR once
    assert shown == b"a\tb\r\n\r\x1b[32mc\x00\r\n"
    assert (tmp_path / "out").read_bytes() == b"a\tb\n\r\x1b[32mc\x00\n"


def test_a_reader_that_went_away_closes_the_pipe(tmp_path: Path) -> None:
    # `| head -1`: once the pump finds the reader gone, the program's next
    # write fails with EPIPE, as it would without the tee, and the file
    # is not filled any further
    reader, fd = os.pipe()
    events: list[tuple[str, str]] = []
    tee = FdTee(fd, tmp_path / "out", event=lambda *e: events.append(e))
    tee.start()
    try:
        os.write(fd, b"first\n")
        _until(lambda: os.read(reader, 100) == b"first\n", "the first line read")
        os.close(reader)

        def broken() -> bool:
            try:
                os.write(fd, b"more\n")
            except BrokenPipeError:
                return True
            return False

        _until(broken, "EPIPE for the writer")
        size = (tmp_path / "out").stat().st_size
        with pytest.raises(BrokenPipeError):
            os.write(fd, b"more\n")
    finally:
        tee.stop()
        os.close(fd)
    assert (tmp_path / "out").stat().st_size == size < 1000
    assert [kind for kind, _ in events] == ["broken pipe"]
    assert "reader went away after" in events[0][1]


def test_a_terminal_that_hung_up_gives_eio(tmp_path: Path) -> None:
    master, terminal = os.openpty()
    tee = FdTee(terminal, tmp_path / "out", terminal=True)
    tee.start()
    try:
        os.close(master)  # the terminal window closed

        def hung_up() -> bool:
            try:
                os.write(terminal, b"x\n")
            except OSError as e:
                return e.errno == errno.EIO
            return False

        _until(hung_up, "EIO for the writer")
    finally:
        tee.stop()
        os.close(terminal)


def test_fds_sharing_a_tee_are_put_back_each_as_it_was(tmp_path: Path) -> None:
    # `> log 2>>log`: two opens of one file (told apart by O_APPEND) share a
    # tee while recording, and each gets its own back
    log = tmp_path / "log"
    a = os.open(log, os.O_WRONLY | os.O_CREAT)
    b = os.open(log, os.O_WRONLY | os.O_APPEND)
    tee = FdTee((a, b), tmp_path / "out")
    tee.start()
    os.write(a, b"one\n")
    os.write(b, b"two\n")
    tee.stop()
    assert fcntl.fcntl(a, fcntl.F_GETFL) & os.O_APPEND == 0
    assert fcntl.fcntl(b, fcntl.F_GETFL) & os.O_APPEND
    assert (tmp_path / "out").read_bytes() == b"one\ntwo\n"
    os.close(a)
    os.close(b)
