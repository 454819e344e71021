"""The Hydra callback, run the way hydra-core tests its own callbacks: real
apps in subprocesses with -Werror, under the basic, joblib and submitit launchers."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest
import yaml
from helpers import git, make_repo, metadata_of, run_python, status_of

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


def test_multirun_joblib_launcher(app_repo: Path) -> None:
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
    assert proc.returncode == 1
    metas = check_sweep(app_repo / "experiments", 8, failing={3, 7})
    assert {m["hydra"]["launcher"] for m in metas} == {"joblib"}
    # a second sweep continues the numbering with a new sweep id
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


def test_exits_in_a_basic_sweep_end_every_job(edge_app: Path) -> None:
    run_python(["app.py", "-m", ON, "mode=ok,exit5"], edge_app)
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


def test_user_run_dir_is_respected(edge_app: Path) -> None:
    run_python(["app.py", ON, "hydra.run.dir=my_runs/special"], edge_app, check=True)
    folder = edge_app / "my_runs" / "special"
    assert status_of(folder)[0] == "SUCCESS" and metadata_of(folder)["id"] == "special"
    assert not (edge_app / "experiments" / "1").exists()


def test_user_sweep_subdir_is_respected(edge_app: Path) -> None:
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
    for num in (0, 1):
        folder = edge_app / "sweeps" / f"job_{num}"
        assert status_of(folder)[0] == "SUCCESS" and metadata_of(folder)["sweep"]["job_num"] == num
    assert not (edge_app / "experiments").exists()


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
            Path(__file__).parents[1] / "meticulous_hydra/conf/hydra/callbacks/meticulous.yaml"
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
    from meticulous_hydra.hydra_callback import job_dir

    root = tmp_path / "experiments"
    first = job_dir(str(root), "sweep-1", 3)
    other = job_dir(str(root), "sweep-1", 4)
    again = job_dir(str(root), "sweep-1", 3)  # what a requeued job 3 resolves
    assert first == again != other
    assert job_dir(str(root), "sweep-2", 3) not in (first, other)


def test_a_sweep_link_to_another_runs_folder_is_never_followed(tmp_path: Path) -> None:
    import shutil

    from meticulous_hydra import layout
    from meticulous_hydra.hydra_callback import job_dir

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
