from __future__ import annotations

import os
import pathlib

import qik.cmd
import qik.conf
import qik.dep
import qik.func
import qik.unset
import qik.venv
from folderplug.qikplugin import FakeVenvConf


class FakeVenv(qik.venv.Venv, frozen=True, dict=True):
    conf: FakeVenvConf

    @qik.func.cached_property
    def marker(self) -> str:
        return qik.unset.coalesce(self.conf.marker, default="unmarked")

    @qik.func.cached_property
    def environ(self) -> dict[str, str]:  # type: ignore
        return os.environ | {
            "VIRTUAL_ENV": str(self.dir),
            "PATH": f"{self.dir}/bin:{os.environ['PATH']}",
            "FAKE_MARKER": self.marker,
        }

    @qik.func.cached_property
    def dir(self) -> pathlib.Path:  # type: ignore
        return qik.conf.priv_work_dir() / "venv" / self.name

    @qik.func.cached_property
    def site_packages_dir(self) -> pathlib.Path:  # type: ignore
        return self.dir / "lib" / "site-packages"

    @qik.func.cached_property
    def runnable_deps(self) -> dict[str, qik.dep.Runnable]:
        return {
            runnable.name: qik.dep.Runnable(name=runnable.name, obj=runnable, strict=True)
            for runnable in qik.cmd.load(
                qik.conf.plugin_cmd_name("folderplug", "setup"), space=self.name
            ).runnables.values()
        }


def factory(name: str, conf: FakeVenvConf) -> FakeVenv:
    return FakeVenv(name=name, conf=conf)
