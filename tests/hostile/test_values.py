"""Hostile values and files in a root: each damaged run is one row with its
``read_error`` (or an exact object column), never a failed read of the whole
root, a hang, or memory eaten without bound (issue 21: 5, 8, 9)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from helpers import metadata_of, record
from pandas.testing import assert_frame_equal

from meticulous_hydra import (
    Experiment,
    NotSerializable,
    RecordingError,
    layout,
    load_experiments,
)
from meticulous_hydra import cli as meticulous_cli
from meticulous_hydra.cli import summary as summary_cli
from meticulous_hydra.reader import cache
from meticulous_hydra.reader.reader import ReadWarning


def read(root: Path, **kw: Any) -> pd.DataFrame:
    with pytest.warns(ReadWarning) if kw.pop("damaged", False) else _nothing():
        return load_experiments(root, **kw)


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def edit_metadata(folder: Path, **changes: Any) -> None:
    meta = metadata_of(folder)
    meta.update(changes)
    layout.write_json(folder / layout.METADATA, meta)


def table(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    assert summary_cli.main([*argv]) == 0
    return capsys.readouterr().out


def verb(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = meticulous_cli.main([*argv])
    out, err = capsys.readouterr()
    return code, out, err


# -- 21.5: the reader trusts no file type ---------------------------------------------

# Everything that reads a run, in a child process bounded in memory and time:
# before the fix a FIFO blocked it for good and /dev/zero ate all memory.
READ_ALL = """
import json, resource, sys, warnings
resource.setrlimit(resource.RLIMIT_DATA, (2 << 30, 2 << 30))
warnings.simplefilter("ignore")
from meticulous_hydra import load_experiments, load_metrics
from meticulous_hydra.cli import summary
from meticulous_hydra.reader.reader import ExperimentReader
root = sys.argv[1]
df = load_experiments(root, cache=False)
cached = load_experiments(root)
assert cached.equals(df)
errors = df["read_error"].astype(object).where(df["read_error"].notna(), None)
out = {"rows": {str(i): [df.loc[i, "status"], errors[i]] for i in df.index}}
out["metrics"] = len(load_metrics(root))
out["shown"] = [summary.show_one(ExperimentReader(f"{root}/{i}").path) for i in df.index]
out["tails"] = [ExperimentReader(f"{root}/{i}").stdout for i in df.index]
summary.main([root, "--output", root + ".table"])
print(json.dumps(out))
"""


def test_fifos_devices_and_huge_files_are_read_errors_not_hangs(tmp_path: Path) -> None:
    root = tmp_path / "experiments"
    for lr in range(9):
        record(root, {"lr": lr}, {"loss": 1.0})
    os.unlink(root / "1" / "STATUS")
    os.mkfifo(root / "1" / "STATUS")
    os.unlink(root / "2" / "summary.json")
    os.symlink("/dev/zero", root / "2" / "summary.json")
    with open(root / "3" / "config.json", "r+b") as f:
        f.truncate(10 << 30)  # 10 GB, sparse: costs no disk
    os.unlink(root / "4" / "metadata.json")
    os.mkfifo(root / "4" / "metadata.json")
    os.mkfifo(root / "5" / "metrics.jsonl")
    os.mkfifo(root / "5" / "stdout")
    os.mkfifo(root / "6" / "NOTES")
    os.unlink(root / "7" / "STATUS")
    os.symlink("/dev/zero", root / "7" / "STATUS")
    layout.write_status(root / "8" / "STATUS", layout.RUNNING)  # its table row reads metrics
    os.symlink("/dev/zero", root / "8" / "metrics.jsonl")
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(READ_ALL), str(root)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "METICULOUS_HYDRA_CACHE_DIR": str(tmp_path / "cache")},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.splitlines()[-1])
    rows = out["rows"]
    assert list(rows) == [str(i) for i in range(1, 10)]
    assert rows["1"][0] == "UNKNOWN" and "STATUS: not a regular file (a FIFO)" in rows["1"][1]
    assert "summary.json: not a regular file (a character device)" in rows["2"][1]
    assert rows["2"][0] == "SUCCESS"  # the rest of the run is read
    assert "config.json: too large to read (10 GiB; the limit is 64 MiB)" in rows["3"][1]
    assert "metadata.json: not a regular file (a FIFO)" in rows["4"][1]
    assert rows["5"][1] is None  # not read into the frame
    assert "NOTES: not a regular file (a FIFO)" in rows["6"][1]
    assert "STATUS: not a regular file (a character device)" in rows["7"][1]
    assert rows["8"][0] == "RUNNING" and rows["9"][1] is None
    assert "read errors: STATUS: not a regular file (a FIFO)" in out["shown"][0]
    assert out["tails"][4] == "" and out["metrics"] == 0


def test_a_folder_in_place_of_a_file_is_a_read_error(tmp_path: Path) -> None:
    root = tmp_path / "experiments"
    record(root, {"lr": 0.1}, {"loss": 1.0})
    os.unlink(root / "1" / "summary.json")
    (root / "1" / "summary.json").mkdir()
    df = read(root, damaged=True)
    assert df.loc[1, "read_error"] == "summary.json: not a regular file (a folder)"
    assert df.loc[1, "config.lr"] == 0.1


# -- 21.8: one value never breaks every read ---------------------------------------------


@pytest.mark.parametrize(
    "values", [[2**64, 1], [10**400], [1, -(2**63) - 1], [2**63 - 1, None]], ids=str
)
def test_an_int_a_column_cant_hold_stays_exact(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], values: list[int | None]
) -> None:
    root = tmp_path / "experiments"
    for v in values:
        record(root, {"a": v, "seed": 1}, {"s": v, "loss": 0.5})
    for df in (read(root, cache=False), read(root)):  # fresh, then through the cache
        for column in ("config.a", "summary.s"):
            got = df[column].tolist()
            assert [None if pd.isna(x) else x for x in got] == values
            assert all(type(x) is int for x in got if not pd.isna(x))
        assert df["read_error"].isna().all()
    assert_frame_equal(read(root), read(root, cache=False))
    shown = table(capsys, str(root), "--columns", "config.a", "summary.s")
    assert str(values[0]) in shown
    assert "OverflowError" not in table(capsys, str(root), "--group-by", "config.seed")
    assert table(capsys, str(root), "--group-by", "config.a")


def test_ints_that_fit_keep_their_int_columns(tmp_path: Path) -> None:
    root = tmp_path / "experiments"
    for v in (2**63 - 1, -(2**63)):
        record(root, {"a": v, "b": v if v > 0 else None, "x": 2**53 + 1, "y": 0.5})
    record(root, {"x": 1.5, "y": 2**53 + 1})
    df = read(root, cache=False)
    assert df["config.a"].dtype == "Int64" and df.loc[2, "config.a"] == -(2**63)
    assert df["config.b"].dtype == "Int64"
    # an int a float64 column would round keeps the column exact
    assert df["config.x"].dtype == object and df.loc[1, "config.x"] == 2**53 + 1
    assert df["config.y"].dtype == object and df.loc[3, "config.y"] == 2**53 + 1


DEEP = 100_000


@pytest.mark.parametrize("name", ["summary.json", "config.json", "metadata.json"])
def test_json_nested_100000_deep_is_one_runs_read_error(tmp_path: Path, name: str) -> None:
    root = tmp_path / "experiments"
    record(root, {"lr": 0.1}, {"loss": 1.0})
    record(root, {"lr": 0.2}, {"loss": 2.0})
    (root / "2" / name).write_text('{"a":' * DEEP + "1" + "}" * DEEP)
    df = read(root, damaged=True)
    assert list(df.index) == [1, 2]
    assert df.loc[2, "read_error"] == f"{name}: nested too deeply to read"
    assert df.loc[1, "summary.loss"] == 1.0 and pd.isna(df.loc[1, "read_error"])


def test_arrays_nested_deep_but_parsable_are_read_or_reported(tmp_path: Path) -> None:
    # JSON this deep parses; the columns built from it must not recurse either
    root = tmp_path / "experiments"
    record(root, {"lr": 0.1}, {"loss": 1.0})
    depth = 500
    (root / "1" / "summary.json").write_text(
        '{"deep": '
        + "[" * depth
        + "]" * depth
        + ', "tree": '
        + '{"a":' * depth
        + "1"
        + "}" * depth
        + "}"
    )
    df = read(root)
    assert df.loc[1, "config.lr"] == 0.1
    assert ("summary." + ".".join(["tree"] + ["a"] * depth)) in df.columns
    assert isinstance(df.loc[1, "summary.deep"], tuple)


def test_a_huge_pid_is_no_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "experiments"
    record(root, {"lr": 0.1})
    record(root, {"lr": 0.2})
    edit_metadata(root / "1", pid=10**30)
    layout.write_status(root / "1" / "STATUS", layout.RUNNING)  # judged by its heartbeat
    df = read(root)
    assert df.loc[1, "status"] == layout.RUNNING and df.loc[1, "metadata.pid"] == 10**30
    assert "RUNNING" in table(capsys, str(root))
    code, out, err = verb(capsys, "show", "1", "--root", str(root))
    assert code == 0 and f"pid: {10**30}" in out
    code, out, err = verb(capsys, "rm", "1", "--root", str(root))
    assert code == 2 and "still RUNNING" in err
    code, out, err = verb(capsys, "rm", "2", "--root", str(root))
    assert code == 0, err


WRONG_TYPES: list[tuple[str, Any]] = [
    ("git", "str"),
    ("git", {"sha": 5, "branch": [1], "dirty": "yes", "untracked_saved": 3}),
    ("sweep", [1, 2]),
    ("sweep", {"id": {"a": 1}, "job_num": "x"}),
    ("hydra", "x"),
    ("hydra", {"choices": [1, 2]}),
    ("python", 3),
    ("launch", "x"),
    ("overrides", "lr=0.1"),
    ("overrides", 5),
    ("overrides", [1, None, {"a": 1}]),
    ("start_time", 12),
    ("end_time", {"a": 1}),
    ("duration", "long"),
    ("host", ["a"]),
    ("pid", "123"),
    ("description", 7),
    ("argv", "python train.py"),
    ("cwd", 5),
]


@pytest.mark.parametrize(("key", "value"), WRONG_TYPES, ids=lambda v: repr(v)[:20])
def test_metadata_of_the_wrong_type_is_shown_and_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], key: str, value: Any
) -> None:
    root = tmp_path / "experiments"
    record(root, {"lr": 0.1}, {"loss": 1.0})
    record(root, {"lr": 0.2}, {"loss": 2.0})
    edit_metadata(root / "1", **{key: value})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ReadWarning)
        df = read(root)
    assert list(df.index) == [1, 2] and df.loc[1, "summary.loss"] == 1.0
    error = df.loc[1, "read_error"]
    assert pd.isna(error) or error.startswith(f"metadata.json: {key}")  # the run's own
    assert table(capsys, str(root))
    code, out, err = verb(capsys, "show", "1", "--root", str(root))
    assert code == 0 and "config:" in out, err
    code, out, err = verb(capsys, "diff", "1", "2", "--root", str(root))
    assert code == 0, err


# -- 21.9: flattening loses nothing ---------------------------------------------------------


def test_keys_that_would_share_a_column_are_refused_at_record_time(tmp_path: Path) -> None:
    root = tmp_path / "experiments"
    with pytest.raises(RecordingError) as e:
        Experiment({"a.b": 1, "a": {"b": 2}}, root=root, capture_output=False, code_dir=tmp_path)
    message = str(e.value)
    assert "\n" not in message
    assert '["a.b"]' in message and '["a"]["b"]' in message and "config.a.b" in message
    with pytest.raises(RecordingError, match=r'\[1\] and \["1"\] would both be stored as "1"'):
        Experiment({1: "a", "1": "b"}, root=root, capture_output=False, code_dir=tmp_path)
    with pytest.raises(RecordingError, match=r'\["m"\]\[True\] and \["m"\]\["True"\]'):
        Experiment({"m": {True: 1, "True": 2}}, root=root, capture_output=False, code_dir=tmp_path)
    assert not root.exists() or not any(p for p in root.iterdir() if not p.name.startswith("."))


def test_summary_and_metrics_keys_that_clash_are_refused(tmp_path: Path) -> None:
    root = tmp_path / "experiments"
    exp = Experiment({"lr": 0.1}, root=root, capture_output=False, code_dir=tmp_path)
    exp.summary({"val.loss": 1.0})
    with pytest.raises(NotSerializable, match=r'\["val.loss"\] and \["val"\]\["loss"\]'):
        exp.summary({"val": {"loss": 2.0}})
    assert json.loads((exp.dir / "summary.json").read_text()) == {"val.loss": 1.0}
    with pytest.raises(NotSerializable, match=r"\[2\] and \[\"2\"\]"):
        exp.summary({2: 1, "2": 2})
    with pytest.raises(NotSerializable, match=r'\["a.b"\] and \["a"\]\["b"\]'):
        exp.log({"a.b": 1, "a": {"b": 2}})
    with pytest.raises(NotSerializable, match=r'\[3\] and \["3"\]'):
        exp.log({3: 1.0, "3": 2.0})  # flat, but not all text: checked in full
    exp.log({"a.b": 1, "c": {"d": 2}})  # dots alone are fine
    exp.finish()
    assert (exp.dir / "metrics.jsonl").read_text().count("\n") == 1


def test_a_metric_never_replaces_the_step_or_time_of_its_line(tmp_path: Path) -> None:
    # each line of metrics.jsonl holds "step" and "time" beside the metrics:
    # a metric of either name would silently take their place
    exp = Experiment({"lr": 0.1}, root=tmp_path / "e", capture_output=False, code_dir=tmp_path)
    with pytest.raises(NotSerializable, match=r"the metric \"time\" .* rename it"):
        exp.log({"loss": 1.0, "time": 3.5}, step=1)
    with pytest.raises(NotSerializable, match=r"step=2 and the metric \"step\" 3"):
        exp.log({"loss": 1.0, "step": 3}, step=2)
    exp.log({"loss": 0.5, "step": 4})  # the step as a metric: the line's step
    exp.log({"loss": 0.4, "step": 5}, step=5)  # given twice, alike
    exp.finish()
    lines = [json.loads(line) for line in (exp.dir / "metrics.jsonl").read_text().splitlines()]
    assert [(line["step"], line["loss"]) for line in lines] == [(4, 0.5), (5, 0.4)]
    assert all(isinstance(line["time"], str) for line in lines)


def test_the_reader_keeps_both_values_of_keys_written_by_hand(tmp_path: Path) -> None:
    root = tmp_path / "experiments"
    record(root, {"lr": 0.1})
    (root / "1" / "config.json").write_text(
        '{"a.b": 1, "a": {"b": 2}, "x": {"y.z": 3, "y": {"z": 4}}, "k": 5}'
    )
    df = read(root)
    assert df.loc[1, "config.a.b"] == 2  # the nested key: what cfg.a.b means
    assert df.loc[1, "config.[a.b]"] == 1  # a key holding a dot, bracketed where it clashes
    assert df.loc[1, "config.x.y.z"] == 4 and df.loc[1, "config.x.[y.z]"] == 3
    assert df.loc[1, "config.k"] == 5
    assert pd.isna(df.loc[1, "read_error"])


def test_a_dotted_key_alone_keeps_its_plain_name(tmp_path: Path) -> None:
    root = tmp_path / "experiments"
    record(root, {"extra.dotted": "x", "extra": {"other": 1}})
    df = read(root)
    assert df.loc[1, "config.extra.dotted"] == "x" and df.loc[1, "config.extra.other"] == 1


def test_the_cache_is_kept_apart_from_these_values(tmp_path: Path) -> None:
    root = tmp_path / "experiments"
    record(root, {"a": 2**64})
    read(root)
    cache.flush()
    record(root, {"a": 1})
    assert_frame_equal(read(root), read(root, cache=False))
