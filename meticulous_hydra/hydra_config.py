"""Turn a Hydra job config into the plain, fully resolved dict that is recorded."""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from .layout import to_jsonable

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
