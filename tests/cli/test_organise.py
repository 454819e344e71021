"""tag, untag, note, archive, rm/restore and run selection, on real recorded
runs (a Hydra sweep and an argparse run), through the real `meticulous` CLI
in-process; processes only where concurrency is the point."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import go_together, make_app_repo, run_python, watchdog

from meticulous_hydra import Experiment, Experiments, cli, load_experiments
from meticulous_hydra.cli import summary as summary_cli


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A repo whose experiments/ holds a 4-job Hydra sweep (1-4, one failing
    job) and an argparse run (5)."""
    repo = make_app_repo(
        tmp_path_factory.mktemp("organise") / "app", ("train.py", "train_argparse.py")
    )
    run_python(
        [
            "examples/train.py",
            "-m",
            "hydra/callbacks=meticulous",
            "model=mlp,resnet",
            "optimizer.lr=0.01,2.0",
        ],
        repo,
    )
    run_python(["examples/train_argparse.py", "data", "--lr", "0.3"], repo, check=True)
    return repo


@pytest.fixture
def app(recorded: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh copy of the recorded repo, as the working directory."""
    copy = tmp_path / "app"
    shutil.copytree(recorded, copy, symlinks=True)
    monkeypatch.chdir(copy)
    return copy


def meticulous(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def table_ids(capsys: pytest.CaptureFixture[str], *argv: str) -> list[str]:
    assert summary_cli.main(["--format", "csv", *argv]) == 0
    lines = capsys.readouterr().out.splitlines()
    return [line.split(",")[0] for line in lines[1:]]


def test_tags_and_notes_reach_the_frame_and_the_table(app: Path, capsys) -> None:
    code, out, _ = meticulous(capsys, "tag", "1-2", "5", "best")
    assert code == 0 and out == "tagged best: 1, 2, 5\n"
    code, out, _ = meticulous(capsys, "tag", "2", "best")
    assert out == "already tagged best: 2\n"
    assert meticulous(capsys, "tag", "experiments/2", "lr=0.01")[0] == 0
    assert meticulous(capsys, "note", "2", "diverged?\tno: a tab and\na newline")[0] == 0
    assert meticulous(capsys, "note", "2", "second note")[0] == 0
    frame = load_experiments("experiments")
    assert frame.loc[2, "tags"] == ("best", "lr=0.01")
    assert frame.loc[3, "tags"] == ()
    assert frame.loc[2, "notes"] == ("diverged?\tno: a tab and\na newline", "second note")
    lines = (app / "experiments/2/NOTES").read_text().splitlines()
    assert len(lines) == 2 and lines[1].split("\t")[1:] == [
        os.environ.get("USER") or lines[1].split("\t")[1],
        "second note",
    ]
    # the table shows tags by default once a run has one, and --tag filters
    assert summary_cli.main([]) == 0
    header = capsys.readouterr().out.splitlines()[0].split()
    assert "tags" in header
    assert table_ids(capsys, "--tag", "best") == ["1", "2", "5"]
    assert table_ids(capsys, "--tag", "best", "lr=0.01") == ["2"]
    assert meticulous(capsys, "untag", "1-5", "best")[2] == ""
    assert load_experiments("experiments").loc[1, "tags"] == ()


def test_selection_by_sweep_status_filter_and_paths(app: Path, capsys) -> None:
    code, out, _ = meticulous(capsys, "tag", "--sweep", "latest", "swept")
    assert out == "tagged swept: 1, 2, 3, 4\n"
    code, out, _ = meticulous(capsys, "tag", "--status", "error", "bad")
    assert code == 0 and out == "tagged bad: 2, 4\n"  # lr=2.0 diverges for both models
    code, out, _ = meticulous(capsys, "tag", "1-5", "small", "--filter", "optimizer.lr < 1")
    assert out == "tagged small: 1, 3\n"  # 5, the argparse run, has no optimizer.lr
    # ROOT/ID from another root; several roots are labelled with their paths
    other = app / "elsewhere"
    with Experiment({"lr": 5}, root=other, capture_output=False, code_dir=app.parent):
        pass
    code, out, _ = meticulous(capsys, "tag", "elsewhere/1", "experiments/5", "x")
    assert out == f"tagged x: {Path('elsewhere/1')}, {Path('experiments/5')}\n"
    # options may come between the runs and the tag
    code, out, _ = meticulous(capsys, "tag", "1", "--root", "elsewhere", "y")
    assert code == 0 and out == "tagged y: 1\n"
    # a tag that is also a run id is done, with a note: was the tag forgotten?
    code, out, err = meticulous(capsys, "tag", "2", "1")
    assert code == 0 and out == "tagged 1: 2\n" and "'1' is also a run id" in err
    assert (other / "1" / "TAG.y").exists()
    # custom ids are among the ids an error lists
    with Experiment(
        {"lr": 6}, root=other, experiment_id="baseline", capture_output=False, code_dir=app.parent
    ):
        pass
    code, _, err = meticulous(capsys, "tag", "--root", "elsewhere", "7", "z")
    assert code == 2 and "(ids 1, baseline)" in err


@pytest.mark.parametrize(
    "argv, words",
    [
        (["tag", "99", "t"], ["99", "ids 1-5"]),
        (["tag", "40-50", "t"], ["40 to 50"]),
        (["tag", "1", "../t"], ["invalid tag"]),
        (["tag", "t"], ["which runs?", "'t' was taken as the tag"]),
        (["note", "1"], ["which runs?", "RUN... TEXT"]),
        (["restore", "99"], ["no trashed run '99'", "there are none", "restore --list"]),
        (["tag", "--sweep", "nope", "t"], ["no sweep 'nope'"]),
        (["tag", "--filter", "__import__('os')", "t"], ["not allowed"]),
        (["tag", "--root", "missing", "1", "t"], ["missing", "does not exist"]),
        (["note", "1", " "], ["empty"]),
        (["diff", "1"], ["two runs"]),
        (["rm", "--trash", "1"], ["--purge"]),
    ],
)
def test_bad_selections_are_one_line_with_exit_2(app: Path, capsys, argv, words) -> None:
    code, _, err = meticulous(capsys, *argv)
    assert code == 2 and err.count("\n") == 1, err
    assert all(w in err for w in words), err


def test_archive_hides_runs_until_asked(app: Path, capsys) -> None:
    assert meticulous(capsys, "archive", "2", "4")[1] == "archived 2, 4\n"
    assert (app / "experiments/2/ARCHIVED").exists()
    assert list(load_experiments("experiments").index) == [1, 3, 5]
    assert list(load_experiments("experiments", include_archived=True).index) == [1, 2, 3, 4, 5]
    assert list(Experiments("experiments").as_dataframe().index) == [1, 3, 5]
    assert table_ids(capsys) == ["1", "3", "5"]
    assert table_ids(capsys, "--archived") == list("12345")
    # filters skip archived runs unless --archived; named runs are found anyway
    assert meticulous(capsys, "tag", "--sweep", "latest", "s")[1] == "tagged s: 1, 3\n"
    assert meticulous(capsys, "tag", "--sweep", "latest", "--archived", "s")[1] == (
        "tagged s: 2, 4\nalready tagged s: 1, 3\n"
    )
    assert meticulous(capsys, "unarchive", "--sweep", "latest")[1] == (
        "unarchived 2, 4\nnot archived: 1, 3\n"
    )
    assert table_ids(capsys) == list("12345")


def test_rm_moves_aside_and_restore_brings_back_with_sweep_links(app: Path, capsys) -> None:
    root = app / "experiments"
    links = {p: os.readlink(p) for p in (root / ".sweeps").glob("*/*")}
    assert len(links) == 4
    before = (root / "3/metadata.json").read_text()
    code, out, _ = meticulous(capsys, "rm", "3", "4")
    assert code == 0 and "restore" in out
    assert sorted(os.listdir(root / ".trash")) == ["3", "4"]
    assert table_ids(capsys) == ["1", "2", "5"]
    assert meticulous(capsys, "restore", "--list")[1] == "3\n4\n"
    assert meticulous(capsys, "restore", "3-4")[1] == "restored 3, 4 to experiments\n"
    assert (root / "3/metadata.json").read_text() == before
    assert table_ids(capsys) == list("12345")
    for link, target in links.items():  # untouched, and pointing at the run again
        assert os.readlink(link) == target
        job = json.loads((link / "metadata.json").read_text())["sweep"]["job_num"]
        assert str(job) == link.name


def test_restore_refuses_to_overwrite(app: Path, capsys) -> None:
    root = app / "experiments"
    assert meticulous(capsys, "rm", "2")[0] == 0
    (root / "2").mkdir()
    (root / "2/metadata.json").write_text("{}")  # a run from before the run marker
    (root / "2/STATUS").write_text("SUCCESS\n")
    code, _, err = meticulous(capsys, "restore", "2")
    assert code == 2 and "exists" in err
    assert meticulous(capsys, "rm", "2")[0] == 0  # the second run with id 2 goes to 2~2
    assert sorted(os.listdir(root / ".trash")) == ["2", "2~2"]


def test_removed_numbers_are_never_given_again(app: Path, capsys) -> None:
    root = app / "experiments"
    assert meticulous(capsys, "rm", "5")[0] == 0
    with Experiment({}, root=root, capture_output=False, code_dir=app.parent) as exp:
        pass
    assert exp.id == "6"
    assert meticulous(capsys, "restore", "5")[0] == 0  # and 5 comes back as it was
    assert table_ids(capsys) == list("123456")
    # a root from before the .numbers markers: the largest run removed, or deleted
    shutil.rmtree(root / ".numbers")
    assert meticulous(capsys, "rm", "6")[0] == 0
    assert meticulous(capsys, "rm", "--purge", "--yes", "5")[0] == 0
    with Experiment({}, root=root, capture_output=False, code_dir=app.parent) as exp:
        pass
    assert exp.id == "7"


def test_purge_asks_first(app: Path, capsys, monkeypatch) -> None:
    root = app / "experiments"
    monkeypatch.setattr(sys, "stdin", io.StringIO("n\n"))
    code, out, _ = meticulous(capsys, "rm", "--purge", "1")
    assert code == 1 and "for good (1)? [y/N]" in out and (root / "1").is_dir()
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    code, _, err = meticulous(capsys, "rm", "--purge", "1")
    assert code == 2 and "--yes" in err and (root / "1").is_dir()
    monkeypatch.setattr(sys, "stdin", io.StringIO("y\n"))
    assert meticulous(capsys, "rm", "--purge", "1")[0] == 0 and not (root / "1").exists()
    assert meticulous(capsys, "rm", "2", "3")[0] == 0
    assert meticulous(capsys, "rm", "--purge", "--trash", "--yes", "2")[1].startswith("deleted 2 ")
    assert os.listdir(root / ".trash") == ["3"]
    assert table_ids(capsys) == ["4", "5"]


def test_rm_refuses_a_live_run(app: Path, capsys) -> None:
    exp = Experiment({}, root=app / "experiments", capture_output=False, code_dir=app.parent)
    try:
        code, _, err = meticulous(capsys, "rm", exp.id)
        assert code == 2 and "RUNNING" in err and exp.dir.is_dir()
        assert meticulous(capsys, "archive", exp.id)[0] == 0  # the rest is harmless
    finally:
        exp.finish()
    assert meticulous(capsys, "rm", exp.id)[0] == 0


def test_the_cache_sees_every_change(tmp_path: Path, capsys) -> None:
    root = tmp_path / "experiments"
    with Experiment({"a": 1}, root=root, capture_output=False, code_dir=tmp_path) as exp:
        pass
    old = time.time() - 3600
    os.utime(exp.dir, (old, old))  # long settled: the cache trusts its time stamp
    assert load_experiments(root).loc[1, "notes"] == ()
    assert load_experiments(root).loc[1, "notes"] == ()  # now from the cache
    args = ["--root", str(root), "1"]
    for step, (argv, column, expected) in enumerate(
        [
            (["note", *args, "one"], "notes", ("one",)),
            (["note", *args, "two"], "notes", ("one", "two")),
            (["tag", *args, "t"], "tags", ("t",)),
            (["untag", *args, "t"], "tags", ()),
        ]
    ):
        os.utime(exp.dir, (old + step, old + step))
        load_experiments(root)
        assert cli.main(argv) == 0
        assert load_experiments(root).loc[1, column] == expected, argv
    # by hand: a tag file created, an archive marker
    os.utime(exp.dir, (old, old))
    load_experiments(root)
    (exp.dir / "TAG.by-hand").touch()
    assert load_experiments(root).loc[1, "tags"] == ("by-hand",)
    (exp.dir / "ARCHIVED").touch()
    assert load_experiments(root).empty


WORKER = """
import sys
from meticulous_hydra import cli
who, root, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
print("ready", flush=True)
sys.stdin.readline()  # start together
for i in range(n):
    assert cli.main(["tag", "--root", root, "1", f"{who}{i}"]) == 0
    assert cli.main(["note", "--root", root, "1", f"{who} note {i}"]) == 0
for i in range(0, n, 2):
    assert cli.main(["untag", "--root", root, "1", f"{who}{i}"]) == 0
"""


def test_two_processes_tagging_and_noting_lose_nothing(tmp_path: Path) -> None:
    root = tmp_path / "experiments"
    with Experiment({}, root=root, capture_output=False, code_dir=tmp_path):
        pass
    n = 150
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, who, str(root), str(n)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for who in ("a", "b")
    ]
    go_together(procs)
    for proc in procs:
        with watchdog(proc):
            proc.communicate()
        assert proc.returncode == 0
    frame = load_experiments(root)
    expected = {f"{who}{i}" for who in "ab" for i in range(1, n, 2)}
    assert set(frame.loc[1, "tags"]) == expected
    notes = frame.loc[1, "notes"]
    assert len(notes) == 2 * n
    for who in "ab":  # all there, each process's in its own order
        assert [x for x in notes if x.startswith(who)] == [f"{who} note {i}" for i in range(n)]


def test_show_gives_runs_in_full_with_their_tags_and_notes(app: Path, capsys) -> None:
    assert meticulous(capsys, "tag", "2", "best")[0] == 0
    assert meticulous(capsys, "note", "2", "lr too high?")[0] == 0
    code, out, err = meticulous(capsys, "show", "2", "5")
    assert code == 0 and err == ""
    two, five = out.split("experiment 5 ")
    assert two.startswith("experiment 2 ") and "tags: best\n" in two
    assert "notes:\n" in two and two.rstrip().count("lr too high?") == 1
    assert "config:" in five and "tags:" not in five and "notes:" not in five
    assert "\nstderr: (empty)\n" in five  # the recording line is for the terminal only
    # an archived run is shown too, and says so
    assert meticulous(capsys, "archive", "5")[0] == 0
    assert "archived: yes" in meticulous(capsys, "show", "5")[1]
    code, _, err = meticulous(capsys, "show", "99")
    assert code == 2 and err.count("\n") == 1 and "99" in err
