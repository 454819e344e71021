"""meticulous-hydra: record every run of an ML program in plain numbered folders.

Importing the package is cheap: the recorder, the Hydra callback, the reader
(pandas) and the CLI load only when first used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "Experiment": "experiment",
    "current": "experiment",
    "ResumeMismatchError": "experiment",
    "RecordingError": "layout",
    "InvalidIdError": "layout",
    "DirtyRepoError": "gitstate",
    "record": "argparse_adapter",
    "MeticulousCallback": "hydra_callback",
    "ExperimentReader": "reader",
    "Experiments": "reader",
    "load_experiments": "reader",
    "load_metrics": "metrics",
}

__all__ = [*_EXPORTS, "__version__"]

if TYPE_CHECKING:
    from .argparse_adapter import record
    from .experiment import Experiment, ResumeMismatchError, current
    from .gitstate import DirtyRepoError
    from .hydra_callback import MeticulousCallback
    from .layout import InvalidIdError, RecordingError
    from .metrics import load_metrics
    from .reader import ExperimentReader, Experiments, load_experiments


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'meticulous_hydra' has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
