"""Conformance: real app shapes, run end to end as their users run them.

Each shape runs once (a module-scoped fixture: one subprocess, or one Ray
start) on a copy of a small app from ``tests/apps/`` committed to a fresh git
repository; the tests below it check the folder, STATUS, the resolved config,
the git state, the launch command and the output.

A check that fails because of a bug listed in issue 12 stays as it should be
and is marked ``xfail(strict=True)`` with the bug's number: it flips to a
failure (XPASS) when the fix lands, and the mark is then removed.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from helpers import git, make_repo, metadata_of, run_python, status_of

APPS = Path(__file__).parent / "apps"
ON = "hydra/callbacks=meticulous"
# version_base="1.1" makes Hydra warn twice (1.4 migration, chdir default),
# fatal under -Werror; a callback's swallowed exception stays fatal.
TOLERATE_HYDRA_WARNINGS = ["-W", "ignore::UserWarning", "-W", "error:Callback"]


def xfail(bug: int, why: str) -> pytest.MarkDecorator:
    return pytest.mark.xfail(strict=True, reason=f"issue 12 #{bug}: {why}")


@dataclass
class Run:
    """One launch of an app: the repo, where it was started, what it printed."""

    repo: Path
    cwd: Path
    args: list[str]
    proc: subprocess.CompletedProcess[str]

    @property
    def root(self) -> Path:
        return self.cwd / "experiments"

    def folders(self) -> list[Path]:
        if not self.root.is_dir():
            return []
        return sorted(
            (p for p in self.root.iterdir() if p.name.isdigit()), key=lambda p: int(p.name)
        )

    def folder(self, n: int = 1) -> Path:
        return self.root / str(n)

    def head(self) -> str:
        return git(self.repo, "rev-parse", "HEAD").strip()


def copy_app(tmp: Path, app: str, *, version_base: str | None = None) -> Path:
    """A committed git repository holding a copy of ``tests/apps/<app>``."""
    dest = tmp / app
    shutil.copytree(APPS / app, dest, ignore=shutil.ignore_patterns("__pycache__"))
    if version_base is not None:
        script = dest / "train.py"
        script.write_text(
            script.read_text().replace('version_base="1.3"', f"version_base={version_base}")
        )
    return make_repo(dest)


def launch(repo: Path, args: list[str], *, cwd: Path | None = None, **kw) -> Run:
    cwd = cwd or repo
    cwd.mkdir(parents=True, exist_ok=True)
    flags = kw.pop("flags", [])
    return Run(repo, cwd, args, run_python([*flags, *args], cwd, timeout=300, **kw))


def config(folder: Path) -> dict:
    return yaml.safe_load((folder / "config.yaml").read_text())


def summary(folder: Path) -> dict:
    return json.loads((folder / "summary.json").read_text())


def launched(m: dict) -> dict:
    """The launching process's command line and directory (metadata.launch;
    metadata.argv/cwd before it existed)."""
    launch = m.get("launch") or m
    return {"argv": launch["argv"], "cwd": launch["cwd"]}


def assert_git_of(run: Run, folder: Path) -> None:
    recorded = metadata_of(folder)["git"]
    assert recorded is not None, "no git state recorded"
    assert recorded["sha"] == run.head() and recorded["dirty"] is False


def assert_succeeded(run: Run, n: int = 1) -> None:
    assert run.proc.returncode == 0, run.proc.stderr
    status, detail = status_of(run.folder(n))
    assert status == "SUCCESS", detail


# -- launched from another directory -------------------------------------------


@pytest.fixture(scope="module")
def from_elsewhere(tmp_path_factory: pytest.TempPathFactory) -> Run:
    tmp = tmp_path_factory.mktemp("elsewhere")
    repo = copy_app(tmp, "classifier")
    return launch(repo, [str(repo / "train.py"), ON, "optimizer.lr=0.01"], cwd=tmp / "scratch")


def test_from_another_directory_records_in_the_launch_dir(from_elsewhere: Run) -> None:
    run = from_elsewhere
    assert_succeeded(run)
    assert [p.name for p in run.folders()] == ["1"]
    folder = run.folder()
    assert config(folder)["checkpoint"] == str(folder / "model.ckpt")
    assert (folder / "model.ckpt").read_text() == "weights of small-lr0.01\n"
    assert summary(folder) == {"return_value": 1.0}
    assert "training small-lr0.01" in (folder / "stdout").read_text()
    assert "training small-lr0.01" in run.proc.stdout
    assert launched(metadata_of(folder)) == {"argv": run.args, "cwd": str(run.cwd)}
    # nothing written into the project (but Python's bytecode cache)
    status = git(run.repo, "status", "--porcelain", "--ignored").splitlines()
    assert [line for line in status if not line.endswith("__pycache__/")] == []


def test_from_another_directory_records_the_apps_git_state(from_elsewhere: Run) -> None:
    assert_git_of(from_elsewhere, from_elsewhere.folder())


def test_from_inside_another_dirty_repo(tmp_path: Path) -> None:
    app = copy_app(tmp_path, "classifier")
    other = make_repo(tmp_path / "notes", {"todo.txt": "read papers\n"})
    (other / "todo.txt").write_text("read more papers\n")  # not the app's business
    run = launch(app, [str(app / "train.py"), ON], cwd=other)
    assert_succeeded(run)
    assert_git_of(run, run.folder())


# -- a package run with python -m ----------------------------------------------------


@pytest.fixture(scope="module")
def as_module(tmp_path_factory: pytest.TempPathFactory) -> Run:
    repo = copy_app(tmp_path_factory.mktemp("module"), "packaged")
    return launch(repo, ["-m", "trainer.train", ON, "alpha=0.5"])


def test_module_run_is_recorded(as_module: Run) -> None:
    run = as_module
    assert_succeeded(run)
    folder = run.folder()
    assert config(folder) == {"loss": 0.8, "alpha": 0.5}
    assert summary(folder) == {"return_value": 0.4}
    assert (folder / "stdout").read_text() == "smoothed loss 0.4\n"
    assert metadata_of(folder)["overrides"] == ["alpha=0.5"]
    assert launched(metadata_of(folder))["cwd"] == str(run.repo)
    assert_git_of(run, folder)


def test_module_run_records_the_module_it_ran(as_module: Run) -> None:
    argv = launched(metadata_of(as_module.folder()))["argv"]
    assert "trainer.train" in argv and argv[argv.index("trainer.train") - 1] == "-m"


# -- hydra.job.chdir=True --------------------------------------------------------


@pytest.fixture(scope="module")
def chdir_run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    repo = copy_app(tmp_path_factory.mktemp("chdir"), "classifier")
    return launch(repo, ["train.py", ON, "hydra.job.chdir=True", "predictions=preds.csv"])


def test_chdir_run_writes_relative_paths_into_its_folder(chdir_run: Run) -> None:
    run = chdir_run
    assert_succeeded(run)
    folder = run.folder()
    assert (folder / "preds.csv").read_text() == "id,label\n0,3\n"
    assert (folder / "model.ckpt").exists()
    assert config(folder)["predictions"] == "preds.csv"
    assert summary(folder) == {"return_value": 0.0}
    assert "final loss 0.0000" in (folder / "stdout").read_text()
    assert launched(metadata_of(folder))["argv"] == run.args
    assert_git_of(run, folder)
    assert git(run.repo, "status", "--porcelain") == ""


def test_chdir_run_records_the_launch_directory(chdir_run: Run) -> None:
    assert launched(metadata_of(chdir_run.folder()))["cwd"] == str(chdir_run.repo)


# -- version_base "1.1" and None --------------------------------------------------


@pytest.fixture(scope="module", params=['"1.1"', "None"], ids=["1.1", "None"])
def versioned(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Run:
    repo = copy_app(tmp_path_factory.mktemp("version"), "classifier", version_base=request.param)
    flags = TOLERATE_HYDRA_WARNINGS if request.param == '"1.1"' else []
    return launch(repo, ["train.py", ON, "model=large", "optimizer.lr=0.01"], flags=flags)


def test_version_base_run_is_recorded(versioned: Run) -> None:
    run = versioned
    assert_succeeded(run)
    folder = run.folder()
    assert config(folder)["run_name"] == "large-lr0.01"
    assert config(folder)["checkpoint"] == str(folder / "model.ckpt")
    assert summary(folder) == {"return_value": 1.5}
    assert metadata_of(folder)["hydra"]["choices"]["model"] == "large"
    assert "training large-lr0.01" in (folder / "stdout").read_text()
    assert launched(metadata_of(folder))["argv"] == run.args
    assert_git_of(run, folder)


def test_version_base_run_records_the_launch_directory(versioned: Run) -> None:
    # also under "1.1", whose jobs change directory by default
    assert launched(metadata_of(versioned.folder()))["cwd"] == str(versioned.repo)


# -- hydra.run.dir=. in a monorepo ---------------------------------------------------


@pytest.fixture(scope="module")
def run_dir_dot(tmp_path_factory: pytest.TempPathFactory) -> tuple[Run, Run]:
    mono = copy_app(tmp_path_factory.mktemp("rundir"), "mono")
    app = mono / "apps" / "scorer"
    args = ["score.py", "hydra/callbacks=[timer,meticulous]", "hydra.run.dir=."]
    first = launch(mono, args, cwd=app)
    (mono / "apps" / "sibling.py").write_text("print('new')\n")  # a sibling's new source
    second = launch(mono, [*args, "batches=3"], cwd=app)
    return first, second


def test_run_dir_dot_leaves_the_project_alone(run_dir_dot: tuple[Run, Run]) -> None:
    first, _ = run_dir_dot
    mono = first.repo
    assert git(mono, "diff", "--stat") == ""  # the app's config.yaml not overwritten
    assert not (first.cwd / "STATUS").exists() and not (first.cwd / "metadata.json").exists()
    assert not (mono / "apps" / ".gitignore").exists()  # nothing written outside the root
    assert "?? apps/sibling.py" in git(mono, "status", "--porcelain")


def test_run_dir_dot_records_each_run_in_its_own_folder(run_dir_dot: tuple[Run, Run]) -> None:
    first, second = run_dir_dot
    assert_succeeded(first, 1)
    assert_succeeded(second, 2)
    assert summary(second.folder(2)) == {"f1": 0.53}
    assert "scoring baseline on valid" in (second.folder(2) / "stdout").read_text()
    assert launched(metadata_of(second.folder(2)))["argv"] == second.args
    assert metadata_of(second.folder(2))["hydra"]["output_dir"] == str(second.cwd)
    assert config(second.folder(2)) == {"model": "baseline", "split": "valid", "batches": 3}
    assert_git_of(second, second.folder(2))


# -- an app with its own callbacks ------------------------------------------------


@pytest.fixture
def scorer(tmp_path: Path) -> Path:
    return copy_app(tmp_path, "mono")


def test_own_callbacks_run_next_to_the_recorder(scorer: Path) -> None:
    app = scorer / "apps" / "scorer"
    run = launch(scorer, ["score.py", "hydra/callbacks=[timer,meticulous]", "batches=20"], cwd=app)
    assert_succeeded(run)
    assert "[timer] job started" in run.proc.stdout  # the app's callback ran
    folder = run.folder()
    assert summary(folder) == {"f1": 0.7}
    assert config(folder) == {"model": "baseline", "split": "valid", "batches": 20}
    assert metadata_of(folder)["overrides"] == ["batches=20"]
    assert (folder / "metrics.jsonl").read_text().count('"batches": 20') == 1
    assert "scoring baseline on valid" in (folder / "stdout").read_text()
    assert launched(metadata_of(folder)) == {"argv": run.args, "cwd": str(app)}
    assert_git_of(run, folder)


def test_recording_from_the_command_line_keeps_own_callbacks(scorer: Path) -> None:
    app = scorer / "apps" / "scorer"
    run = launch(scorer, ["score.py", "+meticulous=on"], cwd=app)
    assert_succeeded(run)
    assert "[timer] job started" in run.proc.stdout
    assert summary(run.folder()) == {"f1": 0.58}


# -- structured configs with ??? ------------------------------------------------------


@pytest.fixture(scope="module")
def structured(tmp_path_factory: pytest.TempPathFactory) -> Run:
    repo = copy_app(tmp_path_factory.mktemp("structured"), "classifier")
    return launch(
        repo,
        ["train.py", ON, "tracking.api_key=${oc.env:TRACKING_KEY}"],
        env={"TRACKING_KEY": "tok-4f9c2e"},
    )


@pytest.fixture(scope="module")
def required_values(tmp_path_factory: pytest.TempPathFactory) -> tuple[Run, Run]:
    repo = copy_app(tmp_path_factory.mktemp("required"), "classifier")
    return launch(repo, ["train.py", ON]), launch(repo, ["train.py", ON, "data.cache_dir=/scratch"])


def test_structured_config_keeps_missing_values(required_values: tuple[Run, Run]) -> None:
    left_out, given = required_values
    assert_succeeded(left_out, 1)
    folder = left_out.folder(1)
    assert config(folder)["data"] == {"root": "/datasets/digits", "cache_dir": "???"}
    assert sorted(metadata_of(folder)["missing"]) == ["data.cache_dir", "tracking.api_key"]
    assert "caching" not in (folder / "stdout").read_text()
    assert_git_of(left_out, folder)
    assert_succeeded(given, 2)
    folder = given.folder(2)
    assert config(folder)["data"]["cache_dir"] == "/scratch"
    assert "caching to /scratch" in (folder / "stdout").read_text()
    assert metadata_of(folder)["missing"] == ["tracking.api_key"]
    assert metadata_of(folder)["overrides"] == ["data.cache_dir=/scratch"]
    assert launched(metadata_of(folder)) == {"argv": given.args, "cwd": str(given.repo)}


def test_structured_config_missing_secret_stays_missing(required_values: tuple[Run, Run]) -> None:
    for run, n in zip(required_values, (1, 2), strict=True):
        assert config(run.folder(n))["tracking"]["api_key"] == "???"


def test_secret_from_the_environment_is_on_no_file(structured: Run) -> None:
    assert_succeeded(structured)
    folder = structured.folder()
    assert config(folder)["tracking"]["api_key"] == "<redacted>"
    for path in folder.rglob("*"):
        if path.is_file():
            assert b"tok-4f9c2e" not in path.read_bytes(), path


def test_secret_override_is_recorded_as_typed(structured: Run) -> None:
    m = metadata_of(structured.folder())
    assert m["overrides"] == ["tracking.api_key=${oc.env:TRACKING_KEY}"]
    assert launched(m)["argv"] == structured.args


# -- the Optuna sweeper -------------------------------------------------------------


@pytest.fixture(scope="module")
def optuna_sweep(tmp_path_factory: pytest.TempPathFactory) -> Run:
    repo = copy_app(tmp_path_factory.mktemp("optuna"), "classifier")
    args = [
        "train.py",
        "-m",
        ON,
        "hydra/sweeper=optuna",
        "hydra/sweeper/sampler=grid",
        # 3 of the 4 grid points, in random order: one at least raises (lr=5.0).
        # Not all 4: the sweeper crashes when the grid's last trial fails
        # (GridSampler calls study.stop() outside an objective).
        "hydra.sweeper.n_trials=3",
        "hydra.sweeper.max_failure_rate=1.0",
        "hydra.sweep.dir=multirun/study",
        "model=choice(small,large)",
        "optimizer.lr=choice(0.1,5.0)",
    ]
    # optuna 2.10 calls SQLAlchemy 1.x APIs: a DeprecationWarning (MovedIn20Warning)
    return launch(repo, args, flags=["-W", "ignore::DeprecationWarning"])


def optuna_trials(run: Run) -> dict[tuple[str, float], Path]:
    """The folders of the sweep's trials by (model, lr)."""
    trials = {}
    for folder in run.folders():
        cfg = config(folder)
        trials[cfg["model"]["name"], cfg["optimizer"]["lr"]] = folder
    return trials


def test_optuna_sweep_records_every_trial(optuna_sweep: Run) -> None:
    run = optuna_sweep
    assert run.proc.returncode == 0, run.proc.stderr
    assert len(run.folders()) == 3
    metas = [metadata_of(f) for f in run.folders()]
    assert sorted(m["sweep"]["job_num"] for m in metas) == [0, 1, 2]
    assert len({m["sweep"]["id"] for m in metas}) == 1
    assert {m["hydra"]["sweeper"] for m in metas} == {"optuna"}
    trials = optuna_trials(run)
    assert len(trials) == 3  # three distinct grid points
    assert {lr for _, lr in trials} == {0.1, 5.0}
    for (model, lr), folder in trials.items():
        m = metadata_of(folder)
        assert sorted(m["overrides"]) == [f"model={model}", f"optimizer.lr={lr}"]
        assert launched(m) == {"argv": run.args, "cwd": str(run.repo)}
        assert_git_of(run, folder)
        status, detail = status_of(folder)
        if lr == 5.0:  # the trial that raised
            assert status == "ERROR" and "FloatingPointError: loss diverged at lr=5.0" in detail
            assert "train.py" in detail
            continue
        loss = {"small": 0.0, "large": 0.5}[model]
        assert status == "SUCCESS", detail
        assert summary(folder) == {"return_value": loss}  # the objective
        # one process ran every trial: each folder holds its own output only
        out = (folder / "stdout").read_text()
        assert out == f"training {model}-lr0.1\nfinal loss {loss:.4f}\n"
        assert len((folder / "metrics.jsonl").read_text().splitlines()) == 3


def test_optuna_failed_trial_has_its_traceback_in_status(optuna_sweep: Run) -> None:
    failed = [f for (_, lr), f in optuna_trials(optuna_sweep).items() if lr == 5.0]
    assert failed
    for folder in failed:
        status, detail = status_of(folder)
        assert status == "ERROR"
        assert "FloatingPointError: loss diverged at lr=5.0" in detail
        # stderr holds what the trial printed; no traceback of ours is added
        assert "Traceback" not in (folder / "stderr").read_text()


def test_optuna_still_gets_its_floats(optuna_sweep: Run) -> None:
    results = yaml.safe_load(
        (optuna_sweep.repo / "multirun/study/optimization_results.yaml").read_text()
    )
    best = min(
        (summary(folder)["return_value"], model)
        for (model, lr), folder in optuna_trials(optuna_sweep).items()
        if lr == 0.1
    )
    assert results["best_value"] == best[0]
    assert results["best_params"] == {"model": best[1], "optimizer.lr": 0.1}


# -- hydra-zen launch() -----------------------------------------------------------------


@pytest.fixture(scope="module")
def zen_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_app(tmp_path_factory.mktemp("zen"), "zen")


@pytest.fixture(scope="module")
def zen_twice(zen_repo: Path) -> Run:
    return launch(zen_repo, ["experiment.py", "twice"])


def test_zen_launch_twice_in_one_process(zen_twice: Run) -> None:
    run = zen_twice
    assert run.proc.returncode == 0, run.proc.stderr
    # every byte reached the terminal, in order
    assert run.proc.stdout == (
        "fitting lr=0.2 in experiment 1\nreturned 0.7143\n"
        "fitting lr=5.0 in experiment 2\nfailed: diverged at lr=5.0\n"
        "fitting lr=0.3 in experiment 3\nreturned 0.625\n"
        "current() after: None\n"
    )
    assert [p.name for p in run.folders()] == ["1", "2", "3"]
    for n, lr, loss in ((1, 0.2, 0.7143), (3, 0.3, 0.625)):
        folder = run.folder(n)
        assert status_of(folder)[0] == "SUCCESS"
        assert config(folder) == {"lr": lr, "epochs": 2}
        assert summary(folder) == {"return_value": loss}
        # each folder holds its own run's output only
        assert (folder / "stdout").read_text() == f"fitting lr={lr} in experiment {n}\n"
        assert json.loads((folder / "metrics.jsonl").read_text())["loss"] == loss
        assert metadata_of(folder)["overrides"] == [f"lr={lr}"]
    status, detail = status_of(run.folder(2))
    assert status == "ERROR" and "FloatingPointError: diverged at lr=5.0" in detail
    assert "experiment.py" in detail
    for folder in run.folders():
        assert launched(metadata_of(folder)) == {"argv": run.args, "cwd": str(run.repo)}
        assert_git_of(run, folder)


def test_zen_failed_launch_has_its_traceback_in_status(zen_twice: Run) -> None:
    status, detail = status_of(zen_twice.folder(2))
    assert status == "ERROR" and "FloatingPointError: diverged at lr=5.0" in detail
    # the driver goes on after launch(): its later output is not the run's
    assert "Traceback" not in (zen_twice.folder(2) / "stderr").read_text()


def test_zen_launch_records_the_mode(zen_twice: Run) -> None:
    assert metadata_of(zen_twice.folder(1))["hydra"]["mode"] in ("RUN", None)


@pytest.fixture(scope="module")
def zen_sweep(zen_repo: Path, zen_twice: Run) -> Run:
    return launch(zen_repo, ["experiment.py", "sweep"])  # after zen_twice: 4 and 5


def test_zen_multirun(zen_sweep: Run) -> None:
    run = zen_sweep
    assert run.proc.returncode == 0, run.proc.stderr
    assert "returned [0.8333, 0.5]" in run.proc.stdout
    folders = [run.folder(4), run.folder(5)]
    metas = [metadata_of(f) for f in folders]
    assert [m["sweep"]["job_num"] for m in metas] == [0, 1]
    assert metas[0]["sweep"]["id"] == metas[1]["sweep"]["id"]
    for folder, m, lr in zip(folders, metas, (0.1, 0.5), strict=True):
        assert status_of(folder)[0] == "SUCCESS"
        assert config(folder)["lr"] == lr
        assert f"fitting lr={lr} in experiment {folder.name}" in (folder / "stdout").read_text()
        assert launched(m) == {"argv": run.args, "cwd": str(run.repo)}
        assert_git_of(run, folder)


def test_zen_multirun_records_the_mode(zen_sweep: Run) -> None:
    assert metadata_of(zen_sweep.folder(4))["hydra"]["mode"] in ("MULTIRUN", None)


def test_zen_launch_from_another_directory_records_the_apps_git_state(tmp_path: Path) -> None:
    # the task is a hydra-zen wrapper (zen(fit)), not a plain function
    repo = copy_app(tmp_path, "zen")
    run = launch(repo, [str(repo / "experiment.py"), "sweep"], cwd=tmp_path / "scratch")
    assert run.proc.returncode == 0, run.proc.stderr
    for folder in run.folders():
        assert_git_of(run, folder)


def test_zen_dirty_tree_is_caught_by_the_driver(tmp_path: Path) -> None:
    repo = copy_app(tmp_path, "zen")
    (repo / "experiment.py").write_text((repo / "experiment.py").read_text() + "# edited\n")
    run = launch(repo, ["experiment.py", "dirty"])
    assert "refused: DirtyRepoError" in run.proc.stdout
    assert run.proc.returncode == 0, run.proc.stderr
    assert "then returned 0.8333" in run.proc.stdout
    assert [p.name for p in run.folders()] == ["1"]
    assert "# edited" in (run.folder() / "git.diff").read_text()


# -- the Ray launcher ------------------------------------------------------------------


@pytest.fixture(scope="module")
def ray_sweep(tmp_path_factory: pytest.TempPathFactory) -> Run:
    repo = copy_app(tmp_path_factory.mktemp("ray"), "classifier")
    # four jobs on a 2-CPU local Ray: workers are reused across jobs
    args = ["train.py", "-m", ON, "hydra/launcher=ray", "optimizer.lr=0.01,5.0,0.1,1.0"]
    return launch(repo, args)


def test_ray_sweep_records_every_job(ray_sweep: Run) -> None:
    run = ray_sweep
    assert run.proc.returncode == 1, run.proc.stderr  # Hydra reports the failed job
    # (Ray's own failure to start also exits 1: its stderr says why)
    assert [p.name for p in run.folders()] == ["1", "2", "3", "4"], run.proc.stderr[-5000:]
    by_num = {metadata_of(f)["sweep"]["job_num"]: f for f in run.folders()}
    assert sorted(by_num) == [0, 1, 2, 3]
    assert len({metadata_of(f)["sweep"]["id"] for f in run.folders()}) == 1
    for num, lr, loss in ((0, 0.01, 1.0), (2, 0.1, 0.0), (3, 1.0, 1.0)):
        folder = by_num[num]
        assert metadata_of(folder)["hydra"]["launcher"] == "ray"
        assert status_of(folder)[0] == "SUCCESS" and summary(folder) == {"return_value": loss}
        assert config(folder)["checkpoint"] == str(folder / "model.ckpt")
        assert (folder / "model.ckpt").read_text() == f"weights of small-lr{lr}\n"
        # its own output and metrics only, though Ray reuses a worker for several jobs
        out = (folder / "stdout").read_text()
        assert out == f"training small-lr{lr}\nfinal loss {loss:.4f}\n"
        assert len((folder / "metrics.jsonl").read_text().splitlines()) == 3
    status, detail = status_of(by_num[1])
    assert status == "ERROR" and "FloatingPointError: loss diverged at lr=5.0" in detail
    assert "train.py" in detail
    for folder in run.folders():
        assert_git_of(run, folder)


def test_ray_sweep_records_the_launch_command(ray_sweep: Run) -> None:
    for folder in ray_sweep.folders():
        assert launched(metadata_of(folder)) == {"argv": ray_sweep.args, "cwd": str(ray_sweep.repo)}
