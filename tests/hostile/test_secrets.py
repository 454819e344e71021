"""Hostile input against what the record keeps: secrets wherever they hide
(interpolated into a string, in a list, behind every spelling argparse
accepts), a git environment that points elsewhere, a huge diff."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import git, make_repo

from meticulous_hydra.recorder.gitstate import read_git_state

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
