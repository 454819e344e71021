"""The selectors mean the same in the table and in every verb (issue 23.8):
``--root``, ``--sweep``, ``--status``, ``--filter``, ``--tag``, ids and
ranges; and ``rerun`` takes runs like every other verb (23.9)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from helpers import metadata_of, run_python

from meticulous_hydra import cli


@pytest.fixture(scope="module")
def root(realistic_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the realistic root with runs 7 and 20 tagged best."""
    copy = tmp_path_factory.mktemp("selectors") / "experiments"
    shutil.copytree(realistic_root, copy, symlinks=True)
    assert cli.main(["tag", "7", "20", "best", "--root", str(copy)]) == 0
    return copy


def call(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def table_ids(capsys: pytest.CaptureFixture[str], root: Path, *selectors: str) -> list[int]:
    code, out, err = call(capsys, "summary", "--root", str(root), *selectors, "--format", "json")
    assert code == 0, err
    return [r["id"] for r in json.loads(out)]


def shown_ids(capsys: pytest.CaptureFixture[str], root: Path, *selectors: str) -> list[int]:
    code, out, err = call(capsys, "show", "--root", str(root), *selectors, "--tail", "0")
    assert code == 0, err
    return [int(i) for i in re.findall(r"^experiment (\d+) ", out, flags=re.M)]


SELECTIONS = [
    ["--sweep", "latest"],
    ["--status", "ERROR,DIED"],
    ["--status", "error"],
    ["--filter", "model == 'small' and optimizer.lr < 0.05"],
    ["--tag", "best"],
    ["3-7"],
    ["3", "9", "12"],
    ["1-12", "--status", "ERROR"],
    ["11-21", "--tag", "best", "--filter", "final_loss < 1"],
]


@pytest.mark.parametrize("selectors", SELECTIONS, ids=" ".join)
def test_the_table_and_the_verbs_select_the_same_runs(capsys, root: Path, selectors) -> None:
    ids = table_ids(capsys, root, *selectors)
    assert ids and ids == shown_ids(capsys, root, *selectors)


def test_the_table_takes_root_ids_and_ranges(capsys, root: Path, monkeypatch) -> None:
    monkeypatch.chdir(root.parent)
    # `meticulous summary --root R`, from anywhere (the README: every verb takes --root)
    monkeypatch.chdir("/")
    assert table_ids(capsys, root)[:3] == [1, 2, 3]
    assert table_ids(capsys, root, "5-3", "19") == [3, 4, 5, 19]
    code, out, err = call(capsys, "summary", "--root", str(root), "15")
    assert code == 0 and "experiment 15 " in out and "ConfigKeyError" in out  # one run: in full
    code, _, err = call(capsys, "summary", "--root", str(root), "99")
    assert code == 2 and "no run '99'" in err and "1-21" in err
    code, out, _ = call(capsys, "summary", "--root", str(root), "--status", "ERROR", "--tag", "x")
    assert code == 0 and out == "no experiments match\n"


def test_one_run_named_is_shown_in_full_only_when_nothing_else_is_asked(capsys, root: Path) -> None:
    """Run 3 failed: `--status SUCCESS 3` showed it in full all the same, and
    `3 --format json` printed text, not JSON."""
    for selectors in (["--status", "SUCCESS"], ["--tag", "best"], ["--filter", "seed == 1"]):
        code, out, err = call(capsys, "summary", "--root", str(root), *selectors, "3")
        assert code == 0 and out == "no experiments match\n", err
        code, out, err = call(capsys, "show", "--root", str(root), *selectors, "3")
        assert "no runs match" in err and not out
    code, out, err = call(capsys, "summary", "--root", str(root), "--status", "ERROR", "3")
    assert code == 0 and out.startswith("experiment 3 "), err  # it matches: in full
    assert table_ids(capsys, root, "3") == [3]
    code, out, err = call(capsys, "summary", "--root", str(root), "3", "--columns", "status")
    assert code == 0 and out.split() == ["id", "status", "----", "--------", "3", "ERROR"], err


def test_rerun_takes_runs_like_every_verb(capsys, root: Path) -> None:
    """Issue 23.9: `rerun --failed 27`, a failed single run, was refused."""
    code, out, err = call(capsys, "rerun", "--failed", "--dry-run", "--root", str(root), "15")
    assert code == 0, err
    assert "run 15 (ERROR)" in out and "db_key=pork" in out
    code, out, err = call(capsys, "rerun", "--failed", "--dry-run", "--root", str(root), "1-21")
    assert code == 0, err
    assert re.findall(r"run (\d+) \(ERROR\)", out) == ["3", "6", "15", "19", "21"]
    code, out, err = call(capsys, "rerun", "--dry-run", "--root", str(root), "--status", "ERROR")
    assert code == 0 and re.findall(r"run (\d+) \(ERROR\)", out) == ["3", "6", "15", "19", "21"]
    code, out, err = call(capsys, "rerun", "--failed", "--dry-run", "--root", str(root))
    assert code == 0 and re.findall(r"run (\d+) \(ERROR\)", out) == ["19", "21"]  # latest sweep
    code, out, err = call(capsys, "rerun", "--failed", "--dry-run", "--root", str(root), "7")
    assert code == 0 and "nothing to run again" in out
    code, _, err = call(capsys, "rerun", "--root", str(root))
    assert code == 2 and "which runs?" in err and err.count("\n") == 1


def test_rerun_runs_a_failed_single_run_again(
    realistic_root: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    app = tmp_path / "app"
    shutil.copytree(realistic_root.parent, app, symlinks=True)
    proc = run_python(["lightning/train.py", "+meticulous=on", "db_key=pork"], app)
    assert proc.returncode == 1
    single = str(max(int(p.name) for p in (app / "experiments").iterdir() if p.name.isdigit()))
    assert metadata_of(app / "experiments" / single)["sweep"] is None
    capfd.readouterr()
    assert cli.main(["rerun", "--failed", single, "--root", str(app / "experiments")]) == 1
    out = capfd.readouterr().out
    made = str(int(single) + 1)
    assert f"# run {single} (ERROR)" in out and f"-> run {made}: ERROR (exit code 1)" in out
    again = metadata_of(app / "experiments" / made)
    assert again["rerun_of"] == single and again["sweep"] is None
    assert "db_key=pork" in again["overrides"]
