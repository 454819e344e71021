"""The package as a whole: the public surface, the parts and which way their
imports go, where errors live, and what importing costs."""

from __future__ import annotations

import ast
import importlib
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib

import meticulous_hydra
from meticulous_hydra import _moved, cli, exceptions

PACKAGE = Path(meticulous_hydra.__file__).parent
NAME = "meticulous_hydra"

PUBLIC = {
    "Experiment",
    "current",
    "record",
    "MeticulousCallback",
    "ExperimentReader",
    "Experiments",
    "load_experiments",
    "load_metrics",
    "RecordingError",
    "InvalidIdError",
    "StorageError",
    "DirtyRepoError",
    "ResumeMismatchError",
    "NotSerializable",
    "UsageError",
    "QueryError",
    "__version__",
}

# the parts, lowest first, and the parts each may import besides itself
FLOOR = "floor"  # exceptions, layout, _version: what every part stands on
MAY_IMPORT = {
    FLOOR: set(),
    "recorder": {FLOOR},
    "adapters": {FLOOR, "recorder"},
    "reader": {FLOOR, "recorder"},
    "replay": {FLOOR, "recorder", "reader"},
    "cli": {FLOOR, "recorder", "reader", "replay"},
}


def _modules() -> dict[str, Path]:
    """Every module of the package by its dotted name (a folder's __init__ by
    the folder's name)."""
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The package's modules ``name`` imports: at the top, inside functions and
    for type checkers alike."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.add(sub if sub in modules else base)
    return {m for m in found if m in modules and m != name}


def _part(module: str) -> str:
    parts = module.split(".")
    if len(parts) == 1:
        return "top"  # the package's __init__: the public surface
    if len(parts) == 2 and parts[1] in {"exceptions", "layout", "_version", "_moved"}:
        return FLOOR
    return parts[1]


def test_the_public_surface_is_pinned() -> None:
    assert set(meticulous_hydra.__all__) == PUBLIC
    assert set(dir(meticulous_hydra)) >= PUBLIC
    for name in PUBLIC - {"__version__"}:
        value = getattr(meticulous_hydra, name)
        assert value.__module__.startswith(NAME + "."), name
    assert isinstance(meticulous_hydra.__version__, str)
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        meticulous_hydra.nope  # noqa: B018


def test_the_callbacks_old_path_stays_for_configs_and_pickles() -> None:
    from hydra.utils import get_class

    from meticulous_hydra.adapters import hydra_callback

    old = importlib.import_module(f"{NAME}.hydra_callback")  # no warning: it stays for good
    assert old is hydra_callback
    shipped = (PACKAGE / "conf/hydra/callbacks/meticulous.yaml").read_text()
    assert "_target_: meticulous_hydra.MeticulousCallback\n" in shipped
    for target in (
        "meticulous_hydra.MeticulousCallback",
        "meticulous_hydra.hydra_callback.MeticulousCallback",
        "meticulous_hydra.adapters.hydra_callback.MeticulousCallback",
    ):
        assert get_class(target) is meticulous_hydra.MeticulousCallback
    # a callback pickled before the move (protocol 0 names the class by its path)
    data = pickle.dumps(meticulous_hydra.MeticulousCallback(root="r"), protocol=0)
    before = data.replace(
        b"meticulous_hydra.adapters.hydra_callback", b"meticulous_hydra.hydra_callback"
    )
    assert before != data
    assert pickle.loads(before).root == "r"


def test_the_console_scripts_are_unchanged() -> None:
    project = tomllib.loads((PACKAGE.parent / "pyproject.toml").read_text())["project"]
    scripts = project["scripts"]
    assert set(scripts) == {"meticulous", "meticulous-summary"}
    for target in scripts.values():
        module, _, func = target.partition(":")
        assert callable(getattr(importlib.import_module(module), func))
    assert scripts["meticulous"] == "meticulous_hydra.cli:main"


def test_the_changelog_starts_at_the_packages_version() -> None:
    # its newest section is the version the package says it is, with its date
    text = (PACKAGE.parent / "CHANGELOG.md").read_text()
    versions = [line.split()[1] for line in text.splitlines() if line.startswith("## ")]
    assert versions and versions[0] == meticulous_hydra.__version__, versions


def test_old_module_paths_warn_and_the_suites_switch_makes_them_errors(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from meticulous_hydra.recorder import experiment

    monkeypatch.delitem(sys.modules, f"{NAME}.experiment", raising=False)
    monkeypatch.delenv(_moved.ERROR_SWITCH, raising=False)
    with pytest.warns(DeprecationWarning, match=r"meticulous_hydra\.recorder\.experiment"):
        old = importlib.import_module(f"{NAME}.experiment")
    assert old is experiment
    monkeypatch.delitem(sys.modules, f"{NAME}.experiment")
    monkeypatch.setenv(_moved.ERROR_SWITCH, "error")
    with pytest.raises(ImportError, match=r"is now meticulous_hydra\.recorder\.experiment"):
        importlib.import_module(f"{NAME}.experiment")
    for new in _moved.MOVED.values():  # every old name leads somewhere
        importlib.import_module(f"{NAME}.{new}")


def test_the_top_holds_the_floor_and_each_part_is_a_folder() -> None:
    top = sorted(p.name for p in PACKAGE.iterdir() if not p.name.startswith("__pycache__"))
    assert top == [
        "__init__.py",
        "_moved.py",
        "_version.py",
        "adapters",
        "cli",
        "conf",
        "exceptions.py",
        "layout.py",
        "reader",
        "recorder",
        "replay",
    ]
    for part in MAY_IMPORT.keys() - {FLOOR}:
        doc = ast.get_docstring(ast.parse((PACKAGE / part / "__init__.py").read_text()))
        assert doc, f"{part}/__init__.py says what the part is"
    # one thin module per verb
    commands = {p.stem for p in (PACKAGE / "cli/commands").glob("*.py")} - {"__init__"}
    verbs = {module.rpartition(".")[2] for module, _ in cli.VERBS.values()} - {"summary"}
    assert commands == verbs


def test_a_lower_part_never_imports_a_higher_one() -> None:
    modules = _modules()
    wrong = []
    for name, path in modules.items():
        part = _part(name)
        if part in ("top", "conf"):
            continue
        for imported in _imports(name, path, modules):
            other = _part(imported)
            if other != part and other not in MAY_IMPORT[part]:
                wrong.append(f"{name} ({part}) imports {imported} ({other})")
    assert wrong == []


def test_the_recorders_building_blocks_never_import_the_experiment() -> None:
    modules = _modules()
    blocks = [m for m in modules if _part(m) == "recorder" and not m.endswith(".experiment")]
    assert len(blocks) > 5
    for name in blocks:
        assert f"{NAME}.recorder.experiment" not in _imports(name, modules[name], modules), name


def test_no_import_cycle_anywhere() -> None:
    # typing-only and in-function imports count: a cycle is a cycle
    modules = _modules()
    graph = {m: _imports(m, p, modules) for m, p in modules.items()}

    def reaches(start: str, target: str, seen: set[str]) -> bool:
        for nxt in graph[start] - seen:
            if nxt == target or reaches(nxt, target, seen | {nxt}):
                return True
        return False

    assert sorted(m for m in modules if reaches(m, m, set())) == []
    # the test sees imports: the announce <-> experiment cycle it once had
    assert f"{NAME}.recorder.announce" in graph[f"{NAME}.recorder.experiment"]


def test_public_errors_live_in_exceptions_and_keep_their_old_names() -> None:
    from meticulous_hydra import layout
    from meticulous_hydra.cli import query
    from meticulous_hydra.recorder import experiment, gitstate

    # a public error defined anywhere else belongs in exceptions.py
    elsewhere = [
        f"{module.name}: {node.name}"
        for module in PACKAGE.rglob("*.py")
        if module.name != "exceptions.py"
        for node in ast.walk(ast.parse(module.read_text()))
        if isinstance(node, ast.ClassDef) and not node.name.startswith("_")
        for base in node.bases
        if getattr(base, "id", getattr(base, "attr", "")).endswith(("Error", "Exception"))
    ]
    assert elsewhere == []
    old_homes = {
        layout: ["RecordingError", "InvalidIdError", "StorageError", "NotSerializable"],
        gitstate: ["DirtyRepoError"],
        experiment: ["ResumeMismatchError"],
        query: ["QueryError"],
    }
    for module, names in old_homes.items():
        for name in names:
            assert getattr(module, name) is getattr(exceptions, name)
            assert getattr(meticulous_hydra, name) is getattr(exceptions, name)
    assert issubclass(exceptions.DirtyRepoError, meticulous_hydra.RecordingError)


HEAVY = {"pandas", "numpy", "yaml", "tabulate", "hydra", "omegaconf", "git"}


@pytest.mark.parametrize(
    ("entry", "allowed"),
    [
        ("import meticulous_hydra", set()),
        ("from meticulous_hydra import Experiment, record", set()),
        ("import meticulous_hydra.reader", set()),
        ("from meticulous_hydra import cli; cli.main(['--help'])", set()),
        # the callback is a Hydra callback: Hydra, never pandas
        ("from meticulous_hydra import MeticulousCallback", {"hydra", "omegaconf", "yaml"}),
    ],
)
def test_import_stays_light(entry: str, allowed: set[str]) -> None:
    # a fresh interpreter is the point: what one entry point loads
    code = (
        f"import sys\n{entry}\n"
        f"print(sorted(set({sorted(HEAVY - allowed)!r}) & set(sys.modules)), file=sys.stderr)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stderr.strip() == "[]"
