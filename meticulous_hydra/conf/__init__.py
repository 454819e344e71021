"""The configs that switch recording on, found by Hydra through the search-path
plugin (hydra_plugins/meticulous_hydra_searchpath): ``hydra/callbacks/meticulous``
declares the callback, ``meticulous/on`` (``+meticulous=on`` on the command line)
and ``meticulous/enabled`` (``- meticulous: enabled`` in a defaults list, where
YAML reads ``on`` as a boolean) add it next to the app's own callbacks, through
``hydra/meticulous/enabled``, the same switch under Hydra's own node (the spelling
sweep jobs are composed with, so that it is in none of the app's overrides).

The switch is merged after the app's primary config, which may be write-protected
(a frozen dataclass): one config that YAML can't write, a ``hydra.callbacks`` node
flagged writable, goes first so that the declaration can be added. It lives in
Hydra's ConfigStore, put there by the search-path plugin before Hydra composes
anything (each composition works on a copy of the ConfigStore as it was then).
"""

from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf

WRITABLE_CALLBACKS = "hydra/meticulous/writable_callbacks"


def store_configs() -> None:
    """Put the config YAML can't write into Hydra's ConfigStore."""
    # OmegaConf's merge puts a node's explicit flags onto the node merged into:
    # an empty, explicitly writable hydra.callbacks undoes the read-only flag a
    # frozen primary config puts on the whole tree, for hydra.callbacks alone.
    writable = DictConfig({}, flags={"readonly": False})
    group, _, name = WRITABLE_CALLBACKS.rpartition("/")
    ConfigStore.instance().store(
        group=group,
        name=name,
        node=OmegaConf.create({"hydra": {"callbacks": writable}}),
        package="_global_",
        provider="meticulous-hydra",
    )
