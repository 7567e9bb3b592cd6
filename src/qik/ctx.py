"""Context: project variables, the runtime ``qik`` namespace, profiles and templates."""

from __future__ import annotations

import os
import platform
import re
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import msgspec

import qik.conf
import qik.errors

if TYPE_CHECKING:
    from qik.conf import ModuleLocator


def arch() -> str:
    """The platform as conda names it: linux-64, linux-aarch64, osx-arm64, osx-64, win-64."""
    system, machine = platform.system(), platform.machine().lower()
    bits64 = platform.architecture()[0] == "64bit"
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
    arch: str = msgspec.field(default_factory=arch)


_RUNTIME: list[QikCtx] = []
_VARS: dict[str, Any] = {}

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off", "")


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


def _profiles() -> dict[str, Any]:
    ctx = qik.conf.project().ctx
    return ctx if isinstance(ctx, dict) else {}


def profile_values(profile: str, namespace: str) -> dict[str, Any]:
    profiles = _profiles()
    if profile != "default" and profile not in profiles:
        raise qik.errors.UnknownChoice("profile", profile, {"default", *profiles})
    base = profiles.get("default", {}).get(namespace, {})
    return base | (profiles.get(profile, {}).get(namespace, {}) if profile != "default" else {})


def configure(**cli: Any) -> QikCtx:
    """Build the runtime context: defaults < profile < ``QIK__*`` env < CLI flags."""
    _RUNTIME.clear()
    _VARS.clear()
    fields = {f.name: f for f in msgspec.structs.fields(QikCtx)}
    profile = cli.get("profile") or os.environ.get("QIK__PROFILE") or "default"
    vals: dict[str, Any] = {}
    for name, val in profile_values(profile, "qik").items():
        vals[name.replace("-", "_")] = val
    for name, field in fields.items():
        env = os.environ.get(f"QIK__{name.upper()}")
        if env is not None:
            vals[name] = cast(env, _type_name(field.type), f"QIK__{name.upper()}")
    vals |= {k: v for k, v in cli.items() if v is not None and v != () and v is not False}
    vals["profile"] = profile
    vals = {k: list(v) if isinstance(v, tuple) else v for k, v in vals.items()}
    try:
        rt = msgspec.convert(vals, QikCtx, str_keys=True)
    except msgspec.ValidationError as exc:
        raise qik.errors.CtxCast(f"Invalid runtime context: {exc}") from None
    _RUNTIME.append(rt)
    return rt


def runtime() -> QikCtx:
    if not _RUNTIME:
        configure()
    return _RUNTIME[0]


def var(name: str) -> Any:
    """The value of a project ctx variable (environment, then profile, then default)."""
    if name in _VARS:
        return _VARS[name]
    decl = qik.conf.project().ctx_vars.get(name)
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
                hint=f"Set it in the environment ({env_name}=...) or give it a default.",
            )
    _VARS[name] = val
    return val


def check_required() -> None:
    """Fail early, naming the variable, if a required ctx variable has no value."""
    for name in qik.conf.project().ctx_vars:
        var(name)


def runtime_field(name: str) -> Any:
    key = name.replace("-", "_")
    rt = runtime()
    if not hasattr(rt, key):
        raise qik.errors.UnconfiguredCtx(f'Unknown runtime context "ctx.qik.{name}".')
    return getattr(rt, key)


_FIELD = re.compile(r"\{\{|\}\}|\{(ctx|module)\.([A-Za-z0-9_.\-]+)\}")
T = TypeVar("T", str, None)


def _render(val: Any) -> str:
    if isinstance(val, bool):
        return str(val).lower()
    if isinstance(val, list):
        return ",".join(str(v) for v in val)
    return "" if val is None else str(val)


def format(template: T, module: ModuleLocator | None = None) -> T:  # noqa: A001
    """Fill ``{ctx.x}``, ``{ctx.qik.x}`` and ``{module.x}``; other braces pass through.

    ``{{`` and ``}}`` give literal braces. ``None`` passes through unchanged.
    """
    if template is None or ("{" not in template and "}" not in template):
        return template

    def sub(m: re.Match[str]) -> str:
        text = m.group(0)
        if text == "{{":
            return "{"
        if text == "}}":
            return "}"
        ns, attr = m.group(1), m.group(2)
        if ns == "module":
            if module is None:
                raise qik.errors.ConfigError(f'"{template}" uses {text} outside a module command.')
            if attr not in ("dir", "name", "pyimport", "path"):
                raise qik.errors.UnknownChoice("module field", attr, ["dir", "name", "pyimport", "path"])
            return str(getattr(module, "path" if attr == "dir" else attr))
        if attr.startswith("qik."):
            return _render(runtime_field(attr[4:]))
        if attr.startswith("project."):
            attr = attr[8:]
        return _render(var(attr))

    return _FIELD.sub(sub, template)


Namespace = Literal["qik", "project"]
