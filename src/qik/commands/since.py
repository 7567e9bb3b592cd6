"""``--since REF``: the runnables whose inputs changed between a git ref and the working tree."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterable

import qik.conf
import qik.errors
import qik.fingerprint
import qik.globs
import qik.model.graph
import qik.model.runnable
import qik.warnings


def _git(*args: str, cwd: str | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["git", *args], cwd=cwd or qik.conf.root(), capture_output=True, check=False)


def changed_files(ref: str) -> set[str]:
    """Files changed since ``ref``: committed, staged, unstaged and untracked (root-relative),
    inside checked-out submodules too."""
    if _git("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}").returncode != 0:
        shallow = _git("rev-parse", "--is-shallow-repository").stdout.strip() == b"true"
        hint = (
            f"This is a shallow clone: fetch more history (git fetch --deepen=50, or "
            f"git fetch --unshallow) or fetch the ref (git fetch origin {ref})."
            if shallow
            else f"Check the name, or fetch it (git fetch origin {ref})."
        )
        raise qik.errors.GitError(f'--since: git cannot resolve "{ref}".', hint=hint)
    return _changed(str(qik.conf.root()), ref)


def _changed(repo: str, ref: str) -> set[str]:
    """Files of the repository at ``repo`` changed since ``ref``, relative to ``repo``."""
    # --raw shows the modes, so a changed submodule (mode 160000) costs nothing to spot;
    # --ignore-submodules=none counts one with uncommitted edits whatever the config says.
    diff = _git(
        "diff", "--raw", "-z", "--no-abbrev", "--relative", "--no-renames",
        "--ignore-submodules=none", ref, "--", cwd=repo,
    )  # fmt: skip
    if diff.returncode != 0:
        raise qik.errors.GitError(f"--since: git diff against {ref} failed: {diff.stderr.decode().strip()}")
    untracked = _git("ls-files", "--others", "--exclude-standard", "-z", cwd=repo)
    names = untracked.stdout.split(b"\0")
    submodules: list[tuple[str, str | None]] = []
    fields = diff.stdout.split(b"\0")
    for meta, name in zip(fields[::2], fields[1::2], strict=False):
        # ":old_mode new_mode old_sha new_sha status", then the path
        names.append(name)
        modes = meta.lstrip(b":").split(b" ")
        if len(modes) > 2 and modes[1] == b"160000":
            old_mode, old_sha = modes[0], modes[2]
            rel = name.decode("utf-8", "surrogateescape")
            submodules.append((rel, old_sha.decode() if old_mode == b"160000" else None))
    found = {n.decode("utf-8", "surrogateescape") for n in names if n}
    for rel, old in submodules:
        found.update(f"{rel}/{f}" for f in _submodule_changes(os.path.join(repo, rel), old))
    return found


def _submodule_changes(path: str, old: str | None) -> set[str]:
    """Files of a submodule changed since its commit ``old`` (all of them when it was added
    since, or that commit is not in its clone); none when it is not checked out."""
    if not os.path.exists(os.path.join(path, ".git")):
        return set()
    if old is not None and _git("cat-file", "-e", f"{old}^{{commit}}", cwd=path).returncode == 0:
        try:
            return _changed(path, old)
        except qik.errors.GitError:
            pass
    return set(qik.fingerprint.git_files(path))


def watch_globs(r: qik.model.runnable.Runnable, *, need_lock: bool = True) -> list[str]:
    """Globs whose changes mean the runnable's inputs changed (lock files stand in for pydists).

    ``--since`` needs a lock file to see pydist changes (``need_lock``); ``--watch`` does not.
    """
    globs = {g for dep in r.deps for g in dep.since}
    if r.resolved_space:
        globs |= set(r.resolved_space.dotenv)
    venv = r.resolved_venv
    if venv is not None:
        globs |= venv.glob_deps
        if need_lock and r.pydists and not venv.lock:
            # No lock: the requirements files are the signal (a version bump of an unpinned
            # requirement goes unseen), as the docs' first example has it; say so once.
            reqs = ", ".join(venv.reqs) or "none"
            qik.warnings.warn(
                f"--since sees pydist changes of space {venv.name!r} only through its requirements "
                f"files ({reqs}): its venv has no lock file (a venv type that locks, such as uv, sees them all)",
                key=f"since-nolock:{venv.name}",
            )
    return sorted(globs)


def matches(paths: Iterable[str], globs: list[str]) -> bool:
    """Whether any of ``paths`` matches any glob; pass a sorted list to skip the sort."""
    ordered = paths if isinstance(paths, list) else sorted(paths)
    return any(next(qik.globs.match_sorted(ordered, g), None) is not None for g in globs)


def strict_dependents(graph: qik.model.graph.Graph, names: set[str]) -> set[str]:
    """``names`` plus every runnable that strictly depends on one of them, transitively."""
    out = set(names)
    changed = True
    while changed:
        changed = False
        for n, r in graph.runnables.items():
            if n not in out and any(d.strict and d.name in out for d in r.dep_runnables.values()):
                out.add(n)
                changed = True
    return out


def affected(
    graph: qik.model.graph.Graph,
    paths: set[str],
    globs: Callable[[qik.model.runnable.Runnable], list[str]] = watch_globs,
) -> set[str]:
    """Runnables of the graph whose ``globs`` match one of ``paths``, plus strict dependents."""
    ordered = sorted(paths)
    hit = {n for n, r in graph.runnables.items() if matches(ordered, globs(r))}
    return strict_dependents(graph, hit)


def select(graph: qik.model.graph.Graph, ref: str, *, isolated: bool) -> qik.model.graph.Graph:
    keep = affected(graph, changed_files(ref)) & set(graph.selected)
    return qik.model.graph.restrict(graph, sorted(keep), isolated=isolated)
