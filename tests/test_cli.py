"""meticulous-summary, run as the installed command in a subprocess."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import git, make_app_repo, run_python

CLI = str(Path(sys.executable).with_name("meticulous-summary"))


def summary(*args: str, cwd: Path, columns: int | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    if columns:
        env["COLUMNS"] = str(columns)
    return subprocess.run(
        [CLI, *args], cwd=cwd, capture_output=True, text=True, env=env, timeout=60
    )


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A root with a Hydra sweep (one failing job) and two argparse runs."""
    # the app_repo fixture's repository, once for the whole module
    repo = make_app_repo(tmp_path_factory.mktemp("cli") / "app", ("train.py", "train_argparse.py"))
    run_python(
        [
            "examples/train.py",
            "-m",
            "hydra/callbacks=meticulous",
            "model=mlp,resnet",
            "optimizer.lr=0.01,0.1,2.0",
        ],
        repo,
    )
    run_python(
        ["examples/train.py", "-m", "hydra/callbacks=meticulous", "seed=1,2"], repo, check=True
    )
    run_python(["examples/train_argparse.py", "data", "--lr", "0.3"], repo, check=True)
    git(repo, "status")  # the roots keep the tree clean
    return repo


def test_default_table(runs: Path) -> None:
    proc = summary(cwd=runs)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    header = lines[0].split()
    assert header[:4] == ["id", "status", "start_time", "duration"]
    # differing settings are shown, constant ones hidden
    assert "optimizer.lr" in header and "model.name" in header and "seed" in header
    assert "data.noise" not in header and "epochs" not in header
    assert "summary.loss" in header and "status_detail" in header
    assert len(lines) == 2 + 9
    assert "FloatingPointError: loss diverged" in proc.stdout


def test_filter_sort_columns(runs: Path) -> None:
    proc = summary(
        "--filter",
        "config.optimizer.lr > 0.05 and status == 'SUCCESS'",
        "--columns",
        "config.model.*",
        "optimizer.lr",
        "summary.*",
        "--sort",
        "-summary.loss",
        "--format",
        "csv",
        cwd=runs,
    )
    assert proc.returncode == 0, proc.stderr
    rows = proc.stdout.splitlines()
    assert rows[0].split(",")[:4] == [
        "id",
        "config.model.name",
        "config.model.hidden",
        "config.model.dropout",
    ]
    assert len(rows) == 1 + 4  # lr 0.1: mlp and resnet, and the two seeds of the second sweep
    losses = [float(r.split(",")[-2]) for r in rows[1:]]
    assert losses == sorted(losses, reverse=True)


@pytest.mark.parametrize(
    ("expression", "ids"),
    [
        ("status in ['ERROR', 'DIED']", ["3", "6"]),
        ("sweep.id is None", ["9"]),
        ("optimizer.lr * 10 >= 20", ["3", "6"]),
        ("not (status == 'SUCCESS') or `metadata.adapter` == 'argparse'", ["3", "6", "9"]),
        ("model.name == 'resnet' and summary.loss < 1", ["5"]),
    ],
)
def test_filter_expressions(runs: Path, expression: str, ids: list[str]) -> None:
    proc = summary("--filter", expression, "--format", "json", cwd=runs)
    assert proc.returncode == 0, proc.stderr
    assert [r["id"] for r in json.loads(proc.stdout)] == ids


def test_group_by_averages_summary(runs: Path) -> None:
    proc = summary("--group-by", "model.name", "--status", "SUCCESS", "--format", "json", cwd=runs)
    assert proc.returncode == 0, proc.stderr
    groups = {g["config.model.name"]: g for g in json.loads(proc.stdout)}
    assert groups["mlp"]["runs"] == 4 and groups["resnet"]["runs"] == 2
    assert groups[""]["runs"] == 1  # the argparse run has no model
    assert "summary.loss.mean" in groups["mlp"] and "summary.loss.std" in groups["mlp"]
    table = summary("--group-by", "model.name", "optimizer.lr", cwd=runs)
    assert "±" in table.stdout and "runs" in table.stdout


def test_sweep_status_last(runs: Path) -> None:
    latest = summary("--sweep", "latest", "--format", "json", cwd=runs)
    rows = json.loads(latest.stdout)
    assert [r["id"] for r in rows] == ["7", "8"]
    first_sweep = summary(
        "--status", "error", "--columns", "sweep.id", "--format", "json", cwd=runs
    )
    sweep_id = json.loads(first_sweep.stdout)[0]["sweep.id"]
    assert len(json.loads(summary("--sweep", sweep_id, "--format", "json", cwd=runs).stdout)) == 6
    last = json.loads(summary("--last", "2", "--format", "json", cwd=runs).stdout)
    assert [r["id"] for r in last] == ["8", "9"]


@pytest.mark.parametrize("fmt", ["github", "plain", "latex", "html", "simple"])
def test_formats_and_output_file(runs: Path, fmt: str, tmp_path: Path) -> None:
    out = tmp_path / "table.txt"
    proc = summary("--format", fmt, "--output", str(out), cwd=runs)
    assert proc.returncode == 0 and proc.stdout == ""
    text = out.read_text()
    assert "SUCCESS" in text
    if fmt == "html":
        assert text.startswith("<table>")


def test_list_columns_and_all(runs: Path) -> None:
    names = summary("--list-columns", cwd=runs).stdout.split()
    assert "config.optimizer.lr" in names and "metadata.hydra.job_name" in names
    all_cols = summary("--all", "--format", "json", cwd=runs)
    assert set(json.loads(all_cols.stdout)[0]) == {"id", *names}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--sort", "summary.los"], "did you mean summary.loss"),
        (["--columns", "optimiser.lr"], "did you mean"),
        (["--filter", "config.optimizer.lr >"], "cannot parse filter"),
        (["--filter", "__import__('os').system('touch pwned')"], "not allowed in a filter"),
        (["--filter", "config.optimizer.__class__ == 1"], "unknown column"),
        (["--filter", "status.upper() == 'X'"], "not allowed in a filter"),
        (["--sortt", "x"], "did you mean --sort"),
        (["--format", "githb"], "did you mean github"),
        (["--sweep", "nope"], "no sweep 'nope'"),
    ],
)
def test_errors_are_one_line_with_exit_2(runs: Path, args: list[str], message: str) -> None:
    proc = summary(*args, cwd=runs)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and message in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (runs / "pwned").exists()


def test_missing_and_empty_roots(tmp_path: Path) -> None:
    proc = summary("nowhere", cwd=tmp_path)
    assert (
        proc.returncode == 2 and "does not exist" in proc.stderr and "Traceback" not in proc.stderr
    )
    (tmp_path / "empty").mkdir()
    proc = summary("empty", cwd=tmp_path)
    assert proc.returncode == 0 and "no experiments under empty" in proc.stdout


def test_narrow_terminal(runs: Path) -> None:
    proc = summary(cwd=runs, columns=60)
    lines = proc.stdout.splitlines()
    assert max(len(line) for line in lines) <= 60
    assert "hidden to fit the terminal" in proc.stdout and "--columns" in proc.stdout
    assert "status" in lines[0] and "summary.loss" in lines[0]


def test_show_one_experiment(runs: Path) -> None:
    proc = summary("experiments/3", cwd=runs)
    assert proc.returncode == 0, proc.stderr
    assert "status: ERROR" in proc.stdout and "FloatingPointError" in proc.stdout
    assert "optimizer.lr=2.0" in proc.stdout and "config:" in proc.stdout
    assert "lr: 2.0" in proc.stdout and "stdout (last" in proc.stdout
    same = summary("--show", "3", cwd=runs)
    assert same.stdout == proc.stdout
    bad = summary("--show", "../etc", cwd=runs)
    assert bad.returncode == 2 and "invalid experiment id" in bad.stderr


def test_several_roots(runs: Path, tmp_path: Path) -> None:
    shutil.copytree(runs / "experiments", tmp_path / "cluster_b")
    proc = summary(
        str(runs / "experiments"), str(tmp_path / "cluster_b"), "--format", "json", cwd=runs
    )
    rows = json.loads(proc.stdout)
    assert len(rows) == 18 and len({(r["root"], r["id"]) for r in rows}) == 18


def test_pipe_to_head_is_quiet(runs: Path) -> None:
    proc = subprocess.run(
        f"'{CLI}' --all | head -1", shell=True, cwd=runs, capture_output=True, text=True
    )
    assert proc.stderr == "" and proc.stdout.startswith("id")
