"""Context: project variables, the runtime ``qik`` namespace, profiles and templates."""

from __future__ import annotations

import functools
import os
import re
import sys
from typing import TYPE_CHECKING, Any, Literal, overload

import msgspec

import qik.conf
import qik.current
import qik.errors
import qik.func
from qik.unset import UnsetType

if TYPE_CHECKING:
    from qik.conf import ModuleLocator


Namespace = Literal["qik", "project"]


@functools.cache
def arch() -> str:
    """The platform as conda names it: linux-64, linux-aarch64, osx-arm64, osx-64, win-64."""
    if sys.platform == "win32":
        import platform

        system, machine = "Windows", platform.machine().lower()
    else:  # not platform.architecture(): it runs `file` on the interpreter (7 ms per call)
        uname = os.uname()
        system, machine = uname.sysname, uname.machine.lower()
    bits64 = sys.maxsize > 2**32
    if system == "Windows":
        return "win-arm64" if machine in ("arm64", "aarch64") else "win-64" if bits64 else "win-32"
    if system == "Darwin":
        return "osx-arm64" if machine == "arm64" else "osx-64"
    if system == "Linux":
        named = {"x86_64": "linux-64", "amd64": "linux-64", "aarch64": "linux-aarch64",
                 "arm64": "linux-aarch64", "ppc64le": "linux-ppc64le", "s390x": "linux-s390x"}
        return named.get(machine, "linux-64" if bits64 else "linux-32")
    return f"{system.lower()}-{machine}"


class QikCtx(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The runtime context, ``{ctx.qik.<field>}``; each field is overridable by ``QIK__<FIELD>``."""

    workers: int = msgspec.field(default_factory=lambda: os.cpu_count() or 1)
    force: bool = False
    isolated: bool = False
    ls: bool = False
    watch: bool = False
    fail: bool = False
    explain: bool = False
    json: bool = False
    verbosity: int = 1
    since: str | None = None
    shard: str | None = None
    profile: str = "default"
    cache_status: Literal["warm", "cold"] | None = None
    commands: list[str] = []
    modules: list[str] = []
    spaces: list[str] = []
    caches: list[str] = []
    tags: list[str] = []
    logger: Literal["progress", "stdout"] | None = None
    arch: str = msgspec.field(default_factory=arch)



_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off", "")
_PY_TYPES: dict[str, type] = {"str": str, "int": int, "bool": bool}


def cast(raw: str, typ: str, name: str) -> Any:
    """Cast an environment string to a ctx type, or fail naming the variable."""
    if typ == "int":
        try:
            return int(raw)
        except ValueError:
            pass
    elif typ == "bool":
        low = raw.strip().lower()
        if low in _TRUE or low in _FALSE:
            return low in _TRUE
    elif typ == "list":
        return [v for v in raw.split(",") if v]
    else:
        return raw
    raise qik.errors.CtxCast(f'Cannot read {name}="{raw}" as {typ}.')


def _type_name(annotation: Any) -> str:
    text = str(annotation)
    for t in ("bool", "int", "list"):
        if t in text:
            return t
    return "str"


def _key(name: str) -> str:
    """Profile keys are kebab-case in TOML; variables are referenced with underscores."""
    return name.replace("-", "_")


def _is(val: Any, typ: str) -> bool:
    # bool is a subclass of int: an int variable must not accept true/false.
    return isinstance(val, _PY_TYPES[typ]) and (typ == "bool" or not isinstance(val, bool))


def profiles() -> dict[str, qik.conf.ProfileConf]:
    """Profiles of the project: ``[ctx.<profile>]`` tables (``default`` always exists)."""
    ctx = qik.conf.project().ctx
    found = {}
    if isinstance(ctx, dict):
        for name, val in ctx.items():
            if name == "vars":
                continue
            if not isinstance(val, qik.conf.ProfileConf):
                raise qik.errors.ConfigError(
                    f'{qik.conf.where()}: ctx.{name} must be a table of profile values '
                    "([ctx.NAME.qik] / [ctx.NAME.project]); only ctx.vars is a list."
                )
            found[name] = val
    return {"default": qik.conf.ProfileConf()} | found


@qik.func.cache
def declared() -> dict[str, qik.conf.VarConf]:
    """Every project variable: declared ones, plus those only given values in profiles.

    A variable that appears only in ``[ctx.<profile>.project]`` takes its type from its
    value and its default from the ``default`` profile (else it is required).
    """
    out = dict(qik.conf.project().ctx_vars)
    for var_ in out.values():
        if var_.default is not msgspec.UNSET and not _is(var_.default, var_.type):
            raise qik.errors.CtxCast(
                f'{qik.conf.where()}: the default of ctx variable "{var_.name}" '
                f"({var_.default!r}) is not of type {var_.type}."
            )
    profs = profiles()
    for pname, prof in sorted(profs.items(), key=lambda kv: kv[0] != "default"):
        for raw_name, val in prof.project.items():
            name = _key(raw_name)
            if name not in out:
                typ = next(t for t in ("bool", "int", "str") if _is(val, t))
                default = val if pname == "default" else msgspec.UNSET
                out[name] = qik.conf.VarConf(name=name, type=typ, default=default)  # type: ignore[arg-type]
            elif not _is(val, out[name].type):
                raise qik.errors.CtxCast(
                    f"{qik.conf.where()}: ctx.{pname}.project.{raw_name} = {val!r} "
                    f"is not of type {out[name].type}."
                )
    return out


def profile_values(profile: str, namespace: Namespace) -> dict[str, Any]:
    """Values of one namespace for a profile, over the ``default`` profile's values."""
    profs = profiles()
    if profile not in profs:
        raise qik.errors.UnknownChoice("ctx profile", profile, profs)
    vals = {_key(k): v for k, v in getattr(profs["default"], namespace).items()}
    if profile != "default":
        vals |= {_key(k): v for k, v in getattr(profs[profile], namespace).items()}
    return vals


def _profile_runtime(profile: str) -> dict[str, Any]:
    """The ``qik`` values of the default and chosen profile, each checked against QikCtx."""
    profs = profiles()
    if profile not in profs:
        raise qik.errors.UnknownChoice("ctx profile", profile, profs)
    vals: dict[str, Any] = {}
    for name in dict.fromkeys(("default", profile)):
        table = {_key(k): v for k, v in profs[name].qik.items()}
        try:
            msgspec.convert(table, QikCtx, str_keys=True)
        except msgspec.ValidationError as exc:
            text = str(exc).replace("`$.", "`").replace("`", '"')
            raise qik.errors.CtxCast(f"{qik.conf.where()}: ctx.{name}.qik: {text}") from None
        vals |= table
    return vals


def configure(**cli: Any) -> QikCtx:
    """Build the runtime context: defaults < profiles < ``QIK__*`` env < CLI flags."""
    session = qik.current.session()
    session.vars.clear()
    fields = {f.name: f for f in msgspec.structs.fields(QikCtx)}
    profile = cli.get("profile") or os.environ.get("QIK__PROFILE") or "default"
    vals = _profile_runtime(profile)
    for name, field in fields.items():
        env = os.environ.get(f"QIK__{name.upper()}")
        if env is not None and name != "profile":
            vals[name] = cast(env, _type_name(field.type), f"QIK__{name.upper()}")
    vals |= {k: v for k, v in cli.items() if v is not None and v != () and v is not False}
    vals["profile"] = profile
    vals = {k: list(v) if isinstance(v, tuple) else v for k, v in vals.items()}
    try:
        rt = msgspec.convert(vals, QikCtx, str_keys=True)
    except msgspec.ValidationError as exc:
        raise qik.errors.CtxCast(f"Invalid runtime context: {exc}") from None
    session.runtime = rt
    return rt


def runtime() -> QikCtx:
    """The runtime context of this run (built from the environment if not configured)."""
    rt = qik.current.session().runtime
    return rt if rt is not None else configure()


def var(name: str) -> Any:
    """The value of a project ctx variable: environment, then profile, then default."""
    name = _key(name)
    known = qik.current.session().vars
    if name in known:
        return known[name]
    decl = declared().get(name)
    if decl is None:
        raise qik.errors.UnconfiguredCtx(
            f'Context variable "{name}" is not declared.',
            hint=f'Add "{name}" to ctx = [...] in {qik.conf.where()}.',
        )
    env_name = name.upper()
    raw = os.environ.get(env_name)
    if raw is not None:
        val = cast(raw, decl.type, env_name)
    else:
        prof = profile_values(runtime().profile, "project")
        if name in prof:
            val = prof[name]
        elif decl.default is not msgspec.UNSET:
            val = decl.default
        elif not decl.required:
            val = None
        else:
            raise qik.errors.CtxValueNotFound(
                f'Context variable "{name}" has no value.',
                hint=f"Set {env_name}=... in the environment, give it a default, "
                f"or set it in [ctx.{runtime().profile}.project].",
            )
    known[name] = val
    return val


def check_required() -> None:
    """Fail early, naming the variable, if a ctx variable's value does not cast to its type.

    A variable with no value is not an error here (as in upstream qik): only what needs it
    fails, when it is used (a runnable fails, a cache is skipped), so ``--ls`` and runs of
    everything else work without, say, the credentials only a remote cache uses.
    """
    for name, decl in declared().items():
        env_name = _key(name).upper()
        if env_name in os.environ:
            cast(os.environ[env_name], decl.type, env_name)


def runtime_field(name: str) -> Any:
    key = name.replace("-", "_")
    rt = runtime()
    if not hasattr(rt, key):
        raise qik.errors.UnconfiguredCtx(f'Unknown runtime context "ctx.qik.{name}".')
    return getattr(rt, key)


_FIELD = re.compile(r"\{\{|\}\}|\{(ctx|module)\.([A-Za-z0-9_.\-]+)\}")


def uses_module(template: str) -> bool:
    """Whether a template has a ``{module.x}`` field (then its command runs per module);
    ``{module.}`` or ``{{module.dir}}`` are plain text."""
    return "{module." in template and any(m.group(1) == "module" for m in _FIELD.finditer(template))


def _render(val: Any) -> str:
    # As upstream's str.format renders them (True, None), so templates behave the same;
    # lists (runtime selectors) as comma-separated values.
    if isinstance(val, list):
        return ",".join(str(v) for v in val)
    return str(val)


@overload
def format(template: str, module: ModuleLocator | None = None) -> str: ...  # noqa: A001
@overload
def format(template: None, module: ModuleLocator | None = None) -> None: ...  # noqa: A001
@overload
def format(template: UnsetType, module: ModuleLocator | None = None) -> UnsetType: ...  # noqa: A001
@overload
def format(  # noqa: A001
    template: str | None, module: ModuleLocator | None = None
) -> str | None: ...
@overload
def format(  # noqa: A001
    template: str | UnsetType | None, module: ModuleLocator | None = None
) -> str | UnsetType | None: ...


def format(  # noqa: A001
    template: str | UnsetType | None, module: ModuleLocator | None = None
) -> str | UnsetType | None:
    """Fill ``{ctx.x}``, ``{ctx.qik.x}`` and ``{module.x}``; other braces pass through.

    ``{{`` and ``}}`` give literal braces. ``None`` and ``UNSET`` pass through unchanged.
    """
    if not isinstance(template, str) or ("{" not in template and "}" not in template):
        return template
    parts = _PARSED.get(template)
    if parts is None:
        parts = _PARSED[template] = _parse(template)
    out = []
    for part in parts:
        if isinstance(part, str):
            out.append(part)
            continue
        text, ns, attr = part
        if ns == "module":
            if module is None:
                raise qik.errors.ConfigError(
                    f'"{template}" uses {text} outside a module command.',
                    hint="Use {module.dir} (or another module field) in the exec too, so the "
                    "command runs once per module.",
                )
            if attr not in ("dir", "name", "pyimport", "path"):
                raise qik.errors.UnknownChoice("module field", attr, ["dir", "name", "pyimport", "path"])
            out.append(str(getattr(module, "path" if attr == "dir" else attr)))
        elif attr.startswith("qik."):
            out.append(_render(runtime_field(attr[4:])))
        else:
            out.append(_render(var(attr[8:] if attr.startswith("project.") else attr)))
    return "".join(out)


#: Templates as :func:`_parse` splits them (a graph formats the same few thousands of times).
_PARSED: dict[str, list[str | tuple[str, str, str]]] = {}


def _parse(template: str) -> list[str | tuple[str, str, str]]:
    """A template as literal text and fields: ``(text, namespace, attribute)``."""
    parts: list[str | tuple[str, str, str]] = []
    at = 0
    for m in _FIELD.finditer(template):
        parts.append(template[at : m.start()])
        text = m.group(0)
        parts.append("{" if text == "{{" else "}" if text == "}}" else (text, m.group(1), m.group(2)))
        at = m.end()
    parts.append(template[at:])
    return [p for p in parts if p != ""]


__all__ = [
    "Namespace",
    "QikCtx",
    "arch",
    "cast",
    "check_required",
    "configure",
    "declared",
    "format",
    "profile_values",
    "profiles",
    "runtime",
    "runtime_field",
    "uses_module",
    "var",
]
