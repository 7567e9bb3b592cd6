"""Spaces: an area of the repo with its venv, dotenv files, modules, fence and root."""

from __future__ import annotations

import os
import pathlib
import re
from typing import Any

import msgspec

import qik.conf
import qik.ctx
import qik.dep
import qik.errors
import qik.func
import qik.venv


def parse_dotenv(text: str, env: dict[str, str] | None = None) -> dict[str, str]:
    """KEY=VALUE lines; ``export``, quotes, comments and ``${VAR}`` expansion."""
    out: dict[str, str] = {}
    scope = dict(env or {})
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[7:].lstrip()
        key, sep, val = line.partition("=")
        if not sep:
            continue
        key, val = key.strip(), val.strip()
        if len(val) >= 2 and val[0] == val[-1] and val[0] in "'\"":
            quoted, val = val[0], val[1:-1]
        else:
            quoted, val = "", re.sub(r"\s+#.*$", "", val)
        if quoted != "'":
            val = re.sub(
                r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}",
                lambda m: scope.get(m.group(1), ""),
                val,
            )
        out[key] = scope[key] = val
    return out


class Space(msgspec.Struct, frozen=True, dict=True):
    name: str
    conf: qik.conf.Space

    @qik.func.cached_property
    def venv(self) -> qik.venv.Venv:
        return _venv(self.name, ())

    @qik.func.cached_property
    def dotenv(self) -> list[str]:
        val = self.conf.dotenv if self.conf.dotenv is not None else qik.conf.project().defaults.dotenv
        files = [val] if isinstance(val, str) else list(val or [])
        return [qik.ctx.format(f) for f in files]

    @qik.func.cached_property
    def environ(self) -> dict[str, str]:
        """Process env, then the venv's changes, then each dotenv file in order."""
        env = dict(self.venv.environ)
        root = qik.conf.root()
        for f in self.dotenv:
            try:
                env |= parse_dotenv((root / f).read_text(), env)
            except FileNotFoundError:
                raise qik.errors.ConfigError(
                    f'The dotenv file "{f}" of space "{self.name}" does not exist.'
                ) from None
        return env

    @qik.func.cached_property
    def glob_deps(self) -> set[str]:
        return set(self.dotenv) | self.venv.glob_deps

    @qik.func.cached_property
    def modules(self) -> dict[str, qik.conf.ModuleLocator]:
        return self.conf.modules_by_name

    @qik.func.cached_property
    def root(self) -> str | None:
        return self.conf.root.strip("/") if self.conf.root else None

    @qik.func.cached_property
    def fence(self) -> list[str]:
        """Paths this space may import from: its own modules, listed paths, other spaces'."""
        return _fence(self.name, ())


def _venv_conf(space: str) -> Any:
    proj = qik.conf.project()
    conf = proj.resolved_spaces[space].venv
    if conf is None:
        conf = proj.defaults.venv
    if conf is None:
        return qik.conf.ActiveVenv()
    if isinstance(conf, str | list):
        return qik.conf.default_venv_type()(reqs=conf)
    return conf


def _venv(space: str, seen: tuple[str, ...]) -> qik.venv.Venv:
    if space in seen:
        chain = " -> ".join((*seen, space))
        raise qik.errors.CircularVenv(f"Circular venv inheritance: {chain}.")
    if space not in qik.conf.project().resolved_spaces:
        raise qik.errors.SpaceNotFound("space", space, qik.conf.project().resolved_spaces)
    conf = _venv_conf(space)
    if isinstance(conf, qik.conf.SpaceVenv):
        _venv(conf.name, (*seen, space))  # check the chain
    factory = qik.dep._resolve(qik.conf.get_type_factory(conf))
    return factory(space, conf)  # type: ignore[no-any-return]


def _fence(space: str, seen: tuple[str, ...]) -> list[str]:
    if space in seen:
        raise qik.errors.CircularFence(f"Circular fence: {' -> '.join((*seen, space))}.")
    sp = load(space)
    fence = sp.conf.fence
    paths = [m.path for m in sp.modules.values()]
    if fence is True or fence is False:
        return paths
    for item in fence:
        if isinstance(item, str):
            paths.append(qik.ctx.format(item).strip("/"))
        else:
            paths.extend(_fence(item.name, (*seen, space)))
    return sorted(set(paths))


@qik.func.cache
def load(name: str) -> Space:
    spaces = qik.conf.project().resolved_spaces
    if name not in spaces:
        raise qik.errors.SpaceNotFound("space", name, spaces)
    return Space(name=name, conf=spaces[name])


def for_cwd(cwd: pathlib.Path | None = None) -> str | None:
    """The space whose root holds the working directory, if any."""
    root = qik.conf.root()
    try:
        rel = (cwd or pathlib.Path.cwd()).resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return None
    for name, conf in qik.conf.project().resolved_spaces.items():
        sroot = (conf.root or "").strip("/")
        if sroot and (rel == sroot or rel.startswith(sroot + "/")):
            return name
    return None


def module_space(module: str) -> str:
    for name, conf in qik.conf.project().resolved_spaces.items():
        if module in conf.modules_by_name:
            return name
    raise qik.errors.ModuleNotFound("module", module, qik.conf.project().modules_by_name)


def environ_for(space: str | None) -> dict[str, str]:
    return load(space).environ if space else dict(os.environ)
