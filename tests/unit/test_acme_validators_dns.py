"""dns-01 validation, and http-01 / tls-alpn-01 names resolved, through a real DNS server (pebble-challtestsrv)
set as GATEWAYCERTS_ACME_RESOLVER."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from aiohttp import web

from gatewaycerts.connectors.addresses import AddressPolicy, parse_networks
from gatewaycerts.connectors.validators import ChallengeValidators, ValidatorSettings, dns01_txt_value
from gatewaycerts.core.acme.validation import ChallengeToValidate, ChallengeType, IdentifierType, ValidationFailed
from tests.acme_tools import ChallTestSrv, challtestsrv, free_port

TOKEN = "LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0"
KEY_AUTH = TOKEN + ".9jg46WB3rR_AHD-EBXdN7cBkH1WOu0tA3M9fm21mqTI"
LOCAL = AddressPolicy(parse_networks("127.0.0.0/8"))


@pytest.fixture(scope="module")
def dns() -> Iterator[ChallTestSrv]:
    with challtestsrv(tlsalpn=True) as srv:
        yield srv


def validator(dns: ChallTestSrv, policy: AddressPolicy = LOCAL, **kw: object) -> ChallengeValidators:
    return ChallengeValidators(
        ValidatorSettings(policy=policy, resolver=("127.0.0.1", dns.dns_port), **kw)  # type: ignore[arg-type]
    )


def dns01(name: str, key_authorization: str = KEY_AUTH) -> ChallengeToValidate:
    return ChallengeToValidate(ChallengeType.DNS_01, IdentifierType.DNS, name, TOKEN, key_authorization)


async def fails(v: ChallengeValidators, c: ChallengeToValidate) -> ValidationFailed:
    with pytest.raises(ValidationFailed) as info:
        await v.validate(c)
    return info.value


def test_the_txt_value_is_the_rfc_8555_digest() -> None:
    # RFC 8555 §8.4 / §8.1: base64url(SHA-256(keyAuthorization)) without padding
    import base64
    import hashlib

    digest = hashlib.sha256(KEY_AUTH.encode()).digest()
    assert dns01_txt_value(KEY_AUTH) == base64.urlsafe_b64encode(digest).decode().rstrip("=")
    assert len(dns01_txt_value(KEY_AUTH)) == 43


async def test_the_right_txt_record_passes(dns: ChallTestSrv) -> None:
    dns.set_txt("_acme-challenge.ok.example.test", dns01_txt_value(KEY_AUTH))
    await validator(dns).validate(dns01("ok.example.test"))


async def test_one_of_several_txt_records_is_enough(dns: ChallTestSrv) -> None:
    name = "_acme-challenge.several.example.test"
    dns.set_txt(name, "an-older-challenge-value")
    dns.set_txt(name, dns01_txt_value(KEY_AUTH))
    await validator(dns).validate(dns01("several.example.test"))


async def test_a_wildcard_order_is_validated_at_its_base_domain(dns: ChallTestSrv) -> None:
    dns.set_txt("_acme-challenge.wild.example.test", dns01_txt_value(KEY_AUTH))
    await validator(dns).validate(dns01("*.wild.example.test"))


async def test_a_wrong_txt_record_is_an_incorrect_response(dns: ChallTestSrv) -> None:
    dns.set_txt("_acme-challenge.wrong.example.test", dns01_txt_value(KEY_AUTH + "x"))
    failure = await fails(validator(dns), dns01("wrong.example.test"))
    assert failure.problem == "incorrectResponse"


async def test_no_txt_record_is_an_incorrect_response(dns: ChallTestSrv) -> None:
    failure = await fails(validator(dns), dns01("nothing.example.test"))
    assert failure.problem == "incorrectResponse"
    assert "_acme-challenge.nothing.example.test" in failure.detail


async def test_a_servfail_is_a_dns_problem(dns: ChallTestSrv) -> None:
    dns.set_txt("_acme-challenge.broken.example.test", dns01_txt_value(KEY_AUTH))
    dns.post("/set-servfail", {"host": "_acme-challenge.broken.example.test"})
    failure = await fails(validator(dns), dns01("broken.example.test"))
    assert failure.problem == "dns"


async def test_a_silent_resolver_is_a_dns_problem() -> None:
    # a UDP port nobody answers on: the query times out
    v = ChallengeValidators(
        ValidatorSettings(policy=LOCAL, resolver=("127.0.0.1", free_port()), connect_timeout=0.2, timeout=0.5)
    )
    failure = await fails(v, dns01("silent.example.test"))
    assert failure.problem == "dns"


async def test_dns01_refuses_an_ip_identifier(dns: ChallTestSrv) -> None:
    c = ChallengeToValidate(ChallengeType.DNS_01, IdentifierType.IP, "127.0.0.1", TOKEN, KEY_AUTH)
    assert (await fails(validator(dns), c)).problem == "rejectedIdentifier"


# -- http-01 and tls-alpn-01 names resolved through the configured resolver -----------------------------------


@pytest.fixture
async def http_target() -> AsyncIterator[int]:
    async def handle(request: web.Request) -> web.Response:
        return web.Response(text=KEY_AUTH if request.host.startswith("site.example.test") else "wrong host")

    app = web.Application()
    app.router.add_get("/.well-known/acme-challenge/{token}", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    finally:
        await runner.cleanup()


def http01(name: str) -> ChallengeToValidate:
    return ChallengeToValidate(ChallengeType.HTTP_01, IdentifierType.DNS, name, TOKEN, KEY_AUTH)


async def test_http01_resolves_the_name_through_the_configured_resolver(dns: ChallTestSrv, http_target: int) -> None:
    # challtestsrv answers every A query with 127.0.0.1 (its -defaultIPv4), which the policy allows here
    await validator(dns, http_port=http_target).validate(http01("site.example.test"))


async def test_a_name_pointing_at_a_private_address_is_refused(dns: ChallTestSrv, http_target: int) -> None:
    dns.post("/add-a", {"host": "internal.example.test", "addresses": ["10.0.0.7"]})
    failure = await fails(validator(dns, http_port=http_target), http01("internal.example.test"))
    assert failure.problem == "rejectedIdentifier"
    assert "10.0.0.7" in failure.detail


async def test_a_public_name_pointing_at_loopback_is_refused_by_default(dns: ChallTestSrv, http_target: int) -> None:
    failure = await fails(validator(dns, policy=AddressPolicy(), http_port=http_target), http01("site.example.test"))
    assert failure.problem == "rejectedIdentifier"
    assert "127.0.0.1" in failure.detail


async def test_a_name_mixing_public_and_private_addresses_is_refused(dns: ChallTestSrv, http_target: int) -> None:
    dns.post("/add-a", {"host": "mixed.example.test", "addresses": ["127.0.0.1", "192.168.1.1"]})
    failure = await fails(validator(dns, http_port=http_target), http01("mixed.example.test"))
    assert failure.problem == "rejectedIdentifier"
    assert "192.168.1.1" in failure.detail


async def test_a_name_without_addresses_is_a_dns_problem(dns: ChallTestSrv, http_target: int) -> None:
    dns.post("/set-servfail", {"host": "gone.example.test"})
    failure = await fails(validator(dns, http_port=http_target), http01("gone.example.test"))
    assert failure.problem == "dns"


async def test_tls_alpn01_against_challtestsrv_responder(dns: ChallTestSrv) -> None:
    """pebble-challtestsrv's own RFC 8737 responder (a third-party implementation) satisfies the validator."""
    assert dns.tlsalpn_port is not None
    dns.post("/add-tlsalpn01", {"host": "alpn.example.test", "content": KEY_AUTH})
    c = ChallengeToValidate(ChallengeType.TLS_ALPN_01, IdentifierType.DNS, "alpn.example.test", TOKEN, KEY_AUTH)
    await validator(dns, tls_port=dns.tlsalpn_port).validate(c)
    other = ChallengeToValidate(
        ChallengeType.TLS_ALPN_01, IdentifierType.DNS, "alpn.example.test", TOKEN, TOKEN + ".another-account"
    )
    assert (await fails(validator(dns, tls_port=dns.tlsalpn_port), other)).problem == "incorrectResponse"
