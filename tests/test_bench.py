"""The benchmark at a tiny size: a smoke test of its correctness, never of timing."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import types

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
QIK = str(pathlib.Path(sys.executable).with_name("qik"))
# Where bench/install.sh puts the peers (or BENCH_TURBO / BENCH_DOIT); missing in CI.
TURBO = os.environ.get("BENCH_TURBO", "/tmp/turbo-peer/node_modules/.bin/turbo")
DOIT = os.environ.get("BENCH_DOIT", "/tmp/doit-peer/bin/doit")

sys.path.insert(0, str(ROOT))
from bench import generate as gen  # noqa: E402
from bench import peers  # noqa: E402
from bench import run as bench_run  # noqa: E402


def bench(tmp_path: pathlib.Path, *args: str) -> tuple[subprocess.CompletedProcess[str], dict]:
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [sys.executable, "-m", "bench.run", "--workdir", str(tmp_path / "w"), "--json", str(out), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc, json.loads(out.read_text())


def test_generated_repo_runs_cold_then_all_cached(tmp_path: pathlib.Path) -> None:
    root = gen.generate(tmp_path / "repo", 3, 3, peers=True)
    assert subprocess.run(["git", "status", "--porcelain"], cwd=root, capture_output=True, text=True).stdout == ""
    cold = subprocess.run([QIK, "-n", "2"], cwd=root, capture_output=True, text=True)
    assert cold.returncode == 0, cold.stderr
    assert "7 runnables: 0 cached, 7 ran" in cold.stderr  # 3 builds, 3 tests, 1 bundle
    assert (root / "dist/bundle.txt").read_text().count("\n") == 3
    warm = subprocess.run([QIK], cwd=root, capture_output=True, text=True)
    assert "7 runnables: 7 cached, 0 ran" in warm.stderr
    (root / "pkgs/m0001/src/f000.py").write_text("changed = 1\n")
    changed = subprocess.run([QIK], cwd=root, capture_output=True, text=True)
    assert "6 cached, 1 ran" in changed.stderr  # only build#m0001 (it has no artifacts)
    ls = subprocess.run([QIK, "--ls"], cwd=root, capture_output=True, text=True)
    assert ls.stdout.split() == [
        "build#m0000", "build#m0001", "build#m0002", "bundle", "test#m0000", "test#m0001", "test#m0002",
    ]


def test_peer_configs_run_qiks_commands_on_qiks_inputs(tmp_path: pathlib.Path) -> None:
    root = gen.generate(tmp_path / "repo", 3, 3, peers=True)
    tracked = subprocess.run(["git", "ls-files"], cwd=root, capture_output=True, text=True).stdout.split()
    assert {*peers.FILES, "pkgs/m0002/package.json"} <= set(tracked)
    # Turborepo: the same commands (from the root), inputs, outputs and order.
    turbo = json.loads((root / "turbo.json").read_text())["tasks"]
    assert turbo["test"]["dependsOn"] == ["build"]
    assert turbo["//#bundle"]["dependsOn"] == ["m0000#build", "m0001#build", "m0002#build"]
    assert turbo["//#bundle"]["outputs"] == ["dist/bundle.txt"]
    scripts = json.loads((root / "pkgs/m0001/package.json").read_text())["scripts"]
    assert scripts["build"] == "cd ../.. && " + gen.BUILD.replace("{module.dir}", "pkgs/m0001")
    assert scripts["test"] == "cd ../.. && " + gen.TEST.replace("{module.dir}", "pkgs/m0001")
    top = json.loads((root / "package.json").read_text())
    assert top["workspaces"] == ["pkgs/*"] and top["packageManager"].startswith("npm@")
    assert top["scripts"]["bundle"] == gen.BUNDLE
    lock = json.loads((root / "package-lock.json").read_text())["packages"]
    assert lock["node_modules/m0002"] == {"resolved": "pkgs/m0002", "link": True}
    # doit (not installed here: a stand-in for doit.tools): the same tasks and deps.
    fake = types.ModuleType("doit.tools")
    fake.config_changed = lambda value: ("config_changed", value)  # type: ignore[attr-defined]
    sys.modules.setdefault("doit", types.ModuleType("doit"))
    sys.modules["doit.tools"] = fake
    ns: dict[str, object] = {}
    cwd = os.getcwd()
    try:
        os.chdir(root)  # doit runs a dodo.py from its folder
        exec(compile((root / "dodo.py").read_text(), "dodo.py", "exec"), ns)
        builds = list(ns["task_build"]())  # type: ignore[operator]
        tests = list(ns["task_test"]())  # type: ignore[operator]
        bundle = ns["task_bundle"]()  # type: ignore[operator]
    finally:
        os.chdir(cwd)
        del sys.modules["doit.tools"]
    assert [b["name"] for b in builds] == ["m0000", "m0001", "m0002"]
    assert builds[1]["actions"] == [gen.BUILD.replace("{module.dir}", "pkgs/m0001")]
    assert builds[1]["file_dep"] == ["pkgs/m0001/src/f000.py", "pkgs/m0001/src/f001.py"]
    assert builds[1]["uptodate"] == [("config_changed", gen.CONST)]
    assert tests[1]["file_dep"] == ["pkgs/m0001/README.md"] and tests[1]["task_dep"] == ["build:m0001"]
    assert bundle["actions"] == [gen.BUNDLE] and bundle["targets"] == ["dist/bundle.txt"]
    assert bundle["task_dep"] == ["build"] and len(bundle["file_dep"]) == 3


TURBO_WARM = """\
m0000:build: cache hit, replaying logs 2b907dac3c4e3d3b
//:bundle: cache hit, replaying logs 71d1d721d21e47dd

 Tasks:    7 successful, 7 total
Cached:    7 cached, 7 total
  Time:    13ms >>> FULL TURBO
"""


def test_output_checks_tell_a_cache_hit_from_a_run() -> None:
    turbo = bench_run.Tool("turbo", "turbo", "turbo")
    assert turbo.check("warm", 7, TURBO_WARM, "") == ""
    assert "FULL TURBO" in (turbo.check("warm", 7, TURBO_WARM.replace(">>> FULL TURBO", ""), "") or "")
    changed = TURBO_WARM.replace("7 cached, 7", "4 cached, 7").replace(">>> FULL TURBO", "")
    assert turbo.check("changed", 7, changed, "") == ""  # build, test and bundle re-run
    assert turbo.check("warm", 7, changed, "") != ""
    assert turbo.check("cold", 7, "", "error") == "no Turborepo summary"
    doit = bench_run.Tool("doit", "doit", "doit")
    warm = "".join(f"-- {t}\n" for t in ("build:a", "build:b", "test:a", "test:b", "bundle"))
    assert doit.check("warm", 5, warm, "") == ""
    assert doit.check("changed", 5, warm.replace("-- build:a", ".  build:a"), "") == ""
    assert doit.check("warm", 5, warm.replace("-- build:a", ".  build:a"), "") == "1 of 5 tasks ran, expected 0 of 5"
    assert doit.check("warm", 5, warm[:-10], "") != ""  # a task missing
    ours, other = bench_run.Tool("ours", QIK), bench_run.Tool("upstream", QIK)
    assert ours.check("warm", 7, "", "7 runnables: 7 cached, 0 ran, 0 failed") == ""
    assert ours.check("changed", 7, "", "7 runnables: 6 cached, 1 ran, 0 failed") == ""
    assert ours.check("cold", 7, "", "7 runnables: 6 cached, 1 ran, 0 failed") == "1 of 7 tasks ran, expected 7 of 7"
    assert ours.check("warm", 7, "", "") == "no summary"
    assert other.check("warm", 7, "✅️ build", "") is None  # upstream 0.2.10 prints no counts


def test_importtime_is_parsed() -> None:
    err = (
        "import time: self [us] | cumulative | imported package\n"
        "import time:       100 |        100 |   _io\n"
        "import time:      1000 |       1100 | io\n"
        "import time:      2000 |       2000 |     click.core\n"
        "import time:       500 |       2500 |   click\n"
        "import time:       300 |       2800 | qik.cli\n"
        "3 runnables: 3 cached, 0 ran\n"
    )
    imports = bench_run.Imports.parse(err)
    assert imports.total_ms == pytest.approx(3.9) and imports.modules == 5
    assert imports.top == [("qik.cli", 2.8), ("io", 1.1)]
    assert imports.packages == ["click", "qik"]


def test_bench_compares_two_qiks_and_prints_ratios(tmp_path: pathlib.Path) -> None:
    # The same qik twice stands in for upstream: what is checked is the runner's plumbing.
    proc, data = bench(
        tmp_path, "--modules", "3", "--files", "2", "--runs", "2", "--scaling", "2", "--settle", "0",
        "--other", QIK, "--other-label", "again", "--scaling-tools", "ours",
    )
    rows = {(r["scenario"], r["tool"]): r for r in data["rows"]}
    scenarios = ["--help", "cold 3x2", "warm 3x2", "one file changed 3x2", "--ls 3x2"]
    for sc in scenarios:
        for tool in ("ours", "again"):
            row = rows[(sc, tool)]
            assert row["ok"] and row["runs"] == 2, row
            assert 0 < row["min"] <= row["median"] <= row["max"]
            assert row["rss_mb"] > 1
    for sc in ("warm, memo off 3x2", "warm 2x2 (scaling)", "one file changed 2x2 (scaling)"):
        assert rows[(sc, "ours")]["ok"] and (sc, "again") not in rows
    # The warm run really was warm and the cold run really was cold (and checked so).
    assert "7 cached, 0 ran" in rows[("warm 3x2", "ours")]["last_err"]
    assert "0 cached, 7 ran" in rows[("cold 3x2", "ours")]["last_err"]
    assert "6 cached, 1 ran" in rows[("one file changed 3x2", "ours")]["last_err"]
    assert all(rows[(sc, "again")]["checked"] for sc in ("cold 3x2", "warm 3x2", "one file changed 3x2"))
    assert "| warm 3x2 | again |" in proc.stdout and "wall / ours" in proc.stdout
    assert data["versions"]["ours"].startswith("qik ")
    startup = {(s["tool"], s["what"]): s for s in data["startup"]}
    assert startup[("ours", "--help")]["modules"] > 10 and startup[("ours", "--help")]["import_ms_median"] > 0
    assert startup[("again", "warm no-op")]["problem"] is None
    assert data["load"]["before"]


def test_bench_peers_smoke(tmp_path: pathlib.Path) -> None:
    """Ours beside whichever peers bench/install.sh installed (none in CI: each is then
    skipped with a note), with files settled as in the real runs, so a warm no-op of ours
    replays from the run memo."""
    installed = {name: os.access(exe, os.X_OK) for name, exe in (("turbo", TURBO), ("doit", DOIT))}
    proc, data = bench(
        tmp_path, "--modules", "2", "--files", "2", "--runs", "1", "--scaling", "", "--turbo", TURBO, "--doit", DOIT,
    )
    rows = {(r["scenario"], r["tool"]): r for r in data["rows"]}
    for name, present in installed.items():
        if not present:
            assert f"note: {name} skipped" in proc.stdout
            assert not any(tool == name for _, tool in rows)
            continue
        for sc in ("cold 2x2", "warm 2x2", "one file changed 2x2"):
            assert rows[(sc, name)]["ok"] and rows[(sc, name)]["checked"], rows[(sc, name)]
        assert data["versions"][name].startswith(name + " ")
        assert f"| {name} |" in proc.stdout
    if installed["turbo"]:
        assert "FULL TURBO" in rows[("warm 2x2", "turbo")]["last_out"]
    if installed["doit"]:
        assert ("doit", "warm no-op") in {(s["tool"], s["what"]) for s in data["startup"]}
    assert rows[("warm 2x2", "ours")]["checked"]
    # The settled warm no-op replayed from ._qik/memo: it never imported click.
    warm = next(s for s in data["startup"] if s["tool"] == "ours" and s["what"] == "warm no-op")
    assert warm["problem"] is None and "click" not in warm["packages"]
    assert any(name.startswith("qik.") for name, _ in warm["top"])
    # --help is printed from qik/_help.py (a wide terminal: the bench's output goes to files).
    helped = next(s for s in data["startup"] if s["tool"] == "ours" and s["what"] == "--help")
    assert helped["problem"] is None and "click" not in helped["packages"]


def test_bench_s3_scenarios(tmp_path: pathlib.Path) -> None:
    pytest.importorskip("moto")
    pytest.importorskip("boto3")
    if not (ROOT / "src/qik/s3/qikplugin.py").exists():
        pytest.skip("the S3 plugin is not there yet")
    _, data = bench(tmp_path, "--skip-main", "--scaling", "", "--s3", "3", "--files", "2", "--runs", "1")
    rows = {r["scenario"]: r for r in data["rows"]}
    upload, restore = rows["S3 upload s3-3x2"], rows["S3 restore s3-3x2"]
    assert upload["ok"] and upload["checked"] and "0 cached, 3 ran" in upload["last_err"], upload
    assert restore["ok"] and restore["checked"] and "3 cached, 0 ran" in restore["last_err"], restore
