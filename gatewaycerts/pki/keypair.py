"""Key material for orders: key pairs (PEM, optionally pass-phrase protected), RFC 1485/4514 subject names,
and PKCS#10 requests carried as base64 (Barbican's simple CMC `request_data`)."""

from __future__ import annotations

import base64
import binascii

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from gatewaycerts.domain.errors import CertificateParseError, InvalidInputError
from gatewaycerts.domain.pca import DistinguishedName

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
    are accepted as RFC 1485 allows). Needs a CN; CN, C, ST, L, O, OU only, each at most once."""
    normalised = ",".join(_upper_type(part) for part in _rdns(text))
    try:
        name = x509.Name.from_rfc4514_string(normalised)
    except ValueError as exc:
        raise InvalidInputError(f"{field} is not a distinguished name: {exc}", field=field) from None
    values: dict[str, str] = {}
    for attr in name:
        key = _DN_ATTRIBUTES.get(attr.oid)
        if key is None:
            raise InvalidInputError(
                f"{field}: attribute {attr.oid.dotted_string} is not supported; use CN, C, ST, L, O, OU", field=field
            )
        if key in values:
            raise InvalidInputError(f"{field}: {attr.rfc4514_string().split('=')[0]} appears twice", field=field)
        values[key] = str(attr.value)
    if not values.get("common_name"):
        raise InvalidInputError(f"{field} needs a common name (CN=...)", field=field)
    return DistinguishedName(**values)


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
