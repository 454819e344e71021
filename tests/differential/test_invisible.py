"""Tracking on is invisible: the same apps run off and on, compared by the
differential harness (harness.py) on everything the user can observe.

Each shape real apps take gets a case here; a point of the issue that made
tracking visible gets its case beside the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from .harness import SWITCH, Case, assert_invisible

# An app with its own output dirs (as the lightning-hydra-template has), that
# prints to both streams, logs, and writes into its output dir.
OWN_DIRS_APP = {
    "app.py": """
        import logging
        import sys

        import hydra
        from hydra.core.hydra_config import HydraConfig

        log = logging.getLogger(__name__)


        @hydra.main(version_base="1.3", config_path="conf", config_name="config")
        def main(cfg):
            print(f"lr={cfg.lr} isatty={sys.stdout.isatty()}/{sys.stderr.isatty()}")
            print("to stderr", file=sys.stderr)
            log.info("a log line")
            out = HydraConfig.get().runtime.output_dir
            with open(f"{out}/model.txt", "w") as f:
                f.write(f"weights for lr={cfg.lr}\\n")
            return cfg.lr


        if __name__ == "__main__":
            main()
    """,
    "conf/config.yaml": """
        lr: 0.1
        hydra:
          run:
            dir: logs/runs/${now:%Y-%m-%d}_${now:%H-%M-%S}
          sweep:
            dir: logs/multiruns/${now:%Y-%m-%d}_${now:%H-%M-%S}
            subdir: job${hydra.job.num}
    """,
}


# Both ways to switch recording on: +meticulous=on adds the callback next to
# the app's own; hydra/callbacks=meticulous replaces the app's choice of them.
SWITCHES = pytest.mark.parametrize(
    "on", [[SWITCH], ["hydra/callbacks=meticulous"]], ids=["plus-switch", "callbacks-group"]
)


@SWITCHES
@pytest.mark.parametrize("mode", ["pipe", "slowpipe"])
def test_an_app_with_its_own_output_dirs(tmp_path: Path, mode: str, on: list[str]) -> None:
    case = Case("own-dirs", OWN_DIRS_APP, ["app.py", "lr=0.2"], on=on)
    assert_invisible(case, mode, tmp_path)


@SWITCHES
def test_a_sweep_with_its_own_sweep_dir(tmp_path: Path, on: list[str]) -> None:
    off, _ = assert_invisible(
        Case("own-sweep", OWN_DIRS_APP, ["app.py", "-m", "lr=0.1,0.2"], on=on, jobs=2),
        "pipe",
        tmp_path,
    )
    jobs = sorted(p for p in off.files if p.endswith("model.txt"))
    assert jobs == [
        "logs/multiruns/<date>_<time>/job0/model.txt",
        "logs/multiruns/<date>_<time>/job1/model.txt",
    ]
    assert (tmp_path / "own-sweep-on" / "experiments" / "2" / "STATUS").exists()


def test_the_harness_sees_a_difference(tmp_path: Path) -> None:
    # the harness itself: a visible change fails, showing what differs
    case = Case(
        "visible",
        {"app.py": "import os, sys\nprint('x' if os.environ.get('TRACKED') else 'y')\n"},
        ["app.py"],
        on=[],
        env_on={"TRACKED": "1"},
    )
    with pytest.raises(AssertionError, match=r"(?s)-y.*\+x"):
        assert_invisible(case, "pipe", tmp_path)
