"""The rules of an order's `meta`: what each order type (and certificate request type) accepts, checked when
the order is created so that a bad order is refused at once (400, naming the property) instead of failing
later in the worker."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from gatewaycerts.domain.errors import InvalidInputError, MissingParameterError, UnsupportedOrderError
from gatewaycerts.domain.orders import OrderType
from gatewaycerts.domain.pca import DistinguishedName, ExtendedKeyUsage, KeyAlgorithm, SanType, SubjectAltName
from gatewaycerts.pki.profiles import MAX_SANS, TLS_SERVER_MAX_DAYS, san_problem, shown, tls_server_validity_problem

OCTET_STREAM = "application/octet-stream"
MAX_TEXT = 255
SYMMETRIC_BITS = {"aes": (128, 192, 256)}
HMAC_ALGORITHMS = ("hmacsha256", "hmacsha384", "hmacsha512")
ASYMMETRIC_BITS = {"rsa": (2048, 3072, 4096), "ec": (256, 384)}
REQUEST_TYPES = ("custom", "simple-cmc", "stored-key", "full-cmc")
# The TLS server profile's limit (pki/profiles.py), kept for every profile's custom orders as before it was one.
MAX_VALIDITY_DAYS = TLS_SERVER_MAX_DAYS
_UUID_TAIL = re.compile(r"([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})/?$")
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_COMMON = ("name", "expiration")
_KEY_FIELDS = (*_COMMON, "algorithm", "bit_length", "mode", "payload_content_type")
_ASYMMETRIC_FIELDS = (*_KEY_FIELDS, "pass_phrase", "passphrase")
_CERT_COMMON = ("name", "request_type", "ca_id", "profile", "requestor_name", "requestor_email", "requestor_phone")
_CERT_FIELDS = {
    "simple-cmc": (*_CERT_COMMON, "request_data"),
    "stored-key": (*_CERT_COMMON, "container_ref", "source_container_ref", "subject_dn", "extensions"),
    "custom": (*_CERT_COMMON, "subject_dn", "subject_alt_names", "key_algorithm", "validity_days"),
    "full-cmc": (*_CERT_COMMON, "request_data"),
}


@dataclass(frozen=True, slots=True)
class IssuanceProfile:
    """A documented issuance profile (`meta.profile`): extended key usage and default validity."""

    name: str
    extended_key_usage: ExtendedKeyUsage
    validity_days: int


_SERVER = ExtendedKeyUsage(server_auth=True)
_CLIENT = ExtendedKeyUsage(client_auth=True)
PROFILES: dict[str, IssuanceProfile] = {
    "server": IssuanceProfile("server", _SERVER, 365),
    "client": IssuanceProfile("client", _CLIENT, 365),
    "server-client": IssuanceProfile("server-client", ExtendedKeyUsage(server_auth=True, client_auth=True), 365),
    # Dogtag's profile names, as Barbican's documentation uses them
    "caServerCert": IssuanceProfile("caServerCert", _SERVER, 365),
    "caUserCert": IssuanceProfile("caUserCert", _CLIENT, 365),
}
DEFAULT_PROFILE = "server"
CUSTOM_KEY_ALGORITHMS = tuple(a.value for a in KeyAlgorithm if a is not KeyAlgorithm.SM2)


def invalid(field: str, why: str) -> InvalidInputError:
    return InvalidInputError(f"Invalid property 'meta.{field}': {why}", field=f"meta.{field}")


def _missing(field: str) -> MissingParameterError:
    return MissingParameterError(f"Missing property 'meta.{field}'", field=f"meta.{field}")


def _text(meta: Mapping[str, Any], field: str, *, required: bool = False, limit: int = MAX_TEXT) -> str | None:
    value = meta.get(field)
    if value is None or value == "":
        if required:
            raise _missing(field)
        return None
    if not isinstance(value, str):
        raise invalid(field, "must be a string")
    if len(value) > limit:
        raise invalid(field, f"must be at most {limit} characters")
    if _CONTROL.search(value):
        raise invalid(field, "must not contain control or bidirectional-override characters")
    return value


def _integer(meta: Mapping[str, Any], field: str, *, required: bool = False) -> int | None:
    value = meta.get(field)
    if value is None:
        if required:
            raise _missing(field)
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid(field, "must be an integer")
    return value


def _only(meta: Mapping[str, Any], allowed: tuple[str, ...], kind: str) -> None:
    unknown = sorted(set(meta) - set(allowed))
    if unknown:
        raise invalid(unknown[0], f"is not a property of {kind} orders; use {', '.join(sorted(allowed))}")


def _expiration(meta: Mapping[str, Any], now: datetime) -> datetime | None:
    text = _text(meta, "expiration")
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise invalid("expiration", "must be an ISO 8601 time such as 2030-01-01T00:00:00Z") from None
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    if moment <= now:
        raise invalid("expiration", "must be in the future")
    return moment


def _content_type(meta: Mapping[str, Any]) -> None:
    value = _text(meta, "payload_content_type")
    if value is not None and value.lower() != OCTET_STREAM:
        raise invalid("payload_content_type", f"must be {OCTET_STREAM}")


@dataclass(frozen=True, slots=True)
class KeySpec:
    name: str | None
    algorithm: str
    bit_length: int
    mode: str | None
    expiration: datetime | None


def key_spec(meta: Mapping[str, Any], now: datetime) -> KeySpec:
    _only(meta, _KEY_FIELDS, "key")
    algorithm = (_text(meta, "algorithm", required=True) or "").lower()
    bits = _integer(meta, "bit_length", required=True)
    assert bits is not None
    if algorithm in SYMMETRIC_BITS:
        if bits not in SYMMETRIC_BITS[algorithm]:
            allowed = ", ".join(map(str, SYMMETRIC_BITS[algorithm]))
            raise invalid("bit_length", f"must be one of {allowed} for {algorithm.upper()}")
    elif algorithm in HMAC_ALGORITHMS:
        if not 128 <= bits <= 1024 or bits % 8:
            raise invalid("bit_length", "must be a multiple of 8 from 128 to 1024 for HMAC keys")
    else:
        raise invalid("algorithm", f"must be one of aes, {', '.join(HMAC_ALGORITHMS)}")
    _content_type(meta)
    return KeySpec(_text(meta, "name"), algorithm, bits, _text(meta, "mode"), _expiration(meta, now))


@dataclass(frozen=True, slots=True)
class AsymmetricSpec:
    name: str | None
    algorithm: str
    bit_length: int
    passphrase: str | None
    expiration: datetime | None


def asymmetric_spec(meta: Mapping[str, Any], now: datetime) -> AsymmetricSpec:
    _only(meta, _ASYMMETRIC_FIELDS, "asymmetric")
    algorithm = (_text(meta, "algorithm", required=True) or "").lower()
    bits = _integer(meta, "bit_length", required=True)
    if algorithm not in ASYMMETRIC_BITS:
        raise invalid("algorithm", "must be rsa or ec (dsa is not supported)")
    if bits not in ASYMMETRIC_BITS[algorithm]:
        allowed = ", ".join(map(str, ASYMMETRIC_BITS[algorithm]))
        raise invalid("bit_length", f"must be one of {allowed} for {algorithm}")
    _content_type(meta)
    field = "pass_phrase" if meta.get("pass_phrase") is not None else "passphrase"
    passphrase = _text(meta, field, limit=1024)
    assert bits is not None
    return AsymmetricSpec(_text(meta, "name"), algorithm, bits, passphrase, _expiration(meta, now))


@dataclass(frozen=True, slots=True)
class CertificateSpec:
    name: str | None
    request_type: str
    ca_id: str | None
    profile: IssuanceProfile
    request_data: str | None = None  # simple-cmc
    container_id: str | None = None  # stored-key
    subject: DistinguishedName | None = None  # stored-key, custom
    sans: tuple[SubjectAltName, ...] = ()  # custom
    key_algorithm: KeyAlgorithm | None = None  # custom
    validity_days: int | None = None  # custom


def ref_id(value: str, field: str) -> str:
    """The UUID at the end of a reference (`https://host/v1/containers/<uuid>`) or the UUID itself."""
    match = _UUID_TAIL.search(value.strip())
    if match is None:
        raise invalid(field, "must be a reference (or the UUID) of an object of this project")
    return match.group(1).lower()


def certificate_spec(meta: Mapping[str, Any], parse_dn: Any) -> CertificateSpec:
    """`parse_dn(text, field)` turns an RFC 1485 name into a DistinguishedName a certificate may carry (pki),
    or raises InvalidInputError saying why."""
    request_type = _text(meta, "request_type") or "custom"
    if request_type not in REQUEST_TYPES:
        raise invalid("request_type", f"must be one of {', '.join(REQUEST_TYPES)}")
    if request_type == "full-cmc":
        raise UnsupportedOrderError("Full CMC requests are not yet supported.", field="meta.request_type")
    _only(meta, _CERT_FIELDS[request_type], f"{request_type} certificate")
    for field in ("requestor_name", "requestor_email", "requestor_phone"):
        _text(meta, field)
    profile_name = _text(meta, "profile") or DEFAULT_PROFILE
    if profile_name not in PROFILES:
        raise invalid("profile", f"must be one of {', '.join(PROFILES)}")
    ca_id = _text(meta, "ca_id")
    common = {
        "name": _text(meta, "name"),
        "request_type": request_type,
        "ca_id": ref_id(ca_id, "ca_id") if ca_id else None,
        "profile": PROFILES[profile_name],
    }
    if request_type == "simple-cmc":
        return CertificateSpec(**common, request_data=_text(meta, "request_data", required=True, limit=32 * 1024))
    if request_type == "stored-key":
        field = "container_ref" if meta.get("container_ref") is not None else "source_container_ref"
        ref = _text(meta, field, required=True)
        _text(meta, "extensions", limit=16 * 1024)  # accepted and not parsed, as upstream documented
        assert ref is not None
        return CertificateSpec(**common, container_id=ref_id(ref, field), subject=_subject(meta, parse_dn))
    # custom: the parameters our CA accepts
    subject = _subject(meta, parse_dn)
    algorithm = _text(meta, "key_algorithm") or KeyAlgorithm.EC256.value
    if algorithm not in CUSTOM_KEY_ALGORITHMS:
        raise invalid("key_algorithm", f"must be one of {', '.join(CUSTOM_KEY_ALGORITHMS)}")
    days = _integer(meta, "validity_days")
    if days is not None and not 1 <= days <= MAX_VALIDITY_DAYS:
        server = tls_server_validity_problem(PROFILES[profile_name].extended_key_usage, timedelta(days=days))
        raise invalid("validity_days", f"must be 1 to {MAX_VALIDITY_DAYS}" + (f": {server}" if server else ""))
    return CertificateSpec(
        **common,
        subject=subject,
        sans=_custom_sans(meta.get("subject_alt_names")),
        key_algorithm=KeyAlgorithm(algorithm),
        validity_days=days,
    )


def _subject(meta: Mapping[str, Any], parse_dn: Any) -> DistinguishedName:
    """meta.subject_dn, parsed and held to the name rules of every issuance (after unescaping: an escaped
    control character is still one)."""
    text = _text(meta, "subject_dn", required=True)
    try:
        return parse_dn(text, "meta.subject_dn")
    except InvalidInputError as exc:
        raise invalid("subject_dn", exc.message) from None


def _custom_sans(value: Any) -> tuple[SubjectAltName, ...]:
    """meta.subject_alt_names of a custom order: DNS names, and IP addresses written `IP:<address>` (as in
    OpenSSL's subjectAltName syntax; `DNS:` may prefix a name). A bare address is refused, not guessed: it
    is not a DNS name, and certifying it as one would make a certificate no client accepts for it."""
    names = value or []
    if isinstance(names, str):
        names = [n.strip() for n in names.split(",") if n.strip()]
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise invalid("subject_alt_names", "must be a list of DNS names (or IP:<address> entries)")
    sans: list[SubjectAltName] = []
    for raw in names:
        text = raw.strip()
        kind, sep, rest = text.partition(":")
        if sep and kind.upper() == "IP":
            san = SubjectAltName(SanType.IP, rest.strip())
        else:
            san = SubjectAltName(SanType.DNS, rest.strip() if sep and kind.upper() == "DNS" else text)
            if _is_ip_address(san.value):
                raise invalid(
                    "subject_alt_names",
                    f"{shown(san.value)!r} is an IP address, not a DNS name; write IP:{shown(san.value)} for an IP "
                    "address SAN",
                )
        sans.append(san)
    unique = tuple(dict.fromkeys(sans))
    if len(unique) > MAX_SANS:
        raise invalid("subject_alt_names", f"must hold at most {MAX_SANS} names; it holds {len(unique)}")
    for san in unique:
        why = san_problem(san)
        if why is not None:
            raise invalid("subject_alt_names", f"{san.type.value} {shown(san.value)!r}: {why}")
    return unique


def _is_ip_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def order_type(value: Any) -> OrderType:
    if value is None or value == "":
        raise MissingParameterError("Missing property 'type'", field="type")
    try:
        return OrderType(str(value).lower())
    except ValueError:
        raise InvalidInputError(
            "Invalid property 'type': must be key, asymmetric or certificate", field="type"
        ) from None
