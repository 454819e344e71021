"""Output capture (capture.py): every byte reaches the terminal or pipe, and the file."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import select
import struct
import subprocess
import sys
import termios
import threading
import time
from pathlib import Path

import pytest
from helpers import run_python, status_of, watchdog, write_script

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
