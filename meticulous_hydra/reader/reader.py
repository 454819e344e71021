"""Read experiment folders back: one :class:`ExperimentReader` per folder, and
all of a root (or several roots) as one pandas DataFrame."""

from __future__ import annotations

import gc
import json
import os
import re
import time
import warnings
from collections import Counter
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from meticulous_hydra import layout
from meticulous_hydra.exceptions import NotSerializable, ReadWarning
from meticulous_hydra.recorder import organise
from meticulous_hydra.recorder.environment import hostname, pid_alive

from . import cache as frame_cache
from . import metrics
from .frame import frame_from_rows, hashable, run_id

if TYPE_CHECKING:
    import pandas as pd

#: A RUNNING run whose STATUS has not been touched for this long counts as DIED
#: when its pid can't be checked (another host). The recorder touches STATUS
#: every minute.
DIED_AFTER_SECONDS = 600.0

_PROMOTED = {"description", "start_time", "end_time", "duration", "overrides", "sweep"}
_SKIPPED_METADATA = {"git", "config"}
_NOT_FLATTENED = frozenset(_PROMOTED | _SKIPPED_METADATA)
_HOST = hostname()
# A pid os.kill can be asked about: a C int above 0 (0 and -1 name process groups).
_PID_LIMIT = 2**31


def flatten(
    tree: Mapping[str, Any],
    prefix: str,
    out: dict[str, Any],
    skip: Collection[str] = (),
) -> dict[str, Any]:
    """Write every leaf of ``tree`` into ``out`` as ``prefix.dotted.path``,
    leaving out the top-level keys in ``skip``.

    Keys are joined as they are, so a key holding a dot stays one column. Two
    paths that would make one name (a key ``"a.b"`` beside ``"a": {"b": ..}``,
    which the recorder refuses but a hand-written file may hold) both stay:
    the key holding the dot is written in brackets, ``prefix.[a.b]``. An empty
    mapping is a leaf holding None; lists become tuples (:func:`hashable`).
    """
    before = len(out)
    if _flatten(tree, prefix, out, skip) != len(out) - before:
        _flatten_apart(tree, prefix, out, before, skip)
    return out


def _flatten(
    tree: Mapping[str, Any], prefix: str, out: dict[str, Any], skip: Collection[str] = ()
) -> int:
    """Write the leaves of ``tree``; return how many. Recursive, the fastest
    way: a tree nested deeper than Python's stack allows (JSON parses about
    as deep) raises RecursionError, which the reader reports."""
    prefix += "."
    written = 0
    for key, value in tree.items():
        if key in skip:
            continue
        kind = type(value)
        if kind is dict:
            if value:
                written += _flatten(value, prefix + key, out)
                continue
            out[prefix + key] = None  # an empty mapping has no leaves: None stands for it
        elif kind is list:
            out[prefix + key] = hashable(value)
        else:
            out[prefix + key] = value
        written += 1
    return written


def _flatten_apart(
    tree: Mapping[str, Any],
    prefix: str,
    out: dict[str, Any],
    before: int,
    skip: Collection[str],
) -> None:
    """Flatten again where two paths of ``tree`` gave one name: each keeps a
    name of its own (see :func:`flatten`)."""
    for name in list(out)[before:]:
        del out[name]
    leaves: list[tuple[tuple[str, ...], Any]] = []
    stack: list[tuple[tuple[str, ...], Any]] = [((k,), v) for k, v in tree.items() if k not in skip]
    stack.reverse()
    while stack:  # depth first, in key order, as _flatten goes
        path, node = stack.pop()
        if type(node) is dict and node:
            stack.extend(((*path, k), v) for k, v in reversed(node.items()))
        else:
            leaves.append((path, None if type(node) is dict else hashable(node)))
    plain = [prefix + "." + ".".join(path) for path, _ in leaves]
    shared = {name for name, n in Counter(plain).items() if n > 1}
    for (path, value), name in zip(leaves, plain, strict=True):
        if name in shared and any("." in key for key in path):
            name = prefix + "." + ".".join(f"[{k}]" if "." in k else k for k in path)
        unique, n = name, 1
        while unique in out:  # brackets in the keys themselves: number what is left
            n += 1
            unique = f"{name}~{n}"
        out[unique] = value


_TRACEBACK = "Traceback (most recent call last):"
# a line naming an exception, at any indent and inside an exception group's frame
_EXCEPTION_LINE = re.compile(r"^[ |+]*((?:[A-Za-z_]\w*\.)*([A-Za-z_]\w*))(?::(.*))?$")


def _exception_line(lines: list[str]) -> str | None:
    """``Type: first line of the message`` of the exception a traceback ends
    in (the last of a chain; the group itself for an exception group), the
    type without its module (``omegaconf.errors.``)."""
    tops = [i for i, line in enumerate(lines) if line.startswith(_TRACEBACK)]
    if tops:
        # after the last traceback at column 0, the first line at column 0
        at = next((i for i in range(tops[-1] + 1, len(lines)) if not lines[i][:1].isspace()), None)
    elif any("Exception Group Traceback" in line for line in lines[:1]):
        # an exception group: everything is drawn in a frame; the group's own line first
        at = next(
            (i for i, line in enumerate(lines) if "|" in line and _EXCEPTION_LINE.match(line)),
            None,
        )
    else:
        return None
    match = _EXCEPTION_LINE.match(lines[at]) if at is not None else None
    if match is None:
        return None
    name, message = match.group(2), (match.group(3) or "").strip()
    if match.group(3) is not None and not message and at is not None and at + 1 < len(lines):
        message = lines[at + 1].strip()  # the message began with a line break
    return f"{name}: {message}" if message else name


def short_detail(status: str, detail: str) -> str:
    """The line of a STATUS detail worth showing in a table: for a traceback,
    the exception's type and the first line of its message; else the first line."""
    lines = [line for line in detail.splitlines() if line.strip()]
    if not lines:
        return ""
    found = _exception_line(lines) if status == layout.ERROR else None
    return found if found is not None else lines[0].strip()


# The columns metadata.json gives the table, and what each must be; a value of
# another type (a hand-edited file) is that run's read_error, so that one run
# never changes a standard column's dtype for all.
_TEXT = ((str,), "text")
_STANDARD_TYPES: dict[str, tuple[tuple[type, ...], str]] = {
    "start_time": _TEXT,
    "end_time": _TEXT,
    "duration": ((int, float), "a number"),
    "description": _TEXT,
    "git.sha": _TEXT,
    "git.branch": _TEXT,
    "git.dirty": ((bool,), "true or false"),
    "overrides": ((tuple,), "a list"),
    "sweep.id": _TEXT,
    "sweep.job_num": ((int,), "an integer"),
}


class ExperimentReader:
    """Read one experiment folder.

    Subclass and override :meth:`row` to add columns to the DataFrame, then
    pass the class as ``load_experiments(..., reader=MyReader)``.

    The folder is listed once; only the files it holds are opened, and only
    regular files of at most :data:`~meticulous_hydra.layout.READ_LIMIT`
    bytes are read into the row: anything else (a FIFO, a device, a folder, a
    file too large) is a message in :attr:`read_errors`.
    """

    #: Whether DataFrames read with this class may be cached. A subclass whose
    #: :meth:`row` reads files the recorder does not replace (so the folder's
    #: modification time does not change with them) sets it to False.
    cacheable: bool = True

    def __init__(
        self, path: str | os.PathLike[str], *, died_after: float = DIED_AFTER_SECONDS
    ) -> None:
        self._dir = os.fspath(path)
        self.id = os.path.basename(self._dir.rstrip(os.sep))
        self.died_after = died_after
        #: what could not be read, one short message per problem
        self.read_errors: list[str] = []

    @property
    def path(self) -> Path:
        """The experiment folder."""
        return Path(self._dir)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._dir!r})"

    @cached_property
    def _files(self) -> dict[str, os.DirEntry[str]]:
        """What the folder holds, from one listing: the reads below open only
        what is there, and know what a name is (file, FIFO, ...) without a
        system call of their own."""
        try:
            with os.scandir(self._dir) as entries:
                return {entry.name: entry for entry in entries}
        except FileNotFoundError:
            return {}
        except OSError as e:
            self.read_errors.append(f"cannot list the folder ({e.strerror or e})")
            return {}

    @property
    def is_run(self) -> bool:
        """Whether the folder is a run the recorder wrote (from its listing)."""
        return layout.is_run_listing(self._files)

    def _read(self, name: str, limit: int | None = layout.READ_LIMIT) -> bytes | None:
        """The bytes of the file ``name``, None when the folder has none. A
        name that is no regular file, or a larger one than ``limit``, raises
        OSError saying so, before anything is opened where the listing tells."""
        entry = self._files.get(name)
        if entry is None:
            return None
        try:
            if not entry.is_file():  # the listing's file type: no system call, but for a link
                raise layout.not_a_file(entry.stat().st_mode)
            return layout.read_file(entry.path, limit)
        except FileNotFoundError:  # gone since the listing
            return None

    def _json(self, name: str, default: Any, *, required: bool = False) -> Any:
        try:
            data = self._read(name)
        except OSError as e:
            self.read_errors.append(f"{name}: {e.strerror or e}")
            return default
        if data is None:
            if required:
                self.read_errors.append(f"{name}: missing")
            return default
        try:
            value = json.loads(data)
        except RecursionError:
            self.read_errors.append(f"{name}: nested too deeply to read")
            return default
        except ValueError as e:
            self.read_errors.append(f"{name}: invalid JSON ({e})")
            return default
        if not isinstance(value, dict):
            self.read_errors.append(f"{name}: not a JSON object")
            return default
        return value

    @cached_property
    def metadata(self) -> dict[str, Any]:
        return self._json(layout.METADATA, {}, required=True)

    @cached_property
    def config(self) -> dict[str, Any]:
        """The resolved config (from config.json; config.yaml when that is missing)."""
        config = self._json(layout.CONFIG_JSON, None)
        if config is not None:
            return config
        if layout.CONFIG_YAML in self._files:
            return self._config_from_yaml()  # an older folder: the YAML says the same
        if layout.CONFIG_JSON not in self._files:
            self.read_errors.append(f"{layout.CONFIG_JSON}: missing")
        return {}

    def _config_from_yaml(self) -> dict[str, Any]:
        import yaml

        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        try:
            data = self._read(layout.CONFIG_YAML) or b""
            value = yaml.load(data, Loader=loader)  # a safe loader: nothing in the file runs
            # YAML's keys may be numbers or dates: as JSON would have them
            value = layout.to_jsonable(value, strict=False, floats=True)
        except RecursionError:
            self.read_errors.append(f"{layout.CONFIG_YAML}: nested too deeply to read")
            return {}
        except (OSError, yaml.YAMLError, NotSerializable) as e:
            self.read_errors.append(f"{layout.CONFIG_YAML}: {getattr(e, 'strerror', None) or e}")
            return {}
        return value if isinstance(value, dict) else {}

    @cached_property
    def summary(self) -> dict[str, Any]:
        return self._json(layout.SUMMARY, {})

    @cached_property
    def _status(self) -> tuple[str, str]:
        try:
            data = self._read(layout.STATUS)
        except OSError as e:
            self.read_errors.append(f"STATUS: {e.strerror or e}")
            return layout.UNKNOWN, ""
        if data is None:
            if not self.metadata:
                self.read_errors.append("STATUS: missing")
                return layout.UNKNOWN, ""
            # killed while starting: metadata.json is written before STATUS
            status, detail = layout.RUNNING, ""
        else:
            status, detail = layout.parse_status(data.decode("utf-8", "replace"))
        if status not in layout.STATUSES:
            if not status:
                self.read_errors.append("STATUS: empty")
                return layout.UNKNOWN, detail
            self.read_errors.append(f"STATUS: unexpected first line {status[:40]!r}")
            return layout.UNKNOWN, detail
        if status == layout.RUNNING and self._is_dead():
            return layout.DIED, "no sign of life: the process is gone"
        return status, detail

    def _is_dead(self) -> bool:
        meta = self.metadata
        beat = None
        for name in (layout.STATUS, layout.METADATA):  # killed before STATUS was written
            entry = self._files.get(name)
            try:
                beat = entry.stat().st_mtime if entry is not None else None
            except OSError:
                continue
            if beat is not None:
                break
        if beat is None:
            return False
        stale = time.time() - beat > self.died_after
        pid = meta.get("pid")
        if meta.get("host") == _HOST and type(pid) is int and 0 < pid < _PID_LIMIT:
            return stale or not pid_alive(pid)
        return stale  # another host, or no pid to ask about: the heartbeat tells

    @property
    def status(self) -> str:
        """RUNNING, SUCCESS, ERROR, INTERRUPTED, TIMEOUT, REQUEUED, DIED, or UNKNOWN
        when unreadable."""
        return self._status[0]

    @property
    def status_detail(self) -> str:
        """Everything STATUS says after its first line (a whole traceback for ERROR)."""
        return self._status[1]

    def _metric_records(self) -> list[dict[str, Any]]:
        return metrics.read_records(self.path / layout.METRICS)

    @property
    def metrics(self) -> pd.DataFrame:
        """metrics.jsonl in the long shape of ``load_metrics()``: ``id``,
        ``step``, ``time``, ``key``, ``value``, one row per logged value."""
        return metrics.frame_of(self._metric_records(), self.id)

    @property
    def metrics_wide(self) -> pd.DataFrame:
        """metrics.jsonl one row per ``log()`` call, a column per key (the
        shape ``metrics`` had before it took the long shape); ``time`` is a
        UTC datetime, as in ``metrics``."""
        return metrics.wide_frame(self._metric_records())

    def _text(self, name: str) -> str:
        try:
            data = layout.read_file(self.path / name, limit=None)
        except FileNotFoundError:
            return ""
        except OSError as e:
            self.read_errors.append(f"{name}: {e.strerror or e}")
            return ""
        return data.decode("utf-8", "replace")

    @property
    def stdout(self) -> str:
        return self._text(layout.STDOUT)

    @property
    def stderr(self) -> str:
        return self._text(layout.STDERR)

    def open(self, name: str, mode: str = "r", **kwargs: Any) -> Any:
        if "w" in mode or "a" in mode or "+" in mode or "x" in mode:
            raise ValueError("the reader opens files for reading only")
        return open(self.path / name, mode, **kwargs)

    def _notes(self) -> str:
        try:
            data = self._read(layout.NOTES)
        except OSError as e:
            self.read_errors.append(f"{layout.NOTES}: {e.strerror or e}")
            return ""
        return "" if data is None else data.decode("utf-8", "replace")

    def row(self) -> dict[str, Any]:
        """This experiment's row of the DataFrame, column name to value.

        The extension point: override, call ``super().row()`` and add keys.
        A run that can't be read in part gives what could be read and its
        ``read_error``; never an exception.
        """
        try:
            return self._row()
        except Exception as e:  # a damaged run is one row, never the whole read
            self.read_errors.append(f"unreadable ({type(e).__name__}: {e})")
            return {"status": layout.UNKNOWN, "read_error": "; ".join(self.read_errors)}

    def _row(self) -> dict[str, Any]:
        meta = self.metadata
        status, detail = self._status
        git = layout.block(meta, "git")
        sweep = layout.block(meta, "sweep")
        row: dict[str, Any] = {
            "status": status,
            "status_detail": short_detail(status, detail),
            "start_time": meta.get("start_time"),
            "end_time": meta.get("end_time"),
            "duration": meta.get("duration"),
            "description": meta.get("description"),
            "git.sha": git.get("sha"),
            "git.branch": git.get("branch"),
            "git.dirty": git.get("dirty"),
            "overrides": hashable(meta.get("overrides", [])),
            "sweep.id": sweep.get("id"),
            "sweep.job_num": sweep.get("job_num"),
        }
        for block in ("git", "sweep"):
            if not isinstance(meta.get(block), (dict, type(None))):
                self.read_errors.append(f"{layout.METADATA}: {block} is not an object")
        for name, (types, what) in _STANDARD_TYPES.items():
            value = row[name]
            if value is not None and (type(value) not in types or value != value):
                row[name] = () if name == "overrides" else None
                self.read_errors.append(f"{layout.METADATA}: {name} is not {what}")
        for tree, prefix, name, skip in (
            (self.config, "config", layout.CONFIG_JSON, ()),
            (self.summary, "summary", layout.SUMMARY, ()),
            (meta, "metadata", layout.METADATA, _NOT_FLATTENED),
        ):
            before = len(row)
            try:
                flatten(tree, prefix, row, skip)
            except RecursionError:  # deeper than the stack: JSON parses about as deep
                for key in list(row)[before:]:
                    del row[key]
                self.read_errors.append(f"{name}: nested too deeply to read")
        row.update(organise.marks(self._files, self._notes()))  # tags, notes, archived
        row["read_error"] = "; ".join(self.read_errors) or None
        return row


def describe_ids(names: Sequence[str], most: int = 5) -> str:
    """The ids of a root in a few words, for error messages: ``1-22, baseline``."""
    numbered = [int(n) for n in names if layout.is_numbered(n)]
    custom = [n for n in names if not layout.is_numbered(n)]
    low, high = (min(numbered), max(numbered)) if numbered else (0, 0)
    parts = [str(low) if low == high else f"{low}-{high}"] if numbered else []
    parts += custom[:most] + (["..."] if len(custom) > most else [])
    return ", ".join(parts) or "none"


def folders(root: str | os.PathLike[str]) -> list[str]:
    """The names of the visible folders of ``root``, from one scan; hidden
    names are the root's own (.gitignore, .sweeps, .trash) or temporary."""
    root = os.fspath(root)
    try:
        with os.scandir(root) as entries:
            return [e.name for e in entries if not e.name.startswith(".") and e.is_dir()]
    except (FileNotFoundError, NotADirectoryError):
        raise FileNotFoundError(
            f"experiments root {root} does not exist (or is not a folder); "
            "pass the folder that holds the numbered runs"
        ) from None


def experiment_names(root: str | os.PathLike[str]) -> list[str]:
    """The experiment folders under ``root``, numbered ones first in numeric order."""
    root = os.fspath(root)
    names = [n for n in folders(root) if layout.is_experiment_dir(os.path.join(root, n))]
    names.sort(key=run_id)  # numbered runs first, in numeric order
    return names


def experiment_dirs(root: Path) -> list[Path]:
    return [root / name for name in experiment_names(root)]


class Experiments(Mapping[str, ExperimentReader]):
    """The experiments of one root, keyed by folder name: ``exps[3]`` and
    ``exps["3"]`` are the same run; ``len(exps)``, iteration in id order
    (numbered runs first, in numeric order), and :meth:`as_dataframe`."""

    def __init__(
        self,
        root: str | os.PathLike[str] = "experiments",
        reader: type[ExperimentReader] = ExperimentReader,
        *,
        died_after: float = DIED_AFTER_SECONDS,
    ) -> None:
        self.root = Path(root)
        self.reader = reader
        self.died_after = died_after
        base = os.fspath(self.root)
        self._readers = {
            name: reader(os.path.join(base, name), died_after=died_after)
            for name in experiment_names(base)
        }

    def __getitem__(self, experiment_id: int | str) -> ExperimentReader:
        return self._readers[str(experiment_id)]

    def __iter__(self) -> Iterator[str]:
        return iter(self._readers)

    def __len__(self) -> int:
        return len(self._readers)

    def as_dataframe(self, *, cache: bool = True, include_archived: bool = False) -> pd.DataFrame:
        frame = root_frame(self.root, self.reader, died_after=self.died_after, cache=cache)
        return frame if include_archived else organise.hide_archived(frame)


def _rows(
    base: str, names: Iterable[str], reader: type[ExperimentReader], died_after: float
) -> tuple[list[str], list[dict[str, Any]]]:
    """The runs among the folders ``names`` of ``base``, and their rows: each
    folder is listed once, which tells a run and what it holds."""
    found, rows = [], []
    with _no_cycles_collected():
        for name in names:
            run = reader(os.path.join(base, name), died_after=died_after)
            if run.is_run:
                found.append(name)
                rows.append(run.row())
    return found, rows


@contextmanager
def _no_cycles_collected() -> Iterator[None]:
    """Python's cycle collector paused. Rows are made of JSON, which has no
    cycles; yet each pass of the collector walks every row kept so far, and
    the passes grow with the rows: on 10,000 runs they cost a third of the
    read. What a row's reading frees goes at once, by reference counts."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def root_frame(
    root: str | os.PathLike[str],
    reader: type[ExperimentReader] = ExperimentReader,
    *,
    died_after: float = DIED_AFTER_SECONDS,
    cache: bool = True,
) -> pd.DataFrame:
    """The DataFrame of one root, through the per-user cache unless ``cache``
    is off or the reader class sets ``cacheable = False``."""
    base = os.fspath(root)
    if not cache or not reader.cacheable or frame_cache.cache_dir() is None:
        names, rows = _rows(base, sorted(folders(base), key=run_id), reader, died_after)
        frame = frame_from_rows(rows, names)
    else:
        if not os.path.isdir(base):
            folders(base)  # raises the error that names the root
        frame = frame_cache.cached_frame(
            base,
            frame_cache.cache_key(base, reader, died_after),
            lambda names: _rows(base, names, reader, died_after),
            live=_LIVE,
        )
    _warn_damaged(frame, base)
    return frame


_LIVE = (layout.RUNNING, layout.DIED)


def _warn_damaged(frame: pd.DataFrame, root: str) -> None:
    damaged = frame["read_error"].dropna()
    if damaged.empty:
        return
    shown = "; ".join(f"{i}: {e}" for i, e in list(damaged.items())[:3])
    more = f" and {len(damaged) - 3} more" if len(damaged) > 3 else ""
    warnings.warn(
        f"{len(damaged)} experiment(s) under {root} read incompletely ({shown}{more}); "
        "see the read_error column",
        ReadWarning,
        stacklevel=4,
    )


def load_experiments(
    root: str | os.PathLike[str] | Sequence[str | os.PathLike[str]] = "experiments",
    *,
    reader: type[ExperimentReader] = ExperimentReader,
    died_after: float = DIED_AFTER_SECONDS,
    cache: bool = True,
    include_archived: bool = False,
) -> pd.DataFrame:
    """All experiments under ``root`` as a DataFrame, one row each, index ``id``.

    ``root`` may be a list of roots (runs gathered from several machines);
    the index is then ``(root, id)`` so that ids never clash. ``cache=False``
    reads every folder afresh (see :mod:`meticulous_hydra.reader.cache`). Archived
    runs are left out unless ``include_archived``.
    """
    import pandas as pd

    def read(one: str | os.PathLike[str]) -> pd.DataFrame:
        frame = root_frame(one, reader, died_after=died_after, cache=cache)
        return frame if include_archived else organise.hide_archived(frame)

    if isinstance(root, (str, os.PathLike)):
        return read(root)
    frames = []
    for one in root:
        frame = read(one)
        frame.index = pd.MultiIndex.from_arrays(
            [[str(one)] * len(frame), frame.index], names=["root", "id"]
        )
        frames.append(frame)
    if not frames:
        raise ValueError("load_experiments: give at least one root")
    return pd.concat(frames)


# -- metrics of many runs (metrics.py reads them; naming the runs is the reader's) --


def _runs_of(source: Any, include_archived: bool) -> tuple[list[tuple[str, str, str]], bool]:
    """(root, id, folder) of every run ``source`` names, and whether several
    roots are involved."""
    items: Iterable[Any]
    if isinstance(source, (str, os.PathLike, ExperimentReader, Experiments)):
        items = [source]
    else:
        items = list(source)
    runs: list[tuple[str, str, str]] = []
    for item in items:
        if isinstance(item, ExperimentReader):
            runs.append((str(item.path.parent), item.id, str(item.path)))
            continue
        if isinstance(item, Experiments):
            item = item.root
        path = os.fspath(item)
        if layout.is_experiment_dir(path):
            parent, name = os.path.split(os.path.normpath(path))
            runs.append((parent, name, path))
            continue
        for name in experiment_names(path):
            folder = os.path.join(path, name)
            if include_archived or not os.path.exists(os.path.join(folder, layout.ARCHIVED)):
                runs.append((path, name, folder))
    roots = {root for root, _, _ in runs}
    return runs, len(roots) > 1


def load_metrics(
    runs: str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | Iterable[Any] = "experiments",
    *,
    include_archived: bool = False,
) -> pd.DataFrame:
    """Every line of every run's metrics.jsonl as one long DataFrame: columns
    ``id``, ``step``, ``time`` (tz-aware datetime), ``key``, ``value``, one row
    per logged value, never sampled.

    ``runs`` is a root, run folders, ``ExperimentReader``s, or a list of
    those; with runs from several roots a ``root`` column comes first. Rows
    go run by run, then key by key, in logged order. Join with
    ``load_experiments()`` on ``id``; plot with
    ``df[df.key == "loss"].pivot(index="step", columns="id", values="value")``.
    Archived runs are left out of a root unless ``include_archived``.
    """
    found, several = _runs_of(runs, include_archived)
    return metrics.runs_frame(found, with_root=several)
