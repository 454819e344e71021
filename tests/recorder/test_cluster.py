"""Beyond one machine: SLURM metadata, requeued jobs, distributed ranks."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import make_repo, metadata_of, run_python, status_of

APP = """
import os, subprocess, sys
from pathlib import Path
import hydra
from hydra.core.hydra_config import HydraConfig
import meticulous_hydra

@hydra.main(version_base="1.3", config_path=None, config_name=None)
def main(cfg):
    print("task in", os.getpid(), "rank", os.environ.get("LOCAL_RANK", "0"), flush=True)
    flag = Path(os.environ.get("FAIL_ONCE", "/nonexistent"))
    if cfg.get("fail_once") and flag.exists():
        flag.unlink()
        raise RuntimeError("preempted")
    if cfg.get("spawn_rank") and "LOCAL_RANK" not in os.environ:
        # what Lightning's DDP launcher does: re-run the script for rank 1 in the same dir
        out = HydraConfig.get().runtime.output_dir
        subprocess.run(
            [sys.executable, sys.argv[0], *sys.argv[1:], f"hydra.run.dir={out}"],
            env={**os.environ, "LOCAL_RANK": "1"}, check=True,
        )
    return 1.0

if __name__ == "__main__":
    main()
"""


def app(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "app", {"app.py": APP, ".gitignore": "multirun/\noutputs/\nflag\n"})


def test_slurm_variables_are_recorded(tmp_path: Path) -> None:
    repo = app(tmp_path)
    slurm = {
        "SLURM_JOB_ID": "4242",
        "SLURM_ARRAY_JOB_ID": "4240",
        "SLURM_ARRAY_TASK_ID": "2",
        "SLURM_JOB_NODELIST": "gpu[01-02]",
        "SLURM_PROCID": "0",
    }
    run_python(["app.py", "hydra/callbacks=meticulous", "+x=1"], repo, env=slurm, check=True)
    meta = metadata_of(repo / "experiments" / "1")
    assert meta["slurm"] == {
        "job_id": "4242",
        "array_job_id": "4240",
        "array_task_id": "2",
        "nodelist": "gpu[01-02]",
        "procid": "0",
    }
    assert meta["host"] and meta["pid"]


def test_requeued_submitit_job_continues_in_its_folder(tmp_path: Path) -> None:
    repo = app(tmp_path)
    flag = repo / "flag"
    flag.write_text("fail the first attempt")
    run_python(
        [
            "app.py",
            "-m",
            "hydra/callbacks=meticulous",
            "hydra/launcher=submitit_local",
            "+fail_once=true",
            "+x=1,2",
        ],
        repo,
        env={"FAIL_ONCE": str(flag)},
        timeout=180,
    )
    root = repo / "experiments"
    failed = [p for p in root.iterdir() if p.name.isdigit() and status_of(p)[0] == "ERROR"]
    assert len(failed) == 1
    folder = failed[0]
    first = metadata_of(folder)
    # A requeue (SLURM after preemption, or submitit's checkpoint()) runs the
    # same pickled job again: re-run it exactly as submitit's job script does.
    job_id = first["hydra"]["job_id"]
    job_folder = Path(first["sweep"]["dir"]) / ".submitit" / job_id
    env = {
        **os.environ,
        "SUBMITIT_EXECUTOR": "local",
        "SUBMITIT_LOCAL_JOB_ID": job_id,
        "SUBMITIT_LOCAL_NTASKS": "1",
        "SUBMITIT_LOCAL_GLOBALID": "0",
        "SUBMITIT_LOCAL_LOCALID": "0",
        "SUBMITIT_LOCAL_NODEID": "0",
        "SUBMITIT_LOCAL_JOB_NUM_NODES": "1",
        "SUBMITIT_LOCAL_COMMAND": "",
        "SUBMITIT_LOCAL_TIMEOUT_S": "600",
        "SUBMITIT_LOCAL_SIGNAL_DELAY_S": "30",
        "SUBMITIT_STDERR_TO_STDOUT": "",
        "SUBMITIT_LOCAL_WITH_SHELL": "",
        "FAIL_ONCE": str(flag),
    }
    subprocess.run(
        [sys.executable, "-u", "-m", "submitit.core._submit", str(job_folder)],
        cwd=repo,
        env=env,
        check=True,
        capture_output=True,
        timeout=120,
    )
    assert sorted(p.name for p in root.iterdir() if p.name.isdigit()) == ["1", "2"]  # no new folder
    assert status_of(folder)[0] == "SUCCESS"
    meta = metadata_of(folder)
    assert meta["restarts"] == 1 and len(meta["restart_times"]) == 1
    assert meta["start_time"] == first["start_time"]
    out = (folder / "stdout").read_text()
    assert out.count("task in") == 2 and "===== meticulous-hydra: restart 1" in out
    assert json.loads((folder / "summary.json").read_text()) == {"return_value": 1.0}


def test_only_rank_0_records(tmp_path: Path) -> None:
    repo = app(tmp_path)
    for var in ("RANK", "SLURM_PROCID", "LOCAL_RANK"):
        proc = run_python(
            ["app.py", "hydra/callbacks=meticulous", "+x=1"], repo, env={var: "3"}, check=True
        )
        assert "task in" in proc.stdout
    assert not (repo / "experiments").exists()
    run_python(
        ["app.py", "hydra/callbacks=meticulous", "+x=1"],
        repo,
        env={"RANK": "0", "LOCAL_RANK": "0"},
        check=True,
    )
    assert status_of(repo / "experiments" / "1")[0] == "SUCCESS"


def test_a_rank_relaunched_into_the_run_dir_does_not_clobber_it(tmp_path: Path) -> None:
    repo = app(tmp_path)
    proc = run_python(
        ["app.py", "hydra/callbacks=meticulous", "+spawn_rank=true"], repo, check=True
    )
    assert "rank 1" in proc.stdout  # the child rank really ran
    root = repo / "experiments"
    assert sorted(p.name for p in root.iterdir() if not p.name.startswith(".")) == ["1"]
    folder = root / "1"
    meta = metadata_of(folder)
    assert meta["pid"] == int(proc.stdout.split("task in ")[1].split()[0])  # the parent's record
    assert meta["restarts"] == 0 and status_of(folder)[0] == "SUCCESS"
    assert (
        "rank 1" in (folder / "stdout").read_text()
    )  # the child's output, via the parent's capture


def test_argparse_ranks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # in-process: the rank is read from the environment when the run starts
    from meticulous_hydra import record

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setattr(sys, "argv", ["s.py"])
    _, exp = record(argparse.ArgumentParser(), [])
    exp.summary({"x": 1})
    exp.finish()
    assert exp.norecord is True and not (tmp_path / "experiments").exists()
