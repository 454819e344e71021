"""meticulous-summary: in-process through ``summary_cli.main(argv)``, and as
the installed command where a real process is the point (pipes, a terminal)."""

from __future__ import annotations

import csv
import io
import json
import os
import pty
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import git, make_app_repo, record, run_python

from meticulous_hydra.cli import summary as summary_cli
from meticulous_hydra.cli import table

CLI = str(Path(sys.executable).with_name("meticulous-summary"))


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A root with a Hydra sweep (two failing jobs), a sweep over seeds, and
    an argparse run."""
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


@pytest.fixture
def cli(runs: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):
    """``cli(*args, columns=None)`` -> (exit code, stdout, stderr), in-process, in ``runs``."""
    monkeypatch.chdir(runs)

    def call(*args: str, columns: int | None = None) -> tuple[int, str, str]:
        if columns:
            monkeypatch.setenv("COLUMNS", str(columns))
        else:
            monkeypatch.delenv("COLUMNS", raising=False)
        try:
            code = summary_cli.main(list(args))
        except SystemExit as e:  # argparse's own errors
            code = e.code
        out, err = capsys.readouterr()
        return code, out, err

    return call


def header(out: str) -> list[str]:
    return out.splitlines()[0].split()


# -- the default table -------------------------------------------------------------


def test_default_table_puts_what_tells_runs_apart_first(cli) -> None:
    code, out, err = cli(columns=1000)
    assert code == 0, err
    head = header(out)
    # the swept keys (a config group shows as its choice), then results
    assert head[:5] == ["id", "status", "model", "optimizer.lr", "seed"]
    assert head.index("loss") < head.index("status_detail")
    assert "summary.loss" not in head and "config.seed" not in head  # short headers
    # constant settings are hidden; what follows from the swept keys, the
    # per-run checkpoint path, start time and duration come last
    assert "epochs" not in head and "data.n_samples" in head  # absent from the argparse run
    assert head[-3:] == ["checkpoint", "start_time", "duration"]
    for derived in ("run_name", "model.name", "data.noise"):
        assert head.index(derived) > head.index("status_detail")
    assert len(out.splitlines()) == 2 + 9
    assert "FloatingPointError: loss diverged" in out


def test_at_80_columns_the_swept_keys_stay(cli) -> None:
    code, out, _ = cli("--sweep", "latest", columns=80)
    head = header(out)
    assert code == 0 and max(map(len, out.splitlines())) <= 80
    assert head[:4] == ["id", "status", "seed", "loss"]
    assert "start_time" not in head and "duration" not in head
    assert "hidden to fit the terminal" in out and "--columns" in out
    code, out, _ = cli(columns=80)
    assert {"model", "optimizer.lr", "seed"} <= set(header(out))


def test_a_key_in_only_some_runs_varies_and_a_description_shows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    root = tmp_path / "experiments"
    record(root, {"lr": 0.1}, {"loss": 0.5})
    record(root, {"lr": 0.1, "warmup": 10}, {"loss": 0.4}, description="with warmup")
    monkeypatch.setenv("COLUMNS", "200")
    assert summary_cli.main([str(root)]) == 0
    head = header(capsys.readouterr().out)
    assert "warmup" in head and "lr" not in head and "description" in head


def test_slurm_statuses_and_restarts_show(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """Issue 22: why SLURM stopped a run (its time limit, a requeue) shows
    like an error line, and ``restarts`` once a run shown was restarted."""
    root = tmp_path / "experiments"
    record(root, {"lr": 0.1}, {"loss": 0.5})
    monkeypatch.setenv("COLUMNS", "250")
    assert summary_cli.main([str(root)]) == 0
    head = header(capsys.readouterr().out)
    assert "restarts" not in head and "status_detail" not in head
    limit = "SIGTERM: SLURM job 8 reached its time limit (00:01:00)"
    record(root, {"lr": 0.2}, status="TIMEOUT", detail=limit)
    record(root, {"lr": 0.3}, experiment_id="req")  # then requeued, and resumed once
    record(root, {"lr": 0.3}, experiment_id="req", status="REQUEUED", detail="requeued job 9")
    assert summary_cli.main([str(root), "--format", "json"]) == 0
    rows = {r["config.lr"]: r for r in json.loads(capsys.readouterr().out)}
    assert (rows[0.2]["status"], rows[0.2]["status_detail"]) == ("TIMEOUT", limit)
    assert (rows[0.3]["status"], rows[0.3]["metadata.restarts"]) == ("REQUEUED", 1)
    assert summary_cli.main([str(root)]) == 0
    out = capsys.readouterr().out
    assert {"status_detail", "restarts"} <= set(header(out))
    assert limit[:30] in out and "requeued job 9" in out  # cut to fit the terminal
    assert summary_cli.main([str(root), "--group-by", "git.dirty", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["failed"] == 1  # the time limit


def test_durations_and_floats_read_as_such() -> None:
    assert [table.duration(s) for s in (0.004, 0.31, 2.25, 75, 7300)] == [
        "<10ms",
        "0.31s",
        "2.2s",
        "1m15s",
        "2h01m",
    ]
    assert [table.number(v) for v in (2.0, 0.1, 123456.0, 1e-5, 0.0)] == [
        "2.0",
        "0.1",
        "1.235e+05",
        "1.000e-05",
        "0.0",
    ]


def test_the_fast_tables_are_tabulates() -> None:
    """simple, plain and github are drawn without tabulate, to the character."""
    from tabulate import tabulate

    rng = random.Random(9)
    texts = ["", "a", "bb", "1.5", "x y", "cut…", "a long value here", "-", "[64, 64]"]
    for _ in range(500):
        width, height = rng.randint(1, 5), rng.randint(0, 5)
        heads = [rng.choice(["id", "status", "a", "loss", "x.y.z"]) for _ in range(width)]
        columns = [[rng.choice(texts) for _ in range(height)] for _ in range(width)]
        rows = [list(r) for r in zip(*columns, strict=True)]
        right = [rng.random() < 0.5 for _ in range(width)]  # a column of numbers
        align = ["right" if r else "left" for r in right]
        for fmt in table.FAST_FORMATS:
            expected = tabulate(
                rows, headers=heads, tablefmt=fmt, disable_numparse=True, colalign=align
            )
            assert table.fast_table(columns, heads, fmt, right) == expected
    assert table.fast_table([["日本"]], ["id"], "simple") is None  # wide: left to tabulate


def test_numbers_are_right_aligned(tmp_path: Path, capsys) -> None:
    root = tmp_path / "experiments"
    record(root, {"lr": 0.1, "name": "a"}, {"steps": 7})
    record(root, {"lr": 0.001, "name": "bbbbbbbb"}, {"steps": 1200})
    for fmt in ("simple", "github", "grid"):  # grid: drawn by tabulate
        argv = [str(root), "--columns", "lr", "name", "steps", "--format", fmt, "--no-pager"]
        assert summary_cli.main(argv) == 0
        out = capsys.readouterr().out
        one, two = [line for line in out.splitlines() if line.strip(" |").startswith(("1 ", "2 "))]
        # a number column ends where its numbers end; text columns start together
        assert one.index(" 0.1 ") + 4 == two.index(" 0.001 ") + 6, (fmt, out)
        assert one.index(" 7") + 2 == two.index(" 1200") + 5, (fmt, out)
        assert one.index(" a ") == two.index(" bbbbbbbb "), (fmt, out)


# -- ids --------------------------------------------------------------------------


@pytest.fixture
def twelve(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "experiments"
    for i in range(12):
        record(root, {"i": i, "layers": [64, 64] if i % 2 else [32]}, {"loss": i / 10})
    record(root, {"i": 99}, experiment_id="baseline")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("COLUMNS", raising=False)
    return root


def ids_of(out: str) -> list:
    return [r["id"] for r in json.loads(out)]


def test_ids_are_numbers(twelve: Path, capsys) -> None:
    assert summary_cli.main(["--format", "json"]) == 0
    assert ids_of(capsys.readouterr().out) == [*range(1, 13), "baseline"]
    assert summary_cli.main(["--last", "3", "--format", "json", "--columns", "id", "i"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["id"] for r in rows] == [11, 12, "baseline"]
    assert set(rows[0]) == {"id", "config.i"}  # no second id column
    assert summary_cli.main(["--filter", "id in [3, 7]", "--format", "json"]) == 0
    assert ids_of(capsys.readouterr().out) == [3, 7]
    assert summary_cli.main(["--sort", "-id", "--format", "json"]) == 0
    assert ids_of(capsys.readouterr().out) == ["baseline", *range(12, 0, -1)]
    assert summary_cli.main(["--no-pager"]) == 0
    lines = capsys.readouterr().out.splitlines()[2:]
    assert [line.split()[0] for line in lines] == [*map(str, range(1, 13)), "baseline"]


def test_lists_compare_as_values(twelve: Path, capsys) -> None:
    for expression in ("layers == [64, 64]", "layers in [[64, 64], [16]]", "layers != [32]"):
        assert summary_cli.main(["--filter", expression, "--format", "json"]) == 0
        expected = [2, 4, 6, 8, 10, 12] + (["baseline"] if "!=" in expression else [])
        assert ids_of(capsys.readouterr().out) == expected


# -- errors -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--sort", "summary.los"], "did you mean summary.loss"),
        (["--columns", "optimiser.lr"], "did you mean"),
        (["--filter", "config.optimizer.lr >"], "cannot parse filter"),
        (["--filter", "__import__('os').system('touch pwned')"], "not allowed in a filter"),
        (["--filter", "config.optimizer.__class__ == 1"], "unknown column"),
        (["--filter", "status.upper() == 'X'"], "not allowed in a filter"),
        (["--filter", "status == SUCCESS"], "did you mean 'SUCCESS'"),
        (["--filter", "model.hidden < 3"], "cannot evaluate filter"),
        (["--sortt", "x"], "did you mean --sort"),
        (["--format", "githb"], "did you mean github"),
        (["--sweep", "nope"], "no sweep 'nope'"),
        (["experiments/99"], "no run 99 in experiments (its runs: 1-9)"),
        (["experiments/3", "experiments"], "not both"),
    ],
)
def test_errors_are_one_line_with_exit_2(cli, runs: Path, args: list[str], message: str) -> None:
    code, _, err = cli(*args)
    assert code == 2
    assert err.count("\n") == 1 and message in err
    assert not (runs / "pwned").exists()


_PIECES = [
    "status", "seed", "optimizer.lr", "model.hidden", "id", "`metadata.hydra.job_num`",
    "'SUCCESS'", "0.1", "2", "-1", "[64, 64]", "[1, 'a']", "[]", "None", "true", "1e999",
    "==", "!=", "<", ">=", "in", "not in", "is", "is not", "and", "or", "not", "+", "-",
    "*", "/", "//", "%", "**", "(", ")", "[", "]", ",", "`", "'", ".", "x.y()", "lambda",
    "\x00", "\\", "0/0", "seed ** seed ** seed",
]  # fmt: skip


def test_no_filter_ends_in_a_traceback(runs: Path, monkeypatch, capsys) -> None:
    """Every error is one line with exit code 2, whatever the expression."""
    from meticulous_hydra.reader.reader import load_experiments

    monkeypatch.chdir(runs)
    frame = load_experiments("experiments")
    rng = random.Random(13)
    for _ in range(400):
        expression = " ".join(rng.choice(_PIECES) for _ in range(rng.randint(1, 7)))
        try:
            summary_cli.select_rows(frame, summary_cli.parse_args(["--filter", expression]))
        except summary_cli.UsageError as e:
            assert "\n" not in str(e), expression
    expression = "(" * 500 + "seed" + ")" * 500  # deeper than Python's parser goes
    with pytest.raises(summary_cli.UsageError, match="cannot parse filter"):
        summary_cli.select_rows(frame, summary_cli.parse_args(["--filter", expression]))


# -- filter, sort, group -----------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "ids"),
    [
        ("status in ['ERROR', 'DIED']", [3, 6]),
        ("sweep.id is None", [9]),
        ("optimizer.lr * 10 >= 20", [3, 6]),
        ("not (status == 'SUCCESS') or `metadata.adapter` == 'argparse'", [3, 6, 9]),
        ("model.name == 'resnet' and summary.loss < 1", [5]),
        ("model.hidden == [64, 64] and id > 6", [7, 8]),
    ],
)
def test_filter_expressions(cli, expression: str, ids: list[int]) -> None:
    code, out, err = cli("--filter", expression, "--format", "json")
    assert code == 0, err
    assert ids_of(out) == ids


def test_filter_sort_columns(cli) -> None:
    code, out, err = cli(
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
    )
    assert code == 0, err
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0][:4] == ["id", "config.model.name", "config.model.hidden", "config.model.dropout"]
    assert len(rows) == 1 + 4  # lr 0.1: mlp and resnet, and the two seeds of the second sweep
    losses = [float(r[rows[0].index("summary.loss")]) for r in rows[1:]]
    assert losses == sorted(losses, reverse=True)


def test_group_by_counts_failures_and_averages_successes(cli) -> None:
    code, out, err = cli("--group-by", "model.name", "--format", "json")
    assert code == 0, err
    groups = {g["config.model.name"]: g for g in json.loads(out)}
    assert (groups["mlp"]["n"], groups["mlp"]["failed"]) == (5, 1)
    assert (groups["resnet"]["n"], groups["resnet"]["failed"]) == (3, 1)
    assert groups[""]["n"] == 1  # the argparse run has no model
    code, out, _ = cli(
        "--filter", "model.name == 'resnet' and status == 'SUCCESS'", "--format", "json"
    )
    losses = [r["summary.loss"] for r in json.loads(out)]
    assert groups["resnet"]["summary.loss.mean"] == pytest.approx(sum(losses) / 2)
    assert "id" not in groups["mlp"]
    # the same header with one key or two, and no made-up id column
    for keys in (["model.name"], ["model.name", "optimizer.lr"]):
        code, out, _ = cli("--group-by", *keys, "--sort", "loss")
        head = header(out)
        assert head[: len(keys) + 2] == [*keys, "n", "failed"] and "id" not in head
        assert "±" in out
    # the keys name each row, as the id does: --columns chooses what follows them
    for columns in (["loss"], ["id"], ["n", "model.name"]):
        code, out, err = cli("--group-by", "model.name", "--columns", *columns)
        assert code == 0, err
        head = header(out)
        assert head == ["model.name", *(c for c in columns if c not in ("id", "model.name"))]
        assert len(out.splitlines()) == 2 + 3  # mlp, resnet, and the runs with no model


def test_group_statistics_are_numbers_never_cut_and_aligned_right() -> None:
    import pandas as pd

    frame = pd.DataFrame(
        {"name": ["a-long-text-value-xx", "b"], "loss": ["0.9372 ± 3.618e-04", "2.166"]}
    )
    # 39 columns leave "loss" 17 of the 18 it needs: text would be cut to fit
    text = table.render_table(frame, "simple", 39, index=False, priority=["name", "loss"])
    assert "…" not in text.split("\n(")[0]
    assert "hidden to fit the terminal: loss" in " ".join(text.split())
    one, two = table.render_table(frame, "simple", 80, index=False).splitlines()[2:]
    assert one.endswith("0.9372 ± 3.618e-04") and two.endswith(" 2.166")
    assert len(one) == len(two)  # a number column: its cells end together


def test_options_that_would_select_nothing_say_so(cli) -> None:
    code, _, err = cli("--status", "FAILED")
    assert code == 2 and "unknown status 'FAILED'" in err and "ERROR" in err
    assert "failed runs: --status ERROR,DIED,TIMEOUT" in err and err.count("\n") == 1
    assert cli("--status", "error,died")[0] == 0  # any case
    code, _, err = cli("--last", "0")
    assert code == 2 and "--last takes a positive number" in err
    code, _, err = cli("--format", "foo")
    assert code == 2 and "unknown format 'foo'" in err and "github" in err and "csv" in err
    assert len(err) < 160  # one line on a terminal, not tabulate's 39 formats


def test_all_shows_whole_values(cli) -> None:
    code, out, err = cli("--all", "--format", "simple", columns=80)
    assert code == 0, err
    assert "…" not in out and "optimizer.lr=0.01" in out


# -- arguments -----------------------------------------------------------------------


def test_a_root_after_a_multi_value_option(cli) -> None:
    code, out, err = cli("--columns", "summary.*", "experiments", "--format", "csv")
    assert code == 0, err
    assert out.splitlines()[0] == "id,summary.loss,summary.accuracy"


def test_run_paths(cli) -> None:
    code, out, err = cli("experiments/3", "experiments/7", "--format", "json")
    assert code == 0, err
    assert ids_of(out) == [3, 7]
    code, out, err = cli("experiments/3")
    assert code == 0, err
    assert "status: ERROR" in out and "FloatingPointError" in out
    assert "optimizer.lr=2.0" in out and "config:" in out
    assert "lr: 2.0" in out and "stdout (last" in out
    assert cli("--show", "3")[1] == out
    code, _, err = cli("--show", "../etc")
    assert code == 2 and "invalid experiment id" in err


def test_exports_hold_every_column_exactly(cli) -> None:
    code, out, _ = cli("--format", "json")
    rows = json.loads(out)
    names = [line.split()[-1] for line in cli("--list-columns")[1].splitlines()]  # full names
    assert set(rows[0]) == {"id", *names}
    code, text, _ = cli("--format", "csv")
    assert code == 0
    table = list(csv.DictReader(io.StringIO(text)))
    assert set(table[0]) == {"id", *names}
    for row, record_ in zip(table, rows, strict=True):
        assert row["start_time"] == record_["start_time"]  # the same ISO 8601 text
        assert float(row["summary.loss"] or "nan") == pytest.approx(
            record_["summary.loss"] if record_["summary.loss"] is not None else float("nan"),
            rel=0,
            nan_ok=True,
        )
    assert "T" in rows[0]["start_time"] and rows[0]["start_time"].endswith("+00:00")
    assert rows[0]["config.model.hidden"] == [64, 64]
    assert next(r["config.optimizer.lr"] for r in rows if r["id"] == 1) == 0.01


def test_sweep_status_last(cli) -> None:
    assert ids_of(cli("--sweep", "latest", "--format", "json")[1]) == [7, 8]
    first = json.loads(cli("--status", "error", "--columns", "sweep.id", "--format", "json")[1])
    assert len(json.loads(cli("--sweep", first[0]["sweep.id"], "--format", "json")[1])) == 6
    assert ids_of(cli("--last", "2", "--format", "json")[1]) == [8, 9]


@pytest.mark.parametrize("fmt", ["github", "plain", "latex", "html", "simple"])
def test_formats_and_output_file(cli, fmt: str, tmp_path: Path) -> None:
    out = tmp_path / "table.txt"
    code, stdout, _ = cli("--format", fmt, "--output", str(out))
    assert code == 0 and stdout == ""
    text = out.read_text()
    assert "SUCCESS" in text
    if fmt == "html":
        assert text.startswith("<table>")


def test_missing_and_empty_roots(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    assert summary_cli.main(["nowhere"]) == 2
    assert "does not exist" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert summary_cli.main(["empty"]) == 0
    assert "no experiments under empty" in capsys.readouterr().out


def test_several_roots(cli, runs: Path, tmp_path: Path) -> None:
    shutil.copytree(runs / "experiments", tmp_path / "cluster_b")
    code, out, _ = cli(str(runs / "experiments"), str(tmp_path / "cluster_b"), "--format", "json")
    rows = json.loads(out)
    assert len(rows) == 18 and len({(r["root"], r["id"]) for r in rows}) == 18
    code, out, err = cli(
        str(tmp_path / "cluster_b" / "2"), str(runs / "experiments" / "9"), "--format", "json"
    )
    assert code == 0, err
    assert [(Path(r["root"]).name, r["id"]) for r in json.loads(out)] == [
        ("cluster_b", 2),
        ("experiments", 9),
    ]


# -- the installed command -------------------------------------------------------------


def test_pipe_to_head_is_quiet(runs: Path) -> None:
    proc = subprocess.run(
        f"'{CLI}' --all | head -1", shell=True, cwd=runs, capture_output=True, text=True
    )
    assert proc.stderr == "" and proc.stdout.startswith("id")


def in_terminal(args: list[str], cwd: Path, env: dict[str, str]) -> str:
    """Run the command with a pseudo-terminal as stdout; what the terminal shows."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: its stdin/stdout/stderr are the terminal
        os.chdir(cwd)
        os.execve(CLI, [CLI, *args], {**os.environ, **env})
    chunks = []
    while True:
        try:
            data = os.read(fd, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.waitpid(pid, 0)
    os.close(fd)
    return b"".join(chunks).decode()


def test_a_tall_table_is_paged_in_a_terminal_only(runs: Path) -> None:
    pager = {"PAGER": "sed 's/^/paged: /'", "LINES": "5", "COLUMNS": "200"}
    shown = in_terminal([], runs, pager)
    assert "paged: id" in shown and "paged: 9" in shown
    assert "paged:" not in in_terminal(["--no-pager"], runs, pager)
    assert "paged:" not in in_terminal([], runs, {**pager, "LINES": "50"})  # it fits
    piped = subprocess.run(
        [CLI], cwd=runs, capture_output=True, text=True, env={**os.environ, **pager}
    )
    assert piped.returncode == 0 and "paged:" not in piped.stdout and piped.stdout.startswith("id")


def test_the_recording_switch_is_no_setting_of_the_runs(
    tmp_path: Path, monkeypatch, capsys
) -> None:
    # `+meticulous=on` turns recording on; it tells the runs apart by nothing
    monkeypatch.chdir(tmp_path)
    for lr in (0.1, 0.2):
        record(
            tmp_path / "experiments",
            {"lr": lr},
            {"loss": lr},
            overrides=["+meticulous=on", f"lr={lr}"],
            metadata={"hydra": {"choices": {"meticulous": "on", "model": "mlp"}}},
        )
    assert summary_cli.main(["--no-pager"]) == 0
    assert header(capsys.readouterr().out)[:3] == ["id", "status", "lr"]
    from meticulous_hydra import cli as verbs

    assert verbs.main(["diff", "1", "2", "--all"]) == 0
    out = capsys.readouterr().out
    keys = [line.split()[0] for line in out.splitlines()[2:] if line.strip()]
    assert "model" in keys and "meticulous" not in keys
    assert "meticulous=on" not in out and "lr=0.1" in out
