"""The reader's cache: a second load costs a scan, and never shows stale data."""

from __future__ import annotations

import os
import pickle
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from helpers import metadata_of, record, watchdog
from pandas.testing import assert_frame_equal

from meticulous_hydra import Experiment, layout, load_experiments
from meticulous_hydra.reader import cache
from meticulous_hydra.recorder import organise


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv("METICULOUS_HYDRA_CACHE_DIR", str(folder))
    return folder


def test_warm_and_incremental_loads_match_a_fresh_read(tmp_path: Path, cache_dir: Path) -> None:
    root = tmp_path / "experiments"
    for lr in (0.1, 0.2, 0.3):
        record(root, {"lr": lr, "seed": 1}, {"loss": lr * 2})
    first = load_experiments(root)
    cache.flush()
    assert len(list(cache_dir.glob("*.pickle"))) == 1
    assert_frame_equal(load_experiments(root), first)
    # new runs, a new column, a changed status, a removed folder
    record(root, {"lr": 0.4, "seed": 2, "extra": True}, {"loss": 0.8})
    record(root, {"lr": 0.5, "seed": 3}, {"loss": 1.0})
    layout.write_status(root / "2" / "STATUS", "ERROR", "Traceback\nValueError: later")
    for name in os.listdir(root / "3"):
        os.unlink(root / "3" / name)
    (root / "3").rmdir()
    patched = load_experiments(root)
    fresh = load_experiments(root, cache=False)
    assert_frame_equal(patched, fresh)
    assert list(patched.index) == [1, 2, 4, 5]
    assert patched.loc[2, "status"] == "ERROR"
    assert patched["config.seed"].dtype == "int64" and patched["config.extra"].dtype == "boolean"
    assert_frame_equal(load_experiments(root), fresh)


def test_a_change_right_after_a_load_is_seen(tmp_path: Path, cache_dir: Path) -> None:
    root = tmp_path / "experiments"
    exp = Experiment({"a": 1}, root=root, capture_output=False, code_dir=tmp_path)
    exp.summary({"step": 1})
    assert load_experiments(root).loc[1, "summary.step"] == 1
    exp.summary({"step": 2})  # within the same clock tick, as like as not
    assert load_experiments(root).loc[1, "summary.step"] == 2
    exp.finish()
    assert load_experiments(root).loc[1, "status"] == "SUCCESS"


def test_running_runs_are_checked_every_time(tmp_path: Path, cache_dir: Path) -> None:
    script = tmp_path / "hang.py"
    script.write_text(
        "import sys\nfrom meticulous_hydra import Experiment\n"
        "Experiment({}, root='experiments', code_dir='.')\nprint('started', flush=True)\nsys.stdin.read()\n"
    )
    proc = subprocess.Popen(
        [sys.executable, str(script)],
        cwd=tmp_path,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    with watchdog(proc):
        assert proc.stdout.readline() == "started\n"
    assert load_experiments(tmp_path / "experiments").loc[1, "status"] == "RUNNING"
    proc.kill()
    proc.wait()
    proc.stdout.close()
    proc.stdin.close()
    assert load_experiments(tmp_path / "experiments").loc[1, "status"] == "DIED"


def test_a_damaged_or_foreign_cache_is_ignored(tmp_path: Path, cache_dir: Path) -> None:
    root = tmp_path / "experiments"
    record(root, {"lr": 0.1}, {"loss": 0.2})
    expected = load_experiments(root)
    cache.flush()
    (path,) = cache_dir.glob("*.pickle")
    path.write_bytes(b"\x80\x04truncated")
    assert_frame_equal(load_experiments(root), expected)
    cache.flush()

    class Boom:
        def __reduce__(self):
            return (os.system, (f"touch {tmp_path}/pwned",))

    path.write_bytes(pickle.dumps(Boom()))
    if os.getuid() == 0:
        os.chown(path, 65534, 65534)  # a file someone else put there is never unpickled
        assert_frame_equal(load_experiments(root), expected)
        assert not (tmp_path / "pwned").exists()


def test_cache_can_be_turned_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("METICULOUS_HYDRA_CACHE_DIR", "off")
    assert cache.cache_dir() is None
    root = tmp_path / "experiments"
    record(root, {"lr": 0.1}, {"loss": 0.2})
    assert load_experiments(root).loc[1, "config.lr"] == 0.1
    monkeypatch.delenv("METICULOUS_HYDRA_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache.cache_dir() == tmp_path / "xdg" / "meticulous-hydra"


def test_a_reader_subclass_has_its_own_cache(tmp_path: Path, cache_dir: Path) -> None:
    from meticulous_hydra import ExperimentReader

    class Extra(ExperimentReader):
        def row(self) -> dict:
            return {**super().row(), "extra": 1}

    root = tmp_path / "experiments"
    record(root, {"lr": 0.1}, {"loss": 0.2})
    assert "extra" not in load_experiments(root).columns
    assert load_experiments(root, reader=Extra)["extra"].tolist() == [1]
    assert "extra" not in load_experiments(root).columns
    assert isinstance(metadata_of(root / "1"), dict)
    assert pd.api.types.is_float_dtype(load_experiments(root)["config.lr"])


def test_a_reader_can_opt_out_of_the_cache(tmp_path: Path, cache_dir: Path) -> None:
    from meticulous_hydra import ExperimentReader

    class Live(ExperimentReader):
        cacheable = False  # reads a file the recorder does not replace

        def row(self) -> dict:
            return {**super().row(), "note": (self.path / "note.txt").read_text()}

    root = tmp_path / "experiments"
    exp = record(root, {"lr": 0.1}, {"loss": 0.2})
    (exp.dir / "note.txt").write_text("first")
    assert load_experiments(root, reader=Live).loc[1, "note"] == "first"
    with open(exp.dir / "note.txt", "w") as f:  # edited in place: the folder's mtime stays
        f.write("second")
    assert load_experiments(root, reader=Live).loc[1, "note"] == "second"
    cache.flush()
    assert list(cache_dir.glob("*.pickle")) == []


def test_the_cache_stores_equal_values_once(tmp_path: Path) -> None:
    root = tmp_path / "experiments"
    for lr in (0.1, 0.2, 0.3, 0.4):
        record(root, {"lr": lr, "name": "a long shared name", "layers": [64, 64]})
    frame = load_experiments(root, cache=False)
    small = cache.compact(frame)
    assert_frame_equal(small, frame)
    assert small["config.name"].iloc[0] is small["config.name"].iloc[3]
    assert small["config.layers"].iloc[0] is small["config.layers"].iloc[3]
    assert len(pickle.dumps(small)) < len(pickle.dumps(frame))


# -- a cached read is a fresh read, dtype for dtype (issue 23 #5) ----------------------


class Clock:
    """Time passing for the cache, without waiting: every run folder touched
    since the last call gets a modification time of its own, in the past
    (beyond the cache's racy window), as if each change happened seconds
    after the one before."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.next = time.time_ns() - 3600 * 10**9

    def tick(self) -> None:
        recent = time.time_ns() - 600 * 10**9
        for entry in os.scandir(self.root):
            if entry.name.startswith(".") or not entry.is_dir():
                continue
            st = entry.stat()
            if st.st_mtime_ns > recent:
                self.next += 10**9
                os.utime(entry.path, ns=(st.st_atime_ns, self.next))


def assert_cached_is_fresh(root: Path) -> pd.DataFrame:
    cached = load_experiments(root, include_archived=True)
    fresh = load_experiments(root, include_archived=True, cache=False)
    assert_frame_equal(cached, fresh, check_exact=True)
    assert list(cached.columns) == list(fresh.columns)
    assert dict(cached.dtypes) == dict(fresh.dtypes)
    return cached


def test_a_run_read_while_running_keeps_int_columns(tmp_path: Path, cache_dir: Path) -> None:
    """The reported sequence (3 of 3): a=1; read; a run with a=7 read while
    it runs; read after it ends; a run with only b; read."""
    root = tmp_path / "experiments"
    record(root, {"a": 1})
    clock = Clock(root)
    clock.tick()
    load_experiments(root)
    exp = Experiment({"a": 7}, root=root, capture_output=False, code_dir=tmp_path)
    clock.tick()
    assert load_experiments(root).loc[2, "status"] == "RUNNING"
    exp.finish()
    clock.tick()
    load_experiments(root)
    record(root, {"b": 2})
    clock.tick()
    df = assert_cached_is_fresh(root)
    assert df["config.a"].dtype == "Int64" and df["config.a"].tolist()[:2] == [1, 7]


VALUES: list[Any] = [
    0,
    1,
    7,
    -3,
    2**64,
    -(2**70),
    2**53 + 1,
    0.5,
    2.0,
    float("inf"),
    True,
    False,
    None,
    "a",
    "",
    [1, 2],
    [],
    [{"k": 1}],
    {},
    {"p": 1},
    {"p": "x", "q": [0.5]},
]
KEYS = ["a", "b", "c", "x.y", "n"]


def random_tree(rng: random.Random) -> dict[str, Any]:
    return {k: rng.choice(VALUES) for k in rng.sample(KEYS, rng.randint(0, len(KEYS)))}


def random_ops(rng: random.Random, root: Path, code_dir: Path, done: list[str]) -> None:
    """A random sequence of records, reads and edits on ``root``; every read
    compares the cached frame with a fresh one. ``done`` says what was done."""
    clock = Clock(root)
    running: list[Experiment] = []
    for _ in range(rng.randint(4, 14)):
        names = (
            sorted(e.name for e in os.scandir(root) if not e.name.startswith("."))
            if root.exists()
            else []
        )
        op = rng.choice(
            [
                "record",
                "record",
                "run",
                "read",
                "read",
                "summary",
                "config",
                "status",
                "rm",
                "tag",
                "archive",
            ]
        )
        if op in ("record", "run") or not names:
            op = "record" if op != "run" else op
            exp = Experiment(random_tree(rng), root=root, capture_output=False, code_dir=code_dir)
            if rng.random() < 0.7:
                exp.summary(random_tree(rng))
            if op == "run":
                running.append(exp)  # RUNNING: this process is alive
            else:
                exp.finish(rng.choice([None, "ERROR"]))
        elif op == "read":
            assert_cached_is_fresh(root)
        else:
            name = rng.choice(names)
            folder = root / name
            if op == "summary":
                layout.write_json(folder / layout.SUMMARY, layout.to_jsonable(random_tree(rng)))
            elif op == "config":
                layout.write_json(folder / layout.CONFIG_JSON, layout.to_jsonable(random_tree(rng)))
            elif op == "status":
                layout.write_status(folder / layout.STATUS, rng.choice(layout.STATUSES), "detail")
            elif op == "rm":
                shutil.rmtree(folder)
            elif op == "tag":
                organise.add_tag(folder, rng.choice(["best", "bad"]))
            else:
                organise.set_archived(folder, rng.random() < 0.5)
            op = f"{op} {name}"
        done.append(op)
        if rng.random() < 0.2 and running:
            running.pop(0).finish()
            done.append("finish")
        if rng.random() < 0.9:  # else the change lands in the cache's racy window
            clock.tick()
    for exp in running:
        exp.finish()
    done.append("read")
    assert_cached_is_fresh(root)


@pytest.mark.parametrize("seed", range(30))
def test_cached_reads_equal_fresh_reads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed: int
) -> None:
    monkeypatch.setenv("METICULOUS_HYDRA_CACHE_DIR", str(tmp_path / "cache"))
    rng = random.Random(seed)
    done: list[str] = []
    try:
        random_ops(rng, tmp_path / "experiments", tmp_path, done)
    except AssertionError as e:
        raise AssertionError(f"seed {seed}, after: {done}\n{e}") from e
