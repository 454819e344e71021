"""Hostile input against what the record keeps: secrets wherever they hide
(interpolated into a string, in a list, behind every spelling argparse
accepts), a git environment that points elsewhere, a huge diff."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from helpers import git, make_repo, write_script

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
