"""The table's first screen on a realistic root (tests/helpers.py:
make_realistic_root): whatever the width, the status, the keys that tell the
runs apart and the leading results; what must go goes from the least telling
end, and the table says what went and how to see it."""

from __future__ import annotations

import datetime
import json
from pathlib import Path

import pytest
from helpers import record

from meticulous_hydra.cli import summary as summary_cli
from meticulous_hydra.reader.reader import short_detail


@pytest.fixture
def table(realistic_root: Path, monkeypatch: pytest.MonkeyPatch, capsys):
    """``table(*args, columns=80)`` -> (stdout, stderr) of meticulous-summary
    on the realistic root, as a terminal ``columns`` wide."""
    monkeypatch.chdir(realistic_root.parent)

    def call(*args: str, columns: int | None = 80) -> tuple[str, str]:
        if columns:
            monkeypatch.setenv("COLUMNS", str(columns))
        else:
            monkeypatch.delenv("COLUMNS", raising=False)
        code = summary_cli.main(["--no-pager", *args])
        out, err = capsys.readouterr()
        assert code == 0, err
        return out, err

    return call


def header(out: str) -> list[str]:
    return out.splitlines()[0].split()


def hidden_note(out: str) -> str:
    return " ".join(out[out.index("hidden to fit") :].split()) if "hidden to fit" in out else ""


@pytest.mark.parametrize("width", [80, 120, 200])
def test_the_first_screen_shows_status_keys_and_results(table, width: int) -> None:
    out, _ = table(columns=width)
    head = header(out)
    assert max(map(len, out.splitlines())) <= width
    assert head[:2] == ["id", "status"]
    # the keys swept first, then the leading results: one of each program
    assert head[2:4] == ["model", "optimizer.lr"]
    assert {"final_loss", "loss"} <= set(head)
    assert head.index("loss") > head.index("final_loss") > head.index("optimizer.lr")
    note = hidden_note(out)
    assert "--columns" in note and "--all" in note
    for name in ("start_time", "duration", "paths.output_dir"):
        assert name not in head
        assert name in note or "more" in note


def test_a_wide_terminal_keeps_the_order_of_the_list(table) -> None:
    head = header(table(columns=1000)[0])
    assert head[:4] == ["id", "status", "model", "optimizer.lr"]
    assert {"optimizer", "seed", "fail_at_step", "db_key"} <= set(head[4:8])
    results = [h for h in head if h in ("final_loss", "loss", "final_acc", "accuracy")]
    assert results == ["final_loss", "loss", "final_acc", "accuracy"]
    error = head.index("status_detail")
    assert error > max(head.index(r) for r in results)
    # what tells runs apart by nothing, last: values naming each run's own
    # output dir (timestamped by the app, or experiments/N), times
    for name in ("paths.output_dir", "trainer.default_root_dir"):
        assert head.index(name) > error
    assert head[-2:] == ["start_time", "duration"]


def test_the_latest_sweep_keeps_its_error_line_before_its_duration(table) -> None:
    out, _ = table("--sweep", "latest", columns=80)
    head = header(out)
    assert max(map(len, out.splitlines())) <= 80
    assert head == ["id", "status", "optimizer.lr", "fail_at_step", "final_loss", "status_detail"]
    assert "FloatingPointErro…" in out  # cut to the room left
    note = hidden_note(out)
    assert note.startswith("hidden to fit the terminal: final_acc, val_loss")
    assert "17 columns" in out and "--columns" in note and "--all" in note


def test_all_shows_every_column_unfitted(table) -> None:
    out, _ = table("--all", columns=80)
    assert "hidden to fit" not in out
    assert {"final_loss", "status_detail", "duration", "metadata.pid"} & set(header(out))
    assert "pid" in header(out)


def test_the_error_line_is_the_exception_and_its_first_line(table) -> None:
    out, _ = table("--format", "json", "--columns", "status_detail", columns=None)
    details = {r["id"]: r["status_detail"] for r in json.loads(out)}
    assert details[15] == "ConfigKeyError: Key 'pork' not in 'MySQLConfig'"
    assert details[3].startswith("FloatingPointError: loss diverged to")
    assert details[19] == details[21] == "FloatingPointError: loss is nan at step 5"
    assert details[1] is None or details[1] == ""


def test_short_detail_of_every_traceback_shape() -> None:
    def traceback_of(*lines: str) -> str:
        return "\n".join(["Traceback (most recent call last):", '  File "a.py", line 1', *lines])

    chained = (
        traceback_of("KeyError: 'x'")
        + "\n\nDuring handling of the above exception, another exception occurred:\n\n"
        + traceback_of("    raise ValueError('bad')", "    ^^^^^^", "ValueError: bad value")
    )
    group = "\n".join(
        [
            "  + Exception Group Traceback (most recent call last):",
            '  |   File "a.py", line 3, in <module>',
            "  | ExceptionGroup: two failed (2 sub-exceptions)",
            "  +-+---------------- 1 ----------------",
            "    | ValueError: one",
            "    +------------------------------------",
        ]
    )
    cases = {
        traceback_of("omegaconf.errors.ConfigKeyError: Key 'pork' not in 'MySQLConfig'")
        + "\n    full_key: db.pork\n    object_type=MySQLConfig": (
            "ConfigKeyError: Key 'pork' not in 'MySQLConfig'"
        ),
        chained: "ValueError: bad value",
        group: "ExceptionGroup: two failed (2 sub-exceptions)",
        traceback_of("KeyboardInterrupt"): "KeyboardInterrupt",
        traceback_of("my.pkg.Oops:", "  the message on the next line"): (
            "Oops: the message on the next line"
        ),
        "exit code 3": "exit code 3",
        "": "",
    }
    for detail, expected in cases.items():
        assert short_detail("ERROR", detail) == expected, detail
    assert short_detail("INTERRUPTED", "SIGTERM\nmore") == "SIGTERM"


def test_paths_holding_each_runs_own_timestamp_tell_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """A script without Hydra that names its output folder by the time it
    started: the folder differs in every run and tells them apart by nothing."""
    root = tmp_path / "experiments"
    for lr in (0.1, 0.2, 0.3):
        stamp = datetime.datetime.now().strftime("%Y-%m-%d_%H-%M-%S-%f")
        record(
            root,
            {"lr": lr, "out": f"/data/runs/{stamp}/ckpt", "data": f"/data/set-{lr}"},
            {"loss": lr},
            overrides=[f"lr={lr}"],
        )
    monkeypatch.setenv("COLUMNS", "1000")
    assert summary_cli.main([str(root)]) == 0
    head = header(capsys.readouterr().out)
    assert head.index("data") < head.index("loss") < head.index("out")


def test_group_by_prints_integer_results_as_integers(table) -> None:
    """Issue 23.6: `6.0 ± 0.0` for a result that is always 6."""
    out, _ = table(
        "--group-by", "model", "--sort", "-params", "--columns", "model", "n", "epochs_run", "params",
        "final_loss", columns=None,
    )  # fmt: skip
    rows = [line.split() for line in out.splitlines()[2:]]
    assert [r[:8] for r in rows[:2]] == [
        ["large", "2", "3", "±", "0", "800000", "±", "0"],
        ["small", "13", "3", "±", "0", "20000", "±", "0"],
    ]
    assert all("." in r[8] and "." in r[10] for r in rows[:2])  # a float stays one
    assert [r[0] for r in rows[2:]] == ["mlp", "resnet"] and len(rows[2]) == 2
