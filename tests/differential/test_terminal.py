"""A terminal stays a terminal, a closed pipe stays closed, a closed fd stays
closed and an exec'd program keeps its output and exit code: the shapes of
issue 20 (points 1, 2 and 8), each run tracking off and on by the
differential harness (harness.py) and compared on everything observable.

The apps are plain scripts that record with ``Experiment`` when given
``--track`` (a Hydra app where Hydra's own output is part of the shape)."""

from __future__ import annotations

import re
import signal
from pathlib import Path

import pytest
from helpers import status_of

from meticulous_hydra.cli.summary import show_one
from meticulous_hydra.reader.reader import ExperimentReader

from .harness import RECORDING_LINE, Case, Observed, assert_invisible

TRACK = ["--track"]


def tracked(body: str, *, before: str = "") -> dict[str, str]:
    """A script that runs ``before``, starts recording when given --track,
    then runs ``body``."""
    return {
        "app.py": "import os, signal, subprocess, sys, threading\n"
        + before
        + "if '--track' in sys.argv:\n"
        + "    from meticulous_hydra import Experiment\n"
        + "    exp = Experiment({'app': 1}, code_dir='.')\n"
        + body
    }


def run_folder(base: Path, case: Case, n: int = 1) -> Path:
    return base / f"{case.name}-on" / case.root / str(n)


def recorded_as_shown(folder: Path, on: Observed) -> None:
    """The run's files keep what was shown (both streams went to the one
    terminal or pipe, so ``stdout`` holds both, in the order shown)."""
    shown = RECORDING_LINE.sub(b"", on.shown.replace(b"\r\n", b"\n"))
    assert (folder / "stdout").read_bytes() == shown
    assert (folder / "stderr").read_bytes() == b""


# -- 20.1: the program still sees a terminal -------------------------------------------------

# tqdm's shape: a bar redrawn with \r on stderr, in colour only on a terminal,
# lines printed on stdout between redraws, and Hydra's log line.
PROGRESS_APP = {
    "app.py": """
        import logging
        import sys

        import hydra

        log = logging.getLogger(__name__)


        def bar(i, n):
            fill = "#" * (i * 20 // n)
            text = f"{i * 100 // n:3d}%|{fill:<20}| {i}/{n}"
            if sys.stderr.isatty():
                text = f"\\x1b[32m{text}\\x1b[0m"
            sys.stderr.write("\\r" + text)
            sys.stderr.flush()


        @hydra.main(version_base="1.3", config_path=None, config_name=None)
        def main(cfg):
            print(f"isatty={sys.stdout.isatty()}/{sys.stderr.isatty()}", flush=True)
            log.info("training")
            n = 400
            for i in range(n + 1):
                bar(i, n)
                if i % 100 == 0:
                    print(f"\\nepoch {i // 100}", flush=True)
            sys.stderr.write("\\n")


        if __name__ == "__main__":
            main()
    """
}


# Hydra's files where the app puts them (by default they go into the run
# folder), and the callback chosen as a config group
RUN_DIR = "hydra.run.dir=outputs/run"
CALLBACK = ["hydra/callbacks=meticulous"]


def test_a_progress_bar_app_sees_a_terminal(tmp_path: Path) -> None:
    case = Case("progress", PROGRESS_APP, ["app.py", RUN_DIR], on=CALLBACK)
    _, on = assert_invisible(case, "tty", tmp_path)
    assert b"isatty=True/True" in on.shown and b"\x1b[32m" in on.shown
    folder = run_folder(tmp_path, case)
    recorded_as_shown(folder, on)
    # show --tail renders the redraws as the terminal left them: the last frame
    shown = show_one(folder, tail=3)
    tail = shown[shown.index("stdout (last") :]
    assert "100%|####################| 400/400" in tail
    assert "75%" not in tail and "\x1b" not in tail and "\r" not in tail
    assert "stderr: (in stdout: both went to one terminal" in tail


def test_a_progress_bar_app_into_a_pipe_is_as_before(tmp_path: Path) -> None:
    case = Case("progress-pipe", PROGRESS_APP, ["app.py", RUN_DIR], on=CALLBACK)
    _, on = assert_invisible(case, "pipe", tmp_path)
    assert b"isatty=False/False" in on.shown and b"\x1b[" not in on.stderr
    folder = run_folder(tmp_path, case)
    assert (folder / "stdout").read_bytes() == on.shown
    assert (folder / "stderr").read_bytes() == RECORDING_LINE.sub(b"", on.stderr)


# stdout and stderr alternating, line by line
INTERLEAVED = """
for i in range(500):
    print(f"out {i}", flush=True)
    print(f"err {i}", file=sys.stderr, flush=True)
"""


@pytest.mark.parametrize("mode", ["tty", "merged"])
def test_one_destination_keeps_the_order_of_both_streams(tmp_path: Path, mode: str) -> None:
    # 2>&1 | cat, SLURM's one output file, a terminal: two pumps, one per fd,
    # put the lines out of order (3932 of 4001 in a probe); one serves both
    case = Case(f"interleaved-{mode}", tracked(INTERLEAVED), ["app.py"], on=TRACK)
    _, on = assert_invisible(case, mode, tmp_path)
    recorded_as_shown(run_folder(tmp_path, case), on)


SIZE = """
def on_winch(signum, frame):
    seen.append(tuple(os.get_terminal_size()))
    if seen[-1] == (100, 50):  # the resize the test makes (columns, lines)
        resized.set()

seen = []
resized = threading.Event()
"""
SIZE_BODY = """
print("size", tuple(os.get_terminal_size()), tuple(os.get_terminal_size(2)), flush=True)
print("READY", flush=True)
resized.wait()
print("the handler saw", seen if "--all" in sys.argv else seen[-1], flush=True)
print("size now", tuple(os.get_terminal_size()), tuple(os.get_terminal_size(2)), flush=True)
"""


@pytest.mark.parametrize("installed", ["before", "after"])
def test_the_terminal_size_and_a_resize(tmp_path: Path, installed: str) -> None:
    # The app's SIGWINCH handler, installed before the run starts, is chained
    # to: it sees the new size at once. One installed after replaces ours: the
    # size follows within 0.1 s, and the handler gets one more SIGWINCH then.
    handler = "signal.signal(signal.SIGWINCH, on_winch)\n"
    if installed == "before":
        files, argv = tracked(SIZE_BODY, before=SIZE + handler), ["app.py", "--all"]
    else:
        files, argv = tracked(handler + SIZE_BODY, before=SIZE), ["app.py"]
    case = Case(f"size-{installed}", files, argv, on=TRACK, resize=(b"READY", (50, 100)))
    _, on = assert_invisible(case, "tty", tmp_path)
    assert b"size (120, 40) (120, 40)" in on.shown
    assert b"size now (100, 50) (100, 50)" in on.shown


# -- 20.2: a closed pipe stays closed ----------------------------------------------------------


def test_a_child_writing_forever_into_head(tmp_path: Path) -> None:
    # `python app.py | head -1` with a child that writes forever: untracked,
    # the child dies of SIGPIPE once head has gone, and the app goes on.
    body = """
print("first line", flush=True)
code = subprocess.run(["yes"]).returncode
print("yes ended with", code, file=sys.stderr, flush=True)
"""
    case = Case("head-yes", tracked(body), ["app.py"], on=TRACK, timeout=60)
    _, on = assert_invisible(case, "head", tmp_path)
    assert on.shown == b"first line\n" and on.returncode == 0
    folder = run_folder(tmp_path, case)
    assert (folder / "stdout").stat().st_size < 1 << 20  # not filled after head had gone
    status, detail = status_of(folder)
    assert status == "SUCCESS" and "broken pipe" in detail


@pytest.mark.parametrize("sigpipe", ["ignored", "default"])
def test_a_print_loop_into_head(tmp_path: Path, sigpipe: str) -> None:
    # Python ignores SIGPIPE: print raises BrokenPipeError. A program that
    # puts SIGPIPE back to its default dies of it, before any code of ours
    # can run: the status says so from the moment the pipe broke.
    before = "signal.signal(signal.SIGPIPE, signal.SIG_DFL)\n" if sigpipe == "default" else ""
    body = """
i = 0
while True:
    print(i)
    i += 1
"""
    case = Case(f"head-print-{sigpipe}", tracked(body, before=before), ["app.py"], on=TRACK)
    _, on = assert_invisible(case, "head", tmp_path)
    assert on.shown == b"0\n"
    folder = run_folder(tmp_path, case)
    assert (folder / "stdout").stat().st_size < 1 << 20
    status, detail = status_of(folder)
    assert "stdout: broken pipe: its reader went away" in detail
    if sigpipe == "ignored":
        assert on.returncode == 1 and b"BrokenPipeError" in on.stderr
        assert status == "ERROR" and "BrokenPipeError" in detail
        assert ExperimentReader(folder).row()["status_detail"].startswith("BrokenPipeError")
    else:
        assert on.returncode == -signal.SIGPIPE
        assert status == "INTERRUPTED" and detail.startswith("SIGPIPE")


# -- 20.8: exec, and closed fds ----------------------------------------------------------------

EXEC = """
print("before the exec", flush=True)
print("isatty", sys.stdout.isatty(), sys.stderr.isatty(), file=sys.stderr, flush=True)
os.execv("/bin/sh", ["sh", "-c", "echo from the exec; echo exec stderr >&2; exit 3"])
"""


@pytest.mark.parametrize("mode", ["tty", "pipe"])
def test_exec_inside_a_run(tmp_path: Path, mode: str) -> None:
    case = Case(f"exec-{mode}", tracked(EXEC), ["app.py"], on=TRACK)
    _, on = assert_invisible(case, mode, tmp_path)
    assert on.returncode == 3
    folder = run_folder(tmp_path, case)
    status, detail = status_of(folder)
    assert status == "SUCCESS" and detail.startswith("exec: /bin/sh")
    if mode == "tty":
        recorded_as_shown(folder, on)
    else:
        assert (folder / "stdout").read_bytes() == b"before the exec\nfrom the exec\n"
        stderr = (folder / "stderr").read_bytes()
        assert stderr == b"isatty False False\nexec stderr\n"


# The app opens a file of its own (where a closed fd lands), and a child
# prints to both streams (it inherits the closed one closed).
CLOSED = """
data = open("data.txt", "w")
fds = {fd: os.path.basename(os.readlink(f"/proc/self/fd/{fd}")) if os.path.exists(f"/proc/self/fd/{fd}") else "closed" for fd in (1, 2)}
print("fds", fds, "streams", sys.stdout is None, sys.stderr is None, file=sys.stderr or data, flush=True)
print("to stdout", flush=True)
subprocess.run(["sh", "-c", "echo child out; echo child err >&2"])
print("done", file=sys.stderr or data, flush=True)
data.close()
"""


@pytest.mark.parametrize("fd", [1, 2])
def test_a_closed_fd_stays_closed(tmp_path: Path, fd: int) -> None:
    # `python app.py >&-` (or 2>&-): a wrapper closes the fd, then execs python
    wrapper = (
        f"import os, sys; os.close({fd}); os.execv(sys.executable, [sys.executable, *sys.argv[1:]])"
    )
    case = Case(
        f"closed-{fd}",
        tracked(CLOSED),
        ["-c", wrapper, "app.py"],
        on=TRACK,
        substitutions=[(re.compile(rb"pipe:\[\d+\]"), b"pipe")],
    )
    _, on = assert_invisible(case, "pipe", tmp_path)
    assert on.returncode == 0
    data = on.files["data.txt"].decode()
    seen = on.stderr.decode() + data
    # the app's own file took the closed fd, as it does untracked
    assert re.search(rf"fds {{.*{fd}: 'data.txt'", seen), seen
    folder = run_folder(tmp_path, case)
    assert status_of(folder)[0] == "SUCCESS"
    assert "child" not in (folder / ("stdout" if fd == 1 else "stderr")).read_text()
