"""Time qik (and optionally another qik) on generated monorepos; print medians and ratios.

    python -m bench.run --other /tmp/upstream-qik/bin/qik

Each tool gets its own copy of the same generated repo, so their caches never mix. Every
scenario runs ``--runs`` times, interleaving the tools; a run is timed with wall-clock time
and its peak RSS is read from ``wait4``. A scenario whose runs get slow stops early once
``--budget`` seconds are spent on it (after at least one run).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import pathlib
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator

from bench import generate as gen

Prepare = Callable[[pathlib.Path], None]


@dataclasses.dataclass
class Tool:
    label: str
    exe: str


@dataclasses.dataclass
class Sample:
    seconds: float
    rss_mb: float
    code: int
    err: str
    cpu: float = 0.0  # user + system seconds, with the children it waited for


@dataclasses.dataclass
class Row:
    scenario: str
    tool: str
    samples: list[Sample] = dataclasses.field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.samples) and all(s.code == 0 for s in self.samples)

    @property
    def times(self) -> list[float]:
        return [s.seconds for s in self.samples]

    @property
    def median(self) -> float:
        return statistics.median(self.times)

    @property
    def rss(self) -> float:
        return max(s.rss_mb for s in self.samples)

    @property
    def cpu(self) -> float:
        return statistics.median(s.cpu for s in self.samples)

    def as_dict(self) -> dict[str, object]:
        return {
            "scenario": self.scenario,
            "tool": self.tool,
            "ok": self.ok,
            "runs": len(self.samples),
            "median": round(self.median, 4),
            "min": round(min(self.times), 4),
            "max": round(max(self.times), 4),
            "rss_mb": round(self.rss, 1),
            "cpu": round(self.cpu, 4),
            "last_err": self.samples[-1].err[-2000:],
        }


def timed(cmd: list[str], cwd: pathlib.Path, env: dict[str, str]) -> Sample:
    """Run a command; wall time, peak RSS (of the process or its largest child) and exit code."""
    with tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        text = err.read().decode("utf-8", "replace")
    # ru_maxrss is in KiB on Linux and bytes on macOS.
    rss = usage.ru_maxrss / (1 << 20 if sys.platform == "darwin" else 1 << 10)
    return Sample(seconds, rss, proc.returncode, text, usage.ru_utime + usage.ru_stime)


def git_clean(root: pathlib.Path) -> None:
    """Back to the committed tree: no cache, no outputs (what a fresh checkout has)."""
    subprocess.run(["git", "checkout", "-q", "--", "."], cwd=root, check=True)
    subprocess.run(["git", "clean", "-fdxq"], cwd=root, check=True)


_EDITS = iter(range(1, 1 << 30))


def edit_one_file(root: pathlib.Path) -> None:
    path = root / "pkgs" / gen.module_name(0) / "src" / "f000.py"
    path.write_text(gen.source(gen.module_name(0), 0) + f"# edit {next(_EDITS)}\n")


def nothing(root: pathlib.Path) -> None:
    pass


class Bench:
    def __init__(self, tools: list[Tool], workdir: pathlib.Path, runs: int, budget: float) -> None:
        self.tools = tools
        self.workdir = workdir
        self.runs = runs
        self.budget = budget
        self.rows: list[Row] = []
        self.env = {**os.environ, "NO_COLOR": "1", "TERM": "dumb"}
        self.env.pop("QIK__PROFILE", None)
        # As on a normal install, Python may cache bytecode (some sandboxes turn it off).
        self.env.pop("PYTHONDONTWRITEBYTECODE", None)
        for t in tools:  # the first run of a tool compiles its bytecode: not timed
            subprocess.run([t.exe, "--help"], env=self.env, capture_output=True, check=False)

    def repos(self, tag: str, modules: int, files: int, s3: Callable[[Tool], dict[str, str]] | None = None) -> dict[str, pathlib.Path]:
        """One repo per tool, generated alike (the same content, so the same keys)."""
        out = {}
        for tool in self.tools:
            dest = self.workdir / f"{tag}-{tool.label}"
            if not dest.exists():
                gen.generate(dest, modules, files, s3=s3(tool) if s3 else None)
            out[tool.label] = dest
        return out

    def scenario(
        self,
        name: str,
        repos: dict[str, pathlib.Path],
        args: list[str],
        prepare: Prepare = nothing,
        setup: Prepare | None = None,
    ) -> list[Row]:
        """Time ``qik ARGS`` for every tool, ``runs`` times, interleaved."""
        rows = {t.label: Row(name, t.label) for t in self.tools}
        spent = dict.fromkeys(rows, 0.0)
        if setup:
            for t in self.tools:
                setup(repos[t.label])
        print(f"  {name} ...", end="", flush=True, file=sys.stderr)
        for _ in range(self.runs):
            for t in self.tools:
                if rows[t.label].samples and spent[t.label] > self.budget:
                    continue
                root = repos[t.label]
                prepare(root)
                s = timed([t.exe, *args], root, self.env)
                rows[t.label].samples.append(s)
                spent[t.label] += s.seconds
        print(" " + "  ".join(f"{r.tool} {r.median:.3f}s" for r in rows.values()), file=sys.stderr)
        self.rows.extend(rows.values())
        return list(rows.values())

    def setup_for(self, repos: dict[str, pathlib.Path]) -> Prepare:
        """An untimed run of the tool that owns a repo, so the next one is warm."""
        by_root = {repos[t.label]: t for t in self.tools}

        def run(root: pathlib.Path) -> None:
            subprocess.run([by_root[root].exe], cwd=root, env=self.env, capture_output=True, check=False)

        return run

    # ---- the suites ----

    def main_suite(self, modules: int, files: int) -> None:
        tag = f"{modules}x{files}"
        print(f"== {tag}", file=sys.stderr)
        repos = self.repos(tag, modules, files)
        self.scenario("qik --help", repos, ["--help"])
        self.scenario(f"cold {tag}", repos, [], prepare=git_clean)
        self.scenario(f"warm {tag}", repos, [], setup=self.setup_for(repos))
        self.scenario(f"one file changed {tag}", repos, [], prepare=edit_one_file, setup=self.setup_for(repos))
        self.scenario(f"--ls {tag}", repos, ["--ls"])

    def scaling_suite(self, sizes: list[int], files: int) -> None:
        for modules in sizes:
            tag = f"{modules}x{files}"
            print(f"== scaling {tag}", file=sys.stderr)
            repos = self.repos(tag, modules, files)
            self.scenario(f"warm {tag} (scaling)", repos, [], setup=self.setup_for(repos))

    def s3_suite(self, modules: int, files: int) -> None:
        with moto_server() as endpoint:
            buckets = {t.label: f"bench-{t.label}" for t in self.tools}
            for b in buckets.values():
                _s3(endpoint).create_bucket(Bucket=b)
            s3 = lambda t: {"bucket": buckets[t.label], "endpoint": endpoint}  # noqa: E731
            tag = f"s3-{modules}x{files}"
            print(f"== {tag}", file=sys.stderr)
            repos = self.repos(tag, modules, files, s3=s3)
            env_before = self.env
            self.env = {**self.env, **_AWS_ENV}
            try:
                by_root = {v: buckets[k] for k, v in repos.items()}

                def clean_all(root: pathlib.Path) -> None:
                    git_clean(root)
                    _empty_bucket(endpoint, by_root[root])

                self.scenario(f"S3 upload {tag}", repos, ["build"], prepare=clean_all)
                self.scenario(f"S3 restore {tag}", repos, ["build"], prepare=git_clean)
            finally:
                self.env = env_before


# ---- S3 via moto's server on loopback ----

_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def _s3(endpoint: str):  # type: ignore[no-untyped-def]
    import boto3

    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                        aws_access_key_id="bench", aws_secret_access_key="bench")


def _empty_bucket(endpoint: str, bucket: str) -> None:
    client = _s3(endpoint)
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
        if keys:
            client.delete_objects(Bucket=bucket, Delete={"Objects": keys})


@contextlib.contextmanager
def moto_server() -> Iterator[str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("moto server did not start") from None
                time.sleep(0.1)
        yield endpoint
    finally:
        proc.terminate()
        proc.wait(10)


# ---- reporting ----


def table(rows: list[Row], tools: list[Tool]) -> str:
    """A markdown table: one line per scenario, medians (min-max) and RSS per tool, ratios."""
    ours = tools[0].label
    scenarios = list(dict.fromkeys(r.scenario for r in rows))
    by = {(r.scenario, r.tool): r for r in rows}
    head = ["scenario"]
    for t in tools:
        head += [f"{t.label} median (min-max) s", f"{t.label} CPU s", f"{t.label} RSS MB"]
    if len(tools) > 1:
        head += [f"{t.label}/{ours}" for t in tools[1:]]
        head += [f"CPU {t.label}/{ours}" for t in tools[1:]]
        head += [f"RSS {t.label}/{ours}" for t in tools[1:]]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for sc in scenarios:
        cells = [sc]
        for t in tools:
            r = by.get((sc, t.label))
            if r is None or not r.samples:
                cells += ["-", "-", "-"]
            elif not r.ok:
                cells += ["error", "-", "-"]
            else:
                cells += [f"{r.median:.3f} ({min(r.times):.3f}-{max(r.times):.3f})", f"{r.cpu:.2f}", f"{r.rss:.0f}"]
        if len(tools) > 1:
            mine = by.get((sc, ours))
            for key in ("median", "cpu", "rss"):
                for t in tools[1:]:
                    other = by.get((sc, t.label))
                    if mine and other and mine.ok and other.ok and getattr(mine, key) > 0:
                        cells.append(f"{getattr(other, key) / getattr(mine, key):.1f}x")
                    else:
                        cells.append("-")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def versions(tools: list[Tool]) -> dict[str, str]:
    out = {}
    for t in tools:
        # The distribution's version, asked of the Python next to the executable.
        py = pathlib.Path(t.exe).with_name("python")
        code = "import importlib.metadata as m; print(m.version('qik'))"
        proc = subprocess.run([str(py) if py.exists() else sys.executable, "-c", code], capture_output=True, text=True, check=False)
        out[t.label] = f"qik {proc.stdout.strip() or '?'}"
    return out


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return f"{platform.system()} {platform.release()}, {os.cpu_count()} CPUs ({cpu}), Python {platform.python_version()}"


def default_qik() -> str:
    return str(pathlib.Path(sys.executable).with_name("qik"))


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--qik", default=default_qik(), help="Our qik executable (default: the one next to this Python).")
    p.add_argument("--other", help="Another qik executable to compare with (e.g. /tmp/upstream-qik/bin/qik).")
    p.add_argument("--other-label", default="upstream")
    p.add_argument("--modules", type=int, default=500)
    p.add_argument("--files", type=int, default=20)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--budget", type=float, default=60.0, help="Stop repeating a scenario after this many seconds.")
    p.add_argument("--scaling", default="100,500,2000", help="Module counts for the warm-run scaling (empty: skip).")
    p.add_argument("--s3", type=int, default=0, metavar="N", help="Run the S3 scenarios with N modules (qik build: N runnables).")
    p.add_argument("--skip-main", action="store_true", help="Skip the main suite (only scaling / S3).")
    p.add_argument("--workdir", type=pathlib.Path, help="Where to generate repos (default: a temporary folder).")
    p.add_argument("--json", type=pathlib.Path, help="Also write the results as JSON here.")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    tools = [Tool("ours", args.qik)]
    if args.other:
        tools.append(Tool(args.other_label, args.other))
    with contextlib.ExitStack() as stack:
        workdir = args.workdir or pathlib.Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="qik-bench-")))
        workdir.mkdir(parents=True, exist_ok=True)
        bench = Bench(tools, workdir, args.runs, args.budget)
        if not args.skip_main:
            bench.main_suite(args.modules, args.files)
        sizes = [int(s) for s in args.scaling.split(",") if s.strip()]
        if sizes:
            bench.scaling_suite(sizes, args.files)
        if args.s3:
            bench.s3_suite(args.s3, args.files)
    info = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": machine(),
        "versions": versions(tools),
        "runs": args.runs,
    }
    print(f"\n{info['date']} · {info['machine']}")
    print(" · ".join(f"{k}: {v} ({t.exe})" for (k, v), t in zip(info["versions"].items(), tools, strict=True)))
    print()
    print(table(bench.rows, tools))
    failed = [r for r in bench.rows if not r.ok]
    for r in failed:
        print(f"\n{r.tool} failed in {r.scenario!r}:\n{r.samples[-1].err[-1500:]}", file=sys.stderr)
    if args.json:
        args.json.write_text(json.dumps({**info, "rows": [r.as_dict() for r in bench.rows]}, indent=2))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
