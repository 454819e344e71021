"""The Hydra callback, run the way hydra-core tests its own callbacks: real
apps in subprocesses with -Werror, under the basic, joblib and submitit launchers."""

from __future__ import annotations

import json
import os
import pickle
import shutil
from pathlib import Path

import pytest
import yaml
from helpers import (
    git,
    make_app_repo,
    make_repo,
    metadata_of,
    run_python,
    shared_once,
    status_of,
)

ON = "hydra/callbacks=meticulous"


def folders(root: Path) -> list[Path]:
    return sorted((p for p in root.iterdir() if p.name.isdigit()), key=lambda p: int(p.name))


def test_single_run(app_repo: Path) -> None:
    proc = run_python(["examples/train.py", ON, "optimizer=adam", "seed=3"], app_repo, check=True)
    folder = app_repo / "experiments" / "1"
    assert [p.name for p in folders(app_repo / "experiments")] == ["1"]
    # the folder is Hydra's output dir: .hydra, the job log, and what the task wrote
    assert (folder / ".hydra" / "config.yaml").exists() and (folder / "train.log").exists()
    assert (folder / "model.pt").exists()
    assert not (app_repo / "outputs").exists()
    config = yaml.safe_load((folder / "config.yaml").read_text())
    assert config["checkpoint"] == str(folder / "model.pt")  # ${hydra:runtime.output_dir}
    assert config["run_name"] == "mlp-adam-lr0.001"  # interpolations resolved
    assert config["data"]["split"] == "TRAIN"  # structured config enum
    assert config["data"]["root"] == "/datasets/synthetic"  # and a Path, as text
    assert "hydra" not in config
    # Hydra's own copy stays unresolved
    assert "${hydra:runtime.output_dir}" in (folder / ".hydra" / "config.yaml").read_text()
    m = metadata_of(folder)
    assert m["overrides"] == ["optimizer=adam", "seed=3"]
    assert m["hydra"]["choices"] == {"data": "synthetic", "optimizer": "adam", "model": "mlp"}
    assert m["hydra"]["job_name"] == "train" and m["hydra"]["mode"] == "RUN"
    assert m["hydra"]["override_dirname"] == "optimizer=adam,seed=3"
    assert m["sweep"] is None
    assert status_of(folder)[0] == "SUCCESS"
    summary = json.loads((folder / "summary.json").read_text())
    assert set(summary) == {"loss", "accuracy"}  # the task's return value
    assert len((folder / "metrics.jsonl").read_text().splitlines()) == 5  # current().log()
    assert "training mlp-adam-lr0.001" in (folder / "stdout").read_text()
    assert "training mlp-adam-lr0.001" in proc.stdout
    assert git(app_repo, "status", "--porcelain") == ""


def check_sweep(root: Path, jobs: int, failing: set[int]) -> list[dict]:
    found = folders(root)
    assert [p.name for p in found] == [str(i) for i in range(1, jobs + 1)]
    metas = [metadata_of(f) for f in found]
    assert sorted(m["sweep"]["job_num"] for m in metas) == list(range(jobs))
    assert len({m["sweep"]["id"] for m in metas}) == 1
    for folder, m in zip(found, metas, strict=True):
        status, detail = status_of(folder)
        if m["sweep"]["job_num"] in failing:
            assert status == "ERROR" and "FloatingPointError: loss diverged" in detail
        else:
            assert status == "SUCCESS", detail
        assert (folder / ".hydra" / "overrides.yaml").exists()
        assert yaml.safe_load((folder / "config.yaml").read_text())["checkpoint"] == str(
            folder / "model.pt"
        )
        assert m["overrides"] == m["hydra"]["overrides"]
    return metas


def test_multirun_basic_launcher(app_repo: Path) -> None:
    proc = run_python(
        ["examples/train.py", "-m", ON, "model=mlp,resnet", "optimizer.lr=0.01,2.0"], app_repo
    )
    assert proc.returncode == 1  # Hydra reports the failed job
    metas = check_sweep(app_repo / "experiments", 4, failing={1, 3})
    # one process ran every job: each folder holds its own output only
    for folder in folders(app_repo / "experiments"):
        out = (folder / "stdout").read_text()
        name = yaml.safe_load((folder / "config.yaml").read_text())["run_name"]
        assert out.count("training ") == 1 and f"training {name} " in out
    sweep_dir = Path(metas[0]["sweep"]["dir"])
    assert (sweep_dir / "multirun.yaml").exists()
    assert not (app_repo / "experiments" / "multirun.yaml").exists()
    assert metas[0]["hydra"]["launcher"] == "basic"


def joblib_run(folder: Path) -> int:
    app_repo = make_app_repo(folder / "app")
    proc = run_python(
        [
            "examples/train.py",
            "-m",
            ON,
            "hydra/launcher=joblib",
            "hydra.launcher.n_jobs=4",
            "model=mlp,resnet",
            "optimizer.lr=0.01,0.1,0.3,2.0",
        ],
        app_repo,
    )
    return proc.returncode


@pytest.fixture(scope="session")
def joblib_sweep(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    """One 8-job joblib sweep of the example app (jobs 3 and 7 diverge), run
    once for the tests that read it: its app repo, read-only, and exit code."""
    folder, returncode = shared_once(tmp_path_factory, "joblib-sweep", joblib_run)
    return folder / "app", returncode


def test_multirun_joblib_launcher(joblib_sweep: tuple[Path, int], tmp_path: Path) -> None:
    shared, returncode = joblib_sweep
    assert returncode == 1
    metas = check_sweep(shared / "experiments", 8, failing={3, 7})
    assert {m["hydra"]["launcher"] for m in metas} == {"joblib"}
    # a second sweep continues the numbering with a new sweep id (on a copy:
    # the shared sweep stays as it was for the other tests)
    app_repo = tmp_path / "app"
    shutil.copytree(shared, app_repo, symlinks=True)
    run_python(
        ["examples/train.py", "-m", ON, "hydra/launcher=joblib", "seed=1,2"], app_repo, check=True
    )
    later = [metadata_of(app_repo / "experiments" / n) for n in ("9", "10")]
    assert later[0]["sweep"]["id"] == later[1]["sweep"]["id"] != metas[0]["sweep"]["id"]


def test_multirun_submitit_local_launcher(app_repo: Path) -> None:
    proc = run_python(
        [
            "examples/train.py",
            "-m",
            ON,
            "hydra/launcher=submitit_local",
            "optimizer.lr=0.01,2.0,0.1",
        ],
        app_repo,
        timeout=180,
    )
    assert proc.returncode == 1
    metas = check_sweep(app_repo / "experiments", 3, failing={1})
    # submitit itself says the failed job completed: our STATUS is the truth
    assert (Path(metas[0]["sweep"]["dir"]) / ".submitit").is_dir()
    assert {m["hydra"]["launcher"] for m in metas} == {"submitit_local"}


@pytest.mark.parametrize(
    ("flags", "overrides"),
    [
        (["--cfg", "job"], []),
        (["--cfg", "hydra", "--resolve"], []),
        (["--cfg", "all"], []),
        (["--help"], []),
        (["--info", "all"], []),
        (["--cfg", "job", "--resolve"], ["seed=1"]),
        (["--shell-completion"], ["install=bash"]),
    ],
)
def test_inspection_commands_allocate_nothing(
    app_repo: Path, flags: list[str], overrides: list[str]
) -> None:
    proc = run_python(["examples/train.py", *flags, ON, *overrides], app_repo)
    assert proc.returncode == 0, proc.stderr
    assert not (app_repo / "experiments").exists()


APP = """
import os, sys
from pathlib import Path
import hydra
from omegaconf import OmegaConf
import meticulous_hydra

OmegaConf.register_new_resolver("double", lambda x: 2 * int(x))

@hydra.main(version_base="1.3", config_path=".", config_name="config")
def main(cfg):
    mode = cfg.mode
    exp = meticulous_hydra.current()
    print("experiment", None if exp is None else exp.id)
    if mode == "exit0":
        sys.exit(0)
    if mode == "exit5":
        sys.exit(5)
    if mode == "kbd":
        raise KeyboardInterrupt
    if mode == "raise_exit":
        raise SystemExit(4)
    return 0.25

if __name__ == "__main__":
    main()
"""

CONFIG = """
defaults:
  - _self_
mode: ok
size: 4
doubled: ${double:${size}}
from_env: ${oc.env:APP_TEST_VALUE,unset}
job: ${hydra:job.name}
required: ???
points_to_missing: ${required}
api_token: s3cret
db:
  password: hunter2
  host: localhost
"""


@pytest.fixture
def edge_app(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "edge", {"app.py": APP, "config.yaml": CONFIG})


def test_resolution_missing_values_and_secrets(edge_app: Path) -> None:
    run_python(
        ["app.py", ON, "db.host=remote", "+api_key=abc123"],
        edge_app,
        env={"APP_TEST_VALUE": "from-the-env"},
        check=True,
    )
    folder = edge_app / "experiments" / "1"
    config = yaml.safe_load((folder / "config.yaml").read_text())
    assert config["doubled"] == 8  # custom resolver
    assert config["from_env"] == "from-the-env"
    assert config["job"] == "app"
    assert config["required"] == "???" and config["points_to_missing"] == "???"
    assert config["api_token"] == "<redacted>" and config["db"]["password"] == "<redacted>"
    assert config["api_key"] == "<redacted>" and config["db"]["host"] == "remote"
    m = metadata_of(folder)
    assert sorted(m["missing"]) == ["points_to_missing", "required"]
    assert "+api_key=<redacted>" in m["overrides"] and "+api_key=<redacted>" in m["argv"]
    # no secret in any file of the folder, Hydra's own copies in .hydra/ included
    for path in folder.rglob("*"):
        if path.is_file():
            text = path.read_text()
            assert "abc123" not in text and "hunter2" not in text and "s3cret" not in text, path
    assert yaml.safe_load((folder / ".hydra" / "overrides.yaml").read_text()) == [
        "db.host=remote",
        "+api_key=<redacted>",
    ]
    assert json.loads((folder / "summary.json").read_text()) == {"return_value": 0.25}
    # the patterns are an option; an empty list turns redaction off
    run_python(["app.py", ON, "hydra.callbacks.meticulous.redact=[]"], edge_app, check=True)
    assert (
        yaml.safe_load((edge_app / "experiments" / "2" / "config.yaml").read_text())["api_token"]
        == "s3cret"
    )


@pytest.mark.parametrize(
    ("mode", "status", "detail"),
    [
        ("exit0", "SUCCESS", ""),
        ("exit5", "ERROR", "exit code 5"),
        ("kbd", "INTERRUPTED", "KeyboardInterrupt"),
        ("raise_exit", "ERROR", "exited before returning"),
    ],
)
def test_exits_that_skip_hydras_end_hooks(
    edge_app: Path, mode: str, status: str, detail: str
) -> None:
    run_python(["app.py", ON, f"mode={mode}"], edge_app)
    got, got_detail = status_of(edge_app / "experiments" / "1")
    assert got == status and detail in got_detail


def basic_run(folder: Path) -> None:
    edge_app = make_repo(folder / "edge", {"app.py": APP, "config.yaml": CONFIG})
    ckpt = "+ckpt=${hydra:sweep.dir}/${hydra:sweep.subdir}/ckpt"
    run_python(["app.py", "-m", ON, ckpt, "mode=ok,exit5"], edge_app)


@pytest.fixture(scope="session")
def basic_sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One basic sweep of the edge app, run once for the tests that read it
    (read-only): job 0 returns, job 1 calls sys.exit(5); each records a
    checkpoint path under its sweep subdir."""
    folder, _ = shared_once(tmp_path_factory, "basic-sweep", basic_run)
    return folder / "edge"


def test_exits_in_a_basic_sweep_end_every_job(basic_sweep: Path) -> None:
    edge_app = basic_sweep
    assert status_of(edge_app / "experiments" / "1")[0] == "SUCCESS"
    assert status_of(edge_app / "experiments" / "2") == ("ERROR", "exit code 5\n")


def test_enabled_from_the_defaults_list(edge_app: Path) -> None:
    cfg = (
        (edge_app / "config.yaml")
        .read_text()
        .replace("  - _self_", "  - override hydra/callbacks: meticulous\n  - _self_")
    )
    (edge_app / "config.yaml").write_text(cfg)
    git(edge_app, "commit", "-qam", "defaults")
    proc = run_python(["app.py"], edge_app, check=True)
    assert "experiment 1" in proc.stdout
    assert status_of(edge_app / "experiments" / "1")[0] == "SUCCESS"


def test_declared_by_hand_with_target_next_to_another_callback(edge_app: Path) -> None:
    cfg = (edge_app / "config.yaml").read_text() + (
        "hydra:\n"
        "  callbacks:\n"
        "    returns:\n"
        "      _target_: hydra.experimental.callbacks.LogJobReturnCallback\n"
        "    tracker:\n"
        "      _target_: meticulous_hydra.MeticulousCallback\n"
        "      root: runs\n"
        "      description: by hand\n"
    )
    (edge_app / "config.yaml").write_text(cfg)
    git(edge_app, "commit", "-qam", "by hand")
    proc = run_python(["app.py"], edge_app, check=True)
    assert "experiment 1" in proc.stdout
    assert metadata_of(edge_app / "runs" / "1")["description"] == "by hand"
    proc = run_python(["app.py", "-m", "mode=ok,exit0"], edge_app, check=True)
    assert [p.name for p in folders(edge_app / "runs")] == ["1", "2", "3"]
    assert "LogJobReturnCallback" not in proc.stderr


def test_user_run_dir_is_hydras_and_the_record_stays_under_the_root(edge_app: Path) -> None:
    proc = run_python(["app.py", ON, "hydra.run.dir=my_runs/special"], edge_app, check=True)
    folder = edge_app / "experiments" / "1"
    assert status_of(folder)[0] == "SUCCESS"
    assert metadata_of(folder)["hydra"]["output_dir"] == str(edge_app / "my_runs" / "special")
    assert (edge_app / "my_runs" / "special" / ".hydra").is_dir()  # Hydra's output
    assert not (edge_app / "my_runs" / "special" / "STATUS").exists()
    assert "experiment 1" in proc.stdout


def test_run_dir_dot_touches_nothing_outside_the_root(edge_app: Path) -> None:
    before = (edge_app / "config.yaml").read_text()
    run_python(["app.py", ON, "hydra.run.dir=."], edge_app, check=True)
    # a second run with another config is a new run, not a refused resume
    run_python(["app.py", ON, "hydra.run.dir=.", "size=5"], edge_app, check=True)
    assert (edge_app / "config.yaml").read_text() == before
    for name in ("STATUS", "metadata.json", "stdout", "stderr", "config.json"):
        assert not (edge_app / name).exists(), name
    assert not (edge_app.parent / ".gitignore").exists()
    assert git(edge_app, "diff", "--stat") == ""
    for num, size in (("1", 4), ("2", 5)):
        folder = edge_app / "experiments" / num
        assert status_of(folder)[0] == "SUCCESS"
        assert yaml.safe_load((folder / "config.yaml").read_text())["size"] == size
        assert metadata_of(folder)["hydra"]["output_dir"] == str(edge_app)


def test_explicit_id_of_a_folder_with_foreign_files_is_refused(edge_app: Path) -> None:
    foreign = edge_app / "experiments" / "mine"
    foreign.mkdir(parents=True)
    (foreign / "notes.txt").write_text("my notes\n")
    proc = run_python(["app.py", ON, "hydra.callbacks.meticulous.experiment_id=mine"], edge_app)
    assert proc.returncode == 1 and "not an experiment's" in proc.stderr
    assert sorted(p.name for p in foreign.iterdir()) == ["notes.txt"]


def test_user_sweep_subdir_is_hydras_and_jobs_are_recorded_under_the_root(
    edge_app: Path,
) -> None:
    run_python(
        [
            "app.py",
            "-m",
            ON,
            "hydra.sweep.dir=sweeps",
            "hydra.sweep.subdir=job_${hydra.job.num}",
            "mode=ok,exit0",
        ],
        edge_app,
        check=True,
    )
    recorded = {
        metadata_of(f)["sweep"]["job_num"]: metadata_of(f)
        for f in folders(edge_app / "experiments")
    }
    assert sorted(recorded) == [0, 1]
    for num, m in recorded.items():
        assert m["hydra"]["output_dir"] == str(edge_app / "sweeps" / f"job_{num}")
        assert (edge_app / "sweeps" / f"job_{num}" / ".hydra").is_dir()
        assert not (edge_app / "sweeps" / f"job_{num}" / "STATUS").exists()
    assert all(status_of(f)[0] == "SUCCESS" for f in folders(edge_app / "experiments"))


def test_options_from_the_command_line(edge_app: Path) -> None:
    run_python(
        [
            "app.py",
            ON,
            "hydra.callbacks.meticulous.root=elsewhere",
            "hydra.callbacks.meticulous.description=first try",
            "hydra.callbacks.meticulous.experiment_id=base",
        ],
        edge_app,
        check=True,
    )
    assert metadata_of(edge_app / "elsewhere" / "base")["description"] == "first try"
    proc = run_python(
        ["app.py", ON, "hydra.callbacks.meticulous.norecord=true"], edge_app, check=True
    )
    assert "experiment None" in proc.stdout and not (edge_app / "experiments").exists()
    run_python(
        ["app.py", ON, "hydra.callbacks.meticulous.capture_output=false"], edge_app, check=True
    )
    assert not (edge_app / "experiments" / "1" / "stdout").exists()


def test_dirty_tree_stops_the_run_loudly(edge_app: Path) -> None:
    (edge_app / "app.py").write_text(APP + "\n# edited\n")
    for args in (["app.py", ON], ["app.py", "-m", ON, "mode=ok,exit0"]):
        proc = run_python(args, edge_app)
        assert proc.returncode == 1
        assert (
            "meticulous-hydra: error: uncommitted changes" in proc.stderr
            and "app.py" in proc.stderr
        )
        assert "hydra.callbacks.meticulous.allow_dirty=true" in proc.stderr
        assert "experiment" not in proc.stdout  # the task never ran
    assert not (edge_app / "experiments" / "1").exists()
    run_python(["app.py", ON, "hydra.callbacks.meticulous.allow_dirty=true"], edge_app, check=True)
    assert "# edited" in (edge_app / "experiments" / "1" / "git.diff").read_text()


def test_shipped_config_matches_the_class_defaults() -> None:
    import inspect

    from meticulous_hydra import MeticulousCallback

    shipped = yaml.safe_load(
        (
            Path(__file__).parents[2] / "meticulous_hydra/conf/hydra/callbacks/meticulous.yaml"
        ).read_text()
    )["hydra"]["callbacks"]["meticulous"]
    defaults = {
        name: p.default for name, p in inspect.signature(MeticulousCallback).parameters.items()
    }
    assert {k: v for k, v in shipped.items() if k != "_target_"} == {
        k: list(v) if isinstance(v, tuple) else v for k, v in defaults.items()
    }


def test_callback_pickles() -> None:
    from meticulous_hydra import MeticulousCallback

    cb = pickle.loads(pickle.dumps(MeticulousCallback(root="x", allow_dirty=True)))
    assert cb.root == "x" and cb.allow_dirty is True


def test_search_path_plugin_is_visible(app_repo: Path) -> None:
    proc = run_python(["examples/train.py", "--info", "searchpath"], app_repo, check=True)
    assert "pkg://meticulous_hydra.conf" in proc.stdout


def test_requeued_job_continues_in_its_folder(tmp_path: Path) -> None:
    from meticulous_hydra.adapters.hydra_callback import job_dir

    root = tmp_path / "experiments"
    first = job_dir(str(root), "sweep-1", 3)
    other = job_dir(str(root), "sweep-1", 4)
    again = job_dir(str(root), "sweep-1", 3)  # what a requeued job 3 resolves
    assert first == again != other
    assert job_dir(str(root), "sweep-2", 3) not in (first, other)


def test_sweep_dir_and_subdir_name_the_jobs_folder(basic_sweep: Path) -> None:
    edge_app = basic_sweep
    assert len(folders(edge_app / "experiments")) == 2
    for folder in folders(edge_app / "experiments"):
        ckpt = yaml.safe_load((folder / "config.yaml").read_text())["ckpt"]
        assert os.path.normpath(os.path.join(edge_app, ckpt)) == str(folder / "ckpt")


LAUNCH_APP = """
import os
import hydra

@hydra.main(version_base="1.3", config_path=".", config_name="config")
def main(cfg):
    print("cwd", os.getcwd())

if __name__ == "__main__":
    main()
"""


def test_launch_command_and_directory_are_recorded_for_every_job(tmp_path: Path) -> None:
    app = make_repo(
        tmp_path / "proj", {"app.py": LAUNCH_APP, "config.yaml": "seed: 0\ntoken: abcdefgh\n"}
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    script = str(app / "app.py")
    root = f"hydra.callbacks.meticulous.root={app / 'experiments'}"
    cases = [
        [script, ON, root, "hydra.job.chdir=True", "+api_token=secret99"],
        [script, "-m", ON, root, "hydra/launcher=joblib", "seed=1,2"],
        [script, "-m", ON, root, "hydra/launcher=submitit_local", "seed=3"],
    ]
    for argv in cases:
        run_python(argv, elsewhere, check=True, timeout=180)
    metas = [metadata_of(f) for f in folders(app / "experiments")]
    assert len(metas) == 4
    shown = [script, ON, root, "hydra.job.chdir=True", "+api_token=<redacted>"]
    assert metas[0]["launch"]["argv"] == shown
    assert metas[0]["launch"]["overrides"] == ["+api_token=<redacted>"]
    assert metas[0]["cwd"] == str(app / "experiments" / "1")  # chdir'ed into it
    for m, argv in zip(metas[1:], [cases[1], cases[1], cases[2]], strict=True):
        assert m["launch"]["argv"] == argv
    assert {m["launch"]["cwd"] for m in metas} == {str(elsewhere)}


@pytest.mark.parametrize("job", [3, 7])
def test_failed_job_traceback_names_the_apps_file(joblib_sweep: tuple[Path, int], job: int) -> None:
    app_repo, _ = joblib_sweep
    root = app_repo / "experiments"
    sweep_id = metadata_of(root / "1")["sweep"]["id"]  # the shared sweep's, not a later one's
    sweeps = {f: metadata_of(f)["sweep"] for f in folders(root)}
    (folder,) = [  # jobs 3 and 7 have optimizer.lr=2.0
        f for f, sweep in sweeps.items() if (sweep["id"], sweep["job_num"]) == (sweep_id, job)
    ]
    status, detail = status_of(folder)
    assert status == "ERROR"
    assert "FloatingPointError: loss diverged" in detail
    assert "<dynamic-code>" not in detail
    assert f'File "{app_repo / "examples" / "train.py"}", line' in detail
    assert 'raise FloatingPointError(f"loss diverged' in detail  # the source line too
    # the stderr file holds what the job printed: Hydra reports the failure
    # once the sweep is over, in the launching process
    assert "Traceback" not in (folder / "stderr").read_text()


NAN_APP = """
import hydra
from omegaconf import OmegaConf

@hydra.main(version_base="1.3", config_path=".", config_name="config")
def main(cfg):
    return OmegaConf.create({"loss": 0.5, "extra": {"acc": 0.9}})

if __name__ == "__main__":
    main()
"""


def test_nan_in_config_and_a_returned_dictconfig(tmp_path: Path) -> None:
    app = make_repo(tmp_path / "nan", {"app.py": NAN_APP, "config.yaml": "x: .nan\ny: .inf\n"})
    run_python(["app.py", ON], app, check=True)
    folder = app / "experiments" / "1"
    assert "x: .nan" in (folder / "config.yaml").read_text()
    assert "y: .inf" in (folder / "config.yaml").read_text()
    assert json.loads((folder / "summary.json").read_text()) == {
        "loss": 0.5,
        "extra": {"acc": 0.9},
    }


PICKLE = "      _target_: hydra.experimental.callbacks.PickleJobInfoCallback\n"
BY_HAND = "      _target_: meticulous_hydra.MeticulousCallback\n"


@pytest.mark.parametrize("pickle_first", [False, True])
def test_no_secret_in_any_file_or_derived_string(edge_app: Path, pickle_first: bool) -> None:
    if pickle_first:  # its hooks run before ours at the start, after ours at the end
        extra = "hydra:\n  callbacks:\n    pickle:\n" + PICKLE + "    tracker:\n" + BY_HAND
        on: list[str] = []
    else:
        extra = "hydra:\n  callbacks:\n    pickle:\n" + PICKLE
        on = [ON]
    (edge_app / "config.yaml").write_text(CONFIG + extra)
    git(edge_app, "commit", "-qam", "pickle")
    proc = run_python(
        [
            "app.py",
            *on,
            "db.password=hunter2xyz",
            "+db.token=${oc.env:DB_PASS}",
            "+creds.secret_key=???",
        ],
        edge_app,
        env={"DB_PASS": "envsecret123"},
        check=True,
    )
    folder = edge_app / "experiments" / "1"
    assert (folder / ".hydra" / "config.pickle").exists()
    assert (folder / ".hydra" / "job_return.pickle").exists()
    for path in folder.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            for secret in (b"hunter2", b"envsecret123", b"s3cret"):
                assert secret not in data, (path, secret)
    m = metadata_of(folder)
    assert "+db.token=${oc.env:DB_PASS}" in m["overrides"]  # replayable as typed
    assert "db.password=<redacted>" in m["overrides"]
    assert "envsecret123" not in m["hydra"]["override_dirname"]
    assert "+db.token=${oc.env:DB_PASS}" in m["launch"]["argv"]
    config = yaml.safe_load((folder / "config.yaml").read_text())
    assert config["creds"]["secret_key"] == "???"  # missing stays missing
    assert config["db"]["token"] == "<redacted>"
    assert "hunter2" not in proc.stdout  # nothing printed by the recorder either


def test_secret_in_a_derived_output_dir_name_is_not_recorded(edge_app: Path) -> None:
    run_python(
        [
            "app.py",
            ON,
            "db.password=hunter2xyz",
            "hydra.run.dir=out/${hydra.job.override_dirname}",
            "hydra.job.chdir=True",
        ],
        edge_app,
        check=True,
    )
    folder = edge_app / "experiments" / "1"
    for path in folder.rglob("*"):
        if path.is_file():
            assert b"hunter2xyz" not in path.read_bytes(), path


MINE = """
from hydra.experimental.callback import Callback

class Mine(Callback):
    def on_job_start(self, config, **kwargs):
        print("my callback ran")
"""


def test_plus_meticulous_on_keeps_the_apps_own_callbacks(edge_app: Path) -> None:
    (edge_app / "mine.py").write_text(MINE)
    (edge_app / "hydra" / "callbacks").mkdir(parents=True)
    (edge_app / "hydra" / "callbacks" / "mine.yaml").write_text(
        "# @package _global_\nhydra:\n  callbacks:\n    mine:\n      _target_: mine.Mine\n"
    )
    cfg = CONFIG.replace("  - _self_", "  - override hydra/callbacks: mine\n  - _self_")
    (edge_app / "config.yaml").write_text(cfg)
    git(edge_app, "add", "-A")
    git(edge_app, "commit", "-qm", "own callback")
    proc = run_python(
        ["app.py", "+meticulous=on", "hydra.callbacks.meticulous.description=both"],
        edge_app,
        check=True,
    )
    assert "my callback ran" in proc.stdout and "experiment 1" in proc.stdout
    assert metadata_of(edge_app / "experiments" / "1")["description"] == "both"
    proc = run_python(["app.py", "-m", "+meticulous=on", "mode=ok,exit0"], edge_app, check=True)
    assert proc.stdout.count("my callback ran") == 2
    assert [p.name for p in folders(edge_app / "experiments")] == ["1", "2", "3"]


def test_dirty_message_names_the_key_the_callback_is_declared_under(edge_app: Path) -> None:
    cfg = CONFIG + "hydra:\n  callbacks:\n    tracker:\n" + BY_HAND
    (edge_app / "config.yaml").write_text(cfg)
    git(edge_app, "commit", "-qam", "by hand")
    (edge_app / "app.py").write_text(APP + "\n# edited\n")
    proc = run_python(["app.py"], edge_app)
    assert proc.returncode == 1
    # the option is not in the declaration: the override has to add it
    assert "pass +hydra.callbacks.tracker.allow_dirty=true to" in proc.stderr
    run_python(["app.py", "+hydra.callbacks.tracker.allow_dirty=true"], edge_app, check=True)
    proc = run_python(["app.py", ON], edge_app)
    assert "pass hydra.callbacks.meticulous.allow_dirty=true to" in proc.stderr


def test_one_line_says_where_the_run_is_recorded(edge_app: Path) -> None:
    proc = run_python(["app.py", ON], edge_app, check=True)
    root = edge_app / "experiments"
    assert f"recording to experiments/1 (a new experiments root: {root})\n" in proc.stderr
    # the line is for the terminal: the run's own stderr file holds what the program wrote
    assert "meticulous-hydra" not in (edge_app / "experiments/1/stderr").read_text()
    proc = run_python(["app.py", "-m", ON, "mode=ok,exit0"], edge_app, check=True)
    assert proc.stderr.count("meticulous-hydra: recording to experiments/") == 2
    base = "hydra.callbacks.meticulous.experiment_id=base"
    run_python(["app.py", ON, base], edge_app, check=True)
    proc = run_python(["app.py", ON, base], edge_app, check=True)
    assert "meticulous-hydra: resuming experiments/base, which had ended SUCCESS" in proc.stderr
    proc = run_python(["app.py", ON, base, "size=7"], edge_app)
    assert proc.returncode == 1
    assert "size (recorded 4, now 7)" in proc.stderr


ZEN_DRIVER = """
import sys
from hydra_zen import launch, make_config
import meticulous_hydra

Config = make_config(lr=0.1, name="zen")


def task(cfg):
    print("task ran", cfg.lr)
    return {"lr": cfg.lr}


on = ["hydra/callbacks=meticulous"]
if sys.argv[1] == "runs":
    launch(Config, task, overrides=[*on, "lr=0.2"], version_base="1.3")
    launch(Config, task, overrides=[*on, "lr=0.3"], version_base="1.3")  # twice in one process
    launch(Config, task, overrides=[*on, "lr=0.4,0.5"], multirun=True, version_base="1.3")
else:
    for multirun in (False, True):
        try:
            launch(Config, task, overrides=[*on, "lr=0.2"], multirun=multirun, version_base="1.3")
        except meticulous_hydra.DirtyRepoError as e:
            assert isinstance(e, meticulous_hydra.RecordingError)
            print("caught:", str(e).splitlines()[0])
    print("the driver goes on")
"""


def test_hydra_zen_launch_runs_and_a_catchable_dirty_tree(tmp_path: Path) -> None:
    pytest.importorskip("hydra_zen")
    repo = make_repo(tmp_path / "zen", {"driver.py": ZEN_DRIVER})
    proc = run_python(["driver.py", "runs", "--driver-flag"], repo, check=True)
    metas = [metadata_of(f) for f in folders(repo / "experiments")]
    assert [m["hydra"]["mode"] for m in metas] == ["RUN", "RUN", "MULTIRUN", "MULTIRUN"]
    assert [
        json.loads((f / "summary.json").read_text())["lr"] for f in folders(repo / "experiments")
    ] == [0.2, 0.3, 0.4, 0.5]
    assert metas[0]["launch"] == {
        "argv": ["driver.py", "runs", "--driver-flag"],
        "cwd": str(repo),
        "overrides": ["lr=0.2"],
    }
    assert metas[2]["launch"]["overrides"] == ["lr=0.4,0.5"]
    assert proc.stderr.count("meticulous-hydra: recording to") == 4
    (repo / "driver.py").write_text(ZEN_DRIVER + "\n# edited\n")
    proc = run_python(["driver.py", "dirty"], repo)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("caught: uncommitted changes") == 2
    assert "task ran" not in proc.stdout and "the driver goes on" in proc.stdout
    assert len(folders(repo / "experiments")) == 4


RAY_APP = """
import hydra

def helper(x):
    raise ValueError(f"bad seed {x}")

@hydra.main(version_base="1.3", config_path=".", config_name="config")
def main(cfg):
    if cfg.seed == 2:
        helper(cfg.seed)
    return {"seed": cfg.seed}

if __name__ == "__main__":
    main()
"""


def test_ray_workers_record_the_launch_command_and_the_apps_traceback(tmp_path: Path) -> None:
    pytest.importorskip("hydra_plugins.hydra_ray_launcher")
    app = make_repo(tmp_path / "ray", {"app.py": RAY_APP, "config.yaml": "seed: 0\n"})
    argv = [
        "app.py",
        "-m",
        ON,
        "hydra/launcher=ray",
        "+hydra.launcher.ray.init.num_cpus=1",
        "+hydra.launcher.ray.init.include_dashboard=false",
        "seed=1,2",
    ]
    run_python(argv, app, timeout=300)
    found = folders(app / "experiments")
    assert len(found) == 2
    for folder in found:
        m = metadata_of(folder)
        assert m["launch"]["argv"] == argv and m["launch"]["cwd"] == str(app)
        assert "default_worker.py" in m["argv"][0]  # the job's own process: a Ray worker
    failed = [f for f in found if status_of(f)[0] == "ERROR"]
    assert len(failed) == 1
    detail = status_of(failed[0])[1]
    assert f'File "{app / "app.py"}", line 5, in helper' in detail
    assert "<dynamic-code>" not in detail


def test_a_sweep_link_to_another_runs_folder_is_never_followed(tmp_path: Path) -> None:
    import shutil

    from meticulous_hydra import layout
    from meticulous_hydra.adapters.hydra_callback import job_dir

    root = tmp_path / "experiments"
    link = root / ".sweeps" / "sweep-1" / "5"

    def record_as(folder: Path, sweep: dict | None) -> None:
        layout.write_json(folder / "metadata.json", {"id": folder.name, "sweep": sweep})

    first = Path(job_dir(str(root), "sweep-1", 5))
    record_as(first, {"id": "sweep-1", "job_num": 5, "dir": "/x"})
    assert job_dir(str(root), "sweep-1", 5) == str(first)  # a requeued job continues there
    # The folder is deleted; the next run gets a new number, and job 5 a new folder.
    shutil.rmtree(first)
    unrelated = layout.claim_next(root)
    record_as(unrelated, None)
    second = Path(job_dir(str(root), "sweep-1", 5))
    assert second not in (first, unrelated) and link.resolve() == second
    # Links that name another run's folder (an older version reused numbers,
    # or the link was copied) are replaced, and the other run is left alone.
    for sweep in (None, {"id": "sweep-2", "job_num": 5}, {"id": "sweep-1", "job_num": 4}):
        link.unlink()
        link.symlink_to(f"../../{unrelated.name}")
        record_as(unrelated, sweep)
        again = Path(job_dir(str(root), "sweep-1", 5))
        assert again != unrelated and link.resolve() == again
        assert metadata_of(unrelated)["sweep"] == sweep
    # nor is one to a folder that is a link out of the root, whatever it holds
    outside = tmp_path / "outside"
    outside.mkdir()
    record_as(outside, {"id": "sweep-1", "job_num": 5})
    (root / "99").symlink_to(outside)
    link.unlink()
    link.symlink_to("../../99")
    assert Path(job_dir(str(root), "sweep-1", 5)) not in (root / "99", outside)


def test_an_experiment_id_that_is_not_a_folder_is_one_line(edge_app: Path) -> None:
    (edge_app / "experiments").mkdir()
    (edge_app / "experiments" / "taken").write_text("a file, not a run\n")
    proc = run_python(["app.py", ON, "hydra.callbacks.meticulous.experiment_id=taken"], edge_app)
    assert proc.returncode == 1
    assert "meticulous-hydra: error:" in proc.stderr and "not a folder" in proc.stderr
    assert "Traceback" not in proc.stderr and "experiment" not in proc.stdout


def test_run_dir_set_in_the_apps_config_is_hydras_too(edge_app: Path) -> None:
    (edge_app / "config.yaml").write_text(
        CONFIG + "hydra:\n  run:\n    dir: outs/${hydra.job.name}\n"
    )
    git(edge_app, "commit", "-qam", "run dir")
    run_python(["app.py", ON], edge_app, check=True)
    assert (edge_app / "outs" / "app" / ".hydra").is_dir()
    folder = edge_app / "experiments" / "1"
    assert status_of(folder)[0] == "SUCCESS"
    assert metadata_of(folder)["hydra"]["output_dir"] == str(edge_app / "outs" / "app")
