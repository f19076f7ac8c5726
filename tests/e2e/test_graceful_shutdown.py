"""SIGTERM while a slow request is in flight: the service stops accepting, finishes the request with 2xx,
closes the store and exits 0; every log line is JSON and the request's lines carry its id."""

from __future__ import annotations

import json
import queue
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.test_cli_serve import dev_env
from tests.mongo_server import free_port, wait_for_port

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")
TIMEOUT = 60


class LogReader:
    """Collects the server's stderr lines on a thread, so the pipe never fills and tests can wait for a line."""

    def __init__(self, stream) -> None:
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._pump, args=(stream,), daemon=True).start()

    def _pump(self, stream) -> None:
        for line in stream:
            self.lines.put(line.rstrip("\n"))

    def wait_for(self, predicate) -> dict:
        while True:
            line = self.lines.get(timeout=TIMEOUT)
            self.seen.append(line)
            record = json.loads(line)  # every line must be one JSON object
            if predicate(record):
                return record

    def drain(self) -> None:
        while not self.lines.empty():
            line = self.lines.get_nowait()
            self.seen.append(line)
            json.loads(line)


def read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed before the response: {data!r}"
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk, "connection closed mid-body"
        body += chunk
    return status, headers, body


def dev_token(env: dict[str, str]) -> str:
    return subprocess.run(
        [sys.executable, "-m", "gatewaycerts", "token", "--project", "demo"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=TIMEOUT,
    ).stdout.strip()


@dataclass
class Service:
    proc: subprocess.Popen
    logs: LogReader
    port: int
    token: str


@contextmanager
def json_logging_service(tmp_path: Path, shutdown_timeout: int) -> Iterator[Service]:
    """`gatewaycerts serve` as `make run` starts it, with JSON logs read on a thread; killed if still alive."""
    port = free_port()
    env = {
        **dev_env(tmp_path / "state", port),
        "GATEWAYCERTS_LOG_FORMAT": "json",
        "GATEWAYCERTS_SHUTDOWN_TIMEOUT": str(shutdown_timeout),
    }
    token = dev_token(env)
    proc = subprocess.Popen(
        [sys.executable, "-m", "gatewaycerts", "serve"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        logs = LogReader(proc.stderr)
        wait_for_port(port, proc)
        yield Service(proc, logs, port, token)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_sigterm_lets_the_in_flight_request_finish(tmp_path: Path):
    with json_logging_service(tmp_path, shutdown_timeout=30) as service:
        proc, logs, port, token = service.proc, service.logs, service.port, service.token
        body = json.dumps(
            {
                "type": "ROOT",
                "key_algorithm": "RSA2048",
                "distinguished_name": {"common_name": "Drained Root"},
                "validity": {"type": "YEAR", "value": 1},
            }
        ).encode()
        sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        head = (
            "POST /v1/private-certificate-authorities HTTP/1.1\r\n"
            f"Host: 127.0.0.1:{port}\r\nX-Auth-Token: {token}\r\nX-Request-Id: slow-request-1\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\nExpect: 100-continue\r\n\r\n"
        )
        sock.sendall(head.encode())
        # "100 Continue": the server has routed the request and its handler is waiting for the body.
        assert sock.recv(64).startswith(b"HTTP/1.1 100")
        sock.sendall(body[:10])

        proc.send_signal(signal.SIGTERM)
        logs.wait_for(lambda r: r["message"].startswith("shutting down"))
        # draining: the listening socket is closed, so new connections are refused
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=5).close()

        sock.sendall(body[10:])
        status, headers, raw = read_response(sock)
        sock.close()
        assert status == 200, raw
        assert headers["x-request-id"] == "slow-request-1"
        ca_id = json.loads(raw)["ca_id"]

        assert proc.wait(timeout=TIMEOUT) == 0
        logs.wait_for(lambda r: r["message"] == "stopped")
        logs.drain()
        access = [json.loads(line) for line in logs.seen if '"gatewaycerts.access"' in line]
        assert [(r["request_id"], r["status"], r["route"]) for r in access] == [
            ("slow-request-1", 200, "/v1/private-certificate-authorities")
        ]
        assert "BEGIN" not in "\n".join(logs.seen)  # no key or certificate material in the logs

    # the CA created by the drained request was committed before the store closed (same state dir)
    with json_logging_service(tmp_path, shutdown_timeout=30) as again:
        sock = socket.create_connection(("127.0.0.1", again.port), timeout=TIMEOUT)
        sock.sendall(
            f"GET /v1/private-certificate-authorities/{ca_id} HTTP/1.1\r\nHost: x\r\n"
            f"X-Auth-Token: {again.token}\r\nConnection: close\r\n\r\n".encode()
        )
        status, _, raw = read_response(sock)
        sock.close()
        assert status == 200 and json.loads(raw)["status"] == "ACTIVED", raw


def test_a_request_still_unfinished_at_the_shutdown_timeout_is_cut_and_the_process_exits(tmp_path: Path):
    with json_logging_service(tmp_path, shutdown_timeout=1) as service:
        proc, logs, port, token = service.proc, service.logs, service.port, service.token
        sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        sock.sendall(
            "POST /v1/private-certificate-authorities HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"X-Auth-Token: {token}\r\nContent-Length: 100\r\nExpect: 100-continue\r\n\r\n".encode()
        )
        assert sock.recv(64).startswith(b"HTTP/1.1 100")
        proc.send_signal(signal.SIGTERM)  # the body never comes
        warning = logs.wait_for(lambda r: r["message"].startswith("shutdown timeout"))
        assert warning["level"] == "WARNING" and "1 request(s)" in warning["message"]
        assert proc.wait(timeout=TIMEOUT) == 0
        sock.close()
