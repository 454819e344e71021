"""Reproducing runs from their folders (`meticulous reproduce`) and re-running
a sweep's failed jobs (`meticulous rerun --failed`): real git repositories,
real Hydra/argparse/plain programs in subprocesses, the real CLI in-process."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest
from helpers import PROJECT, git, make_repo, metadata_of, run_python, write_script

from meticulous_hydra import Experiment, cli
from meticulous_hydra.cli import summary as summary_cli
from meticulous_hydra.reader.attempts import latest_attempts
from meticulous_hydra.replay.reproduce import _hydra_job_argv, config_differences, load_run

ON = "hydra/callbacks=meticulous"


def read(folder: Path, name: str) -> dict:
    return json.loads((folder / name).read_text())


def runs(root: Path) -> list[Path]:
    return sorted((p for p in root.iterdir() if p.name.isdigit()), key=lambda p: int(p.name))


def reproducing(root: Path, run_id: str) -> list[Path]:
    found = (f for f in root.iterdir() if (f / "metadata.json").exists())
    return [f for f in found if metadata_of(f).get("reproduces") == run_id]


def commit_all(repo: Path, message: str) -> None:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)


def user_state(repo: Path) -> tuple[str, str, str, str]:
    """What reproducing must never change: status, index, branch and worktrees."""
    return (
        git(repo, "status", "--porcelain"),
        git(repo, "diff", "--cached"),
        git(repo, "rev-parse", "--abbrev-ref", "HEAD"),
        git(repo, "worktree", "list", "--porcelain"),
    )


def assert_same_results(old: Path, new: Path) -> None:
    assert metadata_of(new)["description"].startswith(f"reproduces run {old.name}")
    assert config_differences(load_run(old), load_run(new)) == []
    assert read(new, "summary.json") == read(old, "summary.json")
    assert (new / "STATUS").read_text().startswith("SUCCESS")


# -- what is recorded ------------------------------------------------------------------


def test_packages_python_and_config_hash_are_recorded(repo: Path) -> None:
    config = {"lr": 0.1, "model": {"layers": [64, 64], "name": "mlp"}}
    with Experiment(config, root=repo / "exp", code_dir=repo, capture_output=False) as exp:
        pass
    lines = (exp.dir / "packages.txt").read_text().splitlines()
    assert lines == sorted(lines) and all("==" in line for line in lines)
    names = dict(line.split("==") for line in lines)
    assert names["hydra-core"] and names["pyyaml"] and names["meticulous-hydra"] == "0.1.0"
    m = metadata_of(exp.dir)
    assert m["python"] == {
        "version": ".".join(map(str, sys.version_info[:3])),
        "executable": sys.executable,
    }
    canonical = json.dumps(config, sort_keys=True, separators=(",", ":")).encode()
    assert m["config_hash"] == "sha256:" + hashlib.sha256(canonical).hexdigest()
    # the same config, keys in another order: the same hash
    same = {"model": {"name": "mlp", "layers": [64, 64]}, "lr": 0.1}
    with Experiment(same, root=repo / "exp", code_dir=repo, capture_output=False) as again:
        pass
    assert metadata_of(again.dir)["config_hash"] == m["config_hash"]
    assert "reproduces" not in m and "rerun_of" not in m


def test_a_sweep_reads_the_packages_once_and_every_job_writes_them(app_repo: Path) -> None:
    run_python(
        ["examples/train.py", "-m", ON, "hydra/launcher=joblib", "seed=1,2"], app_repo, check=True
    )
    first, second = runs(app_repo / "experiments")
    text = (first / "packages.txt").read_text()
    assert "hydra-joblib-launcher==" in text
    assert (second / "packages.txt").read_text() == text


# -- the command of a job ---------------------------------------------------------------------


def test_a_sweep_job_gets_its_own_overrides_not_the_sweep() -> None:
    argv = [
        "examples/train.py",
        "-m",
        "--config-name",
        "config",
        ON,
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
        "hydra.sweep.dir=/tmp/x",
        "hydra.callbacks.meticulous.allow_dirty=true",
        "hydra.callbacks.meticulous.experiment_id=7",
        "model=mlp,resnet",
        "optimizer.lr=0.01,0.1",
    ]
    assert _hydra_job_argv(["-m", "app.train", "-m", "seed=1,2"], ["seed=2"]) == [
        "-m",
        "app.train",
        "seed=2",
    ]
    assert _hydra_job_argv(argv, ["model=resnet", "optimizer.lr=0.1"]) == [
        "examples/train.py",
        "--config-name",
        "config",
        ON,
        "hydra.callbacks.meticulous.allow_dirty=true",
        "model=resnet",
        "optimizer.lr=0.1",
    ]


def test_the_launching_command_is_preferred_to_the_jobs_own(tmp_path: Path) -> None:
    from meticulous_hydra.replay.reproduce import Run, job_argv

    worker = {"argv": ["default_worker.py", "--node-ip-address=1.2.3.4"], "cwd": "/tmp/ray"}
    hydra = {"overrides": ["seed=2"]}
    launched = {"argv": ["train.py", "-m", ON, "seed=1,2"], "cwd": str(tmp_path)}
    run = Run(tmp_path / "7", {**worker, "adapter": "hydra", "hydra": hydra}, {}, {}, "ERROR")
    assert job_argv(run) == ["default_worker.py", "--node-ip-address=1.2.3.4", "seed=2"]
    run.meta["launch"] = launched
    assert job_argv(run) == ["train.py", ON, "seed=2"]
    assert run.launch[1] == str(tmp_path)


# -- reproducing each kind of run ---------------------------------------------------------------


def test_hydra_run_with_a_dirty_diff_and_an_untracked_module_three_commits_on(
    app_repo: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    train = app_repo / "examples" / "train.py"
    # the run's code: a change not committed and a module never added
    (app_repo / "examples" / "helper.py").write_text("BONUS = 0.25\n")
    train.write_text(
        train.read_text()
        .replace("import meticulous_hydra\n", "import meticulous_hydra\nfrom helper import BONUS\n")
        .replace('"accuracy": max(0.0, 1.0 - loss / 3)}', '"accuracy": 0.5, "bonus": BONUS}')
    )
    run_python(
        [
            "examples/train.py",
            ON,
            "hydra.callbacks.meticulous.allow_dirty=true",
            "optimizer=adam",
            "seed=4",
        ],
        app_repo,
        check=True,
    )
    root = app_repo / "experiments"
    (old,) = runs(root)
    assert (old / "git.diff").exists()
    assert (old / "untracked" / "examples" / "helper.py").read_text() == "BONUS = 0.25\n"
    # the repository moves on: the change dropped, three commits that change the results
    git(app_repo, "checkout", "examples/train.py")
    (app_repo / "examples" / "helper.py").unlink()
    for n in range(3):
        text = train.read_text().replace("1.0 - loss / 3", "1.0 - loss / 4")
        train.write_text(text + f"# change {n}\n")
        commit_all(app_repo, f"change {n}")
    # and the user has work in progress, staged and not
    (app_repo / "README").write_text("work in progress\n")
    (app_repo / "conf" / "config.yaml").write_text(
        (app_repo / "conf" / "config.yaml").read_text() + "# staged\n"
    )
    git(app_repo, "add", "conf/config.yaml")
    before = user_state(app_repo)

    code = cli.main(["reproduce", str(old), "--run"])
    out = capfd.readouterr().out
    assert code == 0, out
    assert "HEAD is 3 commits ahead of it" in out
    assert "recorded diff: 1 file(s): examples/train.py" in out
    assert "untracked files saved: examples/helper.py" in out
    assert "packages: " in out and "no difference" in out
    assert "config: identical" in out
    (new,) = reproducing(root, "1")
    assert_same_results(old, new)
    assert read(new, "summary.json")["bonus"] == 0.25
    assert metadata_of(new)["overrides"] == ["optimizer=adam", "seed=4"]
    assert user_state(app_repo) == before


def test_a_joblib_sweep_job_is_reproduced_alone(
    app_repo: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    run_python(
        ["examples/train.py", "-m", ON, "hydra/launcher=joblib", "seed=1,2", "optimizer=sgd,adam"],
        app_repo,
        check=True,
    )
    root = app_repo / "experiments"
    job = next(f for f in runs(root) if metadata_of(f)["overrides"] == ["seed=2", "optimizer=adam"])
    capfd.readouterr()
    assert cli.main(["reproduce", job.name, "--root", str(root), "--run"]) == 0
    out = capfd.readouterr().out
    assert f"of sweep {metadata_of(job)['sweep']['id']}" in out
    assert "examples/train.py hydra/callbacks=meticulous seed=2 optimizer=adam" in out
    (new,) = reproducing(root, job.name)
    assert metadata_of(new)["sweep"] is None and metadata_of(new)["hydra"]["mode"] == "RUN"
    assert metadata_of(new)["overrides"] == ["seed=2", "optimizer=adam"]
    assert_same_results(job, new)


def test_argparse_run_on_a_deleted_branch_by_the_printed_commands(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    repo = make_repo(tmp_path / "repo")
    shutil.copy(PROJECT / "examples" / "train_argparse.py", repo / "train.py")
    commit_all(repo, "train")
    git(repo, "checkout", "-q", "-b", "feature")
    (repo / "train.py").write_text((repo / "train.py").read_text().replace("2.0", "3.0"))
    commit_all(repo, "start from 3")
    root = repo / "experiments"
    run_python(
        ["train.py", "data/", "--lr", "0.05", "--layers", "128", "64", "--experiment-id", "mine"],
        repo,
        check=True,
    )
    git(repo, "checkout", "-q", "main")
    git(repo, "branch", "-q", "-D", "feature")
    old = root / "mine"

    assert cli.main(["reproduce", "mine", "--root", str(root)]) == 0
    out = capfd.readouterr().out
    assert "branch feature no longer exists" in out
    lines = out.split("to run it again:\n", 1)[1].splitlines()
    assert not reproducing(root, "mine")
    # the printed commands are the exact shell commands
    subprocess.run(["bash", "-ec", "\n".join(lines)], check=True, capture_output=True)
    (new,) = reproducing(root, "mine")
    assert new.name != "mine" and new.name.isdigit()  # --experiment-id is not repeated
    assert read(new, "config.json") == read(old, "config.json")
    assert_same_results(old, new)
    assert git(repo, "worktree", "list").count("\n") == 1


def test_plain_experiment_script_from_its_directory(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    repo = make_repo(tmp_path / "repo")
    (repo / "scripts").mkdir()
    write_script(
        repo / "scripts",
        "plain.py",
        """
        import sys
        from meticulous_hydra import Experiment

        seed = int(sys.argv[1])
        with Experiment({"seed": seed, "lr": 0.1}, experiment_id="first") as exp:
            exp.summary({"loss": round(1 / (seed + 1), 6), "seed_twice": 2 * seed})
        """,
    )
    commit_all(repo, "plain")
    run_python(["plain.py", "5"], repo / "scripts", check=True)
    root = repo / "scripts" / "experiments"
    (repo / "scripts" / "plain.py").write_text("raise SystemExit('moved on')\n")
    commit_all(repo, "moved on")

    first = root / "first"
    recorded = {p.name: p.read_bytes() for p in first.iterdir()}
    assert cli.main(["reproduce", str(first), "--run", "--keep"]) == 0
    out = capfd.readouterr().out
    assert "HEAD is 1 commit ahead of it" in out
    # a new numbered folder: the experiment_id in the program is not resumed
    (new,) = reproducing(root, "first")
    assert new.name == "1" and {p.name: p.read_bytes() for p in first.iterdir()} == recorded
    assert read(new, "config.json") == {"seed": 5, "lr": 0.1}
    assert_same_results(first, new)
    kept = Path(out.split("kept the worktree ", 1)[1].split()[0])
    assert "Experiment({" in (kept / "scripts" / "plain.py").read_text()
    assert str(kept) in git(repo, "worktree", "list")
    git(repo, "worktree", "remove", "--force", str(kept))


def test_time_and_environment_interpolations_differ_without_failing(
    app_repo: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    stamp = "+stamp=${oc.env:STAMP}"
    run_python(["examples/train.py", ON, stamp], app_repo, env={"STAMP": "a"}, check=True)
    monkeypatch.setenv("STAMP", "b")
    capfd.readouterr()
    assert cli.main(["reproduce", "1", "--root", str(app_repo / "experiments"), "--run"]) == 0
    out = capfd.readouterr().out
    assert "config: 1 difference(s)\n  stamp: 'a' -> 'b' (from ${oc.env:STAMP}: expected)\n" in out


def test_any_other_config_difference_fails_the_comparison(
    repo: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    write_script(
        repo,
        "env.py",
        """
        import os
        from meticulous_hydra import Experiment

        with Experiment({"stamp": os.environ["STAMP"]}) as exp:
            exp.summary({"ok": 1})
        """,
        commit=True,
    )
    run_python(["env.py"], repo, env={"STAMP": "a"}, check=True)
    monkeypatch.setenv("STAMP", "b")
    assert cli.main(["reproduce", "1", "--root", str(repo / "experiments"), "--run"]) == 1
    out = capfd.readouterr().out
    assert "config: 1 difference(s)\n  stamp: 'a' -> 'b'\n" in out
    (new,) = reproducing(repo / "experiments", "1")
    assert (new / "STATUS").read_text().startswith("SUCCESS")


# -- comparing -------------------------------------------------------------------------------------


def test_time_and_environment_values_are_listed_differences(repo: Path) -> None:
    def record(stamp: str) -> Path:
        with Experiment(
            {"stamp": stamp, "lr": 0.1}, root=repo / "exp", code_dir=repo, capture_output=False
        ) as exp:
            pass
        return exp.dir

    a, b = record("12-00-01"), record("12-00-02")
    assert config_differences(load_run(a), load_run(b)) == [("stamp", "12-00-01", "12-00-02")]


def test_a_commit_the_repository_lacks_is_one_line(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (repo / "x.py").write_text("x = 1\n")
    commit_all(repo, "to be dropped")
    with Experiment({}, root=repo / "exp", code_dir=repo, capture_output=False) as exp:
        pass
    sha = metadata_of(exp.dir)["git"]["sha"]
    # history rewritten: the commit is gone from the repository
    git(repo, "reset", "-q", "--hard", "HEAD~1")
    git(repo, "reflog", "expire", "--expire=now", "--all")
    git(repo, "gc", "-q", "--prune=now")
    capsys.readouterr()  # the recording line
    assert cli.main(["reproduce", str(exp.dir)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and sha in err and "git fetch" in err


def test_a_run_outside_git_cannot_be_rebuilt(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    with Experiment({}, root=plain / "exp", code_dir=plain, capture_output=False) as exp:
        pass
    capsys.readouterr()  # the recording line
    assert cli.main(["reproduce", str(exp.dir)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "outside a git repository" in err
    assert cli.main(["rerun", "--failed", "--root", str(plain / "exp")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no sweep recorded" in err


def test_bad_run_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["reproduce", "3", "--root", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no run '3' under " + str(tmp_path) in err


# -- package drift -------------------------------------------------------------------------------------


def _wheel(folder: Path, name: str, version: str) -> Path:
    """A minimal pure-Python wheel, built by hand: no network, no build backend."""
    path = folder / f"{name}-{version}-py3-none-any.whl"
    info = f"{name}-{version}.dist-info"
    files = {
        f"{name}/__init__.py": f"VERSION = {version!r}\n",
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    with zipfile.ZipFile(path, "w") as z:
        for arc, text in files.items():
            z.writestr(arc, text)
        z.writestr(f"{info}/RECORD", "".join(f"{a},,\n" for a in files) + f"{info}/RECORD,,\n")
    return path


def _venv(path: Path) -> Path:
    """A venv that sees this environment's packages (meticulous-hydra, Hydra)
    underneath its own site-packages, where the test installs and upgrades."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True)
    python = path / "bin" / "python"
    own = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    parent = sysconfig.get_path("purelib")
    # an "import" line of a .pth file runs: addsitedir also reads the parent's .pth files
    Path(own, "parent.pth").write_text(f"import site; site.addsitedir({parent!r})\n")
    return python


def _pip_install(python: Path, wheel: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "-q",
            "--no-index",
            "--no-deps",
            "--disable-pip-version-check",
            str(wheel),
        ],
        check=True,
        capture_output=True,
    )


def test_package_drift_is_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo = make_repo(tmp_path / "repo")
    write_script(
        repo,
        "uses.py",
        """
        import tinypkg
        from meticulous_hydra import Experiment

        with Experiment({"v": tinypkg.VERSION}) as exp:
            pass
        """,
        commit=True,
    )
    python, wheels = _venv(tmp_path / "venv"), tmp_path / "wheels"
    wheels.mkdir()
    _pip_install(python, _wheel(wheels, "tinypkg", "1.0"))
    subprocess.run([python, "uses.py"], cwd=repo, check=True, capture_output=True)
    run = repo / "experiments" / "1"
    assert "tinypkg==1.0" in (run / "packages.txt").read_text().splitlines()
    assert metadata_of(run)["python"]["executable"] == str(python)
    # after the run: tinypkg upgraded, another package installed
    _pip_install(python, _wheel(wheels, "tinypkg", "2.0"))
    _pip_install(python, _wheel(wheels, "tiny_extra", "0.3"))

    assert cli.main(["reproduce", str(run)]) == 0
    out = capsys.readouterr().out
    assert f"now {metadata_of(run)['python']['version']} ({python})" in out
    assert "  changed: tinypkg 1.0 -> 2.0" in out
    assert "  added: tiny-extra==0.3" in out
    assert "2 difference(s)" in out
    assert f"{python} uses.py" in out  # run again by the interpreter that ran it


# -- re-running failed sweep jobs ---------------------------------------------------------------


def test_rerun_failed_jobs_completes_the_sweep(
    app_repo: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    proc = run_python(
        ["examples/train.py", "-m", ON, "hydra/launcher=joblib", "optimizer.lr=0.01,1.0,2.0"],
        app_repo,
    )
    assert proc.returncode == 1  # two jobs diverge
    root = app_repo / "experiments"
    first = {metadata_of(f)["sweep"]["job_num"]: f for f in runs(root)}
    sweep = metadata_of(first[0])["sweep"]["id"]
    config = app_repo / "conf" / "config.yaml"
    config.write_text(config.read_text().replace("max_stable_lr: 0.5", "max_stable_lr: 5"))
    commit_all(app_repo, "the fix")
    capfd.readouterr()

    assert cli.main(["rerun", "--failed", "--root", str(root), "--dry-run"]) == 0
    out = capfd.readouterr().out
    assert len(runs(root)) == 3
    assert "optimizer.lr=1.0" in out and "optimizer.lr=2.0" in out and "lr=0.01" not in out
    assert "-m" not in out.split() and "hydra/launcher=joblib" not in out

    assert cli.main(["rerun", "--failed", "--sweep", sweep, "--root", str(root)]) == 0
    capfd.readouterr()
    again = [f for f in runs(root) if f not in first.values()]
    assert len(again) == 2
    for folder in again:
        m = metadata_of(folder)
        job = m["sweep"]["job_num"]
        assert m["sweep"] == {**metadata_of(first[job])["sweep"], "job_num": job}
        assert m["rerun_of"] == first[job].name and job in (1, 2)
        assert (folder / "STATUS").read_text().startswith("SUCCESS")
    # nothing left to re-run
    assert cli.main(["rerun", "--failed", "--root", str(root)]) == 0
    assert "nothing to run again" in capfd.readouterr().out

    def table(*args: str) -> list[dict]:
        assert summary_cli.main([str(root), "--sweep", sweep, "--format", "json", *args]) == 0
        return json.loads(capfd.readouterr().out)

    rows = table("--columns", "status", "attempts", "sweep.job_num")
    assert sorted((r["sweep.job_num"], r["status"], r["attempts"]) for r in rows) == [
        (0, "SUCCESS", 1),
        (1, "SUCCESS", 2),
        (2, "SUCCESS", 2),
    ]
    assert len(table("--all-attempts", "--columns", "status")) == 5
    grouped = table("--group-by", "optimizer.lr")
    assert [(g["n"], g["failed"]) for g in grouped] == [(1, 0)] * 3
    assert summary_cli.main([str(root), "--sweep", sweep]) == 0
    assert "attempts" in capfd.readouterr().out


def test_rerun_leaves_requeued_jobs_to_slurm(tmp_path: Path) -> None:
    """Issue 22 #2: a job SLURM requeued runs again by itself; one out of
    time (TIMEOUT) may be run again."""
    from helpers import record

    from meticulous_hydra.replay.rerun import latest_of

    root = tmp_path / "experiments"
    for n, status in enumerate(["SUCCESS", "ERROR", "REQUEUED", "TIMEOUT"]):
        sweep = {"id": "s1", "dir": str(tmp_path), "job_num": n}
        record(root, {"x": n}, status=status, experiment_id=f"j{n}", metadata={"sweep": sweep})
    failed, requeued = latest_of([root / f"j{n}" for n in range(4)], failed=True)
    assert [r.id for r in failed] == ["j1", "j3"] and [r.id for r in requeued] == ["j2"]
    # named, not --failed: a requeued job is left alone all the same
    chosen, requeued = latest_of([root / "j0", root / "j2"])
    assert [r.id for r in chosen] == ["j0"] and [r.id for r in requeued] == ["j2"]


def test_latest_attempts_keeps_the_last_start_of_each_job() -> None:
    import pandas as pd

    frame = pd.DataFrame(
        {
            "sweep.id": ["s", "s", "s", None, "s"],
            "sweep.job_num": [0, 1, 1, None, 1],
            "start_time": pd.to_datetime(
                ["2026-01-01", "2026-01-02", "2026-01-03"] * 1 + ["2026-01-04", "2026-01-05"]
            ),
            "status": ["SUCCESS", "ERROR", "ERROR", "SUCCESS", "SUCCESS"],
        },
        index=pd.Index(["1", "2", "3", "4", "5"], name="id"),
    )
    latest = latest_attempts(frame)
    assert list(latest.index) == ["1", "4", "5"]
    assert list(latest["attempts"]) == [1, 1, 3]
    assert len(latest_attempts(frame, all_attempts=True)) == 5


def test_copies_of_a_root_are_not_attempts_of_each_other() -> None:
    import pandas as pd

    one = {"sweep.id": "s", "sweep.job_num": 0, "start_time": pd.Timestamp("2026-01-01")}
    frame = pd.DataFrame(
        [one, one, {**one, "start_time": pd.Timestamp("2026-01-02")}],
        index=pd.MultiIndex.from_tuples([("a", "1"), ("b", "1"), ("b", "2")], names=["root", "id"]),
    )
    latest = latest_attempts(frame)
    assert list(latest.index) == [("a", "1"), ("b", "2")]
    assert list(latest["attempts"]) == [1, 2]


def test_one_run_of_a_loop_is_compared_with_its_own_repetition(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    # docs/python.md's "Without either" loop: reproducing run 2 runs the script,
    # which records every seed again; run 2 is compared with seed 1's new run
    repo = make_repo(tmp_path / "repo")
    write_script(
        repo,
        "loop.py",
        """
        from meticulous_hydra import Experiment

        for seed in range(3):
            with Experiment({"seed": seed, "lr": 0.1}) as exp:
                exp.summary({"loss": round(1 / (seed + 1), 6)})
        """,
        commit=True,
    )
    run_python(["loop.py"], repo, check=True)
    root = repo / "experiments"
    assert cli.main(["reproduce", str(root / "2"), "--run"]) == 0
    out = capfd.readouterr().out
    assert "run 5 reproduces run 2: SUCCESS" in out and "config: identical" in out
    assert "recorded 3 runs" in out and "4, 6" in out
    assert_same_results(root / "2", root / "5")
