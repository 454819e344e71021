"""meticulous-hydra: record every run of an ML program in plain numbered folders.

The folders are the parts; imports go one way, from the later to the earlier:

- ``exceptions`` (every error a user sees) and ``layout`` (the on-disk format,
  docs/FORMAT.md): the floor every part stands on;
- ``recorder/``: one run's folder, written while it runs (:class:`Experiment`,
  capture, git state, environment, redaction, the active-run hooks), and the
  tags, notes and trash users add later;
- ``adapters/``: Hydra (:class:`MeticulousCallback`) and argparse
  (:func:`record`), a program's resolved config into the recorder;
- ``reader/``: runs read back (:func:`load_experiments`, the frame, its cache,
  metrics, what ``diff`` compares);
- ``replay/``: runs run again (``reproduce``, ``rerun``);
- ``cli/``: ``meticulous-summary`` (the table) and ``meticulous VERB``, one
  thin module per verb in ``cli/commands/``.

The names below are the public surface; importing the package is cheap: each
part loads when first used.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from ._moved import install as _install_old_paths
from ._version import __version__

_install_old_paths()

_EXPORTS = {
    "Experiment": "recorder.experiment",
    "current": "recorder.experiment",
    "RecordingError": "exceptions",
    "InvalidIdError": "exceptions",
    "StorageError": "exceptions",
    "DirtyRepoError": "exceptions",
    "ResumeMismatchError": "exceptions",
    "NotSerializable": "exceptions",
    "UsageError": "exceptions",
    "QueryError": "exceptions",
    "record": "adapters.argparse_adapter",
    "MeticulousCallback": "adapters.hydra_callback",
    "ExperimentReader": "reader.reader",
    "Experiments": "reader.reader",
    "load_experiments": "reader.reader",
    "load_metrics": "reader.reader",
}

__all__ = [*_EXPORTS, "__version__"]

if TYPE_CHECKING:
    from .adapters.argparse_adapter import record
    from .adapters.hydra_callback import MeticulousCallback
    from .exceptions import (
        DirtyRepoError,
        InvalidIdError,
        NotSerializable,
        QueryError,
        RecordingError,
        ResumeMismatchError,
        StorageError,
        UsageError,
    )
    from .reader.reader import ExperimentReader, Experiments, load_experiments, load_metrics
    from .recorder.experiment import Experiment, current


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'meticulous_hydra' has no attribute {name!r}")
    value = getattr(import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
