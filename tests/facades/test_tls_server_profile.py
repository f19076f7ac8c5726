"""The TLS server profile on every issuance path, against both real stores (issue 16).

A leaf that names a DNS name or an IP address carries id-kp-serverAuth when its request asks for no extended
key usage; a request that asks for usages gets exactly those; a serverAuth leaf valid for more than 825 days
is refused in each dialect's own envelope, naming the limit, before anything is stored or a serial reserved.
CA certificates are unchanged. Paths: CCM with a generated key and from a CSR, Notary's signing of a
certificate request, and Barbican certificate orders (custom, simple-cmc, stored-key) through the worker.
"""

from __future__ import annotations

import base64
import ipaddress
from dataclasses import dataclass, field

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from gatewaycerts.app import create_app
from gatewaycerts.appkeys import ORDER_WORKER
from gatewaycerts.domain.orders import Order, OrderStatus, OrderType
from tests.factories import MovableClock

CAS, CERTS = "/v1/private-certificate-authorities", "/v1/private-certificates"
REQS, ORDERS = "/api/v1/certificate_requests", "/v1/orders"
HOST = "tls.example.com"
SERVER, CLIENT, OCSP = (
    ExtendedKeyUsageOID.SERVER_AUTH,
    ExtendedKeyUsageOID.CLIENT_AUTH,
    ExtendedKeyUsageOID.OCSP_SIGNING,
)
LIMIT = "at most 825 days"


class CountingPcaStore:
    """The real private-CA store, counting the serials reserved through it (a pass-through, not a fake)."""

    def __init__(self, inner) -> None:
        self._inner = inner
        self.serials = 0

    async def reserve_serial(self, issuer_key: str, serial_number: str) -> None:
        await self._inner.reserve_serial(issuer_key, serial_number)
        self.serials += 1

    async def insert_certificate_reserving_serial(self, issuer_key: str, cert, *, audit=None) -> bool:
        reserved = await self._inner.insert_certificate_reserving_serial(issuer_key, cert, audit=audit)
        self.serials += reserved
        return reserved

    def __getattr__(self, name: str):
        return getattr(self._inner, name)


@pytest.fixture
async def app_client(aiohttp_client, settings, every_store):
    certificates, pca, orders, audit = every_store
    counting = CountingPcaStore(pca)
    clock = MovableClock()
    app = create_app(
        settings,
        store=certificates,
        pca_store=counting,
        order_store=orders,
        audit_store=audit,
        clock=clock,
        order_worker=False,
    )
    client = await aiohttp_client(app)
    client.pca, client.orders, client.worker, client.clock = counting, orders, app[ORDER_WORKER], clock
    return client


@dataclass(frozen=True)
class Ask:
    """What a request asks for, in terms every dialect can say."""

    names: tuple[str, ...] = ("dns",)  # "dns", "ip", "email"
    eku: tuple[str, ...] = ()  # "server", "client", "ocsp"; () asks for none
    days: int = 90
    ca: bool = False  # a CA certificate (CCM's INTERMEDIATE_CA from a CSR)


@dataclass
class Outcome:
    cert: x509.Certificate | None = None
    status: int | None = None
    error: dict = field(default_factory=dict)


def _general_names(names: tuple[str, ...]) -> list[x509.GeneralName]:
    table = {
        "dns": x509.DNSName(HOST),
        "ip": x509.IPAddress(ipaddress.ip_address("192.0.2.7")),
        "email": x509.RFC822Name("ops@example.com"),
    }
    return [table[n] for n in names]


def _csr(ask: Ask) -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    builder = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, HOST if "dns" in ask.names else "Ops Team")])
    )
    builder = builder.add_extension(x509.SubjectAlternativeName(_general_names(ask.names)), critical=False)
    if ask.eku:
        oids = {"server": SERVER, "client": CLIENT, "ocsp": OCSP}
        builder = builder.add_extension(x509.ExtendedKeyUsage([oids[u] for u in ask.eku]), critical=False)
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode()


async def _outcome(resp, pem_of) -> Outcome:
    data = await resp.json()
    if resp.status >= 300:
        return Outcome(status=resp.status, error=data)
    return Outcome(cert=x509.load_pem_x509_certificate((await pem_of(data)).encode()))


# -- the paths: each issues for an Ask and says how many objects the path has created --------------------------


class Ccm:
    name = "ccm"

    async def count(self, c, h) -> int:
        return (await (await c.get(CERTS, headers=h)).json())["total"]

    async def _pem(self, c, h, data) -> str:
        exported = await c.post(f"{CERTS}/{data['certificate_id']}/export", json={"type": "OTHER"}, headers=h)
        return (await exported.json())["certificate"]

    async def issue(self, c, h, ca_id: str, ask: Ask) -> Outcome:
        types = {"dns": ("DNS", HOST), "ip": ("IP", "192.0.2.7"), "email": ("EMAIL", "ops@example.com")}
        body = {
            "issuer_id": ca_id,
            "key_algorithm": "EC256",
            "distinguished_name": {"common_name": HOST},
            "validity": {"type": "DAY", "value": ask.days},
            "subject_alternative_names": [{"type": types[n][0], "value": types[n][1]} for n in ask.names],
        }
        if ask.eku:
            body["extended_key_usage"] = {f"{u}_auth": True for u in ask.eku}
        resp = await c.post(CERTS, json=body, headers=h)
        return await _outcome(resp, lambda data: self._pem(c, h, data))


class CcmCsr(Ccm):
    name = "ccm-csr"

    async def issue(self, c, h, ca_id: str, ask: Ask) -> Outcome:
        body = {"issuer_id": ca_id, "csr": _csr(ask), "validity": {"type": "DAY", "value": ask.days}}
        if ask.ca:
            body["type"] = "INTERMEDIATE_CA"
        resp = await c.post(f"{CERTS}/csr", json=body, headers=h)
        return await _outcome(resp, lambda data: self._pem(c, h, data))


class Notary:
    name = "notary"

    async def _requests(self, c, h) -> list[dict]:
        return (await (await c.get(REQS, headers=h)).json())["result"]

    async def count(self, c, h) -> int:
        """Requests holding a certificate."""
        return sum(1 for r in await self._requests(c, h) if r["certificate_chain"])

    async def issue(self, c, h, ca_id: str, ask: Ask) -> Outcome:
        before = len(await self._requests(c, h))
        resp = await c.post(REQS, json={"csr": _csr(ask)}, headers=h)
        if resp.status != 201:
            assert len(await self._requests(c, h)) == before  # a refused submission stores no request
            return Outcome(status=resp.status, error=await resp.json())
        req_id = (await resp.json())["result"]["id"]
        # submitting is not issuing: a sign refused later leaves the request Outstanding and without a certificate
        resp = await c.post(
            f"{REQS}/{req_id}/sign", json={"certificate_authority_id": ca_id, "validity_days": ask.days}, headers=h
        )
        if resp.status != 200:
            shown = (await (await c.get(f"{REQS}/{req_id}", headers=h)).json())["result"]
            assert shown["status"] == "Outstanding" and not shown["certificate_chain"], shown
            return Outcome(status=resp.status, error=await resp.json())
        chain = (await (await c.get(f"{REQS}/{req_id}", headers=h)).json())["result"]["certificate_chain"]
        return Outcome(cert=x509.load_pem_x509_certificates(chain.encode())[0])


class Barbican:
    """A certificate order, fulfilled by the worker."""

    name = "barbican-custom"

    async def count(self, c, h) -> int:
        return (await (await c.get(ORDERS, headers=h)).json())["total"]

    def meta(self, ask: Ask) -> dict:
        names = {"dns": HOST, "ip": "IP:192.0.2.7"}
        return {
            "subject_dn": f"CN={HOST},O=Example",
            "subject_alt_names": [names[n] for n in ask.names],
            "validity_days": ask.days,
        }

    async def issue(self, c, h, ca_id: str, ask: Ask) -> Outcome:
        meta = {**self.meta(ask), "ca_id": ca_id}
        if ask.eku:
            meta["profile"] = {("server",): "server", ("client",): "client"}[ask.eku]
        resp = await c.post(ORDERS, json={"type": "certificate", "meta": meta}, headers=h)
        if resp.status != 202:
            return Outcome(status=resp.status, error=await resp.json())
        order_id = (await resp.json())["order_ref"].rsplit("/", 1)[1]
        await c.worker.run_once()
        return await fulfilled_certificate(c, h, order_id)


class BarbicanCmc(Barbican):
    name = "barbican-simple-cmc"

    def meta(self, ask: Ask) -> dict:
        return {"request_type": "simple-cmc", "request_data": base64.b64encode(_csr(ask).encode()).decode()}


class BarbicanStoredKey(Barbican):
    name = "barbican-stored-key"
    container_ref = ""

    def meta(self, ask: Ask) -> dict:
        return {"request_type": "stored-key", "container_ref": self.container_ref, "subject_dn": f"CN={HOST}"}

    async def issue(self, c, h, ca_id: str, ask: Ask) -> Outcome:
        resp = await c.post(
            ORDERS, json={"type": "asymmetric", "meta": {"algorithm": "ec", "bit_length": 256}}, headers=h
        )
        order_id = (await resp.json())["order_ref"].rsplit("/", 1)[1]
        await c.worker.run_once()
        self.container_ref = (await (await c.get(f"{ORDERS}/{order_id}", headers=h)).json())["container_ref"]
        return await super().issue(c, h, ca_id, ask)

    async def count(self, c, h) -> int:
        # the key pair's order is the path's own set-up, not an issuance
        return await super().count(c, h) - (1 if self.container_ref else 0)


async def fulfilled_certificate(c, h, order_id: str) -> Outcome:
    order = await (await c.get(f"{ORDERS}/{order_id}", headers=h)).json()
    if order["status"] != "ACTIVE":
        return Outcome(status=int(order["error_status_code"]), error=order)
    container = await (await c.get(f"/v1/containers/{order['container_ref'].rsplit('/', 1)[1]}", headers=h)).json()
    ref = next(r["secret_ref"] for r in container["secret_refs"] if r["name"] == "certificate")
    pem = await (await c.get(f"/v1/secrets/{ref.rsplit('/', 1)[1]}/payload", headers=h)).text()
    return Outcome(cert=x509.load_pem_x509_certificate(pem.encode()))


PATHS = {p.name: p for p in (Ccm, CcmCsr, Notary, Barbican, BarbicanCmc, BarbicanStoredKey)}
# What each path certifies when its request asks for no usage: serverAuth, with clientAuth where the dialect
# documented both before (CSRs signed by CCM and Notary).
DEFAULT_EKU = {
    "ccm": [SERVER],
    "ccm-csr": [SERVER, CLIENT],
    "notary": [SERVER, CLIENT],
    "barbican-custom": [SERVER],
    "barbican-simple-cmc": [SERVER],
    "barbican-stored-key": [SERVER],
}
ALL = tuple(PATHS)
WITH_VALIDITY = ("ccm", "ccm-csr", "notary", "barbican-custom")  # the paths whose request sets the validity
CSR_PATHS = ("ccm-csr", "notary")


def _issued(eku):
    return ("issued", eku)


def _refused(by_path: dict[str, tuple[int, str | None]], *needles: str):
    return ("refused", by_path, needles)


# The dialects' refusals: (HTTP status, code) — CCM's PCA code, None where the envelope has no code.
TOO_LONG = {
    "ccm": (400, "PCA.1012"),
    "ccm-csr": (400, "PCA.1012"),
    "notary": (400, None),
    "barbican-custom": (400, None),
}

CASES = [
    # (id, paths, ask, expected)
    ("DNS name, no EKU asked: serverAuth", ALL, Ask(), _issued("default")),
    (
        "IP address only, no EKU asked: serverAuth",
        ("ccm", "ccm-csr", "notary", "barbican-custom"),
        Ask(names=("ip",)),
        _issued("default"),
    ),
    ("clientAuth asked: exactly clientAuth", ALL, Ask(eku=("client",)), _issued([CLIENT])),
    (
        "serverAuth asked: exactly serverAuth",
        ("ccm", "ccm-csr", "notary", "barbican-custom"),
        Ask(eku=("server",)),
        _issued([SERVER]),
    ),
    ("825 days, serverAuth by default: issued", WITH_VALIDITY, Ask(days=825), _issued("default")),
    ("826 days, serverAuth by default: refused", WITH_VALIDITY, Ask(days=826), _refused(TOO_LONG, "825 days")),
    (
        "826 days, serverAuth asked: refused",
        WITH_VALIDITY,
        Ask(eku=("server",), days=826),
        _refused(TOO_LONG, "825 days"),
    ),
    (
        "900 days, IP address only: refused",
        ("ccm", "ccm-csr", "notary"),
        Ask(names=("ip",), days=900),
        _refused(TOO_LONG, LIMIT, "900 days"),
    ),
    (
        "900 days, clientAuth only: not a TLS server certificate",
        ("ccm", "ccm-csr", "notary"),
        Ask(eku=("client",), days=900),
        _issued([CLIENT]),
    ),
    # Barbican's custom orders kept their 1-825 days for every profile (documented before this profile)
    (
        "900 days, Barbican client profile: the custom order limit",
        ("barbican-custom",),
        Ask(eku=("client",), days=900),
        _refused({"barbican-custom": (400, None)}, "must be 1 to 825"),
    ),
    ("e-mail only, no EKU asked: CCM certifies none", ("ccm",), Ask(names=("email",), days=1000), _issued(None)),
    (
        "e-mail only, no EKU asked: a CSR gets the dialect's default",
        CSR_PATHS,
        Ask(names=("email",)),
        _issued("default"),
    ),
    (
        "CSR asks for an EKU not issued here: refused",
        CSR_PATHS,
        Ask(eku=("server", "ocsp")),
        _refused({"ccm-csr": (400, "PCA.1020"), "notary": (400, None)}, "1.3.6.1.5.5.7.3.9"),
    ),
    ("CA certificate from a CSR: no EKU, 5 years", ("ccm-csr",), Ask(days=5 * 365, ca=True), _issued(None)),
]
TABLE = [
    pytest.param(path, ask, expected, id=f"{path}: {case_id}")
    for case_id, paths, ask, expected in CASES
    for path in paths
]


async def _ca(c, h) -> str:
    body = {
        "type": "ROOT",
        "distinguished_name": {"common_name": "TLS Profile Root", "organization": "Example"},
        "key_algorithm": "EC256",
        "validity": {"type": "YEAR", "value": 10},
    }
    resp = await c.post(CAS, json=body, headers=h)
    assert resp.status == 200, await resp.text()
    return (await resp.json())["ca_id"]


@pytest.mark.parametrize(("path", "ask", "expected"), TABLE)
async def test_tls_server_profile(app_client, auth, path, ask, expected):
    c, h = app_client, auth()
    ca_id = await _ca(c, h)
    route = PATHS[path]()
    created, serials = await route.count(c, h), c.pca.serials
    outcome = await route.issue(c, h, ca_id, ask)
    if expected[0] == "issued":
        assert outcome.cert is not None, (outcome.status, outcome.error)
        eku = DEFAULT_EKU[path] if expected[1] == "default" else expected[1]
        try:
            found = list(outcome.cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
        except x509.ExtensionNotFound:
            found = None
        assert found == eku
        is_ca = outcome.cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        assert is_ca is ask.ca
        lifetime = outcome.cert.not_valid_after_utc - outcome.cert.not_valid_before_utc
        assert lifetime.days == (ask.days if path in WITH_VALIDITY or ask.ca else 365)
        assert c.pca.serials == serials + 1
        assert await route.count(c, h) == created + 1
        return
    _, by_path, needles = expected
    status, code = by_path[path]
    assert outcome.cert is None and outcome.status == status, outcome
    if path.startswith("ccm"):
        assert set(outcome.error) == {"error_code", "error_msg"} and outcome.error["error_code"] == code
        message = outcome.error["error_msg"]
    elif path == "notary":
        assert set(outcome.error) == {"error"}
        message = outcome.error["error"]
    else:
        assert set(outcome.error) == {"code", "title", "description"} and outcome.error["code"] == status
        message = outcome.error["description"]
    for needle in needles:
        assert needle in message, message
    assert c.pca.serials == serials
    assert await route.count(c, h) == created


async def test_a_stored_order_beyond_825_days_ends_in_error_with_nothing_issued(app_client, auth):
    """The worker holds an order to the profile again: one stored by an older version (or written to the store
    directly) with a serverAuth profile and 900 days fails, naming the limit, and reserves no serial."""
    c, h = app_client, auth()
    ca_id = await _ca(c, h)
    now = c.clock()
    stored = Order(
        id="0190a1b2-0000-7000-8000-0000000000bb",
        project_id="p1",
        type=OrderType.CERTIFICATE,
        meta={"subject_dn": f"CN={HOST}", "subject_alt_names": [HOST], "validity_days": 900, "ca_id": ca_id},
        status=OrderStatus.PENDING,
        creator_id="tester",
        create_time=now,
        update_time=now,
    )
    await c.orders.insert_order(stored)
    serials = c.pca.serials
    assert await c.worker.run_once() == 1
    data = await (await c.get(f"{ORDERS}/{stored.id}", headers=h)).json()
    assert data["status"] == "ERROR" and data["error_status_code"] == "400", data
    assert LIMIT in data["error_reason"] and "container_ref" not in data
    assert c.pca.serials == serials
