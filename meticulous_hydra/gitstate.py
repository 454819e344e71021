"""The git state of the code being run, read with the git command line.

GitPython costs ~70 ms to import, the whole overhead budget of a run, and calls
the same git binary underneath; three short git calls are all we need.
"""

from __future__ import annotations

import logging
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .exceptions import DirtyRepoError  # older code imports it from here

log = logging.getLogger("meticulous_hydra")
_warned_no_repo = False


@dataclass
class GitState:
    """What the recorder writes under ``git`` in metadata.json."""

    sha: str | None
    branch: str | None
    message: str
    remote: str | None
    dirty: bool
    modified: list[str]
    untracked: list[str] = field(default_factory=list)
    toplevel: str = ""
    # binary-safe ``git diff HEAD``; saved as its own file, not in metadata
    diff: bytes = b""

    def as_metadata(self) -> dict[str, Any]:
        return {
            "sha": self.sha,
            "branch": self.branch,
            "message": self.message,
            "remote": self.remote,
            "dirty": self.dirty,
            "modified": self.modified,
            "untracked": self.untracked,
            "toplevel": self.toplevel,
        }


def _git_all(cwd: Path, *commands: tuple[str, ...]) -> list[subprocess.CompletedProcess[bytes]]:
    """Run git commands side by side: each call costs a few ms of start-up,
    paid by every recorded run."""
    procs = [
        (
            args,
            subprocess.Popen(
                ["git", "-C", str(cwd), *args],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                stdin=subprocess.DEVNULL,
            ),
        )
        for args in commands
    ]
    results = []
    for args, proc in procs:
        out, err = proc.communicate()
        results.append(subprocess.CompletedProcess(list(args), proc.returncode, out, err))
    return results


def _warn_once(message: str) -> None:
    global _warned_no_repo
    if not _warned_no_repo:
        _warned_no_repo = True
        log.warning(message)


def read_git_state(code_dir: Path, *, allow_dirty: bool, flag_hint: str) -> GitState | None:
    """Read the state of the repository holding ``code_dir``.

    Returns None (after one warning per process) outside a repository. Raises
    DirtyRepoError for modified tracked files unless ``allow_dirty``; then the
    diff against HEAD and the untracked files are collected so the run can be
    reproduced. ``flag_hint`` names the option that allows dirty trees.
    """
    try:
        status, info, top, remote_proc = _git_all(
            code_dir,
            ("status", "--porcelain=v2", "--branch", "--untracked-files=no", "-z"),
            ("show", "-s", "--format=%B", "HEAD", "--"),
            ("rev-parse", "--show-toplevel"),
            ("config", "--get", "remote.origin.url"),
        )
    except FileNotFoundError:
        _warn_once("git is not installed: recording this run without its git state")
        return None
    if status.returncode != 0:
        _warn_once(f"{code_dir} is not in a git repository: recording without git state")
        return None

    sha = branch = None
    modified: list[str] = []
    entries = iter(status.stdout.decode("utf-8", "surrogateescape").split("\0"))
    for entry in entries:
        if entry.startswith("# branch.oid "):
            oid = entry.split(" ", 2)[2]
            sha = None if oid == "(initial)" else oid
        elif entry.startswith("# branch.head "):
            head = entry.split(" ", 2)[2]
            branch = None if head == "(detached)" else head
        elif entry[:2] in ("1 ", "u "):
            modified.append(entry.split(" ", 10 if entry[0] == "u" else 8)[-1])
        elif entry.startswith("2 "):
            modified.append(entry.split(" ", 9)[-1])
            next(entries, None)  # a rename's original path, in a field of its own

    toplevel = top.stdout.decode().strip()
    remote = remote_proc.stdout.decode().strip() or None

    state = GitState(
        sha=sha,
        branch=branch,
        message=info.stdout.decode("utf-8", "replace").rstrip() if sha else "",
        remote=remote,
        dirty=bool(modified),
        modified=modified,
        toplevel=toplevel,
    )
    if state.dirty:
        if not allow_dirty:
            shown = ", ".join(modified[:5]) + (
                f" and {len(modified) - 5} more" if len(modified) > 5 else ""
            )
            raise DirtyRepoError(
                f"uncommitted changes in {toplevel}: {shown}; commit them, "
                f"or pass {flag_hint} to record anyway (the diff is saved)"
            )
        diff, untracked = _git_all(
            code_dir,
            ("diff", "HEAD", "--binary") if sha else ("diff", "--cached", "--binary"),
            ("ls-files", "--others", "--exclude-standard", "-z"),
        )
        state.diff = diff.stdout
        state.untracked = [p for p in untracked.stdout.decode("utf-8", "replace").split("\0") if p]
    return state
