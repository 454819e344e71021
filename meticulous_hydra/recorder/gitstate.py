"""The git state of the code being run, read with the git command line.

GitPython costs ~70 ms to import, the whole overhead budget of a run, and calls
the same git binary underneath; a few short git calls are all we need.

The code that ran is the entry script and the modules imported from the
repository so far: one of them that git does not track makes the run as
dirty as a modified file, and its content is kept for the record. So does
any other untracked Python file the program could import (in a folder it
imports from): it may do so after the start (a Hydra ``instantiate`` target,
an import inside the task), when refusing the run is too late, so the run is
refused (or, allowed dirty, recorded with it) before it starts.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from meticulous_hydra import layout
from meticulous_hydra.exceptions import DirtyRepoError  # older code imports it from here
from meticulous_hydra.recorder.announce import notice

_warned_no_repo = False

# Untracked code that ran is saved in the run folder up to this many bytes in all.
UNTRACKED_CAP = 2 * 2**20
# Variables that make git read another repository than the one it is run in
# (set in git hooks, `git rebase -x`, dotfiles aliases): the state recorded is
# always that of the code's own repository. `git rev-parse --local-env-vars`
# lists most; the discovery ones stop git from finding the repository at all.
# The user's configuration (GIT_CONFIG_*: safe.directory, say) stays.
_ELSEWHERE = (
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_IMPLICIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_COMMON_DIR",
    "GIT_GRAFT_FILE",
    "GIT_NO_REPLACE_OBJECTS",
    "GIT_REPLACE_REF_BASE",
    "GIT_SHALLOW_FILE",
    "GIT_NAMESPACE",
    "GIT_PREFIX",
    "GIT_INTERNAL_SUPER_PREFIX",
    "GIT_CEILING_DIRECTORIES",
)
# Installed packages and the standard library are not the program's code.
_LIBRARY_DIRS = (f"{os.sep}site-packages{os.sep}", f"{os.sep}dist-packages{os.sep}")
_STDLIB = os.path.dirname(os.__file__) + os.sep


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
    # where ``git diff HEAD`` was kept by keep_diff() (a sweep's, for its
    # jobs); without it, write_diff() asks git when the run starts
    diff_file: str | None = None
    # untracked code that ran, by repository-relative path; saved as files
    untracked_code: dict[str, bytes] = field(default_factory=dict)
    untracked_skipped: list[dict[str, Any]] = field(default_factory=list)

    def as_metadata(self) -> dict[str, Any]:
        return {
            "sha": self.sha,
            "branch": self.branch,
            "message": self.message,
            "remote": self.remote,
            "dirty": self.dirty,
            "modified": self.modified,
            "untracked": self.untracked,
            "untracked_saved": sorted(self.untracked_code),
            "untracked_skipped": self.untracked_skipped,
            "untracked_cap": UNTRACKED_CAP,
            "toplevel": self.toplevel,
        }

    def _diff_command(self) -> list[str]:
        # options that make the patch one `git apply` takes, whatever the
        # user's git config says (colour, prefixes, external diff tools)
        return [
            "git",
            "-C",
            self.toplevel,
            "diff",
            *(("HEAD",) if self.sha else ("--cached",)),
            "--binary",
            "--no-color",
            "--no-ext-diff",
            "--no-textconv",
            "--src-prefix=a/",
            "--dst-prefix=b/",
        ]

    def keep_diff(self, path: Path) -> None:
        """Stream ``git diff HEAD`` into ``path`` now, for write_diff() to
        copy later (a sweep's jobs start later, in other processes)."""
        if self.modified:
            _stream_to_file(self._diff_command(), path)
            self.diff_file = str(path)

    def write_diff(self, target: Path) -> None:
        """Write the binary-safe ``git diff HEAD`` to ``target`` (replaced
        whole) when tracked files are modified: streamed from git, or linked to
        (copied from) what keep_diff() kept; it never passes through memory."""
        if not self.modified:
            return
        if self.diff_file is None:
            _stream_to_file(self._diff_command(), target)
            return
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        try:
            try:
                os.link(self.diff_file, tmp)  # one copy on disk for all of a sweep's jobs
            except OSError:
                shutil.copyfile(self.diff_file, tmp)
            os.replace(tmp, target)
        except BaseException:
            _unlink(tmp)
            raise

    def save_untracked_code(self, folder: Path) -> None:
        """Write the untracked code that ran under ``folder/untracked/``."""
        base = folder / layout.UNTRACKED_DIR
        for rel, content in self.untracked_code.items():
            target = base.joinpath(*rel.split("/"))
            layout.make_dir(target.parent, exist_ok=True)
            layout.atomic_write_bytes(target, content)


def _library(path: str) -> bool:
    # string tests only: this runs for each of the thousands of modules loaded
    return path.startswith(_STDLIB) or any(d in path for d in _LIBRARY_DIRS)


def entry_script() -> Path | None:
    """The script the program was started with (``python x.py``, ``python -m
    pkg.x``), unless it is an installed launcher (pytest, ipykernel) or there
    is none (``python -c``, a REPL)."""
    main = sys.modules.get("__main__")
    name = getattr(main, "__file__", None) or (sys.argv[0] if sys.argv else "")
    if not isinstance(name, str) or not name:
        return None
    path = os.path.abspath(name)
    # <env>/bin/pytest, jupyter, ...: an installed command, not the program's code
    launcher = os.path.dirname(path) == os.path.dirname(os.path.abspath(sys.executable))
    if launcher or _library(path) or not os.path.isfile(path):
        return None
    return Path(path)


def entry_code_dir() -> Path:
    """Where the running program's code lives: the entry script's folder, else the cwd."""
    script = entry_script()
    # a link to a script is run from the repository it points into
    return Path(os.path.realpath(script)).parent if script is not None else Path.cwd()


def _code_files() -> set[str]:
    """The entry script and the files of the modules imported so far, outside
    installed packages and the standard library (absolute, unresolved)."""
    files = set()
    script = entry_script()
    if script is not None:
        files.add(str(script))
    for module in list(sys.modules.values()):
        name = getattr(module, "__file__", None)
        if isinstance(name, str) and name and not _library(name):
            files.add(os.path.abspath(name))
    return files


def _untracked_code(toplevel: str, untracked: list[str]) -> list[str]:
    """The code files that ran from ``toplevel`` and are in ``untracked`` (git
    status's list, where a wholly untracked folder is one ``dir/`` entry)."""
    if not untracked:
        return []
    listed = set(untracked)
    top = os.path.realpath(toplevel) + os.sep
    found = []
    for path in _code_files():
        real = os.path.realpath(path)
        if not real.startswith(top):
            continue
        rel = real[len(top) :].replace(os.sep, "/")
        parts = rel.split("/")
        prefixes = ("/".join(parts[:i]) + "/" for i in range(1, len(parts)))
        if rel in listed or any(prefix in listed for prefix in prefixes):
            found.append(rel)
    return sorted(found)


def _import_roots(toplevel: str) -> list[str]:
    """The folders of the repository the program imports from, as
    repository-relative prefixes (``""``: all of it): the entries of
    ``sys.path`` inside it (the script's folder, the cwd under ``-m``,
    PYTHONPATH, an editable install's path) and the folders of the packages
    imported from it (an editable install's import hook puts them on no path)."""
    top = os.path.realpath(toplevel)
    folders = [entry or os.getcwd() for entry in sys.path if isinstance(entry, str)]
    for module in list(sys.modules.values()):
        paths = getattr(module, "__path__", None)
        if paths is not None and not isinstance(paths, str):
            folders += [p for p in list(paths) if isinstance(p, str)]
    roots = set()
    for folder in folders:
        if _library(folder + os.sep):  # most of them, told by their name alone
            continue
        real = os.path.realpath(folder)
        if real == top:
            return [""]
        if real.startswith(top + os.sep) and not _library(real + os.sep):
            roots.add(real[len(top) + 1 :].replace(os.sep, "/") + "/")
    return sorted(roots)


def _untracked_python(toplevel: str, untracked: list[str]) -> list[str]:
    """The untracked Python files the program could import (ignored ones
    aside): code that may run although it has not been imported yet, by a
    Hydra ``instantiate`` target or an import inside the task. Those in no
    folder the program imports from (a sibling app's new script in a
    monorepo) can't be imported by name, and are only listed."""
    files = [path for path in untracked if path.endswith(".py")]
    folders = [path for path in untracked if path.endswith("/")]
    roots = _import_roots(toplevel) if files or folders else []
    if not roots:
        return []
    if folders:  # git status names a wholly untracked folder only
        escaped = (re.sub(r"([*?\[\]\\])", r"\\\1", folder) for folder in folders)
        (listing,) = _git_all(
            Path(toplevel),
            (
                "ls-files",
                "--others",
                "--exclude-standard",
                "-z",
                "--",
                *(f":(top,glob){folder}**/*.py" for folder in escaped),
            ),
        )
        files += [p for p in listing.stdout.decode("utf-8", "surrogateescape").split("\0") if p]
    top = toplevel.rstrip(os.sep) + os.sep
    return sorted(
        path for path in set(files) if path.startswith(tuple(roots)) and not _library(top + path)
    )


def _read_untracked_code(toplevel: str, paths: list[str]) -> tuple[dict[str, bytes], list[dict]]:
    """The content of ``paths`` up to UNTRACKED_CAP bytes in all, and what was skipped."""
    saved: dict[str, bytes] = {}
    skipped: list[dict[str, Any]] = []
    total = 0
    for rel in paths:
        path = Path(toplevel, rel)
        size = None
        try:
            size = path.stat().st_size
            if total + size > UNTRACKED_CAP:  # never read whole what won't be kept
                reason = f"over the cap of {UNTRACKED_CAP} bytes for untracked code"
                skipped.append({"path": rel, "size": size, "reason": reason})
                continue
            content = path.read_bytes()
        except OSError as e:
            skipped.append({"path": rel, "size": size, "reason": f"unreadable: {e.strerror or e}"})
            continue
        total += len(content)
        saved[rel] = content
    return saved, skipped


def git_env() -> dict[str, str]:
    """The environment for a git command about a given folder's repository:
    this process's, without what would point git at another repository."""
    return {k: v for k, v in os.environ.items() if k not in _ELSEWHERE}


def _unlink(path: Path) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def _stream_to_file(command: list[str], target: Path) -> None:
    """Run ``command`` with its output going straight into ``target``
    (replaced whole, created with the layout's mode)."""
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, layout.FILE_MODE)
        try:
            done = subprocess.run(
                command, stdout=fd, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, env=git_env()
            )
        finally:
            os.close(fd)
        if done.returncode != 0:
            error = done.stderr.decode("utf-8", "replace").strip()
            raise OSError(f"{' '.join(command[3:5])} failed: {error}")
        os.replace(tmp, target)
    except BaseException:
        _unlink(tmp)
        raise


def _git_all(cwd: Path, *commands: tuple[str, ...]) -> list[subprocess.CompletedProcess[bytes]]:
    """Run git commands side by side: each call costs a few ms of start-up,
    paid by every recorded run."""
    env = git_env()
    procs = [
        (
            args,
            subprocess.Popen(
                ["git", "-C", str(cwd), *args],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                stdin=subprocess.DEVNULL,
                env=env,
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
        notice(message)


def read_git_state(code_dir: Path, *, allow_dirty: bool, flag_hint: str) -> GitState | None:
    """Read the state of the repository holding ``code_dir``.

    Returns None (after one warning per process) outside a repository. Raises
    DirtyRepoError for modified tracked files, untracked code that ran (the
    entry script, imported modules) or untracked Python files the program
    could import later, unless ``allow_dirty``; then the
    diff against HEAD and the untracked code are collected so the run can be
    reproduced. Other untracked files are listed. ``flag_hint`` names the
    option that allows dirty trees.
    """
    try:
        status, info, top, remote_proc = _git_all(
            code_dir,
            ("status", "--porcelain=v2", "--branch", "--untracked-files=normal", "-z"),
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
    untracked: list[str] = []
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
        elif entry.startswith("? "):
            untracked.append(entry[2:])

    toplevel = top.stdout.decode("utf-8", "surrogateescape").strip()
    remote = remote_proc.stdout.decode().strip() or None
    ran = _untracked_code(toplevel, untracked)
    could_run = [path for path in _untracked_python(toplevel, untracked) if path not in ran]
    untracked_code = ran + could_run

    state = GitState(
        sha=sha,
        branch=branch,
        message=info.stdout.decode("utf-8", "replace").rstrip() if sha else "",
        remote=remote,
        dirty=bool(modified or untracked_code),
        modified=modified,
        untracked=untracked,
        toplevel=toplevel,
    )
    if state.dirty and not allow_dirty:
        raise DirtyRepoError(_dirty_message(toplevel, modified, ran, could_run, flag_hint))
    state.untracked_code, state.untracked_skipped = _read_untracked_code(toplevel, untracked_code)
    return state


def _dirty_message(
    toplevel: str, modified: list[str], ran: list[str], could_run: list[str], flag_hint: str
) -> str:
    names = [
        *modified,
        *(f"{path} (untracked, and it ran)" for path in ran),
        *(f"{path} (untracked, and it may be imported)" for path in could_run),
    ]
    shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
    code = ran or could_run
    saved = "the diff and the untracked code are" if code else "the diff is"
    return (
        f"uncommitted changes in {toplevel}: {shown}; commit them"
        f"{' (git add the new files, or .gitignore what is no code of the program)' if code else ''}, "
        f"or pass {flag_hint} to record anyway ({saved} saved)"
    )
