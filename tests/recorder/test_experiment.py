"""The recorder (Experiment): folders, git state, files, status lifecycle, capture."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import git, make_repo, metadata_of, run_python, status_of, watchdog, write_script

from meticulous_hydra import layout
from meticulous_hydra.recorder.environment import command_argv

SCRIPT = """
import os, sys, time
from meticulous_hydra import Experiment

mode = sys.argv[1]
exp = Experiment({"lr": 0.1, "layers": [64, 32], "name": "mlp"}, capture_output=mode != "nocapture")
print("hello from the run", flush=True)
os.system("echo from a child process")
os.write(2, b"raw bytes to fd 2\\n")
exp.summary({"acc": {"top1": 0.5}})
exp.summary({"acc": {"top5": 0.9}, "loss": float("inf")})
exp.log({"loss": 0.3}, step=1)
exp.log({"loss": 0.2}, step=2)
if mode == "exit0":
    sys.exit(0)
if mode == "exit3":
    sys.exit(3)
if mode == "raise":
    raise ValueError("boom")
if mode == "kbd":
    raise KeyboardInterrupt
if mode == "sigterm":
    os.kill(os.getpid(), 15)
    time.sleep(60)
"""


@pytest.fixture
def script(repo: Path) -> Path:
    return write_script(repo, "run.py", SCRIPT, commit=True)


@pytest.mark.parametrize(
    ("mode", "rc", "status", "detail"),
    [
        ("ok", 0, "SUCCESS", ""),
        ("exit0", 0, "SUCCESS", ""),
        ("exit3", 3, "ERROR", "exit code 3"),
        ("raise", 1, "ERROR", "ValueError: boom"),
        ("kbd", -signal.SIGINT, "INTERRUPTED", "KeyboardInterrupt"),
        ("sigterm", -signal.SIGTERM, "INTERRUPTED", "SIGTERM"),
    ],
)
def test_status_follows_how_the_run_ends(
    script: Path, mode: str, rc: int, status: str, detail: str
) -> None:
    proc = run_python([str(script), mode], script.parent)
    assert proc.returncode == rc, proc.stderr
    folder = script.parent / "experiments" / "1"
    got_status, got_detail = status_of(folder)
    assert got_status == status
    assert detail in got_detail
    meta = metadata_of(folder)
    assert meta["end_time"] is not None and meta["duration"] >= 0
    if mode == "raise":
        assert got_detail.startswith("Traceback (most recent call last):")
        # the traceback is printed as usual, and captured with the rest of stderr
        assert "ValueError: boom" in proc.stderr
        assert "ValueError: boom" in (folder / "stderr").read_text()


def test_files_of_a_run(script: Path) -> None:
    git(script.parent, "remote", "add", "origin", "https://example.com/lab/project.git")
    proc = run_python([str(script), "ok"], script.parent, check=True)
    folder = script.parent / "experiments" / "1"
    import yaml

    assert yaml.safe_load((folder / "config.yaml").read_text()) == {
        "lr": 0.1,
        "layers": [64, 32],
        "name": "mlp",
    }
    assert json.loads((folder / "config.json").read_text())["layers"] == [64, 32]
    meta = metadata_of(folder)
    head = git(script.parent, "rev-parse", "HEAD").strip()
    assert meta["git"]["sha"] == head
    assert meta["git"]["branch"] == "main"
    assert meta["git"]["message"] == "add run.py"
    assert meta["git"]["dirty"] is False
    assert meta["git"]["remote"] == "https://example.com/lab/project.git"
    assert meta["format_version"] == layout.FORMAT_VERSION
    assert meta["id"] == "1" and meta["pid"] > 0 and meta["host"]
    assert meta["argv"] == [str(script), "ok"]
    assert meta["start_time"].endswith("+00:00") or meta["start_time"][-6] in "+-"
    # summary merges nested dicts by key; inf is stored as a JSON number
    assert json.loads((folder / "summary.json").read_text()) == {
        "acc": {"top1": 0.5, "top5": 0.9},
        "loss": float("inf"),
    }
    lines = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
    assert [(m["step"], m["loss"]) for m in lines] == [(1, 0.3), (2, 0.2)]
    assert all("time" in m for m in lines)
    # fd-level capture: print, a child process and raw fd writes, still shown on the terminal
    out = (folder / "stdout").read_text()
    assert "hello from the run" in out and "from a child process" in out
    assert "raw bytes to fd 2" in (folder / "stderr").read_text()
    assert "hello from the run" in proc.stdout and "from a child process" in proc.stdout
    # the root keeps itself out of git status
    assert (script.parent / "experiments" / ".gitignore").read_text() == "*\n"
    assert git(script.parent, "status", "--porcelain") == ""


def test_dirty_tree_is_refused_before_any_folder(
    script: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from meticulous_hydra import DirtyRepoError, Experiment

    monkeypatch.chdir(script.parent)
    (script.parent / "README").write_text("changed\n")
    with pytest.raises(DirtyRepoError) as refused:
        Experiment({}, code_dir=script.parent, capture_output=False)
    message = str(refused.value)
    assert "uncommitted changes" in message and "README" in message
    assert "allow_dirty" in message
    assert not (script.parent / "experiments" / "1").exists()


def test_allow_dirty_saves_diff_and_untracked(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from meticulous_hydra import Experiment

    write_script(repo, "run.py", "# an untracked script\n")
    (repo / "README").write_text("changed line\n")
    (repo / "notes.txt").write_text("untracked\n")
    monkeypatch.chdir(repo)
    Experiment({}, allow_dirty=True, code_dir=repo, capture_output=False).finish()
    folder = repo / "experiments" / "1"
    meta = metadata_of(folder)
    assert meta["git"]["dirty"] is True
    assert meta["git"]["modified"] == ["README"]
    assert set(meta["git"]["untracked"]) == {"notes.txt", "run.py"}
    diff = (folder / "git.diff").read_text()
    assert "+changed line" in diff and "-test repo" in diff


def test_outside_a_git_repository(tmp_path: Path) -> None:
    write_script(
        tmp_path,
        "run.py",
        "from meticulous_hydra import Experiment\nExperiment({}); Experiment({})\n",
    )
    proc = run_python(["run.py"], tmp_path, check=True)
    assert proc.stderr.count("not in a git repository") == 1  # warned once
    for n in ("1", "2"):
        meta = metadata_of(tmp_path / "experiments" / n)
        assert meta["git"] is None
        assert status_of(tmp_path / "experiments" / n)[0] == "SUCCESS"


def test_numbering_skips_custom_ids_and_keeps_gaps(tmp_path: Path) -> None:
    root = layout.ensure_root(tmp_path / "deep" / "experiments")
    assert [layout.claim_next(root).name for _ in range(3)] == ["1", "2", "3"]
    shutil.rmtree(root / "2")
    (root / "best-run").mkdir()
    (root / "7").mkdir()
    assert layout.claim_next(root).name == "8"


def test_a_number_is_never_given_twice_even_after_its_folder_is_deleted(tmp_path: Path) -> None:
    from meticulous_hydra import Experiment

    root = layout.ensure_root(tmp_path / "experiments")
    assert [layout.claim_next(root).name for _ in range(25)][-1] == "25"
    shutil.rmtree(root / "24")
    shutil.rmtree(root / "25")
    exp = Experiment({}, root=root, capture_output=False, code_dir=tmp_path)
    exp.finish()
    assert exp.id == "26"
    (root / "26").rename(root / ".trash-26")  # moved aside, as `meticulous rm` does
    assert layout.claim_next(root).name == "27"
    # a number the user chose is never given by the numbering either
    exp = Experiment({}, root=root, experiment_id="40", capture_output=False, code_dir=tmp_path)
    exp.finish()
    shutil.rmtree(root / "40")
    assert layout.claim_next(root).name == "41"


def test_a_root_from_before_the_number_markers_keeps_its_numbers(tmp_path: Path) -> None:
    root = tmp_path / "experiments"
    for n in (1, 2, 5):
        (root / str(n)).mkdir(parents=True)
    assert layout.claim_next(root).name == "6"
    shutil.rmtree(root / "6")
    assert layout.claim_next(root).name == "7"


@pytest.mark.parametrize("bad", ["../x", "/abs", "a/b", "", ".", "..", "a\x00b", "x" * 256, "a b"])
def test_invalid_ids_are_refused(tmp_path: Path, bad: str) -> None:
    from meticulous_hydra import Experiment, InvalidIdError

    with pytest.raises(InvalidIdError, match="invalid experiment id"):
        Experiment(
            {}, root=tmp_path / "root", experiment_id=bad, capture_output=False, code_dir=tmp_path
        )
    assert list(tmp_path.iterdir()) == []


def test_many_processes_start_at_once(repo: Path) -> None:
    write_script(
        repo,
        "run.py",
        "import sys\nfrom meticulous_hydra import Experiment\n"
        "e = Experiment({'i': int(sys.argv[1])})\nprint(e.id)\n",
        commit=True,
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "run.py", str(i)], cwd=repo, stdout=subprocess.PIPE, text=True
        )
        for i in range(32)
    ]
    ids = [p.communicate(timeout=120)[0].strip() for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert sorted(ids, key=int) == [str(i) for i in range(1, 33)]
    seen = set()
    for n in ids:
        config = json.loads((repo / "experiments" / n / "config.json").read_text())
        seen.add(config["i"])
        assert status_of(repo / "experiments" / n)[0] == "SUCCESS"
    assert seen == set(range(32))


def test_kill_9_during_summary_writes_leaves_valid_json(repo: Path) -> None:
    write_script(
        repo,
        "run.py",
        """
        import sys
        from meticulous_hydra import Experiment
        e = Experiment({}, capture_output=False)
        big = {f"k{i}": "x" * 200 for i in range(200)}
        i = 0
        while True:
            i += 1
            e.summary({"i": i, **big})
            if i % 50 == 0:
                print(i, flush=True)
        """,
        commit=True,
    )
    for attempt in range(3):
        proc = subprocess.Popen(
            [sys.executable, "run.py"], cwd=repo, stdout=subprocess.PIPE, text=True
        )
        with watchdog(proc):
            for _ in range(attempt + 2):
                assert proc.stdout.readline()  # the run is writing summaries in a loop
        proc.kill()
        proc.wait()
        proc.stdout.close()
        folder = repo / "experiments" / str(attempt + 1)
        summary = json.loads((folder / "summary.json").read_text())
        assert summary["i"] >= 50 * (attempt + 2)
        assert status_of(folder)[0] == "RUNNING"  # SIGKILL can't be caught: the reader says DIED


CHAINED = """
import os, signal, sys, time
from meticulous_hydra import Experiment

def handler(signum, frame):  # the program's own (submitit has one too)
    print("the program's handler ran", flush=True)
    if sys.argv[1] == "exit":
        sys.exit(0)

signal.signal(signal.SIGTERM, handler)
exp = Experiment({"x": 1})
if sys.argv[1] == "restore":
    exp.finish()
    print("restored", signal.getsignal(signal.SIGTERM) is handler, flush=True)
    sys.exit(0)
print("ready", flush=True)
while True:
    time.sleep(0.05)
"""


@pytest.mark.parametrize("mode", ["go-on", "exit", "restore"])
def test_sigterm_is_chained_to_the_handler_in_place(repo: Path, mode: str) -> None:
    """Issue 22 #3: with a SIGTERM handler of someone else's in place, the run
    says INTERRUPTED at once, that handler decides what happens next, and
    SLURM's SIGKILL after it (or the handler's own exit) leaves it so."""
    write_script(repo, "run.py", CHAINED, commit=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    proc = subprocess.Popen(
        [sys.executable, "run.py", mode], cwd=repo, stdout=subprocess.PIPE, text=True, env=env
    )
    folder = repo / "experiments" / "1"
    with watchdog(proc), contextlib.ExitStack() as cleanup:
        cleanup.callback(lambda: proc.poll() is None and proc.kill())  # whatever fails
        if mode == "restore":
            assert proc.stdout.read() == "restored True\n"
            assert proc.wait() == 0 and status_of(folder)[0] == "SUCCESS"
            return
        assert proc.stdout.readline() == "ready\n"
        proc.send_signal(signal.SIGTERM)
        assert proc.stdout.readline() == "the program's handler ran\n"
        if mode == "go-on":
            assert proc.poll() is None  # the handler let it go on: so does the run
            assert status_of(folder) == ("INTERRUPTED", "SIGTERM\n")
            proc.kill()  # what SLURM does KillWait seconds later
        proc.wait()
    proc.stdout.close()
    assert proc.returncode == (0 if mode == "exit" else -signal.SIGKILL)
    assert status_of(folder) == ("INTERRUPTED", "SIGTERM\n")  # not SUCCESS, not RUNNING
    from meticulous_hydra import ExperimentReader

    assert ExperimentReader(folder).status == "INTERRUPTED"


def test_summary_converts_values_and_refuses_unknown_types(tmp_path: Path) -> None:
    import datetime
    import enum

    import numpy as np

    from meticulous_hydra import Experiment

    class Color(enum.Enum):
        RED = 1

    exp = Experiment({}, root=tmp_path, capture_output=False, code_dir=tmp_path)
    exp.summary(
        {
            "f32": np.float32(0.5),
            "arr": np.arange(3),
            "path": Path("/data/x"),
            "color": Color.RED,
            "when": datetime.date(2026, 1, 2),
            "nan": float("nan"),
            "ninf": -float("inf"),
        }
    )
    with pytest.raises(TypeError, match=r"bad\.obj: cannot store a object"):
        exp.summary({"bad": {"obj": object()}})
    exp.finish()
    data = json.loads((exp.dir / "summary.json").read_text())
    assert data == {
        "f32": 0.5,
        "arr": [0, 1, 2],
        "path": "/data/x",
        "color": "RED",
        "when": "2026-01-02",
        "nan": None,
        "ninf": -float("inf"),
    }


def test_context_manager_records_error_and_reraises(tmp_path: Path) -> None:
    from meticulous_hydra import Experiment

    with (
        pytest.raises(RuntimeError, match="inner"),
        Experiment({}, root=tmp_path, capture_output=False, code_dir=tmp_path) as exp,
    ):
        raise RuntimeError("inner")
    status, detail = status_of(exp.dir)
    assert status == "ERROR" and "RuntimeError: inner" in detail
    assert (
        sys.excepthook is sys.__excepthook__
        or sys.excepthook.__module__ != "meticulous_hydra.recorder.hooks"
    )


def test_experiments_one_after_another_in_one_process(tmp_path: Path) -> None:
    write_script(
        tmp_path,
        "loop.py",
        """
        import sys, logging
        from meticulous_hydra import Experiment
        logging.basicConfig(level=logging.INFO, stream=sys.stderr)
        hook, exit_ = sys.excepthook, sys.exit
        for seed in range(3):
            with Experiment({"seed": seed}) as exp:
                print(f"seed {seed} training")
                logging.info("log line for seed %d", seed)
                exp.summary({"seed": seed})
        assert sys.excepthook is hook and sys.exit is exit_
        print("after the loop")
        logging.info("logging after the loop")
        """,
    )
    proc = run_python(["loop.py"], tmp_path, check=True)
    for seed in range(3):
        folder = tmp_path / "experiments" / str(seed + 1)
        assert (folder / "stdout").read_text() == f"seed {seed} training\n"
        assert f"log line for seed {seed}" in (folder / "stderr").read_text()
        assert "after the loop" not in (folder / "stdout").read_text()
        assert status_of(folder)[0] == "SUCCESS"
    assert "after the loop" in proc.stdout and "logging after the loop" in proc.stderr


def test_resume_by_id(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # in-process: a run per call, as a script started again would make it
    from meticulous_hydra import Experiment, ResumeMismatchError

    monkeypatch.chdir(repo)

    def run(lr: float, epoch: int) -> None:
        with Experiment({"lr": lr}, experiment_id="baseline", code_dir=repo) as e:
            print("run with", lr)
            e.summary({"epoch": epoch})

    run(0.1, 1)
    folder = repo / "experiments" / "baseline"
    first = metadata_of(folder)
    run(0.1, 2)
    meta = metadata_of(folder)
    assert meta["restarts"] == 1 and meta["start_time"] == first["start_time"]
    assert json.loads((folder / "summary.json").read_text()) == {"epoch": 2}
    out = (folder / "stdout").read_text()
    assert out.index("run with 0.1") < out.index("restart 1") < out.rindex("run with 0.1")
    with pytest.raises(ResumeMismatchError, match="config differs in lr"):
        run(0.5, 3)
    # a new commit makes the old id unresumable too
    (repo / "README").write_text("v2\n")
    git(repo, "commit", "-qam", "v2")
    with pytest.raises(ResumeMismatchError, match="was recorded at commit"):
        run(0.1, 3)
    assert json.loads((folder / "summary.json").read_text()) == {"epoch": 2}
    # the next automatic number is unaffected by the custom id
    auto = Experiment({}, code_dir=repo, capture_output=False)
    auto.finish()
    assert auto.id == "1"


def test_norecord_creates_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from meticulous_hydra import Experiment

    monkeypatch.chdir(tmp_path)
    e = Experiment({"a": 1}, norecord=True)
    e.summary({"x": 1})
    e.log({"y": 2})
    with e.open("out/model.txt", "w") as f:
        f.write("weights")
    e.finish()
    assert not (tmp_path / "experiments").exists()
    assert (tmp_path / "out" / "model.txt").read_text() == "weights"


def test_open_writes_inside_the_folder(tmp_path: Path) -> None:
    from meticulous_hydra import Experiment

    with Experiment({}, root=tmp_path, capture_output=False, code_dir=tmp_path) as exp:
        with exp.open("ckpt/epoch1.txt", "w") as f:
            f.write("1")
        with pytest.raises(ValueError, match="inside the experiment folder"):
            exp.open("../escape.txt", "w")
    assert (exp.dir / "ckpt" / "epoch1.txt").read_text() == "1"
    assert not (tmp_path / "escape.txt").exists()


def test_nothing_recorded_when_the_root_cannot_be_created(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from meticulous_hydra import Experiment, RecordingError

    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(RecordingError) as refused:
        Experiment({}, root="file/experiments", code_dir=tmp_path, capture_output=False)
    message = str(refused.value)
    assert "cannot create the experiments root" in message and "file/experiments" in message
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_git_state_of_the_scripts_repo_not_the_cwd(tmp_path: Path) -> None:
    # a real process: the code's folder is found from the program's __main__
    code_repo = make_repo(
        tmp_path / "code", {"run.py": "from meticulous_hydra import Experiment\nExperiment({})\n"}
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    run_python([str(code_repo / "run.py")], elsewhere, check=True)
    meta = metadata_of(elsewhere / "experiments" / "1")
    assert meta["git"]["toplevel"] == str(code_repo)


def test_output_is_captured_where_python_streams_are_not_the_fds(tmp_path: Path, capsys) -> None:
    # pytest's capture stands in for Jupyter and IDEs: sys.stdout has no fd 1 behind it
    from meticulous_hydra import Experiment

    with Experiment({}, root=tmp_path, code_dir=tmp_path) as exp:
        print("printed in a notebook")
        print("a warning", file=sys.stderr)
        os.system("echo from a child")
    assert "printed in a notebook" in (exp.dir / "stdout").read_text()
    assert "from a child" in (exp.dir / "stdout").read_text()
    assert "a warning" in (exp.dir / "stderr").read_text()
    captured = capsys.readouterr()
    assert "printed in a notebook" in captured.out and "a warning" in captured.err
    print("after the run")
    assert "after the run" not in (exp.dir / "stdout").read_text()


def test_a_caught_exit_or_one_in_a_thread_does_not_decide_the_status(tmp_path: Path) -> None:
    import contextlib
    import threading

    from meticulous_hydra import Experiment

    with Experiment({}, root=tmp_path, capture_output=False, code_dir=tmp_path) as exp:
        try:
            sys.exit(2)  # e.g. a tool's argparse failing inside the run, handled
        except SystemExit:
            pass

        def quit_thread() -> None:
            with contextlib.suppress(SystemExit):
                sys.exit(1)

        worker = threading.Thread(target=quit_thread)
        worker.start()
        worker.join()
        assert status_of(exp.dir)[0] == "ERROR"  # the caught sys.exit(2), written at once
        exp.mark("RUNNING")
        worker = threading.Thread(target=quit_thread)
        worker.start()
        worker.join()
        assert status_of(exp.dir)[0] == "RUNNING"  # the thread's exit wrote nothing
    assert status_of(exp.dir) == ("SUCCESS", "")


def test_a_forked_child_leaves_the_run_to_its_parent(tmp_path: Path) -> None:
    write_script(
        tmp_path,
        "fork.py",
        """
        import os, sys
        from meticulous_hydra import Experiment
        exp = Experiment({}, code_dir=".")
        pid = os.fork()
        if pid == 0:
            print("child", flush=True)
            sys.exit(3)            # the child's exit runs the inherited atexit hooks
        _, code = os.waitpid(pid, 0)
        print("parent saw", os.waitstatus_to_exitcode(code), flush=True)
        print("status after the child:", (exp.dir / "STATUS").read_text().split()[0], flush=True)
        exp.summary({"after": 1})
        """,
    )
    proc = run_python(["fork.py"], tmp_path, check=True)
    assert "parent saw 3" in proc.stdout
    assert "status after the child: RUNNING" in proc.stdout
    folder = tmp_path / "experiments" / "1"
    assert status_of(folder) == ("SUCCESS", "")
    assert "child" in (folder / "stdout").read_text()
    assert json.loads((folder / "summary.json").read_text()) == {"after": 1}


def test_a_child_that_outlives_the_run(tmp_path: Path) -> None:
    write_script(
        tmp_path,
        "outlive.py",
        """
        import subprocess, sys
        from meticulous_hydra import Experiment
        exp = Experiment({}, code_dir=".")
        # a helper that keeps the run's stdout open after the run (a server, a pool worker)
        child = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.readline(); print('late line', flush=True)"],
                                 stdin=subprocess.PIPE, text=True)
        print("last line of the run", flush=True)
        exp.finish()
        print("after finish", flush=True)
        child.stdin.write("go\\n"); child.stdin.flush(); child.wait()
        """,
    )
    proc = run_python(["outlive.py"], tmp_path, check=True)
    assert proc.stdout.splitlines() == ["last line of the run", "after finish", "late line"]
    folder = tmp_path / "experiments" / "1"
    assert status_of(folder)[0] == "SUCCESS"
    out = (folder / "stdout").read_text()
    assert out.startswith("last line of the run\n") and "after finish" not in out
    assert "\x00" not in out  # the drain marker never shows


@pytest.mark.parametrize("how", ["norecord", "rank 1"])
def test_a_run_that_records_nothing_is_still_a_whole_experiment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    # Code that reads exp.metadata or exp.git on rank 0 must work on every rank.
    from meticulous_hydra import Experiment

    monkeypatch.chdir(tmp_path)
    if how == "rank 1":
        monkeypatch.setenv("RANK", "1")
    exp = Experiment({"lr": 0.1}, description="d", norecord=how == "norecord")
    assert exp.norecord and exp.id is None and exp.git is None and not exp.resumed
    assert exp.metadata["description"] == "d" and exp.metadata["start_time"]
    assert exp.metadata["argv"] == command_argv() and exp.metadata["git"] is None
    assert exp.config == {"lr": 0.1} and exp.restarts == 0
    exp.summary({"x": 1})
    exp.log({"y": 2}, step=0)
    exp.finish()
    assert exp.finished and list(tmp_path.iterdir()) == []


def test_adapter_plumbing_stays_off_the_public_signature() -> None:
    import inspect

    from meticulous_hydra import Experiment

    params = inspect.signature(Experiment).parameters
    assert not {"folder", "git_state", "allow_dirty_hint"} & set(params)
    assert "object at" not in str(inspect.signature(Experiment))


def test_a_plain_experiment_says_where_it_records_on_the_terminal_only(repo: Path) -> None:
    write_script(
        repo,
        "plain.py",
        """
        from meticulous_hydra import Experiment
        with Experiment({"lr": 0.1}) as exp:
            pass
        with Experiment({"lr": 0.1}, experiment_id="base") as exp:
            pass
        with Experiment({"lr": 0.1}, experiment_id="base") as exp:
            pass
        """,
        commit=True,
    )
    proc = run_python(["plain.py"], repo, check=True)
    assert proc.stderr.splitlines() == [
        f"meticulous-hydra: recording to experiments/1 (a new experiments root: {repo}/experiments)",
        "meticulous-hydra: recording to experiments/base",
        "meticulous-hydra: resuming experiments/base, which had ended SUCCESS (restart 1)",
    ]
    assert (repo / "experiments/1/stderr").read_text() == ""


BROKEN_STDERR_APP = """
from meticulous_hydra import Experiment
exp = Experiment({"a": 1}, root="experiments")
print("started", flush=True)
exp.finish()
"""


def test_a_stderr_whose_reader_went_away_before_the_start_is_no_refusal(tmp_path: Path) -> None:
    # `python train.py 2>&1 | head -3`: the reader has gone before a later
    # run (a sweep's next job) starts. Its recording line has no one to reach;
    # the run starts and ends as it would untracked, never left RUNNING.
    repo = make_repo(
        tmp_path / "app", {"app.py": BROKEN_STDERR_APP, ".gitignore": "experiments/\n"}
    )
    read, write = os.pipe()
    os.close(read)  # broken from the start
    try:
        proc = subprocess.run(
            [sys.executable, "app.py"], cwd=repo, stderr=write, stdout=subprocess.PIPE, timeout=120
        )
    finally:
        os.close(write)
    assert proc.returncode == 0 and proc.stdout == b"started\n", proc
    assert status_of(repo / "experiments" / "1")[0] == "SUCCESS"
    # the line meant for the terminal never lands in the run's own files
    assert b"recording to" not in (repo / "experiments" / "1" / "stderr").read_bytes()


FD_LIMITED_APP = """
import os, resource, sys
from pathlib import Path
from meticulous_hydra import Experiment
from meticulous_hydra.recorder import provenance
from meticulous_hydra.recorder.gitstate import read_git_state

# read before the limit, as a sweep's launcher does: only the start is limited
git = read_git_state(Path("."), allow_dirty=True, flag_hint="")
provenance.installed_packages()
import json, yaml
extra = int(sys.argv[1])
limit = len(os.listdir("/proc/self/fd")) + extra
resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))
try:
    exp = Experiment._for_adapter({"a": 1}, root=f"experiments-{extra}", git_state=git)
except Exception as e:
    print("refused", type(e).__name__)
    sys.exit(0)
exp.finish()
print("recorded")
"""


def test_a_run_that_cannot_start_is_never_left_running(tmp_path: Path) -> None:
    # With few file descriptors left the start fails at one step or another
    # (its folder, its start files, the capture's files and pipes): whatever
    # the step, a folder it leaves says it ended ERROR, never RUNNING (which
    # a reader takes for a crash).
    files = {"app.py": FD_LIMITED_APP, ".gitignore": "experiments-*/\n"}
    repo = make_repo(tmp_path / "app", files)
    outcomes = []
    for extra in range(16):
        proc = subprocess.run(
            [sys.executable, "app.py", str(extra)], cwd=repo, capture_output=True, timeout=120
        )
        assert proc.returncode == 0, proc.stderr
        outcomes.append(proc.stdout.split()[0].decode())
        for folder in (repo / f"experiments-{extra}").glob("[0-9]*"):
            if not (folder / "STATUS").exists():  # failed before its start files
                assert not layout.is_experiment_dir(folder), extra  # no run, not listed
                continue
            status, detail = status_of(folder)
            assert status != "RUNNING", (extra, proc.stdout)
            if outcomes[-1] == "refused":
                assert status == "ERROR" and "could not start" in detail, (extra, detail)
    # the limit was tried on both sides, and inside the start
    assert outcomes[0] == "refused" and outcomes[-1] == "recorded", outcomes
    started = [e for e in range(16) if list((repo / f"experiments-{e}").glob("[0-9]*"))]
    assert any(outcomes[e] == "refused" for e in started), outcomes
