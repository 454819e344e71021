"""The differential harness: run one app twice, tracking off and on, and
compare everything the user can observe.

A :class:`Case` is an app (its files, committed to a fresh git repository
unless ``git=False``; its ``untracked`` files are written after the commit)
and its command line. :func:`assert_invisible` runs it off and on, each time
in a fresh copy of that repository at the same absolute path, under one of
the :data:`MODES`:

- ``tty``: stdin, stdout and stderr are one real pseudo-terminal (the child's
  controlling terminal, 40x120), as in an interactive shell;
- ``pipe``: stdout and stderr are two pipes, read as fast as they come;
- ``slowpipe``: the same, with stdout read in small chunks by a slow reader;
- ``head``: stdout goes to a real ``head -1`` (``python app.py | head -1``).

It compares the exit code, the bytes shown (the terminal, or each pipe),
without the recording line, and every file outside the experiments root
(``.git`` aside), contents included: Hydra's own files, the app's outputs,
the per-job output dirs of a sweep. Dates and times (``${now:}``) are
normalised, and a case can add its own substitutions. Where a difference is
intended (a redacted secret), the case names the files allowed to differ and
says why. A case that differs fails with the differences shown.

Besides the recording line, a case may name ``notices``: lines of ours that
tracking on must add to stderr in that shape (outside a git repository, the
run says it records no git state). They are taken out of the tracked run's
output like the recording line, and each must be there, once per job, on
stderr: on stdout, or missing, it is a difference.
"""

from __future__ import annotations

import difflib
import fcntl
import os
import re
import select
import shutil
import struct
import subprocess
import sys
import termios
import textwrap
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from helpers import make_repo

MODES = ("tty", "pipe", "slowpipe", "head")
ROOT = "experiments"
SWITCH = "+meticulous=on"
TTY_SIZE = (40, 120)  # rows, columns
# the one line tracking adds on stderr (on a terminal it ends in \r\n)
RECORDING_LINE = re.compile(rb"^meticulous-hydra: (?:recording to|resuming) [^\n]*\n", re.M)
STAMPS = (
    (re.compile(rb"\d{4}-\d{2}-\d{2}"), b"<date>"),
    (re.compile(rb"(?<![\d.])\d{2}-\d{2}-\d{2}(?![\d.])"), b"<time>"),
    (re.compile(rb"(?<![\d.])\d{2}:\d{2}:\d{2}(?:[.,]\d+)?(?![\d.])"), b"<time>"),
)


@dataclass
class Case:
    """An app and how it is run. ``argv`` is the command line after
    ``python`` with tracking off; tracking on adds ``on`` (Hydra's switch by
    default) and ``env_on``."""

    name: str
    files: dict[str, str]
    argv: list[str]
    on: list[str] = field(default_factory=lambda: [SWITCH])
    env_on: dict[str, str] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    git: bool = True
    # files written after the commit, left untracked (new code not added yet)
    untracked: dict[str, str] = field(default_factory=dict)
    root: str = ROOT
    # relative paths (fnmatch-free: exact, after normalisation) allowed to differ, with why
    may_differ: dict[str, str] = field(default_factory=dict)
    substitutions: Sequence[tuple[re.Pattern[bytes], bytes]] = ()
    jobs: int = 1  # runs recorded: one recording line each
    timeout: float = 90
    # lines of ours tracking adds on stderr besides the recording line (see above)
    notices: Sequence[re.Pattern[bytes]] = ()


@dataclass
class Observed:
    """What one run showed and left behind."""

    returncode: int | None
    shown: bytes  # the terminal (tty), stdout (pipes) or head's output
    stderr: bytes  # stderr where it is its own pipe; b"" on a terminal
    files: dict[str, bytes]
    timed_out: bool = False
    terminal: bool = False  # stdout and stderr were one terminal (tty mode)


def make_app(base: Path, case: Case) -> Path:
    """The app's template: its files, committed when ``case.git``."""
    template = base / f"{case.name}-template"
    files = {name: textwrap.dedent(text) for name, text in case.files.items()}
    if case.git:
        make_repo(template, {".gitignore": f"/{case.root}/\n", **files})
        written = case.untracked
    else:
        template.mkdir(parents=True)
        written = {**files, **case.untracked}
    for name, text in written.items():
        (template / name).parent.mkdir(parents=True, exist_ok=True)
        (template / name).write_text(textwrap.dedent(text))
    return template


def _normalise(data: bytes, case: Case) -> bytes:
    for pattern, replacement in (*STAMPS, *case.substitutions):
        data = pattern.sub(replacement, data)
    return data


def snapshot(app: Path, case: Case) -> dict[str, bytes]:
    """Every file under ``app`` but ``.git`` and the experiments root, by
    normalised relative path; a symlink as its target."""
    out: dict[str, bytes] = {}
    for folder, dirs, names in os.walk(app):
        rel = Path(folder).relative_to(app)
        if rel == Path("."):
            dirs[:] = [d for d in dirs if d not in (".git", case.root)]
        for name in [*names, *(d for d in dirs if (Path(folder) / d).is_symlink())]:
            path = Path(folder) / name
            key = _normalise(str(rel / name).encode(), case).decode()
            if path.is_symlink():
                out[key] = b"-> " + os.readlink(path).encode()
            else:
                out[key] = _normalise(path.read_bytes(), case)
    return out


def _env(case: Case, tracking: bool) -> dict[str, str]:
    env = {**os.environ, **case.env, **(case.env_on if tracking else {})}
    env.pop("PYTHONUNBUFFERED", None)  # the app buffers as it would in a shell
    return env


def _run_tty(argv: list[str], cwd: Path, env: dict[str, str], timeout: float) -> Observed:
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", *TTY_SIZE, 0, 0))

    def controlling_terminal() -> None:  # after setsid: the pty is the session's terminal
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    proc = subprocess.Popen(
        argv,
        cwd=cwd,
        env=env,
        stdin=slave,
        stdout=slave,
        stderr=slave,
        start_new_session=True,
        preexec_fn=controlling_terminal,
    )
    os.close(slave)
    shown, deadline, timed_out = bytearray(), time.monotonic() + timeout, False
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                timed_out = True
                proc.kill()
                break
            ready, _, _ = select.select([master], [], [], left)
            if not ready:
                continue
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: every holder of the terminal has closed it
                break
            if not chunk:
                break
            shown += chunk
    finally:
        os.close(master)
    returncode = proc.wait(timeout=30)
    return Observed(returncode, bytes(shown), b"", {}, timed_out, terminal=True)


def _run_pipes(
    argv: list[str], cwd: Path, env: dict[str, str], timeout: float, *, slow: bool
) -> Observed:
    proc = subprocess.Popen(
        argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )  # fmt: skip
    if not slow:
        try:
            out, err = proc.communicate(timeout=timeout)
            return Observed(proc.returncode, out, err, {})
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            return Observed(proc.returncode, out, err, {}, timed_out=True)
    err_chunks: list[bytes] = []
    reader = threading.Thread(target=lambda: err_chunks.append(proc.stderr.read()))  # type: ignore[union-attr]
    reader.start()
    shown, deadline, timed_out = bytearray(), time.monotonic() + timeout, False
    assert proc.stdout is not None
    while True:
        if time.monotonic() > deadline:
            timed_out = True
            proc.kill()
        chunk = proc.stdout.read1(512)  # type: ignore[attr-defined]
        if not chunk:
            break
        shown += chunk
        time.sleep(0.001)  # the slowness being simulated, not a synchronisation
    reader.join()
    return Observed(proc.wait(), bytes(shown), b"".join(err_chunks), {}, timed_out)


def _run_head(argv: list[str], cwd: Path, env: dict[str, str], timeout: float) -> Observed:
    head = subprocess.Popen(["head", "-1"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    proc = subprocess.Popen(
        argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=head.stdin,
        stderr=subprocess.PIPE,
    )  # fmt: skip
    assert head.stdin is not None
    head.stdin.close()  # the app holds the only write end
    head.stdin = None
    timed_out = False
    try:
        _, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        proc.kill()
        _, err = proc.communicate()
    shown = head.communicate()[0]
    return Observed(proc.returncode, shown, err, {}, timed_out)


def observe(case: Case, mode: str, tracking: bool, app: Path) -> Observed:
    """Run ``case`` once in ``app`` (a fresh copy of its template)."""
    argv = [sys.executable, *case.argv, *(case.on if tracking else [])]
    env = _env(case, tracking)
    if mode == "tty":
        seen = _run_tty(argv, app, env, case.timeout)
    elif mode in ("pipe", "slowpipe"):
        seen = _run_pipes(argv, app, env, case.timeout, slow=mode == "slowpipe")
    elif mode == "head":
        seen = _run_head(argv, app, env, case.timeout)
    else:
        raise ValueError(f"mode {mode!r} is not one of {MODES}")
    seen.files = snapshot(app, case)
    return seen


def _without_recording_lines(data: bytes, jobs: int) -> bytes:
    lines = RECORDING_LINE.findall(data)
    assert len(lines) <= jobs, f"more recording lines than the {jobs} job(s): {lines}"
    return RECORDING_LINE.sub(b"", data)


def _notice_differences(case: Case, on: Observed) -> list[str]:
    """Each notice of the case on the tracked run's stderr (on the terminal,
    in tty mode), once per job at most and at least once."""
    out = []
    where = on.shown if on.terminal else on.stderr
    for notice in case.notices:
        found = len(notice.findall(where.replace(b"\r\n", b"\n")))
        if not 1 <= found <= case.jobs:
            out.append(
                f"notice {notice.pattern!r}: {found} time(s) on stderr, expected 1..{case.jobs}"
            )
    return out


def _ours(declaration: object) -> bool:
    target = declaration.get("_target_") if isinstance(declaration, dict) else None
    return str(target).startswith("meticulous_hydra.")


def hydra_yaml_pair(off: bytes, on: bytes) -> tuple[bytes, bytes]:
    """Hydra's ``.hydra/hydra.yaml`` (or ``multirun.yaml``) of both runs without what declaring the
    callback necessarily adds to the tracked one (its node under
    ``hydra.callbacks``, the choice of it or of the switch that declares it
    (``meticulous@...``, ``hydra/meticulous@...``), the Hydra overrides that
    name it): everything else, the job's own overrides included, must be the same."""
    import yaml

    a, b = yaml.safe_load(off), yaml.safe_load(on)
    hydra_a, hydra_b = a.get("hydra", {}), b.get("hydra", {})
    callbacks = hydra_b.get("callbacks") or {}
    for key in [k for k, v in callbacks.items() if k == "meticulous" or _ours(v)]:
        del callbacks[key]  # under whatever key it is declared
    overrides = hydra_b.get("overrides", {})
    overrides["hydra"] = [o for o in overrides.get("hydra") or [] if "meticulous" not in o]
    choices_a = hydra_a.get("runtime", {}).get("choices") or {}
    choices_b = hydra_b.get("runtime", {}).get("choices") or {}
    # the callback chosen, or the switch's own groups (meticulous, hydra/meticulous)
    ours = [
        k
        for k, v in choices_b.items()
        if v == "meticulous" or "meticulous" in k.partition("@")[0].split("/")
    ]
    for key in ours:
        del choices_b[key]
    for key in choices_a.keys() - choices_b.keys():
        if key.startswith("hydra/callbacks"):  # the switch replaced the app's choice
            choices_b[key] = choices_a[key]
    return yaml.safe_dump(a).encode(), yaml.safe_dump(b).encode()


def _text_diff(name: str, a: bytes, b: bytes, limit: int = 40) -> str:
    lines = list(
        difflib.unified_diff(
            a.decode(errors="replace").splitlines(),
            b.decode(errors="replace").splitlines(),
            f"{name} (off)",
            f"{name} (on)",
            lineterm="",
        )
    )
    more = f"\n... {len(lines) - limit} more lines" if len(lines) > limit else ""
    return "\n".join(lines[:limit]) + more


def differences(case: Case, off: Observed, on: Observed) -> list[str]:
    """Every observable difference between the two runs, readable."""
    out = []
    if off.timed_out or on.timed_out:
        out.append(f"timed out after {case.timeout} s: off={off.timed_out} on={on.timed_out}")
    if off.returncode != on.returncode:
        out.append(f"exit code: off {off.returncode}, on {on.returncode}")
    out += _notice_differences(case, on)
    for what, a, b in (("shown", off.shown, on.shown), ("stderr", off.stderr, on.stderr)):
        # a terminal shows the line as ...\r\n, and the app's \n the same way
        a = _normalise(a.replace(b"\r\n", b"\n"), case)
        b = _without_recording_lines(b.replace(b"\r\n", b"\n"), case.jobs)
        if what == "stderr" or on.terminal:  # notices belong on stderr, nowhere else
            for notice in case.notices:
                b = notice.sub(b"", b)
        b = _normalise(b, case)
        if a != b:
            out.append(_text_diff(what, a, b))
    for path in sorted(off.files.keys() | on.files.keys()):
        if path in case.may_differ:
            continue
        a, b = off.files.get(path), on.files.get(path)
        if (
            a is not None
            and b is not None
            and path.endswith((".hydra/hydra.yaml", "multirun.yaml"))
        ):
            a, b = hydra_yaml_pair(a, b)
        if a == b:
            continue
        if a is None or b is None:
            out.append(f"file {path}: only {'on' if a is None else 'off'}")
        else:
            out.append(_text_diff(f"file {path}", a, b))
    return out


def run_both(case: Case, mode: str, base: Path) -> tuple[Observed, Observed]:
    """Run ``case`` off, then on, each in a fresh copy at the same path."""
    template = make_app(base, case)
    app = base / case.name
    seen = []
    for tracking in (False, True):
        if app.exists():
            shutil.rmtree(app)
        shutil.copytree(template, app, symlinks=True)
        seen.append(observe(case, mode, tracking, app))
        shutil.move(app, base / f"{case.name}-{'on' if tracking else 'off'}")
    return seen[0], seen[1]


def assert_invisible(
    case: Case, mode: str, base: Path, *, check: Callable[[Observed, Observed], None] | None = None
) -> tuple[Observed, Observed]:
    """Fail, showing every difference, unless tracking on is invisible."""
    off, on = run_both(case, mode, base)
    found = differences(case, off, on)
    assert not found, f"tracking on differs from off ({case.name}, {mode}):\n" + "\n\n".join(found)
    if check is not None:
        check(off, on)
    return off, on
