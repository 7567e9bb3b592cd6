"""The ``pygraph`` dependency: the lock file of a module, written by ``pygraph.lock``."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import qik.plugin
import qik.pygraph.utils

if TYPE_CHECKING:
    from qik.pygraph.qikplugin import PygraphDepConf


class PygraphDep(qik.plugin.BaseCmd, frozen=True):
    """A python module and its associated imports.

    It depends on the ``pygraph.lock`` runnable of the module: the lock file lists every
    repo file the module imports transitively with its digest, and the version of each
    distribution it imports, so the file changes exactly when one of those does.
    """

    strict: ClassVar[bool] = True  # type: ignore[misc]
    space: str | None = None

    def get_cmd_name(self) -> str:
        return qik.pygraph.utils.lock_cmd_name()

    def get_cmd_args(self) -> dict[str, str | None]:
        return {"pyimport": self.val, "space": self.space}

    @property
    def globs(self) -> list[str]:  # type: ignore[override]
        return [str(qik.pygraph.utils.lock_path(self.val, self.space))]

    @property
    def since(self) -> list[str]:
        # The lock file is not in git; any Python file may change the graph.
        pp = qik.pygraph.utils.python_path()
        return [f"{pp}/**.py" if pp else "**.py"]

    @property
    def watch(self) -> list[str]:
        return self.since


def factory(
    conf: PygraphDepConf,
    module: qik.plugin.ModuleLocator | None = None,
    space: str | None = None,
) -> PygraphDep:
    return PygraphDep(qik.plugin.ctx_format(conf.pyimport, module=module), space=space)
