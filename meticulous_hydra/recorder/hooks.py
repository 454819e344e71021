"""The runs active in this process, and the process-wide hooks that give each
its true final status however it ends.

``track`` adds a run (installing the hooks), ``untrack`` removes it (and puts
every hook back as it was once no run is left); ``current`` is the innermost.
The hooks are:

- ``sys.excepthook``: an uncaught exception ends the runs as ERROR (with the
  traceback) or INTERRUPTED (KeyboardInterrupt);
- ``sys.exit``: the exit code is written at once (0 is SUCCESS, anything else
  ERROR), in case the process is then killed before exiting;
- SIGINT (when Python's default handler is in place): INTERRUPTED is written
  at once, then KeyboardInterrupt is raised as usual;
- SIGTERM (when nobody handles it): the runs end INTERRUPTED and the process
  then dies of SIGTERM, as it would have;
- ``atexit``: whatever is still open ends with the pending status, or SUCCESS.
"""

from __future__ import annotations

import atexit
import os
import signal
import sys
import threading
import traceback
from collections.abc import Callable
from typing import Any, NoReturn, Protocol, cast

from meticulous_hydra import layout


class Run(Protocol):
    """What the hooks need of a run (an :class:`~meticulous_hydra.Experiment`)."""

    norecord: bool

    def mark(self, status: str, detail: str = "") -> None: ...

    def finish(self, status: str | None = None, detail: str = "") -> None: ...

    def finish_from_exception(self, exc: BaseException) -> None: ...


# Runs recording in this process, innermost last.
_runs: list[Run] = []


def track(run: Run) -> None:
    """Make ``run`` the innermost active run; a recording run installs the hooks."""
    _runs.append(run)
    if not run.norecord:
        HOOKS.install()


def untrack(run: Run) -> None:
    """Forget ``run``; once no run is left, every hook is put back as it was."""
    if run in _runs:
        _runs.remove(run)
    if not _runs:
        HOOKS.uninstall()


def current() -> Run | None:
    """The innermost active run, or None."""
    return _runs[-1] if _runs else None


def _active() -> list[Run]:
    """The active runs, innermost first: the order in which the hooks end them."""
    return list(reversed(_runs))


def status_from_exception(exc: BaseException) -> tuple[str, str]:
    """The STATUS line and detail that an exception ending a run stands for."""
    if isinstance(exc, KeyboardInterrupt):
        return layout.INTERRUPTED, "KeyboardInterrupt"
    if isinstance(exc, SystemExit):
        return status_from_exit_code(exc.code)
    detail = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return layout.ERROR, detail


def status_from_exit_code(code: object) -> tuple[str, str]:
    """The STATUS line and detail of ``sys.exit(code)``: 0/None is SUCCESS."""
    if code is None or code == 0:
        return layout.SUCCESS, ""
    if isinstance(code, int):
        return layout.ERROR, f"exit code {code}"
    return layout.ERROR, f"exit code 1: {code}"


class _ProcessHooks:
    def __init__(self) -> None:
        self.installed = False
        self._saved: dict[str, Any] = {}

    def install(self) -> None:
        if self.installed:
            return
        self.installed = True
        self._saved = {"excepthook": sys.excepthook, "exit": sys.exit}
        sys.excepthook = self._excepthook
        sys.exit = self._exit
        atexit.register(self._atexit)
        if threading.current_thread() is threading.main_thread():
            if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
                self._saved["sigint"] = signal.signal(signal.SIGINT, self._sigint)
            if signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
                self._saved["sigterm"] = signal.signal(signal.SIGTERM, self._sigterm)

    def uninstall(self) -> None:
        if not self.installed:
            return
        self.installed = False
        saved, self._saved = self._saved, {}
        # Put back only what is still ours: code that wrapped our hook since
        # keeps its wrapper.
        if sys.excepthook == self._excepthook:
            sys.excepthook = saved["excepthook"]
        if sys.exit == self._exit:
            sys.exit = saved["exit"]
        atexit.unregister(self._atexit)
        if threading.current_thread() is threading.main_thread():
            for name, signum, ours in (
                ("sigint", signal.SIGINT, self._sigint),
                ("sigterm", signal.SIGTERM, self._sigterm),
            ):
                if name in saved and signal.getsignal(signum) == ours:
                    signal.signal(signum, saved[name])

    # The hooks -------------------------------------------------------------

    def _excepthook(self, exc_type: Any, exc: BaseException, tb: Any) -> None:
        previous = self._saved.get("excepthook", sys.__excepthook__)
        # Print first, so the traceback lands in the captured stderr too.
        try:
            previous(exc_type, exc, tb)
        finally:
            for exp in _active():
                try:
                    exp.finish_from_exception(exc)
                except Exception:
                    pass

    def _exit(self, code: object = None) -> NoReturn:
        # the sys.exit we replaced: it raises SystemExit
        previous = cast(
            "Callable[[object], NoReturn]", self._saved.get("exit", sys.__dict__.get("exit"))
        )
        # sys.exit in another thread only ends that thread
        if threading.current_thread() is threading.main_thread():
            status = status_from_exit_code(code)
            for exp in _active():
                exp.mark(*status)
        previous(code)

    def _sigint(self, signum: int, frame: Any) -> None:
        for exp in _active():
            exp.mark(layout.INTERRUPTED, "KeyboardInterrupt (SIGINT)")
        signal.default_int_handler(signum, frame)

    def _sigterm(self, signum: int, frame: Any) -> None:
        for exp in _active():
            try:
                exp.finish(layout.INTERRUPTED, "SIGTERM")
            except Exception:
                pass
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTERM)

    def _atexit(self) -> None:
        for exp in _active():
            try:
                exp.finish()
            except Exception:
                pass


HOOKS = _ProcessHooks()
