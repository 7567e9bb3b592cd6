from __future__ import annotations

from typing import ClassVar

import qik.conf
import qik.ctx
import qik.dep
from folderplug.qikplugin import ListingDepConf


def listing_path(pattern: str) -> str:
    safe = "".join(c if c.isalnum() else "_" for c in pattern)
    return f"._qik/artifacts/listing/{safe}.txt"


class ListingDep(qik.dep.BaseCmd, frozen=True):
    """The listing of files matching a pattern, written by a hidden plugin command."""

    strict: ClassVar[bool] = True
    space: str | None = None

    def get_cmd_name(self) -> str:
        return qik.conf.plugin_cmd_name("folderplug", "listing")

    def get_cmd_args(self) -> dict[str, str | None]:
        return {"pattern": self.val, "space": self.space}

    @property
    def globs(self) -> list[str]:  # type: ignore
        return [listing_path(self.val)]


def factory(
    conf: ListingDepConf,
    module: qik.conf.ModuleLocator | None = None,
    space: str | None = None,
) -> ListingDep:
    return ListingDep(qik.ctx.format(conf.pattern, module=module), space=space)
