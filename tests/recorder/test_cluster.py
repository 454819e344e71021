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
from omegaconf import OmegaConf
import meticulous_hydra

# a value that a requeued job sees changed, from a resolver of the app's own
OmegaConf.register_new_resolver("attempt", lambda: os.environ.get("ATTEMPT", "0"))

@hydra.main(version_base="1.3", config_path=None, config_name=None)
def main(cfg):
    print("task in", os.getpid(), "rank", os.environ.get("LOCAL_RANK", "0"), flush=True)
    flag = Path(os.environ.get("FAIL_ONCE", "/nonexistent"))
    if cfg.get("fail_once") and flag.exists():
        flag.unlink()
        raise RuntimeError("preempted")
    if cfg.get("die_once") and flag.exists():
        flag.unlink()
        os._exit(9)  # killed: no status written, as under SLURM's SIGKILL
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


def requeue_submitit_job(folder: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """Run the job of a submitit_local sweep that recorded into ``folder``
    again, exactly as submitit's job script does: what a requeue (SLURM after
    preemption, or submitit's checkpoint()) does with the pickled job."""
    first = metadata_of(folder)
    job_id = first["hydra"]["job_id"]
    job_folder = Path(first["sweep"]["dir"]) / ".submitit" / job_id
    full_env = {
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
        **env,
    }
    return subprocess.run(
        [sys.executable, "-u", "-m", "submitit.core._submit", str(job_folder)],
        cwd=first["launch"]["cwd"],
        env=full_env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def submitit_sweep(repo: Path, *overrides: str, flag: Path) -> list[Path]:
    run_python(
        ["app.py", "-m", "hydra/callbacks=meticulous", "hydra/launcher=submitit_local", *overrides],
        repo,
        env={"FAIL_ONCE": str(flag)},
        timeout=180,
    )
    root = repo / "experiments"
    return sorted((p for p in root.iterdir() if p.name.isdigit()), key=lambda p: int(p.name))


def test_requeued_submitit_job_continues_in_its_folder(tmp_path: Path) -> None:
    repo = app(tmp_path)
    flag = repo / "flag"
    flag.write_text("fail the first attempt")
    done = submitit_sweep(repo, "+fail_once=true", "+x=1,2", flag=flag)
    root = repo / "experiments"
    failed = [p for p in done if status_of(p)[0] == "ERROR"]
    assert len(failed) == 1
    folder = failed[0]
    first = metadata_of(folder)
    assert requeue_submitit_job(folder, FAIL_ONCE=str(flag)).returncode == 0
    assert sorted(p.name for p in root.iterdir() if p.name.isdigit()) == ["1", "2"]  # no new folder
    assert status_of(folder)[0] == "SUCCESS"
    meta = metadata_of(folder)
    assert meta["restarts"] == 1 and len(meta["restart_times"]) == 1
    assert meta["start_time"] == first["start_time"]
    out = (folder / "stdout").read_text()
    assert out.count("task in") == 2 and "===== meticulous-hydra: restart 1" in out
    assert json.loads((folder / "summary.json").read_text()) == {"return_value": 1.0}


def test_requeued_job_whose_config_holds_now_resumes(tmp_path: Path) -> None:
    """Issue 22 #1: ``${now:}`` gives another value when a requeued job starts
    again; the run goes on, keeps the recorded value and notes the new one."""
    repo = app(tmp_path)
    flag = repo / "flag"
    flag.write_text("killed in the first attempt")
    [folder] = submitit_sweep(
        repo,
        "+die_once=true",
        "+x=1",
        "+stamp='${now:%H-%M-%S-%f}'",
        "+out='${stamp}/ckpt'",  # follows from it
        flag=flag,
    )
    assert status_of(folder)[0] == "RUNNING"  # killed, as by SIGKILL
    recorded = json.loads((folder / "config.json").read_text())
    assert requeue_submitit_job(folder, FAIL_ONCE=str(flag)).returncode == 0
    assert status_of(folder)[0] == "SUCCESS"
    meta = metadata_of(folder)
    assert meta["restarts"] == 1
    changes = {c["key"]: c for c in meta["restart_changes"]}
    assert sorted(changes) == ["out", "stamp"]
    assert changes["stamp"]["recorded"] == recorded["stamp"] != changes["stamp"]["now"]
    assert changes["stamp"]["restart"] == 1
    # the run's config stays what it was recorded with (its hash too)
    assert json.loads((folder / "config.json").read_text()) == recorded
    import yaml

    assert yaml.safe_load((folder / "config.yaml").read_text())["stamp"] == recorded["stamp"]
    from meticulous_hydra.recorder.provenance import config_hash

    assert meta["config_hash"] == config_hash(recorded)
    assert "stamp: recorded" in (folder / "stdout").read_text()


def test_a_refused_resume_is_written_into_the_run(tmp_path: Path) -> None:
    """Issue 22 #1: a requeued job whose resume is refused says so in its own
    folder (STATUS and stderr), not only in submitit's log."""
    repo = app(tmp_path)
    flag = repo / "flag"
    flag.write_text("killed in the first attempt")
    [folder] = submitit_sweep(repo, "+die_once=true", "+x=1", "+attempt='${attempt:}'", flag=flag)
    assert status_of(folder)[0] == "RUNNING"
    proc = requeue_submitit_job(folder, FAIL_ONCE=str(flag), ATTEMPT="1")
    assert proc.returncode != 0
    status, detail = status_of(folder)
    assert status == "ERROR"
    assert detail.startswith("cannot resume experiment 1 in ")
    assert 'attempt (recorded "0", now "1")' in detail
    assert f"meticulous-hydra: error: {detail.strip()}" in (folder / "stderr").read_text()
    assert metadata_of(folder)["restarts"] == 0


def test_slurm_ending_reads_scontrol() -> None:
    """What SLURM's scontrol says when it sends a job SIGTERM (lines as SLURM
    22.05 printed them on tests/slurm's cluster, shortened)."""
    from meticulous_hydra.recorder.environment import slurm_ending

    def shown(state: str, reason: str, restarts: int, limit: str = "UNLIMITED") -> str:
        return (
            f"JobId=42 JobName=train.sh UserId=root(0) Priority=1 JobState={state} "
            f"Reason={reason} Dependency=(null) Requeue=1 Restarts={restarts} BatchFlag=1 "
            f"ExitCode=0:0 RunTime=00:01:24 TimeLimit={limit} TimeMin=N/A"
        )

    timeout = shown("COMPLETING", "TimeLimit", 0, "00:01:00")
    assert slurm_ending(timeout, "42") == (
        "TIMEOUT",
        "SIGTERM: SLURM job 42 reached its time limit (00:01:00)",
    )
    requeued = shown("COMPLETING", "None", 1)  # scontrol requeue, or preemption
    assert slurm_ending(requeued, "42") == (
        "REQUEUED",
        "SIGTERM: SLURM requeued job 42 (restart 1)",
    )
    # a job requeued once already, now cancelled
    again = shown("COMPLETING", "None", 1)
    assert slurm_ending(again, "42", "1") == (
        "INTERRUPTED",
        "SIGTERM: SLURM job 42 cancelled (scancel)",
    )
    assert slurm_ending(shown("COMPLETING", "None", 2), "42", "1")[0] == "REQUEUED"
    # scancel --signal=TERM: the job goes on; and nothing (scontrol did not answer)
    assert slurm_ending(shown("RUNNING", "None", 0), "42") is None
    assert slurm_ending("", "42") is None


def test_requeued_status_only_where_the_job_comes_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A requeued job runs its program again; only a run with an id (or a
    Hydra sweep job, found again by its link) continues in the same folder."""
    from meticulous_hydra import Experiment

    monkeypatch.chdir(tmp_path)
    detail = "SIGTERM: SLURM requeued job 7 (restart 1)"
    with_id = Experiment({"x": 1}, experiment_id="run-a", capture_output=False, code_dir=tmp_path)
    with_id.finish("REQUEUED", detail)
    assert status_of(with_id.dir) == ("REQUEUED", detail + "\n")
    plain = Experiment({"x": 1}, capture_output=False, code_dir=tmp_path)
    plain.mark("REQUEUED", detail)  # what the SIGTERM hook writes
    status, told = status_of(plain.dir)
    assert status == "INTERRUPTED" and told.startswith(
        detail + "; its next start records a new run"
    )
    plain.finish()
    assert status_of(plain.dir)[0] == "INTERRUPTED"


def test_a_refused_resume_leaves_another_runs_folder_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from meticulous_hydra import Experiment, ResumeMismatchError

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SLURM_JOB_ID", "7")
    done = Experiment({"x": 1}, experiment_id="done", capture_output=False, code_dir=tmp_path)
    done.finish()
    requeued = Experiment({"x": 1}, experiment_id="req", capture_output=False, code_dir=tmp_path)
    requeued.finish("REQUEUED", "SIGTERM: SLURM requeued job 7 (restart 1)")
    for name, want in (("done", "SUCCESS"), ("req", "ERROR")):
        with pytest.raises(ResumeMismatchError, match="differs in x"):
            Experiment({"x": 2}, experiment_id=name, capture_output=False, code_dir=tmp_path)
        assert status_of(tmp_path / "experiments" / name)[0] == want
    # the same id from another SLURM job: not this job's folder
    other = Experiment({"x": 1}, experiment_id="other", capture_output=False, code_dir=tmp_path)
    other.finish("REQUEUED", "requeued")
    monkeypatch.setenv("SLURM_JOB_ID", "8")
    with pytest.raises(ResumeMismatchError):
        Experiment({"x": 2}, experiment_id="other", capture_output=False, code_dir=tmp_path)
    assert status_of(tmp_path / "experiments" / "other")[0] == "REQUEUED"


def test_volatile_keys_follow_references() -> None:
    from meticulous_hydra.recorder.provenance import volatile_keys

    raw = {
        "stamp": "${now:%H-%M-%S}",
        "out": "runs/${stamp}/ckpt",
        "deep": {"user": "${oc.env:USER,nobody}", "path": "/home/${deep.user}"},
        "uses_deep": "${deep}",
        "lr": 0.1,
        "name": "${model}-${lr}",
        "model": "mlp",
        "tags": ["a", "${now:%Y}"],
    }
    assert volatile_keys(raw) == {"stamp", "out", "deep.user", "deep.path", "uses_deep", "tags"}


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
