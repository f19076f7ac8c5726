"""Two `gatewaycerts serve` processes on one store (the same SQLite file; one FerretDB database) agree: a
change made through one wakes a snapshot long poll held on the other within 1 s (SQLite) / 2 s (FerretDB), and
a gateway key revoked through one is refused by both within the same bound."""

from __future__ import annotations

import json
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


class HeldPoll:
    """`GET bundle?wait=30` with the current ETag, held on a thread; records when its answer arrived."""

    def __init__(self, url: str, headers: dict[str, str], etag: str) -> None:
        self.answer: tuple[int, dict[str, str], bytes] | None = None
        self.answered_at = 0.0
        self._thread = threading.Thread(target=self._run, args=(url + "?wait=30", {**headers, "If-None-Match": etag}))
        self._thread.start()

    def _run(self, url: str, headers: dict[str, str]) -> None:
        self.answer = get(url, headers)
        self.answered_at = time.monotonic()

    def join(self) -> tuple[int, dict[str, str], bytes]:
        self._thread.join(timeout=60)
        assert self.answer is not None, "the long poll never answered"
        return self.answer


def held(service: gw.Service, headers: dict[str, str]) -> HeldPoll:
    """A long poll on `service`, returned once the service holds it (its answer has not come, and a second
    unchanged poll with wait=0 is still 304, i.e. the version did not move meanwhile)."""
    url = service.gateway_url("bundle")
    status, answer, _ = get(url, headers)
    assert status == 200, answer
    etag = answer["etag"]
    poll = HeldPoll(url, headers, etag)
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
