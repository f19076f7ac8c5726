"""Tenant isolation and roles across every route of every dialect, generated from the app's own router (a
route added later is covered, or the test fails): a token of another project gets 403/404 — exactly what it
gets for ids that exist nowhere, so not even existence leaks — and never a byte of the other project's data;
a viewer changes nothing. Both stores."""

from __future__ import annotations

import re
import uuid

import pytest

from gatewaycerts.app import create_app
from gatewaycerts.appkeys import ORDER_WORKER
from tests.factories import MovableClock, ec_chain
from tests.notary_helpers import make_csr
from tests.routes import dialect_routes

MARK = "tenantA"  # in every name project p1 owns: it must never appear in another project's answers
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[0-9a-f]{32}")


@pytest.fixture
async def world(aiohttp_client, settings, stores, tmp_path, token):
    """Project p1 with one object of every kind, made through the API as its admin would."""
    certificates, pca = stores
    clock = MovableClock()
    app = create_app(settings, store=certificates, pca_store=pca, clock=clock, order_worker=False)
    client = await aiohttp_client(app)
    admin = {"X-Auth-Token": token("p1", "admin")}

    async def post(path: str, body: dict, status: int = 200) -> dict:
        resp = await client.post(path, json=body, headers=admin)
        assert resp.status == status, await resp.text()
        return await resp.json()

    chain = ec_chain()
    ids = {
        "apic": (
            await post(
                "/v2/p1/apic/certificates",
                {"name": f"{MARK}_cert", "cert_content": chain.bundle(), "private_key": chain.leaf.key_pem()},
            )
        )["id"]
    }
    ca = {
        "type": "ROOT",
        "key_algorithm": "EC256",
        "distinguished_name": {"common_name": f"{MARK} root"},
        "validity": {"type": "YEAR", "value": 2},
        "crl_configuration": {"enabled": True},
    }
    ids["ca"] = (await post("/v1/private-certificate-authorities", ca))["ca_id"]
    issue = {
        "issuer_id": ids["ca"],
        "key_algorithm": "EC256",
        "distinguished_name": {"common_name": f"{MARK}.example.com"},
        "validity": {"type": "DAY", "value": 30},
    }
    ids["pcert"] = (await post("/v1/private-certificates", issue))["certificate_id"]
    csr = make_csr(cn=f"{MARK}.example.com", dns=(f"{MARK}.example.com",))[0]
    ids["request"] = (await post("/api/v1/certificate_requests", {"csr": csr}, 201))["result"]["id"]
    order = await post(
        "/v1/orders", {"type": "asymmetric", "meta": {"name": MARK, "algorithm": "ec", "bit_length": 256}}, 202
    )
    ids["order"] = order["order_ref"].rsplit("/", 1)[1]
    await app[ORDER_WORKER].run_once()
    shown = await (await client.get(f"/v1/orders/{ids['order']}", headers=admin)).json()
    ids["container"] = shown["container_ref"].rsplit("/", 1)[1]
    container = await (await client.get(f"/v1/containers/{ids['container']}", headers=admin)).json()
    ids["secret"] = container["secret_refs"][0]["secret_ref"].rsplit("/", 1)[1]
    key = await post("/v3.0/OS-CREDENTIAL/credentials", {"credential": {"role": "viewer", "description": MARK}}, 201)
    ids["access"] = key["credential"]["access"]
    ids["instance"] = "gw1"
    ids["gateway_key"] = (await post("/v2/p1/apic/instances/gw1/gateway-keys", {}, 201))["id"]
    webhook = {"url": f"https://hooks.example.com/{MARK}", "events": ["certificate.expired"], "description": MARK}
    ids["webhook"] = (await post("/v2/p1/apic/webhooks", webhook, 201))["id"]
    ids["acme_account"] = "0" * 26  # no CA here: a viewer is refused before the account is looked up
    ids["dns_config"] = (
        await post(
            "/v2/p1/apic/dns-update-configs",
            {"server": "192.0.2.53", "zone": "example.com", "tsig_key_name": "k.", "tsig_secret": "c2VjcmV0"},
            201,
        )
    )["id"]
    client.ids, client.admin, client.app_ = ids, admin, app
    client.csr, client.chain = csr, chain
    return client


def fill(template: str, ids: dict[str, str]) -> str:
    """The route's path with the p1 object its parameters name."""
    kind_of = {
        "{certificate_id}": "apic" if template.startswith("/v2/") else "pcert",
        "{ca_id}": "ca",
        "{id}": "request" if "certificate_requests" in template else "ca",
        "{access}": "access",
        "{instance_id}": "instance",
        "{key_id}": "gateway_key",
        "{webhook_id}": "webhook",
        "{account_id}": "acme_account",
        "{config_id}": "dns_config",
    }
    path = template.replace("{project_id}", "p1").replace("{kid}", "no-such-kid")
    for param, kind in kind_of.items():
        path = path.replace(param, ids[kind])
    if "{uuid}" in path:
        kind = {"orders": "order", "secrets": "secret", "containers": "container"}[path.split("/")[2]]
        path = path.replace("{uuid}", ids[kind])
    return path


def body_for(method: str, template: str, ids: dict[str, str], client) -> dict | None:
    """A body that passes the route's schema, so that the answer comes from the authorization and the lookup."""
    if method in ("GET", "DELETE"):
        return None
    chain = client.chain
    upload = {"name": f"{MARK}_other", "cert_content": chain.bundle(), "private_key": chain.leaf.key_pem()}
    validity = {"type": "DAY", "value": 10}
    bodies = {
        "/v2/{project_id}/apic/certificates": upload,
        "/v2/{project_id}/apic/certificates/{certificate_id}": upload,
        "/v2/{project_id}/apic/managed-certificates": {
            "name": f"{MARK}_managed",
            "domains": ["m.example.com"],
            "source": "private_ca",
            "private_ca": {"ca_id": ids["ca"]},
        },
        "/domains/attach": {"domains": [{"domain": "ec.example.com"}]},
        "/domains/detach": {"domains": [{"domain": "ec.example.com"}]},
        "/v1/private-certificate-authorities": {
            "type": "SUBORDINATE",
            "issuer_id": ids["ca"],
            "key_algorithm": "EC256",
            "distinguished_name": {"common_name": "sub"},
            "validity": validity,
        },
        "{ca_id}/import": {"certificate": chain.intermediate.pem, "certificate_chain": chain.root.pem},
        "{ca_id}/activate": {"issuer_id": ids["ca"], "validity": validity},
        "/v1/private-certificates": {
            "issuer_id": ids["ca"],
            "key_algorithm": "EC256",
            "distinguished_name": {"common_name": "x.example.com"},
            "validity": validity,
        },
        "/v1/private-certificates/csr": {"issuer_id": ids["ca"], "csr": client.csr, "validity": validity},
        "{certificate_id}/export": {"type": "OTHER"},
        "{certificate_id}/import-to-apic": {"name": "imported"},
        "/v1/orders": {"type": "certificate", "meta": {"ca_id": ids["ca"], "subject_dn": "CN=x.example.com"}},
        "{id}/sign": {"certificate_authority_id": ids["ca"]},
        "certificate_requests/{id}/certificate": {"certificate": chain.bundle("leaf", "intermediate")},
        "certificate_authorities/{id}": {"enabled": False},
        "certificate_authorities/{id}/certificate": {"certificate_chain": chain.bundle("intermediate", "root")},
        "/api/v1/certificate_requests": {"csr": client.csr},
        "/api/v1/certificate_authorities": {"self_signed": True, "common_name": "x"},
        "/csr/parse": {"csr": client.csr},
        "/OS-CREDENTIAL/credentials": {"credential": {"role": "viewer"}},
        "/apic/webhooks": {"url": "https://hooks.example.com/other", "events": ["certificate.expired"]},
        "/OS-CREDENTIAL/credentials/{access}": {"credential": {"status": "inactive"}},
    }
    for suffix, body in bodies.items():
        if template.rstrip("/").endswith(suffix):
            return body
    return {}


def tenant_routes(app) -> list[tuple[str, str]]:
    """Every route of the dialects that names a p1 object (in the path, or in the body of a create that
    references p1's CA); public routes (CRLs) are public by design."""
    return sorted(dialect_routes(app))


async def answer(client, method: str, path: str, headers: dict, body: dict | None) -> tuple[int, str]:
    resp = await client.request(method, path, json=body, headers=headers)
    return resp.status, await resp.text()


def strangers(ids: dict[str, str]) -> dict[str, str]:
    """Ids of the same shapes that exist nowhere."""
    return {k: (str(uuid.uuid4()) if "-" in v else uuid.uuid4().hex) for k, v in ids.items()}


def without_ids(text: str) -> str:
    return UUID.sub("<id>", re.sub(r"request_id:[0-9a-f]+", "request_id:<r>", text))


# POSTs that only read (CCM: parse a CSR, export a CA's certificate): a viewer may
READ_ONLY = {
    ("POST", "/v1/private-certificates/csr/parse"),
    ("POST", "/v1/private-certificate-authorities/{ca_id}/export"),
}
REFERENCES_P1 = (
    "/v1/private-certificate-authorities",
    "/v1/private-certificates",
    "/v1/private-certificates/csr",
    "/v1/orders",
    "/v2/{project_id}/apic/managed-certificates",
)


async def test_another_project_cannot_tell_p1s_objects_from_none(world, token):
    other = {"X-Auth-Token": token("p2", "admin")}
    routes = tenant_routes(world.app_)
    assert len(routes) >= 60
    checked = 0
    for method, template in routes:
        if "{" not in template and not (method == "POST" and template.rstrip("/") in REFERENCES_P1):
            continue  # a collection of the caller's own project (p2): nothing of p1's is named
        real = fill(template, world.ids)
        fake_ids = strangers(world.ids)
        fake = fill(template, fake_ids)
        status, text = await answer(world, method, real, other, body_for(method, template, world.ids, world))
        fake_status, fake_text = await answer(world, method, fake, other, body_for(method, template, fake_ids, world))
        where = f"{method} {template}"
        assert status in (400, 403, 404), f"{where}: {status} {text}"
        assert (status, without_ids(text)) == (fake_status, without_ids(fake_text)), where
        assert MARK not in text and "BEGIN" not in text, f"{where} leaked: {text}"
        checked += 1
    assert checked >= 45


async def test_a_viewer_changes_nothing(world, token):
    viewer = {"X-Auth-Token": token("p1", "viewer")}
    reads = [
        "/v2/p1/apic/certificates",
        f"/v1/private-certificate-authorities/{world.ids['ca']}",
        f"/v1/private-certificates/{world.ids['pcert']}",
        f"/api/v1/certificate_requests/{world.ids['request']}",
        f"/v1/orders/{world.ids['order']}",
        f"/v1/containers/{world.ids['container']}",
        f"/v1/secrets/{world.ids['secret']}",
        f"/v3.0/OS-CREDENTIAL/credentials/{world.ids['access']}",
    ]

    async def snapshot() -> list[str]:
        return [await (await world.get(path, headers=world.admin)).text() for path in reads]

    before = await snapshot()
    refused = 0
    for method, template in tenant_routes(world.app_):
        if method == "GET" or (method, template) in READ_ONLY:
            continue
        path = fill(template, world.ids)
        status, text = await answer(world, method, path, viewer, body_for(method, template, world.ids, world))
        assert status == 403, f"{method} {template}: {status} {text}"
        refused += 1
    assert refused >= 40
    await world.app_[ORDER_WORKER].run_once()
    assert await snapshot() == before
