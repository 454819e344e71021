"""The Hydra callback: every run and every sweep job recorded as ``experiments/N``.

RUN mode claims the folder in ``on_run_start`` and points ``hydra.run.dir`` at
it. MULTIRUN can only redirect each job from inside the job process, so
``on_multirun_start`` adds an override that makes ``hydra.sweep.subdir`` a
resolver call (``meticulous.job_dir``); Hydra evaluates it in the job, before
it creates the output dir, and the resolver claims the folder there. When the
app set ``hydra.run.dir`` / ``hydra.sweep.subdir`` (in any of its configs or on
its command line, even to Hydra's default value: see hydra_compose.py),
Hydra's output goes there and the run is still recorded in a folder of its own
under the root.

The recording switch (``+meticulous=on``) is taken out of the overrides the
app sees as the run starts, so that no override list or dir name shows it.

Hydra turns an exception raised in a callback into a warning and runs the task
unrecorded, so every hook stops the run on any exception of ours: with
SystemExit and one line under ``@hydra.main``, and from Python (hydra-zen
``launch()``), at the start, by an output dir that fails to resolve with the
RecordingError itself, which reaches the caller.
"""

from __future__ import annotations

import atexit
import functools
import os
import secrets
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, cast

from hydra.core.hydra_config import HydraConfig
from hydra.core.utils import JobReturn, JobStatus
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import InterpolationResolutionError

from meticulous_hydra import layout
from meticulous_hydra.exceptions import DirtyRepoError, RecordingError
from meticulous_hydra.recorder import provenance
from meticulous_hydra.recorder.announce import notice
from meticulous_hydra.recorder.environment import command_argv, global_rank
from meticulous_hydra.recorder.experiment import Experiment
from meticulous_hydra.recorder.gitstate import entry_code_dir, read_git_state
from meticulous_hydra.recorder.hooks import status_from_exception
from meticulous_hydra.recorder.pending import PendingRun, end_abandoned
from meticulous_hydra.recorder.redact import DEFAULT_PATTERNS, Redactor

from .hydra_compose import set_by_app, take_switch
from .hydra_config import (
    config_cleaner,
    hydra_metadata,
    raw_strings,
    redact_hydra_files,
    redact_job_return,
    resolve_job_config,
)

if TYPE_CHECKING:
    from types import FrameType

    from hydra.conf import HydraConf

RESOLVER = "meticulous.job_dir"
FAIL_RESOLVER = "meticulous.fail"
_KEY = "meticulous"
_TARGETS = (
    "meticulous_hydra.MeticulousCallback",
    "meticulous_hydra.adapters.hydra_callback.MeticulousCallback",
    "meticulous_hydra.hydra_callback.MeticulousCallback",  # before the parts had folders
)
_PICKLE_CALLBACK = "PickleJobInfoCallback"


def job_dir(root: str, sweep_id: str, job_num: int) -> str:
    """Claim the folder of job ``job_num`` of sweep ``sweep_id`` (the resolver);
    a job that SLURM requeues finds its folder again (see
    :func:`layout.claim_sweep_folder`)."""
    return str(layout.claim_sweep_folder(layout.ensure_root(root), sweep_id, job_num))


# The folder claimed for the job of this process that has not started
# recording yet (RUN: on_run_start; a sweep job: the resolver, as Hydra makes
# its output dir), tracked until its Experiment takes over in on_job_start.
# A process starts one job at a time: a new claim ends an earlier one, whose
# job never started (its error went to a caller that went on).
_claim: PendingRun | None = None


def _claimed(claim: Callable[[], Path]) -> Path:
    """The folder ``claim()`` makes, tracked from the moment it exists until
    its job starts recording (see :class:`PendingRun`)."""
    global _claim
    pending = PendingRun()
    folder = pending.claim(claim)
    earlier = _claim
    if earlier is not None and earlier.folder == folder:  # the same job's, resolved again
        pending.release()
        return folder
    _claim = pending if pending.folder is not None else None
    if earlier is not None:
        earlier.finish()
    return folder


def _take_claim() -> PendingRun | None:
    """This process's pending claim, now the caller's to release or end."""
    global _claim
    pending, _claim = _claim, None
    return pending


def job_subdir(root: str, sweep_id: str, job_num: int, sweep_dir: str) -> str:
    """The resolver: claim the job's folder and name it relative to the sweep
    dir, so that ``${hydra:sweep.dir}/${hydra:sweep.subdir}`` names it too."""
    folder = str(_claimed(lambda: Path(job_dir(root, sweep_id, job_num))))
    base = os.path.abspath(sweep_dir)
    if os.path.realpath(base) != base:
        # ".." after a symlink leads elsewhere than Hydra's lexical join
        return folder
    return os.path.relpath(folder, base)


def _fail_resolver(kind: str, hex_message: str) -> str:
    """Raise the RecordingError that stopped the run, as the output dir's value."""
    base = DirtyRepoError if kind == "DirtyRepoError" else RecordingError
    # an InterpolationResolutionError goes through OmegaConf unwrapped, and
    # Hydra lets it through to the caller of launch()
    error = type(base.__name__, (base, InterpolationResolutionError), {})
    raise error(bytes.fromhex(hex_message[1:]).decode())


def _register_resolvers() -> None:
    OmegaConf.register_new_resolver(RESOLVER, job_subdir, use_cache=True, replace=True)
    OmegaConf.register_new_resolver(FAIL_RESOLVER, _fail_resolver, replace=True)


def _from_command_line() -> bool:
    """Whether ``@hydra.main`` runs us (else a Python caller, like hydra-zen's launch())."""
    frame: FrameType | None = sys._getframe(1)
    while frame is not None:
        code = frame.f_code
        if code.co_name == "_run_hydra" and code.co_filename.endswith(
            os.path.join("hydra", "_internal", "utils.py")
        ):
            return True
        frame = frame.f_back
    return False


def _stop(config: DictConfig, error: RecordingError, job_dir_key: str) -> None:
    """Stop the run before the task: one line and exit 1 on the command line;
    from Python, ``error`` raised to the caller."""
    if _from_command_line():
        sys.stderr.write(f"meticulous-hydra: error: {error}\n")
        sys.stderr.flush()
        raise SystemExit(1)
    _register_resolvers()
    kind = "DirtyRepoError" if isinstance(error, DirtyRepoError) else "RecordingError"
    value = f"${{{FAIL_RESOLVER}:{kind},m{str(error).encode().hex()}}}"
    if job_dir_key == "hydra.sweep.subdir":
        # jobs are composed again from hydra.overrides.hydra
        config.hydra.overrides.hydra.append(f"{job_dir_key}='{value}'")
    OmegaConf.update(config, job_dir_key, value, force_add=True)


def _fail(message: str) -> NoReturn:
    """Stop Hydra from a job: it turns an Exception raised in a callback into
    a mere warning and runs the task unrecorded, but lets SystemExit through."""
    sys.stderr.write(f"meticulous-hydra: error: {message}\n")
    sys.stderr.flush()
    raise SystemExit(1)


def _as_recording_error(error: Exception, hook: str) -> RecordingError:
    if isinstance(error, RecordingError):
        return error
    text = " ".join(str(error).split())  # OmegaConf's messages take several lines
    return RecordingError(
        f"cannot record this run ({hook}): {type(error).__name__}: {text}".rstrip(": ")
    )


_Hook = Callable[..., None]


def _stops_the_run(job_dir_key: str | None) -> Callable[[_Hook], _Hook]:
    """Any exception of ours in the hook stops the run with one line, never
    Hydra's warning and a task that runs unrecorded: a start hook as a
    refusal does (:func:`_stop`, ``job_dir_key`` names the dir it would have
    set); a job hook ends the job's record as ERROR and exits 1."""

    def wrap(hook: _Hook) -> _Hook:
        @functools.wraps(hook)
        def guarded(self: MeticulousCallback, config: DictConfig, *args: Any, **kw: Any) -> None:
            try:
                hook(self, config, *args, **kw)
            except Exception as e:
                error = _as_recording_error(e, hook.__name__)
                self._end_failed_job(f"meticulous-hydra: {error}")
                if job_dir_key is not None:
                    _stop(config, error, job_dir_key)
                    return
                _fail(str(error))

        return guarded

    return wrap


def _callbacks(config: DictConfig) -> dict[str, Any]:
    """``hydra.callbacks`` as declared (raw: never resolved)."""
    return cast(
        "dict[str, Any]", OmegaConf.to_container(config.hydra.callbacks, resolve=False) or {}
    )


class MeticulousCallback(Callback):
    """Record Hydra runs and sweep jobs with meticulous-hydra.

    Options (``hydra.callbacks.meticulous.<name>=...``): ``root``, relative to
    the launch directory; ``allow_dirty``; ``description``; ``experiment_id``
    (RUN mode: record into or resume this id); ``capture_output``;
    ``norecord``; ``redact``, the key patterns whose values are hidden.
    """

    def __init__(
        self,
        root: str = "experiments",
        allow_dirty: bool = False,
        description: str = "",
        experiment_id: str | None = None,
        capture_output: bool = True,
        norecord: bool = False,
        redact: Sequence[str] | None = DEFAULT_PATTERNS,
    ) -> None:
        self.root = str(root)
        self.allow_dirty = bool(allow_dirty)
        self.description = description or ""
        self.experiment_id = None if experiment_id is None else str(experiment_id)
        self.capture_output = bool(capture_output)
        self.norecord = bool(norecord)
        self.redact = list(redact) if redact else []
        # Set in the launching process, then carried to every job by pickling.
        self._switch: list[str] = []  # +meticulous=on, as given
        self._git: Any = None
        self._git_read = False
        self._sweep: dict[str, Any] | None = None
        self._packages: list[str] | None = None  # read once per sweep, for every job
        self._launch: dict[str, Any] | None = None
        self._mode: str | None = None
        self._key = _KEY
        self._main_file: str | None = None
        # RUN mode: the folder claimed in on_run_start; MULTIRUN: the root,
        # and whether the jobs' output dirs are their folders (our subdir)
        self._folder: str | None = None
        self._sweep_root: str | None = None
        self._redirected = False
        self._exp: Experiment | None = None
        # per job: the literal secrets to scrub, and whether Hydra's output
        # dir is the experiment folder (then its files are ours to clean)
        self._hidden: set[str] = set()
        self._hydra_files_ours = False
        # submitit's handler of its timeout/preemption signal, and ours around it
        self._signal_chain: tuple[int, Any, Any] | None = None

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_exp"] = None  # a live run never travels to another process
        state["_signal_chain"] = None
        return state

    @property
    def _off(self) -> bool:
        # Only global rank 0 of a distributed job records.
        return self.norecord or global_rank() != 0

    @property
    def _flag(self) -> str:
        return f"hydra.callbacks.{self._key}"

    def _root(self, config: DictConfig) -> Path:
        root = Path(provenance.root_override(self.root)).expanduser()
        if not root.is_absolute():
            root = Path(config.hydra.runtime.cwd) / root
        return root

    def _read_git(self, config: DictConfig) -> None:
        self._git = read_git_state(
            entry_code_dir(),  # where the app's code is, not the launch directory
            allow_dirty=self.allow_dirty,
            flag_hint=self._option_override(config, "allow_dirty", "true"),
        )
        self._git_read = True

    def _find_key(self, config: DictConfig) -> str:
        """The key this callback is declared under in ``hydra.callbacks``."""
        callbacks = _callbacks(config)
        for key, params in callbacks.items():
            if isinstance(params, dict) and params.get("_target_") in _TARGETS:
                return str(key)
        return _KEY

    def _option_override(self, config: DictConfig, name: str, value: str) -> str:
        """The override that sets option ``name``: ``+`` adds it where the
        declaration left it out."""
        declared = OmegaConf.select(config, self._flag, default=None)
        plus = "" if isinstance(declared, DictConfig) and name in declared else "+"
        return f"{plus}{self._flag}.{name}={value}"

    def _begin(self, config: DictConfig, mode: str) -> None:
        """What every job of this run needs from the launching process."""
        self._mode = mode
        self._key = self._find_key(config)
        redactor = Redactor(self.redact)
        task = raw_strings(config.hydra.overrides.task)
        self._packages = provenance.installed_packages()
        self._launch = {
            "argv": redactor.argv(command_argv()),
            "cwd": os.getcwd(),
            # what Hydra was called with: the driver's argv says nothing of
            # it under hydra-zen's launch()
            "overrides": redactor.overrides(task),
        }
        main = sys.modules.get("__main__")
        main_file = getattr(main, "__file__", None)
        self._main_file = os.path.abspath(main_file) if main_file else None

    # -- launching process ---------------------------------------------------

    @_stops_the_run("hydra.run.dir")
    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        _writable_as_before(config)
        if self._off:
            take_switch(config)
            return
        self._begin(config, "RUN")
        self._switch = take_switch(config)
        self._read_git(config)
        root = self._root(config)
        self._folder = str(_claimed(lambda: self._run_folder(root)))
        if not set_by_app(config, "hydra.run.dir", kwargs.get("config_name"), multirun=False):
            config.hydra.run.dir = self._folder

    def _run_folder(self, root: Path) -> Path:
        folder, existed = layout.claim_folder(layout.ensure_root(root), self.experiment_id)
        if existed and not layout.is_experiment_dir(folder) and any(folder.iterdir()):
            raise RecordingError(
                f"{folder} holds files that are not an experiment's: choose another id"
            )
        return folder

    @_stops_the_run("hydra.sweep.subdir")
    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        _writable_as_before(config)
        if self._off:
            take_switch(config)
            return
        self._begin(config, "MULTIRUN")
        self._switch = take_switch(config)  # before the sweeper makes its jobs of them
        sweep_id = f"{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(4)}"
        self._sweep = {"id": sweep_id, "dir": str(Path(str(config.hydra.sweep.dir)).absolute())}
        if self.experiment_id is not None:
            raise RecordingError(
                f"{self._flag}.experiment_id names one folder; a sweep needs one per job: drop it"
            )
        self._read_git(config)
        root = layout.ensure_root(self._root(config))
        if any(c in str(root) for c in "'\"\\$"):
            raise RecordingError(
                f"the experiments root {root} contains a quote, backslash or $: choose another"
            )
        if self._git is not None:
            self._keep_diff(root, sweep_id)
        self._sweep_root = str(root)
        atexit.register(self._end_abandoned)  # a sweep that does not reach its end
        if set_by_app(config, "hydra.sweep.subdir", kwargs.get("config_name"), multirun=True):
            return
        _register_resolvers()
        self._redirected = True
        subdir = f"${{{RESOLVER}:'{root}','{sweep_id}',${{hydra.job.num}},${{hydra.sweep.dir}}}}"
        # Jobs are composed again from hydra.overrides.hydra, so that is the
        # one way to reach their config from here.
        config.hydra.overrides.hydra.append(f'hydra.sweep.subdir="{subdir}"')
        config.hydra.sweep.subdir = subdir

    def _keep_diff(self, root: Path, sweep_id: str) -> None:
        """The diff of the code as the sweep starts, kept once in the root
        for every job to link to: never carried in memory to them."""
        path = layout.sweep_file(root, sweep_id, layout.GIT_DIFF)
        try:
            self._git.keep_diff(path)
        except OSError as e:
            raise RecordingError(f"cannot keep the diff in {path}: {e.strerror or e}") from e

    def _end_abandoned(self) -> None:
        """As a launcher exits on a Ctrl-C before its sweep's end: the jobs it
        killed before they could record their end (joblib's workers) end
        INTERRUPTED, never RUNNING read as DIED. Only then: a job that died
        while its launcher went on was not ended by it (a SIGKILL, then a
        requeue that resumes it), and keeps what it wrote."""
        if not isinstance(getattr(sys, "last_value", None), KeyboardInterrupt):
            return  # the exception that ended this process, if one did
        if self._sweep is None or self._sweep_root is None:
            return
        root = Path(self._sweep_root)
        links = root / layout.SWEEPS_DIR / self._sweep["id"]
        try:
            names = [n for n in os.listdir(links) if layout.is_numbered(n)]
        except OSError:
            return
        folders = [(links / n).resolve() for n in names]
        end_abandoned(
            (f for f in folders if layout.inside(root, f)),
            "KeyboardInterrupt: the sweep was interrupted, and its launcher ended this job "
            "before it could record its end",
        )

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        atexit.unregister(self._end_abandoned)
        kept = getattr(self._git, "diff_file", None)
        if kept:  # every job has its own link to it now
            try:
                os.unlink(kept)
            except OSError:
                pass

    # -- job process -----------------------------------------------------------

    def _job_folder(self, config: DictConfig, hc: HydraConf, job_num: Any) -> tuple[str, bool]:
        """The folder this job records into: always one this callback claimed
        under the root, whatever Hydra's output dir is; and whether a
        requeued job comes back to it (a sweep job's link, a chosen id)."""
        if self._folder is not None and self._mode == "RUN":
            return self._folder, self.experiment_id is not None
        if self._sweep is not None and self._sweep_root is not None:
            if self._redirected:
                return str(hc.runtime.output_dir), True  # claimed by the resolver
            root, sweep_id = self._sweep_root, self._sweep["id"]
            return str(_claimed(lambda: Path(job_dir(root, sweep_id, int(job_num))))), True
        # declared in a way that skipped the start hooks
        home = self._root(config)
        return str(_claimed(lambda: layout.claim_next(layout.ensure_root(home)))), False

    @_stops_the_run(None)
    def on_job_start(self, config: DictConfig, *, task_function: Any = None, **kwargs: Any) -> None:
        self._end_stale_run()
        hc = HydraConfig.get()
        _writable_as_before(config, hc)
        if self._off:
            self._exp = Experiment(norecord=True) if self.norecord else None
            return
        if self._launch is None:  # declared in a way that skipped the start hooks
            self._begin(config, "RUN")
        provenance.use_packages(self._packages)
        _restore_file_names(task_function, self._main_file)
        if not self._git_read:
            self._read_git(config)
        resolved, missing = resolve_job_config(config)
        redactor = Redactor(self.redact)
        given = raw_strings(hc.overrides.task)
        typed = OmegaConf.to_container(config, resolve=False)
        hidden = redactor.secrets(resolved, given, typed)
        hydra_meta = hydra_metadata(config, hc, redactor, hidden, self._mode)
        # the switch, out of the app's sight, is in the record: a reproduction records too
        hydra_meta["overrides"] = [*self._switch, *hydra_meta["overrides"]]
        job_num = hydra_meta["job_num"]
        folder, resumable = self._job_folder(config, hc, job_num)
        volatile: frozenset[str] = frozenset()
        if (Path(folder) / layout.METADATA).exists():  # to be resumed
            raw = OmegaConf.to_container(config, resolve=False)
            volatile = provenance.volatile_keys(raw)  # type: ignore[arg-type]
        self._hidden = hidden
        self._hydra_files_ours = _same_dir(folder, hc.runtime.output_dir)
        if self._hydra_files_ours:
            redact_hydra_files(hc, redactor, hidden)
        sweep = dict(self._sweep, job_num=job_num) if self._sweep else None
        code_file = getattr(getattr(task_function, "__code__", None), "co_filename", None)
        self._exp = Experiment._for_adapter(
            resolved,
            folder=folder,
            description=self.description,
            capture_output=self.capture_output,
            overrides=hydra_meta["overrides"],
            # a secret can reach a path or an id (an output dir named
            # after the overrides, say): every string is scrubbed
            metadata=redactor.scrub(
                {
                    "adapter": "hydra",
                    "hydra": hydra_meta,
                    "sweep": sweep,
                    "missing": missing,
                    "launch": self._launch,
                    "argv": redactor.argv(command_argv()),
                    "cwd": os.getcwd(),
                },
                hidden,
            ),
            code_dir=Path(code_file).parent if code_file else None,
            git_state=self._git,
            secrets=hidden,
            redact=self.redact,
            resumable=resumable,
            volatile=volatile,
        )
        pending = _take_claim()
        if pending is not None:  # the run is tracked from now on
            pending.release()
        self._chain_submitit_signal(self._exp, hc)
        # A job that returns reaches on_job_end; one still open when the
        # process exits left by an exception Hydra does not catch.
        self._exp.default_end = (
            layout.ERROR,
            "the job exited before returning (SystemExit raised)",
        )

    def _chain_submitit_signal(self, exp: Experiment, hc: HydraConf) -> None:
        """Under submitit, SLURM's signal before the time limit (or at a
        preemption) goes to submitit's handler, which requeues the job and
        exits, or raises UncompletedJobError when it won't (the timeouts
        allowed are used up): the run then ends REQUEUED or TIMEOUT, not as
        the exit code or the error."""
        if threading.current_thread() is not threading.main_thread():
            return
        found = _submitit_handler()
        if found is None:
            return
        signum, handler, owner = found
        job = os.environ.get("SLURM_JOB_ID", "?")
        launcher = hc.launcher
        limit = launcher.get("timeout_min") if isinstance(launcher, DictConfig) else None
        name = signal.Signals(signum).name

        def on_signal(sig: int, frame: Any) -> None:
            timed_out = bool(owner.has_timed_out())
            what = (
                f"SLURM job {job} reached its time limit ({limit} min)"
                if timed_out
                else f"SLURM job {job} was preempted"
            )
            try:
                handler(sig, frame)
            except SystemExit:  # requeued (scontrol requeue): it exits to run again
                exp.finish(layout.REQUEUED, f"{name}: {what}; submitit requeued it")
                raise
            except Exception as e:
                status = layout.TIMEOUT if timed_out else layout.INTERRUPTED
                exp.finish(status, f"{name}: {what}; not requeued: {e}")
                raise

        signal.signal(signum, on_signal)
        self._signal_chain = (signum, handler, on_signal)

    def _unchain_signal(self) -> None:
        chain, self._signal_chain = self._signal_chain, None
        if chain is not None and signal.getsignal(chain[0]) is chain[2]:
            signal.signal(chain[0], chain[1])

    @_stops_the_run(None)
    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs: Any) -> None:
        self._unchain_signal()
        exp = self._exp  # ended here, or by the guard if this raises
        if exp is None or exp.norecord:
            self._exp = None
            if exp is not None:
                exp.finish()
            return
        if job_return.status == JobStatus.COMPLETED:
            self._record_return_value(exp, job_return.return_value)
            exp.finish(layout.SUCCESS)
        else:
            # the public return_value re-raises the error: read it as stored
            error = job_return._return_value
            if isinstance(error, BaseException):
                status, detail = status_from_exception(error)
            else:
                status, detail = layout.ERROR, repr(error)
            # Hydra reports a failed run on the terminal once the job is over:
            # its stdout/stderr files keep what the terminal shows. (A sweep
            # reports its first failure once the sweep is over: the sweep's.)
            until_exit = self._mode == "RUN" and _from_command_line()
            exp.finish(status, detail, output_until_exit=until_exit)
        self._exp = None
        if self._hydra_files_ours:
            self._redact_pickles(config, job_return)

    def _end_failed_job(self, detail: str) -> None:
        """End the job's record as ERROR: its run, or the folder claimed
        for it before the run could start (Hydra's output may be there)."""
        exp, self._exp = self._exp, None
        pending = _take_claim()
        if exp is not None and not exp.norecord and not exp.finished:
            exp.finish(layout.ERROR, detail)
        if pending is not None:
            pending.finish(layout.ERROR, detail)

    def _redact_pickles(self, config: DictConfig, job_return: JobReturn) -> None:
        """Hydra's PickleJobInfoCallback pickles the config and the JobReturn
        into the folder, in its own hooks, before or after ours."""
        callbacks = _callbacks(config)
        if not any(
            isinstance(p, dict) and str(p.get("_target_", "")).endswith(_PICKLE_CALLBACK)
            for p in callbacks.values()
        ):
            return
        redactor = Redactor(self.redact)
        redact_hydra_files(HydraConfig.get(), redactor, self._hidden)
        # a JobReturn not pickled yet is pickled by that callback after us
        redact_job_return(job_return, config_cleaner(redactor, self._hidden))

    @staticmethod
    def _record_return_value(exp: Experiment, value: Any) -> None:
        if value is None:
            return
        if isinstance(value, (DictConfig, ListConfig)):
            value = OmegaConf.to_container(value, resolve=True)
        try:
            exp.summary(value if isinstance(value, dict) else {"return_value": value})
        except TypeError as e:  # NotSerializable: the rest of the run is recorded
            notice(f"experiment {exp.id}: the task's return value was not recorded: {e}")

    def _end_stale_run(self) -> None:
        """A job that left through SystemExit or KeyboardInterrupt skips
        on_job_end in Hydra 1.3; the next job in the same process ends it."""
        self._unchain_signal()
        exp, self._exp = self._exp, None
        if exp is not None and not exp.finished:
            exp.finish()

    def __repr__(self) -> str:
        return f"MeticulousCallback(root={self.root!r})"


def _submitit_handler() -> tuple[int, Callable[[int, Any], Any], Any] | None:
    """submitit's handler of its timeout/preemption signal (USR2, or USR1 as
    SUBMITIT_PREEMPT_SIGNAL may say), with the signal and the object it is a
    method of; None outside a submitit job."""
    for signum in (signal.SIGUSR2, signal.SIGUSR1):
        handler = signal.getsignal(signum)
        owner = getattr(handler, "__self__", None)
        if (
            callable(handler)
            and getattr(handler, "__name__", "") == "checkpoint_and_try_requeue"
            and type(owner).__module__.startswith("submitit")
        ):
            return signum, handler, owner
    return None


def _same_dir(a: str, b: str) -> bool:
    return os.path.realpath(a) == os.path.realpath(b)


def _writable_as_before(config: DictConfig, hc: HydraConf | None = None) -> None:
    """The recording switch made ``hydra.callbacks`` writable to declare the
    callback after a write-protected primary config (conf/__init__.py): Hydra's
    node is as write-protected as ever for the app (in its job, ``hc``)."""
    for hydra_node in (config.hydra, hc):
        callbacks = getattr(hydra_node, "callbacks", None)  # a DictConfig, typed as HydraConf
        if isinstance(callbacks, DictConfig):
            OmegaConf.set_readonly(callbacks, None)


_DYNAMIC = "<dynamic-code>"


def _restore_file_names(function: Any, filename: str | None) -> None:
    """Give back the file name that cloudpickle drops from the code of a
    ``__main__`` task sent to a worker (joblib, Ray): its tracebacks then show
    the app's file and line, and its code dir is the app's."""
    code = getattr(function, "__code__", None)
    if filename is None or code is None or code.co_filename != _DYNAMIC:
        return
    functions = [function]
    functions += [
        f
        for f in getattr(function, "__globals__", {}).values()
        if getattr(getattr(f, "__code__", None), "co_filename", None) == _DYNAMIC
    ]
    for f in functions:
        f.__code__ = _renamed(f.__code__, filename)


def _renamed(code: Any, filename: str) -> Any:
    consts = tuple(
        _renamed(c, filename) if hasattr(c, "co_filename") else c for c in code.co_consts
    )
    return code.replace(co_filename=filename, co_consts=consts)


__all__ = ["MeticulousCallback", "job_dir"]
