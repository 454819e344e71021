"""Tracking on is invisible where secrets and the record meet: redaction
never breaks a run or Hydra's own files (issue 20 #6, #11), and untracked
code the task imports is no silent hole in the record (#12).

The app of each case keeps Hydra's default output dir, so that tracked, its
output dir is the run's folder, where the callback cleans Hydra's files: the
files Hydra writes under ``outputs/`` untracked are then compared with the
run folder's by each case's own check."""

from __future__ import annotations

from pathlib import Path

import yaml
from helpers import metadata_of, status_of
from omegaconf import OmegaConf

from .harness import Case, assert_invisible

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
TOKEN_CONFIG = """
hf_token: ${oc.env:HF_TOKEN,none}
wandb_api_key: ${oc.env:WANDB_KEY,offline_key}
db:
  host: localhost
  password: hunter22
  url: postgres://me:${db.password}@${db.host}/db
"""


def test_an_env_default_in_a_secret_key_is_recorded_and_hydra_files_parse(tmp_path: Path) -> None:
    # the shape: the variables unset, defaults of 4+ characters
    case = Case(
        "env-defaults",
        {"app.py": TOKEN_APP, "config.yaml": TOKEN_CONFIG},
        ["app.py"],
        on=CALLBACK,
        may_differ=moved(*HYDRA_FILES, "app.log"),
    )
    assert_invisible(case, "pipe", tmp_path)
    off, on = hydra_dirs(tmp_path, case.name)
    assert status_of(on)[0] == "SUCCESS" and metadata_of(on)["redacted"]
    for name in HYDRA_FILES:
        text = (on / name).read_text()
        assert "hunter22" not in text and "offline_key" not in text, name
        OmegaConf.create(text)  # parses, interpolations included
    cfg = OmegaConf.load(on / ".hydra" / "config.yaml")
    assert cfg.hf_token == "none"  # not a secret: kept, resolves as untracked
    assert yaml.safe_load((on / "config.yaml").read_text())["db"]["url"] == (
        "postgres://me:<redacted>@localhost/db"
    )
    # the rest of Hydra's config stays as Hydra wrote it
    assert (on / ".hydra" / "overrides.yaml").read_bytes() == (
        off / ".hydra" / "overrides.yaml"
    ).read_bytes()
