"""Odd filesystems and races under the verbs and the recorder: symbolic links
out of the root, ids that hide a run, folders that are not runs, read-only
roots, deep configs, and several `meticulous` processes at once. The CLI runs
in-process; real processes only where concurrency or a mount is the point."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import (
    go_together,
    in_mount_namespace,
    make_repo,
    nested,
    record,
    run_python,
    status_of,
    watchdog,
)

from meticulous_hydra import (
    Experiment,
    InvalidIdError,
    RecordingError,
    cli,
    layout,
    load_experiments,
)
from meticulous_hydra.cli import summary as summary_cli
from meticulous_hydra.recorder import organise
from meticulous_hydra.replay.rerun import claim_job


def tree(path: Path) -> dict[str, object]:
    """Everything under ``path`` (links not followed): file bytes, link targets,
    folders, and every modification time."""
    out: dict[str, object] = {}
    for folder, dirs, files in os.walk(path):
        for name in [*dirs, *files]:
            full = Path(folder, name)
            rel = str(full.relative_to(path))
            st = full.lstat()
            if full.is_symlink():
                out[rel] = ("link", os.readlink(full))
            elif full.is_dir():
                out[rel] = ("dir", st.st_mtime_ns)
            else:
                out[rel] = ("file", full.read_bytes(), st.st_mtime_ns)
    out["."] = path.stat().st_mtime_ns
    return out


def meticulous(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(err: str, verb: str) -> str:
    assert err.count("\n") == 1 and err.startswith(f"meticulous {verb}: error: "), err
    return err


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A root with runs 1, 2 and 3 (SUCCESS)."""
    root = tmp_path / "experiments"
    for i in range(3):
        record(root, {"i": i})
    return root


# -- 21.1 symbolic links lead nowhere out of the root ---------------------------------


def test_a_symlinked_trash_is_refused(root: Path, tmp_path: Path, capsys) -> None:
    outside = tmp_path / "outside"
    (outside / "victim").mkdir(parents=True)
    (outside / "victim" / "data.bin").write_bytes(b"precious")
    (root / ".trash").symlink_to(outside)
    before, runs = tree(outside), tree(root)
    for argv in (["rm", "--purge", "--trash", "--yes"], ["rm", "3"], ["restore", "victim"]):
        code, out, err = meticulous(capsys, *argv, "--root", str(root))
        verb = argv[0]
        assert code == 1 and out == ""
        assert "symbolic link" in one_line_error(err, verb) and ".trash" in err
    assert tree(outside) == before
    assert tree(root) == runs


def test_a_symlinked_run_is_refused_by_every_verb(root: Path, tmp_path: Path, capsys) -> None:
    # a whole run, elsewhere, linked in as run 2
    outside = tmp_path / "outside"
    outside.mkdir()
    (root / "2").rename(outside / "2")
    (root / "2").symlink_to(outside / "2")
    before = tree(outside)
    verbs = [
        ["tag", "2", "evil"],
        ["untag", "2", "evil"],
        ["note", "2", "hi"],
        ["archive", "2"],
        ["unarchive", "2"],
        ["rm", "2"],
        ["rm", "--purge", "--yes", "2"],
        ["show", "2"],
        ["diff", "1", "2"],
        ["tag", f"{root}/2", "evil"],
    ]
    for argv in verbs:
        code, out, err = meticulous(capsys, *argv, "--root", str(root))
        assert code == 1 and out == "", (argv, out, err)
        assert "symbolic link" in one_line_error(err, argv[0])
        assert str(outside / "2") in err  # where it leads
    assert tree(outside) == before
    assert (root / "2").is_symlink()


def test_links_inside_a_run_folder_are_not_followed(root: Path, tmp_path: Path, capsys) -> None:
    target = tmp_path / "outside.txt"
    target.write_text("not yours\n")
    for name in ("NOTES", "TAG.best", "ARCHIVED"):
        (root / "1" / name).symlink_to(target)
    code, _, err = meticulous(capsys, "note", "1", "hi", "--root", str(root))
    assert code == 1 and "symbolic link" in one_line_error(err, "note") and "NOTES" in err
    # a marker that is a link is left alone: nothing is written through it
    assert meticulous(capsys, "tag", "1", "best", "--root", str(root))[0] == 0
    assert meticulous(capsys, "archive", "1", "--root", str(root))[0] == 0
    assert target.read_text() == "not yours\n"


@pytest.mark.parametrize("name", [".numbers", ".sweeps", ".reruns"])
def test_the_roots_own_folders_must_not_be_links(root: Path, tmp_path: Path, name: str) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    if (root / name).exists():
        os.rename(root / name, tmp_path / "kept")
    (root / name).symlink_to(outside)
    if name == ".numbers":
        with pytest.raises(RecordingError, match=r"\.numbers is a symbolic link"):
            record(root, {"i": 9})
    elif name == ".sweeps":
        with pytest.raises(RecordingError, match=r"\.sweeps is a symbolic link"):
            layout.claim_sweep_folder(root, "sweep-a", 0)
    else:
        with (
            pytest.raises(RecordingError, match=r"\.reruns is a symbolic link"),
            claim_job(root, "1"),
        ):
            pass
    assert list(outside.iterdir()) == []


def test_links_in_the_trash_are_not_runs(root: Path, tmp_path: Path, capsys) -> None:
    outside = tmp_path / "outside"
    (outside / "7").mkdir(parents=True)
    (outside / "7" / "STATUS").write_text("SUCCESS\n")
    assert meticulous(capsys, "rm", "3", "--root", str(root))[0] == 0
    (root / ".trash" / "7").symlink_to(outside / "7")
    assert organise.trashed(root) == ["3"]
    code, out, _ = meticulous(capsys, "rm", "--purge", "--trash", "--yes", "--root", str(root))
    assert code == 0 and out == f"deleted 3 from {root / '.trash'}\n"
    assert (outside / "7" / "STATUS").read_text() == "SUCCESS\n"


# -- 21.2 ids starting with a dot ----------------------------------------------------------


@pytest.mark.parametrize("bad", [".hidden", ".trash", ".numbers", "..x"])
def test_ids_starting_with_a_dot_are_refused(tmp_path: Path, bad: str) -> None:
    root = tmp_path / "experiments"
    with pytest.raises(InvalidIdError, match=r"not starting with '\.'"):
        record(root, {}, experiment_id=bad)
    assert not (root / bad).exists()


def test_argparse_refuses_a_dot_id_in_one_line(repo: Path) -> None:
    script = repo / "run.py"
    script.write_text(
        "import argparse\nfrom meticulous_hydra import record\n"
        "args, exp = record(argparse.ArgumentParser())\nprint('RAN')\n"
    )
    proc = run_python(["run.py", "--experiment-id", ".hidden", "--allow-dirty"], repo)
    assert proc.returncode != 0 and "RAN" not in proc.stdout
    assert "not starting with '.'" in proc.stderr
    assert "Traceback" not in proc.stderr


# -- 21.3 a run folder is one this project made -----------------------------------------


def test_a_folder_we_did_not_make_is_no_run(root: Path, capsys) -> None:
    data = root / "dataset"
    data.mkdir()
    (data / "metadata.json").write_text('{"name": "imagenet", "pid": 1}')
    frame = load_experiments(root, cache=False)
    assert list(frame.index) == [1, 2, 3]
    assert summary_cli.main([str(root), "--format", "csv", "--columns", "status"]) == 0
    assert "dataset" not in capsys.readouterr().out
    for argv in (["tag", "dataset", "x"], ["tag", f"{data}", "x"], ["show", f"{data}"]):
        code, _, err = meticulous(capsys, *argv, "--root", str(root))
        assert code == 2 and "dataset" in one_line_error(err, argv[0])
    assert sorted(p.name for p in data.iterdir()) == ["metadata.json"]
    # nor is it taken over by a run given its name
    with pytest.raises(RecordingError, match="not an experiment"):
        record(root, {}, experiment_id="dataset")
    assert sorted(p.name for p in data.iterdir()) == ["metadata.json"]


def test_every_run_carries_the_mark_and_old_runs_still_read(root: Path) -> None:
    assert all((root / n / layout.RUN_MARKER).is_file() for n in ("1", "2", "3"))
    # a run recorded before the mark: metadata.json and STATUS
    (root / "2" / layout.RUN_MARKER).unlink()
    # a run killed between metadata.json and STATUS: marked, so it is listed
    # (RUNNING while its pid, this process, lives; DIED after)
    exp = Experiment({"i": 4}, root=root, capture_output=False, code_dir=root.parent)
    exp.finish()
    (exp.dir / "STATUS").unlink()
    frame = load_experiments(root, cache=False)
    assert list(frame.index) == [1, 2, 3, 4]
    assert frame.loc[2, "status"] == "SUCCESS" and frame.loc[4, "status"] == "RUNNING"
    assert frame["read_error"].isna().all()


# -- 21.10 a config too deep ---------------------------------------------------------------


def test_a_config_900_levels_deep_is_one_recording_error(tmp_path: Path) -> None:
    config = nested(900)
    with pytest.raises(RecordingError, match="nested 900 levels deep") as caught:
        Experiment(config, root=tmp_path / "experiments", capture_output=False, code_dir=tmp_path)
    assert "a.a.a" in str(caught.value)
    assert not (tmp_path / "experiments").exists()


# -- 21.19 read-only roots and races: one line each, and the truth ----------------------

READ_ONLY = """
for argv in "tag 1 best" "note 1 hi" "archive 1" "rm 1" "rm --purge --yes 1" \
            "restore 3" "rm --purge --trash --yes"; do
    echo "== $argv"
    {python} -c 'import sys; from meticulous_hydra.cli import main; sys.exit(main())' \
        $argv --root {root} 2>&1 && echo "exit 0" || echo "exit $?"
done
"""


def test_a_read_only_root_is_one_line_per_verb(root: Path, tmp_path: Path, capsys) -> None:
    assert meticulous(capsys, "rm", "3", "--root", str(root))[0] == 0
    before = tree(root)
    script = READ_ONLY.format(python=sys.executable, root=root)
    proc = in_mount_namespace(f"mount --bind -o ro {root} {root}", ["sh", "-c", script], tmp_path)
    assert proc.returncode == 0, proc.stderr
    for block in proc.stdout.split("== ")[1:]:
        argv, *lines = block.strip().splitlines()
        assert len(lines) == 2, block  # the error, the exit code
        verb = argv.split()[0]
        assert lines[0].startswith(f"meticulous {verb}: error: "), block
        assert "Read-only file system" in lines[0] and str(root) in lines[0], block
        assert lines[1] == "exit 1", block
    assert tree(root) == before


RM_WORKER = """
import sys
from meticulous_hydra.cli import main
print("ready", flush=True)
sys.stdin.readline()
sys.exit(main(sys.argv[1:]))
"""


def _all_at_once(argvs: list[list[str]], cwd: Path) -> list[tuple[int, str, str]]:
    """Run ``meticulous ARGV`` for each, started together (each waits for go)."""
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", RM_WORKER, *argv],
            cwd=cwd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for argv in argvs
    ]
    go_together(procs)
    results = []
    for proc in procs:
        with watchdog(proc):
            out, err = proc.communicate()
        results.append((proc.returncode, out, err))
    return results


def _named(out: str, prefix: str, end: str = "\n") -> list[str]:
    """The ids a line of ``out`` starting with ``prefix`` names (up to ``end``)."""
    line = next((x for x in out.splitlines() if x.startswith(prefix)), "")
    names = line[len(prefix) :].split(end)[0]
    return [n.strip() for n in names.split(",") if n.strip()]


def test_concurrent_rm_and_restore_say_what_happened(tmp_path: Path) -> None:
    root = tmp_path / "experiments"
    for i in range(60):
        record(root, {"i": i})
    ids = sorted(str(i) for i in range(1, 61))
    for verb, did, other in (
        ("rm", "moved ", "already gone (moved or deleted by another process): "),
        ("restore", "restored ", "already restored by another process: "),
    ):
        results = _all_at_once([[verb, "1-60", "--root", str(root)]] * 8, tmp_path)
        done: list[str] = []
        for code, out, err in results:
            # no error: each says what it did, and what another did first
            assert code == 0 and err == "", (out, err)
            mine, theirs = _named(out, did, " to "), _named(out, other)
            assert mine or theirs or out.startswith("already in the trash"), out
            assert not set(mine) & set(theirs), out
            done += mine
        assert sorted(done) == ids  # each run moved once, by one of them, none lost
    assert organise.trashed(root) == []
    assert list(load_experiments(root, cache=False).index) == list(range(1, 61))


def test_a_race_lost_is_reported_not_raised(root: Path) -> None:
    # what a second process finds when the first got there first
    first = organise.trash(root / "1")
    assert first == root / ".trash" / "1"
    assert organise.trash(root / "1") is None
    assert organise.restore(root, "1") == root / "1"
    assert organise.restore(root, "1") is None  # restored by the other: there it is
    assert organise.purge(root / "2") is True
    assert organise.purge(root / "2") is False


# -- 21.18 two `rerun --failed` at once ------------------------------------------------------

RERUN_APP = """
import fcntl, os
import hydra

@hydra.main(version_base="1.3", config_path=None, config_name=None)
def main(cfg):
    if os.environ.get("METICULOUS_HYDRA_RERUN_OF"):
        print(f"ready job {cfg.x}", flush=True)
        with open(os.environ["GATE"]) as gate:
            fcntl.flock(gate, fcntl.LOCK_SH)  # held by the test until both reruns are busy
        return {"x": cfg.x}
    raise RuntimeError("first attempt fails")

if __name__ == "__main__":
    main()
"""


def test_two_reruns_at_once_run_each_job_once(tmp_path: Path) -> None:
    import fcntl

    app = make_repo(tmp_path / "app", {"app.py": RERUN_APP, ".gitignore": "multirun/\ngate\n"})
    gate = app / "gate"
    gate.write_text("")
    run_python(["app.py", "-m", "hydra/callbacks=meticulous", "+x=0,1"], app)
    root = app / "experiments"
    assert sorted(status_of(root / n)[0] for n in ("1", "2")) == ["ERROR", "ERROR"]
    command = [sys.executable, "-c", RM_WORKER, "rerun", "--failed", "--root", str(root)]
    env = {**os.environ, "GATE": str(gate), "PYTHONUNBUFFERED": "1"}
    with open(gate) as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        procs = []
        for _ in range(2):  # the second starts once the first is inside a job
            proc = subprocess.Popen(
                command, cwd=app, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
            )
            procs.append(proc)
            with watchdog(proc):
                assert proc.stdout.readline() == "ready\n"
                proc.stdin.write("go\n")
                proc.stdin.flush()
                seen = ""
                while "ready job" not in seen:
                    line = proc.stdout.readline()
                    assert line, seen
                    seen += line
        fcntl.flock(lock, fcntl.LOCK_UN)
        outputs = []
        for proc in procs:
            with watchdog(proc):
                out, _ = proc.communicate()
            assert proc.returncode == 0, out
            outputs.append(out)
    reruns = {}
    for folder in root.iterdir():
        if folder.name.isdigit() and folder.name not in ("1", "2"):
            meta = json.loads((folder / "metadata.json").read_text())
            reruns.setdefault(meta["rerun_of"], []).append(folder.name)
    assert sorted(reruns) == ["1", "2"] and all(len(v) == 1 for v in reruns.values()), reruns
    reported = []
    for out in outputs:
        for line in out.splitlines():
            if line.startswith("-> run "):
                new, status = line[len("-> run ") :].split(": ", 1)
                assert status.startswith("SUCCESS"), out
                reported.append(new)
    # each rerun reports the run it started, and no run twice
    assert sorted(reported) == sorted(v[0] for v in reruns.values()), outputs
    assert sum("another `meticulous rerun`" in out for out in outputs) >= 1, outputs
    assert not list((root / ".reruns").iterdir())  # claims released


# -- 23.11 a new root says where it is ----------------------------------------------------------


def test_a_run_that_creates_a_root_says_so(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    record(Path("experiments"), {})
    err = capsys.readouterr().err
    assert err == (
        f"meticulous-hydra: recording to experiments/1 "
        f"(a new experiments root: {tmp_path / 'experiments'})\n"
    )
    record(Path("experiments"), {})
    assert capsys.readouterr().err == "meticulous-hydra: recording to experiments/2\n"


def test_a_claim_left_by_a_dead_rerun_is_taken_over(tmp_path: Path) -> None:
    from meticulous_hydra.recorder.environment import hostname

    root = tmp_path / "experiments"
    (root / ".reruns").mkdir(parents=True)
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        text=True,
        capture_output=True,
        check=True,
    ).stdout.strip()
    (root / ".reruns" / "5").symlink_to(f"{hostname()}:{dead}")  # killed while holding it
    with claim_job(root, "5") as holder:
        assert holder is None
        assert os.readlink(root / ".reruns" / "5~2") == f"{hostname()}:{os.getpid()}"
        with claim_job(root, "5") as other:  # a live holder: this process
            assert other == f"{hostname()}:{os.getpid()}"
    assert sorted(p.name for p in (root / ".reruns").iterdir()) == ["5"]


def test_a_summary_or_metrics_too_deep_are_refused_by_name(tmp_path: Path) -> None:
    from meticulous_hydra import NotSerializable

    deep = nested(2000)
    with Experiment(
        {}, root=tmp_path / "experiments", capture_output=False, code_dir=tmp_path
    ) as exp:
        with pytest.raises(NotSerializable, match="the summary is nested 2001 levels deep"):
            exp.summary({"x": deep})
        with pytest.raises(NotSerializable, match="a logged value is nested 2001 levels deep"):
            exp.log({"x": deep})
        exp.summary({"fine": {"a": {"b": 1}}})
    assert json.loads((exp.dir / "summary.json").read_text()) == {"fine": {"a": {"b": 1}}}
