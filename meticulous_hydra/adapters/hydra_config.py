"""What is recorded of a Hydra job: its fully resolved config, the Hydra block
of metadata.json, and Hydra's own files in the folder, kept free of secrets."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from omegaconf import DictConfig, ListConfig, OmegaConf, open_dict, read_write
from omegaconf.errors import OmegaConfBaseException, ValidationError

from meticulous_hydra.layout import atomic_write_bytes, atomic_write_text, to_jsonable
from meticulous_hydra.recorder.redact import MISSING, Redactor

if TYPE_CHECKING:
    # what HydraConfig.get() is typed as; at run time a DictConfig of that shape
    from hydra.conf import HydraConf


def _walk(node: Any, prefix: str, missing: list[str]) -> Any:
    """Resolve leaf by leaf, writing ``???`` for what can't be resolved."""
    if isinstance(node, DictConfig):
        if node._is_missing() or node._is_none():
            return None if node._is_none() else _missing(prefix, missing)
        keys = list(node.keys())
        return {k: _child(node, k, f"{prefix}.{k!s}" if prefix else str(k), missing) for k in keys}
    if isinstance(node, ListConfig):
        if node._is_missing() or node._is_none():
            return None if node._is_none() else _missing(prefix, missing)
        return [_child(node, i, f"{prefix}[{i}]", missing) for i in range(len(node))]
    return node


def _missing(key: str, missing: list[str]) -> str:
    missing.append(key)
    return MISSING


def _child(parent: DictConfig | ListConfig, key: Any, dotted: str, missing: list[str]) -> Any:
    try:
        if OmegaConf.is_missing(parent, key):
            return _missing(dotted, missing)
        value = parent[key]
    except OmegaConfBaseException:
        return _missing(dotted, missing)
    except Exception:  # a custom resolver that raised
        return _missing(dotted, missing)
    if isinstance(value, (DictConfig, ListConfig)):
        return _walk(value, dotted, missing)
    return to_jsonable(value, strict=False, floats=True)


def resolve_job_config(config: DictConfig) -> tuple[dict[str, Any], list[str]]:
    """The job config without ``hydra``, every interpolation resolved.

    Each top-level key is resolved against the full config (so ``${hydra:...}``
    and ``${hydra.x}`` work) and ``hydra`` itself is never touched. Values that
    can't be resolved become ``???`` and their dotted keys are returned.
    """
    out: dict[str, Any] = {}
    missing: list[str] = []
    for key in config:
        if key == "hydra":
            continue
        node = config._get_node(key)
        if isinstance(node, (DictConfig, ListConfig)):
            try:
                if OmegaConf.missing_keys(node):
                    raise ValueError("has ??? values: resolve leaf by leaf")
                value = OmegaConf.to_container(node, resolve=True, enum_to_str=True)
                out[str(key)] = to_jsonable(value, strict=False, floats=True)
                continue
            except Exception:
                pass
            out[str(key)] = _walk(node, str(key), missing)
        else:
            out[str(key)] = _child(config, key, str(key), missing)
    return out, missing


def raw_strings(node: Any) -> list[str]:
    """A list node's items as strings, unresolved: override values may be
    interpolations themselves."""
    return [str(o) for o in cast("list[Any]", OmegaConf.to_container(node, resolve=False))]


def hydra_metadata(
    config: DictConfig, hc: HydraConf, redactor: Redactor, secrets: set[str], mode: str | None
) -> dict[str, Any]:
    """The ``hydra`` block of metadata.json for the running job. ``mode`` is
    the hook that started it (``RUN``/``MULTIRUN``) when Hydra's own is unset,
    as under hydra-zen's ``launch()``."""
    given = raw_strings(hc.overrides.task)
    shown = redactor.overrides(given)
    # raw: an override's interpolation would be resolved on access
    job = cast("dict[str, Any]", OmegaConf.to_container(hc.job, resolve=False))
    override_dirname = str(job["override_dirname"])
    for original, redacted in zip(given, shown, strict=True):
        override_dirname = override_dirname.replace(original, redacted)
    choices = cast("dict[str, Any]", OmegaConf.to_container(hc.runtime.choices))
    hydra_mode = getattr(hc.mode, "name", None)
    return redactor.scrub(
        {
            "mode": hydra_mode or mode,
            "job_name": hc.job.name,
            "job_num": OmegaConf.select(config, "hydra.job.num", default=None),
            "job_id": OmegaConf.select(config, "hydra.job.id", default=None),
            "override_dirname": override_dirname,
            "overrides": shown,
            "choices": {k: v for k, v in choices.items() if not k.startswith("hydra/")},
            "launcher": choices.get("hydra/launcher"),
            "sweeper": choices.get("hydra/sweeper"),
            "config_name": hc.job.config_name,
            "output_dir": hc.runtime.output_dir,
        },
        secrets,
    )


def redact_hydra_files(hc: HydraConf, redactor: Redactor, secrets: set[str]) -> None:
    """Hide secrets in the copies Hydra wrote to ``.hydra/`` before the job
    started (its config, its overrides, hydra.yaml) and in the pickles of
    Hydra's ``PickleJobInfoCallback``, whichever exist now."""
    if hc.output_subdir is None or not redactor.patterns:
        return
    folder = Path(hc.runtime.output_dir) / str(hc.output_subdir)
    clean_config = config_cleaner(redactor, secrets)

    def rewrite(path: Path, change: Callable[[Any], Any]) -> None:
        """Load a YAML file Hydra wrote, apply ``change``, and write it back
        if it changed; a file with nothing to hide is not even parsed
        (OmegaConf.load takes ~12 ms a file: most of a job's overhead)."""
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return
        if not redactor.may_apply(text, secrets):
            return
        before = OmegaConf.to_container(OmegaConf.create(text), resolve=False)
        after = change(copy.deepcopy(before))
        if after != before:
            atomic_write_text(path, OmegaConf.to_yaml(OmegaConf.create(after)))

    rewrite(folder / "overrides.yaml", lambda items: redactor.overrides([str(i) for i in items]))
    rewrite(folder / "hydra.yaml", clean_config)
    rewrite(folder / "config.yaml", clean_config)
    _rewrite_pickle(folder / "config.pickle", lambda cfg: _clean_dictconfig(cfg, clean_config))
    _rewrite_pickle(folder / "job_return.pickle", lambda ret: redact_job_return(ret, clean_config))


def config_cleaner(redactor: Redactor, secrets: set[str]) -> Callable[[Any], Any]:
    """A function that hides the secrets of a plain config tree, Hydra's
    override lists in it included."""

    def clean(cfg: Any) -> Any:
        cfg = redactor.scrub(redactor.tree(cfg), secrets)
        overrides = cfg.get("hydra", {}).get("overrides") if isinstance(cfg, dict) else None
        if isinstance(overrides, dict):
            for name, items in overrides.items():
                if isinstance(items, list):
                    overrides[name] = redactor.overrides([str(i) for i in items])
        return cfg

    return clean


def _clean_dictconfig(cfg: Any, clean: Callable[[Any], Any]) -> bool:
    """Hide the secrets of a DictConfig in place, leaf by leaf, so that every
    node keeps its type and flags (Hydra's rerun wants the ``hydra`` node a
    ``HydraConf``). Returns whether anything changed."""
    if not isinstance(cfg, DictConfig):
        return False
    before = OmegaConf.to_container(cfg, resolve=False)
    after = clean(copy.deepcopy(before))
    if after == before:
        return False
    _apply(cfg, before, after)
    return True


def _apply(node: DictConfig | ListConfig, before: Any, after: Any) -> None:
    """Set in ``node`` the leaves where ``after`` differs from ``before``
    (plain trees of the same shape: redaction changes values, never keys)."""
    keys = before.keys() if isinstance(before, dict) else range(len(before))
    for key in keys:
        old, new = before[key], after[key]
        if old == new:
            continue
        child = node._get_node(key)
        if _same_shape(old, new) and isinstance(child, (DictConfig, ListConfig)):
            _apply(child, old, new)
            continue
        with read_write(node), open_dict(node):
            try:
                node[key] = new
            except ValidationError:
                # a typed node (an int) can't say <redacted>: the value is
                # then missing, which every type can be
                node[key] = MISSING


def _same_shape(old: Any, new: Any) -> bool:
    """Two containers with the same keys (the same length, for lists)."""
    if isinstance(old, dict) and isinstance(new, dict):
        return old.keys() == new.keys()
    return isinstance(old, list) and isinstance(new, list) and len(old) == len(new)


def redact_job_return(job_return: Any, clean: Callable[[Any], Any]) -> bool:
    """The config parts of a JobReturn, redacted in place (its return value
    is the task's and stays). Returns whether anything changed."""
    changed = False
    for name in ("cfg", "hydra_cfg"):
        changed |= _clean_dictconfig(getattr(job_return, name, None), clean)
    overrides = getattr(job_return, "overrides", None)
    if isinstance(overrides, list):
        shown = clean({"hydra": {"overrides": {"task": overrides}}})["hydra"]["overrides"]["task"]
        changed |= shown != overrides
        job_return.overrides = shown
    working_dir = getattr(job_return, "working_dir", None)
    if isinstance(working_dir, str):
        shown = clean({"w": working_dir})["w"]
        changed |= shown != working_dir
        job_return.working_dir = shown
    return changed


def _rewrite_pickle(path: Path, clean: Callable[[Any], bool]) -> None:
    """The same for a pickle that Hydra's PickleJobInfoCallback wrote into
    the experiment folder (ours: the job wrote it a moment ago): ``clean``
    changes the object in place, and the file is rewritten only if it did."""
    if not path.exists():
        return
    import pickle  # only with Hydra's PickleJobInfoCallback on

    with open(path, "rb") as f:
        value = pickle.load(f)
    if clean(value):
        atomic_write_bytes(path, pickle.dumps(value, protocol=4))
