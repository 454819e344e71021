"""`meticulous diff` on real recorded runs: a Hydra sweep, runs at two
commits of a real repository, one with uncommitted changes, and runs in two
roots."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import git, make_app_repo, record, run_python

from meticulous_hydra import Experiment, cli


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """experiments/1-2: a sweep over model (mlp, resnet); 3: the mlp job
    again after a commit that changed the code; 4: with uncommitted changes."""
    repo = make_app_repo(tmp_path_factory.mktemp("compare") / "app")
    run_python(
        ["examples/train.py", "-m", "hydra/callbacks=meticulous", "model=mlp,resnet"],
        repo,
        check=True,
    )
    train = repo / "examples" / "train.py"
    train.write_text(train.read_text().replace("0.02 * rng.random()", "0.03 * rng.random()"))
    git(repo, "commit", "-qam", "more noise")
    run_python(
        ["examples/train.py", "-m", "hydra/callbacks=meticulous", "model=mlp"], repo, check=True
    )
    (repo / "conf" / "config.yaml").write_text(
        (repo / "conf" / "config.yaml").read_text() + "\n# a comment\n"
    )
    run_python(
        [
            "examples/train.py",
            "-m",
            "hydra/callbacks=meticulous",
            "model=mlp",
            "hydra.callbacks.meticulous.allow_dirty=true",
        ],
        repo,
        check=True,
    )
    git(repo, "checkout", "--", "conf/config.yaml")
    return repo


def diff(capsys: pytest.CaptureFixture[str], app: Path, *argv: str) -> str:
    assert cli.main(["diff", "--root", str(app / "experiments"), *argv]) == 0
    return capsys.readouterr().out


def cells(text: str) -> dict[str, list[str]]:
    """A `--format json` diff as key -> cells."""
    return {row.pop("key"): list(row.values()) for row in json.loads(text)}


def test_config_choices_and_summary_deltas(app: Path, capsys) -> None:
    out = diff(capsys, app, "1", "2")
    table = cells(diff(capsys, app, "1", "2", "--format", "json"))
    assert table["metadata.hydra.choices.model"] == ["mlp", "resnet"]  # full names in exports
    assert table["config.model.name"] == ["mlp", "resnet"]
    assert table["overrides"] == ["model=mlp", "model=resnet"]
    loss = [json.loads((app / f"experiments/{i}/summary.json").read_text())["loss"] for i in (1, 2)]
    assert table["summary.loss"] == loss  # an export holds the values, exactly
    delta = f"({'+' if loss[1] > loss[0] else '-'}{abs(loss[1] - loss[0]):.4g})"
    # rows named as the table names its columns (issue 23.4)
    keys = {line.split()[0]: line for line in out.splitlines()[2:]}
    assert delta in keys["loss"]
    assert keys["model"].split()[1:] == ["mlp", "resnet"]
    assert keys["model.name"].split()[1:] == ["mlp", "resnet"]
    # a path into each run's own folder tells them apart by nothing
    assert "config.checkpoint" not in table
    every = cells(diff(capsys, app, "1", "2", "--all", "--format", "json"))
    assert every["config.checkpoint"] == ["<run folder>/model.pt"] * 2
    # equal keys are left out unless --all; same commit, so no code row
    assert "config.epochs" not in table and "code" not in table
    assert "config.epochs" in cells(diff(capsys, app, "1", "2", "--all", "--format", "json"))
    assert out.splitlines()[0].split() == ["key", "1", "2"]
    assert "choice.model" not in out and "code from" not in out


def test_code_between_commits_and_recorded_diffs(app: Path, capsys) -> None:
    out = diff(capsys, app, "1", "3", "4")
    table = cells(diff(capsys, app, "1", "3", "4", "--format", "json"))
    assert table["code"] == ["", "differs", "differs"]
    assert table["git.dirty"] == [False, False, True]
    assert table["git.diff"] == [None, None, "1 file +2 -0"]
    # in the table, only columns; the code below it
    keys = [line.split()[0] for line in out.split("\n\n")[0].splitlines()[2:]]
    assert "git.dirty" in keys and "git.sha" in keys
    assert "git.diff" not in keys and "code" not in keys
    sha1, sha3 = (
        json.loads((app / f"experiments/{i}/metadata.json").read_text())["git"]["sha"]
        for i in (1, 3)
    )
    assert table["git.sha"][:2] == [sha1[:12], sha3[:12]]
    assert f"code from 1 ({sha1[:10]}) to 3 ({sha3[:10]}):" in out
    assert "examples/train.py | 2 +-" in out
    assert "4 ran with uncommitted changes: 1 file +2 -0" in out


def test_types_environment_and_two_roots(tmp_path: Path, capsys) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    for root, lr in ((a, 1), (b, "1")):
        with Experiment(
            {"lr": lr, "seed": 0}, root=root, capture_output=False, code_dir=tmp_path
        ) as exp:
            exp.summary({"acc": 0.5 if root == a else 0.75})
    # repro14 records packages.txt; diff reads it where present
    (a / "1/packages.txt").write_text("numpy==1.26.4\npandas==2.2.0\n")
    (b / "1/packages.txt").write_text("numpy==2.0.1\npandas==2.2.0\n")
    assert cli.main(["diff", str(a / "1"), str(b / "1"), "--format", "json"]) == 0
    table = cells(capsys.readouterr().out)
    assert table["config.lr"] == [1, "1"]
    assert table["summary.acc"] == [0.5, 0.75]
    assert cli.main(["diff", str(a / "1"), str(b / "1")]) == 0
    text = capsys.readouterr().out
    keys = {line.split()[0]: line.split()[1:] for line in text.split("\n\n")[0].splitlines()[2:]}
    assert keys["lr"] == ["1", "(int)", "1", "(str)"] and keys["acc"][1:] == ["0.75", "(+0.25)"]
    assert "numpy  1.26.4  2.0.1" in text.split("\n\npackages (", 1)[1]
    assert table["package.numpy"] == ["1.26.4", "2.0.1"]
    assert "package.pandas" not in table and "config.seed" not in table
    assert list(json.loads(cli_json(capsys, a, b))[0]) == ["key", str(a / "1"), str(b / "1")]


def cli_json(capsys: pytest.CaptureFixture[str], a: Path, b: Path) -> str:
    assert cli.main(["diff", str(a / "1"), str(b / "1"), "--format", "json"]) == 0
    return capsys.readouterr().out


def test_identical_runs_and_unknown_format(tmp_path: Path, capsys) -> None:
    root = tmp_path / "r"
    for _ in range(2):
        with Experiment({"x": 1}, root=root, capture_output=False, code_dir=tmp_path):
            pass
    assert cli.main(["diff", "--root", str(root), "1", "2"]) == 0
    out = capsys.readouterr().out
    assert "duration" in out or "do not differ" in out
    assert cli.main(["diff", "--root", str(root), "1-2", "--format", "nope"]) == 2
    assert "unknown format 'nope'" in capsys.readouterr().err


def test_integer_results_and_their_deltas_print_as_integers(tmp_path: Path, capsys) -> None:
    """`800000 (+7.8e+05)`: an integer delta printed as a rounded float."""
    root = tmp_path / "experiments"
    record(root, {"model": "small"}, {"params": 20_000, "loss": 0.5})
    record(root, {"model": "large"}, {"params": 800_123, "loss": 0.25})
    out = diff(capsys, tmp_path, "1", "2")
    rows = {line.split()[0]: line.split()[1:] for line in out.splitlines()[2:] if line.strip()}
    assert rows["params"] == ["20000", "800123", "(+780123)"]
    assert rows["loss"] == ["0.5", "0.25", "(-0.25)"]
