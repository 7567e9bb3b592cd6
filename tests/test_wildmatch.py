"""Glob brackets follow git's wildmatch: unit tests of the pure glob functions, a property
test against ``git check-ignore``, and end-to-end runs of patterns that used to crash."""

from __future__ import annotations

import os
import pathlib
import subprocess

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qik.globs import compile_glob, match_list
from qik.testing import Project, init_repo

# The default run is a few seconds and the same every time; QIK_SLOW=1 explores 20x more.
_SLOW = bool(os.environ.get("QIK_SLOW"))


def _examples(n: int) -> settings:
    return settings(
        max_examples=n * 20 if _SLOW else n,
        deadline=None,
        derandomize=not _SLOW,
        suppress_health_check=[HealthCheck.function_scoped_fixture],
    )


def matches(pattern: str, path: str) -> bool:
    return match_list([path], pattern) == [path]


@pytest.mark.parametrize(
    ("pattern", "yes", "no"),
    [
        ("[]]", ["]"], ["a", "[]"]),  # "]" first is a member
        ("[]a]", ["]", "a"], ["b"]),
        ("[!]]", ["a", "!"], ["]"]),  # ... after the negation too
        ("[^a]", ["b", "^"], ["a"]),
        ("[!a-c]", ["d"], ["a", "b", "c"]),
        ("[z-a]", ["z"], ["a", "m", "-"]),  # a reversed range adds nothing; "z" itself is a member
        ("x[z-a]", ["xz"], ["xa", "xm"]),
        ("[a-]", ["a", "-"], ["b"]),  # "-" last is literal
        ("[-a]", ["a", "-"], ["b"]),  # ... and first
        ("[a-c-e]", ["a", "b", "c", "-", "e"], ["d"]),  # a range ends the run
        ("[\\]]", ["]"], ["\\"]),  # a backslash escapes inside
        ("[a\\-z]", ["a", "-", "z"], ["b"]),
        ("[\\!a]", ["!", "a"], ["b"]),
        ("[[:alpha:]]", ["a", "Z"], ["1", "_"]),
        ("[[:digit:][:upper:]]", ["1", "Q"], ["q"]),
        ("[![:alnum:]]", ["_", "-"], ["a", "7"]),
        ("[[:space:]]", [" ", "\t"], ["a"]),
        ("[[:bogus:]]", [], ["b", "[", ":"]),  # an unknown class: the pattern matches nothing
        ("[[:]", ["[", ":"], ["]"]),  # no ":]": "[" and ":" are members
        ("[[:a]", ["[", ":", "a"], ["b"]),
        ("a\\*", ["a*"], ["ab"]),  # a backslash escapes outside too
        ("a\\[b]", ["a[b]"], ["ab"]),
        ("\\?", ["?"], ["a"]),
    ],
)
def test_bracket_rules(pattern: str, yes: list[str], no: list[str]) -> None:
    for name in yes:
        assert matches(pattern, name), (pattern, name)
    for name in no:
        assert not matches(pattern, name), (pattern, name)


@pytest.mark.parametrize(
    ("pattern", "literal"),
    [
        ("[!]", "[!]"),  # unclosed: every "[" is then a literal character
        ("x[", "x["),
        ("a/[\\]", "a/[]"),  # "\]" is an escaped "]", so the bracket never closes
        ("[a", "[a"),
        ("[!", "[!"),
        ("[\\", "[\\"),
    ],
)
def test_unclosed_bracket_is_literal(pattern: str, literal: str) -> None:
    assert matches(pattern, literal)
    assert not matches(pattern, "a")
    prefix, _ = compile_glob(pattern)
    assert literal.startswith(prefix)


def test_brackets_never_match_a_slash() -> None:
    assert not matches("a[/]b", "a/b")
    assert not matches("a[!x]b", "a/b")
    assert not matches("a[+-0]b", "a/b")  # a range that spans "/"
    assert not matches("a[[:punct:]]b", "a/b")
    assert matches("a[+-0]b", "a.b")


def test_prefix_of_escaped_and_bracket_globs() -> None:
    assert compile_glob("src/\\*x/*.py")[0] == "src/*x/"
    assert compile_glob("src/[ab]/*.py")[0] == "src/"
    assert compile_glob("src/[ab/*.py")[0] == "src/[ab/"  # unclosed: part of the literal prefix
    files = sorted(["src/*x/a.py", "src/ax/a.py", "src/a/b.py", "src/[ab/c.py"])
    assert match_list(files, "src/\\*x/*.py") == ["src/*x/a.py"]
    assert match_list(files, "src/[ab]/*.py") == ["src/a/b.py"]
    assert match_list(files, "src/[ab/*.py") == ["src/[ab/c.py"]


@given(st.text(alphabet="ab[]!^-:\\*?/z", max_size=16))
@_examples(300)
def test_any_glob_compiles_and_matches_without_raising(pattern: str) -> None:
    files = sorted(["a", "b", "z", "[", "]", "a/b", "ab", "!", "-", ":", "\\", pattern])
    match_list(files, pattern)


# ---- the same answers as git ----

_NAME_CHARS = "abzAZ09-_.!^:[]\\*?~# \t\n\v"
# Every name of one or two characters (about 700): a short pattern meets most of the cases
# it can match among them, so a wrong answer is likely to show.
_SHORT = [a + b for a in _NAME_CHARS for b in ["", *_NAME_CHARS]]
_LITERALS = st.sampled_from(list("abcxyzABZ09-_.!^:]~#")) | st.sampled_from(["\\" + c for c in "[]*?\\!ab"])
_MEMBER_CHARS = "abcxyzAZ09-_.!^[~ #*?/"  # no "]" (it closes), no ":" (it could open a class)
_CLASSES = ["alnum", "alpha", "blank", "cntrl", "digit", "graph", "lower", "print", "punct", "space", "upper", "xdigit", "bogus"]


@st.composite
def _brackets(draw: st.DrawFn) -> str:
    char = st.sampled_from(list(_MEMBER_CHARS)) | st.sampled_from(["\\" + c for c in "]\\-!^a"])
    member = st.one_of(
        char,
        st.tuples(char, char).map(lambda t: f"{t[0]}-{t[1]}"),
        st.sampled_from(_CLASSES).map(lambda c: f"[:{c}:]"),
        st.just("[:"),
    )
    negate = draw(st.sampled_from(["", "!", "^"]))
    # "]" first is a member; "!" or "^" first would be the negation.
    first = draw((st.sampled_from(["]", "-", "["]) | member).filter(lambda m: m[0] not in "!^"))
    rest = draw(st.lists(member, max_size=4))
    return "[" + negate + first + "".join(rest) + "]"


_TOKENS = st.one_of(_brackets(), _brackets(), _LITERALS, st.sampled_from(["*", "?", "**"]))
_GLOBS = st.lists(_TOKENS, min_size=1, max_size=3).map("".join)
_NAMES = st.lists(st.text(alphabet=_NAME_CHARS, min_size=3, max_size=6), max_size=8)


@pytest.fixture(scope="module")
def git_repo(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    return init_repo(tmp_path_factory.mktemp("wildmatch") / "repo").root


def git_matches(repo: pathlib.Path, pattern: str, names: list[str]) -> set[str]:
    """The names that git's wildmatch matches with ``pattern`` (one path component each)."""
    # "/" anchors the pattern and keeps "!" or "#" first from meaning negation or a comment;
    # "./" keeps a name starting with ":" from being pathspec magic.
    (repo / ".git" / "info" / "exclude").write_text(f"/{pattern}\n")
    out = subprocess.run(
        ["git", "check-ignore", "--no-index", "-z", "--stdin"],
        cwd=repo,
        input="".join(f"./{n}\0" for n in names).encode(),
        capture_output=True,
        check=False,
    ).stdout
    return {n.decode()[2:] for n in out.split(b"\0") if n}


def _usable(names: list[str]) -> list[str]:
    """Names git takes as one path component as they are (``./.`` would be the folder)."""
    return sorted({n for n in _SHORT + names if n and n not in (".", "..") and "/" not in n})


@pytest.mark.parametrize(
    "pattern",
    [f"[{neg}[:{c}:]]" for c in _CLASSES for neg in ("", "!")]
    + ["[]-a]", "[!]-a]", "[\\]-a]", "[a-c-e]", "[--0]", "[!--]", "[a-\\]]", "[[:]x]",
       "[[:alpha:]-z]", "[a-[:alpha:]]", "*[^a]", "[*?]", "\\[a]", "a[]", "[!]", "x[z-a]?"],
)
def test_fixed_brackets_match_as_git_does(git_repo: pathlib.Path, pattern: str) -> None:
    names = _usable([])
    assert set(match_list(names, pattern)) == git_matches(git_repo, pattern, names)


@given(pattern=_GLOBS, names=_NAMES)
@_examples(150)
def test_brackets_match_as_git_does(git_repo: pathlib.Path, pattern: str, names: list[str]) -> None:
    names = _usable(names + [pattern.replace("\\", "")])
    ours = set(match_list(names, pattern))
    assert ours == git_matches(git_repo, pattern, names), pattern


@given(pattern=st.text(alphabet="ab[]!^-:\\*?", min_size=1, max_size=10), names=_NAMES)
@_examples(100)
def test_whatever_git_matches_we_match(git_repo: pathlib.Path, pattern: str, names: list[str]) -> None:
    """Any string: what git matches, qik matches too. (Where git's pattern has an unclosed
    bracket, git matches nothing and qik reads the "[" as a literal character.)"""
    names = _usable(names)
    assert git_matches(git_repo, pattern, names) <= set(match_list(names, pattern)), pattern


# ---- end to end ----


@pytest.mark.parametrize(("glob", "dep"), [("a/[\\\\]", "a/[]"), ("[z-a]", "sub/z")])
def test_odd_bracket_glob_is_a_normal_run(qik_project: Project, glob: str, dep: str) -> None:
    p = qik_project
    p.write("qik.toml", f'[commands.c]\nexec = "cat {dep}"\ndeps = ["{glob}"]\n')
    p.write(dep, "one\n")
    p.commit()
    first = p.qik()
    assert first.ok and "Traceback" not in first.err, first.text
    assert "one" in first.out
    assert "1 cached" in p.qik().err
    p.write(dep, "two\n")  # the glob matched it: an edit misses
    res = p.qik()
    assert res.ok and "two" in res.out, res.text
