"""A per-user cache of the DataFrame of a root, so that reading it again costs
one directory scan plus the folders that changed.

A folder counts as unchanged while its modification time is: the recorder
replaces files (it never edits them in place), which touches the folder. Runs
still RUNNING (or DIED) are read again every time, and so are folders that
changed within two seconds of the last save, whose time stamp may not yet
tell a later change apart.

The cache lives in ``$METICULOUS_HYDRA_CACHE_DIR``, else
``$XDG_CACHE_HOME/meticulous-hydra``, else ``~/.cache/meticulous-hydra``;
``METICULOUS_HYDRA_CACHE_DIR=off`` turns it off. It is the user's own: a file
owned by someone else is ignored, never unpickled.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import threading
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .frame import Typed, build, patch, run_id

if TYPE_CHECKING:
    import pandas as pd

# 2: int ids in the index (issue 13); rows gained tags, notes and archived (issue 15)
# 3: status_detail is the exception's type and first line (issue 23.3)
# 4: the frame kept with what patching it as a fresh read needs (issue 23 #5)
VERSION = 4
# Folders touched this recently may change again within the same time stamp.
_RACY_NS = 2_000_000_000


@dataclass
class CachedRoot:
    key: str
    stamps: dict[str, int] = field(default_factory=dict)
    volatile: set[str] = field(default_factory=set)
    typed: Typed | None = None

    @property
    def frame(self) -> pd.DataFrame | None:
        return None if self.typed is None else self.typed.frame


def cache_dir() -> Path | None:
    chosen = os.environ.get("METICULOUS_HYDRA_CACHE_DIR")
    if chosen is not None:
        return None if chosen.strip().lower() in ("", "off", "0", "false", "no") else Path(chosen)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "meticulous-hydra"


def cache_key(root: str, reader: type, died_after: float) -> str:
    return f"{VERSION}\0{os.path.abspath(root)}\0{reader.__module__}.{reader.__qualname__}\0{died_after}"


def _file_for(key: str) -> Path | None:
    folder = cache_dir()
    if folder is None:
        return None
    return folder / (hashlib.sha1(key.encode("utf-8", "surrogateescape")).hexdigest() + ".pickle")


_pending: list[threading.Thread] = []


def flush() -> None:
    """Wait for the cache files still being written by this process."""
    while _pending:
        _pending.pop().join()


def load(key: str) -> CachedRoot:
    """The cached state for ``key``, or an empty one."""
    flush()  # a save this process started must land before we read it back
    path = _file_for(key)
    empty = CachedRoot(key)
    if path is None:
        return empty
    try:
        with open(path, "rb") as f:
            if os.fstat(f.fileno()).st_uid != os.getuid():
                return empty
            cached = pickle.load(f)
    except Exception:  # missing, truncated, or from another version: start afresh
        return empty
    if not isinstance(cached, CachedRoot) or cached.key != key:
        return empty
    return cached


def volatile(cached: CachedRoot, running: set[str]) -> set[str]:
    """The folders to read again next time: live runs, and folders touched
    too recently for their time stamp to show the next change."""
    now = time.time_ns()
    return set(running) | {n for n, ns in cached.stamps.items() if now - ns < _RACY_NS}


def save(cached: CachedRoot, running: set[str]) -> None:
    """Store ``cached`` in the background; ``running`` (and recently touched
    folders) are re-read next time.

    The caller gets its DataFrame without waiting for the pickling. The thread
    works on a shallow copy, which copy-on-write (always on from pandas 3)
    keeps apart from whatever the caller then does to its frame; without
    copy-on-write the save happens before returning.
    """
    import pandas as pd

    cached.volatile = volatile(cached, running)
    if cached.typed is None or not _copy_on_write(pd):
        _write(cached)
        return
    typed = cached.typed
    snapshot = CachedRoot(
        cached.key,
        dict(cached.stamps),
        set(cached.volatile),
        Typed(typed.frame.copy(deep=False), list(typed.keys), dict(typed.key_of), dict(typed.ints)),
    )
    # not a daemon: a process that exits right away still finishes the file
    thread = threading.Thread(target=_write, args=(snapshot,), name="meticulous-cache-save")
    thread.start()
    _pending.append(thread)


def _copy_on_write(pd: Any) -> bool:
    if int(pd.__version__.split(".")[0]) >= 3:
        return True
    return getattr(pd.options.mode, "copy_on_write", False) is True


def compact(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with equal text values (and tuples) made one object each.

    Values parsed from each run's files are distinct objects even when equal
    (``"SUCCESS"`` 10,000 times); pickle writes each one out in full, but an
    object it has seen once only as a reference. Sharing them makes the cache
    file about 2.5x smaller and 5x faster to load.
    """
    import numpy as np  # with pandas (~175 ms): only once a frame exists
    import pandas as pd

    out = {name: frame[name] for name in frame.columns}
    for name in frame.columns:
        column = frame[name]
        if column.dtype != object and not pd.api.types.is_string_dtype(column.dtype):
            continue
        values = column.to_numpy(dtype=object)
        try:
            codes, uniques = pd.factorize(values)
        except TypeError:  # an unhashable value, from a reader subclass
            continue
        if len(uniques) > 0 and 2 * len(uniques) < len(values):
            _keep_kinds(codes, uniques, values)
            shared = np.where(codes >= 0, uniques.take(np.maximum(codes, 0)), values)
            out[name] = pd.Series(shared, index=frame.index, dtype=column.dtype)
    # one frame made at once: its object columns one block, as in the original
    return pd.DataFrame(out, index=frame.index, columns=frame.columns)


def _keep_kinds(codes: Any, uniques: Any, values: Any) -> None:
    """Unshare (code -1) each value that is equal to its shared one but not
    the same: 0 and False, 1 and 1.0, (1, 2) and (True, 2.0) hash alike."""
    import numpy as np

    risky = [i for i, u in enumerate(uniques) if not _text(u)]
    if not risky:
        return
    for at in np.flatnonzero(np.isin(codes, risky)):
        value, one = values[at], uniques[codes[at]]
        if type(value) is not type(one) or repr(value) != repr(one):
            codes[at] = -1


def _text(value: Any) -> bool:
    """Whether ``value`` is text, or a tuple of texts: equal only when the same."""
    return type(value) is str or (type(value) is tuple and all(type(v) is str for v in value))


def _write(cached: CachedRoot) -> None:
    path = _file_for(cached.key)
    if path is None:
        return
    typed = cached.typed
    if typed is not None:
        small = Typed(compact(typed.frame), typed.keys, typed.key_of, typed.ints)
        cached = CachedRoot(cached.key, cached.stamps, cached.volatile, small)
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with open(fd, "wb") as f:
            pickle.dump(cached, f, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, path)
    except OSError:
        pass  # a cache that can't be written is only slower


def stamps(root: str) -> dict[str, int]:
    """Modification time of every visible folder in ``root`` (one scan)."""
    out: dict[str, int] = {}
    for entry in os.scandir(root):
        if entry.name.startswith("."):
            continue
        try:
            if entry.is_dir():
                out[entry.name] = entry.stat().st_mtime_ns
        except OSError:
            continue
    return out


def changed(cached: CachedRoot, now: dict[str, int]) -> tuple[list[str], list[str]]:
    """Names to read again, and names gone since the cache was saved."""
    old = cached.stamps
    again = [n for n, ns in now.items() if old.get(n) != ns or n in cached.volatile]
    gone = [n for n in old if n not in now]
    return again, gone


def cached_frame(
    root: str,
    key: str,
    read: Callable[[Sequence[str]], tuple[list[str], list[dict[str, Any]]]],
    *,
    live: Collection[str],
) -> pd.DataFrame:
    """The DataFrame of ``root`` from the cache ``key``, with the folders that
    changed since (and runs whose status is in ``live``) read again with
    ``read(names)``, which returns the runs among them and their rows; saves
    the result."""
    cached = load(key)
    now = stamps(root)
    again, gone = changed(cached, now)
    if cached.typed is not None and not again and not gone:
        return cached.typed.frame
    names, rows = read(sorted(again, key=run_id))
    if cached.typed is None:
        typed = build(rows, names)
    else:
        typed = patch(cached.typed, [*again, *gone], rows, names)
    frame = typed.frame
    running = {str(i) for i in frame.index[frame["status"].isin(live)]}
    fresh = bool(gone) or any(n not in cached.volatile for n in again)
    cached.stamps, cached.typed = now, typed
    # Re-reading only live runs changes nothing worth a save, unless the set
    # of folders to re-read next time shrinks.
    if fresh or volatile(cached, running) != cached.volatile:
        save(cached, running)
    return frame
