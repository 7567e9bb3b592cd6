"""qik's own plugin, loaded like pytest's conftest.py, and a working example for plugin authors.

It registers a ``python-version`` dependency type: the version of the interpreter that runs
qik joins the key, so lint, type-check and test results are cached per Python version.

    deps = ["src/**.py", {type = "python-version"}]
"""

from __future__ import annotations

import sys

import qik.conf
import qik.dep

# Plugins may declare which qik versions they support; a mismatch is a clear error.
QIK_REQUIRES = ">=0.3"


class PythonVersionConf(qik.conf.Dep, frozen=True, tag="python-version"):
    """The running Python version as a key input."""

    parts: int = 2


class PythonVersion(qik.dep.Dep, frozen=True):
    """A constant: the interpreter's version, cut to ``parts`` components."""

    @property
    def consts(self) -> list[str]:
        return [f"python={self.val}"]


def factory(
    conf: PythonVersionConf,
    module: qik.conf.ModuleLocator | None = None,
    space: str | None = None,
) -> PythonVersion:
    return PythonVersion(".".join(str(p) for p in sys.version_info[: conf.parts]))


qik.conf.register_type(PythonVersionConf, "qikplugin.factory")
