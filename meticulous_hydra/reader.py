"""Read experiment folders back: one :class:`ExperimentReader` per folder, and
all of a root (or several roots) as one pandas DataFrame."""

from __future__ import annotations

import json
import os
import time
import warnings
from collections.abc import Iterator, Mapping, Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import layout
from .environment import hostname

if TYPE_CHECKING:
    import pandas as pd

#: A RUNNING run whose STATUS has not been touched for this long counts as DIED
#: when its pid can't be checked (another host). The recorder touches STATUS
#: every minute.
DIED_AFTER_SECONDS = 600.0

STANDARD_COLUMNS = (
    "status",
    "status_detail",
    "start_time",
    "end_time",
    "duration",
    "description",
    "git.sha",
    "git.branch",
    "git.dirty",
    "overrides",
    "sweep.id",
    "sweep.job_num",
    "read_error",
)
_PROMOTED = {"description", "start_time", "end_time", "duration", "overrides", "sweep"}
_SKIPPED_METADATA = {"git", "config"}
_HOST = hostname()


class ReadWarning(UserWarning):
    """Some experiment folders could not be read completely."""


def _hashable(value: Any) -> Any:
    """Lists become tuples (recursively) so that every cell can be hashed,
    grouped and counted; a dict inside a list becomes its JSON text."""
    if isinstance(value, list):
        return tuple(_hashable(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True)
    return value


def flatten(tree: Mapping[str, Any], prefix: str, out: dict[str, Any]) -> dict[str, Any]:
    """Write every leaf of ``tree`` into ``out`` as ``prefix.dotted.path``.
    Keys are joined as they are, so a key holding a dot stays one column."""
    for key, value in tree.items():
        name = f"{prefix}.{key}"
        if isinstance(value, dict) and value:
            flatten(value, name, out)
        elif isinstance(value, list):
            out[name] = _hashable(value)
        elif isinstance(value, dict):
            out[name] = None  # an empty mapping has no leaves
        else:
            out[name] = value
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


def short_detail(status: str, detail: str) -> str:
    """The line of a STATUS detail worth showing in a table: the exception
    line of a traceback, else the first line."""
    lines = [line for line in detail.splitlines() if line.strip()]
    if not lines:
        return ""
    if status == layout.ERROR and lines[0].startswith("Traceback"):
        return lines[-1].strip()
    return lines[0].strip()


class ExperimentReader:
    """Read one experiment folder.

    Subclass and override :meth:`row` to add columns to the DataFrame, then
    pass the class as ``load_experiments(..., reader=MyReader)``.
    """

    def __init__(
        self, path: str | os.PathLike[str], *, died_after: float = DIED_AFTER_SECONDS
    ) -> None:
        self.path = Path(path)
        self.id = self.path.name
        self.died_after = died_after
        #: what could not be read, one short message per problem
        self.read_errors: list[str] = []

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.path)!r})"

    def _json(self, name: str, default: Any) -> Any:
        try:
            with open(self.path / name, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            if name in (layout.METADATA, layout.CONFIG_JSON):
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
        return self._json(layout.METADATA, {})

    @cached_property
    def config(self) -> dict[str, Any]:
        """The resolved config (from config.json; config.yaml when that is missing)."""
        if (self.path / layout.CONFIG_JSON).exists() or not (
            self.path / layout.CONFIG_YAML
        ).exists():
            return self._json(layout.CONFIG_JSON, {})
        return self._config_from_yaml()

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
            with open(self.path / layout.STATUS, encoding="utf-8", errors="replace") as f:
                status, detail = layout.parse_status(f.read())
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
            beat = os.stat(self.path / layout.STATUS).st_mtime
        except OSError:  # killed before STATUS was written
            try:
                beat = os.stat(self.path / layout.METADATA).st_mtime
            except OSError:
                return False
        stale = time.time() - beat > self.died_after
        pid = meta.get("pid")
        if meta.get("host") == _HOST and isinstance(pid, int):
            return stale or not _pid_alive(pid)
        return stale

    @property
    def status(self) -> str:
        """RUNNING, SUCCESS, ERROR, INTERRUPTED, DIED, or UNKNOWN when unreadable."""
        return self._status[0]

    @property
    def status_detail(self) -> str:
        """Everything STATUS says after its first line (a whole traceback for ERROR)."""
        return self._status[1]

    @property
    def metrics(self) -> pd.DataFrame:
        """metrics.jsonl as a DataFrame, one row per ``log()`` call."""
        import pandas as pd

        rows = []
        try:
            with open(self.path / layout.METRICS, encoding="utf-8") as f:
                for line in f:
                    try:
                        rows.append(json.loads(line))
                    except ValueError:
                        continue  # a line cut short by a crash
        except FileNotFoundError:
            pass
        return pd.DataFrame(rows)

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
        git = meta.get("git") if isinstance(meta.get("git"), dict) else {}
        sweep = meta.get("sweep") if isinstance(meta.get("sweep"), dict) else {}
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
            "overrides": _hashable(meta.get("overrides", [])),
            "sweep.id": sweep.get("id"),
            "sweep.job_num": sweep.get("job_num"),
        }
        flatten(config, "config", row)
        flatten(summary, "summary", row)
        rest = {k: v for k, v in meta.items() if k not in _PROMOTED and k not in _SKIPPED_METADATA}
        flatten(rest, "metadata", row)
        row["read_error"] = "; ".join(self.read_errors) or None
        return row


def _sort_key(name: str) -> tuple[int, int, str]:
    return (0, int(name), "") if layout.is_numbered(name) else (1, 0, name)


def experiment_dirs(root: Path) -> list[Path]:
    """The experiment folders under ``root``, numbered ones first in numeric order."""
    if not root.is_dir():
        raise FileNotFoundError(
            f"experiments root {root} does not exist (or is not a folder); "
            "pass the folder that holds the numbered runs"
        )
    names = []
    for entry in os.scandir(root):
        # hidden names are the root's own (.gitignore, .sweeps) or temp files
        if entry.name.startswith(".") or not entry.is_dir():
            continue
        if layout.is_experiment_dir(Path(entry.path)):
            names.append(entry.name)
    return [root / n for n in sorted(names, key=_sort_key)]


class Experiments(Mapping[str, ExperimentReader]):
    """The experiments of one root: ``exps["3"]``, ``len(exps)``, iteration in
    numeric id order, and :meth:`as_dataframe`."""

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
        self._readers = {
            p.name: reader(p, died_after=died_after) for p in experiment_dirs(self.root)
        }

    def __getitem__(self, experiment_id: str) -> ExperimentReader:
        return self._readers[str(experiment_id)]

    def __iter__(self) -> Iterator[str]:
        return iter(self._readers)

    def __len__(self) -> int:
        return len(self._readers)

    def as_dataframe(self) -> pd.DataFrame:
        rows = [r.row() for r in self._readers.values()]
        damaged = [(r.id, r.read_errors) for r in self._readers.values() if r.read_errors]
        if damaged:
            shown = "; ".join(f"{i}: {', '.join(e)}" for i, e in damaged[:3])
            more = f" and {len(damaged) - 3} more" if len(damaged) > 3 else ""
            warnings.warn(
                f"{len(damaged)} experiment(s) under {self.root} read incompletely ({shown}{more}); "
                "see the read_error column",
                ReadWarning,
                stacklevel=2,
            )
        return frame_from_rows(rows, list(self._readers))


def _column_values(values: list[Any]) -> Any:
    """Give a column the dtype its values call for: ints stay ints (nullable
    Int64 where some runs lack the key), bools stay bools, int/float mixes
    are floats; anything else is left to pandas."""
    import pandas as pd

    kinds = {type(v) for v in values if v is not None}
    has_none = len(kinds) == 0 or any(v is None for v in values)
    if kinds == {bool}:
        return pd.array(values, dtype="boolean") if has_none else pd.array(values, dtype="bool")
    if kinds == {int}:
        return pd.array(values, dtype="Int64") if has_none else pd.array(values, dtype="int64")
    if kinds == {float} or kinds == {int, float}:
        return pd.array([float("nan") if v is None else v for v in values], dtype="float64")
    if len(kinds) == 1 and str in kinds:
        return values
    return pd.array(values, dtype="object")


def frame_from_rows(rows: Sequence[Mapping[str, Any]], ids: Sequence[Any]) -> pd.DataFrame:
    """Build the DataFrame: standard columns first, then config, summary, metadata."""
    import pandas as pd

    names: dict[str, None] = dict.fromkeys(STANDARD_COLUMNS)
    for row in rows:
        names.update(dict.fromkeys(row))
    order = {"config": 1, "summary": 2, "metadata": 3}
    standard = [n for n in names if n in STANDARD_COLUMNS]
    rest = sorted(
        (n for n in names if n not in STANDARD_COLUMNS),
        key=lambda n: order.get(n.split(".", 1)[0], 4),
    )
    columns = {}
    for name in [*standard, *rest]:
        values = [row.get(name) for row in rows]
        columns[name] = _column_values(values)
    frame = pd.DataFrame(columns, index=pd.Index(list(ids), name="id", dtype="object"))
    for name in ("start_time", "end_time"):
        frame[name] = pd.to_datetime(frame[name], utc=True, format="ISO8601", errors="coerce")
    return frame


def load_experiments(
    root: str | os.PathLike[str] | Sequence[str | os.PathLike[str]] = "experiments",
    *,
    reader: type[ExperimentReader] = ExperimentReader,
    died_after: float = DIED_AFTER_SECONDS,
) -> pd.DataFrame:
    """All experiments under ``root`` as a DataFrame, one row each, index ``id``.

    ``root`` may be a list of roots (runs gathered from several machines);
    the index is then ``(root, id)`` so that ids never clash.
    """
    import pandas as pd

    if isinstance(root, (str, os.PathLike)):
        return Experiments(root, reader, died_after=died_after).as_dataframe()
    frames = []
    for one in root:
        frame = Experiments(one, reader, died_after=died_after).as_dataframe()
        frame.index = pd.MultiIndex.from_arrays(
            [[str(one)] * len(frame), frame.index], names=["root", "id"]
        )
        frames.append(frame)
    if not frames:
        raise ValueError("load_experiments: give at least one root")
    return pd.concat(frames)
