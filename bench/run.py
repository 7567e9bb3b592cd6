"""Time qik beside its peers on generated monorepos; print medians and ratios against ours.

    python -m bench.run --other /tmp/upstream-qik/bin/qik \\
        --turbo /tmp/turbo-peer/node_modules/.bin/turbo --doit /tmp/doit-peer/bin/doit

The tools: ours (``--qik``), another qik (``--other``, e.g. upstream 0.2.10), Turborepo
(``--turbo``) and pydoit (``--doit``); a peer whose executable is missing is skipped with a
note. Each tool gets its own copy of the same generated repo, which holds every tool's
configuration of the same tasks with the same shell commands (``bench.generate``,
``bench.peers``), so their caches never mix. Every scenario runs ``--runs`` times,
interleaving the tools; a run is timed with wall-clock time, its CPU time and peak RSS are
read from ``wait4``. A scenario whose runs get slow stops early once ``--budget`` seconds
are spent on it (after at least one run).

Every timed run's output is checked: a warm run must replay every task from the cache
(qik: ``N cached, 0 ran``; Turborepo: ``FULL TURBO``; doit: every task ``--`` up to date), a
cold one must run them all, and one changed source must re-run what the tool's model says
it must. A run that does not is an error, not a time.

Before a warm or one-file-changed run, the files of its repo are left to settle
(``--settle`` seconds after the previous run in that repo ended, for every tool alike): a
stat younger than two seconds is never trusted by qik's run memo, so only settled files
let a warm no-op replay from ``._qik/memo``, as it does for a user who ran qik before.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import pathlib
import platform
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator

from bench import generate as gen

Prepare = Callable[[pathlib.Path], None]

CPUS = os.cpu_count() or 1
#: Tasks a changed ``pkgs/m0000/src/f000.py`` re-runs: its ``build``; Turborepo also
#: re-runs what folds that build's hash into its own (``test#m0000`` and ``bundle``).
CHANGED_RAN = {"qik": 1, "doit": 1, "turbo": 3}


@dataclasses.dataclass
class Tool:
    label: str
    exe: str
    kind: str = "qik"  # "qik", "turbo" or "doit"

    def argv(self, action: str) -> list[str] | None:
        """The command line of an action, None when the tool has none.

        ``run`` runs every task: qik with no option (any option turns its run memo off; it
        runs CPU-count workers), Turborepo and doit with CPU-count concurrency too.
        """
        if self.kind == "turbo":
            run = ["run", "build", "test", "bundle", f"--concurrency={CPUS}", "--cache-dir=.turbo/cache"]
            args = {"help": ["--help"], "run": run}.get(action)
        elif self.kind == "doit":
            args = {"help": ["help"], "run": ["-n", str(CPUS), "-P", "thread"], "ls": ["list", "--all"]}.get(action)
        else:
            args = {"help": ["--help"], "run": [], "ls": ["--ls"], "build": ["build"]}.get(action)
        return None if args is None else [self.exe, *args]

    def env(self) -> dict[str, str]:
        if self.kind == "turbo":  # no telemetry, no update check: nothing leaves the machine
            return {"TURBO_TELEMETRY_DISABLED": "1", "TURBO_NO_UPDATE_NOTIFIER": "1", "DO_NOT_TRACK": "1"}
        return {}

    @property
    def site_packages(self) -> pathlib.Path | None:
        """The site-packages of a Python tool's venv, if it has one."""
        if self.kind == "turbo":
            return None
        return next(pathlib.Path(self.exe).parent.parent.glob("lib/python*/site-packages"), None)

    @property
    def python(self) -> str | None:
        """The interpreter of a Python tool (its script's venv), None for Turborepo."""
        if self.kind == "turbo":
            return None
        py = pathlib.Path(self.exe).with_name("python")
        return str(py) if py.exists() else sys.executable

    def check(self, state: str, total: int, out: str, err: str) -> str | None:
        """What is wrong with a run's output for ``state`` (cold, warm, changed) of ``total``
        tasks: "" when nothing, None when this tool's output cannot tell."""
        want = {"cold": total, "warm": 0, "changed": CHANGED_RAN[self.kind]}[state]
        text = out + err
        if self.kind == "turbo":
            tasks = re.search(r"Tasks:\s+(\d+) successful, (\d+) total", text)
            cached = re.search(r"Cached:\s+(\d+) cached, (\d+) total", text)
            if not tasks or not cached:
                return "no Turborepo summary"
            ran, seen = total - int(cached[1]), int(cached[2])
            if state == "warm" and "FULL TURBO" not in text:
                return f"no FULL TURBO ({cached[0]})"
        elif self.kind == "doit":
            lines = out.splitlines()
            ran = sum(line.startswith(". ") for line in lines)
            seen = ran + sum(line.startswith("-- ") for line in lines)
        else:
            m = re.search(r"(\d+) runnables: (\d+) cached, (\d+) ran", err)
            if not m:  # upstream qik 0.2.10 prints no counts
                return "no summary" if self.label == "ours" else None
            seen, ran = int(m[1]), int(m[3])
        if seen != total or ran != want:
            return f"{ran} of {seen} tasks ran, expected {want} of {total}"
        return ""


@dataclasses.dataclass
class Sample:
    seconds: float
    rss_mb: float
    code: int
    err: str
    cpu: float = 0.0  # user + system seconds, with the children it waited for
    out: str = ""
    problem: str | None = None  # what the output check found ("" nothing; None: not checked)


@dataclasses.dataclass
class Row:
    scenario: str
    tool: str
    samples: list[Sample] = dataclasses.field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.samples) and all(s.code == 0 and not s.problem for s in self.samples)

    @property
    def checked(self) -> bool:
        return bool(self.samples) and all(s.problem is not None for s in self.samples)

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
            "checked": self.checked,
            "problems": [s.problem for s in self.samples if s.problem],
            "runs": len(self.samples),
            "median": round(self.median, 4),
            "min": round(min(self.times), 4),
            "max": round(max(self.times), 4),
            "rss_mb": round(self.rss, 1),
            "cpu": round(self.cpu, 4),
            "last_err": self.samples[-1].err[-2000:],
            "last_out": self.samples[-1].out[-2000:],
        }


def timed(cmd: list[str], cwd: pathlib.Path, env: dict[str, str]) -> Sample:
    """Run a command; wall time, CPU, peak RSS (of the process or its largest child), exit
    code, and what it printed (to files, for every tool alike)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        text_out = out.read().decode("utf-8", "replace")
        text_err = err.read().decode("utf-8", "replace")
    # ru_maxrss is in KiB on Linux and bytes on macOS.
    rss = usage.ru_maxrss / (1 << 20 if sys.platform == "darwin" else 1 << 10)
    return Sample(seconds, rss, proc.returncode, text_err, usage.ru_utime + usage.ru_stime, text_out)


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


# ---- start-up: python -X importtime ----


@dataclasses.dataclass
class Imports:
    """What ``-X importtime`` reported for one run."""

    total_ms: float  # the sum of every module's own time
    modules: int
    top: list[tuple[str, float]]  # top-level imports by cumulative time, ms
    packages: list[str] = dataclasses.field(default_factory=list)  # every non-stdlib top package

    @classmethod
    def parse(cls, err: str, keep: int = 8, site: pathlib.Path | None = None) -> Imports:
        """Read ``-X importtime`` lines; ``packages`` are the roots found in ``site`` (the
        tool's site-packages; without it, every root outside the standard library, which
        also counts failed probes such as ``sitecustomize``)."""
        total, count, top, roots = 0, 0, [], set()
        for line in err.splitlines():
            if not line.startswith("import time:") or "imported package" in line:
                continue
            parts = line[len("import time:") :].split("|")
            if len(parts) != 3:
                continue
            own, cumulative, name = parts
            own_us, cum_us = int(own), int(cumulative)
            total += own_us
            count += 1
            roots.add(name.strip().split(".", 1)[0])
            if not name[1:].startswith(" "):  # no indentation: imported by the script itself
                top.append((name.strip(), cum_us / 1000))
        top.sort(key=lambda t: -t[1])
        if site is not None:
            packages = sorted(r for r in roots if (site / r).is_dir() or next(site.glob(f"{r}.*py"), None) or next(site.glob(f"{r}.*.so"), None))
        else:
            packages = sorted(r for r in roots if r not in sys.stdlib_module_names and not r.startswith("_"))
        return cls(total / 1000, count, top[:keep], packages)


@dataclasses.dataclass
class Startup:
    tool: str
    what: str  # "--help" or "warm no-op"
    wall: list[float]
    imports: list[Imports]
    problem: str | None = None

    def as_dict(self) -> dict[str, object]:
        last = self.imports[-1]
        return {
            "tool": self.tool,
            "what": self.what,
            "wall_median": round(statistics.median(self.wall), 4),
            "import_ms_median": round(statistics.median(i.total_ms for i in self.imports), 2),
            "modules": last.modules,
            "top": [[name, round(ms, 2)] for name, ms in last.top],
            "packages": last.packages,
            "problem": self.problem,
        }


class Bench:
    def __init__(self, tools: list[Tool], workdir: pathlib.Path, runs: int, budget: float, settle: float = 2.1) -> None:
        self.tools = tools
        self.workdir = workdir
        self.runs = runs
        self.budget = budget
        self.settle_s = settle
        self.rows: list[Row] = []
        self.startup: list[Startup] = []
        self.ended: dict[pathlib.Path, float] = {}  # when the last run in a repo ended
        self.env = {**os.environ, "NO_COLOR": "1", "TERM": "dumb"}
        for name in ("QIK__PROFILE", "QIK_NO_MEMO", "PYTHONPROFILEIMPORTTIME"):
            self.env.pop(name, None)
        # As on a normal install, Python may cache bytecode (some sandboxes turn it off).
        self.env.pop("PYTHONDONTWRITEBYTECODE", None)
        for t in tools:  # the first run of a tool compiles its bytecode: not timed
            subprocess.run(t.argv("help") or [t.exe], env=self.env_for(t), capture_output=True, check=False)

    def env_for(self, tool: Tool, extra: dict[str, str] | None = None) -> dict[str, str]:
        return {**self.env, **tool.env(), **(extra or {})}

    def repos(
        self, tag: str, modules: int, files: int, s3: Callable[[Tool], dict[str, str]] | None = None, tools: list[Tool] | None = None
    ) -> dict[str, pathlib.Path]:
        """One repo per tool, generated alike (the same content, so the same keys), each
        with every tool's configuration."""
        out = {}
        for tool in tools or self.tools:
            dest = self.workdir / f"{tag}-{tool.label}"
            if not dest.exists():
                gen.generate(dest, modules, files, s3=s3(tool) if s3 else None, peers=s3 is None)
            out[tool.label] = dest
        return out

    def settle(self, root: pathlib.Path) -> None:
        """Wait until the repo's files are ``settle`` seconds old (see the module's doc)."""
        wait = self.ended.get(root, 0.0) + self.settle_s - time.monotonic()
        if wait > 0:
            time.sleep(wait)

    def untimed(self, tool: Tool, root: pathlib.Path, action: str = "run") -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(tool.argv(action) or [], cwd=root, env=self.env_for(tool), capture_output=True, text=True, check=False)
        self.ended[root] = time.monotonic()
        return proc

    def warm_up(self, repos: dict[str, pathlib.Path], tools: list[Tool]) -> None:
        """Untimed: a run (stores what is missing), settled files, a warm run (which writes
        qik's run memo), settled files again before the timed runs."""
        for t in tools:
            self.untimed(t, repos[t.label])
        for t in tools:
            self.settle(repos[t.label])
            self.untimed(t, repos[t.label])

    def scenario(
        self,
        name: str,
        repos: dict[str, pathlib.Path],
        action: str = "run",
        prepare: Prepare = nothing,
        expect: tuple[str, int] | None = None,
        tools: list[Tool] | None = None,
        env: dict[str, str] | None = None,
    ) -> list[Row]:
        """Time ``action`` for every tool (that has it), ``runs`` times, interleaved; check
        each run's output against ``expect`` (a state and the number of tasks)."""
        tools = [t for t in tools or self.tools if t.argv(action) is not None and t.label in repos]
        rows = {t.label: Row(name, t.label) for t in tools}
        spent = dict.fromkeys(rows, 0.0)
        print(f"  {name} ...", end="", flush=True, file=sys.stderr)
        for _ in range(self.runs):
            for t in tools:
                if rows[t.label].samples and spent[t.label] > self.budget:
                    continue
                root = repos[t.label]
                prepare(root)
                s = timed(t.argv(action) or [], root, self.env_for(t, env))
                self.ended[root] = time.monotonic()
                if expect:
                    s.problem = t.check(*expect, s.out, s.err)
                rows[t.label].samples.append(s)
                spent[t.label] += s.seconds
        print(" " + "  ".join(f"{r.tool} {r.median:.3f}s{'' if r.ok else ' (error)'}" for r in rows.values()), file=sys.stderr)
        self.rows.extend(rows.values())
        return list(rows.values())

    def settled(self, prepare: Prepare = nothing) -> Prepare:
        def run(root: pathlib.Path) -> None:
            self.settle(root)
            prepare(root)

        return run

    def imports(self, repos: dict[str, pathlib.Path], total: int) -> None:
        """``-X importtime`` (``PYTHONPROFILEIMPORTTIME``) of ``--help`` and of a warm no-op
        of every Python tool, in its repo as the warm scenario left it."""
        for t in self.tools:
            if t.python is None or t.label not in repos:
                continue
            for what, action in (("--help", "help"), ("warm no-op", "run")):
                row = Startup(t.label, what, [], [])
                for _ in range(self.runs):
                    root = repos[t.label]
                    self.settle(root)
                    s = timed(t.argv(action) or [], root, self.env_for(t, {"PYTHONPROFILEIMPORTTIME": "1"}))
                    self.ended[root] = time.monotonic()
                    if s.code:
                        row.problem = f"exit {s.code}"
                    elif action == "run":
                        row.problem = row.problem or t.check("warm", total, s.out, s.err) or None
                    row.wall.append(s.seconds)
                    row.imports.append(Imports.parse(s.err, site=t.site_packages))
                self.startup.append(row)

    # ---- the suites ----

    def main_suite(self, modules: int, files: int) -> None:
        tag = f"{modules}x{files}"
        total = 2 * modules + 1
        print(f"== {tag}", file=sys.stderr)
        repos = self.repos(tag, modules, files)
        ours = [t for t in self.tools if t.label == "ours"]
        self.scenario("--help", repos, "help")
        self.scenario(f"cold {tag}", repos, prepare=git_clean, expect=("cold", total))
        self.warm_up(repos, self.tools)
        self.scenario(f"warm {tag}", repos, prepare=self.settled(), expect=("warm", total))
        self.imports(repos, total)
        # What the run memo saves: the same warm run on the normal path.
        self.scenario(f"warm, memo off {tag}", repos, prepare=self.settled(), expect=("warm", total), tools=ours, env={"QIK_NO_MEMO": "1"})
        self.scenario(f"one file changed {tag}", repos, prepare=self.settled(edit_one_file), expect=("changed", total))
        self.scenario(f"--ls {tag}", repos, "ls")

    def scaling_suite(self, sizes: list[int], files: int, tools: list[Tool]) -> None:
        for modules in sizes:
            tag = f"{modules}x{files}"
            total = 2 * modules + 1
            print(f"== scaling {tag}", file=sys.stderr)
            repos = self.repos(tag, modules, files, tools=tools)
            self.warm_up(repos, tools)
            self.scenario(f"warm {tag} (scaling)", repos, prepare=self.settled(), expect=("warm", total), tools=tools)
            self.scenario(
                f"one file changed {tag} (scaling)", repos, prepare=self.settled(edit_one_file), expect=("changed", total), tools=tools
            )

    def s3_suite(self, modules: int, files: int) -> None:
        tools = [t for t in self.tools if t.kind == "qik"]
        with moto_server() as endpoint:
            buckets = {t.label: f"bench-{t.label}" for t in tools}
            for b in buckets.values():
                _s3(endpoint).create_bucket(Bucket=b)
            s3 = lambda t: {"bucket": buckets[t.label], "endpoint": endpoint}  # noqa: E731
            tag = f"s3-{modules}x{files}"
            print(f"== {tag}", file=sys.stderr)
            repos = self.repos(tag, modules, files, s3=s3, tools=tools)
            env_before = self.env
            self.env = {**self.env, **_AWS_ENV}
            try:
                by_root = {v: buckets[k] for k, v in repos.items()}

                def clean_all(root: pathlib.Path) -> None:
                    git_clean(root)
                    _empty_bucket(endpoint, by_root[root])

                self.scenario(f"S3 upload {tag}", repos, "build", prepare=clean_all, expect=("cold", modules), tools=tools)
                self.scenario(f"S3 restore {tag}", repos, "build", prepare=git_clean, expect=("warm", modules), tools=tools)
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


def _ratio(other: Row | None, mine: Row | None, key: str) -> str:
    if mine and other and mine.ok and other.ok and getattr(mine, key) > 0:
        return f"{getattr(other, key) / getattr(mine, key):.1f}x"
    return "-"


def table(rows: list[Row], tools: list[Tool]) -> str:
    """A markdown table, one line per scenario and tool: median (min-max), CPU, peak RSS,
    and each of them against ours."""
    by = {(r.scenario, r.tool): r for r in rows}
    head = ["scenario", "tool", "median (min-max) s", "CPU s", "RSS MB", "wall / ours", "CPU / ours", "RSS / ours", "output checked"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for sc in dict.fromkeys(r.scenario for r in rows):
        mine = by.get((sc, "ours"))
        for t in tools:
            r = by.get((sc, t.label))
            if r is None or not r.samples:
                continue
            cells = [sc, t.label]
            if not r.ok:
                cells += ["error", "-", "-", "-", "-", "-"]
            else:
                cells += [f"{r.median:.3f} ({min(r.times):.3f}-{max(r.times):.3f})", f"{r.cpu:.2f}", f"{r.rss:.0f}"]
                cells += [_ratio(r, mine, key) for key in ("median", "cpu", "rss")]
            problems = [s.problem for s in r.samples if s.problem]
            cells.append(problems[-1] if problems else "yes" if r.checked else "no")
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def peer_table(rows: list[Row], tools: list[Tool], tag: str) -> str:
    """The main suite, one line per tool: warm no-op, one file changed, cold (wall, CPU,
    RSS; the wall against ours in parentheses)."""
    by = {(r.scenario, r.tool): r for r in rows}
    scs = [("warm no-op", f"warm {tag}"), ("one file changed", f"one file changed {tag}"), ("cold", f"cold {tag}")]
    head = ["tool"]
    for label, _ in scs:
        head += [f"{label} wall s", "CPU s", "RSS MB"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for t in tools:
        cells = [t.label]
        for _, sc in scs:
            r, mine = by.get((sc, t.label)), by.get((sc, "ours"))
            if r is None or not r.samples:
                cells += ["-", "-", "-"]
            elif not r.ok:
                cells += ["error", "-", "-"]
            else:
                ratio = "" if t.label == "ours" else f" ({_ratio(r, mine, 'median')})"
                cells += [f"{r.median:.3f}{ratio}", f"{r.cpu:.2f}", f"{r.rss:.0f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def startup_table(rows: list[Startup]) -> str:
    head = ["tool", "run", "wall s (median)", "imports ms (sum of self, median)", "modules", "non-stdlib packages", "top-level imports, cumulative ms"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        d = r.as_dict()
        top = ", ".join(f"{name} {ms:.1f}" for name, ms in r.imports[-1].top)
        what = r.what + (f" ({r.problem})" if r.problem else "")
        lines.append(f"| {r.tool} | {what} | {d['wall_median']:.3f} | {d['import_ms_median']:.1f} | {d['modules']} | {' '.join(r.imports[-1].packages)} | {top} |")
    return "\n".join(lines)


def versions(tools: list[Tool]) -> dict[str, str]:
    out = {}
    for t in tools:
        if t.kind == "turbo":
            proc = subprocess.run([t.exe, "--version"], capture_output=True, text=True, check=False, env={**os.environ, **t.env()})
            out[t.label] = f"turbo {proc.stdout.strip() or '?'}"
            continue
        # The distribution's version, asked of the Python next to the executable.
        dist = "doit" if t.kind == "doit" else "qik"
        code = f"import importlib.metadata as m; print(m.version({dist!r}))"
        proc = subprocess.run([t.python or sys.executable, "-c", code], capture_output=True, text=True, check=False)
        out[t.label] = f"{dist} {proc.stdout.strip() or '?'}"
    return out


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return f"{platform.system()} {platform.release()}, {os.cpu_count()} CPUs ({cpu}), Python {platform.python_version()}"


def load() -> str:
    """The load averages (1, 5, 15 minutes): the machine may be shared."""
    try:
        return " ".join(pathlib.Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())


def default_qik() -> str:
    return str(pathlib.Path(sys.executable).with_name("qik"))


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--qik", default=default_qik(), help="Our qik executable (default: the one next to this Python).")
    p.add_argument("--other", help="Another qik executable to compare with (e.g. /tmp/upstream-qik/bin/qik).")
    p.add_argument("--other-label", default="upstream")
    p.add_argument("--turbo", help="A turbo executable (bench/install.sh: /tmp/turbo-peer/node_modules/.bin/turbo).")
    p.add_argument("--doit", help="A doit executable (bench/install.sh: /tmp/doit-peer/bin/doit).")
    p.add_argument("--modules", type=int, default=500)
    p.add_argument("--files", type=int, default=20)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--budget", type=float, default=60.0, help="Stop repeating a scenario after this many seconds.")
    p.add_argument("--settle", type=float, default=2.1, help="Seconds a repo's files are left to settle before a warm run.")
    p.add_argument("--scaling", default="100,500,2000", help="Module counts for the warm-run scaling (empty: skip).")
    p.add_argument("--scaling-tools", default="ours,upstream", help="Labels of the tools the scaling times (default: the qiks).")
    p.add_argument("--s3", type=int, default=0, metavar="N", help="Run the S3 scenarios with N modules (qik build: N runnables).")
    p.add_argument("--skip-main", action="store_true", help="Skip the main suite (only scaling / S3).")
    p.add_argument("--workdir", type=pathlib.Path, help="Where to generate repos (default: a temporary folder).")
    p.add_argument("--json", type=pathlib.Path, help="Also write the results as JSON here.")
    return p.parse_args(argv)


def tools_of(args: argparse.Namespace) -> tuple[list[Tool], list[str]]:
    """The tools to time, and notes on the peers that are missing."""
    tools, notes = [Tool("ours", args.qik)], []
    if args.other:
        tools.append(Tool(args.other_label, args.other))
    for kind, exe in (("turbo", args.turbo), ("doit", args.doit)):
        if not exe:
            continue
        if os.access(exe, os.X_OK):
            tools.append(Tool(kind, exe, kind))
        else:
            notes.append(f"{kind} skipped: {exe} is not an executable (bench/install.sh installs it)")
    return tools, notes


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    tools, notes = tools_of(args)
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    load_before = load()
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    with contextlib.ExitStack() as stack:
        workdir = args.workdir or pathlib.Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="qik-bench-")))
        workdir.mkdir(parents=True, exist_ok=True)
        bench = Bench(tools, workdir, args.runs, args.budget, args.settle)
        if not args.skip_main:
            bench.main_suite(args.modules, args.files)
        sizes = [int(s) for s in args.scaling.split(",") if s.strip()]
        scaling_tools = [t for t in tools if t.label in args.scaling_tools.split(",")]
        if sizes and scaling_tools:
            bench.scaling_suite(sizes, args.files, scaling_tools)
        if args.s3:
            bench.s3_suite(args.s3, args.files)
    info = {
        "date": started,
        "ended": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": machine(),
        "load": {"before": load_before, "after": load()},
        "versions": versions(tools),
        "runs": args.runs,
        "notes": notes,
    }
    print(f"\n{info['date']} - {info['ended']} · {info['machine']} · load average before {load_before}, after {info['load']['after']}")
    print(" · ".join(f"{k}: {v} ({t.exe})" for (k, v), t in zip(info["versions"].items(), tools, strict=True)))
    for note in notes:
        print(f"note: {note}")
    print()
    print(table(bench.rows, tools))
    if not args.skip_main:
        print()
        print(peer_table(bench.rows, tools, f"{args.modules}x{args.files}"))
    if bench.startup:
        print()
        print(startup_table(bench.startup))
    failed = [r for r in bench.rows if not r.ok] + [s for s in bench.startup if s.problem]
    for r in failed:
        if isinstance(r, Row):
            last = r.samples[-1]
            problem = next((s.problem for s in reversed(r.samples) if s.problem), "")
            print(f"\n{r.tool} failed in {r.scenario!r}: {problem}\n{(last.out + last.err)[-1500:]}", file=sys.stderr)
        else:
            print(f"\n{r.tool} failed in start-up {r.what!r}: {r.problem}", file=sys.stderr)
    if args.json:
        data = {**info, "rows": [r.as_dict() for r in bench.rows], "startup": [s.as_dict() for s in bench.startup]}
        args.json.write_text(json.dumps(data, indent=2))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
