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
        lambda m: "\\0" if m.group() == "\x00" else m.group().encode("unicode_escape").decode(), text
    )


class QikError(Exception):
    """An expected failure, shown to the user as one line (plus an optional hint)."""

    code: str = "qik"
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
    code = "config"


class ConfigNotFound(ConfigError):
    code = "config-not-found"


class ConfigParse(ConfigError):
    code = "config-parse"


class UnknownChoice(ConfigError):
    """A name that is not one of the valid choices; the message lists them."""

    code = "unknown-choice"

    def __init__(self, what: str, name: str, choices: object, *, where: str = "") -> None:
        valid = sorted(str(c) for c in choices)  # type: ignore[attr-defined]
        listing = ", ".join(valid) if valid else "none are configured"
        loc = f" in {where}" if where else ""
        super().__init__(f'Unknown {what} "{name}"{loc}. Valid choices: {listing}.')
        self.name = name


class CommandNotFound(UnknownChoice):
    code = "command-not-found"


class ModuleNotFound(UnknownChoice):
    code = "module-not-found"


class SpaceNotFound(UnknownChoice):
    code = "space-not-found"


class CacheNotFound(UnknownChoice):
    code = "cache-not-found"


class TypeNotFound(UnknownChoice):
    code = "type-not-found"


class BadValue(ConfigError):
    """A value that decodes but cannot be used (a NUL byte, a folder that does not exist)."""

    code = "bad-value"


class FactoryNotFound(ConfigError):
    """A factory path (``factory = "pkg.mod.func"``, or a registered type's) that does not
    resolve to a callable."""

    code = "factory-not-found"


class PluginNotFound(ConfigError):
    code = "plugin-not-found"


class PluginImport(ConfigError):
    code = "plugin-import"


class PluginIncompatible(ConfigError):
    code = "plugin-incompatible"


class DuplicateType(ConfigError):
    code = "duplicate-type"


class CycleError(ConfigError):
    code = "cycle"


class CircularVenv(CycleError):
    code = "circular-venv"


class CircularFence(CycleError):
    code = "circular-fence"


class CircularConstraint(CycleError):
    code = "circular-constraint"


class CtxValueNotFound(ConfigError):
    code = "ctx-missing"


class CtxCast(ConfigError):
    code = "ctx-cast"


EnvCast = CtxCast  # upstream qik's name, kept for plugins written against it


class UnconfiguredCtx(ConfigError):
    code = "ctx-unknown"


class PydistNotFound(ConfigError):
    code = "pydist-not-found"


class ArgNotSupplied(ConfigError):
    """A command factory needs an argument (e.g. ``space``) that was not given."""

    code = "arg-not-supplied"


class UsageError(QikError):
    code = "usage"


class GitError(QikError):
    code = "git"


class RunnerError(QikError):
    code = "runner"
    exit_code = 1


class ExtraNotInstalled(QikError):
    """An optional dependency is missing; the hint names the extra to install."""

    code = "extra-not-installed"

    def __init__(self, module: str, extra: str) -> None:
        super().__init__(
            f'The optional package "{module}" is not installed.',
            hint=f'pip install "qik[{extra}]"',
        )
