"""Two service instances on one store (one SQLite file; one FerretDB database), as two replicas run: each
managed certificate is renewed once, and a renewal abandoned mid-way by one replica (its task killed before
the CA answered, or right after the swap) is taken up by the other after the lease, leaving nothing half done.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest

from gatewaycerts.app import create_app
from gatewaycerts.appkeys import RENEWAL_SERVICE, RENEWAL_WORKER
from gatewaycerts.settings import Settings
from tests.conftest import STORES
from tests.factories import MovableClock
from tests.renewal.helpers import CERTS, create_managed, issued_count, leaf_of, make_ca, ok, renewal, until

LEASE = 600


@pytest.fixture(params=STORES)
async def replicas(request, aiohttp_client, tmp_path):
    env = {"GATEWAYCERTS_STATE_DIR": str(tmp_path / "state"), "GATEWAYCERTS_RENEWAL_LEASE_SECONDS": str(LEASE)}
    if request.param == "mongo":
        env["GATEWAYCERTS_DATABASE_URL"] = request.getfixturevalue("mongodb_uri") + f"gc_test_{uuid.uuid4().hex[:12]}"
    settings = Settings.from_env(env)
    clock = MovableClock()  # one time for both (they are one process here)
    clients = []
    for _ in range(2):
        app = create_app(settings, order_worker=False, renewal_worker=False, clock=clock)
        client = await aiohttp_client(app)
        client.worker, client.service, client.clock = app[RENEWAL_WORKER], app[RENEWAL_SERVICE], clock
        clients.append(client)
    return clients


async def test_two_replicas_renew_each_certificate_once(replicas, auth):
    a, b = replicas
    h = auth()
    ca_id = await make_ca(a, h)
    ids = [(await create_managed(a if i % 2 else b, h, ca_id, name=f"replica_cert_{i}"))["id"] for i in range(6)]
    done = await asyncio.gather(a.worker.run_once(), b.worker.run_once(), a.worker.run_once(), b.worker.run_once())
    assert sum(done) == 6
    assert await issued_count(a, h) == 6  # the CA signed six certificates, not more
    for cert_id in ids:
        state = await renewal(b, h, cert_id)
        assert state["state"] == "active" and state["renewals"] == 1
    # Every one due again (renew action on either replica): still once each.
    for i, cert_id in enumerate(ids):
        await ok(await (a if i % 2 else b).post(f"{CERTS}/{cert_id}/renewal/actions/renew", headers=h))
    done = await asyncio.gather(a.worker.run_once(), b.worker.run_once())
    assert sum(done) == 6 and await issued_count(a, h) == 12
    assert [(await renewal(a, h, c))["renewals"] for c in ids] == [2] * 6


class BlockingSource:
    """The real private-CA source, but the CA does not answer until `release` is set: the replica is killed
    while it waits."""

    def __init__(self, real) -> None:
        self.kind, self._real = real.kind, real
        self.entered, self.release = asyncio.Event(), asyncio.Event()

    async def check_settings(self, project_id, settings):
        return await self._real.check_settings(project_id, settings)

    async def issue(self, request):
        self.entered.set()
        await self.release.wait()
        return await self._real.issue(request)

    async def renewal_window(self, project_id, settings, chain_pem):
        return None


async def test_a_renewal_killed_before_the_ca_answered_is_taken_up_after_the_lease(replicas, auth):
    a, b = replicas
    h = auth()
    ca_id = await make_ca(a, h)
    cert_id = (await create_managed(a, h, ca_id))["id"]
    blocking = BlockingSource(a.service.sources["private_ca"])
    a.worker._sources = {"private_ca": blocking}  # replica a's CA connection hangs
    killed = asyncio.ensure_future(a.worker.run_once())
    await asyncio.wait_for(blocking.entered.wait(), 10)
    state = await renewal(b, h, cert_id)
    assert state["state"] == "renewing" and state["issued"] is False
    # While a's claim holds, b leaves it alone, and the renew action is refused.
    assert await b.worker.run_once() == 0
    resp = await b.post(f"{CERTS}/{cert_id}/renewal/actions/renew", headers=h)
    assert resp.status == 409 and (await resp.json())["error_code"] == "APIG.3472"
    killed.cancel()  # the replica dies mid-way
    with pytest.raises(asyncio.CancelledError):
        await killed
    assert (await b.get(f"{CERTS}/{cert_id}", headers=h)).status == 404  # nothing half done
    assert await issued_count(a, h) == 0
    b.clock.now += timedelta(seconds=LEASE + 1)
    assert await b.worker.run_once() == 1
    state = await renewal(a, h, cert_id)
    assert state["state"] == "active" and state["renewals"] == 1
    assert (await ok(await a.get(f"{CERTS}/{cert_id}", headers=h)))["id"] == cert_id
    assert await issued_count(a, h) == 1


async def test_a_renewal_killed_after_the_swap_is_finished_by_the_other_without_issuing_again(replicas, auth):
    a, b = replicas
    h = auth()
    ca_id = await make_ca(a, h)
    cert_id = (await create_managed(a, h, ca_id))["id"]
    assert await a.worker.run_once() == 1
    first = await ok(await a.get(f"{CERTS}/{cert_id}", headers=h))
    await ok(await a.post(f"{CERTS}/{cert_id}/renewal/actions/renew", headers=h))

    def die(project_id, cert_id_, cert):  # the process ends right after the swap was written
        raise asyncio.CancelledError

    a.worker.on_change = die
    with pytest.raises(asyncio.CancelledError):
        await a.worker.run_once()
    swapped = await ok(await b.get(f"{CERTS}/{cert_id}", headers=h))
    assert swapped["serial_number"] != first["serial_number"]  # the swap is whole: chain and key together
    state = await renewal(b, h, cert_id)
    assert state["state"] == "renewing" and state["renewals"] == 1
    assert await issued_count(a, h) == 2
    etag = (await b.get(f"{CERTS}/{cert_id}", headers=h)).headers["ETag"]
    b.clock.now += timedelta(seconds=LEASE + 1)
    assert await b.worker.run_once() == 1
    state = await renewal(b, h, cert_id)
    assert state["state"] == "active" and state["renewals"] == 2 and state["consecutive_failures"] == 0
    assert await issued_count(a, h) == 2  # finished, not issued again
    assert (await b.get(f"{CERTS}/{cert_id}", headers=h)).headers["ETag"] == etag  # and not swapped again
    history = await ok(await b.get(f"{CERTS}/{cert_id}/revisions", headers=h))
    serials = {leaf_of(r["chain_pem"]).serial_number for r in history["revisions"]}
    assert {int(first["serial_number"]), int(swapped["serial_number"])} <= serials

    async def quiet():
        return await b.worker.run_once() == 0

    await until(quiet)
