"""The benchmark at a tiny size: a smoke test of its correctness, never of timing."""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
QIK = str(pathlib.Path(sys.executable).with_name("qik"))


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
    sys.path.insert(0, str(ROOT))
    from bench.generate import generate

    root = generate(tmp_path / "repo", 3, 3)
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
