"""Tracking on is invisible where secrets and the record meet: redaction
never breaks a run or Hydra's own files (issue 20 #6, #11), and untracked
code the task imports is no silent hole in the record (#12).

The app of each case keeps Hydra's default output dir, so that tracked, its
output dir is the run's folder, where the callback cleans Hydra's files: the
files Hydra writes under ``outputs/`` untracked are then compared with the
run folder's by each case's own check."""

from __future__ import annotations

import json
import pickle
import re
from pathlib import Path
from typing import Any

import yaml
from helpers import metadata_of, status_of
from omegaconf import OmegaConf

from meticulous_hydra import cli

from .harness import Case, assert_invisible, run_both

OUTPUTS = "outputs/<date>/<time>"
# the callback as a config group: +meticulous=on enters the job's overrides
# (issue 20 #4, not these cases' point)
CALLBACK = ["hydra/callbacks=meticulous"]
HYDRA_FILES = (".hydra/config.yaml", ".hydra/hydra.yaml", ".hydra/overrides.yaml")
MOVED = "untracked, Hydra's output dir is outputs/...; tracked, it is the run's folder"


def moved(*names: str) -> dict[str, str]:
    """The files Hydra writes in its output dir: outside the root only untracked."""
    return {f"{OUTPUTS}/{name}": MOVED for name in names}


def hydra_dirs(base: Path, name: str) -> tuple[Path, Path]:
    """Hydra's output dir untracked, and tracked (the run's folder)."""
    (off,) = (base / f"{name}-off" / "outputs").glob("*/*")
    return off, base / f"{name}-on" / "experiments" / "1"


# -- 20.11: a default that looks like a secret never stops the record --------------------------

TOKEN_APP = """
import hydra

@hydra.main(version_base="1.3", config_path=".", config_name="config")
def main(cfg):
    print("logged in" if cfg.hf_token != "none" else "anonymous", cfg.wandb_api_key)
    print("db at", cfg.db.host)

if __name__ == "__main__":
    main()
"""
# defaults of 4+ characters in secret keys (the variables unset), and a
# literal password that another interpolation's default repeats
TOKEN_CONFIG = """
hf_token: ${oc.env:HF_TOKEN,none}
wandb_api_key: ${oc.env:WANDB_KEY,offline_key}
db:
  host: localhost
  password: hunter22
  url: postgres://me:${db.password}@${db.host}/db
  dsn: ${oc.env:DSN,'host=localhost password=hunter22'}
"""


def test_env_defaults_in_secret_keys_never_stop_the_record(tmp_path: Path) -> None:
    case = Case(
        "env-defaults",
        {"app.py": TOKEN_APP, "config.yaml": TOKEN_CONFIG},
        ["app.py"],
        on=CALLBACK,
        may_differ=moved(*HYDRA_FILES, "app.log"),
    )
    assert_invisible(case, "pipe", tmp_path)
    off, on = hydra_dirs(tmp_path, case.name)
    assert status_of(on)[0] == "SUCCESS"
    assert metadata_of(on)["redacted"] == ["hf_token", "wandb_api_key", "db.password"]
    for name in HYDRA_FILES:
        text = (on / name).read_text()
        assert "hunter22" not in text, name
        OmegaConf.create(text)  # parses, interpolations included
    # the defaults, typed in the config, are kept as typed: only the password goes
    a, b = (off / HYDRA_FILES[0]).read_text(), (on / HYDRA_FILES[0]).read_text()
    assert b == a.replace("hunter22", "<redacted>")
    assert OmegaConf.load(on / HYDRA_FILES[0]).db.dsn == "host=localhost password=<redacted>"
    config = yaml.safe_load((on / "config.yaml").read_text())
    assert config["db"]["url"] == "postgres://me:<redacted>@localhost/db"


# -- 20.6: Hydra's files untouched unless a secret must go, then of the same types ------------

RERUN_APP = """
import os
import shutil
import hydra
from hydra.core.hydra_config import HydraConfig

@hydra.main(version_base="1.3", config_path=".", config_name="config")
def main(cfg):
    hc = HydraConfig.get()
    print("lr", cfg.lr, "user", cfg.db.user, "job", hc.job.name, "mode", hc.mode)
    out = hc.runtime.output_dir
    if not os.path.exists(f"{out}/.hydra/rerun"):  # the pickle as the start hooks left it
        shutil.copy(f"{out}/.hydra/config.pickle", f"{out}/seen.pickle")
    return cfg.lr

if __name__ == "__main__":
    main()
"""
RERUN_CONFIG = """
lr: 0.1
db:
  user: me
  password: ???
hydra:
  callbacks:
    pickle:
      _target_: hydra.experimental.callbacks.PickleJobInfoCallback
"""
# runs the app, then Hydra's --experimental-rerun of the config it pickled
RERUN_DRIVER = """
import glob, subprocess, sys

run = subprocess.run([sys.executable, "app.py", *sys.argv[1:]])
[pickled] = glob.glob("outputs/*/*/.hydra/config.pickle") + glob.glob("experiments/*/.hydra/config.pickle")
with open(pickled.replace("config.pickle", "rerun"), "w"):
    pass
rerun = subprocess.run([sys.executable, "-W", "ignore", "app.py", "--experimental-rerun", pickled])
print("exit codes", run.returncode, rerun.returncode)
"""


def node_types(node: Any, path: str = "") -> dict[str, str]:
    """Every node of an OmegaConf tree by dotted path: its class, its
    structured type and its flags (what a rerun's set_config checks)."""
    from omegaconf import DictConfig, ListConfig

    flags = f"ro={node._get_node_flag('readonly')},struct={node._get_node_flag('struct')}"
    out = {path: f"{type(node).__name__}:{OmegaConf.get_type(node)}:{flags}"}
    if isinstance(node, DictConfig) and not node._is_none() and not node._is_missing():
        children = [(f"{path}.{k}" if path else str(k), node._get_node(k)) for k in node]
    elif isinstance(node, ListConfig) and not node._is_none() and not node._is_missing():
        children = [(f"{path}[{i}]", node._get_node(i)) for i in range(len(node))]
    else:
        return out
    for key, child in children:
        if isinstance(child, (DictConfig, ListConfig)):
            out.update(node_types(child, key))
        else:
            out[key] = type(child).__name__
    return out


# what declaring the callback adds to Hydra's config, tracked
_CALLBACK_NODES = ("hydra.callbacks.meticulous", "hydra.overrides.hydra[")


def pickled_types(folder: Path) -> dict[str, Any]:
    """The node types of Hydra's two pickles in ``folder`` (its .hydra/)."""
    with open(folder / ".hydra" / "config.pickle", "rb") as f:
        config = pickle.load(f)
    with open(folder / ".hydra" / "job_return.pickle", "rb") as f:
        job_return = pickle.load(f)
    out = {}
    for name, cfg in (("config", config), ("cfg", job_return.cfg), ("hydra", job_return.hydra_cfg)):
        types = node_types(cfg)
        out[name] = {k: v for k, v in types.items() if not k.startswith(_CALLBACK_NODES)}
    return out


def rerun_case(name: str, secret: list[str]) -> Case:
    return Case(
        name,
        {"app.py": RERUN_APP, "config.yaml": RERUN_CONFIG, "both.py": RERUN_DRIVER},
        ["both.py", "db.password=${oc.env:DB_PASS,unset}", *secret],
        on=CALLBACK,
        may_differ=moved(
            *HYDRA_FILES, ".hydra/config.pickle", ".hydra/job_return.pickle", ".hydra/rerun",
            "app.log", "seen.pickle",
        ),
        # Hydra's output dir, as the pickle callback's log lines name it
        substitutions=[(re.compile(rb"/(outputs/<date>/<time>|experiments/1)/"), b"/<out>/")],
    )  # fmt: skip


def test_a_tracked_run_without_secrets_is_rerun_and_hydras_files_are_untouched(
    tmp_path: Path,
) -> None:
    case = rerun_case("rerun-plain", [])
    _, on_seen = assert_invisible(case, "pipe", tmp_path)
    assert b"exit codes 0 0" in on_seen.shown
    off, on = hydra_dirs(tmp_path, case.name)
    assert status_of(on)[0] == "SUCCESS"
    for name in (".hydra/config.yaml", ".hydra/overrides.yaml"):
        assert (on / name).read_bytes() == (off / name).read_bytes(), name
    # the pickle as Hydra wrote it, never rewritten by the callback after the task
    assert (on / ".hydra" / "config.pickle").read_bytes() == (on / "seen.pickle").read_bytes()
    assert pickled_types(on) == pickled_types(off)


def test_a_tracked_run_with_a_secret_keeps_hydras_types_and_is_rerun(tmp_path: Path) -> None:
    case = rerun_case("rerun-secret", ["+db.token=hunter22"])
    _, on_seen = assert_invisible(case, "pipe", tmp_path)
    assert b"exit codes 0 0" in on_seen.shown
    off, on = hydra_dirs(tmp_path, case.name)
    for path in (on / ".hydra").iterdir():
        assert b"hunter22" not in path.read_bytes(), path
    assert pickled_types(on) == pickled_types(off)  # HydraConf and every other type kept
    # only the secret's lines differ from what Hydra wrote
    for name in (".hydra/config.yaml", ".hydra/overrides.yaml"):
        a, b = (off / name).read_text().splitlines(), (on / name).read_text().splitlines()
        changed = [(x, y) for x, y in zip(a, b, strict=True) if x != y]
        assert changed and all("hunter22" in x and "<redacted>" in y for x, y in changed), name


# -- 20.12: untracked code the task imports lazily -------------------------------------------

LAZY_APP = """
import hydra
from hydra.utils import instantiate

@hydra.main(version_base="1.3", config_path=".", config_name="config")
def main(cfg):
    model = instantiate(cfg.model)  # imports helper.py, new and never added
    print("model of width", model.width)
    return {"score": model.score()}

if __name__ == "__main__":
    main()
"""
LAZY_CONFIG = """
model:
  _target_: helper.Model
  width: 3
"""
HELPER = """
class Model:
    def __init__(self, width):
        self.width = width

    def score(self):
        return self.width * 0.25
"""
ALLOW_DIRTY = "hydra.callbacks.meticulous.allow_dirty=true"


def lazy_case(on: list[str]) -> Case:
    return Case(
        "lazy-import",
        {"app.py": LAZY_APP, "config.yaml": LAZY_CONFIG},
        ["app.py"],
        untracked={"helper.py": HELPER},
        on=on,
        may_differ=moved(*HYDRA_FILES, "app.log"),
    )


def test_untracked_code_that_could_run_refuses_the_run_before_the_task(tmp_path: Path) -> None:
    off, on = run_both(lazy_case(CALLBACK), "pipe", tmp_path)
    assert (off.returncode, on.returncode) == (0, 1)
    assert b"model of width" in off.shown and b"model of width" not in on.shown
    (line,) = on.stderr.decode().splitlines()
    assert "helper.py" in line and ALLOW_DIRTY in line
    assert not (tmp_path / "lazy-import-on" / "experiments" / "1").exists()


def test_untracked_code_imported_lazily_is_saved_and_reproduced(tmp_path: Path, capfd: Any) -> None:
    case = lazy_case([*CALLBACK, ALLOW_DIRTY])
    assert_invisible(case, "pipe", tmp_path)
    app = tmp_path / case.name
    (tmp_path / f"{case.name}-on").rename(app)  # where it ran: reproduce rebuilds from there
    run = app / "experiments" / "1"
    git_meta = metadata_of(run)["git"]
    assert git_meta["dirty"] is True and git_meta["untracked_saved"] == ["helper.py"]
    assert (run / "untracked" / "helper.py").read_text() == (app / "helper.py").read_text()
    (app / "helper.py").unlink()  # gone from the working tree: the record has it
    capfd.readouterr()
    code = cli.main(["reproduce", str(run), "--run"])
    out = capfd.readouterr().out
    assert code == 0, out
    assert "run 2 reproduces run 1: SUCCESS" in out and "config: identical" in out
    assert json.loads((app / "experiments" / "2" / "summary.json").read_text()) == {"score": 0.75}
