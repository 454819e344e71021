"""The reader: experiment folders back as readers and as one DataFrame."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from helpers import PROJECT, git, metadata_of, record, run_python, watchdog

from meticulous_hydra import Experiment, ExperimentReader, Experiments, load_experiments
from meticulous_hydra.reader.frame import STANDARD_COLUMNS
from meticulous_hydra.reader.reader import ReadWarning


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = tmp_path / "experiments"
    record(
        root,
        {
            "lr": 0.1,
            "layers": [64, 32],
            "opt": {"name": "sgd", "momentum": 0.9},
            "seed": 1,
            "cuda": True,
        },
        {"loss": 0.5, "epochs": 3},
    )
    record(
        root,
        {"lr": 0.2, "layers": [64], "opt": {"name": "adam"}, "seed": 2, "cuda": False},
        {"loss": 0.25, "epochs": 4},
    )
    record(
        root,
        {"lr": 0.3, "seed": 3, "extra.dotted": "x", "extra": {"dotted2": 1}},
        {"loss": float("nan")},
        status="ERROR",
    )
    return root


def test_dataframe_columns_and_types(root: Path) -> None:
    df = load_experiments(root)
    assert list(df.index) == [1, 2, 3] and df.index.name == "id"
    assert list(df.columns[: len(STANDARD_COLUMNS)]) == list(STANDARD_COLUMNS)
    assert df["status"].tolist() == ["SUCCESS", "SUCCESS", "ERROR"]
    assert df["config.lr"].dtype == "float64"
    assert df["config.seed"].dtype == "int64"
    assert df["summary.epochs"].dtype == "Int64"  # ints with a gap stay ints
    assert pd.isna(df.loc[3, "summary.epochs"])
    assert df["config.cuda"].dtype == "boolean" and df.loc[1, "config.cuda"]
    assert pd.isna(df.loc[3, "config.opt.momentum"]) and pd.isna(df.loc[2, "config.opt.momentum"])
    assert df.loc[1, "config.layers"] == (64, 32)
    assert df.loc[3, "config.extra.dotted"] == "x" and df.loc[3, "config.extra.dotted2"] == 1
    assert isinstance(df["start_time"].dtype, pd.DatetimeTZDtype)
    assert (df["end_time"] >= df["start_time"]).all()
    assert df["duration"].dtype == "float64"
    assert df["git.sha"].isna().all()  # no repository here
    assert df["read_error"].isna().all()
    for column in df.columns:  # nothing unhashable anywhere
        df[column].nunique()
        df.groupby(column).size()
        df.sort_values(column)


def test_mapping_and_reader_api(root: Path) -> None:
    for name in ("10", "best", "007", "11"):
        record(root, {"lr": 1.0}, experiment_id=name)
    exps = Experiments(root)
    assert list(exps) == ["1", "2", "3", "10", "11", "007", "best"] and len(exps) == 7
    assert exps[2] is exps["2"]
    reader = exps["2"]
    assert reader.id == "2" and reader.path == root / "2"
    assert reader.config["opt"] == {"name": "adam"}
    assert reader.summary == {"loss": 0.25, "epochs": 4}
    assert reader.status == "SUCCESS" and reader.status_detail == ""
    assert reader.metadata["id"] == "2"
    # ids are numbers where they are numbers, custom ids text, side by side
    df = exps.as_dataframe()
    assert list(df.index) == [1, 2, 3, 10, 11, "007", "best"]
    assert df.loc[3, "config.lr"] == 0.3 and df.loc["best", "config.lr"] == 1.0
    assert list(df.sample(frac=1, random_state=0).sort_index().index) == list(df.index)
    assert list(df.sort_index(ascending=False).index) == ["best", "007", 11, 10, 3, 2, 1]
    with reader.open("config.yaml") as f:
        assert "lr: 0.2" in f.read()


def test_metrics_and_output(tmp_path: Path) -> None:
    exp = Experiment({}, root=tmp_path / "r", capture_output=False, code_dir=tmp_path)
    for step in range(3):
        exp.log({"loss": 1.0 / (step + 1)}, step=step)
    exp.finish()
    with open(exp.dir / "metrics.jsonl", "a") as f:
        f.write('{"step": 3, "lo')  # a line cut short by a crash
    (exp.dir / "stdout").write_text("hello\n")
    reader = ExperimentReader(exp.dir)
    assert reader.metrics_wide["loss"].tolist() == [1.0, 0.5, 1.0 / 3]
    assert reader.metrics[["step", "key"]].values.tolist() == [
        [0, "loss"],
        [1, "loss"],
        [2, "loss"],
    ]
    assert reader.metrics["value"].tolist() == [1.0, 0.5, 1.0 / 3]
    assert reader.stdout == "hello\n" and reader.stderr == ""


def test_damaged_root_is_read_with_errors_noted(root: Path) -> None:
    (root / ".hydra").mkdir()
    (root / "multirun.yaml").write_text("a: 1\n")
    (root / "stray.txt").write_text("x")
    (root / "not-an-experiment").mkdir()
    (root / "2" / "summary.json").write_text('{"loss": 0.2')  # truncated
    (root / "3" / "metadata.json").unlink()
    (root / "1" / "STATUS").write_text("")
    shutil.rmtree(root / "1" / "config.json", ignore_errors=True)
    (root / "1" / "config.json").unlink()
    (root / "1" / "config.json").mkdir()  # unreadable as a file
    record(root, {"a": 1})
    (root / "4" / "STATUS").write_text("GARBAGE\n")
    with pytest.warns(ReadWarning, match="4 experiment"):
        df = load_experiments(root)
    assert list(df.index) == [1, 2, 3, 4]
    errors = df["read_error"].to_dict()
    assert "STATUS: empty" in errors[1] and "config.json" in errors[1]
    assert "summary.json: invalid JSON" in errors[2]
    assert errors[3] == "metadata.json: missing"
    assert "unexpected first line" in errors[4]
    assert df.loc[1, "status"] == "UNKNOWN" and df.loc[4, "status"] == "UNKNOWN"
    assert df.loc[2, "config.lr"] == 0.2 and pd.isna(
        df.loc[2, "summary.loss"]
    )  # the rest still read
    assert df.loc[3, "status"] == "ERROR"


def test_missing_and_empty_roots(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"experiments root .*nowhere does not exist"):
        load_experiments(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    df = load_experiments(tmp_path / "empty")
    assert df.empty and list(df.columns) == list(STANDARD_COLUMNS)


def test_older_format_without_json_copies(tmp_path: Path) -> None:
    folder = tmp_path / "old" / "1"
    folder.mkdir(parents=True)
    (folder / "config.yaml").write_text("lr: 0.5\nmodel:\n  depth: 3\n")
    (folder / "metadata.json").write_text(json.dumps({"start_time": "2025-01-01T10:00:00+01:00"}))
    (folder / "STATUS").write_text("SUCCESS\n")
    df = load_experiments(tmp_path / "old")
    assert df.loc[1, "config.model.depth"] == 3 and df.loc[1, "config.lr"] == 0.5
    assert df.loc[1, "start_time"] == pd.Timestamp("2025-01-01T09:00:00Z")


def test_died_runs(tmp_path: Path) -> None:
    script = tmp_path / "hang.py"
    script.write_text(
        "import sys\nfrom meticulous_hydra import Experiment\n"
        "e = Experiment({}, root='experiments')\nprint('started', flush=True)\nsys.stdin.read()\n"
    )
    procs = [
        subprocess.Popen(
            [sys.executable, str(script)],
            cwd=tmp_path,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    for p in procs:
        with watchdog(p):
            assert p.stdout.readline() == "started\n"
    procs[0].kill()
    procs[0].wait()
    df = load_experiments(tmp_path / "experiments")
    by_pid = {df.loc[i, "metadata.pid"]: df.loc[i, "status"] for i in df.index}
    assert by_pid == {procs[0].pid: "DIED", procs[1].pid: "RUNNING"}
    procs[1].stdin.close()
    procs[1].wait()
    for p in procs:
        p.stdout.close()
    # another host: judged by the heartbeat (STATUS's mtime)
    folder = tmp_path / "experiments" / "1"
    meta = metadata_of(folder)
    meta["host"] = "some-other-node"
    (folder / "metadata.json").write_text(json.dumps(meta))
    (folder / "STATUS").write_text("RUNNING\n")
    assert ExperimentReader(folder).status == "RUNNING"
    old = time.time() - 3600
    os.utime(folder / "STATUS", (old, old))
    assert ExperimentReader(folder).status == "DIED"
    assert ExperimentReader(folder, died_after=7200).status == "RUNNING"


class CheckpointReader(ExperimentReader):
    def row(self) -> dict:
        row = super().row()
        row["checkpoints"] = len(list(self.path.glob("*.ckpt")))
        return row


def test_subclass_adds_columns(root: Path) -> None:
    (root / "2" / "a.ckpt").write_text("")
    df = load_experiments(root, reader=CheckpointReader)
    assert df["checkpoints"].tolist() == [0, 1, 0]


def test_several_roots(tmp_path: Path) -> None:
    for name in ("cluster_a", "cluster_b"):
        record(tmp_path / name, {"where": name})
    df = load_experiments([tmp_path / "cluster_a", tmp_path / "cluster_b"])
    assert df.index.names == ["root", "id"]
    assert df.index.is_unique and len(df) == 2
    assert df.loc[(str(tmp_path / "cluster_b"), 1), "config.where"] == "cluster_b"


def test_hydra_and_argparse_runs_share_a_root(app_repo: Path) -> None:
    shutil.copy(PROJECT / "examples" / "train_argparse.py", app_repo / "examples")
    git(app_repo, "add", "-A")
    git(app_repo, "commit", "-qm", "argparse example")
    run_python(
        ["examples/train.py", "-m", "hydra/callbacks=meticulous", "optimizer.lr=0.01,2.0"], app_repo
    )
    run_python(["examples/train_argparse.py", "data", "--lr", "0.1"], app_repo, check=True)
    df = load_experiments(app_repo / "experiments")
    assert df["status"].tolist() == ["SUCCESS", "ERROR", "SUCCESS"]
    assert df["metadata.adapter"].tolist() == ["hydra", "hydra", "argparse"]
    assert df.loc[2, "status_detail"].startswith("FloatingPointError: loss diverged")
    assert df["sweep.job_num"].tolist()[:2] == [0, 1] and pd.isna(df.loc[3, "sweep.job_num"])
    assert df.loc[1, "overrides"] == ("optimizer.lr=0.01",)
    assert df.loc[3, "config.lr"] == 0.1 and df.loc[3, "config.layers"] == (64, 64)
    assert df.loc[1, "config.optimizer.lr"] == 0.01
    assert df["git.sha"].nunique() == 1 and not df["git.dirty"].any()


def test_metrics_wide_times_are_utc_datetimes(tmp_path: Path) -> None:
    exp = Experiment({}, root=tmp_path / "r", capture_output=False, code_dir=tmp_path)
    for step in range(3):
        exp.log({"loss": 1.0 / (step + 1)}, step=step)
    exp.finish()
    reader = ExperimentReader(exp.dir)
    wide, long = reader.metrics_wide, reader.metrics
    assert isinstance(wide["time"].dtype, pd.DatetimeTZDtype) and str(wide["time"].dt.tz) == "UTC"
    assert wide["time"].tolist() == long["time"].tolist()
    assert wide["time"].dtype == long["time"].dtype


class Syscalls:
    """The folders listed and the files opened under ``root``, seen through
    Python's audit events (an audit hook stays for the process: it records
    only while switched on)."""

    hooked = False
    current: Syscalls | None = None

    def __init__(self, root: Path) -> None:
        self.root = str(root)
        self.listed: list[str] = []
        self.opened: list[str] = []
        if not Syscalls.hooked:
            sys.addaudithook(Syscalls._hook)
            Syscalls.hooked = True

    @staticmethod
    def _hook(event: str, args: tuple) -> None:
        self = Syscalls.current
        if self is None or not args or not isinstance(args[0], str):
            return
        if not args[0].startswith(self.root):
            return
        if event == "open":
            self.opened.append(args[0])
        elif event in ("os.scandir", "os.listdir"):
            self.listed.append(args[0])

    def __enter__(self) -> Syscalls:
        Syscalls.current = self
        return self

    def __exit__(self, *exc: object) -> None:
        Syscalls.current = None


def test_one_listing_a_folder_and_no_failed_opens(tmp_path: Path) -> None:
    root = tmp_path / "experiments"
    record(root, {"lr": 0.1}, {"loss": 0.5})
    record(root, {"lr": 0.2}, status="ERROR")  # no summary.json
    exp = record(root, {"lr": 0.3}, {"loss": 0.25})
    (exp.dir / "TAG.best").touch()
    (exp.dir / "NOTES").write_text("a note\n")
    (root / "not-a-run").mkdir()
    for cached in (False, True):
        with Syscalls(root) as calls:
            df = load_experiments(root, cache=cached)
        assert df.loc[3, "tags"] == ("best",) and df.loc[3, "notes"] == ("a note",)
        folders = [os.path.normpath(p) for p in calls.listed]
        assert sorted(folders) == sorted({os.path.normpath(p) for p in calls.listed})
        assert str(root / "2") in folders and str(root / "not-a-run") in folders
        missing = [p for p in calls.opened if not os.path.exists(p)]
        assert missing == []
        assert sorted(os.path.basename(p) for p in calls.opened if "/2/" in p) == [
            "STATUS",
            "config.json",
            "metadata.json",
        ]
