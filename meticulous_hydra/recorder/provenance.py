"""What reproducing a run needs beyond its config and commit: the installed
packages (``packages.txt``), a hash of the config, and the links a reproduced
or re-run run keeps to the run it repeats.

The package list is read from the names of the ``*.dist-info`` / ``*.egg-info``
folders on ``sys.path``, which is what ``pip freeze`` lists, without importing
``importlib.metadata`` (~25 ms) or parsing every METADATA file (~8 ms more):
one ``scandir`` per path entry, about 0.3 ms. It is read once per process, and a
Hydra sweep reads it once in the launching process and hands it to its jobs.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from meticulous_hydra import layout

# Set by `meticulous reproduce` / `meticulous rerun` for the run they start;
# read once, when that run's Experiment starts.
ENV_ROOT = "METICULOUS_HYDRA_ROOT"
ENV_REPRODUCES = "METICULOUS_HYDRA_REPRODUCES"
ENV_RERUN_OF = "METICULOUS_HYDRA_RERUN_OF"
ENV_SWEEP = "METICULOUS_HYDRA_SWEEP"

_packages: list[str] | None = None
_NORMALIZE = re.compile(r"[-_.]+")


def normalize(name: str) -> str:
    """A distribution name as PEP 503 compares them: ``PyYAML`` -> ``pyyaml``."""
    return _NORMALIZE.sub("-", name).lower()


def _egg_version(path: str) -> str | None:
    """The Version header of an egg-info (a folder with PKG-INFO, or the file itself)."""
    info = os.path.join(path, "PKG-INFO") if os.path.isdir(path) else path
    try:
        with open(info, encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("Version:"):
                    return line.split(":", 1)[1].strip()
                if not line.strip():
                    break  # the headers end at the first blank line
    except OSError:
        pass
    return None


def read_packages(paths: Iterable[str]) -> list[str]:
    """``name==version`` of the distributions installed in ``paths`` (sys.path
    entries), sorted, by their metadata folders' names."""
    found: dict[str, str] = {}
    for entry in paths:
        try:
            listing = os.scandir(entry or ".")
        except OSError:
            continue
        with listing:
            for item in listing:
                name = item.name
                if name.endswith(".dist-info"):
                    # wheel spec: {name}-{version}.dist-info, '-' escaped in both
                    dist, _, version = name[: -len(".dist-info")].partition("-")
                elif name.endswith(".egg-info"):
                    parts = name[: -len(".egg-info")].split("-")
                    dist = parts[0]
                    version = parts[1] if len(parts) > 1 else _egg_version(item.path) or ""
                else:
                    continue
                if dist and version:
                    # the first one on sys.path is the one imported
                    found.setdefault(normalize(dist), version)
    return sorted(f"{name}=={version}" for name, version in found.items())


def installed_packages() -> list[str]:
    """``name==version`` of every distribution on ``sys.path``, sorted; read
    once per process (or handed over by :func:`use_packages`)."""
    global _packages
    if _packages is None:
        _packages = read_packages(sys.path)
    return list(_packages)


def use_packages(packages: list[str] | None) -> None:
    """Take the list read by the launching process (a sweep's jobs)."""
    global _packages
    if packages is not None:
        _packages = list(packages)


def parse_packages(lines: Iterable[str]) -> dict[str, str]:
    """``name==version`` lines as {normalized name: version}."""
    out = {}
    for line in lines:
        name, sep, version = line.strip().partition("==")
        if sep:
            out[normalize(name)] = version
    return out


def read_packages_file(path: Path) -> dict[str, str] | None:
    """A run's ``packages.txt`` parsed; None when the run has none."""
    try:
        return parse_packages(path.read_text(encoding="utf-8").splitlines())
    except FileNotFoundError:
        return None


def config_hash(config: Mapping[str, Any]) -> str:
    """``sha256:<hex>`` of the canonical JSON of a resolved config (keys sorted,
    no spaces), so that runs with identical configs can be found."""
    text = json.dumps(config, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


def root_override(root: str | os.PathLike[str]) -> str | os.PathLike[str]:
    """The root a reproduction or re-run records into (set by the verb), else ``root``."""
    return os.environ.get(ENV_ROOT) or root


def repeating() -> bool:
    """Whether this run repeats another (reproduce, rerun): it then takes a new
    number, never the folder of an ``experiment_id`` written in the program."""
    return bool(os.environ.get(ENV_REPRODUCES) or os.environ.get(ENV_RERUN_OF))


def start_metadata(config: Mapping[str, Any], description: str) -> dict[str, Any]:
    """The keys this module adds to metadata.json when a run starts."""
    out: dict[str, Any] = {"config_hash": config_hash(config)}
    reproduces = os.environ.get(ENV_REPRODUCES)
    rerun_of = os.environ.get(ENV_RERUN_OF)
    for key, value, says in (
        ("reproduces", reproduces, "reproduces run"),
        ("rerun_of", rerun_of, "re-run of run"),
    ):
        if value:
            out[key] = value
            out["description"] = f"{says} {value}" + (f": {description}" if description else "")
    sweep = os.environ.get(ENV_SWEEP)
    if sweep:
        try:
            out["sweep"] = json.loads(sweep)
        except ValueError:
            pass
    return out


# Interpolations whose value depends on when or where a run starts: a repeat
# of the run (a requeued job, a reproduction) may see other values.
VOLATILE = ("${now:", "${oc.env:")
_REFERENCE = re.compile(r"\$\{([A-Za-z_][\w.]*)\}")


def volatile_keys(raw: Mapping[str, Any]) -> frozenset[str]:
    """The dotted keys of an unresolved config (a Hydra config as written,
    interpolations as text) whose values come from ``${now:...}`` or
    ``${oc.env:...}``, directly or through ``${other.key}`` references."""
    texts: dict[str, str] = {}

    def walk(node: Any, prefix: str) -> None:
        if isinstance(node, Mapping):
            for k, v in node.items():
                walk(v, f"{prefix}.{k}" if prefix else str(k))
        else:
            texts[prefix] = node if isinstance(node, str) else json.dumps(node, default=str)

    walk(raw, "")
    found = {k for k, text in texts.items() if any(v in text for v in VOLATILE)}

    def reaches(ref: str) -> bool:  # the reference, a value under it, or the node it is in
        return any(k == ref or k.startswith(ref + ".") or ref.startswith(k + ".") for k in found)

    references = {k: _REFERENCE.findall(text) for k, text in texts.items() if "${" in text}
    grown = True
    while grown:
        new = {k for k, refs in references.items() if k not in found and any(map(reaches, refs))}
        found |= new
        grown = bool(new)
    return frozenset(found)


def write_packages(folder: Path) -> None:
    """Write ``packages.txt`` into a run folder."""
    layout.atomic_write_text(
        folder / layout.PACKAGES, "".join(p + "\n" for p in installed_packages())
    )
