"""The ACME server's challenge validator: http-01 (RFC 8555 §8.3), dns-01 (§8.4), tls-alpn-01 (RFC 8737, RFC 8738).

Every connection goes through the address guard (connectors/addresses.py): the identifier's name is resolved
once, every address it resolves to is checked, and the validator connects to a checked address (never
re-resolving the name, so a DNS answer cannot change between the check and the connection). A redirect's
target is resolved and checked the same way before it is followed.

Problems, as RFC 8555 §6.7 names them (core records ``urn:ietf:params:acme:error:<problem>``):

- ``rejectedIdentifier``: the identifier itself resolves to an address the operator does not allow (loopback,
  private, link-local, ... without GATEWAYCERTS_ACME_ALLOWED_TARGETS). This server will never validate that
  identifier, so it is refused like an identifier outside the policy; a retry cannot succeed.
- ``connection``: the target could not be reached (refused, timed out, reset), or an http-01 redirect led
  to a place the validator may not go (a forbidden address, another port or scheme): the identifier is
  acceptable, its server sent the validator elsewhere, as with an unreachable redirect.
- ``dns``: a DNS query failed (no address for the name, SERVFAIL, timeout).
- ``tls``: the tls-alpn-01 handshake failed or did not negotiate ``acme-tls/1``.
- ``incorrectResponse``: the target answered, but not with what the challenge requires (HTTP status, body,
  TXT records, the RFC 8737 certificate).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import ipaddress
import re
import socket
import ssl
from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit

import aiohttp
import dns.asyncresolver
import dns.exception
import dns.rdatatype
import dns.resolver
from aiohttp.abc import AbstractResolver, ResolveResult
from cryptography import x509
from cryptography.x509.oid import ObjectIdentifier

from gatewaycerts.connectors.addresses import AddressPolicy, IPAddress, parse_networks
from gatewaycerts.domain.acme_validation import (
    ChallengeToValidate,
    ChallengeType,
    IdentifierType,
    ValidationFailed,
)

ACME_TLS_ALPN = "acme-tls/1"
ID_PE_ACME_IDENTIFIER = ObjectIdentifier("1.3.6.1.5.5.7.1.31")
MAX_REDIRECTS = 10
MAX_BODY_BYTES = 8192  # a key authorization is ~90 bytes; RFC 8555 lets the server stop reading long before this
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{16,256}$")
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


def key_authorization_digest(key_authorization: str) -> bytes:
    return hashlib.sha256(key_authorization.encode("ascii")).digest()


def dns01_txt_value(key_authorization: str) -> str:
    """The TXT record value RFC 8555 §8.4 asks for: base64url(SHA-256(key authorization)), no padding."""
    return base64.urlsafe_b64encode(key_authorization_digest(key_authorization)).rstrip(b"=").decode("ascii")


def reverse_name(ip: IPAddress) -> str:
    """RFC 8738 §6: the SNI of a tls-alpn-01 validation of an IP identifier (``4.3.2.1.in-addr.arpa``)."""
    return ip.reverse_pointer


def _dns_name(value: str) -> str:
    name = value.rstrip(".").lower()
    if not name or len(name) > 253 or not all(_LABEL.match(label) for label in name.split(".")):
        raise ValidationFailed("rejectedIdentifier", f"{value!r} is not a valid DNS name")
    return name


def _ip(value: str) -> IPAddress:
    try:
        return ipaddress.ip_address(value.strip("[]"))
    except ValueError:
        raise ValidationFailed("rejectedIdentifier", f"{value!r} is not an IP address") from None


def _host_for_url(host: str) -> str:
    return f"[{host}]" if ":" in host else host


@dataclass(frozen=True, slots=True)
class ValidatorSettings:
    """What the operator set (GATEWAYCERTS_ACME_*); ``resolver`` is ``(ip, port)`` or None for the system's."""

    policy: AddressPolicy = field(default_factory=AddressPolicy)
    http_port: int = 80
    tls_port: int = 443
    resolver: tuple[str, int] | None = None
    connect_timeout: float = 5.0
    timeout: float = 10.0  # one whole attempt (every redirect hop, or the handshake)

    @classmethod
    def of(
        cls,
        *,
        http_port: int,
        tls_port: int,
        resolver: tuple[str, int] | None,
        allowed_targets: Sequence[str],
    ) -> ValidatorSettings:
        """From the settings (``Settings.acme_http_port``, ``acme_tls_port``, ``acme_resolver``,
        ``acme_allowed_targets``), as app.py wires the validator."""
        return cls(
            policy=AddressPolicy(parse_networks(allowed_targets)),
            http_port=http_port,
            tls_port=tls_port,
            resolver=resolver,
        )


class _PinnedResolver(AbstractResolver):
    """aiohttp's resolver for one validation: answers only with the addresses the guard already checked."""

    def __init__(self) -> None:
        self.pinned: dict[str, list[IPAddress]] = {}

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        addresses = self.pinned.get(host.lower().rstrip("."))
        if not addresses:  # never happens: every hop is pinned before it is requested
            raise OSError(f"{host} was not checked by the address guard")
        return [
            ResolveResult(
                hostname=host,
                host=str(ip),
                port=port,
                family=socket.AF_INET6 if ip.version == 6 else socket.AF_INET,
                proto=0,
                flags=socket.AI_NUMERICHOST,
            )
            for ip in addresses
        ]

    async def close(self) -> None:
        return None


class ChallengeValidators:
    """Implements core.acme.validation.ChallengeValidator for http-01, dns-01 and tls-alpn-01."""

    def __init__(self, settings: ValidatorSettings | None = None) -> None:
        self.settings = settings or ValidatorSettings()

    async def validate(self, challenge: ChallengeToValidate) -> None:
        if challenge.type == ChallengeType.HTTP_01:
            await self._http01(challenge)
        elif challenge.type == ChallengeType.DNS_01:
            await self._dns01(challenge)
        elif challenge.type == ChallengeType.TLS_ALPN_01:
            await self._tls_alpn01(challenge)
        else:  # pragma: no cover - the enum has three members
            raise ValidationFailed("malformed", f"unsupported challenge type {challenge.type}")

    # -- names and addresses -------------------------------------------------------------------------------

    def _resolver(self) -> dns.asyncresolver.Resolver:
        s = self.settings
        if s.resolver is None:
            resolver = dns.asyncresolver.Resolver()
        else:
            resolver = dns.asyncresolver.Resolver(configure=False)
            resolver.nameservers = [s.resolver[0]]
            resolver.port = s.resolver[1]
        resolver.lifetime = s.timeout
        resolver.timeout = s.connect_timeout
        return resolver

    async def _lookup(self, name: str) -> list[IPAddress]:
        """Every A and AAAA address of ``name`` (through the configured resolver, else the system's)."""
        if self.settings.resolver is None:
            loop = asyncio.get_running_loop()
            try:
                infos = await asyncio.wait_for(
                    loop.getaddrinfo(name, None, type=socket.SOCK_STREAM), self.settings.timeout
                )
            except (OSError, TimeoutError) as exc:
                raise ValidationFailed(
                    "dns", f"cannot resolve {name}: {getattr(exc, 'strerror', None) or exc}"
                ) from None
            found = [ipaddress.ip_address(info[4][0]) for info in infos]
        else:
            resolver = self._resolver()
            found = []
            errors = []
            for rdtype in ("A", "AAAA"):
                try:
                    answer = await resolver.resolve(name, rdtype)
                except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
                    continue
                except dns.exception.DNSException as exc:
                    errors.append(f"{rdtype}: {exc.__class__.__name__}")
                    continue
                found.extend(ipaddress.ip_address(r.address) for r in answer)
            if errors and not found:
                raise ValidationFailed("dns", f"DNS lookup of {name} failed ({', '.join(errors)})")
        unique = list(dict.fromkeys(found))
        if not unique:
            raise ValidationFailed("dns", f"no A or AAAA record for {name}")
        return unique

    async def _addresses(self, host: str, identifier_type: IdentifierType, *, hop: bool) -> list[IPAddress]:
        """The checked addresses of ``host``; every one must be allowed (a name mixing a public and a private
        address is refused: which one a connection would reach is not for the name's owner to choose)."""
        try:
            name = str(_ip(host)) if identifier_type == IdentifierType.IP else _dns_name(host)
        except ValidationFailed as exc:
            if hop:  # the identifier is fine; its server redirected to something that is not a host name
                raise ValidationFailed("connection", f"redirect to an invalid host: {exc.detail}") from None
            raise
        addresses = [ipaddress.ip_address(name)] if identifier_type == IdentifierType.IP else await self._lookup(name)
        forbidden = [ip for ip in addresses if not self.settings.policy.permits(ip)]
        if forbidden:
            where = "redirect target " if hop else ""
            message = (
                f"{where}{host} resolves to {', '.join(map(str, forbidden))}, which this server does not connect to "
                "(loopback, private, link-local or reserved; an operator may allow networks with "
                "GATEWAYCERTS_ACME_ALLOWED_TARGETS)"
            )
            raise ValidationFailed("connection" if hop else "rejectedIdentifier", message)
        return addresses

    # -- http-01 -------------------------------------------------------------------------------------------

    def _redirect_allowed(self, scheme: str, port: int) -> bool:
        s = self.settings
        if scheme == "http":
            return port in (80, s.http_port)
        if scheme == "https":
            return port in (443, s.tls_port)
        return False

    async def _http01(self, challenge: ChallengeToValidate) -> None:
        if not _TOKEN.match(challenge.token):
            raise ValidationFailed("malformed", "the challenge token is not base64url")
        ident = challenge.identifier_value
        host = _host_for_url(str(_ip(ident)) if challenge.identifier_type == IdentifierType.IP else _dns_name(ident))
        url = f"http://{host}:{self.settings.http_port}/.well-known/acme-challenge/{challenge.token}"
        try:
            async with asyncio.timeout(self.settings.timeout):
                body = await self._fetch(url, challenge.identifier_type)
        except TimeoutError:
            raise ValidationFailed("connection", f"timeout after {self.settings.timeout:g} s fetching {url}") from None
        if body.rstrip() != challenge.key_authorization.encode("ascii"):
            raise ValidationFailed(
                "incorrectResponse",
                f"the body at {url} is not the key authorization of this challenge ({len(body)} bytes)",
            )

    async def _fetch(self, url: str, identifier_type: IdentifierType) -> bytes:
        pinned = _PinnedResolver()
        connector = aiohttp.TCPConnector(resolver=pinned, use_dns_cache=False, ssl=False, force_close=True)
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=self.settings.connect_timeout)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout, trust_env=False) as session:
            for hop in range(MAX_REDIRECTS + 1):
                parts = urlsplit(url)
                host = parts.hostname or ""
                kind = identifier_type if hop == 0 else _host_kind(host)
                pinned.pinned[host.lower().rstrip(".")] = await self._addresses(host, kind, hop=hop > 0)
                try:
                    async with session.get(
                        url,
                        allow_redirects=False,
                        headers={"Accept": "*/*", "User-Agent": "gatewaycerts-acme-validator"},
                        auto_decompress=False,
                    ) as response:
                        if response.status in (301, 302, 303, 307, 308):
                            url = self._next_hop(url, response.headers.get("Location"))
                            continue
                        if response.status != 200:
                            raise ValidationFailed("incorrectResponse", f"{url} answered HTTP {response.status}")
                        body = await response.content.read(MAX_BODY_BYTES + 1)
                        if len(body) > MAX_BODY_BYTES:
                            raise ValidationFailed(
                                "incorrectResponse", f"the body at {url} exceeds {MAX_BODY_BYTES} bytes"
                            )
                        return body
                except aiohttp.ClientConnectorError as exc:
                    raise ValidationFailed("connection", f"cannot connect to {url}: {exc.os_error}") from None
                except (aiohttp.ClientError, OSError) as exc:
                    raise ValidationFailed("connection", f"fetching {url} failed: {exc.__class__.__name__}") from None
        raise ValidationFailed("connection", f"more than {MAX_REDIRECTS} redirects")

    def _next_hop(self, url: str, location: str | None) -> str:
        """RFC 8555 §8.3: follow redirects only to http or https, on the usual ports (or the configured ones)."""
        if not location:
            raise ValidationFailed("connection", f"{url} redirects without a Location")
        target = urljoin(url, location)
        parts = urlsplit(target)
        try:
            port = parts.port
        except ValueError:
            raise ValidationFailed("connection", f"{url} redirects to an invalid URL") from None
        scheme = parts.scheme.lower()
        if port is None:
            port = {"http": 80, "https": 443}.get(scheme, 0)
        if not parts.hostname or not self._redirect_allowed(scheme, port):
            raise ValidationFailed(
                "connection",
                f"{url} redirects to {scheme}://{parts.hostname}:{port}: only http and https on ports 80, 443 "
                f"or the validator's ({self.settings.http_port}, {self.settings.tls_port}) are followed",
            )
        return target

    # -- dns-01 --------------------------------------------------------------------------------------------

    async def _dns01(self, challenge: ChallengeToValidate) -> None:
        if challenge.identifier_type != IdentifierType.DNS:
            raise ValidationFailed("rejectedIdentifier", "dns-01 validates DNS names only")
        name = "_acme-challenge." + _dns_name(challenge.identifier_value.removeprefix("*."))
        expected = dns01_txt_value(challenge.key_authorization)
        try:
            answer = await self._resolver().resolve(name, "TXT")
        except dns.resolver.NXDOMAIN:
            raise ValidationFailed("incorrectResponse", f"no TXT record at {name} (NXDOMAIN)") from None
        except dns.resolver.NoAnswer:
            raise ValidationFailed("incorrectResponse", f"no TXT record at {name}") from None
        except dns.exception.DNSException as exc:
            raise ValidationFailed("dns", f"DNS query for TXT {name} failed: {exc.__class__.__name__}") from None
        values = [b"".join(r.strings).decode("ascii", "replace") for r in answer]
        if expected not in values:
            raise ValidationFailed(
                "incorrectResponse", f"none of the {len(values)} TXT record(s) at {name} is this challenge's digest"
            )

    # -- tls-alpn-01 ---------------------------------------------------------------------------------------

    async def _tls_alpn01(self, challenge: ChallengeToValidate) -> None:
        ident = challenge.identifier_value
        if challenge.identifier_type == IdentifierType.IP:
            ip = _ip(ident)
            sni = reverse_name(ip)
            addresses = await self._addresses(str(ip), IdentifierType.IP, hop=False)
            expected_san: x509.GeneralName = x509.IPAddress(ip)
        else:
            name = _dns_name(ident)
            sni = name
            addresses = await self._addresses(name, IdentifierType.DNS, hop=False)
            expected_san = x509.DNSName(name)
        port = self.settings.tls_port
        der = await self._handshake(addresses, port, sni)
        check_acme_tls_certificate(der, expected_san, challenge.key_authorization)

    async def _handshake(self, addresses: Sequence[IPAddress], port: int, sni: str) -> bytes:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE  # RFC 8737 §3: the certificate is self-signed; its content is checked
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.set_alpn_protocols([ACME_TLS_ALPN])
        last: str = "no address"
        for ip in addresses:
            try:
                async with asyncio.timeout(self.settings.timeout):
                    _reader, writer = await asyncio.wait_for(
                        asyncio.open_connection(
                            str(ip), port, ssl=context, server_hostname=sni, ssl_handshake_timeout=self.settings.timeout
                        ),
                        self.settings.connect_timeout + self.settings.timeout,
                    )
            except ssl.SSLError as exc:
                raise ValidationFailed("tls", f"TLS handshake with {ip}:{port} failed: {exc.reason or exc}") from None
            except TimeoutError:
                last = f"timeout connecting to {_host_for_url(str(ip))}:{port}"
                continue
            except OSError as exc:
                last = f"cannot connect to {_host_for_url(str(ip))}:{port}: {exc.strerror or exc}"
                continue
            try:
                ssl_object = writer.get_extra_info("ssl_object")
                protocol = ssl_object.selected_alpn_protocol() if ssl_object else None
                if protocol != ACME_TLS_ALPN:
                    raise ValidationFailed(
                        "tls",
                        f"{_host_for_url(str(ip))}:{port} did not negotiate ALPN {ACME_TLS_ALPN} (got {protocol})",
                    )
                der = ssl_object.getpeercert(binary_form=True)
                if not der:
                    raise ValidationFailed("tls", f"{_host_for_url(str(ip))}:{port} presented no certificate")
                return der
            finally:
                writer.close()
                with contextlib.suppress(OSError, TimeoutError, ssl.SSLError):
                    await asyncio.wait_for(writer.wait_closed(), 1.0)
        raise ValidationFailed("connection", last)


def check_acme_tls_certificate(der: bytes, expected_san: x509.GeneralName, key_authorization: str) -> None:
    """RFC 8737 §3: exactly one SAN, the identifier; a critical id-pe-acmeIdentifier whose value is the DER
    OCTET STRING of SHA-256(key authorization)."""
    try:
        cert = x509.load_der_x509_certificate(der)
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        raise ValidationFailed("incorrectResponse", "the acme-tls/1 certificate has no subjectAltName") from None
    except ValueError as exc:
        raise ValidationFailed("incorrectResponse", f"the acme-tls/1 certificate does not parse: {exc}") from None
    names = list(san)
    if len(names) != 1 or not _same_name(names[0], expected_san):
        raise ValidationFailed(
            "incorrectResponse",
            f"the acme-tls/1 certificate must name exactly {_show(expected_san)}; it names "
            f"{', '.join(_show(n) for n in names) or 'nothing'}",
        )
    try:
        ext = cert.extensions.get_extension_for_oid(ID_PE_ACME_IDENTIFIER)
    except x509.ExtensionNotFound:
        raise ValidationFailed("incorrectResponse", "the acme-tls/1 certificate lacks id-pe-acmeIdentifier") from None
    if not ext.critical:
        raise ValidationFailed("incorrectResponse", "the id-pe-acmeIdentifier extension is not critical")
    value = ext.value.value if isinstance(ext.value, x509.UnrecognizedExtension) else b""
    if value != b"\x04\x20" + key_authorization_digest(key_authorization):
        raise ValidationFailed(
            "incorrectResponse",
            "the id-pe-acmeIdentifier value is not the SHA-256 of this challenge's key authorization",
        )


def acme_identifier_extension(key_authorization: str) -> x509.UnrecognizedExtension:
    """The extension a tls-alpn-01 responder puts in its certificate (for responders and tests)."""
    return x509.UnrecognizedExtension(ID_PE_ACME_IDENTIFIER, b"\x04\x20" + key_authorization_digest(key_authorization))


def _same_name(got: x509.GeneralName, expected: x509.GeneralName) -> bool:
    if isinstance(expected, x509.DNSName):
        return isinstance(got, x509.DNSName) and got.value.lower().rstrip(".") == expected.value
    return isinstance(got, x509.IPAddress) and got.value == expected.value


def _show(name: x509.GeneralName) -> str:
    return f"{'DNS' if isinstance(name, x509.DNSName) else 'IP'}:{name.value}"


def _host_kind(host: str) -> IdentifierType:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return IdentifierType.DNS
    return IdentifierType.IP
