"""tls-alpn-01 validation (RFC 8737, RFC 8738) against a real Python TLS server presenting an acme-tls/1
certificate, each way the certificate or the handshake can be wrong, and the address guard."""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from gatewaycerts.connectors.addresses import AddressPolicy, parse_networks
from gatewaycerts.connectors.validators import (
    ACME_TLS_ALPN,
    ChallengeValidators,
    ValidatorSettings,
    acme_identifier_extension,
)
from gatewaycerts.core.acme.validation import ChallengeToValidate, ChallengeType, IdentifierType, ValidationFailed
from tests.acme_tools import free_port

TOKEN = "r5bS2tl2Ff4R0ZmWy2wKV5vMGj1Tq1AT8cJOTUl8A2k"
KEY_AUTH = TOKEN + ".9jg46WB3rR_AHD-EBXdN7cBkH1WOu0tA3M9fm21mqTI"
LOCAL = AddressPolicy(parse_networks("127.0.0.0/8"))


def acme_cert(
    tmp: Path,
    sans: list[x509.GeneralName],
    *,
    key_authorization: str = KEY_AUTH,
    critical: bool = True,
    with_extension: bool = True,
) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "acme-tls-alpn-01")]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "acme-tls-alpn-01")]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(days=1))
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    if with_extension:
        builder = builder.add_extension(acme_identifier_extension(key_authorization), critical=critical)
    cert = builder.sign(key, hashes.SHA256())
    cert_path, key_path = tmp / "cert.pem", tmp / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


@dataclass
class Responder:
    port: int = 0
    server_names: list[str | None] = field(default_factory=list)


async def serve(cert: tuple[Path, Path], alpn: list[str]) -> tuple[asyncio.Server, Responder]:
    state = Responder()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*cert)
    context.set_alpn_protocols(alpn)

    def sni(sock: ssl.SSLObject, name: str | None, ctx: ssl.SSLContext) -> None:
        state.server_names.append(name)

    context.sni_callback = sni  # type: ignore[assignment]

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=context)
    state.port = server.sockets[0].getsockname()[1]
    return server, state


@pytest.fixture
async def servers() -> AsyncIterator[list[asyncio.Server]]:
    started: list[asyncio.Server] = []
    yield started
    for server in started:
        server.close()
        await server.wait_closed()


def challenge(identifier: str = "alpn.example.test", kind: IdentifierType = IdentifierType.DNS) -> ChallengeToValidate:
    return ChallengeToValidate(ChallengeType.TLS_ALPN_01, kind, identifier, TOKEN, KEY_AUTH)


def validator(port: int, policy: AddressPolicy = LOCAL) -> ChallengeValidators:
    # "localhost"-free names: these tests use IP identifiers, or a name through a fixed address below
    return ChallengeValidators(ValidatorSettings(policy=policy, tls_port=port, timeout=5.0))


async def responder(
    servers: list[asyncio.Server], tmp: Path, sans: list[x509.GeneralName], alpn: list[str] | None = None, **kw: object
) -> Responder:
    server, state = await serve(acme_cert(tmp, sans, **kw), alpn if alpn is not None else [ACME_TLS_ALPN])  # type: ignore[arg-type]
    servers.append(server)
    return state


async def fails(v: ChallengeValidators, c: ChallengeToValidate) -> ValidationFailed:
    with pytest.raises(ValidationFailed) as info:
        await v.validate(c)
    return info.value


IP = ipaddress.ip_address("127.0.0.1")


async def test_an_ip_identifier_is_validated_with_the_reverse_name_as_sni(
    servers: list[asyncio.Server], tmp_path: Path
) -> None:
    r = await responder(servers, tmp_path, [x509.IPAddress(IP)])
    await validator(r.port).validate(challenge("127.0.0.1", IdentifierType.IP))
    assert r.server_names == ["1.0.0.127.in-addr.arpa"]  # RFC 8738 §6


async def test_a_dns_identifier_is_validated_with_its_name_as_sni(
    servers: list[asyncio.Server], tmp_path: Path
) -> None:
    r = await responder(servers, tmp_path, [x509.DNSName("localhost")])
    v = ChallengeValidators(
        ValidatorSettings(policy=AddressPolicy(parse_networks("127.0.0.0/8,::1/128")), tls_port=r.port)
    )
    await v.validate(challenge("localhost"))
    assert r.server_names and set(r.server_names) == {"localhost"}


@pytest.mark.parametrize(
    ("sans", "kw", "needle"),
    [
        ([x509.IPAddress(IP), x509.DNSName("extra.example.test")], {}, "exactly"),
        ([x509.IPAddress(ipaddress.ip_address("127.0.0.2"))], {}, "exactly"),
        ([x509.DNSName("127.0.0.1")], {}, "exactly"),
        ([], {}, "subjectAltName"),
        ([x509.IPAddress(IP)], {"critical": False}, "not critical"),
        ([x509.IPAddress(IP)], {"with_extension": False}, "lacks id-pe-acmeIdentifier"),
        ([x509.IPAddress(IP)], {"key_authorization": TOKEN + ".another-account"}, "SHA-256"),
    ],
)
async def test_a_wrong_certificate_is_an_incorrect_response(
    servers: list[asyncio.Server], tmp_path: Path, sans: list[x509.GeneralName], kw: dict[str, object], needle: str
) -> None:
    r = await responder(servers, tmp_path, sans, **kw)
    failure = await fails(validator(r.port), challenge("127.0.0.1", IdentifierType.IP))
    assert failure.problem == "incorrectResponse"
    assert needle in failure.detail


async def test_a_server_without_acme_tls_1_is_a_tls_problem(servers: list[asyncio.Server], tmp_path: Path) -> None:
    r = await responder(servers, tmp_path, [x509.IPAddress(IP)], alpn=["h2", "http/1.1"])
    failure = await fails(validator(r.port), challenge("127.0.0.1", IdentifierType.IP))
    assert failure.problem == "tls"
    assert ACME_TLS_ALPN in failure.detail


async def test_a_plain_tcp_server_is_a_tls_problem(servers: list[asyncio.Server]) -> None:
    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 400 Bad Request\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(garbage, "127.0.0.1", 0)
    servers.append(server)
    failure = await fails(validator(server.sockets[0].getsockname()[1]), challenge("127.0.0.1", IdentifierType.IP))
    assert failure.problem in ("tls", "connection")


async def test_nothing_listening_is_a_connection_problem() -> None:
    failure = await fails(validator(free_port()), challenge("127.0.0.1", IdentifierType.IP))
    assert failure.problem == "connection"


@pytest.mark.parametrize("identifier", ["127.0.0.1", "10.0.0.1", "169.254.169.254", "::1"])
async def test_forbidden_addresses_are_refused_without_connecting(
    servers: list[asyncio.Server], tmp_path: Path, identifier: str
) -> None:
    r = await responder(servers, tmp_path, [x509.IPAddress(IP)])
    failure = await fails(validator(r.port, policy=AddressPolicy()), challenge(identifier, IdentifierType.IP))
    assert failure.problem == "rejectedIdentifier"
    assert r.server_names == []
