"""The validation worker across replicas: each challenge validated once however many workers run; a claim
whose worker died lapses and is taken up again."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from gatewaycerts.appkeys import ACME_SERVICE, ACME_WORKER
from gatewaycerts.core.acme.worker import LEASE_SECONDS, AcmeValidationWorker
from tests.acme.harness import acme_client, csr_for, in_thread, register, rsa_key, start_server

pytestmark = pytest.mark.parametrize("every_store", ["sqlite", "mongo"], indirect=True)


async def _answered_order(server, acme, name: str):
    order = await in_thread(acme.new_order, csr_for(name)[1])
    (authz,) = order.authorizations
    chall = next(c for c in authz.body.challenges if c.chall.typ == "http-01")
    await in_thread(acme.answer_challenge, chall, chall.response(acme.net.key))
    return order


async def test_each_challenge_is_validated_once_by_competing_workers(aiohttp_client, settings, every_store, auth):
    server = await start_server(aiohttp_client, settings, every_store, auth, acme_worker=False)
    acme = await in_thread(acme_client, server.directory_url, rsa_key())
    await in_thread(register, acme, await server.eab())
    orders = [await _answered_order(server, acme, f"w{i}.example.test") for i in range(3)]
    first = server.app[ACME_WORKER]
    service = server.app[ACME_SERVICE]
    replicas = [first] + [AcmeValidationWorker(service._store, service, server.validator) for _ in range(3)]
    handled = await asyncio.gather(*(w.run_once() for w in replicas))
    assert sum(handled) == 3
    assert sorted(c.identifier_value for c in server.validator.seen) == [f"w{i}.example.test" for i in range(3)]
    assert sum(await asyncio.gather(*(w.run_once() for w in replicas))) == 0
    for order in orders:
        state = await in_thread(lambda o=order: acme._post_as_get(o.uri).json())
        assert state["status"] == "ready"


async def test_a_claim_whose_worker_died_is_taken_up_after_its_lease(aiohttp_client, settings, every_store, auth):
    server = await start_server(aiohttp_client, settings, every_store, auth, acme_worker=False)
    acme = await in_thread(acme_client, server.directory_url, rsa_key())
    await in_thread(register, acme, await server.eab())
    order = await _answered_order(server, acme, "dead.example.test")
    service = server.app[ACME_SERVICE]
    store = service._store
    (authz,) = await store.claimable_authorizations(datetime.now(UTC), 10)
    now = datetime.now(UTC)
    await store.replace_authorization(  # a worker claimed it, then its process died
        replace(authz, claim_until=now + timedelta(seconds=LEASE_SECONDS)), expected_revision=authz.revision
    )
    assert await server.app[ACME_WORKER].run_once() == 0
    assert server.validator.seen == []
    later = AcmeValidationWorker(
        store, service, server.validator, clock=lambda: now + timedelta(seconds=LEASE_SECONDS + 1)
    )
    assert await later.run_once() == 1
    assert [c.identifier_value for c in server.validator.seen] == ["dead.example.test"]
    state = await in_thread(lambda: acme._post_as_get(order.uri).json())
    assert state["status"] == "ready"


class MeetingValidator:
    """Each probe waits until `expected` probes are running at once (sequential probes never meet)."""

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.running = 0
        self.met = asyncio.Event()

    async def validate(self, challenge) -> None:
        from gatewaycerts.core.acme.validation import ValidationFailed

        self.running += 1
        if self.running >= self.expected:
            self.met.set()
        try:
            await asyncio.wait_for(self.met.wait(), 10)
        except TimeoutError:
            raise ValidationFailed("connection", "the probes ran one after another") from None


async def test_a_batch_of_challenges_is_validated_side_by_side(aiohttp_client, settings, every_store, auth):
    validator = MeetingValidator(3)
    server = await start_server(aiohttp_client, settings, every_store, auth, acme_worker=False, validator=validator)
    acme = await in_thread(acme_client, server.directory_url, rsa_key())
    await in_thread(register, acme, await server.eab())
    orders = [await _answered_order(server, acme, f"side{i}.example.test") for i in range(3)]
    assert await server.app[ACME_WORKER].run_once() == 3
    assert validator.met.is_set()
    for order in orders:
        state = await in_thread(lambda o=order: acme._post_as_get(o.uri).json())
        assert state["status"] == "ready"
