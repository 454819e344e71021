"""meticulous-hydra: record every run of an ML program in plain numbered folders.

Five parts, in one flat package; imports go downwards only:

- recorder: ``experiment`` (the :class:`Experiment`, one run's folder),
  ``hooks`` (the active runs and the process hooks that end them),
  ``capture`` (stdout/stderr), ``gitstate``, ``environment`` (host, versions,
  rank), ``redact`` (secrets), all over ``layout``, the on-disk format
  (docs/FORMAT.md), and ``exceptions``, every error a user sees;
- Hydra: ``hydra_callback`` (:class:`MeticulousCallback`), ``hydra_config``
  (the job's resolved config and Hydra's metadata);
- argparse: ``argparse_adapter`` (:func:`record`);
- reader: ``reader`` (:func:`load_experiments`), ``frame`` (rows to a
  DataFrame), ``cache`` (the per-user cache of frames);
- CLI: ``summary_cli`` (``meticulous-summary``), ``columns`` (the table's
  default columns), ``query`` (``--filter``), ``table`` (text tables, CSV,
  JSON), ``cli`` (``meticulous VERB``) and its verb modules.

Importing the package is cheap: the recorder, the Hydra callback, the reader
(pandas) and the CLI load only when first used.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "Experiment": "experiment",
    "current": "experiment",
    "RecordingError": "exceptions",
    "InvalidIdError": "exceptions",
    "StorageError": "exceptions",
    "DirtyRepoError": "exceptions",
    "ResumeMismatchError": "exceptions",
    "NotSerializable": "exceptions",
    "UsageError": "exceptions",
    "QueryError": "exceptions",
    "record": "argparse_adapter",
    "MeticulousCallback": "hydra_callback",
    "ExperimentReader": "reader",
    "Experiments": "reader",
    "load_experiments": "reader",
    "load_metrics": "reader",
}

__all__ = [*_EXPORTS, "__version__"]

if TYPE_CHECKING:
    from .argparse_adapter import record
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
    from .experiment import Experiment, current
    from .hydra_callback import MeticulousCallback
    from .reader import ExperimentReader, Experiments, load_experiments, load_metrics


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'meticulous_hydra' has no attribute {name!r}")
    value = getattr(import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
