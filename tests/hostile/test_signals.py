"""Signals tell the truth: a run interrupted at any moment of its start-up
ends INTERRUPTED, SIGHUP (the terminal closed) is an interruption, and a
Ctrl-C traceback is the user's alone. Real processes, real signals."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import warnings
from pathlib import Path

import pandas as pd
import pytest
from helpers import make_repo, start_blocked, status_of, watchdog

from meticulous_hydra import load_experiments
from meticulous_hydra.reader.reader import ReadWarning

# A parent that imports once and forks one child per step; each child starts a
# run in its own root and sends itself the signal right after its step-th
# operation that changes something (a file created, written, renamed, closed,
# an fd redirected, a thread started: reads change nothing, so between two of
# these every moment is alike), or that reads a module being imported (a
# signal inside an import), from the moment it first creates its root on (for
# a Hydra sweep, in the launching process) until the run is started, then
# the run's folder is inspected. Step 0 is a child never signalled: it counts
# the steps. {prepare} runs once in the parent, {start} in each child: it
# starts the run in roots/<step> and calls started() once the run is started.
STEPS = """
import _io, builtins, json, os, signal, sys, threading

signum = int(sys.argv[1])
from pathlib import Path
from meticulous_hydra import layout
{prepare}

calls = None  # counting from the first ensure_root on
step = 0
OPS = [(os, n) for n in ("open", "mkdir", "replace", "rename", "write", "close", "dup",
                          "dup2", "pipe", "utime", "symlink")]
OPS += [(builtins, "open"), (threading.Thread, "start"), (_io, "open_code")]

def at_step(real):
    def op(*args, **kwargs):
        global calls
        result = real(*args, **kwargs)
        if calls is None:
            return result
        calls += 1
        if calls == step:
            os.kill(os.getpid(), signum)
        return result
    return op

def started():
    for module, name in OPS:  # the start-up is over
        setattr(module, name, getattr(module, name).__closure__[0].cell_contents)
    if step == 0:
        with open("steps", "w") as f:
            f.write(str(calls))

# made once, so that every child makes the same folders: only its own
os.makedirs("roots", exist_ok=True)
os.makedirs("sweeps", exist_ok=True)
results = {{}}
total = None
while total is None or step < total:
    pid = os.fork()
    if pid == 0:
        break  # the child starts a run below, at the top level like any program
    _, status = os.waitpid(pid, 0)
    if step == 0:
        total = int(open("steps").read())
    results[step] = os.waitstatus_to_exitcode(status)
    step += 1
else:
    print(json.dumps(results))
    sys.exit(0)

def counting(real):
    def ensure_root(*args, **kwargs):
        global calls
        if calls is None:
            calls = 0
        return real(*args, **kwargs)
    return ensure_root

for module, name in OPS:
    setattr(module, name, at_step(getattr(module, name)))
layout.ensure_root = counting(layout.ensure_root)
{start}
"""

STARTUP = STEPS.format(
    prepare="""
from meticulous_hydra import Experiment
from meticulous_hydra.recorder import provenance
from meticulous_hydra.recorder.gitstate import read_git_state

# read once, as a sweep's launcher does: the children start from there
git = read_git_state(Path("."), allow_dirty=True, flag_hint="")
provenance.installed_packages()
""",
    start="""
exp = Experiment._for_adapter({"a": 1}, root=f"roots/{step}", git_state=git)
started()
exp.finish()
""",
)


def _steps(folder: Path, signum: int, *args: str) -> dict[int, int]:
    """Run ``folder/startup.py`` (made of STEPS): each step's exit code."""
    # -B: a child that compiled a module and wrote its .pyc would do steps the
    # others don't, and the steps must be the same in every child
    proc = subprocess.run(
        [sys.executable, "-B", "startup.py", str(int(signum)), *args],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    codes = {int(k): v for k, v in json.loads(proc.stdout.splitlines()[-1]).items()}
    assert codes.pop(0) == 0, proc.stderr[-3000:]  # the step never signalled ends well
    return codes


DETAIL = {signal.SIGINT: "KeyboardInterrupt", signal.SIGTERM: "SIGTERM", signal.SIGHUP: "SIGHUP"}


@pytest.mark.parametrize(
    "signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP], ids=["sigint", "sigterm", "sighup"]
)
def test_a_signal_at_any_step_of_the_start_ends_the_run_interrupted(
    tmp_path: Path, signum: int
) -> None:
    (tmp_path / "startup.py").write_text(STARTUP)
    codes = _steps(tmp_path, signum)
    assert len(codes) > 20  # every step of the start-up, one by one
    outcomes = ""
    for step, code in codes.items():
        assert code == -signum, (step, code)  # the program died of the signal, as it would have
        root = tmp_path / "roots" / str(step)
        folders = [p for p in root.iterdir() if not p.name.startswith(".")] if root.exists() else []
        assert len(folders) <= 1
        if not folders:
            outcomes += "-"  # interrupted before the run had a folder
            continue
        folder = folders[0]
        files = {p.name for p in folder.iterdir()}

        frame = load_experiments(root, cache=False)
        assert len(frame) == 1, (step, files)
        row = frame.iloc[0]
        assert row["status"] == "INTERRUPTED", (step, files, status_of(folder))
        assert DETAIL[signum] in status_of(folder)[1], step
        assert row["config.a"] == 1 and pd.isna(row["read_error"]), (step, row["read_error"])
        outcomes += "I"
    # INTERRUPTED at every step: a signal while the root and the folder are
    # made waits until the run knows its folder
    assert re.fullmatch(r"I{20,}", outcomes), outcomes


HYDRA_STARTUP = STEPS.format(
    prepare="""
import hydra

@hydra.main(version_base="1.3", config_path=None, config_name=None)
def main(cfg):
    started()
""",
    start="""
sys.argv[1:] = ["hydra/callbacks=meticulous", f"hydra.callbacks.meticulous.root=roots/{step}",
                f"hydra.sweep.dir=sweeps/{step}", "+a=1", *sys.argv[2:]]
main()
""",
)


def _folders(root: Path) -> list[Path]:
    """The run folders under ``root``, listed by the reader or not."""
    return [p for p in root.iterdir() if not p.name.startswith(".")] if root.exists() else []


# SIGTERM and SIGHUP take one path (hooks.py): each is tried in one mode
@pytest.mark.parametrize(
    ("signum", "mode"),
    [
        (signal.SIGINT, "run"),
        (signal.SIGINT, "sweep"),
        (signal.SIGTERM, "sweep"),
        (signal.SIGHUP, "run"),
    ],
    ids=["sigint-run", "sigint-sweep", "sigterm-sweep", "sighup-run"],
)
def test_a_signal_at_any_step_of_a_hydra_start_ends_the_job_interrupted(
    tmp_path: Path, signum: int, mode: str
) -> None:
    ignored = "roots/\nsteps\nsweeps/\n"
    repo = make_repo(tmp_path / "app", {"startup.py": HYDRA_STARTUP, ".gitignore": ignored})
    codes = _steps(repo, signum, *(["-m"] if mode == "sweep" else []))  # a sweep of one job
    outcomes = ""
    for step, code in codes.items():
        assert code == -signum, (step, code)  # Hydra died of the signal, as it would have
        root = repo / "roots" / str(step)
        folders = _folders(root)
        if not folders:
            outcomes += "-"  # interrupted before the job had a folder: nothing is left of it
            continue
        (folder,) = folders
        files = sorted(p.name for p in folder.iterdir())
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ReadWarning)  # a job stopped before its task
            frame = load_experiments(root, cache=False)
        assert len(frame) == 1, (step, files)  # listed, never an unlisted folder
        assert frame.iloc[0]["status"] == "INTERRUPTED", (step, files, status_of(folder))
        assert DETAIL[signum] in status_of(folder)[1], (step, files)
        outcomes += "I"
    # From the moment the job's folder exists, every step ends it INTERRUPTED:
    # a run at once (the root is made with the folder); a sweep's launching
    # process makes the root before any job has a folder.
    pattern = r"I{40,}" if mode == "run" else r"-{5,}I{40,}"
    assert re.fullmatch(pattern, outcomes), outcomes


BLOCKING = """
import os, sys
from meticulous_hydra import Experiment

def train():
    print("ready", flush=True)
    with open(os.environ["BLOCK_FIFO"]) as f:   # blocks until the signal
        f.read()

exp = Experiment({"lr": 0.1}, code_dir=".")
train()
exp.finish()
"""


def _blocked(repo: Path, *args: str) -> subprocess.Popen[str]:
    """``app.py ARGS`` in a session of its own, once it blocks in its task."""
    proc = start_blocked(repo, ["app.py", *args])
    with watchdog(proc):
        assert proc.stdout.readline() == "ready\n", proc.stderr.read()
    return proc


def test_sighup_ends_the_run_interrupted(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "app", {"app.py": BLOCKING, ".gitignore": "fifo\n"})
    proc = _blocked(repo)
    with watchdog(proc):
        os.killpg(proc.pid, signal.SIGHUP)  # the terminal closed: its session gets SIGHUP
        proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGHUP  # dies of it, as it would have
    status, detail = status_of(repo / "experiments" / "1")
    assert status == "INTERRUPTED" and "SIGHUP" in detail
    assert load_experiments(repo / "experiments", cache=False).loc[1, "status"] == "INTERRUPTED"


def test_sighup_ignored_by_nohup_stays_ignored(tmp_path: Path) -> None:
    app = BLOCKING.replace(
        "import os, sys", "import os, signal, sys\nsignal.signal(signal.SIGHUP, signal.SIG_IGN)"
    )
    repo = make_repo(tmp_path / "app", {"app.py": app, ".gitignore": "fifo\n"})
    proc = _blocked(repo)
    with watchdog(proc):
        os.killpg(proc.pid, signal.SIGHUP)
        with open(repo / "fifo", "w"):  # then let it finish
            pass
        proc.communicate(timeout=60)
    assert proc.returncode == 0
    assert status_of(repo / "experiments" / "1")[0] == "SUCCESS"


HYDRA_BLOCKING = """
import os
import hydra

def train():
    print("ready", flush=True)
    with open(os.environ["BLOCK_FIFO"]) as f:
        f.read()

@hydra.main(version_base="1.3", config_path=None, config_name=None)
def main(cfg):
    train()

if __name__ == "__main__":
    main()
"""


@pytest.mark.parametrize("kind", ["experiment", "hydra"])
def test_a_ctrl_c_traceback_shows_no_frame_of_ours(tmp_path: Path, kind: str) -> None:
    app = BLOCKING if kind == "experiment" else HYDRA_BLOCKING
    repo = make_repo(tmp_path / "app", {"app.py": app, ".gitignore": "fifo\noutputs/\n"})
    hydra_args = ["hydra/callbacks=meticulous", "+x=1"] if kind == "hydra" else []
    proc = _blocked(repo, *hydra_args)
    with watchdog(proc):
        os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGINT
    traceback = err[err.index("Traceback (most recent call last)") :]
    assert "in train" in traceback and traceback.rstrip().endswith("KeyboardInterrupt")
    assert "meticulous_hydra" not in traceback, traceback
    status, detail = status_of(repo / "experiments" / "1")
    assert status == "INTERRUPTED" and "KeyboardInterrupt" in detail
