"""A plugin written the way the plugin guide shows: cache, venv and dep types, plugin config."""

from typing import ClassVar

import qik.conf
import qik.unset


class FolderConf(qik.conf.Cache, frozen=True, tag="folder"):
    path: str


qik.conf.register_type(FolderConf, "folderplug.cache.factory")


class FakeVenvConf(qik.conf.Venv, frozen=True, tag="fakevenv"):
    marker: str | qik.unset.UnsetType = qik.unset.UNSET
    install_cmd: ClassVar[str] = "folderplug.setup"


qik.conf.register_type(FakeVenvConf, "folderplug.venv.factory")


class ListingDepConf(qik.conf.Dep, tag="listing", frozen=True):
    pattern: str


qik.conf.register_type(ListingDepConf, "folderplug.dep.factory")


class FolderPluginConf(qik.conf.PluginConf, frozen=True, dict=True, tag="folderplug"):
    greeting: str = "hello"
    listing_cache: str | qik.unset.UnsetType = qik.unset.UNSET


qik.conf.register_conf(FolderPluginConf)
