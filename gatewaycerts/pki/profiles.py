"""What may go into an issued certificate: names, SANs, key usages, custom extensions (RFC 5280 rules), and
the TLS server profile of end-entity certificates (serverAuth by default, at most 825 days)."""

from __future__ import annotations

import ipaddress
import math
import re
from dataclasses import replace
from datetime import timedelta
from urllib.parse import urlsplit

from gatewaycerts.domain.errors import InvalidInputError
from gatewaycerts.domain.pca import (
    CustomExtension,
    DistinguishedName,
    ExtendedKeyUsage,
    KeyUsage,
    SanType,
    SubjectAltName,
)
from gatewaycerts.domain.pca_errors import InvalidExtensionError, InvalidSanError

MAX_SANS = 20
_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")
_OID = re.compile(r"[0-2](\.(0|[1-9][0-9]*))+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# In a name a relying party displays, C1 controls and bidirectional overrides/isolates are spoofing tools too.
_NAME_FORBIDDEN = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_COUNTRY = re.compile(r"[A-Za-z]{2}")
# Extensions this service sets itself (2.5.29.x) and the well-known PKIX ones: never via customized_extension.
_RESERVED_OID_PREFIXES = ("2.5.29.", "1.3.6.1.5.5.7.1.")

KeyKind = str  # "RSA", "EC" or "EdDSA"


def _dns_ok(value: str) -> bool:
    if len(value) > 253 or not value:
        return False
    labels = value.split(".")
    if labels[0] == "*":
        labels = labels[1:]
        if len(labels) < 2:
            return False
    return all(_LABEL.fullmatch(label) for label in labels) and not labels[-1].isdigit()


def shown(value: str) -> str:
    """A value as an error message may quote it: short, without control or bidirectional-override characters."""
    return value if len(value) <= 64 and not _NAME_FORBIDDEN.search(value) else value[:32] + "..."


def _bad_san(san: SubjectAltName, why: str) -> InvalidSanError:
    return InvalidSanError(
        f"Invalid parameter value, parameterName:subject_alternative_names. {san.type.value} {shown(san.value)!r}: "
        f"{why}",
        field="subject_alternative_names",
    )


def san_problem(san: SubjectAltName) -> str | None:
    """Why `san` may not go into a certificate, or None when it may (the rules of every dialect)."""
    value = san.value
    if san.type is SanType.DNS:
        if not _dns_ok(value):
            return "not a valid DNS name (LDH labels, an optional leading '*.', <= 253 characters)"
    elif san.type is SanType.IP:
        try:
            if len(value) > 39:
                raise ValueError
            ipaddress.ip_address(value)
        except ValueError:
            return "not an IPv4 or IPv6 address"
    elif san.type is SanType.EMAIL:
        local, at, domain = value.rpartition("@")
        if len(value) > 256 or not at or not local or _CONTROL.search(local) or " " in local or not _dns_ok(domain):
            return "not an e-mail address (local@domain, <= 256 characters)"
    elif san.type is SanType.URI:
        parts = urlsplit(value)
        if len(value) > 253 or not parts.scheme or not parts.hostname or _CONTROL.search(value) or " " in value:
            return "not an absolute URI with a scheme and a host (<= 253 characters)"
    return None


def validate_sans(sans: tuple[SubjectAltName, ...]) -> None:
    if len(sans) > MAX_SANS:
        raise InvalidSanError(
            f"Invalid parameter value, parameterName:subject_alternative_names. At most {MAX_SANS} names",
            field="subject_alternative_names",
        )
    for san in sans:
        why = san_problem(san)
        if why is not None:
            raise _bad_san(san, why)


def validate_custom_extension(ext: CustomExtension) -> None:
    oid, value = ext.object_identifier, ext.value
    if not oid or len(oid) > 64 or not _OID.fullmatch(oid) or (oid[0] in "01" and int(oid.split(".")[1]) > 39):
        raise InvalidExtensionError(
            "Invalid parameter value, parameterName:customized_extension.object_identifier. Use a dotted OID such "
            "as 1.3.6.1.4.1.2011.4.99 (at most 64 characters)",
            field="customized_extension",
        )
    if oid.startswith(_RESERVED_OID_PREFIXES):
        raise InvalidExtensionError(
            f"customized_extension.object_identifier {oid} is a standard extension that this service sets itself",
            field="customized_extension",
        )
    if not 1 <= len(value) <= 64 or _CONTROL.search(value):
        raise InvalidExtensionError(
            "Invalid parameter value, parameterName:customized_extension.value. Use 1 to 64 printable characters",
            field="customized_extension",
        )


# RFC 5280 Appendix A upper bounds (ub-common-name 64, ub-state-name 128, ub-locality-name 128,
# ub-organization-name 64, ub-organizational-unit-name 64); a longer value is invalid ASN.1 to every verifier.
_DN_LIMITS = (
    ("common_name", 1, 64),
    ("state", 1, 128),
    ("locality", 1, 128),
    ("organization", 1, 64),
    ("organizational_unit", 1, 64),
)
# How RFC 4514 writes each attribute of a DistinguishedName, for messages about names given in that form.
ATTRIBUTE_TYPES = {
    "common_name": "CN",
    "country": "C",
    "state": "ST",
    "locality": "L",
    "organization": "O",
    "organizational_unit": "OU",
}
NAME_RULE = "printable characters (no control or bidirectional-override characters) without leading or trailing spaces"


def attribute_rule(attr: str) -> str:
    """What a value of the DistinguishedName attribute `attr` must be, in words."""
    if attr == "country":
        return "a two-letter country code"
    low, high = next((low, high) for name, low, high in _DN_LIMITS if name == attr)
    return f"{low} to {high} {NAME_RULE}"


def _value_issue(value: str | None, low: int, high: int) -> str | None:
    if not value:
        return "it is missing or empty"
    if not low <= len(value) <= high:
        return f"it has {len(value)} characters"
    if _NAME_FORBIDDEN.search(value):
        return "it contains a control or bidirectional-override character"
    if value != value.strip():
        return "it has leading or trailing spaces"
    return None


def name_problem(dn: DistinguishedName, *, require_common_name: bool = True) -> tuple[str, str, str] | None:
    """(attribute, what it must be, what is wrong) for the first attribute of `dn` that no certificate may
    carry, or None. The common name may be empty only when `require_common_name` is False (a subject
    certified by its subject alternative names alone)."""
    for attr, low, high in _DN_LIMITS:
        value = getattr(dn, attr)
        if (attr == "common_name" and not value and not require_common_name) or (
            value is None and attr != "common_name"
        ):
            continue
        issue = _value_issue(value, low, high)
        if issue is not None:
            return attr, attribute_rule(attr), issue
    if dn.country is not None and not _COUNTRY.fullmatch(dn.country):
        return "country", attribute_rule("country"), f"it is {shown(dn.country)!r}"
    return None


def validate_distinguished_name(dn: DistinguishedName, *, require_common_name: bool = True) -> None:
    problem = name_problem(dn, require_common_name=require_common_name)
    if problem is None:
        return
    attr, rule, _issue = problem
    raise InvalidInputError(
        f"Invalid parameter value, parameterName:distinguished_name.{attr}. Use {rule}", field="distinguished_name"
    )


def default_key_usages(is_ca: bool, key_kind: KeyKind) -> tuple[KeyUsage, ...]:
    if is_ca:
        return (KeyUsage.DIGITAL_SIGNATURE, KeyUsage.KEY_CERT_SIGN, KeyUsage.CRL_SIGN)
    if key_kind == "RSA":
        return (KeyUsage.DIGITAL_SIGNATURE, KeyUsage.KEY_ENCIPHERMENT)
    return (KeyUsage.DIGITAL_SIGNATURE,)


def validate_key_usages(usages: tuple[KeyUsage, ...], is_ca: bool, key_kind: KeyKind) -> None:
    def refuse(why: str) -> InvalidInputError:
        return InvalidInputError(f"Invalid parameter value, parameterName:key_usages. {why}", field="key_usages")

    given = set(usages)
    if is_ca and KeyUsage.KEY_CERT_SIGN not in given:
        raise refuse("a CA certificate needs keyCertSign")
    if not is_ca and given & {KeyUsage.KEY_CERT_SIGN, KeyUsage.CRL_SIGN}:
        raise refuse("keyCertSign and cRLSign are for CA certificates only")
    if given & {KeyUsage.ENCIPHER_ONLY, KeyUsage.DECIPHER_ONLY} and KeyUsage.KEY_AGREEMENT not in given:
        raise refuse("encipherOnly and decipherOnly need keyAgreement")
    if key_kind != "RSA" and given & {KeyUsage.KEY_ENCIPHERMENT, KeyUsage.DATA_ENCIPHERMENT}:
        raise refuse("keyEncipherment and dataEncipherment need an RSA key")
    if key_kind == "RSA" and KeyUsage.KEY_AGREEMENT in given:
        raise refuse("keyAgreement needs an EC key")
    if key_kind == "EdDSA" and given & {KeyUsage.KEY_AGREEMENT}:
        raise refuse("an Ed25519 key can only sign")


# -- the TLS server profile -----------------------------------------------------------------------------------
# Apple's platforms (iOS 13 / macOS 10.15 on) refuse a TLS server certificate that lacks id-kp-serverAuth or
# is valid for more than 825 days, even from a private CA; the CA/Browser Forum's Baseline Requirements hold
# public TLS server certificates to the same EKU and to a shorter period. Every issuance path of every dialect
# applies these two functions to an end-entity certificate; CA certificates carry no EKU and are not limited.
TLS_SERVER_MAX_DAYS = 825
TLS_SERVER_MAX_VALIDITY = timedelta(days=TLS_SERVER_MAX_DAYS)
_HOST_NAMES = (SanType.DNS, SanType.IP)


def names_a_host(sans: tuple[SubjectAltName, ...]) -> bool:
    """Whether a certificate with these subject alternative names identifies a TLS server (a DNS name or an
    IP address)."""
    return any(san.type in _HOST_NAMES for san in sans)


def end_entity_extended_key_usage(
    requested: ExtendedKeyUsage | None,
    sans: tuple[SubjectAltName, ...],
    *,
    default: ExtendedKeyUsage | None = None,
) -> ExtendedKeyUsage | None:
    """The extended key usage of an end-entity certificate: exactly the requested usages when the request asks
    for any; else the dialect's `default`, with serverAuth added when the certificate names a DNS name or an
    IP address (a TLS server certificate without serverAuth is refused by Apple's clients)."""
    if requested is not None and requested.any():
        return requested
    if not names_a_host(sans):
        return default if default is not None and default.any() else None
    return replace(default or ExtendedKeyUsage(), server_auth=True)


def tls_server_validity_problem(eku: ExtendedKeyUsage | None, lifetime: timedelta) -> str | None:
    """Why an end-entity certificate with `eku` may not be valid for `lifetime` (notAfter - notBefore), or
    None when it may: a serverAuth certificate is valid for at most 825 days."""
    if eku is None or not eku.server_auth or lifetime <= TLS_SERVER_MAX_VALIDITY:
        return None
    days = math.ceil(lifetime / timedelta(days=1))
    return (
        f"a TLS server certificate (extended key usage serverAuth) may be valid for at most {TLS_SERVER_MAX_DAYS} "
        f"days, as Apple's platforms and the CA/Browser Forum require; this one would be valid for {days} days"
    )
