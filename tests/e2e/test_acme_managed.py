"""A managed ACME certificate end to end, every part real: created through the APIC API, issued by Pebble
(http-01 validated through NGINX forwarding to the service's gateway route), bound, served by Caddy on a
handshake (the Caddyfile of docs/gateways.md), renewed by the renewal loop inside Pebble's short profile (ARI
window, `replaces`), and the next handshake serves the renewed chain with the same Caddy process. Then a
renewal that cannot validate: Caddy keeps serving the current chain and the renewal state says why."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp import ClientSession

from gatewaycerts.app import create_app
from gatewaycerts.appkeys import CERTIFICATE_STORE
from gatewaycerts.settings import Settings
from tests.acme.parts import BLOCKED, SHORT_LIFETIME, SHORT_PROFILE, ZONE, Bind, Pebble
from tests.e2e import gateway_harness as gw
from tests.e2e.test_acme_http01 import Nginx
from tests.mongo_server import free_port

PROJECT, INSTANCE = gw.PROJECT, gw.INSTANCE  # the Caddyfile of docs/gateways.md names these
NAME = f"shop.{ZONE}"


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


class _Address:
    def __init__(self, port: int) -> None:
        self.address = f"127.0.0.1:{port}"


async def until(condition, what: str, within: float) -> object:
    """Poll an async condition with a bounded deadline."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    last = None
    while loop.time() < deadline:
        last = await condition()
        if last:
            return last
        await asyncio.sleep(0.2)
    raise AssertionError(f"not within {within}s: {what} (last: {last!r})")


async def test_a_managed_acme_certificate_is_issued_served_renewed_and_served_renewed(
    aiohttp_server, tmp_path: Path, pebble: Pebble, token
):
    settings = Settings(
        state_dir=tmp_path / "state",
        outbound_allowed_cidrs="127.0.0.0/8",
        acme_ca_bundle=str(pebble.ca_bundle),
        renewal_poll_seconds=1,
    )
    app = create_app(settings, order_worker=False)  # the renewal loop runs, as in production
    server = await aiohttp_server(app, host="127.0.0.1", port=free_port())
    base = f"http://127.0.0.1:{server.port}"
    headers = {"X-Auth-Token": token(PROJECT, "admin")}

    async with ClientSession() as http:

        async def call(method: str, path: str, body: dict | None = None, expect: int = 200) -> dict:
            async with http.request(method, f"{base}/v2/{PROJECT}/apic{path}", json=body, headers=headers) as r:
                data = await r.json() if r.status != 204 else {}
                assert r.status == expect, (r.status, data)
                return data

        key = (await call("POST", f"/instances/{INSTANCE}/gateway-keys", expect=201))["key"]
        nginx = Nginx(tmp_path / "nginx", pebble.http_port, base, key, PROJECT, INSTANCE)
        try:
            account = await call(
                "POST", "/acme-accounts", {"directory_url": pebble.directory_url, "terms_agreed": True}, expect=201
            )
            body = {
                "name": "shop_acme",
                "domains": [NAME],
                "source": "acme",
                "acme": {"account_id": account["id"], "challenge": "http-01", "profile": SHORT_PROFILE},
            }
            # A bad reference changes nothing.
            bad = await call(
                "POST", "/managed-certificates", {**body, "acme": {"account_id": "0000000000"}}, expect=400
            )
            assert "acme.account_id" in bad["error_msg"]
            created = await call("POST", "/managed-certificates", body)
            cert_id = created["id"]

            async def renewal() -> dict:
                return await call("GET", f"/certificates/{cert_id}/renewal")

            first = await until(
                lambda: _when(renewal(), lambda r: r["issued"] and r["state"] == "active"), "first issuance", 60
            )
            assert first["renewals"] == 1 and first["window_source"] == "ari"  # Pebble's directory has renewalInfo
            await call(
                "POST",
                f"/certificates/{cert_id}/domains/attach",
                {"domains": [{"domain": NAME, "instance_ids": [INSTANCE]}]},
                expect=204,
            )
            stored = await app[CERTIFICATE_STORE].get(PROJECT, cert_id)
            first_leaf = leaf_fingerprint(stored.chain_pem)
            with gw.caddy(_Address(server.port), key, tmp_path / "caddy") as caddy:
                served = await asyncio.to_thread(gw.outcome, caddy.port, NAME)
                assert served == first_leaf

                # The loop renews inside the CA's window, under the same id; the same Caddy serves the new chain.
                second = await until(
                    lambda: _when(renewal(), lambda r: r["renewals"] >= 2 and r["state"] == "active"),
                    "the renewal inside Pebble's short lifetime",
                    SHORT_LIFETIME * 2,
                )
                assert second["last_error"] is None

                async def serving_the_stored_chain() -> str | None:
                    """The leaf Caddy serves, when it is the one stored now (Pebble's windows open at once, so
                    a further renewal may land between a read of the store and a handshake)."""
                    served = await asyncio.to_thread(gw.outcome, caddy.port, NAME)
                    stored = await app[CERTIFICATE_STORE].get(PROJECT, cert_id)
                    return served if served == leaf_fingerprint(stored.chain_pem) else None

                renewed_leaf = await until(serving_the_stored_chain, "Caddy serving the renewed chain", 20)
                assert renewed_leaf != first_leaf
                assert caddy.proc.poll() is None  # no restart

                # A renewal that cannot validate (no gateway on port 80): the current chain stays and says why.
                nginx.stop()
                await call("POST", f"/certificates/{cert_id}/renewal/actions/renew")
                failing = await until(
                    lambda: _when(renewal(), lambda r: r["state"] == "failing"), "the failed renewal", 60
                )
                assert failing["consecutive_failures"] == 1 and NAME in failing["last_error"]
                assert await until(serving_the_stored_chain, "Caddy serving the current chain", 20)

            # The CA refusing the name stops the loop until the tenant acts, with the CA's words.
            blocked = await call(
                "POST", "/managed-certificates", {**body, "name": "blocked_acme", "domains": [BLOCKED]}
            )
            stopped = await until(
                lambda: _when(call("GET", f"/certificates/{blocked['id']}/renewal"), lambda r: r["state"] == "stopped"),
                "the refused order",
                60,
            )
            assert stopped["last_error"].startswith("rejectedIdentifier") and not stopped["issued"]
        finally:
            nginx.stop()


def leaf_fingerprint(chain_pem: str) -> str:
    return gw.fingerprint(chain_pem.split("-----END CERTIFICATE-----")[0] + "-----END CERTIFICATE-----\n")


async def _when(awaitable, predicate) -> dict | None:
    value = await awaitable
    return value if predicate(value) else None
