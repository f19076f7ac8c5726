"""Two `gatewaycerts serve` processes on one store (the same SQLite file; one FerretDB database) agree: a
change made through one wakes a snapshot long poll held on the other within 1 s (SQLite) / 2 s (FerretDB), and
a gateway key revoked through one is refused by both within the same bound."""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from tests.conftest import STORES
from tests.e2e import gateway_harness as gw
from tests.e2e.gateway_harness import rsa_leaf, upload
from tests.e2e.test_graceful_shutdown import read_response

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")

BOUND = {"sqlite": 1.0, "mongo": 2.0}  # the propagation bounds between replicas


@pytest.fixture(params=STORES)
def replicas(
    request: pytest.FixtureRequest, tmp_path: Path, mongo_database: str
) -> Iterator[tuple[str, gw.Service, gw.Service]]:
    """Two replicas sharing the state directory (dev signing key and KEK) and the store."""
    extra: dict[str, str] = {}
    if request.param == "mongo":
        uri = request.getfixturevalue("mongodb_uri")
        extra["GATEWAYCERTS_DATABASE_URL"] = uri.rstrip("/") + "/" + mongo_database
    with ExitStack() as stack:
        first = stack.enter_context(gw.serve(tmp_path / "state", **extra))
        second = stack.enter_context(gw.serve(tmp_path / "state", **extra))
        yield request.param, first, second


def get(url: str, headers: dict[str, str], timeout: float = 90) -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, {k.lower(): v for k, v in err.headers.items()}, err.read()


def server_has_read(service_port: int, client_port: int) -> bool:
    """The service's end of the connection from `client_port` has no unread bytes (/proc/net/tcp's rx_queue):
    once our request was sent, the service has read it."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local, remote = fields[1].rsplit(":", 1)[1], fields[2].rsplit(":", 1)[1]
            if int(local, 16) == service_port and int(remote, 16) == client_port:
                return int(fields[4].split(":")[1], 16) == 0
    return False


class HeldPoll:
    """`GET bundle?wait=30` with the current ETag on a raw connection, read on a thread; records when its
    answer arrived."""

    def __init__(self, service: gw.Service, headers: dict[str, str], etag: str) -> None:
        self.answer: tuple[int, dict[str, str], bytes] | None = None
        self.answered_at = 0.0
        path = service.gateway_url("bundle").removeprefix(service.url) + "?wait=30"
        lines = [f"GET {path} HTTP/1.1", f"Host: {service.address}", f"If-None-Match: {etag}", "Connection: close"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        self._sock = socket.create_connection(("127.0.0.1", service.port), timeout=60)
        self._sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        read, _ = gw.until(lambda: server_has_read(service.port, self._sock.getsockname()[1]), True, 10)
        assert read, "the service did not read the long poll's request"
        self._thread = threading.Thread(target=self._run)
        self._thread.start()

    def _run(self) -> None:
        with self._sock:
            self.answer = read_response(self._sock)
        self.answered_at = time.monotonic()

    def join(self) -> tuple[int, dict[str, str], bytes]:
        self._thread.join(timeout=60)
        assert self.answer is not None, "the long poll never answered"
        return self.answer


def held(service: gw.Service, headers: dict[str, str]) -> HeldPoll:
    """A long poll held on `service`: its request read by the service, no answer yet, and the version still
    the same (an unchanged poll with wait=0 is 304)."""
    url = service.gateway_url("bundle")
    status, answer, _ = get(url, headers)
    assert status == 200, answer
    etag = answer["etag"]
    poll = HeldPoll(service, headers, etag)
    status, _, _ = get(url, {**headers, "If-None-Match": etag})
    assert status == 304 and poll.answer is None
    return poll


def test_a_change_through_one_replica_wakes_a_long_poll_on_the_other(replicas):
    kind, first, second = replicas
    key = first.gateway_key()
    headers = {"Authorization": f"Bearer {key['key']}"}
    leaf = rsa_leaf("rep.example.com", slot=40)
    cert_id = upload(first, "replica_cert", leaf)

    poll = held(second, headers)
    first.attach(cert_id, "rep.example.com")
    changed_at = time.monotonic()
    status, _, body = poll.join()
    elapsed = poll.answered_at - changed_at
    assert status == 200, body
    items = json.loads(body)["items"]
    assert [(i["certificate_id"], i["domains"]) for i in items] == [(cert_id, ["rep.example.com"])]
    assert elapsed <= BOUND[kind], f"{kind}: the other replica answered after {elapsed:.3f}s"

    # and the other way round: a detach through the second wakes a poll held on the first
    poll = held(first, headers)
    second.detach(cert_id, "rep.example.com")
    changed_at = time.monotonic()
    status, _, body = poll.join()
    elapsed = poll.answered_at - changed_at
    assert status == 200 and json.loads(body)["items"] == []
    assert elapsed <= BOUND[kind], f"{kind}: the other replica answered after {elapsed:.3f}s"


def test_a_key_revoked_through_one_replica_is_refused_by_both(replicas):
    kind, first, second = replicas
    key = first.gateway_key()
    headers = {"Authorization": f"Bearer {key['key']}"}
    for service in (first, second):
        status, _, body = get(service.gateway_url("bundle"), headers)
        assert status == 200, body  # both replicas know the key (and may have cached it)

    first.revoke_key(key["id"])
    for service in (first, second):
        status, elapsed = gw.until(lambda s=service: get(s.gateway_url("bundle"), headers)[0], 401, BOUND[kind])
        assert status == 401 and elapsed <= BOUND[kind], f"{kind}: {status} after {elapsed:.3f}s"
