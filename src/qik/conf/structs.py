"""The structs of qik.toml: frozen, strict, kebab-case; the plugin bases ``DepConf``,
``CacheConf``, ``VenvConf`` and ``PluginConf``; the project's own tables."""

from __future__ import annotations

import pathlib
from typing import Annotated, Any, ClassVar, Literal, TypeAlias

import msgspec

import qik.current
import qik.func
import qik.unset

CacheWhen: TypeAlias = Literal["success", "failed", "finished"]
CacheStatus: TypeAlias = Literal["warm", "cold"]
VarValue: TypeAlias = str | int | bool

Kind: TypeAlias = Literal["cache", "venv", "dep"]


def _doc(text: str) -> msgspec.Meta:
    return msgspec.Meta(description=text)


class Base(
    msgspec.Struct,
    frozen=True,
    forbid_unknown_fields=True,
    rename="kebab",
    omit_defaults=True,
    dict=True,
):
    """The base of every qik.toml table: frozen, strict, kebab-case keys."""


class BasePluggable(Base, frozen=True):
    """A struct whose ``type`` tag selects a registered implementation."""

    kind: ClassVar[Kind]


class DepConf(BasePluggable, frozen=True, tag_field="type"):
    """Base of dependency types (``{type = "...", ...}`` in ``deps``)."""

    kind: ClassVar[Kind] = "dep"


class CacheConf(BasePluggable, frozen=True, tag_field="type"):
    """Base of cache types (``[caches.NAME] type = "..."``)."""

    kind: ClassVar[Kind] = "cache"


class VenvConf(BasePluggable, frozen=True, tag_field="type", kw_only=True):
    """Base of virtualenv types (a space's ``venv``)."""

    kind: ClassVar[Kind] = "venv"
    install_cmd: ClassVar[str | None] = None
    reqs: Annotated[str | list[str], _doc("Requirements file(s) of the venv.")] = []
    lock: Annotated[str | None, _doc("Lock file; a dependency of every command.")] = None


class PluginConf(Base, frozen=True, tag_field="pyimport"):
    """Base of a plugin's own configuration under ``[plugins.NAME]``; tag = pyimport."""

    @property
    def pyimport(self) -> str:
        return str(self.__struct_config__.tag)


class PluginLocator(Base, frozen=True):
    """``[plugins.NAME]`` for a plugin that registers no configuration."""

    pyimport: str


# ---- the project tables ----


class CmdConf(Base, frozen=True):
    """A command (``[commands.NAME]``)."""

    exec: Annotated[str, _doc("Shell string, run from the project root.")] = ""
    deps: Annotated[list[Any], _doc("Globs and typed dependencies.")] = []
    artifacts: Annotated[list[str], _doc("Globs of files the command writes.")] = []
    cache: Annotated[str | qik.unset.UnsetType, _doc("Cache name.")] = qik.unset.UNSET
    cache_when: Annotated[
        CacheWhen | qik.unset.UnsetType, _doc("Which results to cache.")
    ] = qik.unset.UNSET
    factory: Annotated[str, _doc("Dotted path of a function returning runnables.")] = ""
    hidden: Annotated[bool, _doc("Only run when named or depended on.")] = False
    space: Annotated[str | qik.unset.UnsetType, _doc("Space it runs in.")] = qik.unset.UNSET
    tags: list[str] = []


class VarConf(Base, frozen=True):
    """A context variable, read from the environment variable of the same name."""

    name: str
    type: Literal["str", "int", "bool"] = "str"
    default: VarValue | qik.unset.UnsetType = qik.unset.UNSET
    required: bool = True


class ProfileConf(Base, frozen=True):
    """``[ctx.<profile>]``: values of the runtime (``qik``) and project variables."""

    qik: Annotated[dict[str, VarValue | list[str]], _doc("Runtime context, e.g. workers = 2.")] = {}
    project: Annotated[dict[str, VarValue], _doc("Values of ctx variables.")] = {}


class SpaceLocator(Base, frozen=True, tag_field="type", tag="space"):
    """A reference to a space: ``{type = "space", name = "..."}``."""

    name: str


class ModuleLocator(Base, frozen=True):
    """A module: a folder of a space, with a name."""

    name: str
    path: str

    @qik.func.cached_property
    def dir(self) -> pathlib.Path:
        return pathlib.Path(self.path)

    @qik.func.cached_property
    def pyimport(self) -> str:
        return qik.current.session().project.pyimport(self.path)

    @qik.func.cached_property
    def conf(self) -> SubProjectConf:
        project = qik.current.session().project
        return project.sub_conf(project.root / self.path / "qik.toml")


class SubProjectConf(Base, frozen=True):
    """The ``qik.toml`` of a module or plugin package: commands only."""

    commands: dict[str, Any] = {}


class SpaceConf(Base, frozen=True):
    """A space: an area of the repo with its own venv, dotenv and modules."""

    root: Annotated[str | None, _doc("Folder; running qik below it selects the space.")] = None
    modules: list[str | ModuleLocator] = []
    fence: list[str | SpaceLocator] | bool = []
    venv: Any = None
    dotenv: str | list[str] | None = None

    @qik.func.cached_property
    def modules_by_name(self) -> dict[str, ModuleLocator]:
        locs = (
            ModuleLocator(name=m.strip("/"), path=m.strip("/"))
            if isinstance(m, str)
            else m
            for m in self.modules
        )
        return {m.name: m for m in locs}


class PydistConf(Base, frozen=True):
    versions: dict[str, str] = {}
    ignore_missing: bool = False
    ignore_missing_modules: bool = False
    modules: dict[str, str] = {}


class BaseConf(Base, frozen=True):
    deps: list[Any] = []


class DefaultsConf(Base, frozen=True):
    cache: str | qik.unset.UnsetType = qik.unset.UNSET
    cache_when: CacheWhen | qik.unset.UnsetType = qik.unset.UNSET
    python_path: str = "."
    venv: Any = None
    dotenv: str | list[str] | None = None


class ProjectConf(Base, frozen=True):
    """The whole qik.toml."""

    commands: dict[str, Any] = {}
    plugins: dict[str, Any] = {}
    # A list of variables (upstream), or a table of profiles plus an optional `vars` list.
    ctx: list[str | VarConf] | dict[str, list[str | VarConf] | ProfileConf] = []
    caches: dict[str, Any] = {}
    spaces: dict[str, Any] = {}
    venvs: dict[str, Any] = {}
    base: BaseConf = msgspec.field(default_factory=BaseConf)
    defaults: DefaultsConf = msgspec.field(default_factory=DefaultsConf)
    pydist: PydistConf = msgspec.field(default_factory=PydistConf)

    @qik.func.cached_property
    def resolved_spaces(self) -> dict[str, SpaceConf]:
        spaces = {
            name: space if isinstance(space, SpaceConf) else SpaceConf(venv=space)
            for name, space in self.spaces.items()
        }
        spaces.setdefault("default", SpaceConf())
        return spaces

    @qik.func.cached_property
    def ctx_vars(self) -> dict[str, VarConf]:
        """Declared variables (``ctx = [...]`` or ``[ctx] vars = [...]``); see qik.model.ctx.declared."""
        decls = self.ctx.get("vars", []) if isinstance(self.ctx, dict) else self.ctx
        decls = decls if isinstance(decls, list) else []
        return {v: VarConf(name=v) for v in decls if isinstance(v, str)} | {
            v.name: v for v in decls if isinstance(v, VarConf)
        }

    @qik.func.cached_property
    def modules_by_name(self) -> dict[str, ModuleLocator]:
        return {
            name: loc
            for space in self.resolved_spaces.values()
            for name, loc in space.modules_by_name.items()
        }


def plugin_pyimport(val: Any) -> str:
    if isinstance(val, str):
        return val
    if isinstance(val, PluginConf | PluginLocator):
        return val.pyimport
    return str(val["pyimport"])


__all__ = [
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
]
