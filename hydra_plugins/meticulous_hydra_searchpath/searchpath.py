"""Makes `hydra/callbacks=meticulous` and `+meticulous=on` available to every Hydra app."""

from hydra.core.config_search_path import ConfigSearchPath
from hydra.plugins.search_path_plugin import SearchPathPlugin


class MeticulousSearchPathPlugin(SearchPathPlugin):
    def manipulate_search_path(self, search_path: ConfigSearchPath) -> None:
        # Hydra copies the ConfigStore into every composition it starts: the
        # one config of ours that is not a file goes in before the first.
        from meticulous_hydra.conf import store_configs

        store_configs()
        search_path.append(provider="meticulous-hydra", path="pkg://meticulous_hydra.conf")
