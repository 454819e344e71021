"""Hostile values and files in a root: each damaged run is one row with its
``read_error`` (or an exact object column), never a failed read of the whole
root, a hang, or memory eaten without bound (issue 21: 5, 8, 9)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from meticulous_hydra import Experiment, NotSerializable, RecordingError

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
    exp.log({"a.b": 1, "c": {"d": 2}})  # dots alone are fine
    exp.finish()
    assert (exp.dir / "metrics.jsonl").read_text().count("\n") == 1
