"""The Hydra callback: every run and every sweep job recorded as ``experiments/N``.

RUN mode claims the folder in ``on_run_start`` and points ``hydra.run.dir`` at
it. MULTIRUN can only redirect each job from inside the job process, so
``on_multirun_start`` adds an override that makes ``hydra.sweep.subdir`` a
resolver call (``meticulous.job_dir``); Hydra evaluates it in the job, before
it creates the output dir, and the resolver claims the folder there.
"""

from __future__ import annotations

import logging
import secrets
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.core.utils import JobReturn, JobStatus
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from . import layout, provenance
from .environment import global_rank
from .experiment import Experiment
from .gitstate import read_git_state
from .hydra_config import hydra_metadata, redact_hydra_files, resolve_job_config
from .layout import RecordingError
from .redact import DEFAULT_PATTERNS, Redactor

RESOLVER = "meticulous.job_dir"
_FLAG = "hydra.callbacks.meticulous"


def job_dir(root: str, sweep_id: str, job_num: int) -> str:
    """Claim the folder of job ``job_num`` of sweep ``sweep_id`` (the resolver);
    a job that SLURM requeues finds its folder again (see
    :func:`layout.claim_sweep_folder`)."""
    return str(layout.claim_sweep_folder(layout.ensure_root(root), sweep_id, job_num))


def _register_resolver() -> None:
    OmegaConf.register_new_resolver(RESOLVER, job_dir, use_cache=True, replace=True)


def _fail(message: str) -> None:
    """Stop Hydra: it turns an Exception raised in a callback into a mere
    warning and runs the task unrecorded, but lets SystemExit through."""
    sys.stderr.write(f"meticulous-hydra: error: {message}\n")
    sys.stderr.flush()
    raise SystemExit(1)


def _user_set(config: DictConfig, key: str) -> bool:
    # raw strings: an override's value may itself be an interpolation
    overrides = OmegaConf.to_container(config.hydra.overrides.hydra, resolve=False)
    return any(str(o).lstrip("+").startswith(f"{key}=") for o in overrides)


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
        self._git: Any = None
        self._git_read = False
        self._sweep: dict[str, Any] | None = None
        self._packages: list[str] | None = None  # read once per sweep, for every job
        self._exp: Experiment | None = None

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_exp"] = None  # a live run never travels to another process
        return state

    @property
    def _off(self) -> bool:
        # Only global rank 0 of a distributed job records.
        return self.norecord or global_rank() != 0

    def _root(self, config: DictConfig) -> Path:
        root = Path(provenance.root_override(self.root)).expanduser()
        if not root.is_absolute():
            root = Path(config.hydra.runtime.cwd) / root
        return root

    def _read_git(self, config: DictConfig) -> None:
        try:
            self._git = read_git_state(
                Path(config.hydra.runtime.cwd),
                allow_dirty=self.allow_dirty,
                flag_hint=f"{_FLAG}.allow_dirty=true",
            )
        except RecordingError as e:
            _fail(str(e))
        self._git_read = True

    # -- launching process ---------------------------------------------------

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        if self._off:
            return
        self._read_git(config)
        if _user_set(config, "hydra.run.dir"):
            return  # recorded where the user asked, unnumbered
        try:
            folder, _ = layout.claim_folder(
                layout.ensure_root(self._root(config)), self.experiment_id
            )
        except RecordingError as e:
            _fail(str(e))
        config.hydra.run.dir = str(folder)

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        if self._off:
            return
        if self.experiment_id is not None:
            _fail(f"{_FLAG}.experiment_id names one folder; a sweep needs one per job: drop it")
        self._read_git(config)
        self._packages = provenance.installed_packages()
        sweep_id = f"{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(4)}"
        self._sweep = {"id": sweep_id, "dir": str(Path(str(config.hydra.sweep.dir)).absolute())}
        if _user_set(config, "hydra.sweep.subdir"):
            return
        try:
            root = layout.ensure_root(self._root(config))
        except RecordingError as e:
            _fail(str(e))
        if any(c in str(root) for c in "'\"\\$"):
            _fail(f"the experiments root {root} contains a quote, backslash or $: choose another")
        _register_resolver()
        subdir = f"${{{RESOLVER}:'{root}','{sweep_id}',${{hydra.job.num}}}}"
        # Jobs are composed again from hydra.overrides.hydra, so that is the
        # one way to reach their config from here.
        config.hydra.overrides.hydra.append(f'hydra.sweep.subdir="{subdir}"')
        config.hydra.sweep.subdir = subdir

    # -- job process -----------------------------------------------------------

    def on_job_start(self, config: DictConfig, *, task_function: Any = None, **kwargs: Any) -> None:
        self._end_stale_run()
        if self._off:
            self._exp = Experiment(norecord=True) if self.norecord else None
            return
        provenance.use_packages(self._packages)
        if not self._git_read:  # declared in a way that skipped the start hooks
            self._read_git(config)
        hc = HydraConfig.get()
        resolved, missing = resolve_job_config(config)
        redactor = Redactor(self.redact)
        hydra_meta = hydra_metadata(config, hc, redactor)
        redact_hydra_files(hc, redactor, resolved)
        job_num = hydra_meta["job_num"]
        sweep = dict(self._sweep, job_num=job_num) if self._sweep else None
        code_file = getattr(getattr(task_function, "__code__", None), "co_filename", None)
        try:
            self._exp = Experiment._for_adapter(
                resolved,
                folder=hc.runtime.output_dir,
                description=self.description,
                capture_output=self.capture_output,
                overrides=hydra_meta["overrides"],
                metadata={
                    "adapter": "hydra",
                    "hydra": hydra_meta,
                    "sweep": sweep,
                    "missing": missing,
                },
                code_dir=Path(code_file).parent if code_file else None,
                git_state=self._git,
                redact=self.redact,
            )
        except RecordingError as e:
            _fail(str(e))
        # A job that returns reaches on_job_end; one still open when the
        # process exits left by an exception Hydra does not catch.
        self._exp.default_end = (
            layout.ERROR,
            "the job exited before returning (SystemExit raised)",
        )

    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs: Any) -> None:
        exp, self._exp = self._exp, None
        if exp is None or exp.norecord:
            if exp is not None:
                exp.finish()
            return
        if job_return.status == JobStatus.COMPLETED:
            self._record_return_value(exp, job_return._return_value)
            exp.finish(layout.SUCCESS)
        else:
            error = job_return._return_value
            if isinstance(error, BaseException):
                exp.finish_from_exception(error)
            else:
                exp.finish(layout.ERROR, repr(error))

    @staticmethod
    def _record_return_value(exp: Experiment, value: Any) -> None:
        if value is None:
            return
        try:
            exp.summary(value if isinstance(value, dict) else {"return_value": value})
        except TypeError as e:
            logging.getLogger("meticulous_hydra").warning(
                "experiment %s: the task's return value was not recorded: %s", exp.id, e
            )

    def _end_stale_run(self) -> None:
        """A job that left through SystemExit or KeyboardInterrupt skips
        on_job_end in Hydra 1.3; the next job in the same process ends it."""
        exp, self._exp = self._exp, None
        if exp is not None and not exp.finished:
            exp.finish()

    def __repr__(self) -> str:
        return f"MeticulousCallback(root={self.root!r})"


__all__ = ["MeticulousCallback", "job_dir"]
