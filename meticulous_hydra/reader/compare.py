"""What ``meticulous diff`` compares: each run's config, overrides and
config-group choices, results, status, git and environment as flat
``section.key`` values (:func:`facts`), and the code between the runs' commits
(:func:`code_section`). The table is drawn by :mod:`meticulous_hydra.cli.commands.diff`."""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Sequence
from typing import Any

from meticulous_hydra import layout
from meticulous_hydra.recorder.gitstate import git_env

from .frame import hashable
from .reader import ExperimentReader, flatten

# the packages file and Python version repro14 records; read when present
PACKAGES = "packages.txt"


def _packages(run: ExperimentReader) -> dict[str, str]:
    try:
        text = (run.path / PACKAGES).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return {}
    out = {}
    for line in text.splitlines():
        name, sep, version = line.strip().partition("==")
        if sep and name and not name.startswith("#"):
            out[name.lower()] = version
    return out


def _diffstat(run: ExperimentReader) -> str:
    """The run's own recorded git.diff as 'N files +A -D', or '' without one."""
    try:
        text = (run.path / layout.GIT_DIFF).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    files = added = deleted = 0
    for line in text.splitlines():
        if line.startswith("diff --git "):
            files += 1
        elif line.startswith("+") and not line.startswith("+++"):
            added += 1
        elif line.startswith("-") and not line.startswith("---"):
            deleted += 1
    return f"{files} file{'s' * (files != 1)} +{added} -{deleted}" if files else ""


#: The prefix of the versions of packages.txt: no column of load_experiments'
#: frame, as are ``git.diff`` (the size of the run's own diff) and ``git.untracked``.
PACKAGE = "package."


def facts(run: ExperimentReader) -> dict[str, Any]:
    """Everything diff compares, as flat ``section.key`` -> value, named as
    load_experiments names its columns (but ``git.diff``, ``git.untracked``
    and ``package.*``)."""
    meta = run.metadata
    out: dict[str, Any] = {}
    flatten(run.config, "config", out)
    # a path into the run's own folder differs between any two runs, telling
    # them apart by nothing: it is compared (and shown) relative to the folder
    own = [(str(run.path.absolute()), "<run folder>")]
    out = {k: layout.localise(v, own) for k, v in out.items()}
    hydra = layout.block(meta, "hydra")
    switch = f"+{layout.OPT_IN_GROUP}="  # the recording switch is no setting of the run
    overrides = [o for o in layout.texts(meta.get("overrides")) if not o.startswith(switch)]
    out["overrides"] = " ".join(overrides)
    for group, choice in sorted(layout.block(hydra, "choices").items()):
        if group != layout.OPT_IN_GROUP:
            out[f"metadata.hydra.choices.{group}"] = choice
    flatten(run.summary, "summary", out)
    out["status"] = run.status
    duration = meta.get("duration")
    out["duration"] = f"{duration:.1f}s" if isinstance(duration, (int, float)) else duration
    git = layout.block(meta, "git")
    sha = git.get("sha")
    out["git.sha"] = sha[:12] if isinstance(sha, str) else sha
    out["git.branch"] = git.get("branch")
    out["git.dirty"] = git.get("dirty")
    out["git.diff"] = _diffstat(run) or None
    # untracked source saved with the run (issue 12 #5), when recorded
    out["git.untracked"] = " ".join(layout.texts(git.get("untracked_saved"))) or None
    python = layout.block(meta, "python")
    out["metadata.python.version"] = python.get("version")
    versions = layout.block(meta, "versions")
    for name, version in versions.items():
        out[f"metadata.versions.{name}"] = version
    for name, version in _packages(run).items():
        out[f"{PACKAGE}{name}"] = version
    out["metadata.host"] = meta.get("host")
    # outside the config and the summary, None means "not recorded": absent
    return {
        k: hashable(v)
        for k, v in out.items()
        if v is not None or k.startswith(("config.", "summary."))
    }


def code_key(f: dict[str, Any]) -> tuple[Any, ...]:
    return f.get("git.sha"), f.get("git.diff"), f.get("git.untracked")


def _git(top: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["git", "-C", top, *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
        env=git_env(),
    )


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _sha(value: Any) -> str | None:
    """A commit id from metadata.json, or None: nothing else (an option, from
    a hand-edited file) ever reaches git's command line."""
    return value if isinstance(value, str) and re.fullmatch(r"[0-9a-f]{4,64}", value) else None


def code_section(runs: Sequence[ExperimentReader], labels: Sequence[str]) -> str:
    """``git diff --stat`` from the first run's commit to each other's, where
    the repository is there and has both commits."""
    first = layout.block(runs[0].metadata, "git")
    top, base = _text(first.get("toplevel")), _sha(first.get("sha"))
    parts = []
    for run, label in zip(runs[1:], labels[1:], strict=True):
        git = layout.block(run.metadata, "git")
        sha, toplevel = _sha(git.get("sha")), _text(git.get("toplevel"))
        if not base or not sha or sha == base:
            continue
        head = f"code from {labels[0]} ({base[:10]}) to {label} ({sha[:10]})"
        repo = next((t for t in (top, toplevel) if t and os.path.isdir(t)), None)
        if repo is None:
            parts.append(f"{head}: the repository {top or toplevel} is not here")
            continue
        proc = _git(repo, "diff", "--stat", base, sha, "--")
        if proc.returncode != 0:
            parts.append(f"{head}: {repo} does not have both commits")
            continue
        parts.append(f"{head}:\n{proc.stdout.rstrip() or ' (no change)'}")
    for run, label in zip(runs, labels, strict=True):
        stat = _diffstat(run)
        if stat:
            parts.append(
                f"{label} ran with uncommitted changes: {stat} in {run.path / layout.GIT_DIFF}"
            )
    return "\n\n".join(parts)
