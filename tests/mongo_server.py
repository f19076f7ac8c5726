"""The MongoDB wire server for tests: GATEWAYCERTS_TEST_MONGODB_URI, or FerretDB built from tests/ferretdb."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

HERE = Path(__file__).parent
BUILD = HERE / "ferretdb" / "build.sh"


class MongoUnavailable(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, proc: subprocess.Popen, timeout: float = 60.0) -> None:
    """Poll until the server accepts TCP connections (a start-up wait, not test synchronisation)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            log = Path(proc.args[-1]) / "ferretdb.log" if isinstance(proc.args, list) else None
            tail = log.read_text(errors="replace")[-2000:] if log and log.exists() else ""
            raise MongoUnavailable(f"FerretDB exited with {proc.returncode}: {tail}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise MongoUnavailable(f"FerretDB did not listen on {port} within {timeout}s")


class FerretDB:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        self.binary: str | None = None

    @property
    def uri(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}/"

    def build(self) -> str:
        if shutil.which("go") is None and not os.environ.get("GATEWAYCERTS_FERRETDB_BIN"):
            raise MongoUnavailable("no Go toolchain to build FerretDB")
        if os.environ.get("GATEWAYCERTS_FERRETDB_BIN"):
            return os.environ["GATEWAYCERTS_FERRETDB_BIN"]
        out = subprocess.run(["bash", str(BUILD)], capture_output=True, text=True, timeout=1500, check=False)
        if out.returncode != 0:
            raise MongoUnavailable(f"building FerretDB failed:\n{out.stderr[-4000:]}")
        return out.stdout.strip().splitlines()[-1]

    def start(self) -> None:
        self.binary = self.binary or self.build()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        # Logs go to a file: an unread pipe fills up (64 KiB) and then blocks the server mid-request.
        self.log_path = self.data_dir / "ferretdb.log"
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                [self.binary, "-listen", f"127.0.0.1:{self.port}", "-dir", str(self.data_dir)],
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
        wait_for_port(self.port, self.proc)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


def own_ferretdb(directory: Path, purpose: str) -> Iterator[FerretDB]:
    """A FerretDB of the test's own (for tests that stop and start the server), as a fixture body:
    ``yield from own_ferretdb(tmp_path / "ferretdb", "the outage test")``. Fails in CI, skips elsewhere."""
    server = FerretDB(directory)
    try:
        server.start()
    except MongoUnavailable as exc:
        if os.environ.get("CI"):
            pytest.fail(f"{purpose} must run in CI: {exc}")
        pytest.skip(f"no FerretDB to stop and start: {exc}")
    try:
        yield server
    finally:
        server.stop()
