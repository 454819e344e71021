"""The reader's cache: a second load costs a scan, and never shows stale data."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from helpers import metadata_of, record, watchdog
from pandas.testing import assert_frame_equal

from meticulous_hydra import Experiment, layout, load_experiments
from meticulous_hydra.reader import cache


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
