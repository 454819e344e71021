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
from helpers import status_of

from .harness import Case, assert_invisible, run_both

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


GROUP = ["hydra/callbacks=meticulous"]


def stderr_file(tmp_path: Path, name: str, folder: str) -> bytes:
    return (tmp_path / f"{name}-on" / "experiments" / folder / "stderr").read_bytes()


@pytest.mark.parametrize("env", [{}, {"HYDRA_FULL_ERROR": "1"}], ids=["short", "full-error"])
def test_failed_job_stderr_file_holds_what_the_terminal_showed(
    tmp_path: Path, env: dict[str, str]
) -> None:
    # 20.9: Hydra's report (its short traceback, the HYDRA_FULL_ERROR hint)
    case = Case("failing", FAILING_APP, ["app.py", "data=x.csv"], env=env, on=GROUP)
    _, on = assert_invisible(case, "pipe", tmp_path)
    assert on.returncode == 1
    shown = re.sub(rb"meticulous-hydra: recording to [^\n]*\n", b"", on.stderr)
    assert b"FileNotFoundError: no such dataset: x.csv" in shown
    assert stderr_file(tmp_path, "failing", "1") == shown
    status, detail = status_of(tmp_path / "failing-on" / "experiments" / "1")
    assert status == "ERROR" and "FileNotFoundError: no such dataset: x.csv" in detail


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
    assert b"Warning" not in seen.stderr and b"Traceback" not in seen.stderr, seen.stderr
    # one line; joblib's workers may each say it, of their own job
    lines = ERROR_LINE.findall(seen.stderr)
    assert 1 <= len(lines) <= 2 and len(set(lines)) == 1, seen.stderr
    assert (b"starting" in seen.shown) is ran, seen.shown
    root = tmp_path / "hook-on" / "experiments"
    for folder in root.glob("[0-9]*") if root.exists() else ():
        # no run left RUNNING, or silently unrecorded
        assert status_of(folder)[0] == "ERROR", folder
