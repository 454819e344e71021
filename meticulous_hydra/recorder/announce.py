"""The one line an adapter prints on stderr when a run starts recording, and
the few notices a run may need to give: all on stderr, never stdout (the
program's own, read by pipes and parsers)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from meticulous_hydra import layout


def previous_status(folder: str | os.PathLike[str]) -> str | None:
    """The STATUS of a folder about to be resumed, read before the run
    overwrites it; None for a new folder."""
    try:
        text = (Path(folder) / layout.STATUS).read_text(encoding="utf-8")
    except (OSError, ValueError):
        return None
    return layout.parse_status(text)[0] or None


def shown_path(folder: Path, cwd: Path) -> str:
    """``experiments/17`` when under ``cwd``, else the absolute path."""
    try:
        return str(Path(folder).absolute().relative_to(Path(cwd).absolute()))
    except ValueError:
        return str(folder)


def announce(
    folder: Path,
    cwd: Path,
    *,
    resumed: bool,
    restarts: int,
    previous: str | None = None,
    new_root: bool = False,
) -> None:
    """``meticulous-hydra: recording to experiments/17`` (or resuming it), on
    stderr; with ``new_root``, the line says the run created its root and
    where that is (a run started from another directory than usual would
    otherwise start a root there silently)."""
    where = shown_path(folder, cwd)
    if resumed:
        ended = f", which had ended {previous}" if previous and previous != layout.RUNNING else ""
        line = f"meticulous-hydra: resuming {where}{ended} (restart {restarts})"
    else:
        line = f"meticulous-hydra: recording to {where}"
        if new_root:
            root = os.path.dirname(os.path.normpath(os.path.abspath(folder)))
            line += f" (a new experiments root: {root})"
    if sys.stderr is None:
        return  # stderr was closed when Python started: it stays closed
    try:
        sys.stderr.write(line + "\n")
        sys.stderr.flush()
    except OSError:
        # its reader went away (`2>&1 | head -3`, a sweep's later job): the
        # line reaches no one, and the run goes on as it would untracked
        pass


def notice(message: str) -> None:
    """``meticulous-hydra: <message>``, one line on stderr. Not through
    ``logging``: under Hydra the root logger prints to stdout."""
    sys.stderr.write(f"meticulous-hydra: {message}\n")
    sys.stderr.flush()
