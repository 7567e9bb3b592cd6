"""The qik.toml examples in the README and docs decode and list their runnables."""

from __future__ import annotations

import pathlib
import re
import tomllib

import pytest

from qik.testing import Project

ROOT = pathlib.Path(__file__).parent.parent
EXAMPLES = [
    (path, i, block)
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    for i, block in enumerate(re.findall(r"```toml\n(.*?)```", path.read_text(), re.S))
    if "[commands" in block or "[caches" in block
]


@pytest.mark.parametrize(("path", "index", "toml"), EXAMPLES, ids=[f"{p.name}#{i}" for p, i, _ in EXAMPLES])
def test_example_decodes(qik_project: Project, path: pathlib.Path, index: int, toml: str) -> None:
    qik_project.write("qik.toml", toml)
    for space in tomllib.loads(toml).get("spaces", {}).values():  # module folders must exist
        for mod in space.get("modules", []) if isinstance(space, dict) else []:
            qik_project.write(f"{mod if isinstance(mod, str) else mod['path']}/x.py", "")
    if "requirements.txt" in toml:
        qik_project.write("requirements.txt", "")
    env = {"QIK_DISABLE_PLUGIN_AUTOLOAD": "1", "AWS_ACCESS_KEY_ID": "x"}
    res = qik_project.qik("--ls", env=env)
    assert res.code == 0, f"{path.name} example {index}: {res.err}"
