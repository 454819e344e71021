"""A run folder claimed before its run can start recording, and tracked by
the hooks until it does: a Hydra job's folder is claimed before Hydra makes
its output dir, configures logging and writes ``.hydra/``, and its
:class:`~meticulous_hydra.Experiment` starts only after that. A signal, an
uncaught exception or an exit in between still ends it with a true STATUS,
never a folder no one lists."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Iterable
from pathlib import Path

from meticulous_hydra import layout

from . import hooks
from .environment import hostname, pid_alive
from .hooks import status_from_exception

NOT_STARTED = "the process ended before the run started recording"


class PendingRun:
    """A folder claimed for a run that has not started recording yet.

    :meth:`claim` claims it (signals wait the instant until it knows the
    folder), :meth:`release` hands it over once the run's Experiment has
    started. Meanwhile the hooks end it as they end a run: a signal
    INTERRUPTED, an uncaught exception with its status, any other end of the
    process ERROR (its run never ran). It writes ``STATUS`` alone: the run's
    config and metadata are not known yet; and never over a ``STATUS`` it did
    not write (its run's, once it started). A folder that holds a run already
    (an id resumed, a job requeued) is never pending: its record stays as it
    was until the new run starts.
    """

    norecord = False

    def __init__(self) -> None:
        self.folder: Path | None = None
        self._pid = os.getpid()
        self._pending: tuple[str, str] | None = None
        self._wrote = False

    def claim(self, claim: Callable[[], Path]) -> Path:
        """The folder ``claim()`` creates (or finds), tracked from the moment it exists."""
        with hooks.hold_signals():
            hooks.track(self)
            try:
                folder = Path(claim())
            except BaseException:
                hooks.untrack(self)
                raise
            if (folder / layout.METADATA).exists():
                hooks.untrack(self)  # a run's folder: the run now starting takes it over
            else:
                self.folder = folder
        return folder

    def release(self) -> None:
        """The run has started: from now on it is the one the hooks end."""
        hooks.untrack(self)

    def mark(self, status: str, detail: str = "") -> None:
        self._pending = (status, detail)
        self._write(status, detail)

    def finish(self, status: str | None = None, detail: str = "") -> None:
        hooks.untrack(self)
        if status is None:
            status, detail = self._pending or (layout.ERROR, NOT_STARTED)
        self._write(status, detail)
        self.folder = None  # ended: nothing more is written

    def finish_from_exception(self, exc: BaseException) -> None:
        self.finish(*status_from_exception(exc))

    def _write(self, status: str, detail: str) -> None:
        if self.folder is None or os.getpid() != self._pid:
            return  # no folder yet, or a forked child's copy: the run is its parent's
        path = self.folder / layout.STATUS
        if not self._wrote and os.path.lexists(path):
            return  # its run started and says how it ended
        if status == layout.SUCCESS:  # the process exited with 0: its run never ran
            status, detail = layout.ERROR, NOT_STARTED
        with contextlib.suppress(OSError):  # never crash a program that is ending
            layout.write_status(path, status, detail)
            self._wrote = True

    def __repr__(self) -> str:
        return f"PendingRun({str(self.folder)!r})"


def end_abandoned(folders: Iterable[Path], detail: str) -> list[Path]:
    """End INTERRUPTED, with ``detail``, the runs among ``folders`` that a
    process of this host left RUNNING and is gone: a sweep's jobs that its
    launcher killed as the sweep itself was interrupted (joblib kills its
    workers at a Ctrl-C, at times before they could write their end).
    A run whose process lives, or ran on another host, is left as it is.
    The folders ended."""
    host, ended = hostname(), []
    for folder in folders:
        try:
            status, _ = layout.parse_status(layout.read_file(folder / layout.STATUS).decode())
            metadata = json.loads(layout.read_file(folder / layout.METADATA))
        except (OSError, ValueError, RecursionError):
            continue  # not a run that started, or one this can't read: as it is
        if status != layout.RUNNING or not isinstance(metadata, dict):
            continue
        pid = metadata.get("pid")
        if metadata.get("host") != host or type(pid) is not int or not 0 < pid < 2**31:
            continue
        if pid_alive(pid):
            continue
        with contextlib.suppress(OSError):  # never crash a launcher that is ending
            layout.write_status(folder / layout.STATUS, layout.INTERRUPTED, detail)
            ended.append(folder)
    return ended
