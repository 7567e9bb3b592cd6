"""Spaces: an area of the repo with its venv, dotenv files, modules, fence and root."""

from __future__ import annotations

import os
import pathlib
import re
from typing import Any

import msgspec

import qik.conf
import qik.errors
import qik.func
import qik.model.ctx
import qik.model.venv
import qik.registry


def parse_dotenv(text: str, env: dict[str, str] | None = None, what: str = "A dotenv file") -> dict[str, str]:
    """KEY=VALUE lines; ``export``, quotes, comments and ``${VAR}`` expansion. A line with
    no name (``=x``) is an error: no process can be given such a variable."""
    out: dict[str, str] = {}
    scope = dict(env or {})
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[7:].lstrip()
        key, sep, val = line.partition("=")
        if not sep:
            continue
        key, val = key.strip(), val.strip()
        if not key:
            raise qik.errors.ConfigError(f"{what} has a variable with no name (line {n}).")
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
    """A space: an area of the repo with its venv, dotenv files, modules, fence and root."""

    name: str
    conf: qik.conf.SpaceConf

    @qik.func.cached_property
    def venv(self) -> qik.model.venv.Venv:
        """The space's venv: its own, ``[defaults] venv``, or the active environment."""
        return _venv(self.name)

    @qik.func.cached_property
    def dotenv(self) -> list[str]:
        """Dotenv files (the space's, else ``[defaults] dotenv``), in the order applied."""
        own = self.conf.dotenv is not None
        val = self.conf.dotenv if own else qik.conf.project().defaults.dotenv
        files = [val] if isinstance(val, str) else list(val or [])
        path = f"$.spaces.{self.name}.dotenv" if own else "$.defaults.dotenv"
        return [
            _format(f, f"{path}[{i}]" if isinstance(val, list) else path)
            for i, f in enumerate(files)
        ]

    @qik.func.cached_property
    def environ(self) -> dict[str, str]:
        """Process env, then the venv's changes, then each dotenv file in order."""
        env = dict(self.venv.environ)
        root = qik.conf.root()
        for f in self.dotenv:
            env |= parse_dotenv(self._read_dotenv(root / f, f), env, self._what(f))
        return env

    def _what(self, name: str) -> str:
        return f'The dotenv file "{name}" of space "{self.name}"'

    def _read_dotenv(self, path: pathlib.Path, name: str) -> str:
        """A dotenv file's text; one that is missing, unreadable, not UTF-8 or holds a NUL
        byte (no environment value can) is an error naming it."""
        what = self._what(name)
        try:
            text = path.read_bytes().decode("utf-8")
        except FileNotFoundError:
            raise qik.errors.ConfigError(
                f"{what} does not exist.",
                hint=f"Create it, or remove it from the dotenv of the space in {qik.conf.where()}.",
            ) from None
        except OSError as exc:
            raise qik.errors.ConfigError(f"{what} cannot be read: {exc.strerror}.") from None
        except UnicodeDecodeError as exc:
            raise qik.errors.ConfigError(f"{what} is not UTF-8 text (byte {exc.start}).") from None
        if "\x00" in text:
            line = text[: text.index("\x00")].count("\n") + 1
            raise qik.errors.ConfigError(f"{what} holds a NUL byte (line {line}).")
        return text

    @qik.func.cached_property
    def glob_deps(self) -> set[str]:
        """Files whose content is part of every key in the space: dotenv files, venv lock."""
        return set(self.dotenv) | self.venv.glob_deps

    @qik.func.cached_property
    def modules(self) -> dict[str, qik.conf.ModuleLocator]:
        return self.conf.modules_by_name

    @qik.func.cached_property
    def root(self) -> str | None:
        return _root(self.conf, self.name)

    @qik.func.cached_property
    def fence(self) -> list[str]:
        """Paths inside the fence: the space's modules, listed paths, other spaces' fences."""
        return _fence(self.name, ())


def _format(template: str, path: str) -> str:
    try:
        return qik.model.ctx.format(template)
    except qik.errors.QikError as exc:
        raise exc.at(qik.conf.where(), path) from None


def _root(conf: qik.conf.SpaceConf, name: str) -> str | None:
    return _format(conf.root, f"$.spaces.{name}.root").strip("/") or None if conf.root else None


def _venv_conf(space: str) -> Any:
    proj = qik.conf.project()
    if space not in proj.resolved_spaces:
        raise qik.errors.SpaceNotFound("space", space, proj.resolved_spaces)
    conf = proj.resolved_spaces[space].venv
    if conf is None:
        conf = proj.defaults.venv
    if conf is None:
        return qik.conf.ActiveVenvConf()
    if isinstance(conf, str | list):
        return qik.conf.default_venv_type()(reqs=conf)
    return conf


def _check_venv_chain(space: str) -> None:
    """Follow ``{type = "space"}`` venvs; a cycle or an unknown space is an error."""
    seen: list[str] = []
    while True:
        if space in seen:
            chain = " -> ".join([*seen, space])
            raise qik.errors.CircularVenv(
                f"Circular venv inheritance: {chain}.",
                hint='Make one of these spaces own its venv instead of {type = "space"}.',
            )
        seen.append(space)
        conf = _venv_conf(space)
        if not isinstance(conf, qik.conf.SpaceVenvConf):
            return
        if conf.name not in qik.conf.project().resolved_spaces:
            raise qik.errors.SpaceNotFound(
                "space", conf.name, qik.conf.project().resolved_spaces, where=f'the venv of space "{space}"'
            )
        space = conf.name


def _venv(space: str) -> qik.model.venv.Venv:
    """A space's venv; an inherited one (``{type = "space"}``) is the other space's object."""
    _check_venv_chain(space)
    conf = _venv_conf(space)
    if isinstance(conf, qik.conf.SpaceVenvConf):
        return load(conf.name).venv
    factory = qik.registry.type_factory(conf)
    return factory(space, conf)  # type: ignore[no-any-return]


def _fence(space: str, seen: tuple[str, ...]) -> list[str]:
    if space in seen:
        raise qik.errors.CircularFence(
            f"Circular fence: {' -> '.join((*seen, space))}.",
            hint='Remove one of the {type = "space"} references from these fences.',
        )
    spaces = qik.conf.project().resolved_spaces
    if space not in spaces:
        where = f'the fence of space "{seen[-1]}"' if seen else ""
        raise qik.errors.SpaceNotFound("space", space, spaces, where=where)
    conf = spaces[space]
    paths = [m.path for m in conf.modules_by_name.values()]
    if isinstance(conf.fence, list):
        for i, item in enumerate(conf.fence):
            if isinstance(item, str):
                paths.append(_format(item, f"$.spaces.{space}.fence[{i}]").strip("/"))
            elif item.name != space:  # a space's own fence adds nothing
                paths.extend(_fence(item.name, (*seen, space)))
    return sorted(set(paths))


@qik.func.cache
def check() -> None:
    """Validate every space once per run: venv and fence chains, roots, module owners.

    Done eagerly so a broken space is reported even when no selected command uses it.
    """
    spaces = qik.conf.project().resolved_spaces
    owners: dict[str, str] = {}
    roots: dict[str, str] = {}
    for name, conf in spaces.items():
        _check_venv_chain(name)
        _fence(name, ())
        for mod in conf.modules_by_name:
            if mod in owners:
                raise qik.errors.ConfigError(
                    f'{qik.conf.where()}: module "{mod}" is in two spaces, "{owners[mod]}" and "{name}".',
                    hint="A module belongs to one space; rename one with {name, path}.",
                )
            owners[mod] = name
        if root := _root(conf, name):
            for other, oroot in roots.items():
                if root == oroot or root.startswith(oroot + "/") or oroot.startswith(root + "/"):
                    raise qik.errors.ConfigError(
                        f'{qik.conf.where()}: the roots of spaces "{other}" ({oroot}) and '
                        f'"{name}" ({root}) nest; roots must not overlap.'
                    )
            roots[name] = root


@qik.func.cache
def load(name: str) -> Space:
    """A space by name (every space is validated on the first load)."""
    check()
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
        sroot = _root(conf, name)
        if sroot and (rel == sroot or rel.startswith(sroot + "/")):
            return name
    return None


def module_space(module: str) -> str:
    """The space that owns a module."""
    for name, conf in qik.conf.project().resolved_spaces.items():
        if module in conf.modules_by_name:
            return name
    raise qik.errors.ModuleNotFound("module", module, qik.conf.project().modules_by_name)


def environ_for(space: str | None) -> dict[str, str]:
    """The environment of a process in a space (the process env without one)."""
    return load(space).environ if space else dict(os.environ)


def install_all() -> None:
    """Install every space's venv once (``qikx --install``); inherited venvs are skipped."""
    done = set()
    for name in qik.conf.project().resolved_spaces:
        venv = load(name).venv
        if venv.name not in done:  # an inherited venv is installed by the space that owns it
            done.add(venv.name)
            venv.install()


__all__ = [
    "Space",
    "check",
    "environ_for",
    "for_cwd",
    "install_all",
    "load",
    "module_space",
    "parse_dotenv",
]
