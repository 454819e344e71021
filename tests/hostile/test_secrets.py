"""Hostile input against what the record keeps: secrets wherever they hide
(interpolated into a string, in a list, behind every spelling argparse
accepts), a git environment that points elsewhere, a huge diff."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from helpers import git, make_repo, metadata_of, shared_once, write_script

from meticulous_hydra import Experiment, record
from meticulous_hydra.recorder.gitstate import read_git_state
from meticulous_hydra.recorder.redact import REDACTED


def files_holding(folder: Path, secrets: list[str]) -> list[tuple[str, str]]:
    """(file, secret) for every secret found in any file under ``folder``."""
    return [
        (str(path.relative_to(folder)), secret)
        for path in sorted(folder.rglob("*"))
        if path.is_file()
        for secret in secrets
        if secret.encode() in path.read_bytes()
    ]


# -- git state describes the code's own repository (21.14) ------------------------------------


@pytest.mark.parametrize(
    "env",
    [
        {"GIT_DIR": "{other}/.git"},
        {"GIT_DIR": "{other}/.git", "GIT_WORK_TREE": "{other}"},
        {"GIT_WORK_TREE": "{other}"},
        {"GIT_INDEX_FILE": "{other}/.git/index"},
        {"GIT_CEILING_DIRECTORIES": "{code}"},
    ],
    ids=["git-dir", "git-dir-and-work-tree", "work-tree", "index-file", "ceiling"],
)
def test_the_git_environment_never_points_elsewhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, env: dict[str, str]
) -> None:
    # a run started from a git hook, or by a dotfiles alias, inherits GIT_DIR and friends
    code = make_repo(tmp_path / "code", {"src/train.py": "print(1)\n"})
    other = make_repo(tmp_path / "other", {"notes.txt": "v1\n"})
    (other / "notes.txt").write_text("v2\n")  # the other repository is dirty
    sha = git(code, "rev-parse", "HEAD").strip()
    for name, value in env.items():
        monkeypatch.setenv(name, value.format(other=other, code=code))
    state = read_git_state(code / "src", allow_dirty=False, flag_hint="--allow-dirty")
    assert state is not None
    assert (state.sha, state.toplevel) == (sha, str(code))
    assert state.dirty is False and state.modified == [] and state.untracked == []


def test_reproduce_reads_the_recorded_repository_whatever_git_dir_says(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from meticulous_hydra.replay.reproduce import check_commit, commit_distance

    code = make_repo(tmp_path / "code", {"train.py": "print(1)\n"})
    other = make_repo(tmp_path / "other", {"notes.txt": "v1\n"})
    sha = git(code, "rev-parse", "HEAD").strip()
    monkeypatch.setenv("GIT_DIR", str(other / ".git"))
    check_commit(code, sha)  # a UsageError if git looked in the other repository
    assert commit_distance(code, sha) == "same commit as HEAD"


# -- a huge git.diff goes to the file, not through memory (21.7) --------------------------------

PEAK = """
import sys
from meticulous_hydra import Experiment
exp = Experiment({}, allow_dirty=True, capture_output=False)
exp.finish()
# VmHWM: this process's own peak (ru_maxrss would fold in pytest's, at exec)
print([l.split()[1] for l in open("/proc/self/status") if l.startswith("VmHWM:")][0])
"""


def test_a_huge_diff_is_streamed_to_its_file_with_flat_memory(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", {"data.txt": "v1\n", ".gitignore": "/experiments/\n"})
    write_script(repo, "peak.py", PEAK, commit=True)

    def peak_kb(lines: int) -> int:
        with open(repo / "data.txt", "w") as f:
            f.writelines(
                f"line {i} {i * 7919 % 1000003:07d} of a big change\n" for i in range(lines)
            )
        proc = subprocess.run(
            [sys.executable, "peak.py"], cwd=repo, capture_output=True, text=True, timeout=120
        )
        assert proc.returncode == 0, proc.stderr
        return int(proc.stdout.split()[-1])

    small = peak_kb(10)
    big = peak_kb(1_200_000)  # a 45 MB diff
    diff = repo / "experiments" / "2" / "git.diff"
    expected = subprocess.run(
        ["git", "-C", str(repo), "diff", "HEAD", "--binary"], capture_output=True, check=True
    ).stdout
    assert diff.stat().st_size == len(expected) > 40 * 2**20
    assert diff.read_bytes() == expected
    # the 45 MB went to the file, not through this process
    assert big - small < 12 * 1024, (small, big)


SWEEP_APP = """
import hydra

@hydra.main(version_base="1.3", config_path=None, config_name=None)
def main(cfg):
    print("job", cfg.x)

if __name__ == "__main__":
    main()
"""


def test_a_sweep_keeps_its_diff_once_for_all_its_jobs(tmp_path: Path) -> None:
    # the launching process reads git once; every job writes the diff of then
    app = make_repo(tmp_path / "app", {"app.py": SWEEP_APP, "data.txt": "v1\n"})
    (app / "data.txt").write_text("v2\n" * 1000)
    allow = "hydra.callbacks.meticulous.allow_dirty=true"
    proc = subprocess.run(
        [sys.executable, "app.py", "-m", "hydra/callbacks=meticulous", allow, "+x=1,2,3"],
        cwd=app,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    root = app / "experiments"
    expected = subprocess.run(
        ["git", "-C", str(app), "diff", "HEAD", "--binary"], capture_output=True, check=True
    ).stdout
    diffs = [root / n / "git.diff" for n in ("1", "2", "3")]
    assert [d.read_bytes() for d in diffs] == [expected] * 3
    assert len({d.stat().st_ino for d in diffs}) == 1  # one copy on disk
    # the launching process's copy goes when the sweep ends
    assert not list((root / ".sweeps").glob("*/git.diff"))


# -- a secret's value, wherever it appears in a recorded string (21.11, 21.12) -------------------


def test_a_secret_interpolated_into_another_string_is_scrubbed(tmp_path: Path) -> None:
    config = {
        "db": {"password": "S3CRETpw"},
        "url": "postgres://user:S3CRETpw@host/db",  # what ${db.password} resolves to
        "api_tokens": ["TOKENaa1", "TOKENbb2"],
        "lr": 0.1,
    }
    exp = Experiment(config, root=tmp_path / "runs", capture_output=False, code_dir=tmp_path)
    exp.finish()
    assert files_holding(exp.dir, ["S3CRETpw", "TOKENaa1", "TOKENbb2"]) == []
    assert exp.config["url"] == f"postgres://user:{REDACTED}@host/db"
    assert exp.config["api_tokens"] == [REDACTED, REDACTED]
    assert exp.config["lr"] == 0.1
    assert sorted(metadata_of(exp.dir)["redacted"]) == [
        "api_tokens[0]",
        "api_tokens[1]",
        "db.password",
    ]


SECRETS_APP = """
import hydra

@hydra.main(version_base="1.3", config_path=".", config_name="config")
def main(cfg):
    print("connecting to", cfg.db.host)
    return {"rows": 3}

if __name__ == "__main__":
    main()
"""
SECRETS_CONFIG = """
db:
  password: S3CRETpw0
  host: localhost
url: postgres://user:${db.password}@${db.host}/db
dsn: "host=${db.host} password='${db.password}'"
hydra:
  callbacks:
    pickle:
      _target_: hydra.experimental.callbacks.PickleJobInfoCallback
"""
SWEEP_SECRETS = ["S3CRETpw1", "S3CRETpw2"]
LIST_SECRETS = ["TOKENaa1", "TOKENbb2"]


def _secret_sweep(folder: Path) -> dict[str, Any]:
    app = make_repo(folder / "app", {"app.py": SECRETS_APP, "config.yaml": SECRETS_CONFIG})
    proc = subprocess.run(
        [
            sys.executable,
            "app.py",
            "-m",
            "+meticulous=on",
            f"db.password={','.join(SWEEP_SECRETS)}",
            f"+api_tokens=[{','.join(LIST_SECRETS)}]",
        ],
        cwd=app,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return {"returncode": proc.returncode, "stderr": proc.stderr}


@pytest.fixture
def secret_sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One Hydra sweep of two jobs, each with its password interpolated into
    other strings and a list of tokens (made once per session)."""
    folder, result = shared_once(tmp_path_factory, "secret-sweep", _secret_sweep)
    assert result["returncode"] == 0, result["stderr"]
    return folder / "app" / "experiments"


def test_no_job_of_a_sweep_records_a_secret_interpolated_or_listed(secret_sweep: Path) -> None:
    for n in ("1", "2"):
        job = secret_sweep / n
        assert (job / ".hydra" / "config.pickle").exists()
        assert files_holding(job, [*SWEEP_SECRETS, *LIST_SECRETS, "S3CRETpw0"]) == []
        config = json.loads((job / "config.json").read_text())
        assert config["url"] == f"postgres://user:{REDACTED}@localhost/db"
        assert config["dsn"] == f"host=localhost password='{REDACTED}'"
        assert config["api_tokens"] == [REDACTED, REDACTED]
        assert json.loads((job / "summary.json").read_text()) == {"rows": 3}


# -- argparse: redacted by the option's destination, however it was typed (21.12, 21.13) -------


def secret_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="train.py")
    p.add_argument("-p", "--db-password")
    p.add_argument("--api-token")
    p.add_argument("--secret-list", nargs="+")
    p.add_argument("--pin", dest="password_pin", nargs=2)  # secret by its destination
    p.add_argument("-v", "--verbose", action="store_true")
    p.add_argument("--name", default="run")
    p.add_argument("--lr", type=float, default=0.1)
    return p


@pytest.mark.parametrize(
    ("given", "recorded"),
    [
        (["-p", "ab", "--name", "ab"], ["-p", REDACTED, "--name", "ab"]),
        (["-pS3CRET1"], [f"-p{REDACTED}"]),
        (["--db-pass", "S3CRET2", "--lr", "0.5"], ["--db-pass", REDACTED, "--lr", "0.5"]),
        (["--api-tok=S3CRET3"], [f"--api-tok={REDACTED}"]),
        (["--db-password=S3CRET4"], [f"--db-password={REDACTED}"]),
        (["-vpS3CRET5", "--name", "x"], [f"-vp{REDACTED}", "--name", "x"]),
        (["-vp", "S3CRET6"], ["-vp", REDACTED]),
        (["--secret-list", "S3CRET7", "S3CRET8", "--lr", "1"], ["--secret-list", REDACTED, REDACTED, "--lr", "1"]),
        (["--pin", "12", "34", "--name", "34"], ["--pin", REDACTED, REDACTED, "--name", "34"]),
    ],
    ids=["short", "short-attached", "abbreviated", "abbreviated-equals", "equals",
         "flags-then-attached", "flags-then-value", "list", "by-destination"],
)  # fmt: skip
def test_argparse_argv_is_redacted_by_destination(
    repo: Path, monkeypatch: pytest.MonkeyPatch, given: list[str], recorded: list[str]
) -> None:
    monkeypatch.chdir(repo)
    monkeypatch.setattr(sys, "argv", ["train.py", *given])
    _, exp = record(secret_parser(), capture_output=False)
    exp.finish()
    meta = metadata_of(exp.dir)
    assert meta["argv"][-len(given) :] == recorded
    assert meta["launch"]["argv"][-len(given) :] == recorded
    # what the redaction replaced appears in no file (short ones, like "ab",
    # are also the value of --name: their place in argv is what counts)
    pairs = zip(given, recorded, strict=True)
    hidden = [g[len(r) - len(REDACTED) :] for g, r in pairs if r.endswith(REDACTED)]
    assert files_holding(exp.dir, [h for h in hidden if len(h) >= 4]) == []


def test_a_subcommands_options_are_read_by_its_own_parser() -> None:
    from meticulous_hydra.adapters.argparse_adapter import redact_parsed_argv
    from meticulous_hydra.recorder.redact import Redactor

    p = argparse.ArgumentParser()
    p.add_argument("-k", "--keep", action="store_true")
    sub = p.add_subparsers(dest="cmd")
    fit = sub.add_parser("fit")
    fit.add_argument("-k", "--api-key")
    fit.add_argument("rest", nargs=argparse.REMAINDER)
    given = ["-k", "fit", "-kS3CRET", "--api", "S3CRET", "x", "--", "-k", "y"]
    p.parse_args(given)  # what argparse accepts
    assert redact_parsed_argv(p, given, Redactor()) == [
        "-k",
        "fit",
        f"-k{REDACTED}",
        "--api",
        REDACTED,
        "x",
        "--",
        "-k",
        "y",
    ]
