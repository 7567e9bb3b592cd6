"""The typed qik.toml: frozen msgspec Structs, and the plugin API to read them.

The bottom of qik's layers: configuration structs (their names end in ``Conf``) and the
type registry's functions, with no I/O of their own. Plugins (and the built-in types) call
:func:`register_type` with a tagged Struct and the dotted path of a factory; loading a
project (``qik.project``) imports the plugins, builds the session's registry and decodes
the file strictly. ``project()``, ``root()``, ``plugin()``, ... read the current session's
loaded project. The structs live in :mod:`qik.conf.structs` (the plugin bases and the
project's tables) and :mod:`qik.conf.types` (the built-in types); the accessors in
:mod:`qik.conf.access`.
"""

from __future__ import annotations

# The registry's functions are part of the plugin API, spelled qik.conf.*.
from qik.conf.access import (
    canonical_command,
    command,
    command_source,
    commands,
    ensure_priv_work_dir,
    location,
    module_locator,
    plugin,
    plugin_cmd_name,
    plugin_locator,
    priv_work_dir,
    project,
    pub_work_dir,
    pyimport,
    root,
    where,
)
from qik.conf.structs import (
    Base,
    BaseConf,
    BasePluggable,
    CacheConf,
    CacheStatus,
    CacheWhen,
    CmdConf,
    DefaultsConf,
    DepConf,
    Kind,
    ModuleLocator,
    PluginConf,
    PluginLocator,
    ProfileConf,
    ProjectConf,
    PydistConf,
    SpaceConf,
    SpaceLocator,
    SubProjectConf,
    VarConf,
    VarValue,
    VenvConf,
    plugin_pyimport,
)
from qik.conf.types import (
    ActiveVenvConf,
    CmdDepConf,
    ConstDepConf,
    GlobDepConf,
    LoadDepConf,
    LocalCacheConf,
    NoneCacheConf,
    PydistDepConf,
    RemoteCacheConf,
    RepoCacheConf,
    SpaceVenvConf,
    default_venv_type,
)
from qik.registry import Registered as Registered
from qik.registry import get_type_factory as get_type_factory
from qik.registry import owner_label as owner_label
from qik.registry import register_conf as register_conf
from qik.registry import register_type as register_type
from qik.registry import registered as registered
from qik.registry import registered_confs as registered_confs

# ---- the names of qik 0.3 and of the plugin guide ----

Dep = DepConf
Cache = CacheConf
Venv = VenvConf
Cmd = CmdConf
GlobDep = GlobDepConf
ConstDep = ConstDepConf
CmdDep = CmdDepConf
PydistDep = PydistDepConf
LoadDep = LoadDepConf
ActiveVenv = ActiveVenvConf
SpaceVenv = SpaceVenvConf
Var = VarConf
CtxProfile = ProfileConf
Space = SpaceConf
Pydist = PydistConf
Defaults = DefaultsConf
ModuleOrPlugin = SubProjectConf

__all__ = [
    "canonical_command",
    "command",
    "command_source",
    "commands",
    "ensure_priv_work_dir",
    "location",
    "module_locator",
    "plugin",
    "plugin_cmd_name",
    "plugin_locator",
    "priv_work_dir",
    "project",
    "pub_work_dir",
    "pyimport",
    "root",
    "where",
    "Base",
    "BaseConf",
    "BasePluggable",
    "CacheConf",
    "CacheStatus",
    "CacheWhen",
    "CmdConf",
    "DefaultsConf",
    "DepConf",
    "Kind",
    "ModuleLocator",
    "PluginConf",
    "PluginLocator",
    "ProfileConf",
    "ProjectConf",
    "PydistConf",
    "SpaceConf",
    "SpaceLocator",
    "SubProjectConf",
    "VarConf",
    "VarValue",
    "VenvConf",
    "plugin_pyimport",
    "ActiveVenvConf",
    "CmdDepConf",
    "ConstDepConf",
    "GlobDepConf",
    "LoadDepConf",
    "LocalCacheConf",
    "NoneCacheConf",
    "PydistDepConf",
    "RemoteCacheConf",
    "RepoCacheConf",
    "SpaceVenvConf",
    "default_venv_type",
    "Registered",
    "get_type_factory",
    "owner_label",
    "register_conf",
    "register_type",
    "registered",
    "registered_confs",
    "Dep",
    "Cache",
    "Venv",
    "Cmd",
    "GlobDep",
    "ConstDep",
    "CmdDep",
    "PydistDep",
    "LoadDep",
    "ActiveVenv",
    "SpaceVenv",
    "Var",
    "CtxProfile",
    "Space",
    "Pydist",
    "Defaults",
    "ModuleOrPlugin",
]
