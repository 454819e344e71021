"""``meticulous reproduce RUN``: what changed since a run, the shell commands
that rebuild its code and run it again, and with ``--run`` doing exactly that
in a separate git worktree, then comparing the two runs.

The user's working tree, index and branch are never touched: the code is
rebuilt with ``git worktree add --detach`` in a temporary folder, the recorded
diff applied there and the saved untracked files copied in.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from meticulous_hydra import layout
from meticulous_hydra.exceptions import UsageError
from meticulous_hydra.reader.reader import ExperimentReader, experiment_names, flatten
from meticulous_hydra.recorder import provenance
from meticulous_hydra.recorder.gitstate import git_env

WT = "\0WT\0"  # stands for the worktree folder until it exists
_PYTHON_FACTS = (
    "import json, platform, sys; "
    "print(json.dumps([platform.python_version(), sys.executable, sys.path]))"
)
# Hydra command-line options that take a value, and flags that make a sweep.
_HYDRA_VALUE_OPTIONS = ("--config-path", "-cp", "--config-name", "-cn", "--config-dir", "-cd")
_HYDRA_SWEEP_FLAGS = ("-m", "--multirun")
# Hydra overrides that would send a repeated job elsewhere than a new numbered
# folder of the root, or launch it as a sweep.
_HYDRA_DROPPED = (
    "hydra/launcher",
    "hydra.launcher.",
    "hydra/sweeper",
    "hydra.sweeper.",
    "hydra.sweep.",
    "hydra.run.dir",
)


# -- the recorded run ----------------------------------------------------------------


@dataclass
class Run:
    """What a run folder says about how it ran."""

    folder: Path
    meta: dict[str, Any]
    config: dict[str, Any]
    summary: dict[str, Any]
    status: str

    @property
    def id(self) -> str:
        return self.folder.name

    @property
    def root(self) -> Path:
        return self.folder.parent

    @property
    def git(self) -> dict[str, Any]:
        git = self.meta.get("git")
        return git if isinstance(git, dict) else {}

    @property
    def launch(self) -> tuple[list[str], str]:
        """The command line and directory of the launching process."""
        launch = self.meta.get("launch")
        if isinstance(launch, dict) and launch.get("argv"):
            argv, cwd = launch["argv"], launch.get("cwd") or self.meta.get("cwd")
        else:
            argv, cwd = self.meta.get("argv") or [], self.meta.get("cwd")
        return [str(a) for a in argv], str(cwd or os.getcwd())


def load_run(folder: Path) -> Run:
    reader = ExperimentReader(folder)
    meta = reader.metadata
    if not meta:
        raise UsageError(f"{folder / layout.METADATA} is missing or unreadable")
    return Run(folder, meta, reader.config, reader.summary, reader.status)


# -- the command of one run ---------------------------------------------------------------


def _drop_option(argv: list[str], option: str) -> list[str]:
    """``argv`` without ``option VALUE`` / ``option=VALUE``."""
    out: list[str] = []
    skip = False
    for token in argv:
        if skip:
            skip = False
        elif token == option:
            skip = True
        elif not token.startswith(option + "="):
            out.append(token)
    return out


def _hydra_job_argv(argv: list[str], job_overrides: Sequence[str]) -> list[str]:
    """A Hydra command line run once with ``job_overrides``: the sweep flag, the
    launcher, sweeper and output-dir settings and the swept task overrides go;
    the other Hydra overrides and options stay."""
    head = 2 if argv[:1] == ["-m"] else 1  # `-m pkg.mod` (how a module run is recorded)
    out = argv[:head]
    tokens = iter(argv[head:])
    for token in tokens:
        if token in _HYDRA_VALUE_OPTIONS:
            out += [token, next(tokens, "")]
        elif token in _HYDRA_SWEEP_FLAGS:
            continue
        elif token.startswith("-"):
            out.append(token)
        else:
            key = token.split("=", 1)[0].lstrip("+~")
            if not key.startswith(("hydra.", "hydra/")):
                continue  # a task override: the job's own come below
            if key.startswith(_HYDRA_DROPPED) or key.endswith(".experiment_id"):
                continue
            out.append(token)
    return [*out, *job_overrides]


def job_argv(run: Run) -> list[str]:
    """The command line that runs this run (this job, for a sweep job) again,
    into a new folder."""
    argv, _ = run.launch
    if not argv:
        raise UsageError(f"run {run.id} recorded no command line (metadata.argv is empty)")
    hydra = run.meta.get("hydra")
    if run.meta.get("adapter") == "hydra" and isinstance(hydra, dict):
        return _hydra_job_argv(argv, [str(o) for o in hydra.get("overrides") or []])
    return _drop_option(argv, "--experiment-id")


# -- git ---------------------------------------------------------------------------------------


def _git(repo: Path | str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["git", "-C", str(repo), *args],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        env=git_env(),
    )


def find_repo(run: Run, repo: str | None) -> Path:
    """The repository to rebuild from: ``--repo``, else the recorded one, else the cwd's."""
    if not run.git.get("sha"):
        raise UsageError(
            f"run {run.id} was recorded outside a git repository (or before the first "
            "commit): its code can't be rebuilt"
        )
    candidates = [repo] if repo else [run.git.get("toplevel"), os.getcwd()]
    for candidate in candidates:
        if candidate and Path(candidate).is_dir():
            top = _git(candidate, "rev-parse", "--show-toplevel")
            if top.returncode == 0:
                return Path(top.stdout.strip())
    raise UsageError(
        f"{candidates[0]} is not a git repository; pass --repo with a clone of the run's code"
    )


def check_commit(repo: Path, sha: str) -> None:
    if _git(repo, "cat-file", "-e", f"{sha}^{{commit}}").returncode != 0:
        raise UsageError(
            f"commit {sha} is not in {repo} (never pushed, or history rewritten): "
            f"fetch it (git fetch <remote> {sha}) or pass --repo with a clone that has it"
        )


def commit_distance(repo: Path, sha: str) -> str:
    """How HEAD now stands to the recorded commit, in words."""
    head = _git(repo, "rev-parse", "HEAD").stdout.strip()
    if head == sha:
        return "same commit as HEAD"
    counts = _git(repo, "rev-list", "--left-right", "--count", f"{sha}...HEAD").stdout.split()
    behind, ahead = (int(c) for c in counts) if len(counts) == 2 else (0, 0)
    if behind == 0:
        return f"HEAD is {ahead} commit{'s' * (ahead != 1)} ahead of it"
    if ahead == 0:
        return f"HEAD is {behind} commit{'s' * (behind != 1)} behind it"
    return f"diverged: HEAD has {ahead} commits it lacks, it has {behind} HEAD lacks"


def _diff_files(diff: bytes) -> list[str]:
    return [
        line.split(" b/", 1)[-1]
        for line in diff.decode("utf-8", "replace").splitlines()
        if line.startswith("diff --git ")
    ]


def untracked_files(run: Run) -> list[str]:
    """Repo-relative paths of the untracked files saved with the run."""
    base = run.folder / layout.UNTRACKED_DIR
    if not base.is_dir():
        return []
    return sorted(str(p.relative_to(base)) for p in base.rglob("*") if p.is_file())


# -- the environment --------------------------------------------------------------------


@dataclass
class Python:
    version: str
    executable: str
    packages: dict[str, str] = field(default_factory=dict)


def interpreter(run: Run) -> str:
    """The interpreter that runs the code again: the recorded one if it is
    still there, else this one."""
    recorded = (run.meta.get("python") or {}).get("executable")
    return recorded if recorded and os.access(recorded, os.X_OK) else sys.executable


def python_now(run: Run) -> Python:
    """The :func:`interpreter`'s version and packages as of now."""
    exe = interpreter(run)
    facts = subprocess.run(
        [exe, "-c", _PYTHON_FACTS], capture_output=True, text=True, stdin=subprocess.DEVNULL
    )
    if facts.returncode != 0:
        raise UsageError(f"cannot run {exe}: {facts.stderr.strip()[-200:]}")
    version, executable, path = json.loads(facts.stdout)
    packages = provenance.parse_packages(provenance.read_packages(p for p in path if p))
    return Python(version, executable, packages)


def package_drift(old: Mapping[str, str], new: Mapping[str, str]) -> dict[str, list[str]]:
    return {
        "added": [f"{n}=={new[n]}" for n in sorted(new.keys() - old.keys())],
        "removed": [f"{n}=={old[n]}" for n in sorted(old.keys() - new.keys())],
        "changed": [
            f"{n} {old[n]} -> {new[n]}" for n in sorted(old.keys() & new.keys()) if old[n] != new[n]
        ],
    }


def drift_report(run: Run, repo: Path, py: Python) -> list[str]:
    git = run.git
    sha = git["sha"]
    out = [f"run {run.id} ({run.folder}): {run.status}, {run.meta.get('start_time')}"]
    sweep = run.meta.get("sweep")
    if isinstance(sweep, dict):
        out.append(f"  job {sweep.get('job_num')} of sweep {sweep.get('id')}")
    out.append("code:")
    subject = str(git.get("message") or "").partition("\n")[0]
    out.append(f"  recorded  {sha[:12]} on {git.get('branch') or '(detached)'}: {subject}")
    out.append(f"  now       {commit_distance(repo, sha)} ({repo})")
    branch = git.get("branch")
    if branch and _git(repo, "rev-parse", "--verify", "-q", f"refs/heads/{branch}").returncode:
        out.append(f"  branch {branch} no longer exists; the commit is still there")
    diff_path = run.folder / layout.GIT_DIFF
    if diff_path.exists():
        files = _diff_files(diff_path.read_bytes())
        out.append(f"  recorded diff: {len(files)} file(s): {', '.join(files)}")
    untracked = untracked_files(run)
    if untracked:
        out.append(f"  untracked files saved: {', '.join(untracked)}")
    skipped = git.get("untracked_skipped") or []
    if skipped:
        names = ", ".join(str(s.get("path")) for s in skipped if isinstance(s, dict))
        out.append(f"  untracked files NOT saved (the rebuild lacks them): {names}")
    recorded_py = run.meta.get("python") or {}
    same = "same" if recorded_py.get("version") == py.version else "DIFFERENT"
    out.append(
        f"python: recorded {recorded_py.get('version')} ({recorded_py.get('executable')}), "
        f"now {py.version} ({py.executable}): {same}"
    )
    recorded = provenance.read_packages_file(run.folder / layout.PACKAGES)
    if recorded is None:
        out.append("packages: not recorded (no packages.txt)")
    else:
        drift = package_drift(recorded, py.packages)
        n = sum(map(len, drift.values()))
        out.append(
            f"packages: {len(recorded)} recorded, {len(py.packages)} now, "
            + ("no difference" if not n else f"{n} difference(s)")
        )
        for kind, items in drift.items():
            if items:
                out.append(f"  {kind}: {', '.join(items)}")
    versions = run.meta.get("versions") or {}
    shown = ("meticulous-hydra", "hydra-core")
    out.append(
        "versions: " + ", ".join(f"{k} {versions.get(k)} (now {py.packages.get(k)})" for k in shown)
    )
    redacted = [o for o in job_argv(run) if "<redacted>" in o]
    if redacted:
        out.append(
            f"warning: redacted values in the command, give them by hand: {' '.join(redacted)}"
        )
    return out


# -- the steps -----------------------------------------------------------------------------------


@dataclass
class Step:
    argv: list[str]
    cwd: str | None = None
    env: dict[str, str] = field(default_factory=dict)


def _in_worktree(path: str, toplevel: str) -> str:
    """``path`` inside the recorded repository, moved to the worktree."""
    if toplevel and (path == toplevel or path.startswith(toplevel.rstrip("/") + "/")):
        return WT + path[len(toplevel.rstrip("/")) :]
    return path


def build_steps(run: Run, repo: Path, py: Python) -> list[Step]:
    """Rebuild the run's code in a worktree (``WT`` until it exists), then run it."""
    top = str(run.git.get("toplevel") or repo)
    steps = [Step(["git", "-C", str(repo), "worktree", "add", "--detach", WT, run.git["sha"]])]
    diff = run.folder / layout.GIT_DIFF
    if diff.exists():
        steps.append(Step(["git", "-C", WT, "apply", "--binary", str(diff)]))
    for rel in untracked_files(run):
        target = f"{WT}/{rel}"
        steps.append(Step(["mkdir", "-p", os.path.dirname(target)]))
        steps.append(Step(["cp", "-p", str(run.folder / layout.UNTRACKED_DIR / rel), target]))
    _, cwd = run.launch
    argv = [py.executable, *(_in_worktree(a, top) for a in job_argv(run))]
    env = {provenance.ENV_ROOT: str(run.root), provenance.ENV_REPRODUCES: run.id}
    steps.append(Step(argv, cwd=_in_worktree(cwd, top), env=env))
    return steps


def _quote(token: str) -> str:
    if token.startswith(WT):
        rest = token[len(WT) :]
        return '"$WT"' + (shlex.quote(rest) if rest else "")
    return shlex.quote(token.replace(WT, "$WT"))


def shell_line(step: Step) -> str:
    """The step as one line of shell (the worktree as ``$WT``)."""
    command = " ".join(
        [*(f"{k}={shlex.quote(v)}" for k, v in step.env.items()), *map(_quote, step.argv)]
    )
    return f"(cd {_quote(step.cwd)} && {command})" if step.cwd else command


def shell_lines(steps: Sequence[Step], worktree_hint: str) -> list[str]:
    return [f"WT=$(mktemp -d -t {worktree_hint}-XXXXXX)", *map(shell_line, steps)]


def _real(token: str, worktree: str) -> str:
    return token.replace(WT, worktree)


# -- comparing two runs ----------------------------------------------------------------------


def _flat(tree: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    return flatten(tree, prefix, {}) if tree else {}


def config_differences(old: Run, new: Run) -> list[tuple[str, Any, Any]]:
    """Keys whose values differ, paths inside each run's own folder and
    repository written relative to them (they necessarily differ)."""

    def places(run: Run) -> list[tuple[str, str]]:
        return [(str(run.folder), "<run folder>"), (str(run.git.get("toplevel") or ""), "<repo>")]

    a = {k: layout.localise(v, places(old)) for k, v in _flat(old.config, "config").items()}
    b = {k: layout.localise(v, places(new)) for k, v in _flat(new.config, "config").items()}
    missing = "(absent)"
    return [
        (k[len("config.") :], a.get(k, missing), b.get(k, missing))
        for k in sorted(a.keys() | b.keys())
        if a.get(k, missing) != b.get(k, missing)
    ]


def volatile_source(run: Run, key: str) -> str | None:
    """The ``${now:...}`` / ``${oc.env:...}`` interpolation ``key`` comes from in the
    run's unresolved Hydra config (``.hydra/config.yaml``), if it does."""
    import yaml

    class Loader(yaml.SafeLoader):
        """A safe loader that reads the tags Hydra writes for paths, enums, ... as null."""

    Loader.add_multi_constructor("", lambda loader, suffix, node: None)
    try:
        with open(run.folder / ".hydra" / "config.yaml", "rb") as f:
            node: Any = yaml.load(f, Loader=Loader)  # nothing in the file runs
    except (OSError, yaml.YAMLError):
        return None
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    if isinstance(node, str) and any(v in node for v in provenance.VOLATILE):
        return node
    return None


def summary_table(old: Run, new: Run) -> str:
    from tabulate import tabulate

    a, b = _flat(old.summary, "summary"), _flat(new.summary, "summary")
    rows = []
    for key in sorted(a.keys() | b.keys()):
        x, y = a.get(key), b.get(key)
        numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (x, y))
        rows.append([key[len("summary.") :], x, y, y - x if numbers else ""])  # type: ignore[operator]
    return tabulate(rows, headers=["summary", f"run {old.id}", f"run {new.id}", "delta"])


# -- running it --------------------------------------------------------------------------------------


def run_step(step: Step, worktree: str = "") -> int:
    """Run the program (in ``worktree``); its output goes straight to the terminal."""
    argv = [_real(a, worktree) for a in step.argv]
    env = {**os.environ, **step.env}
    cwd = _real(step.cwd, worktree) if step.cwd else None
    if cwd is not None and not os.path.isdir(cwd):
        raise UsageError(f"the run's directory {cwd} does not exist (at the recorded commit)")
    return subprocess.run(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL).returncode


def new_runs(root: Path, before: set[str], key: str, value: str) -> list[Run]:
    """Runs created in ``root`` since ``before`` whose metadata ``key`` is ``value``."""
    out = []
    for name in experiment_names(root):
        if name not in before:
            run = load_run(root / name)
            if run.meta.get(key) == value:
                out.append(run)
    return out


def reproduce(run: Run, repo: Path, steps: list[Step], keep: bool) -> int:
    worktree = tempfile.mkdtemp(prefix=f"meticulous-reproduce-{run.id}-")
    before = set(experiment_names(run.root))
    try:
        for step in steps[:-1]:
            argv = [_real(a, worktree) for a in step.argv]
            done = subprocess.run(
                argv, capture_output=True, text=True, stdin=subprocess.DEVNULL, env=git_env()
            )
            if done.returncode != 0:
                raise UsageError(f"{shlex.join(argv)} failed: {done.stderr.strip()}")
        code = run_step(steps[-1], worktree)
    finally:
        if keep:
            print(f"kept the worktree {worktree}")
        else:
            _git(repo, "worktree", "remove", "--force", worktree)
            shutil.rmtree(worktree, ignore_errors=True)
            _git(repo, "worktree", "prune")
    made = new_runs(run.root, before, "reproduces", run.id)
    if not made:
        print(f"the command exited with {code} and recorded no run reproducing run {run.id}")
        return 1
    # a program that records several runs (a loop over seeds) records them
    # all again: the one to compare is the one with the fewest differences
    new = min(made, key=lambda r: len(config_differences(run, r)))
    if len(made) > 1:
        others = ", ".join(r.id for r in made if r is not new)
        print(f"\nthe command recorded {len(made)} runs; besides run {new.id}: {others}")
    print(f"\nrun {new.id} reproduces run {run.id}: {new.status}")
    diffs = config_differences(run, new)
    real = 0
    if diffs:
        print(f"config: {len(diffs)} difference(s)")
        for key, a, b in diffs:
            source = volatile_source(run, key)
            real += source is None
            why = f" (from {source}: expected)" if source else ""
            print(f"  {key}: {a!r} -> {b!r}{why}")
    else:
        print("config: identical")
    if run.summary or new.summary:
        print(summary_table(run, new))
    return 0 if not real and new.status == layout.SUCCESS else 1
