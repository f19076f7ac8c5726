"""Finalize is crash-safe: an order left in `processing` by a finalizer that died is finished by a finalize
worker (any replica) once its lease lapses, with exactly one certificate, on both stores.

A crash is the state a dead finalizer leaves in the real store: the order moved to processing (CSR, chosen
certificate id, lease) and nothing after it; or, later, the certificate stored but the order not yet valid."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from gatewaycerts.appkeys import ACME_FINALIZER, ACME_SERVICE
from gatewaycerts.core.acme.finalizer import AcmeFinalizeWorker
from gatewaycerts.core.acme.issuing import FINALIZE_LEASE_SECONDS
from gatewaycerts.domain.acme import PROCESSING, READY, VALID
from gatewaycerts.domain.pca import PcaQuery
from gatewaycerts.pki.jws import csr_der_to_pem
from tests.acme.harness import acme_client, answer_all, csr_for, in_thread, register, rsa_key, start_server

pytestmark = pytest.mark.parametrize("every_store", ["sqlite", "mongo"], indirect=True)


async def _ready_order(server, acme, name: str):
    order = await in_thread(acme.new_order, csr_for(name)[1])
    await in_thread(answer_all, acme, order)
    deadline = asyncio.get_running_loop().time() + 30
    while True:  # the validation worker runs in the app: poll the order's state with a deadline
        state = await in_thread(lambda: acme._post_as_get(order.uri).json())
        if state["status"] != "pending" or asyncio.get_running_loop().time() > deadline:
            break
        await asyncio.sleep(0.05)
    assert state["status"] == READY, state
    return order


async def _died_mid_finalize(server, acme, name: str):
    """What a finalizer that died right after taking the order leaves: processing, CSR kept, lease running."""
    order = await _ready_order(server, acme, name)
    service = server.app[ACME_SERVICE]
    store = service._store
    order_id = order.uri.rsplit("/", 1)[1]
    stored = await store.get_order(server.ca_id, order_id)
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    csr_der = x509.load_pem_x509_csr(order.csr_pem).public_bytes(serialization.Encoding.DER)
    now = datetime.now(UTC)
    processing = await store.replace_order(
        replace(
            stored,
            status=PROCESSING,
            csr_pem=csr_der_to_pem(csr_der),
            certificate_id="3f6c1b0e-0000-4000-8000-00000000c0de",
            claim_until=now + timedelta(seconds=FINALIZE_LEASE_SECONDS),
        ),
        expected_revision=stored.revision,
    )
    return order, processing, now


async def _certificates(server) -> list:
    service = server.app[ACME_SERVICE]
    page = await service._pca.list_certificates("p1", PcaQuery(), datetime.now(UTC), 0, 100)
    return list(page.items)


def _later(now: datetime):
    return lambda: now + timedelta(seconds=FINALIZE_LEASE_SECONDS + 1)


async def test_an_order_whose_finalizer_died_is_finished_once_its_lease_lapses(
    aiohttp_client, settings, every_store, auth
):
    server = await start_server(aiohttp_client, settings, every_store, auth)
    acme = await in_thread(acme_client, server.directory_url, rsa_key())
    await in_thread(register, acme, await server.eab())
    order, processing, now = await _died_mid_finalize(server, acme, "crash.example.test")
    polled = await in_thread(lambda: acme._post_as_get(order.uri))
    assert polled.json()["status"] == "processing" and "certificate" not in polled.json()
    assert polled.headers["Retry-After"] == "1"
    assert await server.app[ACME_FINALIZER].run_once() == 0  # the lease still runs: the finalizer may be alive
    assert await _certificates(server) == []

    service = server.app[ACME_SERVICE]
    later = AcmeFinalizeWorker(service._store, service.issuer, clock=_later(now))
    assert await later.run_once() == 1
    assert await later.run_once() == 0
    (cert,) = await _certificates(server)
    assert cert.id == processing.certificate_id
    state = await in_thread(lambda: acme._post_as_get(order.uri).json())
    assert state["status"] == VALID and state["certificate"].endswith(f"/cert/{processing.id}")
    chain = await in_thread(lambda: acme._post_as_get(state["certificate"]).text)
    assert chain.startswith(cert.certificate_pem.strip())
    record = await service._store.get_certificate(server.ca_id, cert.serial_number)
    assert record is not None and record.order_id == processing.id  # revokeCert and ARI find it
    stored = await service._store.get_order(server.ca_id, processing.id)
    assert stored.csr_pem is None and stored.claim_until is None


async def test_a_certificate_stored_before_the_crash_is_attached_not_issued_again(
    aiohttp_client, settings, every_store, auth
):
    server = await start_server(aiohttp_client, settings, every_store, auth)
    acme = await in_thread(acme_client, server.directory_url, rsa_key())
    await in_thread(register, acme, await server.eab())
    order, processing, now = await _died_mid_finalize(server, acme, "stored.example.test")
    service = server.app[ACME_SERVICE]
    signed = await service.issuer._sign(processing, None)  # the dead finalizer signed and stored, then died
    await service._pca.insert_certificate(signed)

    later = AcmeFinalizeWorker(service._store, service.issuer, clock=_later(now))
    assert await later.run_once() == 1
    (cert,) = await _certificates(server)
    assert (cert.id, cert.serial_number) == (signed.id, signed.serial_number)
    state = await in_thread(lambda: acme._post_as_get(order.uri).json())
    assert state["status"] == VALID
    chain = await in_thread(lambda: acme._post_as_get(state["certificate"]).text)
    assert chain.startswith(signed.certificate_pem.strip())
    assert await service._store.get_certificate(server.ca_id, signed.serial_number) is not None


async def test_workers_racing_for_a_lapsed_order_issue_one_certificate(aiohttp_client, settings, every_store, auth):
    server = await start_server(aiohttp_client, settings, every_store, auth)
    acme = await in_thread(acme_client, server.directory_url, rsa_key())
    await in_thread(register, acme, await server.eab())
    order, processing, now = await _died_mid_finalize(server, acme, "race.example.test")
    service = server.app[ACME_SERVICE]
    replicas = [AcmeFinalizeWorker(service._store, service.issuer, clock=_later(now)) for _ in range(4)]
    assert sum(await asyncio.gather(*(w.run_once() for w in replicas))) == 1
    assert sum(await asyncio.gather(*(w.run_once() for w in replicas))) == 0
    (cert,) = await _certificates(server)
    assert cert.id == processing.certificate_id
    state = await in_thread(lambda: acme._post_as_get(order.uri).json())
    assert state["status"] == VALID


async def test_a_finalizer_whose_lease_lapsed_mid_signing_stores_no_second_certificate(
    aiohttp_client, settings, every_store, auth
):
    """The slow finalizer and the one that took over both complete: the certificate id is the store's key."""
    server = await start_server(aiohttp_client, settings, every_store, auth)
    acme = await in_thread(acme_client, server.directory_url, rsa_key())
    await in_thread(register, acme, await server.eab())
    order, processing, now = await _died_mid_finalize(server, acme, "slow.example.test")
    service = server.app[ACME_SERVICE]
    later = AcmeFinalizeWorker(service._store, service.issuer, clock=_later(now))
    taken = await later._claim(processing)  # the lease lapsed: another worker took the order over
    assert taken is not None and taken.revision == processing.revision + 1
    await asyncio.gather(service.issuer.complete(processing), service.issuer.complete(taken, resumed=True))
    (cert,) = await _certificates(server)
    assert cert.id == processing.certificate_id
    state = await in_thread(lambda: acme._post_as_get(order.uri).json())
    assert state["status"] == VALID


async def test_finalize_in_one_request_still_answers_valid(aiohttp_client, settings, every_store, auth):
    server = await start_server(aiohttp_client, settings, every_store, auth)
    acme = await in_thread(acme_client, server.directory_url, rsa_key())
    await in_thread(register, acme, await server.eab())
    order = await _ready_order(server, acme, "quick.example.test")
    finalized = await in_thread(lambda: acme.finalize_order(order, datetime.now() + timedelta(seconds=30)))
    assert "BEGIN CERTIFICATE" in finalized.fullchain_pem
    service = server.app[ACME_SERVICE]
    stored = await service._store.get_order(server.ca_id, order.uri.rsplit("/", 1)[1])
    assert stored.status == VALID and stored.csr_pem is None and stored.claim_until is None
    assert await service._store.claimable_finalizations(datetime.now(UTC) + timedelta(days=1), 10) == []


async def test_an_order_that_fails_on_resume_for_another_reason_ends_invalid_not_retried_forever(
    aiohttp_client, settings, every_store, auth, monkeypatch
):
    """A resume that fails with anything but a store outage would fail the same way each lease: the order ends
    invalid with serverInternal, nothing is stored, and no worker takes it again."""
    server = await start_server(aiohttp_client, settings, every_store, auth)
    acme = await in_thread(acme_client, server.directory_url, rsa_key())
    await in_thread(register, acme, await server.eab())
    order, _processing, now = await _died_mid_finalize(server, acme, "broken.example.test")
    service = server.app[ACME_SERVICE]

    async def broken_signing(*args, **kwargs):  # a fault injected into the signing step, not the store
        raise RuntimeError("an unexpected fault")

    monkeypatch.setattr(service.issuer, "_sign", broken_signing)
    later = AcmeFinalizeWorker(service._store, service.issuer, clock=_later(now))
    assert await later.run_once() == 1
    assert await later.run_once() == 0  # not claimable again
    assert await _certificates(server) == []
    state = await in_thread(lambda: acme._post_as_get(order.uri).json())
    assert state["status"] == "invalid" and "certificate" not in state
    assert state["error"]["type"] == "urn:ietf:params:acme:error:serverInternal"
    assert "unexpected fault" not in state["error"]["detail"]
