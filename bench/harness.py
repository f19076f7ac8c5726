"""Benchmark plumbing: the real service in its own process, the Go load generator in another, /proc readings.

Nothing here is a test. `Service` starts `gatewaycerts serve` (one process, or a supervisor and its workers)
with a store, and reads the CPU time and memory of its whole process tree from /proc; `load` replays a list of
requests with bench/loadgen over many keep-alive connections and returns its JSON figures.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.mongo_server import free_port  # noqa: E402

LOADGEN_SRC = ROOT / "bench" / "loadgen"
# BENCH_LOADGEN_BIN: build and use the load generator elsewhere (e.g. a worktree whose .cache is shared)
LOADGEN_BIN = Path(os.environ.get("BENCH_LOADGEN_BIN") or ROOT / ".cache" / "bench" / "loadgen")


def pinned(cmd: list[str], role: str) -> list[str]:
    """`cmd` under `taskset -c` when BENCH_SERVER_CPUS / BENCH_LOADGEN_CPUS names cores for its role."""
    cpus = os.environ.get(f"BENCH_{role.upper()}_CPUS")
    return ["taskset", "-c", cpus, *cmd] if cpus else cmd


CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024


def build_loadgen() -> Path:
    """Build bench/loadgen (Go standard library only) once into .cache/bench/."""
    newest = max(p.stat().st_mtime for p in LOADGEN_SRC.iterdir())
    if not LOADGEN_BIN.exists() or LOADGEN_BIN.stat().st_mtime < newest:
        if shutil.which("go") is None:
            raise SystemExit("bench: Go is required to build the load generator (bench/loadgen)")
        LOADGEN_BIN.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["go", "build", "-o", str(LOADGEN_BIN), "."], cwd=LOADGEN_SRC, check=True)
    return LOADGEN_BIN


def rate(fn: Callable[[], object], seconds: float = 2.0) -> float:
    """Single-threaded calls per second of `fn`, after one warm-up call."""
    fn()
    n, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        fn()
        n += 1
    return n / elapsed


def wait_until_answers(url: str, within: float = 30.0) -> None:
    """Poll `url` until it answers (a server just started); raise the last error after `within` seconds."""
    deadline = time.monotonic() + within
    while True:
        try:
            urllib.request.urlopen(url, timeout=1).read()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        tree.setdefault(ppid, []).append(int(entry.name))
    return tree


def process_tree(pid: int) -> list[int]:
    tree, out, todo = _children(), [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(tree.get(p, ()))
    return out


def cpu_seconds(pids: Iterable[int]) -> float:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / CLK_TCK


def settle(pids: Iterable[int], *, idle_share: float = 0.05, window: float = 0.5, within: float = 120.0) -> float:
    """Wait until the processes use less than `idle_share` of a core over a `window` (work a warm-up left them
    to do in the background, e.g. the audit records of first deliveries, done before a measured round starts);
    the seconds it took. Gives up after `within` seconds."""
    pids = list(pids)
    started = time.monotonic()
    while time.monotonic() - started < within:
        cpu0, t0 = cpu_seconds(pids), time.monotonic()
        time.sleep(window)
        if (cpu_seconds(pids) - cpu0) / (time.monotonic() - t0) < idle_share:
            break
    return time.monotonic() - started


def memory_kb(pids: Iterable[int], field: str) -> int:
    """Sum of a /proc/PID/status field (VmRSS: now, VmHWM: peak) over the processes, in KiB."""
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith(field + ":"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total


class Service:
    """`gatewaycerts serve` on loopback with a fresh state dir (or a given one)."""

    def __init__(self, *, env: dict[str, str] | None = None, state_dir: Path | None = None) -> None:
        self.state_dir = state_dir or Path(tempfile.mkdtemp(prefix="gc-bench-"))
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "GATEWAYCERTS_STATE_DIR": str(self.state_dir),
            "GATEWAYCERTS_PORT": str(self.port),
            # as deployed: INFO, JSON, one access line per request (to server.log), so every figure pays for it
            "GATEWAYCERTS_LOG_LEVEL": "INFO",
            "GATEWAYCERTS_LOG_FORMAT": "json",
            **(env or {}),
        }
        if "GATEWAYCERTS_DATABASE_URL" in self.env and "GATEWAYCERTS_MONGODB_DATABASE" not in (env or {}):
            # a database of its own: the service's start-up check refuses keys wrapped by another state dir's KEK
            self.env["GATEWAYCERTS_MONGODB_DATABASE"] = f"bench_{uuid.uuid4().hex[:12]}"
        self.proc: subprocess.Popen | None = None
        self.cli = [sys.executable, "-m", "gatewaycerts"]

    def token(self, project: str = "bench", role: str = "admin") -> str:
        return subprocess.run(
            [*self.cli, "token", "--project", project, "--role", role, "--ttl", "7200"],
            env=self.env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()

    def start(self) -> Service:
        self.log = (self.state_dir / "server.log").open("w")
        self.proc = subprocess.Popen(
            pinned([*self.cli, "serve"], "server"), env=self.env, stdout=self.log, stderr=self.log
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"bench: the service exited: {(self.state_dir / 'server.log').read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(self.base + "/healthz", timeout=1):
                    return self
            except OSError:
                time.sleep(0.05)
        raise SystemExit("bench: the service did not answer /healthz within 60 s")

    @property
    def pids(self) -> list[int]:
        assert self.proc is not None
        return process_tree(self.proc.pid)

    def cpu(self) -> float:
        return cpu_seconds(self.pids)

    def rss_kb(self) -> int:
        return memory_kb(self.pids, "VmRSS")

    def peak_rss_kb(self) -> int:
        return memory_kb(self.pids, "VmHWM")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=60)
        self.log.close()

    def __enter__(self) -> Service:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- requests ---------------------------------------------------------------------------------

    def call(self, method: str, path: str, token: str, body: Any = None) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            self.base + path,
            data=data,
            method=method,
            headers={"X-Auth-Token": token, "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                raw = resp.read()
                return resp.status, json.loads(raw) if raw else None
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"null")

    def load(self, requests: list[dict[str, Any]], *, concurrency: int, total: int, offset: int = 0) -> dict[str, Any]:
        """Replay `requests` (cycled) with the load generator; adds the service's CPU per request."""
        with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as fh:
            for r in requests:
                fh.write(json.dumps(r) + "\n")
        cpu0 = self.cpu()
        out = subprocess.run(
            pinned(
                [
                    str(build_loadgen()),
                    "-url",
                    self.base,
                    "-requests",
                    fh.name,
                    "-c",
                    str(concurrency),
                    "-n",
                    str(total),
                    "-offset",
                    str(offset),
                ],
                "loadgen",
            ),
            capture_output=True,
            text=True,
            check=True,
        )
        os.unlink(fh.name)
        result = json.loads(out.stdout)
        result["cpu_ms_per_request"] = (self.cpu() - cpu0) * 1000 / total
        result["peak_rss_mb"] = self.peak_rss_kb() / 1024
        return result


def request(method: str, path: str, token: str, body: Any = None) -> dict[str, Any]:
    """One line of a load generator's requests file."""
    headers = {"X-Auth-Token": token}
    if body is not None:
        headers["Content-Type"] = "application/json"
    return {"method": method, "path": path, "headers": headers, "body": "" if body is None else json.dumps(body)}
