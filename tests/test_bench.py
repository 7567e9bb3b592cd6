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

sys.path.insert(0, str(ROOT))
from bench import generate as gen  # noqa: E402
from bench import peers  # noqa: E402


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


def test_bench_compares_two_qiks_and_prints_ratios(tmp_path: pathlib.Path) -> None:
    # The same qik twice stands in for upstream: what is checked is the runner's plumbing.
    proc, data = bench(
        tmp_path, "--modules", "3", "--files", "2", "--runs", "2", "--scaling", "2",
        "--other", QIK, "--other-label", "again",
    )
    rows = {(r["scenario"], r["tool"]): r for r in data["rows"]}
    scenarios = ["qik --help", "cold 3x2", "warm 3x2", "one file changed 3x2", "--ls 3x2", "warm 2x2 (scaling)"]
    for sc in scenarios:
        for tool in ("ours", "again"):
            row = rows[(sc, tool)]
            assert row["ok"] and row["runs"] == 2, row
            assert 0 < row["min"] <= row["median"] <= row["max"]
            assert row["rss_mb"] > 1
    # The warm run really was warm and the cold run really was cold.
    assert "7 cached, 0 ran" in rows[("warm 3x2", "ours")]["last_err"]
    assert "0 cached, 7 ran" in rows[("cold 3x2", "ours")]["last_err"]
    assert "6 cached, 1 ran" in rows[("one file changed 3x2", "ours")]["last_err"]
    assert "again/ours" in proc.stdout and "| warm 3x2 |" in proc.stdout
    assert data["versions"]["ours"].startswith("qik ")


def test_bench_s3_scenarios(tmp_path: pathlib.Path) -> None:
    pytest.importorskip("moto")
    pytest.importorskip("boto3")
    if not (ROOT / "src/qik/s3/qikplugin.py").exists():
        pytest.skip("the S3 plugin is not there yet")
    _, data = bench(tmp_path, "--skip-main", "--scaling", "", "--s3", "3", "--files", "2", "--runs", "1")
    rows = {r["scenario"]: r for r in data["rows"]}
    upload, restore = rows["S3 upload s3-3x2"], rows["S3 restore s3-3x2"]
    assert upload["ok"] and "0 cached, 3 ran" in upload["last_err"], upload
    assert restore["ok"] and "3 cached, 0 ran" in restore["last_err"], restore
