"""The docs match the tool: their qik.toml examples decode, every command line they show
runs, the generated reference pages are current, and the site builds with --strict."""

from __future__ import annotations

import os
import pathlib
import re
import shutil
import subprocess
import sys
import tomllib
from typing import Any

import pytest

from qik.testing import Project

ROOT = pathlib.Path(__file__).parent.parent
DOCS = ROOT / "docs"
PAGES = [ROOT / "README.md", *sorted(DOCS.rglob("*.md"))]
BIN = pathlib.Path(sys.executable).parent


def _rel(path: pathlib.Path) -> str:
    return str(path.relative_to(ROOT))


def toml_blocks(text: str) -> list[str]:
    return re.findall(r"```toml\n(.*?)```", text, re.S)


EXAMPLES = [
    (path, i, block)
    for path in PAGES
    for i, block in enumerate(toml_blocks(path.read_text()))
    if any(table in block for table in ("[commands", "[caches", "[spaces", "[plugins", "[ctx"))
]


@pytest.mark.parametrize(("path", "index", "toml"), EXAMPLES, ids=[f"{p.name}#{i}" for p, i, _ in EXAMPLES])
def test_example_decodes(qik_project: Project, path: pathlib.Path, index: int, toml: str) -> None:
    qik_project.write("qik.toml", toml)
    python = re.findall(r"```python\n(.*?)```", path.read_text(), re.S)
    if python and "register_type" in python[0] and "qikplugin.factory" in python[0]:
        qik_project.write("qikplugin.py", python[0])  # the page's own project plugin
    materialize(qik_project, toml)
    res = qik_project.qik("--ls", env=ENV)
    assert res.code == 0, f"{path.name} example {index}: {res.err}"


# ---- every command line shown in a ```sh block runs ----


def shell_lines(text: str) -> list[str]:
    """The lines of every ```sh block; in a block with `$ ` prompts, only the prompted ones."""
    out = []
    for block in re.findall(r"```sh\n(.*?)```", text, re.S):
        lines = [ln.rstrip() for ln in block.splitlines() if ln.strip()]
        if any(ln.startswith("$ ") for ln in lines):
            lines = [ln[2:] for ln in lines if ln.startswith("$ ")]
        out.extend(lines)
    return out


def qik_lines(text: str) -> list[str]:
    return [ln for ln in shell_lines(text) if re.match(r"(qik|qikx)(\s|$)", ln)]


#: Lines that cannot run in the test suite, by prefix, with the reason. Empty today: S3
#: caches point at a closed loopback port (ENV), uv runs offline (a lock of an empty
#: requirements file works; anything else fails with exit 1, which still proves the line
#: parses and its project decodes), and `--since origin/main` gets a local ref. A line
#: that needs the network or a CI service goes here, e.g.
#: "qik --cache remote": "needs a real S3 bucket".
SKIP: dict[str, str] = {}

#: The project a page's commands run in is the first qik.toml example of the page with
#: commands, spaces or caches; these pages name another one (a text the block contains).
PROJECT_BLOCK = {
    "configuration.md": "[spaces.api]",  # its qikx line runs in the api space of that example
}

#: Fake AWS settings: any S3 cache in an example points at a closed loopback port, so it
#: is "down" at once (a warning), never the internet.
ENV = {
    "QIK_DISABLE_PLUGIN_AUTOLOAD": "1",
    "AWS_ACCESS_KEY_ID": "docs-test",
    "AWS_SECRET_ACCESS_KEY": "docs-test",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
    "AWS_EC2_METADATA_DISABLED": "true",
    "UV_OFFLINE": "1",
}


def page_toml(path: pathlib.Path) -> str | None:
    blocks = toml_blocks(path.read_text())
    want = PROJECT_BLOCK.get(path.name)
    for block in blocks:
        if want and want not in block:
            continue
        if want or any(k in block for k in ("[commands", "[spaces", "[caches")):
            return block
    return None


def _strings(val: Any) -> list[str]:
    if isinstance(val, str):
        return [val]
    if isinstance(val, list):
        return [s for v in val for s in _strings(v)]
    return []


def materialize(p: Project, toml: str) -> None:
    """Write ``toml`` and the files it names (modules, requirements, dotenv, roots); commit."""
    conf = tomllib.loads(toml)
    if not conf.get("commands"):
        toml += '\n[commands.check]\nexec = "echo checked"\ndeps = ["**.py"]\n'
    p.write("qik.toml", toml)
    files: list[str] = []
    dirs: list[str] = []
    for space in (conf.get("spaces") or {}).values():
        if isinstance(space, str | list):
            files += _strings(space)
            continue
        venv = space.get("venv")
        files += _strings(venv) if not isinstance(venv, dict) else _strings(venv.get("reqs"))
        files += _strings(space.get("dotenv"))
        for mod in space.get("modules", []):
            dirs.append(mod if isinstance(mod, str) else mod["path"])
        dirs += [f for f in _strings(space.get("fence")) if "/" in f]
        dirs += _strings(space.get("root"))
    defaults = conf.get("defaults") or {}
    files += _strings(defaults.get("venv")) + _strings(defaults.get("dotenv"))
    files += [d for d in _strings((conf.get("base") or {}).get("deps")) if "*" not in d and "{" not in d]
    for f in files:
        if "{" not in f and not p.path(f).exists():
            p.write(f, "")
    for d in dirs:
        if "{" not in d:
            p.write(f"{d}/__init__.py", "")
            p.write(f"{d}/x.py", "import os\n")
    p.commit("docs example")
    p.git("update-ref", "refs/remotes/origin/main", "HEAD")  # for --since origin/main


def run_line(p: Project, line: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("QIK", "AWS_", "UV_"))}, **ENV}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    return subprocess.run(["/bin/sh", "-c", line], cwd=p.root, env=env, capture_output=True, text=True,
                          timeout=timeout)


COMMAND_PAGES = [p for p in PAGES if qik_lines(p.read_text()) and p.name != "getting-started.md"]


@pytest.mark.parametrize("path", COMMAND_PAGES, ids=_rel)
def test_commands_shown_in_docs_run(qik_project: Project, path: pathlib.Path) -> None:
    """Each `qik ...` line of the page, in order, in the page's example project: no usage
    or configuration error (exit 2), no traceback. Commands may fail (exit 1): a doc's
    `ruff check` may well find something in an example."""
    toml = page_toml(path)
    materialize(qik_project, toml if toml is not None else '[commands.check]\nexec = "true"\ndeps = ["*.py"]\n')
    ran = 0
    for line in qik_lines(path.read_text()):
        if any(line.startswith(s) for s in SKIP):
            continue
        res = run_line(qik_project, line)
        out = res.stdout + res.stderr
        assert res.returncode != 2, f"{_rel(path)}: `{line}` exited 2:\n{out}"
        assert "Traceback" not in out, f"{_rel(path)}: `{line}` raised:\n{out}"
        ran += 1
    assert ran, f"{_rel(path)}: every command line is skipped"


def test_getting_started_walkthrough(tmp_path: pathlib.Path) -> None:
    """The tutorial as a reader follows it: every shell line, in order, and what it says."""
    page = (DOCS / "getting-started.md").read_text()
    lines = shell_lines(page)
    setup_end = lines.index(next(ln for ln in lines if ln.startswith("qik")))
    script = "set -e\n" + "\n".join(lines[:setup_end]) + "\n"
    proc = subprocess.run(["/bin/sh", "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    demo = Project(tmp_path / "demo")
    demo.git("config", "user.email", "test@qik.invalid")
    demo.git("config", "user.name", "qik test")
    demo.write("qik.toml", toml_blocks(page)[0])
    results = [(line, run_line(demo, line)) for line in lines[setup_end:]]
    for line, res in results:
        assert res.returncode == 0, f"`{line}` exited {res.returncode}:\n{res.stdout}{res.stderr}"
    by_line = [(line, res.stdout + res.stderr) for line, res in results]
    ls = next(out for line, out in by_line if line.startswith("qik --ls"))
    assert ls.split() == ["build#count", "build#greet", "report", "test#count", "test#greet"], ls
    bare = [out for line, out in by_line if re.match(r"qik\s*(#|$)", line)]
    assert "5 ran" in bare[0] and "5 cached" in bare[1], bare
    explain = next(out for line, out in by_line if line.startswith("qik --explain"))
    shown = re.search(r"```text\n(.*?)```", page.split("qik --explain", 1)[1], re.S)
    assert shown and explain.strip() == shown.group(1).strip(), explain


# ---- the generated reference and the site ----


def test_reference_pages_are_current() -> None:
    """docs/reference/ is what docs/scripts/gen_reference.py makes from this checkout's qik."""
    proc = subprocess.run([sys.executable, str(DOCS / "scripts" / "gen_reference.py"), "--check"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_reference_covers_every_meta_command() -> None:
    cli = (DOCS / "reference" / "cli.md").read_text()
    help_text = subprocess.run([str(BIN / "qik"), "--help"], capture_output=True, text=True,
                               env={**os.environ, "COLUMNS": "200"}).stdout
    for meta in sorted(set(re.findall(r"qik (:[a-z]+)", help_text))):
        assert f"## `qik {meta}`" in cli, f"qik {meta} is missing from docs/reference/cli.md"


def test_site_builds_strict(tmp_path: pathlib.Path) -> None:
    """mkdocs build --strict: no broken link or anchor, every page in the nav, no web fonts."""
    mkdocs = shutil.which("mkdocs", path=str(BIN))
    assert mkdocs, "mkdocs is not installed: ./dev setup (the dev extra has mkdocs-material)"
    proc = subprocess.run([mkdocs, "build", "--strict", "-q", "-f", str(ROOT / "mkdocs.yml"), "-d", str(tmp_path / "site")],
                          capture_output=True, text=True, timeout=180, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    html = "".join(p.read_text() for p in (tmp_path / "site").rglob("*.html"))
    assert "fonts.googleapis.com" not in html and "fonts.gstatic.com" not in html
    for page in DOCS.rglob("*.md"):
        rel = page.relative_to(DOCS).with_suffix("")
        built = tmp_path / "site" / ("" if rel.name == "index" else rel) / "index.html"
        assert built.exists(), f"{page} was not built"


def test_nav_lists_every_page() -> None:
    nav = (ROOT / "mkdocs.yml").read_text()
    for page in DOCS.rglob("*.md"):
        assert str(page.relative_to(DOCS)) in nav, f"{page.relative_to(ROOT)} is not in mkdocs.yml's nav"


def test_bundled_plugin_guide_example_runs(qik_project: Project) -> None:
    """The plugin guide's FolderConf registers as the page shows (decode + :plugins)."""
    page = (DOCS / "plugins.md").read_text()
    code = re.findall(r"```python\n(.*?)```", page, re.S)[0]
    qik_project.write("qikplugin.py", code)
    qik_project.write("qik.toml", '[caches.mine]\ntype = "folder"\npath = "/tmp/x"\n')
    res = qik_project.qik(":plugins", env={"QIK_DISABLE_PLUGIN_AUTOLOAD": "1"})
    assert res.ok, res.text
    assert "folder" in res.out



def test_files_the_docs_cite_exist() -> None:
    """A page that points at a test, a module or a script of the repository names one that
    is there (files get renamed; the docs must follow)."""
    for page in PAGES:
        for cited in re.findall(r"`((?:tests|src/qik|bench|examples|docs/scripts)/[\w/.-]+\.(?:py|md|toml|sh))`", page.read_text()):
            assert (ROOT / cited).exists(), f"{_rel(page)} cites {cited}, which does not exist"
