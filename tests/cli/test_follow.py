"""Following runs: load_metrics, the live row of a RUNNING run, --curve
sparklines and --watch against a real child process."""

from __future__ import annotations

import csv
import io
import json
import os
import pty
import select
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
from helpers import watchdog

from meticulous_hydra import Experiment, Experiments, load_experiments, load_metrics
from meticulous_hydra.cli import summary as summary_cli
from meticulous_hydra.reader.metrics import last_record, sparkline
from meticulous_hydra.recorder.organise import set_archived


def recorded(root: Path, losses: list[float], **extra) -> Experiment:
    with Experiment(
        {"n": len(losses)}, root=root, capture_output=False, code_dir=root.parent
    ) as exp:
        for step, loss in enumerate(losses):
            exp.log({"loss": loss, **extra}, step=step)
    return exp


def test_load_metrics_is_long_typed_and_joins(tmp_path: Path) -> None:
    root = tmp_path / "experiments"
    recorded(root, [1.0, 0.5, 0.25])
    with Experiment({"n": 2}, root=root, capture_output=False, code_dir=tmp_path) as exp:
        exp.log({"loss": 2.0, "val": {"acc": 0.1}}, step=0)
        exp.log({"loss": float("nan")}, step=1)  # a logged NaN is a value
        exp.log({"lr": 0.1, "phase": "warmup"}, step=2)
    with open(exp.dir / "metrics.jsonl", "a") as f:
        f.write('{"step": 3, "lo')  # cut short by a crash
    recorded(root, [9.0])
    set_archived(root / "3", True)
    long = load_metrics(root)
    assert list(long.columns) == ["id", "step", "time", "key", "value"]
    assert str(long["time"].dtype).startswith("datetime64") and long["time"].dt.tz is not None
    assert long["step"].dtype == "int64"
    assert long["value"].dtype == object  # a string was logged; numbers stay numbers
    # ids as load_experiments' index holds them (ints for numbered runs after issue 13)
    rows = [(str(i), s, k) for i, s, k in long[["id", "step", "key"]].itertuples(index=False)]
    assert rows == [
        ("1", 0, "loss"), ("1", 1, "loss"), ("1", 2, "loss"),
        ("2", 0, "loss"), ("2", 1, "loss"), ("2", 0, "val.acc"), ("2", 2, "lr"), ("2", 2, "phase"),
    ]  # fmt: skip
    assert pd.isna(long.iloc[4]["value"]) and long.iloc[7]["value"] == "warmup"
    joined = long.merge(load_experiments(root)[["config.n"]], left_on="id", right_index=True)
    assert len(joined) == len(long) and set(joined["config.n"]) == {2, 3}
    assert "3" in set(load_metrics(root, include_archived=True)["id"].map(str))
    # one run's .metrics is the same shape; numbers only: float64
    one = Experiments(root)["1"].metrics
    assert list(one.columns) == list(long.columns) and one["value"].dtype == "float64"
    assert one["value"].tolist() == [1.0, 0.5, 0.25]
    # several roots: a root column first, like load_experiments' index
    other = tmp_path / "other"
    recorded(other, [3.0])
    both = load_metrics([root, other])
    assert list(both.columns) == ["root", *long.columns]
    assert both[both["root"] == str(other)]["value"].tolist() == [3.0]
    # run folders work too, and nothing recorded is an empty frame of the same shape
    assert load_metrics([root / "1"])["value"].tolist() == [1.0, 0.5, 0.25]
    with Experiment({}, root=tmp_path / "empty", capture_output=False, code_dir=tmp_path):
        pass
    empty = load_metrics(tmp_path / "empty")
    assert empty.empty and list(empty.columns) == list(long.columns)


def test_last_record_reads_the_end_only(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    big = "x" * 200_000  # a last line longer than the first read from the end
    with open(path, "w") as f:
        for step in range(1000):
            f.write(json.dumps({"step": step, "loss": 1 / (step + 1)}) + "\n")
        f.write(json.dumps({"step": 1000, "note": big}) + "\n")
        f.write('{"step": 1001, "lo')  # being written
    assert last_record(path) == {"step": 1000, "note": big}
    assert last_record(tmp_path / "missing") is None


def test_sparkline() -> None:
    assert sparkline([1, 2, 3, 4, 5, 6, 7, 8], 8) == "▁▂▃▄▅▆▇█"
    assert sparkline(list(range(100)), 10) == "▁▂▃▃▄▅▆▆▇█"
    assert sparkline([5, 5, 5], 10) == "▅▅▅"
    assert sparkline([1, float("nan"), 3, None, float("inf")], 10) == "▁█"
    assert sparkline([], 10) == ""


def test_table_shows_a_live_run_and_curves(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("COLUMNS", "250")
    root = tmp_path / "experiments"
    recorded(root, [4.0, 3.0, 2.0, 1.0])
    live = Experiment({"n": 9}, root=root, capture_output=False, code_dir=tmp_path)
    try:
        for step in range(5):
            live.log({"loss": 10.0 - step, "acc": step / 10}, step=step)
        assert summary_cli.main([str(root), "--curve", "loss"]) == 0
        lines = capsys.readouterr().out.splitlines()
        header = lines[0].split()
        # issue 13's order: what tells runs apart, then start time and duration;
        # the curve after the results, here after the progress
        assert header[:3] == ["id", "status", "n"]
        assert header[-4:] == ["start_time", "duration", "progress", "curve(loss)"]
        assert "step 4 loss=6.0 acc=0.4" in lines[3] and "RUNNING" in lines[3]
        assert lines[2].endswith(" █▆▃▁") and lines[3].endswith(" █▆▅▃▁")
        duration = lines[3].split()[5]  # elapsed, not blank
        assert duration.endswith("s")
        assert summary_cli.main([str(root), "--curve", "nope"]) == 2
        assert "logged keys: loss, acc" in capsys.readouterr().err
    finally:
        live.finish()
    assert summary_cli.main([str(root)]) == 0
    assert "progress" not in capsys.readouterr().out


def test_curve_of_a_large_file_is_sampled(tmp_path: Path, capsys) -> None:
    root = tmp_path / "experiments"
    exp = recorded(root, [1.0])
    with open(exp.dir / "metrics.jsonl", "w") as f:
        for step in range(120_000):  # about 5 MB
            f.write(json.dumps({"step": step, "loss": 1e6 - step, "pad": "." * 10}) + "\n")
    assert os.path.getsize(exp.dir / "metrics.jsonl") > 4 * 1024 * 1024
    assert summary_cli.main([str(root), "--curve", "loss", "--format", "csv"]) == 0
    table = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    curve = table[0]["curve(loss)"]
    assert len(curve) == 24 and curve[0] == "█" and curve[-1] == "▁"
    assert list(curve) == sorted(curve, reverse=True)


CHILD = """
import os
import sys
from meticulous_hydra import Experiment
exp = Experiment({"lr": 0.1}, root=sys.argv[1], capture_output=False, code_dir=os.path.dirname(sys.argv[1]))
for line in sys.stdin:  # one step per line the test sends
    step = int(line)
    exp.log({"loss": 100 - step}, step=step)
    print("logged", step, flush=True)
exp.finish()
"""


def read_until(fd: int, proc: subprocess.Popen, text: bytes, seen: bytearray) -> None:
    while text not in seen:
        ready, _, _ = select.select([fd], [], [], 60)
        assert ready, f"no {text!r} in {bytes(seen[-2000:])!r}"
        try:
            chunk = os.read(fd, 65536)
        except OSError:
            chunk = b""
        assert chunk, f"output ended without {text!r}: {bytes(seen[-2000:])!r}"
        seen += chunk


def test_watch_follows_a_live_run_and_ctrl_c_leaves_the_terminal_clean(tmp_path: Path) -> None:
    root = tmp_path / "experiments"
    child = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(CHILD), str(root)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    with watchdog(child):
        child.stdin.write("0\n")
        child.stdin.flush()
        assert child.stdout.readline() == "logged 0\n"
        main, tty = pty.openpty()  # a real terminal for the cursor escapes
        cli = Path(sys.executable).with_name("meticulous-summary")
        watcher = subprocess.Popen(
            [str(cli), str(root), "--watch", "0.1"], stdout=tty, stderr=subprocess.PIPE
        )
        os.close(tty)
        with watchdog(watcher):
            seen = bytearray()
            read_until(main, watcher, b"step 0 loss=100", seen)
            assert b"\x1b[?25l" in seen and b"RUNNING" in seen
            child.stdin.write("1\n")
            child.stdin.flush()
            assert child.stdout.readline() == "logged 1\n"
            read_until(main, watcher, b"step 1 loss=99", seen)
            watcher.send_signal(signal.SIGINT)
            assert watcher.wait() == 0
            stderr = watcher.stderr.read().decode()
            try:
                while chunk := os.read(main, 65536):
                    seen += chunk
            except OSError:
                pass  # the terminal closed with its last process
        os.close(main)
        assert "Traceback" not in stderr and stderr == ""
        assert seen.rstrip(b"\r\n").endswith(b"\x1b[?25h")  # cursor shown again
        child.stdin.close()
        assert child.wait() == 0
