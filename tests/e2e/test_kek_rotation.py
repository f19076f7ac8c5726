"""KEK rotation end to end, both stores: records of every envelope kind (access keys included) made over HTTP
under KEK A,
re-wrapped under B while the service serves, then served with [B] alone; the start-up KEK check refuses
[A] alone and a wrong B; a half-done rotation serves and is finished by a second run; concurrent updates
and deletes between a batch's read and its compare-and-swaps are neither clobbered nor resurrected."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from pymongo import AsyncMongoClient

from gatewaycerts.app import (
    build_acme_client_store,
    build_acme_store,
    build_notification_store,
    build_stores,
    build_vault,
    create_app,
)
from gatewaycerts.appkeys import ACME_CLIENT_SERVICE, ORDER_WORKER
from gatewaycerts.core.acme.service import eab_context as acme_eab_context
from gatewaycerts.core.certificates import apic_key_context
from gatewaycerts.core.ids import new_id
from gatewaycerts.core.kek_rotation import EnvelopeStores, KekCheckError, KekRotation, RotationReport, check_keks
from gatewaycerts.core.notifications import secret_context as webhook_secret_context
from gatewaycerts.core.renewal.acme_client import eab_context as account_eab_context
from gatewaycerts.core.renewal.acme_client import key_context as account_key_context
from gatewaycerts.core.renewal.acme_client import tsig_context
from gatewaycerts.domain.acme import EabKey
from gatewaycerts.domain.acme_client import AcmeAccount, DnsUpdateConfig
from gatewaycerts.domain.envelopes import EnvelopeKind, StoredEnvelope
from gatewaycerts.keyvault import KeyVault, new_kek_line
from gatewaycerts.settings import Settings
from tests.conftest import STORES
from tests.factories import ec_chain, rsa_chain
from tests.sdk_signing import sign

KEK_A, KEK_B, WRONG_B = new_kek_line("A"), new_kek_line("B"), new_kek_line("B")
APIC, CAS, CERTS = "/v2/p1/apic/certificates", "/v1/private-certificate-authorities", "/v1/private-certificates"
ORDERS = "/v1/orders"
PASS_PHRASE = "rotate me s3cret"
ALL_KINDS = set(EnvelopeKind)


@dataclass
class Deployment:
    """One database (SQLite file or MongoDB database) that service instances with various KEKs open."""

    settings: Settings
    aiohttp_client: Callable

    def with_keks(self, *keks: str) -> Settings:
        return replace(self.settings, kek=",".join(keks))

    async def serve(self, *keks: str):
        """A running service (test client) with these KEKs; the order worker is driven by the test."""
        app = create_app(self.with_keks(*keks), order_worker=False)
        client = await self.aiohttp_client(app)
        client.worker = app[ORDER_WORKER]
        client.deployment, client.keks = self, keks
        return client

    @asynccontextmanager
    async def stores(self, *keks: str) -> AsyncIterator[EnvelopeStores]:
        """The stores as `gatewaycerts rotate-kek` opens them."""
        built = build_stores(self.with_keks(*keks))
        for store in built:
            await store.ensure_schema()
        notifications = build_notification_store(built.certificates)
        acme_client, acme = build_acme_client_store(built.certificates), build_acme_store(built.certificates)
        for store in (notifications, acme_client, acme):
            await store.ensure_schema()
        try:
            yield EnvelopeStores(
                built.certificates, built.pca, built.orders, built.access_keys, notifications, acme_client, acme
            )
        finally:
            for store in reversed(built):
                await store.close()

    async def rotate(self, *keks: str, limit: int | None = None, **kw) -> RotationReport:
        """What `gatewaycerts rotate-kek` does: the start-up KEK check, then the rotation."""
        vault = build_vault(self.with_keks(*keks))
        async with self.stores(*keks) as stores:
            await check_keks(stores, vault)
            return await KekRotation(stores, vault, **kw).run(limit=limit)

    async def labels(self) -> dict[EnvelopeKind, dict[str, int]]:
        """Per kind, how many records each KEK label holds."""
        out: dict[EnvelopeKind, dict[str, int]] = {}
        async with self.stores(KEK_A) as stores:
            for kind, store in stores.by_kind():
                counts = {}
                for label in ("A", "B"):
                    if n := await store.count_envelopes(kind, label):
                        counts[label] = n
                out[kind] = counts
        return out

    async def stored(self, kind: EnvelopeKind, record_id: str) -> StoredEnvelope | None:
        async with self.stores(KEK_A) as stores:
            store = dict(stores.by_kind())[kind]
            for label in ("A", "B"):
                for env in await store.envelopes(kind, label, "", 1000):
                    if env.record_id == record_id:
                        return env
        return None


@pytest.fixture(params=STORES)
async def deployment(request, settings, aiohttp_client, mongo_database) -> AsyncIterator[Deployment]:
    if request.param == "sqlite":
        yield Deployment(settings, aiohttp_client)
        return
    uri = request.getfixturevalue("mongodb_uri")
    yield Deployment(replace(settings, database_url=uri, mongodb_database=mongo_database), aiohttp_client)
    client: AsyncMongoClient = AsyncMongoClient(uri)
    await client.drop_database(mongo_database)
    await client.close()


async def ok(resp, status: int = 200):
    assert resp.status == status, await resp.text()
    return await resp.json() if resp.content_type == "application/json" else None


def uuid_of(ref: str) -> str:
    return ref.rstrip("/").rsplit("/", 1)[-1]


@dataclass
class Records:
    """What was made over HTTP, with what each must still give back after a rotation."""

    apic: dict[str, str] = field(default_factory=dict)  # APIC certificate id -> its PKCS#8 key PEM
    cas: list[str] = field(default_factory=list)
    issued: dict[str, str] = field(default_factory=dict)  # issued certificate id -> exported key PEM
    secrets: dict[str, bytes] = field(default_factory=dict)  # secret id -> payload
    pending_orders: list[str] = field(default_factory=list)  # asymmetric orders with a pass phrase, PENDING
    access_keys: dict[str, str] = field(default_factory=dict)  # access key id -> its secret
    webhooks: dict[str, str] = field(default_factory=dict)  # webhook id -> its whsec_ secret
    acme_accounts: dict[str, tuple[bytes, bytes]] = field(default_factory=dict)  # id -> (key PEM, EAB HMAC)
    dns_configs: dict[str, bytes] = field(default_factory=dict)  # DNS update configuration id -> TSIG secret
    eab_keys: dict[str, tuple[str, bytes]] = field(default_factory=dict)  # ACME server EAB kid -> (CA, HMAC key)


def pkcs8(pem: str) -> str:
    key = serialization.load_pem_private_key(pem.encode(), None)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


async def make_records(client, auth, records: Records, n: int = 1) -> Records:
    """n records of every envelope kind, through the dialects' own APIs."""
    for i in range(n):
        tag = f"{len(records.cas)}"
        chain = rsa_chain() if i % 2 == 0 else ec_chain()
        apic = await ok(
            await client.post(
                APIC,
                json={"name": f"rot_{tag}", "cert_content": chain.bundle(), "private_key": chain.leaf.key_pem()},
                headers=auth(),
            )
        )
        records.apic[apic["id"]] = pkcs8(chain.leaf.key_pem())
        ca = {
            "type": "ROOT",
            "distinguished_name": {"common_name": f"Rotation Root {tag}", "organization": "Example"},
            "key_algorithm": "EC256",
            "validity": {"type": "YEAR", "value": 5},
        }
        ca_id = (await ok(await client.post(CAS, json=ca, headers=auth())))["ca_id"]
        records.cas.append(ca_id)
        issued_id = await issue(client, auth, ca_id, f"svc{tag}.example.com")
        exported = await ok(await client.post(f"{CERTS}/{issued_id}/export", json={"type": "OTHER"}, headers=auth()))
        records.issued[issued_id] = exported["private_key"]
        key_order = {"name": "k", "algorithm": "aes", "bit_length": 256, "mode": "cbc"}
        resp = await client.post(ORDERS, json={"type": "key", "meta": key_order}, headers=auth())
        order_id = uuid_of((await ok(resp, 202))["order_ref"])
        await client.worker.run_once()
        done = await ok(await client.get(f"{ORDERS}/{order_id}", headers=auth()))
        secret_id = uuid_of(done["secret_ref"])
        records.secrets[secret_id] = await payload(client, auth, secret_id)
        resp = await client.post(
            "/v3.0/OS-CREDENTIAL/credentials", json={"credential": {"role": "viewer"}}, headers=auth()
        )
        created = (await ok(resp, 201))["credential"]
        records.access_keys[created["access"]] = created["secret"]
        hook = {"url": f"https://hooks.example.com/rot{tag}", "events": ["certificate.expired"]}
        created = await ok(await client.post("/v2/p1/apic/webhooks", json=hook, headers=auth()), 201)
        records.webhooks[created["id"]] = created["secret"]
        tsig = f"tsig secret {tag}".encode()
        dns = {
            "server": "192.0.2.53",
            "zone": f"rot{tag}.example.com",
            "tsig_key_name": "k.",
            "tsig_secret": base64.b64encode(tsig).decode(),
        }
        created = await ok(await client.post("/v2/p1/apic/dns-update-configs", json=dns, headers=auth()), 201)
        records.dns_configs[created["id"]] = tsig
        created = await ok(await client.post(f"{CAS}/{ca_id}/acme/eab-keys", json={}, headers=auth()), 201)
        hmac_key = base64.urlsafe_b64decode(created["hmac_key"] + "=" * (-len(created["hmac_key"]) % 4))
        records.eab_keys[created["kid"]] = (ca_id, hmac_key)
        await add_acme_account(client, records, tag)
    # after the worker ran: these stay PENDING, their pass phrase encrypted beside the order
    for _ in range(n):
        meta = {"algorithm": "ec", "bit_length": 256, "pass_phrase": PASS_PHRASE}
        resp = await client.post(ORDERS, json={"type": "asymmetric", "meta": meta}, headers=auth())
        records.pending_orders.append(uuid_of((await ok(resp, 202))["order_ref"]))
    return records


async def add_acme_account(client, records: Records, tag: str) -> None:
    """An ACME client account as registering one stores it (its key and EAB HMAC wrapped by the serving KEK
    under the client's own contexts); registering needs an ACME CA, which this test does not run."""
    vault = build_vault(client.deployment.with_keks(*client.keks))
    account_id = new_id()
    key_pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    hmac_key = f"eab hmac {tag}".encode()
    account = AcmeAccount(
        id=account_id,
        project_id="p1",
        directory_url="https://acme.example.com/directory",
        contact=(),
        terms_agreed=True,
        eab_kid=f"kid{tag}",
        eab_hmac_envelope=vault.encrypt(hmac_key, context=account_eab_context("p1", account_id)),
        key_envelope=vault.encrypt(key_pem, context=account_key_context("p1", account_id)),
        account_url=f"https://acme.example.com/acct/{tag}",
        create_time=datetime.now(UTC),
    )
    await client.app[ACME_CLIENT_SERVICE]._store.insert_account(account)
    records.acme_accounts[account_id] = (key_pem, hmac_key)


async def issue(client, auth, ca_id: str, dns: str) -> str:
    body = {
        "issuer_id": ca_id,
        "key_algorithm": "EC256",
        "signature_algorithm": "SHA256",
        "distinguished_name": {"common_name": dns},
        "subject_alternative_names": [{"type": "DNS", "value": dns}],
        "validity": {"type": "DAY", "value": 30},
    }
    return (await ok(await client.post(CERTS, json=body, headers=auth())))["certificate_id"]


async def payload(client, auth, secret_id: str) -> bytes:
    resp = await client.get(f"/v1/secrets/{secret_id}/payload", headers=auth())
    assert resp.status == 200, await resp.text()
    return await resp.read()


async def assert_everything_serves(deployment: Deployment, client, auth, records: Records, vault: KeyVault) -> None:
    """Every record's key decrypts and does its job through the service."""
    for secret_id, expected in records.secrets.items():
        assert await payload(client, auth, secret_id) == expected
    for cert_id, key_pem in records.issued.items():
        exported = await ok(await client.post(f"{CERTS}/{cert_id}/export", json={"type": "OTHER"}, headers=auth()))
        assert exported["private_key"] == key_pem
    for i, ca_id in enumerate(records.cas):  # the CA key still signs: a new certificate chains to the CA
        new_id = await issue(client, auth, ca_id, f"after{i}.example.com")
        exported = await ok(await client.post(f"{CERTS}/{new_id}/export", json={"type": "OTHER"}, headers=auth()))
        leaf = x509.load_pem_x509_certificate(exported["certificate"].encode())
        ca_pem = (await ok(await client.post(f"{CAS}/{ca_id}/export", headers=auth())))["certificate"]
        leaf.verify_directly_issued_by(x509.load_pem_x509_certificate(ca_pem.encode()))
    for access, secret in records.access_keys.items():  # the secret still checks the SDK's signatures
        signed = sign(
            "GET", f"127.0.0.1:{client.port}", APIC, ak=access, sk=secret, when=datetime.now(UTC), project="p1"
        )
        resp = await client.get(signed.uri, headers=signed.headers)
        assert resp.status == 200, await resp.text()
    for hook_id, secret in records.webhooks.items():  # no API returns a webhook secret: decrypt what is stored
        env = await deployment.stored(EnvelopeKind.WEBHOOK_SECRET, hook_id)
        assert env is not None
        assert vault.decrypt(env.envelope, context=webhook_secret_context("p1", hook_id)).decode() == secret
    acme_client = client.app[ACME_CLIENT_SERVICE]
    for account_id, (key_pem, hmac_key) in records.acme_accounts.items():
        # the ACME client opens the account key as renewing does; no API returns the EAB HMAC: decrypt it
        assert acme_client.credentials(await acme_client.account("p1", account_id)).key_pem == key_pem
        env = await deployment.stored(EnvelopeKind.ACME_ACCOUNT_EAB, account_id)
        assert env is not None
        assert vault.decrypt(env.envelope, context=account_eab_context("p1", account_id)) == hmac_key
    for config_id, tsig in records.dns_configs.items():  # no API returns a TSIG secret: decrypt what is stored
        env = await deployment.stored(EnvelopeKind.DNS_UPDATE_TSIG, config_id)
        assert env is not None
        assert vault.decrypt(env.envelope, context=tsig_context("p1", config_id)) == tsig
    for kid, (ca_id, hmac_key) in records.eab_keys.items():  # the ACME server's EAB HMAC keys, scoped by CA
        env = await deployment.stored(EnvelopeKind.ACME_EAB_KEY, kid)
        assert env is not None and env.scope == ca_id
        assert vault.decrypt(env.envelope, context=acme_eab_context("p1", ca_id, kid)) == hmac_key
    for cert_id, key_pem in records.apic.items():  # no API returns an APIC key: decrypt what is stored
        env = await deployment.stored(EnvelopeKind.APIC_CERTIFICATE, cert_id)
        assert env is not None
        assert vault.decrypt(env.envelope, context=apic_key_context("p1", cert_id)).decode() == key_pem


async def assert_pending_orders_complete(client, auth, records: Records) -> None:
    """The pass phrase stored beside each pending order still decrypts: the worker hands it out."""
    await client.worker.run_once()
    for order_id in records.pending_orders:
        done = await ok(await client.get(f"{ORDERS}/{order_id}", headers=auth()))
        assert done["status"] == "ACTIVE", done
        container = await ok(await client.get(f"/v1/containers/{uuid_of(done['container_ref'])}", headers=auth()))
        refs = {r["name"]: uuid_of(r["secret_ref"]) for r in container["secret_refs"]}
        assert await payload(client, auth, refs["private_key_passphrase"]) == PASS_PHRASE.encode()


async def refused(deployment: Deployment, *keks: str) -> str:
    with pytest.raises(KekCheckError) as info:
        await deployment.serve(*keks)
    message = str(info.value)
    for line in keks:  # never key bytes in the message
        assert line.split(":", 1)[1] not in message
    return message


# -- the whole procedure ------------------------------------------------------------------------------


async def test_rotation_rewraps_every_kind_and_the_old_kek_can_go(deployment: Deployment, auth):
    client = await deployment.serve(KEK_A)
    records = await make_records(client, auth, Records())
    await client.close()
    before = await deployment.labels()
    assert {kind for kind, counts in before.items() if counts.get("A")} == ALL_KINDS  # every kind covered
    assert all("B" not in counts for counts in before.values())

    # Step 1: every replica gets [A, B]; B wraps new keys, A still unwraps.
    client = await deployment.serve(KEK_A, KEK_B)
    report = await deployment.rotate(KEK_A, KEK_B)
    assert report.done and report.remaining == 0
    assert {kind: r.rewrapped for kind, r in report.kinds.items()} == {
        kind: counts["A"] for kind, counts in before.items()
    }
    assert all(r.changed == 0 and r.gone == 0 and r.failed == 0 for r in report.kinds.values())
    after = await deployment.labels()
    assert all(counts == {"B": before[kind]["A"]} for kind, counts in after.items()), after
    vault_b = build_vault(deployment.with_keks(KEK_B))
    await assert_everything_serves(deployment, client, auth, records, vault_b)
    await client.close()
    assert (await deployment.rotate(KEK_A, KEK_B)).done  # nothing left: a second run re-wraps nothing
    assert sum(r.rewrapped for r in (await deployment.rotate(KEK_A, KEK_B)).kinds.values()) == 0

    # Step 2: A removed. The service starts and works with B alone.
    client = await deployment.serve(KEK_B)
    await assert_everything_serves(deployment, client, auth, records, vault_b)
    await assert_pending_orders_complete(client, auth, records)
    await client.close()

    # A missing or wrong KEK refuses to start, naming the KEK id.
    message = await refused(deployment, KEK_A)
    assert message.startswith("stored keys are wrapped by KEK 'B', which is not configured;"), message
    message = await refused(deployment, KEK_A, WRONG_B)
    assert "KEK 'B' does not decrypt the stored keys" in message, message


async def test_a_wrong_new_kek_is_refused_before_it_wraps_anything(deployment: Deployment, auth):
    client = await deployment.serve(KEK_A)
    await make_records(client, auth, Records())
    await client.close()
    client = await deployment.serve(KEK_A, KEK_B)  # the first replica with B records B's canary
    await client.close()
    assert all("B" not in counts for counts in (await deployment.labels()).values())  # nothing under B yet
    # Another replica got other bytes under the id B: it would wrap keys the first one cannot read.
    message = await refused(deployment, KEK_A, WRONG_B)
    assert "KEK 'B' is not the key" in message and "canary" in message, message
    with pytest.raises(KekCheckError, match="canary"):  # rotate-kek refuses too: it would wrap under that B
        await deployment.rotate(KEK_A, WRONG_B)


# -- interrupted and resumed ----------------------------------------------------------------------------


async def test_a_half_done_rotation_serves_and_a_second_run_finishes_it(deployment: Deployment, auth):
    client = await deployment.serve(KEK_A)
    records = await make_records(client, auth, Records(), n=2)
    await client.close()
    before = await deployment.labels()
    total = sum(counts["A"] for counts in before.values())

    first = await deployment.rotate(KEK_A, KEK_B, batch_size=1, limit=3)  # stops after three records
    assert first.stopped_at_limit and not first.done
    assert sum(r.rewrapped for r in first.kinds.values()) == 3
    assert first.remaining == total - 3
    mixed = await deployment.labels()
    assert sum(c.get("A", 0) for c in mixed.values()) == total - 3
    assert sum(c.get("B", 0) for c in mixed.values()) == 3

    # Half done: keys under A and under B both serve.
    client = await deployment.serve(KEK_A, KEK_B)
    await assert_everything_serves(deployment, client, auth, records, build_vault(deployment.with_keks(KEK_A, KEK_B)))
    await client.close()

    second = await deployment.rotate(KEK_A, KEK_B, batch_size=1)
    assert second.done and not second.stopped_at_limit
    # every record re-wrapped exactly once over the two runs: nothing started over, nothing wrapped twice
    assert sum(r.rewrapped for r in second.kinds.values()) == total - 3
    signed_meanwhile = len(records.cas)  # assert_everything_serves issued one certificate per CA, under B
    assert await deployment.labels() == {
        kind: {"B": counts["A"] + (signed_meanwhile if kind is EnvelopeKind.ISSUED_CERTIFICATE else 0)}
        for kind, counts in before.items()
    }

    client = await deployment.serve(KEK_B)
    await assert_everything_serves(deployment, client, auth, records, build_vault(deployment.with_keks(KEK_B)))
    await client.close()


# -- changes racing the rotation ---------------------------------------------------------------------------


async def test_records_changed_or_deleted_during_rotation_are_neither_clobbered_nor_resurrected(
    deployment: Deployment, auth
):
    client = await deployment.serve(KEK_A)
    records = await make_records(client, auth, Records(), n=2)
    await client.close()
    updated_id, deleted_id = list(records.apic)
    deleted_secret = list(records.secrets)[1]
    disabled_ca = records.cas[0]
    deleted_order = records.pending_orders[0]
    deleted_webhook = list(records.webhooks)[1]
    deleted_dns_config = list(records.dns_configs)[1]
    revoked_kid, (revoked_ca, _) = next(iter(records.eab_keys.items()))
    client = await deployment.serve(KEK_A, KEK_B)  # serving while the rotation runs
    new_chain = ec_chain()
    raced: set[EnvelopeKind] = set()
    seen: dict[EnvelopeKind, set[str]] = {}

    async def between_read_and_swap(batch: list[StoredEnvelope]) -> None:
        """Runs after a batch was read, before its compare-and-swaps: the requests below race the rotation."""
        kind = batch[0].kind
        seen.setdefault(kind, set()).update(env.record_id for env in batch)
        if kind in raced:
            return
        raced.add(kind)
        if kind is EnvelopeKind.APIC_CERTIFICATE:
            assert {updated_id, deleted_id} <= seen[kind]
            body = {"name": "rot_updated", "cert_content": new_chain.bundle(), "private_key": new_chain.leaf.key_pem()}
            await ok(await client.put(f"{APIC}/{updated_id}", json=body, headers=auth()))  # a new key, under B
            await ok(await client.delete(f"{APIC}/{deleted_id}", headers=auth()), 204)
        elif kind is EnvelopeKind.AUTHORITY:
            assert disabled_ca in seen[kind]
            resp = await client.post(f"{CAS}/{disabled_ca}/disable", headers=auth())
            assert resp.status in (200, 204), await resp.text()
        elif kind is EnvelopeKind.SECRET:
            assert deleted_secret in seen[kind]
            resp = await client.delete(f"/v1/secrets/{deleted_secret}", headers=auth())
            assert resp.status == 204, await resp.text()
        elif kind is EnvelopeKind.WEBHOOK_SECRET:
            assert deleted_webhook in seen[kind]
            resp = await client.delete(f"/v2/p1/apic/webhooks/{deleted_webhook}", headers=auth())
            assert resp.status == 204, await resp.text()
        elif kind is EnvelopeKind.DNS_UPDATE_TSIG:
            assert deleted_dns_config in seen[kind]
            resp = await client.delete(f"/v2/p1/apic/dns-update-configs/{deleted_dns_config}", headers=auth())
            assert resp.status == 204, await resp.text()
        elif kind is EnvelopeKind.ACME_EAB_KEY:  # a change of another field (the status) of the record
            assert revoked_kid in seen[kind]
            resp = await client.delete(f"{CAS}/{revoked_ca}/acme/eab-keys/{revoked_kid}", headers=auth())
            assert resp.status == 204, await resp.text()
        elif kind is EnvelopeKind.ORDER:
            assert deleted_order in seen[kind]
            resp = await client.delete(f"{ORDERS}/{deleted_order}", headers=auth())
            assert resp.status == 204, await resp.text()

    report = await deployment.rotate(KEK_A, KEK_B, before_rewrap=between_read_and_swap)
    assert raced == ALL_KINDS  # every kind was read in batches and raced where the test had a change for it
    assert report.done, report

    apic = report.kinds[EnvelopeKind.APIC_CERTIFICATE]
    assert apic.changed == 1 and apic.gone == 1 and apic.rewrapped == 0  # both raced, neither re-wrapped
    # The uploaded key is the one stored, not the rotation's copy of the old one.
    put_envelope = await deployment.stored(EnvelopeKind.APIC_CERTIFICATE, updated_id)
    assert put_envelope is not None and put_envelope.kek_id == "B"
    vault = build_vault(deployment.with_keks(KEK_B))
    stored_key = vault.decrypt(put_envelope.envelope, context=apic_key_context("p1", updated_id)).decode()
    assert stored_key == pkcs8(new_chain.leaf.key_pem()) != records.apic[updated_id]
    # Deleted records stay deleted.
    assert (await client.get(f"{APIC}/{deleted_id}", headers=auth())).status == 404
    assert await deployment.stored(EnvelopeKind.APIC_CERTIFICATE, deleted_id) is None
    assert (await client.get(f"/v1/secrets/{deleted_secret}", headers=auth())).status == 404
    assert await deployment.stored(EnvelopeKind.SECRET, deleted_secret) is None
    assert (await client.get(f"{ORDERS}/{deleted_order}", headers=auth())).status == 404
    assert await deployment.stored(EnvelopeKind.ORDER, deleted_order) is None
    assert report.kinds[EnvelopeKind.SECRET].gone == 1 and report.kinds[EnvelopeKind.ORDER].gone == 1
    assert (await client.get(f"/v2/p1/apic/webhooks/{deleted_webhook}", headers=auth())).status == 404
    assert await deployment.stored(EnvelopeKind.WEBHOOK_SECRET, deleted_webhook) is None
    assert report.kinds[EnvelopeKind.WEBHOOK_SECRET].gone == 1
    assert (await client.get(f"/v2/p1/apic/dns-update-configs/{deleted_dns_config}", headers=auth())).status == 404
    assert await deployment.stored(EnvelopeKind.DNS_UPDATE_TSIG, deleted_dns_config) is None
    assert report.kinds[EnvelopeKind.DNS_UPDATE_TSIG].gone == 1
    # The EAB key revoked meanwhile stays revoked, its HMAC key re-wrapped (in place, or by the next pass).
    eab = await ok(await client.get(f"{CAS}/{revoked_ca}/acme/eab-keys", headers=auth()))
    assert [k["status"] for k in eab["eab_keys"] if k["kid"] == revoked_kid] == ["revoked"], eab
    assert (await deployment.stored(EnvelopeKind.ACME_EAB_KEY, revoked_kid)).kek_id == "B"
    # A change to another field while the key was re-wrapped: both the change and the re-wrap are kept
    # (SQLite re-wraps in place; MongoDB loses the claim race and the next pass re-wraps).
    ca = await ok(await client.get(f"{CAS}/{disabled_ca}", headers=auth()))
    assert ca["status"] == "DISABLED"
    assert (await deployment.stored(EnvelopeKind.AUTHORITY, disabled_ca)).kek_id == "B"
    assert report.kinds[EnvelopeKind.AUTHORITY].changed == 0
    await client.close()

    client = await deployment.serve(KEK_B)  # everything that is left serves without A
    del records.apic[deleted_id]
    records.apic[updated_id] = pkcs8(new_chain.leaf.key_pem())
    del records.secrets[deleted_secret]
    records.cas.remove(disabled_ca)
    records.pending_orders.remove(deleted_order)
    del records.webhooks[deleted_webhook]
    del records.dns_configs[deleted_dns_config]
    await assert_everything_serves(deployment, client, auth, records, vault)
    await assert_pending_orders_complete(client, auth, records)
    await client.close()


async def test_an_envelope_that_does_not_decrypt_is_reported_and_keeps_the_rotation_unfinished(
    deployment: Deployment, auth, caplog
):
    client = await deployment.serve(KEK_A)
    records = await make_records(client, auth, Records(), n=2)
    await client.close()
    good_id, bad_id = sorted(records.apic)  # the start-up check samples the first id: keep that one sound
    async with deployment.stores(KEK_A) as stores:
        good, bad = [await stores.certificates.get("p1", i) for i in (good_id, bad_id)]
        # an envelope bound to another record: under KEK A, but it can never decrypt here
        await stores.certificates.replace(
            replace(bad, encrypted_private_key=good.encrypted_private_key), expected_revision=bad.revision
        )
    report = await deployment.rotate(KEK_A, KEK_B)
    apic = report.kinds[EnvelopeKind.APIC_CERTIFICATE]
    assert apic.failed == 1 and apic.rewrapped == 1 and apic.remaining == 1 and apic.remaining_by_kek == {"A": 1}
    assert not report.done  # the old KEK must stay: rotate-kek exits non-zero
    assert all(r.remaining == 0 for kind, r in report.kinds.items() if kind is not EnvelopeKind.APIC_CERTIFICATE)
    logged = [r.getMessage() for r in caplog.records if r.name == "gatewaycerts.kek"]
    assert len(logged) == 1 and bad_id in logged[0] and "'A'" in logged[0] and "does not decrypt" in logged[0]
    assert "PRIVATE KEY" not in logged[0] and KEK_A.split(":")[1] not in logged[0]


async def test_the_start_up_check_samples_the_acme_secrets(deployment: Deployment, auth):
    """One record of each ACME kind alone under KEK B (written by a replica that had B, checked by none that
    started with it): a service without B refuses, one with other bytes under B refuses naming the record
    the check decrypted (under the kind's own context: an EAB key's names its CA), one with B starts."""
    client = await deployment.serve(KEK_A)
    await client.close()
    vault_b = build_vault(deployment.with_keks(KEK_B))
    account_id, config_id, kid, ca_id = new_id(), new_id(), "kidB", "ca-b"
    t0 = datetime.now(UTC)
    account = AcmeAccount(
        id=account_id,
        project_id="p1",
        directory_url="https://acme.example.com/directory",
        contact=(),
        terms_agreed=True,
        eab_kid=None,
        eab_hmac_envelope=None,
        key_envelope=b"{}",  # not an envelope: labelled "", nothing any KEK could do about it
        account_url=None,
        create_time=t0,
    )
    with_key = replace(account, key_envelope=vault_b.encrypt(b"key", context=account_key_context("p1", account_id)))
    with_eab = replace(
        account,
        eab_kid="k",
        eab_hmac_envelope=vault_b.encrypt(b"hmac", context=account_eab_context("p1", account_id)),
    )
    config = DnsUpdateConfig(
        id=config_id,
        project_id="p1",
        server="192.0.2.53",
        port=53,
        zone="example.com.",
        tsig_key_name="k.",
        tsig_algorithm="hmac-sha256",
        tsig_secret_envelope=vault_b.encrypt(b"tsig", context=tsig_context("p1", config_id)),
        create_time=t0,
    )
    eab_key = EabKey(kid, ca_id, "p1", vault_b.encrypt(b"hmac", context=acme_eab_context("p1", ca_id, kid)), t0, t0)

    async def only(kind: EnvelopeKind, add, remove, record_id: str) -> None:
        async with deployment.stores(KEK_A) as stores:
            await add(stores)
        message = await refused(deployment, KEK_A)
        assert message.startswith("stored keys are wrapped by KEK 'B', which is not configured;"), (kind, message)
        message = await refused(deployment, KEK_A, WRONG_B)
        assert f"KEK 'B' does not decrypt the stored keys (checked {kind.value} {record_id})" in message, message
        client = await deployment.serve(KEK_A, KEK_B)  # the right B: the sample decrypts, the service starts
        await client.close()
        if remove is not None:
            async with deployment.stores(KEK_A) as stores:
                await remove(stores)

    async def drop_account(stores: EnvelopeStores) -> None:
        assert await stores.acme_client.delete_account("p1", account_id)

    await only(
        EnvelopeKind.ACME_ACCOUNT_KEY,
        lambda stores: stores.acme_client.insert_account(with_key),
        drop_account,
        account_id,
    )
    await only(
        EnvelopeKind.ACME_ACCOUNT_EAB,
        lambda stores: stores.acme_client.insert_account(with_eab),
        drop_account,
        account_id,
    )
    await only(
        EnvelopeKind.DNS_UPDATE_TSIG,
        lambda stores: stores.acme_client.insert_dns_config(config),
        lambda stores: stores.acme_client.delete_dns_config("p1", config_id),
        config_id,
    )
    await only(EnvelopeKind.ACME_EAB_KEY, lambda stores: stores.acme.insert_eab_key(eab_key), None, kid)
