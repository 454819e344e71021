"""On a real SLURM cluster: Hydra sweeps through ``hydra/launcher=submitit_slurm``
and an argparse script under ``sbatch``, through everything SLURM does to a
job: arrays, failures, ``scontrol requeue``, preemption, time limits with and
without requeue, several tasks, ``scancel``.

The cluster is the one ``tests/slurm/start.sh`` starts (``make test-slurm``):
one node, the partitions ``debug`` (default), ``low`` (preempted by ``high``)
and ``high``, a gres ``token`` (one) that lets a test aim a preemption at one
job, ``KillWait=5``, accounting through slurmdbd. Without it this module is
skipped, unless ``METICULOUS_SLURM=required`` (CI), which makes that an error.

The scenarios wait on SLURM (time limits are a minute at least): every test
drives its own jobs, named after the test, and the module runs with many
workers at once (``make test-slurm``), the jobs side by side on the node.
A requeued job waits about two minutes before it may start again
(BeginTime); the tests start it at once with ``scontrol update StartTime=now``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from helpers import git, make_repo, metadata_of, status_of

from meticulous_hydra.cli import summary as summary_cli
from meticulous_hydra.reader.reader import ExperimentReader

HYDRA_APP = """
import os, time
import hydra

@hydra.main(version_base="1.3", config_path=None, config_name=None)
def main(cfg):
    restart = int(os.environ.get("SLURM_RESTART_COUNT") or 0)
    print(f"task x={cfg.get('x')} rank={os.environ.get('SLURM_PROCID')} restart={restart}", flush=True)
    if cfg.get("fail_on") is not None and cfg.get("x") == cfg.fail_on:
        raise RuntimeError(f"x={cfg.x} diverged")
    if restart == 0 and cfg.get("hold"):
        time.sleep(cfg.hold)  # the first attempt waits for what the test does to it
    return {"restart": restart}

if __name__ == "__main__":
    main()
"""

ARGPARSE_APP = """
import argparse, os, time
from meticulous_hydra import record

parser = argparse.ArgumentParser()
parser.add_argument("--lr", type=float, default=0.1)
parser.add_argument("--seed", type=int, default=0)
parser.add_argument("--fail", action="store_true")
parser.add_argument("--hold", type=float, default=0)
args, exp = record(parser)
restart = int(os.environ.get("SLURM_RESTART_COUNT") or 0)
print(f"train lr={args.lr} restart={restart}", flush=True)
if args.fail:
    raise RuntimeError("loss is nan")
if restart == 0 and args.hold:
    time.sleep(args.hold)  # the first attempt waits for what the test does to it
exp.summary({"restart": restart})
"""

HOLD = 600  # seconds: longer than any test waits
METICULOUS = str(Path(sys.executable).with_name("meticulous"))


# -- the cluster, polled ---------------------------------------------------------------


def slurm(*args: str, cwd: Path | None = None) -> str:
    done = subprocess.run(args, capture_output=True, text=True, timeout=60, cwd=cwd)
    assert done.returncode == 0, f"{' '.join(args)}: {done.stderr}"
    return done.stdout


def job_state(job: str) -> tuple[str, str]:
    """The job's state and reason as squeue shows them; ("", "") once it has left."""
    shown = subprocess.run(
        ["squeue", "-h", "-j", job, "-o", "%T|%r"], capture_output=True, text=True, timeout=60
    ).stdout.strip()
    state, _, reason = shown.partition("|")
    return state, reason


def wait_until(
    condition: Callable[[], object],
    seconds: float,
    what: str,
    seen: Callable[[], object] | None = None,
) -> None:
    """Poll ``condition`` until it holds; fail saying ``what`` was awaited
    (and what ``seen`` tells of the state it was in)."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            queue = subprocess.run(["squeue"], capture_output=True, text=True).stdout
            state = f"\nseen: {seen()!r}" if seen is not None else ""
            raise AssertionError(f"not within {seconds:.0f}s: {what}{state}\nsqueue:\n{queue}")
        time.sleep(0.3)


def start_now(job: str) -> None:
    """A requeued job waits ~2 minutes (BeginTime): start it as soon as it is pending."""
    wait_until(lambda: job_state(job)[0] == "PENDING", 60, f"job {job} back in the queue")
    # SLURM revoked the job's credential as it requeued it, and kills a start
    # whose new credential bears that same second ("Killing non-startable batch
    # JobId=N: Job credential revoked"; the ~2 minutes are there to let it
    # pass): start it once the clock has left the second the requeue was in
    pending_at = int(time.time())
    wait_until(lambda: int(time.time()) > pending_at, 5, "the second of the requeue over")
    slurm("scontrol", "update", f"JobId={job}", "StartTime=now")


# -- the runs, read ----------------------------------------------------------------------


def status(folder: Path) -> str:
    return ExperimentReader(folder).status if (folder / "metadata.json").exists() else ""


def detail(folder: Path) -> str:
    return ExperimentReader(folder).status_detail


def folders(root: Path) -> list[Path]:
    if not root.is_dir():
        return []
    return sorted((p for p in root.iterdir() if p.name[0] != "."), key=lambda p: p.name)


def slurm_job(folder: Path) -> str:
    return metadata_of(folder)["slurm"]["job_id"]


def table(root: Path, *args: str) -> list[dict[str, str]]:
    """meticulous-summary's table of ``root``, one dict per row (header -> cell)."""
    text, _ = summary_cli.run([str(root), "--format", "tsv", *args])
    head, *rows = text.rstrip("\n").split("\n")
    names = ["id", *(h.strip() for h in head.split("\t")[1:])]
    return [dict(zip(names, (c.strip() for c in row.split("\t")), strict=True)) for row in rows]


def rerun_offers(root: Path) -> str:
    """What ``meticulous rerun --failed --dry-run`` prints for the latest sweep."""
    done = subprocess.run(
        [METICULOUS, "rerun", "--failed", "--dry-run", "--root", str(root)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


# -- the programs, started -----------------------------------------------------------------


class Lab:
    """A test's repository with both apps, and what it started on the cluster
    (jobs named after the test), cancelled and stopped when the test ends."""

    def __init__(self, tmp_path: Path, name: str) -> None:
        self.repo = make_repo(
            tmp_path / "lab",
            {
                "app.py": HYDRA_APP,
                "train.py": ARGPARSE_APP,
                ".gitignore": "multirun/\noutputs/\nlogs/\n",
            },
        )
        self.root = self.repo / "experiments"
        self.name = name
        self.launchers: list[subprocess.Popen[bytes]] = []
        (self.repo / "logs").mkdir()

    def sweep(self, *overrides: str) -> subprocess.Popen[bytes]:
        """Start a Hydra sweep through submitit_slurm (it waits for its jobs)."""
        n = len(self.launchers)
        with open(self.repo / "logs" / f"launcher{n}.log", "wb") as log:
            proc = subprocess.Popen(
                [
                    *(sys.executable, "app.py", "-m", "hydra/callbacks=meticulous"),
                    *("hydra/launcher=submitit_slurm", f"hydra.launcher.name={self.name}"),
                    *("hydra.launcher.timeout_min=10", *overrides),
                ],
                cwd=self.repo,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        self.launchers.append(proc)
        return proc

    def launcher_log(self, n: int = 0) -> str:
        return (self.repo / "logs" / f"launcher{n}.log").read_text(errors="replace")

    def sbatch(self, *args: str, options: tuple[str, ...] = ()) -> str:
        """Submit ``python train.py ARGS`` as a batch job; its id."""
        command = " ".join([sys.executable, "train.py", *args])
        out = slurm(
            "sbatch", "--parsable", "-J", self.name, "-o", "logs/%j.out", *options,
            "--wrap", f"exec {command}", cwd=self.repo,
        )  # fmt: skip
        return out.strip().split(";")[0]

    def close(self) -> None:
        subprocess.run(["scancel", "-n", self.name], capture_output=True, timeout=60)
        for proc in self.launchers:
            if proc.poll() is None:
                proc.terminate()
            proc.wait(timeout=60)


@pytest.fixture
def lab(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Lab]:
    name = "mh-" + re.sub(r"[^A-Za-z0-9]+", "-", request.node.name)[:40] + f"-{os.getpid()}"
    lab = Lab(tmp_path, name)
    try:
        yield lab
    finally:
        lab.close()


def one_folder(lab: Lab) -> Path:
    """The one run folder of the lab, once it records (its metadata is written)."""
    wait_until(
        lambda: len(folders(lab.root)) == 1 and status(folders(lab.root)[0]),
        120,
        "the job recording",
    )
    return folders(lab.root)[0]


def finish(proc: subprocess.Popen[bytes], seconds: float = 180) -> int:
    """The launcher's exit code, once it has seen every job end."""
    wait_until(lambda: proc.poll() is not None, seconds, "the sweep's launcher exiting")
    return proc.returncode


# -- Hydra sweeps through submitit_slurm ---------------------------------------------------------


def test_array_sweep_with_a_failure(lab: Lab) -> None:
    proc = lab.sweep("+x=1,2,3,4", "+fail_on=3")
    assert finish(proc) != 0  # Hydra raises the failed job's error at the end
    runs = {metadata_of(f)["sweep"]["job_num"]: f for f in folders(lab.root)}
    assert sorted(runs) == [0, 1, 2, 3]
    for job_num, folder in runs.items():
        want = "ERROR" if job_num == 2 else "SUCCESS"
        assert status_of(folder)[0] == want, folder
        slurm_meta = metadata_of(folder)["slurm"]
        assert slurm_meta["array_task_id"] == str(job_num)
        assert slurm_meta["partition"] == "debug"
    assert {metadata_of(f)["slurm"]["array_job_id"] for f in runs.values()} == {
        metadata_of(runs[0])["slurm"]["array_job_id"]
    }
    assert "RuntimeError: x=3 diverged" in detail(runs[2])
    rows = {r["x"]: r for r in table(lab.root)}
    assert rows["3"]["status"] == "ERROR" and rows["3"]["status_detail"] == (
        "RuntimeError: x=3 diverged"
    )
    assert [rows[x]["status"] for x in "124"] == ["SUCCESS"] * 3
    assert "restarts" not in rows["1"]  # nothing was restarted
    offered = rerun_offers(lab.root)
    assert "1 job(s) to run again" in offered and f"run {runs[2].name} (ERROR)" in offered


def test_scontrol_requeue_resumes_the_folder_whose_config_holds_now(lab: Lab) -> None:
    """Issue 22, points 1 and 2: the requeued job is REQUEUED while it waits, never
    offered to rerun, and resumes although ``${now:}`` gives another value."""
    proc = lab.sweep("+x=1", f"+hold={HOLD}", "+stamp='${now:%H-%M-%S-%f}'")
    folder = one_folder(lab)
    job = slurm_job(folder)
    recorded = json.loads((folder / "config.json").read_text())["stamp"]
    slurm("scontrol", "requeue", job)
    wait_until(lambda: status(folder) == "REQUEUED", 60, "the run REQUEUED")
    assert f"SLURM requeued job {job}" in detail(folder)
    [row] = table(lab.root)
    assert row["status"] == "REQUEUED" and f"requeued job {job}" in row["status_detail"]
    offered = rerun_offers(lab.root)
    assert "nothing to run again" in offered and "REQUEUED, SLURM runs it again" in offered
    start_now(job)
    wait_until(lambda: status(folder) == "SUCCESS", 120, "the requeued job succeeding")
    assert folders(lab.root) == [folder]  # the same folder, no new one
    meta = metadata_of(folder)
    assert meta["restarts"] == 1 and meta["slurm"]["restart_count"] == "1"
    [change] = meta["restart_changes"]
    assert change["key"] == "stamp" and change["recorded"] == recorded
    assert change["now"] != recorded and change["restart"] == 1
    # the run keeps the config it was recorded with, and says what changed
    assert json.loads((folder / "config.json").read_text())["stamp"] == recorded
    stdout = (folder / "stdout").read_text()
    assert "===== meticulous-hydra: restart 1" in stdout and "stamp: recorded" in stdout
    assert stdout.count("task x=1") == 2
    [row] = table(lab.root)
    assert row["status"] == "SUCCESS" and row["restarts"] == "1"
    assert finish(proc) == 0


def test_preempted_job_is_requeued_and_resumes(lab: Lab) -> None:
    proc = lab.sweep(
        "+x=1", f"+hold={HOLD}", "hydra.launcher.partition=low", "hydra.launcher.gres=token:1"
    )
    folder = one_folder(lab)
    job = slurm_job(folder)
    # a job of the high partition needs the one token: SLURM preempts the holder
    high = slurm(
        "sbatch", "--parsable", "-J", lab.name, "-p", "high", "--gres=token:1",
        "-o", "/dev/null", "--wrap", "true", cwd=lab.repo,
    ).strip()  # fmt: skip
    wait_until(lambda: status(folder) == "REQUEUED", 60, "the preempted run REQUEUED")
    assert f"SLURM requeued job {job}" in detail(folder)
    [row] = table(lab.root)
    assert row["status"] == "REQUEUED"
    assert "nothing to run again" in rerun_offers(lab.root)
    wait_until(lambda: job_state(high)[0] == "", 120, "the high-priority job done")
    start_now(job)
    wait_until(lambda: status(folder) == "SUCCESS", 120, "the preempted job succeeding")
    assert metadata_of(folder)["restarts"] == 1 and folders(lab.root) == [folder]
    assert finish(proc) == 0


TIMEOUT_2MIN = (
    # SLURM sends submitit's USR2 "up to 60 s earlier than specified" (its
    # checks run every 30 s): 120 - 40 - 60 = 20 s into the job at the
    # earliest, time for submitit to have its handler in place
    "hydra.launcher.timeout_min=2",
    "hydra.launcher.signal_delay_s=40",
)
# ... and at the latest at the limit itself (seen on a loaded machine: 118 s
# after the job started to record): what a test waits for the end of time
LIMIT_REACHED = 2 * 60 + 60


def test_timeout_requeued_by_submitit(lab: Lab) -> None:
    """Point 2: a timeout with ``max_num_timeout=1`` is REQUEUED, not ERROR exit code -1."""
    proc = lab.sweep("+x=1", f"+hold={HOLD}", *TIMEOUT_2MIN, "hydra.launcher.max_num_timeout=1")
    folder = one_folder(lab)
    job = slurm_job(folder)
    wait_until(lambda: status(folder) == "REQUEUED", LIMIT_REACHED, "the timed-out run REQUEUED")
    told = detail(folder)
    assert told == (
        f"SIGUSR2: SLURM job {job} reached its time limit (2 min); submitit requeued it"
    )
    [row] = table(lab.root)
    assert row["status"] == "REQUEUED" and row["status_detail"] == told
    assert "nothing to run again" in rerun_offers(lab.root)
    start_now(job)
    wait_until(lambda: status(folder) == "SUCCESS", 120, "the requeued job succeeding")
    assert metadata_of(folder)["restarts"] == 1
    assert table(lab.root)[0]["restarts"] == "1"
    assert finish(proc) == 0


def test_timeout_not_requeued_is_a_timeout(lab: Lab) -> None:
    """Point 4: a time limit, with the limit, not an ERROR with submitit's traceback."""
    proc = lab.sweep("+x=1", f"+hold={HOLD}", *TIMEOUT_2MIN)  # max_num_timeout=0
    folder = one_folder(lab)
    job = slurm_job(folder)
    wait_until(lambda: status(folder) == "TIMEOUT", LIMIT_REACHED, "the run TIMEOUT")
    told = detail(folder)
    assert told.startswith(f"SIGUSR2: SLURM job {job} reached its time limit (2 min); not requeued")
    assert "Traceback" not in told
    [row] = table(lab.root)
    assert row["status"] == "TIMEOUT" and row["status_detail"] == told
    offered = rerun_offers(lab.root)  # a job out of time may be run again (with more)
    assert f"run {folder.name} (TIMEOUT)" in offered
    finish(proc)
    assert status_of(folder)[0] == "TIMEOUT"  # the job's end kept it


def test_two_tasks_per_node_rank_0_records_alone(lab: Lab) -> None:
    proc = lab.sweep("+x=1", "hydra.launcher.tasks_per_node=2")
    assert finish(proc) == 0
    [folder] = folders(lab.root)
    assert status_of(folder)[0] == "SUCCESS"
    meta = metadata_of(folder)
    assert meta["slurm"]["procid"] == "0" and meta["slurm"]["ntasks"] == "2"
    out = (folder / "stdout").read_text()
    assert "task x=1 rank=0" in out and "rank=1" not in out


def test_scancel_of_a_submitit_job_ends_it_interrupted(lab: Lab) -> None:
    """Point 3: submitit handles SIGTERM itself; the run still ends INTERRUPTED."""
    proc = lab.sweep("+x=1", f"+hold={HOLD}")
    folder = one_folder(lab)
    job = slurm_job(folder)
    slurm("scancel", job)
    wait_until(lambda: job_state(job)[0] == "", 60, "the cancelled job gone")
    assert status_of(folder)[0] == "INTERRUPTED"
    assert detail(folder) == f"SIGTERM: SLURM job {job} cancelled (scancel)"
    assert ExperimentReader(folder).status == "INTERRUPTED"  # the same from any host
    [row] = table(lab.root)
    assert row["status"] == "INTERRUPTED"
    assert f"run {folder.name} (INTERRUPTED)" in rerun_offers(lab.root)
    assert finish(proc) != 0  # the launcher reports the cancelled job


# -- an argparse script under sbatch ---------------------------------------------------------


def argparse_run(lab: Lab, job: str) -> Path:
    """The folder of the sbatch job ``job``, once it records."""

    def found() -> Path | None:
        for folder in folders(lab.root):
            if status(folder) and metadata_of(folder)["slurm"]["job_id"] == job:
                return folder
        return None

    wait_until(found, 120, f"job {job} recording")
    folder = found()
    assert folder is not None
    return folder


def test_sbatch_success_and_failure(lab: Lab) -> None:
    ok = lab.sbatch("--lr", "0.3")
    bad = lab.sbatch("--lr", "0.4", "--fail")
    good, failed = argparse_run(lab, ok), argparse_run(lab, bad)
    wait_until(lambda: status(good) == "SUCCESS", 60, "the good run succeeding")
    wait_until(lambda: status(failed) == "ERROR", 60, "the bad run failing")
    assert json.loads((good / "summary.json").read_text()) == {"restart": 0}
    assert "RuntimeError: loss is nan" in detail(failed)
    assert metadata_of(good)["slurm"]["job_id"] == ok
    rows = {r["lr"]: r for r in table(lab.root)}
    assert rows["0.3"]["status"] == "SUCCESS" and rows["0.4"]["status"] == "ERROR"
    assert rows["0.4"]["status_detail"] == "RuntimeError: loss is nan"


def test_sbatch_scancel(lab: Lab) -> None:
    job = lab.sbatch("--hold", str(HOLD))
    folder = argparse_run(lab, job)
    slurm("scancel", job)
    wait_until(lambda: status(folder) == "INTERRUPTED", 60, "the run INTERRUPTED")
    assert detail(folder) == f"SIGTERM: SLURM job {job} cancelled (scancel)"
    assert table(lab.root)[0]["status"] == "INTERRUPTED"


def test_sbatch_time_limit(lab: Lab) -> None:
    job = lab.sbatch("--hold", str(HOLD), options=("--time=1",))
    folder = argparse_run(lab, job)
    wait_until(lambda: status(folder) == "TIMEOUT", 150, "the run TIMEOUT")
    told = f"SIGTERM: SLURM job {job} reached its time limit (00:01:00)"
    assert detail(folder) == told
    [row] = table(lab.root)
    assert row["status"] == "TIMEOUT" and row["status_detail"] == told


def test_sbatch_requeue_with_an_experiment_id(lab: Lab) -> None:
    job = lab.sbatch("--experiment-id", "resnet-a", "--hold", str(HOLD))
    folder = argparse_run(lab, job)
    slurm("scontrol", "requeue", job)
    wait_until(lambda: status(folder) == "REQUEUED", 60, "the run REQUEUED")
    assert table(lab.root)[0]["status"] == "REQUEUED"
    start_now(job)
    wait_until(lambda: status(folder) == "SUCCESS", 120, "the requeued run succeeding")
    assert folders(lab.root) == [folder] and folder.name == "resnet-a"
    assert metadata_of(folder)["restarts"] == 1
    assert json.loads((folder / "summary.json").read_text())["restart"] == 1
    [row] = table(lab.root)
    assert row["status"] == "SUCCESS" and row["restarts"] == "1"


def test_sbatch_requeue_without_an_id_records_a_new_run(lab: Lab) -> None:
    """Without an id the requeued job can't find its folder: the first run is
    INTERRUPTED (not REQUEUED, which would wait forever) and says so."""
    job = lab.sbatch("--hold", str(HOLD))
    first = argparse_run(lab, job)
    slurm("scontrol", "requeue", job)
    wait_until(lambda: status(first) == "INTERRUPTED", 60, "the first run INTERRUPTED")
    assert detail(first).startswith(f"SIGTERM: SLURM requeued job {job} (restart 1)")
    assert "its next start records a new run" in detail(first)
    start_now(job)
    wait_until(
        lambda: [status(f) for f in folders(lab.root)] == ["INTERRUPTED", "SUCCESS"],
        120,
        "the requeued job recorded anew",
        seen=lambda: (
            [(f.name, status(f), detail(f)) for f in folders(lab.root)],
            (lab.repo / "logs" / f"{job}.out").read_text(errors="replace")[-3000:],
        ),
    )


def test_sbatch_requeue_refused_is_written_into_the_run(lab: Lab) -> None:
    """Point 1: a resume that is refused (here the requeued batch script passes
    another seed) is the run's status, not only a line in a SLURM log."""
    script = lab.repo / "job.sh"
    script.write_text(
        f"#!/bin/bash\nexec {sys.executable} train.py --experiment-id fixed "
        f"--seed ${{SLURM_RESTART_COUNT:-0}} --hold {HOLD}\n"
    )
    git(lab.repo, "add", "job.sh")
    git(lab.repo, "commit", "-q", "-m", "job script")
    job = slurm(
        "sbatch", "--parsable", "-J", lab.name, "-o", "logs/%j.out", "job.sh", cwd=lab.repo
    ).strip()
    folder = argparse_run(lab, job)
    slurm("scontrol", "requeue", job)
    wait_until(lambda: status(folder) == "REQUEUED", 60, "the run REQUEUED")
    start_now(job)
    wait_until(lambda: status(folder) == "ERROR", 120, "the refused resume recorded")
    told = detail(folder)
    assert told.startswith("cannot resume experiment fixed") and "seed (recorded 0, now 1)" in told
    assert told in (folder / "stderr").read_text()
    [row] = table(lab.root)
    assert row["status"] == "ERROR" and row["status_detail"].startswith("cannot resume")
