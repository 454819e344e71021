"""What Hydra's composition of a run says, read where it was made: whether
the app set one of Hydra's output dirs (:func:`set_by_app`), and the recording
switch taken out of the overrides the app sees (:func:`take_switch`).

Hydra keeps no record of which config set a value, and the value alone can't
tell: the lightning-hydra-template sets ``hydra.sweep.subdir: ${hydra.job.num}``,
Hydra's own default. So :func:`set_by_app` looks where a value can come from:
the command line, then every config of the app's defaults tree (its primary
config and all it includes, with each swept group's options), then the
configs chosen for Hydra's own groups (``hydra/output``, ``hydra/env``, ...)
that are not Hydra's. It reads them through Hydra's own defaults-list code
(internal to Hydra 1.3; this project pins hydra-core below 1.4).
"""

from __future__ import annotations

from typing import Any, cast

from hydra._internal.config_repository import CachingConfigRepository, ConfigRepository
from hydra._internal.config_search_path_impl import ConfigSearchPathImpl
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Glob, Override
from omegaconf import DictConfig, OmegaConf

from meticulous_hydra import layout

from .hydra_config import raw_strings

# Hydra's own values (hydra/conf/hydra/output/default.yaml): any other value
# was set by someone else, without looking further.
HYDRA_DEFAULTS = {
    "hydra.run.dir": "outputs/${now:%Y-%m-%d}/${now:%H-%M-%S}",
    "hydra.sweep.subdir": "${hydra.job.num}",
}
# Config sources whose configs are not the app's: Hydra's and ours.
_NOT_THE_APPS = frozenset({"hydra", "meticulous-hydra"})
# The recording switch's groups.
_SWITCH_GROUPS = frozenset({layout.OPT_IN_GROUP, f"hydra/{layout.OPT_IN_GROUP}"})
# What sweep jobs are composed with in place of ``+meticulous=on``: the same
# switch (conf/hydra/meticulous/enabled.yaml), a Hydra override.
JOB_SWITCH = "+hydra/meticulous=enabled"


def take_switch(config: DictConfig) -> list[str]:
    """Take the recording switch (``+meticulous=on``, ``meticulous=enabled``)
    out of the task overrides the app sees, ``hydra.job.override_dirname``
    (and so out of ``.hydra/overrides.yaml`` and the dirs named after them);
    return it as given. A switch that added the group becomes
    :data:`JOB_SWITCH` among Hydra's overrides, which sweep jobs are composed
    from. ``config`` is the composed config of the launching process, before
    anything has read it."""
    given = raw_strings(config.hydra.overrides.task)
    parsed = OverridesParser.create().parse_overrides(given)
    switch = [o for o in parsed if o.key_or_group == layout.OPT_IN_GROUP]
    if not switch:
        return []
    kept = [o for o in parsed if o.key_or_group != layout.OPT_IN_GROUP]
    config.hydra.overrides.task = [o.input_line for o in kept]
    if any(o.is_add() for o in switch) and JOB_SWITCH not in raw_strings(
        config.hydra.overrides.hydra
    ):
        config.hydra.overrides.hydra.append(JOB_SWITCH)
    # Hydra's own function, for the very same name (a key excluded, separators)
    from hydra._internal.config_loader_impl import get_overrides_dirname

    naming = config.hydra.job.config.override_dirname
    config.hydra.job.override_dirname = get_overrides_dirname(
        overrides=kept,
        exclude_keys=list(naming.exclude_keys),
        item_sep=naming.item_sep,
        kv_sep=naming.kv_sep,
    )
    return [str(o.input_line) for o in switch]


def _sets(config: Any, package: str, key: str) -> bool:
    """Whether ``config``, merged at ``package``, sets the dotted ``key``."""
    if package:
        if not key.startswith(package + "."):
            return False
        key = key[len(package) + 1 :]
    node = OmegaConf.to_container(config, resolve=False) if OmegaConf.is_config(config) else config
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return node != "???"


def _given(overrides: list[str], key: str) -> bool:
    """Whether a command-line override sets ``key`` or a node above it."""
    for override in overrides:
        name = override.split("=", 1)[0].lstrip("+~")
        if key == name or key.startswith(name + "."):
            return True
    return False


def _option_package(result: Any, group: str, package: str | None) -> str:
    """The package a group option is merged at (Hydra's rule: the override's
    ``@package``, else the config's header, else the group's path)."""
    chosen = str(package or (result.header or {}).get("package") or "_group_")
    chosen = chosen.replace("_group_", group.replace("/", "."))
    return "" if chosen == "_global_" else chosen.removeprefix("_global_.")


def set_by_app(config: DictConfig, key: str, config_name: str | None, multirun: bool) -> bool:
    """Whether Hydra's output-dir setting ``key`` was set by the app (its
    configs or its command line), even to Hydra's default value; then it is
    the app's. ``config`` is the composed config of the launching process."""
    parent, _, leaf = key.rpartition(".")
    # hydra.run / hydra.sweep: always in a Hydra config
    node = cast(
        "dict[str, Any]", OmegaConf.to_container(OmegaConf.select(config, parent), resolve=False)
    )
    value = node.get(leaf)
    if value != HYDRA_DEFAULTS[key]:
        return True
    hydra_overrides = raw_strings(config.hydra.overrides.hydra)
    if _given(hydra_overrides, key):
        return True
    return _set_in_configs(config, key, config_name, hydra_overrides, multirun)


def _set_in_configs(
    config: DictConfig,
    key: str,
    config_name: str | None,
    hydra_overrides: list[str],
    multirun: bool,
) -> bool:
    repo = _repository(config)
    parsed = [
        o
        for o in OverridesParser.create().parse_overrides(
            [*hydra_overrides, *raw_strings(config.hydra.overrides.task)]
        )
        if o.key_or_group.partition("@")[0] not in _SWITCH_GROUPS  # ours: nothing to read
    ]
    # The app's own tree: its primary config and everything it includes. Hydra's
    # tree (hydra/config) is left out: its overrides of Hydra's groups are then
    # unused, which only create_defaults_list would check.
    from hydra._internal.defaults_list import Overrides, _create_defaults_list

    defaults, _ = _create_defaults_list(
        repo, config_name, Overrides(repo, parsed), prepend_hydra=False, skip_missing=multirun
    )
    for default in defaults:
        result = repo.load_config(default.config_path) if default.config_path else None
        if result is None or result.provider in _NOT_THE_APPS:
            continue
        if _sets(result.config, default.package or "", key):
            return True
    # Each option of a swept group: a job composed with it may set the key.
    options: list[tuple[str, str, str | None]] = []
    for override in parsed:
        if override.is_sweep_override() and repo.group_exists(override.key_or_group):
            group = override.key_or_group
            options += [(group, o, override.package) for o in _swept(override, repo, group)]
    # The options chosen for Hydra's own groups that are not Hydra's.
    choices = cast(
        "dict[str, Any]", OmegaConf.to_container(config.hydra.runtime.choices, resolve=False)
    )
    for choice_key, chosen in choices.items():
        hydra_group, _, at = str(choice_key).partition("@")
        if hydra_group.startswith("hydra/") and chosen is not None:
            for name in chosen if isinstance(chosen, list) else [chosen]:
                options.append((hydra_group, str(name), at or None))
    for group, name, package in options:
        path = f"{group}/{name}"
        source = next((s for s in repo.get_sources() if s.is_config(path)), None)
        if source is None or source.provider in _NOT_THE_APPS:
            continue
        result = repo.load_config(path)
        if result is None or result.provider in _NOT_THE_APPS:
            continue
        if _sets(result.config, _option_package(result, group, package), key):
            return True
    return False


class _Repository(CachingConfigRepository):
    """A caching config repository over a repository of our own: Hydra's own
    copies its delegate first (the whole ConfigStore with it: half the time
    all this took), for a repository it shares."""

    def __init__(self, delegate: ConfigRepository) -> None:
        self.delegate = delegate
        self.cache = {}


def _repository(config: DictConfig) -> _Repository:
    """Hydra's config repository over the config sources the run was composed
    from (its ``hydra.searchpath`` included)."""
    search_path = ConfigSearchPathImpl()
    for source in config.hydra.runtime.config_sources:
        search_path.append(provider=source.provider, path=f"{source.schema}://{source.path}")
    return _Repository(ConfigRepository(search_path))


def _swept(override: Override, repo: Any, group: str) -> list[str]:
    """The options a sweep override of a config group goes through."""
    value = override.value()
    if isinstance(value, Glob):
        return list(value.filter(repo.get_group_options(group)))
    return [str(v) for v in override.sweep_string_iterator()]
