"""Faults and load: parallel starts, kill -9 anywhere, Ctrl-C and SIGTERM,
full and read-only disks, huge output, odd configs, hostile input."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from helpers import (
    in_mount_namespace,
    make_repo,
    metadata_of,
    run_python,
    start_blocked,
    status_of,
    watchdog,
    write_script,
)

from meticulous_hydra import Experiment, RecordingError, load_experiments
from meticulous_hydra.cli import summary as summary_cli
from meticulous_hydra.reader.reader import ExperimentReader

START_FILES = {"config.yaml", "config.json", "metadata.json", "STATUS", "stdout", "stderr"}


def complete(folder: Path) -> bool:
    return {p.name for p in folder.iterdir()} >= START_FILES


# -- parallel starts ------------------------------------------------------------------


def test_64_argparse_processes_on_one_root(repo: Path) -> None:
    write_script(
        repo,
        "run.py",
        """
        import argparse
        from meticulous_hydra import record
        p = argparse.ArgumentParser()
        p.add_argument("--i", type=int)
        args, exp = record(p)
        print(exp.id)
        """,
        commit=True,
    )
    # print() without flush: the id reaches the pipe only as the run ends,
    # which once lost it under load (the capture returned before writing it)
    procs = [
        subprocess.Popen(
            [sys.executable, "run.py", "--i", str(i)],
            cwd=repo,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(64)
    ]
    outputs = [p.communicate(timeout=240) for p in procs]
    assert [p.returncode for p in procs] == [0] * 64, [err for _, err in outputs]
    ids = [out.strip() for out, _ in outputs]
    assert all(ids), "a run's id never reached its stdout pipe"
    root = repo / "experiments"
    assert sorted(int(i) for i in ids) == list(range(1, 65))  # unique, and no gaps
    assert sorted(p.name for p in root.iterdir() if not p.name.startswith(".")) == sorted(ids)
    seen = set()
    for n in ids:
        folder = root / n
        assert complete(folder) and status_of(folder)[0] == "SUCCESS"
        seen.add(json.loads((folder / "config.json").read_text())["i"])
    assert seen == set(range(64))


SWEEP_APP = """
import hydra, meticulous_hydra

@hydra.main(version_base="1.3", config_path=None, config_name=None)
def main(cfg):
    print("job", cfg.i)
    return cfg.i

if __name__ == "__main__":
    main()
"""


def test_joblib_sweep_of_32_jobs_on_8_workers(tmp_path: Path) -> None:
    app = make_repo(tmp_path / "app", {"app.py": SWEEP_APP, ".gitignore": "multirun/\n"})
    run_python(
        [
            "app.py",
            "-m",
            "hydra/callbacks=meticulous",
            "hydra/launcher=joblib",
            "hydra.launcher.n_jobs=8",
            "+i=range(32)",
        ],
        app,
        check=True,
        timeout=300,
    )
    root = app / "experiments"
    folders = [p for p in root.iterdir() if not p.name.startswith(".")]
    assert sorted(int(p.name) for p in folders) == list(range(1, 33))
    values = set()
    for folder in folders:
        assert complete(folder) and status_of(folder)[0] == "SUCCESS"
        i = json.loads((folder / "config.json").read_text())["i"]
        assert json.loads((folder / "summary.json").read_text()) == {"return_value": i}
        assert f"job {i}\n" in (folder / "stdout").read_text()
        values.add(i)
    assert values == set(range(32))


# -- kill -9 anywhere ------------------------------------------------------------------

KILLED = """
import os, random, signal, sys

seed = int(sys.argv[1])
rng = random.Random(seed)
target = rng.randint(1, 40) if seed % 6 else 10**9  # every 6th run is left to finish
calls = 0

def killing(real):
    def wrapper(*args, **kwargs):
        global calls
        calls += 1
        if calls == target and rng.random() < 0.5:
            os.kill(os.getpid(), signal.SIGKILL)    # before the call
        result = real(*args, **kwargs)
        if calls == target:
            os.kill(os.getpid(), signal.SIGKILL)    # right after it
        return result
    return wrapper

os.replace = killing(os.replace)   # every atomic write: start, summary, finish
os.write = killing(os.write)       # metrics lines and the output tee

from meticulous_hydra import Experiment
exp = Experiment({"seed": seed, "nested": {"a": [1, 2]}})
for step in range(8):
    print("step", step, flush=True)
    exp.log({"loss": 1.0 / (step + 1)}, step=step)
    exp.summary({"step": step, "history": list(range(step))})
exp.finish()
"""


def test_kill_9_at_random_moments_leaves_every_folder_readable(tmp_path: Path) -> None:
    write_script(tmp_path, "killed.py", KILLED)
    codes = []
    for seed in range(30):
        proc = subprocess.run(
            [sys.executable, "killed.py", str(seed)], cwd=tmp_path, capture_output=True
        )
        codes.append(proc.returncode)
    assert -signal.SIGKILL in codes and 0 in codes  # both outcomes happened
    df = load_experiments(tmp_path / "experiments")
    assert df["read_error"].isna().all(), df["read_error"].dropna().to_dict()
    assert set(df["status"]) <= {"DIED", "SUCCESS"} and "DIED" in set(df["status"])
    for n in df.index:
        folder = tmp_path / "experiments" / str(n)
        first_line = (
            (folder / "STATUS").read_text().splitlines()[0]
            if (folder / "STATUS").exists()
            else None
        )
        assert first_line in (None, "RUNNING", "SUCCESS")
        if (folder / "summary.json").exists():
            json.loads((folder / "summary.json").read_text())
        yaml.safe_load((folder / "config.yaml").read_text())


# -- Ctrl-C and SIGTERM ------------------------------------------------------------------

BLOCKING_APP = """
import os
import hydra, meticulous_hydra

@hydra.main(version_base="1.3", config_path=None, config_name=None)
def main(cfg):
    print("ready", flush=True)
    with open(os.environ["BLOCK_FIFO"]) as f:   # blocks until the signal
        f.read()

if __name__ == "__main__":
    main()
"""


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
@pytest.mark.parametrize(
    ("launcher", "jobs"),
    [(None, 1), ("basic", 1), ("joblib", 2)],
    ids=["single", "basic-sweep", "joblib-sweep"],
)
def test_interrupted_runs_end_interrupted(
    tmp_path: Path, signum: int, launcher: str | None, jobs: int
) -> None:
    app = make_repo(
        tmp_path / "app", {"app.py": BLOCKING_APP, ".gitignore": "multirun/\noutputs/\nfifo\n"}
    )
    args = ["app.py"]
    if launcher is None:
        args += ["hydra/callbacks=meticulous", "+x=1"]
    else:
        args += ["-m", "hydra/callbacks=meticulous", f"hydra/launcher={launcher}", "+x=1,2"]
        if launcher == "joblib":
            args.append("hydra.launcher.n_jobs=2")
    proc = start_blocked(app, args)
    with watchdog(proc):
        seen = ""
        while seen.count("ready") < jobs:  # every job is inside its task
            # count words, not lines: two unbuffered workers' writes may interleave
            line = proc.stdout.readline()
            assert line, proc.stderr.read()
            seen += line
        os.killpg(proc.pid, signum)  # what the terminal does on Ctrl-C: the whole group
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == -signum
    if signum == signal.SIGINT:
        assert "KeyboardInterrupt" in err  # the last words reached the real terminal
    folders = sorted(p for p in (app / "experiments").iterdir() if p.name.isdigit())
    assert len(folders) == jobs
    for folder in folders:
        status, detail = status_of(folder)
        assert status == "INTERRUPTED"
        assert ("SIGTERM" if signum == signal.SIGTERM else "KeyboardInterrupt") in detail
        assert ExperimentReader(folder).status == "INTERRUPTED"


KILLED_BY_ITS_LAUNCHER_APP = """
import os, signal
import hydra, meticulous_hydra

@hydra.main(version_base="1.3", config_path=None, config_name=None)
def main(cfg):
    if cfg.x == 1:
        # this job's process ignores Ctrl-C: only its launcher ends it
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        open("started", "w").close()  # a FIFO: job 2 goes on once job 1 is here
    else:
        open("started").close()
    print("ready", flush=True)
    with open(os.environ["BLOCK_FIFO"]) as f:  # blocks until the end
        f.read()

if __name__ == "__main__":
    main()
"""


def test_a_job_its_launcher_kills_at_a_ctrl_c_ends_interrupted(tmp_path: Path) -> None:
    # joblib kills its workers at a Ctrl-C, at times before one had handled its
    # own (seen once in CI): its run was left RUNNING, read as DIED. Here job 1
    # ignores SIGINT, so that only its launcher ends it, every time.
    app = make_repo(
        tmp_path / "app",
        {"app.py": KILLED_BY_ITS_LAUNCHER_APP, ".gitignore": "multirun/\nfifo\nstarted\n"},
    )
    args = ["app.py", "-m", "hydra/callbacks=meticulous", "hydra/launcher=joblib"]
    os.mkfifo(app / "started")
    proc = start_blocked(app, [*args, "hydra.launcher.n_jobs=2", "+x=1,2"])
    with watchdog(proc):
        seen = ""
        while seen.count("ready") < 2:
            line = proc.stdout.readline()
            assert line, proc.stderr.read()
            seen += line
        os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    assert proc.returncode == -signal.SIGINT, err
    folders = sorted(p for p in (app / "experiments").iterdir() if p.name.isdigit())
    by_job = {metadata_of(f)["sweep"]["job_num"]: f for f in folders}
    status, detail = status_of(by_job[0])  # x=1: ended by its launcher
    assert (status, detail.strip()) == (
        "INTERRUPTED",
        "KeyboardInterrupt: the sweep was interrupted, and its launcher ended this job "
        "before it could record its end",
    )
    status, detail = status_of(by_job[1])  # x=2: ended by its own Ctrl-C
    assert status == "INTERRUPTED" and detail.startswith("KeyboardInterrupt"), detail


# -- disks that fail -------------------------------------------------------------------------


def test_read_only_root_fails_before_the_task(tmp_path: Path) -> None:
    app = make_repo(
        tmp_path / "app",
        {
            "app.py": SWEEP_APP.replace('print("job", cfg.i)', 'print("TASK RAN")'),
            ".gitignore": "ro/\nmultirun/\n",
        },
    )
    (app / "ro").mkdir()
    for extra in ([], ["-m"]):
        proc = in_mount_namespace(
            "mount --bind -o ro ro ro",
            [
                sys.executable,
                "-Werror",
                "app.py",
                *extra,
                "hydra/callbacks=meticulous",
                "hydra.callbacks.meticulous.root=ro/experiments",
                "+i=1",
            ],
            app,
        )
        assert proc.returncode == 1
        assert "TASK RAN" not in proc.stdout
        lines = [line for line in proc.stderr.splitlines() if "meticulous-hydra" in line]
        assert (
            len(lines) == 1 and "ro/experiments" in lines[0] and "Read-only file system" in lines[0]
        )


def test_permission_denied_is_one_clear_line(tmp_path: Path) -> None:
    if os.getuid() == 0:
        # root passes permission checks; setpriv takes that power away
        if shutil.which("setpriv") is None:
            pytest.skip("needs setpriv(1) to drop root's permission override")
        prefix = ["setpriv", "--bounding-set=-dac_override,-dac_read_search,-fowner"]
    else:
        prefix = []
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    write_script(
        tmp_path,
        "run.py",
        "from meticulous_hydra import Experiment\nExperiment({}, root='locked', code_dir='.')\n",
    )
    try:
        proc = subprocess.run(
            [*prefix, sys.executable, "run.py"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        locked.chmod(0o755)
    assert proc.returncode == 1
    last = proc.stderr.strip().splitlines()[-1]
    assert "cannot create the experiments root" in last and str(locked) in last
    assert "Permission denied" in last
    assert list(locked.iterdir()) == []


# -- huge and odd output -------------------------------------------------------------------------

HUGE = """
import os, resource, sys
from meticulous_hydra import Experiment
exp = Experiment({}, code_dir=".")
chunk = bytes(range(256)) * 4096                 # 1 MiB of every byte value, invalid UTF-8 included
for _ in range(200):
    sys.stdout.buffer.write(chunk)
sys.stdout.buffer.write(b"L" * 5_000_000)        # one 5 MB line
sys.stdout.buffer.write(b"\\nTHE END\\n")
sys.stdout.flush()
os.system("head -c 1000000 /dev/zero")           # a child writing to the same fd
exp.finish()
# ru_maxrss counts the parent's peak too (Linux folds it in at exec: a 300 MB
# pytest makes it 300 MB); VmHWM is this program's own
try:
    peak = [l.split()[1] for l in open("/proc/self/status") if l.startswith("VmHWM:")][0]
except OSError:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(peak, file=sys.stderr)
"""


def test_huge_binary_output_is_captured_whole_with_bounded_memory(tmp_path: Path) -> None:
    write_script(tmp_path, "huge.py", HUGE)
    proc = subprocess.run(
        [sys.executable, "huge.py"],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stderr
    captured = tmp_path / "experiments" / "1" / "stdout"
    assert captured.stat().st_size == 200 * 2**20 + 5_000_000 + len(b"\nTHE END\n") + 1_000_000
    with open(captured, "rb") as f:
        assert f.read(256) == bytes(range(256))
        f.seek(200 * 2**20 + 5_000_000)
        assert f.read(9) == b"\nTHE END\n"
    max_rss_kb = int(proc.stderr.decode().strip().splitlines()[-1])
    assert max_rss_kb < 150_000  # the 205 MB went through, never into memory


# -- odd configs ---------------------------------------------------------------------------------------


def test_odd_configs_round_trip(tmp_path: Path) -> None:
    deep: dict = {"leaf": 1}
    for level in range(60):
        deep = {f"level{level}": deep}
    config = {
        "key.with.dots": 1,
        "key with spaces": "value with spaces",
        "ünïcödé": "日本語 ✓",
        "yaml_specials": [
            "yes",
            "no",
            "null",
            "~",
            "1e3",
            "0x1F",
            ": ",
            "- x",
            "#",
            "'",
            '"',
            "",
            "on",
            "1.0",
        ],
        "true_bool": True,
        "none": None,
        "missing": "???",
        "multiline": "line 1\nline 2\n",
        "big_int": 2**62,
        "float": 1e-300,
        "deep": deep,
        "many": {f"k{i}": i for i in range(10_000)},
    }
    exp = Experiment(config, root=tmp_path / "exp", capture_output=False, code_dir=tmp_path)
    exp.finish()
    assert yaml.safe_load((exp.dir / "config.yaml").read_text()) == config
    assert json.loads((exp.dir / "config.json").read_text()) == config
    df = load_experiments(tmp_path / "exp")
    assert df.loc[1, "config.key.with.dots"] == 1
    assert df.loc[1, "config.many.k9999"] == 9999
    assert df.loc[1, "config.yaml_specials"][0] == "yes"


# -- hostile input -----------------------------------------------------------------------------------


def test_ids_and_roots_cannot_escape(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "root"
    outside = tmp_path / "outside"
    outside.mkdir()
    root.mkdir()
    (root / "link").symlink_to(outside)
    with pytest.raises(RecordingError, match="link out of"):
        Experiment({}, root=root, experiment_id="link", capture_output=False, code_dir=tmp_path)
    assert list(outside.iterdir()) == []
    with pytest.raises(RecordingError, match="invalid experiments root"):
        Experiment({}, root="bad\x00root", capture_output=False, code_dir=tmp_path)
    # the CLI refuses ids that are paths (in-process: the installed command is tested in test_cli)
    assert summary_cli.main([str(root), "--show", "../outside"]) == 2
    assert "invalid experiment id" in capsys.readouterr().err


def test_reader_never_runs_code_from_yaml(tmp_path: Path) -> None:
    folder = tmp_path / "exp" / "1"
    folder.mkdir(parents=True)
    (folder / ".meticulous-run").touch()  # a run folder whose metadata.json was lost
    (folder / "STATUS").write_text("SUCCESS\n")
    (folder / "config.yaml").write_text(
        f"a: !!python/object/apply:os.system ['touch {tmp_path}/pwned']\n"
    )
    with pytest.warns(UserWarning, match="read incompletely"):
        df = load_experiments(tmp_path / "exp")
    assert "config.yaml" in df.loc[1, "read_error"]
    assert not (tmp_path / "pwned").exists()


def test_nothing_is_world_writable_even_with_umask_0(tmp_path: Path) -> None:
    write_script(
        tmp_path,
        "run.py",
        """
        import os
        os.umask(0)
        from meticulous_hydra import Experiment
        e = Experiment({"a": 1}, root="new/deep/experiments", code_dir=".")
        e.summary({"x": 1}); e.log({"y": 1})
        with e.open("sub/file.txt", "w") as f:
            f.write("x")
        """,
    )
    run_python(["run.py"], tmp_path, check=True)
    created = [tmp_path / "new", *(tmp_path / "new").rglob("*")]
    offenders = [p for p in created if p.stat().st_mode & 0o002]
    assert offenders == []
