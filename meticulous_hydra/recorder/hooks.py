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
  at once, then KeyboardInterrupt is raised as usual (the handler's own frame
  is cut off its traceback: what a Ctrl-C prints is the program's alone);
- SIGTERM and SIGHUP (when nobody handles them; SIGHUP is how a closed
  terminal or a dropped ssh session ends a program, and ``nohup`` ignores it):
  the runs end INTERRUPTED and the process then dies of the signal, as it
  would have. Under SLURM a SIGTERM ends them TIMEOUT or REQUEUED when that is
  why SLURM sent it (:func:`~.environment.sigterm_status`). When another
  SIGTERM handler is in place (submitit's, the program's), the status is
  written at once and that handler runs next and decides what happens: the
  run goes on, and whatever ends it later (a return, an exception) has the
  last word, unless it is SIGKILL or a ``sys.exit`` of that handler's;
- ``atexit``: whatever is still open ends with the pending status, or SUCCESS.

While a run claims its folder (``hold_signals``), the signal handlers hold
what they get and act on it as soon as the run knows its folder: from the
moment a run's folder exists, a signal ends it INTERRUPTED.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import sys
import threading
import traceback
from collections.abc import Callable, Iterator
from typing import Any, NoReturn, Protocol, cast

from meticulous_hydra import layout

from .environment import sigterm_status


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


# The signals our handlers got while a run claimed its folder (None: not claiming).
_held: list[int] | None = None


@contextlib.contextmanager
def hold_signals() -> Iterator[None]:
    """Hold the signals our handlers get during the block; raise them again
    as it ends (the run tracked by then acts on them, knowing its folder)."""
    global _held
    _held = []
    try:
        yield
    finally:
        held, _held = _held, None
        for signum in held:
            signal.raise_signal(signum)


def _holding(signum: int) -> bool:
    """Whether ``signum`` is held for later (see hold_signals)."""
    if _held is None:
        return False
    _held.append(signum)
    return True


def _end_then_die(signum: int, status: str, detail: str) -> None:
    """End every active run with ``status``, then die of ``signum`` as the
    process would have without us."""
    for exp in _active():
        try:
            exp.finish(status, detail)
        except Exception:
            pass
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


def drop_own_frames(exc: BaseException | None) -> None:
    """Cut the frame of our SIGINT handler off the traceback of ``exc`` and of
    the exceptions chained to it, in place: the KeyboardInterrupt it raised
    then shows where the program was, and nothing of ours."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        tb, previous = exc.__traceback__, None
        while tb is not None:
            if tb.tb_frame.f_code is _SIGINT_CODE:
                if previous is None:
                    exc.__traceback__ = tb.tb_next
                else:
                    previous.tb_next = tb.tb_next
            else:
                previous = tb
            tb = tb.tb_next
        drop_own_frames(exc.__cause__)
        exc = exc.__context__


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
        # while another SIGTERM handler runs: a sys.exit it calls ends the run
        # as the signal said, not as its exit code would
        self._in_sigterm = False

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
            # chained to a Python handler; one set from C (None) or SIG_IGN is left alone
            previous = signal.getsignal(signal.SIGTERM)
            if previous == signal.SIG_DFL or callable(previous):
                self._saved["sigterm"] = signal.signal(signal.SIGTERM, self._sigterm)
            if signal.getsignal(signal.SIGHUP) == signal.SIG_DFL:
                self._saved["sighup"] = signal.signal(signal.SIGHUP, self._sighup)

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
                ("sighup", signal.SIGHUP, self._sighup),
            ):
                if name in saved and signal.getsignal(signum) == ours:
                    signal.signal(signum, saved[name])

    # The hooks -------------------------------------------------------------

    def _excepthook(self, exc_type: Any, exc: BaseException, tb: Any) -> None:
        previous = self._saved.get("excepthook", sys.__excepthook__)
        if exc is not None:
            drop_own_frames(exc)
            tb = exc.__traceback__
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
        if threading.current_thread() is threading.main_thread() and not self._in_sigterm:
            status = status_from_exit_code(code)
            for exp in _active():
                exp.mark(*status)
        previous(code)

    def _sigint(self, signum: int, frame: Any) -> None:
        if _holding(signum):
            return
        for exp in _active():
            exp.mark(layout.INTERRUPTED, "KeyboardInterrupt (SIGINT)")
        signal.default_int_handler(signum, frame)

    def _sigterm(self, signum: int, frame: Any) -> None:
        if _holding(signum):
            return
        status = sigterm_status()
        previous = self._saved.get("sigterm")
        if callable(previous):
            # Its handler may let the process go on (submitit's logs the
            # signal and waits for SLURM's SIGKILL): written now, not ended.
            for exp in _active():
                exp.mark(*status)
            self._in_sigterm = True
            try:
                previous(signum, frame)
            finally:
                self._in_sigterm = False
            return
        _end_then_die(signum, *status)

    def _sighup(self, signum: int, frame: Any) -> None:
        if _holding(signum):
            return
        _end_then_die(
            signum, layout.INTERRUPTED, "SIGHUP: the terminal closed or the session ended"
        )

    def _atexit(self) -> None:
        for exp in _active():
            try:
                exp.finish()
            except Exception:
                pass


HOOKS = _ProcessHooks()
_SIGINT_CODE = _ProcessHooks._sigint.__code__
