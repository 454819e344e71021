"""Where a composed Hydra config's settings come from, in-process (Hydra's
compose API): whether the app set one of Hydra's output dirs, and the
recording switch taken out of the overrides the app sees."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path

import pytest
import yaml
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, OmegaConf

from meticulous_hydra.adapters.hydra_compose import (
    HYDRA_DEFAULTS,
    JOB_SWITCH,
    set_by_app,
    take_switch,
)

RUN, SUBDIR = "hydra.run.dir", "hydra.sweep.subdir"


def write(folder: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(textwrap.dedent(text))
    return folder


@contextmanager
def composed(conf: Path, overrides: list[str], name: str = "config") -> Iterator[DictConfig]:
    """The config as the launching process composes it (Hydra stays
    initialized inside the block, as it is in a callback's hooks)."""
    with initialize_config_dir(str(conf), version_base="1.3"):
        yield compose(name, overrides, return_hydra_config=True)


def user_set(conf: Path, overrides: list[str], key: str, *, sweep: list[str] = ()) -> bool:
    with composed(conf, overrides) as cfg:
        # a sweep's master config holds the sweep spec among its task overrides
        cfg.hydra.overrides.task.extend(sweep)
        return set_by_app(cfg, key, "config", multirun=bool(sweep))


BASE = {"config.yaml": "defaults:\n  - _self_\nlr: 0.1\n"}


def test_hydras_own_defaults_are_not_the_apps(tmp_path: Path) -> None:
    conf = write(tmp_path, BASE)
    assert not user_set(conf, [], RUN)
    assert not user_set(conf, ["lr=0.2"], SUBDIR, sweep=["+x=1,2"])
    # the switch's own configs are ours, not the app's
    assert not user_set(conf, ["+meticulous=on"], SUBDIR)
    assert not user_set(conf, ["hydra/callbacks=meticulous"], RUN)


@pytest.mark.parametrize(
    ("files", "overrides"),
    [
        # the primary config, with Hydra's very value (the workdir example)
        ({"config.yaml": "hydra:\n  sweep:\n    subdir: ${hydra.job.num}\n"}, []),
        # the lightning-hydra-template's configs/hydra/default.yaml
        (
            {
                "config.yaml": "defaults:\n  - _self_\n  - hydra: default\n",
                "hydra/default.yaml": "sweep:\n  subdir: ${hydra.job.num}\n",
            },
            [],
        ),
        # an experiment config merged at the root
        (
            {
                **BASE,
                "experiment/a.yaml": "# @package _global_\nhydra:\n  sweep:\n"
                "    subdir: ${hydra.job.num}\n",
            },
            ["+experiment=a"],
        ),
        # an output config of the app's own, chosen for Hydra's group
        (
            {
                "config.yaml": "defaults:\n  - override hydra/output: mine\n  - _self_\n",
                "hydra/output/mine.yaml": "# @package hydra\nrun:\n  dir: x\nsweep:\n"
                "  dir: y\n  subdir: ${hydra.job.num}\n",
            },
            [],
        ),
        # the command line, even a node above the key
        (BASE, ["hydra.sweep.subdir=${hydra.job.num}"]),
        (BASE, ["hydra.sweep={dir: d, subdir: '${hydra.job.num}'}"]),
        # any other value
        (BASE, ["hydra.sweep.subdir=job${hydra.job.num}"]),
    ],
    ids=["primary", "hydra-group", "global-experiment", "hydra-output", "cli", "cli-node", "value"],
)
def test_set_by_the_app_even_to_hydras_value(
    tmp_path: Path, files: dict[str, str], overrides: list[str]
) -> None:
    conf = write(tmp_path, files)
    assert user_set(conf, overrides, SUBDIR)
    assert user_set(conf, [*overrides, "+meticulous=on"], SUBDIR)


def test_run_dir_set_by_the_app(tmp_path: Path) -> None:
    conf = write(tmp_path, {"config.yaml": "hydra:\n  run:\n    dir: " + HYDRA_DEFAULTS[RUN]})
    assert user_set(conf, [], RUN)
    assert not user_set(conf, [], SUBDIR)


def test_a_swept_group_option_that_sets_it(tmp_path: Path) -> None:
    conf = write(
        tmp_path,
        {
            "config.yaml": "defaults:\n  - _self_\n  - exp: a\n",
            "exp/a.yaml": "lr: 1\n",
            "exp/b.yaml": "# @package _global_\nhydra:\n  sweep:\n    subdir: ${hydra.job.num}\n",
            "exp/c.yaml": "lr: 3\n",
        },
    )
    assert not user_set(conf, [], SUBDIR, sweep=["exp=a,c"])
    assert user_set(conf, [], SUBDIR, sweep=["exp=a,b"])
    assert user_set(conf, [], SUBDIR, sweep=["exp=glob(*)"])


def test_hydras_defaults_are_hydras() -> None:
    shipped = resources.files("hydra.conf").joinpath("hydra/output/default.yaml").read_text()
    output = yaml.safe_load(shipped)
    assert {RUN: output["run"]["dir"], SUBDIR: output["sweep"]["subdir"]} == HYDRA_DEFAULTS


NAMED_BY_OVERRIDES = {
    "config.yaml": """
        defaults:
          - _self_
        hydra:
          job:
            config:
              override_dirname:
                kv_sep: _
                item_sep: __
                exclude_keys: [seed]
        lr: 0.1
        seed: 1
        bs: 8
    """,
}


def test_the_switch_is_in_no_override_the_app_sees(tmp_path: Path) -> None:
    conf = write(tmp_path, NAMED_BY_OVERRIDES)
    with composed(conf, ["seed=2", "lr=0.2", "bs=4"]) as untracked:
        expected = OmegaConf.to_container(untracked.hydra.job, resolve=False)
        expected_hydra = list(untracked.hydra.overrides.hydra)
    with composed(conf, ["seed=2", "+meticulous=on", "lr=0.2", "bs=4"]) as cfg:
        assert cfg.hydra.job.override_dirname == "+meticulous_on__bs_4__lr_0.2"
        assert take_switch(cfg) == ["+meticulous=on"]
        assert list(cfg.hydra.overrides.task) == ["seed=2", "lr=0.2", "bs=4"]
        assert OmegaConf.to_container(cfg.hydra.job, resolve=False) == expected
        # a sweep's jobs are composed with the switch as a Hydra override
        assert list(cfg.hydra.overrides.hydra) == [*expected_hydra, JOB_SWITCH]
        assert take_switch(cfg) == []  # taken once


def test_a_switch_the_apps_defaults_list_has(tmp_path: Path) -> None:
    conf = write(
        tmp_path,
        {"config.yaml": "defaults:\n  - meticulous: enabled\n  - _self_\nlr: 0.1\n"},
    )
    with composed(conf, ["meticulous=on", "lr=0.3"]) as cfg:
        assert "meticulous" in cfg.hydra.callbacks
        hydra_overrides = list(cfg.hydra.overrides.hydra)
        assert take_switch(cfg) == ["meticulous=on"]
        assert list(cfg.hydra.overrides.task) == ["lr=0.3"]
        assert cfg.hydra.job.override_dirname == "lr=0.3"
        # the app's defaults list declares it in every job: nothing to add
        assert list(cfg.hydra.overrides.hydra) == hydra_overrides
