"""README.md and docs/*.md, run: every command in them runs here against real
recorded runs and its shown output is compared, so no page goes stale.

The block convention (README.md, "Development", tells writers the same):

- A ```console block is run. Each ``$ `` line (a trailing ``\\`` continues it)
  is a command, run from the page's project; the lines up to the next ``$ ``
  are what it prints (stdout and stderr together, as a terminal shows them).
  A ``...`` line stands for any lines, ``...`` inside a line for any text. A
  last line ``[exit code N]`` says the command exits N; otherwise it must exit
  0. A command shown without output is checked by its exit code alone.
- A ```python block is run in the page's project, in one namespace per page;
  with ``>>>`` lines it is a doctest and its output is compared the same way.
- ``<!-- write: PATH -->`` before a block writes the block to PATH in the
  project (a later ``$ git commit`` in the page commits it).
- ``<!-- excerpt: PATH -->`` before a block: every line of the block, less a
  trailing ``# comment``, is a line of PATH in this repository, in order
  (``...`` lines skip).
- ``<!-- not run: REASON -->`` before a block: not run, for what no test can
  run (``make test`` itself, an install, a SLURM cluster). The reason is required.
- A ```text block is a picture (a folder tree, a layout), with no ``$ `` line.

A page's project is a temp git repository holding a copy of the example app
(conf/, examples/), committed; shown paths into it read ``/tmp/project``.
Pages in ``AFTER_README`` start where the README's tour ends (the tour is
replayed in their own project). Outputs are compared after normalising what
changes from run to run: times, durations, shas, sweep ids, paths, host, pid,
the Python version, runs of spaces and table rules. ``DOCS_DUMP=FILE`` writes
what each command printed to FILE, to paste when an output changes on purpose.
"""

from __future__ import annotations

import contextlib
import difflib
import doctest
import io
import os
import re
import shlex
import subprocess
import sys
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers import PROJECT, make_app_repo

PAGES = sorted(
    [PROJECT / "README.md", *PROJECT.glob("docs/*.md")], key=lambda p: p != PROJECT / "README.md"
)
# Pages that start where the README's tour ends (experiments/1-5, runs/1); others start afresh.
AFTER_README = {"docs/verbs.md", "docs/python.md"}
SHOWN_PROJECT = "/tmp/project"
# The user who runs the commands, as meticulous note records it.
USER = "ada"
LANGS = {"console", "python", "yaml", "text"}
_DIRECTIVE = re.compile(r"<!--\s*(not run|write|excerpt):\s*(.*?)\s*-->$")
_EXIT = re.compile(r"\[exit code (\d+)\]")


@dataclass
class Block:
    page: Path
    line: int  # of the opening fence, 1-based
    lang: str
    text: str
    directive: str | None = None  # "not run", "write" or "excerpt"
    argument: str = ""

    @property
    def where(self) -> str:
        return f"{page_id(self.page)}:{self.line}"


def page_id(page: Path) -> str:
    return str(page.relative_to(PROJECT)) if page.is_relative_to(PROJECT) else page.name


def blocks(page: Path) -> list[Block]:
    """The fenced blocks of a markdown page, each with the directive written
    on the line before it."""
    found: list[Block] = []
    lines = page.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if not line.startswith("```"):
            i += 1
            continue
        start, lang = i, line[3:].strip()
        i += 1
        body = []
        while i < len(lines) and not lines[i].startswith("```"):
            body.append(lines[i])
            i += 1
        i += 1  # the closing fence
        block = Block(page, start + 1, lang, "\n".join(body) + "\n")
        before = lines[start - 1].strip() if start else ""
        if before.startswith("<!--"):
            match = _DIRECTIVE.match(before)
            block.directive, block.argument = match.groups() if match else ("?", before)
        found.append(block)
    return found


def convention_errors(block: Block) -> list[str]:
    """What in ``block`` breaks the block convention (see the module docstring)."""
    errors = []
    if block.lang not in LANGS:
        errors.append(f"a block is one of {', '.join(sorted(LANGS))}, not {block.lang!r}")
    if block.directive == "?":
        errors.append(f"unknown directive {block.argument}: not run, write or excerpt")
    if block.directive == "not run" and not block.argument:
        errors.append("<!-- not run: ... --> needs its reason")
    if block.directive in ("write", "excerpt") and not block.argument:
        errors.append(f"<!-- {block.directive}: PATH --> needs its path")
    if block.lang == "console" and not block.text.startswith("$ "):
        errors.append("a console block starts with a `$ ` command")
    if block.lang == "text" and (block.directive or re.search(r"^\$ ", block.text, re.M)):
        errors.append("a text block is a picture: no `$ ` line, no directive (use console)")
    if block.lang == "yaml" and block.directive is None:
        errors.append("a yaml block is a file or part of one: <!-- write: ... --> or excerpt")
    if block.directive == "excerpt" and not (PROJECT / block.argument).is_file():
        errors.append(f"no file {block.argument} to be an excerpt of")
    return errors


# -- comparing output -------------------------------------------------------------

_NORMAL = [
    (re.compile(r"\b\d{8}-\d{6}-[0-9a-f]{8}\b"), "<sweep>"),  # a sweep id
    (
        re.compile(r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?(?:[+-]\d{2}:\d{2}|Z)?"),
        "<time>",
    ),
    (re.compile(r"\b\d{4}-\d{2}-\d{2}/\d{2}-\d{2}-\d{2}\b"), "<date>/<time>"),  # Hydra's dirs
    (re.compile(r"(?<![\w.])[0-9a-f]{7,40}(?![\w.])"), "<sha>"),
    (re.compile(r"(?<![\w.])(?:<10ms|\d+(?:\.\d+)?s|\d+m\d\ds|\d+h\d\dm)(?![\w.])"), "<duration>"),
    (re.compile(r"^(duration|host|pid): .*$", re.M), r"\1: <\1>"),
    (re.compile(r"\b3\.1\d\.\d+\b"), "3.x"),  # the Python version
    (re.compile(r"(?<=pid )\d+"), "<pid>"),
    (re.compile(r"-{3,}"), "---"),  # table rules, as wide as their column
    (re.compile(r"[ \t]+"), " "),
]


def normalise(text: str, paths: dict[str, str]) -> str:
    for real, shown in sorted(paths.items(), key=lambda kv: -len(kv[0])):
        text = text.replace(real, shown)
    for pattern, replacement in _NORMAL:
        text = pattern.sub(replacement, text)
    lines = [line.rstrip() for line in text.splitlines()]
    while lines and not lines[-1]:
        lines.pop()
    return "\n".join(lines) + "\n"


def matches(expected: str, actual: str) -> bool:
    """``actual`` is ``expected`` with its ``...`` lines and ``...`` in lines
    filled in (both normalised)."""
    parts = []
    for line in expected.splitlines():
        if line.strip() == "...":
            parts.append(r"(?:[^\n]*\n)*?")
        else:
            parts.append(".*?".join(map(re.escape, line.split("..."))) + r"\n")
    return re.fullmatch("".join(parts), actual) is not None


def difference(where: str, what: str, expected: str, actual: str) -> str:
    diff = difflib.unified_diff(
        expected.splitlines(), actual.splitlines(), "shown", "got", lineterm=""
    )
    return f"{where}: {what}: the output differs (normalised):\n" + "\n".join(diff)


# -- running a page ------------------------------------------------------------------


@dataclass
class Command:
    line: int
    text: str
    expected: str
    exit_code: int


def commands(block: Block) -> list[Command]:
    found: list[Command] = []
    lines = block.text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        start = block.line + 1 + i
        text = line[2:]
        while text.endswith("\\") and i + 1 < len(lines):
            i += 1
            text = text[:-1] + " " + lines[i].strip()
        i += 1
        output = []
        while i < len(lines) and not lines[i].startswith("$ "):
            output.append(lines[i])
            i += 1
        exit_code = 0
        if output and _EXIT.fullmatch(output[-1].strip()):
            exit_code = int(_EXIT.fullmatch(output.pop().strip()).group(1))
        found.append(Command(start, text.strip(), "\n".join(output), exit_code))
    return found


@contextlib.contextmanager
def inside(project: Path) -> Iterator[None]:
    """The working directory and user of the commands, for in-process calls."""
    saved_cwd, saved_env = os.getcwd(), dict(os.environ)
    os.chdir(project)
    os.environ.pop("LC_ALL", None)
    os.environ.update(_env())
    try:
        yield
    finally:
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)


def _env() -> dict[str, str]:
    """What the commands' environment adds: the installed commands first on
    PATH, a terminal 100 columns wide (meticulous-summary fits it), the user,
    and ls sorting as in the C locale."""
    bin_dir = str(Path(sys.executable).parent)
    env = {
        "PATH": bin_dir + os.pathsep + os.environ.get("PATH", ""),
        "COLUMNS": "100",
        "LOGNAME": USER,
        "USER": USER,
        "PYTHONUNBUFFERED": "1",
        "LC_COLLATE": "C",
    }
    if os.environ.get("LC_ALL"):  # it would override LC_COLLATE
        env["LANG"] = os.environ["LC_ALL"]
    return env


def _in_process(argv: list[str]) -> tuple[int, str] | None:
    """Run a ``meticulous`` or ``meticulous-summary`` command in this process;
    None for one that needs a real process (it starts runs, or uses a shell)."""
    if not argv or argv[0] not in ("meticulous", "meticulous-summary"):
        return None
    if (argv[0] == "meticulous" and argv[1:2] in (["reproduce"], ["rerun"])) or any(
        a.startswith("--watch") for a in argv
    ):
        return None
    from meticulous_hydra import cli
    from meticulous_hydra.cli import summary

    main = summary.main if argv[0] == "meticulous-summary" else cli.main
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        try:
            code = main(argv[1:])
        except SystemExit as e:  # argparse's own errors and --help
            code = 0 if e.code is None else e.code if isinstance(e.code, int) else 1
        except Exception:  # a crash is a failure to show, not one to stop the page
            code = 1
            out.write(traceback.format_exc())
    return code, out.getvalue()


def _words(command: str) -> list[str] | None:
    """The words of a command with no shell syntax (pipes, redirections,
    ``&&``, expansions), else None."""
    lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    try:
        words = list(lexer)
    except ValueError:
        return None
    if "$" in command or any(w and set(w) <= set("();<>|&") for w in words):
        return None
    return words


def run_command(command: Command, project: Path) -> tuple[int, str]:
    words = _words(command.text)
    if words is not None:
        with inside(project):
            done = _in_process(words)
        if done is not None:
            return done
    proc = subprocess.run(
        ["bash", "-o", "pipefail", "-c", command.text],
        cwd=project,
        env={k: v for k, v in {**os.environ, **_env()}.items() if k != "LC_ALL"},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=300,
    )
    return proc.returncode, proc.stdout


def _dump(where: str, command: str, output: str, paths: dict[str, str]) -> None:
    """With $DOCS_DUMP set, append what each command printed (paths shown as
    in the docs, nothing else normalised) to that file: the text to paste
    into a page when an output changes on purpose."""
    dump = os.environ.get("DOCS_DUMP")
    if dump:
        for real, shown in sorted(paths.items(), key=lambda kv: -len(kv[0])):
            output = output.replace(real, shown)
        with open(dump, "a", encoding="utf-8") as f:
            f.write(f"### {where}\n$ {command}\n{output}")


class _Checker(doctest.OutputChecker):
    def __init__(self, paths: dict[str, str]) -> None:
        self.paths = paths

    def check_output(self, want: str, got: str, optionflags: int) -> bool:
        return matches(normalise(want, self.paths), normalise(got, self.paths))

    def output_difference(self, example: doctest.Example, got: str, optionflags: int) -> str:
        shown, got = normalise(example.want, self.paths), normalise(got, self.paths)
        diff = difflib.unified_diff(
            shown.splitlines(), got.splitlines(), "shown", "got", lineterm=""
        )
        return "the output differs (normalised):\n" + "\n".join(diff) + "\n"


def run_python(block: Block, namespace: dict, paths: dict[str, str], project: Path) -> list[str]:
    if ">>> " not in block.text:
        with inside(project):
            try:
                exec(compile(block.text, block.where, "exec"), namespace)
            except Exception as e:
                return [f"{block.where}: the block raised {type(e).__name__}: {e}"]
        return []
    test = doctest.DocTestParser().get_doctest(
        block.text, namespace, block.where, str(block.page), block.line
    )
    report: list[str] = []
    runner = doctest.DocTestRunner(checker=_Checker(paths), optionflags=doctest.ELLIPSIS)
    with inside(project):
        runner.run(test, out=report.append, clear_globs=False)
    namespace.update(test.globs)  # the DocTest ran on a copy
    return [f"{block.where}:\n" + "".join(report)] if runner.failures else []


def check_excerpt(block: Block) -> list[str]:
    source = [line.strip() for line in (PROJECT / block.argument).read_text().splitlines()]
    position = 0
    for line in block.text.splitlines():
        wanted = line.strip()
        if wanted in ("", "..."):
            continue
        candidates = [wanted, re.sub(r"\s+#.*$", "", wanted)]
        found = next((i for i in range(position, len(source)) if source[i] in candidates), None)
        if found is None:
            return [f"{block.where}: {wanted!r} is not a line of {block.argument} (in order)"]
        position = found + 1
    return []


def new_project(folder: Path) -> Path:
    return make_app_repo(folder, examples=("train.py", "train_argparse.py"))


def run_page(page: Path, project: Path) -> list[str]:
    """Run every block of ``page`` in ``project``; the failures, as text."""
    paths = {str(project): SHOWN_PROJECT, str(project.resolve()): SHOWN_PROJECT}
    paths[sys.executable] = SHOWN_PROJECT + "/.venv/bin/python"
    failures: list[str] = []
    namespace: dict = {"__name__": "__doc__"}
    for block in blocks(page):
        if convention_errors(block):
            failures += [f"{block.where}: {e}" for e in convention_errors(block)]
        elif block.directive == "not run" or block.lang == "text":
            continue
        elif block.directive == "write":
            target = project / block.argument
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(block.text)
        elif block.directive == "excerpt":
            failures += check_excerpt(block)
        elif block.lang == "python":
            failures += run_python(block, namespace, paths, project)
        elif block.lang == "console":
            for command in commands(block):
                where = f"{page_id(block.page)}:{command.line}"
                code, output = run_command(command, project)
                _dump(where, command.text, output, paths)
                if code != command.exit_code:
                    failures.append(
                        f"{where}: `{command.text}` exited {code}, not {command.exit_code}:\n{output}"
                    )
                    continue
                if not command.expected:
                    continue
                expected, actual = normalise(command.expected, paths), normalise(output, paths)
                if not matches(expected, actual):
                    failures.append(difference(where, f"`{command.text}`", expected, actual))
    return failures


def runnable(page: Path) -> bool:
    return any(b.directive != "not run" and b.lang != "text" for b in blocks(page))


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_every_block_follows_the_convention(page: Path) -> None:
    errors = [f"{b.where}: {e}" for b in blocks(page) for e in convention_errors(b)]
    assert not errors, "\n".join(errors)


@pytest.mark.parametrize("page", [p for p in PAGES if runnable(p)], ids=page_id)
def test_page_runs_as_shown(page: Path, tmp_path: Path) -> None:
    project = new_project(tmp_path / "project")
    if page_id(page) in AFTER_README:
        # the tour replayed in this page's own project (its failures are the
        # README's test's): recorded paths must be this project's, or diff and
        # reproduce would compare runs across two repositories
        run_page(PROJECT / "README.md", project)
    failures = run_page(page, project)
    assert not failures, "\n\n".join(failures)


# -- what the pages name -----------------------------------------------------------

_PATH = re.compile(
    r"(?<![\w/.])((?:meticulous_hydra|tests|examples|bench|docs|conf|hydra_plugins)/[\w./-]*\w/?)(::\w+)?"
)
_LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def _ignored(path: str) -> bool:
    """A file git ignores: made by a command (bench/results.json)."""
    return subprocess.run(["git", "-C", str(PROJECT), "check-ignore", "-q", path]).returncode == 0


def reference_errors(page: Path) -> list[str]:
    """Paths into this repository, tests named ``tests/...py::test_name`` and
    links to other pages that do not exist."""
    text = page.read_text(encoding="utf-8")
    errors = []
    for match in _PATH.finditer(text):
        path, name = match.group(1), match.group(2)
        if "*" in path or "..." in path:  # a pattern, not a path
            continue
        target = PROJECT / path
        if not target.exists() and not _ignored(path):
            errors.append(f"{page_id(page)}: no {path} in the repository")
        elif name and not re.search(rf"^def {name[2:]}\(", target.read_text(), re.M):
            errors.append(f"{page_id(page)}: no test {name[2:]} in {path}")
    for match in re.finditer(r"(?<![\w/])(test_\w+\.py)::", text):
        errors.append(f"{page_id(page)}: name {match.group(1)} by its path (tests/...)")
    for match in _LINK.finditer(text):
        link = match.group(1)
        if "://" not in link and not (page.parent / link).exists():
            errors.append(f"{page_id(page)}: a link to {link}, which does not exist")
    return errors


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_every_path_test_and_link_named_exists(page: Path) -> None:
    errors = reference_errors(page)
    assert not errors, "\n".join(errors)


# -- the harness itself ----------------------------------------------------------------

DRIFTED = """\
# A page

```console
$ echo one; echo two; echo three
one
...
three
$ echo "took 0.03s at 2026-11-27T12:40:56+00:00"
took 1.5s at 2026-12-01T00:00:00+00:00
$ echo drifted
shown
$ false
$ exit 3
[exit code 3]
```

```python
>>> 1 + 1
3
```

<!-- not run -->
```console
$ make test
```
"""


def test_a_drifted_output_or_a_broken_command_fails(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(DRIFTED)
    failures = run_page(page, tmp_path)
    assert len(failures) == 4, "\n\n".join(failures)
    drifted, broken, doctested, convention = failures
    assert "page.md:10: `echo drifted`" in drifted and "-shown\n+drifted" in drifted
    assert "page.md:12: `false` exited 1, not 0" in broken
    assert "1 + 1" in doctested and "-3\n+2" in doctested
    assert "page.md:23: unknown directive" in convention


def test_make_demo_runs_its_sweep(tmp_path: Path) -> None:
    """`make demo` is examples/demo.py (as `make -n` shows), run here in a
    copy of the example app: 18 recorded runs, the table and the group means."""
    dry = subprocess.run(["make", "-n", "demo"], cwd=PROJECT, capture_output=True, text=True)
    assert "examples/demo.py --root demo-runs" in dry.stdout, dry.stdout + dry.stderr
    project = make_app_repo(tmp_path / "project", examples=("train.py", "demo.py"))
    proc = subprocess.run(
        [sys.executable, "examples/demo.py", "--root", "runs"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, **_env()},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    runs = [p for p in (project / "runs").iterdir() if p.name.isdigit()]
    assert len(runs) == 18
    assert "all 18 are recorded" in proc.stdout
    means = proc.stdout.split("--group-by model.name optimizer.lr\n", 1)[1]
    assert len([line for line in means.splitlines() if " ± " in line]) == 4  # 2 of 6 diverge
