"""Expected failures. The CLI is the one place that turns these into exit codes."""

from __future__ import annotations

import re
from typing import Self

#: Control characters, line separators and bidi overrides: shown escaped, so an error
#: stays one line and reads as it is (a name from qik.toml may hold any of them).
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def printable(text: str) -> str:
    """``text`` with control characters escaped (``\\n``, ``\\0``, ``\\u202e``)."""
    if not _UNPRINTABLE.search(text):
        return text
    return _UNPRINTABLE.sub(
        lambda m: "\\0" if m.group() == "\x00" else m.group().encode("unicode_escape").decode(),
        text,
    )


class QikError(Exception):
    """An expected failure, shown to the user as one line (plus an optional hint)."""

    exit_code: int = 2

    def __init__(self, msg: str, *, hint: str | None = None) -> None:
        msg = printable(msg)
        super().__init__(msg)
        self.msg = msg
        self.hint = printable(hint) if hint else hint

    def __str__(self) -> str:
        return self.msg

    def at(self, where: str, path: str, *, subject: str = "") -> Self:
        """Name the file and the config path the error comes from (done once: the innermost
        place that knows it wins), e.g. ``qik.toml: ... - at "$.commands.lint.exec"``."""
        if not getattr(self, "located", False):
            about = f"{subject}: " if subject else ""
            self.msg = printable(f'{where}: {about}{self.msg.rstrip(".")} - at "{path}"')
            self.args = (self.msg,)
            self.located = True
        return self


class ConfigError(QikError):
    """The configuration (qik.toml, a plugin's, the environment it reads) is wrong: exit 2."""


class ConfigNotFound(ConfigError):
    """No qik.toml (or ``[tool.qik]``) here or above, up to the git root."""


class ConfigParse(ConfigError):
    """A config file is not valid TOML, or not of the expected shape."""


class UnknownChoice(ConfigError):
    """A name that is not one of the valid choices; the message lists them."""

    def __init__(self, what: str, name: str, choices: object, *, where: str = "") -> None:
        valid = sorted(str(c) for c in choices)  # type: ignore[attr-defined]
        listing = ", ".join(valid) if valid else "none are configured"
        loc = f" in {where}" if where else ""
        super().__init__(f'Unknown {what} "{name}"{loc}. Valid choices: {listing}.')
        self.name = name


class CommandNotFound(UnknownChoice):
    """An unknown command name."""


class ModuleNotFound(UnknownChoice):
    """An unknown module name."""


class SpaceNotFound(UnknownChoice):
    """An unknown space name."""


class CacheNotFound(UnknownChoice):
    """An unknown cache name."""


class TypeNotFound(UnknownChoice):
    """An unknown cache, venv or dep ``type``."""


class BadValue(ConfigError):
    """A value that decodes but cannot be used (a NUL byte, a folder that does not exist)."""


class FactoryNotFound(ConfigError):
    """A factory path (``factory = "pkg.mod.func"``, or a registered type's) that does not
    resolve to a callable."""


class PluginNotFound(ConfigError):
    """A plugin that is not installed (or registers no configuration)."""


class PluginImport(ConfigError):
    """A plugin whose own import fails."""


class PluginIncompatible(ConfigError):
    """A plugin built for another qik version or plugin API."""


class DuplicateType(ConfigError):
    """Two plugins register the same tag."""


class CycleError(ConfigError):
    """A cycle: of command dependencies, venvs, fences or constraints."""


class CircularVenv(CycleError):
    """Spaces whose venvs inherit from each other in a circle."""


class CircularFence(CycleError):
    """Fences that include each other in a circle."""


class CircularConstraint(CycleError):
    """uv constraints that lead back to the space itself."""


class CtxValueNotFound(ConfigError):
    """A required context variable has no value."""


class CtxCast(ConfigError):
    """A context value does not cast to its type."""


EnvCast = CtxCast  # upstream qik's name, kept for plugins written against it


class UnconfiguredCtx(ConfigError):
    """A template names a context variable that is not declared."""


class PydistNotFound(ConfigError):
    """A ``pydist`` dependency that is not installed in the venv."""


class ArgNotSupplied(ConfigError):
    """A command factory needs an argument (e.g. ``space``) that was not given."""


class UsageError(QikError):
    """A bad command line."""


class GitError(QikError):
    """git could not answer (a bad ref, a shallow clone)."""


class RunnerError(QikError):
    exit_code = 1


class ExtraNotInstalled(QikError):
    """An optional dependency is missing; the hint names the extra to install."""

    def __init__(self, module: str, extra: str) -> None:
        super().__init__(
            f'The optional package "{module}" is not installed.',
            hint=f'pip install "qik[{extra}]"',
        )
