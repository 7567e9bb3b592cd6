"""The run memo (``._qik/memo``): a plain warm run replays from it without decoding the config
or computing a key, and every kind of change takes the normal path instead (never a wrong
replay). A replay from the memo is seen from outside: it imports neither click nor the
config (``python -X importtime`` lists what a process imported)."""

from __future__ import annotations

import json
import os
import pathlib
import time

import pytest

import qik.fingerprint
import qik.run.memo
from qik.testing import Project, Result

TRACE = {"PYTHONPROFILEIMPORTTIME": "1"}

TOML = """\
[commands.a]
exec = "mkdir -p out && cat src/a/* > out/a.txt"
deps = ["src/a/**"]
artifacts = ["out/a.txt"]

[commands.b]
exec = "mkdir -p out && cat src/b/* > out/b.txt"
deps = ["src/b/**"]
artifacts = ["out/b.txt"]
"""


def fast(res: Result) -> bool:
    """Whether the run was replayed from the memo (the normal path imports the CLI)."""
    assert res.ok, res.err
    assert "import time:" in res.err, "the trace is on"
    return "qik.commands.run" not in res.err


def summary(res: Result) -> str:
    return "\n".join(line for line in res.out.splitlines() + res.err.splitlines() if "import time:" not in line)


def settle(p: Project, seconds: float = 60) -> None:
    """Age every file of the project: the memo never trusts a stat taken within two seconds
    of a write (a same-size edit in the same tick would not show)."""
    t = time.time() - seconds
    for dirpath, dirnames, filenames in os.walk(p.root):
        if ".git" in dirnames:
            dirnames.remove(".git")
        for name in [*filenames, *dirnames]:
            os.utime(os.path.join(dirpath, name), (t, t), follow_symlinks=False)


def warm(p: Project, *args: str, **kwargs: object) -> Result:
    """Run until the memo holds and return the first run replayed from it."""
    env: dict[str, str] = kwargs.pop("env", {})  # type: ignore[assignment]
    assert p.qik(*args, env=env, **kwargs).ok  # type: ignore[arg-type]
    settle(p)
    assert p.qik(*args, env=env, **kwargs).ok  # type: ignore[arg-type]  # a normal warm run writes a memo of settled stats
    res = p.qik(*args, env={**env, **TRACE}, **kwargs)  # type: ignore[arg-type]
    assert fast(res), res.err
    return res


def project(p: Project, toml: str = TOML) -> None:
    p.write("qik.toml", toml)
    p.write("src/a/1.txt", "a1\n")
    p.write("src/b/1.txt", "b1\n")
    p.write(".gitignore", "out/\nignored/\n")
    p.commit("init")


def test_a_warm_run_replays_from_the_memo_and_says_the_same(qik_project: Project) -> None:
    p = qik_project
    project(p)
    res = warm(p)
    normal = p.qik(env={"QIK_NO_MEMO": "1"})
    strip = lambda s: [line.split(" in ")[0] for line in s.splitlines()]  # noqa: E731 - the times differ
    assert strip(summary(res)) == strip(summary(normal))
    assert "2 cached" in summary(res)
    assert p.path("._qik/memo").is_dir()


def test_the_memo_is_a_hint_the_constant_agrees_with_the_fingerprint() -> None:
    assert qik.run.memo.LS_FILES == qik.fingerprint.LS_FILES
    files = ["a", "b/c", "d\udcff"]
    assert qik.run.memo.listing_digest(files) == qik.fingerprint.universe_digest(files)


@pytest.mark.parametrize(
    ("change", "a_txt"),
    [
        pytest.param(lambda p: p.write("src/a/1.txt", "A1\n"), "A1\n", id="tracked-edit-same-size"),
        pytest.param(lambda p: p.write("src/a/2.txt", "a2\n"), "a1\na2\n", id="untracked-new-file"),
        pytest.param(lambda p: (p.write("src/a/0.txt", "a0\n"), p.path("src/a/1.txt").unlink()), "a0\n", id="deleted-and-added"),
        pytest.param(lambda p: p.write("src/a/1.txt", "a1 and more\n"), "a1 and more\n", id="tracked-edit-bigger"),
    ],
)
def test_a_changed_input_reruns_exactly_its_runnable(qik_project: Project, change: object, a_txt: str) -> None:
    p = qik_project
    project(p)
    warm(p)
    change(p)  # type: ignore[operator]
    res = p.qik(env=TRACE)
    assert not fast(res)
    assert p.read("out/a.txt") == a_txt
    assert p.read("out/b.txt") == "b1\n"
    assert "1 cached, 1 ran" in summary(res), summary(res)


@pytest.mark.parametrize("count", [1, 80], ids=["one-kept-as-missing", "many-left-out"])
def test_a_deleted_input_reruns(qik_project: Project, count: int) -> None:
    """And the memo written then leaves the path out or records it as one that must not
    exist (its table starts from the previous memo's): kept with its old stat, every later
    run would find it missing and never replay again."""
    p = qik_project
    project(p)
    gone = [f"src/a/{i + 2}.txt" for i in range(count)]
    for rel in gone:
        p.write(rel, "more\n")
    p.commit("more")
    warm(p)
    for rel in gone:
        p.path(rel).unlink()
    res = p.qik(env=TRACE)
    assert not fast(res)
    assert p.read("out/a.txt") == "a1\n"
    (memo_file,) = [f for f in p.path("._qik/memo").iterdir() if "." not in f.name]
    memo = json.loads(memo_file.read_text())
    kinds = dict(zip(memo["paths"], memo["kinds"], strict=True))
    assert all(kinds.get(rel, "n") == "n" for rel in gone)
    assert (gone[0] in kinds) == (count == 1)
    settle(p)
    assert p.qik().ok
    assert fast(p.qik(env=TRACE))


def test_a_partial_run_stats_and_lists_once(qik_project: Project, tmp_path: pathlib.Path) -> None:
    """When the fast path sees a change, the normal path starts from its stats and git's
    listing: one ``git ls-files`` per run, though both paths need the universe."""
    p = qik_project
    project(p)
    warm(p)
    p.write("src/a/1.txt", "a2\n")
    trace = tmp_path / "git-trace"
    res = p.qik(env={"GIT_TRACE": str(trace)})
    assert res.ok and "1 cached, 1 ran" in summary(res), res.err
    assert p.read("out/a.txt") == "a2\n"
    assert trace.read_text().count("ls-files") == 1, trace.read_text()


def test_a_same_size_edit_in_the_same_second_as_the_memo_is_seen(qik_project: Project) -> None:
    """The racy case: the file is edited right after the run that wrote the memo, keeping its
    size; the memo never trusted a stat that fresh."""
    p = qik_project
    project(p)
    assert p.qik().ok
    p.write("src/a/1.txt", "x1\n")
    assert p.qik().ok
    p.write("src/a/1.txt", "y1\n")
    p.qik(env=TRACE)
    assert p.read("out/a.txt") == "y1\n"


def test_files_git_ignores_do_not_count_and_a_gitignore_change_does(qik_project: Project) -> None:
    p = qik_project
    project(p, TOML.replace('deps = ["src/a/**"]', 'deps = ["src/a/**", "ignored/**"]'))
    warm(p)
    p.write("ignored/x.txt", "x\n")
    assert fast(p.qik(env=TRACE))  # git ignores it, so the key does not see it either
    p.write(".gitignore", "out/\n")
    res = p.qik(env=TRACE)
    assert not fast(res)
    assert "1 cached, 1 ran" in summary(res), summary(res)


def test_an_unrelated_new_file_reruns_nothing(qik_project: Project) -> None:
    p = qik_project
    project(p)
    warm(p)
    p.write("docs/readme.md", "hi\n")
    res = p.qik(env=TRACE)
    assert not fast(res)  # the universe differs: the normal path looks, and finds nothing to run
    assert "2 cached" in summary(res)


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda p: p.write("qik.toml", TOML.replace("cat src/b/*", "cat src/b/* src/b/*")), id="config"),
        pytest.param(lambda p: p.write("qikplugin.py", "print('plugin')\n"), id="new-qikplugin"),
    ],
)
def test_a_config_or_plugin_change_takes_the_normal_path(qik_project: Project, change: object) -> None:
    p = qik_project
    project(p)
    warm(p)
    change(p)  # type: ignore[operator]
    res = p.qik(env=TRACE)
    assert not fast(res)


def test_a_config_edit_runs_the_edited_command(qik_project: Project) -> None:
    p = qik_project
    project(p)
    warm(p)
    p.write("qik.toml", TOML.replace("cat src/b/*", "cat src/b/* src/b/*"))
    assert p.qik(env=TRACE).ok
    assert p.read("out/b.txt") == "b1\nb1\n"
    assert p.read("out/a.txt") == "a1\n"


def test_a_nearer_qik_toml_from_the_cwd_is_used(qik_project: Project) -> None:
    p = qik_project
    project(p)
    p.write("sub/keep.txt", "k\n")
    p.commit("sub")
    warm(p, cwd="sub")
    p.write("sub/qik.toml", '[commands.sub]\nexec = "echo sub > sub.out"\n')
    res = p.qik(cwd="sub", env=TRACE)
    assert not fast(res)
    assert p.path("sub/sub.out").exists()


def test_a_ctx_variable_change_reruns_what_uses_it(qik_project: Project) -> None:
    p = qik_project
    toml = 'ctx = [{name = "flavor", default = "plain"}]\n' + TOML + '\n[commands.c]\nexec = "mkdir -p out && echo {ctx.flavor} > out/c.txt"\ndeps = ["src/a/**"]\nartifacts = ["out/c.txt"]\n'
    project(p, toml)
    warm(p, env={"FLAVOR": "mint"})
    assert p.read("out/c.txt") == "mint\n"
    res = p.qik(env={**TRACE, "FLAVOR": "lime"})
    assert not fast(res)
    assert p.read("out/c.txt") == "lime\n"


@pytest.mark.parametrize(
    "env",
    [
        pytest.param({"QIK__WORKERS": "1"}, id="QIK__-variable"),
        pytest.param({"QIK__PROFILE": "ci"}, id="profile"),
        pytest.param({"QIK_NO_MEMO": "1"}, id="no-memo"),
        pytest.param({"VIRTUAL_ENV": "/nowhere"}, id="virtualenv"),
    ],
)
def test_an_environment_change_takes_the_normal_path(qik_project: Project, env: dict[str, str]) -> None:
    p = qik_project
    project(p, TOML + "\n[ctx.ci.qik]\nworkers = 1\n")
    warm(p)
    assert not fast(p.qik(env={**TRACE, **env}))


@pytest.mark.parametrize("args", [("-f",), ("--ls",), ("a", "-n", "1"), (":config",), ("--cache-status", "warm")])
def test_runs_with_options_never_replay_from_the_memo(qik_project: Project, args: tuple[str, ...]) -> None:
    p = qik_project
    project(p)
    warm(p)
    res = p.qik(*args, env=TRACE)
    assert "qik.commands" in res.err  # the CLI ran
    if args == ("-f",):
        assert "2 ran" in summary(res)


def test_a_selection_has_its_own_memo(qik_project: Project) -> None:
    p = qik_project
    project(p)
    assert p.qik().ok
    settle(p)
    assert p.qik().ok and p.qik("a").ok  # each writes its own memo
    res = p.qik("a", env=TRACE)
    assert fast(res)
    assert "1 runnable: 1 cached" in summary(res)
    assert "✓ b" not in res.out
    assert fast(p.qik(env=TRACE))  # the full run's memo is still there


def test_a_deleted_artifact_is_restored(qik_project: Project) -> None:
    p = qik_project
    project(p)
    warm(p)
    p.path("out/a.txt").unlink()
    res = p.qik(env=TRACE)
    assert not fast(res)
    assert p.read("out/a.txt") == "a1\n"
    assert "2 cached" in summary(res)


def test_an_edited_artifact_is_put_back_as_a_normal_run_would(qik_project: Project) -> None:
    p = qik_project
    project(p)
    warm(p)
    p.write("out/a.txt", "tampered\n")
    res = p.qik(env=TRACE)
    assert not fast(res)
    assert p.read("out/a.txt") == "a1\n"


def test_another_process_clearing_the_cache_makes_the_run_run(qik_project: Project) -> None:
    p = qik_project
    project(p)
    warm(p)
    assert p.qik(":cache", "clear", "--yes").ok or p.qik(":cache", "clear").ok or _rm(p.path("._qik/cache"))
    res = p.qik(env=TRACE)
    assert not fast(res)
    assert "2 ran" in summary(res), summary(res)


def _rm(path: pathlib.Path) -> bool:
    import shutil

    shutil.rmtree(path)
    return True


def test_a_replaced_manifest_is_noticed(qik_project: Project) -> None:
    """Another process stores the entry again under the same key, as every writer does (a
    temporary file renamed over it: a new inode): the normal path reads it."""
    p = qik_project
    project(p)
    warm(p)
    manifests = list(p.path("._qik/cache").glob("*.json"))
    assert manifests, list(p.path("._qik/cache").rglob("*"))
    for f in manifests:
        tmp = f.with_name(f.name + ".tmp")
        tmp.write_bytes(f.read_bytes())
        tmp.replace(f)
    assert not fast(p.qik(env=TRACE))


UPSTREAM = """\
[commands.gen]
exec = "mkdir -p gen && cp src/a/* gen/"
deps = ["src/a/**"]
artifacts = ["gen/*"]

[commands.use]
exec = "mkdir -p out && cat gen/* > out/use.txt"
deps = [{type = "command", name = "gen"}]
artifacts = ["out/use.txt"]
"""


def test_a_new_file_where_an_upstream_artifact_glob_looks_reruns_the_downstream(qik_project: Project) -> None:
    p = qik_project
    project(p, UPSTREAM)
    p.write(".gitignore", "out/\ngen/\n")
    p.commit("ignore gen")
    warm(p)
    assert p.read("out/use.txt") == "a1\n"
    p.write("gen/planted.txt", "planted\n")
    res = p.qik(env=TRACE)
    assert not fast(res)
    assert p.read("out/use.txt") == "a1\nplanted\n"


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"\xff\xfe garbage",
        b"[" * 100_000 + b"]" * 100_000,
        b'{"v": 2}',
        b"null",
        json.dumps({"v": 2, "qik": "x", "rows": [{"name": 1}]}).encode(),
    ],
    ids=["empty", "binary", "deep", "partial", "null", "wrong-types"],
)
def test_a_malformed_memo_is_ignored_without_a_traceback(qik_project: Project, content: bytes) -> None:
    p = qik_project
    project(p)
    warm(p)
    for f in p.path("._qik/memo").iterdir():
        f.write_bytes(content)
    res = p.qik(env=TRACE)
    assert not fast(res)
    assert "Traceback" not in res.err
    assert "2 cached" in summary(res)


def test_a_memo_with_a_wrong_field_is_ignored(qik_project: Project) -> None:
    """Each field of a real memo, swapped for a value of the wrong type, sends the run down
    the normal path; a damaged detail file only costs the partial hits."""
    p = qik_project
    project(p)
    warm(p)
    (memo_file,) = [f for f in p.path("._qik/memo").iterdir() if "." not in f.name]
    good = json.loads(memo_file.read_text())
    for field in good:
        bad = {**good, field: {"x": [1]} if not isinstance(good[field], dict) else [1]}
        memo_file.write_text(json.dumps(bad))
        res = p.qik(env=TRACE)
        assert "Traceback" not in res.err, field
        assert not fast(res), field
    row = good["rows"][0]
    for i, value in enumerate(row):
        bad_row = [*row[:i], {"x": 1} if not isinstance(value, dict) else 7, *row[i + 1 :]]
        memo_file.write_text(json.dumps({**good, "rows": [bad_row, *good["rows"][1:]]}))
        res = p.qik(env=TRACE)
        assert "Traceback" not in res.err, i
        assert not fast(res), i
    memo_file.write_text(json.dumps({**good, "kinds": good["kinds"][:-1]}))  # one path without a kind
    assert not fast(p.qik(env=TRACE))


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda d: {**d, "always": [len(d["stats"]) * 9]}, id="index-out-of-range"),
        pytest.param(lambda d: {**d, "stats": d["stats"][:-4]}, id="stats-short"),
        pytest.param(lambda d: {**d, "stats": [0] * len(d["stats"])}, id="stats-forged"),
        pytest.param(lambda d: {**d, "rows": d["rows"][::-1]}, id="rows-swapped"),
        pytest.param(lambda d: {**d, "files": []}, id="universe-forged"),
        pytest.param(lambda d: "nonsense", id="not-a-table"),
    ],
)
def test_a_damaged_detail_file_costs_only_the_partial_hits(qik_project: Project, damage: object) -> None:
    """The detail file tells the normal path which runnables a change cannot have touched: a
    damaged one must not make it replay one that changed."""
    p = qik_project
    project(p)
    warm(p)
    (detail,) = list(p.path("._qik/memo").glob("*.detail"))
    detail.write_text(json.dumps(damage(json.loads(detail.read_text()))))  # type: ignore[operator]
    p.write("src/a/1.txt", "A1\n")
    res = p.qik(env=TRACE)
    assert "Traceback" not in res.err
    assert p.read("out/a.txt") == "A1\n"
    assert "1 cached, 1 ran" in summary(res), summary(res)


def test_a_command_that_is_not_cached_runs_every_time(qik_project: Project) -> None:
    p = qik_project
    project(p, TOML + '\n[commands.stamp]\nexec = "date +%N >> stamps.txt"\n')
    for _ in range(3):
        settle(p)
        res = p.qik(env=TRACE)
        assert not fast(res)
    assert len(p.read("stamps.txt").splitlines()) == 3


def test_no_memo_is_written_after_a_failure_or_a_warning(qik_project: Project) -> None:
    p = qik_project
    project(p, TOML + '\n[commands.bad]\nexec = "exit 3"\n')
    assert not p.qik().ok
    settle(p)
    res = p.qik(env=TRACE)
    assert "qik.commands.run" in res.err and res.code == 1
    assert not [f for f in p.path("._qik/memo").iterdir()] if p.path("._qik/memo").exists() else True


def test_a_memo_of_an_earlier_state_is_removed_when_a_run_fails(qik_project: Project) -> None:
    p = qik_project
    project(p)
    warm(p)
    p.write("qik.toml", TOML + '\n[commands.bad]\nexec = "exit 3"\n')
    assert not p.qik().ok
    p.write("qik.toml", TOML)
    settle(p)
    res = p.qik(env=TRACE)
    assert not fast(res)  # the failing run removed the memo; this run writes a new one
    assert fast(p.qik(env=TRACE))


PLUGIN = '''
import os
from typing import ClassVar

import qik.plugin


class EnvConf(qik.plugin.DepConf, frozen=True, tag="env"):
    name: str


class FilesConf(qik.plugin.DepConf, frozen=True, tag="files"):
    folder: str


class LaterConf(qik.plugin.DepConf, frozen=True, tag="later"):
    folder: str


class EnvDep(qik.plugin.Dep, frozen=True):
    @property
    def consts(self):
        return [f"{self.val}={os.environ.get(self.val, '')}"]


class FilesDep(qik.plugin.Dep, frozen=True):
    memo_safe: ClassVar[bool] = True

    @property
    def globs(self):
        return [f"{self.val}/**"]


class LaterDep(FilesDep, frozen=True):  # adds the environment, and does not say it is safe
    @property
    def consts(self):
        return [os.environ.get("LATER", "")]


def env(conf, module=None, space=None):
    return EnvDep(conf.name)


def files(conf, module=None, space=None):
    return FilesDep(conf.folder)


def later(conf, module=None, space=None):
    return LaterDep(conf.folder)


qik.plugin.register_type(EnvConf, "qikplugin.env")
qik.plugin.register_type(FilesConf, "qikplugin.files")
qik.plugin.register_type(LaterConf, "qikplugin.later")
'''


@pytest.mark.parametrize(
    ("dep", "var", "memoized"),
    [
        pytest.param('{type = "files", folder = "src/a"}', None, True, id="declared-safe"),
        pytest.param('{type = "env", name = "FLAVOR"}', "FLAVOR", False, id="reads-the-environment"),
        pytest.param('{type = "later", folder = "src/a"}', "LATER", False, id="subclass-not-declared"),
    ],
)
def test_a_plugin_dep_is_memoized_only_when_it_says_so(qik_project: Project, dep: str, var: str | None, memoized: bool) -> None:
    p = qik_project
    project(p, TOML.replace('deps = ["src/a/**"]', f"deps = [{dep}]").replace("cat src/a/* >", "cat src/a/* > out/a.txt; echo ${FLAVOR}${LATER} >>"))
    p.write("qikplugin.py", PLUGIN)
    p.commit("plugin")
    env = {var: "one"} if var else {}
    assert p.qik(env=env).ok
    settle(p)
    assert p.qik(env=env).ok
    assert fast(p.qik(env={**env, **TRACE})) is memoized
    if var:
        res = p.qik(env={var: "two", **TRACE})
        assert "1 cached, 1 ran" in summary(res), summary(res)
        assert p.read("out/a.txt").endswith("two\n")


def test_a_memo_that_is_a_fifo_or_from_another_version_is_ignored(qik_project: Project) -> None:
    p = qik_project
    project(p)
    warm(p)
    (memo_file,) = [f for f in p.path("._qik/memo").iterdir() if "." not in f.name]
    good = json.loads(memo_file.read_text())
    memo_file.write_text(json.dumps({**good, "qik": "0.0.1"}))
    assert not fast(p.qik(env=TRACE))
    warm(p)
    memo_file.unlink()
    os.mkfifo(memo_file)  # opening it to read would wait for a writer forever
    res = p.qik(env=TRACE, timeout=30)
    assert not fast(res) and "2 cached" in summary(res)


ODD = b"odd-\xff.txt".decode("utf-8", "surrogateescape")  # not UTF-8


def test_a_file_name_that_is_not_utf8_is_never_replayed_wrongly(qik_project: Project) -> None:
    p = qik_project
    project(p)
    (p.root / "src" / "a" / ODD).write_bytes(b"odd\n")
    p.commit("odd")
    assert p.qik().ok
    settle(p)
    assert p.qik().ok
    assert p.qik().ok
    (p.root / "src" / "a" / ODD).write_bytes(b"ODD\n")
    res = p.qik(env=TRACE)
    assert not fast(res)
    assert p.read("out/a.txt") == "a1\nODD\n"


def _ext_plugin(p: Project) -> tuple[pathlib.Path, pathlib.Path]:
    """A plugin package outside the project (``extplug``, on PYTHONPATH, as an editable
    install is) with a memo-safe ``word`` dep whose consts its ``deps.py`` makes; its files
    aged past the memo's two-second rule. The folder and ``deps.py``."""
    ext = p.root.parent / "ext"
    (ext / "extplug").mkdir(parents=True)
    (ext / "extplug" / "__init__.py").write_text("")
    (ext / "extplug" / "qikplugin.py").write_text(
        "import qik.plugin\n\n\nclass WordConf(qik.plugin.DepConf, frozen=True, tag='word'):\n    word: str\n\n\n"
        "qik.plugin.register_type(WordConf, 'extplug.deps.factory')\n"
    )
    deps = ext / "extplug" / "deps.py"
    deps.write_text(
        "from typing import ClassVar\n\nimport qik.plugin\n\n\nclass Word(qik.plugin.Dep, frozen=True):\n"
        "    memo_safe: ClassVar[bool] = True\n\n    @property\n    def consts(self):\n        return [self.val]\n\n\n"
        "def factory(conf, module=None, space=None):\n    return Word(conf.word)\n"
    )
    for f in (ext / "extplug").iterdir():
        os.utime(f, (time.time() - 60, time.time() - 60))
    p.env["PYTHONPATH"] = str(ext)
    return ext, deps


def test_an_edit_to_a_plugin_package_or_its_search_path_takes_the_normal_path(qik_project: Project) -> None:
    """A plugin developed in place (an editable install): editing any of its modules, not
    only its qikplugin.py, is seen, and so is another PYTHONPATH."""
    p = qik_project
    ext, deps = _ext_plugin(p)
    toml = '[plugins]\nword = "extplug"\n\n' + TOML.replace('deps = ["src/a/**"]', 'deps = ["src/a/**", {type = "word", word = "w"}]')
    project(p, toml)
    warm(p)
    t = time.time() - 30
    deps.write_text(deps.read_text().replace("return [self.val]", "return [self.val + '2']"))
    os.utime(deps, (t, t))
    res = p.qik(env=TRACE)
    assert not fast(res)
    assert "1 cached, 1 ran" in summary(res), summary(res)  # the new code gives a new key
    warm(p)
    assert not fast(p.qik(env={**TRACE, "PYTHONPATH": f"{ext}:{p.root.parent}"}))


UPSTREAM_STYLE = '''
import os

import qik.conf
import qik.dep
import qik.runnable


class EnvDepConf(qik.conf.Dep, frozen=True, tag="env"):
    name: str


def env(conf, module=None, space=None):
    return qik.dep.Const(f"{conf.name}={os.environ.get(conf.name, '')}")  # qik's own type, filled from the environment


def make(name, conf, **args):
    word = os.environ.get("WORD", "")
    r = qik.runnable.Runnable(name=name, cmd=name, exec=f"mkdir -p out && echo {word} > out/made.txt", deps=[qik.dep.Glob("src/b/**")], artifacts=["out/made.txt"])
    return {name: r}


qik.conf.register_type(EnvDepConf, "qikplugin.env")
'''


@pytest.mark.parametrize("what", ["dep", "command"])
def test_what_an_upstream_style_plugin_factory_makes_is_never_replayed_from_the_memo(qik_project: Project, what: str) -> None:
    """A factory may compute a built-in type's values from anything (here the environment):
    its deps and runnables are not memo-safe, whatever their type."""
    p = qik_project
    if what == "dep":
        toml = TOML.replace('deps = ["src/a/**"]', 'deps = ["src/a/**", {type = "env", name = "WORD"}]')
        toml = toml.replace("cat src/a/* > out/a.txt", "cat src/a/* > out/a.txt; echo $WORD >> out/a.txt")
        out = "out/a.txt"
    else:
        toml = TOML + '\n[commands.made]\nexec = "unused"\nfactory = "qikplugin.make"\n'
        out = "out/made.txt"
    project(p, toml)
    p.write("qikplugin.py", UPSTREAM_STYLE)
    p.commit("plugin")
    assert p.qik(env={"WORD": "one"}).ok
    settle(p)
    assert p.qik(env={"WORD": "one"}).ok
    res = p.qik(env={"WORD": "two", **TRACE})
    assert not fast(res)
    assert p.read(out).endswith("two\n"), summary(res)


NO_ARTIFACTS = """\
[commands.gen]
exec = "cat src/a/*"
deps = ["src/a/**"]

[commands.use]
exec = "mkdir -p out && cat src/b/* > out/use.txt"
deps = ["src/b/**", {type = "command", name = "gen"}]
artifacts = ["out/use.txt"]
"""


def _manifests(p: Project, name: str) -> dict[str, int]:
    """The mtimes of a runnable's manifests (a keyed hit touches its manifest, a memo hit
    leaves a recently touched one as it is)."""
    return {str(f): f.stat().st_mtime_ns for f in p.path("._qik").rglob(f"{name}*.json")}


def test_a_downstream_of_a_rerun_upstream_without_artifacts_stays_a_memo_hit(qik_project: Project) -> None:
    """Its key does not depend on the upstream (no artifacts to digest): once the upstream
    ran, its paths are stat'ed again and it replays from its row, not keyed."""
    p = qik_project
    project(p, NO_ARTIFACTS)
    warm(p)
    before = _manifests(p, "use")
    assert before
    p.write("src/a/1.txt", "a2\n")
    res = p.qik()
    assert res.ok and "1 cached, 1 ran" in summary(res), summary(res)
    assert _manifests(p, "use") == before
    assert p.read("out/use.txt") == "b1\n"


@pytest.mark.parametrize("same", [False, True], ids=["new-content", "same-content"])
def test_a_downstream_whose_upstream_rewrote_its_artifacts_is_keyed_again(qik_project: Project, same: bool) -> None:
    """The upstream ran and rewrote ``gen/*`` (with new content, or the same): the stats
    the downstream's row recorded for them no longer hold, so it is keyed (and runs, or
    replays its entry), never replayed from the row."""
    p = qik_project
    project(p, UPSTREAM.replace("cp src/a/* gen/", "cp src/a/1.txt gen/"))
    p.write(".gitignore", "out/\ngen/\n")
    p.commit("ignore gen")
    warm(p)
    before = _manifests(p, "use")
    p.write("src/a/2.txt", "a2\n") if same else p.write("src/a/1.txt", "A1\n")
    res = p.qik()
    assert res.ok, res.err
    assert p.read("out/use.txt") == ("a1\n" if same else "A1\n")
    if same:  # the same key: replayed from its entry, which the lookup touched
        assert "1 cached, 1 ran" in summary(res), summary(res)
        assert all(_manifests(p, "use")[f] > before[f] for f in before)
    else:
        assert "2 ran" in summary(res), summary(res)


@pytest.mark.parametrize("settled", [False, True], ids=["rows-carried-over", "none-carried-over"])
def test_a_config_edited_during_a_run_is_not_vouched_for_by_its_memo(qik_project: Project, settled: bool) -> None:
    """The memo a run writes keeps the stats the config had when it was read: a ``qik.toml``
    saved while ``a`` runs (its mtime set back, past the racy window) makes the next run
    load it, not replay ``b`` from a row keyed on the old config. ``b`` replays from the
    earlier memo's row, or (every file aged, the config too) no row is carried over."""
    p = qik_project
    edit = "if [ -f next.toml ]; then cp next.toml qik.toml && rm next.toml && touch -d '1 minute ago' qik.toml; fi"
    toml = TOML.replace('cat src/a/* > out/a.txt"', f'cat src/a/* > out/a.txt && {edit}"')
    project(p, toml)
    warm(p)
    p.write("next.toml", toml.replace("cat src/b/* > out/b.txt", "cat src/b/* src/b/* > out/b.txt"))
    p.write("src/a/1.txt", "a2\n")
    if settled:
        settle(p)
    assert p.qik().ok
    assert not p.path("next.toml").exists() and "src/b/* src/b/*" in p.read("qik.toml")
    res = p.qik(env=TRACE)
    assert not fast(res)
    assert p.read("out/b.txt") == "b1\nb1\n", summary(res)


@pytest.mark.parametrize("inputs", [1, 1100], ids=["stat-here", "stat-by-the-child"])
def test_a_partial_run_touches_the_entries_it_replays_from_the_memo(qik_project: Project, inputs: int) -> None:
    """Least-recently-used pruning reads the manifests' mtimes: a row replayed from the memo
    on the normal path touches its entry's manifest when it was not touched for a while, as
    the fast path and a keyed hit do (with 1,100 inputs of ``a``, ``b``'s manifest is past
    the first batch of stats, which a forked child takes)."""
    p = qik_project
    project(p)
    for i in range(2, inputs + 1):
        p.write(f"src/a/{i}.txt", "")
    p.commit("inputs")
    warm(p)
    hour_ago = time.time() - 3600
    manifests = _manifests(p, "b")
    for f in manifests:
        os.utime(f, (hour_ago, hour_ago))
    p.write("src/a/1.txt", "A1\n")
    res = p.qik()
    assert res.ok and "1 cached, 1 ran" in summary(res), summary(res)
    assert all(os.stat(f).st_mtime > time.time() - 60 for f in manifests)


def test_a_plugin_module_edited_during_a_run_is_not_vouched_for(qik_project: Project) -> None:
    """qik's and the plugins' own files are stat'ed after the run when no row of an earlier
    memo is carried over: one edited after this process imported it (``a`` edits the
    plugin's ``deps.py``, then runs on past the two-second racy window) is never trusted,
    so the next run imports the new code and keys ``a`` again."""
    p = qik_project
    ext, deps = _ext_plugin(p)
    edit = f"if [ -f {ext}/next.py ]; then mv {ext}/next.py {deps} && touch {deps} && sleep 2.2; fi"
    toml = '[plugins]\nword = "extplug"\n\n' + TOML.replace('deps = ["src/a/**"]', 'deps = ["src/a/**", {type = "word", word = "w"}]')
    project(p, toml.replace('cat src/a/* > out/a.txt"', f'cat src/a/* > out/a.txt && {edit}"'))
    warm(p)
    (ext / "next.py").write_text(deps.read_text().replace("return [self.val]", "return [self.val + '2']"))
    for f in p.path("._qik/memo").iterdir():  # no memo: nothing is carried over
        f.unlink()
    p.write("src/a/1.txt", "A1\n")
    assert "1 cached, 1 ran" in summary(p.qik())
    assert "'2'" in deps.read_text()
    res = p.qik(env=TRACE)
    assert not fast(res)
    assert "1 cached, 1 ran" in summary(res), summary(res)  # the new code gives a new key
