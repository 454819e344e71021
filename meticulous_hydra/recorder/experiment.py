"""The recorder: one :class:`Experiment` owns one experiment folder for one run."""

from __future__ import annotations

import atexit
import contextlib
import datetime as _dt
import errno
import os
import shlex
import signal
import sys
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

from . import capture, hooks, provenance
from .announce import announce, notice, previous_status
from .environment import global_rank, process_metadata
from .gitstate import GitState, entry_code_dir, read_git_state
from .hooks import status_from_exception
from .redact import DEFAULT_PATTERNS, Redactor

HEARTBEAT_SECONDS = 60.0
_NOT_GIVEN: Any = object()
# Held in the folder while the run records (docs/FORMAT.md): on a full disk,
# freeing it makes room for the final STATUS and metadata.json.
_RESERVE_BYTES = 64 * 1024


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
    already, the git state it read in the launching process, the flag to
    name in the dirty-tree error, whether a requeued job finds the folder
    again (a Hydra sweep job's link), and the config keys whose values may
    change when it does (from ``${now:}``, ``${oc.env:}``)."""

    folder: str | os.PathLike[str] | None = None
    git_state: GitState | None = _NOT_GIVEN
    allow_dirty_hint: str = "allow_dirty=True"
    # the secret strings to scrub, when the adapter knows more than the
    # resolved config says (where each value came from)
    secrets: frozenset[str] | None = None
    resumable: bool = False
    volatile: frozenset[str] = frozenset()


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
    secrets: set[str],
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
    return redactor.scrub(metadata, secrets)


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
        self._capture: capture.Capture | None = None
        self._metrics_fd: Any = None  # an fd, or _FULL once the disk filled
        # what the status detail adds at the end: the disk filled, a reader went away
        self._notes: list[str] = []
        self._beat_stop = threading.Event()
        self._pending: tuple[str, str] | None = None
        self._summary: dict[str, Any] = {}
        self.restarts = 0
        self.resumed = False
        self.resumes_on_requeue = False
        self._restart_notes = ""  # what a resume found changed, for the banner
        # What finishing without an explicit status means (at exit, say);
        # adapters whose runs have a normal end of their own change it.
        self.default_end: tuple[str, str] = (layout.SUCCESS, "")
        if experiment_id is not None and not self.norecord:
            experiment_id = layout.validate_id(experiment_id)  # before git: bad input first
        layout.check_depth(dict(config or {}), "the config")
        # nothing recorded would lose a value: two keys that would be one are refused
        layout.check_keys(dict(config or {}), "config", "config")
        layout.check_keys(dict(metadata or {}), "metadata", "metadata")
        redactor = self._redactor = Redactor(redact)
        redacted: list[str] = []
        plain = _plain_config(config)
        # a secret's value is hidden wherever it appears: in a URL or a
        # command that interpolates it, in a path named after it
        self._secrets = (
            set(plumbing.secrets) if plumbing.secrets is not None else redactor.secrets(plain)
        )
        self.config = redactor.scrub(redactor.tree(plain, found=redacted), self._secrets)
        # config.yaml keeps NaN and infinities, which YAML has and JSON has not
        self._yaml_config = redactor.scrub(
            redactor.tree(layout.to_jsonable(dict(config or {}), strict=False, floats=True)),
            self._secrets,
        )
        self.git: GitState | None = None
        self.dir = Path.cwd()
        self.id: str | None = None
        self._config_written = False
        if not self.norecord:
            self.git = plumbing.git_state
            if self.git is _NOT_GIVEN:
                code_path = Path(code_dir) if code_dir is not None else entry_code_dir()
                self.git = read_git_state(
                    code_path, allow_dirty=allow_dirty, flag_hint=plumbing.allow_dirty_hint
                )
            if provenance.repeating():  # a reproduction never resumes the id it was given
                experiment_id = None
            # a job that SLURM requeues runs again into this folder
            self.resumes_on_requeue = experiment_id is not None or plumbing.resumable
            root = provenance.root_override(root)
        self._start_time = layout.now()
        # All a run's end needs is ready before its folder exists.
        self.metadata = _start_metadata(
            exp_id=None,
            description=description,
            start=self._start_time,
            git_state=self.git,
            overrides=overrides,
            redactor=redactor,
            redacted=redacted,
            extra=metadata,
            secrets=self._secrets,
        )
        if self.norecord:
            hooks.track(self)
            return
        self.metadata.update(provenance.start_metadata(self.config, description))
        self.metadata["capture"] = capture.plan() if capture_output else None
        # made before the folder exists: an end by a signal that came while yaml
        # was being imported must not import it again (it is half-imported then)
        self._yaml_text = _dump_yaml(self._yaml_config)
        previous = None
        # From the moment its folder exists the run is tracked: a signal or an
        # exit ends it with its true status, however early (hooks.py). A signal
        # while the folder is claimed waits until the run knows it.
        with hooks.hold_signals():
            hooks.track(self)
            try:
                self.dir, self.resumed = _claim(root, experiment_id, plumbing.folder)
                self.id = self.metadata["id"] = self.dir.name
                if self.resumed:
                    # reads only: a folder refused is left as it was, unless it
                    # is this very job's, waiting to go on (_refuse)
                    self._take_over_existing()
                    previous = previous_status(self.dir)  # before the start files replace it
            except BaseException:
                hooks.untrack(self)
                raise
        try:
            self._start_recording(capture_output, previous)
        except Exception as e:
            # a run that cannot start is not one: the error goes to the caller,
            # and a STATUS it wrote says so (never RUNNING, later read as DIED)
            hooks.untrack(self)
            self._end_unstarted(e)
            raise
        _watch_exec()

    @classmethod
    def _for_adapter(
        cls,
        config: Mapping[str, Any] | None = None,
        *,
        folder: str | os.PathLike[str] | None = None,
        git_state: GitState | None = _NOT_GIVEN,
        allow_dirty_hint: str = "allow_dirty=True",
        secrets: set[str] | None = None,
        resumable: bool = False,
        volatile: frozenset[str] = frozenset(),
        **options: Any,
    ) -> Experiment:
        """Start a run for an adapter: the Hydra callback records into the
        ``folder`` it claimed, with the ``git_state`` it read in the launching
        process and the ``secrets`` it found; both name their own dirty-tree
        flag. ``resumable``: a requeued job finds ``folder`` again;
        ``volatile``: the dotted config keys a resumed run may find changed.
        ``options`` are those of the constructor."""
        exp = cls.__new__(cls)
        frozen = None if secrets is None else frozenset(secrets)
        exp._plumbing = _Plumbing(folder, git_state, allow_dirty_hint, frozen, resumable, volatile)
        exp.__init__(config, **options)  # type: ignore[misc]
        return exp

    @property
    def finished(self) -> bool:
        """Whether the run has ended (``finish()`` ran)."""
        return self._finished

    # -- start -------------------------------------------------------------

    def _start_recording(self, capture_output: bool, previous: str | None) -> None:
        try:
            if self.resumed:
                self._append_restart_banners()
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
            new_root=not self.resumed and layout.new_root(self.dir.parent),
        )
        if capture_output:
            self._start_capture()
        threading.Thread(target=self._heartbeat, name="meticulous-heartbeat", daemon=True).start()

    def _end_unstarted(self, error: Exception) -> None:
        """The STATUS of a run whose start failed after its start files: ERROR."""
        status = self.dir / layout.STATUS
        with contextlib.suppress(OSError):  # the error being raised says more
            if layout.parse_status(status.read_text())[0] == layout.RUNNING:
                detail = f"the run could not start: {type(error).__name__}: {error}"
                layout.write_status(status, layout.ERROR, detail)

    def _take_over_existing(self) -> None:
        """Continue an existing folder: same config and commit, or a clear error.

        Values that come from ``${now:}`` / ``${oc.env:}`` (the adapter's
        ``volatile`` keys) may differ: the recorded ones stay in the config
        files, and ``restart_changes`` says what this restart saw instead.
        """
        meta_path = self.dir / layout.METADATA
        try:
            old_meta = layout.read_json(meta_path)
            old_config = layout.read_json(self.dir / layout.CONFIG_JSON)
        except (OSError, ValueError) as e:
            raise ResumeMismatchError(
                f"cannot resume experiment {self.dir}: {meta_path.name} or {layout.CONFIG_JSON} "
                f"is unreadable ({e}); choose another experiment id"
            ) from e
        diff = _diff_keys(old_config, self.config) if old_config != self.config else {}
        volatile = self._plumbing.volatile
        expected = {k: v for k, v in diff.items() if _under(k, volatile)}
        if len(expected) < len(diff):
            shown = ", ".join(
                f"{k} (recorded {_shown(diff[k][0])}, now {_shown(diff[k][1])})"
                for k in sorted(diff.keys() - expected.keys())[:5]
            )
            self._refuse(
                old_meta,
                f"cannot resume experiment {self.id} in {self.dir.parent}: its config differs in "
                f"{shown}; use another experiment id or the same settings",
            )
        old_sha = (old_meta.get("git") or {}).get("sha")
        new_sha = self.git.sha if self.git else None
        if old_sha != new_sha:
            self._refuse(
                old_meta,
                f"cannot resume experiment {self.id} in {self.dir.parent}: it was recorded at commit "
                f"{old_sha} but the code is at {new_sha}; check out {old_sha} or use another id",
            )
        self.restarts = int(old_meta.get("restarts") or 0) + 1
        self.metadata["restarts"] = self.restarts
        self.metadata["start_time"] = old_meta.get("start_time", self.metadata["start_time"])
        self.metadata["restart_times"] = [
            *old_meta.get("restart_times", []),
            self._start_time.isoformat(),
        ]
        notes = ""
        changes = list(old_meta.get("restart_changes", []))
        if expected:
            # the run keeps the config it was recorded with
            self.config = old_config
            self.metadata["config_hash"] = provenance.config_hash(old_config)
            for key in sorted(expected):
                recorded, now = (None if v is _NOT_GIVEN else v for v in expected[key])
                changes.append(
                    {"restart": self.restarts, "key": key, "recorded": recorded, "now": now}
                )
                notes += (
                    f"{key}: recorded {_shown(recorded)}, now {_shown(now)} (kept as recorded)\n"
                )
        if changes:
            self.metadata["restart_changes"] = changes
        self._restart_notes = notes
        try:
            self._summary = layout.read_json(self.dir / layout.SUMMARY)
        except (OSError, ValueError):
            self._summary = {}

    def _append_restart_banners(self) -> None:
        banner = f"\n===== meticulous-hydra: restart {self.restarts} at {self._start_time.isoformat()} =====\n"
        for name in (layout.STDOUT, layout.STDERR):
            _append(self.dir / name, banner + self._restart_notes)

    def _refuse(self, old_meta: dict[str, Any], message: str) -> None:
        """Raise the ResumeMismatchError; when the folder is this very job's,
        waiting to go on (a requeued SLURM job, a Hydra sweep job found again
        by its link), the refusal is its status too, and the end of its stderr."""
        old_status = previous_status(self.dir)
        sweep, old_sweep = self.metadata.get("sweep"), old_meta.get("sweep")
        job = os.environ.get("SLURM_JOB_ID")
        same_job = (job and (old_meta.get("slurm") or {}).get("job_id") == job) or (
            isinstance(sweep, dict)
            and isinstance(old_sweep, dict)
            and (sweep.get("id"), sweep.get("job_num"))
            == (old_sweep.get("id"), old_sweep.get("job_num"))
        )
        if same_job and old_status in (None, layout.RUNNING, layout.REQUEUED):
            try:
                _append(self.dir / layout.STDERR, f"meticulous-hydra: error: {message}\n")
                layout.write_status(self.dir / layout.STATUS, layout.ERROR, message)
            except OSError:
                pass
        raise ResumeMismatchError(message)

    def _write_start_files(self) -> None:
        # The reader counts a folder as an experiment once metadata.json is
        # there, so it comes after the config: a run killed while starting is
        # either invisible or complete (and then DIED, by its host and pid).
        self._write_config()
        provenance.write_packages(self.dir)
        if self.git is not None:
            self.git.write_diff(self.dir / layout.GIT_DIFF)
            self.git.save_untracked_code(self.dir)
        self._write_metadata()
        layout.write_status(self.dir / layout.STATUS, layout.RUNNING)
        self._hold_reserve()

    def _write_config(self) -> None:
        # A resumed run keeps the config files it was recorded with.
        if not (self.resumed and (self.dir / layout.CONFIG_YAML).exists()):
            layout.atomic_write_text(self.dir / layout.CONFIG_YAML, self._yaml_text)
        layout.write_json(self.dir / layout.CONFIG_JSON, self.config)
        self._config_written = True

    def _write_metadata(self) -> None:
        layout.write_json(self.dir / layout.METADATA, self.metadata)

    def _hold_reserve(self) -> None:
        """Room for the end on a full disk: the final STATUS and metadata.json
        are new files (written, then renamed over the old ones)."""
        size = _RESERVE_BYTES + len(layout.dumps_json(self.metadata))
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
        fd = os.open(self.dir / layout.END_RESERVE, flags, layout.FILE_MODE)
        try:
            # written, not fallocate()d: as much room taken (delayed allocation
            # reserves it too), in 0.05 ms instead of 2-3 ms on ext4
            zeros = memoryview(bytes(size))
            while zeros:  # a short write on a disk about to fill: the rest raises
                zeros = zeros[os.write(fd, zeros) :]
        finally:
            os.close(fd)

    def _free_reserve(self) -> None:
        try:
            os.unlink(self.dir / layout.END_RESERVE)
        except FileNotFoundError:
            pass

    def _start_capture(self) -> None:
        self._capture = capture.Capture(self.dir, self.metadata["capture"], self._notes)
        self._capture.start(on_gone=self._output_gone)

    def _output_gone(self, kind: str, text: str) -> None:
        """A pump thread found the reader of stdout (stderr) gone. A program
        that lets SIGPIPE kill it dies at its next write there: the status
        says so now, as nothing of ours runs then; a normal end replaces it."""
        if kind == capture.BROKEN_PIPE and signal.getsignal(signal.SIGPIPE) == signal.SIG_DFL:
            try:
                self._write_end(layout.INTERRUPTED, f"SIGPIPE ({text})")
            except OSError:
                pass

    def _disk_full(self, name: str, error: OSError) -> None:
        """A write of ours found the disk full: the program goes on, the
        status detail will say what is incomplete, and stderr says it once."""
        if any(n.startswith(f"{name}: ") for n in self._notes):
            return
        why = error.strerror or error
        self._notes.append(f"{name}: the disk filled ({why}): not all of it was written")
        line = f"meticulous-hydra: the disk is full: {self.dir / name} is not written ({why}); the run goes on"
        if self._capture is not None:
            self._capture.notice(line)
        elif sys.stderr is not None:
            with contextlib.suppress(OSError, ValueError):
                sys.stderr.write(line + "\n")

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
        """Merge ``values`` into summary.json (nested dicts merge by key).

        On a full disk the file keeps its last version, the run goes on and
        its status detail says so; the next summary() writes all values."""
        if self.norecord:
            return
        layout.check_depth(dict(values), "the summary", NotSerializable)
        layout.check_keys(dict(values), "summary", "summary", NotSerializable)
        converted = Redactor.scrub(layout.to_jsonable(dict(values), strict=True), self._secrets)
        merged = layout.deep_merge(_copy_tree(self._summary), converted)
        layout.check_keys(merged, "summary", "summary", NotSerializable)  # with what it had
        self._summary = merged
        self._summary_written = self._write_summary()

    _summary_written = True

    def _write_summary(self) -> bool:
        path = self.dir / layout.SUMMARY
        return (
            self._storage(layout.write_json, path, self._summary, name=layout.SUMMARY) is not _FULL
        )

    def _storage(self, write: Any, target: Any, *args: Any, name: str) -> Any:
        """Run a write to the file ``name``: a full disk is noted (the
        program goes on, see _disk_full) and returns _FULL; any other
        failure becomes a StorageError naming the file."""
        try:
            return write(target, *args)
        except OSError as e:
            if e.errno in capture.DISK_FULL:
                self._disk_full(name, e)
                return _FULL
            raise StorageError(
                e.errno,
                f"cannot write {self.dir / name}: {e.strerror or e}; free space or fix permissions",
            ) from e

    def log(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        """Append one line to metrics.jsonl: the metrics with ``step`` and ``time``
        (a metric named ``step`` is the step; none may be named ``time``)."""
        if self.norecord:
            return
        layout.check_keys(dict(metrics), "metrics", "", NotSerializable)
        # "step" and "time" are the line's own: a metric of either name would
        # take their place unseen. A metric "step" is the step, given once.
        if "time" in metrics:
            raise NotSerializable(
                'the metric "time" would replace the time metrics.jsonl records on each '
                "line: rename it (epoch_time, say)"
            )
        if "step" in metrics and step is not None and metrics["step"] != step:
            raise NotSerializable(
                f'two steps for one line, step={step!r} and the metric "step" '
                f"{metrics['step']!r}: give one"
            )
        record = {"step": step, "time": layout.now().isoformat()}
        try:
            record.update(layout.to_jsonable(dict(metrics), strict=True))
        except RecursionError:  # no check up front: log() is the hot path
            layout.check_depth(dict(metrics), "a logged value", NotSerializable)
            raise
        if self._secrets:
            record = Redactor.scrub(record, self._secrets)
        line = (layout.dumps_json(record, indent=None) + "\n").encode("utf-8")
        if self._metrics_fd is None:
            path = self.dir / layout.METRICS
            self._metrics_fd = self._storage(layout.open_append, path, name=layout.METRICS)
        if self._metrics_fd is _FULL:
            return  # the disk filled: no more lines, so none is glued to a partial one
        # One write per line: a crash never leaves half a line before a whole one.
        written = self._storage(os.write, self._metrics_fd, line, name=layout.METRICS)
        if written is not _FULL and written < len(line):  # the last bytes the disk had
            self._disk_full(layout.METRICS, OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)))
            written = _FULL
        if written is _FULL:
            self._close_metrics()
            self._metrics_fd = _FULL

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

    def _requeue_status(self, status: str, detail: str) -> tuple[str, str]:
        """REQUEUED only where the requeued job comes back to this folder;
        elsewhere the run was interrupted, and says where the job goes on."""
        if status == layout.REQUEUED and not self.resumes_on_requeue:
            return layout.INTERRUPTED, (
                f"{detail}; its next start records a new run (give the run an experiment id "
                "to have it resume this folder)"
            )
        return status, detail

    def mark(self, status: str, detail: str = "") -> None:
        """Write a final-looking status now, without ending the run: what a
        signal or ``sys.exit`` means if the process dies before finishing."""
        if self.norecord or self._finished or os.getpid() != self._pid:
            return
        status, detail = self._requeue_status(status, detail)
        self._pending = (status, detail)
        try:
            self._write_end(status, detail)
        except OSError:
            pass

    def _write_end(self, status: str, detail: str) -> None:
        if not self._config_written:  # ended while starting (a signal): still a whole record
            self._write_config()
        end = layout.now()
        self.metadata["end_time"] = end.isoformat()
        self.metadata["duration"] = round((end - self._start_time).total_seconds(), 6)
        self._write_metadata()
        layout.write_status(self.dir / layout.STATUS, status, detail)

    def _close_metrics(self) -> None:
        fd, self._metrics_fd = self._metrics_fd, None
        if isinstance(fd, int):
            os.close(fd)

    def finish(
        self, status: str | None = None, detail: str = "", *, output_until_exit: bool = False
    ) -> None:
        """End the run: write STATUS (default SUCCESS, or what a pending exit
        said), end time and duration, and restore every stream and hook.
        With ``output_until_exit`` the output is captured until the process
        exits: what is printed then about the run's end (Hydra's report of a
        failed job) is in its files too."""
        if not self._ending():
            return
        if status is None:
            status, detail = self._pending or self.default_end
        status, detail = self._requeue_status(status, detail)
        if self._capture is not None:
            if output_until_exit:
                atexit.register(self._capture.stop)
            else:
                self._capture.stop()
        self._end(status, detail)

    def _ending(self) -> bool:
        """Mark the run ended; whether this process has its end to record."""
        if self._finished:
            return False
        self._finished = True
        hooks.untrack(self)
        # A forked child (a data loader worker, say) inherited the object
        # and the hooks: the run is its parent's to end.
        return not self.norecord and os.getpid() == self._pid

    def _end(self, status: str, detail: str) -> None:
        """Write the end, with the notes of what went wrong on the way; on a
        full disk, with the room held in reserve."""
        self._beat_stop.set()
        self._close_metrics()
        if not self._summary_written:
            self._summary_written = self._write_summary()
        if self._summary_written:  # a later summary() found room
            self._notes = [n for n in self._notes if not n.startswith(f"{layout.SUMMARY}: ")]
        if self._notes:  # in the order they happened
            detail = "\n".join([detail.rstrip("\n"), *self._notes] if detail else self._notes)
        try:
            try:
                self._write_end(status, detail)
            except OSError as e:
                if e.errno not in capture.DISK_FULL:
                    raise
                self._free_reserve()
                # STATUS first: it matters most
                layout.write_status(self.dir / layout.STATUS, status, detail)
                self._write_metadata()
        except OSError as e:
            # Never crash a program at its very end: what was written stays
            # valid, and the reader will call the run DIED.
            notice(
                f"cannot record the end of experiment {self.id} in {self.dir}: {e.strerror or e}"
            )
        self._free_reserve()

    def _end_for_exec(self, path: Any, argv: Sequence[Any]) -> None:
        """os.exec* is about to replace the process: the record ends here
        (docs/FORMAT.md), and the capture goes on in relay processes, so
        that the program it becomes prints to the terminal and the files."""
        if not self._ending():
            return
        if self._capture is not None:
            self._capture.hand_over()
        command = [os.fsdecode(a) for a in [path, *list(argv)[1:]] if not isinstance(a, int)]
        self._end(
            layout.SUCCESS,
            f"exec: {shlex.join(Redactor.scrub(self._redactor.argv(command), self._secrets))}\n"
            "the process went on as that program: its output is appended to stdout and "
            "stderr, its exit code is not recorded",
        )

    def finish_from_exception(self, exc: BaseException) -> None:
        self.finish(*status_from_exception(exc))

    def __enter__(self) -> Experiment:
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        hooks.drop_own_frames(exc)
        if exc is None:
            self.finish(
                layout.SUCCESS
            )  # the block ended normally, whatever sys.exit was caught in it
        else:
            self.finish_from_exception(exc)
        # never swallow: the exception goes on up

    def __repr__(self) -> str:
        return f"Experiment({str(self.dir)!r})" if not self.norecord else "Experiment(norecord)"


# A write of ours that found the disk full (Experiment._storage).
_FULL: Any = object()
_exec_watched = False


def _watch_exec() -> None:
    """Once a process records: an audit hook ends its runs just before an
    os.exec* replaces it (audit hooks can't be removed; it does nothing
    while no run records)."""
    global _exec_watched
    if not _exec_watched:
        _exec_watched = True
        sys.addaudithook(_audit)


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if event != "os.exec" or current() is None:
        return
    try:
        path, argv = args[0], args[1]
        if not isinstance(path, int) and not (os.path.isfile(path) and os.access(path, os.X_OK)):
            return  # this exec fails (os.execvp tries each PATH entry): the run goes on
        seen = set()
        while (exp := current()) is not None and id(exp) not in seen:
            seen.add(id(exp))
            exp._end_for_exec(path, argv)
    except Exception:
        pass  # an exception here would stop the exec


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
    try:
        layout.mark_run(path)
    except OSError as e:
        raise StorageError(e.errno, f"cannot mark {path} as a run: {e.strerror or e}") from e
    return path, (path / layout.METADATA).exists()


def _append(path: Path, text: str) -> None:
    fd = layout.open_append(path)
    try:
        os.write(fd, text.encode("utf-8", "replace"))
    finally:
        os.close(fd)


def _under(key: str, keys: frozenset[str]) -> bool:
    """Whether dotted ``key`` is one of ``keys`` or lies inside one."""
    return any(key == k or key.startswith(k + ".") for k in keys)


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
