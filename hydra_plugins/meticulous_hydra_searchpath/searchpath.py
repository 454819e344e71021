"""Makes `hydra/callbacks=meticulous` available to every Hydra app."""

from hydra.core.config_search_path import ConfigSearchPath
from hydra.plugins.search_path_plugin import SearchPathPlugin


class MeticulousSearchPathPlugin(SearchPathPlugin):
    def manipulate_search_path(self, search_path: ConfigSearchPath) -> None:
        search_path.append(provider="meticulous-hydra", path="pkg://meticulous_hydra.conf")
