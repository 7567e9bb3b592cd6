"""Fuzzing qik.toml: whatever the file says, qik ends with 0, 1 or 2 and one clear line.

Hypothesis writes ``qik.toml`` files (valid TOML from tomli_w: wrong types, unknown keys,
odd unicode, templates, cycles, ``..`` and absolute paths, NUL bytes, deep nesting; and raw
text that is often not TOML at all), then runs the real ``qik --ls`` and ``qik`` on each in a
fresh git repository. Every run must exit 0, 1 or 2 within 20 s, print no traceback, and
write nothing outside the repository (a sentinel folder beside it and the HOME it is given
stay empty). Commands are drawn from a harmless set (``echo``, ``true``, ``false``,
``mkdir -p out && ...``), so a command that runs can only write inside the repository.

The default run is bounded (about a minute); ``pytest -m slow tests/test_fuzz_config.py``
(or ``QIK_FUZZ_EXAMPLES=N``) runs many more examples.
"""

from __future__ import annotations

import copy
import os
import pathlib
import tempfile
from typing import Any

import pytest
import tomli_w
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from qik.testing import Project, init_repo

TIMEOUT = 20  # seconds per qik run
DEFAULT_EXAMPLES = 60
SLOW_EXAMPLES = int(os.environ.get("QIK_FUZZ_EXAMPLES", "500"))

# ---- building blocks ----

ODD = ["é", "名", "\u200b", "\u202e", "🙂", "\t", "\n", " ", "\\", '"', "'", "#", "=", "ß"]
TEXT = st.text(alphabet=st.sampled_from([*"abc-_./{}$*?![]^", *ODD]), max_size=8)
CMD_NAMES = ["a", "b", "c", "lint", "é", "名", "a b", "p.q", "m1/c"]
NAMES = st.one_of(
    st.sampled_from([*CMD_NAMES, "x/y", "", ".", "..", "a#b", "a@b", "a?b", ":x", "-", "a\nb"]), TEXT
)
TEMPLATES = [
    "{ctx.}", "{module.}", "{0}", "{{", "}}", "{ctx.nope}", "{module.nmae}", "{module.dir}",
    "{module.name}", "{module.pyimport}", "{ctx.v}", "{ctx.qik.arch}", "{ctx.qik.nope}",
    "{ctx.qik.}", "{ctx.project.v}", "{{module.dir}}", "{", "}", "{ctx.v.x}", "{module.dir.x}",
    "{ctx.qik.workers}", "{ctx.w}",
]
#: Shell strings that cannot write outside the repository whatever their templates become:
#: they echo, or write to a fixed relative path.
SAFE_EXEC = [
    "echo x", "true", "false", "exit 3", "mkdir -p out && echo a > out/f", "cat out/f",
    "echo {module.dir}", "echo '{module.name}' '{module.pyimport}'", "echo '{ctx.v}'",
    "awk 'BEGIN {print 1}'", "echo ${HOME:-x}", "echo é名🙂", "ls {module.dir}",
]
EXEC = st.one_of(
    st.sampled_from(SAFE_EXEC),
    st.builds(lambda e, t: f"{e} '{t}'", st.sampled_from(["echo", "echo x &&  echo"]), st.sampled_from(TEMPLATES)),
)
GLOBS = [
    "src/**", "*.txt", "**", "{module.dir}/**", "m1/**.py", "out/f", "deps.json", "dev.env",
    "[!]", "[z-a]", "a/[\\]", "[a-c]*.txt", "m[12]/**", "[",
    "../sentinel/x", "/etc/hostname", "/", "", "a/../../x", "./src", "{ctx.v}", "é/**", "**/*.py",
]
ARTIFACTS = ["out/f", "out/**", "{module.dir}/out/**", "../sentinel/x", "/tmp/x", "", "out/../../x", "*.nope"]
MODULES = [
    "m1", "m2", "m1/", "/m2", {"name": "n", "path": "m2"}, {"name": "é", "path": "m1"},
    "nothere", "../sentinel", ".", "", "m1/../..", {"name": "t", "path": "/tmp"}, {"name": "", "path": "m1"},
]
#: Mostly the harmless ones; the odd ones (index >= 5) now and then.
MODULE = st.one_of(st.sampled_from(MODULES[:5]), st.sampled_from(MODULES[:5]), st.sampled_from(MODULES))


def garbage() -> st.SearchStrategy[Any]:
    """A value of the wrong type (or shape) for wherever it lands."""
    leaf = st.one_of(
        st.integers(-(2**63), 2**63 - 1), st.booleans(), st.floats(), TEXT, st.just([]), st.just({})
    )
    return st.recursive(
        leaf, lambda c: st.lists(c, max_size=3) | st.dictionaries(NAMES, c, max_size=3), max_leaves=6
    )


def deep(depth: int) -> Any:
    val: Any = "x"
    for i in range(depth):
        val = [val] if i % 2 else {"k": val}
    return val


DEP = st.one_of(
    st.sampled_from(GLOBS),
    st.builds(
        lambda n, s: {"type": "command", "name": n, "strict": s},
        st.sampled_from([*CMD_NAMES, "nope"]),
        st.booleans(),
    ),
    st.builds(lambda v: {"type": "const", "val": v}, st.one_of(st.sampled_from(TEMPLATES), TEXT)),
    st.builds(lambda p: {"type": "glob", "pattern": p}, st.sampled_from(GLOBS)),
    st.sampled_from(
        [{"type": "pydist", "name": "msgspec"}, {"type": "pydist", "name": "no-such-dist"},
         {"type": "load", "path": "deps.json"}, {"type": "nope"}, {"type": "command"}]
    ),
)

COMMAND = st.one_of(
    EXEC,
    st.fixed_dictionaries(
        {"exec": EXEC},
        optional={
            "deps": st.lists(DEP, max_size=4),
            "artifacts": st.lists(st.sampled_from(ARTIFACTS), max_size=2),
            # The valid values weigh most: one bad value stops the whole run at load.
            "cache": st.sampled_from(["local", "local", "local", "repo", "repo", "none", "r", "nope", "{ctx.v}"]),
            "cache-when": st.sampled_from(["success", "failed", "finished", "success", "failed", "finished", "never"]),
            "hidden": st.booleans(),
            "space": st.sampled_from(["default", "default", "default", "s2", "nope"]),
            "factory": st.sampled_from(
                [*["qik.runnable.factory", ""] * 4, "json.nope", "nonexist.f", "os.sep", "json.dumps", "not a path"]
            ),
            "tags": st.lists(TEXT, max_size=2),
        },
    ),
)

SPACE = st.one_of(
    st.fixed_dictionaries(
        {"modules": st.lists(MODULE, max_size=3)},
        optional={
            "dotenv": st.sampled_from(["dev.env", ["dev.env"], "nothere.env", "../sentinel/x.env", "{ctx.nope}", ["{ctx.v}.env"]]),
            "root": st.sampled_from(["m1", "m2", "", "..", "{ctx.v}"]),
            "fence": st.one_of(
                st.booleans(),
                st.lists(st.sampled_from(["m1", "..", "/", {"type": "space", "name": "s2"}, {"type": "space", "name": "default"}]), max_size=2),
            ),
            "venv": st.sampled_from(
                [{"type": "active"}, {"type": "space", "name": "s2"}, {"type": "space", "name": "default"}, {"type": "nope"}, "requirements.txt"]
            ),
        },
    ),
    st.sampled_from(["requirements.txt", ["requirements.txt"]]),
)

CTX = st.lists(
    st.sampled_from(
        ["w", {"name": "v", "default": "val"}, {"name": "v", "default": "val"}, {"name": "i", "type": "int", "default": "x"},
         {"name": "b", "type": "bool", "default": True}, {"name": "r"}, {"name": "v", "type": "nope"}, "", "é"]
    ),
    max_size=3,
)

PROJECT = st.fixed_dictionaries(
    {"commands": st.dictionaries(st.sampled_from(CMD_NAMES), COMMAND, min_size=1, max_size=4)},
    optional={
        "spaces": st.dictionaries(st.sampled_from(["default", "default", "s2", "é"]), SPACE, max_size=2),
        "ctx": CTX,
        "base": st.fixed_dictionaries({"deps": st.lists(DEP, max_size=2)}),
        "defaults": st.fixed_dictionaries(
            {}, optional={"cache": st.sampled_from(["local", "repo", "nope"]), "cache-when": st.sampled_from(["success", "x"]), "dotenv": st.sampled_from(["dev.env", "nothere.env"])}
        ),
        "caches": st.dictionaries(st.sampled_from(["r", "l", "bad", "local"]), st.sampled_from([{"type": "repo"}, {"type": "local", "max-size": "1KB"}, {"type": "nope"}, {}]), max_size=2),
        # Mostly none: a plugin that does not exist stops every run at load.
        "plugins": st.one_of(
            *[st.just({})] * 5,
            st.dictionaries(st.sampled_from(["p", "q"]), st.sampled_from(["nonexistent_pkg_xyz", "json", {"pyimport": "nonexistent_pkg_xyz"}, {}]), max_size=1),
        ),
        "pydist": st.fixed_dictionaries({}, optional={"versions": st.just({"no-such-dist": "1"}), "ignore-missing": st.booleans()}),
    },
)


def _slots(val: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a config (table key or list index) a mutation can land."""
    out = [path]
    if isinstance(val, dict):
        for k, v in val.items():
            out += _slots(v, (*path, k))
    elif isinstance(val, list):
        for i, v in enumerate(val):
            out += _slots(v, (*path, i))
    return out


def _get(val: Any, path: tuple[Any, ...]) -> Any:
    for k in path:
        val = val[k]
    return val


@st.composite
def mutated(draw: st.DrawFn) -> dict[str, Any]:
    """A plausible project with 0-2 faults: a value of the wrong type, an unknown key, an odd
    character (NUL, bidi override, newline) in a string, a template, deep nesting."""
    project = draw(PROJECT)
    for _ in range(draw(st.integers(0, 2))):
        # A copy first: strategies share objects (st.just({})) that must never change.
        project = copy.deepcopy(project)
        slots = _slots(project)
        path = draw(st.sampled_from(slots))
        parent, key = (_get(project, path[:-1]), path[-1]) if path else (None, None)
        kind = draw(st.sampled_from(["type", "unknown", "char", "template", "deep"]))
        target = _get(project, path)
        if kind == "type" and parent is not None:
            parent[key] = draw(garbage())
        elif kind == "unknown" and isinstance(target, dict):
            target[draw(st.sampled_from(["exce", "dep", "type", "x", "é", "a\x00"]))] = draw(garbage())
        elif kind == "char" and parent is not None and isinstance(target, str):
            at = draw(st.integers(0, len(target)))
            parent[key] = target[:at] + draw(st.sampled_from(["\x00", "\u202e", "\n", "\x1b[2J", "\u200b", "é"])) + target[at:]
        elif kind == "template" and parent is not None and isinstance(target, str):
            parent[key] = target + draw(st.sampled_from(TEMPLATES))
        elif kind == "deep":
            project["nesting"] = deep(draw(st.integers(1, 300)))
    return project


FRAGMENTS = [
    "[commands]", "[commands.a]", 'exec = "echo x"', "exec = ", '"', "'", "{", "}", "[", "]", "=",
    "\n", "deps = [", '{type = "command", name = "a"}', "\\u0000", '"\\u0000"', "[[commands]]",
    "[spaces.default]", 'modules = ["m1"]', "a = " + "[" * 600 + "]" * 600, "é", "\x00", "\r\n",
    '"""', "\'\'\'", "#", "1979-05-27T07:32:00Z", "nan", "inf", "0x10", "a.b.c = 1", "[a.b]",
]
RAW = st.one_of(
    st.lists(st.sampled_from(FRAGMENTS), max_size=12).map("".join),
    st.text(max_size=200),
    st.builds(lambda d, f: tomli_w.dumps(d) + "\n" + f, PROJECT, st.sampled_from(FRAGMENTS)),
)


def _toml(project: dict[str, Any]) -> str | None:
    try:
        return tomli_w.dumps(project)
    except (TypeError, ValueError, RecursionError):  # garbage tomli_w cannot write
        return None


#: Mostly valid TOML (most of it a plausible project), a fifth raw text.
CONFIG = st.one_of(*[mutated().map(_toml)] * 4, RAW).filter(lambda t: t is not None)
#: dev.env: mostly plain, sometimes any bytes (not UTF-8, NUL, no "=").
DOTENV = st.one_of(st.just(b"A=1\n"), st.just(b"export B='x y' # c\nC=${B}\n"), st.binary(max_size=40))


# ---- running qik on one config ----


def _setup(root: pathlib.Path, text: str, dotenv: bytes) -> tuple[Project, pathlib.Path, pathlib.Path]:
    sentinel, home = root / "sentinel", root / "home"
    sentinel.mkdir()
    home.mkdir()
    p = init_repo(root / "repo")
    p.env = {"HOME": str(home), "QIK_DISABLE_PLUGIN_AUTOLOAD": "1", "QIK__WORKERS": "2"}
    p.path("qik.toml").write_bytes(text.encode("utf-8", "surrogatepass"))
    for rel, content in [("m1/a.py", "x = 1\n"), ("m2/b.txt", "b\n"), ("src/s.txt", "s\n"), ("requirements.txt", "")]:
        p.write(rel, content)
    p.write("m1/qik.toml", '[commands.c]\nexec = "echo c"\n')
    p.path("dev.env").write_bytes(dotenv)
    return p, sentinel, home


def check(text: str, dotenv: bytes = b"A=1\n") -> None:
    with tempfile.TemporaryDirectory(prefix="qik-fuzz-") as tmp:
        root = pathlib.Path(tmp)
        p, sentinel, home = _setup(root, text, dotenv)
        for args in (("--ls",), ()):
            res = p.qik(*args, timeout=TIMEOUT)
            shown = f"qik {' '.join(args)} on:\n{text}\n--- dev.env: {dotenv!r}\n--- stdout:\n{res.out}\n--- stderr:\n{res.err}"
            if log := os.environ.get("QIK_FUZZ_LOG"):  # what the examples reach, for tuning
                with open(log, "a") as f:
                    f.write(f"{' '.join(args) or 'run'}\t{res.code}\t{(res.err.splitlines() or [''])[0][:120]!r}\n")
            assert res.code in (0, 1, 2), shown
            assert "Traceback" not in res.text and "Exception ignored" not in res.text, shown
            if res.code == 2:  # one line, plus an optional hint, at the end
                lines = res.err.splitlines()
                tail = lines[-2:] if len(lines) > 1 and lines[-1].startswith("  hint: ") else lines[-1:]
                assert tail and tail[0].startswith("qik: error: "), shown
                assert res.err.count("qik: error: ") == 1, shown
            assert not any(sentinel.iterdir()) and not any(home.iterdir()), shown
            assert sorted(x.name for x in root.iterdir()) == ["home", "repo", "sentinel"], shown


FUZZ_SETTINGS = {
    "deadline": None,
    "database": None,  # no .hypothesis/ folder in the checkout
    "suppress_health_check": [
        HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,  # _slow_only_when_asked holds no per-example state
    ],
}


#: Inputs the fuzzer (or issue 13) found, run first on every run, whatever hypothesis draws.
SEEDS: list[tuple[str, bytes]] = [
    ('[commands.a]\nexec = "echo \\u0000"\n', b""),
    ('[commands."a\\u0000"]\nexec = "echo a"\n', b""),
    ('[commands.a]\nfactory = "json.nope"\n', b""),
    ('[commands.a]\nfactory = "nonexist.f"\n', b""),
    ('[spaces.default]\nmodules = ["nothere"]\n[commands.a]\nexec = "cd {module.dir}"\n', b""),
    ('[commands.x]\nexec = "echo x"\ndeps = [{type = "command", name = "x"}]\n', b""),
    ('[commands.a]\nexec = "echo {ctx.} {module.} {0} {{ {ctx.nope}"\n', b""),
    ('[spaces.default]\nmodules = ["m1"]\n[commands.a]\nexec = "echo {module.nmae}"\n', b""),
    ("a = " + "[" * 600 + "]" * 600 + "\n", b""),
    ('[commands.".."]\nexec = "echo x"\ndeps = ["src/**"]\nartifacts = ["../sentinel/x"]\n', b""),
    ('[spaces.default]\ndotenv = "dev.env"\n[commands.a]\nexec = "echo $A"\n', b"A=\x00\xff\n"),
]


def seeded(test: Any) -> Any:
    for text, dotenv in reversed(SEEDS):
        test = example(text=text, dotenv=dotenv)(test)
    return test


@settings(max_examples=DEFAULT_EXAMPLES, **FUZZ_SETTINGS)  # type: ignore[arg-type]
@seeded
@given(text=CONFIG, dotenv=DOTENV)
def test_fuzz_config(text: str, dotenv: bytes) -> None:
    check(text, dotenv)


@pytest.mark.slow
@settings(max_examples=SLOW_EXAMPLES, **FUZZ_SETTINGS)  # type: ignore[arg-type]
@given(text=CONFIG, dotenv=DOTENV)
def test_fuzz_config_many(text: str, dotenv: bytes) -> None:
    check(text, dotenv)


@pytest.fixture(autouse=True)
def _slow_only_when_asked(request: pytest.FixtureRequest) -> None:
    markexpr = request.config.getoption("markexpr", "") or ""
    asked = ("slow" in markexpr and "not slow" not in markexpr) or "QIK_FUZZ_EXAMPLES" in os.environ
    if request.node.get_closest_marker("slow") and not asked:
        pytest.skip("many examples: run with -m slow or QIK_FUZZ_EXAMPLES=N")
