"""The audit trail over HTTP, against both real stores: a walk through every dialect lands on the trail with
who, what, which object, when and the request id; the trail holds no key material; only admins of the project
read it; bad queries are refused in the CTS envelope; pages cover every event once; a failed audit write leaves
the change standing, an ERROR line and a counted loss."""

from __future__ import annotations

import base64
import datetime as dt
import json
import logging
import re
import sqlite3

import pytest
from pymongo import AsyncMongoClient

from gatewaycerts.app import create_app
from gatewaycerts.appkeys import ORDER_WORKER
from gatewaycerts.core.audit import encode_marker
from gatewaycerts.domain.audit import AuditEvent, AuditMarker, AuditQuery
from gatewaycerts.store.mongo.audit import MongoAuditStore
from gatewaycerts.store.sqlite.audit import SqliteAuditStore
from gatewaycerts.store.sqlite.base import SqliteDatabase
from gatewaycerts.store.sqlite.pca import SqlitePcaStore
from tests.conftest import app_on
from tests.factories import MovableClock, ec_chain
from tests.mongo_server import FerretDB, MongoUnavailable
from tests.notary_helpers import make_csr

APIC = "/v2/p1/apic/certificates"
CAS, CERTS = "/v1/private-certificate-authorities", "/v1/private-certificates"
NREQS, NCAS = "/api/v1/certificate_requests", "/api/v1/certificate_authorities"
ROOT_CA = {
    "type": "ROOT",
    "key_algorithm": "EC256",
    "distinguished_name": {"common_name": "Walk Root CA"},
    "validity": {"type": "YEAR", "value": 2},
    "crl_configuration": {"enabled": True},
}
PASS_PHRASE = "walk-pass-phrase-1f0e"
EXPORT_PASSWORD = "Walk-Export-Passw0rd"


@pytest.fixture
async def trail(aiohttp_client, settings, every_store, token):
    audit = every_store[3]
    clock = MovableClock()
    app = app_on(settings, every_store, clock=clock)
    client = await aiohttp_client(app)
    client.clock, client.app_, client.audit_store = clock, app, audit
    client.as_ = lambda role="admin", project="p1", subject="alice": {
        "X-Auth-Token": token(project, role, subject=subject)
    }
    return client


async def ok(resp, status: int = 200):
    assert resp.status == status, await resp.text()
    return await resp.json() if resp.content_type == "application/json" else await resp.read()


async def cts_error(resp, status: int, code: str) -> str:
    assert resp.status == status, await resp.text()
    body = await resp.json()
    assert set(body) == {"error_code", "error_msg"} and body["error_code"] == code, body
    return body["error_msg"]


async def all_traces(client, project: str = "p1", headers=None, **params) -> list[dict]:
    body = await ok(
        await client.get(f"/v3/{project}/traces", params={"limit": 200, **params}, headers=headers or client.as_())
    )
    assert "marker" not in body["meta_data"] and body["meta_data"]["count"] == len(body["traces"])
    return body["traces"]


async def stored(client, project: str = "p1") -> tuple[AuditEvent, ...]:
    """Every event of the project, read through the store itself (not the API)."""
    return await client.audit_store.list(project, AuditQuery(), 10_000)


def ms(moment: dt.datetime) -> int:
    return int(moment.timestamp() * 1000)


def pem_bodies(*pems: str | bytes) -> list[str]:
    """The base64 lines of PEM blocks (what would give a key away even without its header)."""
    lines = []
    for pem in pems:
        text = pem.decode() if isinstance(pem, bytes) else pem
        lines += [ln for ln in text.splitlines() if ln and not ln.startswith("-----") and len(ln) >= 24]
    return lines


# -- the walk ------------------------------------------------------------------------------------------------


class Walk:
    """Each step: a distinct X-Request-Id, the clock one minute on, and the event it must leave."""

    def __init__(self, client) -> None:
        self.client = client
        self.expected: list[dict] = []

    async def step(
        self,
        method: str,
        path: str,
        *,
        who: dict,
        status: int,
        action: str,
        obj=None,
        body=None,
        actor: str = "alice",
        headers: dict | None = None,
    ):
        self.client.clock.now += dt.timedelta(minutes=1)
        rid = f"walk-{len(self.expected):02d}-{action}"
        resp = await self.client.request(
            method, path, json=body, headers={**who, **(headers or {}), "X-Request-Id": rid}
        )
        assert resp.status == status, f"{method} {path}: {await resp.text()}"
        assert resp.headers["X-Request-Id"] == rid
        answer = await resp.json() if resp.content_type == "application/json" else await resp.read()
        object_id = obj(answer) if callable(obj) else obj
        self.expected.append(
            {"action": action, "object_id": object_id, "request_id": rid, "actor": actor, "time": self.client.clock.now}
        )
        return answer

    def expect_system(self, action: str, object_id: str) -> None:
        self.expected.append(
            {
                "action": action,
                "object_id": object_id,
                "request_id": None,
                "actor": "system:order-worker",
                "time": self.client.clock.now,
            }
        )


async def walk_every_dialect(client) -> tuple[Walk, dict]:
    """A representative change of each kind through every dialect; returns the walk and the secrets it handled."""
    w = Walk(client)
    alice, bob = client.as_("admin"), client.as_("editor", subject="bob")
    chain = ec_chain()
    upload = {"name": "walk_cert", "cert_content": chain.bundle(), "private_key": chain.leaf.key_pem()}
    # APIC: create, update, attach, detach, delete
    cert = await w.step(
        "POST", APIC, who=alice, status=200, body=upload, action="apic.certificate.create", obj=lambda a: a["id"]
    )
    cert_id = cert["id"]
    await w.step(
        "PUT",
        f"{APIC}/{cert_id}",
        who=alice,
        status=200,
        body={**upload, "name": "walk_cert_2"},
        action="apic.certificate.update",
        obj=cert_id,
    )
    domains = {"domains": [{"domain": "ec.example.com"}]}
    await w.step(
        "POST",
        f"{APIC}/{cert_id}/domains/attach",
        who=alice,
        status=204,
        body=domains,
        action="apic.certificate.attach_domains",
        obj=cert_id,
    )
    await w.step(
        "POST",
        f"{APIC}/{cert_id}/domains/detach",
        who=alice,
        status=204,
        body=domains,
        action="apic.certificate.detach_domains",
        obj=cert_id,
    )
    await w.step("DELETE", f"{APIC}/{cert_id}", who=alice, status=204, action="apic.certificate.delete", obj=cert_id)
    # CCM: CA create, disable, enable; issue, export (PEM with the key, and PKCS#12), revoke
    ca_id = (
        await w.step(
            "POST", CAS, who=alice, status=200, body=ROOT_CA, action="ccm.authority.create", obj=lambda a: a["ca_id"]
        )
    )["ca_id"]
    await w.step("POST", f"{CAS}/{ca_id}/disable", who=alice, status=204, action="ccm.authority.disable", obj=ca_id)
    await w.step("POST", f"{CAS}/{ca_id}/enable", who=alice, status=204, action="ccm.authority.enable", obj=ca_id)
    issue = {
        "issuer_id": ca_id,
        "key_algorithm": "EC256",
        "distinguished_name": {"common_name": "walk.example.com"},
        "validity": {"type": "DAY", "value": 30},
    }
    pcert = (
        await w.step(
            "POST",
            CERTS,
            who=bob,
            status=200,
            body=issue,
            action="ccm.certificate.issue",
            obj=lambda a: a["certificate_id"],
            actor="bob",
        )
    )["certificate_id"]
    exported = await w.step(
        "POST",
        f"{CERTS}/{pcert}/export",
        who=bob,
        status=200,
        body={"type": "OTHER"},
        action="ccm.certificate.export",
        obj=pcert,
        actor="bob",
    )
    assert "PRIVATE KEY" in exported["private_key"]
    await w.step(
        "POST",
        f"{CERTS}/{pcert}/export",
        who=bob,
        status=200,
        body={"type": "IIS", "password": EXPORT_PASSWORD},
        action="ccm.certificate.export",
        obj=pcert,
        actor="bob",
    )
    await w.step(
        "POST",
        f"{CERTS}/{pcert}/revoke",
        who=alice,
        status=204,
        body={"reason": "KEY_COMPROMISE"},
        action="ccm.certificate.revoke",
        obj=pcert,
    )
    # Notary: CA create; submit, sign, revoke, delete; submit, reject
    nca = (
        await w.step(
            "POST",
            NCAS,
            who=alice,
            status=201,
            body={"self_signed": True, "common_name": "Walk Notary CA", "key_algorithm": "EC256"},
            action="notary.authority.create",
            obj=lambda a: a["result"]["id"],
        )
    )["result"]["id"]
    csr1 = make_csr(cn="one.example.com", dns=("one.example.com",))[0]
    req1 = (
        await w.step(
            "POST",
            NREQS,
            who=bob,
            status=201,
            body={"csr": csr1},
            action="notary.request.submit",
            obj=lambda a: a["result"]["id"],
            actor="bob",
        )
    )["result"]["id"]
    await w.step(
        "POST",
        f"{NREQS}/{req1}/sign",
        who=alice,
        status=200,
        body={"certificate_authority_id": nca},
        action="notary.request.sign",
        obj=req1,
    )
    await w.step(
        "POST", f"{NREQS}/{req1}/certificate/revoke", who=alice, status=200, action="notary.request.revoke", obj=req1
    )
    await w.step(
        "DELETE", f"{NREQS}/{req1}", who=bob, status=200, action="notary.request.delete", obj=req1, actor="bob"
    )
    csr2 = make_csr(cn="two.example.com", dns=("two.example.com",))[0]
    req2 = (
        await w.step(
            "POST",
            NREQS,
            who=bob,
            status=201,
            body={"csr": csr2},
            action="notary.request.submit",
            obj=lambda a: a["result"]["id"],
            actor="bob",
        )
    )["result"]["id"]
    await w.step("POST", f"{NREQS}/{req2}/reject", who=alice, status=200, action="notary.request.reject", obj=req2)
    # Barbican: an asymmetric order with a pass phrase, the worker completes it, the key is read, all deleted
    meta = {"name": "walk keys", "algorithm": "ec", "bit_length": 256, "pass_phrase": PASS_PHRASE}
    order_ref = (
        await w.step(
            "POST",
            "/v1/orders",
            who=bob,
            status=202,
            body={"type": "asymmetric", "meta": meta},
            action="barbican.order.create",
            obj=lambda a: a["order_ref"].rsplit("/", 1)[1],
            actor="bob",
        )
    )["order_ref"]
    order_id = order_ref.rsplit("/", 1)[1]
    client.clock.now += dt.timedelta(minutes=1)
    assert await client.app_[ORDER_WORKER].run_once() == 1
    w.expect_system("barbican.order.complete", order_id)
    order = await ok(await client.get(f"/v1/orders/{order_id}", headers=bob))
    container_id = order["container_ref"].rsplit("/", 1)[1]
    container = await ok(await client.get(f"/v1/containers/{container_id}", headers=bob))
    refs = {r["name"]: r["secret_ref"].rsplit("/", 1)[1] for r in container["secret_refs"]}
    key_pem = await w.step(
        "GET",
        f"/v1/secrets/{refs['private_key']}/payload",
        who=bob,
        status=200,
        action="barbican.secret.read_payload",
        obj=refs["private_key"],
        actor="bob",
        headers={"Accept": "text/plain"},
    )
    assert b"ENCRYPTED PRIVATE KEY" in key_pem
    await w.step(
        "DELETE",
        f"/v1/containers/{container_id}",
        who=bob,
        status=204,
        action="barbican.container.delete",
        obj=container_id,
        actor="bob",
    )
    await w.step(
        "DELETE",
        f"/v1/secrets/{refs['private_key']}",
        who=bob,
        status=204,
        action="barbican.secret.delete",
        obj=refs["private_key"],
        actor="bob",
    )
    await w.step(
        "DELETE",
        f"/v1/orders/{order_id}",
        who=bob,
        status=204,
        action="barbican.order.delete",
        obj=order_id,
        actor="bob",
    )
    secrets = {
        "pem_bodies": pem_bodies(chain.leaf.key_pem(), exported["private_key"], key_pem, chain.leaf.pem),
        "texts": [PASS_PHRASE, EXPORT_PASSWORD, alice["X-Auth-Token"], bob["X-Auth-Token"]],
    }
    return w, secrets


async def test_a_walk_through_every_dialect_is_on_the_trail(trail):
    walk, _ = await walk_every_dialect(trail)
    traces = await all_traces(trail)
    assert len(traces) == len(walk.expected)  # one event per change, no more
    # newest first: the walk moved the clock on before every step
    assert [t["time"] for t in traces] == sorted((t["time"] for t in traces), reverse=True)
    by_request = {t["request_id"]: t for t in traces if t["request_id"]}
    services = {"apic": "APIC", "ccm": "CCM", "notary": "NOTARY", "barbican": "BARBICAN"}
    for want in walk.expected:
        if want["request_id"] is None:
            (got,) = [t for t in traces if t["trace_name"] == want["action"]]
            assert got["trace_type"] == "SystemAction" and got["request_id"] is None
            assert got["user"] == {"name": "system:order-worker", "roles": []}
        else:
            got = by_request[want["request_id"]]
            assert got["trace_type"] == "ApiCall"
            assert got["user"]["name"] == want["actor"]
            assert got["user"]["roles"] == (["admin"] if want["actor"] == "alice" else ["editor"])
        assert got["trace_name"] == want["action"], want
        assert got["resource_id"] == want["object_id"], want
        assert got["time"] == ms(want["time"]), want
        assert got["service_type"] == services[want["action"].split(".")[0]]
        assert got["trace_rating"] == "normal"
    # a few details that say what changed, without secrets
    named = {t["trace_name"]: t for t in traces}
    assert named["apic.certificate.update"]["resource_name"] == "walk_cert_2"
    assert named["apic.certificate.attach_domains"]["details"]["domains"] == ["ec.example.com"]
    assert named["ccm.authority.disable"]["details"]["status"] == "DISABLED"
    assert named["ccm.certificate.revoke"]["details"]["reason"] == "KEY_COMPROMISE"
    assert named["barbican.order.complete"]["details"]["on_behalf_of"] == "bob"
    assert named["barbican.order.complete"]["details"]["status"] == "ACTIVE"
    exports = [t for t in traces if t["trace_name"] == "ccm.certificate.export"]
    assert {(t["details"]["format"], t["details"]["private_key_included"]) for t in exports} == {
        ("OTHER", True),
        ("IIS", True),
    }
    assert named["notary.authority.create"]["resource_type"] == "private_ca"
    assert named["barbican.secret.read_payload"]["details"]["secret_type"] == "private"


async def test_no_key_material_is_ever_on_the_trail(trail):
    walk, secrets = await walk_every_dialect(trail)
    events = await stored(trail)
    assert len(events) == len(walk.expected)
    dump = json.dumps([repr(e) for e in events]) + repr(events)
    for marker in ("PRIVATE KEY", "-----BEGIN", "CERTIFICATE-----", "BEGIN CERTIFICATE REQUEST"):
        assert marker not in dump
    for line in secrets["pem_bodies"]:
        assert line not in dump, "a PEM body line is on the trail"
    for text in secrets["texts"]:
        assert text not in dump
    # the key's DER, base64 in any line wrapping, is not there either
    key_b64 = "".join(pem_bodies(ec_chain().leaf.key_pem()))
    assert key_b64[:40] not in dump.replace("\\n", "")
    assert base64.b64encode(PASS_PHRASE.encode()).decode() not in dump


# -- who may read it --------------------------------------------------------------------------------------------


async def test_only_admins_of_the_project_read_its_trail(trail, token):
    await ok(await trail.post(CAS, json=ROOT_CA, headers=trail.as_()))
    chain = ec_chain()
    p2_admin = trail.as_("admin", project="p2", subject="carol")
    upload = {"name": "p2_cert", "cert_content": chain.bundle(), "private_key": chain.leaf.key_pem()}
    await ok(await trail.post("/v2/p2/apic/certificates", json=upload, headers={**p2_admin, "X-Request-Id": "p2-1"}))
    p1_events = await stored(trail, "p1")
    assert len(p1_events) == 1
    for role in ("viewer", "editor"):
        msg = await cts_error(await trail.get("/v3/p1/traces", headers=trail.as_(role)), 403, "CTS.0002")
        assert "may not" in msg
    text = await cts_error(await trail.get("/v3/p1/traces", headers=p2_admin), 403, "CTS.0002")
    assert "not valid for this project" in text and p1_events[0].object_id not in text
    theirs = await all_traces(trail, "p2", headers=p2_admin)
    assert [t["trace_name"] for t in theirs] == ["apic.certificate.create"] and theirs[0]["request_id"] == "p2-1"
    p1_ids = {e.id for e in p1_events} | {e.object_id for e in p1_events}
    assert not p1_ids & ({t["trace_id"] for t in theirs} | {t["resource_id"] for t in theirs})
    # p1's own admin sees p1's event and not p2's
    assert [t["resource_id"] for t in await all_traces(trail)] == [p1_events[0].object_id]
    await cts_error(await trail.get("/v3/p1/traces"), 401, "CTS.0002")
    await cts_error(await trail.get("/v3/p1/traces", headers={"X-Auth-Token": "not.a.jwt"}), 401, "CTS.0002")
    await cts_error(await trail.get("/v3/p1/nothing-here", headers=trail.as_()), 404, "CTS.9404")
    await cts_error(await trail.post("/v3/p1/traces", json={}, headers=trail.as_()), 405, "CTS.9404")


BAD_QUERIES = [
    pytest.param({"next": "garbage!"}, "next", id="400 next not a marker"),
    pytest.param(
        {"next": base64.urlsafe_b64encode(b"12.nothex").decode()}, "next", id="400 next well-encoded nonsense"
    ),
    pytest.param({"next": "x" * 500}, "next", id="400 next huge"),
    pytest.param({"limit": "0"}, "limit", id="400 limit 0"),
    pytest.param({"limit": "201"}, "limit", id="400 limit 201"),
    pytest.param({"limit": "ten"}, "limit", id="400 limit not a number"),
    pytest.param({"from": "2000", "to": "1000"}, "from", id="400 from after to"),
    pytest.param({"from": "-1"}, "from", id="400 from negative"),
    pytest.param({"to": str(10**18)}, "to", id="400 to beyond year 9999"),
    pytest.param({"user[$ne]": "x"}, "user[$ne]", id="400 operator syntax"),
    pytest.param({"resource_id.x": "1"}, "resource_id.x", id="400 dotted name"),
    pytest.param({"user": "a\x00b"}, "user", id="400 control character"),
    pytest.param({"trace_name": "a" * 256}, "trace_name", id="400 filter too long"),
    pytest.param([("limit", "1"), ("limit", "2")], "limit", id="400 limit given twice"),
]


@pytest.mark.parametrize(("params", "field"), BAD_QUERIES)
async def test_bad_queries_are_refused_and_change_nothing(trail, params, field):
    await ok(await trail.post(CAS, json=ROOT_CA, headers=trail.as_()))
    before = await stored(trail)
    msg = await cts_error(await trail.get("/v3/p1/traces", params=params, headers=trail.as_()), 400, "CTS.0003")
    assert field in msg
    assert await stored(trail) == before


# -- paging and filters --------------------------------------------------------------------------------------


async def test_pages_return_every_event_exactly_once_newest_first(trail):
    chain = ec_chain()
    upload = {"name": "paged_cert", "cert_content": chain.bundle(), "private_key": chain.leaf.key_pem()}
    cert_id = (await ok(await trail.post(APIC, json=upload, headers=trail.as_())))["id"]
    domains = {"domains": [{"domain": "ec.example.com"}]}
    for n in range(24):
        if n % 3 == 0:
            trail.clock.now += dt.timedelta(seconds=1)  # three changes per second: ties the marker must break
        verb = "attach" if n % 2 == 0 else "detach"
        resp = await trail.post(
            f"{APIC}/{cert_id}/domains/{verb}",
            json=domains,
            headers={**trail.as_(subject="pager"), "X-Request-Id": f"page-{n}"},
        )
        assert resp.status == 204
    everything = await all_traces(trail)
    assert len(everything) == 25
    keys = [(t["time"], t["trace_id"]) for t in everything]
    assert keys == sorted(keys, reverse=True)  # newest first, ids breaking ties
    for size in (1, 4, 7, 25):
        seen, params, pages = [], {"limit": size}, 0
        while True:
            body = await ok(await trail.get("/v3/p1/traces", params=params, headers=trail.as_()))
            pages += 1
            assert body["meta_data"]["count"] == len(body["traces"]) <= size
            seen += [t["trace_id"] for t in body["traces"]]
            if "marker" not in body["meta_data"]:
                break
            params = {"limit": size, "next": body["meta_data"]["marker"]}
        assert seen == [t["trace_id"] for t in everything], size
        assert pages == -(-25 // size)  # a full last page says so: no marker, no empty page after it
    # filters, alone and with the marker
    attaches = await all_traces(trail, trace_name="apic.certificate.attach_domains")
    assert len(attaches) == 12 and {t["trace_name"] for t in attaches} == {"apic.certificate.attach_domains"}
    assert len(await all_traces(trail, resource_id=cert_id)) == 25
    assert len(await all_traces(trail, resource_type="ssl_certificate")) == 25
    assert len(await all_traces(trail, resource_type="private_ca")) == 0
    assert len(await all_traces(trail, user="pager")) == 24
    assert [t["request_id"] for t in await all_traces(trail, request_id="page-7")] == ["page-7"]
    newest, oldest = everything[0]["time"], everything[-1]["time"]
    window = await all_traces(trail, **{"from": oldest + 1000, "to": newest - 1000})
    assert window and all(oldest + 1000 <= t["time"] <= newest - 1000 for t in window)
    assert len(window) == len([t for t in everything if oldest + 1000 <= t["time"] <= newest - 1000])
    first = await ok(await trail.get("/v3/p1/traces", params={"limit": 5, "user": "pager"}, headers=trail.as_()))
    rest = await all_traces(trail, user="pager", next=first["meta_data"]["marker"])
    assert [t["trace_id"] for t in first["traces"] + rest] == [
        t["trace_id"] for t in everything if t["user"]["name"] == "pager"
    ]
    # a marker from somewhere past every event is an empty last page, not an error
    far = encode_marker(AuditMarker(dt.datetime(1971, 1, 1, tzinfo=dt.UTC), "0" * 32))
    assert (await ok(await trail.get("/v3/p1/traces", params={"next": far}, headers=trail.as_())))["traces"] == []


# -- when the audit write fails ---------------------------------------------------------------------------


@pytest.fixture
def second_ferretdb(tmp_path):
    server = FerretDB(tmp_path / "audit-ferretdb")
    try:
        server.start()
    except MongoUnavailable as exc:
        import os

        if os.environ.get("CI"):
            pytest.fail(f"the audit failure test must run in CI: {exc}")
        pytest.skip(f"no FerretDB to stop: {exc}")
    yield server
    server.stop()


@pytest.mark.parametrize("kind", ["sqlite", "mongo"])
async def test_a_failed_audit_write_keeps_the_change_logs_it_and_counts_it(
    aiohttp_client, settings, tmp_path, token, caplog, kind, request
):
    """The audit store breaks after start-up (SQLite: its table is dropped behind its back; MongoDB: its server
    stops); the change must stand and be answered, the event be retried, then logged (no secrets) and counted."""
    if kind == "sqlite":
        path = tmp_path / "audit.db"
        audit = SqliteAuditStore(path)

        def break_store() -> None:
            with sqlite3.connect(path) as conn:
                conn.execute("DROP TABLE audit_events")

        mongo = None
    else:
        server = request.getfixturevalue("second_ferretdb")
        mongo = AsyncMongoClient(server.uri, tz_aware=True, serverSelectionTimeoutMS=300, connectTimeoutMS=300)
        audit = MongoAuditStore(mongo, "gc_audit")
        break_store = server.stop
    app = create_app(settings, audit_store=audit, order_worker=False)
    client = await aiohttp_client(app)
    try:
        headers = {"X-Auth-Token": token("p1", "admin"), "X-Request-Id": "lost-event-1"}
        chain = ec_chain()
        upload = {"name": "kept_cert", "cert_content": chain.bundle(), "private_key": chain.leaf.key_pem()}
        break_store()
        with caplog.at_level(logging.ERROR, logger="gatewaycerts.audit"):
            created = await ok(await client.post(APIC, json=upload, headers=headers))
        assert (await ok(await client.get(f"{APIC}/{created['id']}", headers=headers)))["name"] == "kept_cert"
        (record,) = [r for r in caplog.records if r.name == "gatewaycerts.audit"]
        assert record.levelno == logging.ERROR
        line = record.getMessage()
        assert "after 3 attempts" in line and created["id"] in line and "lost-event-1" in line
        assert "apic.certificate.create" in line and '"actor": "tester"' in line
        assert "BEGIN" not in line and not any(body in line for body in pem_bodies(chain.leaf.key_pem()))
        metrics = await (await client.get("/metrics")).text()
        assert 'gatewaycerts_audit_events_lost_total{action="apic.certificate.create"} 1.0' in metrics
        retried = re.search(
            r'gatewaycerts_store_unavailable_errors_total\{operation="insert",store="audit"\} (\S+)', metrics
        )
        assert retried and float(retried[1]) == 3.0  # three attempts, each a real failure of the store
    finally:
        await client.close()
        if mongo is not None:
            await mongo.close()


async def test_a_client_cannot_put_a_key_on_the_trail_through_a_name(trail):
    key_line = "-----BEGIN PRIVATE KEY----- " + pem_bodies(ec_chain().leaf.key_pem())[0]
    order = {"type": "key", "meta": {"name": key_line, "algorithm": "aes", "bit_length": 256}}
    await ok(await trail.post("/v1/orders", json=order, headers=trail.as_()), 202)
    (event,) = await stored(trail)
    assert event.action == "barbican.order.create" and event.object_name == "[redacted]"
    assert "PRIVATE KEY" not in repr(event) and pem_bodies(ec_chain().leaf.key_pem())[0] not in repr(event)


async def test_on_sqlite_a_ccm_issuance_and_its_event_are_one_write(aiohttp_client, settings, tmp_path, token, caplog):
    """On one SQLite database the CCM issue paths store the certificate and its audit event in one transaction:
    the event is on the trail as soon as the certificate is; when the event cannot be written (its table
    dropped behind the store's back) the issuance fails in the CCM envelope, no certificate is stored, and no
    event is logged as lost (nothing happened)."""
    path = tmp_path / "one.db"
    db = SqliteDatabase(path)
    pca, audit = SqlitePcaStore(db), SqliteAuditStore(db)
    for s in (pca, audit):
        await s.ensure_schema()
    client = await aiohttp_client(create_app(settings, pca_store=pca, audit_store=audit, order_worker=False))
    headers = {"X-Auth-Token": token("p1", "admin")}
    root = {
        "type": "ROOT",
        "distinguished_name": {"common_name": "Joined Root CA"},
        "key_algorithm": "EC256",
        "signature_algorithm": "SHA256",
        "validity": {"type": "YEAR", "value": 5},
    }
    ca_id = (await ok(await client.post("/v1/private-certificate-authorities", json=root, headers=headers)))["ca_id"]
    validity = {"type": "DAY", "value": 10}
    by_csr = {"issuer_id": ca_id, "csr": make_csr(cn="joined.example.com")[0], "validity": validity}
    generated = {
        "issuer_id": ca_id,
        "key_algorithm": "EC256",
        "distinguished_name": {"common_name": "gen.example.com"},
        "validity": validity,
    }
    first = await ok(await client.post("/v1/private-certificates/csr", json=by_csr, headers=headers))
    second = await ok(await client.post("/v1/private-certificates", json=generated, headers=headers))
    events = await audit.list("p1", AuditQuery(object_type="private_certificate"), 10)
    assert {(e.action, e.object_id) for e in events} == {
        ("ccm.certificate.issue_from_csr", first["certificate_id"]),
        ("ccm.certificate.issue", second["certificate_id"]),
    }
    (csr_event,) = [e for e in events if e.object_id == first["certificate_id"]]
    assert csr_event.object_name == "joined.example.com" and csr_event.details["issuer_id"] == ca_id

    with sqlite3.connect(path) as conn:
        conn.execute("DROP TABLE audit_events")
    with caplog.at_level(logging.ERROR, logger="gatewaycerts.audit"):
        for path_, body in (("/v1/private-certificates/csr", by_csr), ("/v1/private-certificates", generated)):
            resp = await client.post(path_, json=body, headers=headers)
            assert resp.status >= 500, await resp.text()
            assert set(await resp.json()) == {"error_code", "error_msg"}  # the CCM envelope
    listed = await ok(await client.get("/v1/private-certificates", params={"limit": 10}, headers=headers))
    assert sorted(c["certificate_id"] for c in listed["certificates"]) == sorted(
        [first["certificate_id"], second["certificate_id"]]
    )
    assert not [r for r in caplog.records if r.name == "gatewaycerts.audit"]
