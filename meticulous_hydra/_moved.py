"""Module paths from before the parts had folders, still importable.

``meticulous_hydra.hydra_callback`` stays for good: it is the ``_target_`` in
users' configs and recorded runs' ``.hydra/hydra.yaml``, and the class path in
pickled Hydra contexts (the submitit launcher's queued jobs). The other old
paths were never documented; importing one warns (DeprecationWarning), and
with ``METICULOUS_HYDRA_OLD_PATHS=error`` (the test suite sets it) it fails,
so our own code never uses them. Each old name is the new module itself, not
a copy: classes keep one identity and pickle by their new path.
"""

from __future__ import annotations

import os
import sys
import warnings
from importlib import import_module
from importlib.machinery import ModuleSpec
from types import ModuleType
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from importlib.abc import Loader

PACKAGE = "meticulous_hydra"
ERROR_SWITCH = "METICULOUS_HYDRA_OLD_PATHS"

# old module -> its new place (of a module split in two, the logic's half)
MOVED = {
    "announce": "recorder.announce",
    "argparse_adapter": "adapters.argparse_adapter",
    "attempts": "reader.attempts",
    "cache": "reader.cache",
    "capture": "recorder.capture",
    "columns": "cli.columns",
    "compare": "reader.compare",
    "environment": "recorder.environment",
    "experiment": "recorder.experiment",
    "follow": "cli.follow",
    "frame": "reader.frame",
    "gitstate": "recorder.gitstate",
    "hooks": "recorder.hooks",
    "hydra_callback": "adapters.hydra_callback",
    "hydra_config": "adapters.hydra_config",
    "metrics": "reader.metrics",
    "organise": "recorder.organise",
    "provenance": "recorder.provenance",
    "query": "cli.query",
    "redact": "recorder.redact",
    "reproduce": "replay.reproduce",
    "rerun": "replay.rerun",
    "selection": "cli.selection",
    "show": "cli.commands.show",
    "summary_cli": "cli.summary",
    "table": "cli.table",
}
PERMANENT = frozenset({"hydra_callback"})


class _Alias:
    """A loader whose module is the one at the new path."""

    def __init__(self, target: str) -> None:
        self.target = target

    def create_module(self, spec: ModuleSpec) -> ModuleType:
        return import_module(self.target)

    def exec_module(self, module: ModuleType) -> None:
        pass  # already executed under its new name


class OldPaths:
    """A ``sys.meta_path`` finder for the names in :data:`MOVED`."""

    @staticmethod
    def find_spec(fullname: str, path: Any = None, target: Any = None) -> ModuleSpec | None:
        package, _, old = fullname.partition(".")
        new = MOVED.get(old) if package == PACKAGE else None
        if new is None:
            return None
        if old not in PERMANENT:
            message = f"{fullname} is now {PACKAGE}.{new}"
            if os.environ.get(ERROR_SWITCH) == "error":
                raise ImportError(message)
            warnings.warn(message, DeprecationWarning, stacklevel=2)
        # the stub asks for the importlib.abc.Loader class; the import system
        # needs only create_module/exec_module, which _Alias has
        return ModuleSpec(fullname, cast("Loader", _Alias(f"{PACKAGE}.{new}")))


def install() -> None:
    if not any(f is OldPaths for f in sys.meta_path):
        sys.meta_path.append(OldPaths)
