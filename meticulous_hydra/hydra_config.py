"""What is recorded of a Hydra job: its fully resolved config, the Hydra block
of metadata.json, and Hydra's own files in the folder, kept free of secrets."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from .layout import atomic_write_text, to_jsonable
from .redact import Redactor

MISSING = "???"


def _walk(node: Any, prefix: str, missing: list[str]) -> Any:
    """Resolve leaf by leaf, writing ``???`` for what can't be resolved."""
    if isinstance(node, DictConfig):
        if node._is_missing() or node._is_none():
            return None if node._is_none() else _missing(prefix, missing)
        keys = list(node.keys())
        return {k: _child(node, k, f"{prefix}.{k}" if prefix else str(k), missing) for k in keys}
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
    return to_jsonable(value, strict=False)


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
                out[str(key)] = to_jsonable(value, strict=False)
                continue
            except Exception:
                pass
            out[str(key)] = _walk(node, str(key), missing)
        else:
            out[str(key)] = _child(config, key, str(key), missing)
    return out, missing


def _raw(node: Any) -> list[str]:
    # override values may be interpolations themselves: never resolve them
    return [str(o) for o in OmegaConf.to_container(node, resolve=False)]


def hydra_metadata(config: DictConfig, hc: DictConfig, redactor: Redactor) -> dict[str, Any]:
    """The ``hydra`` block of metadata.json for the running job."""
    given = _raw(hc.overrides.task)
    shown = redactor.overrides(given)
    override_dirname = hc.job.override_dirname
    for original, redacted in zip(given, shown, strict=True):
        override_dirname = override_dirname.replace(original, redacted)
    choices = OmegaConf.to_container(hc.runtime.choices)
    return {
        "mode": str(getattr(hc.mode, "name", hc.mode)),
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
    }


def redact_hydra_files(hc: DictConfig, redactor: Redactor, resolved: dict[str, Any]) -> None:
    """Hide secrets in the copies Hydra wrote to ``.hydra/`` before the job
    started: its config, its overrides, and the job part of hydra.yaml.
    ``resolved`` (the job config) tells whether the config has any."""
    if hc.output_subdir is None or not redactor.patterns:
        return
    folder = Path(hc.runtime.output_dir) / str(hc.output_subdir)
    given = _raw(hc.overrides.task)
    shown = redactor.overrides(given)
    if given != shown:
        _rewrite(folder / "overrides.yaml", lambda _: shown)
        _rewrite(folder / "hydra.yaml", lambda cfg: _redact_hydra_yaml(cfg, given, shown))
    found: list[str] = []
    redactor.tree(resolved, found=found)
    if found:
        _rewrite(folder / "config.yaml", lambda cfg: redactor.tree(cfg))


def _redact_hydra_yaml(cfg: dict, given: list[str], shown: list[str]) -> dict:
    job = cfg.get("hydra", {})
    if isinstance(job.get("overrides"), dict):
        job["overrides"]["task"] = shown
    dirname = job.get("job", {}).get("override_dirname")
    if isinstance(dirname, str):
        for original, redacted in zip(given, shown, strict=True):
            dirname = dirname.replace(original, redacted)
        job["job"]["override_dirname"] = dirname
    return cfg


def _rewrite(path: Path, change: Any) -> None:
    """Load a YAML file Hydra wrote, apply ``change``, and write it back if it changed."""
    if not path.exists():
        return
    before = OmegaConf.to_container(OmegaConf.load(path), resolve=False)
    after = change(copy.deepcopy(before))
    if after != before:
        atomic_write_text(path, OmegaConf.to_yaml(OmegaConf.create(after)))
