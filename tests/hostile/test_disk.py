"""Disks that fill while a run records (issue 21, point 17): on a real small
filesystem (a tmpfs in a private mount namespace), never a mock. The program
is never killed by a write of ours failing, its output keeps reaching the
terminal, and the run still ends with its true status, whose detail says
what the full disk cut short."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from helpers import in_mount_namespace, status_of, write_script

from meticulous_hydra.reader.reader import ExperimentReader

# stdout fills the disk; then the program logs, writes a summary, prints and
# ends as usual
FULL_DISK = """
import json, sys
from meticulous_hydra import Experiment

exp = Experiment({"lr": 0.1}, root="disk/experiments", code_dir=".")
sys.stdout.write("x" * 100 + "\\n")
sys.stdout.write(("y" * 1000 + "\\n") * 600)   # more than the disk holds
sys.stdout.flush()
for step in range(3):
    exp.log({"loss": 1 / (step + 1)}, step=step)
exp.summary({"big": "z" * 400_000})
print("the program still prints", flush=True)
"""


def run_on_small_disk(folder: Path, script: str, size: str = "256k") -> tuple[int, str, str]:
    """Run ``script`` with ``disk/`` a tmpfs of ``size``; ``disk/`` is
    copied to ``saved/`` once the program has exited (the tmpfs goes with
    its mount namespace)."""
    write_script(folder, "app.py", script)
    (folder / "disk").mkdir()
    run = f'{sys.executable} app.py; code=$?; cp -a disk saved; exit "$code"'
    proc = in_mount_namespace(
        f"mount -t tmpfs -o size={size} tmpfs disk", ["sh", "-c", run], folder
    )
    return proc.returncode, proc.stdout, proc.stderr


def test_a_full_disk_ends_the_run_with_its_status(tmp_path: Path) -> None:
    code, out, err = run_on_small_disk(tmp_path, FULL_DISK)
    assert code == 0, err
    assert "the program still prints" in out
    assert out.count("y" * 1000) == 600  # the terminal got all of it
    # our lines go to stderr, never stdout: one per file the disk cut short
    assert "meticulous-hydra" not in out
    ours = [line for line in err.splitlines() if line.startswith("meticulous-hydra: ")]
    assert any(line.startswith("meticulous-hydra: recording to ") for line in ours), err
    full = [line for line in ours if "No space left on device" in line]
    assert len(full) == 3, err  # stdout, metrics.jsonl, summary.json
    folder = tmp_path / "saved" / "experiments" / "1"
    status, detail = status_of(folder)
    assert status == "SUCCESS"
    assert "stdout: the disk filled" in detail and "summary.json: the disk filled" in detail
    assert json.loads((folder / "metadata.json").read_text())["end_time"] is not None
    assert (folder / "stdout").read_text().startswith("x" * 100)
    assert not (folder / ".end-reserve").exists()


# the disk fills; then the program fails
FULL_DISK_ERROR = FULL_DISK.replace(
    'print("the program still prints", flush=True)', 'raise ValueError("bad value")'
)


def test_a_full_disk_keeps_an_error_status(tmp_path: Path) -> None:
    code, _, err = run_on_small_disk(tmp_path, FULL_DISK_ERROR)
    assert code == 1 and "ValueError: bad value" in err
    folder = tmp_path / "saved" / "experiments" / "1"
    status, detail = status_of(folder)
    assert status == "ERROR" and "ValueError: bad value" in detail
    assert "stdout: the disk filled" in detail
    # the table shows the exception, not the notes after the traceback
    assert ExperimentReader(folder).row()["status_detail"] == "ValueError: bad value"
