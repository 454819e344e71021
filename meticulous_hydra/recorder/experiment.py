"""The recorder: one :class:`Experiment` owns one experiment folder for one run."""

from __future__ import annotations

import datetime as _dt
import logging
import os
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from meticulous_hydra import layout
from meticulous_hydra.exceptions import (  # ResumeMismatchError also imported from here
    NotSerializable,
    ResumeMismatchError,
    StorageError,
)

from . import hooks, provenance
from .announce import announce, previous_status
from .capture import FdTee, StreamTee
from .environment import global_rank, process_metadata
from .gitstate import GitState, entry_code_dir, read_git_state
from .hooks import status_from_exception
from .redact import DEFAULT_PATTERNS, Redactor

HEARTBEAT_SECONDS = 60.0
_NOT_GIVEN: Any = object()


def current() -> Experiment | None:
    """The innermost experiment recording in this process, or None."""
    return hooks.current()  # type: ignore[return-value]  # only Experiments are tracked


def _plain_config(config: Mapping[str, Any] | None) -> dict[str, Any]:
    return layout.to_jsonable(dict(config or {}), strict=False)


def _dump_yaml(data: Any) -> str:
    import yaml  # ~13 ms, here: a run that records nothing (norecord, rank > 0) never loads it

    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    return yaml.dump(
        data,
        Dumper=dumper,
        sort_keys=False,
        allow_unicode=True,
        default_flow_style=False,
        width=100,
    )


@dataclass(frozen=True)
class _Plumbing:
    """What an adapter passes that a user never does: the folder it claimed
    already, the git state it read in the launching process, and the flag to
    name in the dirty-tree error."""

    folder: str | os.PathLike[str] | None = None
    git_state: GitState | None = _NOT_GIVEN
    allow_dirty_hint: str = "allow_dirty=True"


def _start_metadata(
    *,
    exp_id: str | None,
    description: str,
    start: _dt.datetime,
    git_state: GitState | None,
    overrides: Sequence[str],
    redactor: Redactor,
    redacted: list[str],
    extra: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """metadata.json as a run starts (docs/FORMAT.md lists every key)."""
    metadata: dict[str, Any] = {
        "format_version": layout.FORMAT_VERSION,
        "id": exp_id,
        "description": description,
        "start_time": start.isoformat(),
        "end_time": None,
        "duration": None,
        "restarts": 0,
        **process_metadata(),
        "git": git_state.as_metadata() if git_state else None,
        "overrides": redactor.overrides(list(overrides)),
        "redacted": redacted,
        "heartbeat_seconds": HEARTBEAT_SECONDS,
    }
    metadata["argv"] = redactor.argv(metadata["argv"])
    if extra:
        metadata.update(layout.to_jsonable(dict(extra), strict=False))
    return metadata


class Experiment:
    """Record one run into a numbered folder under ``root``.

    Creating the object starts the run: it checks git (refusing uncommitted
    changes unless ``allow_dirty``), claims the folder, writes config.yaml,
    metadata.json and STATUS, and starts capturing stdout/stderr. ``finish()``
    (or leaving the ``with`` block, or the process exiting) ends it.

    With ``experiment_id`` an existing folder is resumed when config and commit
    match. ``norecord`` (and any rank but 0 of a distributed job) records
    nothing at all, but the object is whole: ``metadata``, ``git``, ``config``
    and every method are there, and writing methods do nothing.
    """

    # Set by _for_adapter only; users never pass it.
    _plumbing: _Plumbing = _Plumbing()

    def __init__(
        self,
        config: Mapping[str, Any] | None = None,
        *,
        root: str | os.PathLike[str] = "experiments",
        experiment_id: str | None = None,
        description: str = "",
        allow_dirty: bool = False,
        norecord: bool = False,
        capture_output: bool = True,
        overrides: Sequence[str] = (),
        metadata: Mapping[str, Any] | None = None,
        code_dir: str | os.PathLike[str] | None = None,
        redact: Sequence[str] | None = DEFAULT_PATTERNS,
    ) -> None:
        plumbing = self._plumbing
        # Only global rank 0 of a distributed job records; the other ranks run
        # as if told --norecord.
        self.norecord = norecord or global_rank() != 0
        self.description = description
        self._finished = False
        self._pid = os.getpid()
        self._tees: list[FdTee | StreamTee] = []
        self._metrics_fd: int | None = None
        self._beat_stop = threading.Event()
        self._pending: tuple[str, str] | None = None
        self._summary: dict[str, Any] = {}
        self.restarts = 0
        self.resumed = False
        # What finishing without an explicit status means (at exit, say);
        # adapters whose runs have a normal end of their own change it.
        self.default_end: tuple[str, str] = (layout.SUCCESS, "")
        if experiment_id is not None and not self.norecord:
            experiment_id = layout.validate_id(experiment_id)  # before git: bad input first
        # nothing recorded would lose a value: two keys that would be one are refused
        layout.check_keys(dict(config or {}), "config", "config")
        layout.check_keys(dict(metadata or {}), "metadata", "metadata")
        redactor = Redactor(redact)
        redacted: list[str] = []
        self.config = redactor.tree(_plain_config(config), found=redacted)
        # config.yaml keeps NaN and infinities, which YAML has and JSON has not
        self._yaml_config = redactor.tree(
            layout.to_jsonable(dict(config or {}), strict=False, floats=True)
        )
        self.git: GitState | None = None
        self.dir = Path.cwd()
        self.id: str | None = None
        if not self.norecord:
            self.git = plumbing.git_state
            if self.git is _NOT_GIVEN:
                code_path = Path(code_dir) if code_dir is not None else entry_code_dir()
                self.git = read_git_state(
                    code_path, allow_dirty=allow_dirty, flag_hint=plumbing.allow_dirty_hint
                )
            if provenance.repeating():  # a reproduction never resumes the id it was given
                experiment_id = None
            root = provenance.root_override(root)
            self.dir, self.resumed = _claim(root, experiment_id, plumbing.folder)
            self.id = self.dir.name
        self._start_time = layout.now()
        self.metadata = _start_metadata(
            exp_id=self.id,
            description=description,
            start=self._start_time,
            git_state=self.git,
            overrides=overrides,
            redactor=redactor,
            redacted=redacted,
            extra=metadata,
        )
        if not self.norecord:
            self.metadata.update(provenance.start_metadata(self.config, description))
            self._start_recording(capture_output)
        hooks.track(self)

    @classmethod
    def _for_adapter(
        cls,
        config: Mapping[str, Any] | None = None,
        *,
        folder: str | os.PathLike[str] | None = None,
        git_state: GitState | None = _NOT_GIVEN,
        allow_dirty_hint: str = "allow_dirty=True",
        **options: Any,
    ) -> Experiment:
        """Start a run for an adapter: the Hydra callback records into the
        ``folder`` it claimed, with the ``git_state`` it read in the launching
        process; both name their own dirty-tree flag. ``options`` are those of
        the constructor."""
        exp = cls.__new__(cls)
        exp._plumbing = _Plumbing(folder, git_state, allow_dirty_hint)
        exp.__init__(config, **options)  # type: ignore[misc]
        return exp

    @property
    def finished(self) -> bool:
        """Whether the run has ended (``finish()`` ran)."""
        return self._finished

    # -- start -------------------------------------------------------------

    def _start_recording(self, capture_output: bool) -> None:
        previous = None
        if self.resumed:
            self._take_over_existing()
            previous = previous_status(self.dir)  # before the start files replace it
        try:
            self._write_start_files()
        except OSError as e:
            raise StorageError(
                e.errno, f"cannot write to experiment folder {self.dir}: {e.strerror or e}"
            ) from e
        # before the capture: the line is for the terminal, not the run's stderr file
        launch_cwd = (self.metadata.get("launch") or {}).get("cwd") or os.getcwd()
        announce(
            self.dir,
            Path(launch_cwd),
            resumed=self.resumed,
            restarts=self.restarts,
            previous=previous,
        )
        if capture_output:
            self._start_capture()
        threading.Thread(target=self._heartbeat, name="meticulous-heartbeat", daemon=True).start()

    def _take_over_existing(self) -> None:
        """Continue an existing folder: same config and commit, or a clear error."""
        meta_path = self.dir / layout.METADATA
        try:
            old_meta = layout.read_json(meta_path)
            old_config = layout.read_json(self.dir / layout.CONFIG_JSON)
        except (OSError, ValueError) as e:
            raise ResumeMismatchError(
                f"cannot resume experiment {self.dir}: {meta_path.name} or {layout.CONFIG_JSON} "
                f"is unreadable ({e}); choose another experiment id"
            ) from e
        if old_config != self.config:
            diff = _diff_keys(old_config, self.config)
            shown = ", ".join(
                f"{k} (recorded {_shown(diff[k][0])}, now {_shown(diff[k][1])})"
                for k in sorted(diff)[:5]
            )
            raise ResumeMismatchError(
                f"cannot resume experiment {self.id} in {self.dir.parent}: its config differs in "
                f"{shown}; use another experiment id or the same settings"
            )
        old_sha = (old_meta.get("git") or {}).get("sha")
        new_sha = self.git.sha if self.git else None
        if old_sha != new_sha:
            raise ResumeMismatchError(
                f"cannot resume experiment {self.id} in {self.dir.parent}: it was recorded at commit "
                f"{old_sha} but the code is at {new_sha}; check out {old_sha} or use another id"
            )
        self.restarts = int(old_meta.get("restarts") or 0) + 1
        self.metadata["restarts"] = self.restarts
        self.metadata["start_time"] = old_meta.get("start_time", self.metadata["start_time"])
        self.metadata["restart_times"] = [
            *old_meta.get("restart_times", []),
            self._start_time.isoformat(),
        ]
        try:
            self._summary = layout.read_json(self.dir / layout.SUMMARY)
        except (OSError, ValueError):
            self._summary = {}
        banner = f"\n===== meticulous-hydra: restart {self.restarts} at {self._start_time.isoformat()} =====\n"
        for name in (layout.STDOUT, layout.STDERR):
            fd = layout.open_append(self.dir / name)
            try:
                os.write(fd, banner.encode())
            finally:
                os.close(fd)

    def _write_start_files(self) -> None:
        # The reader counts a folder as an experiment once metadata.json is
        # there, so it comes after the config: a run killed while starting is
        # either invisible or complete (and then DIED, by its host and pid).
        layout.atomic_write_text(self.dir / layout.CONFIG_YAML, _dump_yaml(self._yaml_config))
        layout.write_json(self.dir / layout.CONFIG_JSON, self.config)
        if self.git is not None and self.git.diff:
            layout.atomic_write_bytes(self.dir / layout.GIT_DIFF, self.git.diff)
        provenance.write_packages(self.dir)
        if self.git is not None:
            self.git.save_untracked_code(self.dir)
        self._write_metadata()
        layout.write_status(self.dir / layout.STATUS, layout.RUNNING)

    def _write_metadata(self) -> None:
        layout.write_json(self.dir / layout.METADATA, self.metadata)

    def _start_capture(self) -> None:
        for fd, stream, name in ((1, "stdout", layout.STDOUT), (2, "stderr", layout.STDERR)):
            tees: list[FdTee | StreamTee] = [FdTee(fd, self.dir / name)]
            if StreamTee.needed(stream, fd):
                tees.append(StreamTee(stream, self.dir / name))
            for tee in tees:
                tee.start()
                self._tees.append(tee)

    def _heartbeat(self) -> None:
        # STATUS's mtime is the sign of life the reader checks for runs on
        # other hosts, where it can't look up the pid.
        while not self._beat_stop.wait(HEARTBEAT_SECONDS):
            try:
                os.utime(self.dir / layout.STATUS)
            except OSError:
                pass

    # -- during the run ------------------------------------------------------

    def summary(self, values: Mapping[str, Any]) -> None:
        """Merge ``values`` into summary.json (nested dicts merge by key)."""
        if self.norecord:
            return
        layout.check_keys(dict(values), "summary", "summary", NotSerializable)
        converted = layout.to_jsonable(dict(values), strict=True)
        merged = layout.deep_merge(_copy_tree(self._summary), converted)
        layout.check_keys(merged, "summary", "summary", NotSerializable)  # with what it had
        self._storage(layout.write_json, self.dir / layout.SUMMARY, merged)
        self._summary = merged

    def _storage(self, write: Any, target: Any, *args: Any, name: str = "") -> Any:
        """Run a write; a failing one becomes a StorageError naming the file."""
        try:
            return write(target, *args)
        except OSError as e:
            where = self.dir / name if name else target
            raise StorageError(
                e.errno, f"cannot write {where}: {e.strerror or e}; free space or fix permissions"
            ) from e

    def log(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        """Append one line to metrics.jsonl: the metrics with ``step`` and ``time``."""
        if self.norecord:
            return
        layout.check_keys(dict(metrics), "metrics", "", NotSerializable)
        record = {"step": step, "time": layout.now().isoformat()}
        record.update(layout.to_jsonable(dict(metrics), strict=True))
        line = (layout.dumps_json(record, indent=None) + "\n").encode("utf-8")
        if self._metrics_fd is None:
            self._metrics_fd = self._storage(layout.open_append, self.dir / layout.METRICS)
        # One write per line: a crash never leaves half a line before a whole one.
        self._storage(os.write, self._metrics_fd, line, name=layout.METRICS)

    def open(self, name: str | os.PathLike[str], mode: str = "r", **kwargs: Any) -> IO[Any]:
        """Open a file inside the experiment folder (the cwd under norecord);
        parent folders are created for writing."""
        path = Path(name)
        if path.is_absolute() or ".." in path.parts:
            raise ValueError(f"{name}: give a path inside the experiment folder")
        path = self.dir / path
        if any(c in mode for c in "wax+"):
            layout.make_dir(path.parent, exist_ok=True)
            kwargs.setdefault("opener", _opener)
        return open(path, mode, **kwargs)

    # -- end -----------------------------------------------------------------

    def mark(self, status: str, detail: str = "") -> None:
        """Write a final-looking status now, without ending the run: what a
        signal or ``sys.exit`` means if the process dies before finishing."""
        if self.norecord or self._finished or os.getpid() != self._pid:
            return
        self._pending = (status, detail)
        try:
            self._write_end(status, detail)
        except OSError:
            pass

    def _write_end(self, status: str, detail: str) -> None:
        end = layout.now()
        self.metadata["end_time"] = end.isoformat()
        self.metadata["duration"] = round((end - self._start_time).total_seconds(), 6)
        self._write_metadata()
        layout.write_status(self.dir / layout.STATUS, status, detail)

    def finish(self, status: str | None = None, detail: str = "") -> None:
        """End the run: write STATUS (default SUCCESS, or what a pending exit
        said), end time and duration, and restore every stream and hook."""
        if self._finished:
            return
        self._finished = True
        hooks.untrack(self)
        if self.norecord or os.getpid() != self._pid:
            # A forked child (a data loader worker, say) inherited the object
            # and the hooks: the run is its parent's to end.
            return
        if status is None:
            status, detail = self._pending or self.default_end
        self._beat_stop.set()
        for tee in reversed(self._tees):
            tee.stop()
        self._tees.clear()
        if self._metrics_fd is not None:
            os.close(self._metrics_fd)
            self._metrics_fd = None
        try:
            self._write_end(status, detail)
        except OSError as e:
            # Never crash a program at its very end: what was written stays
            # valid, and the reader will call the run DIED.
            logging.getLogger("meticulous_hydra").error(
                "cannot record the end of experiment %s in %s: %s",
                self.id,
                self.dir,
                e.strerror or e,
            )

    def finish_from_exception(self, exc: BaseException) -> None:
        self.finish(*status_from_exception(exc))

    def __enter__(self) -> Experiment:
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        if exc is None:
            self.finish(
                layout.SUCCESS
            )  # the block ended normally, whatever sys.exit was caught in it
        else:
            self.finish_from_exception(exc)
        # never swallow: the exception goes on up

    def __repr__(self) -> str:
        return f"Experiment({str(self.dir)!r})" if not self.norecord else "Experiment(norecord)"


def _claim(
    root: str | os.PathLike[str],
    experiment_id: str | None,
    folder: str | os.PathLike[str] | None,
) -> tuple[Path, bool]:
    """The run's folder, and whether it existed: ``folder`` when an adapter
    claimed it already, else a new one under ``root``."""
    if folder is None:
        return layout.claim_folder(layout.ensure_root(root), experiment_id)
    path = Path(folder).absolute()
    layout.ensure_root(path.parent)
    layout.make_dir(path, exist_ok=True)
    return path, (path / layout.METADATA).exists()


def _opener(path: str, flags: int) -> int:
    return os.open(path, flags, layout.FILE_MODE)


def _copy_tree(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy_tree(v) for k, v in value.items()}
    return value


def _diff_keys(a: Any, b: Any, prefix: str = "") -> dict[str, tuple[Any, Any]]:
    """The dotted keys whose values differ, with both values."""
    if isinstance(a, dict) and isinstance(b, dict):
        out: dict[str, tuple[Any, Any]] = {}
        for k in a.keys() | b.keys():
            key = f"{prefix}.{k}" if prefix else str(k)
            out.update(_diff_keys(a.get(k, _NOT_GIVEN), b.get(k, _NOT_GIVEN), key))
        return out
    return {} if a == b else {prefix or "<root>": (a, b)}


def _shown(value: Any) -> str:
    if value is _NOT_GIVEN:
        return "absent"
    text = layout.dumps_json(value, indent=None)
    return text if len(text) <= 60 else text[:57] + "..."
