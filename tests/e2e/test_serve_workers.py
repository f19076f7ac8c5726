"""`gatewaycerts serve --workers 2` as real processes: one announce, two workers each listening on the port
and both answering, a burst of concurrent writes over many connections stored exactly once (SQLite and
MongoDB), metrics summed over the workers, orders processed once, SIGTERM draining an in-flight request, a
worker killed with SIGKILL taking the rest down, a busy port refused with one line, no orphan processes."""

from __future__ import annotations

import asyncio
import json
import os
import queue
import re
import select
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from pymongo import MongoClient

from tests.e2e.test_cli_serve import dev_env
from tests.e2e.test_graceful_shutdown import TIMEOUT, LogReader, dev_token, read_response
from tests.e2e.test_orders_processes import create_orders, wait_all_done
from tests.factories import rsa_chain
from tests.mongo_server import free_port

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")
APIC = "/v2/demo/apic/certificates"
ANNOUNCE = "gatewaycerts http://"


# -- what /proc says about the processes -------------------------------------------------------------------


def child_pids(parent: int) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with suppress(OSError):
            stat = (entry / "stat").read_text()
            if int(stat.rsplit(")", 1)[1].split()[1]) == parent:  # "pid (comm) state ppid ..."
                found.add(int(entry.name))
    return found


def listening_inodes(port: int) -> set[int]:
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:  # 0A: LISTEN
                inodes.add(int(fields[9]))
    return inodes


def socket_inodes(pid: int) -> set[int]:
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with suppress(OSError):
            link = os.readlink(fd)
            if link.startswith("socket:["):
                inodes.add(int(link[8:-1]))
    return inodes


def exists(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists()


def gone_or_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def wait_exit(pid: int, timeout: float = TIMEOUT) -> None:
    """Wait for a process that is not our child to end: a pidfd becomes readable when it does."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    try:
        # poll, not select: in a long run the pidfd's number can pass select's FD_SETSIZE (1024)
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        ready = poller.poll(timeout * 1000)
        assert ready, f"process {pid} still runs after {timeout}s"
    finally:
        os.close(fd)


# -- the service -------------------------------------------------------------------------------------------


@dataclass
class Workers:
    proc: subprocess.Popen
    logs: LogReader
    stdout: list[str]
    port: int
    token: str
    env: dict[str, str]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def worker_pids(self) -> set[int]:
        return child_pids(self.proc.pid)

    def metrics_dir(self) -> Path:
        """The multiprocess metrics directory the supervisor gave its workers."""
        pid = min(self.worker_pids())
        environ = dict(v.split("=", 1) for v in Path(f"/proc/{pid}/environ").read_text().split("\0") if "=" in v)
        return Path(environ["PROMETHEUS_MULTIPROC_DIR"])


def _announcement(proc: subprocess.Popen, pump: threading.Thread, out: queue.Queue[str], logs: LogReader) -> str | None:
    """The supervisor's first stdout line; None once it has ended without one (its stdout closed). Neither within
    TIMEOUT: the supervisor is killed and the test fails with what it wrote to stderr."""
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        try:
            return out.get(timeout=1)
        except queue.Empty:
            if not pump.is_alive() and out.empty():
                return None  # stdout closed: the supervisor ended
    proc.kill()
    proc.wait()
    raise AssertionError(f"serve --workers 2 announced nothing in {TIMEOUT} s; stderr: {_raw_lines(logs)}")


def _raw_lines(logs: LogReader) -> list[str]:
    lines = []
    while not logs.lines.empty():
        lines.append(logs.lines.get_nowait())
    return lines


def _pump(stream, lines: queue.Queue[str]) -> None:
    for line in stream:
        lines.put(line.rstrip("\n"))


@contextmanager
def workers_service(
    tmp_path: Path, *, via_env: bool = False, own_group: bool = False, **extra: str
) -> Iterator[Workers]:
    """`gatewaycerts serve --workers 2` (or GATEWAYCERTS_WORKERS=2) with JSON logs; returns once the supervisor
    announced the URL, i.e. once every worker listens. Anything still running at the end is killed.
    `own_group`: a process group of its own, as a shell gives a command it starts in a terminal."""
    for attempt in range(3):
        port = free_port()
        env = {
            **dev_env(tmp_path / "state", port),
            "GATEWAYCERTS_LOG_FORMAT": "json",
            "GATEWAYCERTS_ORDER_POLL_MS": "50",
            **({"GATEWAYCERTS_WORKERS": "2"} if via_env else {}),
            **extra,
        }
        token = dev_token(env)
        proc = subprocess.Popen(
            [sys.executable, "-m", "gatewaycerts", "serve", *([] if via_env else ["--workers", "2"])],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            process_group=0 if own_group else None,
        )
        logs = LogReader(proc.stderr)
        out: queue.Queue[str] = queue.Queue()
        pump = threading.Thread(target=_pump, args=(proc.stdout, out), daemon=True)
        pump.start()
        first = _announcement(proc, pump, out, logs)
        if first is not None:
            break
        # the supervisor ended without announcing: say why (its exit status and stderr), unless free_port's port
        # was taken by another process between its choice and the supervisor's bind (then try another port)
        pump.join(timeout=TIMEOUT)
        stderr = _raw_lines(logs)
        if attempt < 2 and any("in use" in line for line in stderr):
            continue
        raise AssertionError(f"serve --workers 2 exited {proc.wait()} without announcing; stderr: {stderr}")
    pids: set[int] = set()
    try:
        stdout = [first]
        assert stdout[0].startswith(ANNOUNCE), stdout
        service = Workers(proc, logs, stdout, port, token, env)
        pids = service.worker_pids()
        metrics = service.metrics_dir()
        yield service
        while not out.empty():
            stdout.append(out.get_nowait())
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for pid in pids:  # the workers stop when the supervisor dies; make sure of it even if a test failed
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if pids:
            shutil.rmtree(metrics, ignore_errors=True)  # a killed supervisor cannot remove it


def upload_bodies(n: int) -> list[dict]:
    chain = rsa_chain()
    return [
        {"name": f"burst_{i:03d}", "cert_content": chain.bundle(), "private_key": chain.leaf.key_pem()}
        for i in range(n)
    ]


async def burst(url: str, token: str, method: str, path: str, bodies: list[dict]) -> list[tuple[int, dict]]:
    """All requests at once, each on a new connection (so the kernel spreads them over the workers)."""
    connector = aiohttp.TCPConnector(limit=64, force_close=True)
    async with aiohttp.ClientSession(url, connector=connector, headers={"X-Auth-Token": token}) as http:

        async def one(body: dict) -> tuple[int, dict]:
            async with http.request(method, path, json=body) as resp:
                return resp.status, await resp.json(content_type=None)

        return list(await asyncio.gather(*(one(b) for b in bodies)))


async def scrape(url: str) -> str:
    connector = aiohttp.TCPConnector(force_close=True)
    async with aiohttp.ClientSession(connector=connector) as http, http.get(f"{url}/metrics") as resp:
        assert resp.status == 200
        return await resp.text()


def sample(text: str, name: str, **labels: str) -> float | None:
    for line in text.splitlines():
        match = re.fullmatch(r"([a-z_]+)(?:\{(.*)\})? (\S+)", line)
        if match and match.group(1) == name:
            found = dict(re.findall(r'(\w+)="([^"]*)"', match.group(2) or ""))
            if found == labels:
                return float(match.group(3))
    return None


async def concurrent_attaches_all_land(service: Workers, cert_id: str) -> None:
    """Read-modify-write across processes: 20 concurrent attaches of one certificate, spread over both
    workers (each with its own SQLite connection), all land, each exactly once."""
    domains = [f"d{i}.api.example.com" for i in range(20)]
    path = f"{APIC}/{cert_id}/domains/attach"
    attached = await burst(service.url, service.token, "POST", path, [{"domains": [{"domain": d}]} for d in domains])
    assert [status for status, _ in attached] == [204] * 20, [a for a in attached if a[0] != 204][:3]
    async with aiohttp.ClientSession(service.url, headers={"X-Auth-Token": service.token}) as http:
        async with http.get(f"{APIC}/{cert_id}/attached-domains", params={"limit": "100"}) as resp:
            bound = await resp.json()
        async with http.get(f"{APIC}/{cert_id}") as resp:
            etag = resp.headers["ETag"]
    assert sorted(b["url_domain"] for b in bound["bound_domains"]) == sorted(domains)
    assert etag == '"r21"'  # one revision per attach: none applied twice or lost


def read_to_the_end(service: Workers) -> None:
    """After the supervisor exited: wait for its last line ("stopped"), so every earlier line has been read."""
    service.logs.wait_for(lambda r: r["message"] == "stopped" and r["pid"] == service.proc.pid)
    service.logs.drain()


def stop(service: Workers) -> int:
    service.proc.send_signal(signal.SIGTERM)
    return service.proc.wait(timeout=TIMEOUT)


# -- the tests ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["sqlite", "mongo"])
async def test_two_workers_share_the_port_and_store_a_burst_of_creates_once(
    tmp_path: Path, request: pytest.FixtureRequest, kind: str
):
    extra = {}
    if kind == "mongo":
        database = request.getfixturevalue("mongo_database")
        extra["GATEWAYCERTS_DATABASE_URL"] = request.getfixturevalue("mongodb_uri").rstrip("/") + "/" + database
    n = 200
    try:
        with workers_service(tmp_path, **extra) as service:
            workers = service.worker_pids()
            assert len(workers) == 2, workers
            # each worker holds a listening socket of its own on the port, and nothing else listens there
            held = {pid: socket_inodes(pid) & listening_inodes(service.port) for pid in workers}
            assert all(len(inodes) == 1 for inodes in held.values()), held
            assert set().union(*held.values()) == listening_inodes(service.port)
            assert not socket_inodes(service.proc.pid) & listening_inodes(service.port)

            answers = await burst(service.url, service.token, "POST", APIC, upload_bodies(n))
            assert [status for status, _ in answers] == [200] * n, [a for a in answers if a[0] != 200][:3]
            ids = {body["id"] for _, body in answers}
            assert len(ids) == n

            headers = {"X-Auth-Token": service.token}
            async with (
                aiohttp.ClientSession(service.url, headers=headers) as http,
                http.get(APIC, params={"limit": "500"}) as resp,
            ):
                listed = await resp.json()
            assert listed["total"] == n and {c["id"] for c in listed["certs"]} == ids

            if kind == "sqlite":
                await concurrent_attaches_all_land(service, next(iter(ids)))

            # both workers answered: the access lines of the uploads come from two processes
            route = "/v2/{project_id}/apic/certificates"
            uploads: list[dict] = []

            def upload_line(record: dict) -> bool:
                if record["logger"] == "gatewaycerts.access" and (record["method"], record["route"]) == ("POST", route):
                    uploads.append(record)
                return len(uploads) == n

            service.logs.wait_for(upload_line)
            assert {r["pid"] for r in uploads} == workers and {r["status"] for r in uploads} == {200}

            # metrics are the pod's, not one worker's: neither worker alone answered n uploads
            for _ in range(6):
                text = await scrape(service.url)
                assert sample(text, "gatewaycerts_http_requests_total", method="POST", route=route, status="200") == n
                assert sample(text, "gatewaycerts_http_requests_in_flight") == 1  # the scrape itself
                assert sample(text, "gatewaycerts_expiry_query_success") == 1

            metrics = service.metrics_dir()
            assert (
                sorted(f.name.split("_")[0] for f in metrics.iterdir())
                == ["counter"] * 2 + ["gauge"] * 4 + ["histogram"] * 2
            )  # one file of each kind per worker (gauges: the livesum of in-flight, the livemax of delivery staleness)
            assert stop(service) == 0
            for pid in workers:
                assert not exists(pid), f"worker {pid} outlived the supervisor"
            assert not metrics.exists()  # the supervisor removed the metric files of its run
            read_to_the_end(service)
        assert [line for line in service.stdout if line.startswith(ANNOUNCE)] == [service.stdout[0]]
        assert "2 workers" in service.stdout[0]
        assert "BEGIN" not in "\n".join(service.logs.seen)  # no key or certificate material in the logs

        if kind == "sqlite":
            with sqlite3.connect(tmp_path / "state" / "gatewaycerts.db") as db:
                rows = db.execute("SELECT count(*), count(DISTINCT name), count(DISTINCT id) FROM certificates")
                assert rows.fetchone() == (n, n, n)
        else:
            with MongoClient(request.getfixturevalue("mongodb_uri")) as mongo:
                docs = list(mongo[database]["certificates"].find({}, {"name": 1}))
            assert len(docs) == n and len({d["name"] for d in docs}) == n
    finally:
        if kind == "mongo":
            with MongoClient(request.getfixturevalue("mongodb_uri")) as mongo:
                mongo.drop_database(database)


async def test_orders_are_processed_once_by_the_two_workers(tmp_path: Path):
    """Every worker process runs an order worker; they share the orders through the store. RSA key pairs
    (tens of ms each, one order at a time per worker) keep both busy; AES keys are many quick ones."""
    with workers_service(tmp_path, via_env=True, GATEWAYCERTS_LOG_LEVEL="WARNING") as service:
        workers = service.worker_pids()
        assert "2 workers" in service.stdout[0] and len(workers) == 2
        rsa = {"algorithm": "rsa", "bit_length": 2048}
        keys, pairs = await asyncio.gather(
            create_orders(service.url, service.token, 100),
            create_orders(service.url, service.token, 40, "asymmetric", rsa),
        )
        done = await wait_all_done(service.url, service.token, keys + pairs, deadline=240.0)
        assert set(done.values()) == {"ACTIVE"}
        assert stop(service) == 0
    with sqlite3.connect(tmp_path / "state" / "gatewaycerts.db") as db:
        docs = [json.loads(row[0]) for row in db.execute("SELECT doc FROM orders")]
        secrets = {row[0] for row in db.execute("SELECT id FROM secrets")}
        containers = [json.loads(row[0]) for row in db.execute("SELECT doc FROM containers")]
    assert len(docs) == 140
    assert {d["attempts"] for d in docs} == {1}, "an order was claimed more than once"
    claimers = {d["claimed_by"] for d in docs}
    assert {int(c.split(":")[1]) for c in claimers} == workers  # both processes' order workers took part
    # one product each, nothing orphaned: a secret per key order, a container (with its secrets) per pair
    assert sorted(c["_id"] for c in containers) == sorted(d["container_id"] for d in docs if d.get("container_id"))
    referenced = {r["secret_id"] for c in containers for r in c["secret_refs"]}
    assert secrets == {d["secret_id"] for d in docs if d.get("secret_id")} | referenced
    assert len(secrets) == 100 + 2 * 40


def test_sigterm_drains_the_in_flight_request_and_every_process_exits_0(tmp_path: Path):
    with workers_service(tmp_path, GATEWAYCERTS_SHUTDOWN_TIMEOUT="30") as service:
        workers = service.worker_pids()
        body = json.dumps(
            {
                "type": "ROOT",
                "key_algorithm": "EC256",
                "distinguished_name": {"common_name": "Drained Root"},
                "validity": {"type": "YEAR", "value": 1},
            }
        ).encode()
        sock = socket.create_connection(("127.0.0.1", service.port), timeout=TIMEOUT)
        sock.sendall(
            (
                "POST /v1/private-certificate-authorities HTTP/1.1\r\n"
                f"Host: x\r\nX-Auth-Token: {service.token}\r\nX-Request-Id: slow-request-1\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\nExpect: 100-continue\r\n\r\n"
            ).encode()
        )
        assert sock.recv(64).startswith(b"HTTP/1.1 100")  # a worker routed it and waits for the body
        sock.sendall(body[:10])

        service.proc.send_signal(signal.SIGTERM)
        draining = [service.logs.wait_for(lambda r: r["message"].startswith("shutting down")) for _ in workers]
        assert {r["pid"] for r in draining} == workers  # the supervisor forwarded the signal to each
        assert sorted(r["message"].split(";")[1].split()[0] for r in draining) == ["0", "1"]
        with pytest.raises(ConnectionRefusedError):  # both listeners are closed
            socket.create_connection(("127.0.0.1", service.port), timeout=5).close()

        sock.sendall(body[10:])
        status, headers, raw = read_response(sock)
        sock.close()
        assert status == 200, raw
        assert headers["x-request-id"] == "slow-request-1" and headers["connection"] == "close"
        ca_id = json.loads(raw)["ca_id"]

        assert service.proc.wait(timeout=TIMEOUT) == 0
        for pid in workers:
            assert not exists(pid)
        read_to_the_end(service)
        stopped = [json.loads(x) for x in service.logs.seen if '"message": "stopped"' in x]
        assert {r["pid"] for r in stopped} == workers | {service.proc.pid}
    with sqlite3.connect(tmp_path / "state" / "gatewaycerts.db") as db:
        assert db.execute("SELECT count(*) FROM pca_authorities WHERE id = ?", (ca_id,)).fetchone() == (1,)


def test_ctrl_c_in_a_terminal_stops_every_process_cleanly(tmp_path: Path):
    """The terminal sends SIGINT to the whole foreground process group: supervisor and workers at once."""
    with workers_service(tmp_path, own_group=True) as service:
        workers = service.worker_pids()
        os.killpg(service.proc.pid, signal.SIGINT)
        assert service.proc.wait(timeout=TIMEOUT) == 0
        for pid in workers:
            assert not exists(pid)
        read_to_the_end(service)
        text = "\n".join(service.logs.seen)
        assert "Traceback" not in text and "KeyboardInterrupt" not in text
        stopped = [json.loads(x)["pid"] for x in service.logs.seen if '"message": "stopped"' in x]
        assert sorted(stopped) == sorted(workers | {service.proc.pid})


def test_a_worker_killed_with_sigkill_stops_the_others_and_the_supervisor_fails(tmp_path: Path):
    with workers_service(tmp_path) as service:
        victim, survivor = sorted(service.worker_pids())
        os.kill(victim, signal.SIGKILL)
        died = service.logs.wait_for(lambda r: "died" in r["message"])
        assert died["level"] == "ERROR" and f"pid {victim}" in died["message"] and "SIGKILL" in died["message"]
        assert service.proc.wait(timeout=TIMEOUT) == 1
        assert not exists(survivor), "the other worker was left running"
        read_to_the_end(service)
        assert any(f'"pid": {survivor}' in x and '"message": "stopped"' in x for x in service.logs.seen)
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", service.port), timeout=5).close()


def test_a_worker_stopped_gracefully_on_its_own_stops_the_pod_cleanly(tmp_path: Path):
    """SIGTERM that reaches one worker directly (a kill of the process group, systemd's control-group kill) is
    a stop, not a failure: the others are stopped too, no half-capacity service, exit 0."""
    with workers_service(tmp_path) as service:
        first, second = sorted(service.worker_pids())
        os.kill(first, signal.SIGTERM)
        assert service.proc.wait(timeout=TIMEOUT) == 0
        assert not exists(first) and not exists(second)
        read_to_the_end(service)
        assert not [x for x in service.logs.seen if '"level": "ERROR"' in x]


def test_the_workers_stop_when_the_supervisor_is_killed(tmp_path: Path):
    with workers_service(tmp_path) as service:
        workers = service.worker_pids()
        service.proc.kill()
        service.proc.wait()
        stopped = [service.logs.wait_for(lambda r: r["message"] == "stopped") for _ in workers]
        assert {r["pid"] for r in stopped} == workers  # each drained and stopped, none serves on alone
        for pid in workers:
            wait_exit(pid)
            assert gone_or_zombie(pid)


def test_a_second_serve_on_the_same_port_fails_with_one_line(tmp_path: Path):
    with workers_service(tmp_path) as first:
        for argv in (["serve", "--workers", "2"], ["serve"]):
            out = subprocess.run(
                [sys.executable, "-m", "gatewaycerts", *argv],
                env={**first.env, "GATEWAYCERTS_LOG_FORMAT": "text"},
                capture_output=True,
                text=True,
                timeout=TIMEOUT,
            )
            assert out.returncode == 1, (argv, out.stderr)
            last = out.stderr.strip().splitlines()[-1]
            assert last.startswith(f"gatewaycerts: cannot listen on 127.0.0.1:{first.port}: Address already in use")
            assert "Traceback" not in out.stderr and out.stdout == ""
        # the first service was not disturbed
        assert first.proc.poll() is None and len(first.worker_pids()) == 2
        assert stop(first) == 0


@pytest.mark.parametrize(
    ("argv", "env_extra", "code", "message"),
    [
        (["--workers", "many"], {}, 2, "--workers must be an integer or auto, got 'many'"),
        (["--workers", "300"], {}, 2, "--workers must be between 0 (auto) and 256"),
        ([], {"GATEWAYCERTS_WORKERS": "-3"}, 1, "GATEWAYCERTS_WORKERS must be between 0 (auto) and 256"),
    ],
    ids=["not a number", "too many", "negative in the environment"],
)
def test_a_bad_worker_count_is_refused_before_anything_starts(tmp_path: Path, argv, env_extra, code, message):
    env = {**dev_env(tmp_path / "state", free_port()), **env_extra}
    out = subprocess.run(
        [sys.executable, "-m", "gatewaycerts", "serve", *argv], env=env, capture_output=True, text=True, timeout=TIMEOUT
    )
    assert out.returncode == code and message in out.stderr, out.stderr
    assert "Traceback" not in out.stderr and not (tmp_path / "state").exists()
