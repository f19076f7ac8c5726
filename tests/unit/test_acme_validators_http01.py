"""http-01 validation (connectors/validators.py) against a real local aiohttp server, and the address guard."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import pytest
from aiohttp import web

from gatewaycerts.connectors.addresses import AddressPolicy, parse_networks
from gatewaycerts.connectors.validators import ChallengeValidators, ValidatorSettings
from gatewaycerts.core.acme.validation import ChallengeToValidate, ChallengeType, IdentifierType, ValidationFailed

TOKEN = "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA"
KEY_AUTH = TOKEN + ".9jg46WB3rR_AHD-EBXdN7cBkH1WOu0tA3M9fm21mqTI"
LOCAL = AddressPolicy(parse_networks("127.0.0.0/8, ::1/128"))


@dataclass
class Target:
    """A real HTTP server on 127.0.0.1 whose answer each test sets."""

    port: int = 0
    handler: Callable[[web.Request], object] | None = None
    hosts: list[str] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)


@pytest.fixture
async def target() -> AsyncIterator[Target]:
    state = Target()

    async def handle(request: web.Request) -> web.StreamResponse:
        state.hosts.append(request.headers.get("Host", ""))
        state.paths.append(request.path)
        assert state.handler is not None
        result = state.handler(request)
        if asyncio.iscoroutine(result):
            result = await result
        assert isinstance(result, web.StreamResponse)
        return result

    app = web.Application()
    app.router.add_route("GET", "/{tail:.*}", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    state.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield state
    finally:
        await runner.cleanup()


def challenge(identifier: str = "127.0.0.1", kind: IdentifierType = IdentifierType.IP) -> ChallengeToValidate:
    return ChallengeToValidate(ChallengeType.HTTP_01, kind, identifier, TOKEN, KEY_AUTH)


def validator(port: int, policy: AddressPolicy = LOCAL, **kw: object) -> ChallengeValidators:
    return ChallengeValidators(ValidatorSettings(policy=policy, http_port=port, **kw))  # type: ignore[arg-type]


def redirect_to(location: str) -> Callable[[web.Request], web.Response]:
    def handle(request: web.Request) -> web.Response:
        raise web.HTTPFound(location)

    return handle


async def fails(v: ChallengeValidators, c: ChallengeToValidate) -> ValidationFailed:
    with pytest.raises(ValidationFailed) as info:
        await v.validate(c)
    return info.value


async def test_the_key_authorization_passes_with_trailing_whitespace(target: Target) -> None:
    target.handler = lambda r: web.Response(text=KEY_AUTH + "\r\n")
    await validator(target.port).validate(challenge())
    assert target.paths == [f"/.well-known/acme-challenge/{TOKEN}"]
    assert target.hosts == [f"127.0.0.1:{target.port}"]


async def test_a_name_is_asked_for_with_its_host_header(target: Target) -> None:
    target.handler = lambda r: web.Response(text=KEY_AUTH)
    await validator(target.port).validate(challenge("LocalHost", IdentifierType.DNS))
    assert target.hosts == [f"localhost:{target.port}"]


async def test_a_wrong_body_is_an_incorrect_response(target: Target) -> None:
    target.handler = lambda r: web.Response(text=TOKEN + ".someone-elses-thumbprint")
    failure = await fails(validator(target.port), challenge())
    assert failure.problem == "incorrectResponse"
    # leading whitespace is not trimmed, only trailing
    target.handler = lambda r: web.Response(text=" " + KEY_AUTH)
    assert (await fails(validator(target.port), challenge())).problem == "incorrectResponse"


async def test_a_404_is_an_incorrect_response(target: Target) -> None:
    target.handler = lambda r: web.Response(status=404, text=KEY_AUTH)
    failure = await fails(validator(target.port), challenge())
    assert failure.problem == "incorrectResponse"
    assert "HTTP 404" in failure.detail


async def test_a_huge_body_is_not_read_to_its_end(target: Target) -> None:
    async def huge(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        await response.write(KEY_AUTH.encode())
        for _ in range(64):
            await response.write(b" " * 65536)
        return response

    target.handler = huge
    failure = await fails(validator(target.port), challenge())
    assert failure.problem == "incorrectResponse"
    assert "exceeds" in failure.detail


async def test_nothing_listening_is_a_connection_problem(target: Target) -> None:
    port = target.port
    target.handler = lambda r: web.Response(text=KEY_AUTH)
    await validator(port).validate(challenge())
    # a port nobody listens on: bind and close a socket to find one
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        free = s.getsockname()[1]
    failure = await fails(validator(free), challenge())
    assert failure.problem == "connection"


async def test_a_server_that_never_answers_times_out(target: Target) -> None:
    never = asyncio.Event()

    async def hang(request: web.Request) -> web.Response:
        await never.wait()
        return web.Response(text=KEY_AUTH)

    target.handler = hang
    try:
        failure = await fails(validator(target.port, timeout=0.5), challenge())
    finally:
        never.set()
    assert failure.problem == "connection"
    assert "timeout" in failure.detail


async def test_redirects_are_followed_and_rechecked(target: Target) -> None:
    def handle(request: web.Request) -> web.Response:
        if request.path.startswith("/.well-known/"):
            raise web.HTTPFound(f"http://localhost:{target.port}/elsewhere/{TOKEN}")
        return web.Response(text=KEY_AUTH)

    target.handler = handle
    await validator(target.port).validate(challenge())
    assert target.paths == [f"/.well-known/acme-challenge/{TOKEN}", f"/elsewhere/{TOKEN}"]
    assert target.hosts[1] == f"localhost:{target.port}"


async def test_a_relative_redirect_is_followed(target: Target) -> None:
    def handle(request: web.Request) -> web.Response:
        if request.path.startswith("/.well-known/"):
            raise web.HTTPMovedPermanently("/moved")
        return web.Response(text=KEY_AUTH)

    target.handler = handle
    await validator(target.port).validate(challenge())
    assert target.paths[-1] == "/moved"


@pytest.mark.parametrize(
    "location",
    [
        "http://127.0.0.1:{other}/x",  # another port
        "ftp://127.0.0.1/x",  # another scheme
        "https://127.0.0.1:8443/x",  # https, but not on 443 or the configured TLS port
        "file:///etc/passwd",
        "http://bad_host..example/x",  # not a host name
    ],
)
async def test_redirects_elsewhere_are_refused(target: Target, location: str) -> None:
    target.handler = redirect_to(location.format(other=target.port + 1))
    failure = await fails(validator(target.port), challenge())
    assert failure.problem == "connection"
    assert len(target.paths) == 1


async def test_a_redirect_to_a_forbidden_address_is_refused_before_connecting(target: Target) -> None:
    # The target is allowed (127.0.0.1 here) but sends the validator to the cloud metadata address.
    target.handler = redirect_to("http://169.254.169.254/latest/meta-data/")
    failure = await fails(validator(target.port), challenge())
    assert failure.problem == "connection"
    assert "169.254.169.254" in failure.detail and "does not connect to" in failure.detail


async def test_a_redirect_loop_ends(target: Target) -> None:
    def loop(request: web.Request) -> web.Response:
        raise web.HTTPFound(f"/loop{len(target.paths)}")

    target.handler = loop
    failure = await fails(validator(target.port), challenge())
    assert failure.problem == "connection"
    assert "redirects" in failure.detail
    assert len(target.paths) == 11


@pytest.mark.parametrize(
    ("identifier", "kind"),
    [
        ("127.0.0.1", IdentifierType.IP),
        ("::1", IdentifierType.IP),
        ("10.1.2.3", IdentifierType.IP),
        ("192.168.0.1", IdentifierType.IP),
        ("169.254.169.254", IdentifierType.IP),
        ("100.64.0.1", IdentifierType.IP),
        ("fe80::1", IdentifierType.IP),
        ("localhost", IdentifierType.DNS),
    ],
)
async def test_ssrf_targets_are_refused_without_allowed_targets(
    target: Target, identifier: str, kind: IdentifierType
) -> None:
    target.handler = lambda r: web.Response(text=KEY_AUTH)
    failure = await fails(validator(target.port, policy=AddressPolicy()), challenge(identifier, kind))
    assert failure.problem == "rejectedIdentifier"
    assert "GATEWAYCERTS_ACME_ALLOWED_TARGETS" in failure.detail
    assert target.paths == []  # nothing was connected to


async def test_an_unresolvable_name_is_a_dns_problem(target: Target) -> None:
    failure = await fails(validator(target.port), challenge("no-such-host.invalid", IdentifierType.DNS))
    assert failure.problem == "dns"


async def test_an_invalid_name_is_refused(target: Target) -> None:
    failure = await fails(validator(target.port), challenge("bad_name..example", IdentifierType.DNS))
    assert failure.problem == "rejectedIdentifier"


def test_settings_wire_the_validator() -> None:
    from gatewaycerts.settings import Settings, SettingsError

    s = Settings.from_env(
        {
            "GATEWAYCERTS_ACME_HTTP_PORT": "5002",
            "GATEWAYCERTS_ACME_TLS_PORT": "5001",
            "GATEWAYCERTS_ACME_RESOLVER": "[::1]:8053",
            "GATEWAYCERTS_ACME_ALLOWED_TARGETS": "127.0.0.1/8, ::1/128",
        }
    )
    assert (s.acme_http_port, s.acme_tls_port, s.acme_resolver) == (5002, 5001, ("::1", 8053))
    assert s.acme_allowed_targets == ("127.0.0.0/8", "::1/128")
    v = ValidatorSettings.of(
        http_port=s.acme_http_port,
        tls_port=s.acme_tls_port,
        resolver=s.acme_resolver,
        allowed_targets=s.acme_allowed_targets,
    )
    assert v.policy.permits("127.0.0.5") and not v.policy.permits("10.0.0.1")
    defaults = Settings.from_env({})
    assert (defaults.acme_http_port, defaults.acme_tls_port, defaults.acme_resolver) == (80, 443, None)
    assert defaults.acme_allowed_targets == ()
    assert Settings.from_env({"GATEWAYCERTS_ACME_RESOLVER": "10.0.0.53"}).acme_resolver == ("10.0.0.53", 53)
    for env, needle in [
        ({"GATEWAYCERTS_ACME_HTTP_PORT": "0"}, "GATEWAYCERTS_ACME_HTTP_PORT"),
        ({"GATEWAYCERTS_ACME_TLS_PORT": "https"}, "GATEWAYCERTS_ACME_TLS_PORT"),
        ({"GATEWAYCERTS_ACME_RESOLVER": "dns.example:53"}, "by IP address"),
        ({"GATEWAYCERTS_ACME_RESOLVER": "127.0.0.1:99999"}, "invalid port"),
        ({"GATEWAYCERTS_ACME_ALLOWED_TARGETS": "127.0.0.0/8,intranet"}, "'intranet'"),
    ]:
        with pytest.raises(SettingsError, match=needle):
            Settings.from_env(env)
