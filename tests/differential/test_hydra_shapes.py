"""The shapes real Hydra apps take, run with tracking off and on by the
differential harness (harness.py): with tracking on, the app sees, prints,
writes and returns what it does with tracking off.

The apps are our own, written in the shapes of the lightning-hydra-template
(its own run and sweep dirs, ``sweep.subdir: ${hydra.job.num}`` set in its
``hydra: default`` config), of Hydra's examples (``configure_hydra/workdir``,
``configure_hydra/job_override_dirname``, ``patterns/write_protect_config_node``),
with no git repository, and with a failing job. Each point of issue 20 that
made tracking visible has its case here.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from helpers import metadata_of, status_of

from meticulous_hydra import layout

from .harness import SWITCH, Case, Observed, assert_invisible, run_both

# -- the lightning-hydra-template's shape --------------------------------------

# Its configs/hydra/default.yaml sets run and sweep dirs of its own under
# logs/, and `sweep.subdir: ${hydra.job.num}`, which is Hydra's default value
# but set by the app; checkpoints and the job log go to the output dir.
TEMPLATE_APP = {
    "train.py": """
        import logging
        import sys
        from pathlib import Path

        import hydra

        log = logging.getLogger(__name__)


        @hydra.main(version_base="1.3", config_path="configs", config_name="train.yaml")
        def main(cfg):
            out = Path(cfg.paths.output_dir)
            (out / "checkpoints").mkdir(exist_ok=True)
            (out / "checkpoints" / "last.ckpt").write_text(f"weights lr={cfg.model.lr}\\n")
            print(f"[{cfg.task_name}] lr={cfg.model.lr} tty={sys.stdout.isatty()}")
            log.info("training done")
            return cfg.model.lr  # the optimized metric, for a sweeper


        if __name__ == "__main__":
            main()
    """,
    "configs/train.yaml": """
        defaults:
          - _self_
          - model: default
          - paths: default
          - hydra: default

        task_name: train
        tags: [dev]
    """,
    "configs/model/default.yaml": """
        lr: 0.001
        hidden: 64
    """,
    "configs/paths/default.yaml": """
        root_dir: .
        log_dir: ${paths.root_dir}/logs/
        output_dir: ${hydra:runtime.output_dir}
    """,
    "configs/hydra/default.yaml": """
        run:
          dir: ${paths.log_dir}${task_name}/runs/${now:%Y-%m-%d}_${now:%H-%M-%S}
        sweep:
          dir: ${paths.log_dir}${task_name}/multiruns/${now:%Y-%m-%d}_${now:%H-%M-%S}
          subdir: ${hydra.job.num}
        job_logging:
          handlers:
            file:
              filename: ${hydra.runtime.output_dir}/${task_name}.log
    """,
}


def jobs_written(seen: Observed, name: str) -> list[str]:
    return sorted(p for p in seen.files if p.endswith(name))


def test_template_sweep_keeps_the_apps_job_dirs(tmp_path: Path) -> None:
    # 20.3: the template's own sweep.subdir, equal to Hydra's default, is the app's
    case = Case("template", TEMPLATE_APP, ["train.py", "-m", "model.lr=0.01,0.1"], jobs=2)
    _, on = assert_invisible(case, "pipe", tmp_path)
    assert jobs_written(on, "last.ckpt") == [
        "logs/train/multiruns/<date>_<time>/0/checkpoints/last.ckpt",
        "logs/train/multiruns/<date>_<time>/1/checkpoints/last.ckpt",
    ]
    root = tmp_path / "template-on" / "experiments"
    for folder in (root / "1", root / "2"):  # and each job is recorded
        assert status_of(folder)[0] == "SUCCESS"
        assert metadata_of(folder)["hydra"]["output_dir"].startswith(
            str(tmp_path / "template" / "logs" / "train" / "multiruns")
        )


def test_template_tests_sweep_into_their_own_dir(tmp_path: Path) -> None:
    # 20.3: the template's tests pass hydra.sweep.dir=<tmp>: the jobs go there
    case = Case(
        "template-tests",
        TEMPLATE_APP,
        ["train.py", "-m", "hydra.sweep.dir=pytest-tmp", "model.lr=0.005,0.01"],
        on=["hydra/callbacks=meticulous"],
        jobs=2,
    )
    _, on = assert_invisible(case, "pipe", tmp_path)
    assert jobs_written(on, "last.ckpt") == [
        "pytest-tmp/0/checkpoints/last.ckpt",
        "pytest-tmp/1/checkpoints/last.ckpt",
    ]


def test_template_run(tmp_path: Path) -> None:
    case = Case("template-run", TEMPLATE_APP, ["train.py", "model.lr=0.02"])
    _, on = assert_invisible(case, "slowpipe", tmp_path)
    assert jobs_written(on, "last.ckpt") == ["logs/train/runs/<date>_<time>/checkpoints/last.ckpt"]


# -- Hydra's configure_hydra/workdir example's shape ---------------------------

# Its primary config sets hydra.run.dir / sweep.dir and `sweep.subdir:
# ${hydra.job.num}` itself.
WORKDIR_APP = {
    "my_app.py": """
        import os

        import hydra


        @hydra.main(version_base="1.3", config_path="conf", config_name="config")
        def experiment(cfg):
            print(os.path.relpath(os.getcwd(), hydra.utils.get_original_cwd()), cfg.a)
            with open("out.txt", "w") as f:
                f.write(f"a={cfg.a}\\n")


        if __name__ == "__main__":
            experiment()
    """,
    "conf/config.yaml": """
        # @package _global_
        hydra:
          job:
            chdir: true
          run:
            dir: run_dir
          sweep:
            dir: sweep_dir
            subdir: ${hydra.job.num}

        a: a1
    """,
}


@pytest.mark.parametrize(
    "on",
    [
        ["hydra/callbacks=meticulous"],
        # declared by hand, as an app's config would
        ["+hydra.callbacks.tracker._target_=meticulous_hydra.MeticulousCallback"],
    ],
    ids=["group", "by-hand"],
)
def test_workdir_example_sweep(tmp_path: Path, on: list[str]) -> None:
    # 20.3, both ways of declaring the callback
    case = Case("workdir", WORKDIR_APP, ["my_app.py", "-m", "a=a1,a2"], on=on, jobs=2)
    _, seen = assert_invisible(case, "pipe", tmp_path)
    assert sorted(p for p in seen.files if p.endswith("out.txt")) == [
        "sweep_dir/0/out.txt",
        "sweep_dir/1/out.txt",
    ]


def test_workdir_example_joblib_sweep(tmp_path: Path) -> None:
    case = Case(
        "workdir-joblib",
        WORKDIR_APP,
        ["my_app.py", "-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "a=a1,a2"],
        jobs=2,
        # joblib prints its workers' lines in the order they come
        substitutions=((re.compile(rb"(?m)^sweep_dir/\d a\d\n"), b"<job line>\n"),),
    )
    assert_invisible(case, "pipe", tmp_path)


# -- Hydra's configure_hydra/job_override_dirname example's shape --------------

# Output dirs named by the overrides: any extra override changes the path.
OVERRIDE_DIRNAME_APP = {
    "my_app.py": """
        import os

        import hydra
        from hydra.core.hydra_config import HydraConfig


        @hydra.main(version_base="1.3", config_path=".", config_name="config")
        def my_app(cfg):
            hc = HydraConfig.get()
            print(f"Working dir {os.path.relpath(hc.runtime.output_dir)}")
            print("overrides:", list(hc.overrides.task), "dirname:", hc.job.override_dirname)
            with open(os.path.join(hc.runtime.output_dir, "result.txt"), "w") as f:
                f.write(f"{cfg.learning_rate} {cfg.batch_size} {cfg.seed}\\n")


        if __name__ == "__main__":
            my_app()
    """,
    "config.yaml": """
        hydra:
          run:
            dir: outputs/${hydra.job.override_dirname}
          sweep:
            dir: multirun
            subdir: ${hydra.job.override_dirname}/seed=${seed}
          job:
            config:
              override_dirname:
                exclude_keys:
                  - seed

        learning_rate: 0.1
        batch_size: 32
        seed: 1
    """,
}


def test_override_dirname_run(tmp_path: Path) -> None:
    # 20.4: the switch is in no override the app sees, nor in its dir names
    case = Case("dirname-run", OVERRIDE_DIRNAME_APP, ["my_app.py", "batch_size=64"])
    _, on = assert_invisible(case, "pipe", tmp_path)
    assert "outputs/batch_size=64/result.txt" in on.files
    assert on.files["outputs/batch_size=64/.hydra/overrides.yaml"] == b"- batch_size=64\n"


def test_override_dirname_sweep(tmp_path: Path) -> None:
    case = Case(
        "dirname-sweep",
        OVERRIDE_DIRNAME_APP,
        ["my_app.py", "-m", "batch_size=32", "learning_rate=0.1,0.2", "seed=1,2"],
        jobs=4,
    )
    _, on = assert_invisible(case, "pipe", tmp_path)
    assert "multirun/batch_size=32,learning_rate=0.1/seed=1/result.txt" in on.files
    # the switch still reaches the record: a reproduction records too
    for folder in sorted((tmp_path / "dirname-sweep-on" / "experiments").glob("[0-9]*")):
        assert SWITCH in metadata_of(folder)["overrides"]


def test_override_dirname_joblib_sweep(tmp_path: Path) -> None:
    # the jobs are composed again in joblib's workers
    case = Case(
        "dirname-joblib",
        OVERRIDE_DIRNAME_APP,
        ["my_app.py", "-m", "hydra/launcher=joblib", "learning_rate=0.1,0.2"],
        jobs=2,
        substitutions=((re.compile(rb"(?m)^(Working dir|overrides:) .*\n"), b"<job line>\n"),),
    )
    _, on = assert_invisible(case, "pipe", tmp_path)
    assert "multirun/learning_rate=0.2/seed=1/result.txt" in on.files


# -- Hydra's patterns/write_protect_config_node example's shape ----------------

FROZEN_APP = {
    "frozen.py": """
        from dataclasses import dataclass

        import hydra
        from hydra.core.config_store import ConfigStore
        from hydra.core.hydra_config import HydraConfig
        from omegaconf import OmegaConf


        @dataclass(frozen=True)
        class SerialPort:
            baud_rate: int = 19200
            data_bits: int = 8
            stop_bits: int = 1


        cs = ConfigStore.instance()
        cs.store(name="config", node=SerialPort)


        @hydra.main(version_base="1.3", config_name="config")
        def my_app(cfg: SerialPort) -> None:
            print(cfg)
            callbacks = HydraConfig.get().callbacks
            print("Hydra's node write-protected:", OmegaConf.is_readonly(callbacks))
            try:
                cfg.baud_rate = 9600
            except Exception as e:
                print("write-protected:", type(e).__name__)


        if __name__ == "__main__":
            my_app()
    """,
}


@pytest.mark.parametrize("sweep", [False, True], ids=["run", "sweep"])
def test_frozen_structured_config(tmp_path: Path, sweep: bool) -> None:
    # 20.5: the switch works on a write-protected config, which stays protected
    dirs = ["-m", "hydra.sweep.dir=out", "hydra.sweep.subdir=${hydra.job.num}"]
    if not sweep:
        dirs = ["hydra.run.dir=out"]
    case = Case("frozen", FROZEN_APP, ["frozen.py", *dirs])
    _, on = assert_invisible(case, "pipe", tmp_path)
    assert b"write-protected: ReadonlyConfigError" in on.shown


# -- no git repository ---------------------------------------------------------

NO_GIT_NOTICE = re.compile(
    rb"(?m)^meticulous-hydra: \S+ is not in a git repository: recording without git state\n"
)


@pytest.mark.parametrize("mode", ["pipe", "tty"])
def test_no_git_repository(tmp_path: Path, mode: str) -> None:
    # 20.7: the notice is on stderr; stdout is the app's alone
    case = Case(
        "no-git", OVERRIDE_DIRNAME_APP, ["my_app.py", "seed=3"], git=False, notices=[NO_GIT_NOTICE]
    )
    assert_invisible(case, mode, tmp_path)


# -- a failing job ----------------------------------------------------------------

FAILING_APP = {
    "app.py": """
        import sys

        import hydra


        def load(path):
            raise FileNotFoundError(f"no such dataset: {path}")


        @hydra.main(version_base="1.3", config_path=".", config_name="config")
        def main(cfg):
            print("starting", cfg.data)
            print("warming up", file=sys.stderr)
            if cfg.data != "ok":
                load(cfg.data)


        if __name__ == "__main__":
            main()
    """,
    "config.yaml": """
        data: missing.csv
        hydra:
          run:
            dir: out/run
          sweep:
            dir: out/sweep
            subdir: ${hydra.job.num}
    """,
}


def stderr_file(tmp_path: Path, name: str, folder: str) -> bytes:
    return (tmp_path / f"{name}-on" / "experiments" / folder / "stderr").read_bytes()


@pytest.mark.parametrize("env", [{}, {"HYDRA_FULL_ERROR": "1"}], ids=["short", "full-error"])
def test_failed_job_stderr_file_holds_what_the_terminal_showed(
    tmp_path: Path, env: dict[str, str]
) -> None:
    # 20.9: Hydra's report (its short traceback, the HYDRA_FULL_ERROR hint)
    case = Case("failing", FAILING_APP, ["app.py", "data=x.csv"], env=env)
    _, on = assert_invisible(case, "pipe", tmp_path)
    assert on.returncode == 1
    shown = re.sub(rb"meticulous-hydra: recording to [^\n]*\n", b"", on.stderr)
    assert b"FileNotFoundError: no such dataset: x.csv" in shown
    assert stderr_file(tmp_path, "failing", "1") == shown
    status, detail = status_of(tmp_path / "failing-on" / "experiments" / "1")
    assert status == "ERROR" and "FileNotFoundError: no such dataset: x.csv" in detail


def test_failed_sweep_job_stderr_file_holds_what_it_printed(tmp_path: Path) -> None:
    case = Case("failing-sweep", FAILING_APP, ["app.py", "-m", "data=ok,x.csv"], jobs=2)
    _, on = assert_invisible(case, "pipe", tmp_path)
    assert on.returncode == 1
    root = tmp_path / "failing-sweep-on" / "experiments"
    (failed,) = [f for f in (root / "1", root / "2") if status_of(f)[0] == "ERROR"]
    # the job printed one line on stderr; Hydra reports the failure after the sweep
    assert (failed / "stderr").read_bytes() == b"warming up\n"
    assert "FileNotFoundError: no such dataset: x.csv" in status_of(failed)[1]


# -- the switch in a defaults list -----------------------------------------------


def test_switch_in_the_apps_defaults_list(tmp_path: Path) -> None:
    # 20.10: `- meticulous: enabled` survives YAML unquoted (`on` is a boolean)
    files = {
        **OVERRIDE_DIRNAME_APP,
        "tracked.yaml": """
            defaults:
              - config
              - meticulous: enabled
              - _self_
        """,
    }
    case = Case(
        "defaults-list",
        files,
        ["my_app.py", "--config-name", "config", "batch_size=8"],
        on=["--config-name", "tracked"],
        # the one difference the two command lines make
        substitutions=((re.compile(rb"config_name: tracked"), b"config_name: config"),),
    )
    assert_invisible(case, "pipe", tmp_path)
    assert status_of(tmp_path / "defaults-list-on" / "experiments" / "1")[0] == "SUCCESS"


# -- an exception of ours in a callback hook ---------------------------------------

ERROR_LINE = re.compile(rb"(?m)^meticulous-hydra: error: [^\n]+\n")


# An app whose task can take the place of its run's summary.json.
HOOK_APP = {
    "app.py": """
        import hydra

        import meticulous_hydra


        @hydra.main(version_base="1.3", config_path=".", config_name="config")
        def main(cfg):
            print("starting", cfg.data)
            exp = meticulous_hydra.current()
            if cfg.get("block_summary") and exp is not None:
                (exp.dir / "summary.json").mkdir()
            return {"loss": 0.5}


        if __name__ == "__main__":
            main()
    """,
    "config.yaml": FAILING_APP["config.yaml"],
}
REFUSED_AT_START = "hydra.callbacks.meticulous.redact=[1]"  # patterns are strings
REFUSED_AT_JOB_START = "+hydra.callbacks.meticulous.description={a: 1}"  # a string too


@pytest.mark.parametrize(
    ("argv", "option", "ran"),
    [
        # a recorder option it refuses at the start of the run or sweep
        (["data=ok"], REFUSED_AT_START, False),
        (["-m", "data=ok,ok2"], REFUSED_AT_START, False),
        # one it refuses as the job starts
        (["data=ok"], REFUSED_AT_JOB_START, False),
        (["-m", "data=ok,ok2"], REFUSED_AT_JOB_START, False),
        (["-m", "hydra/launcher=joblib", "data=ok,ok2"], REFUSED_AT_JOB_START, False),
        # the end of the job can't be recorded: the task took summary.json's place
        (["data=ok", "+block_summary=true"], None, True),
        (["-m", "data=ok,ok2", "+block_summary=true"], None, True),
        (["-m", "hydra/launcher=joblib", "data=ok", "+block_summary=true"], None, True),
    ],
    ids=[
        "run-start",
        "sweep-start",
        "job-start",
        "sweep-job-start",
        "joblib-job-start",
        "job-end",
        "sweep-job-end",
        "joblib-job-end",
    ],
)
def test_an_exception_in_a_callback_hook_stops_the_run_in_one_line(
    tmp_path: Path, argv: list[str], option: str | None, ran: bool
) -> None:
    # 20.11: never Hydra's warning and a run that goes on unrecorded
    on = ["hydra/callbacks=meticulous", *([option] if option else [])]
    case = Case("hook", HOOK_APP, ["app.py", *argv], on=on)
    off, seen = run_both(case, "pipe", tmp_path)
    assert off.returncode == 0, off.stderr
    assert seen.returncode == 1, seen.stderr
    # joblib's loky may warn of what it could not clean up after it killed the
    # other workers (its resource_tracker): loky's lines, not ours or Hydra's
    said = b"\n".join(line for line in seen.stderr.splitlines() if b"resource_tracker" not in line)
    assert b"Warning" not in said and b"Traceback" not in said, seen.stderr
    # one line; joblib's workers may each say it, of their own job
    lines = ERROR_LINE.findall(seen.stderr)
    assert 1 <= len(lines) <= 2 and len(set(lines)) == 1, seen.stderr
    assert (b"starting" in seen.shown) is ran, seen.shown
    root = tmp_path / "hook-on" / "experiments"
    statuses = []
    for folder in root.glob("[0-9]*") if root.exists() else ():
        if "hydra/launcher=joblib" in argv and not (folder / "STATUS").exists():
            # joblib kills (SIGKILL) the jobs still running once one failed: a
            # job killed before its run started keeps its claimed folder, unlisted
            assert not layout.is_experiment_dir(folder), folder
            continue
        # no run left RUNNING, or silently unrecorded
        statuses.append(status_of(folder)[0])
    assert set(statuses) <= {"ERROR"} and (statuses or not root.exists()), statuses
