"""JOSE for ACME (RFC 7515/7517/7518/7638, RFC 8037), with `cryptography` directly: JWK parsing, the
algorithm a key allows, signature and HMAC checks, thumbprints. Pure: no I/O, plain values out."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
from collections.abc import Callable
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey

_CURVES: dict[str, tuple[type[ec.EllipticCurve], int, str]] = {
    "P-256": (ec.SECP256R1, 32, "ES256"),
    "P-384": (ec.SECP384R1, 48, "ES384"),
}
_HASH = {"RS256": hashes.SHA256, "ES256": hashes.SHA256, "ES384": hashes.SHA384}
_HMAC = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}
MIN_RSA_BITS = 2048
MAX_RSA_BITS = 8192


class JoseError(ValueError):
    """`problem` is the ACME error name the check maps to."""

    def __init__(self, problem: str, detail: str) -> None:
        super().__init__(detail)
        self.problem = problem
        self.detail = detail


def b64d(value: Any, what: str) -> bytes:
    """Strict base64url without padding."""
    if not isinstance(value, str) or "=" in value or "+" in value or "/" in value:
        raise JoseError("malformed", f"{what} is not base64url without padding")
    try:
        return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError):
        raise JoseError("malformed", f"{what} is not base64url without padding") from None


def b64e(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def random_argument(nbytes: int, draw: Callable[[int], bytes] = os.urandom) -> str:
    """base64url of `nbytes` fresh random bytes that does not begin with "-".

    EAB kids and HMAC keys are typed after an option (`certbot --eab-hmac-key KEY`); one that begins with "-"
    (1 in 64) is read by certbot's parser (argparse) as an option, and certbot refuses the line. Drawing again costs
    under 0.03 bits of the key's 8 * nbytes.
    """
    while True:
        text = b64e(draw(nbytes))
        if not text.startswith("-"):
            return text


def _uint(value: Any, what: str) -> int:
    raw = b64d(value, what)
    if not raw:
        raise JoseError("badPublicKey", f"the key's {what} is empty")
    return int.from_bytes(raw, "big")


def load_jwk(jwk: Any) -> PublicKey:
    """The public key of a JWK (RSA, EC P-256/P-384, OKP Ed25519); private members are refused."""
    if not isinstance(jwk, dict):
        raise JoseError("malformed", "jwk must be a JSON object")
    if "d" in jwk or "p" in jwk:
        raise JoseError("badPublicKey", "the jwk holds private key members")
    kty = jwk.get("kty")
    try:
        if kty == "RSA":
            n, e = _uint(jwk.get("n"), "n"), _uint(jwk.get("e"), "e")
            key = rsa.RSAPublicNumbers(e, n).public_key()
            if not MIN_RSA_BITS <= key.key_size <= MAX_RSA_BITS:
                raise JoseError("badPublicKey", f"RSA keys must have {MIN_RSA_BITS} to {MAX_RSA_BITS} bits")
            return key
        if kty == "EC":
            spec = _CURVES.get(jwk.get("crv"))  # type: ignore[arg-type]
            if spec is None:
                raise JoseError("badPublicKey", "EC keys must be on P-256 or P-384")
            curve, size, _ = spec
            x, y = b64d(jwk.get("x"), "x"), b64d(jwk.get("y"), "y")
            if len(x) != size or len(y) != size:
                raise JoseError("badPublicKey", "the EC key's coordinates have the wrong length")
            return ec.EllipticCurvePublicNumbers(
                int.from_bytes(x, "big"), int.from_bytes(y, "big"), curve()
            ).public_key()
        if kty == "OKP":
            if jwk.get("crv") != "Ed25519":
                raise JoseError("badPublicKey", "OKP keys must be Ed25519")
            return ed25519.Ed25519PublicKey.from_public_bytes(b64d(jwk.get("x"), "x"))
    except JoseError:
        raise
    except (ValueError, TypeError):
        raise JoseError("badPublicKey", "the jwk is not a valid public key") from None
    raise JoseError("badPublicKey", "jwk kty must be RSA, EC or OKP")


def public_jwk(key: PublicKey) -> dict[str, str]:
    """The required members only (RFC 7638 order-independent), as a thumbprint needs them."""
    if isinstance(key, rsa.RSAPublicKey):
        nums = key.public_numbers()
        return {
            "e": b64e(nums.e.to_bytes((nums.e.bit_length() + 7) // 8, "big")),
            "kty": "RSA",
            "n": b64e(nums.n.to_bytes((nums.n.bit_length() + 7) // 8, "big")),
        }
    if isinstance(key, ec.EllipticCurvePublicKey):
        size = (key.curve.key_size + 7) // 8
        crv = {"secp256r1": "P-256", "secp384r1": "P-384"}.get(key.curve.name)
        if crv is None:
            raise JoseError("badPublicKey", "EC keys must be on P-256 or P-384")
        nums = key.public_numbers()
        return {
            "crv": crv,
            "kty": "EC",
            "x": b64e(nums.x.to_bytes(size, "big")),
            "y": b64e(nums.y.to_bytes(size, "big")),
        }
    if isinstance(key, ed25519.Ed25519PublicKey):
        raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return {"crv": "Ed25519", "kty": "OKP", "x": b64e(raw)}
    raise JoseError("badPublicKey", "unsupported key type")


def thumbprint(key: PublicKey) -> str:
    """RFC 7638 SHA-256 thumbprint, base64url."""
    canonical = json.dumps(public_jwk(key), sort_keys=True, separators=(",", ":")).encode()
    return b64e(hashlib.sha256(canonical).digest())


def allowed_alg(key: PublicKey) -> str:
    if isinstance(key, rsa.RSAPublicKey):
        return "RS256"
    if isinstance(key, ec.EllipticCurvePublicKey):
        return {"secp256r1": "ES256", "secp384r1": "ES384"}[key.curve.name]
    return "EdDSA"


def verify(alg: Any, key: PublicKey, signing_input: bytes, signature: bytes) -> None:
    """Raise JoseError unless `signature` by `key` under `alg` (which must suit the key) verifies."""
    if not isinstance(alg, str) or alg == "none" or alg.startswith("HS"):
        raise JoseError("badSignatureAlgorithm", f"alg {alg!r} is not allowed on an account or certificate key")
    expected = allowed_alg(key)
    if alg != expected:
        raise JoseError("badSignatureAlgorithm", f"alg {alg} does not match the key (use {expected})")
    try:
        if isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, signing_input, padding.PKCS1v15(), _HASH[alg]())
        elif isinstance(key, ec.EllipticCurvePublicKey):
            size = (key.curve.key_size + 7) // 8
            if len(signature) != 2 * size:
                raise InvalidSignature
            r, s = int.from_bytes(signature[:size], "big"), int.from_bytes(signature[size:], "big")
            key.verify(encode_dss_signature(r, s), signing_input, ec.ECDSA(_HASH[alg]()))
        else:
            key.verify(signature, signing_input)
    except InvalidSignature:
        raise JoseError("malformed", "the JWS signature does not verify") from None


def verify_hmac(alg: Any, key: bytes, signing_input: bytes, signature: bytes) -> None:
    digest = _HMAC.get(alg) if isinstance(alg, str) else None
    if digest is None:
        raise JoseError("malformed", "the external account binding must use HS256, HS384 or HS512")
    if not hmac.compare_digest(hmac.new(key, signing_input, digest).digest(), signature):
        raise JoseError("unauthorized", "the external account binding's MAC does not verify")


def spki_thumbprint_of_pem(public_key_pem: bytes) -> str | None:
    """The JWK thumbprint of a PEM public key (None when it is no key type JWS here can carry)."""
    key = serialization.load_pem_public_key(public_key_pem)
    try:
        return thumbprint(key)  # type: ignore[arg-type]
    except JoseError:
        return None


def csr_der_to_pem(der: bytes) -> str:
    try:
        csr = x509.load_der_x509_csr(der)
    except ValueError:
        raise JoseError("badCSR", "the CSR is not DER-encoded PKCS#10") from None
    return csr.public_bytes(serialization.Encoding.PEM).decode()


def csr_asks_for_ca(der: bytes) -> bool:
    csr = x509.load_der_x509_csr(der)
    try:
        bc = csr.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        return False
    return bool(bc.ca)


def certificate_facts(der: bytes) -> tuple[str, bytes | None, bytes]:
    """(decimal serial, authority key identifier, public key PEM) of a DER certificate."""
    try:
        cert = x509.load_der_x509_certificate(der)
    except ValueError:
        raise JoseError("malformed", "the certificate is not DER-encoded X.509") from None
    try:
        aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier
    except x509.ExtensionNotFound:
        aki = None
    pem = cert.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return str(cert.serial_number), aki, pem


def aki_of_pem(cert_pem: str) -> bytes | None:
    cert = x509.load_pem_x509_certificate(cert_pem.encode())
    try:
        return cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier
    except x509.ExtensionNotFound:
        return None


def load_public_pem(public_key_pem: bytes) -> PublicKey:
    return serialization.load_pem_public_key(public_key_pem)  # type: ignore[return-value]
