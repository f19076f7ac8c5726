"""Every changing route of every dialect is audited, generated from the app's own router (a route added later
without an audit event, or without a recipe here, fails the test): each non-GET route, when it succeeds,
leaves at least one event with its request id, its caller and the action the route stands for; GET routes
leave none, except the reads that hand out key material (a secret's payload). Both stores."""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import json
import ssl

import pytest
from aiohttp.test_utils import TestServer
from cryptography import x509

from gatewaycerts.appkeys import ORDER_WORKER
from gatewaycerts.domain.audit import AuditEvent, AuditQuery
from tests.conftest import app_on
from tests.factories import CertSpec, MovableClock, ca_spec, ec_chain, ec_key, issue, sign_ca_csr
from tests.notary_helpers import make_csr
from tests.routes import dialect_routes

APIC = "/v2/p1/apic/certificates"
CAS, CERTS = "/v1/private-certificate-authorities", "/v1/private-certificates"
NREQS, NCAS = "/api/v1/certificate_requests", "/api/v1/certificate_authorities"
CREDS = "/v3.0/OS-CREDENTIAL/credentials"
VALIDITY = {"type": "DAY", "value": 10}
ACTOR = "matrix-admin"

# POSTs that only read, and why they are not audited (a GET would do, but the dialect says POST).
READ_ONLY = {
    ("POST", "/v1/private-certificates/csr/parse"): "parses the CSR in the body; stores and reveals nothing",
    ("POST", "/v1/private-certificate-authorities/{ca_id}/export"): "the CA's certificate and chain: public",
}
# GETs that are audited: they hand out key material.
AUDITED_READS = {("GET", "/v1/secrets/{uuid}/payload"): "barbican.secret.read_payload"}


class World:
    """Project p1, built through the API as its admin would; each helper makes a fresh object."""

    def __init__(self, client, app, clock, audit_store, headers) -> None:
        self.client, self.app, self.clock, self.audit_store, self.headers = client, app, clock, audit_store, headers
        self.counter = itertools.count()
        self.outside_root = issue(ca_spec("Outside Root"), ec_key("secp384r1", 70))
        self.outside_inter = issue(ca_spec("Outside Issuing CA"), ec_key("secp256r1", 71), self.outside_root)

    acme_port = 0  # a second replica serving the ACME directories over TLS (the world fixture starts it)

    async def acme_directory(self) -> str:
        """The ACME directory of a fresh p1 CA (no EAB), for the ACME client's account routes."""
        ca = await self.root()
        policy = {"enabled": True, "eab_required": False, "allowed_domains": ["example.com"]}
        await self.call("PUT", f"{CAS}/{ca}/acme", policy)
        return f"https://127.0.0.1:{self.acme_port}/acme/{ca}/directory"

    async def acme_account(self) -> dict:
        return {"directory_url": await self.acme_directory(), "terms_agreed": True}

    def unique(self, prefix: str) -> str:
        return f"{prefix}{next(self.counter)}"

    async def call(self, method: str, path: str, body=None, status: int = 200, headers: dict | None = None):
        resp = await self.client.request(method, path, json=body, headers={**self.headers, **(headers or {})})
        assert resp.status == status, f"{method} {path}: {resp.status} {await resp.text()}"
        return await resp.json() if resp.content_type == "application/json" else await resp.read()

    # -- APIC
    def upload(self) -> dict:
        chain = ec_chain()
        return {"name": self.unique("cert_"), "cert_content": chain.bundle(), "private_key": chain.leaf.key_pem()}

    async def apic_cert(self) -> str:
        return (await self.call("POST", APIC, self.upload()))["id"]

    async def bound_cert(self) -> str:
        cert = await self.apic_cert()
        await self.call("POST", f"{APIC}/{cert}/domains/attach", {"domains": [{"domain": "ec.example.com"}]}, 204)
        return cert

    # -- CAs (one registry for CCM, Notary and Barbican)
    def root_body(self) -> dict:
        return {
            "type": "ROOT",
            "key_algorithm": "EC256",
            "distinguished_name": {"common_name": self.unique("Matrix Root ")},
            "validity": {"type": "YEAR", "value": 2},
            "crl_configuration": {"enabled": True},
        }

    async def root(self) -> str:
        return (await self.call("POST", CAS, self.root_body()))["ca_id"]

    async def disabled_ca(self) -> str:
        ca = await self.root()
        await self.call("POST", f"{CAS}/{ca}/disable", status=204)
        return ca

    async def deleted_ca(self) -> str:
        ca = await self.disabled_ca()
        await self.call("DELETE", f"{CAS}/{ca}", status=204)
        return ca

    async def pending_ca(self) -> str:
        body = {
            "type": "SUBORDINATE",
            "key_algorithm": "EC256",
            "distinguished_name": {"common_name": self.unique("Matrix Pending ")},
        }
        return (await self.call("POST", CAS, body))["ca_id"]

    async def sub_ca(self) -> str:
        body = {
            "type": "SUBORDINATE",
            "issuer_id": await self.root(),
            "key_algorithm": "EC256",
            "distinguished_name": {"common_name": self.unique("Matrix Sub ")},
            "validity": VALIDITY,
        }
        return (await self.call("POST", CAS, body))["ca_id"]

    def sign_outside(self, csr_pem: str) -> str:
        """An outside root signs a pending CA's CSR (a CA certificate)."""
        return sign_ca_csr(csr_pem, self.outside_root)

    async def pending_csr(self, ca: str) -> str:
        return (await self.call("GET", f"{CAS}/{ca}/csr"))["csr"]

    # -- private certificates
    async def pcert(self) -> str:
        body = {
            "issuer_id": await self.root(),
            "key_algorithm": "EC256",
            "distinguished_name": {"common_name": f"{self.unique('host')}.example.com"},
            "validity": VALIDITY,
        }
        return (await self.call("POST", CERTS, body))["certificate_id"]

    async def revoked_pcert(self) -> str:
        cert = await self.pcert()
        await self.call("POST", f"{CERTS}/{cert}/revoke", {}, 204)
        return cert

    # -- certificate requests
    def csr(self) -> tuple[str, object]:
        cn = f"{self.unique('req')}.example.com"
        return make_csr(cn=cn, dns=(cn,))

    async def request(self) -> tuple[str, object, str]:
        csr, key = self.csr()
        req = (await self.call("POST", NREQS, {"csr": csr}, 201))["result"]["id"]
        return req, key, csr

    async def signed_request(self) -> str:
        req, _, _ = await self.request()
        await self.call("POST", f"{NREQS}/{req}/sign", {"certificate_authority_id": await self.root()})
        return req

    def outside_chain_for(self, key, csr_pem: str) -> str:
        cn = x509.load_pem_x509_csr(csr_pem.encode()).subject.rfc4514_string().split("CN=")[1].split(",")[0]
        leaf = issue(CertSpec(cn=cn, dns=(cn,)), key, self.outside_inter)
        return leaf.pem + self.outside_inter.pem + self.outside_root.pem

    async def uploaded_request(self) -> str:
        req, key, csr = await self.request()
        await self.call("POST", f"{NREQS}/{req}/certificate", {"certificate": self.outside_chain_for(key, csr)}, 201)
        return req

    async def notary_root(self) -> str:
        body = {"self_signed": True, "common_name": self.unique("Matrix Notary "), "key_algorithm": "EC256"}
        return (await self.call("POST", NCAS, body, 201))["result"]["id"]

    async def notary_pending(self) -> str:
        body = {"self_signed": False, "common_name": self.unique("Matrix Notary Sub "), "key_algorithm": "EC256"}
        return (await self.call("POST", NCAS, body, 201))["result"]["id"]

    # -- orders
    async def order(self, type_: str = "key", meta: dict | None = None) -> str:
        meta = meta or {"name": self.unique("key "), "algorithm": "aes", "bit_length": 256}
        ref = (await self.call("POST", "/v1/orders", {"type": type_, "meta": meta}, 202))["order_ref"]
        return ref.rsplit("/", 1)[1]

    async def fulfilled(self, type_: str = "key", meta: dict | None = None) -> dict:
        order = await self.order(type_, meta)
        assert await self.app[ORDER_WORKER].run_once() >= 1
        return await self.call("GET", f"/v1/orders/{order}")

    async def secret(self) -> str:
        return (await self.fulfilled())["secret_ref"].rsplit("/", 1)[1]

    # -- access keys
    async def access_key(self) -> str:
        return (await self.call("POST", CREDS, {"credential": {"role": "viewer"}}, 201))["credential"]["access"]

    async def container(self) -> str:
        meta = {"name": self.unique("pair "), "algorithm": "ec", "bit_length": 256}
        return (await self.fulfilled("asymmetric", meta))["container_ref"].rsplit("/", 1)[1]


async def _apic_update(w: World):
    return "PUT", f"{APIC}/{await w.apic_cert()}", w.upload()


async def _ccm_import(w: World):
    ca = await w.pending_ca()
    body = {"certificate": w.sign_outside(await w.pending_csr(ca)), "certificate_chain": w.outside_root.pem}
    return "POST", f"{CAS}/{ca}/import", body


async def _ccm_issue(w: World):
    body = {
        "issuer_id": await w.root(),
        "key_algorithm": "EC256",
        "distinguished_name": {"common_name": "x.example.com"},
        "validity": VALIDITY,
    }
    return "POST", CERTS, body


async def _ccm_issue_csr(w: World):
    return "POST", f"{CERTS}/csr", {"issuer_id": await w.root(), "csr": w.csr()[0], "validity": VALIDITY}


async def _notary_upload(w: World):
    req, key, csr = await w.request()
    return "POST", f"{NREQS}/{req}/certificate", {"certificate": w.outside_chain_for(key, csr)}


async def _notary_ca_delete(w: World):
    ca = await w.notary_root()
    await w.call("PUT", f"{NCAS}/{ca}", {"enabled": False})
    return "DELETE", f"{NCAS}/{ca}", None


async def _notary_ca_upload(w: World):
    ca = await w.notary_pending()
    chain = w.sign_outside(await w.pending_csr(ca)) + w.outside_root.pem
    return "POST", f"{NCAS}/{ca}/certificate", {"certificate_chain": chain}


GATEWAY_KEYS = "/v2/p1/apic/instances/gw1/gateway-keys"


async def _managed_body(w: World) -> dict:
    return {
        "name": w.unique("managed_"),
        "domains": ["m.example.com"],
        "source": "private_ca",
        "private_ca": {"ca_id": await w.root()},
    }


async def _managed_create(w: World):
    return "POST", "/v2/p1/apic/managed-certificates", await _managed_body(w)


async def _managed_renew(w: World):
    created = await w.call("POST", "/v2/p1/apic/managed-certificates", await _managed_body(w))
    return "POST", f"{APIC}/{created['id']}/renewal/actions/renew", None


async def _acme_account_delete(w: World):
    created = await w.call("POST", "/v2/p1/apic/acme-accounts", await w.acme_account(), 201)
    return "DELETE", f"/v2/p1/apic/acme-accounts/{created['id']}", None


async def _gateway_key_delete(w: World):
    created = await w.call("POST", GATEWAY_KEYS, None, 201)
    return "DELETE", f"{GATEWAY_KEYS}/{created['id']}", None


WEBHOOKS = "/v2/p1/apic/webhooks"
WEBHOOK_BODY = {"url": "https://hooks.example.com/audit", "events": ["certificate.expired"]}


async def _webhook(w: World) -> str:
    return (await w.call("POST", WEBHOOKS, WEBHOOK_BODY, 201))["id"]


async def _webhook_delete(w: World):
    return "DELETE", f"{WEBHOOKS}/{await _webhook(w)}", None


async def _webhook_test(w: World):
    return "POST", f"{WEBHOOKS}/{await _webhook(w)}/actions/test", None


async def _acme_eab_delete(w: World):
    ca = await w.root()
    kid = (await w.call("POST", f"{CAS}/{ca}/acme/eab-keys", {}, 201))["kid"]
    return "DELETE", f"{CAS}/{ca}/acme/eab-keys/{kid}", None


DNS_CONFIGS = "/v2/p1/apic/dns-update-configs"
DNS_CONFIG = {"server": "192.0.2.53", "zone": "example.com", "tsig_key_name": "k.", "tsig_secret": "c2VjcmV0"}


async def _dns_config_delete(w: World):
    created = await w.call("POST", DNS_CONFIGS, DNS_CONFIG, 201)
    return "DELETE", f"{DNS_CONFIGS}/{created['id']}", None


# (method, route template) -> (prepare: world -> (method, path, body), the action its event must carry)
RECIPES = {
    ("POST", "/v2/{project_id}/apic/acme-accounts"): (
        lambda w: _const_async("POST", "/v2/p1/apic/acme-accounts", w.acme_account()),
        "acme.account.create",
    ),
    ("DELETE", "/v2/{project_id}/apic/acme-accounts/{account_id}"): (_acme_account_delete, "acme.account.delete"),
    ("POST", "/v2/{project_id}/apic/managed-certificates"): (_managed_create, "apic.managed_certificate.create"),
    ("POST", "/v2/{project_id}/apic/certificates/{certificate_id}/renewal/actions/renew"): (
        _managed_renew,
        "apic.managed_certificate.renew",
    ),
    ("POST", "/v2/{project_id}/apic/webhooks"): (
        lambda w: _const("POST", WEBHOOKS, WEBHOOK_BODY),
        "apic.webhook.create",
    ),
    ("DELETE", "/v2/{project_id}/apic/webhooks/{webhook_id}"): (_webhook_delete, "apic.webhook.delete"),
    ("POST", "/v2/{project_id}/apic/webhooks/{webhook_id}/actions/test"): (_webhook_test, "apic.webhook.test"),
    ("PUT", CAS + "/{ca_id}/acme"): (
        lambda w: _path("PUT", CAS + "/{}/acme", w.root(), {"enabled": True, "allowed_domains": ["example.com"]}),
        "acme.policy.update",
    ),
    ("POST", CAS + "/{ca_id}/acme/eab-keys"): (
        lambda w: _path("POST", CAS + "/{}/acme/eab-keys", w.root(), {"valid_days": 3}),
        "acme.eab_key.create",
    ),
    ("DELETE", CAS + "/{ca_id}/acme/eab-keys/{kid}"): (_acme_eab_delete, "acme.eab_key.revoke"),
    ("POST", "/v2/{project_id}/apic/dns-update-configs"): (
        lambda w: _const("POST", DNS_CONFIGS, DNS_CONFIG),
        "dns.update_config.create",
    ),
    ("DELETE", "/v2/{project_id}/apic/dns-update-configs/{config_id}"): (
        _dns_config_delete,
        "dns.update_config.delete",
    ),
    ("POST", "/v2/{project_id}/apic/instances/{instance_id}/gateway-keys"): (
        lambda w: _const("POST", GATEWAY_KEYS),
        "gateway.key.create",
    ),
    ("DELETE", "/v2/{project_id}/apic/instances/{instance_id}/gateway-keys/{key_id}"): (
        _gateway_key_delete,
        "gateway.key.delete",
    ),
    ("POST", "/v2/{project_id}/apic/certificates"): (
        lambda w: _const("POST", APIC, w.upload()),
        "apic.certificate.create",
    ),
    ("PUT", "/v2/{project_id}/apic/certificates/{certificate_id}"): (_apic_update, "apic.certificate.update"),
    ("DELETE", "/v2/{project_id}/apic/certificates/{certificate_id}"): (
        lambda w: _path("DELETE", APIC + "/{}", w.apic_cert()),
        "apic.certificate.delete",
    ),
    ("POST", "/v2/{project_id}/apic/certificates/{certificate_id}/domains/attach"): (
        lambda w: _path(
            "POST", APIC + "/{}/domains/attach", w.apic_cert(), {"domains": [{"domain": "ec.example.com"}]}
        ),
        "apic.certificate.attach_domains",
    ),
    ("POST", "/v2/{project_id}/apic/certificates/{certificate_id}/domains/detach"): (
        lambda w: _path(
            "POST", APIC + "/{}/domains/detach", w.bound_cert(), {"domains": [{"domain": "ec.example.com"}]}
        ),
        "apic.certificate.detach_domains",
    ),
    ("POST", CAS): (lambda w: _const("POST", CAS, w.root_body()), "ccm.authority.create"),
    ("DELETE", CAS + "/{ca_id}"): (lambda w: _path("DELETE", CAS + "/{}", w.disabled_ca()), "ccm.authority.delete"),
    ("POST", CAS + "/{ca_id}/enable"): (
        lambda w: _path("POST", CAS + "/{}/enable", w.disabled_ca()),
        "ccm.authority.enable",
    ),
    ("POST", CAS + "/{ca_id}/disable"): (
        lambda w: _path("POST", CAS + "/{}/disable", w.root()),
        "ccm.authority.disable",
    ),
    ("POST", CAS + "/{ca_id}/restore"): (
        lambda w: _path("POST", CAS + "/{}/restore", w.deleted_ca()),
        "ccm.authority.restore",
    ),
    ("POST", CAS + "/{ca_id}/import"): (_ccm_import, "ccm.authority.import"),
    ("POST", CAS + "/{ca_id}/activate"): (
        lambda w: _activate(w),
        "ccm.authority.activate",
    ),
    ("POST", CAS + "/{ca_id}/revoke"): (
        lambda w: _path("POST", CAS + "/{}/revoke", w.sub_ca(), {"reason": "CERTIFICATE_AUTHORITY_COMPROMISE"}),
        "ccm.authority.revoke",
    ),
    ("POST", CAS + "/{ca_id}/crl/enable"): (
        lambda w: _path("POST", CAS + "/{}/crl/enable", w.root(), {"valid_days": 5}),
        "ccm.authority.enable_crl",
    ),
    ("POST", CAS + "/{ca_id}/crl/disable"): (
        lambda w: _path("POST", CAS + "/{}/crl/disable", w.root()),
        "ccm.authority.disable_crl",
    ),
    ("POST", CERTS): (_ccm_issue, "ccm.certificate.issue"),
    ("POST", CERTS + "/csr"): (_ccm_issue_csr, "ccm.certificate.issue_from_csr"),
    ("DELETE", CERTS + "/{certificate_id}"): (
        lambda w: _path("DELETE", CERTS + "/{}", w.revoked_pcert()),
        "ccm.certificate.delete",
    ),
    ("POST", CERTS + "/{certificate_id}/export"): (
        lambda w: _path("POST", CERTS + "/{}/export", w.pcert(), {"type": "OTHER"}),
        "ccm.certificate.export",
    ),
    ("POST", CERTS + "/{certificate_id}/revoke"): (
        lambda w: _path("POST", CERTS + "/{}/revoke", w.pcert(), {"reason": "SUPERSEDED"}),
        "ccm.certificate.revoke",
    ),
    ("POST", CERTS + "/{certificate_id}/import-to-apic"): (
        lambda w: _path("POST", CERTS + "/{}/import-to-apic", w.pcert(), {"name": w.unique("imported_")}),
        "ccm.certificate.import_to_apic",
    ),
    ("POST", NREQS): (lambda w: _const("POST", NREQS, {"csr": w.csr()[0]}), "notary.request.submit"),
    ("DELETE", NREQS + "/{id}"): (
        lambda w: _path("DELETE", NREQS + "/{}", _first(w.request())),
        "notary.request.delete",
    ),
    ("POST", NREQS + "/{id}/sign"): (lambda w: _sign_request(w), "notary.request.sign"),
    ("POST", NREQS + "/{id}/certificate"): (_notary_upload, "notary.request.upload_certificate"),
    ("DELETE", NREQS + "/{id}/certificate"): (
        lambda w: _path("DELETE", NREQS + "/{}/certificate", w.uploaded_request()),
        "notary.request.delete_certificate",
    ),
    ("POST", NREQS + "/{id}/reject"): (
        lambda w: _path("POST", NREQS + "/{}/reject", _first(w.request())),
        "notary.request.reject",
    ),
    ("POST", NREQS + "/{id}/certificate/revoke"): (
        lambda w: _path("POST", NREQS + "/{}/certificate/revoke", w.signed_request(), {"reason": "KEY_COMPROMISE"}),
        "notary.request.revoke",
    ),
    ("POST", NCAS): (
        lambda w: _const("POST", NCAS, {"self_signed": True, "common_name": w.unique("N "), "key_algorithm": "EC256"}),
        "notary.authority.create",
    ),
    ("PUT", NCAS + "/{id}"): (
        lambda w: _path("PUT", NCAS + "/{}", w.notary_root(), {"enabled": False}),
        "notary.authority.disable",
    ),
    ("DELETE", NCAS + "/{id}"): (_notary_ca_delete, "notary.authority.delete"),
    ("POST", NCAS + "/{id}/sign"): (lambda w: _notary_sign(w), "notary.authority.sign"),
    ("POST", NCAS + "/{id}/certificate"): (_notary_ca_upload, "notary.authority.upload_certificate"),
    ("POST", NCAS + "/{id}/revoke"): (
        lambda w: _path("POST", NCAS + "/{}/revoke", w.sub_ca()),
        "notary.authority.revoke",
    ),
    ("POST", "/v1/orders"): (
        lambda w: _const("POST", "/v1/orders", {"type": "key", "meta": {"algorithm": "aes", "bit_length": 128}}),
        "barbican.order.create",
    ),
    ("DELETE", "/v1/orders/{uuid}"): (lambda w: _path("DELETE", "/v1/orders/{}", w.order()), "barbican.order.delete"),
    ("DELETE", "/v1/secrets/{uuid}"): (
        lambda w: _path("DELETE", "/v1/secrets/{}", w.secret()),
        "barbican.secret.delete",
    ),
    ("DELETE", "/v1/containers/{uuid}"): (
        lambda w: _path("DELETE", "/v1/containers/{}", w.container()),
        "barbican.container.delete",
    ),
    ("POST", "/v1/cas/{ca_id}/set-preferred"): (
        lambda w: _path("POST", "/v1/cas/{}/set-preferred", w.root()),
        "barbican.ca.set_preferred",
    ),
    ("GET", "/v1/secrets/{uuid}/payload"): (
        lambda w: _path("GET", "/v1/secrets/{}/payload", w.secret()),
        "barbican.secret.read_payload",
    ),
    ("POST", CREDS): (lambda w: _const("POST", CREDS, {"credential": {"role": "editor"}}), "iam.credential.create"),
    ("PUT", CREDS + "/{access}"): (
        lambda w: _path("PUT", CREDS + "/{}", w.access_key(), {"credential": {"status": "inactive"}}),
        "iam.credential.update",
    ),
    ("DELETE", CREDS + "/{access}"): (
        lambda w: _path("DELETE", CREDS + "/{}", w.access_key()),
        "iam.credential.delete",
    ),
}


async def _const(method: str, path: str, body=None):
    return method, path, body


async def _const_async(method: str, path: str, body):
    return method, path, await body


async def _path(method: str, template: str, object_id, body=None):
    return method, template.format(await object_id), body


async def _first(awaitable):
    return (await awaitable)[0]


async def _activate(w: World):
    ca = await w.pending_ca()
    return "POST", f"{CAS}/{ca}/activate", {"issuer_id": await w.root(), "validity": VALIDITY}


async def _sign_request(w: World):
    req, _, _ = await w.request()
    return "POST", f"{NREQS}/{req}/sign", {"certificate_authority_id": await w.root()}


async def _notary_sign(w: World):
    ca = await w.notary_pending()
    return "POST", f"{NCAS}/{ca}/sign", {"certificate_authority_id": await w.root()}


def routes(app) -> list[tuple[str, str]]:
    """Every authenticated route of the dialects, as (method, template); `<collection>/` aliases folded in."""
    return sorted({(method, template.rstrip("/") or template) for method, template in dialect_routes(app)})


@pytest.fixture
async def world(aiohttp_client, settings, every_store, token, tmp_path):
    audit = every_store[3]
    clock = MovableClock()
    # The ACME client's account routes register with a real ACME directory over https: a second replica on the
    # same stores serves ours over TLS, and the ACME client may reach loopback and trusts that TLS root.
    tls_root = issue(ca_spec("Matrix TLS Root"), ec_key("secp256r1", 72))
    tls_leaf = issue(
        CertSpec(cn="127.0.0.1", dns=("localhost",), ips=("127.0.0.1",)), ec_key("secp256r1", 73), tls_root
    )
    (tmp_path / "tls.pem").write_text(tls_leaf.pem + tls_root.pem)
    (tmp_path / "tls.key").write_text(tls_leaf.key_pem())
    (tmp_path / "root.pem").write_text(tls_root.pem)
    settings = dataclasses.replace(
        settings, outbound_allowed_cidrs="127.0.0.0/8", acme_ca_bundle=str(tmp_path / "root.pem")
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(tmp_path / "tls.pem", tmp_path / "tls.key")
    acme_replica = TestServer(app_on(settings, every_store))
    await acme_replica.start_server(ssl=context)
    app = app_on(settings, every_store, clock=clock)
    client = await aiohttp_client(app)
    world = World(client, app, clock, audit, {"X-Auth-Token": token("p1", "admin", subject=ACTOR)})
    world.acme_port = acme_replica.port
    yield world
    await acme_replica.close()


async def events_of(world: World, request_id: str) -> tuple[AuditEvent, ...]:
    return await world.audit_store.list("p1", AuditQuery(request_id=request_id), 100)


async def test_every_changing_route_records_an_event_and_reads_record_none(world):
    all_routes = routes(world.app)
    changing = [r for r in all_routes if r[0] != "GET"]
    assert len(changing) >= 40
    missing = [r for r in changing if r not in RECIPES and r not in READ_ONLY]
    assert not missing, f"routes without an audit recipe (add one here, and audit the route): {missing}"
    for n, (method, template) in enumerate([*changing, *AUDITED_READS]):
        if (method, template) in READ_ONLY:
            continue
        prepare, action = RECIPES[(method, template)]
        verb, path, body = await prepare(world)
        assert verb == method, template
        world.clock.now += dt.timedelta(seconds=1)
        rid = f"matrix-{n:03d}"
        resp = await world.client.request(method, path, json=body, headers={**world.headers, "X-Request-Id": rid})
        assert 200 <= resp.status < 300, f"{method} {template}: {resp.status} {await resp.text()}"
        events = await events_of(world, rid)
        assert events, f"{method} {template} succeeded but left no audit event"
        assert action in {e.action for e in events}, (template, [e.action for e in events])
        for e in events:
            assert e.actor == ACTOR and e.roles == ("admin",) and e.request_id == rid and e.project_id == "p1"
            assert e.time == world.clock.now and e.object_id, e
    # POSTs that only read, and GETs (but the audited reads), leave nothing
    pending = await world.pending_ca()  # the one CA state whose CSR can be read
    for n, (method, template) in enumerate(r for r in all_routes if r[0] == "GET" or r in READ_ONLY):
        if (method, template) in AUDITED_READS:
            continue
        path = await fill(world, template, pending)
        body = {"csr": world.csr()[0]} if template.endswith("/csr/parse") else None
        rid = f"read-{n:03d}"
        resp = await world.client.request(method, path, json=body, headers={**world.headers, "X-Request-Id": rid})
        assert resp.status < 500, f"{method} {template}: {resp.status}"
        assert not await events_of(world, rid), f"{method} {template} is a read but left an audit event"
    # and nothing any of this recorded holds key material
    dump = json.dumps([repr(e) for e in await world.audit_store.list("p1", AuditQuery(), 10_000)])
    assert "PRIVATE KEY" not in dump and "-----BEGIN" not in dump
    assert ec_chain().leaf.key_pem().splitlines()[1] not in dump


async def fill(world: World, template: str, pending_ca: str) -> str:
    """The GET route's path with fresh objects of p1 in it."""
    path = template.replace("{project_id}", "p1").replace("{instance_id}", "gw1")
    if "{certificate_id}" in path:
        path = path.replace("{certificate_id}", await (world.apic_cert() if path.startswith("/v2/") else world.pcert()))
    if "{ca_id}" in path:
        ca = pending_ca if path.endswith("/csr") else await world.root()
        path = path.replace("{ca_id}", ca)
    if "{id}" in path:
        if "certificate_requests" in path:
            path = path.replace("{id}", (await world.request())[0])
        else:
            path = path.replace("{id}", await world.notary_root())
    if "{uuid}" in path:
        kind = path.split("/")[2]
        if kind == "orders":
            uuid = await world.order()
        elif kind == "secrets":
            uuid = await world.secret()
        else:
            uuid = await world.container()
        path = path.replace("{uuid}", uuid)
    if "{access}" in path:
        path = path.replace("{access}", await world.access_key())
    if path == "/v1/cas/preferred":
        await world.call("POST", f"/v1/cas/{await world.root()}/set-preferred", status=204)
    return path
