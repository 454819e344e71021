"""The argparse adapter: record(parser) in-process on real parsers, and on
real scripts where the process is the point (exit codes, capture, the example)."""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers import PROJECT, git, metadata_of, run_python, status_of, write_script

from meticulous_hydra import record

# The parser of every argparse feature; FEATURES is the same parser as a script.
PARSER = """
import argparse, enum, sys
from pathlib import Path
from meticulous_hydra import record

class Mode(enum.Enum):
    FAST = "fast"
    SLOW = "slow"

p = argparse.ArgumentParser(fromfile_prefix_chars="@")
p.add_argument("data", type=Path)
p.add_argument("--required", required=True)
p.add_argument("--lr", type=float, default="0.1")
p.add_argument("--flag", action="store_true")
p.add_argument("--no-thing", dest="thing", action="store_false")
p.add_argument("--tag", action="append")
p.add_argument("-v", action="count", default=0)
p.add_argument("--opt", choices=["sgd", "adam"], default="sgd")
p.add_argument("--mode", type=Mode, default=Mode.FAST)
p.add_argument("--hidden", default=argparse.SUPPRESS)
p.add_argument("--nothing", default=None)
g = p.add_mutually_exclusive_group()
g.add_argument("--cpu", action="store_true")
g.add_argument("--gpu", type=int)
p.add_argument("--out", type=argparse.FileType("w"), default=None)
sub = p.add_subparsers(dest="cmd")
s1 = sub.add_parser("fit")
s1.add_argument("--epochs", type=int, default=3)
s2 = sub.add_parser("eval")
s2.add_argument("--split", default="val")
"""
FEATURES = f"""{PARSER}
args, exp = record(p)
print("NAMESPACE", sorted(vars(args)))
"""


def features_parser() -> argparse.ArgumentParser:
    namespace: dict[str, Any] = {}
    exec(PARSER, namespace)
    return namespace["p"]


@pytest.fixture
def features(repo: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The repo with feat.py committed, as cwd: record() runs in-process as if
    ``python feat.py`` had been started there."""
    write_script(repo, "feat.py", FEATURES, commit=True)
    monkeypatch.chdir(repo)
    return repo


def record_here(
    monkeypatch: pytest.MonkeyPatch,
    argv: list[str],
    parser: argparse.ArgumentParser | None = None,
    script: str = "feat.py",
    **options: Any,
) -> tuple[argparse.Namespace, Any]:
    """record() in this process, with sys.argv as ``python script argv`` would
    set it; under pytest the code's folder is the cwd. The run is finished
    before returning (no capture: the recording line goes to capsys)."""
    monkeypatch.setattr(sys, "argv", [script, *argv])
    args, exp = record(parser or features_parser(), argv, capture_output=False, **options)
    exp.finish()
    return args, exp


def recorded(repo: Path, n: int | str = 1) -> tuple[dict, dict]:
    folder = repo / "experiments" / str(n)
    config = yaml.safe_load((folder / "config.yaml").read_text())
    meta = metadata_of(folder)
    return config, meta


def test_every_argparse_feature_is_recorded_with_types(
    features: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (features / "args.txt").write_text("--lr\n0.5\n")
    argv = [
        "--required",
        "r",
        "-vv",
        "--tag",
        "a",
        "--tag",
        "b",
        "@args.txt",
        "--flag",
        "--mode",
        "slow",
        "--hidden",
        "h",
        "--gpu",
        "1",
        "--out",
        "o.txt",
        "--no-thing",
        "--opt",
        "adam",
        "mydata",
        "fit",
        "--epochs",
        "7",
    ]
    args, _ = record_here(monkeypatch, argv)
    args.out.close()
    # the meticulous options are taken out of the Namespace
    assert not [name for name in vars(args) if "meticulous" in name]
    config, meta = recorded(features)
    assert config == {
        "data": "mydata",
        "required": "r",
        "lr": 0.5,
        "flag": True,
        "thing": False,
        "tag": ["a", "b"],
        "v": 2,
        "opt": "adam",
        "mode": "SLOW",
        "hidden": "h",
        "nothing": None,
        "cpu": False,
        "gpu": 1,
        "out": "o.txt",
        "cmd": "fit",
        "epochs": 7,
    }
    assert sorted(meta["overrides"]) == sorted(
        [
            "data=mydata",
            "required=r",
            "lr=0.5",
            "flag=true",
            "thing=false",
            "tag=[a,b]",
            "v=2",
            "opt=adam",
            "mode=SLOW",
            "hidden=h",
            "gpu=1",
            "out=o.txt",
            "cmd=fit",
            "epochs=7",
        ]
    )
    assert meta["adapter"] == "argparse"


def test_the_namespace_of_a_real_script_has_no_meticulous_option(repo: Path) -> None:
    write_script(repo, "feat.py", FEATURES, commit=True)
    proc = run_python(["feat.py", "d", "--required", "x", "eval"], repo, check=True)
    assert "NAMESPACE" in proc.stdout and "meticulous" not in proc.stdout
    assert recorded(repo)[1]["overrides"] == ["data=d", "required=x", "cmd=eval"]


def test_overrides_list_only_what_differs_from_defaults(
    features: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a value given but equal to the default is not an override; string
    # defaults are compared after the type converter, as argparse does
    record_here(monkeypatch, ["d", "--required", "x", "--lr", "0.1", "--opt", "sgd", "eval"])
    _, meta = recorded(features)
    assert meta["overrides"] == ["data=d", "required=x", "cmd=eval"]


def test_defaults_of_the_meticulous_group_can_be_set_by_the_script(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_script(repo, "s.py", "# the script's file: its folder is the code's repo\n", commit=True)
    monkeypatch.chdir(repo)

    def parser() -> argparse.ArgumentParser:
        p = argparse.ArgumentParser()
        p.add_argument("--seed", type=int, default=0)
        return p

    options = {"description": "baseline sweep", "experiments_dir": "runs", "script": "s.py"}
    _, exp = record_here(monkeypatch, [], parser(), **options)
    assert exp.id == "1"
    meta = metadata_of(repo / "runs" / "1")
    assert meta["description"] == "baseline sweep"
    argv = ["--description", "other", "--experiments-dir", "runs2"]
    record_here(monkeypatch, argv, parser(), **options)
    assert metadata_of(repo / "runs2" / "1")["description"] == "other"


def test_help_and_parse_errors_create_nothing(
    features: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        record_here(monkeypatch, ["--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    assert "meticulous" in out and "--experiment-id" in out and "--norecord" in out
    with pytest.raises(SystemExit) as exited:
        record_here(monkeypatch, ["d", "--lr", "fast"])
    err = capsys.readouterr().err
    assert exited.value.code == 2 and "usage:" in err and "invalid float value" in err
    assert not (features / "experiments").exists()


def test_norecord(features: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (features / "README").write_text("dirty is fine without recording\n")
    args, exp = record_here(monkeypatch, ["d", "--required", "x", "--norecord"])
    assert exp.norecord and args.required == "x"
    assert not (features / "experiments").exists()


def test_dirty_tree_is_a_one_line_error(
    features: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (features / "README").write_text("changed\n")
    with pytest.raises(SystemExit) as exited:
        record_here(monkeypatch, ["d", "--required", "x"])
    err = capsys.readouterr().err
    assert exited.value.code == 1
    assert err.strip().count("\n") == 0
    assert "README" in err and "--allow-dirty" in err
    record_here(monkeypatch, ["d", "--required", "x", "--allow-dirty"])
    _, meta = recorded(features)
    assert meta["git"]["dirty"] is True


def test_resume_with_experiment_id(
    features: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["d", "--required", "x", "--experiment-id", "run-a"]
    record_here(monkeypatch, base)
    root = features / "experiments"
    assert (
        f"meticulous-hydra: recording to experiments/run-a (a new experiments root: {root})\n"
        in capsys.readouterr().err
    )
    record_here(monkeypatch, base)
    err = capsys.readouterr().err
    assert "meticulous-hydra: resuming experiments/run-a, which had ended SUCCESS" in err
    meta = metadata_of(features / "experiments" / "run-a")
    assert meta["restarts"] == 1
    with pytest.raises(SystemExit) as exited:
        record_here(monkeypatch, [*base, "--lr", "0.9"])
    err = capsys.readouterr().err
    assert exited.value.code == 1 and "config differs in lr (recorded 0.1, now 0.9)" in err
    assert err.strip().count("\n") == 0
    with pytest.raises(SystemExit) as exited:
        record_here(monkeypatch, ["d", "--required", "x", "--experiment-id", "../escape"])
    assert exited.value.code == 1 and "invalid experiment id" in capsys.readouterr().err
    assert not (features / "escape").exists()


def test_launch_command_and_the_recording_line(features: Path, tmp_path: Path) -> None:
    # a real process: the launch command is read from how python was started
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    script = str(features / "feat.py")
    root = str(features / "experiments")
    argv = [script, "d", "--required", "x", "--experiments-dir", root]
    proc = run_python(argv, elsewhere, check=True)
    # outside the launch directory: the absolute path
    assert f"meticulous-hydra: recording to {root}/1 (a new experiments root: {root})\n" in (
        proc.stderr
    )
    _, meta = recorded(features)
    assert meta["launch"] == {"argv": argv, "cwd": str(elsewhere)}


def test_a_loop_of_experiments_in_one_script(repo: Path) -> None:
    write_script(
        repo,
        "seeds.py",
        """
        import argparse
        from meticulous_hydra import Experiment, record
        p = argparse.ArgumentParser()
        p.add_argument("--lr", type=float, default=0.1)
        for seed in range(3):
            args, exp = record(p, ["--lr", "0.2"])
            with exp:
                print("seed", seed)
                exp.summary({"seed": seed})
        """,
        commit=True,
    )
    proc = run_python(["seeds.py"], repo, check=True)
    for seed in range(3):
        folder = repo / "experiments" / str(seed + 1)
        assert (folder / "stdout").read_text() == f"seed {seed}\n"
        assert status_of(folder)[0] == "SUCCESS"
        assert metadata_of(folder)["overrides"] == ["lr=0.2"]
    assert proc.stdout.count("seed") == 3


def test_status_of_argparse_runs(repo: Path) -> None:
    write_script(
        repo,
        "s.py",
        """
        import argparse, sys
        from meticulous_hydra import record
        p = argparse.ArgumentParser()
        p.add_argument("--code", type=int, default=0)
        args, exp = record(p)
        if args.code == 99:
            raise RuntimeError("failed")
        sys.exit(args.code)
        """,
        commit=True,
    )
    assert run_python(["s.py"], repo).returncode == 0
    assert run_python(["s.py", "--code", "4"], repo).returncode == 4
    assert run_python(["s.py", "--code", "99"], repo).returncode == 1
    assert status_of(repo / "experiments" / "1")[0] == "SUCCESS"
    assert status_of(repo / "experiments" / "2") == ("ERROR", "exit code 4\n")
    status, detail = status_of(repo / "experiments" / "3")
    assert status == "ERROR" and "RuntimeError: failed" in detail


def test_the_example_script(repo: Path) -> None:
    shutil.copy(PROJECT / "examples" / "train_argparse.py", repo / "train_argparse.py")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "example")
    run_python(
        ["train_argparse.py", "data", "--lr", "0.05", "--layers", "128", "64", "32", "--no-cuda"],
        repo,
        check=True,
    )
    config, meta = recorded(repo)
    assert (
        config["layers"] == [128, 64, 32] and config["no_cuda"] is True and config["data"] == "data"
    )
    assert sorted(meta["overrides"]) == [
        "data=data",
        "layers=[128,64,32]",
        "lr=0.05",
        "no_cuda=true",
    ]
    assert (repo / "experiments" / "1" / "model.txt").exists()
