"""The reader: recorded runs read back.

:mod:`.reader` (:func:`~.reader.load_experiments`, one
:class:`~.reader.ExperimentReader` a folder), :mod:`.frame` (rows into a typed
DataFrame), :mod:`.cache` (the per-user cache of frames), :mod:`.metrics`
(metrics.jsonl), :mod:`.attempts` (a re-run job's latest attempt) and
:mod:`.compare` (what ``meticulous diff`` compares).

``from meticulous_hydra.reader import load_experiments`` still works: the
names of :mod:`.reader` are served from here, loaded when first used.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any


def __getattr__(name: str) -> Any:
    if name.startswith("__"):
        raise AttributeError(name)
    module = import_module(".reader", __name__)
    try:
        return getattr(module, name)
    except AttributeError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
