"""The typed qik.toml: frozen msgspec Structs, the type registry and the two-phase decode.

Plugins (and the built-in types) call :func:`register_type` with a tagged Struct and the
dotted path of a factory. Decoding then happens in two phases: read ``[plugins]`` and
import them so they can register, then build the tagged unions from the registry and
decode the whole file strictly.
"""

from __future__ import annotations

import os
import pathlib
import sys
from typing import Annotated, Any, ClassVar, Literal, TypeAlias

import msgspec

import qik.errors
import qik.func
import qik.registry
import qik.unset

# The registry's functions are part of the plugin API, spelled qik.conf.*.
from qik.registry import _CONFS
from qik.registry import Registered as Registered
from qik.registry import _set_owner as _set_owner
from qik.registry import get_type_factory as get_type_factory
from qik.registry import owner_label as owner_label
from qik.registry import register_conf as register_conf
from qik.registry import register_type as register_type
from qik.registry import registered as registered
from qik.registry import registered_confs as registered_confs

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


class Dep(BasePluggable, frozen=True, tag_field="type"):
    """Base of dependency types (``{type = "...", ...}`` in ``deps``)."""

    kind: ClassVar[Kind] = "dep"


class Cache(BasePluggable, frozen=True, tag_field="type"):
    """Base of cache types (``[caches.NAME] type = "..."``)."""

    kind: ClassVar[Kind] = "cache"


class Venv(BasePluggable, frozen=True, tag_field="type", kw_only=True):
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


# ---- built-in types (registered below, the way plugins register theirs) ----


class GlobDep(Dep, frozen=True, tag="glob"):
    """Files matching a gitignore-style glob, relative to the project root."""

    pattern: Annotated[str, _doc("Glob relative to the root; ** crosses folders.")]


class ConstDep(Dep, frozen=True, tag="const"):
    """A constant value (often from ctx) that is part of the key."""

    val: Annotated[str, _doc("The value; {ctx.x} is filled in.")]


class CmdDep(Dep, frozen=True, tag="command"):
    """Another command: it runs first, and its artifacts are part of the key."""

    name: Annotated[str, _doc("The command name.")]
    strict: Annotated[bool, _doc("Re-select this command when the dependency re-runs.")] = False
    isolated: Annotated[
        bool | qik.unset.UnsetType, _doc("Do not pull the dependency into the run.")
    ] = qik.unset.UNSET


class PydistDep(Dep, frozen=True, tag="pydist"):
    """The installed version of a Python distribution in the space's venv."""

    name: Annotated[str, _doc("Distribution name.")]


class LoadDep(Dep, frozen=True, tag="load"):
    """Globs and pydists read from a JSON file (``{"globs": [...], "pydists": [...]}``)."""

    path: Annotated[str, _doc("JSON file, relative to the root.")]
    default: Annotated[list[str], _doc("Globs used while the file does not exist.")] = []


class LocalCacheConf(Cache, frozen=True, tag="local"):
    """The local cache in ``._qik/cache``."""

    max_size: Annotated[str | None, _doc('Bound on total size, e.g. "5GB".')] = None
    max_age: Annotated[str | None, _doc('Bound on entry age, e.g. "30d".')] = None


class RepoCacheConf(Cache, frozen=True, tag="repo"):
    """The latest entry of each runnable in ``.qik/cache``, committed to git."""


class NoneCacheConf(Cache, frozen=True, tag="none"):
    """Never cached."""


class RemoteCacheConf(Cache, frozen=True, kw_only=True):
    """Settings every remote cache type shares (subclass it for a remote type's config).

    Boolean settings accept a template (``"{ctx.ro}"``) that must resolve to
    true/false/1/0/yes/no/on/off.
    """

    read_only: Annotated[bool | str, _doc("Read, never write (pull-request jobs).")] = False
    signing_key: Annotated[
        str | None, _doc("HMAC-SHA256 key: sign manifests on write, accept only signed ones on read.")
    ] = None
    require_signature: Annotated[
        bool | str | qik.unset.UnsetType,
        _doc("false: a read-only cache whose signing-key is empty here accepts unverifiable entries."),
    ] = qik.unset.UNSET
    timeout: Annotated[float, msgspec.Meta(gt=0, description="Seconds to wait for a response.")] = 20.0
    connect_timeout: Annotated[float, msgspec.Meta(gt=0, description="Seconds to wait for a connection.")] = 5.0
    retries: Annotated[int, msgspec.Meta(ge=0, le=10, description="Retries after a failed request.")] = 1


class ActiveVenv(Venv, frozen=True, tag="active", kw_only=True):
    """Whatever environment qik runs in; nothing is managed."""


class SpaceVenv(Venv, frozen=True, tag="space", kw_only=True):
    """The venv of another space."""

    name: Annotated[str, _doc("The space whose venv to use.")]


# ---- the project tables ----


class Cmd(Base, frozen=True):
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


class Var(Base, frozen=True):
    """A context variable, read from the environment variable of the same name."""

    name: str
    type: Literal["str", "int", "bool"] = "str"
    default: VarValue | qik.unset.UnsetType = qik.unset.UNSET
    required: bool = True


class CtxProfile(Base, frozen=True):
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
        return pyimport(self.path)

    @qik.func.cached_property
    def conf(self) -> ModuleOrPlugin:
        return _load_sub_conf(root() / self.path / "qik.toml")


class ModuleOrPlugin(Base, frozen=True):
    """The ``qik.toml`` of a module or plugin package: commands only."""

    commands: dict[str, Any] = {}


class Space(Base, frozen=True):
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


class Pydist(Base, frozen=True):
    versions: dict[str, str] = {}
    ignore_missing: bool = False
    ignore_missing_modules: bool = False
    modules: dict[str, str] = {}


class BaseConf(Base, frozen=True):
    deps: list[Any] = []


class Defaults(Base, frozen=True):
    cache: str | qik.unset.UnsetType = qik.unset.UNSET
    cache_when: CacheWhen | qik.unset.UnsetType = qik.unset.UNSET
    python_path: str = "."
    venv: Any = None
    dotenv: str | list[str] | None = None


class Project(Base, frozen=True):
    """The whole qik.toml."""

    commands: dict[str, Any] = {}
    plugins: dict[str, Any] = {}
    # A list of variables (upstream), or a table of profiles plus an optional `vars` list.
    ctx: list[str | Var] | dict[str, list[str | Var] | CtxProfile] = []
    caches: dict[str, Any] = {}
    spaces: dict[str, Any] = {}
    venvs: dict[str, Any] = {}
    base: BaseConf = msgspec.field(default_factory=BaseConf)
    defaults: Defaults = msgspec.field(default_factory=Defaults)
    pydist: Pydist = msgspec.field(default_factory=Pydist)

    @qik.func.cached_property
    def resolved_spaces(self) -> dict[str, Space]:
        spaces = {
            name: space if isinstance(space, Space) else Space(venv=space)
            for name, space in self.spaces.items()
        }
        spaces.setdefault("default", Space())
        return spaces

    @qik.func.cached_property
    def ctx_vars(self) -> dict[str, Var]:
        """Declared variables (``ctx = [...]`` or ``[ctx] vars = [...]``); see qik.ctx.declared."""
        decls = self.ctx.get("vars", []) if isinstance(self.ctx, dict) else self.ctx
        decls = decls if isinstance(decls, list) else []
        return {v: Var(name=v) for v in decls if isinstance(v, str)} | {
            v.name: v for v in decls if isinstance(v, Var)
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


def default_venv_type() -> type[Venv]:
    """The venv type of the shorthand ``venv = "reqs.txt"`` (a plugin's, else ``active``)."""
    return qik.registry.default_venv_type() or ActiveVenv


for _cls, _factory in (
    (GlobDep, "qik.dep.glob_factory"),
    (ConstDep, "qik.dep.const_factory"),
    (CmdDep, "qik.dep.cmd_factory"),
    (PydistDep, "qik.dep.pydist_factory"),
    (LoadDep, "qik.dep.load_factory"),
    (LocalCacheConf, "qik.cache.local_factory"),
    (RepoCacheConf, "qik.cache.repo_factory"),
    (NoneCacheConf, "qik.cache.none_factory"),
    (ActiveVenv, "qik.venv.active_factory"),
    (SpaceVenv, "qik.venv.space_factory"),
):
    register_type(_cls, _factory)


# ---- locating and loading the project ----


class Loaded(msgspec.Struct, frozen=True):
    project: Project
    location: pathlib.Path
    where: str
    raw: dict[str, Any]


_LOADED: list[Loaded] = []


def _git_top(start: pathlib.Path) -> pathlib.Path | None:
    for d in (start, *start.parents):
        if (d / ".git").exists():
            return d
    return None


def _candidates(cwd: pathlib.Path) -> list[tuple[pathlib.Path, dict[str, Any], str]]:
    """Config files from cwd up to the git root, nearest first."""
    top = _git_top(cwd)
    found: list[tuple[pathlib.Path, dict[str, Any], str]] = []
    for d in (cwd, *cwd.parents):
        if (d / "qik.toml").is_file():
            found.append((d / "qik.toml", {}, "qik.toml"))
        elif (d / "pyproject.toml").is_file():
            data = read_toml(d / "pyproject.toml")
            if isinstance(data.get("tool"), dict) and "qik" in data["tool"]:
                found.append((d / "pyproject.toml", data["tool"]["qik"], "[tool.qik]"))
        if d == top:
            break
    return found


def find(cwd: pathlib.Path | None = None) -> tuple[pathlib.Path, dict[str, Any], str]:
    """The project's config file: the nearest one that is not a module's qik.toml."""
    cwd = (cwd or pathlib.Path.cwd()).resolve()
    found = _candidates(cwd)
    if not found:
        raise qik.errors.ConfigNotFound(
            "No qik.toml (or [tool.qik] in pyproject.toml) found here or above, up to the git root.",
            hint="Create a qik.toml at the root of your project.",
        )
    loaded = [(p, d or read_toml(p), w) for p, d, w in found]
    chosen = loaded[0]
    for outer in loaded[1:]:
        # A module's own qik.toml is not a project: prefer the project that lists it.
        mod_dirs = set()
        for space in (outer[1].get("spaces") or {}).values():
            for m in space.get("modules", []) if isinstance(space, dict) else []:
                mpath = m if isinstance(m, str) else m.get("path", "")
                mod_dirs.add((outer[0].parent / mpath).resolve())
        if chosen[0].parent in mod_dirs:
            chosen = outer
    return chosen


def dynamic_types(for_schema: bool = False) -> dict[str, Any]:
    """The Project type with every registered type in its unions."""
    import qik.decode

    return qik.decode.dynamic_types(for_schema=for_schema)


def read_toml(path: pathlib.Path) -> dict[str, Any]:
    import qik.decode

    return qik.decode.read_toml(path)


def decode(data: Any, *, where: str, type: Any, path: str = "$") -> Any:
    import qik.decode

    return qik.decode.decode(data, where=where, type=type, path=path)


def _rel(path: pathlib.Path) -> str:
    try:
        return os.path.relpath(path)
    except ValueError:
        return str(path)


def _load_plugins(proj_raw: dict[str, Any], where: str) -> None:
    import qik.plugins

    qik.plugins.load_all(proj_raw.get("plugins") or {}, where=where, root=root())


def load(cwd: pathlib.Path | None = None) -> Loaded:
    """Find, then decode the project configuration (plugins are imported in between)."""
    if _LOADED:
        return _LOADED[0]
    path, raw, kind = find(cwd)
    where = _rel(path) if kind == "qik.toml" else f"{_rel(path)} [tool.qik]"
    _LOADED.append(Loaded(project=Project(), location=path, where=where, raw=raw))
    try:
        import qik.decode

        qik.decode.check_nul(raw, where)
        _load_plugins(raw, where)
        plugins = qik.decode.decode_plugins(raw.get("plugins"), where)
        project_t = dynamic_types()["project"]
        qik.decode.decode_tables(raw, project_t, where)
        project = decode(raw | {"plugins": {}}, where=where, type=project_t)
        project = msgspec.structs.replace(project, plugins=plugins)
        _check_modules(project, path.parent, where)
    except BaseException:
        _LOADED.clear()
        raise
    _LOADED[0] = Loaded(project=project, location=path, where=where, raw=raw)
    python_path = str(root() / project.defaults.python_path)
    if python_path not in sys.path:
        sys.path.insert(0, python_path)
    return _LOADED[0]


def _folders(root: str, paths: set[str]) -> set[str]:
    """Which of ``paths`` (normalized, relative) are folders: one scandir per parent folder,
    not one stat per module (thousands of modules usually share a few parents)."""
    by_parent: dict[str, list[str]] = {}
    for path in paths:
        by_parent.setdefault(path.rpartition("/")[0], []).append(path)
    found = {"."} & paths
    for parent, children in by_parent.items():
        try:
            with os.scandir(os.path.join(root, parent)) as entries:
                names = {e.name for e in entries if e.is_dir()}
        except OSError:
            continue
        found.update(p for p in children if p.rpartition("/")[2] in names)
    return found


def _module_path(m: str | ModuleLocator) -> str:
    """A module's folder, normalized; "" if it is none inside the project (absolute, the
    root itself, or leading out of it with ``..``)."""
    path = m.strip("/") if isinstance(m, str) else m.path  # as ModuleLocator.dir reads them
    if path.startswith("/"):
        return ""
    norm = path.rstrip("/")
    if "." in norm or "//" in norm:  # rare: normalize only the odd ones
        norm = os.path.normpath(norm)
        norm = "" if norm in (".", "..") or norm.startswith("../") else norm
    return norm


def _check_modules(proj: Project, root: pathlib.Path, where: str) -> None:
    """Every module has a name and is a folder inside the project, so a typo fails at load,
    not as ``cd: can't cd`` in the middle of a run."""
    paths: dict[str | ModuleLocator, str] = {}
    named = True
    for space in proj.resolved_spaces.values():
        for m in space.modules:
            if m not in paths:
                paths[m] = _module_path(m)
                named = named and bool(m.strip("/") if isinstance(m, str) else m.name)
    folders = _folders(str(root), {n for n in paths.values() if n})
    if named and all(n in folders for n in paths.values()):
        return
    for sname, space in proj.resolved_spaces.items():
        for i, m in enumerate(space.modules):
            path = m if isinstance(m, str) else m.path
            name = m.strip("/") if isinstance(m, str) else m.name
            if not name or not path.strip("/"):
                problem = "needs a name and a folder"
            elif not paths[m]:
                problem = f'is not a folder inside the project ("{path}")'
            elif paths[m] not in folders:
                problem = f'has no folder "{path}"'
            else:
                continue
            raise qik.errors.BadValue(
                f'{where}: module "{name}" of space "{sname}" {problem} - at "$.spaces.{sname}.modules[{i}]"',
                hint="A module is a folder inside the project, relative to its root.",
            )


def reset() -> None:
    """Forget the loaded project (tests and long-lived processes)."""
    _LOADED.clear()
    qik.func.clear_caches()


def project() -> Project:
    return load().project


def location() -> pathlib.Path:
    return load().location


def where() -> str:
    return load().where


def root() -> pathlib.Path:
    return load().location.parent


def priv_work_dir(rel: bool = False) -> pathlib.Path:
    """``._qik``: machine-local state (cache, venvs, digests, logs)."""
    return pathlib.Path("._qik") if rel else root() / "._qik"


def ensure_priv_work_dir() -> pathlib.Path:
    """Create ``._qik`` with a ``.gitignore`` of ``*``, so git never lists its files."""
    d = priv_work_dir()
    ignore = d / ".gitignore"
    if not ignore.exists():
        d.mkdir(parents=True, exist_ok=True)
        ignore.write_text("*\n")
    return d


def pub_work_dir(rel: bool = False) -> pathlib.Path:
    """``.qik``: state meant to be committed (repo cache, locks)."""
    return pathlib.Path(".qik") if rel else root() / ".qik"


def pyimport(path: str) -> str:
    python_path = project().defaults.python_path.strip("/")
    rel = path.strip("/")
    if python_path not in ("", ".") and rel.startswith(python_path + "/"):
        rel = rel[len(python_path) + 1 :]
    return rel.replace("/", ".")


@qik.func.cache
def _load_sub_conf(path: pathlib.Path) -> ModuleOrPlugin:
    if not path.is_file():
        return ModuleOrPlugin()
    raw = read_toml(path)
    import qik.decode

    qik.decode.check_nul(raw, _rel(path))
    module_t = dynamic_types()["module"]
    qik.decode.decode_tables(raw, module_t, _rel(path))
    return decode(raw, where=_rel(path), type=module_t)  # type: ignore[no-any-return]


def plugin(pyimport: str) -> PluginConf:
    """The configuration of a plugin, by its import path (defaults if not configured)."""
    proj = project()
    for val in proj.plugins.values():
        if plugin_pyimport(val) == pyimport and isinstance(val, PluginConf):
            return val
    if pyimport in _CONFS:
        return _CONFS[pyimport].conf()  # type: ignore[no-any-return]
    raise qik.errors.PluginNotFound(f'Plugin "{pyimport}" registers no configuration.')


def plugin_locator(uri: str, *, by_pyimport: bool = False) -> tuple[str, str]:
    """(plugin name, pyimport) of a configured plugin, by name or by import path."""
    import qik.plugins

    for p in qik.plugins.loaded().values():
        if (p.pyimport if by_pyimport else p.name) == uri:
            return p.name, p.pyimport
    raise qik.errors.PluginNotFound(f'Plugin "{uri}" is not configured in {where()}.')


def plugin_cmd_name(pyimport: str, cmd: str) -> str:
    """The full name of a plugin's command, e.g. ``uv.lock`` for ``uv = "qik.uv"``."""
    return f"{plugin_locator(pyimport, by_pyimport=True)[0]}.{cmd}"


def module_locator(name: str) -> ModuleLocator:
    mods = project().modules_by_name
    if name not in mods:
        raise qik.errors.ModuleNotFound("module", name, mods, where=where())
    return mods[name]


def canonical_command(name: str) -> str | None:
    """The configured name of a command, accepting ``module.cmd`` for ``module/cmd`` and
    ``plugin/cmd`` for ``plugin.cmd`` as upstream does; None if there is no such command."""
    cmds = commands()
    if name in cmds:
        return name
    for sep, other in (("/", "."), (".", "/")):
        if sep in name:
            head, tail = name.rsplit(sep, 1)
            if f"{head}{other}{tail}" in cmds:
                return f"{head}{other}{tail}"
    return None


def command_source(name: str) -> tuple[str, str]:
    """(file, config path) of a command's table, for errors: ``("qik.toml",
    "$.commands.lint")``, or a module's or plugin's ``qik.toml`` for theirs."""
    import qik.plugins

    proj = project()
    if name in proj.commands:
        return where(), f"$.commands.{name}"
    for mod in proj.modules_by_name.values():
        if name.startswith(f"{mod.name}/"):
            return _rel(root() / mod.path / "qik.toml"), f"$.commands.{name[len(mod.name) + 1 :]}"
    for plugin in qik.plugins.loaded().values():
        if name.startswith(f"{plugin.name}."):
            return _rel(pathlib.Path(plugin.dir) / "qik.toml"), f"$.commands.{name[len(plugin.name) + 1 :]}"
    return where(), f"$.commands.{name}"


def command(name: str) -> Cmd:
    """The configuration of a command: ``name``, ``module/name`` or ``plugin.name``."""
    cmds = commands()
    canonical = canonical_command(name)
    if canonical is None:
        raise qik.errors.CommandNotFound("command", name, [n for n, c in cmds.items() if not c.hidden])
    return cmds[canonical]


@qik.func.cache
def commands() -> dict[str, Cmd]:
    """Every command: the project's, each module's (``mod/cmd``) and each plugin's (``plugin.cmd``)."""
    import qik.plugins

    proj = project()
    cmd_t = dynamic_types()["cmd"]

    def norm(c: Any) -> Cmd:
        return cmd_t(exec=c) if isinstance(c, str) else c  # type: ignore[no-any-return]

    out = {name: norm(c) for name, c in proj.commands.items()}
    for mod in proj.modules_by_name.values():
        out |= {f"{mod.name}/{n}": norm(c) for n, c in mod.conf.commands.items()}
    for name, conf in qik.plugins.plugin_confs().items():
        out |= {f"{name}.{n}": norm(c) for n, c in conf.commands.items()}
    return out
