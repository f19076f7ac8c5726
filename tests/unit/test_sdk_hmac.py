"""Our SDK-HMAC-SHA256 verifier against Huawei's own signer (huaweicloudsdkcore's Signer): paths with characters
that need encoding, repeated and empty query parameters, bodies, and the parsing of the Authorization header.

A small app runs the shared auth middleware with the real AccessKeyService on a real SQLite store; every request
is signed by the SDK's Signer and sent as the SDK sends it (its path and canonical query, its headers)."""

from __future__ import annotations

import datetime as dt

import pytest
from aiohttp import web
from yarl import URL

from gatewaycerts.appkeys import ACCESS_KEY_SERVICE, PRINCIPAL
from gatewaycerts.auth.middleware import auth_middleware
from gatewaycerts.auth.sdk_hmac import canonical_query, canonical_uri, parse_authorization
from gatewaycerts.core.access_keys import AccessKeyService
from gatewaycerts.domain.errors import AuthenticationError, DomainError
from gatewaycerts.domain.models import Principal, Role
from gatewaycerts.keyvault import KeyVault, new_kek_line, parse_keks
from gatewaycerts.store.sqlite.access_keys import SqliteAccessKeyStore
from tests.factories import MovableClock
from tests.sdk_signing import sign

ADMIN = Principal(subject="admin-1", projects=frozenset({"p1"}), roles=frozenset({Role.ADMIN}))


@pytest.fixture
async def echo(aiohttp_client, tmp_path):
    """An app that answers who signed and what body it read (after the verifier read it for the hash)."""
    store = SqliteAccessKeyStore(tmp_path / "keys.db")
    await store.ensure_schema()
    clock = MovableClock()
    service = AccessKeyService(store, KeyVault(parse_keks(new_kek_line("A"))), clock=clock)
    key, secret = await service.create(ADMIN, "p1", "editor")

    @web.middleware
    async def errors(request, handler):
        try:
            return await handler(request)
        except DomainError as exc:
            return web.json_response(
                {"error": exc.message}, status=401 if isinstance(exc, AuthenticationError) else 403
            )

    async def handler(request: web.Request) -> web.Response:
        principal = request[PRINCIPAL]
        body = await request.text()  # the handler still gets the body the verifier hashed
        return web.json_response({"subject": principal.subject, "roles": sorted(principal.roles), "body": body})

    app = web.Application(middlewares=[errors, auth_middleware])
    app[ACCESS_KEY_SERVICE] = service
    app.router.add_route("*", "/{tail:.*}", handler)
    client = await aiohttp_client(app)
    client.ak, client.sk, client.clock = key.access, secret, clock
    yield client
    await store.close()


async def send(client, signed, *, path: str | None = None, body: bytes | None = None, headers: dict | None = None):
    url = URL(path or signed.uri, encoded=True)
    resp = await client.request(
        signed.method, url, headers={**signed.headers, **(headers or {})}, data=signed.body if body is None else body
    )
    return resp.status, await resp.json()


CASES = [
    ("GET", "/v2/p1/apic/certificates", [], None),
    ("GET", "/v2/p1/apic/certificates/", [("limit", 10), ("name", "a b")], None),
    ("GET", "/v1/private-certificates", [("b", "2"), ("a", "z"), ("a", "y"), ("empty", "")], None),
    ("GET", "/v1/x", [("flag", True), ("list", ["c", "a"]), ("sym", "~!*'();:@&=+$,/?#[]%")], None),
    ("GET", "/v2/p1/apic/certificates/caf%C3%A9%20x", [], None),  # a path parameter the SDK percent-encoded
    ("DELETE", "/v1/secrets/a%2Fb", [], None),  # an encoded slash: the signer splits it like a slash
    ("POST", "/v1/orders", [], b'{"type": "key", "meta": {"name": "\\u00e9t\\u00e9"}}'),
    ("PUT", "/v3.0/OS-CREDENTIAL/credentials/AK", [], b'{"credential": {"status": "inactive"}}'),
    ("POST", "/api/v1/certificate_requests", [], b"{}"),
]


@pytest.mark.parametrize(("method", "path", "query", "body"), CASES, ids=[f"{c[0]} {c[1]}" for c in CASES])
async def test_what_the_sdk_signs_verifies(echo, method, path, query, body):
    signed = sign(
        method,
        f"127.0.0.1:{echo.port}",
        path,
        ak=echo.ak,
        sk=echo.sk,
        when=echo.clock(),
        query=query,
        body=body,
        project="p1",
    )
    status, answer = await send(echo, signed)
    assert status == 200, answer
    assert answer["subject"] == f"ak:{echo.ak}" and answer["roles"] == ["editor"]
    assert answer["body"] == (body or b"").decode()


async def test_the_date_window_is_fifteen_minutes_either_way(echo):
    host = f"127.0.0.1:{echo.port}"
    for offset, ok in ((-15 * 60, True), (15 * 60, True), (-15 * 60 - 1, False), (15 * 60 + 1, False)):
        when = echo.clock() + dt.timedelta(seconds=offset)
        status, answer = await send(echo, sign("GET", host, "/x", ak=echo.ak, sk=echo.sk, when=when))
        assert (status == 200) is ok, (offset, answer)
        if not ok:
            assert "15 minutes" in answer["error"]


async def test_the_verifier_reads_headers_strictly(echo):
    host = f"127.0.0.1:{echo.port}"
    signed = sign("GET", host, "/x", ak=echo.ak, sk=echo.sk, when=echo.clock())
    auth = signed.headers["Authorization"]
    bad = {
        "unsigned host": auth.replace("SignedHeaders=host;", "SignedHeaders="),
        "no signature": auth.split(", Signature=")[0],
        "twice access": auth + ", Access=X",
        "upper-case header names": auth.replace("host;", "Host;"),
        "signature of another secret": auth[:-4] + ("0000" if not auth.endswith("0000") else "1111"),
        "unknown access": auth.replace(echo.ak, "A" * 20),
    }
    for why, value in bad.items():
        status, answer = await send(echo, signed, headers={"Authorization": value})
        assert status == 401, why
        assert echo.sk not in answer["error"]
    status, _ = await send(echo, signed, headers={"X-Sdk-Date": "2026-01-01T00:00:00Z"})
    assert status == 401
    # a date the signer would parse but that is not its one spelling (the signature covers the text)
    status, _ = await send(echo, signed, headers={"X-Sdk-Date": signed.headers["X-Sdk-Date"] + " "})
    assert status == 200  # header values are stripped, as the signer strips them


async def test_a_body_the_signature_does_not_cover_is_refused(echo):
    host = f"127.0.0.1:{echo.port}"
    # the SDK marks non-JSON bodies UNSIGNED-PAYLOAD; every body we take is JSON, so we refuse it
    signed = sign(
        "POST",
        host,
        "/v1/orders",
        ak=echo.ak,
        sk=echo.sk,
        when=echo.clock(),
        body=b'{"a": 1}',
        headers={"Content-Type": "application/octet-stream"},
    )
    assert signed.headers["X-Sdk-Content-Sha256"] == "UNSIGNED-PAYLOAD"
    status, answer = await send(echo, signed)
    assert status == 401 and "UNSIGNED-PAYLOAD" in answer["error"]
    # without a body there is nothing unsigned: the SDK hashes b"" then
    signed = sign("GET", host, "/x", ak=echo.ak, sk=echo.sk, when=echo.clock(), headers={"Content-Type": "text/plain"})
    assert (await send(echo, signed))[0] == 200


def test_canonical_parts_match_the_signers_rules():
    assert canonical_uri("/v1/a%2Fb") == "/v1/a/b/"
    assert canonical_uri("/") == "/"
    assert canonical_uri("/caf%C3%A9") == "/caf%C3%A9/"
    assert canonical_uri("/a b~") == "/a%20b~/"
    assert canonical_query("b=2&a=z&a=y&e=&f") == "a=y&a=z&b=2&e=&f="
    assert canonical_query("x=%2B%20") == "x=%2B%20"
    assert parse_authorization("SDK-HMAC-SHA256 Access=A, SignedHeaders=host;x-sdk-date, Signature=ab") == (
        "A",
        ["host", "x-sdk-date"],
        "ab",
    )
    with pytest.raises(AuthenticationError):
        parse_authorization("SDK-HMAC-SHA256 Access=A, SignedHeaders=host, Signature=ab")
