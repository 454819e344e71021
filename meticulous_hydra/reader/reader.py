"""Read experiment folders back: one :class:`ExperimentReader` per folder, and
all of a root (or several roots) as one pandas DataFrame."""

from __future__ import annotations

import json
import os
import re
import time
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from meticulous_hydra import layout
from meticulous_hydra.recorder import organise
from meticulous_hydra.recorder.environment import hostname

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
_HOST = hostname()


class ReadWarning(UserWarning):
    """Some experiment folders could not be read completely."""


def flatten(tree: Mapping[str, Any], prefix: str, out: dict[str, Any]) -> dict[str, Any]:
    """Write every leaf of ``tree`` into ``out`` as ``prefix.dotted.path``.
    Keys are joined as they are, so a key holding a dot stays one column."""
    prefix += "."
    for key, value in tree.items():
        kind = type(value)
        if kind is dict:
            if value:
                flatten(value, prefix + key, out)
            else:
                out[prefix + key] = None  # an empty mapping has no leaves
        elif kind is list:
            out[prefix + key] = hashable(value)
        else:
            out[prefix + key] = value
    return out


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            # a zombie has exited and only waits for its parent to reap it
            return f.read().rsplit(b")", 1)[-1].split()[0] != b"Z"
    except OSError:
        return True


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


class ExperimentReader:
    """Read one experiment folder.

    Subclass and override :meth:`row` to add columns to the DataFrame, then
    pass the class as ``load_experiments(..., reader=MyReader)``.
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

    def _json(self, name: str, default: Any, *, required: bool = False) -> Any:
        try:
            with open(os.path.join(self._dir, name), "rb") as f:
                data = f.read()
        except FileNotFoundError:
            if required:
                self.read_errors.append(f"{name}: missing")
            return default
        except OSError as e:
            self.read_errors.append(f"{name}: {e.strerror or e}")
            return default
        try:
            value = json.loads(data)
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
        if os.path.exists(os.path.join(self._dir, layout.CONFIG_YAML)):
            return self._config_from_yaml()  # an older folder: the YAML says the same
        self.read_errors.append(f"{layout.CONFIG_JSON}: missing")
        return {}

    def _config_from_yaml(self) -> dict[str, Any]:
        import yaml

        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        try:
            with open(self.path / layout.CONFIG_YAML, "rb") as f:
                value = yaml.load(f, Loader=loader)  # a safe loader: nothing in the file runs
        except (OSError, yaml.YAMLError) as e:
            self.read_errors.append(f"{layout.CONFIG_YAML}: {e}")
            return {}
        return value if isinstance(value, dict) else {}

    @cached_property
    def summary(self) -> dict[str, Any]:
        return self._json(layout.SUMMARY, {})

    @cached_property
    def _status(self) -> tuple[str, str]:
        try:
            with open(os.path.join(self._dir, layout.STATUS), "rb") as f:
                status, detail = layout.parse_status(f.read().decode("utf-8", "replace"))
        except FileNotFoundError:
            if not self.metadata:
                self.read_errors.append("STATUS: missing")
                return "UNKNOWN", ""
            # killed while starting: metadata.json is written before STATUS
            status, detail = layout.RUNNING, ""
        except OSError as e:
            self.read_errors.append(f"STATUS: {e.strerror or e}")
            return "UNKNOWN", ""
        if status not in layout.STATUSES:
            if not status:
                self.read_errors.append("STATUS: empty")
                return "UNKNOWN", detail
            self.read_errors.append(f"STATUS: unexpected first line {status[:40]!r}")
            return "UNKNOWN", detail
        if status == layout.RUNNING and self._is_dead():
            return layout.DIED, "no sign of life: the process is gone"
        return status, detail

    def _is_dead(self) -> bool:
        meta = self.metadata
        try:
            beat = os.stat(os.path.join(self._dir, layout.STATUS)).st_mtime
        except OSError:  # killed before STATUS was written
            try:
                beat = os.stat(os.path.join(self._dir, layout.METADATA)).st_mtime
            except OSError:
                return False
        stale = time.time() - beat > self.died_after
        pid = meta.get("pid")
        if meta.get("host") == _HOST and isinstance(pid, int):
            return stale or not _pid_alive(pid)
        return stale

    @property
    def status(self) -> str:
        """RUNNING, SUCCESS, ERROR, INTERRUPTED, TIMEOUT, REQUEUED, DIED, or UNKNOWN
        when unreadable."""
        return self._status[0]

    @property
    def status_detail(self) -> str:
        """Everything STATUS says after its first line (a whole traceback for ERROR)."""
        return self._status[1]

    @property
    def metrics(self) -> pd.DataFrame:
        """metrics.jsonl in the long shape of ``load_metrics()``: ``id``,
        ``step``, ``time``, ``key``, ``value``, one row per logged value."""
        return metrics.frame_of(metrics.read_records(self.path / layout.METRICS), self.id)

    @property
    def metrics_wide(self) -> pd.DataFrame:
        """metrics.jsonl one row per ``log()`` call, a column per key (the
        shape ``metrics`` had before it took the long shape)."""
        import pandas as pd  # ~175 ms: only when a frame is asked for

        return pd.DataFrame(metrics.read_records(self.path / layout.METRICS))

    def _text(self, name: str) -> str:
        try:
            return (self.path / name).read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""

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

    def row(self) -> dict[str, Any]:
        """This experiment's row of the DataFrame, column name to value.

        The extension point: override, call ``super().row()`` and add keys.
        """
        meta = self.metadata
        config = self.config
        summary = self.summary
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
        flatten(config, "config", row)
        flatten(summary, "summary", row)
        rest = {k: v for k, v in meta.items() if k not in _PROMOTED and k not in _SKIPPED_METADATA}
        flatten(rest, "metadata", row)
        row.update(organise.markers(self._dir))  # tags, notes, archived
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


def experiment_names(root: str | os.PathLike[str]) -> list[str]:
    """The experiment folders under ``root``, numbered ones first in numeric order."""
    root = os.fspath(root)
    try:
        entries = list(os.scandir(root))
    except (FileNotFoundError, NotADirectoryError):
        raise FileNotFoundError(
            f"experiments root {root} does not exist (or is not a folder); "
            "pass the folder that holds the numbered runs"
        ) from None
    names = []
    for entry in entries:
        # hidden names are the root's own (.gitignore, .sweeps) or temp files
        if entry.name.startswith(".") or not entry.is_dir():
            continue
        if layout.is_experiment_dir(entry.path):
            names.append(entry.name)
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


def _read(
    base: str, names: Sequence[str], reader: type[ExperimentReader], died_after: float
) -> list[dict]:
    return [reader(os.path.join(base, n), died_after=died_after).row() for n in names]


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
        names = experiment_names(base)
        frame = frame_from_rows(_read(base, names, reader, died_after), names)
    else:
        if not os.path.isdir(base):
            experiment_names(base)  # raises the error that names the root
        frame = frame_cache.cached_frame(
            base,
            frame_cache.cache_key(base, reader, died_after),
            lambda names: _read(base, names, reader, died_after),
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
