"""Key material for orders: key pairs (PEM, optionally pass-phrase protected), RFC 1485/4514 subject names,
and PKCS#10 requests carried as base64 (Barbican's simple CMC `request_data`)."""

from __future__ import annotations

import base64
import binascii
import re

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from gatewaycerts.domain.errors import CertificateParseError, InvalidInputError
from gatewaycerts.domain.pca import DistinguishedName
from gatewaycerts.pki.profiles import ATTRIBUTE_TYPES, attribute_rule, name_problem, shown

_PEM = serialization.Encoding.PEM
_CURVES = {256: ec.SECP256R1, 384: ec.SECP384R1}
_DN_ATTRIBUTES = {
    NameOID.COMMON_NAME: "common_name",
    NameOID.COUNTRY_NAME: "country",
    NameOID.STATE_OR_PROVINCE_NAME: "state",
    NameOID.LOCALITY_NAME: "locality",
    NameOID.ORGANIZATION_NAME: "organization",
    NameOID.ORGANIZATIONAL_UNIT_NAME: "organizational_unit",
}
MAX_REQUEST_DATA = 24 * 1024
_SUPPORTED = "CN, C, ST, L, O, OU"
_TYPE_ATTRIBUTES = {kind: attr for attr, kind in ATTRIBUTE_TYPES.items()}
_RFC4514_FORM = "write it in RFC 4514 form, such as CN=www.example.com,O=Example,C=US"
_DOTTED_OID = re.compile(r"[0-2](\.[0-9]+)+")
_LENGTH_FOUND = re.compile(r"it was (\d+)")  # the end of cryptography's message about a value's length


def generate_key_pair(algorithm: str, bits: int, passphrase: str | None = None) -> tuple[bytes, bytes]:
    """(PKCS#8 private key PEM, encrypted with the pass phrase if one is given; SubjectPublicKeyInfo PEM)."""
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
    if algorithm == "rsa":
        key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    else:
        key = ec.generate_private_key(_CURVES[bits]())
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase.encode()) if passphrase else serialization.NoEncryption()
    )
    private = key.private_bytes(_PEM, serialization.PrivateFormat.PKCS8, encryption)
    public = key.public_key().public_bytes(_PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return private, public


def public_key_pem(pem: bytes, field: str) -> bytes:
    """A SubjectPublicKeyInfo PEM, re-encoded, or CertificateParseError naming `field`."""
    try:
        key = serialization.load_pem_public_key(pem)
    except (ValueError, TypeError):
        raise CertificateParseError(f"{field}: the public key cannot be read", field=field) from None
    return key.public_bytes(_PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def parse_subject_dn(text: str, field: str) -> DistinguishedName:
    """An RFC 1485 / RFC 4514 distinguished name ("CN=www.example.com, O=Example, C=US"; ';' separators
    are accepted as RFC 1485 allows) that a certificate may carry: a CN; CN, C, ST, L, O, OU only, each at
    most once; each value within the rules of every issuance (pki.profiles), checked after unescaping.
    The InvalidInputError says what is wrong without naming `field`: callers word that in their dialect."""
    if text.lstrip().startswith("/"):
        raise InvalidInputError(f"is in OpenSSL's /CN=.../O=... form; {_RFC4514_FORM}", field=field)
    values: dict[str, str] = {}
    for part in _rdns(text):
        for attr in _parse_component(part, field):
            key = _DN_ATTRIBUTES.get(attr.oid)
            kind = attr.rfc4514_string().split("=")[0]
            if key is None:
                raise InvalidInputError(f"attribute {kind} is not supported; use {_SUPPORTED}", field=field)
            if key in values:
                raise InvalidInputError(f"{kind} appears twice", field=field)
            values[key] = str(attr.value)
    if not values.get("common_name"):
        raise InvalidInputError("needs a common name (CN=...)", field=field)
    dn = DistinguishedName(**values)
    problem = name_problem(dn)
    if problem is not None:
        attr_name, rule, issue = problem
        raise InvalidInputError(f"{ATTRIBUTE_TYPES[attr_name]} must be {rule}; {issue}", field=field)
    return dn


def _parse_component(part: str, field: str) -> list[x509.NameAttribute]:
    """The attribute(s) of one component (a multi-valued RDN "CN=a+O=b" holds several)."""
    kind, sep, _value = part.strip().partition("=")
    kind = kind.strip().upper()
    if not part.strip():
        raise InvalidInputError(
            f"has an empty component (two separators in a row, or one at an end); {_RFC4514_FORM}", field=field
        )
    if not sep or not kind:
        raise InvalidInputError(f"{shown(part.strip())!r} is not an attribute=value pair; {_RFC4514_FORM}", field=field)
    try:
        return list(x509.Name.from_rfc4514_string(_upper_type(part)))
    except ValueError as exc:
        # cryptography's messages are empty for most syntax errors: say which attribute, and why if we can.
        attr_name = _TYPE_ATTRIBUTES.get(kind)
        if attr_name is None and not _DOTTED_OID.fullmatch(kind):
            raise InvalidInputError(
                f"attribute type {shown(kind)!r} is not supported; use {_SUPPORTED}", field=field
            ) from None
        if attr_name is not None and "length" in str(exc):
            found = _LENGTH_FOUND.search(str(exc))
            issue = f"; it has {found[1]} characters" if found else ""
            raise InvalidInputError(f"{kind} must be {attribute_rule(attr_name)}{issue}", field=field) from None
        raise InvalidInputError(
            f'the value of {shown(kind)} is not valid RFC 4514: escape , + " \\ < > ; = with a backslash, or '
            "give a character as a backslash and two hex digits",
            field=field,
        ) from None


def _rdns(text: str) -> list[str]:
    """The name's components, split at unescaped ',' or ';' (RFC 1485 allows both)."""
    parts, current, escaped = [], [], False
    for ch in text:
        if escaped:
            current.append(ch)
            escaped = False
        elif ch == "\\":
            current.append(ch)
            escaped = True
        elif ch in ",;":
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    return parts


def _upper_type(part: str) -> str:
    """Attribute types are case-insensitive (RFC 4514 section 2.3); the parser wants them upper case."""
    kind, sep, value = part.strip().partition("=")
    return f"{kind.strip().upper()}{sep}{value.strip()}"


def csr_pem_from_request_data(data: str, field: str) -> str:
    """The PKCS#10 request of a base64 `request_data`: base64 of a PEM request (what Barbican's clients
    send) or of its DER."""
    if len(data) > MAX_REQUEST_DATA:
        raise InvalidInputError(f"{field} is longer than {MAX_REQUEST_DATA} characters", field=field)
    try:
        raw = base64.b64decode("".join(data.split()), validate=True)
    except (binascii.Error, ValueError):
        raise CertificateParseError(f"{field} is not base64", field=field) from None
    if raw.lstrip().startswith(b"-----BEGIN"):
        try:
            return raw.decode("ascii")
        except UnicodeDecodeError:
            raise CertificateParseError(f"{field} holds PEM that is not ASCII", field=field) from None
    try:
        return x509.load_der_x509_csr(raw).public_bytes(_PEM).decode()
    except ValueError:
        raise CertificateParseError(f"{field} is neither a PEM nor a DER PKCS#10 request", field=field) from None
