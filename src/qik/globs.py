"""Globs: git's wildmatch rules, matched against sorted lists and against the disk.

``**`` crosses folders, ``*`` and ``?`` do not, brackets are classes as in git (a reversed
range adds nothing, an unclosed ``[`` is literal), a backslash escapes the next character.
A slash-less pattern matches at any depth, as in ``.gitignore``; one with no glob
characters also matches everything below it, as a folder.
"""

from __future__ import annotations

import bisect
import functools
import os
import re
import stat
from collections.abc import Callable, Iterator

_IGNORED_DIRS = {".git", "._qik", "__pycache__"}

_GLOB_CHARS = re.compile(r"[*?\[\\]")

# POSIX classes of git's wildmatch (ASCII only, as git's own ctype table).
_CLASSES = {
    "alnum": "0-9A-Za-z",
    "alpha": "A-Za-z",
    "blank": " \\t",
    "cntrl": "\\x00-\\x1f\\x7f",
    "digit": "0-9",
    "graph": "!-~",
    "lower": "a-z",
    "print": " -~",
    "punct": "!-/:-@\\[-`{-~",
    "space": "\\t\\n\\r ",
    "upper": "A-Z",
    "xdigit": "0-9A-Fa-f",
}
_NEVER = "(?!)"


Matcher = Callable[[str], bool]


def _normalize(pattern: str) -> str:
    pat = pattern.strip()
    while pat.startswith("./"):
        pat = pat[2:]
    return pat.lstrip("/")


def _bracket(glob: str, i: int) -> tuple[str, int] | None:
    """The regex of the bracket expression opening at ``glob[i]`` and the index past it.

    Git's wildmatch rules: ``!`` or ``^`` first negates, ``]`` first (after the negation)
    is a member, a backslash escapes the next character, ``a-z`` is a range (a reversed
    one adds nothing), ``[:alpha:]`` is a POSIX class (an unknown one matches nothing, as
    the whole pattern does in git), and no class matches ``/``. None when the bracket is
    never closed: its ``[`` is then a literal character.
    """
    n = len(glob)
    j = i + 1
    negated = j < n and glob[j] in "!^"
    if negated:
        j += 1
    parts: list[str] = []
    prev = ""  # the last single member: a "-" after it makes a range
    first = True
    while j < n:
        c = glob[j]
        if c == "]" and not first:
            body = "".join(parts)
            if negated:
                return f"[^/{body}]", j + 1
            return (f"(?!/)[{body}]" if body else _NEVER), j + 1
        first = False
        if c == "\\":
            j += 1
            if j == n:
                return None
            prev = glob[j]
            parts.append(re.escape(prev))
        elif c == "-" and prev and j + 1 < n and glob[j + 1] != "]":
            j += 1
            hi = glob[j]
            if hi == "\\":
                j += 1
                if j == n:
                    return None
                hi = glob[j]
            if prev <= hi:
                parts.append(f"{re.escape(prev)}-{re.escape(hi)}")
            prev = ""
        elif c == "[" and glob.startswith(":", j + 1):
            end = glob.find("]", j + 2)
            if end == -1:
                return None
            name = glob[j + 2 : end]
            if not name.endswith(":"):  # no ":]": the "[" is a member
                prev = "["
                parts.append(r"\[")
            elif (cls := _CLASSES.get(name[:-1])) is None:
                return _NEVER, end + 1
            else:
                parts.append(cls)
                prev = ""
                j = end
        else:
            prev = c
            parts.append(re.escape(c))
        j += 1
    return None


def _literal_prefix(glob: str) -> tuple[str, int]:
    """The literal text before the first wildcard (escapes removed) and that wildcard's
    index (``len(glob)`` for a pattern with none). An unclosed ``[`` is literal."""
    if not _GLOB_CHARS.search(glob):
        return glob, len(glob)
    out: list[str] = []
    i, n = 0, len(glob)
    while i < n:
        c = glob[i]
        if c in "*?" or (c == "[" and _bracket(glob, i) is not None):
            break
        if c == "\\" and i + 1 < n:
            i += 1
            c = glob[i]
        out.append(c)
        i += 1
    return "".join(out), i


@functools.lru_cache(maxsize=4096)
def _translate(glob: str) -> re.Pattern[str]:
    """The regex of a glob (or of a glob's tail: the translation is position-independent)."""
    i, out = 0, []
    while i < len(glob):
        c = glob[i]
        if glob.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif glob.startswith("/**", i) and i + 3 == len(glob):
            out.append("(?:/.*)?")
            i += 3
        elif glob.startswith("**", i):
            out.append(".*")
            i += 2
        elif c == "*":
            out.append("[^/]*")
            i += 1
        elif c == "?":
            out.append("[^/]")
            i += 1
        elif c == "[" and (found := _bracket(glob, i)) is not None:
            regex, i = found
            out.append(regex)
        else:
            if c == "\\" and i + 1 < len(glob):  # an escaped character is literal
                i += 1
                c = glob[i]
            out.append(re.escape(c))
            i += 1
    return re.compile("".join(out) + r"\Z", re.DOTALL)


def _under(folder: str) -> Matcher:
    """The folder itself (a file of that name) or anything below it."""
    if not folder:
        return lambda f: True
    below = folder + "/"
    return lambda f: f == folder or f.startswith(below)


@functools.lru_cache(maxsize=65536)
def compile_glob(pattern: str) -> tuple[str, Matcher]:
    """(literal prefix, matcher) of a gitignore-style glob relative to the root.

    ``**`` crosses folders, ``*`` and ``?`` do not, ``[..]`` is a class (git's wildmatch
    rules, see :func:`_bracket`), a backslash escapes the next character. A pattern with
    no wildcards also matches everything below it, as a folder. The matcher is only
    asked about paths that start with the prefix, so only the tail after it is matched;
    tails repeat across modules (``{module.dir}/**.py``), so their regexes are shared.
    """
    pat = _normalize(pattern)
    prefix, at = _literal_prefix(pat)
    if at == len(pat):
        return prefix, _under(prefix.rstrip("/"))
    if "/" not in pat:
        # "*.py" matches at any depth, as in .gitignore and upstream's git pathspecs.
        anywhere = re.compile("(?:.*/)?" + _translate(pat).pattern, re.DOTALL)
        return "", lambda f: anywhere.match(f) is not None
    tail = pat[at:]
    if tail == "**" and (not prefix or prefix.endswith("/")):
        # "dir/**": the folder's files, and the folder itself when it is one entry (a submodule).
        return prefix[:-1], _under(prefix[:-1])
    if tail.startswith("**") and not tail.startswith("**/"):
        lit, end = _literal_prefix(tail[2:])
        if end == len(tail) - 2:
            # "dir/**.py": anything below the prefix that ends with the literal.
            least = len(prefix) + len(lit)
            return prefix, lambda f: len(f) >= least and f.endswith(lit)
    regex, pos = _translate(tail), len(prefix)
    suffix = _literal_suffix(tail)
    if suffix:  # "pkgs/*/README.md" over 10,000 paths: most fail endswith, before the regex
        return prefix, lambda f: f.endswith(suffix) and regex.match(f, pos) is not None
    return prefix, lambda f: regex.match(f, pos) is not None


def _literal_suffix(glob: str) -> str:
    """Plain text every match ends with: the characters after the last wildcard, class or
    backslash (an escaped character is literal, so a run after one is too)."""
    i = len(glob)
    while i and glob[i - 1] not in "*?[]\\":
        i -= 1
    return glob[i:]


def _prefix_range(files: list[str], prefix: str) -> tuple[int, int]:
    """The slice of a sorted list whose items start with ``prefix``."""
    if not prefix:
        return 0, len(files)
    lo = bisect.bisect_left(files, prefix)
    if prefix[-1] == chr(0x10FFFF):
        return lo, len(files)
    # Every string starting with the prefix sorts before the prefix with its last
    # character bumped.
    hi = bisect.bisect_left(files, prefix[:-1] + chr(ord(prefix[-1]) + 1), lo)
    return lo, hi


def match_list(files: list[str], pattern: str) -> list[str]:
    """Files of a sorted list matching a glob; only the range sharing its prefix is tested."""
    prefix, matches = compile_glob(pattern)
    lo, hi = _prefix_range(files, prefix)
    return [f for f in files[lo:hi] if matches(f)]


def match_sorted(files: list[str], pattern: str) -> Iterator[str]:
    """Like :func:`match_list`, lazily (to stop at the first match)."""
    prefix, matches = compile_glob(pattern)
    lo, hi = _prefix_range(files, prefix)
    return (files[i] for i in range(lo, hi) if matches(files[i]))


def _entries(root: str, folder: str, prefix: str = "") -> Iterator[str]:
    """Root-relative paths of everything below ``folder`` that is not a folder: files, and
    links (a link to a folder too: one entry, not followed, whose digest is its target).
    Folders that cannot hold a path starting with ``prefix`` are not entered."""
    stack = [folder]
    while stack:
        rel_dir = stack.pop()
        try:
            it = os.scandir(os.path.join(root, rel_dir) if rel_dir else root)
        except OSError:
            continue
        with it:
            for entry in it:
                rel = f"{rel_dir}/{entry.name}" if rel_dir else entry.name
                try:
                    is_dir = entry.is_dir(follow_symlinks=False)
                except OSError:
                    is_dir = False
                if not is_dir:
                    yield rel
                elif entry.name not in _IGNORED_DIRS:
                    below = rel + "/"
                    if below.startswith(prefix) or prefix.startswith(below):
                        stack.append(rel)


def fs_glob(root: str, pattern: str) -> list[str]:
    """Files and links on disk (ignored or not) matching a glob, relative to ``root``."""
    prefix, matches = compile_glob(pattern)
    pat = _normalize(pattern)
    if _literal_prefix(pat)[1] == len(pat):
        # A literal path: one lstat, not a walk of the tree (a root-level artifact such as
        # requirements.txt would otherwise walk every folder, node_modules included).
        literal = prefix.rstrip("/")
        try:
            st = os.lstat(os.path.join(root, literal))
        except OSError:
            return []
        if not stat.S_ISDIR(st.st_mode):
            return [literal]
        prefix = literal + "/"
    base = prefix.rsplit("/", 1)[0] if "/" in prefix else ""
    start = os.path.join(root, base) if base else root
    if os.path.isfile(start):
        return [base] if base.startswith(prefix) and matches(base) else []
    return sorted(rel for rel in _entries(root, base, prefix) if rel.startswith(prefix) and matches(rel))
