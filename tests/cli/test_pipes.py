"""Every command exits quietly when the reader of its output has gone (issue
23.7): real processes, writing into a pipe whose reading end is closed (what
`| head -1` leaves once head has read its line), and through `| head` itself."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent

COMMANDS = [
    ["meticulous", "reproduce", "1"],
    ["meticulous", "rerun", "--failed", "--dry-run"],
    ["meticulous", "show", "1-3"],
    ["meticulous", "diff", "1", "7"],
    ["meticulous", "restore", "--list"],
    ["meticulous", "--help"],
    ["meticulous-summary"],
    ["meticulous-summary", "--format", "csv"],
    ["meticulous-summary", "--group-by", "model"],
    ["meticulous-summary", "--watch", "0.1"],
]


def run_into_closed_pipe(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    read, write = os.pipe()
    os.close(read)  # nobody will ever read: the first write fails
    try:
        return subprocess.run(
            [str(BIN / argv[0]), *argv[1:]],
            cwd=cwd,
            stdout=write,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
            timeout=120,
        )
    finally:
        os.close(write)


@pytest.mark.parametrize("argv", COMMANDS, ids=" ".join)
def test_a_closed_pipe_ends_a_command_quietly(realistic_root: Path, argv: list[str]) -> None:
    proc = run_into_closed_pipe(argv, realistic_root.parent)
    assert proc.stderr == "" and proc.returncode == 0, proc.stderr


def test_head_takes_its_lines_and_nothing_else_is_said(realistic_root: Path) -> None:
    for command, lines in (
        ("meticulous reproduce 1 | head -1", 1),
        ("meticulous rerun --failed --dry-run | head -3", 3),
    ):
        proc = subprocess.run(
            f"{BIN}/{command}",
            shell=True,
            cwd=realistic_root.parent,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.stderr == "" and len(proc.stdout.splitlines()) == lines, proc.stderr
