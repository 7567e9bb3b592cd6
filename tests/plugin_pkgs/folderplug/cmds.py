from __future__ import annotations

import qik.conf
import qik.dep
import qik.errors
import qik.runnable
import qik.unset
from folderplug.dep import listing_path


def listing_factory(cmd: str, conf: qik.conf.Cmd, **args: str) -> dict[str, qik.runnable.Runnable]:
    if "pattern" not in args:
        raise qik.errors.ArgNotSupplied('"pattern" is required for the listing command.')
    plugin_conf = qik.conf.plugin("folderplug")
    out = listing_path(args["pattern"])
    runnable = qik.runnable.Runnable(
        name=qik.runnable.fmt_name(cmd, pattern=args["pattern"]),
        cmd=cmd,
        val=f"mkdir -p ._qik/artifacts/listing && echo '{plugin_conf.greeting}' > {out} && ls {args['pattern']} >> {out}",
        deps=[qik.dep.Glob(args["pattern"])],
        artifacts=[out],
        cache=qik.unset.coalesce(plugin_conf.listing_cache, default="local"),
        venv=None,
        args={"pattern": args["pattern"]},
    )
    return {runnable.name: runnable}


def setup_factory(cmd: str, conf: qik.conf.Cmd, **args: str) -> dict[str, qik.runnable.Runnable]:
    space = args.get("space")
    if not space:
        raise qik.errors.ArgNotSupplied('"space" is required for the setup command.')
    runnable = qik.runnable.Runnable(
        name=qik.runnable.fmt_name(cmd, space=space),
        cmd=cmd,
        val=f"mkdir -p ._qik/venv/{space}/bin && echo set up {space}",
        deps=[qik.dep.Glob("qik.toml")],
        space=space,
        venv=None,
    )
    return {runnable.name: runnable}
